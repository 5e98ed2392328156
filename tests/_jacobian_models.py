"""Small models written with plain torch ops, shared by tests/test_jacobians.py and tests/test_spectra.py.

The probes are tested on code they have never seen: nothing here comes from gradlib.
"""

import math

import numpy as np
import torch
from torch import nn

__all__ = ["F64", "_gen", "_randn", "_reinit", "_orthogonal", "_jacobian", "_svdvals", "_encoder", "_Residual",
           "_CausalAttention", "_ScanRNN", "_LinearRNN", "_prescribed", "_close_spectrum", "_old_fixed_iterations",
           "_grad_from_first_token", "_with_nan"]

F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed)


def _randn(*shape: int, seed: int = 0, dtype=F64) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _reinit(module: nn.Module, seed: int, std: float = 0.5) -> nn.Module:
    """Overwrite every parameter with seeded normals: torch's own init would use the global RNG."""
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return module


def _orthogonal(d: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(_randn(d, d, seed=seed))
    return q * torch.sign(torch.diagonal(r))


def _jacobian(fn, x: torch.Tensor) -> torch.Tensor:
    """The explicit Jacobian as an (m, n) matrix."""
    jac = torch.autograd.functional.jacobian(fn, x)
    return jac.reshape(-1, x.numel())


def _svdvals(fn, x, k):
    return torch.linalg.svdvals(_jacobian(fn, x))[:k].numpy()


def _encoder(n_layers=1, d=8, heads=2, d_ff=16, seed=0):
    layer = nn.TransformerEncoderLayer(d, heads, d_ff, dropout=0.0, batch_first=True, dtype=F64)
    enc = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
    for i, lay in enumerate(enc.layers):  # TransformerEncoder deep-copies one layer: new weights for each
        _reinit(lay, seed + i, std=0.3)
    return enc


class _Residual(nn.Module):
    """x ↦ x + α·tanh(x W_l), layer after layer: Jacobian ∏ (I + α·diag(tanh′)·W_lᵀ), σ close to 1 for small α."""

    def __init__(self, depth: int, width: int, alpha: float, seed: int = 0):
        super().__init__()
        g = _gen(seed)
        self.w = nn.Parameter(torch.randn(depth, width, width, generator=g, dtype=F64) / math.sqrt(width))
        self.alpha = alpha

    def forward(self, x):
        for w in self.w:
            x = x + self.alpha * torch.tanh(x @ w)
        return x


class _CausalAttention(nn.Module):
    """One causal head, softmax(Q Kᵀ/√d + mask) V, on (N, T, d): y_j sees x_1..x_j only."""

    def __init__(self, d: int, seed: int = 0):
        super().__init__()
        self.w = nn.Parameter(_randn(3, d, d, seed=seed) / math.sqrt(d))

    def forward(self, x):
        q, k, v = x @ self.w[0], x @ self.w[1], x @ self.w[2]
        scores = q @ k.transpose(-2, -1) / math.sqrt(x.shape[-1])
        allowed = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).tril()
        return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v


class _ScanRNN(nn.Module):
    """h_t = tanh(h_{t−1} W + x_t U) over (N, T, d), all states returned: y_t sees x_1..x_t only."""

    def __init__(self, d: int, seed: int = 0):
        super().__init__()
        self.w = nn.Parameter(_randn(2, d, d, seed=seed) * 0.9 / math.sqrt(d))

    def forward(self, x):
        h, states = torch.zeros_like(x[:, 0]), []
        for t in range(x.shape[1]):
            h = torch.tanh(h @ self.w[0] + x[:, t] @ self.w[1])
            states.append(h)
        return torch.stack(states, dim=1)


class _LinearRNN(nn.Module):
    """h_t = act(W h_{t−1} + U x_t), with the .step/.d_hidden interface grad_through_time asks for."""

    def __init__(self, w: torch.Tensor, d_input: int, activation=None):
        super().__init__()
        self.d_hidden = w.shape[0]
        self.w = nn.Parameter(w)
        self.u = nn.Parameter(_randn(w.shape[0], d_input, seed=11, dtype=w.dtype))
        self.activation = activation

    def step(self, h, x_t):
        a = h @ self.w.T + x_t @ self.u.T
        return a if self.activation is None else self.activation(a)


def _prescribed(singular_values: torch.Tensor, shape: tuple):
    """A linear map on tensors of `shape` whose Jacobian has exactly these singular values; and that matrix."""
    n = len(singular_values)
    a = _orthogonal(n, seed=1) @ torch.diag(singular_values) @ _orthogonal(n, seed=2).T
    return (lambda x: (x.reshape(-1) @ a.T).reshape(shape)), a


def _close_spectrum(n: int = 24) -> torch.Tensor:
    """σ = 1, 0.999, …, 0.995, then 0.97·0.97^i: top values 1e-3 apart and a tail only 3 % below them."""
    return torch.cat([1 - 1e-3 * torch.arange(6, dtype=F64), 0.97 ** torch.arange(1, n - 5, dtype=F64)])


def _old_fixed_iterations(a: torch.Tensor, k: int, n_iter: int = 50, seed: int = 0) -> np.ndarray:
    """HEAD's algorithm (probes.py before the split), on an explicit matrix: n_iter steps, no convergence test."""
    p = min(a.shape[1], a.shape[0], k + max(2, k // 2))
    v = torch.linalg.qr(torch.randn(a.shape[1], p, generator=_gen(seed), dtype=F64)).Q
    for _ in range(n_iter):
        v = torch.linalg.qr(a.T @ (a @ v)).Q
    return torch.linalg.svdvals(a @ v)[:k].numpy()


def _grad_from_first_token(fn, xs):
    """HEAD's experiments._grad_from_first_token, verbatim apart from the warning filter: the reference."""
    n_seq, _, d = xs.shape
    x_1, rest = xs[:, :1], xs[:, 1:]

    def outputs(first):
        return fn(torch.cat([first, rest], dim=1))

    def column(tangent):
        return torch.func.jvp(outputs, (x_1,), (tangent,))[1]

    basis = torch.eye(d, dtype=xs.dtype, device=xs.device)[:, None, None, :].expand(d, n_seq, 1, d)
    columns = torch.func.vmap(column)(basis)
    return columns.pow(2).sum(dim=(0, 3)).sqrt().detach().cpu().double().numpy()


def _with_nan(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x.view(-1)[1] = float("nan")
    return x
