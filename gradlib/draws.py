"""Seeded random draws: every random number gradlib uses comes from a local generator, never the global RNG.

    generator(seed)                 a CPU torch.Generator, manual_seed(seed)
    uniform(shape, b, g)            U[−b, b] = (2·U[0, 1) − 1)·b          Var = b²/3
    normal(shape, σ, g)             N(0, σ²)                              Var = σ²
    orthogonal(d, ρ, g)             ρ·Q, Q Haar-random orthogonal         every singular value = ρ
    assign(param, value)            param ← value (a tensor, cast to param's dtype and device, or a number)
    data_generator(seed)            generator(seed + DATA_STREAM): the stream of an experiment's inputs
    randn(shape, g, dtype, device)  N(0, 1) inputs, drawn on the CPU in `dtype`, then moved

Weights are drawn in float64 on the CPU and cast by :func:`assign`, so a float32 and a float64 model, on any
device, hold the same numbers (float32's are float64's rounded). A model draws all its layers from one
generator in turn: the same seed gives the same model, and its layers are independent draws.

Inputs come from a second stream, ``seed + DATA_STREAM``, so that an experiment's inputs are not the numbers
its weights were drawn from. :func:`randn` draws them in the experiment's own dtype (as the experiments always
have: their numbers are fixed by that), on the CPU, so every device sees the same inputs.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from gradlib import checks

DATA_STREAM = 1_000_003  # offset of the inputs' seed from the weights' seed (a prime, far from small seeds)

__all__ = ["DATA_STREAM", "generator", "uniform", "normal", "orthogonal", "assign", "data_generator", "randn"]

Shape = tuple[int, ...]


def _check_generator(g: object) -> torch.Generator:
    # None would silently fall back to the global RNG inside torch.rand/randn.
    if not isinstance(g, torch.Generator):
        raise ValueError(f"g must be a torch.Generator (see draws.generator); got {type(g).__name__}")
    return g


# ------------------------------------------------------------------------------------------------ weights
def generator(seed: int) -> torch.Generator:
    """A fresh CPU torch.Generator seeded with `seed` (any integer): g = Generator("cpu").manual_seed(seed)."""
    return torch.Generator(device="cpu").manual_seed(checks.seed(seed))


def uniform(shape: Shape, bound: float, g: torch.Generator) -> Tensor:
    """U[−bound, bound] in float64 on the CPU: (2·U[0, 1) − 1)·bound, Var = bound²/3.

    Args:
        shape: of the draw, e.g. (n_out, n_in).
        bound: b ≥ 0.
        g: the CPU generator to draw from (it advances by numel(shape) numbers).
    """
    return (2.0 * torch.rand(shape, generator=_check_generator(g), dtype=torch.float64) - 1.0) * bound


def normal(shape: Shape, std: float, g: torch.Generator) -> Tensor:
    """N(0, std²) in float64 on the CPU: std·N(0, 1).

    Args:
        shape: of the draw.
        std: σ ≥ 0.
        g: the CPU generator to draw from.
    """
    return torch.randn(shape, generator=_check_generator(g), dtype=torch.float64) * std


def orthogonal(d: int, rho: float, g: torch.Generator) -> Tensor:
    """ρ·Q with Q Haar-random orthogonal, in float64: (ρQ)ᵀ(ρQ) = ρ²I, so every singular value is ρ.

    Args:
        d: size of the square matrix.
        rho: ρ ≥ 0.
        g: the CPU generator to draw the Gaussian matrix from (d² numbers).
    Returns:
        (d, d)
    """
    a = torch.randn(d, d, generator=_check_generator(g), dtype=torch.float64)  # (d, d)
    q, r = torch.linalg.qr(a)
    # QR's Q alone is not uniformly distributed: fixing the signs of diag(R) to + makes it Haar (Mezzadri 2007).
    signs = torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(torch.float64)  # (d,)
    return rho * (q * signs)  # (d, d)


def assign(param: Optional[Tensor], value: Union[Tensor, float]) -> None:
    """param ← value under no_grad: a tensor is copied (cast to param's dtype and device), a number fills it.

    Args:
        param: the parameter (or buffer) to overwrite; None (e.g. an absent bias) is skipped.
        value: a tensor of param's shape, or a number.
    """
    if param is None:
        return
    with torch.no_grad():
        if isinstance(value, Tensor):
            param.copy_(value)  # copy_ casts to the parameter's dtype and moves to its device
        else:
            param.fill_(value)


# ------------------------------------------------------------------------------------------------- inputs
def data_generator(seed: int) -> torch.Generator:
    """The inputs' generator for an experiment seeded `seed`: generator(seed + DATA_STREAM)."""
    return generator(checks.seed(seed) + DATA_STREAM)


def randn(
    shape: Shape, g: torch.Generator, dtype: torch.dtype, device: Union[str, torch.device] = "cpu"
) -> Tensor:
    """N(0, 1) inputs drawn on the CPU generator in `dtype`, then moved to `device` (the same on every device).

    Args:
        shape: of the draw, e.g. (B, T, d_model).
        g: the CPU generator (usually data_generator(seed)).
        dtype: floating dtype of the draw (float32 and float64 draws are different numbers).
        device: where the result goes.
    """
    return torch.randn(shape, generator=_check_generator(g), dtype=dtype).to(device)
