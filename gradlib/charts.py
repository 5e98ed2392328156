"""The remaining figures of chapters 2–5, on the same CurveFigure as gradlib.figures (one drawing per figure).

    figure class          result              y (against x)
    QKFigure              QKGradients         ‖∇W_Q‖/‖∇W_V‖ against depth; token cosine dotted on a twin axis
    SaturationFigure      SoftmaxSaturation   saturated fraction, ‖J_softmax‖₂ or ‖∂p_i/∂q_i‖_F against d_k
    SpectrumFigure        ResidualScale       σ_i(∂y/∂x) against the branch scale α, identity σ = 1 for reference
    StreamFigure          StreamNorms         mean token norm ‖x_l‖ against the block
    ActivationFigure      ActivationStats     std (log) or mean of the activations against the block
    PrePostFigure         PrePostSweep        last block's ‖∇W_2‖ against L (seeds as dots, ∝ 1/√L dashed), ‖x_L‖,
                                              or ‖∇W_2‖ of every block of the deepest stack
    plot_norm_table       NormComparison      a table: max |Δ output| per test and norm
    plot_attention_weights  (T, S) weights    a heat map of P = softmax(A): query rows, key columns, numbers in cells
"""

from __future__ import annotations

from typing import Any, Optional

import matplotlib as mpl
import numpy as np
from matplotlib.axes import Axes

from gradlib import style as gs
from gradlib.figures import CurveFigure, _plot
from gradlib.i18n import N_, _
from gradlib.report import NORM_COLUMNS, table_cell
from gradlib.results import curve

__all__ = ["QKFigure", "SaturationFigure", "SpectrumFigure", "StreamFigure", "ActivationFigure", "PrePostFigure",
           "plot_qk_gradients", "plot_softmax_saturation", "plot_residual_scale", "plot_stream_norms",
           "plot_activation_stats", "plot_pre_post", "plot_norm_table", "plot_attention_weights"]


class QKFigure(CurveFigure):
    """Query/key gradient relative to the value gradient at one layer against depth; cosine (dotted, right)."""

    def __init__(self, ax: Axes, **kw: Any) -> None:
        super().__init__(ax, xlabel=_("depth (layers)"), ylabel=r"$\|\nabla W_Q\| \,/\, \|\nabla W_V\|$",
                         exploded=_("depth"), legend="lower left",
                         title=_("Query/key gradients vanish as tokens align"), **kw)
        twin = ax.twinx()
        twin.tick_params(colors=gs.EDGE, labelcolor=gs.COLORS["text"])
        twin.spines["right"].set_visible(True)
        self.cosine = CurveFigure(twin, xlabel="", ylabel=_("token cosine similarity (dotted)"), logy=False,
                                  ylim=(-0.02, 1.02), linestyle=":", legend=None)
        twin.grid(False)  # after CurveFigure, whose dress() turns the grid on: one grid (the left axis') only

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        where = {"first": _("first layer"), "last": _("last layer")}.get(result.layer) or \
            _("layer {layer}").format(layer=result.layer)
        self.ax.set_ylabel(r"$\|\nabla W_Q\| \,/\, \|\nabla W_V\|$" + f"  ({where})")
        self.update(list(result.curves), title=title)
        self.cosine.update(list(result.cosine))


_SATURATION = {
    "saturated_fraction": (N_("fraction of rows with max p > {threshold}"), False),
    "jacobian_norm": (N_(r"softmax Jacobian $\|J\|_2$"), True),
    "query_grad_norm": (r"$\|\partial p_i / \partial q_i\|_F$", True),
}


class SaturationFigure(CurveFigure):
    """One measure of softmax saturation against the key dimension d_k (log₂ x), per score scale."""

    def __init__(self, ax: Axes, *, which: str = "saturated_fraction", threshold: float = 0.99, **kw: Any) -> None:
        if which not in _SATURATION:
            raise ValueError(f"which must be one of {', '.join(map(repr, _SATURATION))}; got {which!r}")
        ylabel, logy = _SATURATION[which]
        self.which = which
        super().__init__(ax, xlabel=_(r"key dimension $d_k$"), ylabel=_(ylabel).format(threshold=f"{threshold:g}"), logy=logy,
                         logx=True, xbase=2, ylim=None if logy else (-0.03, 1.03), exploded="d_k =",
                         title=_(r"Why scores are scaled by $1/\sqrt{d_k}$"), **kw)

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        self.update(list(getattr(result, self.which)), title=title)


class SpectrumFigure(CurveFigure):
    """Top singular values of a stack's input–output Jacobian against the branch scale α (log y)."""

    def __init__(self, ax: Axes, *, variant: str = "rezero", **kw: Any) -> None:
        deepnorm = variant == "deepnorm"
        branch = r"$\mathrm{LN}(s x + \alpha f(x))$" if deepnorm else r"$x + \alpha f(x)$"
        title = (_("DeepNorm stack: Jacobian spectrum vs branch scale") if deepnorm
                 else _("Residual stack: Jacobian spectrum vs branch scale"))
        super().__init__(ax, xlabel=_(r"branch scale $\alpha$  in  {branch}").format(branch=branch),
                         ylabel=_(r"singular values of $\partial y / \partial x$"), exploded="α =", fade=True,
                         legend="upper left", title=title, **kw)

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        self.update(list(result.curves), title=title)


class StreamFigure(CurveFigure):
    """Mean token norm of the residual stream after every block (linear y from 0, or log)."""

    def __init__(self, ax: Axes, *, log: bool = False, **kw: Any) -> None:
        super().__init__(ax, xlabel=_("block  (0 = input)"), ylabel=_(r"mean token norm $\|x_l\|$"), logy=log,
                         exploded=_("block"), legend="upper left", title=_("Size of the residual stream"), **kw)

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        self.update(list(result.curves), title=title)
        if not self.logy:
            self.ax.set_ylim(bottom=0)


class ActivationFigure(CurveFigure):
    """Spread (log y) or mean (linear, with the zero line) of the activations after every block."""

    def __init__(self, ax: Axes, *, which: str = "std", **kw: Any) -> None:
        if which not in ("std", "mean"):
            raise ValueError(f"which must be one of 'std', 'mean'; got {which!r}")
        self.which = which
        ylabel, title = ((_("activation std"), _("Activations, block by block (std)")) if which == "std"
                         else (_("activation mean"), _("Activations, block by block (mean)")))
        super().__init__(ax, xlabel=_("block  (0 = input)"), ylabel=ylabel, logy=which == "std",
                         exploded=_("block"), title=title, **kw)
        if which == "mean":
            ax.axhline(0.0, color=gs.ROLE_COLORS["reference"], linewidth=0.8)

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        self.update(list(getattr(result, self.which)), title=title)


class PrePostFigure(CurveFigure):
    """Pre-LN vs Post-LN: the last block's gradient or ‖x_L‖ against L (log–log), or every block's gradient."""

    def __init__(self, ax: Axes, *, which: str = "last_layer_grad", **kw: Any) -> None:
        labels = {"last_layer_grad": (_("depth L (blocks)"), _("last block's weight gradient norm")),
                  "hidden_norm": (_("depth L (blocks)"), _(r"hidden-state norm $\|x_L\|$")),
                  "per_layer": (_("block  (1 = input side)"), _(r"$\|\nabla W_2\|$ of the block's FFN"))}
        if which not in labels:
            raise ValueError(f"which must be one of {', '.join(map(repr, labels))}; got {which!r}")
        self.which = which
        xlabel, ylabel = labels[which]
        super().__init__(ax, xlabel=xlabel, ylabel=ylabel, logx=which != "per_layer",
                         exploded=_("block") if which == "per_layer" else "L =",
                         theory_label=r"$\propto 1/\sqrt{L}$", title=_("Pre-LN vs Post-LN at initialisation"), **kw)
        self.seed_lines: list = []  # one line of faint dots per curve (per key of result.per_seed)
        self.seeds = self._seed_line(0)

    def _seed_line(self, i: int) -> Any:
        while len(self.seed_lines) <= i:
            (line,) = self.ax.plot([], [], linestyle="none", marker="o", markersize=3, alpha=0.35, label="_seeds")
            self.seed_lines.append(line)
        return self.seed_lines[i]

    def show(self, result: Any, *, title: Optional[str] = None) -> None:
        names = {"pre": ("Pre-LN", "norm"), "post": ("Post-LN", "baseline")}
        if self.which == "last_layer_grad":
            curves = list(result.curves)
        elif self.which == "hidden_norm":
            curves = [curve(k, *names[k], result.depths, v) for k, v in result.hidden_norm.items()]
        else:
            curves = [curve(k, *names[k], np.arange(1, len(v) + 1), v) for k, v in result.per_layer.items()]
        self.update(curves, title=title)
        seeds = result.per_seed if self.which == "last_layer_grad" else {}
        color_of = dict(zip((c.key for c in curves), gs.colors_for([c.role for c in curves])))
        for i, (k, v) in enumerate(seeds.items()):  # every seed as a faint dot, in its own curve's colour
            line = self._seed_line(i)
            line.set_data(np.broadcast_to(result.depths, v.shape).ravel(), gs.masked_log(v.ravel()).filled(np.nan))
            line.set(color=color_of.get(k, gs.ROLE_COLORS["reference"]), visible=True)
        for line in self.seed_lines[len(seeds):]:
            line.set_visible(False)
        if self.logx:
            self.ax.set_xticks(np.asarray(result.depths, dtype=float))
            self.ax.xaxis.set_major_formatter(mpl.ticker.FormatStrFormatter("%g"))
            self.ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def plot_qk_gradients(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None) -> Axes:
    """QKGradients: ‖∇W_Q‖/‖∇W_V‖ against depth (log y), token cosine similarity dotted on a twin axis."""
    return _plot(QKFigure, result, ax, title)


def plot_softmax_saturation(result: Any, ax: Optional[Axes] = None, *, which: str = "saturated_fraction",
                            title: Optional[str] = None) -> Axes:
    """SoftmaxSaturation against d_k: which = 'saturated_fraction', 'jacobian_norm' or 'query_grad_norm'."""
    return _plot(SaturationFigure, result, ax, title, which=which, threshold=result.threshold)


def plot_residual_scale(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None) -> Axes:
    """ResidualScale: σ_i of the stack's Jacobian against α; the identity σ = 1 for reference."""
    return _plot(SpectrumFigure, result, ax, title, variant=result.variant)


def plot_stream_norms(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None,
                      log: bool = False) -> Axes:
    """StreamNorms: the mean token norm ‖x_l‖ after every block, per variant."""
    return _plot(StreamFigure, result, ax, title, log=log)


def plot_activation_stats(result: Any, ax: Optional[Axes] = None, *, which: str = "std",
                          title: Optional[str] = None) -> Axes:
    """ActivationStats: the std (log y) or the mean of the activations after every block, per norm."""
    return _plot(ActivationFigure, result, ax, title, which=which)


def plot_pre_post(result: Any, ax: Optional[Axes] = None, *, which: str = "last_layer_grad",
                  title: Optional[str] = None) -> Axes:
    """PrePostSweep: which = 'last_layer_grad' (seeds as dots, ∝ 1/√L dashed), 'hidden_norm' or 'per_layer'."""
    return _plot(PrePostFigure, result, ax, title, which=which)


def plot_norm_table(result: Any, ax: Optional[Axes] = None, *, title: Optional[str] = None,
                    digits: int = 2) -> Axes:
    """NormComparison as a table: one row per test, one column per norm; changed or failed cells tinted."""
    tests = list(result.changes)
    kinds = [k for k in NORM_COLUMNS if any(k in result.changes[t] for t in tests)]
    text = [[table_cell(result.changes[t].get(k, ""), digits) for k in kinds] for t in tests]
    changed = [[isinstance(v, str) or float(v) != 0.0 for v in (result.changes[t].get(k, 0.0) for k in kinds)]
               for t in tests]
    tint = {True: mpl.colors.to_rgba(gs.ROLE_COLORS["baseline"], 0.16),
            False: mpl.colors.to_rgba(gs.ROLE_COLORS["norm"], 0.12)}
    with gs.style():
        ax = gs.new_axes(ax, (7.2, 0.5 + 0.42 * (len(tests) + 1)))
        ax.axis("off")
        table = ax.table(cellText=text, rowLabels=[_(t) for t in tests], colLabels=[NORM_COLUMNS[k] for k in kinds],
                         cellColours=[[tint[c] for c in row] for row in changed], cellLoc="center", rowLoc="right",
                         loc="center right", colWidths=[0.16] * len(kinds))
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1.0, 1.5)
        for (r, _col), cell in table.get_celld().items():
            cell.set_edgecolor(gs.GRID)
            cell.get_text().set_color(gs.COLORS["text"])
            if r == 0:
                cell.get_text().set_fontweight("bold")
        ax.set_title(_("Max |change of the output|  (0 = unaffected)") if title is None else title)
    return ax



def plot_attention_weights(weights: Any, tokens: Any = None, ax: Optional[Axes] = None, *,
                           keys: Any = None, title: Optional[str] = None, digits: int = 2) -> Axes:
    """Attention weights P as a heat map: row i = query token i, column j = key token j, P_ij written in the cell.

    Args:
        weights: (T, S) array or tensor, rows of a softmax (entries in [0, 1]).
        tokens: T query labels (default "1", "2", …); keys: S key labels (default: tokens when S == T).
        ax: axes to draw on (a new figure when None); title: None for the default; digits: decimals shown.
    """
    p = np.asarray(weights.detach().cpu() if hasattr(weights, "detach") else weights, dtype=np.float64)
    if p.ndim != 2 or not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError(f"weights must be a finite (T, S) array with entries in [0, 1]; got shape {p.shape}")
    rows = [str(t) for t in tokens] if tokens is not None else [str(i + 1) for i in range(p.shape[0])]
    cols = [str(t) for t in keys] if keys is not None else rows if p.shape[0] == p.shape[1] else \
        [str(j + 1) for j in range(p.shape[1])]
    for name, labels, n in (("tokens", rows, p.shape[0]), ("keys", cols, p.shape[1])):
        if len(labels) != n:
            raise ValueError(f"{name} must have {n} labels, one per {'row' if name == 'tokens' else 'column'}; "
                             f"got {len(labels)}")
    cmap = mpl.colors.LinearSegmentedColormap.from_list("weights", ["#FFFFFF", gs.ROLE_COLORS["attention"]])
    with gs.style():
        ax = gs.new_axes(ax, (0.75 * p.shape[1] + 2.2, 0.65 * p.shape[0] + 1.2))
        ax.imshow(p, cmap=cmap, vmin=0.0, vmax=1.0)
        ax.grid(False)
        for (i, j), v in np.ndenumerate(p):
            ax.text(j, i, f"{v:.{digits}f}", ha="center", va="center", fontsize=9,
                    color="white" if v > 0.6 else gs.COLORS["text"])
        ax.set_xticks(range(p.shape[1]), cols)
        ax.set_yticks(range(p.shape[0]), rows)
        ax.tick_params(length=0)
        ax.set_xlabel(_("key j (attended to)"))
        ax.set_ylabel(_("query i (attending)"))
        ax.set_title(_("Attention weights $P_{ij}$ (each row sums to 1)") if title is None else title)
    return ax
