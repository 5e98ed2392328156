"""Chapter 3, highway 2 — residual connections (gradlib.exp_residual): the identity lane, and how loud the branch is.

Every conclusion is re-measured over seeds 0, 1, 2 with thresholds that leave a margin of ~3× or more over
what the seeds measured. Independent truths: the Jacobian I + α J_f at α = 0 (the identity, every σ = 1),
LayerNorm's Jacobian (its σ are 1/std of the tokens), autograd's full Jacobian and its SVD, ‖x‖ = √d after a
LayerNorm, and the blocks unrolled by hand (no hooks). Where a number can be recomputed by calling the probe
directly on the same model and input, it must be equal.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _experiment_helpers import _assert_facts_hold, _assert_same  # tests/: checks every experiment test shares
from gradlib import draws, mlp
from gradlib import exp_residual as R
from gradlib.exp_telephone import mlp_gradients
from gradlib.spectra import jacobian_top_singular_values
from gradlib.probes import layer_stats
from gradlib.reference import torch_encoder_stack
from gradlib.transformer import TransformerStack

SEEDS = (0, 1, 2)
F64 = torch.float64


def _inputs(shape: tuple[int, ...], seed: int, dtype=F64) -> torch.Tensor:
    """The experiments' inputs, written out: N(0, 1) from the data stream seed + 1_000_003."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1_000_003), dtype=dtype)


# ------------------------------------------------------------------------------------- skips vs plain
@pytest.mark.parametrize("seed", SEEDS)
def test_skip_connections_stop_a_50_layer_tanh_stack_from_vanishing(seed):
    plain, residual = R.residual_vs_plain(depth=50, width=128, seed=seed)
    assert (plain.label, residual.label) == ("plain", "residual")
    assert plain.ratio < 1e-10  # measured 1.7e-12 to 2.2e-12
    assert residual.ratio > 1.0  # measured 10.1-10.5: the identity path survives (now it even grows)...
    assert residual.ratio < 100.0  # ... but by far less than 100× (as chapter 3 says)
    assert plain.exploded_at is None and residual.exploded_at is None


def test_residual_vs_plain_is_mlp_gradients_without_and_with_the_skip():
    plain, residual = R.residual_vs_plain(depth=4, width=8, batch=3, activation="relu", init="he", seed=2)
    common = dict(depth=4, width=8, batch=3, activation="relu", init="he", seed=2)
    np.testing.assert_array_equal(plain.grad_norms, mlp_gradients(**common).grad_norms)
    np.testing.assert_array_equal(residual.grad_norms, mlp_gradients(residual=True, **common).grad_norms)
    np.testing.assert_array_equal(plain.param_norms, mlp_gradients(**common).param_norms)


# ------------------------------------------------------------------------------------ ReZero / DeepNorm
@pytest.mark.parametrize("seed", SEEDS)
def test_rezero_alpha_zero_makes_every_singular_value_one(seed):
    result = R.residual_scale_spectrum(alphas=(0.0, 0.5), n_layers=4, d_model=16, seed=seed)
    np.testing.assert_allclose(result.singular_values[0], 1.0, atol=1e-12)  # I + 0·J_f = I exactly
    assert result.singular_values[1, 0] > 1.0 + 1e-3  # measured 1.78-1.95
    assert result.variant == "rezero"
    np.testing.assert_array_equal(result.alphas, [0.0, 0.5])
    assert result.singular_values.shape == (2, 4)


@pytest.mark.parametrize("variant", ["postln", "deepnorm"])
@pytest.mark.parametrize("seed", SEEDS)
def test_post_ln_at_alpha_zero_computes_layernorm_whose_singular_values_are_one_over_token_std(seed, variant):
    # α = 0: every sub-layer is LN(s·x), so the stack is LN(x) (γ = 1, β = 0) and its Jacobian is, per token t,
    # (I − 11ᵀ/d − ŷŷᵀ/d)/σ_t: d − 2 singular values 1/σ_t each; the top k (≤ d − 2) all equal max_t 1/σ_t.
    result = R.residual_scale_spectrum(alphas=(0.0,), n_layers=4, d_model=16, n_tokens=6, k=4, seed=seed,
                                       variant=variant)
    x = _inputs((1, 6, 16), seed)
    top = (1.0 / x.std(dim=-1, unbiased=False)).max().item()
    np.testing.assert_allclose(result.singular_values[0], top, rtol=1e-4)  # ε = 1e-5 inside the LNs
    assert result.variant == variant


@pytest.mark.parametrize("seed", SEEDS)
def test_postln_at_alpha_one_is_pytorchs_own_post_ln_encoder_stack(seed):
    # The control for DeepNorm: α = 1, s = 1, PyTorch's init is nn.TransformerEncoderLayer(norm_first=False);
    # the truth is the SVD of autograd's Jacobian through PyTorch's modules (the same draws for the same seed).
    result = R.residual_scale_spectrum(alphas=(1.0,), n_layers=2, d_model=8, n_tokens=4, k=3, seed=seed,
                                       variant="postln")
    torch_stack = torch_encoder_stack(2, 8, 1, 32, norm_first=False, final_norm=False, seed=seed, dtype=F64)
    jac = torch.autograd.functional.jacobian(torch_stack, _inputs((1, 4, 8), seed)).reshape(32, 32)
    np.testing.assert_allclose(result.singular_values[0], torch.linalg.svdvals(jac)[:3].numpy(), rtol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
def test_deepnorm_scales_not_layernorm_keep_the_post_ln_jacobian_near_its_alpha_zero_value(seed):
    # The Post-LN control has DeepNorm's structure without s and β: its σ_max still grows with α, so it is the
    # scales that keep DeepNorm quiet. Measured at N = 6: σ_max(α=1)/σ_max(α=0) = 2.58-3.05 for Post-LN,
    # 1.16-1.27 for DeepNorm.
    post = R.residual_scale_spectrum(alphas=(0.0, 1.0), n_layers=6, k=2, seed=seed, variant="postln")
    deep = R.residual_scale_spectrum(alphas=(0.0, 1.0), n_layers=6, k=2, seed=seed, variant="deepnorm")
    np.testing.assert_allclose(post.singular_values[0], deep.singular_values[0], rtol=1e-4)  # both LN(x)
    assert post.singular_values[1, 0] / post.singular_values[0, 0] > 2.0
    assert post.singular_values[1, 0] / post.singular_values[0, 0] > 1.5 * (
        deep.singular_values[1, 0] / deep.singular_values[0, 0])


@pytest.mark.parametrize("seed", SEEDS)
def test_deepnorm_keeps_the_jacobian_near_its_alpha_zero_value_where_a_plain_residual_grows(seed):
    # DeepNorm's up-weighted skip s = (2N)^(1/4) and β-shrunk branches bound what each block adds.
    # Measured at N = 6: σ_max(α=1)/σ_max(α=0) = 1.16-1.27 for DeepNorm, 4.0-5.0 for x + f(x).
    deep = R.residual_scale_spectrum(alphas=(0.0, 1.0), n_layers=6, k=2, seed=seed, variant="deepnorm")
    plain = R.residual_scale_spectrum(alphas=(0.0, 1.0), n_layers=6, k=2, seed=seed)
    assert deep.singular_values[1, 0] / deep.singular_values[0, 0] < 1.5
    assert plain.singular_values[1, 0] > 2.0 * plain.singular_values[0, 0]


def test_exact_and_iterative_spectra_agree():
    kwargs = dict(alphas=(0.5,), n_layers=2, d_model=4, n_tokens=3, k=2, seed=0)
    exact = R.residual_scale_spectrum(method="exact", **kwargs)
    iterative = R.residual_scale_spectrum(method="iterative", **kwargs)
    np.testing.assert_allclose(iterative.singular_values, exact.singular_values, rtol=1e-6)


@pytest.mark.parametrize("variant, norm", [("rezero", "none"), ("rezero", "layer"), ("postln", "layer"),
                                           ("postln", "rms"), ("deepnorm", "rms")])
def test_spectrum_measures_through_jacobian_top_singular_values_and_equals_autograds_svd(variant, norm):
    alphas, seed = (0.3, 1.0), 6
    result = R.residual_scale_spectrum(alphas=alphas, n_layers=2, d_model=4, n_tokens=3, k=3, norm=norm,
                                       variant=variant, seed=seed)
    structure = {"rezero": dict(norm_position="pre"), "postln": dict(norm_position="post"),
                 "deepnorm": dict(norm_position="post", init="deepnorm")}[variant]
    for row, alpha in enumerate(alphas):
        model = TransformerStack(2, 4, 1, norm=norm, residual=True, branch_scale=alpha, final_norm=False,
                                 seed=seed, dtype=F64, **structure)
        x = draws.randn((1, 3, 4), draws.data_generator(seed), F64)
        probe = jacobian_top_singular_values(model, x, k=3, seed=seed)
        np.testing.assert_array_equal(result.singular_values[row], probe.singular_values)
        jac = torch.autograd.functional.jacobian(model, _inputs((1, 3, 4), seed)).reshape(12, 12)  # (T·d, T·d)
        np.testing.assert_allclose(result.singular_values[row], torch.linalg.svdvals(jac)[:3].numpy(), rtol=1e-10)


def test_spectrum_of_an_exploding_stack_is_nan_not_an_error():
    # ReZero α = 1e30, no norm: the branches overflow float32, so the Jacobian is not finite
    result = R.residual_scale_spectrum(alphas=(1e30,), n_layers=2, d_model=4, n_tokens=2, k=2, dtype=torch.float32)
    assert np.all(np.isnan(result.singular_values))
    assert result.curves["sigma1"].exploded_at == 0


# ----------------------------------------------------------------------------- one layer, one branch
def test_layer_spectrum_is_the_svd_of_i_plus_diag_tanh_prime_w_at_the_hand_unrolled_inputs():
    # Truth in closed form: ∂(h + tanh(W h))/∂h = I + diag(1 − tanh²(W h)) W, at h_{l−1} unrolled by hand.
    seed = 4
    result = R.layer_spectrum(depth=3, width=8, seed=seed)
    model = mlp.DeepMLP(8, 3, residual=True, init="old", seed=seed, dtype=F64)
    h = _inputs((64, 8), seed, dtype=torch.float32)[:1].double()  # (1, n): residual_vs_plain's first input
    for l, layer in enumerate(model.layers):
        w = layer.linear.weight.detach()  # (n, n)
        jac = torch.eye(8, dtype=F64) + torch.diag(1 - torch.tanh(w @ h[0]) ** 2) @ w
        sv = torch.linalg.svdvals(jac)
        np.testing.assert_allclose([result["max"].y[l], result["min"].y[l]], [sv[0], sv[-1]], rtol=1e-10)
        h = h + torch.tanh(h @ w.T)
    np.testing.assert_array_equal(result["max"].x, [1, 2, 3])
    assert result.keys() == ["max", "min", "one"]


@pytest.mark.parametrize("seed", SEEDS)
def test_every_residual_layer_of_experiment_one_stretches_some_directions_and_shrinks_others(seed):
    result = R.layer_spectrum(seed=seed)  # 50 layers of 128, tanh, old init: as the chapter
    assert result["max"].y.min() > 1.2  # measured 1.44-1.47
    assert result["min"].y.max() < 0.8  # measured 0.64-0.66


def test_branch_jacobian_scale_is_the_closed_form_diag_phi_prime_w():
    scales, seed = (0.5, 2.0, 8.0), 3
    result = R.branch_jacobian_scale(scales=scales, width=6, seed=seed)
    z = _inputs((1, 6), seed)[0]  # (n,)
    for act, prime in (("tanh", lambda u: 1 - torch.tanh(u) ** 2), ("relu", lambda u: (u > 0).to(F64))):
        w = mlp.DeepMLP(6, 1, activation=act, init="old", seed=seed, dtype=F64).layers[0].linear.weight.detach()
        expected = [torch.linalg.svdvals(torch.diag(prime(c * (w @ z))) @ w)[0].item() for c in scales]
        np.testing.assert_allclose(result[act].y, expected, rtol=1e-10)
        np.testing.assert_array_equal(result[act].x, scales)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_larger_input_shrinks_a_tanh_branchs_jacobian_and_leaves_a_relus_unchanged(seed):
    result = R.branch_jacobian_scale(seed=seed)
    tanh, relu = result["tanh"].y, result["relu"].y
    assert np.all(np.diff(tanh) < 0)  # saturation: every step up in c shrinks ‖J_f‖
    assert tanh[0] > 1.5 * tanh[-1]  # measured 1.8-2.8× from c = 0.1 to c = 30
    np.testing.assert_allclose(relu, relu[0], rtol=1e-12)  # ReLU′(c·u) = ReLU′(u) for c > 0, no bias


# ------------------------------------------------------------------------------------------ the stream
@pytest.mark.parametrize("seed", SEEDS)
def test_residual_stream_grows_without_norm_and_stays_flat_with_post_ln(seed):
    result = R.residual_stream_norms(depth=12, d_model=32, seed=seed)
    assert result.keys() == ["none", "pre", "post", "deepnorm"]
    none, pre, post = (result[k].y for k in ("none", "pre", "post"))
    assert none[-1] > 1.3 * none[0]  # measured 1.61-1.73×
    assert pre[-1] > pre[0]  # Pre-LN's stream still grows (1.37-1.46×)
    np.testing.assert_allclose(post[1:], math.sqrt(32), rtol=1e-3)  # LN output: ‖x‖ = √d (γ = 1, β = 0)
    np.testing.assert_allclose(result["deepnorm"].y[1:], math.sqrt(32), rtol=1e-3)
    np.testing.assert_array_equal(result["none"].x, np.arange(13))


@pytest.mark.parametrize("key", list(R.STREAM_VARIANTS))
def test_stream_norms_are_the_hand_unrolled_token_norms_and_layer_stats(key):
    seed = 3
    result = R.residual_stream_norms(depth=3, d_model=8, n_heads=2, d_ff=16, n_tokens=4, batch=2, variants=(key,),
                                     seed=seed)
    model = TransformerStack(3, 8, 2, 16, residual=True, final_norm=False, seed=seed, **R.STREAM_VARIANTS[key][2])
    x = _inputs((2, 4, 8), seed, dtype=torch.float32)
    with torch.no_grad():
        hs = [x]
        for block in model.layers:
            hs.append(block(hs[-1]))
    expected = [h.double().norm(dim=-1).mean().item() for h in hs]
    np.testing.assert_allclose(result[key].y, expected, rtol=1e-6)
    squares = [h.double().pow(2).sum(dim=-1).mean().item() for h in hs]  # E‖x_l‖² over batch and tokens
    np.testing.assert_allclose(result.squared[key].y, squares, rtol=1e-6)
    np.testing.assert_allclose(result.increments(key), np.diff(squares), rtol=1e-5, atol=1e-9)
    probe = layer_stats(model, draws.randn((2, 4, 8), draws.data_generator(seed), torch.float32)).norm
    np.testing.assert_array_equal(result[key].y[1:], probe)


# ------------------------------------------------------------------------------------ the chapter's numbers
def test_regression_residual_vs_plain_of_chapter_three_at_seed_0():
    # What chapter 3 prints (the old gradlib.experiments produced the same): a reshaping must not move them.
    plain, residual = R.residual_vs_plain(seed=0)  # 50 layers of 128, as the chapter
    assert plain.ratio == pytest.approx(2.1892e-12, rel=1e-3)
    assert residual.ratio == pytest.approx(10.453, rel=1e-3)


def test_regression_residual_scale_spectrum_of_chapter_three_at_seed_0():
    # σ_max at α = 0 and α = 1 of the chapter's 6-block stacks (every α is its own model: the same numbers as
    # in the chapter's sweep over α = 0 … 1)
    rezero = R.residual_scale_spectrum(alphas=(0.0, 1.0), seed=0)
    deepnorm = R.residual_scale_spectrum(alphas=(0.0, 1.0), seed=0, variant="deepnorm")
    np.testing.assert_allclose(rezero.singular_values[:, 0], [1.0, 5.0487], rtol=1e-3)
    np.testing.assert_allclose(rezero.singular_values[1], [5.0487, 3.856, 3.627, 3.377], rtol=1e-3)
    np.testing.assert_allclose(deepnorm.singular_values[:, 0], [1.2038, 1.5333], rtol=1e-3)


@pytest.mark.parametrize("seed", SEEDS)
def test_pre_ln_squared_stream_grows_faster_than_linearly_at_pytorchs_init(seed):
    # Xiong et al.'s linear bounds assume their init; at PyTorch's the increments of E‖x_l‖² grow with l
    # (last 6 of 24 blocks over the first 6: measured 1.26-1.69) and stay below their lower bound (1 + l/2)·d.
    result = R.residual_stream_norms(depth=24, d_model=64, seed=seed, variants=("pre",))
    inc = result.increments("pre")  # noisy block to block (one of seed 1's is negative): compare quarters
    assert inc[-6:].mean() > 1.1 * inc[:6].mean()
    assert result.squared["pre"].y[-1] < (1 + 24 / 2) * 64


def test_regression_residual_stream_of_chapter_three_at_seed_0():
    result = R.residual_stream_norms(depth=24, d_model=64, seed=0, variants=("none", "pre", "post"))
    np.testing.assert_allclose(result["none"].y[[0, 12, 24]], [8.0569, 13.985, 45.860], rtol=1e-3)
    np.testing.assert_allclose(result["pre"].y[[12, 24]], [11.292, 14.834], rtol=1e-3)
    np.testing.assert_allclose(result["post"].y[[12, 24]], [8.0000, 8.0000], rtol=1e-3)
    np.testing.assert_allclose(result.squared["pre"].y[[0, 12, 24]], [65.1, 128.5, 221.7], rtol=1e-3)


# ---------------------------------------------------------------------------------------------- the facts
@pytest.mark.parametrize("seed", SEEDS)
def test_every_fact_of_chapter_three_holds(seed):
    _assert_facts_hold(R.facts(seed), seed)


# ---------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("call", [
    lambda: R.residual_vs_plain(depth=3, width=8, batch=2, seed=5),
    lambda: R.residual_scale_spectrum(alphas=(0.5,), n_layers=2, d_model=8, n_tokens=3, seed=5, variant="deepnorm"),
    lambda: R.residual_stream_norms(depth=2, d_model=16, seed=5),
    lambda: R.layer_spectrum(depth=2, width=4, seed=5),
    lambda: R.branch_jacobian_scale(scales=(1.0, 2.0), width=4, seed=5),
])
def test_two_runs_with_the_same_seed_are_identical(call):
    _assert_same(call(), call())


@pytest.mark.parametrize("call", [
    lambda seed: R.residual_vs_plain(depth=3, width=8, batch=2, seed=seed)[1].grad_norms,
    lambda seed: R.residual_scale_spectrum(alphas=(0.5,), n_layers=1, d_model=4, n_tokens=2, k=1,
                                           seed=seed).singular_values,
    lambda seed: R.residual_stream_norms(depth=2, d_model=8, n_tokens=2, batch=1, seed=seed)["pre"].y,
])
def test_different_seeds_give_different_numbers(call):
    assert not np.array_equal(call(0), call(1))


def test_experiments_leave_the_global_rng_untouched():
    state = torch.get_rng_state()
    R.residual_vs_plain(depth=2, width=4, batch=2)
    # the iterative method starts from a random subspace: drawn from its own generator
    R.residual_scale_spectrum(alphas=(0.0,), n_layers=1, d_model=4, n_tokens=2, k=1, method="iterative")
    R.residual_stream_norms(depth=1, d_model=4, n_tokens=2, batch=1)
    R.layer_spectrum(depth=1, width=4)
    R.branch_jacobian_scale(scales=(1.0,), width=4)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("call, name", [
    (lambda: R.residual_vs_plain(depth=0), "depth"),
    (lambda: R.residual_vs_plain(width=0), "width"),
    (lambda: R.residual_vs_plain(activation="softplus"), "activation"),
    (lambda: R.residual_vs_plain(init="kaiming"), "init"),
    (lambda: R.residual_vs_plain(batch=0), "batch"),
    (lambda: R.residual_vs_plain(dtype=torch.int64), "dtype"),
    (lambda: R.residual_scale_spectrum(variant="admin"), "variant"),
    (lambda: R.residual_scale_spectrum(variant="deepnorm", norm="none"), "norm"),
    (lambda: R.residual_scale_spectrum(variant="postln", norm="batch"), "norm"),
    (lambda: R.residual_scale_spectrum(norm="group"), "norm"),
    (lambda: R.residual_scale_spectrum(alphas=(-0.1,)), "alphas"),
    (lambda: R.residual_scale_spectrum(alphas=()), "alphas"),
    (lambda: R.residual_scale_spectrum(method="lanczos"), "method"),
    (lambda: R.residual_scale_spectrum(k=0), "k"),
    (lambda: R.residual_scale_spectrum(k=1000, n_tokens=2, d_model=4), "k"),
    (lambda: R.residual_scale_spectrum(n_layers=0), "n_layers"),
    (lambda: R.residual_scale_spectrum(d_model=30, n_heads=4), "n_heads"),
    (lambda: R.residual_scale_spectrum(n_tokens=0), "n_tokens"),
    (lambda: R.residual_scale_spectrum(dtype=torch.int64), "dtype"),
    (lambda: R.residual_stream_norms(variants=("nothing",)), "variants"),
    (lambda: R.residual_stream_norms(variants=()), "variants"),
    (lambda: R.residual_stream_norms(depth=0), "depth"),
    (lambda: R.residual_stream_norms(d_model=30, n_heads=4), "n_heads"),
    (lambda: R.residual_stream_norms(d_ff=0), "d_ff"),
    (lambda: R.residual_stream_norms(n_tokens=0), "n_tokens"),
    (lambda: R.residual_stream_norms(batch=0), "batch"),
    (lambda: R.residual_stream_norms(dtype=torch.int64), "dtype"),
    (lambda: R.residual_stream_norms(seed=1.5), "seed"),
    (lambda: R.layer_spectrum(depth=0), "depth"),
    (lambda: R.layer_spectrum(width=0), "width"),
    (lambda: R.layer_spectrum(activation="softplus"), "activation"),
    (lambda: R.layer_spectrum(batch=0), "batch"),
    (lambda: R.branch_jacobian_scale(scales=(0.0, 1.0)), "scales"),
    (lambda: R.branch_jacobian_scale(scales=(-1.0,)), "scales"),
    (lambda: R.branch_jacobian_scale(scales=()), "scales"),
    (lambda: R.branch_jacobian_scale(init="kaiming"), "init"),
    (lambda: R.facts(seed=1.5), "seed"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^(every entry of )?{name}\b"):
        call()


@pytest.mark.parametrize("call", [
    lambda: R.residual_vs_plain(residual=True),
    lambda: R.residual_scale_spectrum(n_iter=40),  # the old power-iteration argument is gone
    lambda: R.residual_stream_norms(norm="layer"),
])
def test_unknown_keywords_are_errors(call):
    with pytest.raises(TypeError):
        call()
