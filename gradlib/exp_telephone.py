"""Chapter 1's experiments — the telephone game: products of Jacobians vanish or explode.

    mlp_gradients      ∂ℓ/∂h_l = (∏_{m>l} J_m)ᵀ ∂ℓ/∂h_L, J_m = diag(φ′) W_m: a deep MLP, per init and activation
    chapter_profiles   the chapter's named MLPs (CONFIGS), one DepthProfile each
    gain_sweep         W ~ N(0, σ²/n): the gradient's layer 1/L and the signal's layer L/1 against σ
    nn_linear_default  nn.Linear's own draw: max |W| ≤ 1/√n_in, Var W = 1/(3 n_in)
    facts              the chapter's headline, re-measured for one seed, as checked sentences (RNNs included:
                       the same product along time lives in gradlib.exp_rnn)

Each function builds its model from gradlib's layer-1 modules (which validate their own arguments), measures
through gradlib.probes / gradlib.jacobians, and returns a result of gradlib.results. Inputs come from the data
stream of ``seed`` (gradlib.draws), never from torch's global RNG; the same arguments give the same numbers.
An explosion is a result (inf in the arrays, ``exploded_at``), never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from gradlib import checks, draws
from gradlib.i18n import N_, _, language
from gradlib.mlp import DeepMLP
from gradlib.probes import layer_grad_norms, layer_stats
from gradlib.exp_rnn import rnn_gradients, rnn_saturation
from gradlib.results import ROLES, CurveSet, DepthProfile, curve
from gradlib.threads import single_threaded

__all__ = ["GainSweep", "LinearDefault", "CONFIGS", "DEPTH", "WIDTH", "TANH_GAIN", "depth_profile", "mlp_label",
           "mlp_gradients", "chapter_profiles", "gain_sweep", "nn_linear_default", "facts"]

Device = Union[str, torch.device]

DEPTH, WIDTH = 10, 256  # the chapter's MLP
TANH_GAIN = 5.0 / 3.0  # nn.init.calculate_gain("tanh"): Xavier's std times 5/3
CONFIGS = {  # the chapter's MLPs: name -> mlp_gradients keywords
    "old": dict(activation="tanh", init="old"), "xavier": dict(activation="tanh", init="xavier"),
    "sigmoid": dict(activation="sigmoid", init="old"), "large": dict(activation="tanh", weight_scale=4.0),
    "relu_old": dict(activation="relu", init="old"), "relu_xavier": dict(activation="relu", init="xavier"),
    "relu_he": dict(activation="relu", init="he"),
    "tanh_gain": dict(activation="tanh", weight_scale=TANH_GAIN, label=N_("tanh, xavier × 5/3")),
}
# The thresholds of facts(); seeds 0–2 measured what the comments say (tests/test_exp_telephone.py).
VANISH_BELOW, KEEP_ABOVE = 0.05, 0.1  # first/last: old-init tanh 6.3e-3–6.6e-3, ReLU 3e-4; Xavier tanh 0.39–0.40
SIGMOID_FACTOR = 1e-3  # sigmoid / old-init tanh ≈ 3.5e-6
EXPLODE_ABOVE = 10.0  # weight scale 4: 47
RNN_RTOL = 1e-9  # linear RNN against ρ^(T−t): 4e-15
RELU_XAVIER_BELOW = 0.15  # Xavier ReLU 0.043–0.048 ≈ (1/√2)^9
HE_FLAT = (0.5, 2.0)  # He ReLU 1.01–1.07
SIGNAL_KEPT_ABOVE = 0.7  # layer-L/layer-1 std at gain 5/3: ≈ 0.84 (Xavier's normal form: ≈ 0.36)
SATURATED_BELOW = 0.2  # saturated fraction, tanh RNN at ρ = 1.1: 0.07–0.08 averaged over the sequence
RNN_TANH_BELOW = 1e-2  # tanh RNN at ρ = 1.1, ‖∂h_T/∂h_0‖ over 50 steps: 2e-5–1.2e-4


def depth_profile(key: str, label: str, role: str, grads) -> DepthProfile:
    """A DepthProfile from probes.layer_grad_norms' result (layers numbered 1..L from the input side)."""
    norms = np.asarray(grads.output_grad_norms, dtype=np.float64)
    return DepthProfile(key=key, label=label, role=role, layer=np.arange(1, len(norms) + 1), grad_norms=norms,
                        param_norms=np.asarray(grads.param_norms, dtype=np.float64),
                        exploded_at=grads.exploded_at)


# mlp_label's words for gradlib.mlp's INITS and gradlib.norms' NORM_KINDS (another name: "{init} init", "{norm} norm")
_INIT_LABELS = {"old": N_("old init"), "xavier": N_("xavier init"), "he": N_("he init")}
_NORM_LABELS = {"layer": N_("layer norm"), "rms": N_("rms norm"), "batch": N_("batch norm"), "dyt": N_("dyt norm")}


def mlp_label(activation: str, init: str, weight_scale: Optional[float] = None, residual: bool = False,
              norm: str = "none", branch_scale: float = 1.0) -> str:
    """'tanh, old init', 'relu, he init, residual', 'tanh, weight scale 4', ... (what a legend shows)."""
    if weight_scale is not None:
        parts = [activation, _("weight scale {scale}").format(scale=f"{weight_scale:g}")]
    else:
        parts = [activation, _(_INIT_LABELS[init]) if init in _INIT_LABELS else _("{init} init").format(init=init)]
    if residual:
        parts.append(_("residual") if branch_scale == 1.0 else
                     _("residual, α = {alpha}").format(alpha=f"{branch_scale:g}"))
    if norm != "none":
        parts.append(_(_NORM_LABELS[norm]) if norm in _NORM_LABELS else _("{norm} norm").format(norm=norm))
    return _(", ").join(parts)  # the list separator: "，" in Chinese


def _mlp_role(activation: str, init: str, weight_scale: Optional[float], residual: bool, norm: str) -> str:
    if residual:
        return "residual"
    if norm != "none":
        return "norm"
    if weight_scale is None and (init == "old" or activation == "sigmoid"):
        return "baseline"  # the inits and activations of the telephone game's failures
    return "series"


@single_threaded
def mlp_gradients(depth: int = 10, width: int = 256, activation: str = "tanh", init: str = "old",
                  weight_scale: Optional[float] = None, residual: bool = False, branch_scale: float = 1.0,
                  norm: str = "none", batch: int = 64, seed: int = 0, device: Device = "cpu",
                  dtype: torch.dtype = torch.float32, key: Optional[str] = None, label: Optional[str] = None,
                  role: Optional[str] = None) -> DepthProfile:
    """Gradient norm at every layer of a deep MLP, for one init / activation / architecture.

    ∂ℓ/∂h_l = (∏_{m>l} J_m)ᵀ ∂ℓ/∂h_L, J_m = diag(φ′) W_m (plain) or I + α·diag(φ′) W_m (residual).

    Args:
        depth, width, activation, init, weight_scale, residual, branch_scale, norm: the model, as in
            gradlib.mlp.DeepMLP (which checks them): "old" init is U[±1/√n] (n·Var W = 1/3, nn.Linear's
            default), weight_scale σ overrides init with W ~ N(0, σ²/n).
        batch: inputs x ~ N(0, 1), shape (batch, width), from the data stream of `seed`.
        seed: seeds the init and (on a separate stream) the inputs; device, dtype: where, in what precision.
        key, label, role: how the profile is named and drawn (defaults from the arguments; role in ROLES).
    """
    device = checks.device(device)
    model = DeepMLP(width, depth, activation=activation, init=init, weight_scale=weight_scale, residual=residual,
                    branch_scale=branch_scale, norm=norm, seed=seed, dtype=dtype, device=device)
    batch = checks.positive_int(batch, "batch")
    x = draws.randn((batch, model.width), draws.data_generator(seed), dtype, device)  # (B, n)
    if label is None:
        if key is None:
            with language("en"):  # a key is never translated: the English label
                key = mlp_label(activation, init, weight_scale, residual, norm, branch_scale)
        label = mlp_label(activation, init, weight_scale, residual, norm, branch_scale)
    role = role if role is not None else _mlp_role(activation, init, weight_scale, residual, norm)
    checks.choice(role, "role", ROLES)
    return depth_profile(key if key is not None else label, label, role, layer_grad_norms(model, x))


@single_threaded
def chapter_profiles(seed: int = 0, names: Optional[Sequence[str]] = None, depth: int = DEPTH,
                     width: int = WIDTH) -> dict[str, DepthProfile]:
    """The chapter's MLPs (CONFIGS; all by default) measured by mlp_gradients: name -> DepthProfile (key name)."""
    names = list(CONFIGS) if names is None else checks.sequence(names, "names")
    for name in names:
        checks.choice(name, "names", tuple(CONFIGS))
    return {n: mlp_gradients(depth=depth, width=width, seed=seed, key=n,  # a label in CONFIGS: N_-marked
                             **{k: _(v) if k == "label" else v for k, v in CONFIGS[n].items()}) for n in names}


@dataclass(frozen=True)
class GainSweep(CurveSet):
    """What survives a tanh MLP with W ~ N(0, σ²/n), against σ: curves "gradient", "signal" and "flat" (= 1)."""

    gains: np.ndarray  # (G,) σ, increasing

    @property
    def flat_gain(self) -> float:
        """σ where the gradient's first/last crosses 1 (log-linear between sweep points); NaN if it does not."""
        y, g = np.log(self["gradient"].y), self.gains
        up = np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0))  # the first step from below 1 to 1 or above
        i = up[0] if len(up) else None
        return np.nan if i is None else float(g[i] - y[i] * (g[i + 1] - g[i]) / (y[i + 1] - y[i]))


@single_threaded
def gain_sweep(gains: Sequence[float] = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5, TANH_GAIN), depth: int = DEPTH,
               width: int = WIDTH, activation: str = "tanh", batch: int = 64, seed: int = 0) -> GainSweep:
    """The gradient's first/last and the signal's last/first through a deep MLP, per weight scale σ (the gain).

    gradient: ‖∂ℓ/∂h_1‖ / ‖∂ℓ/∂h_L‖ (probes.layer_grad_norms);  signal: std(h_L) / std(h_1) (probes.layer_stats).

    Args:
        gains: σ > 0, increasing, (G,): W ~ N(0, σ²/n), Xavier's normal form (σ = 1) times the gain.
        depth, width, activation, batch, seed: as in mlp_gradients (the same weights, rescaled, at every σ).
    """
    sigmas = checks.float_list(gains, "gains", positive=True)
    if any(b <= a for a, b in zip(sigmas, sigmas[1:])):
        raise ValueError(f"gains must be increasing; got {gains!r}")
    x = draws.randn((checks.positive_int(batch, "batch"), checks.positive_int(width, "width")),
                    draws.data_generator(checks.seed(seed)), torch.float32)  # (B, n)
    grad, signal = [], []  # (G,) each
    for model in (DeepMLP(width, depth, activation=activation, weight_scale=sg, seed=seed) for sg in sigmas):
        grad.append(layer_grad_norms(model, x).ratio())
        std = layer_stats(model, x).std  # (L,)
        signal.append(std[-1] / std[0])
    return GainSweep(curves=(curve("gradient", _("gradient, layer 1 / layer L"), "series", sigmas, grad),
                             curve("signal", _("signal std, layer L / layer 1"), "series", sigmas, signal),
                             curve("flat", _("kept (= 1)"), "reference", sigmas, np.ones(len(sigmas)))),
                     gains=np.asarray(sigmas))


@dataclass(frozen=True)
class LinearDefault:
    """nn.Linear's default weights as drawn: largest |entry| and variance, against U[±1/√n_in]."""

    fan_in: int
    bound: float  # 1/√n_in, the bound of U[±1/√n_in]
    max_abs: float  # max |W_ij|
    variance: float  # Var W over all entries
    theory_variance: float  # Var of U[±b] = b²/3 = 1/(3 n_in)


@single_threaded
def nn_linear_default(fan_in: int = WIDTH, fan_out: int = WIDTH, seed: int = 0) -> LinearDefault:
    """Draw nn.Linear(fan_in, fan_out) with PyTorch's own init and measure its weights.

    kaiming_uniform_(a = √5): bound = gain·√(3/n_in), gain = √(2/(1 + a²)) = 1/√3  ⇒  W ~ U[±1/√n_in].

    Args:
        fan_in, fan_out: the layer's sizes; W is (fan_out, fan_in).
        seed: torch's global RNG is seeded inside torch.random.fork_rng, so it is restored afterwards.
    """
    fan_in, fan_out = checks.positive_int(fan_in, "fan_in"), checks.positive_int(fan_out, "fan_out")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(checks.seed(seed))
        w = nn.Linear(fan_in, fan_out, dtype=torch.float64).weight.detach()  # (fan_out, fan_in)
    return LinearDefault(fan_in=fan_in, bound=fan_in**-0.5, max_abs=float(w.abs().max()),
                         variance=float(w.var(correction=0)), theory_variance=1 / (3 * fan_in))


@single_threaded
def facts(seed: int) -> dict[str, bool]:
    """The chapter's headline re-measured for one seed at the chapter's settings: checked sentence -> holds."""
    profiles, gains = chapter_profiles(seed), gain_sweep((1.0, TANH_GAIN), seed=seed)
    r = {name: p.ratio for name, p in profiles.items()}
    linear, sat, default = rnn_gradients(seed=seed), rnn_saturation((1.1,), seed=seed), nn_linear_default(seed=seed)
    tanh = rnn_gradients(radii=(1.1,), activation="tanh", seed=seed)
    lo, hi = HE_FLAT
    checked = {
        f"old-init tanh vanishes (first/last < {VANISH_BELOW:g})": r["old"] < VANISH_BELOW,
        f"Xavier tanh keeps it (first/last > {KEEP_ABOVE:g})": r["xavier"] > KEEP_ABOVE,
        f"sigmoid: below {SIGMOID_FACTOR:g} x old-init tanh": r["sigmoid"] < SIGMOID_FACTOR * r["old"],
        f"large weights explode (first/last > {EXPLODE_ABOVE:g})": r["large"] > EXPLODE_ABOVE,
        "... and return finite numbers": bool(np.isfinite(profiles["large"].grad_norms).all()),
        f"old-init ReLU vanishes (first/last < {VANISH_BELOW:g})": r["relu_old"] < VANISH_BELOW,
        f"Xavier ReLU still fades (first/last < {RELU_XAVIER_BELOW:g})": r["relu_xavier"] < RELU_XAVIER_BELOW,
        f"He keeps ReLU flat ({lo:g} < first/last < {hi:g})": lo < r["relu_he"] < hi,
        f"gain 5/3 keeps the tanh signal (std L/1 > {SIGNAL_KEPT_ABOVE:g}; sigma = 1 below)":
            gains["signal"].y[1] > SIGNAL_KEPT_ABOVE > gains["signal"].y[0],
        "gain 5/3 overshoots: the tanh gradient grows (first/last > 1)": r["tanh_gain"] > 1.0,
        "nn.Linear's default: max|W| <= 1/sqrt(n)": default.max_abs <= default.bound,
        "nn.Linear's default: n Var W = 1/3 (within 5%)":
            abs(default.variance / default.theory_variance - 1) < 0.05,
        f"linear RNN = rho^(T-t) (rtol {RNN_RTOL:g})":
            bool(np.allclose(linear.norms, linear.theory, rtol=RNN_RTOL, atol=0)),
        f"tanh RNN, rho = 1.1, vanishes (< {RNN_TANH_BELOW:g} over 50 steps)":
            tanh.norms[0, -1] < RNN_TANH_BELOW,
        f"... with under {SATURATED_BELOW:.0%} of its units saturated": sat.saturated.mean() < SATURATED_BELOW,
        "... because one step's gain rho * rms tanh' < 1": sat.step_gain[0] < 1.0,
    }
    return {fact: bool(holds) for fact, holds in checked.items()}  # numpy bools -> bool
