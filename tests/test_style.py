"""Tests of gradlib.style: colours come from roles (deterministically, never from labels), log axes read as plain
numbers when narrow, inf/NaN are masked, the ✕ of an explosion starts hidden, and rcParams never leak."""
from __future__ import annotations

import os
import warnings

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex, to_rgb  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradlib import style as gs  # noqa: E402
from gradlib.results import ROLES  # noqa: E402

INF, NAN = np.inf, np.nan
C = gs.COLORS


def _axes():
    return Figure(figsize=(3, 2), dpi=40).add_subplot()


@pytest.fixture(autouse=True)
def _close_pyplot_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------------------- colours
def test_every_role_but_series_has_its_own_distinct_colour():
    assert set(ROLES) - {"series"} <= set(gs.ROLE_COLORS)
    colors = [to_rgb(gs.ROLE_COLORS[r]) for r in ROLES if r != "series"]
    assert len(set(colors)) == len(colors)
    # the troubled network and the three highways keep the course's colours
    assert (gs.ROLE_COLORS["baseline"], gs.ROLE_COLORS["attention"], gs.ROLE_COLORS["residual"],
            gs.ROLE_COLORS["norm"]) == (C["vermillion"], C["blue"], C["green"], C["purple"])


def test_colors_for_gives_each_role_its_colour():
    roles = ["baseline", "attention", "residual", "norm", "scaled", "reference"]
    assert gs.colors_for(roles) == [gs.ROLE_COLORS[r] for r in roles]
    assert gs.colors_for(roles[::-1]) == [gs.ROLE_COLORS[r] for r in roles[::-1]]  # by role, not by position
    assert gs.colors_for(["norm"]) == [C["purple"]]


def test_colors_for_resolves_series_and_repeats_deterministically_from_the_cycle():
    # a repeated role and every "series" curve take the first colour of CYCLE that no earlier curve took
    roles = ["baseline", "baseline", "series", "series", "attention"]
    expected = [C["vermillion"], gs.CYCLE[0], gs.CYCLE[1], gs.CYCLE[2], C["blue"]]
    assert gs.colors_for(roles) == expected
    assert gs.colors_for(roles) == expected  # the same every time
    assert gs.colors_for(["series"] * 3) == list(gs.CYCLE[:3])
    # a role whose colour a series curve already took moves on to the next free one
    assert gs.colors_for(["series", "scaled"]) == [gs.CYCLE[0], gs.CYCLE[1]]
    assert gs.CYCLE[0] == gs.ROLE_COLORS["scaled"]
    many = gs.colors_for(["series"] * len(gs.CYCLE))
    assert len(set(many)) == len(gs.CYCLE)  # distinct as long as the palette lasts
    assert gs.colors_for([]) == []


# ------------------------------------------------------------------------------------------------ log axes
def test_masked_log_masks_non_finite_and_non_positive_values_only():
    y = gs.masked_log([1.0, INF, -INF, NAN, 0.0, -2.0, 1e-300, 5.0])
    assert y.mask.tolist() == [False, True, True, True, True, True, False, False]
    np.testing.assert_array_equal(y.compressed(), [1.0, 1e-300, 5.0])


def test_log_limits_cover_every_finite_positive_value_with_padding():
    lo, hi = gs.log_limits([np.array([1e-3, 1.0, INF]), np.array([NAN, 10.0, -1.0, 0.0])])
    assert lo < 1e-3 and hi > 10.0
    assert lo > 1e-4 and hi < 1e2  # padded, not blown up by the inf
    # a flat curve still gets at least min_decades, centred on it
    lo, hi = gs.log_limits([np.full(4, 2.0)], min_decades=1.0)
    assert np.log10(hi) - np.log10(lo) >= 1.0
    assert np.sqrt(lo * hi) == pytest.approx(2.0)
    lo, hi = gs.log_limits([np.full(4, 2.0)], min_decades=3.0)
    assert np.log10(hi) - np.log10(lo) >= 3.0
    # nothing finite: a default view, no warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert gs.log_limits([np.array([NAN, INF, 0.0])]) == (0.1, 10.0)
        assert gs.log_limits([]) == (0.1, 10.0)
    # the tiniest and hugest floats are clipped to what a log axis can show
    lo, hi = gs.log_limits([np.array([1e-320, 1e308])])
    assert np.isfinite(lo) and np.isfinite(hi) and lo > 0


def test_plain_log_formatter_switches_on_the_view_interval():
    ax = _axes()
    ax.set_yscale("log")
    formatter = gs.PlainLogFormatter()
    ax.yaxis.set_major_formatter(formatter)
    ax.set_ylim(0.5, 30)
    assert formatter(3.0) == "3" and formatter(0.5) == "0.5" and formatter(20.0) == "20"
    assert formatter(1.0) == "1" and formatter(10.0) == "10"
    ax.set_ylim(1e-6, 30)  # wider than plain_range: matplotlib's powers of ten
    assert "10^" in formatter(1e-6) and "10^" in formatter(10.0)
    ax.set_ylim(1.0, 1e5)
    assert "10^" in formatter(1e5)
    wide = gs.PlainLogFormatter(plain_range=(1e-9, 1e9))
    ax.yaxis.set_major_formatter(wide)
    assert wide(1e5) == "100000"
    assert gs.PlainLogFormatter()(3.0) != ""  # no axis attached yet: matplotlib's own label


def _visible_tick_labels(ax) -> list[str]:
    ax.figure.canvas.draw()
    lo, hi = sorted(ax.get_ylim())
    out = []
    for minor in (False, True):
        locs, labels = ax.yaxis.get_ticklocs(minor=minor), ax.yaxis.get_ticklabels(minor=minor)
        out += [t.get_text() for loc, t in zip(locs, labels) if t.get_text() and lo <= loc <= hi]
    return out


def test_plain_log_ticks_label_a_narrow_axis_with_plain_numbers_and_a_wide_one_with_powers():
    ax = _axes()
    ax.set_yscale("log")
    gs.plain_log_ticks(ax.yaxis)
    ax.set_ylim(0.8, 30)
    labels = _visible_tick_labels(ax)
    assert {"1", "10"} <= set(labels), labels
    assert all(float(t) > 0 for t in labels)  # every label parses as a plain number
    ax.set_ylim(1e-12, 1.0)
    labels = _visible_tick_labels(ax)
    assert labels and all("10^" in t for t in labels), labels
    fast = _axes()
    fast.set_yscale("log")
    gs.plain_log_ticks(fast.yaxis, minor=False)
    fast.set_ylim(0.8, 30)
    assert len(fast.yaxis.get_ticklocs(minor=True)) == 0  # the faster redraw: no minor ticks


# ------------------------------------------------------------------------------------------- the ✕ mark
def test_mark_exploded_is_a_hidden_cross_and_note_in_the_given_colour_off_the_legend():
    ax = _axes()
    cross, note = gs.mark_exploded(ax, color="#123456", slot=1)
    assert cross in ax.lines and cross.get_marker() == "X"
    assert not cross.get_visible() and not note.get_visible()
    assert to_hex(cross.get_color()) == "#123456" and to_hex(note.get_color()) == "#123456"
    assert cross.get_label().startswith("_")  # never in a legend
    assert cross.get_ydata()[0] == pytest.approx(0.96 - 0.11)  # slot 1: one row below the top
    assert not cross.get_clip_on()


# ------------------------------------------------------------------------------------------ rc and figures
def test_style_applies_the_course_look_inside_and_restores_the_global_rcparams_after():
    before = {k: str(v) for k, v in matplotlib.rcParams.items()}
    with gs.style():
        assert to_rgb(matplotlib.rcParams["figure.facecolor"]) == (1.0, 1.0, 1.0)
        assert to_rgb(matplotlib.rcParams["savefig.facecolor"]) == (1.0, 1.0, 1.0)
        assert matplotlib.rcParams["axes.spines.top"] is False
        assert matplotlib.rcParams["font.sans-serif"] == ["DejaVu Sans"]
    with gs.style(**{"figure.dpi": 33}):
        assert matplotlib.rcParams["figure.dpi"] == 33
    assert {k: str(v) for k, v in matplotlib.rcParams.items()} == before
    with pytest.raises(RuntimeError), gs.style():
        raise RuntimeError("a failing cell")
    assert {k: str(v) for k, v in matplotlib.rcParams.items()} == before


def test_subplots_and_new_axes_make_white_figures_with_dark_text_and_leave_rcparams_alone():
    before = {k: str(v) for k, v in matplotlib.rcParams.items()}
    fig, axes = gs.subplots(1, 2, figsize=(3, 2))
    assert axes.shape == (2,)
    assert to_rgb(fig.get_facecolor()) == (1.0, 1.0, 1.0)
    for ax in axes:
        assert to_rgb(ax.get_facecolor()) == (1.0, 1.0, 1.0)
        assert sum(to_rgb(ax.yaxis.get_major_ticks()[0].label1.get_color())) < 0.6  # dark tick labels
    ax = gs.new_axes(None, (3, 2))
    assert ax.figure in [plt.figure(n) for n in plt.get_fignums()]
    assert tuple(ax.figure.get_size_inches()) == (3, 2)
    given = _axes()
    assert gs.new_axes(given) is given
    assert {k: str(v) for k, v in matplotlib.rcParams.items()} == before


def test_style_keeps_interactive_mode_turned_on_inside_it_and_restores_everything_else():
    # IPython's inline backend switches interactive mode on when pyplot makes its first figure; if style()
    # restored it, no later figure of the notebook would be shown at the end of its cell.
    import matplotlib as mpl

    was = mpl.is_interactive()
    size = mpl.rcParams["font.size"]
    try:
        mpl.interactive(False)
        with gs.style():
            mpl.interactive(True)
        assert mpl.is_interactive()
        assert mpl.rcParams["font.size"] == size
    finally:
        mpl.interactive(was)
