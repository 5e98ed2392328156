"""Argument checks: a bad argument raises ValueError naming the argument and what is allowed.

Every check takes the value first and the argument's name second, returns the value in its plain form
(``int``, ``float``, ``list``, ``torch.dtype``, ...) and raises ``ValueError("<name> must be ...; got ...")``.
bool is never accepted as a number (``True`` is not a width), and a number that must be finite rejects NaN
and ±inf. Checks that only one function needs live next to that function.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "integer",
    "positive_int",
    "seed",
    "finite",
    "boolean",
    "choice",
    "floating_dtype",
    "device",
    "generator",
    "tensor",
    "sequence",
    "int_list",
    "float_list",
    "heads",
]


def _is_int(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def _is_finite(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(float(value))


def _bound(positive: bool, nonnegative: bool) -> str:
    return " > 0" if positive else " >= 0" if nonnegative else ""


def _in_bounds(value: float, positive: bool, nonnegative: bool) -> bool:
    return not ((positive and value <= 0) or (nonnegative and value < 0))


# ------------------------------------------------------------------------------------------------- numbers
def integer(value: object, name: str, *, minimum: Optional[int] = None) -> int:
    """An integer (not a bool), at least `minimum` when given."""
    if not _is_int(value) or (minimum is not None and int(value) < minimum):
        what = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}; got {value!r}")
    return int(value)


def positive_int(value: object, name: str) -> int:
    """An integer >= 1: a width, a depth, a count."""
    return integer(value, name, minimum=1)


def seed(value: object, name: str = "seed") -> int:
    """Any integer, as torch.Generator.manual_seed takes it."""
    return integer(value, name)


def finite(value: object, name: str, *, positive: bool = False, nonnegative: bool = False) -> float:
    """A real number (not a bool), neither NaN nor ±inf; > 0 if `positive`, >= 0 if `nonnegative`."""
    if not _is_finite(value) or not _in_bounds(float(value), positive, nonnegative):
        raise ValueError(f"{name} must be a finite number{_bound(positive, nonnegative)}; got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------- flags, names
def boolean(value: object, name: str) -> bool:
    """True or False itself (not 0/1, not "yes")."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


def choice(value: object, name: str, allowed: Sequence[str]) -> str:
    """One of the strings in `allowed`."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return value


# ------------------------------------------------------------------------------------------------- torch
def floating_dtype(
    value: object, name: str = "dtype", *, allowed: Optional[Sequence[torch.dtype]] = None
) -> torch.dtype:
    """A floating-point torch.dtype; one of `allowed` when given (e.g. only float32 and float64)."""
    ok = isinstance(value, torch.dtype) and value.is_floating_point
    if allowed is not None:
        if not (ok and value in allowed):
            names = [str(d) for d in allowed]
            listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
            raise ValueError(f"{name} must be {listed}; got {value!r}")
    elif not ok:
        raise ValueError(f"{name} must be a floating-point torch.dtype (e.g. torch.float64); got {value!r}")
    return value  # type: ignore[return-value]


def device(value: object, name: str = "device") -> torch.device:
    """A torch.device or anything torch.device() accepts ('cpu', 'cuda:0', ...)."""
    try:
        return torch.device(value)  # type: ignore[arg-type]
    except (RuntimeError, TypeError):
        raise ValueError(f"{name} must be a torch device or its name, e.g. 'cpu' or 'cuda'; got {value!r}") from None


def generator(value: object, name: str = "generator") -> Optional[torch.Generator]:
    """A torch.Generator or None."""
    if value is not None and not isinstance(value, torch.Generator):
        raise ValueError(f"{name} must be a torch.Generator or None; got {type(value).__name__}")
    return value


def tensor(
    value: object, name: str, *, min_dim: int = 0, floating: bool = False, finite: bool = False
) -> Tensor:
    """A torch.Tensor with at least `min_dim` dimensions; of a floating-point dtype if `floating`.

    With ``finite=True`` a floating-point (or complex) tensor holding NaN or ±inf is refused: a NaN *input* would
    otherwise look exactly like an explosion inside the model. Integer tensors (token ids) are always finite.
    """
    if not isinstance(value, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor; got {type(value).__name__}")
    if value.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions; got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor; got dtype {value.dtype}")
    if finite and (value.is_floating_point() or value.is_complex()):
        bad = ~torch.isfinite(value.detach())
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0].tolist())
            raise ValueError(
                f"{name} must be finite (no NaN or inf); got {int(bad.sum())} non-finite "
                f"entries, the first at index {where}"
            )
    return value


# ---------------------------------------------------------------------------------------------- sequences
def sequence(values: object, name: str) -> list:
    """A non-empty list, tuple or numpy array (not a string), as a list."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty sequence (list or tuple); got {values!r}")
    return list(values)


def int_list(values: object, name: str, *, minimum: int = 1) -> list[int]:
    """A non-empty sequence of integers >= `minimum` (default 1), as a list of int."""
    items = sequence(values, name)
    for v in items:
        if not _is_int(v) or int(v) < minimum:
            raise ValueError(f"every entry of {name} must be an integer >= {minimum}; got {v!r} in {values!r}")
    return [int(v) for v in items]


def float_list(values: object, name: str, *, positive: bool = False, nonnegative: bool = False) -> list[float]:
    """A non-empty sequence of finite numbers (> 0 if `positive`, >= 0 if `nonnegative`), as a list of float."""
    items = sequence(values, name)
    for v in items:
        if not _is_finite(v) or not _in_bounds(float(v), positive, nonnegative):
            raise ValueError(
                f"every entry of {name} must be a finite number{_bound(positive, nonnegative)}; "
                f"got {v!r} in {values!r}"
            )
    return [float(v) for v in items]


# ------------------------------------------------------------------------------------------------ shapes
def heads(d_model: object, n_heads: object, *, d_name: str = "d_model") -> tuple[int, int]:
    """Two integers >= 1 with n_heads dividing d_model (each head has width d_model / n_heads).

    `d_name` is the width's argument name where it is not ``d_model`` (e.g. ``d``).
    """
    d = positive_int(d_model, d_name)
    h = positive_int(n_heads, "n_heads")
    if d % h != 0:
        raise ValueError(f"n_heads must divide {d_name}; got {d_name}={d}, n_heads={h}")
    return d, h
