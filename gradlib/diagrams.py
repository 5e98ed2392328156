"""The course's diagrams, drawn with matplotlib patches (no diagram script from another host).

    draw_relay_vs_group_call          recurrence as a relay of phone calls vs attention as one group call
    draw_mountain_road_vs_expressway  a plain stack (one winding road) vs a residual stack (an express lane)
    draw_transformer_block            the block the course measures: attention and FFN, each with skip and norm
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np
from matplotlib import patches
from matplotlib.axes import Axes

from gradlib.i18n import _
from gradlib.style import ROLE_COLORS, new_axes, style

__all__ = ["draw_relay_vs_group_call", "draw_mountain_road_vs_expressway", "draw_transformer_block"]

COLORS = {**ROLE_COLORS, "text": "#222222", "ffn": "#56B4E9"}


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
    ax = new_axes(ax, figsize)
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
        ax.text(2.6, 4.15, _("Recurrence: a relay of phone calls"), ha="center", va="center", fontsize=11,
                color=base, weight="bold")
        xs = np.linspace(0.55, 4.65, n_tokens)
        y = 2.4
        for i, x in enumerate(xs):
            _box(ax, x, y, _("token {i}").format(i=i + 1), base, w=0.78,
                 fill_alpha=0.30 * (1 - i / n_tokens) + 0.04, fontsize=8)
            if i:
                _arrow(ax, (xs[i - 1] + 0.40, y), (x - 0.40, y), base, alpha=1.0 - 0.7 * i / n_tokens)
        ax.annotate("", xy=(xs[-1], 1.55), xytext=(xs[0], 1.55),
                    arrowprops=dict(arrowstyle="<->", color=COLORS["reference"], lw=1.0))
        reach = _("token 1 reaches token {n} after {hops} hand-offs").format(n=n_tokens, hops=n_tokens - 1)
        ax.text(2.6, 1.2, reach,
                ha="center", va="center", fontsize=8.5)
        ax.text(2.6, 0.75, _("path length grows with n: O(n) — the gradient is multiplied at every step"),
                ha="center", va="center", fontsize=7.5, color=COLORS["theory"])
        # right: a group call — every pair is connected directly
        cx, cy, r = 8.3, 2.2, 1.35
        ax.text(cx, 4.15, _("Attention: one group call"), ha="center", va="center", fontsize=11, color=att,
                weight="bold")
        angles = np.pi / 2 + 2 * np.pi * np.arange(n_tokens) / n_tokens
        pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
        for i in range(n_tokens):
            for j in range(i + 1, n_tokens):
                ax.plot(pts[[i, j], 0], pts[[i, j], 1], color=att, alpha=0.55, linewidth=1.3, zorder=1)
        for i, (x, y_) in enumerate(pts):
            _box(ax, x, y_, f"{i + 1}", att, w=0.5, h=0.42, fill_alpha=0.22, fontsize=8.5)
        ax.text(cx, 0.38, _("every token hears every other directly: path length O(1)"), ha="center",
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
        for cx, color, heading in ((2.5, base, _("Plain stack: a mountain road")),
                                   (7.3, res, _("Residual stack: an expressway"))):
            ax.text(cx, top + 1.0, heading, ha="center", va="center", fontsize=11, color=color,
                    weight="bold")
            _box(ax, cx, 0, _("input x"), COLORS["reference"], w=1.6, h=0.5, fill_alpha=0.15)
            _box(ax, cx, top, _("output"), COLORS["reference"], w=1.6, h=0.5, fill_alpha=0.15)
        # left: the only road zig-zags through every layer, hairpin after hairpin
        cx = 2.5
        stops = [(cx, 0.0)] + [(cx + (0.75 if level % 2 else -0.75), float(level))
                               for level in range(1, n_layers + 1)] + [(cx, float(top))]
        for level in range(1, n_layers + 1):
            _box(ax, stops[level][0], level, _("layer {layer}").format(layer=level), base, w=1.3, h=0.5)
        for (x0, y0), (x1, y1) in zip(stops[:-1], stops[1:]):
            _arrow(ax, (x0, y0 + 0.26), (x1, y1 - 0.26), base, lw=1.8, rad=0.3 if x1 > x0 else -0.3)
        ax.text(cx, -0.75, _("the gradient must pass every layer:"), ha="center", va="center", fontsize=8.5)
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
        ax.text(lane_x + 0.22, 0.62, _("skip\nlane"), fontsize=7.5, color=res, ha="left", va="center")
        ax.text(cx, -0.75, _("every ⊕ keeps an identity lane:"), ha="center", va="center", fontsize=8.5)
        ax.text(cx, -1.12, r"$\partial x_{l+1}/\partial x_l = I + J_l$", ha="center", va="center",
                fontsize=9.5, color=res)
    return ax


def _plus(ax: Axes, x: float, y: float, color: str, r: float = 0.17) -> None:
    ax.add_patch(patches.Circle((x, y), r, facecolor="white", edgecolor=color, linewidth=1.4, zorder=4))
    ax.text(x, y, "+", ha="center", va="center", fontsize=10, color=color, zorder=5)


def draw_transformer_block(ax: Axes | None = None, *, norm_position: str = "pre") -> Axes:
    """Diagram: one Transformer block (gradlib.transformer.TransformerBlock), as the rest of the course measures it.

    pre:  x ← x + Attn(LN(x));  x ← x + FFN(LN(x))      post:  x ← LN(x + Attn(x));  x ← LN(x + FFN(x))
    Attn: W_Q, W_K, W_V → h heads of d_head = d_model/h, causal mask, W_O;  FFN: W_2·act(W_1 x), width d_ff.
    Args:
        ax: axes to draw on (a new 7.5×8 figure when None); norm_position: "pre" or "post" (where each LN sits).
    """
    if norm_position not in ("pre", "post"):
        raise ValueError(f"norm_position must be 'pre' or 'post'; got {norm_position!r}")
    pre = norm_position == "pre"
    with style():
        ax = _diagram_axes(ax, (0.0, 8.6), (-0.9, 9.4), (7.5, 8.6))
        res, norm, ref = COLORS["residual"], COLORS["norm"], COLORS["reference"]
        lane, bx = 6.4, 2.9  # the residual stream's x, the branches' x
        heading = _("One Transformer block ({name})").format(name="Pre-LN" if pre else "Post-LN")
        ax.text(4.3, 9.05, heading, ha="center", va="center", fontsize=11.5, weight="bold", color=COLORS["text"])
        _box(ax, lane, -0.2, _("tokens x: T × d_model"), ref, w=2.9, h=0.5, fill_alpha=0.15)
        _box(ax, lane, 8.35, _("to the next block (× N)"), ref, w=2.9, h=0.5, fill_alpha=0.15)
        sublayers = ((_("multi-head self-attention\nQ = xW_Q, K = xW_K, V = xW_V\nh heads of d_head = d_model / h\n"
                        "causal mask: token i sees 1..i\nconcat heads, then W_O"), COLORS["attention"], 1.3),
                     (_("feed-forward network (FFN)\nW_1: d_model → d_ff\nactivation (ReLU, GELU)\n"
                        "W_2: d_ff → d_model"), COLORS["ffn"], 1.1))
        y, stream = 0.05, 0.05  # y: where the next box goes; stream: where the lane's last arrow ended
        for text, color, height in sublayers:
            split = y + 0.35
            _arrow(ax, (lane, split), (bx + 0.4, split + 0.35), res, lw=1.0, alpha=0.7)  # the branch leaves
            y = split + 0.35
            if pre:
                _box(ax, bx, y + 0.28, "LayerNorm", norm, w=2.2, h=0.46)
                _arrow(ax, (bx, y + 0.51), (bx, y + 0.8), norm, lw=1.0)
                y += 0.8
            _box(ax, bx, y + height / 2, text, color, w=3.7, h=height, fontsize=8.2)
            y += height
            plus = y + 0.35
            _arrow(ax, (bx + 1.85, y - 0.2), (lane - 0.17, plus), color, lw=1.0, alpha=0.8)  # the branch returns
            _arrow(ax, (lane, stream + 0.25 if stream == 0.05 else stream), (lane, plus - 0.17), res, lw=3.0)
            _plus(ax, lane, plus, res)
            stream = plus + 0.17
            if not pre:
                _box(ax, lane, plus + 0.65, "LayerNorm", norm, w=1.8, h=0.46)
                _arrow(ax, (lane, stream), (lane, plus + 0.42), res, lw=3.0)
                stream = plus + 0.88
            y = stream + 0.05
        _arrow(ax, (lane, stream), (lane, 8.1), res, lw=3.0)
        ax.text(lane + 0.28, 1.0, _("residual\nstream"), fontsize=8, color=res, ha="left", va="center")
        foot = (_("Pre-LN: the norm sits on each branch; the stream x itself is never normalised\n"
                  "(a final LayerNorm follows the last block)") if pre else
                _("Post-LN: the norm sits on the stream, after each addition"))
        ax.text(4.3, -0.7, foot, ha="center", va="center", fontsize=8.5, color=COLORS["theory"])
    return ax
