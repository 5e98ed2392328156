"""Exercises: the reader writes a small function, and a checker compares it with the truth on random inputs.

The chapters' exercises (the truth is computed by autograd or by gradlib, never by the closed form on the right):

    layer_jacobian      fn(w, h) -> J    h' = tanh(W h)          J  = diag(1 − tanh²(W h)) W          (n, n)
    causal_attention    fn(x, w_q, w_k, w_v) -> Z                Z  = softmax(mask(X W_Q (X W_K)ᵀ/√d_k)) X W_V
    residual_jacobian   fn(w, x) -> J    y = x + tanh(W x)       J  = I + diag(1 − tanh²(W x)) W      (n, n)
    layernorm_backward  fn(x, g) -> dx   y = (x − μ)/√(σ² + ε)   dx = (g − ḡ − y·mean(g y))/√(σ² + ε)  (d,)
    softmax_jacobian    fn(a) -> J       p = softmax(a)          J  = diag(p) − p pᵀ                  (S, S)

Each checker calls gradlib.verdicts.check, which answers with a Verdict in plain words (Verdict and check are
re-exported here), in the reader's language (gradlib.i18n). The inputs are float64 draws from a local
generator seeded `seed`.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from gradlib import draws
from gradlib.attention import self_attention
from gradlib.i18n import _
from gradlib.verdicts import Verdict, check

LN_EPS = 1e-5  # ε of the LayerNorm exercise
SIZES = (3, 6)  # n, S, d and T are drawn per trial from 3..6

__all__ = ["Verdict", "check", "check_layer_jacobian", "check_causal_attention", "check_residual_jacobian",
           "check_layernorm_backward", "check_softmax_jacobian", "EXERCISES", "LN_EPS", "SIZES"]


# ---------------------------------------------------------------------------------- chapter exercises
def _size(g: torch.Generator) -> int:
    return int(torch.randint(SIZES[0], SIZES[1] + 1, (), generator=g))


def _matrix_and_vector(g: torch.Generator) -> tuple[Tensor, Tensor]:
    n = _size(g)
    w = draws.normal((n, n), 1.5 / math.sqrt(n), g)  # (n, n)   W ~ N(0, 1/n)·1.5: Wh has std ≈ 1.5, tanh bends
    h = draws.normal((n,), 1.0, g)  # (n,)
    return w, h


def _jacobian(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    with torch.enable_grad():
        return torch.autograd.functional.jacobian(f, x)  # (out, in): entry [i, j] = ∂f_i/∂x_j


def _layer(w: Tensor, h: Tensor) -> Tensor:
    return _jacobian(lambda h: torch.tanh(w @ h), h)  # (n, n)   ∂h'/∂h, h' = tanh(W h)


def _softmax(a: Tensor) -> Tensor:
    return _jacobian(lambda a: torch.softmax(a, dim=-1), a)  # (S, S)   ∂p/∂a


def _residual(w: Tensor, x: Tensor) -> Tensor:
    return _jacobian(lambda x: x + torch.tanh(w @ x), x)  # (n, n)   ∂y/∂x, y = x + tanh(W x)


def _causal(x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor) -> Tensor:
    mask = torch.ones(x.shape[0], x.shape[0], dtype=torch.bool).tril()  # (T, T)   True = may attend: j ≤ i
    return self_attention(x, w_q, w_k, w_v, mask=mask).output  # (T, d_v)


def _layernorm(x: Tensor, g: Tensor) -> Tensor:
    with torch.enable_grad():
        x = x.clone().requires_grad_(True)  # (d,)
        y = F.layer_norm(x, x.shape[-1:], eps=LN_EPS)  # (d,)   (x − μ)/√(σ² + ε), biased σ², no γ, β
        (dx,) = torch.autograd.grad(y, x, grad_outputs=g)  # (d,)   ∂L/∂x = (∂y/∂x)ᵀ g
    return dx


def check_layer_jacobian(fn: object, *, trials: int = 5, seed: int = 0) -> Verdict:
    """Chapter 1: the chain rule's per-layer factor. You write fn(w, h) -> J for the layer h' = tanh(W h).

    J = ∂h'/∂h = diag(1 − tanh²(W h)) W, i.e. J_ij = (1 − tanh²((Wh)_i)) W_ij;  w: (n, n), h: (n,), J: (n, n).
    """
    return check(fn, _layer, _matrix_and_vector, name="layer_jacobian", trials=trials, seed=seed,
                 what=_("the Jacobian"))


def check_causal_attention(fn: object, *, trials: int = 5, seed: int = 0) -> Verdict:
    """Chapter 2: one head of causal self-attention. You write fn(x, w_q, w_k, w_v) -> Z.

    Q, K, V = X W_Q, X W_K, X W_V;  A = QKᵀ/√d_k with A_ij = −∞ for j > i;  Z = softmax(A) V, row by row;
    x: (T, d_model), w_q, w_k: (d_model, d_k), w_v: (d_model, d_v), Z: (T, d_v). Checked against gradlib.attention.
    """
    def tokens_and_projections(g: torch.Generator) -> tuple[Tensor, ...]:
        t, d_model, d_k, d_v = (_size(g) for _i in range(4))
        x = draws.normal((t, d_model), 1.0, g)  # (T, d_model)
        w_q, w_k = (draws.normal((d_model, d_k), 1.5 / math.sqrt(d_model), g) for _i in range(2))  # sharp rows
        return x, w_q, w_k, draws.normal((d_model, d_v), 1.0 / math.sqrt(d_model), g)

    return check(fn, _causal, tokens_and_projections, name="causal_attention", trials=trials, seed=seed,
                 what=_("the output Z"), truth="gradlib.attention")


def check_softmax_jacobian(fn: object, *, trials: int = 5, seed: int = 0) -> Verdict:
    """Chapter 5: the softmax's Jacobian. You write fn(a) -> J for p = softmax(a).

    J = ∂p/∂a = diag(p) − p pᵀ, i.e. J_ij = p_i (δ_ij − p_j);  a: (S,), J: (S, S).
    """
    def scores(g: torch.Generator) -> tuple[Tensor]:
        return (draws.normal((_size(g),), 1.5, g),)  # (S,)   spread enough that p is far from uniform

    return check(fn, _softmax, scores, name="softmax_jacobian", trials=trials, seed=seed,
                 what=_("the Jacobian"))


def check_residual_jacobian(fn: object, *, trials: int = 5, seed: int = 0) -> Verdict:
    """Chapter 3: the residual block's Jacobian. You write fn(w, x) -> J for y = x + tanh(W x).

    J = ∂y/∂x = I + diag(1 − tanh²(W x)) W: the identity lane plus the branch;  w: (n, n), x: (n,), J: (n, n).
    """
    return check(fn, _residual, _matrix_and_vector, name="residual_jacobian", trials=trials, seed=seed,
                 what=_("the Jacobian"))


def check_layernorm_backward(fn: object, *, trials: int = 5, seed: int = 0) -> Verdict:
    """Chapter 4: LayerNorm's backward pass. You write fn(x, g) -> dx for y = (x − μ)/√(σ² + ε).

    μ = mean(x), σ² = mean((x − μ)²) (biased), ε = 1e-5, no γ or β; g = ∂L/∂y. dx = ∂L/∂x = (∂y/∂x)ᵀ g
    = (g − mean(g) − y·mean(g·y)) / √(σ² + ε);  x: (d,), g: (d,), dx: (d,).
    """
    def point_and_grad(gen: torch.Generator) -> tuple[Tensor, Tensor]:
        d = _size(gen)
        x = draws.normal((d,), 2.0, gen) + 1.0  # (d,)   a mean away from 0, so subtracting μ matters
        g = draws.normal((d,), 1.0, gen)  # (d,)   ∂L/∂y
        return x, g

    return check(fn, _layernorm, point_and_grad, name="layernorm_backward", trials=trials, seed=seed,
                 what="dx = ∂L/∂x")


EXERCISES: dict[str, Callable[..., Verdict]] = {  # in chapter order
    "layer_jacobian": check_layer_jacobian,
    "causal_attention": check_causal_attention,
    "residual_jacobian": check_residual_jacobian,
    "layernorm_backward": check_layernorm_backward,
    "softmax_jacobian": check_softmax_jacobian,
}
