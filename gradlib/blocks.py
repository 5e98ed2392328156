"""Deep stacks where gradients vanish or explode, and the Transformer block that keeps them flowing.

    deep MLP:  x_{l+1} = act(norm(x_l) W_lᵀ)     ∂x_L/∂x_0 = Π_l diag(act′) W_l   (shrinks or grows)
    residual:  x_{l+1} = x_l + f(x_l)            ∂x_{l+1}/∂x_l = I + ∂f/∂x_l      (the identity path)
    Pre-LN:    x = s·x + α·attn(LN(x));  x = s·x + α·ffn(LN(x))
    Post-LN:   x = LN(s·x + α·attn(x));  x = LN(s·x + α·ffn(x))
               α: branch scale (ReZero: α = 0 at init), s: skip scale (DeepNorm: s = (2N)^(1/4))

Every stack draws its initial weights from ONE local ``torch.Generator`` seeded by ``seed``, layer after layer:
the same seed gives the same weights, the layers are independent draws, and torch's global RNG is not touched
(random numbers are drawn in float64 on the CPU and then cast, so float32 and float64 stacks share weights).

Why not ``nn.TransformerEncoder(layer, N)`` for experiments: it builds its N layers with ``copy.deepcopy`` of
the one ``layer`` it is given, so all N layers start with *identical* weights. A depth sweep then measures a
stack of clones — a correlated, unrepresentative network whose gradient profile is not that of N
independently initialised layers. :func:`torch_encoder_stack` builds N separately drawn
``nn.TransformerEncoderLayer`` in a ``ModuleList`` instead, keeping PyTorch's own layer as an independent
implementation to check :class:`TransformerStack` against.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from gradlib import checks
from gradlib.attention import Scale, SelfAttention, score_scale
from gradlib.norms import NORM_KINDS, make_norm

ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")  # MLP activations
FFN_ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid", "identity")  # Transformer FFN activations
INITS = ("old", "xavier", "he")  # old: U[±1/√n_in]; xavier: U[±√(6/(n_in+n_out))]; he: N(0, 2/n_in)
STACK_INITS = ("default", "xavier", "deepnorm")
NORM_POSITIONS = ("pre", "post")

__all__ = [
    "ACTIVATIONS",
    "FFN_ACTIVATIONS",
    "INITS",
    "STACK_INITS",
    "NORM_POSITIONS",
    "MLPLayer",
    "DeepMLP",
    "TransformerBlock",
    "TransformerStack",
    "TorchEncoderStack",
    "attention_stack",
    "torch_encoder_stack",
]

Device = Union[str, torch.device]
_BLOCK_KWARGS = (
    "norm",
    "norm_position",
    "residual",
    "branch_scale",
    "skip_scale",
    "attention_only",
    "activation",
    "scale",
)


# ----------------------------------------------------------------------------------------------- validation
def _check_mlp_args(
    width: object, activation: object, init: object, weight_scale: object, residual: object,
    branch_scale: object, norm: object, bias: object, seed: object, dtype: object,
) -> None:
    """The arguments MLPLayer and DeepMLP share.

    branch_scale: α ≥ 0, finite; α ≠ 1 only with the skip (it scales the residual branch of x + α·f(x)).
    """
    checks.positive_int(width, "width")
    checks.choice(activation, "activation", ACTIVATIONS)
    checks.choice(init, "init", INITS)
    if weight_scale is not None:
        checks.finite(weight_scale, "weight_scale", positive=True)
    checks.boolean(residual, "residual")
    checks.finite(branch_scale, "branch_scale", nonnegative=True)
    if residual is False and branch_scale != 1.0:
        raise ValueError(
            f"branch_scale must be 1.0 when residual=False (it scales the branch of x + α·f(x)); "
            f"got {branch_scale!r}"
        )
    checks.choice(norm, "norm", NORM_KINDS)
    checks.boolean(bias, "bias")
    checks.seed(seed)
    checks.floating_dtype(dtype)


# ---------------------------------------------------------------------------------------------- init draws
def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator) -> Tensor:
    """U[−bound, bound] in float64 on the CPU (Var = bound²/3)."""
    return (2.0 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1.0) * bound


def _normal(shape: tuple[int, ...], std: float, generator: torch.Generator) -> Tensor:
    """N(0, std²) in float64 on the CPU."""
    return torch.randn(shape, generator=generator, dtype=torch.float64) * std


def _set(param: Optional[Tensor], value: Union[Tensor, float]) -> None:
    if param is None:
        return
    with torch.no_grad():
        if isinstance(value, Tensor):
            param.copy_(value)  # casts to the parameter's dtype and device
        else:
            param.fill_(value)


def _activation(name: str) -> nn.Module:
    return {
        "tanh": nn.Tanh,
        "sigmoid": nn.Sigmoid,
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "identity": nn.Identity,
    }[name]()


# ------------------------------------------------------------------------------------------------ deep MLP
class MLPLayer(nn.Module):
    """One fully connected layer, optionally normalised and with a (scaled) skip connection.

    h = act(norm(x) Wᵀ);  y = x + α·h if residual else h   (so ∂y/∂x = I + α·∂h/∂x with the skip).

    Init of W (n_in = n_out = width): "old" U[±1/√n] (Glorot & Bengio's "standard" init, n·Var W = 1/3),
    "xavier" U[±√(6/(n_in+n_out))] (Var = 2/(n_in+n_out)), "he" N(0, 2/n_in); ``weight_scale`` σ, when given,
    overrides ``init`` with N(0, σ²/n_in). Biases start at 0.

    Args:
        width: n_in = n_out; x is (B, width).
        activation: one of ACTIVATIONS.
        init: one of INITS.
        weight_scale: σ > 0 or None.
        residual: add the skip x + α·h.
        branch_scale: α ≥ 0, a constant multiplying the branch (not learnable, unlike TransformerBlock's α);
            α = 1 is the plain residual x + h, α = 0 the identity map. Must stay 1.0 without the skip.
        norm: one of NORM_KINDS, applied to the layer's input.
        bias: give the linear map a bias.
        seed: seed of a local generator, used when ``generator`` is None.
        generator: CPU torch.Generator to draw W from (a DeepMLP shares one across its layers).
        dtype, device: of the parameters.
    """

    def __init__(
        self,
        width: int,
        *,
        activation: str = "tanh",
        init: str = "xavier",
        weight_scale: Optional[float] = None,
        residual: bool = False,
        branch_scale: float = 1.0,
        norm: str = "none",
        bias: bool = False,
        seed: int = 0,
        generator: Optional[torch.Generator] = None,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
    ) -> None:
        _check_mlp_args(width, activation, init, weight_scale, residual, branch_scale, norm, bias, seed, dtype)
        checks.generator(generator)
        super().__init__()
        self.width = int(width)
        self.residual = residual
        self.branch_scale = float(branch_scale)  # α: a constant, so it adds no parameter to the layer
        self.norm = make_norm(norm, self.width, dtype=dtype, device=device)
        # skip_init: nn.Linear's own init would draw from (and advance) the global RNG for nothing.
        self.linear = skip_init(nn.Linear, self.width, self.width, bias=bias, dtype=dtype, device=device)
        self.act = _activation(activation)
        if generator is None:
            generator = torch.Generator(device="cpu").manual_seed(int(seed))
        n = self.width
        shape = (n, n)
        if weight_scale is not None:
            w = _normal(shape, weight_scale / math.sqrt(n), generator)
        elif init == "old":
            w = _uniform(shape, 1.0 / math.sqrt(n), generator)
        elif init == "xavier":
            w = _uniform(shape, math.sqrt(6.0 / (n + n)), generator)
        else:  # "he"
            w = _normal(shape, math.sqrt(2.0 / n), generator)
        _set(self.linear.weight, w)
        _set(self.linear.bias, 0.0)

    def branch(self, x: Tensor) -> Tensor:
        """The residual branch f(x) = act(norm(x) Wᵀ), (B, width) -> (B, width)."""
        return self.act(self.linear(self.norm(x)))

    def forward(self, x: Tensor) -> Tensor:
        """y = x + α·f(x) with the skip, f(x) without; (B, width) -> (B, width)."""
        if not self.residual:
            return self.branch(x)
        return x + self.branch_scale * self.branch(x)  # α = 1: 1.0·t is exact, so x + f(x) bit for bit

    def extra_repr(self) -> str:
        return f"width={self.width}, residual={self.residual}, branch_scale={self.branch_scale:g}"


class DeepMLP(nn.Module):
    """A stack of `depth` square fully connected layers: the telephone game of Glorot & Bengio 2010.

    x_{l+1} = act(norm(x_l) W_lᵀ), or x_l + α·act(…) with residual;  ∂x_L/∂x_0 = Π_l (I + α·) diag(act′) W_l

    Args:
        width: layer width; x is (B, width).
        depth: number of layers L ≥ 1 (``self.layers``, an nn.ModuleList of MLPLayer).
        activation, init, weight_scale, residual, branch_scale, norm, bias: as in :class:`MLPLayer`.
        seed: one generator draws every layer in turn (independent layers, reproducible stack).
        dtype, device: of the parameters.
    """

    def __init__(
        self,
        width: int,
        depth: int,
        *,
        activation: str = "tanh",
        init: str = "xavier",
        weight_scale: Optional[float] = None,
        residual: bool = False,
        branch_scale: float = 1.0,
        norm: str = "none",
        bias: bool = False,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
    ) -> None:
        _check_mlp_args(width, activation, init, weight_scale, residual, branch_scale, norm, bias, seed, dtype)
        checks.positive_int(depth, "depth")
        super().__init__()
        self.width = int(width)
        self.depth = int(depth)
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
        layer_kwargs: dict[str, Any] = dict(
            activation=activation,
            init=init,
            weight_scale=weight_scale,
            residual=residual,
            branch_scale=branch_scale,
            norm=norm,
            bias=bias,
            generator=generator,
            dtype=dtype,
            device=device,
        )
        self.layers = nn.ModuleList(MLPLayer(self.width, **layer_kwargs) for _ in range(self.depth))

    def forward(self, x: Tensor) -> Tensor:
        """x_L = layer_L(… layer_1(x)); (B, width) -> (B, width)."""
        if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[-1] != self.width:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (B, width={self.width}); got {shape}")
        for layer in self.layers:
            x = layer(x)
        return x


# --------------------------------------------------------------------------------------- Transformer block
class TransformerBlock(nn.Module):
    """One Transformer encoder layer with every highway switchable: attention, residual, normalization.

    pre:  x = s·x + α·attn(norm_attn(x));  x = s·x + α·ffn(norm_ffn(x))
    post: x = norm_attn(s·x + α·attn(x));  x = norm_ffn(s·x + α·ffn(x))
    (residual=False drops s·x; attention_only=True drops the FFN sub-layer.)

    With norm="layer", α = s = 1 and the weights of an nn.TransformerEncoderLayer(dropout=0.0,
    batch_first=True, norm_first=(norm_position == "pre")) copied in by :meth:`copy_from_torch`, this block
    computes exactly what that layer computes.

    Default init ("default") is PyTorch's for nn.TransformerEncoderLayer, drawn from a local generator:
    Xavier over the packed (3d × d) in-projection (so Var W_Q = Var W_K = Var W_V = 1/(2d)), W_O ~ U[±1/√d],
    attention biases 0, FFN weights and biases ~ U[±1/√fan_in] (nn.Linear's). See :meth:`reset_parameters`.

    Args:
        d_model: token width d; x is (B, T, d_model).
        n_heads: attention heads; must divide d_model.
        d_ff: FFN hidden width; None = 4·d_model.
        norm: one of NORM_KINDS ("layer", "rms", "batch", "none").
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
                _activation(activation),
                skip_init(nn.Linear, self.d_ff, self.d_model, **factory),
            )
            self.norm_ffn = make_norm(norm, self.d_model, **factory)
        self.reset_parameters(torch.Generator(device="cpu").manual_seed(int(seed)))

    def reset_parameters(
        self, generator: Optional[torch.Generator] = None, init: str = "default", n_layers: int = 1
    ) -> None:
        """Redraw the attention and FFN weights from `generator` (norms and α are left as they are).

        "default": PyTorch's nn.TransformerEncoderLayer init (see the class docstring).
        "xavier":  every weight U[±√(6/(fan_in+fan_out))], biases 0 (Var W_Q = 1/d: Dong et al. 2021).
        "deepnorm": DeepNet (Wang et al. 2022), biases 0: W_Q, W_K ~ Xavier-normal N(0, 2/(fan_in+fan_out));
            W_V, W_O, FFN ~ β·Xavier-normal, β = (8N)^(−1/4) for an encoder of N layers.

        Args:
            generator: CPU torch.Generator (None: a fresh one seeded with 0).
            init: one of STACK_INITS.
            n_layers: N, the depth of the stack this block belongs to (used by "deepnorm").
        """
        checks.generator(generator)
        checks.choice(init, "init", STACK_INITS)
        checks.positive_int(n_layers, "n_layers")
        g = torch.Generator(device="cpu").manual_seed(0) if generator is None else generator
        d, d_ff = self.d_model, self.d_ff
        attn = self.attn
        ffn_in = None if self.ffn is None else self.ffn[0]
        ffn_out = None if self.ffn is None else self.ffn[2]

        if init == "default":
            # One draw for the packed (3d × d) matrix, in PyTorch's order: the same seed gives the same
            # numbers as torch_encoder_stack.
            w_qkv = _uniform((3 * d, d), math.sqrt(6.0 / (3 * d + d)), g)  # (3d, d)
            for lin, w in zip((attn.w_q, attn.w_k, attn.w_v), w_qkv.chunk(3, dim=0)):
                _set(lin.weight, w)
            _set(attn.w_o.weight, _uniform((d, d), 1.0 / math.sqrt(d), g))
            for lin in (attn.w_q, attn.w_k, attn.w_v, attn.w_o):
                _set(lin.bias, 0.0)
            for lin in (ffn_in, ffn_out):
                if lin is not None:
                    bound = 1.0 / math.sqrt(lin.in_features)
                    _set(lin.weight, _uniform((lin.out_features, lin.in_features), bound, g))
                    _set(lin.bias, _uniform((lin.out_features,), bound, g))
            return

        beta = (8.0 * n_layers) ** -0.25 if init == "deepnorm" else 1.0
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
                w = _uniform(shape, math.sqrt(6.0 / fan_sum), g)
            else:  # "deepnorm"
                w = _normal(shape, gain * math.sqrt(2.0 / fan_sum), g)
            _set(lin.weight, w)
            _set(lin.bias, 0.0)

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


# --------------------------------------------------------------------------------------- Transformer stack
class TransformerStack(nn.Module):
    """N independently initialised TransformerBlocks, optionally followed by a final norm.

    x_N = block_N(… block_1(x));  y = final_norm(x_N).

    ``init="deepnorm"`` builds DeepNet (Wang et al. 2022, encoder-only): Post-LN blocks with skip scale
    s = (2N)^(1/4) and W_V, W_O, FFN weights drawn with β = (8N)^(−1/4) (queries and keys not).

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
        checks.positive_int(n_layers, "n_layers")
        checks.heads(d_model, n_heads)
        if final_norm is not None:
            checks.boolean(final_norm, "final_norm")
        checks.choice(init, "init", STACK_INITS)
        checks.seed(seed)
        checks.floating_dtype(dtype)
        unknown = sorted(set(block_kwargs) - set(_BLOCK_KWARGS))
        if unknown:
            raise ValueError(
                f"block_kwargs must be among {', '.join(_BLOCK_KWARGS)}; got unknown {', '.join(unknown)}"
            )
        block_kwargs = dict(block_kwargs)
        if init == "deepnorm":
            if block_kwargs.get("norm_position", "post") != "post":
                raise ValueError(
                    f"norm_position must be 'post' with init='deepnorm'; got {block_kwargs['norm_position']!r}"
                )
            if "skip_scale" in block_kwargs:
                raise ValueError("skip_scale must not be given with init='deepnorm': it is set to (2N)^(1/4)")
            if not block_kwargs.get("residual", True):
                raise ValueError("residual must be True with init='deepnorm'")
            block_kwargs["norm_position"] = "post"
            block_kwargs["skip_scale"] = (2.0 * n_layers) ** 0.25
        norm = block_kwargs.get("norm", "layer")
        norm_position = block_kwargs.get("norm_position", "pre")
        checks.choice(norm, "norm", NORM_KINDS)
        checks.choice(norm_position, "norm_position", NORM_POSITIONS)
        if final_norm is None:
            final_norm = norm_position == "pre" and norm != "none"
        super().__init__()
        self.n_layers = int(n_layers)
        self.d_model = int(d_model)
        self.init = init
        self.norm_position = norm_position
        factory: dict[str, Any] = {"dtype": dtype, "device": device}
        generator = torch.Generator(device="cpu").manual_seed(int(seed))
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
    scale: Scale = "sqrt_dk",
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: Device = "cpu",
) -> TransformerStack:
    """Pure self-attention stacked N deep (Dong, Cordonnier & Loukas 2021): no FFN, no norm.

    x_{l+1} = attn(x_l)  (residual=False: collapses to rank one)  or  x_l + α·attn(x_l)  (residual=True).

    Xavier init (Var W_Q = Var W_K = 1/d): a larger query/key init makes attention sharp and hides the
    collapse. float64 by default: float32 bottoms out near 1e−7 while the residual keeps shrinking.

    Args:
        n_layers, d_model, n_heads: stack shape.
        residual: add the skip connection.
        branch_scale: α (e.g. 1/√N for depth-scaled residuals, Noci et al. 2022).
        scale: attention score scale.
        seed, dtype, device: as in :class:`TransformerStack`.
    """
    return TransformerStack(
        n_layers,
        d_model,
        n_heads,
        final_norm=False,
        init="xavier",
        seed=seed,
        dtype=dtype,
        device=device,
        norm="none",
        attention_only=True,
        residual=residual,
        branch_scale=branch_scale,
        scale=scale,
    )


# ------------------------------------------------------------------------------------ PyTorch's own layers
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
        seed, dtype, device: as in :class:`TransformerStack`.
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
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    layers = []
    # The layer's constructor initialises itself from the global RNG; fork it so that stays untouched.
    # Every parameter is then redrawn from our generator.
    with torch.random.fork_rng(devices=[]):
        for _ in range(n_layers):
            layer = nn.TransformerEncoderLayer(
                d_model, n_heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=dtype
            )
            d = int(d_model)
            attn = layer.self_attn
            _set(attn.in_proj_weight, _uniform((3 * d, d), math.sqrt(6.0 / (3 * d + d)), generator))
            _set(attn.out_proj.weight, _uniform((d, d), 1.0 / math.sqrt(d), generator))
            _set(attn.in_proj_bias, 0.0)
            _set(attn.out_proj.bias, 0.0)
            for lin in (layer.linear1, layer.linear2):
                bound = 1.0 / math.sqrt(lin.in_features)
                _set(lin.weight, _uniform((lin.out_features, lin.in_features), bound, generator))
                _set(lin.bias, _uniform((lin.out_features,), bound, generator))
            for norm in (layer.norm1, layer.norm2):
                _set(norm.weight, 1.0)
                _set(norm.bias, 0.0)
            layers.append(layer.to(device=device))
    final = nn.LayerNorm(d_model, dtype=dtype, device=device) if final_norm else nn.Identity()
    return TorchEncoderStack(layers, final)
