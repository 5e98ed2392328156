"""A small sequence model to train: token embedding + learned positions + a stack of blocks + a head.

    h_0 = E[x] + P                  E: (V, d), P: (T, d), both N(0, embed_std²)
    h_l = block_l(h_{l−1})          l = 1..N, in ``self.layers`` (found by gradlib's probes)
    logits = head(final_norm(h_N))  (B, T, V)

The blocks are PyTorch's own ``nn.TransformerEncoderLayer`` drawn independently (gradlib.reference,
``implementation="torch"``) or gradlib's TransformerBlock (``"gradlib"``), whose attention can bound its
logits with QK-norm or σReparam (gradlib.multihead.SelfAttention). Everything is drawn from local generators
seeded by ``seed``: the same seed gives the same model, and the global RNG is left alone.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from gradlib import checks, draws
from gradlib.multihead import QK_NORMS, SelfAttention
from gradlib.reference import torch_encoder_stack
from gradlib.transformer import NORM_POSITIONS, TransformerStack

__all__ = ["IMPLEMENTATIONS", "SequenceModel"]

IMPLEMENTATIONS = ("torch", "gradlib")
_EMBED_STREAM = 7919  # the embeddings' and head's seed offset from the blocks' (a different stream)


class SequenceModel(nn.Module):
    """Token ids (B, T) -> logits (B, T, V) through N encoder blocks.

    Args:
        vocab: V token ids (and output classes).
        seq_len: T, the number of learned positions (inputs may be shorter).
        d_model, n_heads, d_ff: block shape (n_heads divides d_model; d_ff None = 4·d_model).
        n_layers: N ≥ 1 blocks.
        norm_position: "pre" (x + f(LN(x))) or "post" (LN(x + f(x))).
        implementation: "torch" (nn.TransformerEncoderLayer, dropout 0) or "gradlib" (TransformerBlock).
        final_norm: a LayerNorm before the head; None = True for Pre-LN (Xiong et al. 2020's layout).
        norm: "gradlib" only: the blocks' norm kind ("layer", "rms", "none").
        branch_scale: "gradlib" only: α of x + α·f(x), learnable (ReZero: 0 with norm="none").
        qk_norm: "gradlib" only: "none", "layer" or "rms" on every head's queries and keys.
        sigma_reparam: "gradlib" only: Ŵ = γ·W/σ(W) on the attention projections.
        embed_std: std of the token and position embeddings.
        seed: seeds the blocks, and (a separate stream) the embeddings and head.
    """

    def __init__(self, vocab: int, seq_len: int, d_model: int = 32, n_heads: int = 4, d_ff: Optional[int] = None,
                 n_layers: int = 2, *, norm_position: str = "pre", implementation: str = "torch",
                 final_norm: Optional[bool] = None, norm: str = "layer", branch_scale: float = 1.0,
                 qk_norm: str = "none", sigma_reparam: bool = False, embed_std: float = 1.0, seed: int = 0) -> None:
        vocab = checks.integer(vocab, "vocab", minimum=2)
        seq_len = checks.positive_int(seq_len, "seq_len")
        d_model, n_heads = checks.heads(d_model, n_heads)
        d_ff = 4 * d_model if d_ff is None else checks.positive_int(d_ff, "d_ff")
        n_layers = checks.positive_int(n_layers, "n_layers")
        checks.choice(norm_position, "norm_position", NORM_POSITIONS)
        checks.choice(implementation, "implementation", IMPLEMENTATIONS)
        final_norm = norm_position == "pre" if final_norm is None else checks.boolean(final_norm, "final_norm")
        checks.choice(qk_norm, "qk_norm", QK_NORMS)
        checks.boolean(sigma_reparam, "sigma_reparam")
        checks.finite(branch_scale, "branch_scale")
        embed_std = checks.finite(embed_std, "embed_std", positive=True)
        seed = checks.seed(seed)
        if implementation == "torch":
            gradlib_only = {"norm": norm != "layer", "branch_scale": branch_scale != 1.0,
                            "qk_norm": qk_norm != "none", "sigma_reparam": sigma_reparam}
            bad = [name for name, used in gradlib_only.items() if used]
            if bad:
                raise ValueError(f"{bad[0]} needs implementation='gradlib' (nn.TransformerEncoderLayer has no "
                                 f"such option); got implementation='torch' with {bad[0]} set")
        super().__init__()
        self.vocab, self.seq_len, self.d_model = vocab, seq_len, d_model
        self.norm_position, self.implementation = norm_position, implementation
        g = draws.generator(seed + _EMBED_STREAM)
        self.embed = skip_init(nn.Embedding, vocab, d_model)
        draws.assign(self.embed.weight, draws.normal((vocab, d_model), embed_std, g))
        self.pos = nn.Parameter(draws.normal((seq_len, d_model), embed_std, g).float())
        if implementation == "torch":
            stack = torch_encoder_stack(n_layers, d_model, n_heads, d_ff, norm_first=norm_position == "pre",
                                        final_norm=False, seed=seed)
        else:
            stack = TransformerStack(n_layers, d_model, n_heads, d_ff, final_norm=False, seed=seed, norm=norm,
                                     norm_position=norm_position, branch_scale=branch_scale)
            if qk_norm != "none" or sigma_reparam:
                attn_g = draws.generator(seed + 2 * _EMBED_STREAM)
                for block in stack.layers:  # the same Xavier init as the block's own attention, bounded logits
                    block.attn = SelfAttention(d_model, n_heads, qk_norm=qk_norm, sigma_reparam=sigma_reparam,
                                               generator=attn_g)
        self.layers = stack.layers  # nn.ModuleList of N blocks
        self.final_norm = nn.LayerNorm(d_model) if final_norm else nn.Identity()
        self.head = skip_init(nn.Linear, d_model, vocab)
        bound = 1.0 / math.sqrt(d_model)  # nn.Linear's own U[±1/√d], drawn from our stream
        draws.assign(self.head.weight, draws.uniform((vocab, d_model), bound, g))
        draws.assign(self.head.bias, draws.uniform((vocab,), bound, g))

    def forward(self, x: Tensor) -> Tensor:
        """Token ids (B, T) int64 -> logits (B, T, V)."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.is_floating_point() or x.shape[1] > self.seq_len:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be int token ids of shape (B, T ≤ {self.seq_len}); got {shape}")
        h = self.embed(x) + self.pos[: x.shape[1]]
        for layer in self.layers:
            h = layer(h)
        return self.head(self.final_norm(h))

    def extra_repr(self) -> str:
        return (f"vocab={self.vocab}, seq_len={self.seq_len}, norm_position={self.norm_position!r}, "
                f"implementation={self.implementation!r}")
