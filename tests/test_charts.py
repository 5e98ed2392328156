"""Tests of gradlib.charts: the figures of chapters 2–4 draw exactly the curves of their results (read back from
the Axes), colour them by role, mask inf/NaN without warnings, and the norm table shows report.table_cell of
every value."""
from __future__ import annotations

import os
import warnings

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex, to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradlib import charts as gc  # noqa: E402
from gradlib import figures as gf  # noqa: E402
from gradlib import report  # noqa: E402
from gradlib import style as gs  # noqa: E402
from gradlib.exp_attention import QKGradients  # noqa: E402
from gradlib.exp_norms import ActivationStats, NormComparison  # noqa: E402
from gradlib.exp_placement import PrePostSweep  # noqa: E402
from gradlib.exp_residual import ResidualScale, StreamNorms  # noqa: E402
from gradlib.exp_scores import SoftmaxSaturation  # noqa: E402
from gradlib.results import CurveSet, curve  # noqa: E402

INF, NAN = np.inf, np.nan


# ----------------------------------------------------------------------------------- synthetic results
def qk_result(bad=False, layer="last"):
    depth = [1, 2, 4, 8]
    ratio = np.array([1.0, 0.3, 0.01, 1e-6])
    if bad:
        ratio[2:] = [NAN, 0.0]
    return QKGradients(
        curves=(curve("attention", "attention only", "baseline", depth, ratio),
                curve("scaled", "skips, branch 1/√L", "scaled", depth, [1.0, 0.9, 0.8, 0.7])),
        cosine=CurveSet((curve("attention", "attention only", "baseline", depth, [0.2, 0.7, 0.99, 1.0]),
                         curve("scaled", "skips, branch 1/√L", "scaled", depth, [0.3, 0.31, 0.32, 0.33]))),
        layer=str(layer))


def saturation_result(bad=False):
    d_k = [16, 64, 256, 1024]

    def measure(scaled, unscaled):
        return CurveSet((curve("sqrt_dk", "scaled by 1/√d_k", "attention", d_k, scaled),
                         curve("none", "unscaled", "baseline", d_k, unscaled)))

    frac = [0.0, 0.2, 0.5, INF if bad else 0.71]
    jac = [0.3, 0.1, 0.01, NAN if bad else 1e-4]
    return SoftmaxSaturation(saturated_fraction=measure([0.0, 0.01, 0.02, 0.03], frac),
                             jacobian_norm=measure([0.3, 0.29, 0.28, 0.27], jac),
                             query_grad_norm=measure([0.5, 0.4, 0.3, 0.2], [1.0, 0.5, 0.1, 1e-3]), threshold=0.99)


def spectrum_result(bad=False, variant="rezero"):
    sv = np.array([[1, 1, 1], [1.5, 1.2, 1.1], [4, 2, 1.5], [20, 8, 3]], dtype=float)
    if bad:
        sv[3] = [INF, INF, NAN]
    return ResidualScale(alphas=np.array([0.0, 0.1, 0.5, 1.0]), singular_values=sv, variant=variant)


def stream_result(bad=False):
    layer = np.arange(9)
    grows = np.sqrt(1 + layer) * 8
    if bad:
        grows[6:] = INF
    return StreamNorms(curves=(curve("none", "residual, no norm", "baseline", layer, grows),
                               curve("pre", "residual + Pre-LN", "norm", layer, grows / 2 + 1),
                               curve("post", "residual + Post-LN", "series", layer, np.full(9, 8.0))))


def activation_result(bad=False):
    layer = np.arange(7)
    std = 1.5 ** layer
    if bad:
        std[5:] = INF
    return ActivationStats(
        std=CurveSet((curve("none", "no norm", "baseline", layer, std),
                      curve("layer", "LayerNorm", "norm", layer, np.linspace(1.0, 1.1, 7)))),
        mean=CurveSet((curve("none", "no norm", "baseline", layer, np.linspace(-0.5, 0.3, 7)),
                       curve("layer", "LayerNorm", "norm", layer, np.linspace(0.01, 0.0, 7)))),
        norm_position="post")


def pre_post_result(bad=False):
    depths = np.array([2, 4, 8, 16])
    pre = 2.0 / np.sqrt(depths)
    post = np.array([2.0, 2.1, 2.2, INF if bad else 2.3])
    per_layer_post = np.r_[np.full(12, 2.0), [INF, INF, NAN, 1.0]] if bad else np.linspace(2.0, 1.5, 16)
    return PrePostSweep(depths=depths,
                        per_seed={"pre": np.stack([pre * 0.9, pre * 1.1]), "post": np.stack([post * 0.8, post * 1.2])},
                        hidden_per_seed={"pre": np.stack([np.sqrt(depths)] * 2), "post": np.ones((2, 4)) * 3.0},
                        per_layer={"pre": np.geomspace(3.0, 0.5, 16), "post": per_layer_post},
                        implementation="gradlib")


def norm_result():
    return NormComparison(changes={
        "batch of one token (training)": {"batch": "fails: x must hold at least 2 tokens", "layer": 0.0, "rms": 0.0},
        "padding": {"batch": 0.61234, "layer": 0.0, "rms": 1.234e-7},
    })


def _axes():
    return Figure(figsize=(3, 2), dpi=40).add_subplot()


def _shown_y(y, logy=True):
    y = np.asarray(y, dtype=float)
    return gs.masked_log(y).filled(NAN) if logy else np.where(np.isfinite(y), y, NAN)


def assert_draws(figure, curves):
    """The figure's Axes shows exactly `curves`, in order: label, x, y (masked), role colour, theory dashed."""
    shown = gf.drawn(figure.ax)
    assert [label for label, _, _ in shown] == [c.label for c in curves]
    taken: list[str] = []
    for i, (c, (label, x, y)) in enumerate(zip(curves, shown)):
        np.testing.assert_array_equal(x, np.asarray(c.x, dtype=float), err_msg=c.label)
        np.testing.assert_array_equal(y, _shown_y(c.y, figure.logy), err_msg=c.label)
        color = to_hex(figure.lines[i].get_color())
        if c.role in gs.ROLE_COLORS and gs.ROLE_COLORS[c.role].lower() not in taken:
            assert color == gs.ROLE_COLORS[c.role].lower(), f"{c.label}: coloured {color}, its role is {c.role}"
        assert color not in taken
        taken.append(color)
        theory = figure.theories[i]
        assert theory.get_visible() == (c.theory is not None)
        if c.theory is not None:
            assert theory.get_linestyle() == "--" and to_hex(theory.get_color()) == color
            np.testing.assert_array_equal(np.asarray(theory.get_ydata(), float), _shown_y(c.theory, figure.logy))


def _crosses(ax):
    return [float(line.get_xdata()[0]) for line in ax.lines if line.get_marker() == "X" and line.get_visible()]


def _notes(ax):
    return [t.get_text() for t in ax.texts if t.get_visible() and t.get_text()]


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------------ each chart
def test_qk_figure_draws_the_ratio_on_log_y_and_the_cosine_dotted_on_the_twin_axis():
    result = qk_result()
    fig = gc.QKFigure(_axes())
    fig.show(result)
    assert fig.ax.get_yscale() == "log"
    assert_draws(fig, list(result.curves))
    assert_draws(fig.cosine, list(result.cosine))
    assert all(line.get_linestyle() == ":" for line in fig.cosine.lines)
    assert fig.cosine.ax.get_ylim() == pytest.approx((-0.02, 1.02))
    for main, twin in zip(fig.lines, fig.cosine.lines):  # a variant keeps its colour on both axes
        assert main.get_color() == twin.get_color()
    assert fig.cosine.ax.get_legend() is None
    assert not any(line.get_visible() for line in fig.cosine.ax.get_ygridlines())  # one grid: the left axis'


@pytest.mark.parametrize("layer, expected", [("last", "(last layer)"), ("first", "(first layer)"), (3, "(layer 3)")])
def test_qk_figure_y_label_names_the_layer_the_ratio_was_measured_at(layer, expected):
    ax = gc.plot_qk_gradients(qk_result(layer=layer), ax=_axes())
    assert ax.get_ylabel().endswith(expected)
    assert ax.get_ylabel().count("layer") == 1


@pytest.mark.parametrize("which, logy", [("saturated_fraction", False), ("jacobian_norm", True),
                                         ("query_grad_norm", True)])
def test_saturation_figure_draws_the_chosen_measure_against_d_k_on_log2_x(which, logy):
    result = saturation_result()
    fig = gc.SaturationFigure(_axes(), which=which, threshold=result.threshold)
    fig.show(result)
    assert (fig.ax.get_yscale() == "log") == logy and fig.ax.get_xscale() == "log"
    assert fig.ax.xaxis.get_transform().base == 2
    assert_draws(fig, list(getattr(result, which)))
    if which == "saturated_fraction":
        assert "0.99" in fig.ax.get_ylabel()
        assert fig.ax.get_ylim() == pytest.approx((-0.03, 1.03))
    ax = gc.plot_softmax_saturation(result, ax=_axes(), which=which)
    assert [label for label, _, _ in gf.drawn(ax)] == ["scaled by 1/√d_k", "unscaled"]


def test_spectrum_figure_draws_every_singular_value_and_the_identity():
    result = spectrum_result()
    fig = gc.SpectrumFigure(_axes())
    fig.show(result)
    assert_draws(fig, list(result.curves))
    shown = gf.drawn(fig.ax)
    for i in range(3):  # read against the raw singular values, not only through result.curves
        np.testing.assert_array_equal(shown[i][2], result.singular_values[:, i])
        np.testing.assert_array_equal(shown[i][1], result.alphas)
    assert shown[3][0] == "identity (σ = 1)"
    np.testing.assert_array_equal(shown[3][2], np.ones(4))
    alphas = [line.get_alpha() for line in fig.lines[:3]]
    assert alphas == sorted(alphas, reverse=True) and alphas[0] > alphas[-1]  # σ1 boldest
    assert "LN" not in fig.ax.get_xlabel()
    deep = gc.plot_residual_scale(spectrum_result(variant="deepnorm"), ax=_axes())
    assert "LN" in deep.get_xlabel() and deep.get_title().startswith("DeepNorm")


def test_narrow_log_axis_of_a_spectrum_is_labelled_with_plain_numbers():
    ax = gc.plot_residual_scale(spectrum_result(), ax=_axes())  # σ from 1 to 20
    ax.figure.canvas.draw()
    lo, hi = sorted(ax.get_ylim())
    labels = [t.get_text() for minor in (False, True)
              for loc, t in zip(ax.yaxis.get_ticklocs(minor=minor), ax.yaxis.get_ticklabels(minor=minor))
              if t.get_text() and lo <= loc <= hi]
    assert {"1", "10"} <= set(labels), labels
    assert all(float(t) > 0 for t in labels)  # no 10ⁿ


@pytest.mark.parametrize("log", [False, True])
def test_stream_figure_draws_every_variant_from_zero_or_on_log_y(log):
    result = stream_result()
    fig = gc.StreamFigure(_axes(), log=log)
    fig.show(result)
    assert_draws(fig, list(result.curves))
    assert (fig.ax.get_yscale() == "log") == log
    if not log:
        assert fig.ax.get_ylim()[0] == 0.0


@pytest.mark.parametrize("which", ["std", "mean"])
def test_activation_figure_draws_the_std_on_log_y_or_the_mean_with_a_zero_line(which):
    result = activation_result()
    fig = gc.ActivationFigure(_axes(), which=which)
    fig.show(result)
    assert_draws(fig, list(getattr(result, which)))
    assert (fig.ax.get_yscale() == "log") == (which == "std")
    zero_lines = [line for line in fig.ax.lines if line.get_label().startswith("_child")]
    assert len(zero_lines) == (which == "mean")


def test_pre_post_figure_draws_both_curves_the_guide_and_every_seed_in_its_curves_colour():
    result = pre_post_result()
    fig = gc.PrePostFigure(_axes())
    fig.show(result)
    assert fig.ax.get_xscale() == "log" and fig.ax.get_yscale() == "log"
    assert_draws(fig, list(result.curves))
    shown = dict((label, y) for label, _, y in gf.drawn(fig.ax))
    np.testing.assert_allclose(shown["Pre-LN"], result.per_seed["pre"].mean(axis=0))
    np.testing.assert_allclose(shown["Post-LN"], result.per_seed["post"].mean(axis=0))
    guide = fig.theories[0]  # ∝ 1/√L, through Pre-LN's first point
    slope = np.polyfit(np.log(guide.get_xdata()), np.log(np.asarray(guide.get_ydata(), float)), 1)[0]
    assert slope == pytest.approx(-0.5)
    assert [t.get_text() for t in fig.ax.get_legend().get_texts()] == ["Pre-LN", "Post-LN", r"$\propto 1/\sqrt{L}$"]
    colors = {c.key: to_hex(line.get_color()) for c, line in zip(result.curves, fig.lines)}
    assert colors == {"pre": gs.ROLE_COLORS["norm"].lower(), "post": gs.ROLE_COLORS["baseline"].lower()}
    seeds = [line for line in fig.ax.lines if line.get_label() == "_seeds" and line.get_visible()]
    assert len(seeds) == 2
    for line, (key, per_seed) in zip(seeds, result.per_seed.items()):
        assert to_hex(line.get_color()) == colors[key], key
        np.testing.assert_array_equal(np.asarray(line.get_ydata(), float), per_seed.ravel())
        np.testing.assert_array_equal(np.asarray(line.get_xdata(), float), np.tile(result.depths, 2))
    assert [t.get_text() for t in fig.ax.get_xticklabels()] == ["2", "4", "8", "16"]


def test_pre_post_hidden_norm_and_per_layer_views():
    result = pre_post_result()
    fig = gc.PrePostFigure(_axes(), which="hidden_norm")
    fig.show(result)
    shown = gf.drawn(fig.ax)
    assert [label for label, _, _ in shown] == ["Pre-LN", "Post-LN"]
    np.testing.assert_allclose(shown[0][2], np.sqrt(result.depths))
    np.testing.assert_allclose(shown[1][2], np.full(4, 3.0))
    np.testing.assert_array_equal(shown[0][1], result.depths)
    fig = gc.PrePostFigure(_axes(), which="per_layer")
    fig.show(result)
    shown = gf.drawn(fig.ax)
    np.testing.assert_array_equal(shown[0][1], np.arange(1, 17))
    np.testing.assert_array_equal(shown[0][2], result.per_layer["pre"])
    np.testing.assert_array_equal(shown[1][2], result.per_layer["post"])
    assert fig.ax.get_xscale() == "linear"
    assert not any(line.get_visible() and len(line.get_xdata()) for line in fig.seed_lines)


def test_pre_post_per_layer_marks_the_exploded_block():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = gc.plot_pre_post(pre_post_result(bad=True), ax=_axes(), which="per_layer")
        ax.figure.canvas.draw()
    assert _crosses(ax) == [13.0]
    assert _notes(ax) == ["exploded at block 13"]


def test_unknown_which_raises_value_error_naming_the_choices():
    with pytest.raises(ValueError, match="which must be one of"):
        gc.plot_softmax_saturation(saturation_result(), ax=_axes(), which="entropy")
    with pytest.raises(ValueError, match="which must be one of 'std', 'mean'"):
        gc.plot_activation_stats(activation_result(), ax=_axes(), which="var")
    with pytest.raises(ValueError, match="which must be one of"):
        gc.plot_pre_post(pre_post_result(), ax=_axes(), which="every")


CASES = {
    "plot_qk_gradients": (gc.plot_qk_gradients, qk_result, {}),
    "plot_softmax_saturation": (gc.plot_softmax_saturation, saturation_result, {"which": "jacobian_norm"}),
    "plot_softmax_saturation_fraction": (gc.plot_softmax_saturation, saturation_result, {}),
    "plot_residual_scale": (gc.plot_residual_scale, spectrum_result, {}),
    "plot_stream_norms": (gc.plot_stream_norms, stream_result, {}),
    "plot_activation_stats": (gc.plot_activation_stats, activation_result, {}),
    "plot_pre_post": (gc.plot_pre_post, pre_post_result, {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_chart_masks_inf_and_nan_without_warnings_and_marks_the_explosion(name):
    plot, make, kw = CASES[name]
    ax = _axes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plot(make(bad=True), ax=ax, **kw) is ax
        ax.figure.canvas.draw()
    lo, hi = ax.get_ylim()
    assert np.isfinite(lo) and np.isfinite(hi)
    for line in ax.lines:
        y = np.asarray(line.get_ydata(), dtype=float)
        assert not np.any(np.isinf(y)), line.get_label()
    if name != "plot_qk_gradients":  # its NaN is a 0/0 ratio, a gap; the others blow up
        assert _crosses(ax), f"{name} did not mark the exploded entry with an ✕"
        assert all(n.startswith("exploded at ") for n in _notes(ax))


def test_charts_leave_the_global_rcparams_untouched():
    before = {k: str(v) for k, v in matplotlib.rcParams.items()}
    for plot, make, kw in CASES.values():
        plot(make(), ax=_axes(), **kw)
    gc.plot_norm_table(norm_result(), ax=_axes())
    assert {k: str(v) for k, v in matplotlib.rcParams.items()} == before


# ------------------------------------------------------------------------------------------- norm table
def test_norm_table_cells_are_report_table_cell_of_the_values_with_display_names():
    result = norm_result()
    ax = _axes()
    assert gc.plot_norm_table(result, ax=ax) is ax
    (table,) = ax.tables
    cells = table.get_celld()
    kinds = ["batch", "layer", "rms"]
    assert [cells[0, c].get_text().get_text() for c in range(3)] == [report.NORM_COLUMNS[k] for k in kinds]
    for r, (test, row) in enumerate(result.changes.items(), start=1):
        assert cells[r, -1].get_text().get_text() == test
        assert [cells[r, c].get_text().get_text() for c in range(3)] == [report.table_cell(row[k]) for k in kinds]
    assert [cells[1, c].get_text().get_text() for c in range(3)] == ["fails", "0", "0"]
    assert [cells[2, c].get_text().get_text() for c in range(3)] == ["0.61", "0", "1.2e-07"]
    # what changed (or failed) is tinted apart from what did not
    changed, same = to_rgba(gs.ROLE_COLORS["baseline"], 0.16), to_rgba(gs.ROLE_COLORS["norm"], 0.12)
    assert cells[1, 0].get_facecolor() == pytest.approx(changed)
    assert cells[2, 0].get_facecolor() == pytest.approx(changed)
    assert cells[2, 2].get_facecolor() == pytest.approx(changed)
    assert cells[1, 1].get_facecolor() == pytest.approx(same)
    assert not ax.axison
    three = gc.plot_norm_table(result, ax=_axes(), digits=3)
    assert three.tables[0].get_celld()[2, 0].get_text().get_text() == "0.612"
    ax.figure.canvas.draw()
    with pytest.raises(ValueError, match="digits"):
        gc.plot_norm_table(result, ax=_axes(), digits=0)


def test_norm_table_shows_only_the_norms_the_result_has():
    result = NormComparison(changes={"padding": {"layer": 0.0, "rms": 0.5}})
    (table,) = gc.plot_norm_table(result, ax=_axes()).tables
    cells = table.get_celld()
    assert [cells[0, c].get_text().get_text() for c in range(2)] == ["LayerNorm", "RMSNorm"]
    assert [cells[1, c].get_text().get_text() for c in range(2)] == ["0", "0.5"]


# ----------------------------------------------------------------------------- with the real experiments
@pytest.fixture(scope="module")
def real():
    from gradlib import exp_attention as A
    from gradlib import exp_norms as N
    from gradlib import exp_placement as P
    from gradlib import exp_residual as R
    from gradlib import exp_scores as S

    return {
        "qk": A.qk_gradients(depths=(1, 3), n_tokens=4, d=8),
        "saturation": S.softmax_saturation(d_ks=(4, 64), n_rows=16, n_keys=8),
        "spectrum": R.residual_scale_spectrum(alphas=(0.0, 0.5), n_layers=2, d_model=8, k=2, n_tokens=2),
        "stream": R.residual_stream_norms(depth=3, d_model=8, n_tokens=4, batch=1),
        "activation": N.activation_stats(depth=3, d_model=8, n_tokens=4, batch=1),
        "pre_post": P.pre_post_ln(depths=(1, 2), d_model=8, n_heads=2, d_ff=16, seeds=(0, 1), batch=1, seq_len=4),
        "norms": N.norm_comparison(d=4),
    }


def test_charts_draw_exactly_the_curves_of_the_real_experiments_small_results(real):
    figures = [
        (gc.QKFigure(_axes()), real["qk"], list(real["qk"].curves)),
        (gc.SaturationFigure(_axes(), which="jacobian_norm"), real["saturation"],
         list(real["saturation"].jacobian_norm)),
        (gc.SpectrumFigure(_axes()), real["spectrum"], list(real["spectrum"].curves)),
        (gc.StreamFigure(_axes()), real["stream"], list(real["stream"].curves)),
        (gc.ActivationFigure(_axes()), real["activation"], list(real["activation"].std)),
        (gc.PrePostFigure(_axes()), real["pre_post"], list(real["pre_post"].curves)),
    ]
    for fig, result, curves in figures:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fig.show(result)
            fig.ax.figure.canvas.draw()
        assert_draws(fig, curves)
    assert figures[0][0].ax.get_ylabel().endswith("(last layer)")  # qk_gradients measures the last layer
    (table,) = gc.plot_norm_table(real["norms"], ax=_axes()).tables
    cells = table.get_celld()
    for r, row in enumerate(real["norms"].changes.values(), start=1):
        assert [cells[r, c].get_text().get_text() for c in range(3)] == [
            report.table_cell(row[k]) for k in ("batch", "layer", "rms")]


# ----------------------------------------------------------------------------------- attention weights
def test_attention_weights_heat_map_shows_every_weight_in_its_cell_with_the_token_labels():
    import torch

    p = torch.softmax(torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0], [5.0, 0.0, -1.0]]), dim=-1)  # (3, 3)
    ax = gc.plot_attention_weights(p, ["the", "cat", "sat"], ax=Figure().add_subplot())
    (image,) = ax.images
    np.testing.assert_array_equal(image.get_array(), p.numpy())
    assert image.get_clim() == (0.0, 1.0)  # one scale for every figure: 0 white, 1 full colour
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"{v:.2f}" for v in p.numpy().ravel()]  # row by row, cell (i, j) at x = j, y = i
    assert [(t.get_position()) for t in ax.texts][1] == (1, 0)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["the", "cat", "sat"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["the", "cat", "sat"]
    assert to_hex(image.cmap(1.0)) == gs.ROLE_COLORS["attention"].lower() and to_hex(image.cmap(0.0)) == "#ffffff"
    assert not any(line.get_visible() for line in ax.get_xgridlines())
    ax.figure.canvas.draw()


def test_attention_weights_keys_default_to_numbers_when_not_square_and_bad_input_is_named():
    ax = gc.plot_attention_weights(np.full((2, 4), 0.25), ax=Figure().add_subplot(), digits=1)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3", "4"]
    assert ax.texts[0].get_text() == "0.2"  # one decimal
    for bad, name in ((np.ones(3), "weights"), (np.full((2, 2), 1.5), "weights"), (np.full((2, 2), np.nan), "weights")):
        with pytest.raises(ValueError, match=f"^{name}"):
            gc.plot_attention_weights(bad, ax=Figure().add_subplot())
    with pytest.raises(ValueError, match="^tokens"):
        gc.plot_attention_weights(np.full((2, 2), 0.5), ["a"], ax=Figure().add_subplot())
    with pytest.raises(ValueError, match="^keys"):
        gc.plot_attention_weights(np.full((2, 2), 0.5), keys=["a", "b", "c"], ax=Figure().add_subplot())
