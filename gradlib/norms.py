"""Normalization layers written out as their formulas: LayerNorm, RMSNorm, GroupNorm, DyT, BatchNorm over tokens.

    LayerNorm:  y = (x − μ) / √(σ² + ε) · γ + β     μ, σ² over the features of each token (biased σ², as torch)
    RMSNorm:    y = x / √(mean(x²) + ε) · γ          no centring: invariant to scaling x, not to shifting it
    GroupNorm:  y = (x − μ_g) / √(σ²_g + ε) · γ + β  μ_g, σ²_g over each group of d/G features of one token
    DyT:        y = γ · tanh(α x) + β                no statistics at all (Zhu et al. 2025); ∂y/∂x diagonal, ≤ |α γ|
    BatchNorm:  y = (x − μ_B) / √(σ²_B + ε) · γ + β  μ_B, σ²_B per feature over all B·T tokens of the batch

LayerNorm, RMSNorm, GroupNorm (here: over the channels of one token, G = 1 is LayerNorm) and DyT look at one
token at a time, so they behave the same in training and evaluation and at batch size 1. BatchNorm's
statistics come from the other tokens in the batch (running averages in eval).
Parameter names (``weight`` = γ, ``bias`` = β) match torch.nn's, so state dicts copy across.
"""

from __future__ import annotations

import numbers
from typing import Optional, Union

import torch
from torch import Tensor, nn

from gradlib import checks

NORM_KINDS = ("layer", "rms", "batch", "dyt", "none")
DYT_ALPHA = 0.5  # DyT's initial α (Zhu et al. 2025, non-LLM default)

__all__ = ["LayerNorm", "RMSNorm", "GroupNorm", "DyT", "TokenBatchNorm", "NORM_KINDS", "DYT_ALPHA", "make_norm"]


def _check_input(x: object, d: int) -> None:
    # Type and width only, no finiteness: a norm runs on every forward, where an overflow is a result.
    checks.tensor(x, "x")
    if x.dim() < 1 or x.shape[-1] != d:
        raise ValueError(f"x must have last dimension d={d}; got shape {tuple(x.shape)}")


def _affine(norm: nn.Module, affine: bool, *, bias: bool, device: object, dtype: Optional[torch.dtype]) -> None:
    """Give `norm` its per-feature gain γ = 1 (and shift β = 0 when `bias`), or register them as None."""
    ones = torch.ones(norm.d, device=device, dtype=dtype) if affine else None
    norm.register_parameter("weight", None if ones is None else nn.Parameter(ones))  # γ
    if bias:
        norm.register_parameter("bias", None if ones is None else nn.Parameter(torch.zeros_like(ones)))  # β


class LayerNorm(nn.Module):
    """Layer normalization over the last dimension, formula written out.

    y = (x − μ) / √(σ² + ε) · γ + β, with μ = mean(x), σ² = mean((x − μ)²) over the d features of each token.

    Args:
        d: feature dimension; x is (..., d).
        eps: ε added to the variance.
        affine: learn γ (``weight``, init 1) and β (``bias``, init 0).
    """

    def __init__(
        self,
        d: int,
        eps: float = 1e-5,
        affine: bool = True,
        *,
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        checks.positive_int(d, "d")
        checks.finite(eps, "eps", positive=True)
        checks.boolean(affine, "affine")
        super().__init__()
        self.d, self.eps, self.affine = int(d), float(eps), bool(affine)
        _affine(self, self.affine, bias=True, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.d)
        mu = x.mean(dim=-1, keepdim=True)  # (..., 1)
        var = ((x - mu) ** 2).mean(dim=-1, keepdim=True)  # (..., 1)  biased, as torch.nn.LayerNorm
        y = (x - mu) / torch.sqrt(var + self.eps)  # (..., d)
        return y * self.weight + self.bias if self.affine else y

    def extra_repr(self) -> str:
        return f"{self.d}, eps={self.eps}, affine={self.affine}"


class RMSNorm(nn.Module):
    """Root-mean-square normalization over the last dimension (Zhang & Sennrich 2019), no centring.

    y = x / √(mean(x²) + ε) · γ.

    Args:
        d: feature dimension; x is (..., d).
        eps: ε added to the mean square.
        affine: learn γ (``weight``, init 1).
    """

    def __init__(
        self,
        d: int,
        eps: float = 1e-6,
        affine: bool = True,
        *,
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        checks.positive_int(d, "d")
        checks.finite(eps, "eps", positive=True)
        checks.boolean(affine, "affine")
        super().__init__()
        self.d, self.eps, self.affine = int(d), float(eps), bool(affine)
        _affine(self, self.affine, bias=False, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.d)
        ms = (x**2).mean(dim=-1, keepdim=True)  # (..., 1)  mean square
        y = x / torch.sqrt(ms + self.eps)  # (..., d)
        return y * self.weight if self.affine else y

    def extra_repr(self) -> str:
        return f"{self.d}, eps={self.eps}, affine={self.affine}"


class GroupNorm(nn.Module):
    """Group normalization over the channels of each token: LayerNorm within each of G groups of d/G features.

    y = (x − μ_g) / √(σ²_g + ε) · γ + β, μ_g, σ²_g over the features of group g of one token; G = 1 is LayerNorm.
    The same numbers as nn.GroupNorm(G, d) on x.reshape(−1, d) (its (N, C) input), never mixing tokens.

    Args:
        d: feature dimension; x is (..., d).
        groups: G ≥ 1, dividing d.
        eps: ε added to each group's variance.
        affine: learn γ (``weight``, init 1) and β (``bias``, init 0), one per feature.
    """

    def __init__(
        self,
        d: int,
        groups: int,
        eps: float = 1e-5,
        affine: bool = True,
        *,
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        checks.positive_int(d, "d")
        checks.positive_int(groups, "groups")
        if d % groups:
            raise ValueError(f"groups must divide d={d}; got {groups}")
        checks.finite(eps, "eps", positive=True)
        checks.boolean(affine, "affine")
        super().__init__()
        self.d, self.groups, self.eps, self.affine = int(d), int(groups), float(eps), bool(affine)
        _affine(self, self.affine, bias=True, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.d)
        g = x.reshape(*x.shape[:-1], self.groups, self.d // self.groups)  # (..., G, d/G)
        mu = g.mean(dim=-1, keepdim=True)  # (..., G, 1)
        var = ((g - mu) ** 2).mean(dim=-1, keepdim=True)  # (..., G, 1)  biased, as torch
        y = ((g - mu) / torch.sqrt(var + self.eps)).reshape(x.shape)  # (..., d)
        return y * self.weight + self.bias if self.affine else y

    def extra_repr(self) -> str:
        return f"{self.d}, groups={self.groups}, eps={self.eps}, affine={self.affine}"


class DyT(nn.Module):
    """Dynamic Tanh (Zhu, Chen, He, LeCun & Liu 2025), a norm-free stand-in for LayerNorm: no statistics.

    y = γ · tanh(α x) + β;  ∂y_i/∂x_j = δ_ij · α γ_i (1 − tanh²(α x_i)): diagonal, |entry| ≤ |α γ_i|, no 1/‖x‖.

    Args:
        d: feature dimension; x is (..., d).
        alpha: initial value of the learnable scalar α (``self.alpha``).
        affine: learn γ (``weight``, init 1) and β (``bias``, init 0).
    """

    def __init__(
        self,
        d: int,
        alpha: float = DYT_ALPHA,
        affine: bool = True,
        *,
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        checks.positive_int(d, "d")
        checks.finite(alpha, "alpha", positive=True)
        checks.boolean(affine, "affine")
        super().__init__()
        self.d, self.affine = int(d), bool(affine)
        self.alpha = nn.Parameter(torch.tensor(float(alpha), device=device, dtype=dtype))  # α, a scalar
        _affine(self, self.affine, bias=True, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.d)
        y = torch.tanh(self.alpha * x)  # (..., d)
        return y * self.weight + self.bias if self.affine else y

    def extra_repr(self) -> str:
        return f"{self.d}, alpha={self.alpha.item():g}, affine={self.affine}"


class TokenBatchNorm(nn.Module):
    """BatchNorm for sequences: per feature, statistics over all B·T tokens of the batch.

    y = (x − μ_B) / √(σ²_B + ε) · γ + β; in eval mode μ_B, σ²_B are the running averages.
    Wraps nn.BatchNorm1d (``self.bn``) applied to x.reshape(−1, d).

    Args:
        d: feature dimension; x is (B, T, d) or (N, d).
        eps: ε added to the variance.
        momentum: running-average momentum (None = cumulative average), as nn.BatchNorm1d.
        affine: learn γ and β.
    """

    def __init__(
        self,
        d: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = True,
        *,
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        checks.positive_int(d, "d")
        checks.finite(eps, "eps", positive=True)
        if momentum is not None and (
            isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0 <= momentum <= 1
        ):
            raise ValueError(f"momentum must be a number in [0, 1] or None; got {momentum!r}")
        checks.boolean(affine, "affine")
        super().__init__()
        self.d = int(d)
        self.bn = nn.BatchNorm1d(self.d, eps=eps, momentum=momentum, affine=affine, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.d)
        if self.training and x.numel() // self.d < 2:
            # One token has zero variance: the batch statistics carry no information.
            raise ValueError(
                f"x must hold at least 2 tokens in training mode (BatchNorm needs batch statistics); "
                f"got shape {tuple(x.shape)}"
            )
        tokens = x.reshape(-1, self.d)  # (B·T, d)
        return self.bn(tokens).reshape(x.shape)

    def extra_repr(self) -> str:
        return f"{self.d}"


def make_norm(
    kind: str,
    d: int,
    *,
    eps: Optional[float] = None,
    device: Optional[Union[str, torch.device]] = None,
    dtype: Optional[torch.dtype] = None,
) -> nn.Module:
    """Build a normalization layer by name: "layer", "rms", "batch", "dyt" or "none" (nn.Identity).

    Args:
        kind: one of NORM_KINDS.
        d: feature dimension.
        eps: ε; None uses each class's default (1e-5 layer/batch, 1e-6 rms); DyT has none (it must stay None).
        device, dtype: of the parameters.
    """
    checks.choice(kind, "kind", NORM_KINDS)
    checks.positive_int(d, "d")
    if eps is not None:
        checks.finite(eps, "eps", positive=True)
    extra = {} if eps is None else {"eps": eps}
    if kind == "dyt":
        if eps is not None:
            raise ValueError(f"eps must be None for kind='dyt' (DyT divides by nothing); got {eps!r}")
        return DyT(d, device=device, dtype=dtype)
    if kind == "layer":
        return LayerNorm(d, **extra, device=device, dtype=dtype)
    if kind == "rms":
        return RMSNorm(d, **extra, device=device, dtype=dtype)
    if kind == "batch":
        return TokenBatchNorm(d, **extra, device=device, dtype=dtype)
    return nn.Identity()
