"""Chapter 8's experiments — the FAQ answered by measurement: norms that leak, where the skip goes, norm-free stacks.

    causal_leak            ‖∂y_0/∂x_last‖: per-token norms 0; BatchNorm, GroupNorm/InstanceNorm over positions leak
    placements             He et al. 2016's five units and Pre/Post/Peri-LN: gradient profile and stream growth
    deep_alternatives      32-block Transformers: Pre-LN, Pre-RMSNorm, DyT, ReZero, DeepNorm, no norm
    norm_jacobian_scale    σ_max(∂N/∂x) against the input's size: √d/‖x‖ for RMSNorm, ≤ α for DyT
    optimizer_first_step   Adam's first step is lr·sign(g): the vanished layer moves, its move still barely counts
    weight_growth          branch weights × s: Pre-LN's stream grows like s², a norm on the branch output pins it
    train_placements       a short Adam run of each placement on a teacher task (gradlib.training): loss per step
    facts                  the chapter's headline, re-measured for one seed: {checked sentence: holds?}

Measured through gradlib.probes, gradlib.jacobians and gradlib.spectra; results are gradlib.results types.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from gradlib import checks, draws
from gradlib.exp_telephone import depth_profile
from gradlib.i18n import N_, _
from gradlib.jacobians import position_grad_norms
from gradlib.mlp import DeepMLP
from gradlib.norms import DyT, GroupNorm, LayerNorm, RMSNorm, TokenBatchNorm
from gradlib.probes import layer_grad_norms, layer_stats, param_grad_norms, projection_loss
from gradlib.residual_variants import VARIANTS, ResidualVariantStack
from gradlib.results import CurveSet, DepthProfile, curve
from gradlib.spectra import jacobian_top_singular_values
from gradlib.tasks import TeacherTask
from gradlib.threads import single_threaded
from gradlib.training import train
from gradlib.transformer import TransformerStack

__all__ = ["LEAK_NORMS", "ALTERNATIVES", "CausalLeak", "Placements", "OptimizerStep", "causal_leak", "placements",
           "deep_alternatives", "norm_jacobian_scale", "optimizer_first_step", "weight_growth", "train_placements",
           "TRAINED", "facts"]

LEAK_NORMS = {"layer": "LayerNorm", "rms": "RMSNorm", "group": "GroupNorm over channels (per token)",
              "dyt": "DyT", "batch": "BatchNorm (training)", "group_positions": "GroupNorm over (d, T)",
              "instance": "InstanceNorm over T"}
ALTERNATIVES = {"none": N_("no norm"), "pre_ln": "Pre-LN", "pre_rms": "Pre-RMSNorm", "dyt": N_("Pre-DyT (no norm)"),
                "rezero": "ReZero (α = 0)", "deepnorm": "DeepNorm"}
TRAINED = ("original", "norm_after_add", "relu_before_add", "full_pre", "post_ln", "pre_ln")  # the chapter's runs
# residual_variants.VARIANTS as the legends name them: placements' and train_placements', then weight_growth's
_UNIT_LABELS = {"original": N_("original"), "norm_after_add": N_("norm after add"),
                "relu_before_add": N_("relu before add"), "relu_only_pre": N_("relu only pre"),
                "full_pre": N_("full pre"), "post_ln": N_("post ln"), "pre_ln": N_("pre ln"), "peri_ln": N_("peri ln"),
                "output_ln": N_("output ln")}
_UNIT_SHORT = {"original": N_("original"), "norm_after_add": N_("norm-after-add"),
               "relu_before_add": N_("relu-before-add"), "relu_only_pre": N_("relu-only-pre"),
               "full_pre": N_("full-pre"), "post_ln": N_("post-LN"), "pre_ln": N_("pre-LN"), "peri_ln": N_("peri-LN"),
               "output_ln": N_("output-LN")}
_ROLES = {"post_ln": "baseline", "original": "baseline", "norm_after_add": "baseline", "pre_ln": "norm", "full_pre":
          "norm", "none": "baseline", "pre_rms": "norm", "dyt": "series", "rezero": "residual", "deepnorm": "scaled"}


@dataclass(frozen=True)
class CausalLeak:
    """How much output token 0 depends on the LAST input token, ‖∂y_0/∂x_{T−1}‖_F, per norm (0: no leak)."""

    leak: dict[str, float]  # key of LEAK_NORMS -> ‖∂y_0/∂x_{T−1}‖_F
    own: dict[str, float]  # key -> ‖∂y_0/∂x_0‖_F, for scale


@single_threaded
def causal_leak(d: int = 16, n_tokens: int = 12, seed: int = 0) -> CausalLeak:
    """Does a norm let an early token see a later one? Per-token norms cannot; batch/position statistics do.

    leak = ‖∂y_0/∂x_{T−1}‖_F (jacobians.position_grad_norms, target 0); x ~ N(0, 1), (1, T, d), float64.

    Args:
        d: width (divisible by 4: GroupNorm uses 4 groups); n_tokens: T ≥ 2; seed: the input.
    """
    if checks.integer(d, "d", minimum=4) % 4:
        raise ValueError(f"d must be divisible by 4 (GroupNorm's 4 groups); got {d}")
    n_tokens = checks.integer(n_tokens, "n_tokens", minimum=2)
    x = draws.randn((1, n_tokens, d), draws.data_generator(checks.seed(seed)), torch.float64)  # (1, T, d)
    f64 = {"dtype": torch.float64}
    channels_first = lambda m: lambda t: m(t.transpose(1, 2)).transpose(1, 2)  # noqa: E731  vision's (B, C, T)
    fns = {"layer": LayerNorm(d, **f64), "rms": RMSNorm(d, **f64), "group": GroupNorm(d, 4, **f64),
           "dyt": DyT(d, **f64), "batch": TokenBatchNorm(d, **f64),
           "group_positions": channels_first(nn.GroupNorm(4, d, **f64)),
           "instance": channels_first(nn.InstanceNorm1d(d, **f64))}
    leak, own = {}, {}
    for key, fn in fns.items():
        norms = position_grad_norms(fn, x, target=0).norms  # (T,) ‖∂y_0/∂x_i‖_F
        leak[key], own[key] = float(norms[-1]), float(norms[0])
    return CausalLeak(leak=leak, own=own)


@dataclass(frozen=True)
class Placements:
    """Per variant: the gradient profile ‖∂ℓ/∂x_l‖ and the stream's size ‖x_l‖ (mean token norm), l = 0..L."""

    profiles: dict[str, DepthProfile]
    stream: dict[str, np.ndarray]  # (L + 1,) ‖x_0‖ (the input), then the output of every block

    @property
    def growth(self) -> dict[str, float]:
        """‖x_L‖ / ‖x_0‖ per variant, before any final norm."""
        return {k: float(v[-1] / v[0]) for k, v in self.stream.items()}


@single_threaded
def placements(variants: Sequence[str] = tuple(VARIANTS), depth: int = 64, d: int = 32, batch: int = 16,
               weight_gain: float = 1.0, seed: int = 0) -> Placements:
    """Where the skip and the norm go (residual_variants.VARIANTS), at initialisation, through the probes.

    profile_l = ‖∂⟨y, r⟩/∂x_l‖ (x_l the output of block l); growth = mean ‖x_L‖ / mean ‖x_0‖, before any final norm.

    Args:
        variants: keys of VARIANTS; depth, d, weight_gain: the stacks (d_hidden = d, LayerNorm);
        batch: x ~ N(0, 1), (batch, d); seed: weights and (separately) inputs.
    """
    keys = [checks.choice(v, "every entry of variants", tuple(VARIANTS)) for v in checks.sequence(variants, "variants")]
    batch = checks.positive_int(batch, "batch")
    x = draws.randn((batch, checks.positive_int(d, "d")), draws.data_generator(checks.seed(seed)), torch.float32)
    profiles, stream = {}, {}
    for v in keys:
        stack = ResidualVariantStack(depth, d, v, weight_gain=weight_gain, seed=seed)
        profiles[v] = depth_profile(v, _(_UNIT_LABELS[v]), _ROLES.get(v, "series"), layer_grad_norms(stack, x))
        stream[v] = np.r_[x.norm(dim=-1).mean().item(), layer_stats(stack, x).norm]
    return Placements(profiles=profiles, stream=stream)


@single_threaded
def deep_alternatives(keys: Sequence[str] = tuple(ALTERNATIVES), depth: int = 32, d_model: int = 32,
                      n_heads: int = 2, n_tokens: int = 8, batch: int = 2, seed: int = 0) -> Placements:
    """Deep Transformer stacks with and without LayerNorm (keys of ALTERNATIVES), profile and stream growth.

    pre_ln x + f(LN x), pre_rms x + f(RMS x), dyt x + f(DyT x) (+ final DyT), rezero x + α f(x) with α = 0,
    deepnorm LN(s x + f_β(x)), none x + f(x); profile and growth as in :func:`placements`.

    Args:
        keys: which stacks; depth, d_model, n_heads: their shape (d_ff = 4·d_model);
        n_tokens, batch: x ~ N(0, 1), (batch, n_tokens, d_model); seed: weights and inputs.
    """
    chosen = [checks.choice(k, "every entry of keys", tuple(ALTERNATIVES)) for k in checks.sequence(keys, "keys")]
    build = {"none": dict(norm="none"), "pre_ln": dict(norm="layer"), "pre_rms": dict(norm="rms"),
             "dyt": dict(norm="dyt"), "rezero": dict(norm="none", branch_scale=0.0), "deepnorm": dict(init="deepnorm")}
    shape = (checks.positive_int(batch, "batch"), checks.positive_int(n_tokens, "n_tokens"), d_model)
    x = draws.randn(shape, draws.data_generator(checks.seed(seed)), torch.float32)  # (B, T, d)
    profiles, stream = {}, {}
    for k in chosen:
        stack = TransformerStack(depth, d_model, n_heads, seed=seed, **build[k])
        profiles[k] = depth_profile(k, _(ALTERNATIVES[k]), _ROLES[k], layer_grad_norms(stack, x))
        stream[k] = np.r_[x.norm(dim=-1).mean().item(), layer_stats(stack, x).norm]
    return Placements(profiles=profiles, stream=stream)


@single_threaded
def norm_jacobian_scale(scales: Sequence[float] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0), d: int = 64,
                        seed: int = 0) -> CurveSet:
    """σ_max of a norm's Jacobian at x = c·z against the scale c: LayerNorm, RMSNorm (theory √d/‖x‖), DyT.

    RMS: ∂y/∂x = (√d/‖x‖)(I − x xᵀ/‖x‖²) (ε → 0); DyT: diag(α(1 − tanh²(α x))), ≤ α = 0.5 at init.

    Args:
        scales: c > 0, (S,); d: width; seed: the direction z ~ N(0, I_d).
    """
    cs = checks.float_list(scales, "scales", positive=True)
    z = draws.randn((1, checks.positive_int(d, "d")), draws.data_generator(checks.seed(seed)), torch.float64)
    out = []
    for k, cls, role in (("layer", LayerNorm, "norm"), ("rms", RMSNorm, "series"), ("dyt", DyT, "baseline")):
        sv = [jacobian_top_singular_values(cls(d, dtype=torch.float64), c * z, k=1).singular_values[0] for c in cs]
        theory = [np.sqrt(d) / (c * z.norm().item()) for c in cs] if k == "rms" else None
        out.append(curve(k, cls.__name__, role, cs, sv, theory=theory))
    return CurveSet(tuple(out))


@dataclass(frozen=True)
class OptimizerStep:
    """One optimizer step on a vanishing sigmoid MLP: what moves, and how much of it reaches the output."""

    grad_ratio: float  # ‖∇W_1‖ / ‖∇W_L‖
    update_ratio: dict[str, float]  # "sgd"/"adam" -> ‖ΔW_1‖ / ‖ΔW_L‖
    output_change: dict[str, float]  # "first"/"last" -> ‖Δy‖ when ONLY layer 1 / layer L takes Adam's step


@single_threaded
def optimizer_first_step(depth: int = 6, width: int = 64, lr: float = 1e-3, batch: int = 32,
                         seed: int = 0) -> OptimizerStep:
    """Adam's first step is lr·m̂/(√v̂ + ε) = lr·sign(g): every layer moves by lr per weight, however small g.

    Yet y depends on W_1 through the same vanishing product: ‖Δy‖ from layer 1's step stays tiny.

    Args:
        depth, width: DeepMLP(width, depth), sigmoid, old init (Chapter 1's worst vanishing network);
        lr: both optimizers' learning rate; batch: x ~ N(0, 1), (batch, width); seed: weights and inputs.
    """
    lr = checks.finite(lr, "lr", positive=True)
    model = DeepMLP(width, depth, activation="sigmoid", init="old", seed=seed)
    x = draws.randn((checks.positive_int(batch, "batch"), width), draws.data_generator(seed), torch.float32)
    grads = param_grad_norms(model, x, {"1": model.layers[0].linear.weight, "L": model.layers[-1].linear.weight}).norms
    updates, steps, change = {}, {}, {}
    for name, opt_class in (("sgd", torch.optim.SGD), ("adam", torch.optim.Adam)):
        moved = copy.deepcopy(model)
        before = [p.detach().clone() for p in moved.parameters()]
        opt = opt_class(moved.parameters(), lr=lr)
        projection_loss(moved(x)).backward()
        opt.step()
        steps[name] = [p.detach() - b for p, b in zip(moved.parameters(), before)]  # ΔW per layer
        updates[name] = float(steps[name][0].norm() / steps[name][-1].norm())
    y = model(x).detach()
    for name, i in (("first", 0), ("last", depth - 1)):
        one = copy.deepcopy(model)
        with torch.no_grad():
            one.layers[i].linear.weight += steps["adam"][i]
            change[name] = float((one(x) - y).norm())
    return OptimizerStep(grad_ratio=float(grads[0] / grads[1]), update_ratio=updates, output_change=change)


@single_threaded
def weight_growth(scales: Sequence[float] = (1.0, 4.0, 16.0), variants: Sequence[str] = ("pre_ln", "peri_ln",
                  "output_ln"), depth: int = 24, d: int = 32, seed: int = 0) -> CurveSet:
    """The stream's growth ‖x_L‖/‖x_0‖ when every branch weight is multiplied by s (weights that grew in training).

    pre_ln adds f(N(x)) ∝ s² (W₂ ReLU(W₁ ·) is 2-homogeneous in the weights); peri_ln / output_ln add N(·): s-free.

    Args:
        scales: s > 0, (S,); variants: keys of VARIANTS; depth, d: the stacks; seed: weights and inputs.
    """
    ss = checks.float_list(scales, "scales", positive=True)
    grown = {s: placements(variants, depth=depth, d=d, weight_gain=s, seed=seed).growth for s in ss}
    return CurveSet(tuple(curve(v, _(_UNIT_SHORT[v]), _ROLES.get(v, "series"), ss,
                                [grown[s][v] for s in ss]) for v in grown[ss[0]]))


@single_threaded
def train_placements(variants: Sequence[str] = TRAINED, depth: int = 16, d: int = 32, steps: int = 40,
                     lr: float = 3e-3, seed: int = 0) -> CurveSet:
    """Train each placement briefly (Adam, no warm-up) on a 10-way linear-teacher task; the loss at every step.

    model: ResidualVariantStack(depth, d, variant, n_out=10); task: tasks.TeacherTask(d, 10, batch 64); chance ln 10.

    Args:
        variants: keys of VARIANTS; depth, d: the stacks; steps, lr: the run; seed: model, teacher and batches.
    """
    keys = [checks.choice(v, "every entry of variants", tuple(VARIANTS)) for v in checks.sequence(variants, "variants")]
    steps, out = checks.positive_int(steps, "steps"), []
    for v in keys:
        model, task = ResidualVariantStack(depth, d, v, n_out=10, seed=seed), TeacherTask(d, 10, batch=64, seed=seed)
        hist = train(model, task, steps=steps, optimizer="adam", lr=lr, record_every=steps, layers=model.layers,
                     seed=seed)
        out.append(curve(v, _(_UNIT_LABELS[v]), _ROLES.get(v, "series"), np.arange(steps), hist.loss))
    return CurveSet(tuple(out))


# ------------------------------------------------------------------------------ the chapter's headline
LEAK_MIN = 0.05  # batch / position statistics: ‖∂y_0/∂x_last‖ > this (seeds 0-2: 0.22 to 0.57)
GROWTH_RATIO = 2.0  # ReLU-before-add's stream over full pre-activation's (seeds 0-2: 3.3 to 3.6)
PINNED = 1.1  # Post-LN / norm-after-add: ‖x_L‖ within this factor of ‖x_1‖ (seeds 0-2: 0.96 to 1.00)
NO_NORM_MIN = 5.0  # no norm, 32 blocks: gradient first/last and stream growth above this (seeds 0-2: ≥ 9.9)
TAMED_MAX = 3.0  # Pre-LN, Pre-RMS, DyT, DeepNorm: first/last and growth below this (seeds 0-2: ≤ 2.4)
REZERO_TOL = 1e-6  # ReZero α = 0: profile flat and growth 1 to this (measured: exact)
RMS_RTOL = 1e-3  # RMSNorm σ_max = √d/‖x‖ to this (ε = 1e-6; measured ≤ 1e-4)
SGD_MAX, ADAM_MIN, REACH_MAX = 1e-3, 0.9, 1e-3  # SGD ΔW_1/ΔW_L (9e-5); Adam's (0.999); ‖Δy‖ first/last (4e-5)
TRAIN_GAP = 0.4  # after train_placements' 40 steps, Post-LN's loss minus Pre-LN's above this (seeds 0-2: 0.63-0.81)
S2_MIN, PINNED_RTOL = 100.0, 1e-3  # Pre-LN growth s=16 over s=1 (seeds 0-2: 248 to 256); Peri/Output-LN


@single_threaded
def facts(seed: int) -> dict[str, bool]:
    """The chapter's headline re-measured at its settings for one seed: {checked sentence: holds?}."""
    leak = causal_leak(seed=seed).leak  # checks seed
    pl = placements(("relu_before_add", "full_pre", "post_ln", "norm_after_add"), seed=seed)
    pinned = [pl.stream[k][-1] / pl.stream[k][1] for k in ("post_ln", "norm_after_add")]  # ‖x_L‖ / ‖x_1‖
    alt = deep_alternatives(seed=seed)
    jac = norm_jacobian_scale(seed=seed)
    opt = optimizer_first_step(seed=seed)
    grown = weight_growth(scales=(1.0, 16.0), seed=seed)
    trained = train_placements(variants=("post_ln", "pre_ln"), seed=seed)
    end = {c.key: float(np.mean(c.y[-10:])) for c in trained}  # NaN after a divergence: every check fails
    tamed = ("pre_ln", "pre_rms", "dyt", "deepnorm")
    return {
        "LayerNorm, RMSNorm, per-token GroupNorm, DyT: no leak from the last token (exactly 0)": all(
            leak[k] == 0.0 for k in ("layer", "rms", "group", "dyt")),
        f"BatchNorm, GroupNorm and InstanceNorm over positions leak (> {LEAK_MIN:g})": all(
            leak[k] > LEAK_MIN for k in ("batch", "group_positions", "instance")),
        f"ReLU before the add: stream grows > {GROWTH_RATIO:g}x more than full pre-activation": bool(
            pl.growth["relu_before_add"] > GROWTH_RATIO * pl.growth["full_pre"]),
        f"a norm on the stream (Post-LN, norm after add) pins it (x{PINNED:g})": all(
            1 / PINNED < r < PINNED for r in pinned),
        f"no norm, 32 blocks: gradient first/last and stream grow > {NO_NORM_MIN:g}x": bool(
            alt.profiles["none"].ratio > NO_NORM_MIN and alt.growth["none"] > NO_NORM_MIN),
        f"Pre-LN, Pre-RMSNorm, DyT, DeepNorm keep both < {TAMED_MAX:g}x": all(
            alt.profiles[k].ratio < TAMED_MAX and alt.growth[k] < TAMED_MAX for k in tamed),
        "ReZero at alpha = 0: flat gradient, stream unchanged": bool(
            abs(alt.profiles["rezero"].ratio - 1) < REZERO_TOL and abs(alt.growth["rezero"] - 1) < REZERO_TOL),
        f"RMSNorm's sigma_max = sqrt(d)/|x| (to {RMS_RTOL:g})": bool(
            np.allclose(jac["rms"].y, jac["rms"].theory, rtol=RMS_RTOL)),
        "DyT's sigma_max <= alpha at every input scale": bool(np.all(jac["dyt"].y <= 0.5 + 1e-12)),
        f"SGD moves the vanished layer < {SGD_MAX:g}x the last": opt.update_ratio["sgd"] < SGD_MAX,
        f"Adam moves it > {ADAM_MIN:g}x the last": opt.update_ratio["adam"] > ADAM_MIN,
        f"... but its move reaches the output < {REACH_MAX:g}x as much": bool(
            opt.output_change["first"] < REACH_MAX * opt.output_change["last"]),
        f"40 Adam steps, 16 blocks: Pre-LN's loss below Post-LN's by > {TRAIN_GAP:g}": bool(
            end["post_ln"] - end["pre_ln"] > TRAIN_GAP),
        f"weights x16: Pre-LN's stream grows > {S2_MIN:g}x more": bool(
            grown["pre_ln"].y[-1] > S2_MIN * grown["pre_ln"].y[0]),
        f"weights x16: Peri-LN, Output-LN streams unchanged (to {PINNED_RTOL:g})": all(
            bool(np.allclose(grown[k].y, grown[k].y[0], rtol=PINNED_RTOL)) for k in ("peri_ln", "output_ln")),
    }

