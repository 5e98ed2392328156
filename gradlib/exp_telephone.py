"""Chapter 1's experiments — the telephone game: products of Jacobians vanish or explode.

    mlp_gradients   ∂ℓ/∂h_l = (∏_{m>l} J_m)ᵀ ∂ℓ/∂h_L, J_m = diag(φ′) W_m    a deep MLP, per init and activation
    rnn_gradients   ‖∂h_T/∂h_t‖₂ = ρ^(T−t) for a linear RNN with W = ρ·Q       the same product along time

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

from gradlib import checks, draws
from gradlib.jacobians import grad_through_time
from gradlib.mlp import DeepMLP
from gradlib.probes import layer_grad_norms
from gradlib.results import ROLES, Curve, CurveSet, DepthProfile, curve
from gradlib.rnn import VanillaRNN

__all__ = ["RNNGradients", "depth_profile", "mlp_label", "mlp_gradients", "rnn_gradients"]

Device = Union[str, torch.device]


def depth_profile(key: str, label: str, role: str, grads) -> DepthProfile:
    """A DepthProfile from probes.layer_grad_norms' result (layers numbered 1..L from the input side)."""
    norms = np.asarray(grads.output_grad_norms, dtype=np.float64)
    return DepthProfile(key=key, label=label, role=role, layer=np.arange(1, len(norms) + 1), grad_norms=norms,
                        param_norms=np.asarray(grads.param_norms, dtype=np.float64),
                        exploded_at=grads.exploded_at)


def mlp_label(activation: str, init: str, weight_scale: Optional[float] = None, residual: bool = False,
              norm: str = "none", branch_scale: float = 1.0) -> str:
    """'tanh, old init', 'relu, he init, residual', 'tanh, weight scale 4', ... (what a legend shows)."""
    parts = [activation, f"weight scale {weight_scale:g}" if weight_scale is not None else f"{init} init"]
    if residual:
        parts.append("residual" if branch_scale == 1.0 else f"residual, α = {branch_scale:g}")
    if norm != "none":
        parts.append(f"{norm} norm")
    return ", ".join(parts)


def _mlp_role(activation: str, init: str, weight_scale: Optional[float], residual: bool, norm: str) -> str:
    if residual:
        return "residual"
    if norm != "none":
        return "norm"
    if weight_scale is None and (init == "old" or activation == "sigmoid"):
        return "baseline"  # the inits and activations of the telephone game's failures
    return "series"


def mlp_gradients(
    depth: int = 10,
    width: int = 256,
    activation: str = "tanh",
    init: str = "old",
    weight_scale: Optional[float] = None,
    residual: bool = False,
    branch_scale: float = 1.0,
    norm: str = "none",
    batch: int = 64,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
    key: Optional[str] = None,
    label: Optional[str] = None,
    role: Optional[str] = None,
) -> DepthProfile:
    """Gradient norm at every layer of a deep MLP, for one init / activation / architecture.

    ∂ℓ/∂h_l = (∏_{m>l} J_m)ᵀ ∂ℓ/∂h_L, J_m = diag(φ′) W_m (plain) or I + α·diag(φ′) W_m (residual).

    Args:
        depth, width, activation, init, weight_scale, residual, branch_scale, norm: the model, as in
            gradlib.mlp.DeepMLP (which checks them): "old" init is U[±1/√n] (n·Var W = 1/3, nn.Linear's
            default), weight_scale σ overrides init with W ~ N(0, σ²/n).
        batch: inputs x ~ N(0, 1), shape (batch, width), from the data stream of `seed`.
        seed: seeds the init and (on a separate stream) the inputs.
        device, dtype: where and in what precision to run.
        key, label, role: how the profile is named and drawn (defaults from the arguments; role in ROLES).
    """
    device = checks.device(device)
    model = DeepMLP(width, depth, activation=activation, init=init, weight_scale=weight_scale, residual=residual,
                    branch_scale=branch_scale, norm=norm, seed=seed, dtype=dtype, device=device)
    batch = checks.positive_int(batch, "batch")
    x = draws.randn((batch, model.width), draws.data_generator(seed), dtype, device)  # (B, n)
    label = label if label is not None else mlp_label(activation, init, weight_scale, residual, norm, branch_scale)
    role = role if role is not None else _mlp_role(activation, init, weight_scale, residual, norm)
    checks.choice(role, "role", ROLES)
    return depth_profile(key if key is not None else label, label, role, layer_grad_norms(model, x))


@dataclass(frozen=True)
class RNNGradients(CurveSet):
    """‖∂h_T/∂h_t‖₂ against the distance T − t, one curve per spectral radius ρ, theory ρ^(T−t) on each."""

    radii: np.ndarray  # (R,)
    activation: str  # "identity": the theory is exact; "tanh": it is an upper bound

    @property
    def steps(self) -> np.ndarray:
        """(T,) the distances T − t, ascending (shared by every curve)."""
        return self.curves[0].x.astype(np.int64)

    @property
    def norms(self) -> np.ndarray:
        """(R, T) measured ‖∂h_T/∂h_t‖₂, one row per radius."""
        return np.stack([c.y for c in self.curves])

    @property
    def theory(self) -> np.ndarray:
        """(R, T) ρ^(T−t)."""
        return np.stack([c.theory for c in self.curves])


def rnn_gradients(
    radii: Sequence[float] = (0.9, 1.0, 1.1),
    T: int = 50,
    d_hidden: int = 32,
    activation: str = "identity",
    input_scale: float = 1.0,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> RNNGradients:
    """‖∂h_T/∂h_t‖₂ through time of a vanilla RNN whose recurrent matrix is ρ·(orthogonal), per ρ.

    ∂h_T/∂h_t = ∏_{s=t+1}^{T} diag(φ′(a_s)) W_hh, so with φ = identity ‖∂h_T/∂h_t‖₂ = ρ^(T−t) exactly.

    Args:
        radii: spectral radii ρ ≥ 0 to compare, (R,).
        T: sequence length.
        d_hidden, activation: the RNN, as in gradlib.rnn.VanillaRNN ("identity" or "tanh").
        input_scale: inputs are input_scale · N(0, 1), shape (1, T, d_hidden); larger saturates tanh.
        seed: seeds the recurrent matrices and (separately) the inputs: the same inputs for every ρ.
        device, dtype: float64 by default because ρ^T spans many decades.
    """
    rhos = checks.float_list(radii, "radii", nonnegative=True)
    T = checks.positive_int(T, "T")
    input_scale = checks.finite(input_scale, "input_scale", nonnegative=True)
    d_hidden = checks.positive_int(d_hidden, "d_hidden")
    if len({f"{rho:g}" for rho in rhos}) != len(rhos):  # the curves' keys "rho=0.9" must be distinct
        raise ValueError(f"radii must be distinct (to 6 significant digits); got {radii!r}")
    device = checks.device(device)
    checks.floating_dtype(dtype)  # before the inputs are drawn in it
    x = input_scale * draws.randn((1, T, d_hidden), draws.data_generator(checks.seed(seed)), dtype, device)  # (1, T, d)
    curves = []
    for rho in rhos:
        rnn = VanillaRNN(d_hidden, d_hidden, activation=activation, spectral_radius=rho, seed=seed, dtype=dtype,
                         device=device)
        through_time = grad_through_time(rnn, x)
        order = np.argsort(through_time.distance)  # T − t ascending
        distance = np.asarray(through_time.distance)[order].astype(np.float64)
        with np.errstate(over="ignore"):
            theory = rho ** distance
        curves.append(curve(f"rho={rho:g}", f"ρ = {rho:g}", "series", distance,
                            np.asarray(through_time.norms, dtype=np.float64)[order], theory=theory))
    return RNNGradients(curves=tuple(curves), radii=np.asarray(rhos), activation=activation)
