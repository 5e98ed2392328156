"""Chapter 5's figures and explorer: what the attention score does to the softmax, drawn once for both.

    RegimeFigure          SoftmaxRegimes (+ one setting)  entropy H/log S, 2‖J‖₂, saturated fraction against m
    KeyScaleFigure        KeyScaleSweep                   ‖∂L/∂q_i‖ (median row) and ‖∂L/∂Q‖_F against c, turns dotted
    LogitGrowthFigure     LogitGrowth                     max |logit| against the W_Q, W_K scale w, bounds dashed
    scores_explorer       logit scale m, d_k, ÷√d_k       → exp_scores.softmax_regimes → RegimeFigure

The figures are gradlib.figures.CurveFigure's (colours by role, theory dashed); a plot_* builds one on new or
given axes and calls its ``show`` once, the explorer keeps one and calls ``show`` on every step.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np
from matplotlib.axes import Axes

from gradlib import style as gs
from gradlib.controls import checkbox, choice, log_slider, static_texts
from gradlib.exp_scores import SoftmaxRegimes, softmax_regimes
from gradlib.explorer import Explorer, FigureView
from gradlib.figures import CurveFigure, _plot
from gradlib.i18n import _
from gradlib.static import StaticExplorer, static_explorer
from gradlib.threads import one_torch_thread

__all__ = ["RegimeFigure", "KeyScaleFigure", "LogitGrowthFigure", "plot_softmax_regimes", "plot_key_scale_sweep",
           "plot_logit_growth", "regimes_compute", "regimes_view", "scores_explorer", "REGIME_ROWS", "REGIME_KEYS"]

# Small sizes: one uncached step (a 19-point sweep of 64 softmax rows, then the redraw) well under 100 ms.
REGIME_ROWS, REGIME_KEYS = 64, 16
MULTIPLIERS = tuple(np.logspace(-1, 2, 19))  # the x-axis: logits × m, m = 0.1 … 100
STATIC_DPI = 110


def _regime_title(regimes: SoftmaxRegimes, at: Optional[SoftmaxRegimes]) -> str:
    head = f"d_k = {regimes.d_k}, {'÷ √d_k' if regimes.scaled else _('unscaled')}"
    if at is None:
        return head
    m, (h, j, s) = at["entropy"].x[0], (at[k].y[0] for k in ("entropy", "jacobian", "saturated"))
    return _("{head}, m = {m}:  H {h} · 2‖J‖ {j} · saturated {s}").format(
        head=head, m=f"{m:.3g}", h=f"{h:.2f}", j=f"{j:.2f}", s=f"{s:.0%}")


class RegimeFigure(CurveFigure):
    """The three regimes of the softmax against the logit multiplier m (log x); one setting ringed, if given."""

    def __init__(self, ax: Axes, **kw: Any) -> None:
        super().__init__(ax, xlabel=_("logit scale m  (logits × m)"), ylabel=_("fraction of its maximum"),
                         logy=False, logx=True, ylim=(-0.03, 1.03), legend=kw.pop("legend", "center right"),
                         title=_("Flat, sharp, saturated"), **kw)
        (self.ring,) = ax.plot([], [], linestyle="none", marker="o", markersize=9, markerfacecolor="none",
                                markeredgecolor=gs.COLORS["text"], markeredgewidth=1.6, label="_setting")
        self.rule = ax.axvline(1.0, color=gs.COLORS["text"], linestyle=":", linewidth=1.0, label="_setting")

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        regimes, at = result if isinstance(result, tuple) else (result, None)
        self.update(list(regimes), title=_regime_title(regimes, at) if title is None else title)
        self.ring.set_visible(at is not None)
        self.rule.set_visible(at is not None)
        if at is not None:
            m = float(at["entropy"].x[0])
            self.ring.set_data([m] * len(at), [c.y[0] for c in at])
            self.rule.set_xdata([m, m])


class KeyScaleFigure(CurveFigure):
    """Query gradients against the key scale c (log-log), each curve's turning point dotted."""

    def __init__(self, ax: Axes, **kw: Any) -> None:
        super().__init__(ax, xlabel=_("key scale c  (K ← c·K)"), ylabel=r"$\|\partial L / \partial Q\|$",
                         logx=True, legend=kw.pop("legend", "lower center"),
                         title=_("Larger keys: more gradient, then none"), **kw)
        self.rules = [ax.axvline(1.0, linestyle=":", linewidth=1.2, label="_turn") for _ in range(2)]

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        curves = [result.query_grad_row, result.query_grad]
        self.update(curves, title=title)
        top = max(float(np.nanmax(c.y)) for c in curves)
        self.ax.set_ylim(top * 1e-12, top * 10)  # twelve decades: the rise stays visible, the collapse exits below
        for rule, c, color in zip(self.rules, curves, gs.colors_for([c.role for c in curves])):
            x = float(c.x[int(np.argmax(c.y))])
            rule.set_xdata([x, x])
            rule.set_color(color)


class LogitGrowthFigure(CurveFigure):
    """The largest attention logit against the scale w of W_Q and W_K, per variant; each bound dashed."""

    def __init__(self, ax: Axes, **kw: Any) -> None:
        super().__init__(ax, xlabel=_("scale w of W_Q and W_K"), ylabel=_("largest |logit|"), logx=True, xbase=2,
                         theory_label=_("bound"), legend=kw.pop("legend", "upper left"),
                         title=_("Attention logits as the weights grow"), **kw)

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        self.update(list(result), title=title)


def plot_softmax_regimes(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None) -> Axes:
    """SoftmaxRegimes, or (SoftmaxRegimes, the one-point SoftmaxRegimes of a setting) with that setting ringed."""
    return _plot(RegimeFigure, result, ax, title)


def plot_key_scale_sweep(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None) -> Axes:
    """KeyScaleSweep: median row ‖∂L/∂q_i‖ and whole ‖∂L/∂Q‖_F against c, where each turns dotted."""
    return _plot(KeyScaleFigure, result, ax, title)


def plot_logit_growth(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None) -> Axes:
    """LogitGrowth: max |logit| against w, plain (∝ w²) and with QK-norm and σReparam, their bounds dashed."""
    return _plot(LogitGrowthFigure, result, ax, title)


# ------------------------------------------------------------------------------------------------ explorer
@functools.lru_cache(maxsize=64)
def _sweep(d_k: int, scaled: bool, n_rows: int, n_keys: int, seed: int) -> SoftmaxRegimes:
    return softmax_regimes(MULTIPLIERS, d_k=d_k, scaled=scaled, n_rows=n_rows, n_keys=n_keys, seed=seed)


def regimes_compute(logit_scale: float = 1.0, d_k: int = 64, scaled: bool = True, *, n_rows: int = REGIME_ROWS,
                    n_keys: int = REGIME_KEYS, seed: int = 0) -> tuple[SoftmaxRegimes, SoftmaxRegimes]:
    """The sweep over m for (d_k, scaled), cached, and the one point m = logit_scale (exp_scores.softmax_regimes).

    Args:
        logit_scale: m > 0, the setting ringed; d_k, scaled, n_rows, n_keys, seed: as in softmax_regimes.
    """
    with one_torch_thread():
        at = softmax_regimes((float(logit_scale),), d_k=d_k, scaled=scaled, n_rows=n_rows, n_keys=n_keys, seed=seed)
        return _sweep(int(d_k), bool(scaled), n_rows, n_keys, seed), at


def regimes_view(**kw: Any) -> FigureView:
    """A FigureView of RegimeFigure; the ringed setting's three numbers in its title (the site has no caption)."""
    return FigureView(RegimeFigure, **kw)


def scores_explorer(*, compute: Optional[Callable[..., Any]] = None, static: bool = False,
                    grid: Optional[Mapping[str, Sequence[Any]]] = None) -> Union[Explorer, StaticExplorer]:
    """Chapter 5: logit scale m, key width d_k and the 1/√d_k scale → entropy, ‖J_softmax‖₂, saturated rows.

    p = softmax(m·s·q Kᵀ), s = 1/√d_k or 1; J = diag(p) − ppᵀ
    Args:
        compute: replaces :func:`regimes_compute` (same keywords: logit_scale, d_k, scaled).
        static: return the kernel-free StaticExplorer instead; grid: its grid (default 5 m × 3 d_k × 2).
    """
    controls = [
        log_slider("logit_scale", 0.1, 100.0, 1.0, step=0.1, label=_("logit scale m")),
        choice("d_k", (16, 64, 256, 1024), 64, label="d_k", buttons=True),
        checkbox("scaled", True, label=_("divide the scores by √d_k")),
    ]
    compute = compute or regimes_compute
    title = _("The softmax's three regimes")
    if static:
        g = grid or {"logit_scale": [0.3, 1.0, 3.0, 10.0, 30.0], "d_k": [16, 64, 1024], "scaled": [True, False]}
        initial = {c.name: c.value for c in controls if c.name in g and c.value in list(g[c.name])}
        return static_explorer(compute, regimes_view(dpi=STATIC_DPI), g, title=title, initial=initial, **static_texts(controls, g))
    return Explorer(compute, regimes_view(), controls, title=title)
