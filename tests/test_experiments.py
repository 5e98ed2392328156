"""The course's conclusions, each re-measured over seeds 0, 1, 2 by gradlib.experiments.

Every test states one fact the chapters teach; thresholds leave a margin of ~3× or more over what the seeds
measured (so that they can fail when the fact is false, not when a seed is unlucky). Independent truths:
the linear theory ρ^(T−t), autograd, and PyTorch's own encoder layer.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradlib import experiments as E

SEEDS = (0, 1, 2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These models are tiny: a second intra-op thread gains nothing, and on a busy 2-core machine its
    # spin-waiting makes every small op many times slower. Restored afterwards for the other test files.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------ vanishing gradients
@pytest.mark.parametrize("seed", SEEDS)
def test_old_init_tanh_vanishes_xavier_keeps_and_sigmoid_vanishes_even_with_xavier(seed):
    old = E.mlp_gradients(activation="tanh", init="old", seed=seed)
    xavier = E.mlp_gradients(activation="tanh", init="xavier", seed=seed)
    sigmoid = E.mlp_gradients(activation="sigmoid", init="xavier", seed=seed)
    assert old.ratio < 0.05  # measured ≈ 6.5e-3: (1/√3)^9 ≈ 7e-3 times tanh' < 1
    assert xavier.ratio > 0.1  # measured ≈ 0.39
    assert sigmoid.ratio < 1e-4  # measured ≈ 2.3e-6: σ' ≤ 1/4
    assert old.label == "tanh, old init" and xavier.label == "tanh, xavier init"
    np.testing.assert_array_equal(old.layer, np.arange(1, 11))
    assert old.ratio == pytest.approx(old.grad_norms[0] / old.grad_norms[-1])


def test_old_init_gradient_shrinks_layer_by_layer_toward_the_input():
    profile = E.mlp_gradients(activation="tanh", init="old", seed=0)
    assert np.all(np.diff(profile.grad_norms) > 0)  # larger nearer the output, every single step


def test_exploding_weights_return_inf_instead_of_raising():
    profile = E.mlp_gradients(depth=30, width=64, activation="identity", weight_scale=100.0, seed=0)
    assert not np.all(np.isfinite(profile.grad_norms))  # 100^30 overflows float32
    assert isinstance(profile.exploded_at, int)
    assert not np.isfinite(profile.ratio)


def test_large_weight_scale_explodes_toward_the_input():
    profile = E.mlp_gradients(depth=10, width=128, activation="identity", weight_scale=2.0, seed=0)
    assert profile.exploded_at is None
    assert profile.ratio > 100.0  # ≈ 2^9 = 512


def _projection(shape: tuple[int, ...]) -> torch.Tensor:
    """probes' default loss direction r ~ N(0, 1) (seed 0, float64): the loss is ⟨y, r⟩."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _inputs(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The experiments' inputs: N(0, 1) from the data stream seed + 1_000_003, float64."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1_000_003), dtype=torch.float64)


def _autograd_hidden_grads(layers, x: torch.Tensor, final=lambda h: h) -> np.ndarray:
    """‖∂⟨y, r⟩/∂h_l‖ for every layer output h_l, by autograd on the outputs themselves (no hooks)."""
    outputs, h = [], x
    for layer in layers:
        h = layer(h)
        outputs.append(h)
    y = final(h)
    grads = torch.autograd.grad((y * _projection(tuple(y.shape))).sum(), outputs)
    return np.array([g.norm().item() for g in grads])


@pytest.mark.parametrize("alpha", [0.25, 1.0, 2.0])
def test_scaled_residual_mlp_profile_matches_autograd_on_h_plus_alpha_f(alpha):
    from gradlib.blocks import DeepMLP

    profile = E.mlp_gradients(depth=6, width=16, batch=4, residual=True, branch_scale=alpha, seed=1,
                              dtype=torch.float64)
    plain_skips = DeepMLP(16, 6, init="old", residual=True, seed=1, dtype=torch.float64)  # same weights, α = 1
    steps = [lambda h, f=layer.branch: h + alpha * f(h) for layer in plain_skips.layers]
    expected = _autograd_hidden_grads(steps, _inputs((4, 16), seed=1))
    np.testing.assert_allclose(profile.grad_norms, expected, rtol=1e-12)
    # the default α = 1 keeps the label it always had
    scaled = "" if alpha == 1.0 else f", α = {alpha:g}"
    assert profile.label == "tanh, old init, residual" + scaled


def test_branch_scale_zero_makes_every_layer_the_identity_so_the_gradient_is_the_same_everywhere():
    profile = E.mlp_gradients(depth=8, width=16, batch=4, residual=True, branch_scale=0.0, seed=0)
    expected = _projection((4, 16)).float().norm().item()  # ∂⟨x, r⟩/∂x = r at every layer
    np.testing.assert_allclose(profile.grad_norms, expected, rtol=1e-6)
    assert profile.ratio == pytest.approx(1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_rnn_gradient_equals_rho_to_the_distance(seed):
    result = E.rnn_gradients(radii=(0.9, 1.0, 1.1), T=50, activation="identity", seed=seed)
    np.testing.assert_array_equal(result.steps, np.arange(1, 51))
    np.testing.assert_allclose(result.norms, result.theory, rtol=1e-10)
    np.testing.assert_allclose(result.theory[:, -1], [0.9**50, 1.0, 1.1**50])


def test_tanh_rnn_gradient_stays_below_the_linear_bound():
    result = E.rnn_gradients(radii=(0.9, 1.1), T=30, activation="tanh", seed=0)
    assert np.all(result.norms <= result.theory * (1 + 1e-9))
    assert result.norms[1, -1] < 1.0  # ρ = 1.1 does not explode here: tanh saturation damps it


# ---------------------------------------------------------------------------------------------- attention
@pytest.mark.parametrize("seed", SEEDS)
def test_rnn_path_decays_exponentially_while_attention_is_one_step(seed):
    result = E.path_lengths(seq_len=32, n_sequences=2, seed=seed)
    assert result.rnn[24] < 1e-5 * result.attention[24]  # measured: ~1e-8 vs ~0.3
    assert result.rnn[31] < 1e-8  # science: 4e-10 at n = 32
    # attention's dependence falls like a power of n, not exponentially: x_1 is one step from every y_n
    assert result.attention[31] > result.attention[0] / 100
    assert 0.4 < result.rho < 0.8  # nn.RNN's default init: spectral radius ≈ 1/√3


@pytest.mark.parametrize("seed", SEEDS)
def test_pure_attention_collapses_to_rank_one_and_skips_prevent_it(seed):
    result = E.rank_collapse_depth(depth=12, seed=seed)
    pure = result.curves["attention only"]
    skip = result.curves["with skip connections"]
    assert result.layer[0] == 0 and pure[0] == skip[0] > 0.9  # random tokens: far from rank one
    assert pure[-1] < 1e-6  # measured ≈ 2e-16 (float64 round-off) from layer 4 on
    # Measured with skips at depth 12: 0.16, 0.22, 0.05 (seeds 0-2) — slowly shrinking, not collapsed.
    assert skip[-1] > 1e-2
    assert skip[-1] > 1e10 * pure[-1]


@pytest.mark.parametrize("seed", SEEDS)
def test_depth_scaled_branches_keep_a_deep_attention_stack_far_from_rank_one(seed):
    # Noci et al. 2022: x_l + attn(x_l)/√L. Measured at depth 48: unscaled skips collapse too (3e-7 to 9e-6),
    # branches scaled by 1/√L stay at 0.89-0.94.
    result = E.rank_collapse_depth(depth=48, seed=seed,
                                   variants=("with skip connections", "residual, branch 1/√L"))
    assert list(result.curves) == ["with skip connections", "residual, branch 1/√L"]
    scaled, unscaled = result.curves["residual, branch 1/√L"], result.curves["with skip connections"]
    assert scaled[0] == unscaled[0]  # the same input
    assert scaled[-1] > 0.5
    assert scaled[-1] > 1e3 * unscaled[-1]


def test_rank_collapse_default_variants_are_pure_attention_and_plain_skips():
    result = E.rank_collapse_depth(depth=2, n_tokens=4, d=8)
    assert list(result.curves) == ["attention only", "with skip connections"]


@pytest.mark.parametrize("seed", SEEDS)
def test_query_gradient_vanishes_under_rank_collapse_but_not_with_scaled_residuals(seed):
    result = E.qk_gradients(depths=(1, 8), seed=seed)
    pure, scaled = result.curves["attention only"], result.curves["residual, branch 1/√L"]
    assert pure[0] == pytest.approx(scaled[0])  # depth 1: the same single layer
    assert pure[1] < 1e-6  # measured ≈ 1e-18: the last layer's input tokens are identical
    assert scaled[1] > 0.1  # measured 0.7-0.9
    assert result.cosine["attention only"][1] > 0.99
    assert result.cosine["residual, branch 1/√L"][1] < 0.5


def test_query_gradient_at_the_first_layer_does_not_vanish():
    # Documented in qk_gradients: collapse acts on the layers whose *input* is collapsed.
    result = E.qk_gradients(depths=(8,), layer="first", seed=0)
    assert result.layer == "first"
    assert result.curves["attention only"][0] > 0.05


@pytest.mark.parametrize("seed", SEEDS)
def test_unscaled_scores_saturate_the_softmax_at_large_d_k(seed):
    result = E.softmax_saturation(d_ks=(16, 1024), n_rows=256, seed=seed)
    assert result.saturated_fraction["none"][-1] > 0.5  # measured ≈ 0.7-0.77
    assert np.all(result.saturated_fraction["sqrt_dk"] < 0.05)  # measured 0
    jac_scaled, jac_none = result.jacobian_norm["sqrt_dk"], result.jacobian_norm["none"]
    assert jac_scaled.max() / jac_scaled.min() < 1.5  # with 1/√d_k the Jacobian does not depend on d_k
    assert jac_none[-1] < 0.5 * jac_none[0]  # without it the Jacobian shrinks as d_k grows


def test_softmax_saturation_query_gradient_matches_autograd():
    result = E.softmax_saturation(d_ks=(8,), scales=("none", 2.0), n_rows=3, n_keys=5, seed=0)
    gen = torch.Generator().manual_seed(0 + 1_000_003)  # the experiment's data stream
    q = torch.randn(3, 8, generator=gen, dtype=torch.float64)
    k = torch.randn(5, 8, generator=gen, dtype=torch.float64)
    for key, s in (("none", 1.0), ("tau=2", 0.5)):
        norms = []
        for i in range(3):
            jac = torch.autograd.functional.jacobian(lambda qi: torch.softmax(s * qi @ k.T, -1), q[i])  # (S, d_k)
            norms.append(jac.norm().item())
        assert result.query_grad_norm[key][0] == pytest.approx(np.mean(norms), rel=1e-12)


# ----------------------------------------------------------------------------------------------- residual
@pytest.mark.parametrize("seed", SEEDS)
def test_skip_connections_stop_a_50_layer_tanh_stack_from_vanishing(seed):
    plain, residual = E.residual_vs_plain(depth=50, width=128, seed=seed)
    assert (plain.label, residual.label) == ("plain", "residual")
    assert plain.ratio < 1e-10  # measured ≈ 2e-12
    assert residual.ratio > 1.0  # measured ≈ 10: the identity path survives (now it even grows)
    assert residual.exploded_at is None


@pytest.mark.parametrize("seed", SEEDS)
def test_rezero_alpha_zero_makes_every_singular_value_one(seed):
    result = E.residual_scale_spectrum(alphas=(0.0, 0.5), n_layers=4, d_model=16, seed=seed)
    np.testing.assert_allclose(result.singular_values[0], 1.0, atol=1e-6)
    assert result.singular_values[1, 0] > 1.0 + 1e-3


@pytest.mark.parametrize("seed", SEEDS)
def test_deepnorm_at_alpha_zero_computes_layernorm_whose_singular_values_are_one_over_token_std(seed):
    # α = 0: every sub-layer is LN(s·x), so the stack is LN(x) (γ = 1, β = 0) and its Jacobian is, per token t,
    # (I − 11ᵀ/d − ŷŷᵀ/d)/σ_t: d − 2 singular values 1/σ_t each. The top k (≤ d − 2) all equal max_t 1/σ_t.
    result = E.residual_scale_spectrum(alphas=(0.0,), n_layers=4, d_model=16, n_tokens=6, k=4, seed=seed,
                                       variant="deepnorm")
    x = _inputs((1, 6, 16), seed)
    top = (1.0 / x.std(dim=-1, unbiased=False)).max().item()
    np.testing.assert_allclose(result.singular_values[0], top, rtol=1e-4)  # ε = 1e-5 inside the LNs
    assert result.variant == "deepnorm"


@pytest.mark.parametrize("seed", SEEDS)
def test_deepnorm_keeps_the_jacobian_near_its_alpha_zero_value_where_a_plain_residual_grows(seed):
    # DeepNorm's up-weighted skip s = (2N)^(1/4) and β-shrunk branches bound what each block adds.
    # Measured at N = 6: σ_max(α=1)/σ_max(α=0) = 1.16-1.27 for DeepNorm, 4.0-5.0 for x + f(x).
    deep = E.residual_scale_spectrum(alphas=(0.0, 1.0), n_layers=6, k=2, seed=seed, variant="deepnorm")
    plain = E.residual_scale_spectrum(alphas=(0.0, 1.0), n_layers=6, k=2, seed=seed)
    assert deep.singular_values[1, 0] / deep.singular_values[0, 0] < 1.5
    assert plain.singular_values[1, 0] > 2.0 * plain.singular_values[0, 0]
    assert plain.variant == "rezero"


def test_exact_and_power_iteration_spectra_agree():
    kwargs = dict(alphas=(0.5,), n_layers=2, d_model=8, n_tokens=4, k=2, seed=0)
    exact = E.residual_scale_spectrum(method="exact", **kwargs)
    power = E.residual_scale_spectrum(method="power", n_iter=40, **kwargs)
    np.testing.assert_allclose(power.singular_values, exact.singular_values, rtol=1e-6)


# ---------------------------------------------------------------------------------------------- normalization
@pytest.mark.parametrize("seed", SEEDS)
def test_residual_stream_grows_without_norm_and_stays_flat_with_post_ln(seed):
    result = E.residual_stream_norms(depth=12, d_model=32, seed=seed)
    none, pre, post = (result.curves[k] for k in ("residual, no norm", "residual + pre-LN", "residual + post-LN"))
    assert none[-1] > 1.3 * none[0]
    assert pre[-1] > pre[0]  # Pre-LN's stream still grows (Xiong et al.: E‖x_l‖² linear in l)
    np.testing.assert_allclose(post[1:], math.sqrt(32), rtol=1e-3)  # LN output: ‖x‖ = √d (γ = 1, β = 0)
    np.testing.assert_allclose(result.curves["DeepNorm"][1:], math.sqrt(32), rtol=1e-3)


def test_stack_gradients_match_autograd_on_the_block_outputs():
    from gradlib.blocks import TransformerStack

    profile = E.stack_gradients(depth=4, d_model=16, n_heads=2, n_tokens=5, batch=2, seed=3, dtype=torch.float64)
    stack = TransformerStack(4, 16, 2, norm="layer", norm_position="pre", seed=3, dtype=torch.float64)
    expected = _autograd_hidden_grads(stack.layers, _inputs((2, 5, 16), seed=3), final=stack.final_norm)
    np.testing.assert_allclose(profile.grad_norms, expected, rtol=1e-12)
    assert profile.label == "pre-LayerNorm"
    np.testing.assert_array_equal(profile.layer, np.arange(1, 5))


def test_post_ln_gradient_at_the_last_block_is_the_loss_direction_itself():
    # No final norm after a Post-LN stack: y = x_L, so ∂⟨y, r⟩/∂x_L = r whatever the weights.
    for seed in SEEDS:
        profile = E.stack_gradients(norm_position="post", seed=seed)
        assert profile.grad_norms[-1] == pytest.approx(_projection((2, 8, 32)).norm().item(), rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_pre_ln_gradient_grows_toward_the_input_while_post_ln_shrinks(seed):
    # Pre-LN: ∂x_L/∂x_l = I + …, the identity path adds up, first/last > 1 (measured 1.5-2.0 at depth 24).
    # Post-LN: every LN divides by the std of x + f(x) > 1 (measured first/last 0.53-0.80 at depth 24).
    pre = E.stack_gradients(depth=24, norm_position="pre", seed=seed)
    post = E.stack_gradients(depth=24, norm_position="post", seed=seed)
    assert pre.ratio > 1.2
    assert post.ratio < 0.9
    assert pre.ratio > 1.5 * post.ratio
    assert pre.exploded_at is None and post.exploded_at is None


def test_stack_without_a_norm_is_the_same_network_in_either_position():
    pre = E.stack_gradients(depth=3, norm="none", norm_position="pre", seed=0)
    post = E.stack_gradients(depth=3, norm="none", norm_position="post", seed=0)
    np.testing.assert_array_equal(pre.grad_norms, post.grad_norms)
    assert pre.label == post.label == "no norm"


def test_stack_gradients_labels_name_the_norm_and_its_place():
    labels = [E.stack_gradients(depth=2, norm=n, norm_position=p, seed=0).label
              for n, p in (("rms", "post"), ("layer", "post"))]
    assert labels == ["post-RMSNorm", "post-LayerNorm"]
    assert E.stack_gradients(depth=2, norm_position="post", init="deepnorm").label == "DeepNorm"
    assert E.stack_gradients(depth=2, label="mine").label == "mine"


@pytest.mark.parametrize("seed", SEEDS)
def test_post_norm_keeps_activation_std_at_one_while_no_norm_grows(seed):
    result = E.activation_stats(depth=12, d_model=32, seed=seed)
    np.testing.assert_allclose(result.std["layer"][1:], 1.0, rtol=1e-3)
    np.testing.assert_allclose(result.mean["layer"][1:], 0.0, atol=1e-5)
    np.testing.assert_allclose(result.std["rms"][1:], 1.0, rtol=0.05)  # RMS(x) = 1, std ≈ 1 when mean ≈ 0
    assert result.std["none"][-1] > 1.3 * result.std["none"][0]


@pytest.mark.parametrize("seed", SEEDS)
def test_batchnorm_depends_on_the_batch_while_layernorm_and_rmsnorm_do_not(seed):
    rows = {row["test"]: row for row in E.norm_comparison(seed=seed).rows}
    one, padding, mode = (rows[k] for k in (
        "batch of one token (training)", "padding: same sentence, two pad lengths", "train vs eval mode"))
    assert isinstance(one["batch"], str) and one["batch"].startswith("fails: ")
    assert padding["batch"] > 1e-2 and mode["batch"] > 1e-2
    for row in (one, padding, mode):
        assert row["layer"] == 0.0 and row["rms"] == 0.0  # exactly equal, not just close


def test_norm_comparison_to_markdown_has_one_line_per_test_and_shows_failures():
    comparison = E.norm_comparison(seed=0)
    lines = comparison.to_markdown().splitlines()
    assert lines[0] == "| max abs change of the output | BatchNorm | LayerNorm | RMSNorm |"
    assert len(lines) == 2 + len(comparison.rows)
    one = lines[2].split("|")
    assert one[1].strip() == "batch of one token (training)" and one[2].strip() == "fails"
    assert [c.strip() for c in one[3:5]] == ["0", "0"]
    pad = comparison.rows[1]["batch"]
    assert f"| {pad:.3g} |" in comparison.to_markdown(digits=3)
    with pytest.raises(ValueError, match="digits"):
        comparison.to_markdown(digits=0)


@pytest.mark.parametrize("implementation", ["gradlib", "torch"])
def test_pre_ln_last_layer_gradient_shrinks_with_depth_post_ln_stays_flat(implementation):
    result = E.pre_post_ln(depths=(2, 32), seeds=SEEDS, implementation=implementation)
    pre, post = result.per_seed["pre"], result.per_seed["post"]  # (S, D)
    assert np.all(pre[:, 1] < 0.6 * pre[:, 0])  # measured ≈ 0.5; theory √(2/32) = 0.25
    assert np.all(post[:, 1] / post[:, 0] < 1.5) and np.all(post[:, 1] / post[:, 0] > 1 / 1.5)
    assert np.all(result.hidden_norm["pre"][1] > 1.5 * result.hidden_norm["pre"][0])  # ‖x_L‖ grows
    np.testing.assert_allclose(result.hidden_norm["post"], 8.0, rtol=1e-3)  # √64 after the last LN
    assert result.per_layer["pre"].shape == (32,)


def test_pre_post_gradlib_and_torch_implementations_compute_the_same_numbers():
    # torch_encoder_stack draws the same weights as TransformerStack for a seed: PyTorch's own layer is an
    # independent implementation of the same network.
    ours = E.pre_post_ln(depths=(3,), seeds=(0,), d_model=32, d_ff=64, implementation="gradlib")
    theirs = E.pre_post_ln(depths=(3,), seeds=(0,), d_model=32, d_ff=64, implementation="torch")
    for kind in ("pre", "post"):
        np.testing.assert_allclose(ours.per_seed[kind], theirs.per_seed[kind], rtol=1e-4)


def test_mean_square_loss_after_layernorm_has_no_gradient_but_a_projection_does():
    trap = E.scale_invariant_loss_trap(seed=0)
    assert trap["mean_square_loss"] == pytest.approx(1.0, abs=1e-4)
    assert trap["projection_grad"] > 1.0
    assert trap["ratio"] < 1e-6  # what is left comes from ε alone


# ------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize(
    "call",
    [
        lambda: E.mlp_gradients(depth=3, width=16, seed=5),
        lambda: E.mlp_gradients(depth=3, width=16, residual=True, branch_scale=0.3, seed=5),
        lambda: E.stack_gradients(depth=3, d_model=16, seed=5),
        lambda: E.residual_scale_spectrum(alphas=(0.5,), n_layers=2, d_model=8, n_tokens=3, seed=5,
                                          variant="deepnorm"),
        lambda: E.rank_collapse_depth(depth=3, n_tokens=4, d=8, seed=5, variants=("residual, branch 1/√L",)),
        lambda: E.path_lengths(seq_len=8, d=8, n_sequences=1, seed=5),
        lambda: E.qk_gradients(depths=(2,), seed=5),
        lambda: E.softmax_saturation(d_ks=(16,), n_rows=16, seed=5),
        lambda: E.residual_stream_norms(depth=2, d_model=16, seed=5),
        lambda: E.pre_post_ln(depths=(2,), seeds=(5,), d_model=16, n_heads=2, d_ff=32),
    ],
)
def test_two_runs_with_the_same_seed_are_identical(call):
    a, b = call(), call()
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, dict):
            assert x.keys() == y.keys()
            for key in x:
                np.testing.assert_array_equal(x[key], y[key])
        else:
            np.testing.assert_array_equal(x, y)


def test_different_seeds_give_different_numbers():
    a = E.mlp_gradients(depth=3, width=16, seed=0)
    b = E.mlp_gradients(depth=3, width=16, seed=1)
    assert not np.array_equal(a.grad_norms, b.grad_norms)


def test_experiments_leave_the_global_rng_untouched():
    state = torch.get_rng_state()
    E.mlp_gradients(depth=2, width=8)
    E.pre_post_ln(depths=(1,), seeds=(0,), d_model=8, n_heads=2, d_ff=16, implementation="torch")
    E.path_lengths(seq_len=4, d=4, n_sequences=1)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: E.mlp_gradients(activation="softplus"), "activation"),
        (lambda: E.mlp_gradients(init="kaiming"), "init"),
        (lambda: E.mlp_gradients(depth=0), "depth"),
        (lambda: E.mlp_gradients(weight_scale=-1.0), "weight_scale"),
        (lambda: E.mlp_gradients(dtype=torch.int64), "dtype"),
        (lambda: E.mlp_gradients(seed=-1), "seed"),
        (lambda: E.mlp_gradients(device="nowhere"), "device"),
        (lambda: E.mlp_gradients(residual=True, branch_scale=-0.5), "branch_scale"),
        (lambda: E.mlp_gradients(residual=True, branch_scale=float("inf")), "branch_scale"),
        (lambda: E.mlp_gradients(residual=False, branch_scale=0.5), "branch_scale"),
        (lambda: E.stack_gradients(norm="batch"), "norm"),
        (lambda: E.stack_gradients(norm_position="middle"), "norm_position"),
        (lambda: E.stack_gradients(init="orthogonal"), "init"),
        (lambda: E.stack_gradients(init="deepnorm", norm_position="pre"), "norm_position"),
        (lambda: E.stack_gradients(d_model=30, n_heads=4), "n_heads"),
        (lambda: E.stack_gradients(depth=0), "depth"),
        (lambda: E.stack_gradients(final_norm="yes"), "final_norm"),
        (lambda: E.stack_gradients(label=3), "label"),
        (lambda: E.rank_collapse_depth(variants=("nothing",)), "variants"),
        (lambda: E.rank_collapse_depth(variants=("attention only", "attention only")), "variants"),
        (lambda: E.residual_scale_spectrum(variant="admin"), "variant"),
        (lambda: E.residual_scale_spectrum(variant="deepnorm", norm="none"), "norm"),
        (lambda: E.rnn_gradients(radii=()), "radii"),
        (lambda: E.rnn_gradients(activation="relu"), "activation"),
        (lambda: E.path_lengths(rho=0.0), "rho"),
        (lambda: E.rank_collapse_depth(d=30, n_heads=4), "n_heads"),
        (lambda: E.qk_gradients(depths=(2, 0)), "depths"),
        (lambda: E.qk_gradients(depths=(2, 4), layer=3), "layer"),
        (lambda: E.softmax_saturation(scales=("sqrt_dk", "foo")), "scales"),
        (lambda: E.softmax_saturation(threshold=1.5), "threshold"),
        (lambda: E.residual_scale_spectrum(alphas=(-0.1,)), "alphas"),
        (lambda: E.residual_scale_spectrum(method="lanczos"), "method"),
        (lambda: E.residual_stream_norms(variants=("nothing",)), "variants"),
        (lambda: E.activation_stats(norms=("batchnorm",)), "norms"),
        (lambda: E.norm_comparison(pad_lengths=(8, 8)), "pad_lengths"),
        (lambda: E.pre_post_ln(implementation="jax"), "implementation"),
        (lambda: E.pre_post_ln(seeds=[]), "seeds"),
        (lambda: E.scale_invariant_loss_trap(eps=0.0), "eps"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_sweep_calls_the_experiment_once_per_value():
    profiles = E.sweep(E.mlp_gradients, "depth", [2, 3], width=16, seed=0)
    assert [len(p.layer) for p in profiles] == [2, 3]
    assert profiles[0].label == "tanh, old init"


def test_sweep_rejects_a_parameter_the_experiment_does_not_have():
    with pytest.raises(ValueError, match="param"):
        E.sweep(E.mlp_gradients, "learning_rate", [0.1])
    with pytest.raises(ValueError, match="fixed"):
        E.sweep(E.mlp_gradients, "depth", [2], widht=16)
    with pytest.raises(ValueError, match="param"):
        E.sweep(E.mlp_gradients, "depth", [2], depth=3)
