"""Jacobian probes: through time and between positions (the spectrum of J: gradlib.spectra).

    grad_through_time(rnn, x)          ‖∂h_T/∂h_t‖₂ for t = 0..T−1     (one batched backward)
    position_grad_norms(fn, x, j)      ‖∂y_j/∂x_i‖_F for every input i  (one batched backward)
    source_grad_norms(fn, x, s)        ‖∂y_j/∂x_s‖_F for every output j (d batched forward-mode passes)

For a recurrent net ∂h_T/∂h_t = ∏_{s=t+1..T} diag(act′(a_s)) W_hh: a product of T − t matrices, so its norm
shrinks or grows geometrically in the distance. Attention connects y_j to every x_i in one step.
The spectrum of a whole stack's Jacobian is in gradlib.spectra.

An exploding model is a result, not an error: inf/NaN comes back inside the result (``exploded_at``, NaN
singular values). A non-finite *input* is refused with ValueError: it would look exactly like an explosion.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Protocol

import numpy as np
import torch
from torch import Tensor

from gradlib import checks
from gradlib.discovery import read_output

__all__ = [
    "GradThroughTime", "grad_through_time", "PositionGrads", "position_grad_norms", "SourceGrads",
    "source_grad_norms", "output_of", "forward_mode_ready", "vmapped",
]  # fmt: skip


class SteppableRNN(Protocol):
    """What grad_through_time needs of a recurrent model (gradlib.rnn.VanillaRNN is one)."""

    d_hidden: int

    def step(self, h: Tensor, x_t: Tensor) -> Tensor: ...  # (B, d_hidden), (B, d_in) -> (B, d_hidden)


@dataclass
class GradThroughTime:
    """‖∂h_T/∂h_t‖₂ (spectral norm) for t = 0..T−1, where h_0 is the initial state and h_T the last."""

    steps: np.ndarray  # (T,) t = 0..T−1
    norms: np.ndarray  # (T,) ‖∂h_T/∂h_t‖₂
    exploded_at: Optional[int]  # first index of `steps` with an inf/NaN norm, else None

    @property
    def distance(self) -> np.ndarray:
        """T − t for every entry of `steps` (how many steps the gradient travelled back)."""
        return len(self.steps) - self.steps


@dataclass
class PositionGrads:
    """‖∂y_j/∂x_i‖_F for every input position i (entry i), against the distance |j − i| to the target j."""

    distance: np.ndarray  # (T,) |j − i|
    norms: np.ndarray  # (T,) ‖∂y_j/∂x_i‖_F


@dataclass
class SourceGrads:
    """‖∂y_j/∂x_s‖_F for every output position j and every sequence b, from one source position s."""

    distance: np.ndarray  # (T,) |j − s|
    norms: np.ndarray  # (N, T) ‖∂y_{b,j}/∂x_{b,s}‖_F, float64


def output_of(fn: Callable, like: Optional[Tensor] = None) -> Callable[[Tensor], Tensor]:
    """fn with its output reduced to one tensor (the first of a tuple/dict: (output, attention weights)).

    Given `like` (N, T, d), the output must be (N, T, d_out): one output per input position.
    """

    def f(inp: Tensor) -> Tensor:
        out = read_output(fn(inp))[0]  # a tensor, a tuple's first, a ModelOutput's logits / last hidden state
        if like is not None and (out.ndim != 3 or out.shape[:2] != like.shape[:2]):
            n, t = like.shape[:2]
            raise ValueError(f"fn must map ({n}, {t}, d) to ({n}, {t}, d_out); got output shape {tuple(out.shape)}")
        return out

    return f


def grad_through_time(rnn: SteppableRNN, x: Tensor) -> GradThroughTime:
    """Spectral norm of ∂h_T/∂h_t for every t, from one batched backward pass.

    ∂h_T/∂h_t = ∏_{s=t+1..T} diag(act′(a_s)) W_hh  (for h_s = act(a_s), a_s = W_hh h_{s−1} + W_xh x_s + b).

    The RNN is unrolled with ``rnn.step(h, x_t)`` from h_0 = 0; the d×d Jacobians of h_T w.r.t. every h_t
    come from one ``autograd.grad(..., is_grads_batched=True)`` over the basis vectors of h_T.

    Args:
        rnn: any object with ``step(h (1, d_h), x_t (1, d_in)) -> (1, d_h)`` and an int ``d_hidden``.
        x: the input sequence, (1, T, d_in) or (T, d_in), finite.
    Returns:
        GradThroughTime with steps t = 0..T−1 and norms ‖∂h_T/∂h_t‖₂, shape (T,).
    """
    if not callable(getattr(rnn, "step", None)):
        raise ValueError(f"rnn must have a method step(h, x_t); {type(rnn).__name__} has none")
    d_hidden = getattr(rnn, "d_hidden", None)
    if not isinstance(d_hidden, int) or isinstance(d_hidden, bool) or d_hidden < 1:
        raise ValueError(f"rnn must have an integer attribute d_hidden >= 1; got {d_hidden!r}")
    checks.tensor(x, "x", finite=True)
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[0] != 1) or x.shape[-2] < 1:
        raise ValueError(f"x must have shape (1, T, d_in) or (T, d_in), T >= 1; got shape {tuple(x.shape)}")
    xs = x.reshape(1, *x.shape[-2:])  # (1, T, d_in)
    with torch.enable_grad():
        h = torch.zeros(1, d_hidden, dtype=xs.dtype, device=xs.device, requires_grad=True)  # h_0
        states = []  # h_0 … h_{T−1}
        for t in range(xs.shape[1]):
            states.append(h)
            h = rnn.step(h, xs[:, t])
        if tuple(h.shape) != (1, d_hidden):
            raise ValueError(f"rnn.step must return shape (1, {d_hidden}); got {tuple(h.shape)}")
        basis = torch.eye(d_hidden, dtype=h.dtype, device=h.device).unsqueeze(1)  # (d, 1, d)
        rows = torch.autograd.grad(h, states, grad_outputs=basis, is_grads_batched=True, allow_unused=True)
    jac = torch.stack([torch.zeros_like(basis[:, 0]) if g is None else g[:, 0, :] for g in rows])  # (T, d, d)
    # the SVD refuses non-finite input: such steps get inf (an overflowed entry) or NaN (a NaN entry)
    finite = torch.isfinite(jac).flatten(1).all(dim=1)  # (T,)
    has_nan = torch.isnan(jac).flatten(1).any(dim=1)  # (T,)
    norms = torch.linalg.matrix_norm(torch.where(finite[:, None, None], jac, torch.zeros_like(jac)), ord=2)
    norms = torch.where(finite, norms, torch.where(has_nan, float("nan"), float("inf"))).detach().cpu().numpy()
    bad = ~np.isfinite(norms)
    return GradThroughTime(np.arange(len(states)), norms, exploded_at=int(np.argmax(bad)) if bad.any() else None)


def _check_sequence_map(fn: object, x: object, index: object, name: str, batch_one: bool) -> int:
    """Validate fn, x of shape (1 or N, T, d) and a Python-style position index (−1 = last); the index, 0..T−1."""
    shape = "(1, T, d)" if batch_one else "(N, T, d)"
    if not callable(fn):
        raise ValueError(f"fn must be a module or callable {shape} -> {shape[:-2]}d_out); got {type(fn).__name__}")
    checks.tensor(x, "x", floating=True, finite=True)
    if x.ndim != 3 or (batch_one and x.shape[0] != 1):
        raise ValueError(f"x must have shape {shape}; got shape {tuple(x.shape)}")
    n_pos = x.shape[1]
    if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
        raise ValueError(f"{name} must be an int; got {type(index).__name__}")
    if not -n_pos <= index < n_pos:
        raise ValueError(f"{name} must be in [-{n_pos}, {n_pos - 1}] for T = {n_pos}; got {index}")
    return int(index) % n_pos


def position_grad_norms(fn: Callable[[Tensor], Tensor], x: Tensor, target: int = -1) -> PositionGrads:
    """How strongly output position j depends on every input position i, from one batched backward.

    norms_i = ‖∂y_j/∂x_i‖_F, with j = target; distance_i = |j − i|.

    Args:
        fn: module or callable, (1, T, d) -> (1, T, d_out) (or a tuple whose first element is that).
        x: (1, T, d) input, finite.
        target: output position j, Python-style (−1 = the last position).
    Returns:
        PositionGrads with arrays of shape (T,); entry i is input position i.
    """
    j = _check_sequence_map(fn, x, target, "target", batch_one=True)
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y_j = output_of(fn, x)(x)[0, j]  # (d_out,)
        basis = torch.eye(y_j.shape[0], dtype=y_j.dtype, device=y_j.device)  # (d_out, d_out)
        (rows,) = torch.autograd.grad(y_j, x, grad_outputs=basis, is_grads_batched=True, allow_unused=True)
    if rows is None:  # y_j does not depend on x at all
        rows = torch.zeros(y_j.shape[0], *x.shape, dtype=x.dtype, device=x.device)
    # rows: (d_out, 1, T, d); the Frobenius norm of each (d_out × d) block ∂y_j/∂x_i
    norms = torch.linalg.vector_norm(rows[:, 0].transpose(0, 1).reshape(x.shape[1], -1), dim=1)
    return PositionGrads(distance=np.abs(j - np.arange(x.shape[1])), norms=norms.detach().cpu().numpy())


@contextlib.contextmanager
def forward_mode_ready() -> Iterator[None]:
    """Context for torch.func.jvp through any model: SDPA on its "math" kernel, torch's own warning silenced.

    The fused CPU attention kernel has no forward-mode derivative (jvp through nn.MultiheadAttention would
    fail); torch raises a DeprecationWarning (torch.jit.script) when it first loads its jvp decompositions.
    """
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        except ImportError:  # torch < 2.3 has no sdpa_kernel
            pass
        yield


def vmapped(single: Callable[[Tensor], Tensor], batch: Tensor) -> Tensor:
    """single() applied to every row of batch: vmap where the ops support it, else a Python loop."""
    try:
        return torch.func.vmap(single)(batch)
    except (RuntimeError, NotImplementedError, ValueError):
        return torch.stack([single(b) for b in batch])


def source_grad_norms(fn: Callable[[Tensor], Tensor], x: Tensor, source: int = 0) -> SourceGrads:
    """How strongly every output position j of every sequence depends on one input position s.

    norms_{b,j} = ‖∂y_{b,j}/∂x_{b,s}‖_F; distance_j = |j − s|.

    Forward mode, d tangents batched by vmap: tangent k perturbs feature k of x_s in every sequence at once
    (fn must not mix sequences, as a model does not mix the items of its batch), so each pass gives column k
    of every ∂y_{b,j}/∂x_{b,s}.

    Args:
        fn: module or callable, (N, T, d) -> (N, T, d_out) (or a tuple whose first element is that).
        x: (N, T, d) batch of input sequences, finite.
        source: input position s, Python-style (−1 = the last position).
    Returns:
        SourceGrads with distance (T,) and norms (N, T).
    """
    s = _check_sequence_map(fn, x, source, "source", batch_one=False)
    x, (n_seq, n_pos, d) = x.detach(), x.shape
    f = output_of(fn, x)
    before, x_s, after = x[:, :s], x[:, s : s + 1], x[:, s + 1 :]  # x_s: (N, 1, d)

    def outputs(middle: Tensor) -> Tensor:  # (N, 1, d) -> (N, T, d_out)
        return f(torch.cat([before, middle, after], dim=1))

    def column(tangent: Tensor) -> Tensor:  # (N, 1, d) -> (N, T, d_out) = ∂y/∂x_s · tangent
        return torch.func.jvp(outputs, (x_s,), (tangent,))[1]

    basis = torch.eye(d, dtype=x.dtype, device=x.device)[:, None, None, :].expand(d, n_seq, 1, d)  # (d, N, 1, d)
    with forward_mode_ready():
        columns = vmapped(column, basis)  # (d, N, T, d_out): [k, b, j, :] = ∂y_{b,j}/∂x_{b,s}[k]
    norms = columns.detach().pow(2).sum(dim=(0, 3)).sqrt().cpu().double().numpy()  # (N, T)
    return SourceGrads(distance=np.abs(np.arange(n_pos) - s), norms=norms)
