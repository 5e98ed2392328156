"""The init schemes of a Transformer block: PyTorch's encoder-layer init, Xavier, and DeepNet's.

    "default"   PyTorch's nn.TransformerEncoderLayer: Xavier-U over the packed (3d × d) in-projection
                (Var W_Q = Var W_K = Var W_V = 2/(3d + d) = 1/(2d)), W_O ~ U[±1/√d], attention biases 0,
                FFN weights and biases ~ U[±1/√fan_in] (nn.Linear's)
    "xavier"    every weight U[±√(6/(fan_in + fan_out))] (Var W_Q = 1/d: Dong et al. 2021), biases 0
    "deepnorm"  DeepNet (Wang et al. 2022, encoder-only, N layers), biases 0:
                W_Q, W_K ~ N(0, 2/(fan_in + fan_out)) (Xavier-normal);  W_V, W_O, FFN ~ β·Xavier-normal
                skip scale s = (2N)^(1/4),  β = (8N)^(−1/4)                       (:func:`deepnorm_constants`)

    init_block(block, g, init, N)             redraws one block by a scheme (TransformerBlock.reset_parameters)
    torch_encoder_layer_draws(d, d_ff, g)     the "default" numbers, keyed by nn.TransformerEncoderLayer's names
    deepnorm_constants(N), deepnorm_block_kwargs(kwargs, N)   DeepNet's (s, β) and its Post-LN block arguments

Every number is drawn in float64 from the generator passed in (:mod:`gradlib.draws`), in a fixed order, so a
stack drawing its blocks in turn from one generator is reproducible, and "default" gives exactly the numbers
:func:`gradlib.reference.torch_encoder_stack` puts into PyTorch's own layers for the same seed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional

import torch
from torch import Tensor, nn

from gradlib import checks, draws

if TYPE_CHECKING:  # only for the type hint: transformer imports this module
    from gradlib.transformer import TransformerBlock

STACK_INITS = ("default", "xavier", "deepnorm")

__all__ = ["STACK_INITS", "deepnorm_constants", "deepnorm_block_kwargs", "torch_encoder_layer_draws", "init_block"]


def deepnorm_constants(n_layers: int) -> tuple[float, float]:
    """DeepNet's constants for an encoder of N layers (Wang et al. 2022): (s, β) = ((2N)^(1/4), (8N)^(−1/4)).

    s multiplies the skip (x_{l+1} = LN(s·x_l + f(x_l))), β the init of W_V, W_O and the FFN weights.

    Args:
        n_layers: N ≥ 1, the depth of the stack.
    """
    n = checks.positive_int(n_layers, "n_layers")
    return (2.0 * n) ** 0.25, (8.0 * n) ** -0.25


def deepnorm_block_kwargs(block_kwargs: dict[str, Any], n_layers: int) -> dict[str, Any]:
    """A DeepNet stack's block arguments: Post-LN with the skip, s = (2N)^(1/4); a conflicting one is an error.

    Args:
        block_kwargs: what the stack was given for its blocks (not changed).
        n_layers: N.
    Returns:
        a copy with norm_position="post" and skip_scale=s.
    """
    if block_kwargs.get("norm_position", "post") != "post":
        raise ValueError(
            f"norm_position must be 'post' with init='deepnorm'; got {block_kwargs['norm_position']!r}"
        )
    if "skip_scale" in block_kwargs:
        raise ValueError("skip_scale must not be given with init='deepnorm': it is set to (2N)^(1/4)")
    if not block_kwargs.get("residual", True):
        raise ValueError("residual must be True with init='deepnorm'")
    return {**block_kwargs, "norm_position": "post", "skip_scale": deepnorm_constants(n_layers)[0]}


def torch_encoder_layer_draws(d_model: int, d_ff: Optional[int], g: torch.Generator) -> dict[str, Tensor]:
    """nn.TransformerEncoderLayer's init distributions, drawn from `g` in PyTorch's parameter order.

    in_proj W (3d, d) ~ U[±√(6/4d)];  out_proj W (d, d) ~ U[±1/√d];  linear_i W, b ~ U[±1/√fan_in].

    Args:
        d_model: d.
        d_ff: FFN width, or None for no FFN (an attention-only block: no linear1/linear2 draws).
        g: CPU generator; it advances by the draws' numel.
    Returns:
        float64 tensors keyed by the layer's parameter names ("self_attn.in_proj_weight", ...,
        "linear2.bias"), in draw order; the zero biases and the norms are not drawn and not listed.
    """
    d = int(d_model)
    out = {
        # One draw for the packed (3d × d) matrix, as PyTorch's xavier_uniform_ over in_proj_weight.
        "self_attn.in_proj_weight": draws.uniform((3 * d, d), math.sqrt(6.0 / (3 * d + d)), g),
        "self_attn.out_proj.weight": draws.uniform((d, d), 1.0 / math.sqrt(d), g),
    }
    if d_ff is not None:
        for name, (n_out, n_in) in (("linear1", (int(d_ff), d)), ("linear2", (d, int(d_ff)))):
            bound = 1.0 / math.sqrt(n_in)
            out[f"{name}.weight"] = draws.uniform((n_out, n_in), bound, g)
            out[f"{name}.bias"] = draws.uniform((n_out,), bound, g)
    return out


def init_block(block: TransformerBlock, g: torch.Generator, init: str, n_layers: int) -> None:
    """Redraw `block`'s attention and FFN weights from `g` by scheme `init` (the module docstring's table).

    Arguments are trusted (TransformerBlock.reset_parameters checks them); norms and α are left alone.

    Args:
        block: a TransformerBlock (attn.w_q … w_o, ffn[0], ffn[2] or ffn None).
        g: CPU generator.
        init: one of STACK_INITS.
        n_layers: N, the depth of the stack the block belongs to ("deepnorm"'s β).
    """
    attn = block.attn
    ffn_in: Optional[nn.Linear] = None if block.ffn is None else block.ffn[0]
    ffn_out: Optional[nn.Linear] = None if block.ffn is None else block.ffn[2]

    if init == "default":
        torch_draws = torch_encoder_layer_draws(block.d_model, None if block.ffn is None else block.d_ff, g)
        w_qkv = torch_draws["self_attn.in_proj_weight"]  # (3d, d): rows W_Q; W_K; W_V
        for lin, w in zip((attn.w_q, attn.w_k, attn.w_v), w_qkv.chunk(3, dim=0)):
            draws.assign(lin.weight, w)
        draws.assign(attn.w_o.weight, torch_draws["self_attn.out_proj.weight"])
        for lin in (attn.w_q, attn.w_k, attn.w_v, attn.w_o):
            draws.assign(lin.bias, 0.0)
        for lin, name in ((ffn_in, "linear1"), (ffn_out, "linear2")):
            if lin is not None:
                draws.assign(lin.weight, torch_draws[f"{name}.weight"])
                draws.assign(lin.bias, torch_draws[f"{name}.bias"])
        return

    beta = deepnorm_constants(n_layers)[1] if init == "deepnorm" else 1.0
    for lin, gain in (
        (attn.w_q, 1.0),
        (attn.w_k, 1.0),  # DeepNet leaves queries and keys at gain 1
        (attn.w_v, beta),
        (attn.w_o, beta),
        (ffn_in, beta),
        (ffn_out, beta),
    ):
        if lin is None:
            continue
        shape = (lin.out_features, lin.in_features)
        fan_sum = lin.in_features + lin.out_features
        if init == "xavier":
            w = draws.uniform(shape, math.sqrt(6.0 / fan_sum), g)
        else:  # "deepnorm"
            w = draws.normal(shape, gain * math.sqrt(2.0 / fan_sum), g)
        draws.assign(lin.weight, w)
        draws.assign(lin.bias, 0.0)
