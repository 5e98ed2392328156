"""Tests of gradlib.plotting: every plot draws on the given axes, survives exploded (inf/NaN) data and marks
where a run exploded; the style never leaks into matplotlib's global rcParams."""
from __future__ import annotations

import os
import warnings
from types import SimpleNamespace as NS

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import patches  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradlib import plotting as gp  # noqa: E402

INF, NAN = np.inf, np.nan


# ------------------------------------------------------------------------------------------- fake results
# Duck-typed stand-ins for gradlib.experiments' result dataclasses (same field names), so these tests do not
# depend on the experiments; `bad=True` puts inf/NaN where an exploding run would.
def depth_profiles(bad: bool = False):
    layer = np.arange(1, 9)
    g = 0.5 ** (8 - layer).astype(float)
    exploded = np.array([INF, INF, NAN, 1e30, 1e20, 1e10, 1e5, 1.0]) if bad else 2.0 ** (8 - layer)
    return [
        NS(label="old init", layer=layer, grad_norms=g, param_norms=g, exploded_at=None, ratio=g[0] / g[-1]),
        NS(label="weight scale 8", layer=layer, grad_norms=exploded, param_norms=exploded,
           exploded_at=0 if bad else None, ratio=exploded[0] / exploded[-1]),
    ]


def rnn_gradients(bad: bool = False):
    radii = np.array([0.9, 1.0, 1.1])
    steps = np.arange(20)
    theory = radii[:, None] ** steps
    norms = theory.copy()
    if bad:
        norms[2, 15:] = INF
        norms[1, 10] = NAN
    return NS(radii=radii, steps=steps, norms=norms, theory=theory, activation="identity")


def path_lengths(bad: bool = False):
    d = np.arange(16)
    rnn = 0.5**d
    if bad:
        rnn[12:] = [INF, NAN, 0.0, -1.0]
    return NS(distance=d, rnn=rnn, attention=1.0 / (1 + d), seq_len=16, rho=0.9)


def rank_collapse(bad: bool = False):
    layer = np.arange(7)
    pure = np.array([0.9, 0.5, 0.1, 1e-3, 1e-8, 0.0, 0.0])
    if bad:
        pure[4:] = NAN
    return NS(layer=layer, curves={"attention only": pure, "with skip connections": np.full(7, 0.8)})


def qk_gradients(bad: bool = False):
    depth = np.array([1, 2, 4, 8])
    ratio = np.array([1.0, 0.3, 0.01, 0.0])
    if bad:
        ratio[2] = NAN
    return NS(depth=depth, curves={"attention only": ratio, "residual, branch 1/√L": np.ones(4)},
              cosine={"attention only": np.array([0.2, 0.7, 0.99, 1.0]), "residual, branch 1/√L": np.full(4, 0.3)})


def softmax_saturation(bad: bool = False):
    d_k = np.array([16, 64, 256, 1024])
    frac = {"sqrt_dk": np.zeros(4), "none": np.array([0.0, 0.2, 0.5, 0.71])}
    jac = {"sqrt_dk": np.full(4, 0.3), "none": np.array([0.3, 0.1, 0.01, 1e-4])}
    if bad:
        jac["none"][-1] = NAN
        frac["none"][-1] = INF
    return NS(d_k=d_k, saturated_fraction=frac, jacobian_norm=jac, query_grad_norm=jac)


def residual_scale(bad: bool = False):
    alphas = np.array([0.0, 0.1, 0.5, 1.0])
    sv = np.array([[1, 1, 1], [1.5, 1.2, 1.1], [4, 2, 1.5], [20, 8, 3]], dtype=float)
    if bad:
        sv[3] = [INF, INF, NAN]
    return NS(alphas=alphas, singular_values=sv)


def stream_norms(bad: bool = False):
    layer = np.arange(9)
    grows = np.sqrt(1 + layer) * 8
    if bad:
        grows[6:] = INF
    return NS(layer=layer, curves={"residual, no norm": grows, "residual + pre-LN": grows / 2,
                                   "residual + post-LN": np.full(9, 8.0)})


def activation_stats(bad: bool = False):
    layer = np.arange(7)
    std = {"none": 1.5**layer, "layer": np.ones(7)}
    if bad:
        std["none"][5:] = INF
    return NS(layer=layer, std=std, mean={"none": np.zeros(7), "layer": np.zeros(7)})


def pre_post(bad: bool = False):
    depths = np.array([2, 4, 8, 16])
    pre = 2.0 / np.sqrt(depths)
    post = np.full(4, 2.0)
    if bad:
        post[-1] = INF
    return NS(depths=depths, last_layer_grad={"pre": pre, "post": post},
              per_seed={"pre": np.stack([pre * 0.9, pre * 1.1]), "post": np.stack([post * 0.9, post * 1.1])},
              hidden_norm={"pre": np.sqrt(depths), "post": np.ones(4)}, implementation="gradlib",
              per_layer={"pre": np.geomspace(3.0, 0.5, 16), "post": np.full(16, 2.0) if not bad else
                         np.r_[np.full(12, 2.0), [INF, INF, NAN, 1.0]]})


CASES = {
    "plot_depth_profiles": depth_profiles,
    "plot_rnn_gradients": rnn_gradients,
    "plot_path_lengths": path_lengths,
    "plot_rank_collapse": rank_collapse,
    "plot_qk_gradients": qk_gradients,
    "plot_softmax_saturation": softmax_saturation,
    "plot_residual_scale": residual_scale,
    "plot_stream_norms": stream_norms,
    "plot_activation_stats": activation_stats,
    "plot_pre_post": pre_post,
}


def _axes():
    fig = Figure(figsize=(4, 3), dpi=50)
    return fig.add_subplot()


def _markers_x(ax) -> list[float]:
    return [float(line.get_xdata()[0]) for line in ax.lines if line.get_marker() == "X"]


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    yield
    plt.close("all")


# ----------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_plot_function_draws_on_the_given_axes_and_returns_it(name):
    ax = _axes()
    out = getattr(gp, name)(CASES[name](), ax=ax)
    assert out is ax
    assert ax.lines, f"{name} drew no line"
    ax.figure.canvas.draw()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_plot_function_masks_inf_and_nan_without_warnings_and_marks_the_explosion(name):
    ax = _axes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value", no "cannot be log-scaled"
        getattr(gp, name)(CASES[name](bad=True), ax=ax)
        ax.figure.canvas.draw()
    lo, hi = ax.get_ylim()
    assert np.isfinite(lo) and np.isfinite(hi)
    for line in ax.lines:  # nothing non-finite reaches the renderer as a plotted value
        y = np.ma.asarray(line.get_ydata(), dtype=float)  # inf/NaN must arrive masked, not as values
        assert np.all(np.isfinite(y.compressed())), f"{name}: unmasked inf/NaN in {line.get_label()!r}"
    if name not in ("plot_qk_gradients",):  # its only NaN is a masked gap in a ratio, not a blow-up
        assert _markers_x(ax), f"{name} did not mark the exploded entry with an ✕"


def test_depth_profile_marks_exploded_at_as_a_layer_number_with_a_note():
    profiles = depth_profiles(bad=True)
    profiles[1].exploded_at = 2  # 0-based index -> layer 3
    ax = gp.plot_depth_profiles(profiles, ax=_axes())
    assert _markers_x(ax) == [3.0]
    assert "exploded at layer 3" in _texts(ax)


def test_depth_profile_finds_the_explosion_from_the_data_when_exploded_at_is_missing():
    profile = depth_profiles(bad=True)[1]
    del profile.exploded_at
    ax = gp.plot_depth_profiles(profile, ax=_axes())
    assert _markers_x(ax) == [1.0]
    assert "exploded at layer 1" in _texts(ax)


def test_gradient_norms_are_drawn_on_a_log_y_axis():
    for name in ("plot_depth_profiles", "plot_rnn_gradients", "plot_path_lengths", "plot_pre_post"):
        ax = getattr(gp, name)(CASES[name](), ax=_axes())
        assert ax.get_yscale() == "log", name


def test_all_nan_profile_draws_an_empty_log_axis_with_a_note_instead_of_crashing():
    layer = np.arange(1, 6)
    profile = NS(label="relu, weight scale 100", layer=layer, grad_norms=np.full(5, NAN), param_norms=None,
                 exploded_at=0, ratio=NAN)
    ax = _axes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gp.plot_depth_profiles([profile], ax=ax)
        ax.figure.canvas.draw()
    assert "no finite values to show" in _texts(ax)
    assert ax.get_xlim()[0] < 1 and ax.get_xlim()[1] > 5


def test_masked_log_masks_non_finite_and_non_positive_values_only():
    y = gp.masked_log([1.0, INF, -INF, NAN, 0.0, -2.0, 1e-300])
    assert y.mask.tolist() == [False, True, True, True, True, True, False]


def test_rnn_theory_is_drawn_dashed_in_the_colour_of_its_measured_line():
    ax = gp.plot_rnn_gradients(rnn_gradients(), ax=_axes())
    solid = [l for l in ax.lines if l.get_linestyle() == "-" and len(l.get_xdata())]
    dashed = [l for l in ax.lines if l.get_linestyle() == "--" and len(l.get_xdata())]
    assert len(solid) == len(dashed) == 3
    for s, d in zip(solid, dashed):
        assert s.get_color() == d.get_color()
        np.testing.assert_allclose(np.asarray(d.get_ydata()), np.asarray(s.get_ydata()))


def test_pre_post_guide_line_falls_like_one_over_root_depth_on_log_log_axes():
    ax = gp.plot_pre_post(pre_post(), ax=_axes())
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    (guide,) = [l for l in ax.lines if "sqrt" in l.get_label()]
    x, y = np.asarray(guide.get_xdata(), float), np.asarray(guide.get_ydata(), float)
    slope = np.polyfit(np.log(x), np.log(y), 1)[0]
    assert slope == pytest.approx(-0.5)


def test_pre_post_hidden_norm_guide_grows_like_root_depth():
    ax = gp.plot_pre_post(pre_post(), ax=_axes(), which="hidden_norm")
    (guide,) = [l for l in ax.lines if "sqrt" in l.get_label()]
    slope = np.polyfit(np.log(guide.get_xdata()), np.log(np.asarray(guide.get_ydata(), float)), 1)[0]
    assert slope == pytest.approx(0.5)


def test_pre_post_per_layer_draws_every_block_of_the_deepest_stack():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ax = gp.plot_pre_post(pre_post(bad=True), ax=_axes(), which="per_layer")
        ax.figure.canvas.draw()
    assert [len(l.get_xdata()) for l in ax.lines if l.get_label() in ("Pre-LN", "Post-LN")] == [16, 16]
    assert _markers_x(ax) == [13.0]


def test_unknown_which_raises_value_error_naming_the_choices():
    with pytest.raises(ValueError, match="which must be one of"):
        gp.plot_softmax_saturation(softmax_saturation(), ax=_axes(), which="entropy")
    with pytest.raises(ValueError, match="which must be one of 'std', 'mean'"):
        gp.plot_activation_stats(activation_stats(), ax=_axes(), which="var")


# ------------------------------------------------------------------------------------------ labels and ticks
def _legend_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.mark.parametrize("layer, expected", [("last", "(last layer)"), ("first", "(first layer)"),
                                             ("3", "(layer 3)"), (3, "(layer 3)")])
def test_qk_gradients_y_label_names_the_layer_the_ratio_was_measured_at(layer, expected):
    result = qk_gradients()
    result.layer = layer
    ax = gp.plot_qk_gradients(result, ax=_axes())
    assert ax.get_ylabel().endswith(expected)
    assert ax.get_ylabel().count("layer") == 1


def test_qk_gradients_without_a_layer_field_claims_no_layer():
    ax = gp.plot_qk_gradients(qk_gradients(), ax=_axes())  # the fake has no `layer`
    assert "layer" not in ax.get_ylabel()


def test_softmax_saturation_legend_reads_scaled_and_unscaled_not_the_raw_keys():
    ax = gp.plot_softmax_saturation(softmax_saturation(), ax=_axes())
    assert _legend_texts(ax) == [r"scaled by $1/\sqrt{d_k}$", "unscaled"]
    colors = {line.get_label(): line.get_color() for line in ax.lines}
    assert colors["unscaled"] == gp.COLORS["baseline"]
    assert colors[r"scaled by $1/\sqrt{d_k}$"] == gp.COLORS["attention"]
    result = softmax_saturation()
    result.saturated_fraction["tau=2"] = np.full(4, 0.1)
    ax = gp.plot_softmax_saturation(result, ax=_axes(), labels={"none": "no scaling"})
    assert _legend_texts(ax) == [r"scaled by $1/\sqrt{d_k}$", "no scaling", r"temperature $\tau$ = 2"]


def test_softmax_jacobian_y_label_is_short():
    ax = gp.plot_softmax_saturation(softmax_saturation(), ax=_axes(), which="jacobian_norm")
    assert "Jacobian" in ax.get_ylabel() and len(ax.get_ylabel()) <= 30


def test_activation_stats_legend_shows_the_norms_display_names():
    result = activation_stats()
    result.std["rms"] = np.ones(7)
    ax = gp.plot_activation_stats(result, ax=_axes())
    assert _legend_texts(ax) == ["no norm", "LayerNorm", "RMSNorm"]
    ax = gp.plot_activation_stats(result, ax=_axes(), which="std", labels={"none": "plain"})
    assert _legend_texts(ax) == ["plain", "layer", "rms"]  # a mapping of one's own: the rest as they are


def _visible_tick_labels(ax) -> list[str]:
    ax.figure.canvas.draw()
    lo, hi = sorted(ax.get_ylim())
    out = []
    for minor in (False, True):
        locs, labels = ax.yaxis.get_ticklocs(minor=minor), ax.yaxis.get_ticklabels(minor=minor)
        out += [t.get_text() for loc, t in zip(locs, labels) if t.get_text() and lo <= loc <= hi]
    return out


def test_narrow_log_axis_is_labelled_with_plain_numbers_not_powers_of_ten():
    ax = gp.plot_residual_scale(residual_scale(), ax=_axes())  # σ from 1 to 20
    labels = _visible_tick_labels(ax)
    assert {"1", "10"} <= set(labels), labels
    assert all(float(t) > 0 for t in labels)  # every label parses as a plain number: no 10ⁿ, no 3×10⁰
    narrow = residual_scale()
    narrow.singular_values = np.array([[1, 1, 1], [1.5, 1.2, 1.1], [2, 1.6, 1.5], [3.4, 2.5, 2.0]])
    labels = _visible_tick_labels(gp.plot_residual_scale(narrow, ax=_axes()))  # under one decade: minor labels
    assert {"2", "3"} <= set(labels), labels
    assert all(float(t) > 0 for t in labels)


def test_wide_log_axis_keeps_powers_of_ten():
    profiles = depth_profiles()
    profiles[0].grad_norms = np.geomspace(1e-12, 1.0, 8)
    ax = gp.plot_depth_profiles(profiles, ax=_axes())
    labels = _visible_tick_labels(ax)
    assert labels and all("10^" in t for t in labels), labels


def test_plain_log_formatter_switches_on_the_view_interval():
    fig = Figure()
    ax = fig.add_subplot()
    ax.set_yscale("log")
    formatter = gp.PlainLogFormatter()
    ax.yaxis.set_major_formatter(formatter)
    ax.set_ylim(0.5, 30)
    assert formatter(3.0) == "3" and formatter(0.5) == "0.5"
    ax.set_ylim(1e-6, 30)
    assert "10^" in formatter(1e-6)


def test_residual_scale_labels_the_deepnorm_variant():
    result = residual_scale()
    result.variant = "deepnorm"
    ax = gp.plot_residual_scale(result, ax=_axes())
    assert "LN" in ax.get_xlabel() and ax.get_title().startswith("DeepNorm")
    assert "LN" not in gp.plot_residual_scale(residual_scale(), ax=_axes()).get_xlabel()


def norm_comparison():
    return NS(rows=[
        {"test": "batch of one token (training)", "batch": "fails: Expected more than 1 value", "layer": 0.0,
         "rms": 0.0},
        {"test": "padding", "batch": 0.61234, "layer": 0.0, "rms": 1e-7},
    ])


def test_norm_comparison_is_drawn_as_a_table_of_the_rows_with_display_names():
    ax = _axes()
    assert gp.plot_norm_comparison(norm_comparison(), ax=ax) is ax
    (table,) = ax.tables
    cells = table.get_celld()
    assert [cells[0, c].get_text().get_text() for c in range(3)] == ["BatchNorm", "LayerNorm", "RMSNorm"]
    assert [cells[1, c].get_text().get_text() for c in range(-1, 3)] == [
        "batch of one token (training)", "fails", "0", "0"]
    assert [cells[2, c].get_text().get_text() for c in range(3)] == ["0.61", "0", "1e-07"]
    # what changed is tinted apart from what did not
    assert cells[1, 0].get_facecolor() == cells[2, 2].get_facecolor() != cells[1, 1].get_facecolor()
    assert not ax.axison
    ax.figure.canvas.draw()
    with pytest.raises(ValueError, match="digits"):
        gp.plot_norm_comparison(norm_comparison(), ax=_axes(), digits=0)


def test_role_colours_follow_the_course_roles_and_the_troubled_network_wins():
    c = gp.COLORS
    assert gp.role_color("RNN (relay of calls)") == c["baseline"]
    assert gp.role_color("attention only") == c["attention"]
    assert gp.role_color("with skip connections") == c["residual"]
    assert gp.role_color("residual + pre-LN") == c["norm"]
    assert gp.role_color("residual + post-LN") == c["baseline"]
    assert gp.role_color("no residual") == c["baseline"]
    assert gp.role_color("none") == c["baseline"]
    assert gp.role_color("sqrt_dk") == c["attention"]


def test_role_colours_are_distinct_and_series_of_one_plot_never_share_a_colour():
    roles = [gp.COLORS[k] for k in ("baseline", "attention", "residual", "norm")]
    assert len({to_rgb(r) for r in roles}) == 4
    labels = ["none", "layer", "rms", "post-LN", "plain", "x", "y"]
    colors = gp.colors_for(labels)
    assert len(set(colors)) == len(labels)


def test_style_applies_white_background_inside_and_restores_rcparams_after():
    before = dict(matplotlib.rcParams)
    with gp.style():
        assert to_rgb(matplotlib.rcParams["figure.facecolor"]) == (1.0, 1.0, 1.0)
        assert to_rgb(matplotlib.rcParams["savefig.facecolor"]) == (1.0, 1.0, 1.0)
        assert matplotlib.rcParams["axes.spines.top"] is False
    after = dict(matplotlib.rcParams)
    assert after.keys() == before.keys()
    changed = [k for k in before if str(before[k]) != str(after[k])]
    assert not changed


def test_plotting_leaves_global_rcparams_untouched():
    before = {k: str(v) for k, v in matplotlib.rcParams.items()}
    for name, make in CASES.items():
        getattr(gp, name)(make(), ax=_axes())
    gp.draw_relay_vs_group_call(ax=_axes())
    after = {k: str(v) for k, v in matplotlib.rcParams.items()}
    assert before == after


def test_plot_without_ax_makes_a_white_pyplot_figure_with_dark_text():
    ax = gp.plot_path_lengths(path_lengths())
    fig = ax.figure
    assert fig in [plt.figure(n) for n in plt.get_fignums()]
    assert to_rgb(fig.get_facecolor()) == (1.0, 1.0, 1.0)
    assert to_rgb(ax.get_facecolor()) == (1.0, 1.0, 1.0)
    assert sum(to_rgb(ax.title.get_color())) < 0.6  # dark text on the white figure


@pytest.mark.parametrize("draw", [gp.draw_relay_vs_group_call, gp.draw_mountain_road_vs_expressway])
def test_diagrams_are_matplotlib_patches_with_english_labels_only(draw):
    ax = draw(ax=_axes())
    boxes = [p for p in ax.patches if isinstance(p, patches.FancyBboxPatch)]
    assert len(boxes) >= 6
    text = "".join(_texts(ax))
    assert "token" in text or "layer" in text
    assert all(ord(ch) < 0x2E80 for ch in text), "CJK glyphs are missing from DejaVu"
    ax.figure.canvas.draw()


def test_relay_diagram_connects_every_pair_in_the_group_call_and_neighbours_in_the_relay():
    n = 6
    ax = gp.draw_relay_vs_group_call(ax=_axes(), n_tokens=n)
    chords = [l for l in ax.lines if len(l.get_xdata()) == 2]
    arrows = [p for p in ax.patches if isinstance(p, patches.FancyArrowPatch)]
    assert len(chords) == n * (n - 1) // 2
    assert len(arrows) == n - 1
    with pytest.raises(ValueError, match="n_tokens"):
        gp.draw_relay_vs_group_call(ax=_axes(), n_tokens=20)


# ----------------------------------------------------------------------------- with the real experiments
def test_plots_draw_the_real_experiments_small_results():
    ex = pytest.importorskip("gradlib.experiments")
    results = {
        "plot_depth_profiles": ex.residual_vs_plain(depth=6, width=16, batch=4),
        "plot_rnn_gradients": ex.rnn_gradients(radii=(0.9, 1.1), T=8, d_hidden=4),
        "plot_path_lengths": ex.path_lengths(seq_len=6, d=4),
        "plot_rank_collapse": ex.rank_collapse_depth(depth=3, n_tokens=4, d=8),
        "plot_qk_gradients": ex.qk_gradients(depths=(1, 3), n_tokens=4, d=8),
        "plot_softmax_saturation": ex.softmax_saturation(d_ks=(4, 64), n_rows=16, n_keys=8),
        "plot_residual_scale": ex.residual_scale_spectrum(alphas=(0.0, 0.5), n_layers=2, d_model=8, k=2,
                                                          n_tokens=2, n_iter=5),
        "plot_stream_norms": ex.residual_stream_norms(depth=3, d_model=8, n_tokens=4, batch=1),
        "plot_activation_stats": ex.activation_stats(depth=3, d_model=8, n_tokens=4, batch=1),
        "plot_pre_post": ex.pre_post_ln(depths=(1, 2), d_model=8, n_heads=2, d_ff=16, seeds=(0,), batch=1,
                                        seq_len=4),
    }
    results["plot_norm_comparison"] = ex.norm_comparison(d=4)
    for name, result in results.items():
        ax = _axes()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert getattr(gp, name)(result, ax=ax) is ax
            ax.figure.canvas.draw()
    ax = gp.plot_qk_gradients(results["plot_qk_gradients"], ax=_axes())
    assert ax.get_ylabel().endswith("(last layer)")  # qk_gradients measures the last layer by default


def test_a_really_exploding_mlp_is_drawn_with_an_x_at_its_exploded_layer():
    ex = pytest.importorskip("gradlib.experiments")
    profile = ex.mlp_gradients(depth=12, width=16, batch=4, activation="identity", weight_scale=1e4)
    assert profile.exploded_at is not None  # float32 overflows: 1e4^12 > 3e38
    ax = gp.plot_depth_profiles(profile, ax=_axes())
    k = profile.exploded_at
    assert _markers_x(ax) == [float(profile.layer[k])]
    assert f"exploded at layer {profile.layer[k]}" in _texts(ax)


def test_depth_scaled_residual_keeps_one_colour_across_figures():
    # the same series must not change colour between the rank-collapse and the query/key figures
    label = "residual, branch 1/√L"
    three = gp.colors_for(["attention only", "with skip connections", label])
    two = gp.colors_for(["attention only", label])
    assert three[2] == two[1] == gp.COLORS["accent"]
    assert len(set(three)) == 3
