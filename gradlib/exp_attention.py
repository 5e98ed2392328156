"""Chapter 2's experiments — highway 1, self-attention: one step between any two tokens, and where it ends.

    path_lengths         RNN: ∂h_n/∂x_1 has n − 1 factors (O(n) path); attention: x_1 enters y_n in one step
    rank_collapse_depth  pure attention averages tokens into one: r(H_l) → 0 doubly exponentially (Dong 2021)
    qk_gradients         under collapse ∇W_Q = ∇W_K = 0 (Noci 2022); 1/√L-scaled skips keep them alive
    facts                the chapter's headline, re-measured for one seed: fact → bool (thresholds below)

Measured through gradlib.jacobians, gradlib.geometry and gradlib.probes; results are gradlib.results types.
(Why scores are divided by √d_k — softmax saturation — is chapter 5's: gradlib.exp_scores.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch

from gradlib import checks, draws
from gradlib.geometry import rank_collapse, token_cosine_similarity
from gradlib.i18n import N_, _
from gradlib.jacobians import source_grad_norms
from gradlib.multihead import SelfAttention
from gradlib.probes import layer_stats, param_grad_norms
from gradlib.results import CurveSet, curve
from gradlib.rnn import VanillaRNN
from gradlib.threads import single_threaded
from gradlib.transformer import attention_stack

__all__ = [
    "COLLAPSE_VARIANTS", "PathLengths", "RankCollapse", "QKGradients", "path_lengths", "rank_collapse_depth",
    "qk_gradients", "facts",
]

Device = Union[str, torch.device]

# key -> (label, role, residual?, depth-scaled branch?, LayerNorm position or None)
COLLAPSE_VARIANTS = {
    "attention": (N_("attention only"), "baseline", False, False, None),
    "skip": (N_("with skip connections"), "residual", True, False, None),
    "scaled": (N_("skips, branch 1/√L"), "scaled", True, True, None),
    "pre": (N_("skips, Pre-LN: x + attn(LN(x))"), "norm", True, False, "pre"),
    "post": (N_("skips, Post-LN: LN(x + attn(x))"), "baseline", True, False, "post"),
}


# ------------------------------------------------------------------------------------------- path lengths
@dataclass(frozen=True)
class PathLengths(CurveSet):
    """‖∂y_n/∂x_1‖_F against the distance n − 1: curve "rnn" (baseline) and "attention" (one layer)."""

    seq_len: int
    rho: float  # the RNN's measured spectral radius max |λ(W_hh)|
    causal: bool

    @property
    def distance(self) -> np.ndarray:
        return self.curves[0].x.astype(np.int64)

    rnn = property(lambda self: self["rnn"].y, doc="‖∂h_n/∂x_1‖_F of the RNN, (T,)")
    attention = property(lambda self: self["attention"].y, doc="‖∂y_n/∂x_1‖_F of one attention layer, (T,)")


@single_threaded
def path_lengths(
    seq_len: int = 32, rho: Union[float, None] = None, d: int = 32, n_sequences: int = 8, input_scale: float = 1.0,
    causal: bool = True, seed: int = 0, device: Device = "cpu", dtype: torch.dtype = torch.float64,
) -> PathLengths:
    """How much output n feels input 1: ‖∂y_n/∂x_1‖_F for a tanh RNN and for one self-attention layer.

    RNN: ∂h_n/∂x_1 = ∏_{s=2}^{n} diag(tanh′) W_hh · diag(tanh′) W_xh (n − 1 factors); attention: y_n = Σ_j p_nj v_j W_O.

    Args:
        seq_len: T; distances n − 1 = 0..T−1.
        rho: the RNN's spectral radius (ρ·orthogonal), or None for nn.RNN's U[±1/√d] (radius ≈ 1/√3).
        d: width of tokens and hidden state.
        n_sequences: norms are averaged over this many random sequences (N, T, d).
        input_scale: tokens are input_scale · N(0, 1), the same for both models.
        causal: mask attention so that y_n sees x_1..x_n only, as a recurrent net does.
        seed: seeds both inits and (separately) the inputs.
        device, dtype: float64 by default (the RNN's gradients reach 1e-20).
    """
    seq_len = checks.positive_int(seq_len, "seq_len")
    if rho is not None:
        rho = checks.finite(rho, "rho", nonnegative=True)  # named as here, not as VanillaRNN's spectral_radius
    d = checks.positive_int(d, "d")  # not VanillaRNN's d_hidden
    n_sequences = checks.positive_int(n_sequences, "n_sequences")
    input_scale = checks.finite(input_scale, "input_scale", nonnegative=True)
    checks.boolean(causal, "causal")
    device = checks.device(device)
    rnn = VanillaRNN(d, d, activation="tanh", spectral_radius=rho, seed=seed, dtype=dtype, device=device)
    attn = SelfAttention(d, 1, seed=seed, dtype=dtype, device=device)
    xs = input_scale * draws.randn((n_sequences, seq_len, d), draws.data_generator(seed), dtype, device)  # (N, T, d)
    mask = torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril() if causal else None  # True = may attend
    radius = torch.linalg.eigvals(rnn.w_hh.detach().cpu().double()).abs().max().item()
    distance = np.arange(seq_len)
    rnn_norms = source_grad_norms(rnn, xs, source=0).norms.mean(axis=0)  # (T,)
    attn_norms = source_grad_norms(lambda h: attn(h, mask), xs, source=0).norms.mean(axis=0)
    return PathLengths(
        curves=(curve("rnn", _("RNN (relay of calls)"), "baseline", distance, rnn_norms),
                curve("attention", _("attention (group call)"), "attention", distance, attn_norms)),
        seq_len=seq_len, rho=radius, causal=causal)


# ------------------------------------------------------------------------------------------- rank collapse
@dataclass(frozen=True)
class RankCollapse(CurveSet):
    """r(H_l) = ‖H_l − 1h̄ᵀ‖_F/‖H_l‖_F after each layer (x = layer 0 = the input), one curve per variant."""


def _variants(variants: Sequence[str]) -> list[str]:
    keys = checks.sequence(variants, "variants")
    for v in keys:
        checks.choice(v, "every entry of variants", tuple(COLLAPSE_VARIANTS))
    if len(set(keys)) != len(keys):
        raise ValueError(f"variants must not repeat; got {variants!r}")
    return keys


@single_threaded
def rank_collapse_depth(
    depth: int = 12, n_tokens: int = 16, d: int = 32, n_heads: int = 1,
    variants: Sequence[str] = ("attention", "skip"), seed: int = 0, device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> RankCollapse:
    """Distance from rank one after each layer of an attention stack: pure, with skips, with skips and norms.

    r(H) = ‖H − 1 h̄ᵀ‖_F / ‖H‖_F; without skips r(H_l) falls doubly exponentially (Dong et al. 2021).

    Args:
        depth, d, n_heads: the stack, as in gradlib.transformer.attention_stack (Xavier init, no FFN, no norm).
        n_tokens: tokens per sequence T ≥ 2; inputs x ~ N(0, 1), shape (1, T, d).
        variants: keys of COLLAPSE_VARIANTS: "attention" (x_{l+1} = attn(x_l)), "skip" (x_l + attn(x_l)),
            "scaled" (x_l + attn(x_l)/√L, Noci et al. 2022), "pre" (x_l + attn(LN(x_l))), "post"
            (LN(x_l + attn(x_l))); LN has γ = 1, β = 0, no final norm. Every stack has the same attention
            weights and input.
        seed, device, dtype: float64 by default — float32 stops resolving r near 1e−7.
    """
    keys = _variants(variants)
    depth = checks.positive_int(depth, "depth")  # before 1/√depth, and named as here (not n_layers)
    n_tokens = checks.integer(n_tokens, "n_tokens", minimum=2)
    d, n_heads = checks.heads(d, n_heads, d_name="d")  # before x is drawn with width d
    device = checks.device(device)
    checks.floating_dtype(dtype)  # before x is drawn in it
    x = draws.randn((1, n_tokens, d), draws.data_generator(checks.seed(seed)), dtype, device)  # (1, T, d)
    curves = []
    for key in keys:
        label, role, residual, scaled, position = COLLAPSE_VARIANTS[key]
        model = attention_stack(depth, d, n_heads, residual=residual, branch_scale=1 / math.sqrt(depth) if scaled
                                else 1.0, norm="none" if position is None else "layer",
                                norm_position=position or "pre", seed=seed, dtype=dtype, device=device)
        r = np.concatenate([[rank_collapse(x)], layer_stats(model, x).rank_collapse])
        curves.append(curve(key, _(label), role, np.arange(depth + 1), r))
    return RankCollapse(curves=tuple(curves))


@dataclass(frozen=True)
class QKGradients(CurveSet):
    """‖∇W_Q‖/‖∇W_V‖ at one layer against depth (curves), and the output tokens' cosine similarity."""

    cosine: CurveSet
    layer: str  # where the ratio was measured: "last", "first" or a 1-based index


@single_threaded
def qk_gradients(
    depths: Sequence[int] = (1, 2, 4, 8, 16), n_tokens: int = 16, d: int = 32, n_heads: int = 1,
    layer: Union[str, int] = "last", seed: int = 0, device: Device = "cpu", dtype: torch.dtype = torch.float64,
) -> QKGradients:
    """‖∇W_Q‖/‖∇W_V‖ of one layer of a pure-attention stack vs depth, without and with depth-scaled skips.

    X = 1xᵀ ⇒ equal scores ⇒ (diag(p) − ppᵀ)·const = 0 ⇒ ∇W_Q = ∇W_K = 0 (Noci et al. 2022, Thm 3.2).

    The collapse is in the layers' *inputs*: it shows deep in the stack ("last"); at the first layer the ratio
    drifts from ≈ 0.8 to ≈ 0.3–0.6, never toward 0.

    Args:
        depths: stack depths L, (D,).
        n_tokens: tokens per sequence; inputs x ~ N(0, 1), shape (1, T, d), the same for every depth.
        d, n_heads: the stacks' width and heads.
        layer: "last", "first", or a 1-based index ≤ min(depths).
        seed: the same weights for both variants; the loss is probes.projection_loss (⟨y, r⟩, r fixed).
        device, dtype: float64 by default (the collapsed ratio reaches 1e-18).
    """
    depth_list = checks.int_list(depths, "depths")
    n_tokens = checks.integer(n_tokens, "n_tokens", minimum=2)
    if isinstance(layer, str):
        checks.choice(layer, "layer", ("first", "last"))
    elif checks.integer(layer, "layer", minimum=1) > min(depth_list):
        raise ValueError(f"layer must be 'first', 'last' or a 1-based index <= min(depths) = {min(depth_list)}; "
                         f"got {layer!r}")
    d, n_heads = checks.heads(d, n_heads, d_name="d")  # before x is drawn with width d
    device = checks.device(device)
    checks.floating_dtype(dtype)  # before x is drawn in it
    x = draws.randn((1, n_tokens, d), draws.data_generator(checks.seed(seed)), dtype, device)  # (1, T, d)
    ratios, cosine = ({"attention": [], "scaled": []} for _ in range(2))  # key -> (D,) values
    for L in depth_list:
        index = 0 if layer == "first" else L - 1 if layer == "last" else int(layer) - 1
        for key in ratios:
            scaled = key == "scaled"
            model = attention_stack(L, d, n_heads, residual=scaled, branch_scale=1 / math.sqrt(L) if scaled else 1.0,
                                    seed=seed, dtype=dtype, device=device)
            attn = model.layers[index].attn
            grads = param_grad_norms(model, x, {"w_q": attn.w_q.weight, "w_v": attn.w_v.weight})
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios[key].append(float(np.float64(grads.norms[0]) / np.float64(grads.norms[1])))
            with torch.no_grad():
                cosine[key].append(token_cosine_similarity(model(x)))

    def curves(values: dict[str, list[float]]) -> tuple:
        return tuple(curve(k, _(COLLAPSE_VARIANTS[k][0]), COLLAPSE_VARIANTS[k][1], depth_list, v)
                     for k, v in values.items())

    return QKGradients(curves=curves(ratios), cosine=CurveSet(curves(cosine)), layer=str(layer))


# ---------------------------------------------------------------------------------------------- the headline
SEQ_LEN, RHO, WIDTH, COLLAPSE_DEPTH = 128, 0.9, 32, 12  # the chapter's settings, and:
QK_DEPTHS = (1, 2, 4, 8, 16)
GAP_ORDERS, RNN_LOSS, SLOPE_TOL, FLAT_TOL = 15, 1e3, 0.3, 0.25  # path lengths
RANK_ONE, QK_DEAD, QK_FALL, QK_ALIVE = 1e-10, 1e-6, 1e6, 0.1  # collapse, starvation


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Slope of log y against log x (least squares): −1 for y ∝ 1/x, 0 for no trend."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


@single_threaded
def facts(seed: int = 0) -> dict[str, bool]:
    """Chapter 2's headline for one seed at the chapter's settings (thresholds: the constants above): fact → holds.

    Args:
        seed: seeds every experiment (weights and inputs); the check cell and the tests call this function.
    """
    seed, e = checks.seed(seed), (lambda x: f"1e{round(math.log10(x))}")  # e(1e-6) = "1e-6"
    paths = path_lengths(seq_len=SEQ_LEN, rho=RHO, d=WIDTH, seed=seed)
    full = path_lengths(seq_len=SEQ_LEN, rho=RHO, d=WIDTH, causal=False, seed=seed)
    pure = rank_collapse_depth(depth=COLLAPSE_DEPTH, d=WIDTH, variants=("attention",), seed=seed)["attention"].y
    qk = qk_gradients(depths=QK_DEPTHS, d=WIDTH, seed=seed)
    rnn, attn, far, deep = paths.rnn, paths.attention, SEQ_LEN - 1, QK_DEPTHS[-1]
    q_pure = qk["attention"].y
    return {k: bool(v) for k, v in {
        f"RNN > {GAP_ORDERS} orders below attention at distance {far}": attn[far] > 10.0**GAP_ORDERS * rnn[far],
        f"RNN loses > {e(RNN_LOSS)}x from distance 8 to 32": rnn[8] > RNN_LOSS * rnn[32],
        f"causal attention falls like 1/n (slope -1 ± {SLOPE_TOL})":
            abs(_slope(paths.distance[4:] + 1, attn[4:]) + 1) < SLOPE_TOL,
        f"non-causal: no trend with distance (|slope| < {FLAT_TOL})":
            abs(_slope(full.distance[1:], full.attention[1:])) < FLAT_TOL,
        f"pure attention: residual < {e(RANK_ONE)} at layer {COLLAPSE_DEPTH}": pure[-1] < RANK_ONE,
        f"collapsed: last-layer Q/V < {e(QK_DEAD)} at depth {deep}": q_pure[-1] < QK_DEAD,
        f"Q/V falls > {e(QK_FALL)}x from depth 1 to {deep}": q_pure[0] > QK_FALL * q_pure[-1],
        f"1/sqrt(L) skips keep Q/V > {QK_ALIVE} at depth {deep}": qk["scaled"].y[-1] > QK_ALIVE,
    }.items()}
