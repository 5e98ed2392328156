"""Tests of gradlib.widgets: the live Explorer redraws one persistent figure in place and caches results; the
module works without ipywidgets; static_explorer's HTML follows the site's DOM contract and size budget."""
from __future__ import annotations

import importlib
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace as NS

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gradlib import widgets as gw  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------ fakes
class Counting:
    """A fake experiment: a DepthProfile-like result whose numbers depend on every argument."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, depth: int = 6, activation: str = "tanh", init: str = "old", weight_scale: float = 1.0):
        self.calls.append(dict(depth=depth, activation=activation, init=init, weight_scale=weight_scale))
        layer = np.arange(1, depth + 1)
        base = {"tanh": 0.6, "relu": 1.0, "sigmoid": 0.25, "identity": 1.3}[activation] * weight_scale
        g = base ** (depth - layer).astype(float)
        exploded = None
        if activation == "identity" and depth > 20:
            g[:3] = np.inf
            exploded = 0
        return NS(label=f"{activation}, {init}", layer=layer, grad_norms=g, param_norms=g, exploded_at=exploded,
                  ratio=g[0] / g[-1])


def small_view() -> gw.ProfileView:
    return gw.ProfileView(figsize=(3.0, 2.0), dpi=50)


def controls():
    return [gw.int_slider("depth", 2, 30, 6), gw.choice("activation", ("tanh", "relu", "sigmoid", "identity")),
            gw.choice("init", ("old", "xavier"), buttons=True), gw.log_slider("weight_scale", 0.5, 2.0, 1.0)]


# ------------------------------------------------------------------------------------------ live explorer
def test_explorer_updates_the_same_figure_and_line_in_place_when_a_control_changes():
    pytest.importorskip("ipywidgets")
    fake = Counting()
    explorer = gw.Explorer(fake, small_view(), controls())
    fig, line = explorer.figure, explorer.view.lines[0]
    fig_id, axes_before, png_before = id(fig), list(fig.axes), bytes(explorer.image.value)
    assert png_before.startswith(b"\x89PNG")

    explorer.widgets["depth"].value = 12  # what the slider does in the browser

    assert id(explorer.figure) == fig_id and explorer.figure.axes == axes_before
    assert explorer.view.lines[0] is line
    assert list(line.get_xdata()) == list(range(1, 13))
    assert bytes(explorer.image.value) != png_before and bytes(explorer.image.value).startswith(b"\x89PNG")
    assert fake.calls[-1]["depth"] == 12
    assert "first/last" in explorer.caption.value


def test_explorer_caches_results_per_tuple_of_control_values():
    pytest.importorskip("ipywidgets")
    fake = Counting()
    explorer = gw.Explorer(fake, small_view(), controls())
    explorer.widgets["depth"].value = 20
    explorer.widgets["depth"].value = 6
    explorer.widgets["depth"].value = 20
    assert [c["depth"] for c in fake.calls] == [6, 20]
    assert explorer.timings["cached"] is True
    explorer.widgets["activation"].value = "relu"
    assert [c["activation"] for c in fake.calls] == ["tanh", "tanh", "relu"]


def test_explorer_set_moves_several_controls_with_a_single_compute():
    pytest.importorskip("ipywidgets")
    fake = Counting()
    explorer = gw.Explorer(fake, small_view(), controls())
    explorer.set(depth=25, activation="identity")
    assert len(fake.calls) == 2 and fake.calls[-1]["depth"] == 25
    assert explorer.widgets["activation"].value == "identity"
    cross, note = explorer.view.crosses[0]
    assert cross.get_visible() and note.get_text() == "exploded at layer 1"
    assert "exploded" in explorer.caption.value
    with pytest.raises(ValueError, match="controls must be among"):
        explorer.set(width=3)


def test_explorer_never_creates_pyplot_figures():
    pytest.importorskip("ipywidgets")
    before = plt.get_fignums()
    explorer = gw.Explorer(Counting(), small_view(), controls())
    explorer.set(depth=9)
    assert plt.get_fignums() == before
    assert type(explorer.figure) is matplotlib.figure.Figure


def test_controls_build_only_widgets_common_to_ipywidgets_7_and_8():
    w = pytest.importorskip("ipywidgets")
    built = [c.build(w) for c in controls() + [gw.checkbox("residual", True), gw.float_slider("a", 0, 1, 0.5)]]
    assert [type(b).__name__ for b in built] == ["IntSlider", "Dropdown", "ToggleButtons", "FloatLogSlider",
                                                 "Checkbox", "FloatSlider"]
    assert built[3].value == pytest.approx(1.0)


def test_bad_controls_raise_value_error_naming_the_problem():
    with pytest.raises(ValueError, match="must be one of its options"):
        gw.choice("norm", ("layer", "rms"), "batch")
    with pytest.raises(ValueError, match=r"must be in \[2, 30\]"):
        gw.int_slider("depth", 2, 30, 40)
    with pytest.raises(ValueError, match="identifier"):
        gw.int_slider("two words", 0, 3, 1)


def test_widgets_module_imports_without_ipywidgets_and_explorers_raise_import_error_with_a_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now raises ImportError
    monkeypatch.delitem(sys.modules, "gradlib.widgets")
    module = importlib.import_module("gradlib.widgets")
    for make in (module.mlp_explorer, module.path_length_explorer, module.residual_explorer,
                 module.norm_explorer):
        with pytest.raises(ImportError, match="pip install"):
            make(compute=Counting())
    # the kernel-free twin needs no ipywidgets
    static = module.static_explorer(Counting(), small_view(), {"depth": [3, 4]})
    assert "gh-explorer" in static._repr_html_()


def test_importing_gradlib_does_not_import_ipywidgets():
    code = ("import sys; sys.modules['ipywidgets'] = None; import gradlib, gradlib.plotting, gradlib.widgets; "
            "import matplotlib; print(matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------------------------- static explorer
class DOM(HTMLParser):
    """Collects the elements of the static explorer (tags with attributes, <option>s, script text)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.select_options: dict[str, int] = {}
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag == "select":
            self._select = a.get("data-param")
            self.select_options[self._select] = 0
        if tag == "option" and self._select is not None:
            self.select_options[self._select] += 1

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data

    def find(self, tag, cls=None):
        return [a for t, a in self.elements if t == tag and (cls is None or cls in a.get("class", "").split())]


GRID = {"depth": [2, 4, 8], "activation": ["tanh", "relu"], "weight_scale": [0.5, 1.0]}


def _static(**kw):
    return gw.static_explorer(Counting(), small_view(), GRID, title="MLP", **kw)


def _index(script: str) -> dict:
    return json.loads(re.search(r"var index = (\{.*?\});", script).group(1))


def test_static_explorer_html_follows_the_dom_contract():
    static = _static(initial={"depth": 4})
    dom = DOM()
    dom.feed(static._repr_html_())
    (root,) = dom.find("div", "gh-explorer")
    assert root["data-gh-explorer"] == static.id
    (img,) = dom.find("img", "gh-explorer-frame")
    assert img["src"].startswith("data:image/png;base64,") and img["alt"]
    sliders = [a for a in dom.find("input", "gh-control")]
    selects = [a for a in dom.find("select", "gh-control")]
    assert {a["data-param"] for a in sliders} == {"depth", "weight_scale"}  # numbers -> range sliders
    assert {a["data-param"] for a in selects} == {"activation"}  # strings -> <select>
    for a in sliders:
        assert (a["type"], a["min"], a["max"], a["step"]) == ("range", "0", str(len(GRID[a["data-param"]]) - 1), "1")
    assert next(a for a in sliders if a["data-param"] == "depth")["value"] == "1"  # initial depth 4
    assert dom.select_options == {"activation": 2}
    assert len(dom.find("output")) == len(sliders)
    (script,) = dom.scripts
    assert static.id in script
    index = _index(script)
    assert len(index) == math.prod(len(v) for v in GRID.values()) == static.n_frames == static.n_unique
    assert set(index) == {",".join(map(str, c)) for c in itertools.product(range(3), range(2), range(2))}


def test_static_explorer_makes_no_external_request():
    html = _static()._repr_html_()
    dom = DOM()
    dom.feed(html)
    for tag, attrs in dom.elements:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith("data:"), f"<{tag} {name}={attrs[name][:40]!r}>"
    assert all("src" not in a for a in dom.find("script"))
    # base64 never contains ':' so any URL scheme would show up here
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/|fetch\(|XMLHttpRequest|import\(", html)


def test_static_explorers_get_unique_ids():
    ids = {_static().id for _ in range(3)}
    assert len(ids) == 3


def test_static_explorer_over_the_size_budget_raises_value_error_with_sizes():
    with pytest.raises(ValueError, match=r"MB, over the 0\.01 MB budget .*12 frames"):
        _static(max_bytes=10_000)


def test_static_explorer_stores_identical_frames_once():
    def ignores_scale(depth, activation, weight_scale):
        return Counting()(depth=depth, activation=activation)

    static = gw.static_explorer(ignores_scale, small_view(), GRID)
    assert static.n_frames == 12 and static.n_unique == 6


def test_static_explorer_rejects_bad_grids():
    for grid, match in [({}, "non-empty dict"), ({"depth": []}, "non-empty list"),
                        ({"not valid": [1, 2]}, "identifiers")]:
        with pytest.raises(ValueError, match=match):
            gw.static_explorer(Counting(), small_view(), grid)
    with pytest.raises(ValueError, match="initial"):
        _static(initial={"depth": 5})


_NODE_HARNESS = r"""
const spec = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const handlers = {}, controls = {};
for (const c of spec.controls) {
  handlers[c.param] = [];
  controls[c.param] = { value: c.value, parentNode: { querySelector: () => ({ textContent: '' }) },
    addEventListener: (ev, fn) => handlers[c.param].push([ev, fn]) };
}
const img = { src: spec.src };
const root = { querySelector: (sel) => {
  if (sel.startsWith('img')) return img;
  const m = sel.match(/data-param="([^"]+)"/); return controls[m[1]]; } };
global.document = { querySelector: (sel) => sel.includes(spec.id) ? root : null };
eval(spec.script);
const seen = [img.src];
for (const c of spec.controls) {             // move each control to its last value, fire input only
  controls[c.param].value = String(c.max);
  for (const [ev, fn] of handlers[c.param]) if (ev === 'input') fn();
  seen.push(img.src);
}
console.log(JSON.stringify({ seen, events: Object.values(handlers).map(h => h.map(x => x[0]).sort()) }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the inline script")
def test_static_explorer_script_swaps_the_image_when_any_control_moves():
    static = _static()
    dom = DOM()
    dom.feed(static.html)
    (img,) = dom.find("img", "gh-explorer-frame")
    ctrl = [{"param": a["data-param"], "value": a.get("value", "0"),
             "max": int(a["max"]) if "max" in a else dom.select_options[a["data-param"]] - 1}
            for t, a in dom.elements if "gh-control" in a.get("class", "")]
    spec = {"id": static.id, "script": dom.scripts[0], "src": img["src"], "controls": ctrl}
    out = subprocess.run(["node", "-e", _NODE_HARNESS], input=json.dumps(spec), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    seen = result["seen"]
    assert seen[0] == img["src"]  # the script starts on the frame the HTML shows
    assert all(a != b for a, b in zip(seen, seen[1:])), "a control moved but the picture did not change"
    assert all(s.startswith("data:image/png;base64,") for s in seen)
    assert result["events"] == [["change", "input"]] * len(ctrl)


# ------------------------------------------------------------------------------ with the real experiments
def test_mlp_explorer_runs_the_real_experiment_and_redraws_in_place():
    pytest.importorskip("ipywidgets")
    explorer = gw.mlp_explorer()
    fig_id, png = id(explorer.figure), bytes(explorer.image.value)
    explorer.set(depth=4, activation="relu", init="he")
    assert id(explorer.figure) == fig_id and bytes(explorer.image.value) != png
    assert explorer.view.title.get_text().startswith("relu, he init  ·  first/last = ")
    explorer.set(init="scaled", weight_scale=2.0)
    assert "weight scale 2" in explorer.view.title.get_text()


def test_chapter_static_explorers_fit_the_budget_and_every_control_changes_the_picture():
    pytest.importorskip("gradlib.experiments")
    small = {  # the explorers whose labels must name a control that changes no number
        gw.residual_explorer: {"depth": [3, 6], "residual": [False, True], "alpha": [0.5, 1.0]},
        gw.norm_explorer: {"depth": [2, 3], "norm": ["none", "layer"], "position": ["pre", "post"]},
        gw.path_length_explorer: {"seq_len": [4, 6], "rho": [0.8, 1.2]},
    }
    for make, grid in small.items():
        static = make(static=True, grid=grid)
        assert static.size_bytes <= gw.MAX_STATIC_BYTES
        # identical frames would leave the picture unchanged when a control moves (the site test checks it)
        assert static.n_unique == static.n_frames == math.prod(map(len, grid.values())), make.__name__


def test_explorer_shows_a_compute_error_under_the_figure_instead_of_losing_it():
    pytest.importorskip("ipywidgets")

    def fragile(depth: int = 6, activation: str = "tanh", init: str = "old", weight_scale: float = 1.0):
        if activation == "sigmoid":
            raise ValueError("activation 'sigmoid' is not ready")
        return Counting()(depth=depth, activation=activation)

    explorer = gw.Explorer(fragile, small_view(), controls())
    png = bytes(explorer.image.value)
    explorer.widgets["activation"].value = "sigmoid"
    assert "ValueError: activation &#x27;sigmoid&#x27; is not ready" in explorer.caption.value
    assert bytes(explorer.image.value) == png  # the last good picture stays


def test_residual_and_norm_explorers_show_exactly_what_the_experiments_compute():
    from gradlib import experiments as E

    mlp = dict(depth=6, width=gw.MLP_WIDTH, batch=gw.MLP_BATCH, activation="tanh", init="old", seed=0)
    scaled = gw.residual_compute(depth=6, residual=True, alpha=0.5)
    np.testing.assert_array_equal(
        scaled.grad_norms, E.mlp_gradients(residual=True, branch_scale=0.5, **mlp).grad_norms)
    assert scaled.label == "residual, α = 0.5"
    plain = gw.residual_compute(depth=6, residual=False, alpha=0.5)
    np.testing.assert_array_equal(plain.grad_norms, E.mlp_gradients(residual=False, **mlp).grad_norms)
    assert plain.label == "plain (no skips; α = 0.5 unused)"  # α changes the picture only through its label

    stack = dict(d_model=gw.STACK_WIDTH, n_tokens=gw.STACK_TOKENS, batch=gw.STACK_BATCH, seed=0)
    post = gw.norm_compute(depth=3, norm="rms", position="post")
    np.testing.assert_array_equal(post.grad_norms, E.stack_gradients(3, "rms", "post", **stack).grad_norms)
    assert post.label == "post-RMSNorm"
    assert gw.norm_compute(depth=3, norm="none", position="post").label == "no norm (post: nothing to place)"


@pytest.mark.parametrize("call, name", [
    (lambda: gw.residual_compute(alpha=-1.0), "alpha"),
    (lambda: gw.norm_compute(norm="batch"), "norm"),
    (lambda: gw.norm_compute(position="middle"), "position"),
])
def test_explorer_computes_reject_bad_controls_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()
