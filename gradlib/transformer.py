"""The Transformer block with every highway switchable, and stacks of N independently drawn blocks.

    Pre-LN:   x = s·x + α·attn(LN(x));  x = s·x + α·ffn(LN(x))      ∂/∂x = s·I + α·∂branch/∂x  (the skip survives)
    Post-LN:  x = LN(s·x + α·attn(x));  x = LN(s·x + α·ffn(x))      the norm sits on the skip path
    stack:    x_N = block_N(… block_1(x));  y = final_norm(x_N)
              α: branch scale (ReZero: α = 0 at init), s: skip scale (DeepNorm: s = (2N)^(1/4))

A stack draws its blocks in turn from ONE local generator seeded by ``seed`` (:mod:`gradlib.draws`): the same
seed gives the same weights in float32 and float64, the blocks are independent draws, and torch's global RNG is
not touched. The init schemes ("default" = PyTorch's, "xavier", "deepnorm") are in :mod:`gradlib.transformer_init`.
PyTorch's own layers, to check these against, are in :mod:`gradlib.reference`.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from gradlib import checks, draws
from gradlib.attention import Scale, score_scale
from gradlib.mlp import make_activation
from gradlib.multihead import SelfAttention
from gradlib.norms import NORM_KINDS, make_norm
from gradlib.transformer_init import STACK_INITS, deepnorm_block_kwargs, deepnorm_constants, init_block

FFN_ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "identity")  # Transformer FFN activations
NORM_POSITIONS = ("pre", "post")

__all__ = [
    "FFN_ACTIVATIONS", "STACK_INITS", "NORM_POSITIONS", "deepnorm_constants",
    "TransformerBlock", "TransformerStack", "attention_stack",
]

Device = Union[str, torch.device]
_BLOCK_KWARGS = (  # what a stack passes on to every block
    "norm", "norm_position", "residual", "branch_scale", "skip_scale", "attention_only", "activation", "scale",
)


# ------------------------------------------------------------------------------------------------- block
class TransformerBlock(nn.Module):
    """One Transformer encoder layer with every highway switchable: attention, residual, normalization.

    pre:  x = s·x + α·attn(norm_attn(x));  x = s·x + α·ffn(norm_ffn(x))
    post: x = norm_attn(s·x + α·attn(x));  x = norm_ffn(s·x + α·ffn(x))
    (residual=False drops s·x; attention_only=True drops the FFN sub-layer.)

    With norm="layer", α = s = 1 and the weights of an nn.TransformerEncoderLayer(dropout=0.0,
    batch_first=True, norm_first=(norm_position == "pre")) copied in by :meth:`copy_from_torch`, this block
    computes exactly what that layer computes.

    Default init ("default") is PyTorch's for nn.TransformerEncoderLayer (Var W_Q = Var W_K = Var W_V = 1/(2d)),
    drawn from a local generator seeded by ``seed``; see :meth:`reset_parameters`.

    Args:
        d_model: token width d; x is (B, T, d_model).
        n_heads: attention heads; must divide d_model.
        d_ff: FFN hidden width; None = 4·d_model.
        norm: one of gradlib.norms.NORM_KINDS ("layer", "rms", "batch", "dyt", "none").
        norm_position: "pre" or "post".
        residual: keep the skip connections.
        branch_scale: α, the initial value of the learnable scalar ``self.alpha`` (one per block, shared by
            both sub-layers as in ReZero; α = 0 makes the block an exact identity map at init).
        skip_scale: s, a constant multiplying the skip (DeepNorm's α).
        attention_only: no FFN sub-layer (``self.ffn`` and ``self.norm_ffn`` are None).
        activation: FFN activation, one of FFN_ACTIVATIONS.
        scale: attention score scale ("sqrt_dk", "none" or a temperature τ > 0).
        seed: seed of the local generator for the default init.
        dtype, device: of the parameters.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int = 1,
        d_ff: Optional[int] = None,
        *,
        norm: str = "layer",
        norm_position: str = "pre",
        residual: bool = True,
        branch_scale: float = 1.0,
        skip_scale: float = 1.0,
        attention_only: bool = False,
        activation: str = "relu",
        scale: Scale = "sqrt_dk",
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
    ) -> None:
        checks.heads(d_model, n_heads)
        if d_ff is not None:
            checks.positive_int(d_ff, "d_ff")
        checks.choice(norm, "norm", NORM_KINDS)
        checks.choice(norm_position, "norm_position", NORM_POSITIONS)
        checks.boolean(residual, "residual")
        checks.finite(branch_scale, "branch_scale")
        checks.finite(skip_scale, "skip_scale")
        checks.boolean(attention_only, "attention_only")
        checks.choice(activation, "activation", FFN_ACTIVATIONS)
        score_scale(int(d_model) // int(n_heads), scale)  # raises ValueError naming `scale`
        checks.seed(seed)
        checks.floating_dtype(dtype)
        super().__init__()
        self.d_model = int(d_model)
        self.n_heads = int(n_heads)
        self.d_ff = 4 * self.d_model if d_ff is None else int(d_ff)
        self.norm_kind = norm
        self.norm_position = norm_position
        self.residual = residual
        self.skip_scale = float(skip_scale)
        self.attention_only = attention_only
        self.activation = activation
        factory: dict[str, Any] = {"dtype": dtype, "device": device}

        self.alpha = nn.Parameter(torch.tensor(float(branch_scale), **factory))  # α, learnable (ReZero)
        self.attn = SelfAttention(self.d_model, self.n_heads, scale=scale, seed=0, **factory)
        self.norm_attn = make_norm(norm, self.d_model, **factory)
        self.ffn: Optional[nn.Sequential] = None
        self.norm_ffn: Optional[nn.Module] = None
        if not attention_only:
            self.ffn = nn.Sequential(
                skip_init(nn.Linear, self.d_model, self.d_ff, **factory),
                make_activation(activation),
                skip_init(nn.Linear, self.d_ff, self.d_model, **factory),
            )
            self.norm_ffn = make_norm(norm, self.d_model, **factory)
        self.reset_parameters(draws.generator(seed))

    def reset_parameters(
        self, generator: Optional[torch.Generator] = None, init: str = "default", n_layers: int = 1
    ) -> None:
        """Redraw the attention and FFN weights from `generator` (norms and α are left as they are).

        "default": PyTorch's nn.TransformerEncoderLayer init (the same numbers as reference.torch_encoder_stack).
        "xavier":  every weight U[±√(6/(fan_in+fan_out))], biases 0 (Var W_Q = 1/d: Dong et al. 2021).
        "deepnorm": DeepNet (Wang et al. 2022), biases 0: W_Q, W_K ~ Xavier-normal N(0, 2/(fan_in+fan_out));
            W_V, W_O, FFN ~ β·Xavier-normal, β = deepnorm_constants(N)[1] = (8N)^(−1/4).
        The draws, in order, are written out in :mod:`gradlib.transformer_init`.

        Args:
            generator: CPU torch.Generator (None: a fresh one seeded with 0).
            init: one of STACK_INITS.
            n_layers: N, the depth of the stack this block belongs to (used by "deepnorm").
        """
        checks.generator(generator)
        checks.choice(init, "init", STACK_INITS)
        checks.positive_int(n_layers, "n_layers")
        init_block(self, draws.generator(0) if generator is None else generator, init, int(n_layers))

    def _skip(self, x: Tensor) -> Union[Tensor, float]:
        """s·x, or 0 without the residual connection."""
        return self.skip_scale * x if self.residual else 0.0

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """One block, (B, T, d_model) -> (B, T, d_model).

        Args:
            x: tokens (B, T, d_model).
            mask: optional bool (T, T) or (B, T, T), True = may attend.
        """
        if self.norm_position == "pre":
            x = self._skip(x) + self.alpha * self.attn(self.norm_attn(x), mask=mask)
            if self.ffn is not None:
                x = self._skip(x) + self.alpha * self.ffn(self.norm_ffn(x))
        else:
            x = self.norm_attn(self._skip(x) + self.alpha * self.attn(x, mask=mask))
            if self.ffn is not None:
                x = self.norm_ffn(self._skip(x) + self.alpha * self.ffn(x))
        return x

    def copy_from_torch(self, layer: nn.TransformerEncoderLayer) -> None:
        """Copy the weights of PyTorch's encoder layer into this block.

        self_attn -> attn, linear1/linear2 -> ffn[0]/ffn[2], norm1/norm2 -> norm_attn/norm_ffn (γ, β and ε).
        The outputs then agree when α = s = 1 and the layer has dropout 0.

        Args:
            layer: nn.TransformerEncoderLayer with the same d_model, nhead, dim_feedforward, activation
                (relu or gelu) and norm_first == (norm_position == "pre"); this block needs norm="layer".
        """
        if not isinstance(layer, nn.TransformerEncoderLayer):
            raise ValueError(f"layer must be an nn.TransformerEncoderLayer; got {type(layer).__name__}")
        if self.norm_kind != "layer" or self.attention_only or not self.residual:
            raise ValueError(
                "copy_from_torch needs a block with norm='layer', residual=True and attention_only=False "
                f"(the structure of nn.TransformerEncoderLayer); got norm={self.norm_kind!r}, "
                f"residual={self.residual}, attention_only={self.attention_only}"
            )
        if layer.norm_first != (self.norm_position == "pre"):
            raise ValueError(
                f"layer.norm_first must be {self.norm_position == 'pre'} for norm_position="
                f"{self.norm_position!r}; got {layer.norm_first}"
            )
        torch_activation = {1: "relu", 2: "gelu"}.get(layer.activation_relu_or_gelu, "other")
        if torch_activation != self.activation:
            raise ValueError(f"layer's activation must be {self.activation!r}; got {torch_activation!r}")
        if layer.linear1.out_features != self.d_ff:
            raise ValueError(f"layer's dim_feedforward must be d_ff={self.d_ff}; got {layer.linear1.out_features}")
        self.attn.copy_from_torch(layer.self_attn)  # checks d_model and n_heads
        with torch.no_grad():
            for ours, theirs in ((self.ffn[0], layer.linear1), (self.ffn[2], layer.linear2)):
                ours.weight.copy_(theirs.weight)
                ours.bias.copy_(theirs.bias)
            for ours, theirs in ((self.norm_attn, layer.norm1), (self.norm_ffn, layer.norm2)):
                ours.weight.copy_(theirs.weight)
                ours.bias.copy_(theirs.bias)
                ours.eps = theirs.eps

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, n_heads={self.n_heads}, d_ff={self.d_ff}, norm={self.norm_kind!r}, "
            f"norm_position={self.norm_position!r}, residual={self.residual}, skip_scale={self.skip_scale}, "
            f"attention_only={self.attention_only}"
        )


# ------------------------------------------------------------------------------------------------- stacks
class TransformerStack(nn.Module):
    """N independently initialised TransformerBlocks, optionally followed by a final norm.

    x_N = block_N(… block_1(x));  y = final_norm(x_N).

    ``init="deepnorm"`` builds DeepNet (Wang et al. 2022, encoder-only): Post-LN blocks with skip scale
    s = (2N)^(1/4) and W_V, W_O, FFN weights drawn with β = (8N)^(−1/4) (queries and keys not);
    (s, β) = :func:`deepnorm_constants` (N).

    Args:
        n_layers: N ≥ 1 blocks, in ``self.layers`` (nn.ModuleList).
        d_model, n_heads, d_ff: as in :class:`TransformerBlock`.
        final_norm: append a norm of the blocks' kind (LayerNorm when norm="none") as ``self.final_norm``
            (nn.Identity when False). None: True for pre-norm blocks with a norm (Xiong et al. 2020's
            Pre-LN ends with a final LayerNorm), False otherwise.
        init: one of STACK_INITS, see :meth:`TransformerBlock.reset_parameters`.
        seed: one generator draws every block in turn.
        dtype, device: of the parameters.
        **block_kwargs: norm, norm_position, residual, branch_scale, skip_scale, attention_only, activation,
            scale — passed to every block.
    """

    def __init__(
        self,
        n_layers: int,
        d_model: int,
        n_heads: int = 1,
        d_ff: Optional[int] = None,
        *,
        final_norm: Optional[bool] = None,
        init: str = "default",
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
        **block_kwargs: Any,
    ) -> None:
        # The stack checks what it uses itself; the first block checks the rest before any draw that is kept.
        checks.positive_int(n_layers, "n_layers")
        checks.heads(d_model, n_heads)
        if final_norm is not None:
            checks.boolean(final_norm, "final_norm")
        checks.choice(init, "init", STACK_INITS)
        checks.seed(seed)
        unknown = sorted(set(block_kwargs) - set(_BLOCK_KWARGS))
        if unknown:
            raise ValueError(
                f"block_kwargs must be among {', '.join(_BLOCK_KWARGS)}; got unknown {', '.join(unknown)}"
            )
        if init == "deepnorm":
            block_kwargs = deepnorm_block_kwargs(block_kwargs, n_layers)  # Post-LN, s = (2N)^(1/4)
        norm = block_kwargs.get("norm", "layer")
        norm_position = block_kwargs.get("norm_position", "pre")
        if final_norm is None:
            final_norm = norm_position == "pre" and norm != "none"
        super().__init__()
        self.n_layers = int(n_layers)
        self.d_model = int(d_model)
        self.init = init
        self.norm_position = norm_position
        factory: dict[str, Any] = {"dtype": dtype, "device": device}
        generator = draws.generator(seed)
        blocks = []
        for _ in range(self.n_layers):
            block = TransformerBlock(d_model, n_heads, d_ff, **block_kwargs, **factory)
            block.reset_parameters(generator, init=init, n_layers=self.n_layers)  # the next draws of one stream
            blocks.append(block)
        self.layers = nn.ModuleList(blocks)
        final_kind = norm if norm != "none" else "layer"
        self.final_norm = make_norm(final_kind, self.d_model, **factory) if final_norm else nn.Identity()

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """(B, T, d_model) -> (B, T, d_model); mask: optional bool (T, T) or (B, T, T), True = may attend."""
        for block in self.layers:
            x = block(x, mask=mask)
        return self.final_norm(x)


def attention_stack(
    n_layers: int,
    d_model: int,
    n_heads: int = 1,
    *,
    residual: bool = False,
    branch_scale: float = 1.0,
    norm: str = "none",
    norm_position: str = "pre",
    scale: Scale = "sqrt_dk",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: Device = "cpu",
) -> TransformerStack:
    """Self-attention stacked N deep (Dong, Cordonnier & Loukas 2021): no FFN, no final norm.

    x_{l+1} = attn(x_l) (residual=False: collapses to rank one), x_l + α·attn(x_l) (residual=True); with a
    norm, x_l + α·attn(LN(x_l)) ("pre") or LN(x_l + α·attn(x_l)) ("post").

    Xavier init (Var W_Q = Var W_K = 1/d): a larger query/key init makes attention sharp and hides the
    collapse. float64 by default: float32 bottoms out near 1e−7 while the residual keeps shrinking.

    Args:
        n_layers, d_model, n_heads: stack shape.
        residual: add the skip connection.
        branch_scale: α (e.g. 1/√N for depth-scaled residuals, Noci et al. 2022).
        norm, norm_position: as in :class:`TransformerBlock` ("none" by default: pure attention).
        scale: attention score scale.
        seed, dtype, device: as in :class:`TransformerStack`.
    """
    return TransformerStack(
        n_layers, d_model, n_heads, final_norm=False, init="xavier", seed=seed, dtype=dtype, device=device,
        norm=norm, norm_position=norm_position, attention_only=True, residual=residual, branch_scale=branch_scale,
        scale=scale,
    )
