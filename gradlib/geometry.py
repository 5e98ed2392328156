"""Token geometry: how far a set of token representations is from collapsing onto a single token.

A layer's output for one sequence is H ∈ R^{T×d}, one row per token; h̄ = (1/T) Hᵀ1 is the mean token.

    r(H) = ‖H − 1 h̄ᵀ‖_F / ‖H‖_F               rank collapse; 0 ⇔ all tokens equal (H has rank one, H = 1 h̄ᵀ)
    c(H) = mean_{i≠j} ⟨h_i, h_j⟩ / (‖h_i‖ ‖h_j‖)  mean pairwise cosine; 1 ⇔ all tokens point the same way

r is the residual of Dong et al. (2021), "Attention is not all you need: pure attention loses rank doubly
exponentially with depth", divided by ‖H‖_F so that it does not depend on the scale of H (r ∈ [0, 1]).
Without skip connections, r(H_l) of a pure-attention stack falls doubly exponentially in the depth l.

Both take (T, d) or (B, T, d) (a tensor or a numpy array), average over the batch, compute in float64 and
refuse NaN/inf input: a NaN token would otherwise turn the whole average into NaN without saying why.
"""

from __future__ import annotations

from typing import Union

import numpy as np
import torch
from torch import Tensor

from gradlib import checks

__all__ = ["rank_collapse", "token_cosine_similarity"]

Tokens = Union[Tensor, np.ndarray]


def _as_tokens(h: object, name: str = "h") -> Tensor:
    """h as a finite float64 tensor of shape (B, T, d)."""
    if isinstance(h, np.ndarray):
        h = torch.from_numpy(h)
    if not isinstance(h, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array; got {type(h).__name__}")
    if h.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (T, d) or (B, T, d); got shape {tuple(h.shape)}")
    checks.tensor(h, name, finite=True)  # the same message for a numpy array (it is a tensor by now)
    h = h.detach().to(torch.float64)
    return h.unsqueeze(0) if h.ndim == 2 else h


def rank_collapse(h: Tokens) -> float:
    """How far the tokens are from all being equal: 0 = rank one (collapsed).

    r(H) = ‖H − 1 h̄ᵀ‖_F / ‖H‖_F with h̄ the mean token (Dong et al. 2021's residual, made scale-free).

    Args:
        h: (T, d) or (B, T, d) token representations, finite; the batch is averaged over.
    Returns:
        The mean over the batch of r(H_b); computed in float64. All-zero H counts as collapsed (0).
    """
    h = _as_tokens(h)  # (B, T, d)
    residual = torch.linalg.vector_norm(h - h.mean(dim=1, keepdim=True), dim=(1, 2))  # (B,)
    total = torch.linalg.vector_norm(h, dim=(1, 2))  # (B,)
    # residual = 0 whenever total = 0, so the where() also keeps 0/0 out of the mean
    ratio = torch.where(residual == 0, torch.zeros_like(residual), residual / total)
    return float(ratio.mean())


def token_cosine_similarity(h: Tokens) -> float:
    """Mean cosine similarity over all pairs of distinct tokens (1 = all tokens point the same way).

    c = mean_{i≠j} ⟨h_i, h_j⟩ / (‖h_i‖ ‖h_j‖).

    Args:
        h: (T, d) or (B, T, d), T >= 2, finite; the batch is averaged over. Zero tokens count as similarity 0.
    """
    h = _as_tokens(h)  # (B, T, d)
    n_tok = h.shape[1]
    if n_tok < 2:
        raise ValueError(f"h must have at least 2 tokens (T >= 2); got T = {n_tok}")
    unit = torch.nn.functional.normalize(h, dim=-1)  # a zero token stays zero: its cosines are 0
    cos = unit @ unit.transpose(-2, -1)  # (B, T, T)
    off_diagonal = cos.sum(dim=(1, 2)) - cos.diagonal(dim1=1, dim2=2).sum(dim=1)  # (B,)
    return float((off_diagonal / (n_tok * (n_tok - 1))).mean())
