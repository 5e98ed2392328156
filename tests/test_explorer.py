"""Tests of gradlib.explorer: FigureView keeps ONE Figure whose lines move in place and renders it as PNG; the
live Explorer recomputes (cached per tuple of values) on every widget change, redraws that same figure, shows
errors in its caption, and refuses controls that compute does not take."""
from __future__ import annotations

import io
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import ipywidgets  # noqa: E402,F401  (the live explorer needs it: installed with the test dependencies)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from gradlib import controls as gctl  # noqa: E402
from gradlib import explorer as gx  # noqa: E402
from gradlib import figures as gf  # noqa: E402
from gradlib.results import DepthProfile  # noqa: E402

INF, NAN = np.inf, np.nan


# ------------------------------------------------------------------------------------------------ fakes
class Counting:
    """A fake experiment: a DepthProfile whose numbers depend on every argument (param_norms ≠ grad_norms)."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, depth: int = 6, activation: str = "tanh", init: str = "old", weight_scale: float = 1.0):
        self.calls.append(dict(depth=depth, activation=activation, init=init, weight_scale=weight_scale))
        layer = np.arange(1, depth + 1)
        base = {"tanh": 0.6, "relu": 1.0, "sigmoid": 0.25, "identity": 1.3}[activation] * weight_scale
        base *= 1.0 if init == "old" else 1.1
        g = base ** (depth - layer).astype(float) + 0.01 * layer
        exploded = None
        if activation == "identity" and depth > 20:
            g[:3] = [NAN, INF, INF]
            exploded = 0
        return DepthProfile(key=activation, label=f"{activation}, {init}", role="baseline", layer=layer,
                            grad_norms=g, param_norms=2.0 * g[::-1] + 1.0, exploded_at=exploded)


def caption(result) -> str:
    return f"{result.label}: first/last = {result.ratio:.2g}"


def small_view(**kw) -> gx.FigureView:
    return gx.FigureView(gf.DepthProfileFigure, caption=caption, figsize=(3.0, 2.0), dpi=40, **kw)


def controls():
    return [gctl.int_slider("depth", 2, 30, 6), gctl.choice("activation", ("tanh", "relu", "sigmoid", "identity")),
            gctl.choice("init", ("old", "xavier"), buttons=True), gctl.log_slider("weight_scale", 0.5, 2.0, 1.0)]


def _png_size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------------- FigureView
def test_figure_view_keeps_one_figure_and_moves_its_lines_in_place():
    view = small_view()
    assert type(view.figure) is Figure and view.ax.figure is view.figure
    result = Counting()(depth=5)
    view.update(result)
    line = view.chart.lines[0]
    png = view.render()
    assert png.startswith(b"\x89PNG") and _png_size(png) == (120, 80)  # figsize × dpi
    view.update(Counting()(depth=9, activation="relu"))
    assert view.chart.lines[0] is line and view.figure.axes == [view.ax]
    ((label, x, y),) = gf.drawn(view.ax)
    assert label == "relu, old"
    np.testing.assert_array_equal(x, np.arange(1, 10))
    np.testing.assert_array_equal(y, Counting()(depth=9, activation="relu").grad_norms)
    assert view.render() != png  # the picture changed with the data
    assert view.caption(result) == caption(result)
    assert gx.FigureView(gf.DepthProfileFigure, figsize=(2, 1), dpi=20).caption(result) == ""


def test_figure_view_draws_what_the_notebook_plot_function_draws():
    result = [Counting()(depth=7), Counting()(depth=7, activation="relu", init="xavier")]
    view = small_view()
    view.update(result)
    ax = gf.plot_depth_profiles(result, ax=Figure().add_subplot())
    for (la, xa, ya), (lb, xb, yb) in zip(gf.drawn(view.ax), gf.drawn(ax), strict=True):
        assert la == lb
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    shown_colors = [line.get_color() for line in ax.lines if line.get_visible() and not line.get_label()[0] == "_"]
    assert [line.get_color() for line in view.chart.lines] == shown_colors


def test_figure_view_title_comes_from_its_title_function_and_minor_ticks_are_off():
    view = small_view(title=lambda r: f"depth {len(r.layer)}")
    view.update(Counting()(depth=4))
    assert view.ax.get_title() == "depth 4"
    view.render()
    assert len(view.ax.yaxis.get_minorticklocs()) == 0


def test_palette_render_is_a_smaller_png_of_the_same_picture():
    view = small_view()
    view.update(Counting()(depth=12))
    full, small = view.render(), view.render(palette=True)
    assert small.startswith(b"\x89PNG") and _png_size(small) == _png_size(full)
    assert len(Image.open(io.BytesIO(small)).getcolors(256)) <= 64
    assert view.render(palette=True) == small  # deterministic: the static site dedupes frames by their bytes


# --------------------------------------------------------------------------------------- live explorer
def test_explorer_updates_the_same_figure_and_line_in_place_when_a_widget_changes():
    fake = Counting()
    explorer = gx.Explorer(fake, small_view(), controls(), title="MLP <b>")
    fig, line = explorer.figure, explorer.view.chart.lines[0]
    axes_before, png_before = list(fig.axes), bytes(explorer.image.value)
    assert png_before.startswith(b"\x89PNG")
    assert fake.calls == [dict(depth=6, activation="tanh", init="old", weight_scale=1.0)]

    explorer.widgets["depth"].value = 12  # what the slider does in the browser

    assert explorer.figure is fig and explorer.figure.axes == axes_before
    assert explorer.view.chart.lines[0] is line
    ((label, x, y),) = gf.drawn(explorer.view.ax)
    result = fake(depth=12)
    np.testing.assert_array_equal(x, np.arange(1, 13))
    np.testing.assert_array_equal(y, result.grad_norms)  # the output gradient, not the parameter gradient
    assert not np.allclose(y, result.param_norms)
    assert fake.calls[1]["depth"] == 12
    assert bytes(explorer.image.value) != png_before and bytes(explorer.image.value).startswith(b"\x89PNG")
    assert explorer.caption.value == caption(result)
    assert explorer.values["depth"] == 12
    assert set(explorer.timings) >= {"compute_ms", "update_ms", "render_ms", "total_ms", "cached"}
    assert "MLP &lt;b&gt;" in explorer.box.children[0].value  # the title, escaped


def test_explorer_caches_results_per_tuple_of_control_values():
    fake = Counting()
    explorer = gx.Explorer(fake, small_view(), controls())
    explorer.widgets["depth"].value = 20
    png20 = bytes(explorer.image.value)
    explorer.widgets["depth"].value = 6
    explorer.widgets["depth"].value = 20
    assert [c["depth"] for c in fake.calls] == [6, 20]
    assert explorer.timings["cached"] is True
    assert bytes(explorer.image.value) == png20  # the cached result draws the same picture
    explorer.widgets["activation"].value = "relu"
    assert explorer.timings["cached"] is False
    assert [c["activation"] for c in fake.calls] == ["tanh", "tanh", "relu"]
    assert explorer.result(depth=20, activation="relu", init="old", weight_scale=1.0) is explorer.result(
        weight_scale=1.0, init="old", activation="relu", depth=20)  # the key ignores the order of the keywords


def test_explorer_cache_keeps_at_most_cache_size_results_and_a_key_can_merge_values():
    fake = Counting()
    explorer = gx.Explorer(fake, small_view(), controls(), cache_size=2)
    for depth in (7, 8, 9):
        explorer.widgets["depth"].value = depth
    explorer.widgets["depth"].value = 6  # dropped: the least recently used
    assert [c["depth"] for c in fake.calls] == [6, 7, 8, 9, 6]

    def ignore_scale(values):
        return tuple(sorted((k, v) for k, v in values.items() if k != "weight_scale"))

    fake = Counting()
    explorer = gx.Explorer(fake, small_view(), controls(), key=ignore_scale)
    explorer.widgets["weight_scale"].value = 2.0
    assert len(fake.calls) == 1 and explorer.timings["cached"] is True


def test_explorer_set_moves_several_controls_with_a_single_compute_and_shows_the_explosion():
    fake = Counting()
    explorer = gx.Explorer(fake, small_view(), controls())
    explorer.set(depth=25, activation="identity")
    assert len(fake.calls) == 2 and fake.calls[-1] == dict(depth=25, activation="identity", init="old",
                                                           weight_scale=1.0)
    assert explorer.widgets["activation"].value == "identity" and explorer.widgets["depth"].value == 25
    cross, note = explorer.view.chart.marks[0]
    assert cross.get_visible() and note.get_visible() and note.get_text() == "exploded at layer 1"
    with pytest.raises(ValueError, match="controls must be among"):
        explorer.set(width=3)
    assert len(fake.calls) == 2
    explorer.set(depth=4)
    assert not cross.get_visible()


def test_explorer_shows_a_compute_error_in_its_caption_and_keeps_the_last_good_picture():
    def fragile(depth: int = 6, activation: str = "tanh", init: str = "old", weight_scale: float = 1.0):
        if activation == "sigmoid":
            raise ValueError("activation 'sigmoid' is <not> ready")
        return Counting()(depth=depth, activation=activation)

    explorer = gx.Explorer(fragile, small_view(), controls())
    png = bytes(explorer.image.value)
    explorer.widgets["activation"].value = "sigmoid"
    assert "ValueError: activation &#x27;sigmoid&#x27; is &lt;not&gt; ready" in explorer.caption.value
    assert bytes(explorer.image.value) == png
    explorer.widgets["activation"].value = "relu"  # and it recovers
    assert explorer.caption.value.startswith("relu, old") and bytes(explorer.image.value) != png


def test_explorer_never_creates_pyplot_figures():
    before = plt.get_fignums()
    explorer = gx.Explorer(Counting(), small_view(), controls())
    explorer.set(depth=9)
    assert plt.get_fignums() == before
    assert type(explorer.figure) is Figure
    assert repr(explorer).startswith("Explorer(") and "'depth': 9" in repr(explorer)


def test_explorer_rejects_controls_that_compute_does_not_take():
    def compute(depth: int = 6, activation: str = "tanh"):
        return Counting()(depth=depth, activation=activation)

    with pytest.raises(ValueError, match="does not take: init, weight_scale"):
        gx.Explorer(compute, small_view(), controls())
    with pytest.raises(ValueError, match="unique names"):
        gx.Explorer(Counting(), small_view(), [gctl.int_slider("depth", 2, 3, 2)] * 2)
    with pytest.raises(ValueError, match="non-empty"):
        gx.Explorer(Counting(), small_view(), [])
    with pytest.raises(ValueError, match="callable"):
        gx.Explorer(42, small_view(), controls())
    with pytest.raises(ValueError, match="lacks 'render'"):
        gx.Explorer(Counting(), type("V", (), {"update": None, "figure": None})(), controls())


def test_check_keywords_names_what_compute_does_not_take():
    def f(depth, *, width=3, **kw):
        pass

    def g(depth, /, width=3, *, seed=0):
        pass

    gx.check_keywords(f, ["depth", "anything"], "controls")  # **kw takes every keyword
    gx.check_keywords(g, ["width", "seed"], "controls")
    with pytest.raises(ValueError, match=r"controls name keywords that g does not take: depth, widht"):
        gx.check_keywords(g, ["depth", "widht", "seed"], "controls")  # positional-only is no keyword
    with pytest.raises(ValueError, match="grid keys"):
        gx.check_keywords(g, ["x"], "grid keys")


def test_explorer_box_holds_the_widgets_the_image_and_the_caption():
    explorer = gx.Explorer(Counting(), small_view(), controls(), title="t")
    title, row1, row2, image, text = explorer.box.children
    assert list(row1.children) + list(row2.children) == list(explorer.widgets.values())
    assert image is explorer.image and text is explorer.caption
    assert title.value == "<b>t</b>"
