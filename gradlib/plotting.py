"""Plots of the experiments' results, in one visual language shared by every chapter.

Every `plot_*` function takes a result dataclass from `gradlib.experiments` (any object with the same
fields will do), draws it on `ax` (a new figure when `ax` is None) and returns the Axes. Nothing is
computed here beyond reshaping: the experiments return data, these functions only draw it.

The visual language:
- one colour per role (`COLORS`): the troubled `baseline` network, and the three highways `attention`,
  `residual` and `norm` (Okabe–Ito palette, safe for colour-blind readers);
- gradient norms on a log y-axis; values that are inf/NaN (an exploded run) are masked, never plotted,
  and the layer where a run exploded is marked with an ✕; a log axis whose view lies within
  [0.001, 10⁴] is labelled with plain numbers ("0.5", "3", "20"), a wider one with powers of ten;
- white figures with dark text, so every figure reads on the site's light and dark themes alike.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Iterator, Mapping, Sequence

import matplotlib as mpl
import numpy as np
from cycler import cycler
from matplotlib import patches
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.transforms import blended_transform_factory

__all__ = [
    "COLORS",
    "CYCLE",
    "RC",
    "style",
    "subplots",
    "role_color",
    "colors_for",
    "masked_log",
    "mark_exploded",
    "plot_depth_profiles",
    "plot_rnn_gradients",
    "plot_path_lengths",
    "plot_rank_collapse",
    "plot_qk_gradients",
    "plot_softmax_saturation",
    "plot_residual_scale",
    "plot_stream_norms",
    "plot_activation_stats",
    "plot_pre_post",
    "plot_norm_comparison",
    "PlainLogFormatter",
    "NORM_LABELS",
    "SCALE_LABELS",
    "draw_relay_vs_group_call",
    "draw_mountain_road_vs_expressway",
]

# Okabe & Ito (2008) colour-blind-safe palette; one colour per role of the story.
COLORS: dict[str, str] = {
    "baseline": "#D55E00",   # vermillion: the troubled network (plain stack, RNN, Post-LN, no scaling)
    "attention": "#0072B2",  # blue: highway 1, attention
    "residual": "#009E73",   # bluish green: highway 2, residual connections
    "norm": "#CC79A7",       # reddish purple: highway 3, normalization
    "reference": "#8C8C8C",  # grey: what is compared against (identity, guides)
    "theory": "#333333",     # dark grey, dashed: what the math predicts
    "accent": "#E69F00",     # orange: anything else that needs to stand out
    "accent2": "#56B4E9",    # sky blue
    "text": "#222222",
    "background": "#FFFFFF",
}

# For series without a role: the palette's remaining colours first, the role colours last.
CYCLE: tuple[str, ...] = (
    COLORS["accent"], COLORS["accent2"], "#000000", COLORS["attention"], COLORS["residual"],
    COLORS["norm"], COLORS["baseline"], "#F0E442",
)

_GRID = "#DDDDDD"
_EDGE = "#444444"

# Applied only inside `style()`; the global rcParams are never touched.
RC: dict[str, Any] = {
    "figure.facecolor": COLORS["background"],
    "figure.edgecolor": COLORS["background"],
    "axes.facecolor": COLORS["background"],
    "savefig.facecolor": COLORS["background"],
    "savefig.edgecolor": COLORS["background"],
    "savefig.transparent": False,
    "text.color": COLORS["text"],
    "axes.labelcolor": COLORS["text"],
    "axes.titlecolor": COLORS["text"],
    "axes.edgecolor": _EDGE,
    "xtick.color": _EDGE,
    "ytick.color": _EDGE,
    "xtick.labelcolor": COLORS["text"],
    "ytick.labelcolor": COLORS["text"],
    "legend.labelcolor": COLORS["text"],
    "legend.frameon": False,
    "legend.fontsize": 8.5,
    "axes.prop_cycle": cycler(color=list(CYCLE)),
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.color": _GRID,
    "grid.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "font.size": 9.5,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib: identical glyphs everywhere (no CJK)
    "mathtext.fontset": "dejavusans",
    "axes.formatter.use_mathtext": True,
    "lines.linewidth": 1.8,
    "lines.markersize": 4.0,
    "figure.figsize": (6.0, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.constrained_layout.use": True,
}


@contextlib.contextmanager
def style(**overrides: Any) -> Iterator[None]:
    """Context in which figures get the course's look; rcParams are restored on exit.

    rc = RC ∪ overrides, applied with matplotlib.rc_context (never to the global rcParams)
    Args:
        overrides: extra rcParams keys, e.g. `style(**{"figure.dpi": 80})`.
    """
    with mpl.rc_context({**RC, **overrides}):
        yield


def subplots(nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Any, Any]:
    """A pyplot figure and axes in the course's style (for notebooks: shows inline).

    fig, axes = plt.subplots(nrows, ncols) inside `style()`
    Args:
        nrows, ncols: grid of axes; kw: passed to `matplotlib.pyplot.subplots` (figsize, sharey, ...).
    """
    import matplotlib.pyplot as plt  # only here: importing gradlib must not pick a backend

    if "figsize" not in kw:
        kw["figsize"] = (min(4.2 * ncols + 1.0, 12.0), 3.4 * nrows + 0.2)
    with style():
        fig, axes = plt.subplots(nrows, ncols, **kw)
    for ax in np.atleast_1d(axes).ravel():
        _dress(ax)
    return fig, axes


# ---------------------------------------------------------------------------------------------- helpers

# Which role a series label belongs to, first match wins: the troubled network first ("no residual" is
# baseline), then norm before residual ("residual + pre-LN" is about the norm).
_ROLE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # depth-scaled residuals (Noci et al.'s 1/√L) are their own series in several figures: one fixed colour
    ("accent", re.compile(r"1/√l|1/sqrt\(?l\)?")),
    ("baseline", re.compile(
        r"\b(baseline|plain|no[ _-]?(skip|residual|norm|scal\w*)|without|unscaled|none|rnn|recurren\w*|"
        r"post\w*|old|sigmoid)\b")),
    ("norm", re.compile(r"\b(norm|layernorm|rmsnorm|ln|layer|rms|pre\w*)\b")),
    ("residual", re.compile(r"\b(residual|skip\w*|rezero|deepnorm|expressway)\b")),
    ("attention", re.compile(r"\b(attention|attn|self-attention|scaled|sqrt\w*)\b")),
)


def role_color(label: str, index: int = 0) -> str:
    """The colour of a series, from the role its label names (else the palette's `index`-th colour).

    'RNN' → baseline, 'attention' → attention, 'residual' → residual, 'pre-LN' → norm, 'post-LN' → baseline
    Args:
        label: the series' label; index: position among the series without a role.
    """
    text = str(label).lower().replace("_", " ")
    for role, pattern in _ROLE_PATTERNS:
        if pattern.search(text):
            return COLORS[role]
    return CYCLE[index % len(CYCLE)]


def colors_for(labels: Sequence[str]) -> list[str]:
    """Distinct colours for the series of one plot: role colours first, the palette for collisions.

    colour_i = role_color(label_i) unless an earlier series already took it
    Args:
        labels: (n,) series labels in drawing order.
    """
    out: list[str] = []
    spare = iter([c for c in CYCLE])
    for i, label in enumerate(labels):
        color = role_color(label, i)
        if color in out:
            color = next((c for c in spare if c not in out), CYCLE[i % len(CYCLE)])
        out.append(color)
    return out


def masked_log(values: Any) -> np.ma.MaskedArray:
    """The values a log axis can show: inf, NaN and ≤ 0 masked (gaps in the line, no crash).

    mask = ¬isfinite(y) ∨ (y ≤ 0)
    Args:
        values: array-like of any shape.
    """
    y = np.asarray(values, dtype=float)
    return np.ma.masked_where(~np.isfinite(y) | (y <= 0), y)


def _masked(values: Any) -> np.ma.MaskedArray:
    y = np.asarray(values, dtype=float)
    return np.ma.masked_where(~np.isfinite(y), y)


def _first_nonfinite(values: Any) -> int | None:
    bad = np.flatnonzero(~np.isfinite(np.asarray(values, dtype=float)))
    return int(bad[0]) if bad.size else None


def exploded_index(result: Any, values: Any = None) -> int | None:
    """Index (0-based, into the result's arrays) of the first exploded entry, or None.

    k = result.exploded_at if the result says so, else the first i with ¬isfinite(values_i)
    Args:
        result: any object, its `exploded_at` attribute is used when present; values: (n,) fallback data.
    """
    k = getattr(result, "exploded_at", None)
    if k is not None:
        return int(k)
    return None if values is None else _first_nonfinite(values)


def mark_exploded(ax: Axes, x: float, *, color: str = COLORS["baseline"], label: str | None = None,
                  slot: int = 0) -> tuple[Line2D, Any]:
    """Mark where a run exploded: an ✕ at x on the top edge of the axes, with a note.

    ✕ at (x, top of the axes) — the value there is inf/NaN, so it has no height to plot
    Args:
        ax: axes; x: position in data coordinates; label: note text; slot: stacks several notes.
    """
    trans = blended_transform_factory(ax.transData, ax.transAxes)
    y = 0.96 - 0.11 * slot
    (cross,) = ax.plot([x], [y], marker="X", markersize=10, color=color, markeredgecolor="white",
                       markeredgewidth=0.8, linestyle="none", transform=trans, clip_on=False, zorder=5)
    note = ax.annotate(label or f"exploded at {x:g}", xy=(x, y), xycoords=trans, xytext=(7, -3),
                       textcoords="offset points", color=color, fontsize=8.5, ha="left", va="center",
                       zorder=5)
    return cross, note


def _axes(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize or RC["figure.figsize"])
    return ax


def _dress(ax: Axes) -> None:
    """Dark ticks and labels on the axes themselves, so they stay right when drawn outside `style()`."""
    ax.set_facecolor(COLORS["background"])
    ax.tick_params(which="both", colors=_EDGE, labelcolor=COLORS["text"])
    ax.grid(True, which="major", color=_GRID, linewidth=0.6)
    ax.set_axisbelow(True)


class PlainLogFormatter(mpl.ticker.LogFormatterSciNotation):
    """Log-axis tick labels as plain numbers ("0.5", "3", "20") while the view lies within `plain_range`.

    label(x) = f"{x:g}" if plain_range ⊇ view interval, else matplotlib's 10ⁿ / a×10ⁿ; which ticks get a label
    (the thinning of minor ticks over a narrow range) stays matplotlib's.
    Args:
        plain_range: (lo, hi), the values that read well as plain numbers; kw: as LogFormatterSciNotation.
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
        if self.plain_range[0] <= lo and hi <= self.plain_range[1]:
            return f"{x:g}"
        return label


def _plain_log_ticks(axis: Any) -> None:
    """Label a log axis (ax.yaxis / ax.xaxis) with PlainLogFormatter, major and minor ticks alike."""
    axis.set_major_formatter(PlainLogFormatter())
    axis.set_minor_formatter(PlainLogFormatter())


def _log_y(ax: Axes, *curves: Any, x: Any = None) -> None:
    """Log y-axis; if no curve has a finite positive value, keep a sane range instead of warning."""
    good = [np.asarray(masked_log(c).compressed()) for c in curves]
    if not any(g.size for g in good):
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
        ax.set_ylim(1e-1, 1e1)
        xs = np.asarray(x, dtype=float) if x is not None else np.zeros(0)
        if xs.size and np.all(np.isfinite(xs)):
            pad = max(0.5, 0.05 * float(xs.max() - xs.min()))
            ax.set_xlim(float(xs.min()) - pad, float(xs.max()) + pad)
        ax.text(0.5, 0.5, "no finite values to show", transform=ax.transAxes, ha="center",
                va="center", color=COLORS["baseline"])
        return
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)


def _legend(ax: Axes, **kw: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, **kw)


def _series(curves: Mapping[str, Any], names: Mapping[str, str] | None = None
            ) -> list[tuple[str, np.ndarray, str]]:
    """(shown label, values, colour) per curve; `names` maps a result's keys to the labels shown."""
    names = names or {}
    labels = [names.get(key, str(key)) for key in curves]
    return [(lab, np.asarray(y, dtype=float), col)
            for lab, y, col in zip(labels, curves.values(), colors_for(labels))]


def _marker_for(n: int) -> str | None:
    return "o" if n <= 24 else None


def _mark_series_explosion(ax: Axes, x: np.ndarray, y: np.ndarray, color: str, what: str, slot: int,
                           result: Any = None) -> int:
    k = exploded_index(result, y) if result is not None else _first_nonfinite(y)
    if k is None or not 0 <= k < len(x):
        return slot
    mark_exploded(ax, float(x[k]), color=color, label=f"exploded at {what} {x[k]:g}", slot=slot)
    return slot + 1


# ------------------------------------------------------------------------------------------------ plots

def plot_depth_profiles(profiles: Any, ax: Axes | None = None, *, title: str | None = None,
                        legend: bool = True, **kw: Any) -> Axes:
    """Per-layer gradient norm of one or more networks, input side on the left, log y.

    y_l = ‖∂loss/∂h_l‖, l = 1 (input side) … L; an ✕ marks `exploded_at`
    Args:
        profiles: a DepthProfile or a list of them (fields label, layer (L,), grad_norms (L,), exploded_at
            — a 0-based index into `layer`, or None).
        ax: axes to draw on; kw: line properties (lw, alpha, ...).
    """
    if hasattr(profiles, "grad_norms"):
        profiles = [profiles]
    profiles = list(profiles)
    with style():
        ax = _axes(ax)
        _dress(ax)
        colors = colors_for([p.label for p in profiles])
        slot = 0
        for p, color in zip(profiles, colors):
            layer = np.asarray(p.layer, dtype=float)
            g = np.asarray(p.grad_norms, dtype=float)
            ax.plot(layer, masked_log(g), color=color, marker=_marker_for(len(layer)), label=p.label, **kw)
            k = exploded_index(p, g)
            if k is not None and 0 <= k < len(layer):
                mark_exploded(ax, float(layer[k]), color=color, label=f"exploded at layer {layer[k]:g}",
                              slot=slot)
                slot += 1
        _log_y(ax, *[p.grad_norms for p in profiles], x=np.concatenate([np.ravel(p.layer) for p in profiles]))
        ax.set_xlabel("layer  (1 = input side; the gradient flows right → left)")
        ax.set_ylabel(r"gradient norm $\|\partial \ell / \partial h_l\|$")
        ax.set_title(title if title is not None else "Gradient reaching each layer")
        if legend:
            _legend(ax, loc="lower right")
    return ax


def plot_rnn_gradients(result: Any, ax: Axes | None = None, *, title: str | None = None,
                       legend: bool = True, **kw: Any) -> Axes:
    """Gradient through time of an RNN for several spectral radii: measured (solid) vs theory (dashed).

    ‖∂h_T/∂h_t‖₂ against T − t; theory ρ^(T−t)
    Args:
        result: RNNGradients (radii (R,), steps (T,), norms (R, T), theory (R, T), activation str).
        ax: axes to draw on; kw: line properties.
    """
    radii = np.asarray(result.radii, dtype=float)
    steps = np.asarray(result.steps, dtype=float)
    norms = np.atleast_2d(np.asarray(result.norms, dtype=float))
    theory = np.atleast_2d(np.asarray(result.theory, dtype=float)) if result.theory is not None else None
    with style():
        ax = _axes(ax)
        _dress(ax)
        cmap = mpl.colormaps["viridis"]
        slot = 0
        for r, rho in enumerate(radii):
            # below 1 vanishes, above 1 explodes: colour runs from blue-green (small ρ) to yellow (large ρ)
            color = cmap(0.1 + 0.75 * r / max(len(radii) - 1, 1))
            ax.plot(steps, masked_log(norms[r]), color=color, label=rf"$\rho$ = {rho:g}", **kw)
            if theory is not None:
                ax.plot(steps, masked_log(theory[r]), color=color, linestyle="--", linewidth=1.2, alpha=0.9)
            slot = _mark_series_explosion(ax, steps, norms[r], color, "distance", slot)
        _log_y(ax, norms, x=steps)
        if theory is not None:
            ax.plot([], [], color=COLORS["theory"], linestyle="--", linewidth=1.2, label=r"theory $\rho^{T-t}$")
        ax.set_xlabel("steps back in time  T − t")
        ax.set_ylabel(r"$\|\partial h_T / \partial h_t\|_2$")
        act = getattr(result, "activation", "")
        ax.set_title(title if title is not None else f"Gradient through time ({act} RNN)".replace(" (", " (", 1))
        if legend:
            _legend(ax, loc="best", ncol=2)
    return ax


def plot_path_lengths(result: Any, ax: Axes | None = None, *, title: str | None = None,
                      legend: bool = True, **kw: Any) -> Axes:
    """How much of token i reaches position j, RNN vs one attention layer, against their distance.

    ‖∂y_j/∂x_i‖_F against |j − i|: exponential decay (RNN, path length O(n)) vs slow decay (attention, O(1))
    Args:
        result: PathLengths (distance (n,), rnn (n,), attention (n,), seq_len int, rho float).
        ax: axes to draw on; kw: line properties.
    """
    d = np.asarray(result.distance, dtype=float)
    rnn = np.asarray(result.rnn, dtype=float)
    att = np.asarray(result.attention, dtype=float)
    with style():
        ax = _axes(ax)
        _dress(ax)
        m = _marker_for(len(d))
        ax.plot(d, masked_log(rnn), color=COLORS["baseline"], marker=m, label="RNN (relay of calls)", **kw)
        ax.plot(d, masked_log(att), color=COLORS["attention"], marker=m, label="attention (group call)", **kw)
        slot = _mark_series_explosion(ax, d, rnn, COLORS["baseline"], "distance", 0)
        _mark_series_explosion(ax, d, att, COLORS["attention"], "distance", slot)
        _log_y(ax, rnn, att, x=d)
        ax.set_xlabel("distance between the tokens  |j − i|")
        ax.set_ylabel(r"$\|\partial y_j / \partial x_i\|_F$")
        rho = getattr(result, "rho", None)
        extra = f", RNN ρ = {rho:g}" if rho is not None else ""
        ax.set_title(title if title is not None else f"Path length: n = {getattr(result, 'seq_len', len(d))}{extra}")
        if legend:
            _legend(ax, loc="best")
    return ax


def plot_rank_collapse(result: Any, ax: Axes | None = None, *, title: str | None = None,
                       legend: bool = True, **kw: Any) -> Axes:
    """Distance of the tokens from rank one, layer by layer (0 = the input), log y.

    r_l = ‖H_l − 1 h̄_lᵀ‖_F / ‖H_l‖_F ; r = 0 means every token is the same vector
    Args:
        result: RankCollapse (layer (L+1,), curves: label -> (L+1,)).
        ax: axes to draw on; kw: line properties.
    """
    layer = np.asarray(result.layer, dtype=float)
    with style():
        ax = _axes(ax)
        _dress(ax)
        slot = 0
        series = _series(result.curves)
        for label, y, color in series:
            ax.plot(layer, masked_log(y), color=color, marker=_marker_for(len(layer)), label=label, **kw)
            slot = _mark_series_explosion(ax, layer, y, color, "layer", slot)
        _log_y(ax, *[y for _, y, _ in series], x=layer)
        ax.set_xlabel("layer  (0 = input)")
        ax.set_ylabel(r"rank-one residual $\|H - \mathbf{1}\bar h^\top\|_F / \|H\|_F$")
        ax.set_title(title if title is not None else "Rank collapse of pure attention")
        if legend:
            _legend(ax, loc="lower left")
    return ax


def plot_qk_gradients(result: Any, ax: Axes | None = None, *, title: str | None = None,
                      legend: bool = True, cosine: bool = True, **kw: Any) -> Axes:
    """Query/key gradient relative to the value gradient at one layer, against depth (log y).

    ‖∇W_Q‖ / ‖∇W_V‖ (solid, left axis); token cosine similarity (dotted, right axis, 0…1)
    Args:
        result: QKGradients (depth (D,), curves: label -> (D,), cosine: label -> (D,), layer: where the ratio
            was measured, "last", "first" or a 1-based index — named in the y-label).
        ax: axes to draw on; cosine: also draw the cosine similarity on a twin axis; kw: line properties.
    """
    depth = np.asarray(result.depth, dtype=float)
    with style():
        ax = _axes(ax)
        _dress(ax)
        series = _series(result.curves)
        slot = 0
        for label, y, color in series:
            ax.plot(depth, masked_log(y), color=color, marker=_marker_for(len(depth)), label=label, **kw)
            slot = _mark_series_explosion(ax, depth, y, color, "depth", slot)
        _log_y(ax, *[y for _, y, _ in series], x=depth)
        ax.set_xlabel("depth (layers)")
        where = _layer_name(getattr(result, "layer", None))
        ax.set_ylabel(r"$\|\nabla W_Q\| \,/\, \|\nabla W_V\|$" + (f"  ({where})" if where else ""))
        cos = getattr(result, "cosine", None) or {}
        if cosine and cos:
            twin = ax.twinx()
            twin.grid(False)
            twin.tick_params(colors=_EDGE, labelcolor=COLORS["text"])
            twin.spines["right"].set_visible(True)
            colors = dict((lab, col) for lab, _, col in series)
            for i, (label, c) in enumerate(cos.items()):
                twin.plot(depth, _masked(c), color=colors.get(label, role_color(label, i)), linestyle=":",
                          linewidth=1.4)
            twin.set_ylim(-0.02, 1.02)
            twin.set_ylabel("token cosine similarity (dotted)")
        ax.set_title(title if title is not None else "Query/key gradients vanish as tokens align")
        if legend:
            _legend(ax, loc="lower left")
    return ax


def _layer_name(layer: Any) -> str:
    """'last' -> 'last layer', 'first' -> 'first layer', 3 or '3' -> 'layer 3', None -> ''."""
    if layer is None:
        return ""
    text = str(layer)
    return f"{text} layer" if text in ("first", "last") else f"layer {text}"


_SATURATION_LABELS = {
    "saturated_fraction": "fraction of rows with max p > 0.99",
    "jacobian_norm": r"softmax Jacobian $\|J\|_2$",
    "query_grad_norm": r"$\|\partial p_i / \partial q_i\|_F$",
}

# How the keys of a SoftmaxSaturation (gradlib.attention's score scales) read in a legend.
SCALE_LABELS: dict[str, str] = {"sqrt_dk": r"scaled by $1/\sqrt{d_k}$", "none": "unscaled"}


def _scale_label(key: str) -> str:
    """'sqrt_dk' -> 'scaled by 1/√d_k', 'none' -> 'unscaled', 'tau=2' -> 'temperature τ = 2'."""
    if key in SCALE_LABELS:
        return SCALE_LABELS[key]
    if str(key).startswith("tau="):
        return rf"temperature $\tau$ = {str(key)[4:]}"
    return str(key)


def plot_softmax_saturation(result: Any, ax: Axes | None = None, *, which: str = "saturated_fraction",
                            title: str | None = None, legend: bool = True,
                            labels: Mapping[str, str] | None = None, **kw: Any) -> Axes:
    """Softmax saturation against the key dimension d_k, with and without the 1/√d_k scaling.

    saturated fraction, ‖J‖₂ with J = diag(p) − ppᵀ, or ‖∂p_i/∂q_i‖_F against d_k (log₂ x)
    Args:
        result: SoftmaxSaturation (d_k (K,), saturated_fraction / jacobian_norm / query_grad_norm:
            scale key -> (K,)).
        which: 'saturated_fraction' (linear y, 0…1), 'jacobian_norm' or 'query_grad_norm' (log y).
        labels: scale key -> legend text (default: 'sqrt_dk' → 'scaled by 1/√d_k', 'none' → 'unscaled',
            'tau=2' → 'temperature τ = 2').
        ax: axes to draw on; kw: line properties.
    """
    if which not in _SATURATION_LABELS:
        raise ValueError(f"which must be one of {', '.join(map(repr, _SATURATION_LABELS))}; got {which!r}")
    d_k = np.asarray(result.d_k, dtype=float)
    curves = getattr(result, which)
    names = {key: _scale_label(key) for key in curves} | dict(labels or {})
    with style():
        ax = _axes(ax)
        _dress(ax)
        series = _series(curves, names)
        slot = 0
        for label, y, color in series:
            ax.plot(d_k, masked_log(y) if which != "saturated_fraction" else _masked(y), color=color,
                    marker=_marker_for(len(d_k)), label=label, **kw)
            slot = _mark_series_explosion(ax, d_k, y, color, "d_k =", slot)
        if np.all(d_k > 0):
            ax.set_xscale("log", base=2)
        if which == "saturated_fraction":
            ax.set_ylim(-0.03, 1.03)
        else:
            _log_y(ax, *[y for _, y, _ in series], x=d_k)
        ax.set_xlabel(r"key dimension $d_k$")
        ax.set_ylabel(_SATURATION_LABELS[which])
        ax.set_title(title if title is not None else r"Why scores are scaled by $1/\sqrt{d_k}$")
        if legend:
            _legend(ax, loc="best")
    return ax


def plot_residual_scale(result: Any, ax: Axes | None = None, *, title: str | None = None,
                        legend: bool = True, **kw: Any) -> Axes:
    """Top singular values of a stack's input–output Jacobian against the branch scale α (log y).

    σ_i(∂y/∂x) for x_{l+1} = x_l + α·f(x_l); α = 0 (ReZero at init) gives every σ_i = 1
    Args:
        result: ResidualScale (alphas (A,), singular_values (A, k), descending per row; optional variant
            "rezero" or "deepnorm", which sets the axis label and the default title).
        ax: axes to draw on; kw: line properties.
    """
    alphas = np.asarray(result.alphas, dtype=float)
    sv = np.asarray(result.singular_values, dtype=float)
    sv = sv.reshape(len(alphas), -1)
    with style():
        ax = _axes(ax)
        _dress(ax)
        k = sv.shape[1]
        slot = 0
        for i in range(k):
            # σ₁ boldest; the rest fade so the spread between them stays readable
            ax.plot(alphas, masked_log(sv[:, i]), color=COLORS["residual"], alpha=1.0 - 0.6 * i / max(k, 1),
                    linewidth=2.0 if i == 0 else 1.3, marker=_marker_for(len(alphas)),
                    label=rf"$\sigma_{{{i + 1}}}$", **kw)
            slot = _mark_series_explosion(ax, alphas, sv[:, i], COLORS["residual"], "α =", slot)
        ax.axhline(1.0, color=COLORS["reference"], linestyle="--", linewidth=1.0, label="identity (σ = 1)")
        _log_y(ax, sv, x=alphas)
        deepnorm = getattr(result, "variant", "rezero") == "deepnorm"
        ax.set_xlabel(r"branch scale $\alpha$  in  " + (r"$\mathrm{LN}(s x + \alpha f(x))$" if deepnorm
                                                         else r"$x + \alpha f(x)$"))
        ax.set_ylabel(r"singular values of $\partial y / \partial x$")
        default = ("DeepNorm stack: Jacobian spectrum vs branch scale" if deepnorm
                   else "Residual stack: Jacobian spectrum vs branch scale")
        ax.set_title(title if title is not None else default)
        if legend:
            _legend(ax, loc="upper left", ncol=2)
    return ax


def plot_stream_norms(result: Any, ax: Axes | None = None, *, title: str | None = None,
                      legend: bool = True, log: bool = False, **kw: Any) -> Axes:
    """Mean token norm of the residual stream, layer by layer.

    ‖x_l‖ (mean over tokens); Pre-LN: E‖x_l‖² grows linearly in l (Xiong et al. 2020)
    Args:
        result: StreamNorms (layer (L,), curves: label -> (L,)).
        ax: axes to draw on; log: log y-axis (for runs that blow up); kw: line properties.
    """
    layer = np.asarray(result.layer, dtype=float)
    with style():
        ax = _axes(ax)
        _dress(ax)
        series = _series(result.curves)
        slot = 0
        for label, y, color in series:
            ax.plot(layer, masked_log(y) if log else _masked(y), color=color, marker=_marker_for(len(layer)),
                    label=label, **kw)
            slot = _mark_series_explosion(ax, layer, y, color, "layer", slot)
        if log:
            _log_y(ax, *[y for _, y, _ in series], x=layer)
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("layer")
        ax.set_ylabel(r"mean token norm $\|x_l\|$")
        ax.set_title(title if title is not None else "Size of the residual stream")
        if legend:
            _legend(ax, loc="upper left")
    return ax


# How the norm keys of the experiments ("none", "layer", "rms", "batch") read in a legend or a table.
NORM_LABELS: dict[str, str] = {"none": "no norm", "layer": "LayerNorm", "rms": "RMSNorm", "batch": "BatchNorm"}


def plot_activation_stats(result: Any, ax: Axes | None = None, *, which: str = "std",
                          title: str | None = None, legend: bool = True,
                          labels: Mapping[str, str] | None = None, **kw: Any) -> Axes:
    """Spread (or mean) of each layer's activations, the forward-pass twin of the gradient profile.

    std_l = std(h_l) on a log y-axis (or mean_l on a linear one)
    Args:
        result: ActivationStats (layer (L,), std: norm key -> (L,), mean: norm key -> (L,)).
        which: 'std' or 'mean'; ax: axes to draw on; kw: line properties.
        labels: norm key -> legend text (default NORM_LABELS: 'none' → 'no norm', 'layer' → 'LayerNorm',
            'rms' → 'RMSNorm'; keys not in it are shown as they are).
    """
    if which not in ("std", "mean"):
        raise ValueError(f"which must be one of 'std', 'mean'; got {which!r}")
    layer = np.asarray(result.layer, dtype=float)
    with style():
        ax = _axes(ax)
        _dress(ax)
        series = _series(getattr(result, which), NORM_LABELS if labels is None else labels)
        slot = 0
        for label, y, color in series:
            ax.plot(layer, masked_log(y) if which == "std" else _masked(y), color=color,
                    marker=_marker_for(len(layer)), label=label, **kw)
            slot = _mark_series_explosion(ax, layer, y, color, "layer", slot)
        if which == "std":
            _log_y(ax, *[y for _, y, _ in series], x=layer)
        else:
            ax.axhline(0.0, color=COLORS["reference"], linewidth=0.8)
        ax.set_xlabel("layer  (1 = input side)")
        ax.set_ylabel("activation std" if which == "std" else "activation mean")
        ax.set_title(title if title is not None else f"Activations, layer by layer ({which})")
        if legend:
            _legend(ax, loc="best")
    return ax


def plot_pre_post(result: Any, ax: Axes | None = None, *, which: str = "last_layer_grad",
                  title: str | None = None, legend: bool = True, **kw: Any) -> Axes:
    """Pre-LN vs Post-LN against depth L on log–log axes, seeds as dots, mean as a line, 1/√L guide.

    last layer's gradient: Post-LN O(d√ln d), flat in L; Pre-LN O(d√(ln d / L)) ∝ 1/√L (Xiong et al. 2020)
    Args:
        result: PrePostSweep (depths (D,), last_layer_grad: 'pre'/'post' -> (D,), per_seed: -> (S, D),
            hidden_norm: -> (D,), implementation str).
        which: 'last_layer_grad' (guide ∝ 1/√L), 'hidden_norm' (guide ∝ √L) or 'per_layer' (‖∇W_2‖ of every
            block of the deepest stack, from `per_layer`: 'pre'/'post' -> (L_max,)); ax: axes; kw: line props.
    """
    if which not in ("last_layer_grad", "hidden_norm", "per_layer"):
        raise ValueError(f"which must be one of 'last_layer_grad', 'hidden_norm', 'per_layer'; got {which!r}")
    if which == "per_layer":
        return _plot_pre_post_per_layer(result, ax, title=title, legend=legend, **kw)
    depths = np.asarray(result.depths, dtype=float)
    curves = getattr(result, which)
    per_seed = (getattr(result, "per_seed", None) or {}) if which == "last_layer_grad" else {}
    names = {"pre": "Pre-LN", "post": "Post-LN"}
    with style():
        ax = _axes(ax)
        _dress(ax)
        labels = [names.get(k, str(k)) for k in curves]
        slot = 0
        for (key, y), label, color in zip(curves.items(), labels, colors_for(labels)):
            y = np.asarray(y, dtype=float)
            if key in per_seed:
                seeds = np.atleast_2d(np.asarray(per_seed[key], dtype=float))
                xs = np.broadcast_to(depths, seeds.shape)
                ax.plot(xs.ravel(), masked_log(seeds).ravel(), linestyle="none", marker="o", markersize=3,
                        color=color, alpha=0.35)
            ax.plot(depths, masked_log(y), color=color, marker="o", label=label, **kw)
            slot = _mark_series_explosion(ax, depths, y, color, "L =", slot)
        anchor_key = "pre" if "pre" in curves else next(iter(curves), None)
        if anchor_key is not None and len(depths):
            y0 = np.asarray(curves[anchor_key], dtype=float)
            ok = np.flatnonzero(np.isfinite(y0) & (y0 > 0))
            if ok.size and np.all(depths > 0):
                i = ok[0]
                power = -0.5 if which == "last_layer_grad" else 0.5
                guide = y0[i] * (depths / depths[i]) ** power
                ax.plot(depths, guide, color=COLORS["theory"], linestyle="--", linewidth=1.1,
                        label=r"$\propto 1/\sqrt{L}$" if power < 0 else r"$\propto \sqrt{L}$")
        if np.all(depths > 0):
            ax.set_xscale("log")
            ax.set_xticks(depths)
            ax.xaxis.set_major_formatter(mpl.ticker.FormatStrFormatter("%g"))
            ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())
        _log_y(ax, *curves.values(), x=depths)
        ax.set_xlabel("depth L (layers)")
        ax.set_ylabel("last layer's weight gradient norm" if which == "last_layer_grad"
                      else r"hidden-state norm $\|x_L\|$")
        impl = getattr(result, "implementation", "")
        default = "Pre-LN vs Post-LN at initialisation" + (f" ({impl})" if impl else "")
        ax.set_title(title if title is not None else default)
        if legend:
            _legend(ax, loc="best")
    return ax


def _plot_pre_post_per_layer(result: Any, ax: Axes | None, *, title: str | None, legend: bool,
                             **kw: Any) -> Axes:
    curves = getattr(result, "per_layer", None) or {}
    names = {"pre": "Pre-LN", "post": "Post-LN"}
    with style():
        ax = _axes(ax)
        _dress(ax)
        labels = [names.get(k, str(k)) for k in curves]
        slot = 0
        ys = []
        for (key, y), label, color in zip(curves.items(), labels, colors_for(labels)):
            y = np.asarray(y, dtype=float)
            layer = np.arange(1, len(y) + 1, dtype=float)
            ys.append(y)
            ax.plot(layer, masked_log(y), color=color, marker=_marker_for(len(y)), label=label, **kw)
            slot = _mark_series_explosion(ax, layer, y, color, "layer", slot)
        _log_y(ax, *ys, x=np.arange(1, max((len(y) for y in ys), default=1) + 1))
        ax.set_xlabel("block  (1 = input side)")
        ax.set_ylabel(r"$\|\nabla W_2\|$ of the block's FFN")
        depth = max((len(y) for y in ys), default=0)
        ax.set_title(title if title is not None else f"Weight gradient of every block, L = {depth}")
        if legend:
            _legend(ax, loc="best")
    return ax


def _table_cell(value: Any, digits: int) -> str:
    if isinstance(value, str):
        return "fails" if value.startswith("fails") else value
    return f"{float(value):.{digits}g}"


def plot_norm_comparison(result: Any, ax: Axes | None = None, *, title: str | None = None, digits: int = 2,
                         labels: Mapping[str, str] | None = None) -> Axes:
    """The norm comparison as a table: one row per test, one column per norm, changed cells tinted.

    cell = max |Δ output| between two situations that should not matter ("fails": the norm refused)
    Args:
        result: NormComparison (rows: list of {"test": str, "batch"/"layer"/"rms": float or "fails: …" str}).
        ax: axes to draw on (turned off; the table fills it); digits: significant digits shown.
        labels: column key -> heading (default NORM_LABELS: 'batch' → 'BatchNorm', ...).
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits must be an integer >= 1; got {digits!r}")
    rows = list(result.rows)
    names = NORM_LABELS if labels is None else labels
    kinds = [k for k in ("batch", "layer", "rms") if any(k in row for row in rows)]
    kinds += [k for row in rows for k in row if k != "test" and k not in kinds]
    text = [[_table_cell(row.get(k, ""), digits) for k in kinds] for row in rows]
    changed = [[isinstance(row.get(k), str) or float(row.get(k, 0.0)) != 0.0 for k in kinds] for row in rows]
    tint = {True: mpl.colors.to_rgba(COLORS["baseline"], 0.16), False: mpl.colors.to_rgba(COLORS["norm"], 0.12)}
    with style():
        ax = _axes(ax, (7.2, 0.5 + 0.42 * (len(rows) + 1)))
        ax.set_facecolor(COLORS["background"])
        ax.axis("off")
        table = ax.table(
            cellText=text,
            rowLabels=[str(row["test"]) for row in rows],
            colLabels=[names.get(k, k) for k in kinds],
            cellColours=[[tint[c] for c in line] for line in changed],
            cellLoc="center",
            rowLoc="right",
            loc="center right",
            colWidths=[0.16] * len(kinds),
        )
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1.0, 1.5)
        for (r, c), cell in table.get_celld().items():
            cell.set_edgecolor(_GRID)
            cell.get_text().set_color(COLORS["text"])
            if r == 0:
                cell.get_text().set_fontweight("bold")
        ax.set_title(title if title is not None else "Max |change of the output|  (0 = unaffected)")
    return ax


# --------------------------------------------------------------------------------------------- diagrams

def _box(ax: Axes, x: float, y: float, text: str, color: str, *, w: float = 0.78, h: float = 0.5,
         fill_alpha: float = 0.18, fontsize: float = 9.0) -> patches.FancyBboxPatch:
    fill = mpl.colors.to_rgba(color, fill_alpha)
    box = patches.FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.1",
                                 facecolor=fill, edgecolor=color, linewidth=1.5, zorder=3)
    ax.add_patch(box)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color=COLORS["text"], zorder=4)
    return box


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], color: str, *, lw: float = 1.6,
           alpha: float = 1.0, rad: float = 0.0, style_: str = "-|>", ls: str = "-") -> patches.FancyArrowPatch:
    arrow = patches.FancyArrowPatch(start, end, arrowstyle=style_, mutation_scale=11, color=color,
                                    linewidth=lw, alpha=alpha, linestyle=ls, zorder=2,
                                    connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0)
    ax.add_patch(arrow)
    return arrow


def _diagram_axes(ax: Axes | None, xlim: tuple[float, float], ylim: tuple[float, float],
                  figsize: tuple[float, float]) -> Axes:
    ax = _axes(ax, figsize)
    ax.set_facecolor(COLORS["background"])
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")
    return ax


def draw_relay_vs_group_call(ax: Axes | None = None, *, n_tokens: int = 5) -> Axes:
    """Diagram: recurrence as a relay of phone calls vs attention as one group call.

    path from token 1 to token n: n − 1 hand-offs in an RNN, 1 hop in self-attention
    Args:
        ax: axes to draw on (a new 10×4 figure when None); n_tokens: tokens on each side (3…8).
    """
    if not 3 <= n_tokens <= 8:
        raise ValueError(f"n_tokens must be between 3 and 8; got {n_tokens!r}")
    with style():
        ax = _diagram_axes(ax, (0.0, 11.0), (0.0, 4.4), (10.0, 4.0))
        base, att = COLORS["baseline"], COLORS["attention"]
        # left: a relay — each hand-off passes on a fainter message
        ax.text(2.6, 4.15, "Recurrence: a relay of phone calls", ha="center", va="center", fontsize=11,
                color=base, weight="bold")
        xs = np.linspace(0.55, 4.65, n_tokens)
        y = 2.4
        for i, x in enumerate(xs):
            _box(ax, x, y, f"token {i + 1}", base, w=0.78, fill_alpha=0.30 * (1 - i / n_tokens) + 0.04,
                 fontsize=8)
            if i:
                _arrow(ax, (xs[i - 1] + 0.40, y), (x - 0.40, y), base, alpha=1.0 - 0.7 * i / n_tokens)
        ax.annotate("", xy=(xs[-1], 1.55), xytext=(xs[0], 1.55),
                    arrowprops=dict(arrowstyle="<->", color=COLORS["reference"], lw=1.0))
        ax.text(2.6, 1.2, f"token 1 reaches token {n_tokens} after {n_tokens - 1} hand-offs",
                ha="center", va="center", fontsize=8.5)
        ax.text(2.6, 0.75, "path length grows with n: O(n) — the gradient is multiplied at every step",
                ha="center", va="center", fontsize=7.5, color=COLORS["theory"])
        # right: a group call — every pair is connected directly
        cx, cy, r = 8.3, 2.2, 1.35
        ax.text(cx, 4.15, "Attention: one group call", ha="center", va="center", fontsize=11, color=att,
                weight="bold")
        angles = np.pi / 2 + 2 * np.pi * np.arange(n_tokens) / n_tokens
        pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
        for i in range(n_tokens):
            for j in range(i + 1, n_tokens):
                ax.plot(pts[[i, j], 0], pts[[i, j], 1], color=att, alpha=0.55, linewidth=1.3, zorder=1)
        for i, (x, y_) in enumerate(pts):
            _box(ax, x, y_, f"{i + 1}", att, w=0.5, h=0.42, fill_alpha=0.22, fontsize=8.5)
        ax.text(cx, 0.38, "every token hears every other directly: path length O(1)", ha="center",
                va="center", fontsize=8.5)
    return ax


def draw_mountain_road_vs_expressway(ax: Axes | None = None, *, n_layers: int = 4) -> Axes:
    """Diagram: a plain stack (one winding road through every layer) vs a residual stack (skip lanes).

    plain: ∂y/∂x = Π_l J_l ; residual: ∂x_{l+1}/∂x_l = I + J_l, the identity lane never narrows
    Args:
        ax: axes to draw on (a new 9×5 figure when None); n_layers: layers drawn in each stack (2…6).
    """
    if not 2 <= n_layers <= 6:
        raise ValueError(f"n_layers must be between 2 and 6; got {n_layers!r}")
    with style():
        ax = _diagram_axes(ax, (0.0, 10.0), (-1.35, n_layers + 2.5), (9.0, 5.2))
        base, res = COLORS["baseline"], COLORS["residual"]
        top = n_layers + 1
        for cx, color, heading in ((2.5, base, "Plain stack: a mountain road"),
                                   (7.3, res, "Residual stack: an expressway")):
            ax.text(cx, top + 1.0, heading, ha="center", va="center", fontsize=11, color=color,
                    weight="bold")
            _box(ax, cx, 0, "input x", COLORS["reference"], w=1.6, h=0.5, fill_alpha=0.15)
            _box(ax, cx, top, "output", COLORS["reference"], w=1.6, h=0.5, fill_alpha=0.15)
        # left: the only road zig-zags through every layer, hairpin after hairpin
        cx = 2.5
        stops = [(cx, 0.0)] + [(cx + (0.75 if level % 2 else -0.75), float(level))
                               for level in range(1, n_layers + 1)] + [(cx, float(top))]
        for level in range(1, n_layers + 1):
            _box(ax, stops[level][0], level, f"layer {level}", base, w=1.3, h=0.5)
        for (x0, y0), (x1, y1) in zip(stops[:-1], stops[1:]):
            _arrow(ax, (x0, y0 + 0.26), (x1, y1 - 0.26), base, lw=1.8, rad=0.3 if x1 > x0 else -0.3)
        ax.text(cx, -0.75, "the gradient must pass every layer:", ha="center", va="center", fontsize=8.5)
        ax.text(cx, -1.12, r"$\partial y/\partial x = J_L \cdots J_2 J_1$", ha="center", va="center",
                fontsize=9.5, color=base)
        # right: each layer is a side road f(x); the skip lane carries x straight past it to ⊕
        cx = 7.3
        lane_x, f_x = cx + 0.6, cx - 0.55
        below = 0.25  # where the lane leaves the input box
        for level in range(1, n_layers + 1):
            plus_y = level + 0.45
            _box(ax, f_x, level, f"f{level}", res, w=1.0, h=0.5)
            ax.add_patch(patches.Circle((lane_x, plus_y), 0.14, facecolor="white", edgecolor=res,
                                        linewidth=1.3, zorder=4))
            ax.text(lane_x, plus_y, "+", ha="center", va="center", fontsize=9, color=res, zorder=5)
            _arrow(ax, (lane_x, below), (lane_x, plus_y - 0.14), res, lw=3.0)               # skip lane
            _arrow(ax, (lane_x, below + 0.1), (f_x + 0.2, level - 0.26), res, lw=1.0, alpha=0.7)  # into f
            _arrow(ax, (f_x + 0.2, level + 0.26), (lane_x - 0.14, plus_y), res, lw=1.0, alpha=0.7)  # f back
            below = plus_y + 0.14
        _arrow(ax, (lane_x, below), (lane_x, top - 0.26), res, lw=3.0)
        ax.text(lane_x + 0.22, 0.62, "skip\nlane", fontsize=7.5, color=res, ha="left", va="center")
        ax.text(cx, -0.75, "every ⊕ keeps an identity lane:", ha="center", va="center", fontsize=8.5)
        ax.text(cx, -1.12, r"$\partial x_{l+1}/\partial x_l = I + J_l$", ha="center", va="center",
                fontsize=9.5, color=res)
    return ax
