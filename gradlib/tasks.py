"""Synthetic training tasks, drawn on the fly from a seeded generator: no downloads, chance loss known.

    copy      y_t = x_t                     (B, T) token ids in [0, V)
    reverse   y_t = x_{T−1−t}
    sort      y = sorted(x)                 ascending, duplicates kept
    teacher   y = argmax(W* x), x ~ N(0, I)   a random linear teacher with C classes, for an MLP (B, n_in)

Every task draws a batch with ``task.batch(g)`` from a CPU torch.Generator only (the global RNG is never
touched), scores logits with ``task.loss`` (cross-entropy over the last axis) and ``task.accuracy``, and knows
its chance level ``task.chance_loss`` (ln V, ln C: the loss of predicting the uniform distribution).
"""

from __future__ import annotations

import math
from typing import Union

import torch
import torch.nn.functional as F
from torch import Tensor

from gradlib import checks, draws

__all__ = ["SEQUENCE_TASKS", "SequenceTask", "TeacherTask", "Task"]

SEQUENCE_TASKS = ("copy", "reverse", "sort")


def _generator(g: object) -> torch.Generator:
    # None would make torch fall back to the global RNG: refuse it
    if not isinstance(g, torch.Generator):
        raise ValueError(f"g must be a torch.Generator (see gradlib.draws.generator); got {type(g).__name__}")
    return g


class _Classification:
    """Cross-entropy and accuracy over the last axis of logits; targets are class ids of logits' shape[:-1]."""

    n_classes: int

    @property
    def chance_loss(self) -> float:
        """ln C: the cross-entropy of the uniform prediction."""
        return math.log(self.n_classes)

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Mean cross-entropy, ℓ = −mean log softmax(logits)[target]; logits (..., C), targets (...)."""
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def accuracy(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Fraction of positions where argmax(logits) = target (a 0-d tensor)."""
        return (logits.argmax(-1) == targets).float().mean()


class SequenceTask(_Classification):
    """copy / reverse / sort of T random tokens from a vocabulary of V, a fresh batch on every call.

    Args:
        task: one of SEQUENCE_TASKS.
        vocab: V ≥ 2 token ids 0..V−1 (chance loss ln V).
        seq_len: T ≥ 1 tokens per sequence.
        batch: B ≥ 1 sequences per batch.
    """

    def __init__(self, task: str = "reverse", *, vocab: int = 16, seq_len: int = 16, batch: int = 32) -> None:
        self.task = checks.choice(task, "task", SEQUENCE_TASKS)
        self.vocab = checks.integer(vocab, "vocab", minimum=2)
        self.seq_len = checks.positive_int(seq_len, "seq_len")
        self.batch_size = checks.positive_int(batch, "batch")
        self.n_classes = self.vocab

    def targets(self, x: Tensor) -> Tensor:
        """The answer for token ids x (B, T): x, x reversed along T, or x sorted along T."""
        if self.task == "copy":
            return x.clone()
        if self.task == "reverse":
            return x.flip(-1)
        return x.sort(dim=-1).values

    def batch(self, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """(x, y): x (B, T) uniform token ids drawn from `g`, y = targets(x) (B, T), both int64."""
        x = torch.randint(0, self.vocab, (self.batch_size, self.seq_len), generator=_generator(g))
        return x, self.targets(x)

    def __repr__(self) -> str:
        return f"SequenceTask({self.task!r}, vocab={self.vocab}, seq_len={self.seq_len}, batch={self.batch_size})"


class TeacherTask(_Classification):
    """A C-way classification of x ~ N(0, I_n) by a random linear teacher: y = argmax_c (W* x)_c.

    W* ~ N(0, 1/n), (C, n), is drawn once from ``seed``; the inputs come from the generator given to
    :meth:`batch`. The classes are equally likely by symmetry, so the chance loss is ln C.

    Args:
        n_in: n, the input width.
        n_classes: C ≥ 2.
        batch: B ≥ 1 inputs per batch.
        seed: seed of the teacher's weights.
        dtype: of the inputs.
    """

    def __init__(self, n_in: int = 64, n_classes: int = 10, *, batch: int = 64, seed: int = 0,
                 dtype: torch.dtype = torch.float32) -> None:
        self.n_in = checks.positive_int(n_in, "n_in")
        self.n_classes = checks.integer(n_classes, "n_classes", minimum=2)
        self.batch_size = checks.positive_int(batch, "batch")
        self.dtype = checks.floating_dtype(dtype)
        self.teacher = draws.normal((self.n_classes, self.n_in), self.n_in ** -0.5, draws.generator(checks.seed(seed)))

    def targets(self, x: Tensor) -> Tensor:
        """argmax_c (W* x)_c for x (B, n_in) -> (B,) int64."""
        return (x.to(torch.float64) @ self.teacher.T).argmax(-1)

    def batch(self, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """(x, y): x (B, n_in) ~ N(0, 1) drawn from `g`, y (B,) the teacher's classes."""
        x = torch.randn((self.batch_size, self.n_in), generator=_generator(g), dtype=self.dtype)
        return x, self.targets(x)

    def __repr__(self) -> str:
        return f"TeacherTask(n_in={self.n_in}, n_classes={self.n_classes}, batch={self.batch_size})"


Task = Union[SequenceTask, TeacherTask]
