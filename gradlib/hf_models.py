"""Small Hugging Face models from configs, random seeded weights: GPT-2 (Pre-LN), BERT (Post-LN), Llama (Pre-RMSNorm).

    GPT-2  x = x + attn(LN(x));   x = x + mlp(LN(x));    y = LN_f(x_L)     (Radford et al. 2019)
    BERT   x = LN(x + attn(x));   x = LN(x + mlp(x));    y = x_L           (Devlin et al. 2019, Post-LN)
    Llama  x = x + attn(RMS(x));  x = x + mlp(RMS(x));   y = RMS_f(x_L)    (Touvron et al. 2023)

Nothing is downloaded: each model is built from a small config with the library's own random init
(N(0, 0.02²) weights; GPT-2 also draws its residual projections ``c_proj`` with std 0.02/√(2·n_layers)),
drawn from torch's global RNG inside ``fork_rng`` seeded by ``seed``: the same seed gives the same weights and
the caller's RNG state is left as it was. Dropout is 0 everywhere and the model is in eval mode, so a probe of
it is deterministic. ``transformers`` is imported inside the builders only: importing this module costs nothing.

Trap when reading model code: Llama's ``post_attention_layernorm`` is the norm *before* the MLP (Pre-LN), not a
norm after attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from gradlib import checks, draws

__all__ = ["Family", "FAMILIES", "gpt2", "bert", "llama", "build", "token_ids"]


def _checked(n_layers: object, d_model: object, n_heads: object, d_ff: object, vocab_size: object,
             max_len: object, seed: object, dtype: object) -> tuple[int, int, int, int, int, int, int]:
    n_layers = checks.positive_int(n_layers, "n_layers")
    d, h = checks.heads(d_model, n_heads)
    d_ff = 4 * d if d_ff is None else checks.positive_int(d_ff, "d_ff")
    vocab = checks.positive_int(vocab_size, "vocab_size")
    max_len = checks.positive_int(max_len, "max_len")
    checks.floating_dtype(dtype)
    return n_layers, d, h, d_ff, vocab, max_len, checks.seed(seed)


def _seeded(make: Callable[[], nn.Module], seed: int, dtype: torch.dtype) -> nn.Module:
    """make() with torch's global RNG seeded by `seed` and restored afterwards; eval mode, in `dtype`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = make()
    return model.to(dtype=dtype).eval()


def gpt2(n_layers: int = 4, d_model: int = 64, n_heads: int = 4, d_ff: Optional[int] = None, *,
         vocab_size: int = 256, max_len: int = 64, seed: int = 0, dtype: torch.dtype = torch.float32,
         scaled_residual_init: bool = True) -> nn.Module:
    """A random ``transformers.GPT2Model``: Pre-LN blocks ``h.0 … h.{L−1}`` and a final LayerNorm ``ln_f``.

    x = x + attn(ln_1(x)); x = x + mlp(ln_2(x)); y = ln_f(x_L). Causal attention, GELU MLP.

    Args:
        n_layers: blocks L ≥ 1.  d_model: width (n_embd); n_heads must divide it.  d_ff: MLP width (4·d_model).
        vocab_size, max_len: token and position embeddings.  seed: the init.  dtype: of the parameters.
        scaled_residual_init: GPT-2's init, the two ``c_proj`` of every block ~ N(0, 0.02²/(2L)); False redraws
            them ~ N(0, 0.02²) like every other weight (from a generator seeded by `seed`), for comparison.
    """
    n_layers, d, h, d_ff, vocab, max_len, seed = _checked(n_layers, d_model, n_heads, d_ff, vocab_size, max_len,
                                                          seed, dtype)
    checks.boolean(scaled_residual_init, "scaled_residual_init")
    import transformers  # here, not at the top: importing it takes seconds

    config = transformers.GPT2Config(
        n_layer=n_layers, n_embd=d, n_head=h, n_inner=d_ff, vocab_size=vocab, n_positions=max_len,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )
    model = _seeded(lambda: transformers.GPT2Model(config), seed, dtype)
    if not scaled_residual_init:
        g = draws.generator(seed)
        for block in model.h:
            for proj in (block.attn.c_proj, block.mlp.c_proj):
                draws.assign(proj.weight, draws.normal(tuple(proj.weight.shape), config.initializer_range, g))
    return model


def bert(n_layers: int = 4, d_model: int = 64, n_heads: int = 4, d_ff: Optional[int] = None, *,
         vocab_size: int = 256, max_len: int = 64, seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A random ``transformers.BertModel`` without pooler: Post-LN blocks ``encoder.layer.0 …``, no final norm.

    x = LN(x + attn(x)); x = LN(x + mlp(x)); y = x_L (the last block already ends in a LayerNorm).

    Args: as :func:`gpt2` (d_ff is BERT's intermediate_size).
    """
    n_layers, d, h, d_ff, vocab, max_len, seed = _checked(n_layers, d_model, n_heads, d_ff, vocab_size, max_len,
                                                          seed, dtype)
    import transformers

    config = transformers.BertConfig(
        num_hidden_layers=n_layers, hidden_size=d, num_attention_heads=h, intermediate_size=d_ff,
        vocab_size=vocab, max_position_embeddings=max_len, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return _seeded(lambda: transformers.BertModel(config, add_pooling_layer=False), seed, dtype)


def llama(n_layers: int = 4, d_model: int = 64, n_heads: int = 4, d_ff: Optional[int] = None, *,
          vocab_size: int = 256, max_len: int = 64, seed: int = 0, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A random ``transformers.LlamaModel``: Pre-RMSNorm blocks ``layers.0 …`` and a final RMSNorm ``norm``.

    x = x + attn(RMS(x)); x = x + mlp(RMS(x)); y = RMS(x_L). RoPE, SwiGLU MLP, no biases, one KV head per head.

    Args: as :func:`gpt2` (d_ff is Llama's intermediate_size).
    """
    n_layers, d, h, d_ff, vocab, max_len, seed = _checked(n_layers, d_model, n_heads, d_ff, vocab_size, max_len,
                                                          seed, dtype)
    import transformers

    config = transformers.LlamaConfig(
        num_hidden_layers=n_layers, hidden_size=d, num_attention_heads=h, num_key_value_heads=h,
        intermediate_size=d_ff, vocab_size=vocab, max_position_embeddings=max_len, attention_dropout=0.0,
        bos_token_id=0, eos_token_id=0, pad_token_id=None,
    )
    return _seeded(lambda: transformers.LlamaModel(config), seed, dtype)


@dataclass(frozen=True)
class Family:
    """What a family's blocks are: how to build one, and where its norm stands."""

    key: str  # "gpt2"
    label: str  # "GPT-2 (Pre-LN)"
    norm: str  # "layer" or "rms" (gradlib.norms names)
    norm_position: str  # "pre" or "post"
    final_norm: bool  # a norm after the last block
    cite: str  # its paper's key in book/references.bib
    blocks: str  # the attribute path of its blocks, e.g. "h"
    build: Callable[..., nn.Module]


FAMILIES: dict[str, Family] = {
    "gpt2": Family("gpt2", "GPT-2 (Pre-LN)", "layer", "pre", True, "radford2019language", "h", gpt2),
    "bert": Family("bert", "BERT (Post-LN)", "layer", "post", False, "devlin2019bert", "encoder.layer", bert),
    "llama": Family("llama", "Llama (Pre-RMSNorm)", "rms", "pre", True, "touvron2023llama", "layers", llama),
}


def build(family: str, n_layers: int = 4, **kwargs: Any) -> nn.Module:
    """The model of FAMILIES[family] (``build("bert", 6, d_model=32)``); kwargs as in :func:`gpt2`.

    Unknown keywords are a ValueError naming them (``scaled_residual_init`` is GPT-2's only).
    """
    checks.choice(family, "family", tuple(FAMILIES))
    allowed = ("d_model", "n_heads", "d_ff", "vocab_size", "max_len", "seed", "dtype") + (
        ("scaled_residual_init",) if family == "gpt2" else ())
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"kwargs must be among {', '.join(allowed)}; got unknown {', '.join(unknown)}")
    return FAMILIES[family].build(n_layers, **kwargs)


def token_ids(batch: int, seq_len: int, vocab_size: int = 256, seed: int = 0) -> Tensor:
    """(batch, seq_len) random token ids, uniform over the vocabulary, from the data stream of `seed`."""
    batch, seq_len = checks.positive_int(batch, "batch"), checks.positive_int(seq_len, "seq_len")
    vocab_size = checks.positive_int(vocab_size, "vocab_size")
    return torch.randint(0, vocab_size, (batch, seq_len), generator=draws.data_generator(checks.seed(seed)))
