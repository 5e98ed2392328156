"""Tests for gradlib.blocks: deep MLPs, the Transformer block and stacks, against autograd and PyTorch."""

import math

import pytest
import torch
from torch import nn

from gradlib.blocks import (
    DeepMLP,
    MLPLayer,
    TorchEncoderStack,
    TransformerBlock,
    TransformerStack,
    attention_stack,
    torch_encoder_stack,
)

F64 = torch.float64


def _randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _output_and_input_grad(fn, x, r, **kwargs):
    """y = fn(x) and ∂⟨y, r⟩/∂x."""
    x = x.clone().requires_grad_(True)
    y = fn(x, **kwargs)
    (grad,) = torch.autograd.grad((y * r).sum(), x)
    return y.detach(), grad


def _jacobian_matrix(fn, x):
    """Autograd Jacobian of fn at x, flattened to (numel(y), numel(x))."""
    jac = torch.autograd.functional.jacobian(fn, x)
    return jac.reshape(-1, x.numel())


def _rank_residual(h):
    """‖H − 1 h̄ᵀ‖_F / ‖H‖_F: 0 when every token is the same vector."""
    return ((h - h.mean(dim=-2, keepdim=True)).norm() / h.norm()).item()


# ---------------------------------------------------------------------------- TransformerBlock vs PyTorch
@pytest.mark.parametrize("n_heads", [1, 4])
@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_block_equals_torch_encoder_layer_outputs_and_input_grads(norm_first, n_heads):
    d_model, d_ff = 8, 24
    ref = nn.TransformerEncoderLayer(
        d_model, n_heads, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first, dtype=F64
    )
    with torch.no_grad():  # non-trivial norm parameters, so a swapped or dropped γ/β would show
        for i, p in enumerate((ref.norm1.weight, ref.norm1.bias, ref.norm2.weight, ref.norm2.bias)):
            p.add_(0.3 * _randn(d_model, seed=20 + i))
        ref.self_attn.in_proj_bias.copy_(0.1 * _randn(3 * d_model, seed=7))
    block = TransformerBlock(
        d_model, n_heads, d_ff, norm="layer", norm_position="pre" if norm_first else "post",
        activation="relu", seed=11, dtype=F64,
    )
    block.copy_from_torch(ref)
    x, r = _randn(3, 6, d_model, seed=1), _randn(3, 6, d_model, seed=2)
    y, grad = _output_and_input_grad(block, x, r)
    y_ref, grad_ref = _output_and_input_grad(ref, x, r)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_block_with_causal_mask_and_other_eps_equals_torch_encoder_layer(norm_first):
    ref = nn.TransformerEncoderLayer(
        8, 2, 16, dropout=0.0, layer_norm_eps=0.5, batch_first=True, norm_first=norm_first, dtype=F64
    )  # a large ε: copy_from_torch must copy it too
    block = TransformerBlock(8, 2, 16, norm_position="pre" if norm_first else "post", dtype=F64)
    block.copy_from_torch(ref)
    allowed = torch.tril(torch.ones(5, 5, dtype=torch.bool))  # gradlib: True = may attend
    x = _randn(2, 5, 8, seed=3)
    torch.testing.assert_close(block(x, mask=allowed), ref(x, src_mask=~allowed), rtol=1e-12, atol=1e-12)


def test_transformer_block_with_gelu_equals_torch_encoder_layer_with_gelu():
    ref = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, activation="gelu", dtype=F64)
    block = TransformerBlock(8, 2, 16, norm_position="post", activation="gelu", dtype=F64)
    block.copy_from_torch(ref)
    x = _randn(2, 5, 8, seed=4)
    torch.testing.assert_close(block(x), ref(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_stack_equals_torch_encoder_stack_with_the_same_seed(norm_first):
    position = "pre" if norm_first else "post"
    ours = TransformerStack(3, 8, 2, 16, seed=5, dtype=F64, norm_position=position)
    theirs = torch_encoder_stack(3, 8, 2, 16, norm_first=norm_first, seed=5, dtype=F64)
    assert isinstance(ours.final_norm, nn.Identity) != norm_first  # Pre-LN ends with a final norm
    assert isinstance(theirs.final_norm, nn.Identity) != norm_first
    x, r = _randn(2, 7, 8, seed=6), _randn(2, 7, 8, seed=8)
    y, grad = _output_and_input_grad(ours, x, r)
    y_ref, grad_ref = _output_and_input_grad(theirs, x, r)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=1e-12)


def test_copy_from_torch_rejects_a_layer_of_another_structure():
    ref = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True)
    with pytest.raises(ValueError, match="norm_first"):
        TransformerBlock(8, 2, 16, norm_position="post").copy_from_torch(ref)
    with pytest.raises(ValueError, match="norm='layer'"):
        TransformerBlock(8, 2, 16, norm="rms").copy_from_torch(ref)
    with pytest.raises(ValueError, match="dim_feedforward"):
        TransformerBlock(8, 2, 32).copy_from_torch(ref)
    with pytest.raises(ValueError, match="activation"):
        TransformerBlock(8, 2, 16, activation="gelu").copy_from_torch(ref)
    with pytest.raises(ValueError, match="num_heads"):
        TransformerBlock(8, 4, 16).copy_from_torch(ref)


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


@pytest.mark.parametrize(
    "kwargs",
    [
        {"norm": "layer", "norm_position": "pre"},
        {"norm": "rms", "norm_position": "pre", "attention_only": True},
        {"norm": "none", "norm_position": "post"},
    ],
)
def test_transformer_block_with_branch_scale_zero_is_exactly_the_identity_map(kwargs):
    block = TransformerBlock(4, 2, 8, branch_scale=0.0, seed=1, dtype=F64, **kwargs)
    x = _randn(1, 3, 4, seed=9)
    assert torch.equal(block(x), x)
    torch.testing.assert_close(_jacobian_matrix(block, x), torch.eye(12, dtype=F64), rtol=0, atol=0)


def test_branch_scale_zero_is_still_learnable_and_gets_a_gradient():
    block = TransformerBlock(4, 1, 8, branch_scale=0.0, dtype=F64)
    assert isinstance(block.alpha, nn.Parameter) and block.alpha.requires_grad
    assert any(p is block.alpha for p in block.parameters())
    (grad,) = torch.autograd.grad((block(_randn(2, 3, 4, seed=1)) * _randn(2, 3, 4, seed=2)).sum(), block.alpha)
    assert grad.abs().item() > 1e-6  # ReZero: α starts at 0 but training moves it


def test_branch_scale_multiplies_the_branch_and_skip_scale_the_skip():
    x = _randn(2, 3, 4, seed=0)
    ref = TransformerBlock(4, 1, 8, norm="none", attention_only=True, seed=3, dtype=F64)
    scaled = TransformerBlock(4, 1, 8, norm="none", attention_only=True, branch_scale=0.5, skip_scale=2.0,
                              seed=3, dtype=F64)
    branch = ref.attn(x)
    torch.testing.assert_close(scaled(x), 2.0 * x + 0.5 * branch, rtol=1e-14, atol=1e-14)
    plain = TransformerBlock(4, 1, 8, norm="none", attention_only=True, residual=False, seed=3, dtype=F64)
    torch.testing.assert_close(plain(x), branch, rtol=1e-14, atol=1e-14)


# ------------------------------------------------------------------------------ independence and seeding
def test_transformer_stack_layers_are_independently_initialised():
    stack = TransformerStack(3, 8, 2, 16, seed=0)
    first, second = stack.layers[0], stack.layers[1]
    for name in ("w_q", "w_k", "w_v", "w_o"):
        assert not torch.allclose(getattr(first.attn, name).weight, getattr(second.attn, name).weight)
    assert not torch.allclose(first.ffn[0].weight, second.ffn[0].weight)
    assert not torch.allclose(first.ffn[2].weight, second.ffn[2].weight)


def test_torch_encoder_stack_layers_are_independently_initialised():
    stack = torch_encoder_stack(3, 8, 2, 16, norm_first=True, seed=0)
    assert isinstance(stack, TorchEncoderStack) and len(stack.layers) == 3
    assert all(isinstance(layer, nn.TransformerEncoderLayer) for layer in stack.layers)
    first, second = stack.layers[0], stack.layers[1]
    assert first.dropout.p == 0.0 and first.self_attn.batch_first and first.norm_first
    assert not torch.allclose(first.self_attn.in_proj_weight, second.self_attn.in_proj_weight)
    assert not torch.allclose(first.linear1.weight, second.linear1.weight)


def test_torch_transformer_encoder_deep_copies_one_layer_into_identical_layers():
    # The trap torch_encoder_stack avoids: every layer of nn.TransformerEncoder(layer, N) starts the same.
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    for other in encoder.layers[1:]:
        assert torch.equal(encoder.layers[0].self_attn.in_proj_weight, other.self_attn.in_proj_weight)
        assert torch.equal(encoder.layers[0].linear1.weight, other.linear1.weight)


def test_deep_mlp_layers_are_independently_initialised():
    mlp = DeepMLP(16, 3, seed=0)
    assert not torch.allclose(mlp.layers[0].linear.weight, mlp.layers[1].linear.weight)


@pytest.mark.parametrize(
    "build",
    [
        lambda seed: DeepMLP(8, 4, init="old", seed=seed),
        lambda seed: TransformerStack(2, 8, 2, 16, seed=seed),
        lambda seed: TransformerStack(2, 8, 2, 16, init="deepnorm", seed=seed),
        lambda seed: attention_stack(2, 8, 2, seed=seed),
        lambda seed: torch_encoder_stack(2, 8, 2, 16, norm_first=False, seed=seed),
        lambda seed: TransformerBlock(8, 2, 16, seed=seed),
    ],
    ids=["deep_mlp", "transformer_stack", "deepnorm_stack", "attention_stack", "torch_encoder_stack", "block"],
)
def test_same_seed_gives_identical_weights_and_outputs_different_seed_different(build):
    a, b, c = build(0), build(0), build(1)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name
    random_weights = [
        (pa, pc) for (name, pa), pc in zip(a.named_parameters(), c.parameters())
        if "weight" in name and "norm" not in name
    ]
    assert random_weights and all(not torch.equal(pa, pc) for pa, pc in random_weights)
    dtype = next(a.parameters()).dtype
    x = _randn(2, 8, seed=3, dtype=dtype) if isinstance(a, DeepMLP) else _randn(2, 5, 8, seed=3, dtype=dtype)
    assert torch.equal(a(x), b(x))
    assert not torch.allclose(a(x), c(x))


def test_construction_leaves_the_global_rng_untouched():
    state = torch.random.get_rng_state()
    DeepMLP(8, 3, seed=0)
    TransformerStack(2, 8, 2, 16, seed=0)
    attention_stack(2, 8, seed=0)
    torch_encoder_stack(2, 8, 2, 16, norm_first=True, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())


def test_float32_and_float64_stacks_share_their_weights():
    a = TransformerStack(2, 8, 2, 16, seed=4, dtype=torch.float32)
    b = TransformerStack(2, 8, 2, 16, seed=4, dtype=F64)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert pa.dtype == torch.float32 and pb.dtype == F64
        torch.testing.assert_close(pa, pb.float(), rtol=0, atol=0)


# -------------------------------------------------------------------------------------- init statistics
@pytest.mark.parametrize(
    "init, expected_var",
    [("old", lambda n: 1 / (3 * n)), ("xavier", lambda n: 2 / (n + n)), ("he", lambda n: 2 / n)],
)
def test_deep_mlp_init_variance_matches_its_formula(init, expected_var):
    width = 400
    mlp = DeepMLP(width, 3, init=init, seed=1, dtype=F64)
    for layer in mlp.layers:
        w = layer.linear.weight.detach()
        assert w.var().item() == pytest.approx(expected_var(width), rel=0.1)
        assert abs(w.mean().item()) < 0.05 * w.std().item()


def test_old_init_gives_n_times_variance_one_third_within_uniform_bounds():
    width = 300
    mlp = DeepMLP(width, 2, init="old", seed=0, dtype=F64)
    w = mlp.layers[0].linear.weight.detach()
    assert width * w.var().item() == pytest.approx(1 / 3, rel=0.1)
    assert w.abs().max().item() <= 1 / math.sqrt(width)


def test_weight_scale_overrides_init_with_variance_scale_squared_over_n():
    width, scale = 256, 3.0
    mlp = DeepMLP(width, 2, init="old", weight_scale=scale, seed=0, dtype=F64)
    w = mlp.layers[1].linear.weight.detach()
    assert w.var().item() == pytest.approx(scale**2 / width, rel=0.1)


def test_mlp_biases_start_at_zero_and_norm_is_applied_to_the_input():
    layer = MLPLayer(6, activation="relu", norm="layer", bias=True, seed=0, dtype=F64)
    assert torch.equal(layer.linear.bias, torch.zeros(6, dtype=F64))
    x = _randn(4, 6, seed=1)
    x_hat = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(layer(x), torch.relu(x_hat @ layer.linear.weight.T), rtol=1e-12, atol=1e-12)


def test_default_stack_init_has_pytorch_variances():
    d, d_ff = 64, 256
    block = TransformerStack(1, d, 4, d_ff, seed=0, dtype=F64).layers[0]
    # Xavier over the packed (3d × d) in-projection: Var W_V = 2/(3d + d) = 1/(2d), not 1/d.
    for lin in (block.attn.w_q, block.attn.w_k, block.attn.w_v):
        assert lin.weight.var().item() == pytest.approx(1 / (2 * d), rel=0.1)
        assert torch.equal(lin.bias, torch.zeros(d, dtype=F64))
    assert block.attn.w_o.weight.var().item() == pytest.approx(1 / (3 * d), rel=0.1)
    assert block.ffn[2].weight.var().item() == pytest.approx(1 / (3 * d_ff), rel=0.1)


def test_attention_stack_is_pure_xavier_attention_in_float64():
    stack = attention_stack(4, 64, 2)
    assert isinstance(stack.final_norm, nn.Identity)
    for block in stack.layers:
        assert block.ffn is None and isinstance(block.norm_attn, nn.Identity) and not block.residual
        assert block.attn.w_q.weight.dtype == F64
        assert block.attn.w_q.weight.var().item() == pytest.approx(1 / 64, rel=0.1)  # Xavier: 2/(d + d)


def test_pure_attention_stack_collapses_to_rank_one_and_skips_prevent_it():
    x = _randn(1, 10, 16, seed=0)
    pure = attention_stack(8, 16, seed=0)(x)
    with_skips = attention_stack(8, 16, residual=True, seed=0)(x)
    assert _rank_residual(pure) < 1e-10 * _rank_residual(x)
    assert _rank_residual(with_skips) > 0.1 * _rank_residual(x)


def test_deepnorm_stack_scales_skip_and_value_output_ffn_weights_but_not_queries_keys():
    n_layers, d, d_ff = 6, 64, 256
    stack = TransformerStack(n_layers, d, 4, d_ff, init="deepnorm", seed=0, dtype=F64)
    alpha, beta = (2 * n_layers) ** 0.25, (8 * n_layers) ** -0.25
    assert isinstance(stack.final_norm, nn.Identity)
    xavier_std = math.sqrt(2 / (d + d))
    for block in stack.layers:
        assert block.norm_position == "post" and block.skip_scale == pytest.approx(alpha)
        for lin in (block.attn.w_q, block.attn.w_k):
            assert lin.weight.std().item() == pytest.approx(xavier_std, rel=0.05)
        for lin in (block.attn.w_v, block.attn.w_o):
            assert lin.weight.std().item() == pytest.approx(beta * xavier_std, rel=0.05)
        for lin in (block.ffn[0], block.ffn[2]):
            assert lin.weight.std().item() == pytest.approx(beta * math.sqrt(2 / (d + d_ff)), rel=0.05)
            assert torch.equal(lin.bias, torch.zeros_like(lin.bias))


def test_deepnorm_stack_computes_layernorm_of_alpha_x_plus_branch():
    stack = TransformerStack(2, 8, 2, 16, init="deepnorm", seed=1, dtype=F64)
    block, alpha = stack.layers[0], 4.0**0.25
    x = _randn(2, 5, 8, seed=2)
    h = nn.functional.layer_norm(alpha * x + block.attn(x), (8,))
    expected = nn.functional.layer_norm(alpha * h + block.ffn(h), (8,))
    torch.testing.assert_close(block(x), expected, rtol=1e-12, atol=1e-12)


def test_stack_final_norm_defaults_to_pre_norm_only():
    assert not isinstance(TransformerStack(2, 8, norm_position="pre").final_norm, nn.Identity)
    assert isinstance(TransformerStack(2, 8, norm_position="post").final_norm, nn.Identity)
    assert isinstance(TransformerStack(2, 8, norm_position="pre", final_norm=False).final_norm, nn.Identity)
    assert isinstance(TransformerStack(2, 8, norm="none").final_norm, nn.Identity)


# ---------------------------------------------------------------------------------------------- explosion
@pytest.mark.parametrize("activation", ["relu", "identity"])
def test_exploding_deep_mlp_returns_non_finite_without_raising(activation):
    mlp = DeepMLP(64, 50, activation=activation, weight_scale=10.0, seed=0)  # gain ≥ 7 per layer, float32
    x = _randn(4, 64, seed=0, dtype=torch.float32)
    y = mlp(x)
    assert not torch.isfinite(y).all()
    grads = torch.autograd.grad(y.sum(), list(mlp.parameters()))
    assert not all(torch.isfinite(g).all() for g in grads)


# --------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"activation": "softplus"}, "activation"),
        ({"init": "orthogonal"}, "init"),
        ({"norm": "group"}, "norm"),
        ({"depth": 0}, "depth"),
        ({"width": -3}, "width"),
        ({"weight_scale": -1.0}, "weight_scale"),
        ({"weight_scale": float("inf")}, "weight_scale"),
        ({"residual": "yes"}, "residual"),
        ({"residual": True, "branch_scale": -0.1}, "branch_scale"),
        ({"residual": True, "branch_scale": float("nan")}, "branch_scale"),
        ({"residual": True, "branch_scale": "1"}, "branch_scale"),
        ({"residual": False, "branch_scale": 0.5}, "branch_scale"),
        ({"dtype": torch.int64}, "dtype"),
        ({"seed": "0"}, "seed"),
    ],
)
def test_deep_mlp_bad_arguments_raise_value_error_naming_them(kwargs, name):
    args = {"width": 8, "depth": 3, **kwargs}
    with pytest.raises(ValueError, match=name):
        DeepMLP(args.pop("width"), args.pop("depth"), **args)


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((6, 4), {}, "d_model"),
        ((0, 1), {}, "d_model"),
        ((8, 0), {}, "n_heads"),
        ((8, 2, 0), {}, "d_ff"),
        ((8,), {"norm": "group"}, "norm"),
        ((8,), {"norm_position": "middle"}, "norm_position"),
        ((8,), {"activation": "swish"}, "activation"),
        ((8,), {"scale": "foo"}, "scale"),
        ((8,), {"scale": -2.0}, "scale"),
        ((8,), {"branch_scale": float("nan")}, "branch_scale"),
        ((8,), {"skip_scale": "1"}, "skip_scale"),
    ],
)
def test_transformer_block_bad_arguments_raise_value_error_naming_them(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        TransformerBlock(*args, **kwargs)


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((0, 8), {}, "n_layers"),
        ((2, 6, 4), {}, "d_model"),
        ((2, 8), {"init": "orthogonal"}, "init"),
        ((2, 8), {"norm_position": "sideways"}, "norm_position"),
        ((2, 8), {"final_norm": "yes"}, "final_norm"),
        ((2, 8), {"dropout": 0.1}, "block_kwargs"),
        ((2, 8), {"init": "deepnorm", "norm_position": "pre"}, "norm_position"),
        ((2, 8), {"init": "deepnorm", "skip_scale": 2.0}, "skip_scale"),
    ],
)
def test_transformer_stack_bad_arguments_raise_value_error_naming_them(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        TransformerStack(*args, **kwargs)


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((0, 8, 2, 16), {"norm_first": True}, "n_layers"),
        ((2, 6, 4, 16), {"norm_first": True}, "d_model"),
        ((2, 8, 2, 0), {"norm_first": True}, "d_ff"),
        ((2, 8, 2, 16), {"norm_first": "pre"}, "norm_first"),
    ],
)
def test_torch_encoder_stack_bad_arguments_raise_value_error_naming_them(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        torch_encoder_stack(*args, **kwargs)


def test_attention_stack_bad_depth_raises_value_error():
    with pytest.raises(ValueError, match="n_layers"):
        attention_stack(0, 8)


def test_mlp_layer_rejects_a_branch_scale_without_a_skip():
    with pytest.raises(ValueError, match="branch_scale must be 1.0 when residual=False"):
        MLPLayer(4, branch_scale=0.0)
    with pytest.raises(ValueError, match=r"branch_scale must be a finite number >= 0"):
        MLPLayer(4, residual=True, branch_scale=float("inf"))


def test_deep_mlp_forward_rejects_wrong_width():
    with pytest.raises(ValueError, match="width=8"):
        DeepMLP(8, 2)(torch.zeros(3, 5))
