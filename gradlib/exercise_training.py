"""Chapter 7's exercise: the reader writes the update-to-data ratio, a checker compares it with a real SGD step.

    update_ratio(w_before, w_after) -> r      r = ‖w_after − w_before‖_F / ‖w_before‖_F   (a number)

The inputs are a weight before and after one ``torch.optim.SGD`` step on a random quadratic loss, so the
reader's function sees exactly what gradlib.training measures; the truth is computed with torch.linalg.
The answer comes back as a gradlib.exercises Verdict, in plain words.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from gradlib import draws
from gradlib.exercises import Verdict, check
from gradlib.i18n import _

__all__ = ["check_update_ratio", "EXERCISES"]


def _ratio(w_before: Tensor, w_after: Tensor) -> Tensor:
    return torch.linalg.vector_norm(w_after - w_before) / torch.linalg.vector_norm(w_before)


def _sgd_step(g: torch.Generator) -> tuple[Tensor, Tensor]:
    """W (n, m) drawn N(0, 1/m), then one SGD step at lr ∈ [1e-3, 1e-1) on ½‖W x − y‖², x, y random."""
    n, m = (int(v) for v in torch.randint(3, 9, (2,), generator=g))
    w = draws.normal((n, m), m ** -0.5, g).requires_grad_(True)
    x, y = draws.normal((m, 4), 1.0, g), draws.normal((n, 4), 1.0, g)
    lr = float(10 ** (-3 + 2 * torch.rand((), generator=g, dtype=torch.float64)))
    before = w.detach().clone()
    opt = torch.optim.SGD([w], lr=lr)
    (0.5 * (w @ x - y).pow(2).sum()).backward()
    opt.step()
    return before, w.detach().clone()


def check_update_ratio(fn: object, *, trials: int = 5, seed: int = 0) -> Verdict:
    """Chapter 7: you write fn(w_before, w_after) -> ‖w_after − w_before‖ / ‖w_before‖ (Frobenius norms).

    w_before, w_after: (n, m) float64, a weight before and after one torch.optim.SGD step; the answer is a
    number (a float or a 0-d tensor).
    """
    # the truth is torch.linalg's norms of a real SGD step, not autograd (check()'s default)
    return check(fn, _ratio, _sgd_step, name="update_ratio", trials=trials, seed=seed,
                 what=_("the ratio (a single number)"), truth="torch.linalg", matches=_("torch.linalg's norms"))


EXERCISES: dict[str, Callable[..., Verdict]] = {"update_ratio": check_update_ratio}
