"""gradlib.transformer: the block and stacks against nn.TransformerEncoderLayer with copied weights and autograd."""

import hashlib
import math

import pytest
import torch
from torch import nn

from gradlib import draws
from gradlib.transformer import (
    FFN_ACTIVATIONS,
    NORM_POSITIONS,
    STACK_INITS,
    TransformerBlock,
    TransformerStack,
    attention_stack,
    deepnorm_constants,
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
    return torch.autograd.functional.jacobian(fn, x).reshape(-1, x.numel())


def _rank_residual(h):
    """‖H − 1 h̄ᵀ‖_F / ‖H‖_F: 0 when every token is the same vector."""
    return ((h - h.mean(dim=-2, keepdim=True)).norm() / h.norm()).item()


def _torch_layer(d_model, n_heads, d_ff, *, seed, **kwargs):
    """nn.TransformerEncoderLayer(dropout=0, batch_first, float64), its init drawn from a forked global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True, dtype=F64, **kwargs)


def _checksum(model: nn.Module) -> str:
    """First 16 hex digits of the sha256 of every state-dict entry's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


# ---------------------------------------------------------------------------- TransformerBlock vs PyTorch
@pytest.mark.parametrize("n_heads", [1, 4])
@pytest.mark.parametrize("norm_first", [True, False])
def test_block_equals_torch_encoder_layer_outputs_and_input_grads(norm_first, n_heads):
    d_model, d_ff = 8, 24
    ref = _torch_layer(d_model, n_heads, d_ff, seed=0, norm_first=norm_first)
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
def test_block_with_causal_mask_and_other_eps_equals_torch_encoder_layer(norm_first):
    ref = _torch_layer(8, 2, 16, seed=1, layer_norm_eps=0.5, norm_first=norm_first)  # copy_from_torch copies ε
    block = TransformerBlock(8, 2, 16, norm_position="pre" if norm_first else "post", dtype=F64)
    block.copy_from_torch(ref)
    allowed = torch.tril(torch.ones(5, 5, dtype=torch.bool))  # gradlib: True = may attend
    x = _randn(2, 5, 8, seed=3)
    torch.testing.assert_close(block(x, mask=allowed), ref(x, src_mask=~allowed), rtol=1e-12, atol=1e-12)


def test_block_with_gelu_equals_torch_encoder_layer_with_gelu():
    ref = _torch_layer(8, 2, 16, seed=2, activation="gelu")
    block = TransformerBlock(8, 2, 16, norm_position="post", activation="gelu", dtype=F64)
    block.copy_from_torch(ref)
    x = _randn(2, 5, 8, seed=4)
    torch.testing.assert_close(block(x), ref(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm_first", [True, False])
def test_stack_equals_torch_layers_applied_in_turn_with_copied_weights(norm_first):
    stack = TransformerStack(3, 8, 2, 16, norm_position="pre" if norm_first else "post", seed=5, dtype=F64)
    layers = [_torch_layer(8, 2, 16, seed=30 + i, norm_first=norm_first) for i in range(3)]
    for block, layer in zip(stack.layers, layers):
        block.copy_from_torch(layer)
    final = nn.LayerNorm(8, dtype=F64) if norm_first else nn.Identity()  # Pre-LN ends with a final LayerNorm

    def reference(x):
        for layer in layers:
            x = layer(x)
        return final(x)

    x, r = _randn(2, 7, 8, seed=6), _randn(2, 7, 8, seed=8)
    y, grad = _output_and_input_grad(stack, x, r)
    y_ref, grad_ref = _output_and_input_grad(reference, x, r)
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
    with pytest.raises(ValueError, match="layer must be"):
        TransformerBlock(8, 2, 16).copy_from_torch(nn.Linear(8, 8))


# ------------------------------------------------------------------------------------- residual highway
@pytest.mark.parametrize(
    "kwargs",
    [
        {"norm": "layer", "norm_position": "pre"},
        {"norm": "rms", "norm_position": "pre", "attention_only": True},
        {"norm": "none", "norm_position": "post"},
    ],
)
def test_block_with_branch_scale_zero_is_exactly_the_identity_map(kwargs):
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


def test_pure_attention_stack_collapses_to_rank_one_and_skips_prevent_it():
    x = _randn(1, 10, 16, seed=0)
    pure = attention_stack(8, 16, seed=0)(x)
    with_skips = attention_stack(8, 16, residual=True, seed=0)(x)
    assert _rank_residual(pure) < 1e-10 * _rank_residual(x)
    assert _rank_residual(with_skips) > 0.1 * _rank_residual(x)


def test_forward_does_not_check_its_input_for_nan():
    x = _randn(2, 4, 8, seed=1)
    x[1, 0, 0] = float("nan")
    y = TransformerStack(2, 8, 2, 16, seed=0, dtype=F64)(x)  # an explosion inside a stack is a result, not an error
    assert torch.isnan(y[1]).all() and torch.isfinite(y[0]).all()


# ------------------------------------------------------------------------------------------------ DeepNorm
@pytest.mark.parametrize("n_layers", [1, 6, 100])
def test_deepnorm_constants_are_2n_to_the_quarter_and_8n_to_the_minus_quarter(n_layers):
    s, beta = deepnorm_constants(n_layers)
    assert s == pytest.approx((2 * n_layers) ** 0.25, rel=1e-15)
    assert beta == pytest.approx((8 * n_layers) ** -0.25, rel=1e-15)
    assert s**4 == pytest.approx(2 * n_layers) and beta**-4 == pytest.approx(8 * n_layers)


def test_deepnorm_constants_for_one_layer_and_bad_depths():
    assert deepnorm_constants(1) == pytest.approx((2**0.25, 8**-0.25))
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="n_layers"):
            deepnorm_constants(bad)


def test_deepnorm_stack_scales_skip_and_value_output_ffn_weights_but_not_queries_keys():
    n_layers, d, d_ff = 6, 64, 256
    stack = TransformerStack(n_layers, d, 4, d_ff, init="deepnorm", seed=0, dtype=F64)
    s, beta = deepnorm_constants(n_layers)
    assert isinstance(stack.final_norm, nn.Identity)
    xavier_std = math.sqrt(2 / (d + d))
    for block in stack.layers:
        assert block.norm_position == "post" and block.skip_scale == s
        for lin in (block.attn.w_q, block.attn.w_k):
            assert lin.weight.std().item() == pytest.approx(xavier_std, rel=0.05)
        for lin in (block.attn.w_v, block.attn.w_o):
            assert lin.weight.std().item() == pytest.approx(beta * xavier_std, rel=0.05)
        for lin in (block.ffn[0], block.ffn[2]):
            assert lin.weight.std().item() == pytest.approx(beta * math.sqrt(2 / (d + d_ff)), rel=0.05)
            assert torch.equal(lin.bias, torch.zeros_like(lin.bias))


def test_deepnorm_stack_computes_layernorm_of_s_x_plus_branch():
    stack = TransformerStack(2, 8, 2, 16, init="deepnorm", seed=1, dtype=F64)
    block, s = stack.layers[0], 4.0**0.25
    x = _randn(2, 5, 8, seed=2)
    h = nn.functional.layer_norm(s * x + block.attn(x), (8,))
    expected = nn.functional.layer_norm(s * h + block.ffn(h), (8,))
    torch.testing.assert_close(block(x), expected, rtol=1e-12, atol=1e-12)


def test_deepnorm_weights_are_xavier_normal_draws_times_beta_re_derived_by_hand():
    d, d_ff, n = 4, 8, 3
    stack = TransformerStack(n, d, 1, d_ff, init="deepnorm", seed=2, dtype=F64)
    beta = (8 * n) ** -0.25
    g = torch.Generator().manual_seed(2)
    for block in stack.layers:  # order: W_Q, W_K, W_V, W_O, FFN in, FFN out
        lins = (block.attn.w_q, block.attn.w_k, block.attn.w_v, block.attn.w_o, block.ffn[0], block.ffn[2])
        for lin, gain in zip(lins, (1.0, 1.0, beta, beta, beta, beta)):
            std = gain * math.sqrt(2.0 / (lin.in_features + lin.out_features))
            assert torch.equal(lin.weight, torch.randn(lin.weight.shape, generator=g, dtype=F64) * std)


# ------------------------------------------------------------------------------ independence and seeding
def test_stack_layers_are_independently_initialised():
    stack = TransformerStack(3, 8, 2, 16, seed=0)
    first, second = stack.layers[0], stack.layers[1]
    for name in ("w_q", "w_k", "w_v", "w_o"):
        assert not torch.allclose(getattr(first.attn, name).weight, getattr(second.attn, name).weight)
    assert not torch.allclose(first.ffn[0].weight, second.ffn[0].weight)
    assert not torch.allclose(first.ffn[2].weight, second.ffn[2].weight)


def test_xavier_attention_stack_weights_are_the_successive_uniform_draws_of_one_generator():
    d = 8
    stack = attention_stack(3, d, 2, seed=4)
    g, bound = torch.Generator().manual_seed(4), math.sqrt(6.0 / (d + d))
    for block in stack.layers:
        for lin in (block.attn.w_q, block.attn.w_k, block.attn.w_v, block.attn.w_o):
            assert torch.equal(lin.weight, (2.0 * torch.rand(d, d, generator=g, dtype=F64) - 1.0) * bound)
            assert torch.count_nonzero(lin.bias) == 0


def test_reset_parameters_redraws_from_the_given_generator():
    a, b = TransformerBlock(8, 2, 16, seed=0), TransformerBlock(8, 2, 16, seed=9)
    b.reset_parameters(draws.generator(0))
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize(
    "build",
    [
        lambda seed: TransformerStack(2, 8, 2, 16, seed=seed),
        lambda seed: TransformerStack(2, 8, 2, 16, init="deepnorm", seed=seed),
        lambda seed: attention_stack(2, 8, 2, seed=seed),
        lambda seed: TransformerBlock(8, 2, 16, seed=seed),
    ],
    ids=["transformer_stack", "deepnorm_stack", "attention_stack", "block"],
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
    x = _randn(2, 5, 8, seed=3, dtype=next(a.parameters()).dtype)
    assert torch.equal(a(x), b(x))
    assert not torch.allclose(a(x), c(x))


def test_construction_leaves_the_global_rng_untouched():
    state = torch.random.get_rng_state()
    TransformerStack(2, 8, 2, 16, seed=0)
    TransformerStack(2, 8, 2, 16, init="deepnorm", seed=0)
    attention_stack(2, 8, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())


def test_float32_and_float64_stacks_share_their_weights():
    a = TransformerStack(2, 8, 2, 16, seed=4, dtype=torch.float32)
    b = TransformerStack(2, 8, 2, 16, seed=4, dtype=F64)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert pa.dtype == torch.float32 and pb.dtype == F64
        torch.testing.assert_close(pa, pb.float(), rtol=0, atol=0)


# Computed from HEAD's gradlib/blocks.py (before the split) for seeds 0, 1, 123: the numbers must not change.
HEAD_WEIGHTS = {
    "block": (lambda s: TransformerBlock(8, 2, 16, seed=s),
              ("be009bbc96661c97", "f21ed4e3a80be6b6", "cfc617173cf38a09")),
    "block_attention_only_f64": (
        lambda s: TransformerBlock(8, 2, attention_only=True, norm="rms", seed=s, dtype=F64),
        ("bc2b6fe60f97241b", "c8e04b8945d5b422", "2d1f00aa4e5b73b1")),
    "stack_default": (lambda s: TransformerStack(2, 8, 2, 16, seed=s),
                      ("ad122f310bc01402", "9d207f1f1ada7179", "8c1335a595d0eab4")),
    "stack_xavier_f64": (lambda s: TransformerStack(2, 8, 2, 16, init="xavier", seed=s, dtype=F64),
                         ("d2d23ec7bd8f6e45", "df79e8ea15db9f01", "d427bca416265697")),
    "stack_deepnorm": (lambda s: TransformerStack(3, 8, 2, 16, init="deepnorm", seed=s),
                       ("453967e9f8c1663c", "60507b403688c28e", "5f473c9e04385555")),
    "attention_stack": (lambda s: attention_stack(2, 8, 2, seed=s),
                        ("aa0728544ad64358", "8b1c48f4a8652571", "d35c86e2ee9db4fc")),
}


@pytest.mark.parametrize("config", list(HEAD_WEIGHTS))
def test_weights_are_bit_for_bit_those_before_the_split(config):
    build, expected = HEAD_WEIGHTS[config]
    assert tuple(_checksum(build(s)) for s in (0, 1, 123)) == expected


# -------------------------------------------------------------------------------------- init statistics
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


@pytest.mark.parametrize("position", ["pre", "post"])
def test_attention_stack_with_a_norm_is_pre_or_post_ln_around_the_same_attention(position):
    # the same Xavier draws as the plain stack; LayerNorm from torch.nn.functional, the blocks written out by hand
    x = _randn(2, 5, 8, seed=3)
    plain = attention_stack(3, 8, 2, residual=True, seed=1)
    normed = attention_stack(3, 8, 2, residual=True, norm="layer", norm_position=position, seed=1)
    assert isinstance(normed.final_norm, nn.Identity)
    h = x
    with torch.no_grad():
        for ours, bare in zip(normed.layers, plain.layers):
            assert ours.ffn is None and ours.norm_position == position
            torch.testing.assert_close(ours.attn.w_q.weight, bare.attn.w_q.weight, rtol=0, atol=0)
            ln = lambda t: nn.functional.layer_norm(t, (8,), eps=1e-5)  # noqa: E731  γ = 1, β = 0 at init
            h = h + bare.attn(ln(h)) if position == "pre" else ln(h + bare.attn(h))
        torch.testing.assert_close(normed(x), h, rtol=1e-12, atol=1e-12)


def test_attention_stack_default_norm_is_none():
    stack = attention_stack(2, 8, norm_position="post")  # no norm: the position changes nothing
    x = _randn(1, 4, 8, seed=2)
    with torch.no_grad():
        torch.testing.assert_close(stack(x), attention_stack(2, 8)(x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="norm"):
        attention_stack(2, 8, norm="group")
    with pytest.raises(ValueError, match="norm_position"):
        attention_stack(2, 8, norm="layer", norm_position="middle")


def test_stack_final_norm_defaults_to_pre_norm_only():
    assert not isinstance(TransformerStack(2, 8, norm_position="pre").final_norm, nn.Identity)
    assert isinstance(TransformerStack(2, 8, norm_position="post").final_norm, nn.Identity)
    assert isinstance(TransformerStack(2, 8, norm_position="pre", final_norm=False).final_norm, nn.Identity)
    assert isinstance(TransformerStack(2, 8, norm="none").final_norm, nn.Identity)


def test_the_option_tuples_list_what_the_block_and_stack_accept():
    assert STACK_INITS == ("default", "xavier", "deepnorm") and NORM_POSITIONS == ("pre", "post")
    for activation in FFN_ACTIVATIONS:
        TransformerBlock(4, activation=activation)
    for init in STACK_INITS:
        TransformerStack(1, 4, init=init, norm_position="post")


# --------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((6, 4), {}, "d_model"),
        ((0, 1), {}, "d_model"),
        ((8, 0), {}, "n_heads"),
        ((8, 2, 0), {}, "d_ff"),
        ((8,), {"norm": "group"}, "norm"),
        ((8,), {"norm_position": "middle"}, "norm_position"),
        ((8,), {"residual": 1}, "residual"),
        ((8,), {"attention_only": "no"}, "attention_only"),
        ((8,), {"activation": "swish"}, "activation"),
        ((8,), {"scale": "foo"}, "scale"),
        ((8,), {"scale": -2.0}, "scale"),
        ((8,), {"branch_scale": float("nan")}, "branch_scale"),
        ((8,), {"skip_scale": "1"}, "skip_scale"),
        ((8,), {"seed": 1.5}, "seed"),
        ((8,), {"dtype": torch.int32}, "dtype"),
    ],
)
def test_block_bad_arguments_raise_value_error_naming_them(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        TransformerBlock(*args, **kwargs)


@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((0, 8), {}, "n_layers"),
        ((2, 6, 4), {}, "d_model"),
        ((2, 8), {"init": "orthogonal"}, "init"),
        ((2, 8), {"norm": "group"}, "norm"),
        ((2, 8), {"norm_position": "sideways"}, "norm_position"),
        ((2, 8), {"final_norm": "yes"}, "final_norm"),
        ((2, 8), {"dtype": torch.int64}, "dtype"),
        ((2, 8), {"dropout": 0.1}, "block_kwargs"),
        ((2, 8), {"init": "deepnorm", "norm_position": "pre"}, "norm_position"),
        ((2, 8), {"init": "deepnorm", "skip_scale": 2.0}, "skip_scale"),
        ((2, 8), {"init": "deepnorm", "residual": False}, "residual"),
    ],
)
def test_stack_bad_arguments_raise_value_error_naming_them(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        TransformerStack(*args, **kwargs)


def test_unknown_keywords_are_errors():
    with pytest.raises(ValueError, match="block_kwargs must be among .*; got unknown dropout"):
        TransformerStack(2, 8, dropout=0.1)
    with pytest.raises(TypeError, match="dropout"):
        TransformerBlock(8, dropout=0.1)


def test_reset_parameters_bad_arguments_raise_value_error_naming_them():
    block = TransformerBlock(8, 2, 16)
    with pytest.raises(ValueError, match="generator"):
        block.reset_parameters(0)
    with pytest.raises(ValueError, match="init"):
        block.reset_parameters(init="orthogonal")
    with pytest.raises(ValueError, match="n_layers"):
        block.reset_parameters(init="deepnorm", n_layers=0)


def test_attention_stack_bad_depth_raises_value_error():
    with pytest.raises(ValueError, match="n_layers"):
        attention_stack(0, 8)
