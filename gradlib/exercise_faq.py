"""Chapter 8's exercise: the reader writes DyT's Jacobian, and a checker compares it with autograd in plain words.

    dyt_jacobian   fn(x, alpha, gamma) -> J   y = γ ⊙ tanh(α x)   J = diag(α γ (1 − tanh²(α x)))   (d, d)

The truth is autograd's Jacobian of y = γ·tanh(αx) (gradlib.norms.DyT's formula without β, which does not
change J), never the closed form on the right. Inputs are float64 draws from a local generator seeded `seed`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from gradlib import draws
from gradlib.exercises import SIZES, Verdict, check
from gradlib.i18n import _

__all__ = ["check_dyt_jacobian", "EXERCISES"]


def _dyt_inputs(g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    d = int(torch.randint(SIZES[0], SIZES[1] + 1, (), generator=g))
    x = draws.normal((d,), 2.0, g)  # (d,)   spread enough that tanh bends
    alpha = draws.uniform((), 0.5, g) + 1.0  # ()    α in [0.5, 1.5], a 0-d tensor like DyT.alpha
    gamma = draws.normal((d,), 0.5, g) + 1.0  # (d,)   γ around 1, different per feature
    return x, alpha, gamma


def _dyt_jacobian(x: Tensor, alpha: Tensor, gamma: Tensor) -> Tensor:
    with torch.enable_grad():
        return torch.autograd.functional.jacobian(lambda t: gamma * torch.tanh(alpha * t), x)  # (d, d)


def check_dyt_jacobian(fn: object, *, trials: int = 5, seed: int = 0) -> Verdict:
    """Chapter 8: DyT's Jacobian. You write fn(x, alpha, gamma) -> J for y = γ ⊙ tanh(α x).

    J = ∂y/∂x = diag(α γ_i (1 − tanh²(α x_i))): diagonal, since y_i depends on x_i only;
    x: (d,), alpha: () (a 0-d tensor), gamma: (d,), J: (d, d).
    """
    return check(fn, _dyt_jacobian, _dyt_inputs, name="dyt_jacobian", trials=trials, seed=seed,
                 what=_("the Jacobian"))


EXERCISES: dict[str, Callable[..., Verdict]] = {"dyt_jacobian": check_dyt_jacobian}
