"""Tests of gradlib.figures: every figure draws exactly the curves of its result (read back from the Axes:
labels, x, y, colours by role, theory dashed in the same colour), moves its lines in place and hides the ones a
previous ``show`` left over, marks an explosion with a visible ✕ and survives inf/NaN without a warning."""
from __future__ import annotations

import os
import warnings

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradlib import figures as gf  # noqa: E402
from gradlib import style as gs  # noqa: E402
from gradlib.exp_attention import PathLengths, RankCollapse  # noqa: E402
from gradlib.exp_rnn import RNNGradients  # noqa: E402
from gradlib.results import CurveSet, DepthProfile, curve  # noqa: E402

INF, NAN = np.inf, np.nan


# ----------------------------------------------------------------------------------- synthetic results
# The real result types, filled with chosen numbers (no experiment runs): every array differs from its reverse
# and from the other curves', so a swapped, reversed or mislabelled line cannot pass.
def profile(key="old", label="tanh, old init", role="baseline", depth=8, base=0.5, exploded=None):
    layer = np.arange(1, depth + 1)
    g = base ** (depth - layer).astype(float)
    if exploded is not None:
        g[: exploded + 1] = [NAN] + [INF] * exploded
    return DepthProfile(key=key, label=label, role=role, layer=layer, grad_norms=g, param_norms=3.0 * g[::-1] + 1.0,
                        exploded_at=exploded)


def path_result(bad=False):
    d = np.arange(10)
    rnn = 0.5 ** d
    if bad:
        rnn[6:] = [INF, NAN, 0.0, -1.0]
    return PathLengths(curves=(curve("rnn", "RNN (relay of calls)", "baseline", d, rnn),
                               curve("attention", "attention (group call)", "attention", d, 1.0 / (1 + d))),
                       seq_len=10, rho=0.9, causal=True)


def rnn_result(bad=False):
    radii = (0.9, 1.0, 1.1)
    steps = np.arange(1, 13)
    curves = []
    for rho in radii:
        y = 0.97 * rho ** steps
        if bad and rho == 1.1:
            y[8:] = INF
        curves.append(curve(f"rho={rho:g}", f"ρ = {rho:g}", "series", steps, y, theory=rho ** steps))
    return RNNGradients(curves=tuple(curves), radii=np.asarray(radii), activation="identity")


def rank_result(bad=False):
    layer = np.arange(7)
    pure = np.array([0.9, 0.5, 0.1, 1e-3, 1e-8, 1e-12, 0.0])
    if bad:
        pure[4:] = NAN
    return RankCollapse(curves=(curve("attention", "attention only", "baseline", layer, pure),
                                curve("skip", "with skip connections", "residual", layer, np.linspace(0.9, 0.7, 7)),
                                curve("scaled", "skips, branch 1/√L", "scaled", layer, np.linspace(0.9, 0.8, 7))))


def _axes():
    return Figure(figsize=(3, 2), dpi=40).add_subplot()


def _shown_y(y, logy=True):
    y = np.asarray(y, dtype=float)
    return gs.masked_log(y).filled(NAN) if logy else np.where(np.isfinite(y), y, NAN)


def assert_draws(figure, curves, *, theory_label=None):
    """The figure's Axes shows exactly `curves`, in order: label, x, y (masked), role colour, theory dashed."""
    shown = gf.drawn(figure.ax)
    assert [label for label, _, _ in shown] == [c.label for c in curves]
    taken: list[str] = []
    for i, (c, (label, x, y)) in enumerate(zip(curves, shown)):
        np.testing.assert_array_equal(x, np.asarray(c.x, dtype=float), err_msg=c.label)
        np.testing.assert_array_equal(y, _shown_y(c.y, figure.logy), err_msg=c.label)
        line, theory = figure.lines[i], figure.theories[i]
        color = to_hex(line.get_color())
        if c.role in gs.ROLE_COLORS and gs.ROLE_COLORS[c.role].lower() not in taken:
            assert color == gs.ROLE_COLORS[c.role].lower(), f"{c.label}: coloured {color}, its role is {c.role}"
        assert color not in taken, f"{c.label} shares its colour with an earlier curve"
        taken.append(color)
        assert theory.get_visible() == (c.theory is not None)
        if c.theory is not None:
            assert theory.get_linestyle() == "--" and to_hex(theory.get_color()) == color
            np.testing.assert_array_equal(np.asarray(theory.get_xdata(), float), np.asarray(c.x, float))
            np.testing.assert_array_equal(np.asarray(theory.get_ydata(), float), _shown_y(c.theory, figure.logy))
    legend = figure.ax.get_legend()
    if figure.legend_loc is not None and (len(curves) > 1 or theory_label):
        texts = [t.get_text() for t in legend.get_texts()]
        assert texts == [c.label for c in curves] + ([theory_label] if theory_label else [])


def _crosses(ax):
    return [(float(line.get_xdata()[0]), to_hex(line.get_color())) for line in ax.lines
            if line.get_marker() == "X" and line.get_visible()]


def _notes(ax):
    return [t.get_text() for t in ax.texts if t.get_visible() and t.get_text()]


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    yield
    plt.close("all")


# ----------------------------------------------------------------------------------------- each figure
def test_depth_profile_figure_draws_grad_norms_against_the_layer():
    profiles = [profile(), profile("he", "relu, he init", "series", base=1.3)]
    fig = gf.DepthProfileFigure(_axes())
    fig.show(profiles)
    assert fig.ax.get_yscale() == "log"
    shown = gf.drawn(fig.ax)
    for p, (label, x, y) in zip(profiles, shown):  # from the profile's own arrays, not through p.curve
        assert label == p.label
        np.testing.assert_array_equal(x, p.layer.astype(float))
        np.testing.assert_array_equal(y, p.grad_norms)
        assert not np.allclose(y, p.param_norms)  # the output gradient, never the parameter gradient
    assert_draws(fig, [p.curve for p in profiles])
    fig.show(profiles[0])  # one profile, not in a list
    assert [label for label, _, _ in gf.drawn(fig.ax)] == [profiles[0].label]


def test_path_length_figure_draws_the_rnn_then_attention_in_their_role_colours():
    result = path_result()
    ax = gf.plot_path_lengths(result, ax=_axes())
    (rnn_label, rnn_x, rnn_y), (att_label, att_x, att_y) = gf.drawn(ax)
    assert (rnn_label, att_label) == ("RNN (relay of calls)", "attention (group call)")
    np.testing.assert_array_equal(rnn_y, result.rnn)
    np.testing.assert_array_equal(att_y, result.attention)
    np.testing.assert_array_equal(rnn_x, result.distance)
    rnn_line, att_line = [line for line in ax.lines if line.get_visible() and not line.get_label().startswith("_")]
    assert to_hex(rnn_line.get_color()) == gs.ROLE_COLORS["baseline"].lower()
    assert to_hex(att_line.get_color()) == gs.ROLE_COLORS["attention"].lower()
    assert "n = 10 tokens" in ax.get_title() and "ρ = 0.9" in ax.get_title()
    fig = gf.PathLengthFigure(_axes())
    fig.show(result, title="mine")
    assert_draws(fig, list(result.curves))
    assert fig.ax.get_title() == "mine"


def test_rnn_figure_draws_each_radius_with_its_theory_dashed_in_the_same_colour():
    result = rnn_result()
    fig = gf.RNNFigure(_axes())
    fig.show(result)
    assert_draws(fig, list(result.curves), theory_label=r"theory $\rho^{T-t}$")
    assert fig.ax.get_title() == "Gradient through time (identity RNN)"
    dots = gf.RNNFigure(_axes(), dots=True)
    dots.show(result)
    assert all(line.get_linestyle() == "None" and line.get_marker() == "o" for line in dots.lines)
    assert_draws(dots, list(result.curves), theory_label=r"theory $\rho^{T-t}$")


def test_rank_collapse_figure_draws_every_variant():
    result = rank_result()
    fig = gf.RankCollapseFigure(_axes())
    fig.show(result)
    assert_draws(fig, list(result.curves))
    assert fig.ax.get_title() == "Rank collapse of pure attention"


@pytest.mark.parametrize("plot, result", [
    (gf.plot_depth_profiles, [profile(), profile("x", "xavier", "series", base=0.9)]),
    (gf.plot_rnn_gradients, rnn_result()),
    (gf.plot_path_lengths, path_result()),
    (gf.plot_rank_collapse, rank_result()),
])
def test_every_plot_function_draws_on_the_given_axes_and_returns_it(plot, result):
    ax = _axes()
    assert plot(result, ax=ax, title="given title") is ax
    assert gf.drawn(ax) and ax.get_title() == "given title"
    ax.figure.canvas.draw()


def test_plot_without_ax_makes_a_white_pyplot_figure():
    ax = gf.plot_path_lengths(path_result())
    assert ax.figure in [plt.figure(n) for n in plt.get_fignums()]
    assert ax.figure.get_facecolor()[:3] == (1.0, 1.0, 1.0)


# ------------------------------------------------------------------------------------- in place, leftovers
def test_show_moves_the_same_lines_and_hides_the_ones_a_previous_show_left_over():
    fig = gf.RankCollapseFigure(_axes())
    fig.show(rank_result())
    lines = list(fig.lines)
    n_lines = len(fig.ax.lines)
    fewer = RankCollapse(curves=(curve("skip", "with skip connections", "residual", np.arange(4),
                                       [0.5, 0.4, 0.3, 0.2]),))
    fig.show(fewer)
    assert fig.lines[:1] == lines[:1]  # moved, not rebuilt
    assert len(fig.ax.lines) == n_lines  # no line added
    assert_draws(fig, list(fewer.curves))
    assert not any(line.get_visible() for line in fig.lines[1:] + fig.theories[1:])
    assert fig.ax.get_legend() is None  # one curve: no legend
    assert fig.ax.get_xlim()[1] < 4  # the limits follow the new data
    fig.show(rank_result())  # and back: the hidden lines return
    assert fig.lines == lines
    assert_draws(fig, list(rank_result().curves))


def test_a_curve_without_theory_hides_the_theory_line_left_over_from_a_previous_show():
    fig = gf.RNNFigure(_axes())
    fig.show(rnn_result())
    plain = RNNGradients(curves=(curve("a", "ρ = 0.5", "series", np.arange(1, 5), 0.5 ** np.arange(1, 5)),),
                         radii=np.array([0.5]), activation="tanh")
    fig.show(plain)
    assert not any(t.get_visible() for t in fig.theories)
    assert_draws(fig, list(plain.curves))


# -------------------------------------------------------------------------------------------- explosions
def test_exploded_at_is_marked_with_a_visible_cross_and_a_note_naming_the_layer():
    boom = profile("boom", "weight scale 8", "series", base=3.0, exploded=2)  # 0-based index 2 = layer 3
    fig = gf.DepthProfileFigure(_axes())
    fig.show([profile(), boom])
    colors = {label: to_hex(line.get_color()) for line, (label, _, _) in zip(fig.lines, gf.drawn(fig.ax))}
    assert _crosses(fig.ax) == [(3.0, colors["weight scale 8"])]
    assert _notes(fig.ax) == ["exploded at layer 3"]
    note = next(t for t in fig.ax.texts if t.get_visible() and t.get_text())
    assert to_hex(note.get_color()) == colors["weight scale 8"]
    fig.show([profile()])  # nothing exploded: the ✕ goes away
    assert _crosses(fig.ax) == [] and _notes(fig.ax) == []


def test_two_exploded_curves_get_two_crosses_in_separate_rows():
    a = profile("a", "a", "baseline", base=3.0, exploded=0)
    b = profile("b", "b", "series", base=3.0, exploded=4)
    fig = gf.DepthProfileFigure(_axes())
    fig.show([a, b])
    assert sorted(x for x, _ in _crosses(fig.ax)) == [1.0, 5.0]
    assert sorted(_notes(fig.ax)) == ["exploded at layer 1", "exploded at layer 5"]
    rows = {float(line.get_ydata()[0]) for line in fig.ax.lines if line.get_marker() == "X" and line.get_visible()}
    assert len(rows) == 2


@pytest.mark.parametrize("plot, result, crossed", [
    (gf.plot_depth_profiles, [profile(), profile("boom", "weight scale 8", "series", base=3.0, exploded=3)], True),
    (gf.plot_rnn_gradients, rnn_result(bad=True), True),
    (gf.plot_path_lengths, path_result(bad=True), True),
    (gf.plot_rank_collapse, rank_result(bad=True), True),
])
def test_inf_and_nan_are_masked_without_warnings_and_the_explosion_is_marked(plot, result, crossed):
    ax = _axes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value", no "cannot be log-scaled"
        plot(result, ax=ax)
        ax.figure.canvas.draw()
    lo, hi = ax.get_ylim()
    assert np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi
    for line in ax.lines:  # nothing non-finite or non-positive reaches the log axis as a value
        y = np.asarray(line.get_ydata(), dtype=float)
        assert np.all(np.isnan(y) | ((y > 0) & np.isfinite(y))), line.get_label()
    assert bool(_crosses(ax)) == crossed
    assert all(n.startswith("exploded at ") for n in _notes(ax))


def test_an_all_nan_curve_draws_an_empty_axis_with_its_cross_instead_of_crashing():
    layer = np.arange(1, 6)
    dead = DepthProfile(key="dead", label="relu, weight scale 100", role="series", layer=layer,
                        grad_norms=np.full(5, NAN), param_norms=np.full(5, NAN), exploded_at=0)
    ax = _axes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gf.plot_depth_profiles(dead, ax=ax)
        ax.figure.canvas.draw()
    assert ax.get_ylim() == pytest.approx((0.1, 10.0))
    assert ax.get_xlim()[0] < 1 and ax.get_xlim()[1] > 5
    assert _notes(ax) == ["exploded at layer 1"]


def test_a_linear_axis_masks_inf_in_curves_and_theory_too():
    curves = [curve("a", "a", "baseline", [0, 1, 2, 3], [1.0, INF, 2.0, -1.0], theory=[1.0, 2.0, INF, NAN])]
    fig = gf.CurveFigure(_axes(), xlabel="x", ylabel="y", logy=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.update(curves)
        fig.ax.figure.canvas.draw()
    np.testing.assert_array_equal(gf.drawn(fig.ax)[0][2], [1.0, NAN, 2.0, -1.0])  # negatives stay on a linear axis
    np.testing.assert_array_equal(np.asarray(fig.theories[0].get_ydata(), float), [1.0, 2.0, NAN, NAN])
    assert fig.ax.get_ylim()[0] < -1.0 < 2.0 < fig.ax.get_ylim()[1]
    assert _notes(fig.ax) == ["exploded at x = 1"]


def test_a_log_x_figure_survives_its_first_show_without_warnings():
    fig = gf.CurveFigure(_axes(), xlabel="x", ylabel="y", logx=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.update([curve("a", "a", "baseline", [1, 10, 100], [1.0, 2.0, 3.0])])
        fig.ax.figure.canvas.draw()
    lo, hi = fig.ax.get_xlim()
    assert 0 < lo < 1 and hi > 100


def test_drawn_lists_only_visible_labelled_lines():
    ax = _axes()
    ax.plot([1, 2], [3, 4], label="shown")
    ax.plot([1, 2], [3, 4], label="_hidden by name")
    (off,) = ax.plot([1, 2], [3, 4], label="off")
    off.set_visible(False)
    ((label, x, y),) = gf.drawn(ax)
    assert label == "shown"
    np.testing.assert_array_equal(x, [1, 2])
    np.testing.assert_array_equal(y, [3, 4])


def test_curve_set_of_the_figures_keeps_its_order():
    # the figures draw in the result's order: a CurveSet's order is the drawing order
    result = CurveSet(tuple(curve(k, k, "series", [1, 2], [1.0, 2.0 + i]) for i, k in enumerate("cab")))
    fig = gf.CurveFigure(_axes(), xlabel="", ylabel="")
    fig.update(list(result))
    assert [label for label, _, _ in gf.drawn(fig.ax)] == ["c", "a", "b"]
    assert [to_hex(line.get_color()) for line in fig.lines] == [c.lower() for c in gs.CYCLE[:3]]
