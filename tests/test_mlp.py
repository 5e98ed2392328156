"""gradlib.mlp: deep MLPs and their residual layers, against autograd, their init formulas and HEAD's draws."""

import hashlib
import math

import pytest
import torch
from torch import nn

from gradlib import draws
from gradlib.mlp import ACTIVATIONS, INITS, DeepMLP, MLPLayer, make_activation

F64 = torch.float64


def _randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _jacobian_matrix(fn, x):
    """Autograd Jacobian of fn at x, flattened to (numel(y), numel(x))."""
    return torch.autograd.functional.jacobian(fn, x).reshape(-1, x.numel())


def _checksum(model: nn.Module) -> str:
    """First 16 hex digits of the sha256 of every state-dict entry's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------- residual highway
def test_residual_mlp_layer_jacobian_is_identity_plus_branch_jacobian():
    width = 6
    layer = MLPLayer(width, activation="tanh", init="xavier", residual=True, seed=2, dtype=F64)
    x = _randn(1, width, seed=3)
    jac = _jacobian_matrix(layer, x)
    jac_branch = _jacobian_matrix(layer.branch, x)
    torch.testing.assert_close(jac, torch.eye(width, dtype=F64) + jac_branch, rtol=1e-12, atol=1e-12)
    # The branch's Jacobian is diag(tanh′(Wx)) W, by the chain rule.
    w = layer.linear.weight.detach()
    expected_branch = torch.diag(1 - torch.tanh(x[0] @ w.T) ** 2) @ w
    torch.testing.assert_close(jac_branch, expected_branch, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 2.5])
def test_scaled_residual_mlp_layer_jacobian_is_identity_plus_alpha_times_branch_jacobian(alpha):
    width = 6
    layer = MLPLayer(width, activation="tanh", residual=True, branch_scale=alpha, seed=2, dtype=F64)
    x = _randn(1, width, seed=3)
    expected = torch.eye(width, dtype=F64) + alpha * _jacobian_matrix(layer.branch, x)
    torch.testing.assert_close(_jacobian_matrix(layer, x), expected, rtol=1e-12, atol=1e-12)


def test_mlp_branch_scale_one_is_bit_identical_to_the_plain_skip_and_zero_is_the_identity():
    x = _randn(4, 8, seed=1, dtype=torch.float32)
    default = MLPLayer(8, residual=True, seed=5)
    assert torch.equal(default(x), x + default.branch(x))  # the default α = 1 changes no bit
    assert torch.equal(MLPLayer(8, residual=True, branch_scale=0.0, seed=5)(x), x)
    unscaled = DeepMLP(8, 5, residual=True, seed=3)
    scaled = DeepMLP(8, 5, residual=True, branch_scale=0.5, seed=3)
    assert [layer.branch_scale for layer in scaled.layers] == [0.5] * 5
    h = x
    for layer in unscaled.layers:  # the same weights: α does not change the init draws
        h = h + 0.5 * layer.branch(h)
    torch.testing.assert_close(scaled(x), h, rtol=0, atol=0)


def test_plain_mlp_layer_jacobian_has_no_identity_term():
    layer = MLPLayer(5, activation="tanh", residual=False, seed=1, dtype=F64)
    x = _randn(1, 5, seed=0)
    torch.testing.assert_close(_jacobian_matrix(layer, x), _jacobian_matrix(layer.branch, x))


def test_mlp_biases_start_at_zero_and_norm_is_applied_to_the_input():
    layer = MLPLayer(6, activation="relu", norm="layer", bias=True, seed=0, dtype=F64)
    assert torch.equal(layer.linear.bias, torch.zeros(6, dtype=F64))
    x = _randn(4, 6, seed=1)
    reference = nn.LayerNorm(6, elementwise_affine=False, dtype=F64)  # γ = 1, β = 0 at init
    torch.testing.assert_close(layer(x), torch.relu(reference(x) @ layer.linear.weight.T), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", [*ACTIVATIONS, "gelu"])
def test_make_activation_builds_torchs_module_of_that_name(name):
    expected = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu,
                "gelu": nn.functional.gelu, "identity": lambda t: t}[name]
    x = _randn(10, seed=4)
    torch.testing.assert_close(make_activation(name)(x), expected(x), rtol=0, atol=0)


# ------------------------------------------------------------------------------ independence and seeding
def test_deep_mlp_layers_are_independently_initialised():
    mlp = DeepMLP(16, 3, seed=0)
    assert not torch.allclose(mlp.layers[0].linear.weight, mlp.layers[1].linear.weight)


def test_deep_mlp_layers_are_the_successive_draws_of_one_generator():
    width, bound = 8, math.sqrt(6.0 / 16)  # xavier: U[±√(6/(n_in+n_out))]
    mlp = DeepMLP(width, 3, seed=7)
    g = torch.Generator().manual_seed(7)  # re-derived by hand: (2·U[0, 1) − 1)·b in float64, then cast
    for layer in mlp.layers:
        expected = (2.0 * torch.rand(width, width, generator=g, dtype=F64) - 1.0) * bound
        assert torch.equal(layer.linear.weight, expected.float())


def test_he_and_weight_scale_are_normal_draws_re_derived_by_hand():
    g = torch.Generator().manual_seed(2)
    he = DeepMLP(4, 1, init="he", seed=2, dtype=F64).layers[0].linear.weight
    assert torch.equal(he, torch.randn(4, 4, generator=g, dtype=F64) * math.sqrt(2.0 / 4))
    g = torch.Generator().manual_seed(2)
    scaled = DeepMLP(4, 1, weight_scale=3.0, seed=2, dtype=F64).layers[0].linear.weight
    assert torch.equal(scaled, torch.randn(4, 4, generator=g, dtype=F64) * (3.0 / math.sqrt(4)))


def test_same_seed_gives_identical_weights_and_outputs_different_seed_different():
    a, b, c = DeepMLP(8, 4, init="old", seed=0), DeepMLP(8, 4, init="old", seed=0), DeepMLP(8, 4, init="old", seed=1)
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb) and not torch.equal(pa, pc), name
    x = _randn(2, 8, seed=3, dtype=torch.float32)
    assert torch.equal(a(x), b(x)) and not torch.allclose(a(x), c(x))


def test_float32_and_float64_mlps_share_their_weights():
    a, b = DeepMLP(8, 3, init="he", seed=4), DeepMLP(8, 3, init="he", seed=4, dtype=F64)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert pa.dtype == torch.float32 and pb.dtype == F64
        assert torch.equal(pa, pb.float())


def test_construction_leaves_the_global_rng_untouched():
    state = torch.random.get_rng_state()
    DeepMLP(8, 3, seed=0)
    MLPLayer(8, norm="batch", seed=0)
    assert torch.equal(state, torch.random.get_rng_state())


def test_a_layer_drawn_from_a_given_generator_ignores_its_seed():
    a = MLPLayer(6, generator=draws.generator(3), seed=99)
    b = MLPLayer(6, seed=3)
    assert torch.equal(a.linear.weight, b.linear.weight)


# Computed from HEAD's gradlib/blocks.py (before the split) for seeds 0, 1, 123: the numbers must not change.
HEAD_WEIGHTS = {
    "old": (lambda s: DeepMLP(8, 3, init="old", seed=s),
            ("921468f72b90f533", "c0463bee6ca671ce", "e25cebcc408b91fd")),
    "xavier_f64": (lambda s: DeepMLP(8, 3, seed=s, dtype=F64),
                   ("9108329c0706ff3e", "2be7e10abf822df7", "c6329c40f29c0f60")),
    "he_norm_bias": (lambda s: DeepMLP(8, 2, init="he", norm="layer", bias=True, residual=True, seed=s),
                     ("0a01a6d9e465d7c0", "6db289bb46fe819c", "650ddd6419bf3630")),
    "weight_scale": (lambda s: DeepMLP(8, 2, weight_scale=2.0, seed=s),
                     ("dbcd7b556960cee6", "4c5b1306e320d90b", "a85eb1797a6efebe")),
}


@pytest.mark.parametrize("config", list(HEAD_WEIGHTS))
def test_weights_are_bit_for_bit_those_before_the_split(config):
    build, expected = HEAD_WEIGHTS[config]
    assert tuple(_checksum(build(s)) for s in (0, 1, 123)) == expected


# -------------------------------------------------------------------------------------- init statistics
@pytest.mark.parametrize(
    "init, expected_var",
    [("old", lambda n: 1 / (3 * n)), ("xavier", lambda n: 2 / (n + n)), ("he", lambda n: 2 / n)],
)
def test_deep_mlp_init_variance_matches_its_formula(init, expected_var):
    assert init in INITS
    width = 400
    mlp = DeepMLP(width, 3, init=init, seed=1, dtype=F64)
    for layer in mlp.layers:
        w = layer.linear.weight.detach()
        assert w.var().item() == pytest.approx(expected_var(width), rel=0.1)
        assert abs(w.mean().item()) < 0.05 * w.std().item()


def test_old_init_gives_n_times_variance_one_third_within_uniform_bounds():
    width = 300
    w = DeepMLP(width, 2, init="old", seed=0, dtype=F64).layers[0].linear.weight.detach()
    assert width * w.var().item() == pytest.approx(1 / 3, rel=0.1)
    assert w.abs().max().item() <= 1 / math.sqrt(width)


def test_weight_scale_overrides_init_with_variance_scale_squared_over_n():
    width, scale = 256, 3.0
    w = DeepMLP(width, 2, init="old", weight_scale=scale, seed=0, dtype=F64).layers[1].linear.weight.detach()
    assert w.var().item() == pytest.approx(scale**2 / width, rel=0.1)


# ---------------------------------------------------------------------------------------------- explosion
@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_exploding_deep_mlp_returns_non_finite_without_raising(activation):
    mlp = DeepMLP(64, 50, activation=activation, weight_scale=10.0, seed=0)  # gain ≥ 7 per layer, float32
    y = mlp(_randn(4, 64, seed=0, dtype=torch.float32))
    assert not torch.isfinite(y).all()
    grads = torch.autograd.grad(y.sum(), list(mlp.parameters()))
    assert not all(torch.isfinite(g).all() for g in grads)


def test_forward_does_not_check_its_input_for_nan():
    x = _randn(2, 8, seed=1, dtype=torch.float32)
    x[0, 3] = float("nan")
    y = DeepMLP(8, 2, seed=0)(x)  # a model passes NaN through: an explosion inside a stack is a result
    assert torch.isnan(y[0]).all() and torch.isfinite(y[1]).all()


# --------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"activation": "softplus"}, "activation"),
        ({"activation": "gelu"}, "activation"),  # an FFN activation, not one of the MLP's
        ({"init": "orthogonal"}, "init"),
        ({"norm": "group"}, "norm"),
        ({"depth": 0}, "depth"),
        ({"width": -3}, "width"),
        ({"width": 8.5}, "width"),
        ({"weight_scale": -1.0}, "weight_scale"),
        ({"weight_scale": float("inf")}, "weight_scale"),
        ({"residual": "yes"}, "residual"),
        ({"residual": True, "branch_scale": -0.1}, "branch_scale"),
        ({"residual": True, "branch_scale": float("nan")}, "branch_scale"),
        ({"residual": True, "branch_scale": "1"}, "branch_scale"),
        ({"residual": False, "branch_scale": 0.5}, "branch_scale"),
        ({"bias": 1}, "bias"),
        ({"dtype": torch.int64}, "dtype"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_deep_mlp_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = {"width": 8, "depth": 3, **kwargs}
    with pytest.raises(ValueError, match=name):
        DeepMLP(args.pop("width"), args.pop("depth"), **args)


def test_unknown_keywords_are_errors():
    with pytest.raises(TypeError, match="dropout"):
        DeepMLP(8, 2, dropout=0.1)
    with pytest.raises(ValueError, match="activation"):
        make_activation("swish")


def test_mlp_layer_rejects_a_branch_scale_without_a_skip_and_a_bad_generator():
    with pytest.raises(ValueError, match="branch_scale must be 1.0 when residual=False"):
        MLPLayer(4, branch_scale=0.0)
    with pytest.raises(ValueError, match=r"branch_scale must be a finite number >= 0"):
        MLPLayer(4, residual=True, branch_scale=float("inf"))
    with pytest.raises(ValueError, match="generator"):
        MLPLayer(4, generator=0)


def test_deep_mlp_forward_rejects_wrong_width():
    with pytest.raises(ValueError, match="width=8"):
        DeepMLP(8, 2)(torch.zeros(3, 5))
