"""Chapter 3's experiments — highway 2, residual connections: the identity lane, and how loud the branch is.

    residual_vs_plain        ∂x_L/∂x_0 = ∏(I + J_l) keeps the identity term; the plain ∏ J_l vanishes
    residual_scale_spectrum  x + α f(x) has Jacobian I + α J_f (α = 0: ReZero, every σ = 1); Post-LN
                             LN(x + α f(x)) and DeepNorm LN(s x + α f(x)) (chapter 4 compares the two)
    layer_spectrum           σ_min, σ_max of each I + J_l of residual_vs_plain's network: on both sides of one
    branch_jacobian_scale    ‖J_f‖₂ of a tanh / ReLU branch at x = c·z: tanh saturates (shrinks), ReLU ignores c
    residual_stream_norms    x_L = x_0 + Σ f_l: the stream grows without a norm, slowly with Pre-LN, not with Post-LN
    facts                    the chapter's headline, re-measured for one seed, as checked sentences

Measured through gradlib.probes and gradlib.spectra; results are gradlib.results types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch

from gradlib import checks, draws
from gradlib.exp_attention import rank_collapse_depth
from gradlib.exp_telephone import mlp_gradients
from gradlib.i18n import N_, _
from gradlib.mlp import DeepMLP
from gradlib.spectra import jacobian_top_singular_values
from gradlib.probes import layer_stats
from gradlib.results import CurveSet, DepthProfile, curve
from gradlib.threads import single_threaded
from gradlib.transformer import TransformerStack

__all__ = ["ResidualScale", "StreamNorms", "SCALE_VARIANTS", "STREAM_VARIANTS", "residual_vs_plain",
           "residual_scale_spectrum", "layer_spectrum", "branch_jacobian_scale", "residual_stream_norms", "facts"]

Device = Union[str, torch.device]


@single_threaded
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
    return [mlp_gradients(residual=False, key="plain", label=_("plain"), role="baseline", **common),
            mlp_gradients(residual=True, key="residual", label=_("residual"), role="residual", **common)]


# variant -> TransformerStack keywords (besides norm, the branch scale α and final_norm=False)
SCALE_VARIANTS = {
    "rezero": dict(norm_position="pre"),
    "postln": dict(norm_position="post"),  # skip scale 1, init="default" (PyTorch's)
    "deepnorm": dict(norm_position="post", init="deepnorm"),
}


@dataclass(frozen=True)
class ResidualScale:
    """Top singular values of a stack's input–output Jacobian, per branch scale α (rows), descending."""

    alphas: np.ndarray  # (A,)
    singular_values: np.ndarray  # (A, k)
    variant: str  # "rezero": x + α·f(x); "postln": LN(x + α·f(x)); "deepnorm": LN(s·x + α·f(x)), DeepNet's init

    @property
    def curves(self) -> CurveSet:
        """σ_i against α, one curve per i (all of the residual highway), and the identity σ = 1 as a reference."""
        sv = [curve(f"sigma{i + 1}", f"σ{i + 1}", "residual", self.alphas, self.singular_values[:, i])
              for i in range(self.singular_values.shape[1])]
        identity = curve("identity", _("identity (σ = 1)"), "reference", self.alphas, np.ones(len(self.alphas)))
        return CurveSet(tuple(sv + [identity]))


@single_threaded
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
    postln:   x ↦ LN(x + α f(x)), skip scale 1, PyTorch's default init: DeepNorm's structure without s and β (its
              control); at α = 0 the stack computes LN(x), σ = 1/std of the tokens.
    deepnorm: x ↦ LN(s·x + α f(x)), s = (2N)^(1/4), value/output/FFN weights × (8N)^(−1/4) (DeepNet, Wang et al.
              2022; α = 1 is DeepNorm itself); at α = 0 the stack computes LN(x), σ = 1/std of the tokens.

    Args:
        alphas: branch scales α ≥ 0, (A,).
        n_layers, d_model, n_heads: the stack (d_ff = 4·d_model), as in gradlib.transformer.TransformerStack.
        norm: rezero: "none" (default), "layer" or "rms" in pre-norm position without a final norm (which would
            break the identity); postln and deepnorm: "layer" (default) or "rms", post-norm.
        k: how many of the largest singular values.
        n_tokens: the input x ~ N(0, 1), shape (1, T, d_model).
        variant: one of SCALE_VARIANTS: "rezero", "postln" or "deepnorm".
        method: as in gradlib.spectra.jacobian_top_singular_values ("auto": the exact SVD at these sizes).
        seed: the same weights (for every α) and inputs.
        device, dtype: float64 by default.
    """
    checks.choice(variant, "variant", tuple(SCALE_VARIANTS))
    alpha_list = checks.float_list(alphas, "alphas", nonnegative=True)
    if norm is None:
        norm = "none" if variant == "rezero" else "layer"
    if variant != "rezero":
        checks.choice(norm, "norm", ("layer", "rms"))  # a post-norm recipe: it needs a norm
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    device = checks.device(device)
    structure = SCALE_VARIANTS[variant]
    rows = []
    for alpha in alpha_list:
        model = TransformerStack(n_layers, d_model, n_heads, norm=norm, residual=True, branch_scale=alpha,
                                 final_norm=False, seed=seed, dtype=dtype, device=device, **structure)
        x = draws.randn((1, n_tokens, model.d_model), draws.data_generator(seed), dtype, device)  # (1, T, d)
        spectrum = jacobian_top_singular_values(model, x, k=k, method=method, seed=seed)
        rows.append(np.asarray(spectrum.singular_values, dtype=np.float64))
    return ResidualScale(alphas=np.asarray(alpha_list), singular_values=np.stack(rows), variant=variant)


@single_threaded
def layer_spectrum(
    depth: int = 50, width: int = 128, activation: str = "tanh", init: str = "old", batch: int = 64,
    seed: int = 0, device: Device = "cpu", dtype: torch.dtype = torch.float64,
) -> CurveSet:
    """σ_max and σ_min of every residual layer's Jacobian I + J_l in residual_vs_plain's network, at its input.

    ∂h_l/∂h_{l−1} = I + diag(φ′(W_l h_{l−1})) W_l, at the batch's first input (curves "max", "min", "one").

    Args:
        depth, width, activation, init, batch, seed: the residual network and inputs of residual_vs_plain
            (its float32 draw of (batch, width)); J is taken along the path of the first input.
        device, dtype: float64 by default (residual_vs_plain runs these weights rounded to float32).
    """
    device = checks.device(device)
    model = DeepMLP(width, depth, activation=activation, init=init, residual=True, seed=seed, dtype=dtype,
                    device=device)
    batch = checks.positive_int(batch, "batch")
    x = draws.randn((batch, model.width), draws.data_generator(seed), torch.float32, device)  # (B, n)
    h = x[:1].to(dtype)  # (1, n): residual_vs_plain's first input
    top, bottom = [], []
    for layer in model.layers:
        sv = jacobian_top_singular_values(layer, h, k=model.width, method="exact").singular_values  # (n,)
        top.append(sv[0])
        bottom.append(sv[-1])
        with torch.no_grad():
            h = layer(h)
    layers = np.arange(1, len(top) + 1)
    return CurveSet((curve("max", _("σ_max of I + J_l"), "residual", layers, top),
                     curve("min", _("σ_min of I + J_l"), "baseline", layers, bottom),
                     curve("one", "σ = 1", "reference", layers, np.ones(len(top)))))


@single_threaded
def branch_jacobian_scale(
    scales: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0), width: int = 128, init: str = "old",
    seed: int = 0, device: Device = "cpu", dtype: torch.dtype = torch.float64,
) -> CurveSet:
    """‖J_f‖₂ of one branch f(x) = φ(W x) at inputs of growing size x = c·z, for φ = tanh and φ = ReLU.

    J_f = diag(φ′(c W z)) W: tanh′ → 0 as c grows (saturation); ReLU′(c u) = ReLU′(u) for c > 0 (no change).

    Args:
        scales: input scales c > 0, (S,).
        width, init, seed: the branch W (n, n), as in gradlib.mlp.DeepMLP (no bias); z ~ N(0, 1), (1, n).
        device, dtype: float64 by default.
    """
    scale_list = checks.float_list(scales, "scales", nonnegative=True)
    if min(scale_list) <= 0:
        raise ValueError(f"scales must be positive; got {scales!r}")
    device = checks.device(device)
    curves = []
    for act, role in (("tanh", "baseline"), ("relu", "residual")):
        branch = DeepMLP(width, 1, activation=act, init=init, seed=seed, dtype=dtype, device=device).layers[0]
        z = draws.randn((1, branch.width), draws.data_generator(seed), dtype, device)  # (1, n)
        norms = [jacobian_top_singular_values(branch, c * z, k=1, method="exact").singular_values[0]
                 for c in scale_list]
        curves.append(curve(act, {"tanh": _("tanh branch"), "relu": _("ReLU branch")}[act], role, scale_list, norms))
    return CurveSet(tuple(curves))


# key -> (label, role, TransformerStack keywords); all with residual connections and no final norm
STREAM_VARIANTS = {
    "none": (N_("residual, no norm"), "baseline", dict(norm="none", norm_position="pre")),
    "pre": (N_("residual + Pre-LN"), "norm", dict(norm="layer", norm_position="pre")),
    "post": (N_("residual + Post-LN"), "series", dict(norm="layer", norm_position="post")),
    "deepnorm": ("DeepNorm", "residual", dict(norm="layer", norm_position="post", init="deepnorm")),
}


@dataclass(frozen=True)
class StreamNorms(CurveSet):
    """Mean token norm ‖x_l‖ of the residual stream after each block (x = layer 0 = the input), per variant.

    ``squared``: the mean squared token norm E‖x_l‖² = d·(std² + mean²) of the same outputs, per variant.
    """

    squared: Optional[CurveSet] = None

    def increments(self, key: str) -> np.ndarray:
        """(L,) what each block adds to the mean squared norm: E‖x_l‖² − E‖x_{l−1}‖²."""
        return np.diff(self.squared[key].y)


@single_threaded
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
    curves, squared = [], []
    for key in keys:
        label, role, structure = STREAM_VARIANTS[key]
        model = TransformerStack(depth, d_model, n_heads, d_ff, residual=True, final_norm=False, seed=seed,
                                 dtype=dtype, device=device, **structure)
        x = draws.randn((batch, n_tokens, model.d_model), draws.data_generator(seed), dtype, device)  # (B, T, d)
        stats, x64 = layer_stats(model, x), x.double()
        norms = np.concatenate([[x64.norm(dim=-1).mean().item()], stats.norm])
        sq = model.d_model * np.concatenate([[x64.pow(2).mean().item()], stats.std**2 + stats.mean**2])
        curves.append(curve(key, _(label), role, np.arange(model.n_layers + 1), norms))
        squared.append(curve(key, _(label), role, np.arange(model.n_layers + 1), sq))
    return StreamNorms(curves=tuple(curves), squared=CurveSet(tuple(squared)))


# ------------------------------------------------------------------------------ the chapter's headline
DEPTH, WIDTH, RC_DEPTH, N_BLOCKS, STREAM_DEPTH, STREAM_WIDTH = 50, 128, 48, 6, 24, 64  # the chapter's settings
VANISHED, RESIDUAL_MAX = 1e-6, 100.0  # plain first/last below; residual first/last between 1 and this
RANK_ONE, RC_APART, RC_COLLAPSED, RC_KEPT, RC_PRE_KEPT = 1e-10, 0.01, 1e-3, 0.5, 0.1
REZERO_ATOL, SIGMA_ONE_MIN, SIGMA_GROWTH_MIN = 1e-12, 2.0, 3.0
TANH_SHRINK, RELU_RTOL = 1.2, 1e-9  # tanh ‖J_f‖ at c = 0.1 over c = 30; ReLU ‖J_f‖ equal at every c
STREAM_GROWTH, POST_RTOL, PRE_SPEEDUP = 2.0, 0.01, 1.1  # ‖x_L‖/‖x_0‖ no norm; ‖x_l‖ = √d; increments last/first


@single_threaded
def facts(seed: int) -> dict[str, bool]:
    """The chapter's headline re-measured at its settings for one seed: {checked sentence: holds?}.

    Args:
        seed: seeds every model and input, as in each experiment.
    """
    seed = checks.seed(seed)
    plain, res = residual_vs_plain(depth=DEPTH, width=WIDTH, seed=seed)
    rc = rank_collapse_depth(depth=RC_DEPTH, seed=seed, variants=("attention", "skip", "scaled", "pre", "post"))
    sv = residual_scale_spectrum(alphas=(0.0, 1.0), n_layers=N_BLOCKS, k=4, seed=seed).singular_values  # (2, 4)
    layers = layer_spectrum(depth=DEPTH, width=WIDTH, seed=seed)
    branch = branch_jacobian_scale(seed=seed)
    stream = residual_stream_norms(depth=STREAM_DEPTH, d_model=STREAM_WIDTH, seed=seed,
                                   variants=("none", "pre", "post"))
    inc, q = stream.increments("pre"), STREAM_DEPTH // 4  # the first and the last quarter of the blocks
    return {
        f"plain {DEPTH} layers vanishes (first/last < {VANISHED:g})": bool(plain.ratio < VANISHED),
        "residual does not (first/last > 1)": bool(res.ratio > 1),
        f"... it grows, but less than {RESIDUAL_MAX:g}x": bool(res.ratio < RESIDUAL_MAX),
        "every layer: sigma_min(I + J_l) < 1 < sigma_max(I + J_l)": bool(
            (layers["min"].y < 1).all() and (layers["max"].y > 1).all()),
        f"pure attention: rank one (< {RANK_ONE:g})": bool(rc["attention"].y[-1] < RANK_ONE),
        f"with skips: far from rank one at layer 12 (> {RC_APART:g})": bool(rc["skip"].y[12] > RC_APART),
        f"... but collapsing by layer {RC_DEPTH} (< {RC_COLLAPSED:g})": bool(rc["skip"].y[RC_DEPTH] < RC_COLLAPSED),
        f"branch 1/sqrt(L): keeps rank at layer {RC_DEPTH} (> {RC_KEPT:g})": bool(rc["scaled"].y[RC_DEPTH] > RC_KEPT),
        "Post-LN collapses faster than plain skips (layer 24)": bool(rc["post"].y[24] < rc["skip"].y[24]),
        f"Pre-LN slower: far from rank one at layer 24 (> {RC_PRE_KEPT:g})": bool(rc["pre"].y[24] > RC_PRE_KEPT),
        f"... but still falling (layer {RC_DEPTH} < layer 12)": bool(rc["pre"].y[RC_DEPTH] < rc["pre"].y[12]),
        f"ReZero alpha=0: all singular values 1 ({REZERO_ATOL:g})": bool(np.abs(sv[0] - 1).max() < REZERO_ATOL),
        f"plain residual alpha=1: sigma_max > {SIGMA_ONE_MIN:g}": bool(sv[1, 0] > SIGMA_ONE_MIN),
        f"alpha 0 -> 1: sigma_max grows > {SIGMA_GROWTH_MIN:g}x": bool(sv[1, 0] > SIGMA_GROWTH_MIN * sv[0, 0]),
        f"tanh branch: ||J_f|| shrinks > {TANH_SHRINK:g}x from input scale 0.1 to 30": bool(
            branch["tanh"].y[0] > TANH_SHRINK * branch["tanh"].y[-1]),
        "ReLU branch: ||J_f|| the same at every input scale": bool(
            np.allclose(branch["relu"].y, branch["relu"].y[0], rtol=RELU_RTOL, atol=0)),
        f"stream grows without a norm (> {STREAM_GROWTH:g}x)": bool(
            stream["none"].y[-1] > STREAM_GROWTH * stream["none"].y[0]),
        f"Pre-LN: ||x_l||^2 faster than linear (last {q} increments > {PRE_SPEEDUP:g}x first {q})": bool(
            inc[-q:].mean() > PRE_SPEEDUP * inc[:q].mean()),
        "Post-LN pins it at sqrt(d) (1%)": bool(
            np.allclose(stream["post"].y[1:], np.sqrt(STREAM_WIDTH), rtol=POST_RTOL, atol=0)),
    }
