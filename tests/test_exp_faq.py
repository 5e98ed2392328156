"""gradlib.exp_faq: the closing chapter's answers, checked against independent truths and over three seeds."""

import numpy as np
import pytest
import torch

from gradlib import exp_faq
from gradlib.exp_faq import (
    ALTERNATIVES, LEAK_NORMS, causal_leak, deep_alternatives, norm_jacobian_scale, optimizer_first_step,
    placements, train_placements, weight_growth,
)
from gradlib.residual_variants import VARIANTS


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_chapters_facts_hold_on_three_seeds(seed):
    facts = exp_faq.facts(seed)
    assert len(facts) >= 10
    assert all(facts.values()), [fact for fact, holds in facts.items() if not holds]


def test_causal_leak_is_zero_for_per_token_norms_and_batchnorm_at_batch_one_is_instancenorm():
    result = causal_leak(seed=3)
    assert set(result.leak) == set(LEAK_NORMS)
    for key in ("layer", "rms", "group", "dyt"):
        assert result.leak[key] == 0.0 and result.own[key] > 0
    # one sequence: BatchNorm over its T tokens and InstanceNorm over T take the same statistics
    assert result.leak["batch"] == pytest.approx(result.leak["instance"], rel=1e-9)
    assert result.leak["group_positions"] > 0


def test_rms_norm_jacobian_follows_sqrt_d_over_norm_and_layer_norm_scales_like_one_over_c():
    curves = norm_jacobian_scale(scales=(0.5, 2.0, 8.0), d=16, seed=1)
    np.testing.assert_allclose(curves["rms"].y, curves["rms"].theory, rtol=1e-3)
    c_times_sigma = curves["layer"].y * curves["layer"].x  # LN(c z): Jacobian ∝ 1/c (ε aside)
    np.testing.assert_allclose(c_times_sigma, c_times_sigma[0], rtol=1e-3)
    assert np.all(curves["dyt"].y <= 0.5 + 1e-12) and curves["dyt"].y[0] == pytest.approx(0.5, abs=1e-3)


def test_sgd_moves_each_layer_by_its_gradient_and_adam_by_about_lr_per_weight():
    step = optimizer_first_step(seed=4)
    assert step.update_ratio["sgd"] == pytest.approx(step.grad_ratio, rel=1e-2)  # ΔW = −lr·g exactly
    assert step.update_ratio["adam"] == pytest.approx(1.0, abs=0.05)  # ΔW ≈ −lr·sign(g)
    assert step.output_change["first"] < step.output_change["last"]


def test_a_norm_on_the_branch_output_makes_the_stream_independent_of_the_weight_scale():
    curves = weight_growth(scales=(1.0, 3.0), depth=4, d=8, seed=0)
    for key in ("peri_ln", "output_ln"):
        np.testing.assert_allclose(curves[key].y, curves[key].y[0], rtol=1e-4)
    assert curves["pre_ln"].y[1] > 3.0 * curves["pre_ln"].y[0]


def test_placements_and_alternatives_measure_every_block_and_start_the_stream_at_the_input():
    pl = placements(variants=("pre_ln", "post_ln"), depth=5, d=8, seed=0)
    assert set(pl.profiles) == {"pre_ln", "post_ln"} and pl.profiles["pre_ln"].grad_norms.shape == (5,)
    assert pl.stream["post_ln"].shape == (6,)
    assert pl.stream["post_ln"][1:] == pytest.approx(np.sqrt(8), rel=1e-3)  # LN output: norm √d
    alt = deep_alternatives(keys=("rezero",), depth=3, d_model=8, n_heads=1, seed=0)
    assert alt.growth["rezero"] == pytest.approx(1.0, abs=1e-6)
    assert set(alt.profiles) == {"rezero"} and "rezero" in ALTERNATIVES


def test_train_placements_first_loss_is_the_untrained_models_loss_on_the_first_batch():
    from gradlib import draws
    from gradlib.residual_variants import ResidualVariantStack
    from gradlib.tasks import TeacherTask

    run = train_placements(variants=("pre_ln",), depth=2, d=8, steps=3, seed=1)
    model, task = ResidualVariantStack(2, 8, "pre_ln", n_out=10, seed=1), TeacherTask(8, 10, batch=64, seed=1)
    x, y = task.batch(draws.data_generator(1))
    assert run["pre_ln"].y.shape == (3,)
    assert run["pre_ln"].y[0] == pytest.approx(task.loss(model(x), y).detach().item(), rel=1e-6)


@pytest.mark.parametrize("call, name", [
    (lambda: causal_leak(d=6), "d must be divisible by 4"),
    (lambda: causal_leak(n_tokens=1), "n_tokens"),
    (lambda: placements(variants=("pre-ln",)), "variants"),
    (lambda: deep_alternatives(keys=("batchnorm",)), "keys"),
    (lambda: norm_jacobian_scale(scales=(0.0,)), "scales"),
    (lambda: optimizer_first_step(lr=-1.0), "lr"),
    (lambda: weight_growth(scales=(float("nan"),)), "scales"),
    (lambda: train_placements(variants=("pre",)), "variants"),
    (lambda: exp_faq.facts(1.5), "seed"),
])
def test_bad_arguments_raise_value_errors_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_every_experiment_and_facts_run_single_threaded():
    for name in ("causal_leak", "placements", "deep_alternatives", "norm_jacobian_scale", "optimizer_first_step",
                 "weight_growth", "train_placements", "facts"):
        assert getattr(getattr(exp_faq, name), "single_threaded", False), name
    assert set(VARIANTS) >= {"pre_ln", "post_ln", "full_pre"} and torch.get_num_threads() >= 1
