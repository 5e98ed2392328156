"""Jacobian spectra: the k largest singular values of a model's input–output Jacobian, exact or converged.

    jacobian_top_singular_values(fn, x, k)   σ_1 ≥ … ≥ σ_k of J = ∂fn(x)/∂x

The spectrum says how a whole stack stretches its inputs: σ_i = 1 for every i (a ReZero stack at α = 0) is
an exact identity map; σ_1 ≫ 1 a stack that amplifies some direction. Small Jacobians are formed and their
singular values taken exactly; large ones by subspace iteration (jvp/vjp, J never formed) that converges to
a stated tolerance or raises ConvergenceError — never a silently wrong number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

from gradlib import checks
from gradlib.jacobians import forward_mode_ready, output_of, vmapped

__all__ = ["JacobianSpectrum", "ConvergenceError", "EXACT_MAX_ENTRIES", "jacobian_top_singular_values"]

EXACT_MAX_ENTRIES = 4_000_000  # method="auto" forms J when n·m is at most this (32 MB in float64)


@dataclass
class JacobianSpectrum:
    """The k largest singular values of the input–output Jacobian, descending, and how they were found."""

    singular_values: np.ndarray  # (k,) descending; NaN if the model produced inf/NaN
    method: str  # "exact" (J formed, svdvals) or "iterative" (subspace iteration)
    iterations: int  # applications of JᵀJ to the subspace (0 for exact)
    residual: float  # max_i ‖JᵀJ v_i − σ_i² v_i‖ / σ_1² over the k Ritz pairs (0.0 for exact)


class ConvergenceError(RuntimeError):
    """Subspace iteration reached max_iter before every Ritz pair met the tolerance (estimate attached)."""

    def __init__(self, message: str, iterations: int, residual: float, singular_values: np.ndarray) -> None:
        super().__init__(message)
        self.iterations, self.residual, self.singular_values = iterations, residual, singular_values


def _exact_spectrum(x: Tensor, y: Tensor, k: int) -> np.ndarray:
    """σ_1..σ_k of J (m, n), its rows from batched backward passes through y(x) (≤ 2^22 entries at once)."""
    n, m = x.numel(), y.numel()
    eye, step, rows = torch.eye(m, dtype=y.dtype, device=y.device), max(1, (1 << 22) // n), []
    for i in range(0, m, step):  # the chunks bound the memory of one batched backward
        cot = eye[i : i + step].reshape(-1, *y.shape)
        (g,) = torch.autograd.grad(y, x, cot, retain_graph=True, is_grads_batched=True, allow_unused=True)
        rows.append(torch.zeros(len(cot), n, dtype=x.dtype, device=x.device) if g is None else g.reshape(-1, n))
    jac = torch.cat(rows).detach()  # (m, n)
    return torch.linalg.svdvals(jac.double())[:k].cpu().numpy() if torch.isfinite(jac).all() else np.full(k, np.nan)


def jacobian_top_singular_values(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    k: int = 4,
    *,
    method: str = "auto",
    tol: Optional[float] = None,
    max_iter: int = 1000,
    seed: int = 0,
) -> JacobianSpectrum:
    """Top-k singular values of J = ∂fn(x)/∂x, exactly or by subspace iteration that never forms J.

    exact: J from batched backward passes (m vjps), σ = svdvals(J). iterative: V ← orth(JᵀJ V), J V by jvp and
    Jᵀ U by vjp, Rayleigh–Ritz each step (J V = P Σ Qᵀ gives Ritz pairs (σ_i, V q_i)) until every pair i ≤ k has
    ‖JᵀJ V q_i − σ_i² V q_i‖ ≤ tol·σ_1², so each σ_i² lies within tol·σ_1² of an eigenvalue of JᵀJ. The residual
    shrinks like (σ_{p+1}/σ_k)^(2·iterations), p = min(n, m, max(2k, k + 4)) columns: slowly if σ_{p+1} ≈ σ_k.

    Args:
        fn: module or callable, x -> y (any shapes; a tuple output uses its first tensor).
        x: the point where J is taken, any shape, floating, finite (n = x.numel(), m = y.numel()).
        k: how many singular values, 1 <= k <= min(n, m).
        method: "exact"; "iterative"; "auto" = exact when n·m <= EXACT_MAX_ENTRIES (4·10⁶), else iterative.
        tol: relative residual in (0, 1); default 1e-10 in float64, 100·eps otherwise (float32: 1.2e-5, as
            rounding in J v floors a float32 residual near 1e-7).
        max_iter: most iterations before ConvergenceError (>= 1).
        seed: seed of the random start subspace.
    Returns:
        JacobianSpectrum; NaN singular values if the model produced inf/NaN. Raises ConvergenceError if the
        iterative method did not reach tol within max_iter.
    """
    if not callable(fn):
        raise ValueError(f"fn must be a module or callable; got {type(fn).__name__}")
    n = checks.tensor(x, "x", floating=True, finite=True).numel()
    if (k := checks.positive_int(k, "k")) > n:
        raise ValueError(f"k must be <= x.numel() = {n}; got {k}")
    checks.choice(method, "method", ("auto", "exact", "iterative"))
    tol = max(1e-10, 100 * torch.finfo(x.dtype).eps) if tol is None else checks.finite(tol, "tol", positive=True)
    if tol >= 1:
        raise ValueError(f"tol must be a number in (0, 1); got {tol!r}")
    max_iter, seed = checks.positive_int(max_iter, "max_iter"), checks.seed(seed)

    x, f = x.detach(), output_of(fn)
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        y = f(xg)  # plain autograd: its batched backward is ~5x faster here than vmap over torch.func.vjp
        if k > (m := y.numel()):
            raise ValueError(f"k must be <= the output size {m}; got {k}")
        if method == "exact" or (method == "auto" and n * m <= EXACT_MAX_ENTRIES):
            sigma = _exact_spectrum(xg, y, k) if y.requires_grad else np.zeros(k)  # y constant: J = 0
            return JacobianSpectrum(sigma, "exact", 0, 0.0)
    del xg, y
    with torch.enable_grad(), forward_mode_ready():
        y, vjp_fn = torch.func.vjp(f, x)  # one linearisation, reused for every Jᵀ u

    def jv(v: Tensor) -> Tensor:  # (n,) -> (m,)  J v
        return torch.func.jvp(f, (x,), (v.reshape(x.shape),))[1].reshape(m)

    def jtu(u: Tensor) -> Tensor:  # (m,) -> (n,)  Jᵀ u
        return vjp_fn(u.reshape(y.shape))[0].reshape(n)

    p = min(n, m, max(2 * k, k + 4))  # guard columns beyond k speed up the convergence of σ_k
    start = torch.randn(n, p, generator=torch.Generator(device="cpu").manual_seed(seed), dtype=torch.float64)
    v = torch.linalg.qr(start).Q.to(x.device)  # (n, p); the p-column algebra is float64 whatever the model's
    sigma, residual = np.full(k, np.nan), float("nan")
    with torch.enable_grad(), forward_mode_ready():
        for it in range(1, max_iter + 1):
            u = vmapped(jv, v.T.to(x.dtype)).T.detach().double()  # (m, p) = J V
            w = vmapped(jtu, u.T.to(y.dtype)).T.detach().double()  # (n, p) = Jᵀ J V
            if not (torch.isfinite(u).all() and torch.isfinite(w).all()):
                return JacobianSpectrum(np.full(k, np.nan), "iterative", it, float("nan"))
            _, s, qh = torch.linalg.svd(u, full_matrices=False)  # Rayleigh–Ritz: Vᵀ JᵀJ V = Q Σ² Qᵀ
            wq = w @ qh.T  # column i: JᵀJ (V q_i)
            r = torch.linalg.vector_norm(wq[:, :k] - (v @ qh.T[:, :k]) * s[:k] ** 2, dim=0)  # (k,)
            residual = 0.0 if s[0] == 0 else float(r.max() / s[0] ** 2)  # J V = 0: JᵀJ V = 0 exactly
            if residual <= tol:
                return JacobianSpectrum(s[:k].cpu().numpy(), "iterative", it, residual)
            sigma, v = s[:k].cpu().numpy(), torch.linalg.qr(wq).Q
    raise ConvergenceError(
        f"jacobian_top_singular_values did not converge in {max_iter} iterations: max relative residual "
        f"{residual:.3g} > tol = {tol:.3g}; current estimate {np.array2string(sigma, precision=10)}. "
        f"Use method='exact' (J is {m}×{n}) or a larger max_iter.",
        max_iter, residual, sigma,
    )  # fmt: skip
