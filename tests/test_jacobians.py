"""Tests of gradlib.jacobians against explicit Jacobians, hand-unrolled autograd and the linear theory.

Every model is written with plain torch ops (tests/_jacobian_models.py), so the probes are tested on code they
have never seen.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from _jacobian_models import *  # noqa: F401,F403  (small hand-written models and explicit Jacobians)
from gradlib.jacobians import grad_through_time, position_grad_norms, source_grad_norms


# ---------------------------------------------------------------------------------------------------------
# grad_through_time
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.9, 1.1])
def test_grad_through_time_of_linear_rnn_with_scaled_orthogonal_weights_is_rho_power(rho):
    n_steps, d = 20, 6
    rnn = _LinearRNN(rho * _orthogonal(d, seed=1), d_input=3)
    result = grad_through_time(rnn, _randn(1, n_steps, 3, seed=2))
    np.testing.assert_array_equal(result.steps, np.arange(n_steps))
    np.testing.assert_array_equal(result.distance, n_steps - np.arange(n_steps))
    np.testing.assert_allclose(result.norms, rho ** (n_steps - np.arange(n_steps)), rtol=1e-10)
    assert result.exploded_at is None


def test_grad_through_time_of_tanh_rnn_matches_explicit_jacobians():
    d, n_steps = 5, 7
    rnn = _LinearRNN(_randn(d, d, seed=3) * 0.6, d_input=2, activation=torch.tanh)
    x = _randn(n_steps, 2, seed=4)  # (T, d_in) is accepted as well as (1, T, d_in)
    result = grad_through_time(rnn, x)
    states = [torch.zeros(1, d, dtype=F64)]
    for t in range(n_steps):
        states.append(rnn.step(states[-1], x[t : t + 1]).detach())
    for t in range(n_steps):

        def unroll(h, t=t):
            for s in range(t, n_steps):
                h = rnn.step(h, x[s : s + 1])
            return h

        jac = torch.autograd.functional.jacobian(unroll, states[t]).reshape(d, d)
        assert result.norms[t] == pytest.approx(torch.linalg.matrix_norm(jac, ord=2).item(), rel=1e-10)


def test_grad_through_time_reports_explosion_without_raising():
    rnn = _LinearRNN((1e8 * _orthogonal(4, seed=5)).float(), d_input=2)
    rnn.u.data = rnn.u.data.float()
    result = grad_through_time(rnn, torch.ones(1, 8, 2))
    assert result.exploded_at == 0  # ρ^8 = 1e64 overflows float32 at the longest distance
    assert not np.isfinite(result.norms[0]) and np.isfinite(result.norms[-1])


def test_grad_through_time_rejects_bad_inputs():
    rnn = _LinearRNN(_orthogonal(3, seed=0), d_input=2)
    with pytest.raises(ValueError, match="x"):
        grad_through_time(rnn, _randn(2, 5, 2))  # batch of 2
    with pytest.raises(ValueError, match="x"):
        grad_through_time(rnn, _randn(5))
    with pytest.raises(ValueError, match="step"):
        grad_through_time(nn.Linear(3, 3), _randn(5, 3))
    rnn.d_hidden = "three"
    with pytest.raises(ValueError, match="d_hidden"):
        grad_through_time(rnn, _randn(5, 2))


# ---------------------------------------------------------------------------------------------------------
# position_grad_norms
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [-1, 2])
def test_position_grad_norms_match_explicit_jacobian(target):
    enc = _encoder(n_layers=2)
    x = _randn(1, 6, 8, seed=7)
    result = position_grad_norms(enc, x, target=target)
    jac = torch.autograd.functional.jacobian(enc, x)  # (1, T, d, 1, T, d)
    j = target % 6
    expected = [torch.linalg.matrix_norm(jac[0, j, :, 0, i, :]).item() for i in range(6)]
    np.testing.assert_allclose(result.norms, expected, rtol=1e-10)
    np.testing.assert_array_equal(result.distance, np.abs(j - np.arange(6)))


def test_position_grad_norms_of_causal_attention_vanish_for_the_future_and_accept_tuple_outputs():
    attn = _CausalAttention(8)
    x = _randn(1, 6, 8, seed=21)
    result = position_grad_norms(lambda t: (attn(t), "weights"), x, target=3)
    jac = torch.autograd.functional.jacobian(attn, x)
    expected = [torch.linalg.matrix_norm(jac[0, 3, :, 0, i, :]).item() for i in range(6)]
    np.testing.assert_allclose(result.norms, expected, rtol=1e-10)
    assert np.all(result.norms[:4] > 0) and np.all(result.norms[4:] == 0)


def test_position_grad_norms_of_causal_mixing_are_exact():
    weights = torch.tril(torch.ones(5, 5, dtype=F64))
    result = position_grad_norms(lambda x: weights @ x, _randn(1, 5, 3), target=1)  # y_j = Σ_{i ≤ j} x_i
    np.testing.assert_allclose(result.norms, [math.sqrt(3), math.sqrt(3), 0, 0, 0], atol=1e-15)


def test_position_grad_norms_rejects_bad_inputs():
    f = nn.Identity()
    for bad in (4, -5, 1.0, True):
        with pytest.raises(ValueError, match="target"):
            position_grad_norms(f, _randn(1, 4, 2), target=bad)
    with pytest.raises(ValueError, match="x"):
        position_grad_norms(f, _randn(4, 2))
    with pytest.raises(ValueError, match="fn"):
        position_grad_norms(None, _randn(1, 4, 2))
    with pytest.raises(ValueError, match="fn"):
        position_grad_norms(lambda t: t.sum(dim=1), _randn(1, 4, 2))


# ---------------------------------------------------------------------------------------------------------
# source_grad_norms
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [_CausalAttention(5, seed=3), _ScanRNN(5, seed=4)], ids=["attention", "rnn"])
def test_source_grad_norms_from_the_first_token_equal_head_algorithm_and_explicit_jacobian(model):
    x = _randn(3, 7, 5, seed=8)  # N = 3 sequences
    result = source_grad_norms(model, x)  # source 0
    np.testing.assert_array_equal(result.distance, np.arange(7))
    assert result.norms.shape == (3, 7) and result.norms.dtype == np.float64
    np.testing.assert_allclose(result.norms, _grad_from_first_token(model, x), rtol=1e-13)
    jac = torch.autograd.functional.jacobian(model, x)  # (N, T, d, N, T, d)
    expected = [[torch.linalg.matrix_norm(jac[b, j, :, b, 0, :]).item() for j in range(7)] for b in range(3)]
    np.testing.assert_allclose(result.norms, expected, rtol=1e-12)


@pytest.mark.parametrize("source", [3, -2])
def test_source_grad_norms_from_a_middle_token_match_explicit_jacobian_and_causality(source):
    model = _ScanRNN(4, seed=5)
    x = _randn(2, 6, 4, seed=9)
    result = source_grad_norms(lambda t: (model(t),), x, source=source)
    s = source % 6
    np.testing.assert_array_equal(result.distance, np.abs(np.arange(6) - s))
    jac = torch.autograd.functional.jacobian(model, x)
    expected = [[torch.linalg.matrix_norm(jac[b, j, :, b, s, :]).item() for j in range(6)] for b in range(2)]
    np.testing.assert_allclose(result.norms, expected, rtol=1e-12, atol=1e-300)
    assert np.all(result.norms[:, :s] == 0) and np.all(result.norms[:, s:] > 0)


def test_source_grad_norms_rejects_bad_inputs():
    f = nn.Identity()
    for bad in (4, -5, 0.0):
        with pytest.raises(ValueError, match="source"):
            source_grad_norms(f, _randn(2, 4, 3), source=bad)
    with pytest.raises(ValueError, match="x"):
        source_grad_norms(f, _randn(4, 3))
    with pytest.raises(ValueError, match="x"):
        source_grad_norms(f, torch.ones(1, 4, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="fn"):
        source_grad_norms("f", _randn(1, 4, 3))
    with pytest.raises(ValueError, match="fn must map"):
        source_grad_norms(lambda t: t[:, :2], _randn(1, 4, 3))


# ---------------------------------------------------------------------------------------------------------
# every probe: a non-finite input is refused, naming x
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call",
    [
        lambda x: grad_through_time(_LinearRNN(_orthogonal(3, seed=0), d_input=4), x),
        lambda x: position_grad_norms(nn.Identity(), x),
        lambda x: source_grad_norms(nn.Identity(), x),
    ],
    ids=["grad_through_time", "position_grad_norms", "source_grad_norms"],
)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_is_rejected_naming_x(call, bad):
    x = _randn(1, 5, 4)
    x[0, 2, 1] = bad
    with pytest.raises(ValueError, match=r"x must be finite \(no NaN or inf\).*index \(0, 2, 1\)"):
        call(x)
