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

Why s = 1/√d_k (Vaswani et al. 2017, footnote 4): if the entries of q and k are i.i.d. with mean 0 and
variance 1, then q·k has variance d_k. Without the scale, large d_k pushes the scores far apart, the softmax
saturates and its Jacobian, hence the gradient reaching Q and K, vanishes.

Masks follow torch.nn.functional.scaled_dot_product_attention's boolean ``attn_mask``: True = may attend.
A query row with *no* allowed key is rejected with ValueError: its softmax is 0/0. (PyTorch has answered that
case with NaN in some versions and with a row of zeros in others; neither should pass silently.)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional, Union

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

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
    "SelfAttention",
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
    q: Tensor, k: Tensor, v: Tensor, *, scale: Scale = "sqrt_dk", mask: Optional[Tensor] = None
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
    """
    checks.tensor(q, "q", min_dim=2, floating=True)
    checks.tensor(k, "k", min_dim=2, floating=True)
    checks.tensor(v, "v", min_dim=2, floating=True)
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
    checks.tensor(x, "x", min_dim=2, floating=True)
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v)):
        checks.tensor(w, name, min_dim=2, floating=True)
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
    checks.tensor(p, "p", min_dim=1, floating=True)
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
        checks.tensor(q, "q", min_dim=2, floating=True)
        if q.dim() != 2:
            raise ValueError(f"q must be unbatched, shape (T, d_k); got {tuple(q.shape)}")
        n_queries = q.shape[0]
    else:
        checks.positive_int(q, "q (the number of query rows T)")
        n_queries = int(q)
    checks.tensor(k, "k", min_dim=2, floating=True)
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
    result = attention(q, k, k[..., :1], scale=scale, mask=mask)  # only the weights are needed
    s = score_scale(q.shape[-1], scale)
    j_softmax = softmax_jacobian(result.weights)  # (..., T, S, S)
    return j_softmax @ k.unsqueeze(-3) * s  # (..., T, S, d_k)


# ------------------------------------------------------------------------------------------------ module
class SelfAttention(nn.Module):
    """Multi-head self-attention written out: project, split heads, attend, merge heads, project out.

    Z = concat_h(softmax(s·Q_h K_hᵀ) V_h) W_Oᵀ + b_O, with Q = X W_Qᵀ + b_Q (nn.Linear) and s = 1/√d_head.

    Default init: Xavier-uniform for each (d_model × d_model) projection, biases 0. Xavier gives each square
    map Var(W) = 1/d_model, which keeps activation and gradient variance through it (Glorot & Bengio 2010,
    chapter 1) and is the init Dong et al. 2021 use for their rank-collapse experiments. It differs from two
    PyTorch defaults on purpose: nn.Linear's U[±1/√d] (Var = 1/(3d), the "old" init that vanishes), and
    nn.MultiheadAttention, which applies Xavier to the *packed* (3d × d) in-projection, so each of W_Q, W_K,
    W_V gets Var = 2/(4d) = 1/(2d). :meth:`copy_from_torch` copies any such weights exactly.

    Args:
        d_model: token width; must be divisible by n_heads.
        n_heads: number of heads, each of width d_head = d_model / n_heads.
        scale: score scale per head, as in :func:`attention` ("sqrt_dk" uses d_head).
        bias: whether the four projections have biases.
        seed: seed of a local torch.Generator for the init.
        generator: a torch.Generator to draw the init from (wins over seed); lets a stack draw
            independent layers from one stream. With neither, torch's global RNG is used, as nn.Linear does.
        device, dtype: of the parameters.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int = 1,
        *,
        scale: Scale = "sqrt_dk",
        bias: bool = True,
        seed: Optional[int] = None,
        generator: Optional[torch.Generator] = None,
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        checks.heads(d_model, n_heads)
        _check_scale(scale)
        if seed is not None:
            checks.seed(seed)
        checks.generator(generator)
        super().__init__()
        self.d_model = int(d_model)
        self.n_heads = int(n_heads)
        self.d_head = self.d_model // self.n_heads
        self.scale = scale
        factory = {"device": "cpu" if device is None else device, "dtype": dtype}
        # skip_init: nn.Linear's own init would draw from (and advance) the global RNG for nothing.
        self.w_q = skip_init(nn.Linear, d_model, d_model, bias=bias, **factory)
        self.w_k = skip_init(nn.Linear, d_model, d_model, bias=bias, **factory)
        self.w_v = skip_init(nn.Linear, d_model, d_model, bias=bias, **factory)
        self.w_o = skip_init(nn.Linear, d_model, d_model, bias=bias, **factory)
        if generator is None and seed is not None:
            generator = torch.Generator(device="cpu").manual_seed(int(seed))
        self.reset_parameters(generator)

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """Xavier-uniform weights, zero biases (see the class docstring for why)."""
        with torch.no_grad():
            for lin in (self.w_q, self.w_k, self.w_v, self.w_o):
                # Draw on the CPU generator, then copy: the init is the same numbers on every device.
                w = torch.empty(lin.weight.shape, dtype=lin.weight.dtype)
                nn.init.xavier_uniform_(w, generator=generator)
                lin.weight.copy_(w)
                if lin.bias is not None:
                    lin.bias.zero_()

    def _split_heads(self, t: Tensor) -> Tensor:
        return t.unflatten(-1, (self.n_heads, self.d_head)).transpose(-3, -2)  # (..., h, T, d_head)

    def _merge_heads(self, t: Tensor) -> Tensor:
        return t.transpose(-3, -2).flatten(-2)  # (..., T, d_model)

    def forward(
        self, x: Tensor, mask: Optional[Tensor] = None, *, return_weights: bool = False
    ) -> Union[Tensor, tuple[Tensor, Tensor]]:
        """Z = W_O · merge(attention(split(W_Q x), split(W_K x), split(W_V x))).

        Args:
            x: tokens (B, T, d_model) (or unbatched (T, d_model)).
            mask: bool, True = may attend: (T, T), (B, T, T) or (B, n_heads, T, T).
            return_weights: also return the attention weights P, (B, n_heads, T, T).
        """
        checks.tensor(x, "x", min_dim=2, floating=True)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have last dimension d_model={self.d_model}; got shape {tuple(x.shape)}")
        if mask is not None and isinstance(mask, Tensor) and mask.dim() == 3:
            mask = mask.unsqueeze(-3)  # (B, 1, T, T): the same mask for every head
        q = self._split_heads(self.w_q(x))  # (B, h, T, d_head)
        k = self._split_heads(self.w_k(x))  # (B, h, T, d_head)
        v = self._split_heads(self.w_v(x))  # (B, h, T, d_head)
        heads = attention(q, k, v, scale=self.scale, mask=mask)
        z = self.w_o(self._merge_heads(heads.output))  # (B, T, d_model)
        return (z, heads.weights) if return_weights else z

    def copy_from_torch(self, mha: nn.MultiheadAttention) -> None:
        """Copy nn.MultiheadAttention's weights: packed in_proj (rows W_Q; W_K; W_V) and out_proj.

        Outputs then match mha(x, x, x) when mha has dropout=0 (and batch_first=True for (B, T, d) inputs).

        Args:
            mha: with embed_dim == d_model, num_heads == n_heads, the same bias setting, no bias_k/bias_v.
        """
        if not isinstance(mha, nn.MultiheadAttention):
            raise ValueError(f"mha must be an nn.MultiheadAttention; got {type(mha).__name__}")
        if mha.embed_dim != self.d_model or mha.num_heads != self.n_heads:
            raise ValueError(
                f"mha must have embed_dim={self.d_model} and num_heads={self.n_heads}; "
                f"got embed_dim={mha.embed_dim}, num_heads={mha.num_heads}"
            )
        if mha.in_proj_weight is None:
            raise ValueError("mha must use a packed in_proj_weight (kdim = vdim = embed_dim)")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("mha must not use add_bias_kv or add_zero_attn")
        has_bias = self.w_q.bias is not None
        if (mha.in_proj_bias is not None) != has_bias:
            raise ValueError(f"mha must have bias={has_bias} like this module")
        with torch.no_grad():
            for lin, w in zip((self.w_q, self.w_k, self.w_v), mha.in_proj_weight.chunk(3, dim=0)):
                lin.weight.copy_(w)
            if has_bias:
                for lin, b in zip((self.w_q, self.w_k, self.w_v), mha.in_proj_bias.chunk(3, dim=0)):
                    lin.bias.copy_(b)
            self.w_o.weight.copy_(mha.out_proj.weight)
            if has_bias:
                self.w_o.bias.copy_(mha.out_proj.bias)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, scale={self.scale!r}"
