"""Deep fully connected stacks, where gradients vanish or explode, and the skip connection that keeps them flowing.

    layer:     h = act(norm(x) Wᵀ)                  ∂h/∂x = diag(act′) W  (· ∂norm/∂x)
    residual:  y = x + α·h                          ∂y/∂x = I + α·∂h/∂x    (the identity path)
    deep MLP:  x_{l+1} = layer_l(x_l)               ∂x_L/∂x_0 = Π_l ∂x_{l+1}/∂x_l  (shrinks or grows with L)

Inits of a square W (n = n_in = n_out):
    "old"     U[±1/√n]              n·Var W = 1/3  (Glorot & Bengio 2010's "standard" init: the signal vanishes)
    "xavier"  U[±√(6/(n_in+n_out))]  Var W = 2/(n_in+n_out)
    "he"      N(0, 2/n_in)           Var W = 2/n_in  (He et al. 2015, for ReLU)
    weight_scale σ (overrides init)  N(0, σ²/n_in)

A DeepMLP draws its layers in turn from one generator (:mod:`gradlib.draws`): same seed, same weights.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from gradlib import checks, draws
from gradlib.norms import NORM_KINDS, make_norm

ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")  # MLP activations
INITS = ("old", "xavier", "he")  # old: U[±1/√n_in]; xavier: U[±√(6/(n_in+n_out))]; he: N(0, 2/n_in)

__all__ = ["ACTIVATIONS", "INITS", "MLPLayer", "DeepMLP", "make_activation"]

Device = Union[str, torch.device]
_ACTIVATION_MODULES = {
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "gelu": nn.GELU,  # the Transformer FFN's (see transformer.FFN_ACTIVATIONS)
    "identity": nn.Identity,
}


def make_activation(name: str) -> nn.Module:
    """Build an activation module by name: "tanh", "sigmoid", "relu", "gelu" or "identity"."""
    checks.choice(name, "activation", tuple(_ACTIVATION_MODULES))
    return _ACTIVATION_MODULES[name]()


def _check_mlp_args(
    width: object, activation: object, init: object, weight_scale: object, residual: object,
    branch_scale: object, norm: object, bias: object, seed: object, dtype: object,
) -> None:
    """MLPLayer's arguments (DeepMLP passes them on).

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


def _draw_weight(n: int, init: str, weight_scale: Optional[float], g: torch.Generator) -> Tensor:
    """W (n, n) in float64 from `g`, by the init table of the module docstring."""
    shape = (n, n)
    if weight_scale is not None:
        return draws.normal(shape, weight_scale / math.sqrt(n), g)
    if init == "old":
        return draws.uniform(shape, 1.0 / math.sqrt(n), g)
    if init == "xavier":
        return draws.uniform(shape, math.sqrt(6.0 / (n + n)), g)
    return draws.normal(shape, math.sqrt(2.0 / n), g)  # "he"


class MLPLayer(nn.Module):
    """One square fully connected layer, optionally normalised and with a (scaled) skip connection.

    h = act(norm(x) Wᵀ);  y = x + α·h if residual else h   (so ∂y/∂x = I + α·∂h/∂x with the skip).

    W is drawn by ``init`` (or ``weight_scale``), see the module docstring; biases start at 0.

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
        self.act = make_activation(activation)
        g = draws.generator(seed) if generator is None else generator
        draws.assign(self.linear.weight, _draw_weight(self.width, init, weight_scale, g))
        draws.assign(self.linear.bias, 0.0)

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
        # The layers check the arguments they share (the first one before anything is drawn); seed is checked
        # by draws.generator.
        checks.positive_int(width, "width")
        checks.positive_int(depth, "depth")
        super().__init__()
        self.width = int(width)
        self.depth = int(depth)
        layer_kwargs: dict[str, Any] = dict(
            activation=activation,
            init=init,
            weight_scale=weight_scale,
            residual=residual,
            branch_scale=branch_scale,
            norm=norm,
            bias=bias,
            generator=draws.generator(seed),  # one stream: layer l+1 draws the numbers after layer l's
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
