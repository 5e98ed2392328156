"""Attention entropy of every attention module of a model, read from the weights each module returns.

    H(p_i) = −Σ_j p_ij log p_ij          one query row i of P = softmax(A); 0 ≤ H ≤ log S (S keys)
    entropy[m, h] = mean_{b, i} H(p_bhi)  per attention module m and head h (Zhai et al. 2023 track this)

The modules are gradlib's ``SelfAttention`` (``forward(..., return_weights=True)``) and PyTorch's
``nn.MultiheadAttention`` (``need_weights=True, average_attn_weights=False``). Forward pre-hooks capture each
module's inputs during ONE forward of the model; the hooks are removed (in ``finally``), then each module's
own forward is called again on those inputs asking for its weights. No private copy of attention.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Union

import numpy as np
import torch
from torch import Tensor, nn

from gradlib import checks
from gradlib.multihead import SelfAttention

__all__ = ["AttentionEntropy", "row_entropy", "attention_modules", "recording", "attention_entropy"]

ATTENTION_TYPES = (SelfAttention, nn.MultiheadAttention)


@dataclass(frozen=True)
class AttentionEntropy:
    """Mean row entropy of every head of every attention module, modules in forward order."""

    names: tuple[str, ...]  # (M,) qualified module names
    entropy: np.ndarray  # (M, h) mean over batch and queries of H(p_i), in nats
    max_entropy: float  # log S, the entropy of uniform attention over S keys

    @property
    def min(self) -> float:
        """The smallest head entropy anywhere in the model (NaN if a weight was NaN)."""
        return float(np.min(self.entropy))


def row_entropy(weights: Tensor) -> Tensor:
    """H = −Σ_j p_j log p_j over the last axis (0·log 0 = 0), in float64; weights (..., S) -> (...)."""
    p = weights.to(torch.float64)
    return -torch.special.xlogy(p, p).sum(-1)


def attention_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(qualified name, module) of every SelfAttention / nn.MultiheadAttention in `model`, in module order."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
    return [(name, m) for name, m in model.named_modules() if isinstance(m, ATTENTION_TYPES)]


@contextlib.contextmanager
def _no_fused_attention() -> Iterator[None]:
    # nn.TransformerEncoderLayer's fused fast path (eval mode, no grad) never calls self_attn: turn it off
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def _weights(module: nn.Module, args: tuple, kwargs: dict) -> Tensor:
    """The module's own forward on its captured inputs, asking for per-head weights (B, h, T, S)."""
    if isinstance(module, SelfAttention):
        _, w = module(*args, **{**kwargs, "return_weights": True})
        return w
    kwargs = {**kwargs, "need_weights": True, "average_attn_weights": False}
    _, w = module(*args, **kwargs)
    return w if w.dim() == 4 else w.unsqueeze(0)  # unbatched input: (h, T, S)


@contextlib.contextmanager
def recording(model: nn.Module) -> Iterator[Callable[[], AttentionEntropy]]:
    """Capture every attention module's inputs during the forwards run inside the block (hooks removed on exit).

    Yields a function that, called after the block's forward, re-calls each module's own forward on what it
    captured (under no_grad, fused fast path off) and returns the AttentionEntropy. gradlib.training uses it to
    read the entropy from the probes' own forward instead of running one more.
    """
    found = attention_modules(model)
    if not found:
        raise ValueError(f"model must contain a SelfAttention or nn.MultiheadAttention; {type(model).__name__} has none")
    captured: list[list[tuple[tuple, dict]]] = [[] for _ in found]

    def make_hook(i: int):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            captured[i].append((args, dict(kwargs)))

        return hook

    def entropy() -> AttentionEntropy:
        rows, sizes = [], []
        with torch.no_grad(), _no_fused_attention():
            for (name, module), calls in zip(found, captured):
                if len(calls) != 1:
                    raise ValueError(f"attention module '{name}' ran {len(calls)} times in one forward; "
                                     "it must run once")
                w = _weights(module, *calls[0])  # (B, h, T, S)
                rows.append(row_entropy(w).mean(dim=(0, 2)).cpu().numpy())  # (h,)
                sizes.append(w.shape[-1])
        heads = {len(r) for r in rows}
        table = np.stack(rows) if len(heads) == 1 else np.array([[r.min()] for r in rows])  # unequal heads: min
        return AttentionEntropy(names=tuple(n for n, _ in found), entropy=table, max_entropy=math.log(max(sizes)))

    handles = [m.register_forward_pre_hook(make_hook(i), with_kwargs=True) for i, (_, m) in enumerate(found)]
    try:
        yield entropy
    finally:
        for handle in handles:
            handle.remove()


def attention_entropy(model: nn.Module, x: Union[Tensor, Mapping[str, Any]]) -> AttentionEntropy:
    """Mean attention entropy of every head of every attention module, for the input `x`.

    entropy[m, h] = mean_{b,i} −Σ_j P^(m)_bhij log P^(m)_bhij, P^(m) returned by module m itself.
    Runs under ``torch.no_grad()`` in the model's current mode (train/eval is left as it is).

    Args:
        model: any nn.Module holding SelfAttention or nn.MultiheadAttention modules, each run once per forward.
        x: the input, called as ``model(x)`` (or ``model(**x)`` for a Mapping).
    Returns:
        AttentionEntropy with entropy of shape (M, h) and max_entropy = log S.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
    if isinstance(x, Tensor):
        checks.tensor(x, "x", finite=True)
    elif not isinstance(x, Mapping):
        raise ValueError(f"x must be a tensor or a mapping of keyword inputs; got {type(x).__name__}")
    with recording(model) as entropy:
        with torch.no_grad(), _no_fused_attention():
            model(**x) if isinstance(x, Mapping) else model(x)
    return entropy()
