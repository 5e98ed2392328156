"""Scaled dot-product attention written out step by step, with its Jacobians in closed form.

The math (one head, one sequence; rows are tokens):

    Q = X W_Q,  K = X W_K,  V = X W_V          X: (T, d_model), W_Q, W_K: (d_model, d_k), W_V: (d_model, d_v)
    A = s · Q Kᵀ                                scores, (T, S); s = 1/√d_k by default
    P = softmax(A), row by row                  weights, (T, S); every row sums to 1
    Z = P V                                     output, (T, d_v)

Note Z = P V: the output mixes the *value rows* with the *softmax weights*. Writing it as A Vᵀ would be wrong
twice over (no softmax, and a transpose whose shapes do not even match).

Derivatives (δ is the Kronecker delta, p_i the i-th row of P, q_i the i-th row of Q):

    ∂A_ij/∂Q_lk = δ_il · s · K_jk               score i depends on query row i only
    ∂p_i/∂a_i   = diag(p_i) − p_i p_iᵀ           the softmax Jacobian; → 0 as p_i becomes one-hot (saturation)
    ∂p_i/∂q_i   = (diag(p_i) − p_i p_iᵀ) K · s   chain rule of the two lines above
    backward, given dZ = ∂L/∂Z:  dS = P ⊙ (dZ Vᵀ − rowsum(P ⊙ dZ Vᵀ)),  dQ = s·dS K,  dK = s·dSᵀ Q,  dV = Pᵀ dZ

Why s = 1/√d_k (Vaswani et al. 2017, footnote 4): if the entries of q and k are i.i.d. with mean 0 and
variance 1, then q·k has variance d_k. Without the scale, large d_k pushes the scores far apart, the softmax
saturates and its Jacobian, hence the gradient reaching Q and K, vanishes.

Masks follow torch.nn.functional.scaled_dot_product_attention's boolean ``attn_mask``: True = may attend.
A query row with *no* allowed key is rejected with ValueError: its softmax is 0/0. (PyTorch has answered that
case with NaN in some versions and with a row of zeros in others; neither should pass silently.)
So is a NaN or ±inf in a tensor argument (ValueError naming it): a NaN going in would look like one the math made.
The multi-head nn.Module built on :func:`attention` is :class:`gradlib.multihead.SelfAttention`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor

from gradlib import checks

Scale = Union[str, float]  # "sqrt_dk" (s = 1/√d_k), "none" (s = 1), or a temperature τ > 0 (s = 1/τ)
SCALE_NAMES = ("sqrt_dk", "none")

__all__ = [
    "Scale",
    "SCALE_NAMES",
    "score_scale",
    "AttentionResult",
    "attention",
    "self_attention",
    "softmax_jacobian",
    "scores_jacobian",
    "weights_jacobian",
    "attention_grads",
]


# ----------------------------------------------------------------------------------------------- validation
def _check_scale(scale: Scale) -> None:
    if isinstance(scale, str):
        if scale not in SCALE_NAMES:
            raise ValueError(
                f"scale must be 'sqrt_dk', 'none' or a positive float temperature τ; got {scale!r}"
            )
        return
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise ValueError(
            f"scale must be 'sqrt_dk', 'none' or a positive float temperature τ; got {scale!r}"
        )
    if not math.isfinite(float(scale)) or float(scale) <= 0:
        raise ValueError(f"scale (a temperature τ, s = 1/τ) must be a finite number > 0; got {scale!r}")


def _check_mask(mask: object, scores_shape: torch.Size) -> None:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        got = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a bool tensor (True = may attend); got {got}")
    try:
        torch.broadcast_shapes(tuple(mask.shape), tuple(scores_shape))
    except RuntimeError:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape {tuple(scores_shape)}"
        ) from None
    if not bool(mask.any(dim=-1).all()):
        raise ValueError(
            "mask has a query row with no allowed key (a fully masked row): its softmax is 0/0. "
            "Let every query attend to at least one key, e.g. itself."
        )


# ------------------------------------------------------------------------------------------------ functions
def score_scale(d_k: int, scale: Scale = "sqrt_dk") -> float:
    """The multiplier s of the scores A = s·QKᵀ.

    s = 1/√d_k for "sqrt_dk", 1 for "none", 1/τ for a temperature τ > 0.

    Args:
        d_k: key/query dimension (per head).
        scale: "sqrt_dk", "none", or a positive float temperature τ.
    """
    checks.positive_int(d_k, "d_k")
    _check_scale(scale)
    if scale == "sqrt_dk":
        return 1.0 / math.sqrt(int(d_k))
    if scale == "none":
        return 1.0
    return 1.0 / float(scale)


@dataclass
class AttentionResult:
    """Every intermediate of one attention call: Q, K, V, scores A = s·QKᵀ, weights P = softmax(A), output Z = PV.

    ``scores`` are the raw scores, before the mask; masked entries get weight exactly 0 in ``weights``.
    """

    q: Tensor  # (..., T, d_k)
    k: Tensor  # (..., S, d_k)
    v: Tensor  # (..., S, d_v)
    scores: Tensor  # (..., T, S)
    weights: Tensor  # (..., T, S)
    output: Tensor  # (..., T, d_v)


def attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    scale: Scale = "sqrt_dk",
    mask: Optional[Tensor] = None,
    check_finite: bool = True,
) -> AttentionResult:
    """Scaled dot-product attention, one equation per line.

    Z = softmax(s·QKᵀ) V, with masked scores set to −∞ before the softmax.

    Args:
        q: queries (..., T, d_k).
        k: keys (..., S, d_k).
        v: values (..., S, d_v).
        scale: "sqrt_dk" (s = 1/√d_k), "none" (s = 1) or a temperature τ > 0 (s = 1/τ).
        mask: optional bool tensor broadcastable to (..., T, S); True = may attend (the convention of
            F.scaled_dot_product_attention's bool attn_mask). A row with no True raises ValueError.
        check_finite: refuse NaN/inf in q, k, v. A model calling this on every forward (SelfAttention) passes
            False: inside a deep stack an overflow is a result to measure, and the check costs a device sync.
    """
    checks.tensor(q, "q", min_dim=2, floating=True, finite=check_finite)
    checks.tensor(k, "k", min_dim=2, floating=True, finite=check_finite)
    checks.tensor(v, "v", min_dim=2, floating=True, finite=check_finite)
    _check_scale(scale)
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must share the last dimension d_k; got q {tuple(q.shape)}, k {tuple(k.shape)}")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of rows S; got k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    try:
        batch = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except RuntimeError:
        raise ValueError(
            f"the leading (batch) dimensions of q, k, v must broadcast; got q {tuple(q.shape)}, "
            f"k {tuple(k.shape)}, v {tuple(v.shape)}"
        ) from None
    if mask is not None:
        _check_mask(mask, torch.Size((*batch, q.shape[-2], k.shape[-2])))

    s = score_scale(q.shape[-1], scale)
    scores = q @ k.transpose(-2, -1) * s  # (..., T, S)   A = s·QKᵀ
    logits = scores if mask is None else scores.masked_fill(~mask, float("-inf"))  # exp(−∞) = 0: no weight
    weights = torch.softmax(logits, dim=-1)  # (..., T, S)   P = softmax(A), row-wise
    output = weights @ v  # (..., T, d_v)   Z = P V
    return AttentionResult(q=q, k=k, v=v, scores=scores, weights=weights, output=output)


def self_attention(
    x: Tensor,
    w_q: Tensor,
    w_k: Tensor,
    w_v: Tensor,
    *,
    scale: Scale = "sqrt_dk",
    mask: Optional[Tensor] = None,
) -> AttentionResult:
    """Single-head self-attention of a sequence with itself, from raw projection matrices.

    Q = X W_Q, K = X W_K, V = X W_V;  Z = softmax(s·QKᵀ) V.

    Args:
        x: tokens (..., T, d_model).
        w_q, w_k: (d_model, d_k) projections.
        w_v: (d_model, d_v) projection.
        scale, mask: as in :func:`attention`.
    """
    checks.tensor(x, "x", min_dim=2, floating=True, finite=True)
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v)):
        checks.tensor(w, name, min_dim=2, floating=True, finite=True)
        if w.dim() != 2 or w.shape[0] != x.shape[-1]:
            raise ValueError(
                f"{name} must have shape (d_model, d) with d_model = x.shape[-1] = {x.shape[-1]}; "
                f"got {tuple(w.shape)}"
            )
    if w_q.shape[1] != w_k.shape[1]:
        raise ValueError(f"w_q and w_k must have the same d_k; got {tuple(w_q.shape)} and {tuple(w_k.shape)}")
    q = x @ w_q  # (..., T, d_k)
    k = x @ w_k  # (..., T, d_k)
    v = x @ w_v  # (..., T, d_v)
    return attention(q, k, v, scale=scale, mask=mask)


def softmax_jacobian(p: Tensor) -> Tensor:
    """Jacobian of the softmax, given its output p (batched over leading dimensions).

    J = diag(p) − p pᵀ, i.e. ∂p_i/∂a_j = p_i (δ_ij − p_j). Rows sum to 0; J → 0 as p → one-hot.

    Args:
        p: probabilities (..., S).
    Returns:
        (..., S, S)
    """
    checks.tensor(p, "p", min_dim=1, floating=True, finite=True)
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)  # (..., S, S)


def scores_jacobian(q: Union[Tensor, int], k: Tensor, scale: Scale = "sqrt_dk") -> Tensor:
    """Full Jacobian of the scores A = s·QKᵀ with respect to Q, for one (unbatched) sequence.

    ∂A_ij/∂Q_lk = δ_il · s · K_jk — it does not depend on the value of Q, only on its number of rows.

    Args:
        q: the queries (T, d_k), or just their number of rows T.
        k: keys (S, d_k).
        scale: as in :func:`attention`.
    Returns:
        (T, S, T, d_k), laid out like torch.autograd.functional.jacobian(lambda q: s*q@k.T, q).
    """
    if isinstance(q, Tensor):
        checks.tensor(q, "q", min_dim=2, floating=True, finite=True)
        if q.dim() != 2:
            raise ValueError(f"q must be unbatched, shape (T, d_k); got {tuple(q.shape)}")
        n_queries = q.shape[0]
    else:
        checks.positive_int(q, "q (the number of query rows T)")
        n_queries = int(q)
    checks.tensor(k, "k", min_dim=2, floating=True, finite=True)
    if k.dim() != 2:
        raise ValueError(f"k must be unbatched, shape (S, d_k); got {tuple(k.shape)}")
    if isinstance(q, Tensor) and q.shape[1] != k.shape[1]:
        raise ValueError(f"q and k must share d_k; got q {tuple(q.shape)}, k {tuple(k.shape)}")
    _check_scale(scale)

    s = score_scale(k.shape[1], scale)
    delta = torch.eye(n_queries, dtype=k.dtype, device=k.device)  # (T, T)   δ_il
    return s * delta[:, None, :, None] * k[None, :, None, :]  # (T, S, T, d_k)


def weights_jacobian(
    q: Tensor, k: Tensor, scale: Scale = "sqrt_dk", *, mask: Optional[Tensor] = None
) -> Tensor:
    """Jacobian of each attention-weight row p_i with respect to its own query row q_i.

    ∂p_i/∂q_i = (diag(p_i) − p_i p_iᵀ) K · s   (∂p_i/∂q_l = 0 for l ≠ i).

    Args:
        q: queries (..., T, d_k).
        k: keys (..., S, d_k).
        scale: as in :func:`attention`.
        mask: optional bool (..., T, S), True = may attend.
    Returns:
        (..., T, S, d_k): entry [i, j, c] = ∂P_ij/∂Q_ic.
    """
    checks.tensor(q, "q", min_dim=2, floating=True, finite=True)
    checks.tensor(k, "k", min_dim=2, floating=True, finite=True)
    result = attention(q, k, k[..., :1], scale=scale, mask=mask)  # only the weights are needed: V = any (S, 1)
    s = score_scale(q.shape[-1], scale)
    j_softmax = softmax_jacobian(result.weights)  # (..., T, S, S)
    return j_softmax @ k.unsqueeze(-3) * s  # (..., T, S, d_k)


def attention_grads(
    q: Tensor, k: Tensor, v: Tensor, grad_output: Tensor, scale: Scale = "sqrt_dk", *, mask: Optional[Tensor] = None
) -> tuple[Tensor, Tensor, Tensor]:
    """The backward pass of attention in closed form: (∂L/∂Q, ∂L/∂K, ∂L/∂V) given dZ = ∂L/∂Z.

    dS = P ⊙ (dZ Vᵀ − rowsum(P ⊙ dZ Vᵀ)) (each row is J_i (dZ Vᵀ)_i), dQ = s·dS K, dK = s·dSᵀ Q, dV = Pᵀ dZ.

    Args:
        q, k, v, scale, mask: as in :func:`attention`;  grad_output: dZ, shape (..., T, d_v) like the output.
    """
    result = attention(q, k, v, scale=scale, mask=mask)
    checks.tensor(grad_output, "grad_output", min_dim=2, floating=True, finite=True)
    if grad_output.shape != result.output.shape:
        raise ValueError(f"grad_output must have the output's shape {tuple(result.output.shape)}; "
                         f"got {tuple(grad_output.shape)}")
    s, p = score_scale(q.shape[-1], scale), result.weights  # p: (..., T, S)
    dp = grad_output @ v.transpose(-2, -1)  # (..., T, S)   ∂L/∂P = dZ Vᵀ
    ds = p * (dp - (p * dp).sum(dim=-1, keepdim=True))  # (..., T, S)   ∂L/∂A, row i = J_i dp_i
    return s * ds @ k, s * ds.transpose(-2, -1) @ q, p.transpose(-2, -1) @ grad_output
