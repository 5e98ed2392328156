"""Tests of gradlib.spectra: exact and converged singular values against torch.linalg.svdvals of explicit Jacobians.

Every model is written with plain torch ops (tests/_jacobian_models.py); close spectra are built on purpose,
so that the old fixed 50-iteration estimate is measurably wrong and the new one is not.
"""

import time

import numpy as np
import pytest
import torch
from torch import nn

from _jacobian_models import *  # noqa: F401,F403  (small hand-written models and explicit Jacobians)
from gradlib.spectra import EXACT_MAX_ENTRIES, ConvergenceError, jacobian_top_singular_values


# ---------------------------------------------------------------------------------------------------------
# jacobian_top_singular_values
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["exact", "iterative"])
def test_jacobian_top_singular_values_match_svdvals_of_explicit_jacobian(method):
    model = nn.Sequential(nn.Linear(4, 7, dtype=F64), nn.Tanh(), nn.Linear(7, 3, dtype=F64))
    _reinit(model, 13, std=0.8)
    x = _randn(1, 5, 4, seed=14)  # J: R^20 -> R^15, non-square
    result = jacobian_top_singular_values(model, x, k=4, method=method)
    np.testing.assert_allclose(result.singular_values, _svdvals(model, x, 4), rtol=1e-9)
    assert np.all(np.diff(result.singular_values) <= 0)
    assert result.method == method
    assert (result.iterations, result.residual) == (0, 0.0) if method == "exact" else result.residual <= 1e-10


def test_close_spectrum_defeats_fifty_iterations_but_both_methods_are_exact():
    f, a = _prescribed(_close_spectrum(), (1, 4, 6))
    x = _randn(1, 4, 6, seed=1)
    expected = torch.linalg.svdvals(_jacobian(f, x))[:4].numpy()
    np.testing.assert_allclose(expected, [1.0, 0.999, 0.998, 0.997], rtol=1e-14)
    old_error = np.max(np.abs(_old_fixed_iterations(a, 4) - expected) / expected)
    assert old_error > 1e-5  # measured 2.2e-4
    for method in ("exact", "iterative"):
        result = jacobian_top_singular_values(f, x, k=4, method=method)
        np.testing.assert_allclose(result.singular_values, expected, rtol=1e-9)
    assert result.iterations > 50 and result.residual <= 1e-10


def test_residual_stack_iterative_and_exact_agree_with_svdvals():
    model = _Residual(depth=2, width=6, alpha=0.5, seed=2)
    x = _randn(1, 4, 6, seed=3)
    expected = _svdvals(model, x, 3)
    assert expected[0] / expected[2] < 1.2  # close together, as for a ReZero stack at small α
    for method in ("exact", "iterative"):
        result = jacobian_top_singular_values(model, x, k=3, method=method, seed=5)
        np.testing.assert_allclose(result.singular_values, expected, rtol=1e-9)


def test_float32_model_converges_to_its_default_tolerance():
    model = _Residual(depth=3, width=6, alpha=0.3, seed=2)
    x = _randn(1, 4, 6, seed=3)
    reference = _svdvals(model, x, 3)
    result = jacobian_top_singular_values(model.float(), x.float(), k=3, method="iterative")
    assert result.residual <= 1.2e-5
    np.testing.assert_allclose(result.singular_values, reference, rtol=1e-5)


def test_jacobian_top_singular_values_through_torch_attention_by_forward_mode():
    # the fused CPU attention kernel has no forward-mode derivative: the probe must still work
    enc = _encoder(n_layers=1)
    x = _randn(1, 4, 8, seed=15)
    result = jacobian_top_singular_values(enc, x, k=2, method="iterative")
    np.testing.assert_allclose(result.singular_values, _svdvals(enc, x, 2), rtol=1e-9)


def test_auto_forms_small_jacobians_and_iterates_on_large_ones():
    model = _Residual(depth=2, width=4, alpha=0.5)
    small = jacobian_top_singular_values(model, _randn(1, 3, 4), k=2)
    assert (small.method, small.iterations, small.residual) == ("exact", 0, 0.0)
    n = 2048  # n·m = 4.2e6 > EXACT_MAX_ENTRIES: J is not formed
    assert n * n > EXACT_MAX_ENTRIES >= 2000 * 2000
    scale = torch.cat([torch.tensor([5.0, 4.0, 3.0, 2.5], dtype=F64), torch.ones(n - 4, dtype=F64)])
    large = jacobian_top_singular_values(lambda t: t * scale, _randn(n), k=2)
    assert large.method == "iterative" and large.iterations >= 1
    np.testing.assert_allclose(large.singular_values, [5.0, 4.0], rtol=1e-10)


def test_exact_route_on_a_32_layer_stack_is_fast():
    model = _Residual(depth=32, width=16, alpha=0.5, seed=4)
    x = _randn(1, 6, 16, seed=6)
    start = time.perf_counter()
    result = jacobian_top_singular_values(model, x, k=4)
    elapsed = time.perf_counter() - start
    assert result.method == "exact"
    assert elapsed < 2.0  # measured ≈ 0.02 s; the 50 fixed iterations took ≈ 10 s on such a stack
    np.testing.assert_allclose(result.singular_values, _svdvals(model, x, 4), rtol=1e-12)


def test_non_convergence_raises_convergence_error_with_iterations_residual_and_estimate():
    f, _ = _prescribed(_close_spectrum(), (1, 4, 6))
    with pytest.raises(ConvergenceError, match=r"in 2 iterations.*residual.*estimate.*method='exact'") as info:
        jacobian_top_singular_values(f, _randn(1, 4, 6), k=4, method="iterative", max_iter=2)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.iterations == 2 and err.residual > 1e-10 and err.singular_values.shape == (4,)


def test_jacobian_top_singular_values_of_identity_and_zero_maps_and_determinism():
    x = _randn(2, 3, 4)
    a = jacobian_top_singular_values(lambda t: t, x, k=3, method="iterative", seed=1)
    b = jacobian_top_singular_values(lambda t: t, x, k=3, method="iterative", seed=1)
    np.testing.assert_allclose(a.singular_values, 1.0, rtol=1e-14)
    assert a.iterations == 1 and np.array_equal(a.singular_values, b.singular_values)
    zero = jacobian_top_singular_values(lambda t: 0 * t, x, k=2, method="iterative")
    np.testing.assert_array_equal(zero.singular_values, [0.0, 0.0])
    assert zero.residual == 0.0


@pytest.mark.parametrize("method", ["exact", "iterative"])
def test_exploding_model_gives_nan_singular_values_not_an_exception(method):
    # y = 1e50·x in float32: J overflows to inf
    model = nn.Sequential(*[nn.Linear(4, 4, bias=False) for _ in range(10)])
    with torch.no_grad():
        for lin in model:
            lin.weight.copy_(1e5 * torch.eye(4))
    result = jacobian_top_singular_values(model, torch.ones(2, 4), k=2, method=method)
    assert result.singular_values.shape == (2,) and np.all(np.isnan(result.singular_values))
    assert result.method == method


def test_jacobian_top_singular_values_rejects_bad_inputs():
    x = _randn(1, 3, 2)
    for bad_k in (0, -1, 2.5, 7, True):
        with pytest.raises(ValueError, match="k must"):
            jacobian_top_singular_values(lambda t: t, x, k=bad_k)
    with pytest.raises(ValueError, match="k must be <= the output size 1"):
        jacobian_top_singular_values(lambda t: t.sum(), x, k=2)
    for bad_tol in (0, 1, -1e-3, 1.5, float("nan"), "small"):
        with pytest.raises(ValueError, match="tol"):
            jacobian_top_singular_values(lambda t: t, x, tol=bad_tol)
    for bad_iter in (0, 2.0, None):
        with pytest.raises(ValueError, match="max_iter"):
            jacobian_top_singular_values(lambda t: t, x, max_iter=bad_iter)
    with pytest.raises(ValueError, match="method must be one of 'auto', 'exact', 'iterative'"):
        jacobian_top_singular_values(lambda t: t, x, method="power")
    with pytest.raises(ValueError, match="seed"):
        jacobian_top_singular_values(lambda t: t, x, seed="0")
    with pytest.raises(ValueError, match="x"):
        jacobian_top_singular_values(lambda t: t, torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="fn"):
        jacobian_top_singular_values(3, x)
    with pytest.raises(ValueError, match="returned no tensor"):
        jacobian_top_singular_values(lambda t: "no tensor", x)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_is_rejected_naming_x(bad):
    x = _randn(1, 5, 4)
    x[0, 2, 1] = bad
    with pytest.raises(ValueError, match=r"x must be finite \(no NaN or inf\).*index \(0, 2, 1\)"):
        jacobian_top_singular_values(nn.Identity(), x, k=2)
