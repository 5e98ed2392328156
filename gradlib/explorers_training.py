"""Chapter 7's explorer: the saved training histories, by norm position × warm-up × learning rate.

    training_compute(position, warmup, lr, which)  → TrainingFrame: the 3-seed Runs at that setting, or why none
    TrainingPanel                                   HistoryFigure of gradlib.training_plots, or a message panel
    training_explorer(sweep)                        live (ipywidgets) or, static=True, its kernel-free twin

The explorer shows histories the chapter already trained (gradlib.exp_training.lr_sweep walks the grid and
caches every run), so a step costs a lookup and a redraw. A setting the sweep did not need (Pre-LN with
warm-up, or a rate beyond one where a configuration already failed or trained) says so instead of training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
from matplotlib.axes import Axes

from gradlib import exp_training as E
from gradlib import style as gs
from gradlib.controls import choice, static_texts
from gradlib.explorer import Explorer, FigureView
from gradlib.i18n import N_, _
from gradlib.static import StaticExplorer, static_explorer
from gradlib.training import Runs
from gradlib.training_plots import HistoryFigure, plot_message

__all__ = ["TrainingFrame", "TrainingPanel", "training_compute", "training_view", "training_explorer"]

STATIC_DPI = 100
WHICH = ("loss", "layer_ratio")  # the explorer's quantities: the loss, and the probes' layer-1/layer-L ratio
WHICH_LABELS = {"loss": N_("loss"), "layer_ratio": N_("gradient at layer 1 / layer L")}


@dataclass(frozen=True)
class TrainingFrame:
    """What one explorer setting shows: the runs (None when not trained) and the quantity, or a message."""

    runs: Optional[Runs]
    which: str
    message: str  # '' when there are runs
    title: str


def _key(position: str, warmup: bool) -> Optional[str]:
    if position == "pre":
        return None if warmup else "pre"
    return "post_warmup" if warmup else "post"


def training_compute(position: str = "post", warmup: bool = False, lr: float = E.LN_LR, which: str = "loss", *,
                     sweep: Optional[E.LRSweep] = None) -> TrainingFrame:
    """The saved runs of one setting: position "pre"/"post", warm-up on/off, Adam lr on the sweep's grid.

    Args:
        position, warmup, lr: the setting; which: "loss" or "layer_ratio" (‖∂ℓ/∂h_1‖/‖∂ℓ/∂h_L‖).
        sweep: the chapter's lr_sweep (default: computed, i.e. read from the cache of this process).
    """
    if position not in ("pre", "post"):
        raise ValueError(f"position must be 'pre' or 'post'; got {position!r}")
    if which not in WHICH:
        raise ValueError(f"which must be one of {', '.join(map(repr, WHICH))}; got {which!r}")
    sweep = E.lr_sweep() if sweep is None else sweep
    key, lr = _key(position, bool(warmup)), float(lr)
    name = f"{'Pre' if position == 'pre' else 'Post'}-LN"
    setting = (_("{name} + warm-up, lr {lr}") if warmup else _("{name}, lr {lr}")).format(name=name, lr=f"{lr:g}")
    asked = f"{setting}: {_(WHICH_LABELS[which])}"  # a message frame names the whole setting, quantity included
    if key is None:
        return TrainingFrame(None, which, _("Pre-LN with warm-up was not trained in this chapter:\n"
                                            "Pre-LN already trains without it."), asked)
    k = sweep.keys.index(key)
    where = np.flatnonzero(np.isclose(sweep.lrs, lr))
    if len(where) == 0:
        raise ValueError(f"lr must be one of the sweep's rates {list(sweep.lrs)}; got {lr!r}")
    j = int(where[0])
    if not np.isfinite(sweep.final[k, j]).all():
        largest = sweep.largest[k]
        why = (_("it already trains at {lr}").format(lr=f"{largest:g}") if np.isfinite(largest) and lr < largest
               else _("it already failed at a smaller rate"))
        return TrainingFrame(None, which, _("{name} was not run at lr {lr}:\n{why}.").format(
            name=sweep.labels[k], lr=f"{lr:g}", why=why), asked)
    label, role, where_norm, warmup_steps = E.LN_VARIANTS[key]
    histories = tuple(E.ln_run(where_norm, warmup_steps, float(sweep.lrs[j]), s) for s in sweep.seeds)  # cached
    runs = Runs((key,), (_(label),), (role,), sweep.seeds, (histories,), title=setting)
    finals = runs.final_losses(key)
    verdict = _("trains") if all(f < E.TRAINED_BELOW for f in finals) else _("fails")
    losses = ", ".join(f"{f:.2f}" for f in finals)
    return TrainingFrame(runs, which, "", _("{setting}: {verdict} (final loss {losses})").format(
        setting=setting, verdict=verdict, losses=losses))


class TrainingPanel:
    """The explorer's chart: a HistoryFigure of the frame's quantity, rebuilt when the quantity changes."""

    def __init__(self, ax: Axes, *, minor_ticks: bool = False) -> None:
        self.ax, self.minor_ticks = ax, minor_ticks
        self.which: Optional[str] = None
        self.figure: Optional[HistoryFigure] = None

    def show(self, frame: TrainingFrame, *, title: Optional[str] = None) -> None:
        if frame.runs is None:
            self.ax.clear()
            self.which, self.figure = None, None
            plot_message(self.ax, frame.message, title=frame.title if title is None else title)
            self.ax.set_xticks([])
            self.ax.set_yticks([])
            return
        if self.figure is None or self.which != frame.which:
            self.ax.clear()
            self.figure = HistoryFigure(self.ax, which=frame.which, minor_ticks=self.minor_ticks,
                                        legend="upper right")
            self.which = frame.which
        self.figure.show(frame.runs, title=frame.title if title is None else title)


def training_view(**kw: Any) -> FigureView:
    """A FigureView of TrainingPanel (one persistent figure, moved in place)."""
    kw.setdefault("figsize", (6.0, 3.4))
    return FigureView(TrainingPanel, margins=(0.13, 0.15, 0.97, 0.90), **kw)


def training_explorer(sweep: Optional[E.LRSweep] = None, *, static: bool = False,
                      grid: Optional[Mapping[str, Sequence[Any]]] = None) -> Union[Explorer, StaticExplorer]:
    """Chapter 7: norm position, warm-up and Adam lr → the loss (or layer-1/layer-L gradient) of 3 seeds.

    Args:
        sweep: the chapter's lr_sweep result (default: computed; cached per process).
        static: return the kernel-free StaticExplorer (every setting pre-rendered).
        grid: the static grid (default: both positions, warm-up off/on, the sweep's rates, both quantities).
    """
    sweep = E.lr_sweep() if sweep is None else sweep
    lrs = [float(v) for v in sweep.lrs]

    def compute(position: str = "post", warmup: bool = False, lr: float = E.LN_LR, which: str = "loss"):
        return training_compute(position, warmup, lr, which, sweep=sweep)

    title = _("Training a {layers}-layer encoder: where the norm goes, warm-up, learning rate").format(
        layers=E.LN_LAYERS)
    start = min(lrs, key=lambda v: abs(v - E.LN_LR))
    controls = [choice("position", ("post", "pre"), "post", label=_("norm"), buttons=True,
                       option_labels=("Post-LN", "Pre-LN")),
                choice("warmup", (False, True), False, label=_("warm-up"), buttons=True,
                       option_labels=(_("off"), _("on"))),
                choice("lr", tuple(lrs), start, label=_("Adam lr")),
                choice("which", WHICH, "loss", label=_("show"), buttons=True,
                       option_labels=tuple(_(WHICH_LABELS[w]) for w in WHICH))]
    if static:
        g = grid or {"position": ["post", "pre"], "warmup": [False, True], "lr": lrs, "which": list(WHICH)}
        initial = {"lr": start} if start in list(g.get("lr", [])) else {}
        with gs.style():
            return static_explorer(compute, training_view(dpi=STATIC_DPI), g, title=title, initial=initial,
                                   **static_texts(controls, g))
    return Explorer(compute, training_view(), controls, title=title)
