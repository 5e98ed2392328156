"""A vanilla recurrent network: the long path that attention and residuals shorten.

    h_t = act(W_hh h_{t−1} + W_xh x_t + b)         act = tanh or identity
    ∂h_T/∂h_t = Π_{s=t+1..T} diag(act′_s) W_hh       one factor of W_hh per step between t and T

With the identity activation and W_hh = ρ·Q (Q orthogonal, so every singular value of W_hh is ρ) the product
is ρ^(T−t)·(orthogonal), hence ‖∂h_T/∂h_t‖₂ = ρ^(T−t) exactly: it vanishes for ρ < 1, explodes for ρ > 1
(Pascanu, Mikolov & Bengio 2013). With tanh, |tanh′| ≤ 1 only shrinks each factor further.

Every random number comes from a local generator seeded by ``seed`` (:mod:`gradlib.draws`), drawn in float64
and then cast, so the same seed gives the same weights in every dtype and the global RNG is never touched.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
from torch import Tensor, nn

from gradlib import checks, draws

RNN_ACTIVATIONS = ("tanh", "identity")

__all__ = ["RNN_ACTIVATIONS", "VanillaRNN", "orthogonal_with_radius"]


# ------------------------------------------------------------------------------------------------- weights
def orthogonal_with_radius(d: int, rho: float, *, seed: int = 0, dtype: torch.dtype = torch.float32) -> Tensor:
    """A random d×d matrix whose singular values (and eigenvalue moduli) all equal ρ.

    W = ρ·Q, QᵀQ = I  ⇒  WᵀW = ρ² I, ‖W^k‖₂ = ρ^k.

    Args:
        d: size of the square matrix.
        rho: the spectral radius ρ ≥ 0.
        seed: seed of the local generator that draws Q (QR of a Gaussian matrix, with the sign fix).
        dtype: of the result (computed in float64, then cast).
    Returns:
        (d, d)
    """
    checks.positive_int(d, "d")
    checks.finite(rho, "rho", nonnegative=True)
    checks.seed(seed)
    checks.floating_dtype(dtype)
    return draws.orthogonal(int(d), float(rho), draws.generator(seed)).to(dtype)


# -------------------------------------------------------------------------------------------------- module
class VanillaRNN(nn.Module):
    """Elman RNN, one matrix product per time step.

    h_t = act(W_hh h_{t−1} + W_xh x_t + b).

    Init: with ``spectral_radius`` ρ, W_hh = ρ·Q (Q random orthogonal, drawn first, so it equals
    ``orthogonal_with_radius(d_hidden, ρ, seed=seed)``); otherwise W_hh ~ U[±1/√d_hidden] as nn.RNN.
    W_xh and b ~ U[±1/√d_hidden] as nn.RNN.

    Args:
        d_hidden: width of the hidden state h, (B, d_hidden).
        d_input: width of the inputs x_t, (B, d_input); None = d_hidden.
        activation: "tanh" or "identity" (a linear RNN, where the gradient is exactly ρ^(T−t)).
        spectral_radius: ρ ≥ 0, or None for nn.RNN's uniform init.
        seed: seed of the local generator for all weights.
        dtype, device: of the parameters.

    Parameters: ``w_hh`` (d_hidden, d_hidden), ``w_xh`` (d_hidden, d_input), ``b`` (d_hidden,).
    """

    def __init__(
        self,
        d_hidden: int,
        d_input: Optional[int] = None,
        *,
        activation: str = "tanh",
        spectral_radius: Optional[float] = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
        device: Union[str, torch.device] = "cpu",
    ) -> None:
        checks.positive_int(d_hidden, "d_hidden")
        if d_input is not None:
            checks.positive_int(d_input, "d_input")
        checks.choice(activation, "activation", RNN_ACTIVATIONS)
        if spectral_radius is not None:
            checks.finite(spectral_radius, "spectral_radius", nonnegative=True)
        checks.seed(seed)
        checks.floating_dtype(dtype)
        super().__init__()
        self.d_hidden = int(d_hidden)
        self.d_input = self.d_hidden if d_input is None else int(d_input)
        self.activation = activation
        self.spectral_radius = None if spectral_radius is None else float(spectral_radius)
        self.act = nn.Tanh() if activation == "tanh" else nn.Identity()

        g = draws.generator(seed)  # one stream, in this order: W_hh, W_xh, b
        bound = 1.0 / math.sqrt(self.d_hidden)
        if self.spectral_radius is None:
            w_hh = draws.uniform((self.d_hidden, self.d_hidden), bound, g)
        else:
            w_hh = draws.orthogonal(self.d_hidden, self.spectral_radius, g)
        w_xh = draws.uniform((self.d_hidden, self.d_input), bound, g)
        b = draws.uniform((self.d_hidden,), bound, g)
        factory = {"dtype": dtype, "device": device}
        self.w_hh = nn.Parameter(w_hh.to(**factory))  # (d_h, d_h)
        self.w_xh = nn.Parameter(w_xh.to(**factory))  # (d_h, d_in)
        self.b = nn.Parameter(b.to(**factory))  # (d_h,)

    def step(self, h: Tensor, x_t: Optional[Tensor] = None) -> Tensor:
        """One time step.

        h_t = act(W_hh h_{t−1} + W_xh x_t + b)   (x_t = None: no input term).

        Args:
            h: previous hidden state h_{t−1}, (B, d_hidden).
            x_t: input at step t, (B, d_input), or None.
        Returns:
            h_t, (B, d_hidden)
        """
        drive = 0.0 if x_t is None else x_t @ self.w_xh.T  # (B, d_h)
        return self.act(h @ self.w_hh.T + drive + self.b)  # (B, d_h)

    def forward(self, x: Tensor, h0: Optional[Tensor] = None) -> Tensor:
        """Unroll over the sequence.

        h_t = act(W_hh h_{t−1} + W_xh x_t + b), t = 1..T, from h_0 (zeros by default).

        Args:
            x: inputs (B, T, d_input).
            h0: initial state (B, d_hidden), or None for zeros.
        Returns:
            all hidden states h_1..h_T, (B, T, d_hidden)
        """
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != self.d_input:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor of shape (B, T, d_input={self.d_input}); got {shape}")
        batch, steps = x.shape[0], x.shape[1]
        if h0 is None:
            h = torch.zeros(batch, self.d_hidden, dtype=self.w_hh.dtype, device=self.w_hh.device)  # (B, d_h)
        elif not isinstance(h0, Tensor) or tuple(h0.shape) != (batch, self.d_hidden):
            shape = tuple(h0.shape) if isinstance(h0, Tensor) else type(h0).__name__
            raise ValueError(f"h0 must be a tensor of shape (B={batch}, d_hidden={self.d_hidden}); got {shape}")
        else:
            h = h0
        if steps == 0:
            return h.new_zeros(batch, 0, self.d_hidden)  # (B, 0, d_h)
        states = []
        for t in range(steps):
            h = self.step(h, x[:, t])  # (B, d_h)
            states.append(h)
        return torch.stack(states, dim=1)  # (B, T, d_h)

    def extra_repr(self) -> str:
        return (
            f"d_hidden={self.d_hidden}, d_input={self.d_input}, activation={self.activation!r}, "
            f"spectral_radius={self.spectral_radius}"
        )
