"""The course's figures, each drawn by ONE piece of code that the notebook and the live explorer both call.

A figure is a :class:`CurveFigure` on one Axes: ``show(result)`` turns a result of the experiments into
:class:`gradlib.results.Curve` objects and moves the figure's lines to them (``Line2D.set_data``; lines are
created on first use and reused, never rebuilt). The notebook functions ``plot_*`` build a figure on new (or
given) axes and call ``show`` once; the explorers of gradlib.explorers keep one figure and call ``show`` on
every slider step. So the two can never draw different things.

    figure class            result                      y (against x)
    DepthProfileFigure      DepthProfile(s)             ‖∂ℓ/∂h_l‖ against layer l
    RNNFigure               RNNGradients                ‖∂h_T/∂h_t‖₂ against T − t, theory ρ^(T−t) dashed
    PathLengthFigure        PathLengths                 ‖∂y_j/∂x_i‖_F against |j − i|
    RankCollapseFigure      RankCollapse                ‖H − 1h̄ᵀ‖_F/‖H‖_F against layer
    (see gradlib.charts for the other results)
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from gradlib import style as gs
from gradlib.i18n import _
from gradlib.results import Curve

__all__ = ["CurveFigure", "DepthProfileFigure", "RNNFigure", "PathLengthFigure", "RankCollapseFigure",
           "plot_depth_profiles", "plot_rnn_gradients", "plot_path_lengths", "plot_rank_collapse", "plot_curves",
           "drawn"]


class CurveFigure:
    """Curves on one Axes, drawn and then moved in place; colours from the curves' roles.

    update(curves): line i ← curves[i] (data, colour by role, label, markers); theory dashed in the same colour;
    an ✕ where a curve exploded; limits from the data. Unused lines are hidden.

    Args:
        ax: the Axes to draw on (the figure owns its lines, not the whole Axes).
        xlabel, ylabel: axis labels; logy, logx: log axes (base `xbase` for x); ylim: fixed y-limits.
        exploded: how the ✕ note names a position, e.g. "layer" → "exploded at layer 7".
        theory_label: legend text of the dashed theory lines (one entry for all of them).
        dots: draw the measured points as unconnected dots (so a dashed theory underneath stays visible).
        fade: successive curves of the same role get lighter (σ1 boldest, σ2 …).
        linestyle: of the measured lines; minor_ticks: minor log ticks (False: a faster redraw for widgets).
        legend: legend location, or None for none.
    """

    def __init__(self, ax: Axes, *, xlabel: str, ylabel: str, logy: bool = True, logx: bool = False,
                 xbase: int = 10, ylim: Optional[tuple[float, float]] = None, exploded: str = "x =",
                 theory_label: Optional[str] = None, dots: bool = False, fade: bool = False,
                 linestyle: str = "-", minor_ticks: bool = True, legend: Optional[str] = "best",
                 title: str = "") -> None:
        self.ax = ax
        self.logy, self.logx, self.ylim = logy, logx, ylim
        self.exploded, self.theory_label = exploded, theory_label
        self.dots, self.fade, self.linestyle, self.legend_loc = dots, fade, linestyle, legend
        self.default_title = title
        self.lines: list[Line2D] = []
        self.theories: list[Line2D] = []
        self.marks: list[tuple[Line2D, Any]] = []
        self._legend_key: Optional[tuple] = None
        with gs.style():
            gs.dress(ax)
            # the figure sets its own limits (_limits): matplotlib's autoscaling of the still-empty lines would
            # log-scale a view of (0, 1) and warn "Data has no positive values"
            ax.set_autoscale_on(False)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if logy:
                ax.set_yscale("log")
                gs.plain_log_ticks(ax.yaxis, minor=minor_ticks)
            if logx:
                ax.set_xscale("log", base=xbase)
                if xbase == 10:
                    gs.plain_log_ticks(ax.xaxis, minor=minor_ticks)
            if ylim is not None:
                ax.set_ylim(*ylim)
            self.title = ax.set_title(title)

    def _line(self, i: int) -> tuple[Line2D, Line2D, tuple[Line2D, Any]]:
        while len(self.lines) <= i:
            (line,) = self.ax.plot([], [], linestyle="none" if self.dots else self.linestyle)
            (theory,) = self.ax.plot([], [], linestyle="--", linewidth=1.2, alpha=0.9, label="_theory")
            self.lines.append(line)
            self.theories.append(theory)
            self.marks.append(gs.mark_exploded(self.ax, color="black", slot=len(self.marks)))
        return self.lines[i], self.theories[i], self.marks[i]

    def update(self, curves: Sequence[Curve], *, title: Optional[str] = None) -> None:
        """Show exactly these curves (in this order) and this title; everything else is hidden."""
        with gs.style():
            colors = gs.colors_for([c.role for c in curves])
            seen: dict[str, int] = {}
            slot = 0
            for i, (c, color) in enumerate(zip(curves, colors)):
                line, theory, (cross, note) = self._line(i)
                rank = seen.get(c.role, 0)
                seen[c.role] = rank + 1
                alpha = 1.0 - 0.6 * rank / max(len(curves), 1) if self.fade else 1.0
                y = gs.masked_log(c.y).filled(np.nan) if self.logy else np.where(np.isfinite(c.y), c.y, np.nan)
                line.set_data(c.x, y)
                line.set(color=color, label=c.label, alpha=alpha, visible=True,
                         marker="o" if self.dots or len(c.x) <= 24 else "None",
                         markersize=3 if self.dots else 4, linewidth=2.0 if self.fade and rank == 0 else 1.8)
                theory.set_visible(c.theory is not None)
                if c.theory is not None:
                    t = (gs.masked_log(c.theory).filled(np.nan) if self.logy
                         else np.where(np.isfinite(c.theory), c.theory, np.nan))
                    theory.set_data(c.x, t)
                    theory.set_color(color)
                k = c.exploded_at
                exploded = k is not None and 0 <= k < len(c.x)
                cross.set_visible(exploded)
                note.set_visible(exploded)
                if exploded:
                    y_slot = 0.96 - 0.11 * slot
                    cross.set_data([c.x[k]], [y_slot])
                    cross.set_color(color)
                    note.xy = (c.x[k], y_slot)
                    note.set_text(_("exploded at {where} {x}").format(where=self.exploded, x=f"{c.x[k]:g}"))
                    note.set_color(color)
                    slot += 1
            for j in range(len(curves), len(self.lines)):
                self.lines[j].set_visible(False)
                self.theories[j].set_visible(False)
                self.marks[j][0].set_visible(False)
                self.marks[j][1].set_visible(False)
            self._limits(curves)
            self.title.set_text(self.default_title if title is None else title)
            self._update_legend(curves, colors)

    def _limits(self, curves: Sequence[Curve]) -> None:
        xs = np.concatenate([np.asarray(c.x, dtype=float) for c in curves] or [np.zeros(1)])
        lo, hi = float(np.nanmin(xs)), float(np.nanmax(xs))
        if self.logx and lo > 0:
            self.ax.set_xlim(lo / 1.15, hi * 1.15)
        else:
            integers = bool(np.all(np.isclose(xs, np.round(xs))))  # layers, depths: half a step either side
            pad = 0.5 if integers and hi - lo < 30 else 0.04 * (hi - lo) if hi > lo else 0.5
            self.ax.set_xlim(lo - pad, hi + pad)
        if self.ylim is not None:
            return
        values = [c.y for c in curves] + [c.theory for c in curves if c.theory is not None]
        if self.logy:
            self.ax.set_ylim(*gs.log_limits(values))
            return
        finite = np.concatenate([np.asarray(v, dtype=float)[np.isfinite(v)] for v in values] or [np.zeros(1)])
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        pad = 0.06 * (hi - lo) if hi > lo else 0.5
        self.ax.set_ylim(lo - pad, hi + pad)

    def _update_legend(self, curves: Sequence[Curve], colors: list[str]) -> None:
        has_theory = any(c.theory is not None for c in curves) and self.theory_label is not None
        key = (tuple(c.label for c in curves), tuple(colors), has_theory)
        if self.legend_loc is None or key == self._legend_key:
            return  # rebuilding a legend is the slowest part of a redraw: only when it changes
        self._legend_key = key
        handles = self.lines[: len(curves)]
        if has_theory:
            proxy = Line2D([], [], color=gs.ROLE_COLORS["theory"], linestyle="--", linewidth=1.2,
                           label=self.theory_label)
            handles = [*handles, proxy]
        if self.ax.get_legend() is not None:
            self.ax.get_legend().remove()
        if len(handles) > 1 or has_theory:
            self.ax.legend(handles=handles, loc=self.legend_loc)


def drawn(ax: Axes) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """What an Axes shows as data: (label, x, y) of every visible labelled line (for tests and checks)."""
    return [(line.get_label(), np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float))
            for line in ax.lines if line.get_visible() and not line.get_label().startswith("_")]


# ----------------------------------------------------------------------------------------------- figures
def _profiles(result: Any) -> list:
    return [result] if hasattr(result, "grad_norms") else list(result)


class DepthProfileFigure(CurveFigure):
    """Per-layer gradient norms of one or more DepthProfiles, input side on the left, log y."""

    def __init__(self, ax: Axes, **kw: Any) -> None:
        # short labels: every glyph is re-rendered on each slider step of the explorers that show this figure
        super().__init__(ax, xlabel=_("layer  (1 = input side)"), ylabel=r"$\|\partial \ell / \partial h_l\|$",
                         exploded=_("layer"),
                         legend=kw.pop("legend", "lower right"), title=_("Gradient reaching each layer"), **kw)

    def show(self, profiles: Any, *, title: Optional[str] = None) -> None:
        self.update([p.curve for p in _profiles(profiles)], title=title)


class RNNFigure(CurveFigure):
    """Gradient through time, one curve per spectral radius, measured against the theory ρ^(T−t) (dashed)."""

    def __init__(self, ax: Axes, **kw: Any) -> None:
        super().__init__(ax, xlabel=_("steps back in time  T − t"), ylabel=r"$\|\partial h_T / \partial h_t\|_2$",
                         exploded=_("distance"), theory_label=_(r"theory $\rho^{T-t}$"), **kw)

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        default = _("Gradient through time ({activation} RNN)").format(activation=result.activation)
        self.update(list(result.curves), title=default if title is None else title)


class PathLengthFigure(CurveFigure):
    """How much of token i reaches position j, RNN vs one attention layer, against their distance (log y)."""

    def __init__(self, ax: Axes, **kw: Any) -> None:
        super().__init__(ax, xlabel=_("distance between the tokens  |j − i|"),
                         ylabel=r"$\|\partial y_j / \partial x_i\|_F$", exploded=_("distance"),
                         legend=kw.pop("legend", "lower left"), **kw)

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        default = _("n = {n} tokens, RNN spectral radius ρ = {rho}").format(n=result.seq_len,
                                                                              rho=f"{result.rho:.2g}")
        self.update(list(result.curves), title=default if title is None else title)


class RankCollapseFigure(CurveFigure):
    """Distance of the tokens from rank one, layer by layer (0 = the input), log y."""

    def __init__(self, ax: Axes, **kw: Any) -> None:
        super().__init__(ax, xlabel=_("layer  (0 = input)"),
                         ylabel=_(r"rank-one residual $\|H - \mathbf{1}\bar h^\top\|_F / \|H\|_F$"), exploded=_("layer"),
                         legend=kw.pop("legend", "lower left"), title=_("Rank collapse of pure attention"), **kw)

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        self.update(list(result.curves), title=title)


def _plot(figure_class: type, result: Any, ax: Optional[Axes], title: Optional[str], **kw: Any) -> Axes:
    fig = figure_class(gs.new_axes(ax), **kw)
    fig.show(result, title=title)
    return fig.ax


def plot_depth_profiles(profiles: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None) -> Axes:
    """Per-layer gradient of DepthProfile(s): ‖∂ℓ/∂h_l‖ against l, an ✕ where a run exploded."""
    return _plot(DepthProfileFigure, profiles, ax, title)


def plot_rnn_gradients(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None,
                       dots: bool = False) -> Axes:
    """RNNGradients: ‖∂h_T/∂h_t‖₂ against T − t per ρ, theory ρ^(T−t) dashed; `dots`: measured points as dots."""
    return _plot(RNNFigure, result, ax, title, dots=dots)


def plot_path_lengths(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None) -> Axes:
    """PathLengths: ‖∂y_j/∂x_i‖_F against |j − i|, RNN (exponential) vs attention (about 1/n)."""
    return _plot(PathLengthFigure, result, ax, title)


def plot_rank_collapse(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None) -> Axes:
    """RankCollapse: r(H_l) against the layer, one curve per variant."""
    return _plot(RankCollapseFigure, result, ax, title)


def plot_curves(curves: Any, ax: Optional[Axes] = None, *, xlabel: str, ylabel: str, title: str = "",
                logy: bool = True, logx: bool = False, exploded: str = "x =", theory_label: Optional[str] = None,
                legend: Optional[str] = "best") -> Axes:
    """Any CurveSet (or list of Curves) on one CurveFigure: the figure for a result without a class of its own.

    Colours from the curves' roles, theory dashed, ✕ where a curve exploded, as every other figure.
    """
    fig = CurveFigure(gs.new_axes(ax), xlabel=xlabel, ylabel=ylabel, logy=logy, logx=logx, exploded=exploded,
                      theory_label=theory_label, legend=legend, title=title)
    fig.update(list(curves))
    return fig.ax
