"""What the experiments return: small dataclasses of numpy arrays that say what they are.

A figure is a set of curves, and a :class:`Curve` carries both its numbers and its meaning:

    key     what code asks for            "plain", "pre", "rho=0.9"
    label   what a legend shows           "plain (no skips)", "Pre-LN", "ρ = 0.9"
    role    its part in the story         ROLES: the troubled baseline, one of the three highways, ...
    theory  the prediction at the same x  ρ^(T−t), ∝ 1/√L, or None

The drawing layer colours a curve by its ``role`` and draws its ``theory`` dashed; nothing is ever parsed
from a label, and no label is ever used as a key. Results hold numbers only: formatting (tables, markdown,
orders of magnitude) lives in :mod:`gradlib.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np

from gradlib.probes import first_over_last

# baseline: the network in trouble (plain stack, RNN, Post-LN, unscaled scores); attention / residual / norm:
# the three highways; scaled: a depth-scaled variant (1/√L branches); reference: identity or a guide line;
# series: one of several settings of the same thing (ρ = 0.9, 1.0, 1.1), coloured in order.
ROLES = ("baseline", "attention", "residual", "norm", "scaled", "reference", "series")

__all__ = ["ROLES", "Curve", "CurveSet", "first_non_finite", "curve", "DepthProfile"]


def first_non_finite(*arrays: np.ndarray) -> Optional[int]:
    """Index of the first entry that is inf or NaN in any of the (equally long) arrays, else None."""
    bad = np.zeros(len(arrays[0]), dtype=bool)
    for a in arrays:
        bad |= ~np.isfinite(np.asarray(a, dtype=np.float64))
    return int(np.argmax(bad)) if bad.any() else None


def _check_names(key: object, label: object, role: object) -> None:
    """key and label are strings (a key is looked up, a label shown), role one of ROLES."""
    for name, value in (("label", label), ("key", key)):  # label first: the key defaults to it
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a str; got {value!r}")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(map(repr, ROLES))}; got {role!r}")


@dataclass(frozen=True)
class Curve:
    """One line of a figure: y against x, what it stands for, and what theory predicts (when anything does)."""

    key: str
    label: str
    role: str
    x: np.ndarray  # (n,)
    y: np.ndarray  # (n,) inf/NaN where a run exploded
    theory: Optional[np.ndarray] = None  # (n,) the prediction at the same x
    exploded_at: Optional[int] = None  # index into x of the first inf/NaN value of y

    def __post_init__(self) -> None:
        _check_names(self.key, self.label, self.role)
        if np.shape(self.x) != np.shape(self.y):
            raise ValueError(f"x and y of curve {self.key!r} must have the same shape; "
                             f"got {np.shape(self.x)} and {np.shape(self.y)}")
        if self.theory is not None and np.shape(self.theory) != np.shape(self.y):
            raise ValueError(f"theory of curve {self.key!r} must have y's shape {np.shape(self.y)}; "
                             f"got {np.shape(self.theory)}")


def curve(key: str, label: str, role: str, x: Sequence[float], y: Sequence[float],
          theory: Optional[Sequence[float]] = None) -> Curve:
    """A Curve from array-likes, as float64, with ``exploded_at`` found in y."""
    y = np.asarray(y, dtype=np.float64)
    return Curve(key=key, label=label, role=role, x=np.asarray(x, dtype=np.float64), y=y,
                 theory=None if theory is None else np.asarray(theory, dtype=np.float64),
                 exploded_at=first_non_finite(y))


@dataclass(frozen=True)
class CurveSet:
    """Curves drawn together, looked up by key: ``result["plain"].y``."""

    curves: tuple[Curve, ...]

    def __post_init__(self) -> None:
        keys = [c.key for c in self.curves]
        if len(set(keys)) != len(keys):
            raise ValueError(f"curve keys must be unique; got {keys}")

    def __getitem__(self, key: str) -> Curve:
        for c in self.curves:
            if c.key == key:
                return c
        raise KeyError(f"no curve {key!r}; the keys are {', '.join(self.keys())}")

    def __iter__(self) -> Iterator[Curve]:
        return iter(self.curves)

    def __len__(self) -> int:
        return len(self.curves)

    def keys(self) -> list[str]:
        """The curves' keys, in drawing order."""
        return [c.key for c in self.curves]


@dataclass(frozen=True)
class DepthProfile:
    """One network's gradient at every layer (layer 1 = nearest the input), measured by probes.layer_grad_norms."""

    key: str
    label: str
    role: str
    layer: np.ndarray  # (L,) 1..L
    grad_norms: np.ndarray  # (L,) ‖∂ℓ/∂h_l‖, h_l the output of layer l
    param_norms: np.ndarray  # (L,) ‖∂ℓ/∂θ_l‖
    exploded_at: Optional[int] = None  # first layer (0-based) with an inf/NaN gradient, else None
    ratio: float = field(init=False)  # grad_norms[0] / grad_norms[-1]: ≪ 1 vanishing, ≫ 1 exploding

    def __post_init__(self) -> None:
        _check_names(self.key, self.label, self.role)
        object.__setattr__(self, "ratio", first_over_last(self.grad_norms))

    @property
    def curve(self) -> Curve:
        """The profile as the Curve its figure draws: ‖∂ℓ/∂h_l‖ against l."""
        return Curve(self.key, self.label, self.role, self.layer.astype(np.float64), self.grad_norms,
                     exploded_at=self.exploded_at)
