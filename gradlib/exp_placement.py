"""Chapter 4's experiments, part 2 — where the norm stands: Pre-LN vs Post-LN (exp_norms: what a norm does).

    pre_post_ln      ‖∇W_2‖ of the last block: Post-LN O(d√ln d) flat in L, Pre-LN O(d√(ln d/L)) (Xiong et al. 2020)
    stack_gradients  ‖∂ℓ/∂x_l‖ after every block of a residual stack, the norm before or after each sub-layer
    deepnorm_depth   σ_max(∂y/∂x) against N: Post-LN LN(x + f(x)) grows with N, DeepNorm LN(s x + f_β(x)) does not
    facts            the chapter's headline, re-measured for one seed: {checked sentence: holds?}

Measured through gradlib.probes, on gradlib's TransformerStack and on PyTorch's own encoder layers
(gradlib.reference); results are gradlib.results types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from gradlib import checks, draws
from gradlib.exp_norms import NORM_NAMES, activation_stats, norm_comparison, scale_invariant_loss_trap
from gradlib.exp_residual import residual_scale_spectrum
from gradlib.exp_telephone import depth_profile
from gradlib.i18n import _
from gradlib.probes import layer_grad_norms, layer_stats, param_grad_norms
from gradlib.reference import torch_encoder_stack
from gradlib.results import ROLES, CurveSet, DepthProfile, curve
from gradlib.threads import single_threaded
from gradlib.transformer import TransformerStack

__all__ = ["PrePostSweep", "pre_post_ln", "stack_gradients", "deepnorm_depth", "facts"]

Device = Union[str, torch.device]


@dataclass(frozen=True)
class PrePostSweep:
    """‖∇W_2‖ of the last block against depth, Pre-LN ("pre") vs Post-LN ("post"), over seeds."""

    depths: np.ndarray  # (D,)
    per_seed: dict[str, np.ndarray]  # "pre"/"post" -> (S, D) last block's ‖∇W_2‖
    hidden_per_seed: dict[str, np.ndarray]  # "pre"/"post" -> (S, D) mean token norm ‖x_L‖ before any final norm
    per_layer: dict[str, np.ndarray]  # "pre"/"post" -> (L_max,) ‖∇W_2‖ of every block of the deepest stack
    implementation: str  # "gradlib" or "torch"

    @property
    def last_layer_grad(self) -> dict[str, np.ndarray]:
        """'pre'/'post' -> (D,) mean over seeds."""
        return {k: v.mean(axis=0) for k, v in self.per_seed.items()}

    @property
    def hidden_norm(self) -> dict[str, np.ndarray]:
        """'pre'/'post' -> (D,) mean over seeds of ‖x_L‖."""
        return {k: v.mean(axis=0) for k, v in self.hidden_per_seed.items()}

    @property
    def curves(self) -> CurveSet:
        """The last layer's gradient against L; Pre-LN's theory is Xiong et al.'s ∝ 1/√L, anchored at the first L."""
        pre, post = self.last_layer_grad["pre"], self.last_layer_grad["post"]
        guide = pre[0] * np.sqrt(self.depths[0] / self.depths)
        return CurveSet((curve("pre", "Pre-LN", "norm", self.depths, pre, theory=guide),
                         curve("post", "Post-LN", "baseline", self.depths, post)))


@single_threaded
def pre_post_ln(
    depths: Sequence[int] = (2, 4, 8, 16, 32),
    d_model: int = 64,
    n_heads: int = 4,
    d_ff: int = 256,
    implementation: str = "gradlib",
    seeds: Sequence[int] = (0, 1, 2),
    batch: int = 8,
    seq_len: int = 16,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> PrePostSweep:
    """Gradient of the last block's W_2 against depth for Pre-LN and Post-LN Transformers (Xiong et al. 2020).

    Post-LN: ‖∂ℓ/∂W_2^L‖ = O(d√ln d), flat in L; Pre-LN: O(d√(ln d / L)), through the final LN's 1/‖x_L‖.

    Pre-LN ends with a final LayerNorm (as the paper defines it). The depth-L network of a seed is the first L
    blocks of one deep stack and its final norm (nested networks: the comparison is not blurred by redrawing).
    Loss: probes.projection_loss ⟨y, r⟩, which a final norm does not make invariant.

    Args:
        depths: numbers of blocks L, (D,).
        d_model, n_heads, d_ff: block sizes.
        implementation: "gradlib" (TransformerStack) or "torch" (independent nn.TransformerEncoderLayer's).
        seeds: one init and input per seed, (S,).
        batch, seq_len: input x ~ N(0, 1), shape (batch, seq_len, d_model).
        device, dtype: where and in what precision to run.
    """
    depth_list = checks.int_list(depths, "depths")
    checks.choice(implementation, "implementation", ("gradlib", "torch"))
    seed_list = checks.int_list(seeds, "seeds", minimum=0)
    batch = checks.positive_int(batch, "batch")
    seq_len = checks.positive_int(seq_len, "seq_len")
    device = checks.device(device)
    deepest = max(depth_list)
    deepest_at = depth_list.index(deepest)  # per_layer: once, even if the deepest depth is listed twice
    grads = {k: np.zeros((len(seed_list), len(depth_list))) for k in ("pre", "post")}
    hidden = {k: np.zeros((len(seed_list), len(depth_list))) for k in ("pre", "post")}
    per_layer = {k: np.zeros(deepest) for k in ("pre", "post")}
    for s, seed in enumerate(seed_list):
        for kind in ("pre", "post"):
            if implementation == "gradlib":
                stack = TransformerStack(deepest, d_model, n_heads, d_ff, norm="layer", norm_position=kind,
                                         seed=seed, dtype=dtype, device=device)
            else:
                stack = torch_encoder_stack(deepest, d_model, n_heads, d_ff, norm_first=(kind == "pre"), seed=seed,
                                            dtype=dtype, device=device)
            x = draws.randn((batch, seq_len, d_model), draws.data_generator(seed), dtype, device)  # (B, T, d)
            # ‖x_L‖ before the final norm, for every L at once: the depth-L networks are nested in the deepest
            deep = list(stack.layers[:deepest])
            block_norms = layer_stats(nn.Sequential(*deep), x, layers=deep).norm  # (deepest,)
            for j, L in enumerate(depth_list):
                blocks = list(stack.layers[:L])
                net = nn.Sequential(*blocks, stack.final_norm)  # y = final_norm(block_L(… block_1(x)))
                w2 = param_grad_norms(net, x, {f"block {i + 1}": _w2(b) for i, b in enumerate(blocks)}).norms
                grads[kind][s, j] = w2[-1]
                hidden[kind][s, j] = block_norms[L - 1]
                if j == deepest_at:
                    per_layer[kind] += w2 / len(seed_list)
    return PrePostSweep(depths=np.asarray(depth_list), per_seed=grads, hidden_per_seed=hidden, per_layer=per_layer,
                        implementation=implementation)


def _w2(layer: nn.Module) -> Tensor:
    """The second FFN weight W_2 (d_model × d_ff) of a gradlib block or a torch encoder layer."""
    return layer.linear2.weight if isinstance(layer, nn.TransformerEncoderLayer) else layer.ffn[-1].weight


# ------------------------------------------------------------------------------------------ stack gradients
@single_threaded
def stack_gradients(
    depth: int = 12,
    norm: str = "layer",
    norm_position: str = "pre",
    d_model: int = 32,
    n_heads: int = 1,
    n_tokens: int = 8,
    batch: int = 2,
    d_ff: Optional[int] = None,
    init: str = "default",
    final_norm: Optional[bool] = None,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
    key: Optional[str] = None,
    label: Optional[str] = None,
    role: Optional[str] = None,
) -> DepthProfile:
    """Gradient norm after every block of a residual Transformer stack, the norm before or after each sub-layer.

    pre: x = x + f(N(x)) (+ a final N);  post: x = N(x + f(x));  g_l = ‖∂ℓ/∂x_l‖, x_l the output of block l.

    Args:
        depth, norm, norm_position, d_model, n_heads, d_ff, init, final_norm: the stack, as in
            gradlib.transformer.TransformerStack (norm "layer", "rms" or "none"; init "deepnorm" is post-norm only).
        n_tokens, batch: input x ~ N(0, 1), shape (batch, n_tokens, d_model), from the data stream of `seed`.
        seed, device, dtype: as everywhere.
        key, label, role: how the profile is named and drawn (default label e.g. "pre-LayerNorm", "no norm").
    """
    device = checks.device(device)
    checks.positive_int(depth, "depth")  # named as here, not as TransformerStack's n_layers
    model = TransformerStack(depth, d_model, n_heads, d_ff, norm=norm, norm_position=norm_position, residual=True,
                             final_norm=final_norm, init=init, seed=seed, dtype=dtype, device=device)
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    batch = checks.positive_int(batch, "batch")
    x = draws.randn((batch, n_tokens, model.d_model), draws.data_generator(seed), dtype, device)  # (B, T, d)
    if label is None:
        deepnorm = "DeepNorm" if norm == "layer" else f"DeepNorm ({NORM_NAMES[norm]})"  # as the old module
        label = (deepnorm if init == "deepnorm" else "no norm" if norm == "none"
                 else f"{norm_position}-{NORM_NAMES[norm]}")
        key = label if key is None else key  # the English label: a key is never translated
        label = _("no norm") if label == "no norm" else label  # the others are names ("pre-LayerNorm", "DeepNorm")
    role = role if role is not None else "baseline" if norm == "none" or norm_position == "post" else "norm"
    checks.choice(role, "role", ROLES)
    return depth_profile(key if key is not None else label, label, role, layer_grad_norms(model, x))


# ------------------------------------------------------------------------------------------ DeepNorm vs depth
@single_threaded
def deepnorm_depth(
    depths: Sequence[int] = (6, 12, 24),
    alpha: float = 1.0,
    d_model: int = 32,
    n_tokens: int = 8,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> CurveSet:
    """Largest singular value of the stack's input–output Jacobian against its depth N, Post-LN vs DeepNorm.

    postln: x ↦ LN(x + α f(x)) (PyTorch's init); deepnorm: x ↦ LN(s x + α f(x)), s = (2N)^(1/4), init × (8N)^(−1/4).

    Args:
        depths: numbers of blocks N, (D,); DeepNorm's s and β are those of each N.
        alpha: the branch scale α ≥ 0 (1: the blocks as built).
        d_model, n_tokens: the stacks (one head, d_ff = 4·d_model) and their input x ~ N(0, 1), (1, T, d_model).
        seed, device, dtype: as in exp_residual.residual_scale_spectrum (float64 by default).
    """
    depth_list = checks.int_list(depths, "depths")
    (alpha,) = checks.float_list([alpha], "alpha", nonnegative=True)
    sigma = {v: [residual_scale_spectrum(alphas=(alpha,), n_layers=n, d_model=d_model, k=1, n_tokens=n_tokens,
                                         variant=v, seed=seed, device=device, dtype=dtype).singular_values[0, 0]
                 for n in depth_list] for v in ("postln", "deepnorm")}
    return CurveSet((curve("postln", "Post-LN", "baseline", depth_list, sigma["postln"]),
                     curve("deepnorm", "DeepNorm", "scaled", depth_list, sigma["deepnorm"])))


# ------------------------------------------------------------------------------ the chapter's headline
ACT_DEPTH, DEPTHS, DN_BLOCKS, DN_DEPTHS = 24, (2, 4, 8, 16, 32), 6, (6, 12)  # the chapter's settings
STD_TOL, LN_MEAN_MAX, RMS_MEAN_MIN = 0.05, 1e-6, 0.03  # post-norm |std − 1|; |mean| after LN; largest after RMS
FALL, FLAT, STREAM_GROWTH, IMPL_RTOL = 0.7, 1.3, 1.5, 1e-4  # Pre-LN last/first <; Post-LN max/min <; ‖x_L‖
SUPERLINEAR, BN_CHANGE, TRAP_RATIO = 1.2, 0.1, 1e-6  # ‖x_L‖² per block 8-32 over 2-8; BatchNorm; the trap
SAME_MAP_RTOL, DEEPNORM_GROWTH_MAX, POSTLN_GROWTH_MIN = 1e-4, 1.4, 2.0  # α = 0 equal; σ_max(α=1)/σ_max(α=0)


@single_threaded
def facts(seed: int) -> dict[str, bool]:
    """The chapter's headline re-measured at its settings for one seed: {checked sentence: holds?}.

    Args:
        seed: seeds every model and input, as in each experiment.
    """
    seed = checks.seed(seed)
    act = activation_stats(depth=ACT_DEPTH, norms=("layer", "rms"), norm_position="post", seed=seed)
    std = np.r_[act.std["layer"].y[1:], act.std["rms"].y[1:]]
    rows = list(norm_comparison(seed=seed).changes.values())
    sweeps = {impl: pre_post_ln(depths=DEPTHS, seeds=(seed,), implementation=impl) for impl in ("gradlib", "torch")}
    pre = [s.per_seed["pre"][0] for s in sweeps.values()]
    post = [s.per_seed["post"][0] for s in sweeps.values()]
    impl_diff = max(float(np.max(np.abs(sweeps["torch"].per_seed[k] / sweeps["gradlib"].per_seed[k] - 1)))
                    for k in ("pre", "post"))
    hidden = sweeps["gradlib"].hidden_per_seed["pre"][0]  # (D,)
    at = {L: DEPTHS.index(L) for L in (2, 8, 32)}
    per_block = [(hidden[at[b]] ** 2 - hidden[at[a]] ** 2) / (b - a) for a, b in ((2, 8), (8, 32))]  # ‖x_L‖² added
    sv = {v: residual_scale_spectrum(alphas=(0.0, 1.0), n_layers=DN_BLOCKS, k=1, variant=v, seed=seed)
          .singular_values[:, 0] for v in ("postln", "deepnorm")}  # (2,): α = 0, 1
    deep = deepnorm_depth(depths=DN_DEPTHS, seed=seed)
    return {
        f"post-LN, post-RMSNorm: std within {STD_TOL:g} of 1 after every block": bool(np.all(abs(std - 1) < STD_TOL)),
        f"post-LN: |mean| < {LN_MEAN_MAX:g} after every block": bool(
            np.abs(act.mean["layer"].y[1:]).max() < LN_MEAN_MAX),
        f"post-RMSNorm: some block's |mean| > {RMS_MEAN_MIN:g} (no re-centring)": bool(
            np.abs(act.mean["rms"].y[1:]).max() > RMS_MEAN_MIN),
        "BatchNorm refuses a batch of one token": isinstance(rows[0]["batch"], str),
        f"BatchNorm: padding leaks (change > {BN_CHANGE:g})": bool(rows[1]["batch"] > BN_CHANGE),
        f"BatchNorm: train != eval (change > {BN_CHANGE:g})": bool(rows[2]["batch"] > BN_CHANGE),
        "LayerNorm, RMSNorm: exactly unchanged": all(row[k] == 0.0 for row in rows for k in ("layer", "rms")),
        f"Pre-LN last-layer grad falls with depth, by > {1 - FALL:.0%} (gradlib + torch)": all(
            bool(np.all(np.diff(g) < 0) and g[-1] < FALL * g[0]) for g in pre),
        f"Post-LN last-layer grad flat within {FLAT - 1:.0%} (gradlib + torch)": all(
            bool(g.max() / g.min() < FLAT) for g in post),
        f"Pre-LN |x_L| grows with depth (> {STREAM_GROWTH:g}x)": bool(hidden[-1] > STREAM_GROWTH * hidden[0]),
        f"Pre-LN |x_L|^2 faster than linear (per block, L 8-32 > {SUPERLINEAR:g}x L 2-8)": bool(
            per_block[1] > SUPERLINEAR * per_block[0]),
        f"gradlib == PyTorch layers (rel. diff < {IMPL_RTOL:g})": impl_diff < IMPL_RTOL,
        f"alpha = 0: Post-LN and DeepNorm are one map, LN(x) (sigma_max to {SAME_MAP_RTOL:g})": bool(
            abs(sv["deepnorm"][0] / sv["postln"][0] - 1) < SAME_MAP_RTOL),
        f"alpha 0 -> 1: DeepNorm sigma_max grows < {DEEPNORM_GROWTH_MAX:g}x": bool(
            sv["deepnorm"][1] < DEEPNORM_GROWTH_MAX * sv["deepnorm"][0]),
        f"alpha 0 -> 1: plain Post-LN sigma_max grows > {POSTLN_GROWTH_MIN:g}x": bool(
            sv["postln"][1] > POSTLN_GROWTH_MIN * sv["postln"][0]),
        f"{DN_DEPTHS[0]} -> {DN_DEPTHS[-1]} blocks: Post-LN sigma_max grows, DeepNorm's does not": bool(
            deep["postln"].y[-1] > deep["postln"].y[0] and deep["deepnorm"].y[-1] <= deep["deepnorm"].y[0]),
        f"mean(y^2) after LN: grad < {TRAP_RATIO:g} x projection grad": bool(
            scale_invariant_loss_trap(seed=seed).ratio < TRAP_RATIO),
    }
