"""Chapter 7's figures: training histories over seeds, one drawing per figure for notebook and explorer alike.

    HistoryFigure(which=…)   y against the training step, a thin line per seed and the median bold
        "loss"           training loss, chance ln V dotted
        "update_first"   ‖ΔW₁‖/‖W₁‖ of the first layer per step (log), the 1e-3 rule of thumb dotted
        "update_last"    the same for the last layer
        "entropy"        smallest attention entropy of any head (nats), log T dotted
        "layer_ratio"    ‖∂ℓ/∂h_1‖ / ‖∂ℓ/∂h_L‖ through the probes (log), 1 dotted
    plot_lr_sweep        final loss against the learning rate (log x), every seed a dot, the "trained" line

Lines are created once and moved (``set_data``) on every ``show``, as in gradlib.figures, so a live explorer
redraws in a few milliseconds. Colours come from the runs' roles (gradlib.style).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

from gradlib import style as gs
from gradlib.i18n import N_, _

__all__ = ["WHICH", "HistoryFigure", "plot_history", "plot_lr_sweep", "plot_message"]

UPDATE_RULE = 1e-3
WHICH = {  # which -> (y label, log y, reference line name)
    "loss": (N_("training loss"), False, N_("chance (ln V)")),
    "update_first": (N_(r"first layer $\|\Delta W\| / \|W\|$ per step"), True, N_("rule of thumb 1e-3")),
    "update_last": (N_(r"last layer $\|\Delta W\| / \|W\|$ per step"), True, N_("rule of thumb 1e-3")),
    "entropy": (N_("smallest attention entropy (nats)"), False, N_("uniform (log T)")),
    "layer_ratio": (r"$\|\partial\ell/\partial h_1\| \,/\, \|\partial\ell/\partial h_L\|$", True, N_("equal (= 1)")),
}


def _series(h: Any, which: str) -> tuple[np.ndarray, np.ndarray]:
    """(step, y) of one History for `which`."""
    if which == "loss":
        return np.arange(h.steps, dtype=float), h.loss
    if which == "update_first":
        return np.arange(h.steps, dtype=float), h.update_ratio_first
    if which == "update_last":
        return np.arange(h.steps, dtype=float), h.update_ratio_last
    if which == "entropy":
        return h.record_steps.astype(float), h.min_entropy
    return h.record_steps.astype(float), h.stream_grad_norms[:, 0] / h.stream_grad_norms[:, -1]


def _reference(h: Any, which: str) -> float:
    if which == "loss":
        return h.chance_loss
    if which.startswith("update"):
        return UPDATE_RULE
    if which == "entropy":
        return math.nan  # log T is not in a History: pass it as `reference`
    return 1.0


class HistoryFigure:
    """One quantity of every run of a `Runs` (gradlib.exp_training) against the step: seeds thin, median bold.

    Args:
        ax: the Axes to draw on.
        which: one of WHICH.
        smooth: running-mean window over steps for the per-step quantities (1 = none).
        minor_ticks: minor log ticks (False: a faster redraw for widgets).
        reference: the value of the dotted reference line (default: from the runs, see WHICH).
    """

    def __init__(self, ax: Axes, *, which: str = "loss", smooth: int = 1, minor_ticks: bool = True,
                 reference: Optional[float] = None, legend: Optional[str] = "best") -> None:
        if which not in WHICH:
            raise ValueError(f"which must be one of {', '.join(map(repr, WHICH))}; got {which!r}")
        if isinstance(smooth, bool) or not isinstance(smooth, int) or smooth < 1:
            raise ValueError(f"smooth must be an integer >= 1; got {smooth!r}")
        self.ax, self.which, self.smooth, self.reference, self.legend_loc = ax, which, smooth, reference, legend
        ylabel, self.logy, self.ref_label = WHICH[which]
        self.lines: list[Line2D] = []
        with gs.style():
            gs.dress(ax)
            ax.set_xlabel(_("training step"))
            ax.set_ylabel(_(ylabel))
            if self.logy:
                ax.set_yscale("log")
                gs.plain_log_ticks(ax.yaxis, minor=minor_ticks)
            (self.ref,) = ax.plot([], [], linestyle=":", color=gs.ROLE_COLORS["reference"], linewidth=1.4,
                                  label=_(self.ref_label))
            self.title = ax.set_title("")

    def _line(self, i: int) -> Line2D:
        while len(self.lines) <= i:
            (line,) = self.ax.plot([], [])
            self.lines.append(line)
        return self.lines[i]

    def _y(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, dtype=float)
        if self.smooth > 1 and self.which != "entropy" and self.which != "layer_ratio" and len(y) >= self.smooth:
            k = self.smooth  # a centred running mean; the ends repeat the edge values instead of zeros
            y = np.convolve(np.pad(y, (k // 2, k - 1 - k // 2), mode="edge"), np.ones(k) / k, mode="valid")
        return gs.masked_log(y).filled(np.nan) if self.logy else np.where(np.isfinite(y), y, np.nan)

    def show(self, runs: Any, *, title: Optional[str] = None) -> None:
        """Draw every configuration of `runs` (a gradlib.exp_training.Runs): seeds thin, median bold."""
        with gs.style():
            colors = gs.colors_for(list(runs.roles))
            i, xs, ys = 0, [], []
            for key, label, color, hs in zip(runs.keys, runs.labels, colors, runs.histories):
                per_seed = [self._series_of(h) for h in hs]
                for x, y in per_seed:
                    line = self._line(i)
                    line.set_data(x, y)
                    line.set(color=color, linewidth=0.8, alpha=0.35, label="_seed", visible=True)
                    i += 1
                    xs.append(x)
                    ys.append(y)
                n = min(len(y) for _, y in per_seed)
                with np.errstate(all="ignore"):
                    median = np.nanmedian(np.stack([y[:n] for _, y in per_seed]), axis=0) if n else np.zeros(0)
                line = self._line(i)
                line.set_data(per_seed[0][0][:n], median)
                line.set(color=color, linewidth=2.0, alpha=1.0, visible=True,
                         label=_("{label} (median of {n} seeds)").format(label=label, n=len(hs)))
                i += 1
            for j in range(i, len(self.lines)):
                self.lines[j].set_visible(False)
            first = runs.histories[0][0]
            ref = self.reference if self.reference is not None else _reference(first, self.which)
            self.ref.set_data([0, first.steps], [ref, ref])
            self.ref.set_visible(bool(np.isfinite(ref)))
            self._limits(xs, ys + [np.array([ref])], first.steps)
            self.title.set_text(runs.title if title is None else title)
            if self.legend_loc is not None:
                handles = [ln for ln in self.lines[:i] if not ln.get_label().startswith("_")]
                self.ax.legend(handles=handles + ([self.ref] if self.ref.get_visible() else []),
                               loc=self.legend_loc)

    def _series_of(self, h: Any) -> tuple[np.ndarray, np.ndarray]:
        x, y = _series(h, self.which)
        return x, self._y(y)

    def _limits(self, xs: list, ys: list, steps: int) -> None:
        self.ax.set_xlim(-0.02 * steps, 1.02 * steps)
        finite = np.concatenate([np.asarray(y, dtype=float)[np.isfinite(y)] for y in ys] or [np.zeros(1)])
        if self.logy:
            finite = finite[finite > 0]
            lo, hi = (finite.min(), finite.max()) if finite.size else (0.1, 10.0)
            self.ax.set_ylim(lo / 2, hi * 2)
        else:
            lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
            pad = 0.05 * (hi - lo) if hi > lo else 0.5
            self.ax.set_ylim(min(lo, 0.0) - pad, hi + pad)


def plot_history(runs: Any, ax: Optional[Axes] = None, *, which: str = "loss", title: Optional[str] = None,
                 smooth: int = 1, reference: Optional[float] = None, legend: Optional[str] = "best",
                 keys: Optional[Sequence[str]] = None) -> Axes:
    """One quantity of every run (or of the runs `keys`) against the training step, on new or given axes."""
    if keys is not None:
        unknown = [k for k in keys if k not in runs.keys]
        if unknown or not keys:
            raise ValueError(f"keys must be a non-empty list of the runs' keys {list(runs.keys)}; got {keys!r}")
        at = [runs.keys.index(k) for k in keys]
        runs = dataclasses.replace(runs, keys=tuple(keys), labels=tuple(runs.labels[i] for i in at),
                                   roles=tuple(runs.roles[i] for i in at), histories=tuple(runs.histories[i] for i in at))
    fig = HistoryFigure(gs.new_axes(ax), which=which, smooth=smooth, reference=reference, legend=legend)
    fig.show(runs, title=title)
    return fig.ax


def plot_lr_sweep(sweep: Any, ax: Optional[Axes] = None, *, trained_below: float, title: str = "") -> Axes:
    """Final loss against the Adam learning rate (log x): a dot per seed and run, medians joined, NaN = not run."""
    ax = gs.new_axes(ax)
    with gs.style():
        colors = gs.colors_for(list(sweep.roles))
        offsets = np.linspace(-0.06, 0.06, len(sweep.keys))  # side by side in log x, not on top of each other
        for k, (label, color) in enumerate(zip(sweep.labels, colors)):
            x = sweep.lrs * 10 ** offsets[k]
            run = np.isfinite(sweep.final[k]).all(axis=1)
            for s in range(len(sweep.seeds)):
                ax.plot(x[run], sweep.final[k, run, s], "o", color=color, alpha=0.5, markersize=4, label="_seed")
            ax.plot(x[run], np.median(sweep.final[k, run], axis=1), "-", color=color, linewidth=1.8,
                    label=_("{label}: trains up to {lr}").format(label=label, lr=f"{sweep.largest[k]:g}"))
        ax.axhline(trained_below, linestyle=":", color=gs.ROLE_COLORS["reference"],
                   label=_("trained (< {loss})").format(loss=f"{trained_below:g}"))
        ax.set_xscale("log")
        ax.set_xticks(sweep.lrs)
        ax.set_xticklabels([f"{v:g}" for v in sweep.lrs])
        ax.minorticks_off()
        ax.set_xlabel(_("Adam learning rate (no run: a larger rate already trained)"))
        ax.set_ylabel(_("final training loss"))
        ax.set_title(title)
        ax.legend(loc="center left")
    return ax


def plot_message(ax: Axes, text: str, *, title: str = "") -> None:
    """An empty panel that says why there is nothing to draw (an explorer's setting that was not run)."""
    with gs.style():
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes,
                color=gs.COLORS["text"], fontsize=10)
        ax.set_title(title)
