"""Where the residual addition and the norm go: He et al. 2016's five units and the Transformer's four placements.

Every block has the same branch weights, W₁ and W₂ (d × d_h, d_h × d, He init N(0, 2/fan_in) × gain, no bias),
and the same per-token norm N (LayerNorm by default: a Transformer's stand-in for He's BatchNorm):

    He et al. 2016 (Identity Mappings, Fig. 4)                   the Transformer's names (f = W₂ ReLU(W₁ ·))
    original         x' = ReLU(x + N(W₂ ReLU(N(W₁ x))))          post_ln    x' = N(x + f(x))        (2017)
    norm_after_add   x' = ReLU(N(x + W₂ ReLU(N(W₁ x))))          pre_ln     x' = x + f(N(x))        (Llama)
    relu_before_add  x' = x + ReLU(N(W₂ ReLU(N(W₁ x))))          peri_ln    x' = x + N(f(N(x)))     (Gemma 2/3)
    relu_only_pre    x' = x + N(W₂ ReLU(N(W₁ ReLU(x))))          output_ln  x' = x + N(f(x))        (OLMo 2)
    full_pre         x' = x + W₂ ReLU(N(W₁ ReLU(N(x))))

Only the pre-activation family (full_pre, pre_ln) keeps the skip path x → x' an exact identity with the
branch starting at a norm; the ones marked ``NORMED_STREAM`` put a norm or a ReLU on the skip path itself.
A stack draws its blocks in turn from one local generator seeded by ``seed`` (:mod:`gradlib.draws`).
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor, nn
from torch.nn.utils import skip_init

from gradlib import checks, draws
from gradlib.norms import make_norm

VARIANTS = {
    "original": "x' = ReLU(x + N(W₂ ReLU(N(W₁ x))))",
    "norm_after_add": "x' = ReLU(N(x + W₂ ReLU(N(W₁ x))))",
    "relu_before_add": "x' = x + ReLU(N(W₂ ReLU(N(W₁ x))))",
    "relu_only_pre": "x' = x + N(W₂ ReLU(N(W₁ ReLU(x))))",
    "full_pre": "x' = x + W₂ ReLU(N(W₁ ReLU(N(x))))",
    "post_ln": "x' = N(x + f(x))",
    "pre_ln": "x' = x + f(N(x))",
    "peri_ln": "x' = x + N(f(N(x)))",
    "output_ln": "x' = x + N(f(x))",
}
HE_VARIANTS = ("original", "norm_after_add", "relu_before_add", "relu_only_pre", "full_pre")
NORMED_STREAM = ("original", "norm_after_add", "post_ln")  # a norm or ReLU on the skip path: no final norm
VARIANT_NORMS = ("layer", "rms", "dyt")
# what norm1 and norm2 act on: "d" the stream or the branch's output, "h" W₁'s output (d_hidden), None no norm
_NORM_WIDTHS = {"original": ("h", "d"), "norm_after_add": ("h", "d"), "relu_before_add": ("h", "d"),
                "relu_only_pre": ("h", "d"), "full_pre": ("d", "h"), "post_ln": ("d", None),
                "pre_ln": ("d", None), "peri_ln": ("d", "d"), "output_ln": ("d", None)}

__all__ = ["VARIANTS", "HE_VARIANTS", "NORMED_STREAM", "VARIANT_NORMS", "ResidualVariantBlock",
           "ResidualVariantStack"]

Device = Union[str, torch.device]


class ResidualVariantBlock(nn.Module):
    """One residual unit in one of the VARIANTS placements (the module docstring's table).

    x' = the variant's formula, with W₁: d → d_h, W₂: d_h → d, norms ``norm1`` (the first N written in the
    formula, reading from the input) and ``norm2`` (the second; an unused one is nn.Identity).

    Args:
        d: token width; x is (..., d).
        variant: one of VARIANTS.
        d_hidden: d_h, the branch's hidden width (None = d, He's basic block).
        norm: the norm N, one of VARIANT_NORMS ("layer", "rms", "dyt").
        weight_gain: multiplies both branch weights after the He draw (> 0; a stand-in for weights that grew).
        seed: seeds a local generator when ``generator`` is None.
        generator: CPU torch.Generator to draw W₁ then W₂ from (a stack shares one).
        dtype, device: of the parameters.
    """

    def __init__(
        self,
        d: int,
        variant: str,
        *,
        d_hidden: Optional[int] = None,
        norm: str = "layer",
        weight_gain: float = 1.0,
        seed: int = 0,
        generator: Optional[torch.Generator] = None,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
    ) -> None:
        checks.positive_int(d, "d")
        checks.choice(variant, "variant", tuple(VARIANTS))
        if d_hidden is not None:
            checks.positive_int(d_hidden, "d_hidden")
        checks.choice(norm, "norm", VARIANT_NORMS)
        checks.finite(weight_gain, "weight_gain", positive=True)
        checks.seed(seed)
        checks.generator(generator)
        checks.floating_dtype(dtype)
        super().__init__()
        self.d, self.variant = int(d), variant
        self.d_hidden = self.d if d_hidden is None else int(d_hidden)
        factory = {"dtype": dtype, "device": device}
        g = draws.generator(seed) if generator is None else generator
        # Plain parameters (W₁ is d_h × d, W₂ is d × d_h, as nn.Linear.weight), drawn here: nn.Linear would draw
        # from the global RNG, and skip_init costs more than the whole forward of these small blocks.
        # He: Var W = 2/fan_in keeps a ReLU branch's signal size.
        self.w1, self.w2 = (
            nn.Parameter(draws.normal((n_out, n_in), float(weight_gain) * math.sqrt(2.0 / n_in), g).to(**factory))
            for n_out, n_in in ((self.d_hidden, self.d), (self.d, self.d_hidden))
        )
        widths = {"d": self.d, "h": self.d_hidden}
        first, second = _NORM_WIDTHS[variant]
        self.norm1 = make_norm(norm, widths[first], **factory)
        self.norm2 = make_norm(norm, widths[second], **factory) if second else nn.Identity()

    def branch(self, x: Tensor) -> Tensor:
        """f(x) = W₂ ReLU(W₁ x), the branch without norms; (..., d) -> (..., d)."""
        return torch.relu(x @ self.w1.T) @ self.w2.T

    def forward(self, x: Tensor) -> Tensor:
        """x' by the block's variant; (..., d) -> (..., d)."""
        n1, n2, relu, v = self.norm1, self.norm2, torch.relu, self.variant
        w1, w2 = (lambda t: t @ self.w1.T), (lambda t: t @ self.w2.T)  # noqa: E731  W₁ ·, W₂ ·
        if v == "original":
            return relu(x + n2(w2(relu(n1(w1(x))))))
        if v == "norm_after_add":
            return relu(n2(x + w2(relu(n1(w1(x))))))
        if v == "relu_before_add":
            return x + relu(n2(w2(relu(n1(w1(x))))))
        if v == "relu_only_pre":
            return x + n2(w2(relu(n1(w1(relu(x))))))
        if v == "full_pre":
            return x + w2(relu(n2(w1(relu(n1(x))))))
        if v == "post_ln":
            return n1(x + self.branch(x))
        if v == "pre_ln":
            return x + self.branch(n1(x))
        if v == "peri_ln":
            return x + n2(self.branch(n1(x)))
        return x + n1(self.branch(x))  # output_ln

    def extra_repr(self) -> str:
        return f"d={self.d}, variant={self.variant!r}, d_hidden={self.d_hidden}"


class ResidualVariantStack(nn.Module):
    """N independently drawn ResidualVariantBlocks of one variant, optionally followed by a final norm.

    x_N = block_N(… block_1(x));  y = final_norm(x_N)  (Pre-LN's final LayerNorm; He's final BN-ReLU without ReLU);
    with ``n_out``, logits = head(y), head: d → n_out, W ~ N(0, 1/d), bias 0 (a classifier to train).

    Args:
        n_layers: N ≥ 1 blocks, in ``self.layers`` (nn.ModuleList: gradlib's probes find it).
        d, variant, d_hidden, norm, weight_gain: as in :class:`ResidualVariantBlock`, for every block.
        final_norm: append a norm N (``self.final_norm``; nn.Identity when False). None: True unless the variant
            is in NORMED_STREAM (its stream already passes a norm or a ReLU in every block).
        n_out: classes of a linear head after the final norm (``self.head``), or None for no head.
        seed: one generator draws every block in turn, then the head.
        dtype, device: of the parameters.
    """

    def __init__(
        self,
        n_layers: int,
        d: int,
        variant: str,
        *,
        d_hidden: Optional[int] = None,
        norm: str = "layer",
        weight_gain: float = 1.0,
        final_norm: Optional[bool] = None,
        n_out: Optional[int] = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: Device = "cpu",
    ) -> None:
        checks.positive_int(n_layers, "n_layers")
        if n_out is not None:
            checks.positive_int(n_out, "n_out")
        checks.choice(variant, "variant", tuple(VARIANTS))
        if final_norm is not None:
            checks.boolean(final_norm, "final_norm")
        super().__init__()
        self.n_layers, self.d, self.variant = int(n_layers), int(d), variant
        g = draws.generator(checks.seed(seed))
        self.layers = nn.ModuleList(
            ResidualVariantBlock(d, variant, d_hidden=d_hidden, norm=norm, weight_gain=weight_gain, generator=g,
                                 dtype=dtype, device=device)
            for _ in range(self.n_layers)
        )
        if final_norm is None:
            final_norm = variant not in NORMED_STREAM
        self.final_norm = make_norm(norm, self.d, dtype=dtype, device=device) if final_norm else nn.Identity()
        self.head: Optional[nn.Linear] = None
        if n_out is not None:
            self.head = skip_init(nn.Linear, self.d, int(n_out), dtype=dtype, device=device)
            draws.assign(self.head.weight, draws.normal((int(n_out), self.d), self.d ** -0.5, g))
            draws.assign(self.head.bias, 0.0)

    def forward(self, x: Tensor) -> Tensor:
        """(..., d) -> (..., d), or (..., n_out) logits with a head."""
        if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[-1] != self.d:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (..., d={self.d}); got {shape}")
        for block in self.layers:
            x = block(x)
        y = self.final_norm(x)
        return y if self.head is None else self.head(y)
