"""Chapter 5, the math of ∂A/∂Q (gradlib.exp_scores): what the attention score does to the gradient.

The headline over seeds 0, 1, 2 through facts() (the thresholds are the module's constants, as in the chapter's
check cell). Independent truths: autograd on the attention written out in torch (never gradlib's closed forms),
the softmax Jacobian and the entropy from their definitions in numpy, the logits recomputed from the weights by
hand, and the bounds |logit| ≤ √d_head (unit-gain QK-norm) and ≤ ‖x_i‖‖x_j‖/√d_head (σReparam, γ = 1).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from _experiment_helpers import _assert_facts_hold, _assert_same  # tests/: checks every experiment test shares
from gradlib import exp_scores as S

SEEDS = (0, 1, 2)
F64 = torch.float64


def _data(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed + 1_000_003)  # the experiments' data stream, written out


# ------------------------------------------------------------------------------------------- the headline
@functools.lru_cache(maxsize=None)
def _facts(seed: int) -> dict:
    return S.facts(seed)  # ~0.6 s a seed: measured once for both tests below


@pytest.mark.parametrize("seed", SEEDS)
def test_every_fact_of_chapter_five_holds(seed):
    _assert_facts_hold(_facts(seed), seed, exactly=13)


def test_facts_read_the_experiments_with_their_thresholds():
    facts = _facts(1)
    sweep = S.key_scale_sweep(seed=1)
    t = sweep.turn()
    assert facts[f"the typical row turns at c in {S.TURN_RANGE}"] == (
        S.TURN_RANGE[0] <= sweep.key_scale[t] <= S.TURN_RANGE[1])
    with pytest.raises(ValueError, match="seed"):
        S.facts(1.5)


# ---------------------------------------------------------------------------------------- key scale sweep
def test_key_scale_sweep_equals_autograd_and_the_definitions():
    scales = (0.5, 3.0, 40.0)
    result = S.key_scale_sweep(key_scales=scales, n_queries=5, n_keys=4, d_k=3, threshold=0.7, seed=2)
    g = _data(2)
    q, k0, v, r = (torch.randn(n, 3, generator=g, dtype=F64) for n in (5, 4, 4, 5))
    for j, c in enumerate(scales):
        qq = q.clone().requires_grad_()
        p = torch.softmax(qq @ (c * k0).T / math.sqrt(3), dim=-1)
        (dq,) = torch.autograd.grad(((p @ v) * r).sum(), qq)  # L = ⟨Z, R⟩
        pn = p.detach().numpy()
        top = [np.linalg.eigvalsh(np.diag(row) - np.outer(row, row))[-1] for row in pn]
        assert result.query_grad.y[j] == pytest.approx(dq.norm().item(), rel=1e-10)
        assert result.query_grad_row.y[j] == pytest.approx(np.median(dq.norm(dim=1).numpy()), rel=1e-10)
        assert result.jacobian_norm.y[j] == pytest.approx(np.median(top), rel=1e-10)
        assert result.saturated_fraction.y[j] == np.mean(pn.max(axis=1) > 0.7)
        assert result.p_max.y[j] == pytest.approx(np.median(pn.max(axis=1)), rel=1e-12)
    np.testing.assert_array_equal(result.key_scale, scales)
    assert result.threshold == 0.7


@pytest.mark.parametrize("seed", SEEDS)
def test_the_row_gradient_grows_with_the_keys_turns_and_collapses(seed):
    result = S.key_scale_sweep(seed=seed)
    row, c, t = result.query_grad_row.y, result.key_scale, result.turn()
    assert np.all(np.diff(row[: t + 1]) > 0)  # rises all the way to the turn ...
    assert row[-1] < 1e-6 * row[t]  # ... then collapses (measured: 0 in float64 at c = 1e6)
    assert np.all(result.jacobian_norm.y <= 0.5 + 1e-12)  # ‖J‖₂ ≤ 1/2 everywhere
    assert result.saturated_fraction.y[0] == 0 and result.saturated_fraction.y[-1] > 0.9  # measured 0.98-1


def test_turn_names_its_measure():
    result = S.key_scale_sweep(key_scales=(1.0, 10.0), n_queries=3, n_keys=3, d_k=2)
    assert result.turn("query_grad") in (0, 1)
    with pytest.raises(ValueError, match="which"):
        result.turn("entropy")


# ---------------------------------------------------------------------------------------- softmax regimes
def test_softmax_regimes_equal_the_definitions():
    ms = (0.2, 5.0)
    for scaled in (True, False):
        result = S.softmax_regimes(multipliers=ms, d_k=4, scaled=scaled, n_rows=3, n_keys=5, threshold=0.8, seed=1)
        g = _data(1)
        q, k = torch.randn(3, 4, generator=g, dtype=F64), torch.randn(5, 4, generator=g, dtype=F64)
        for j, m in enumerate(ms):
            p = torch.softmax(m * (q @ k.T) / (2.0 if scaled else 1.0), dim=-1).numpy()
            h = -(p * np.log(p)).sum(axis=1) / np.log(5)
            top = [np.linalg.eigvalsh(np.diag(row) - np.outer(row, row))[-1] for row in p]
            assert result["entropy"].y[j] == pytest.approx(h.mean(), rel=1e-10)
            assert result["jacobian"].y[j] == pytest.approx(2 * np.mean(top), rel=1e-10)
            assert result["saturated"].y[j] == np.mean(p.max(axis=1) > 0.8)
        assert (result.d_k, result.scaled, result.n_keys) == (4, scaled, 5)


def test_regimes_go_from_flat_to_saturated_and_the_scale_keeps_them_in_place_across_d_k():
    flat, sharp = S.softmax_regimes(multipliers=(0.01, 100.0), d_k=64)["entropy"].y
    assert flat > 0.99 and sharp < 0.05
    scaled = [S.softmax_regimes(multipliers=(1.0,), d_k=d)["saturated"].y[0] for d in (16, 1024)]
    unscaled = [S.softmax_regimes(multipliers=(1.0,), d_k=d, scaled=False)["saturated"].y[0] for d in (16, 1024)]
    assert scaled == [0.0, 0.0] and unscaled[1] > 0.5 > unscaled[0]


# ------------------------------------------------------------------------------------------- logit growth
def test_logit_growth_equals_logits_recomputed_from_the_weights():
    from gradlib.multihead import SelfAttention

    result = S.logit_growth(weight_scales=(1.0, 3.0), variants=("none", "layer"), d_model=8, n_heads=2, n_tokens=4,
                            batch=2, seed=3)
    x = torch.randn(2, 4, 8, generator=_data(3), dtype=F64)
    model = SelfAttention(8, 2, seed=3, dtype=F64)
    for j, w in enumerate((1.0, 3.0)):
        q = (x @ (w * model.w_q.weight).T).unflatten(-1, (2, 4)).transpose(1, 2)  # (B, h, T, d_head), biases 0
        k = (x @ (w * model.w_k.weight).T).unflatten(-1, (2, 4)).transpose(1, 2)
        plain = q @ k.transpose(-2, -1) / 2.0
        assert result["none"].y[j] == pytest.approx(plain.abs().max().item(), rel=1e-12)
        ln = lambda t: torch.nn.functional.layer_norm(t, (4,))  # noqa: E731
        normed = ln(q) @ ln(k).transpose(-2, -1) / 2.0
        assert result["layer"].y[j] == pytest.approx(normed.abs().max().item(), rel=1e-10)
        p = torch.softmax(plain, dim=-1).detach().numpy()
        assert result.entropy["none"].y[j] == pytest.approx((-(p * np.log(p)).sum(-1) / np.log(4)).mean(), rel=1e-10)
    np.testing.assert_allclose(result["layer"].theory, 2.0)  # √d_head
    assert result["none"].theory is None and result.d_head == 4


@pytest.mark.parametrize("seed", SEEDS)
def test_plain_logits_grow_as_w_squared_and_each_fix_bounds_them(seed):
    result = S.logit_growth(weight_scales=(1, 4, 16), seed=seed)
    plain = result["none"].y
    np.testing.assert_allclose(plain / plain[0], [1, 16, 256], rtol=1e-10)  # biases 0: logits ∝ w²
    for key, tol in (("layer", 1e-4), ("rms", 1e-4), ("sigma", 1e-9)):  # the norms' ε: a trace of w is left
        assert np.all(result[key].y <= result[key].theory)
        assert np.ptp(result[key].y) <= tol * result[key].y.max()  # normalised away: w changes (almost) nothing
    assert np.all(result.entropy["layer"].y > 0.5) and result.entropy["none"].y[-1] < 0.05


# ------------------------------------------------------------------------------------ softmax saturation
@pytest.mark.parametrize("seed", SEEDS)
def test_unscaled_scores_saturate_the_softmax_at_large_d_k(seed):
    result = S.softmax_saturation(d_ks=(16, 1024), n_rows=256, seed=seed)
    assert result.saturated_fraction["none"].y[-1] > 0.5  # measured 0.67-0.70
    assert np.all(result.saturated_fraction["sqrt_dk"].y < 0.05)  # measured 0
    jac_scaled, jac_none = result.jacobian_norm["sqrt_dk"].y, result.jacobian_norm["none"].y
    assert jac_scaled.max() / jac_scaled.min() < 1.5  # with 1/√d_k the Jacobian does not depend on d_k (≤ 1.1)
    assert jac_none[-1] < 0.5 * jac_none[0]  # without it the Jacobian shrinks as d_k grows (measured ≤ 0.28×)
    np.testing.assert_array_equal(result.d_k, [16, 1024])
    assert result.threshold == 0.99


def test_softmax_saturation_measures_equal_their_definitions_and_autograd():
    result = S.softmax_saturation(d_ks=(8, 3), scales=("none", 2.0, "sqrt_dk"), n_rows=3, n_keys=5,
                                  threshold=0.6, seed=0)
    gen = torch.Generator().manual_seed(0 + 1_000_003)  # the experiment's data stream: q then k, per d_k
    for j, d_k in enumerate((8, 3)):
        q = torch.randn(3, d_k, generator=gen, dtype=F64)
        k = torch.randn(5, d_k, generator=gen, dtype=F64)
        for key, s in (("none", 1.0), ("tau=2", 0.5), ("sqrt_dk", 1 / math.sqrt(d_k))):
            p = torch.softmax(s * q @ k.T, dim=-1).numpy()  # (N, S)
            assert result.saturated_fraction[key].y[j] == np.mean(p.max(axis=1) > 0.6)
            top = [np.linalg.eigvalsh(np.diag(row) - np.outer(row, row))[-1] for row in p]
            assert result.jacobian_norm[key].y[j] == pytest.approx(np.mean(top), rel=1e-10)
            norms = [torch.autograd.functional.jacobian(lambda qi: torch.softmax(s * qi @ k.T, -1), q[i]).norm().item()
                     for i in range(3)]  # ‖∂p_i/∂q_i‖_F, (S, d_k) each
            assert result.query_grad_norm[key].y[j] == pytest.approx(np.mean(norms), rel=1e-12)


def test_regression_softmax_saturation_of_chapter_two_at_seed_0():
    result = S.softmax_saturation(seed=0)  # d_k = 16, 64, 256, 1024 and 512 rows, as the chapter
    np.testing.assert_allclose(result.saturated_fraction["none"].y, [0.033203, 0.234375, 0.552734, 0.769531],
                               rtol=1e-3)
    np.testing.assert_array_equal(result.saturated_fraction["sqrt_dk"].y, 0.0)
    np.testing.assert_allclose(result.jacobian_norm["none"].y, [0.26097, 0.18506, 0.10546, 0.049424], rtol=1e-3)
    np.testing.assert_allclose(result.jacobian_norm["sqrt_dk"].y, [0.14268, 0.14425, 0.14773, 0.14647], rtol=1e-3)


def test_the_unscaled_softmax_jacobian_is_larger_at_small_d_k_and_crosses_below_the_scaled_one():
    # ‖J‖₂ is largest when a few keys share the weight: unscaled scores (variance d_k) are sharper than scaled
    # ones (variance 1) but saturated only at larger d_k. Measured at seed 0: 0.26 vs 0.14 at d_k = 16, equal
    # between 64 and 128, 0.06 vs 0.15 at 1024.
    result = S.softmax_saturation(d_ks=(16, 32, 64, 128, 256, 512, 1024), seed=0)
    none, scaled = result.jacobian_norm["none"].y, result.jacobian_norm["sqrt_dk"].y
    first = int(np.argmax(none <= scaled))
    assert result.crossover() == result.d_k[first] == 128
    assert np.all(none[:first] > scaled[:first]) and np.all(none[first:] <= scaled[first:])
    assert result.crossover("sqrt_dk", "sqrt_dk") == 16  # not larger than itself: the first d_k
    assert S.softmax_saturation(d_ks=(16,), n_rows=16, seed=0).crossover() is None  # never crosses


# ---------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("call", [
    lambda: S.key_scale_sweep(key_scales=(1.0, 9.0), n_queries=4, n_keys=3, d_k=2, seed=5),
    lambda: S.softmax_saturation(d_ks=(16,), n_rows=16, seed=5),
    lambda: S.softmax_regimes(multipliers=(1.0,), n_rows=4, seed=5),
    lambda: S.logit_growth(weight_scales=(1.0,), d_model=8, n_heads=2, n_tokens=3, batch=1, seed=5),
])
def test_two_runs_with_the_same_seed_are_identical(call):
    _assert_same(call(), call())


@pytest.mark.parametrize("call", [
    lambda seed: S.key_scale_sweep(key_scales=(1.0,), n_queries=4, n_keys=3, d_k=2, seed=seed).query_grad.y,
    lambda seed: S.softmax_saturation(d_ks=(4,), n_rows=8, n_keys=4, seed=seed).jacobian_norm["none"].y,
    lambda seed: S.softmax_regimes(multipliers=(1.0,), n_rows=4, seed=seed)["entropy"].y,
    lambda seed: S.logit_growth(weight_scales=(1.0,), d_model=8, n_heads=2, n_tokens=3, batch=1, seed=seed)["none"].y,
])
def test_different_seeds_give_different_numbers(call):
    assert not np.array_equal(call(0), call(1))


def test_experiments_leave_the_global_rng_untouched():
    state = torch.get_rng_state()
    S.key_scale_sweep(key_scales=(1.0,), n_queries=2, n_keys=2, d_k=2)
    S.softmax_saturation(d_ks=(4,), n_rows=4, n_keys=3)
    S.softmax_regimes(multipliers=(1.0,), n_rows=2, n_keys=2)
    S.logit_growth(weight_scales=(1.0,), d_model=4, n_heads=1, n_tokens=2, batch=1)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("call, name", [
    (lambda: S.key_scale_sweep(key_scales=(1.0, -2.0)), "key_scales"),
    (lambda: S.key_scale_sweep(key_scales=(float("nan"),)), "key_scales"),
    (lambda: S.key_scale_sweep(n_queries=0), "n_queries"),
    (lambda: S.key_scale_sweep(n_keys=0), "n_keys"),
    (lambda: S.key_scale_sweep(d_k=0), "d_k"),
    (lambda: S.key_scale_sweep(threshold=1.0), "threshold"),
    (lambda: S.key_scale_sweep(dtype=torch.int64), "dtype"),
    (lambda: S.key_scale_sweep(seed=-1.5), "seed"),
    (lambda: S.softmax_saturation(scales=("sqrt_dk", "foo")), "scales"),
    (lambda: S.softmax_saturation(scales=(2.0, 2)), "scales"),
    (lambda: S.softmax_saturation(d_ks=(0,)), "d_ks"),
    (lambda: S.softmax_saturation(threshold=1.5), "threshold"),
    (lambda: S.softmax_saturation(threshold=0.0), "threshold"),
    (lambda: S.softmax_saturation(n_rows=0), "n_rows"),
    (lambda: S.softmax_saturation(n_keys=0), "n_keys"),
    (lambda: S.softmax_saturation(dtype=torch.int64), "dtype"),
    (lambda: S.softmax_saturation(seed="0"), "seed"),
    (lambda: S.softmax_regimes(multipliers=(0.0,)), "multipliers"),
    (lambda: S.softmax_regimes(d_k=0), "d_k"),
    (lambda: S.softmax_regimes(scaled="yes"), "scaled"),
    (lambda: S.softmax_regimes(device="nowhere"), "device"),
    (lambda: S.logit_growth(weight_scales=(0.0,)), "weight_scales"),
    (lambda: S.logit_growth(variants=("qk",)), "variants"),
    (lambda: S.logit_growth(variants=("none", "none")), "variants"),
    (lambda: S.logit_growth(d_model=30, n_heads=4), "n_heads"),
    (lambda: S.logit_growth(n_tokens=1), "n_tokens"),
    (lambda: S.logit_growth(batch=0), "batch"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^(every entry of )?{name}\b"):
        call()


@pytest.mark.parametrize("call", [
    lambda: S.key_scale_sweep(scales=(1.0,)),
    lambda: S.softmax_saturation(scale="none"),
    lambda: S.softmax_regimes(temperature=2.0),
    lambda: S.logit_growth(qk_norm="layer"),
])
def test_unknown_keywords_are_errors(call):
    with pytest.raises(TypeError):
        call()
