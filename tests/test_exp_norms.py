"""Chapter 4, highway 3 — what a norm does (gradlib.exp_norms): activations, the batch, and the loss trap.

Every conclusion is re-measured over seeds 0, 1, 2 with thresholds that leave a margin of ~3× or more over
what the seeds measured. Independent truths: LayerNorm's output has mean 0 and std 1 (γ = 1, β = 0), a norm of
one token's features cannot see the batch, mean(LN(z)²) = mean σ²/(σ² + ε) written out, and the blocks
unrolled by hand (no hooks). Where a number can be recomputed by calling the probe directly on the same model
and input, it must be equal.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _experiment_helpers import _assert_same  # tests/: the same-numbers check of every experiment test
from gradlib import draws
from gradlib import exp_norms as N
from gradlib.probes import layer_stats
from gradlib.transformer import TransformerStack

SEEDS = (0, 1, 2)
F64 = torch.float64


def _inputs(shape: tuple[int, ...], seed: int, dtype=F64) -> torch.Tensor:
    """The experiments' inputs, written out: N(0, 1) from the data stream seed + 1_000_003."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1_000_003), dtype=dtype)


# ------------------------------------------------------------------------------------------ activation stats
@pytest.mark.parametrize("seed", SEEDS)
def test_post_norm_keeps_activation_std_at_one_while_no_norm_grows(seed):
    result = N.activation_stats(depth=12, d_model=32, seed=seed)
    np.testing.assert_allclose(result.std["layer"].y[1:], 1.0, rtol=1e-3)
    np.testing.assert_allclose(result.mean["layer"].y[1:], 0.0, atol=1e-5)
    np.testing.assert_allclose(result.std["rms"].y[1:], 1.0, rtol=0.05)  # RMS(x) = 1, std ≈ 1 when mean ≈ 0
    assert result.std["none"].y[-1] > 1.3 * result.std["none"].y[0]  # measured 1.61-1.71×
    assert result.norm_position == "post"
    np.testing.assert_array_equal(result.std["none"].x, np.arange(13))


@pytest.mark.parametrize("norm_position", ["post", "pre"])
def test_activation_stats_are_the_hand_unrolled_blocks_statistics_and_layer_stats(norm_position):
    seed = 2
    result = N.activation_stats(depth=3, d_model=8, n_heads=2, norm_position=norm_position, n_tokens=4, batch=2,
                                seed=seed, dtype=F64)
    x = _inputs((2, 4, 8), seed)
    for kind in ("none", "layer", "rms"):
        model = TransformerStack(3, 8, 2, norm=kind, norm_position=norm_position, residual=True, final_norm=False,
                                 seed=seed, dtype=F64)
        with torch.no_grad():
            hs = [x]
            for block in model.layers:
                hs.append(block(hs[-1]))
        # layer 0 is the input's sample std (torch's default), the blocks' the population std (layer_stats')
        std = [x.std().item()] + [h.std(correction=0).item() for h in hs[1:]]
        np.testing.assert_allclose(result.std[kind].y, std, rtol=1e-12)
        np.testing.assert_allclose(result.mean[kind].y, [h.mean().item() for h in hs], rtol=1e-10, atol=1e-15)
        probe = layer_stats(model, draws.randn((2, 4, 8), draws.data_generator(seed), F64))
        np.testing.assert_array_equal(result.std[kind].y[1:], probe.std)
        np.testing.assert_array_equal(result.mean[kind].y[1:], probe.mean)


# ------------------------------------------------------------------------------------------ norm comparison
@pytest.mark.parametrize("seed", SEEDS)
def test_batchnorm_depends_on_the_batch_while_layernorm_and_rmsnorm_do_not(seed):
    changes = N.norm_comparison(seed=seed).changes
    assert tuple(changes) == N.NORM_TESTS
    one, padding, mode = (changes[k] for k in N.NORM_TESTS)
    assert isinstance(one["batch"], str) and one["batch"].startswith("fails: ")
    assert padding["batch"] > 1e-1 and mode["batch"] > 1e-1  # measured 0.60-0.71 and 0.81-1.07 (old file: 1e-2)
    for row in (one, padding, mode):
        assert row["layer"] == 0.0 and row["rms"] == 0.0  # exactly equal, not just close
        assert set(row) == {"batch", "layer", "rms"}


def test_batchnorm_refuses_a_batch_of_one_token_and_says_why():
    one = N.norm_comparison(seed=0).changes["batch of one token (training)"]["batch"]
    assert "at least 2 tokens" in one


# ------------------------------------------------------------------------------------------ the loss trap
@pytest.mark.parametrize("seed", SEEDS)
def test_mean_square_loss_after_layernorm_has_no_gradient_but_a_projection_does(seed):
    trap = N.scale_invariant_loss_trap(seed=seed)
    assert trap.mean_square_loss == pytest.approx(1.0, abs=1e-4)
    assert trap.projection_grad > 1.0  # measured 65-67
    assert trap.ratio < 1e-7  # measured 7.6e-9 to 8.4e-9: what is left comes from ε alone (old file: 1e-6)
    assert trap.ratio == trap.mean_square_grad / trap.projection_grad


def test_loss_trap_mean_square_is_sigma_squared_over_sigma_squared_plus_eps():
    # y = (z − μ)/√(σ² + ε) per token, z = x W, so mean(y²) = mean over tokens of σ²/(σ² + ε), written out here
    seed, eps, d = 4, 1e-2, 8
    trap = N.scale_invariant_loss_trap(d=d, n_tokens=3, batch=2, eps=eps, seed=seed)
    w = torch.empty(d, d, dtype=F64)
    torch.nn.init.xavier_uniform_(w, generator=torch.Generator().manual_seed(seed))
    z = _inputs((2, 3, d), seed) @ w
    var = z.var(dim=-1, unbiased=False)
    assert trap.mean_square_loss == pytest.approx((var / (var + eps)).mean().item(), rel=1e-12)


def test_loss_trap_gradient_comes_from_eps_it_grows_with_eps():
    small = N.scale_invariant_loss_trap(eps=1e-5, seed=0)
    large = N.scale_invariant_loss_trap(eps=1e-2, seed=0)
    assert large.mean_square_grad > 100 * small.mean_square_grad  # measured ≈ 975×: ∝ ε to first order
    assert large.projection_grad == pytest.approx(small.projection_grad, rel=0.05)


# ------------------------------------------------------------------------------------ the chapter's numbers
def test_regression_chapter_four_activations_and_loss_trap_at_seed_0():
    # What chapter 4 prints (the old gradlib.experiments produced the same): a reshaping must not move them.
    post = N.activation_stats(depth=24, seed=0, norms=("none",))  # one model per norm: the same numbers
    np.testing.assert_allclose(post.std["none"].y[[0, 8, 16, 24]], [1.0081, 1.3988, 2.4407, 5.8734], rtol=1e-3)
    pre = N.activation_stats(depth=24, seed=0, norm_position="pre", norms=("layer",))
    np.testing.assert_allclose(pre.std["layer"].y[[8, 16, 24]], [1.2938, 1.5665, 1.8604], rtol=1e-3)
    trap = N.scale_invariant_loss_trap(seed=0)
    assert trap.mean_square_loss == pytest.approx(0.99998945, rel=1e-6)
    assert trap.mean_square_grad == pytest.approx(5.0487e-7, rel=1e-3)
    assert trap.projection_grad == pytest.approx(66.400, rel=1e-3)
    assert trap.ratio == pytest.approx(7.6035e-9, rel=1e-3)


# ---------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("call", [
    lambda: N.activation_stats(depth=2, d_model=8, n_tokens=3, seed=5),
    lambda: N.norm_comparison(seed=5),
    lambda: N.scale_invariant_loss_trap(d=8, n_tokens=3, batch=2, seed=5),
])
def test_two_runs_with_the_same_seed_are_identical(call):
    _assert_same(call(), call())


@pytest.mark.parametrize("call", [
    lambda seed: N.activation_stats(depth=2, d_model=8, n_tokens=3, seed=seed).std["none"].y,
    lambda seed: N.norm_comparison(seed=seed).changes[N.NORM_TESTS[1]]["batch"],
    lambda seed: N.scale_invariant_loss_trap(d=8, n_tokens=3, batch=2, seed=seed).projection_grad,
])
def test_different_seeds_give_different_numbers(call):
    assert not np.array_equal(call(0), call(1))


def test_experiments_leave_the_global_rng_untouched():
    state = torch.get_rng_state()
    N.activation_stats(depth=1, d_model=4, n_tokens=2, batch=1)
    N.norm_comparison(d=4)
    N.scale_invariant_loss_trap(d=4, n_tokens=2, batch=1)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("call, name", [
    (lambda: N.activation_stats(norms=("batchnorm",)), "norms"),
    (lambda: N.activation_stats(norms=("batch",)), "norms"),  # BatchNorm is norm_comparison's business
    (lambda: N.activation_stats(norms=()), "norms"),
    (lambda: N.activation_stats(depth=0), "depth"),
    (lambda: N.activation_stats(norm_position="middle"), "norm_position"),
    (lambda: N.activation_stats(d_model=30, n_heads=4), "n_heads"),
    (lambda: N.activation_stats(n_tokens=0), "n_tokens"),
    (lambda: N.activation_stats(batch=0), "batch"),
    (lambda: N.activation_stats(dtype=torch.int64), "dtype"),
    (lambda: N.norm_comparison(pad_lengths=(8, 8)), "pad_lengths"),
    (lambda: N.norm_comparison(pad_lengths=(4, 12)), "pad_lengths"),  # shorter than the longer sentence
    (lambda: N.norm_comparison(pad_lengths=(8, 12, 16)), "pad_lengths"),
    (lambda: N.norm_comparison(d=1), "d"),
    (lambda: N.norm_comparison(dtype=torch.int64), "dtype"),
    (lambda: N.norm_comparison(device="nowhere"), "device"),
    (lambda: N.scale_invariant_loss_trap(eps=0.0), "eps"),
    (lambda: N.scale_invariant_loss_trap(d=1), "d"),
    (lambda: N.scale_invariant_loss_trap(n_tokens=0), "n_tokens"),
    (lambda: N.scale_invariant_loss_trap(batch=0), "batch"),
    (lambda: N.scale_invariant_loss_trap(dtype=torch.int64), "dtype"),
    (lambda: N.scale_invariant_loss_trap(seed=1.5), "seed"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^(every entry of )?{name}\b"):
        call()


@pytest.mark.parametrize("call", [
    lambda: N.activation_stats(norm="layer"),
    lambda: N.norm_comparison(d_model=16),
    lambda: N.scale_invariant_loss_trap(epsilon=1e-5),
])
def test_unknown_keywords_are_errors(call):
    with pytest.raises(TypeError):
        call()
