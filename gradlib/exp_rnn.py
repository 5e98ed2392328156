"""Chapter 1's recurrent experiments — the telephone game along time: ∂h_T/∂h_t is a product of T − t Jacobians.

    rnn_gradients      ‖∂h_T/∂h_t‖₂ = ρ^(T−t) for a linear RNN with W = ρ·Q: the same product along time
    rnn_saturation     a tanh RNN's saturated units and per-step gain ρ·rms tanh′(a_t) along the sequence

Both build gradlib.rnn.VanillaRNN with recurrent matrix ρ·(orthogonal) and feed it inputs from the data stream of
``seed`` (gradlib.draws): the same inputs for every ρ, never torch's global RNG. The chapter's thresholds live in
gradlib.exp_telephone (its ``facts``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch

from gradlib import checks, draws
from gradlib.jacobians import grad_through_time
from gradlib.results import CurveSet, curve
from gradlib.rnn import VanillaRNN
from gradlib.threads import single_threaded

__all__ = ["RNNGradients", "RNNSaturation", "SATURATED_AT", "rnn_gradients", "rnn_saturation"]

Device = Union[str, torch.device]

SATURATED_AT = 0.9  # a tanh unit is saturated when |tanh(a)| > 0.9, i.e. tanh′(a) < 0.19


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


def _rnn_inputs(radii: object, T: object, d_hidden: object, input_scale: object, seed: object, dtype: object,
                device: torch.device) -> tuple[list[float], torch.Tensor]:
    """The checked radii, and inputs input_scale · N(0, 1), (1, T, d_hidden), from the seed's data stream."""
    rhos = checks.float_list(radii, "radii", nonnegative=True)
    T = checks.positive_int(T, "T")
    input_scale = checks.finite(input_scale, "input_scale", nonnegative=True)
    d_hidden = checks.positive_int(d_hidden, "d_hidden")
    if len({f"{rho:g}" for rho in rhos}) != len(rhos):  # the curves' keys "rho=0.9" must be distinct
        raise ValueError(f"radii must be distinct (to 6 significant digits); got {radii!r}")
    checks.floating_dtype(dtype)  # before the inputs are drawn in it
    x = draws.randn((1, T, d_hidden), draws.data_generator(checks.seed(seed)), dtype, device)  # (1, T, d)
    return rhos, input_scale * x


@single_threaded
def rnn_gradients(radii: Sequence[float] = (0.9, 1.0, 1.1), T: int = 50, d_hidden: int = 32,
                  activation: str = "identity", input_scale: float = 1.0, seed: int = 0, device: Device = "cpu",
                  dtype: torch.dtype = torch.float64) -> RNNGradients:
    """‖∂h_T/∂h_t‖₂ through time of a vanilla RNN whose recurrent matrix is ρ·(orthogonal), per ρ.

    ∂h_T/∂h_t = ∏_{s=t+1}^{T} diag(φ′(a_s)) W_hh, so with φ = identity ‖∂h_T/∂h_t‖₂ = ρ^(T−t) exactly.

    Args:
        radii, T: spectral radii ρ ≥ 0 to compare, (R,); the sequence length.
        d_hidden, activation: the RNN, as in gradlib.rnn.VanillaRNN ("identity" or "tanh").
        input_scale: inputs are input_scale · N(0, 1), shape (1, T, d_hidden); larger saturates tanh.
        seed: seeds the recurrent matrices and (separately) the inputs: the same inputs for every ρ.
        device, dtype: float64 by default because ρ^T spans many decades.
    """
    device = checks.device(device)
    rhos, x = _rnn_inputs(radii, T, d_hidden, input_scale, seed, dtype, device)  # x: (1, T, d)
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


@dataclass(frozen=True)
class RNNSaturation(CurveSet):
    """A tanh RNN along its sequence, per ρ: curves of the per-step gain ρ·rms_i tanh′(a_t,i) against t."""

    radii: np.ndarray  # (R,)
    threshold: float  # a unit is saturated when |h_t,i| = |tanh(a_t,i)| > threshold
    saturated: np.ndarray  # (R, T) fraction of the units that are saturated at step t
    mean_slope: np.ndarray  # (R, T) mean_i tanh′(a_t,i)

    @property
    def step_gain(self) -> np.ndarray:
        """(R,) the geometric mean over t of ρ·rms tanh′(a_t): the typical factor one step multiplies in."""
        with np.errstate(divide="ignore"):
            return np.exp(np.mean(np.log(np.stack([c.y for c in self.curves])), axis=1))


@single_threaded
def rnn_saturation(radii: Sequence[float] = (0.9, 1.0, 1.1), T: int = 50, d_hidden: int = 32,
                   input_scale: float = 1.0, threshold: float = SATURATED_AT, seed: int = 0,
                   dtype: torch.dtype = torch.float64) -> RNNSaturation:
    """How saturated a tanh RNN's units are at every step, and what that does to one step's gain.

    h_t = tanh(a_t) ⇒ tanh′(a_t) = 1 − h_t²; a step D_t W (W = ρQ) scales a random vector by ≈ ρ·rms_i tanh′(a_t,i).

    Args:
        radii, T, d_hidden, input_scale, seed, dtype: as in rnn_gradients (the same RNNs, the same inputs).
        threshold: in (0, 1); a unit counts as saturated when |h_t,i| > threshold.
    """
    if checks.finite(threshold, "threshold", positive=True) >= 1:
        raise ValueError(f"threshold must be below 1 (|tanh| < 1); got {threshold!r}")
    rhos, x = _rnn_inputs(radii, T, d_hidden, input_scale, seed, dtype, torch.device("cpu"))  # x: (1, T, d)
    curves, saturated, mean_slope = [], [], []
    for rho in rhos:
        rnn = VanillaRNN(d_hidden, d_hidden, activation="tanh", spectral_radius=rho, seed=seed, dtype=dtype)
        with torch.no_grad():
            h = rnn(x)[0].to(torch.float64)  # (T, d)   h_1 … h_T
        slope = 1 - h**2  # (T, d)   tanh′(a_t)
        saturated.append((h.abs() > threshold).double().mean(dim=1).numpy())
        mean_slope.append(slope.mean(dim=1).numpy())
        gain = rho * slope.pow(2).mean(dim=1).sqrt().numpy()  # (T,)
        curves.append(curve(f"rho={rho:g}", f"ρ = {rho:g}", "series", np.arange(1, len(gain) + 1), gain))
    return RNNSaturation(curves=tuple(curves), radii=np.asarray(rhos), threshold=float(threshold),
                         saturated=np.stack(saturated), mean_slope=np.stack(mean_slope))
