"""Tests of gradlib.explorers: each chapter's compute calls its experiment with exactly the numbers the controls
name (compared with the experiment called directly), every chapter explorer builds live and static, its frames
change whenever a control moves, and what a view draws is what the notebook's plot_* draws for that result."""
from __future__ import annotations

import functools
import itertools
import json
import math
import os
import re

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import ipywidgets  # noqa: E402,F401  (the live explorers need it: installed with the test dependencies)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradlib import explorers as ge  # noqa: E402
from gradlib import figures as gf  # noqa: E402
from gradlib.exp_attention import path_lengths  # noqa: E402
from gradlib.exp_placement import stack_gradients  # noqa: E402
from gradlib.exp_telephone import mlp_gradients  # noqa: E402
from gradlib.explorer import Explorer  # noqa: E402
from gradlib.static import MAX_STATIC_BYTES, StaticExplorer  # noqa: E402

MLP = dict(width=ge.MLP_WIDTH, batch=ge.MLP_BATCH, seed=0)
STACK = dict(d_model=ge.STACK_WIDTH, n_tokens=ge.STACK_TOKENS, batch=ge.STACK_BATCH, seed=0)


def _axes():
    return Figure(figsize=(3, 2), dpi=40).add_subplot()


def assert_same_drawing(ax_a, ax_b):
    """Two Axes show the same lines: labels, x, y and colours."""
    a, b = gf.drawn(ax_a), gf.drawn(ax_b)
    assert [label for label, _, _ in a] == [label for label, _, _ in b]
    for (label, xa, ya), (_, xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb, err_msg=label)
        np.testing.assert_array_equal(ya, yb, err_msg=label)

    def colors(ax):
        return [line.get_color() for line in ax.lines if line.get_visible() and not line.get_label().startswith("_")]

    assert colors(ax_a) == colors(ax_b)


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------------------ compute
@pytest.mark.parametrize("init", ["old", "xavier", "he"])
def test_mlp_compute_is_mlp_gradients_with_the_named_init(init):
    got = ge.mlp_compute(depth=5, activation="tanh", init=init)
    want = mlp_gradients(depth=5, activation="tanh", init=init, **MLP)
    np.testing.assert_array_equal(got.grad_norms, want.grad_norms)
    assert (got.label, got.role) == (want.label, want.role) == (f"tanh, {init} init", got.role)
    # σ_w only matters for init = "scaled": the same numbers for every weight_scale
    np.testing.assert_array_equal(ge.mlp_compute(depth=5, init=init, weight_scale=3.0).grad_norms, got.grad_norms)


@pytest.mark.parametrize("sigma", [0.5, 2.0])
def test_mlp_compute_scaled_is_mlp_gradients_with_weight_scale_sigma(sigma):
    got = ge.mlp_compute(depth=5, activation="relu", init="scaled", weight_scale=sigma)
    want = mlp_gradients(depth=5, activation="relu", weight_scale=sigma, **MLP)  # W ~ N(0, σ²/n)
    np.testing.assert_array_equal(got.grad_norms, want.grad_norms)
    np.testing.assert_array_equal(got.param_norms, want.param_norms)
    assert got.label == want.label == f"relu, weight scale {sigma:g}"
    he = ge.mlp_compute(depth=5, activation="relu", init="he")
    assert not np.allclose(got.grad_norms, he.grad_norms)  # "scaled" is not another name for an init


def test_residual_and_norm_compute_show_exactly_what_the_experiments_compute():
    common = dict(depth=6, activation="tanh", init="old", **MLP)
    scaled = ge.residual_compute(depth=6, residual=True, alpha=0.5)
    np.testing.assert_array_equal(scaled.grad_norms,
                                  mlp_gradients(residual=True, branch_scale=0.5, **common).grad_norms)
    assert (scaled.label, scaled.role) == ("residual, α = 0.5", "residual")
    plain = ge.residual_compute(depth=6, residual=False, alpha=0.5)
    np.testing.assert_array_equal(plain.grad_norms, mlp_gradients(residual=False, **common).grad_norms)
    assert (plain.label, plain.role) == ("plain (no skips; α = 0.5 unused)", "baseline")  # α only in the label

    post = ge.norm_compute(depth=3, norm="rms", position="post")
    np.testing.assert_array_equal(post.grad_norms, stack_gradients(3, "rms", "post", n_heads=1, **STACK).grad_norms)
    assert post.label == "post-RMSNorm"
    pre = ge.norm_compute(depth=3, norm="layer", position="pre")
    np.testing.assert_array_equal(pre.grad_norms, stack_gradients(3, "layer", "pre", n_heads=1, **STACK).grad_norms)
    assert ge.norm_compute(depth=3, norm="none", position="post").label == "no norm (post: nothing to place)"


def test_path_length_compute_is_path_lengths_at_the_explorers_size():
    got = ge.path_length_compute(seq_len=6, rho=1.2)
    want = path_lengths(seq_len=6, rho=1.2, d=16, seed=0)
    np.testing.assert_array_equal(got.rnn, want.rnn)
    np.testing.assert_array_equal(got.attention, want.attention)
    assert got.seq_len == 6 and got.rho == pytest.approx(want.rho)


@pytest.mark.parametrize("call, name", [
    (lambda: ge.residual_compute(depth=3, alpha=-1.0), "alpha"),
    (lambda: ge.residual_compute(depth=3, alpha=float("inf")), "alpha"),
    (lambda: ge.norm_compute(depth=3, norm="group"), "norm"),
    (lambda: ge.norm_compute(depth=3, position="middle"), "position"),
    (lambda: ge.mlp_compute(depth=3, init="orthogonal"), "init"),
    (lambda: ge.mlp_compute(depth=3, init="scaled", weight_scale=0.0), "weight_scale"),
])
def test_explorer_computes_reject_bad_controls_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ------------------------------------------------------------------------------------ views = plot_*
def test_profile_view_draws_what_plot_depth_profiles_draws_for_the_same_result():
    result = ge.mlp_compute(depth=6, activation="relu", init="he")
    view = ge.profile_view(figsize=(3, 2), dpi=40)
    view.update(result)
    assert_same_drawing(view.ax, gf.plot_depth_profiles(result, ax=_axes()))
    ((label, x, y),) = gf.drawn(view.ax)
    np.testing.assert_array_equal(y, result.grad_norms)  # the output gradient ‖∂ℓ/∂h_l‖ ...
    assert not np.allclose(y, result.param_norms)  # ... not the parameter gradient
    np.testing.assert_array_equal(x, result.layer)
    assert view.ax.get_title().startswith("relu, he init  ·  first/last = ")
    assert view.caption(result).startswith("relu, he init: gradient at the first layer / at the last: first/last")


def test_path_length_view_draws_what_plot_path_lengths_draws_for_the_same_result():
    result = ge.path_length_compute(seq_len=6, rho=0.8)
    view = ge.path_length_view(figsize=(3, 2), dpi=40)
    view.update(result)
    assert_same_drawing(view.ax, gf.plot_path_lengths(result, ax=_axes()))
    (rnn_label, _, rnn), (att_label, _, att) = gf.drawn(view.ax)
    assert (rnn_label, att_label) == ("RNN (relay of calls)", "attention (group call)")
    np.testing.assert_array_equal(rnn, result.rnn)
    np.testing.assert_array_equal(att, result.attention)
    assert view.caption(result) == (f"farthest token (distance 5): RNN {result.rnn[-1]:.2g}, "
                                    f"attention {result.attention[-1]:.2g}")


def test_an_exploding_profile_is_titled_and_captioned_with_its_layer():
    boom = mlp_gradients(depth=12, width=16, batch=4, activation="identity", weight_scale=1e4)
    assert boom.exploded_at is not None  # float32 overflows: 1e4^12 > 3e38
    view = ge.profile_view(figsize=(3, 2), dpi=40)
    view.update(boom)
    layer = boom.layer[boom.exploded_at]
    assert f"exploded (inf/NaN) at layer {layer}" in view.ax.get_title()
    assert view.caption(boom) == f"{boom.label}: exploded (inf/NaN) at layer {layer}"
    notes = [t.get_text() for t in view.ax.texts if t.get_visible() and t.get_text()]
    assert notes == [f"exploded at layer {layer}"]


# --------------------------------------------------------------------------------------- live explorers
LIVE = {  # explorer, a small compute with the same keywords, a move of every control
    "mlp": (ge.mlp_explorer, functools.partial(ge.mlp_compute, width=16, batch=4),
            dict(depth=4, activation="relu", init="scaled", weight_scale=2.0)),
    "path": (ge.path_length_explorer, functools.partial(ge.path_length_compute, d=4), dict(seq_len=8, rho=1.2)),
    "residual": (ge.residual_explorer, functools.partial(ge.residual_compute, width=16, batch=4),
                 dict(depth=5, residual=False, alpha=0.5)),
    "norm": (ge.norm_explorer, functools.partial(ge.norm_compute, d_model=8, n_tokens=4, batch=1),
             dict(depth=3, norm="rms", position="post")),
}


@pytest.mark.parametrize("name", sorted(LIVE))
def test_every_chapter_explorer_builds_live_and_redraws_what_its_compute_returns(name):
    make, small, moves = LIVE[name]
    calls = []

    @functools.wraps(small)  # the signature of `small`: the explorer checks its controls against it
    def compute(**values):
        calls.append(values)
        return small(**values)

    explorer = make(compute=compute)
    assert isinstance(explorer, Explorer)
    figure, lines, png = explorer.figure, list(explorer.view.chart.lines), bytes(explorer.image.value)
    (first, value), *rest = moves.items()
    explorer.widgets[first].value = value  # what a slider does in the browser
    assert bytes(explorer.image.value) != png, f"{name}: moving {first} changed nothing"
    explorer.set(**dict(rest))  # the other controls at once
    assert {c: explorer.widgets[c].value for c in moves} == pytest.approx(moves)
    assert explorer.caption.value and "Error" not in explorer.caption.value, explorer.caption.value
    assert explorer.figure is figure and explorer.view.chart.lines[: len(lines)] == lines
    assert len(calls) == 3 and calls[-1] == explorer.values  # start, first move, the rest: one compute each
    result = compute(**explorer.values)
    shown = gf.drawn(explorer.view.ax)
    if name == "path":
        np.testing.assert_array_equal(shown[0][2], result.rnn)
        np.testing.assert_array_equal(shown[1][2], result.attention)
        assert_same_drawing(explorer.view.ax, gf.plot_path_lengths(result, ax=_axes()))
    else:
        ((label, x, y),) = shown
        assert label == result.label
        np.testing.assert_array_equal(y, result.grad_norms)
        assert_same_drawing(explorer.view.ax, gf.plot_depth_profiles(result, ax=_axes()))


def test_mlp_explorer_titles_name_the_setting_and_ignore_weight_scale_unless_scaled():
    calls = []

    def compute(depth=10, activation="tanh", init="old", weight_scale=1.0):
        calls.append(weight_scale)
        return ge.mlp_compute(depth, activation, init, weight_scale, width=16, batch=4)

    explorer = ge.mlp_explorer(compute=compute)
    explorer.set(depth=4, activation="relu", init="he")
    assert explorer.view.ax.get_title().startswith("relu, he init  ·  first/last = ")
    n = len(calls)
    explorer.set(weight_scale=2.0)  # unused by "he": the cached result, no new compute
    assert len(calls) == n and explorer.timings["cached"] is True
    explorer.set(init="scaled")
    assert "weight scale 2" in explorer.view.ax.get_title() and len(calls) == n + 1


def test_chapter_explorers_refuse_a_compute_that_does_not_take_their_controls():
    def no_scale(depth=10, activation="tanh", init="old"):
        return ge.mlp_compute(depth, activation, init)

    with pytest.raises(ValueError, match="does not take: weight_scale"):
        ge.mlp_explorer(compute=no_scale)
    with pytest.raises(ValueError, match="does not take: depht"):
        ge.norm_explorer(static=True, grid={"depht": [2, 3]})


# ------------------------------------------------------------------------------------- static explorers
STATIC = {  # the controls with two values must each change the picture (α and the norm's position too, where
    # they change no number: the label says so)
    "mlp": (ge.mlp_explorer, {"depth": [3, 5], "init": ["old", "he"]}),
    "path": (ge.path_length_explorer, {"seq_len": [4, 16], "rho": [1.0, 1.2]}),
    "residual": (ge.residual_explorer, {"depth": [4], "residual": [False, True], "alpha": [0.5, 1.0]}),
    "norm": (ge.norm_explorer, {"depth": [2], "norm": ["none", "layer"], "position": ["pre", "post"]}),
}


def _index(static: StaticExplorer) -> dict:
    script = re.search(r"<script>(.*)</script>", static.html, re.S).group(1)
    return json.loads(re.search(r"var index = (\{.*?\});", script).group(1))


@pytest.mark.parametrize("name", sorted(STATIC))
def test_every_chapter_explorer_builds_static_within_budget_and_every_control_changes_the_frame(name):
    make, grid = STATIC[name]
    static = make(static=True, grid=grid)
    assert isinstance(static, StaticExplorer)
    assert static.size_bytes <= MAX_STATIC_BYTES
    assert static.n_frames == math.prod(map(len, grid.values())) == static.n_unique, name
    index, sizes = _index(static), [len(v) for v in grid.values()]
    for combo in itertools.product(*(range(n) for n in sizes)):
        for k in (k for k, n in enumerate(sizes) if n == 2):
            moved = [*combo[:k], 1 - combo[k], *combo[k + 1:]]
            assert index[",".join(map(str, combo))] != index[",".join(map(str, moved))], (name, combo, k)
    assert all(f'data-param="{key}"' in static.html for key in grid)
    if name == "path":  # it starts at the live controls' values where the grid has them: n = 16, ρ = 1
        assert 'data-param="seq_len" min="0" max="1" step="1" value="1"' in static.html
        assert 'data-param="rho" min="0" max="1" step="1" value="0"' in static.html


# ------------------------------------------------------------------------- chapter 5 (gradlib.explorers_scores)
from gradlib import explorers_scores as gx  # noqa: E402
from gradlib import exp_scores  # noqa: E402


def test_regimes_compute_is_softmax_regimes_at_the_explorers_size_and_the_setting_alone():
    sweep, at = gx.regimes_compute(logit_scale=3.0, d_k=256, scaled=False)
    direct = exp_scores.softmax_regimes(gx.MULTIPLIERS, d_k=256, scaled=False, n_rows=gx.REGIME_ROWS,
                                        n_keys=gx.REGIME_KEYS, seed=0)
    one = exp_scores.softmax_regimes((3.0,), d_k=256, scaled=False, n_rows=gx.REGIME_ROWS, n_keys=gx.REGIME_KEYS)
    for key in ("entropy", "jacobian", "saturated"):
        np.testing.assert_array_equal(sweep[key].y, direct[key].y)
        np.testing.assert_array_equal(at[key].y, one[key].y)
        np.testing.assert_array_equal(at[key].x, [3.0])


def test_regimes_view_draws_what_plot_softmax_regimes_draws_and_rings_the_setting():
    result = gx.regimes_compute(logit_scale=2.0, d_k=64, scaled=True)
    view = gx.regimes_view()
    view.update(result)
    assert_same_drawing(view.ax, gx.plot_softmax_regimes(result, ax=_axes()))
    ring = view.chart.ring
    np.testing.assert_array_equal(ring.get_xdata(), [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(ring.get_ydata(), [c.y[0] for c in result[1]])
    title = view.ax.get_title()
    assert title.startswith("d_k = 64, ÷ √d_k, m = 2:  H ") and "saturated" in title
    view.update(result[0])  # the sweep alone: no ring
    assert not ring.get_visible() and view.ax.get_title() == "d_k = 64, ÷ √d_k"


def test_key_scale_figure_marks_each_curves_turn_and_logit_growth_draws_its_bounds():
    sweep = exp_scores.key_scale_sweep(key_scales=(0.1, 1.0, 10.0, 100.0), n_queries=8, n_keys=8, d_k=8)
    ax = gx.plot_key_scale_sweep(sweep, ax=_axes())
    (_, _, row), (_, _, whole) = gf.drawn(ax)
    np.testing.assert_array_equal(row, sweep.query_grad_row.y)
    np.testing.assert_array_equal(whole, sweep.query_grad.y)
    turns = [line.get_xdata()[0] for line in ax.lines if line.get_label() == "_turn"]
    assert turns == [sweep.key_scale[sweep.turn()], sweep.key_scale[sweep.turn("query_grad")]]
    growth = exp_scores.logit_growth(weight_scales=(1.0, 2.0), d_model=8, n_heads=2, n_tokens=3, batch=1)
    ax = gx.plot_logit_growth(growth, ax=_axes())
    assert [label for label, _, _ in gf.drawn(ax)] == [c.label for c in growth]
    dashed = [line for line in ax.lines if line.get_label() == "_theory" and line.get_visible()]
    assert len(dashed) == 3  # QK-LayerNorm, QK-RMSNorm, σReparam: the plain logits have no bound


def test_scores_explorer_builds_live_and_every_control_redraws():
    calls = []

    @functools.wraps(gx.regimes_compute)
    def compute(**values):
        calls.append(values)
        return gx.regimes_compute(**values, n_rows=8, n_keys=4)

    explorer = gx.scores_explorer(compute=compute)
    assert isinstance(explorer, Explorer)
    for name, value in (("logit_scale", 10.0), ("d_k", 1024), ("scaled", False)):
        png = bytes(explorer.image.value)
        explorer.widgets[name].value = value
        assert bytes(explorer.image.value) != png, f"moving {name} changed nothing"
    assert explorer.values == {"logit_scale": 10.0, "d_k": 1024, "scaled": False} and len(calls) == 4
    assert explorer.view.ax.get_title().startswith("d_k = 1024, unscaled, m = 10:  ")
    with pytest.raises(ValueError, match="does not take: scaled"):
        gx.scores_explorer(compute=lambda logit_scale=1.0, d_k=64: None)


def test_scores_explorer_builds_static_within_budget_and_every_control_changes_the_frame():
    grid = {"logit_scale": [1.0, 10.0], "d_k": [16, 1024], "scaled": [True, False]}
    static = gx.scores_explorer(static=True, grid=grid)
    assert isinstance(static, StaticExplorer) and static.size_bytes <= MAX_STATIC_BYTES
    assert static.n_frames == 8 == static.n_unique
    index = _index(static)
    for combo in itertools.product(range(2), repeat=3):
        for k in range(3):
            moved = [*combo[:k], 1 - combo[k], *combo[k + 1:]]
            assert index[",".join(map(str, combo))] != index[",".join(map(str, moved))], (combo, k)
    assert 'data-param="logit_scale" min="0" max="1" step="1" value="0"' in static.html  # starts at m = 1
