"""Chapter 1, the telephone game (gradlib.exp_telephone): products of Jacobians vanish or explode.

Every conclusion is re-measured over seeds 0, 1, 2 with thresholds that leave a margin of ~3× or more over
what the seeds measured. Independent truths: the linear theory ρ^(T−t), autograd on h + α·f(h) unrolled by
hand (no hooks), ∂⟨x, r⟩/∂x = r, PyTorch's own nn.init (gains, nn.Linear's bound), and tanh′ by autograd. Where a number can be recomputed by calling the probe directly on the
same model and input, it must be equal: the experiments measure through gradlib's probes, not private twins.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _experiment_helpers import _assert_facts_hold, _assert_same  # tests/: checks every experiment test shares
from gradlib import draws
from gradlib import exp_rnn as R
from gradlib import exp_telephone as T
from gradlib.jacobians import grad_through_time
from gradlib.mlp import DeepMLP
from gradlib.probes import layer_grad_norms, layer_stats
from gradlib.results import curve
from gradlib.rnn import VanillaRNN

SEEDS = (0, 1, 2)


def _projection(shape: tuple[int, ...]) -> torch.Tensor:
    """The probes' loss direction r ~ N(0, 1) (seed 0, float64), written out: the loss is ⟨y, r⟩."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _inputs(shape: tuple[int, ...], seed: int, dtype=torch.float64) -> torch.Tensor:
    """The experiments' inputs, written out: N(0, 1) from the data stream seed + 1_000_003."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1_000_003), dtype=dtype)


def _autograd_hidden_grads(steps, x: torch.Tensor) -> np.ndarray:
    """‖∂⟨y, r⟩/∂h_l‖ for every step output h_l, by autograd on the outputs themselves (no hooks)."""
    outputs, h = [], x
    for step in steps:
        h = step(h)
        outputs.append(h)
    grads = torch.autograd.grad((h * _projection(tuple(h.shape))).sum(), outputs)
    return np.array([g.norm().item() for g in grads])


# ------------------------------------------------------------------------------------------------- the MLP
@pytest.mark.parametrize("seed", SEEDS)
def test_old_init_tanh_vanishes_xavier_keeps_and_sigmoid_vanishes_even_with_xavier(seed):
    old = T.mlp_gradients(activation="tanh", init="old", seed=seed)
    xavier = T.mlp_gradients(activation="tanh", init="xavier", seed=seed)
    sigmoid = T.mlp_gradients(activation="sigmoid", init="xavier", seed=seed)
    assert old.ratio < 0.05  # measured 6.3e-3 to 6.6e-3: (1/√3)^9 ≈ 7e-3 times tanh' < 1
    assert xavier.ratio > 0.1  # measured 0.39-0.40
    assert sigmoid.ratio < 1e-5  # measured 2.2e-6 to 2.3e-6: σ' ≤ 1/4 (the old file's 1e-4, tightened)
    assert old.label == "tanh, old init" and xavier.label == "tanh, xavier init"
    np.testing.assert_array_equal(old.layer, np.arange(1, 11))
    assert old.ratio == old.grad_norms[0] / old.grad_norms[-1]


def test_old_init_gradient_shrinks_layer_by_layer_toward_the_input():
    profile = T.mlp_gradients(activation="tanh", init="old", seed=0)
    assert np.all(np.diff(profile.grad_norms) > 0)  # larger nearer the output, every single step


@pytest.mark.parametrize("seed", SEEDS)
def test_large_weight_scale_explodes_toward_the_input(seed):
    profile = T.mlp_gradients(depth=10, width=128, activation="identity", weight_scale=2.0, seed=seed)
    assert profile.exploded_at is None
    assert profile.ratio > 100.0  # measured 465-504 ≈ 2^9 = 512


def test_an_explosion_returns_inf_and_exploded_at_instead_of_raising():
    profile = T.mlp_gradients(depth=30, width=64, activation="identity", weight_scale=100.0, seed=0)
    assert not np.all(np.isfinite(profile.grad_norms))  # 100^30 overflows float32
    assert isinstance(profile.exploded_at, int)
    assert not np.isfinite(profile.grad_norms[profile.exploded_at])
    assert np.all(np.isfinite(profile.grad_norms[-5:]))  # near the output the numbers are still there
    assert not np.isfinite(profile.ratio)
    assert profile.curve.exploded_at == profile.exploded_at


@pytest.mark.parametrize("alpha", [0.25, 1.0, 2.0])
def test_scaled_residual_mlp_profile_matches_autograd_on_h_plus_alpha_f(alpha):
    profile = T.mlp_gradients(depth=6, width=16, batch=4, residual=True, branch_scale=alpha, seed=1,
                              dtype=torch.float64)
    plain_skips = DeepMLP(16, 6, init="old", residual=True, seed=1, dtype=torch.float64)  # same weights, α = 1
    steps = [lambda h, f=layer.branch: h + alpha * f(h) for layer in plain_skips.layers]
    expected = _autograd_hidden_grads(steps, _inputs((4, 16), seed=1))
    np.testing.assert_allclose(profile.grad_norms, expected, rtol=1e-12)
    # the default α = 1 keeps the label it always had
    scaled = "" if alpha == 1.0 else f", α = {alpha:g}"
    assert profile.label == "tanh, old init, residual" + scaled


def test_plain_mlp_profile_matches_autograd_on_tanh_of_w_h():
    profile = T.mlp_gradients(depth=5, width=8, batch=3, seed=2, dtype=torch.float64)
    model = DeepMLP(8, 5, init="old", seed=2, dtype=torch.float64)
    steps = [lambda h, w=layer.linear.weight: torch.tanh(h @ w.T) for layer in model.layers]
    np.testing.assert_allclose(profile.grad_norms, _autograd_hidden_grads(steps, _inputs((3, 8), seed=2)),
                               rtol=1e-12)


def test_branch_scale_zero_makes_every_layer_the_identity_so_the_gradient_is_the_same_everywhere():
    profile = T.mlp_gradients(depth=8, width=16, batch=4, residual=True, branch_scale=0.0, seed=0)
    expected = _projection((4, 16)).float().norm().item()  # ∂⟨x, r⟩/∂x = r at every layer
    np.testing.assert_allclose(profile.grad_norms, expected, rtol=1e-6)
    assert profile.ratio == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(activation="relu", init="he", residual=True, branch_scale=0.5),
    dict(norm="layer", weight_scale=1.5, dtype=torch.float64),
])
def test_mlp_gradients_measures_through_layer_grad_norms(kwargs):
    seed, model_kwargs = 3, {k: v for k, v in kwargs.items()}
    profile = T.mlp_gradients(depth=4, width=8, batch=5, seed=seed, **kwargs)
    dtype = model_kwargs.pop("dtype", torch.float32)
    model = DeepMLP(8, 4, init=model_kwargs.pop("init", "old"), seed=seed, dtype=dtype, **model_kwargs)
    probe = layer_grad_norms(model, draws.randn((5, 8), draws.data_generator(seed), dtype))
    np.testing.assert_array_equal(profile.grad_norms, probe.output_grad_norms)
    np.testing.assert_array_equal(profile.param_norms, probe.param_norms)
    assert profile.exploded_at == probe.exploded_at


def test_mlp_inputs_are_the_data_stream_of_the_seed():
    # the stream written out by hand (not through gradlib.draws): N(0, 1) from seed + 1_000_003
    model = DeepMLP(8, 3, init="old", seed=4)
    probe = layer_grad_norms(model, _inputs((6, 8), seed=4, dtype=torch.float32))
    np.testing.assert_array_equal(T.mlp_gradients(depth=3, width=8, batch=6, seed=4).grad_norms,
                                  probe.output_grad_norms)


def test_mlp_labels_name_the_configuration():
    assert T.mlp_gradients(depth=2, width=4, batch=2, weight_scale=4.0).label == "tanh, weight scale 4"
    assert T.mlp_gradients(depth=2, width=4, batch=2, norm="rms").label == "tanh, old init, rms norm"
    assert T.mlp_label("relu", "he", residual=True) == "relu, he init, residual"


# ------------------------------------------------------------------------------------ the chapter's numbers
def test_regression_chapter_one_numbers_at_seed_0():
    # What chapter 1 prints (the old gradlib.experiments produced the same): a reshaping must not move them.
    rel = 1e-3
    assert T.mlp_gradients(activation="tanh", init="old", seed=0).ratio == pytest.approx(6.5675e-3, rel=rel)
    assert T.mlp_gradients(activation="tanh", init="xavier", seed=0).ratio == pytest.approx(0.39611, rel=rel)
    assert T.mlp_gradients(activation="sigmoid", init="old", seed=0).ratio == pytest.approx(2.2998e-8, rel=rel)
    assert T.mlp_gradients(activation="tanh", weight_scale=4.0, seed=0).ratio == pytest.approx(47.037, rel=rel)
    assert T.mlp_gradients(depth=20, seed=0).ratio == pytest.approx(2.6241e-5, rel=rel)
    tanh = R.rnn_gradients(activation="tanh", seed=0)
    np.testing.assert_allclose(tanh.norms[:, -1], [2.9357e-8, 2.3566e-6, 1.1938e-4], rtol=rel)
    profiles = T.chapter_profiles(0, ["relu_old", "relu_xavier", "relu_he", "tanh_gain"])
    np.testing.assert_allclose([p.ratio for p in profiles.values()], [3.0e-4, 4.27e-2, 1.0055, 2.2242], rtol=0.02)
    np.testing.assert_allclose(R.rnn_saturation(seed=0).step_gain, [0.6871, 0.7482, 0.8043], rtol=rel)


# ------------------------------------------------------------------------------- the fixes: He, the gain, nn.Linear
def test_chapter_profiles_are_mlp_gradients_of_the_named_configs():
    got = T.chapter_profiles(seed=3, names=["relu_he", "tanh_gain"], depth=3, width=8)
    assert list(got) == ["relu_he", "tanh_gain"]
    for name, profile in got.items():
        expected = T.mlp_gradients(depth=3, width=8, seed=3, key=name, **T.CONFIGS[name])
        _assert_same(profile, expected)
    assert got["tanh_gain"].label == "tanh, xavier × 5/3" and got["tanh_gain"].key == "tanh_gain"
    assert set(T.chapter_profiles(seed=0, depth=2, width=4)) == set(T.CONFIGS)


def test_the_tanh_gain_is_pytorchs():
    assert T.TANH_GAIN == torch.nn.init.calculate_gain("tanh")


def test_he_relu_profile_matches_autograd_on_relu_of_w_h():
    profile = T.mlp_gradients(depth=5, width=8, batch=3, activation="relu", init="he", seed=2, dtype=torch.float64)
    model = DeepMLP(8, 5, activation="relu", init="he", seed=2, dtype=torch.float64)
    steps = [lambda h, w=layer.linear.weight: torch.relu(h @ w.T) for layer in model.layers]
    np.testing.assert_allclose(profile.grad_norms, _autograd_hidden_grads(steps, _inputs((3, 8), seed=2)),
                               rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_he_keeps_relu_flat_and_the_older_inits_lose_a_fixed_factor_per_layer(seed):
    r = {n: p.ratio for n, p in T.chapter_profiles(seed, ["relu_old", "relu_xavier", "relu_he"]).items()}
    hand_overs = T.DEPTH - 1
    assert 0.5 < r["relu_he"] < 2.0  # measured 1.01-1.07: n·Var W = 2 makes up for ReLU's halving
    # ReLU halves the second moment: √(n·Var W / 2) per hand-over, 1/√2 for Xavier, 1/√6 for the old init
    assert 0.5 < r["relu_xavier"] / 0.5 ** (hand_overs / 2) < 2.0  # measured 0.043-0.048 against 0.044
    assert 0.5 < r["relu_old"] / 6.0 ** (-hand_overs / 2) < 2.0  # measured 3.0e-4 against 3.1e-4


def test_gain_sweep_measures_through_the_probes_on_the_weights_of_mlp_gradients():
    sweep = T.gain_sweep(gains=(0.8, 1.5), depth=4, width=8, batch=5, seed=3)
    x = draws.randn((5, 8), draws.data_generator(3), torch.float32)
    for i, sigma in enumerate((0.8, 1.5)):
        assert sweep["gradient"].y[i] == T.mlp_gradients(depth=4, width=8, batch=5, weight_scale=sigma, seed=3).ratio
        std = layer_stats(DeepMLP(8, 4, weight_scale=sigma, seed=3), x).std
        assert sweep["signal"].y[i] == std[-1] / std[0]
    np.testing.assert_array_equal(sweep["flat"].y, [1.0, 1.0])
    np.testing.assert_array_equal(sweep.gains, [0.8, 1.5])


def test_gain_sweep_signal_matches_a_forward_written_by_hand():
    sweep = T.gain_sweep(gains=(1.0, 2.0), depth=3, width=16, batch=4, seed=1)
    for i, sigma in enumerate((1.0, 2.0)):
        model = DeepMLP(16, 3, weight_scale=sigma, seed=1, dtype=torch.float64)
        h, stds = _inputs((4, 16), seed=1, dtype=torch.float32).double(), []  # the float32 draw, in float64
        for layer in model.layers:
            h = torch.tanh(h @ layer.linear.weight.T)
            stds.append(h.std(correction=0).item())
        np.testing.assert_allclose(sweep["signal"].y[i], stds[-1] / stds[0], rtol=1e-5)  # float32 vs float64


@pytest.mark.parametrize("seed", SEEDS)
def test_gain_five_thirds_keeps_the_tanh_signal_but_overshoots_the_gradient(seed):
    sweep = T.gain_sweep(seed=seed)
    xavier, gain = 0, -1  # σ = 1 (Xavier's normal form) and σ = 5/3
    assert sweep.gains[gain] == pytest.approx(5 / 3)
    assert sweep["signal"].y[xavier] < 0.5 < 0.7 < sweep["signal"].y[gain]  # measured 0.35-0.36 and 0.84-0.85
    assert sweep["gradient"].y[xavier] < 1.0 < 1.5 < sweep["gradient"].y[gain]  # 0.38-0.39 and 2.1-2.2
    assert np.all(np.diff(sweep["gradient"].y) > 0) and np.all(np.diff(sweep["signal"].y) > 0)
    assert 1.1 < sweep.flat_gain < 1.5  # measured 1.29


def test_flat_gain_interpolates_log_linearly_and_is_nan_without_a_crossing():
    def sweep(y):
        flat = curve("flat", "1", "reference", [1.0, 2.0], [1.0, 1.0])
        gradient = curve("gradient", "g", "series", [1.0, 2.0], y)
        return T.GainSweep(curves=(gradient, flat), gains=np.array([1.0, 2.0]))

    assert sweep([0.5, 2.0]).flat_gain == pytest.approx(1.5)  # log 0.5 and log 2 are symmetric about 0
    assert sweep([0.25, 2.0]).flat_gain == pytest.approx(1 + 2 / 3)
    assert math.isnan(sweep([0.2, 0.5]).flat_gain)


@pytest.mark.parametrize("seed", SEEDS)
def test_nn_linear_still_draws_the_old_init(seed):
    result = T.nn_linear_default(fan_in=256, fan_out=256, seed=seed)
    # PyTorch's reset_parameters: kaiming_uniform_(a=√5), bound = gain·√(3/fan_in), gain = √(2/(1 + a²))
    gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    assert result.bound == pytest.approx(gain * math.sqrt(3 / 256)) == pytest.approx(1 / 16)
    assert result.max_abs <= result.bound and result.max_abs > 0.99 * result.bound  # 65536 draws reach the edge
    assert result.theory_variance == pytest.approx(1 / (3 * 256))
    assert abs(result.variance / result.theory_variance - 1) < 0.05  # measured within 0.5%


def test_nn_linear_default_is_torchs_own_draw_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    result = T.nn_linear_default(fan_in=7, fan_out=3, seed=5)
    assert torch.equal(state, torch.get_rng_state())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        w = torch.nn.Linear(7, 3, dtype=torch.float64).weight.detach()
    assert result.max_abs == w.abs().max().item() and result.variance == w.var(correction=0).item()
    assert result.fan_in == 7


# ------------------------------------------------------------------------------------------- the headline
@pytest.mark.parametrize("seed", SEEDS)
def test_the_chapters_facts_hold(seed):
    _assert_facts_hold(T.facts(seed), seed, at_least=16)


# ---------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("call", [
    lambda: T.mlp_gradients(depth=3, width=16, seed=5),
    lambda: T.mlp_gradients(depth=3, width=16, residual=True, branch_scale=0.3, seed=5),
    lambda: T.gain_sweep(gains=(1.0, 2.0), depth=3, width=8, seed=5),
    lambda: T.nn_linear_default(fan_in=5, fan_out=4, seed=5),
])
def test_two_runs_with_the_same_seed_are_identical(call):
    _assert_same(call(), call())


def test_different_seeds_give_different_numbers():
    a = T.mlp_gradients(depth=3, width=16, seed=0)
    b = T.mlp_gradients(depth=3, width=16, seed=1)
    assert not np.array_equal(a.grad_norms, b.grad_norms)


def test_experiments_leave_the_global_rng_untouched():
    state = torch.get_rng_state()
    T.mlp_gradients(depth=2, width=8)
    T.gain_sweep(gains=(1.0,), depth=2, width=4)
    T.nn_linear_default(fan_in=4, fan_out=4)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("call, name", [
    (lambda: T.mlp_gradients(activation="softplus"), "activation"),
    (lambda: T.mlp_gradients(init="kaiming"), "init"),
    (lambda: T.mlp_gradients(depth=0), "depth"),
    (lambda: T.mlp_gradients(width=0), "width"),
    (lambda: T.mlp_gradients(batch=0), "batch"),
    (lambda: T.mlp_gradients(weight_scale=-1.0), "weight_scale"),
    (lambda: T.mlp_gradients(norm="group"), "norm"),
    (lambda: T.mlp_gradients(residual=1), "residual"),
    (lambda: T.mlp_gradients(dtype=torch.int64), "dtype"),
    (lambda: T.mlp_gradients(seed=1.5), "seed"),  # any integer is a seed (negative ones too), 1.5 is not
    (lambda: T.mlp_gradients(device="nowhere"), "device"),
    (lambda: T.mlp_gradients(residual=True, branch_scale=-0.5), "branch_scale"),
    (lambda: T.mlp_gradients(residual=True, branch_scale=float("inf")), "branch_scale"),
    (lambda: T.mlp_gradients(residual=False, branch_scale=0.5), "branch_scale"),
    (lambda: T.mlp_gradients(depth=1, width=2, batch=1, label=3), "label"),
    (lambda: T.mlp_gradients(depth=1, width=2, batch=1, key=("a",)), "key"),
    (lambda: T.mlp_gradients(depth=1, width=2, batch=1, role="highway"), "role"),
    (lambda: T.chapter_profiles(names=["tanh", "old"]), "names"),
    (lambda: T.chapter_profiles(names=[]), "names"),
    (lambda: T.gain_sweep(gains=()), "gains"),
    (lambda: T.gain_sweep(gains=(1.2, 1.0)), "gains"),
    (lambda: T.gain_sweep(gains=(0.0, 1.0)), "gains"),
    (lambda: T.gain_sweep(batch=0), "batch"),
    (lambda: T.gain_sweep(width=0), "width"),
    (lambda: T.gain_sweep(gains=(1.0,), activation="softplus"), "activation"),
    (lambda: T.nn_linear_default(fan_in=0), "fan_in"),
    (lambda: T.nn_linear_default(fan_out=-1), "fan_out"),
    (lambda: T.nn_linear_default(seed=0.5), "seed"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^(every entry of )?{name}\b"):
        call()


@pytest.mark.parametrize("call", [
    lambda: T.mlp_gradients(widht=16),
])
def test_unknown_keywords_are_errors(call):
    with pytest.raises(TypeError):
        call()
