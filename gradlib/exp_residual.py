"""Chapter 3's experiments — highway 2, residual connections: the identity lane, and how loud the branch is.

    residual_vs_plain        ∂x_L/∂x_0 = ∏(I + J_l) keeps the identity term; the plain ∏ J_l vanishes
    residual_scale_spectrum  x + α f(x) has Jacobian I + α J_f (α = 0: ReZero, every σ = 1); DeepNorm LN(s x + α f(x))
    residual_stream_norms    x_L = x_0 + Σ f_l: the stream grows without a norm, slowly with Pre-LN, not with Post-LN

Measured through gradlib.probes and gradlib.spectra; results are gradlib.results types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

from gradlib import checks, draws
from gradlib.exp_telephone import mlp_gradients
from gradlib.spectra import jacobian_top_singular_values
from gradlib.probes import layer_stats
from gradlib.results import CurveSet, DepthProfile, curve
from gradlib.transformer import TransformerStack

__all__ = ["ResidualScale", "StreamNorms", "STREAM_VARIANTS", "residual_vs_plain", "residual_scale_spectrum",
           "residual_stream_norms"]

Device = Union[str, torch.device]


def residual_vs_plain(
    depth: int = 50,
    width: int = 128,
    activation: str = "tanh",
    init: str = "old",
    batch: int = 64,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> list[DepthProfile]:
    """The same deep MLP without and with skip connections: [plain, residual] gradient profiles.

    Plain: ∂h_L/∂h_l = ∏ J_m → 0; residual: ∏ (I + J_m), whose identity term always survives.

    Args:
        depth, width, activation, init, batch: as in exp_telephone.mlp_gradients.
        seed: the same weights and inputs for both networks.
        device, dtype: where and in what precision to run.
    """
    common = dict(depth=depth, width=width, activation=activation, init=init, batch=batch, seed=seed,
                  device=device, dtype=dtype)
    return [mlp_gradients(residual=False, key="plain", label="plain", role="baseline", **common),
            mlp_gradients(residual=True, key="residual", label="residual", role="residual", **common)]


@dataclass(frozen=True)
class ResidualScale:
    """Top singular values of a stack's input–output Jacobian, per branch scale α (rows), descending."""

    alphas: np.ndarray  # (A,)
    singular_values: np.ndarray  # (A, k)
    variant: str  # "rezero": x + α·f(x); "deepnorm": LN(s·x + α·f(x)) with DeepNet's s and init

    @property
    def curves(self) -> CurveSet:
        """σ_i against α, one curve per i (all of the residual highway), and the identity σ = 1 as a reference."""
        sv = [curve(f"sigma{i + 1}", f"σ{i + 1}", "residual", self.alphas, self.singular_values[:, i])
              for i in range(self.singular_values.shape[1])]
        identity = curve("identity", "identity (σ = 1)", "reference", self.alphas, np.ones(len(self.alphas)))
        return CurveSet(tuple(sv + [identity]))


def residual_scale_spectrum(
    alphas: Sequence[float] = (0.0, 0.1, 0.5, 1.0),
    n_layers: int = 6,
    d_model: int = 32,
    n_heads: int = 1,
    norm: Optional[str] = None,
    k: int = 4,
    n_tokens: int = 8,
    variant: str = "rezero",
    method: str = "auto",
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> ResidualScale:
    """Top singular values of a Transformer stack's input–output Jacobian for branch scales α.

    rezero:   x ↦ x + α f(x) per sub-layer, Jacobian I + α J_f: at α = 0 the stack is the identity, every σ = 1.
    deepnorm: x ↦ LN(s·x + α f(x)), s = (2N)^(1/4), value/output/FFN weights × (8N)^(−1/4) (DeepNet, Wang et al.
              2022; α = 1 is DeepNorm itself); at α = 0 the stack computes LN(x), σ = 1/std of the tokens.

    Args:
        alphas: branch scales α ≥ 0, (A,).
        n_layers, d_model, n_heads: the stack (d_ff = 4·d_model), as in gradlib.transformer.TransformerStack.
        norm: rezero: "none" (default), "layer" or "rms" in pre-norm position without a final norm (which would
            break the identity); deepnorm: "layer" (default) or "rms", post-norm.
        k: how many of the largest singular values.
        n_tokens: the input x ~ N(0, 1), shape (1, T, d_model).
        variant: "rezero" or "deepnorm".
        method: as in gradlib.spectra.jacobian_top_singular_values ("auto": the exact SVD at these sizes).
        seed: the same weights (for every α) and inputs.
        device, dtype: float64 by default.
    """
    checks.choice(variant, "variant", ("rezero", "deepnorm"))
    alpha_list = checks.float_list(alphas, "alphas", nonnegative=True)
    if norm is None:
        norm = "none" if variant == "rezero" else "layer"
    if variant == "deepnorm":
        checks.choice(norm, "norm", ("layer", "rms"))  # DeepNorm is a post-norm recipe: it needs a norm
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    device = checks.device(device)
    structure = dict(norm_position="pre") if variant == "rezero" else dict(norm_position="post", init="deepnorm")
    rows = []
    for alpha in alpha_list:
        model = TransformerStack(n_layers, d_model, n_heads, norm=norm, residual=True, branch_scale=alpha,
                                 final_norm=False, seed=seed, dtype=dtype, device=device, **structure)
        x = draws.randn((1, n_tokens, model.d_model), draws.data_generator(seed), dtype, device)  # (1, T, d)
        spectrum = jacobian_top_singular_values(model, x, k=k, method=method, seed=seed)
        rows.append(np.asarray(spectrum.singular_values, dtype=np.float64))
    return ResidualScale(alphas=np.asarray(alpha_list), singular_values=np.stack(rows), variant=variant)


# key -> (label, role, TransformerStack keywords); all with residual connections and no final norm
STREAM_VARIANTS = {
    "none": ("residual, no norm", "baseline", dict(norm="none", norm_position="pre")),
    "pre": ("residual + Pre-LN", "norm", dict(norm="layer", norm_position="pre")),
    "post": ("residual + Post-LN", "series", dict(norm="layer", norm_position="post")),
    "deepnorm": ("DeepNorm", "residual", dict(norm="layer", norm_position="post", init="deepnorm")),
}


@dataclass(frozen=True)
class StreamNorms(CurveSet):
    """Mean token norm ‖x_l‖ of the residual stream after each block (x = layer 0 = the input), per variant."""


def residual_stream_norms(
    depth: int = 24,
    d_model: int = 64,
    n_heads: int = 1,
    d_ff: Optional[int] = None,
    n_tokens: int = 16,
    batch: int = 2,
    variants: Sequence[str] = tuple(STREAM_VARIANTS),
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> StreamNorms:
    """Mean token norm of the residual stream after each block, for different norm placements.

    No norm: x_{l+1} = x_l + f(x_l) grows; Pre-LN: ‖x_l‖ grows additively; Post-LN: ‖x_l‖ = √d at every block.

    Args:
        depth, d_model, n_heads, d_ff: the stacks, as in gradlib.transformer.TransformerStack.
        n_tokens, batch: input x ~ N(0, 1), shape (batch, n_tokens, d_model).
        variants: keys of STREAM_VARIANTS: "none", "pre", "post", "deepnorm".
        seed: seeds the inits and (separately) the inputs.
        device, dtype: where and in what precision to run.
    """
    keys = checks.sequence(variants, "variants")
    for key in keys:
        checks.choice(key, "every entry of variants", tuple(STREAM_VARIANTS))
    checks.positive_int(depth, "depth")  # named as here, not as TransformerStack's n_layers
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    batch = checks.positive_int(batch, "batch")
    device = checks.device(device)
    curves = []
    for key in keys:
        label, role, structure = STREAM_VARIANTS[key]
        model = TransformerStack(depth, d_model, n_heads, d_ff, residual=True, final_norm=False, seed=seed,
                                 dtype=dtype, device=device, **structure)
        x = draws.randn((batch, n_tokens, model.d_model), draws.data_generator(seed), dtype, device)  # (B, T, d)
        norms = np.concatenate([[x.norm(dim=-1).mean().item()], layer_stats(model, x).norm])
        curves.append(curve(key, label, role, np.arange(model.n_layers + 1), norms))
    return StreamNorms(curves=tuple(curves))
