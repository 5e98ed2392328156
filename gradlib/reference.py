"""Reference models built from PyTorch's own layers, to check gradlib's Transformer against.

    layer_l = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0, batch_first=True, norm_first)
    x_N = layer_N(… layer_1(x));  y = final_norm(x_N)                                  (TorchEncoderStack)

Why not ``nn.TransformerEncoder(layer, N)`` for experiments: it builds its N layers with ``copy.deepcopy`` of
the one ``layer`` it is given, so all N layers start with *identical* weights. A depth sweep then measures a
stack of clones — a correlated, unrepresentative network whose gradient profile is not that of N
independently initialised layers. :func:`torch_encoder_stack` builds N separately drawn
``nn.TransformerEncoderLayer`` in a ``ModuleList`` instead, keeping PyTorch's own layer as an independent
implementation to check :class:`gradlib.transformer.TransformerStack` against.

Its weights are PyTorch's init distributions drawn from a local generator (:mod:`gradlib.draws`), in the order
``TransformerStack(init="default")`` draws them: for the same seed the two stacks hold the same numbers.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn

from gradlib import checks, draws
from gradlib.transformer_init import torch_encoder_layer_draws

__all__ = ["TorchEncoderStack", "torch_encoder_stack"]

Device = Union[str, torch.device]


class TorchEncoderStack(nn.Module):
    """N separately initialised nn.TransformerEncoderLayer (``self.layers``) and a final norm.

    x_N = layer_N(… layer_1(x));  y = final_norm(x_N)  (nn.LayerNorm, or nn.Identity when absent).
    """

    def __init__(self, layers: list[nn.TransformerEncoderLayer], final_norm: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.final_norm = final_norm

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """(B, T, d_model) -> (B, T, d_model); mask: bool (T, T), True = may attend (gradlib's convention)."""
        src_mask = None if mask is None else ~mask  # PyTorch's bool src_mask: True = may NOT attend
        for layer in self.layers:
            x = layer(x, src_mask=src_mask)
        return self.final_norm(x)


def torch_encoder_stack(
    n_layers: int,
    d_model: int,
    n_heads: int,
    d_ff: int,
    *,
    norm_first: bool,
    final_norm: Optional[bool] = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    device: Device = "cpu",
) -> TorchEncoderStack:
    """PyTorch's own encoder layers, N INDEPENDENT draws (not nn.TransformerEncoder's N deep copies).

    layer_l = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True, norm_first)

    Each layer gets PyTorch's init distributions, drawn in turn from a local generator: Xavier over the packed
    in-projection, biases 0, W_O and FFN as nn.Linear. The numbers equal TransformerStack(init="default")'s
    for the same seed, so the two implementations can be compared weight for weight.

    Args:
        n_layers: N ≥ 1.
        d_model, n_heads, d_ff: layer shape (n_heads must divide d_model).
        norm_first: True = Pre-LN, False = Post-LN.
        final_norm: append nn.LayerNorm(d_model) as ``.final_norm``; None = norm_first.
        seed, dtype, device: as in :class:`gradlib.transformer.TransformerStack`.
    """
    checks.positive_int(n_layers, "n_layers")
    checks.heads(d_model, n_heads)
    checks.positive_int(d_ff, "d_ff")
    checks.boolean(norm_first, "norm_first")
    if final_norm is not None:
        checks.boolean(final_norm, "final_norm")
    checks.seed(seed)
    checks.floating_dtype(dtype)
    if final_norm is None:
        final_norm = norm_first
    generator = draws.generator(seed)
    layers = []
    # The layer's constructor initialises itself from the global RNG; fork it so that stays untouched.
    # Every parameter is then redrawn from our generator.
    with torch.random.fork_rng(devices=[]):
        for _ in range(n_layers):
            layer = nn.TransformerEncoderLayer(
                d_model, n_heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=dtype
            )
            for name, value in torch_encoder_layer_draws(d_model, d_ff, generator).items():
                draws.assign(layer.get_parameter(name), value)
            draws.assign(layer.self_attn.in_proj_bias, 0.0)
            draws.assign(layer.self_attn.out_proj.bias, 0.0)
            for norm in (layer.norm1, layer.norm2):
                draws.assign(norm.weight, 1.0)
                draws.assign(norm.bias, 0.0)
            layers.append(layer.to(device=device))
    final = nn.LayerNorm(d_model, dtype=dtype, device=device) if final_norm else nn.Identity()
    return TorchEncoderStack(layers, final)
