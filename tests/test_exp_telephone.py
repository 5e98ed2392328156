"""Chapter 1, the telephone game (gradlib.exp_telephone): products of Jacobians vanish or explode.

Every conclusion is re-measured over seeds 0, 1, 2 with thresholds that leave a margin of ~3× or more over
what the seeds measured. Independent truths: the linear theory ρ^(T−t), autograd on h + α·f(h) unrolled by
hand (no hooks), and ∂⟨x, r⟩/∂x = r. Where a number can be recomputed by calling the probe directly on the
same model and input, it must be equal: the experiments measure through gradlib's probes, not private twins.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradlib import draws
from gradlib import exp_telephone as T
from gradlib.jacobians import grad_through_time
from gradlib.mlp import DeepMLP
from gradlib.probes import layer_grad_norms
from gradlib.rnn import VanillaRNN

SEEDS = (0, 1, 2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: a second intra-op thread gains nothing, and on a busy 2-core machine its spin-waiting makes
    # every small op many times slower. Restored afterwards for the other test files.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def _assert_same(a, b) -> None:
    """Two results hold the same numbers, field by field (arrays bit for bit, NaN equal to NaN)."""
    if hasattr(a, "__dataclass_fields__"):
        assert type(a) is type(b)
        for name in a.__dataclass_fields__:
            _assert_same(getattr(a, name), getattr(b, name))
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            _assert_same(a[key], b[key])
    elif a is None or isinstance(a, str):
        assert a == b
    else:
        np.testing.assert_array_equal(a, b)


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


# ------------------------------------------------------------------------------------------------- the RNN
@pytest.mark.parametrize("seed", SEEDS)
def test_linear_rnn_gradient_equals_rho_to_the_distance(seed):
    result = T.rnn_gradients(radii=(0.9, 1.0, 1.1), T=50, activation="identity", seed=seed)
    np.testing.assert_array_equal(result.steps, np.arange(1, 51))
    np.testing.assert_allclose(result.norms, result.theory, rtol=1e-10)
    np.testing.assert_allclose(result.theory[:, -1], [0.9**50, 1.0, 1.1**50], rtol=1e-12)
    np.testing.assert_array_equal(result.radii, [0.9, 1.0, 1.1])
    assert result.activation == "identity"


def test_tanh_rnn_gradient_stays_below_the_linear_bound():
    result = T.rnn_gradients(radii=(0.9, 1.1), T=30, activation="tanh", seed=0)
    assert np.all(result.norms <= result.theory * (1 + 1e-9))
    assert result.norms[1, -1] < 1.0  # ρ = 1.1 does not explode here: tanh saturation damps it


def test_rnn_gradients_measures_through_grad_through_time():
    result = T.rnn_gradients(radii=(0.5, 1.2), T=6, d_hidden=5, activation="tanh", input_scale=2.0, seed=7)
    x = 2.0 * draws.randn((1, 6, 5), draws.data_generator(7), torch.float64)
    for row, rho in enumerate((0.5, 1.2)):
        rnn = VanillaRNN(5, 5, activation="tanh", spectral_radius=rho, seed=7, dtype=torch.float64)
        probe = grad_through_time(rnn, x)
        order = np.argsort(probe.distance)
        np.testing.assert_array_equal(result.norms[row], probe.norms[order])
        np.testing.assert_array_equal(result.curves[row].x, probe.distance[order])


def test_an_rnn_explosion_is_inf_in_the_curve_and_exploded_at_instead_of_raising():
    # float32: ρ^d overflows past d = 38 (10^38 < 3.4e38 < 10^39), exactly where the theory says
    result = T.rnn_gradients(radii=(10.0,), T=45, d_hidden=4, dtype=torch.float32)
    c = result.curves[0]
    assert c.exploded_at == 38 and c.x[c.exploded_at] == 39
    assert np.all(np.isfinite(c.y[:38])) and not np.any(np.isfinite(c.y[38:]))
    np.testing.assert_allclose(c.y[:38], c.theory[:38], rtol=1e-5)


def test_rnn_radii_whose_keys_coincide_are_refused():
    with pytest.raises(ValueError, match="radii must be distinct"):
        T.rnn_gradients(radii=(0.9, 0.9000000001), T=2, d_hidden=2)


# ------------------------------------------------------------------------------------ the chapter's numbers
def test_regression_chapter_one_numbers_at_seed_0():
    # What chapter 1 prints (the old gradlib.experiments produced the same): a reshaping must not move them.
    rel = 1e-3
    assert T.mlp_gradients(activation="tanh", init="old", seed=0).ratio == pytest.approx(6.5675e-3, rel=rel)
    assert T.mlp_gradients(activation="tanh", init="xavier", seed=0).ratio == pytest.approx(0.39611, rel=rel)
    assert T.mlp_gradients(activation="sigmoid", init="old", seed=0).ratio == pytest.approx(2.2998e-8, rel=rel)
    assert T.mlp_gradients(activation="tanh", weight_scale=4.0, seed=0).ratio == pytest.approx(47.037, rel=rel)
    assert T.mlp_gradients(depth=20, seed=0).ratio == pytest.approx(2.6241e-5, rel=rel)
    tanh = T.rnn_gradients(activation="tanh", seed=0)
    np.testing.assert_allclose(tanh.norms[:, -1], [2.9357e-8, 2.3566e-6, 1.1938e-4], rtol=rel)


# ---------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("call", [
    lambda: T.mlp_gradients(depth=3, width=16, seed=5),
    lambda: T.mlp_gradients(depth=3, width=16, residual=True, branch_scale=0.3, seed=5),
    lambda: T.rnn_gradients(radii=(0.8, 1.3), T=5, d_hidden=4, activation="tanh", seed=5),
])
def test_two_runs_with_the_same_seed_are_identical(call):
    _assert_same(call(), call())


def test_different_seeds_give_different_numbers():
    a = T.mlp_gradients(depth=3, width=16, seed=0)
    b = T.mlp_gradients(depth=3, width=16, seed=1)
    assert not np.array_equal(a.grad_norms, b.grad_norms)
    c = T.rnn_gradients(radii=(1.0,), T=5, d_hidden=4, activation="tanh", seed=0)
    d = T.rnn_gradients(radii=(1.0,), T=5, d_hidden=4, activation="tanh", seed=1)
    assert not np.array_equal(c.norms, d.norms)


def test_experiments_leave_the_global_rng_untouched():
    state = torch.get_rng_state()
    T.mlp_gradients(depth=2, width=8)
    T.rnn_gradients(radii=(0.9,), T=3, d_hidden=4)
    T.rnn_gradients(radii=(0.9,), T=3, d_hidden=4, activation="tanh")
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
    (lambda: T.rnn_gradients(radii=()), "radii"),
    (lambda: T.rnn_gradients(radii=(0.9, -1.0)), "radii"),
    (lambda: T.rnn_gradients(T=0), "T"),
    (lambda: T.rnn_gradients(d_hidden=0), "d_hidden"),
    (lambda: T.rnn_gradients(activation="relu"), "activation"),
    (lambda: T.rnn_gradients(input_scale=-1.0), "input_scale"),
    (lambda: T.rnn_gradients(dtype=torch.int64), "dtype"),
    (lambda: T.rnn_gradients(seed="0"), "seed"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^(every entry of )?{name}\b"):
        call()


@pytest.mark.parametrize("call", [
    lambda: T.mlp_gradients(widht=16),
    lambda: T.rnn_gradients(rho=0.9),
])
def test_unknown_keywords_are_errors(call):
    with pytest.raises(TypeError):
        call()


def test_zero_radius_is_a_network_that_forgets_in_one_step():
    # ρ = 0 is allowed: W_hh = 0, so h_T does not depend on h_t for t < T − 1 at all (0 = 0^(T−t))
    result = T.rnn_gradients(radii=(0.0,), T=4, d_hidden=3)
    np.testing.assert_array_equal(result.norms[0], [0.0, 0.0, 0.0, 0.0])
    assert math.isclose(result.theory[0, 0], 0.0)
