"""Chapter 1 along time (gradlib.exp_rnn): ∂h_T/∂h_t of a vanilla RNN is a product of T − t Jacobians.

Independent truths: the linear theory ρ^(T−t) (exact for φ = identity, an upper bound for tanh), the probe
gradlib.jacobians.grad_through_time called on the same RNN and inputs, and tanh′ by autograd on a recurrence
written by hand. Conclusions over seeds 0, 1, 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _experiment_helpers import _assert_same
from gradlib import draws
from gradlib import exp_rnn as R
from gradlib.jacobians import grad_through_time
from gradlib.rnn import VanillaRNN

SEEDS = (0, 1, 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_rnn_gradient_equals_rho_to_the_distance(seed):
    result = R.rnn_gradients(radii=(0.9, 1.0, 1.1), T=50, activation="identity", seed=seed)
    np.testing.assert_array_equal(result.steps, np.arange(1, 51))
    np.testing.assert_allclose(result.norms, result.theory, rtol=1e-10)
    np.testing.assert_allclose(result.theory[:, -1], [0.9**50, 1.0, 1.1**50], rtol=1e-12)
    np.testing.assert_array_equal(result.radii, [0.9, 1.0, 1.1])
    assert result.activation == "identity"


def test_tanh_rnn_gradient_stays_below_the_linear_bound():
    result = R.rnn_gradients(radii=(0.9, 1.1), T=30, activation="tanh", seed=0)
    assert np.all(result.norms <= result.theory * (1 + 1e-9))
    assert result.norms[1, -1] < 1.0  # ρ = 1.1 does not explode here: tanh′ < 1 damps it (rnn_saturation)


def test_rnn_gradients_measures_through_grad_through_time():
    result = R.rnn_gradients(radii=(0.5, 1.2), T=6, d_hidden=5, activation="tanh", input_scale=2.0, seed=7)
    x = 2.0 * draws.randn((1, 6, 5), draws.data_generator(7), torch.float64)
    for row, rho in enumerate((0.5, 1.2)):
        rnn = VanillaRNN(5, 5, activation="tanh", spectral_radius=rho, seed=7, dtype=torch.float64)
        probe = grad_through_time(rnn, x)
        order = np.argsort(probe.distance)
        np.testing.assert_array_equal(result.norms[row], probe.norms[order])
        np.testing.assert_array_equal(result.curves[row].x, probe.distance[order])


def test_an_rnn_explosion_is_inf_in_the_curve_and_exploded_at_instead_of_raising():
    # float32: ρ^d overflows past d = 38 (10^38 < 3.4e38 < 10^39), exactly where the theory says
    result = R.rnn_gradients(radii=(10.0,), T=45, d_hidden=4, dtype=torch.float32)
    c = result.curves[0]
    assert c.exploded_at == 38 and c.x[c.exploded_at] == 39
    assert np.all(np.isfinite(c.y[:38])) and not np.any(np.isfinite(c.y[38:]))
    np.testing.assert_allclose(c.y[:38], c.theory[:38], rtol=1e-5)


def test_rnn_radii_whose_keys_coincide_are_refused():
    with pytest.raises(ValueError, match="radii must be distinct"):
        R.rnn_gradients(radii=(0.9, 0.9000000001), T=2, d_hidden=2)


def test_rnn_saturation_matches_a_recurrence_written_by_hand_with_slopes_by_autograd():
    result = R.rnn_saturation(radii=(0.5, 1.3), T=6, d_hidden=5, input_scale=2.0, threshold=0.8, seed=7)
    x = 2.0 * torch.randn((1, 6, 5), generator=torch.Generator().manual_seed(7 + 1_000_003), dtype=torch.float64)[0]  # (T, d)
    for row, rho in enumerate((0.5, 1.3)):
        rnn = VanillaRNN(5, 5, activation="tanh", spectral_radius=rho, seed=7, dtype=torch.float64)
        w, u, b = (p.detach() for p in (rnn.w_hh, rnn.w_xh, rnn.b))
        h, pre = torch.zeros(5, dtype=torch.float64), []
        for t in range(6):
            a = w @ h + u @ x[t] + b
            pre.append(a)
            h = torch.tanh(a)
        a = torch.stack(pre).requires_grad_(True)  # (T, d)
        (slope,) = torch.autograd.grad(torch.tanh(a).sum(), a)  # tanh′(a_t), by autograd
        np.testing.assert_allclose(result.mean_slope[row], slope.mean(dim=1).numpy(), rtol=1e-12)
        np.testing.assert_allclose(result.curves[row].y, rho * slope.pow(2).mean(dim=1).sqrt().numpy(), rtol=1e-12)
        np.testing.assert_array_equal(result.saturated[row], (torch.tanh(a).abs() > 0.8).double().mean(1).numpy())
        np.testing.assert_array_equal(result.curves[row].x, np.arange(1, 7))
    assert result.threshold == 0.8


@pytest.mark.parametrize("seed", SEEDS)
def test_the_tanh_rnn_vanishes_through_slopes_below_one_not_through_saturated_units(seed):
    sat = R.rnn_saturation(seed=seed)  # ρ = 0.9, 1.0, 1.1, the chapter's settings
    grads = R.rnn_gradients(activation="tanh", seed=seed)
    assert np.all(sat.saturated.mean(axis=1) < 0.2)  # measured 0.04-0.08 of the units at |h| > 0.9
    assert np.all(sat.mean_slope.mean(axis=1) < 0.8)  # measured 0.65-0.72
    assert np.all(sat.step_gain < 1.0)  # measured 0.69-0.80
    # the slopes predict the gradient's factor per step, ‖∂h_T/∂h_0‖^(1/T): within 10% (measured 3-4%)
    per_step = grads.norms[:, -1] ** (1 / grads.steps[-1])
    np.testing.assert_allclose(sat.step_gain, per_step, rtol=0.1)


@pytest.mark.parametrize("call", [
    lambda: R.rnn_gradients(radii=(0.8, 1.3), T=5, d_hidden=4, activation="tanh", seed=5),
    lambda: R.rnn_saturation(radii=(0.8, 1.3), T=5, d_hidden=4, seed=5),
])
def test_two_runs_with_the_same_seed_are_identical(call):
    _assert_same(call(), call())


def test_different_seeds_give_different_numbers():
    c = R.rnn_gradients(radii=(1.0,), T=5, d_hidden=4, activation="tanh", seed=0)
    d = R.rnn_gradients(radii=(1.0,), T=5, d_hidden=4, activation="tanh", seed=1)
    assert not np.array_equal(c.norms, d.norms)


def test_experiments_leave_the_global_rng_untouched():
    state = torch.get_rng_state()
    R.rnn_gradients(radii=(0.9,), T=3, d_hidden=4)
    R.rnn_gradients(radii=(0.9,), T=3, d_hidden=4, activation="tanh")
    R.rnn_saturation(radii=(0.9,), T=3, d_hidden=4)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("call, name", [
    (lambda: R.rnn_gradients(radii=()), "radii"),
    (lambda: R.rnn_gradients(radii=(0.9, -1.0)), "radii"),
    (lambda: R.rnn_gradients(T=0), "T"),
    (lambda: R.rnn_gradients(d_hidden=0), "d_hidden"),
    (lambda: R.rnn_gradients(activation="relu"), "activation"),
    (lambda: R.rnn_gradients(input_scale=-1.0), "input_scale"),
    (lambda: R.rnn_gradients(dtype=torch.int64), "dtype"),
    (lambda: R.rnn_gradients(seed="0"), "seed"),
    (lambda: R.rnn_saturation(threshold=1.0), "threshold"),
    (lambda: R.rnn_saturation(threshold=0.0), "threshold"),
    (lambda: R.rnn_saturation(radii=()), "radii"),
    (lambda: R.rnn_saturation(T=0), "T"),
    (lambda: R.rnn_saturation(input_scale=float("nan")), "input_scale"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^(every entry of )?{name}\b"):
        call()


def test_unknown_keywords_are_errors():
    with pytest.raises(TypeError):
        R.rnn_gradients(rho=0.9)


def test_zero_radius_is_a_network_that_forgets_in_one_step():
    # ρ = 0 is allowed: W_hh = 0, so h_T does not depend on h_t for t < T − 1 at all (0 = 0^(T−t))
    result = R.rnn_gradients(radii=(0.0,), T=4, d_hidden=3)
    np.testing.assert_array_equal(result.norms[0], [0.0, 0.0, 0.0, 0.0])
    assert math.isclose(result.theory[0, 0], 0.0)
