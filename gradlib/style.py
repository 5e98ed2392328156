"""The course's visual language: one colour per role, log axes that read as plain numbers, white figures.

- ``ROLE_COLORS``: the troubled ``baseline`` network and the three highways (``attention``, ``residual``,
  ``norm``) each have a colour (Okabe–Ito palette, safe for colour-blind readers); a curve's colour comes
  from its :attr:`gradlib.results.Curve.role`, never from its label;
- gradient norms on log axes; inf/NaN values (an exploded run) are masked, never plotted, and the first
  exploded point is marked with an ✕; a log axis whose view lies within [0.001, 10⁴] is labelled with plain
  numbers ("0.5", "3", "20"), a wider one with powers of ten;
- white figures with dark text, so every figure reads on the site's light and dark themes alike.

rcParams are applied only inside :func:`style` (matplotlib.rc_context); the global ones are never touched.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

import matplotlib as mpl
import numpy as np
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

from gradlib.i18n import font_families

__all__ = [
    "COLORS", "ROLE_COLORS", "CYCLE", "RC", "style", "subplots", "new_axes", "dress", "colors_for",
    "masked_log", "log_limits", "PlainLogFormatter", "plain_log_ticks", "mark_exploded",
]

COLORS: dict[str, str] = {
    "vermillion": "#D55E00", "blue": "#0072B2", "green": "#009E73", "purple": "#CC79A7", "orange": "#E69F00",
    "sky": "#56B4E9", "yellow": "#F0E442", "grey": "#8C8C8C", "dark": "#333333", "text": "#222222",
    "background": "#FFFFFF",
}
ROLE_COLORS: dict[str, str] = {
    "baseline": COLORS["vermillion"],  # the troubled network: plain stack, RNN, Post-LN, unscaled scores
    "attention": COLORS["blue"],  # highway 1
    "residual": COLORS["green"],  # highway 2
    "norm": COLORS["purple"],  # highway 3
    "scaled": COLORS["orange"],  # depth-scaled branches (1/√L)
    "reference": COLORS["grey"],  # identity, guides
    "theory": COLORS["dark"],  # what the math predicts (dashed)
}
# Curves of role "series", and curves whose role colour an earlier curve already took: the palette's
# remaining colours first, the role colours last.
CYCLE: tuple[str, ...] = (COLORS["orange"], COLORS["sky"], "#000000", COLORS["blue"], COLORS["green"],
                          COLORS["purple"], COLORS["vermillion"], COLORS["yellow"])

GRID, EDGE = "#DDDDDD", "#444444"

RC: dict[str, Any] = {
    "figure.facecolor": COLORS["background"], "figure.edgecolor": COLORS["background"],
    "axes.facecolor": COLORS["background"], "savefig.facecolor": COLORS["background"],
    "savefig.edgecolor": COLORS["background"], "savefig.transparent": False,
    "text.color": COLORS["text"], "axes.labelcolor": COLORS["text"], "axes.titlecolor": COLORS["text"],
    "axes.edgecolor": EDGE, "xtick.color": EDGE, "ytick.color": EDGE,
    "xtick.labelcolor": COLORS["text"], "ytick.labelcolor": COLORS["text"], "legend.labelcolor": COLORS["text"],
    "legend.frameon": False, "legend.fontsize": 8.5, "axes.prop_cycle": cycler(color=list(CYCLE)),
    "axes.grid": True, "axes.grid.which": "major", "grid.color": GRID, "grid.linewidth": 0.6,
    "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 10.5, "axes.labelsize": 9.5,
    "xtick.labelsize": 8.5, "ytick.labelsize": 8.5, "font.size": 9.5, "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib: identical glyphs everywhere
    "mathtext.fontset": "dejavusans", "axes.formatter.use_mathtext": True,
    "lines.linewidth": 1.8, "lines.markersize": 4.0, "figure.figsize": (6.0, 3.6), "figure.dpi": 100,
    "savefig.dpi": 100, "figure.constrained_layout.use": True,
}


@contextlib.contextmanager
def style(**overrides: Any) -> Iterator[None]:
    """Context in which figures get the course's look; rcParams are restored on exit.

    rc = RC ∪ {font.family: the language's fonts} ∪ overrides, with matplotlib.rc_context (never globally).
    """
    before = mpl.rcParams["interactive"]
    # font.family as the explicit list, not the generic "sans-serif": a Text keeps the family it was made
    # with, so a figure drawn after the context (the inline backend, a later savefig) keeps its CJK fallback
    with mpl.rc_context({**RC, "font.family": font_families(), **overrides}):
        try:
            yield
        finally:
            after = mpl.rcParams["interactive"]
    if after != before:
        # The one setting a block may change for good: when pyplot makes its first figure inside the block,
        # IPython's inline backend turns interactive mode on, and restoring it would stop every later figure
        # of the notebook from being shown at the end of its cell.
        mpl.interactive(after)


def subplots(nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Any, Any]:
    """A pyplot figure and its axes in the course's style (in a notebook it shows inline at the cell's end).

    Args:
        nrows, ncols: grid of axes; kw: as matplotlib.pyplot.subplots (figsize, sharey, ...).
    """
    import matplotlib.pyplot as plt  # only here: importing gradlib must not pick a backend

    kw.setdefault("figsize", (min(4.2 * ncols + 1.0, 12.0), 3.4 * nrows + 0.2) if nrows * ncols > 1 else (7, 4))
    with style():
        fig, axes = plt.subplots(nrows, ncols, **kw)
    for ax in np.atleast_1d(axes).ravel():
        dress(ax)
    return fig, axes


def new_axes(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    """`ax` itself, or the axes of a new figure in the course's style."""
    if ax is not None:
        dress(ax)
        return ax
    return subplots(figsize=figsize or (7, 4))[1]


def dress(ax: Axes) -> None:
    """Dark ticks and labels on the axes themselves, so they stay right when drawn outside `style()`."""
    ax.set_facecolor(COLORS["background"])
    ax.tick_params(which="both", colors=EDGE, labelcolor=COLORS["text"])
    ax.grid(True, which="major", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)


def colors_for(roles: Sequence[str]) -> list[str]:
    """Distinct colours for the curves of one plot: each role's colour, the palette for "series" and repeats.

    colour_i = ROLE_COLORS[role_i] unless an earlier curve took it, then the first unused colour of CYCLE.
    """
    out: list[str] = []
    for role in roles:
        color = ROLE_COLORS.get(role)
        if color is None or color in out:
            color = next((c for c in CYCLE if c not in out), CYCLE[len(out) % len(CYCLE)])
        out.append(color)
    return out


def masked_log(values: Any) -> np.ma.MaskedArray:
    """The values a log axis can show: inf, NaN and ≤ 0 masked (gaps in the line, no crash)."""
    y = np.asarray(values, dtype=float)
    return np.ma.masked_where(~np.isfinite(y) | (y <= 0), y)


def log_limits(values: Sequence[np.ndarray], min_decades: float = 1.0) -> tuple[float, float]:
    """(lo, hi) covering every finite positive value, padded, at least `min_decades` tall; (0.1, 10) if none."""
    good = np.concatenate([masked_log(v).compressed() for v in values] or [np.zeros(0)])
    if good.size == 0:
        return 0.1, 10.0
    lo, hi = np.log10(good.min()), np.log10(good.max())
    pad = max(0.0, (min_decades - (hi - lo)) / 2) + 0.08 * max(hi - lo, 0.5)
    return 10.0 ** max(lo - pad, -300.0), 10.0 ** min(hi + pad, 300.0)


class PlainLogFormatter(mpl.ticker.LogFormatterSciNotation):
    """Log-axis tick labels as plain numbers ("0.5", "3", "20") while the view lies within `plain_range`.

    label(x) = f"{x:g}" if plain_range ⊇ view interval, else matplotlib's 10ⁿ / a×10ⁿ.
    """

    def __init__(self, *args: Any, plain_range: tuple[float, float] = (1e-3, 1e4), **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.plain_range = plain_range

    def __call__(self, x: float, pos: int | None = None) -> str:
        label = super().__call__(x, pos)  # '' where matplotlib leaves the tick unlabelled
        axis = getattr(self, "axis", None)
        if not label or axis is None:
            return label
        lo, hi = sorted(axis.get_view_interval())
        return f"{x:g}" if self.plain_range[0] <= lo and hi <= self.plain_range[1] else label


def plain_log_ticks(axis: Any, minor: bool = True) -> None:
    """Label a log axis (ax.yaxis / ax.xaxis) with PlainLogFormatter; `minor=False` drops minor ticks (faster)."""
    axis.set_major_formatter(PlainLogFormatter())
    if minor:
        axis.set_minor_formatter(PlainLogFormatter())
    else:
        axis.set_minor_locator(mpl.ticker.NullLocator())  # minor log ticks cost ~40% of a redraw


def mark_exploded(ax: Axes, *, color: str, slot: int = 0) -> tuple[Line2D, Any]:
    """An ✕ on the top edge of the axes with a note, hidden until `place` (below) puts it at a point x.

    ✕ at (x, top of the axes): the value there is inf/NaN, so it has no height to plot.
    """
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    y = 0.96 - 0.11 * slot
    (cross,) = ax.plot([0.0], [y], marker="X", markersize=10, color=color, markeredgecolor="white",
                       markeredgewidth=0.8, linestyle="none", transform=trans, clip_on=False, zorder=5,
                       visible=False, label="_exploded")
    note = ax.annotate("", xy=(0.0, y), xycoords=trans, xytext=(7, -3), textcoords="offset points", color=color,
                       fontsize=8.5, ha="left", va="center", zorder=5, visible=False)
    return cross, note
