"""gradlib.reference: PyTorch's own encoder layers, drawn independently, holding TransformerStack's numbers."""

import hashlib
import math

import pytest
import torch
from torch import nn

from gradlib.reference import TorchEncoderStack, torch_encoder_stack
from gradlib.transformer import TransformerStack

F64 = torch.float64


def _randn(*shape, seed=0, dtype=F64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _output_and_input_grad(fn, x, r, **kwargs):
    """y = fn(x) and ∂⟨y, r⟩/∂x."""
    x = x.clone().requires_grad_(True)
    y = fn(x, **kwargs)
    (grad,) = torch.autograd.grad((y * r).sum(), x)
    return y.detach(), grad


def _checksum(model: nn.Module) -> str:
    """First 16 hex digits of the sha256 of every state-dict entry's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------- the same numbers as ours
@pytest.mark.parametrize("norm_first", [True, False])
def test_torch_encoder_stack_equals_transformer_stack_with_the_same_seed(norm_first):
    ours = TransformerStack(3, 8, 2, 16, seed=5, dtype=F64, norm_position="pre" if norm_first else "post")
    theirs = torch_encoder_stack(3, 8, 2, 16, norm_first=norm_first, seed=5, dtype=F64)
    assert isinstance(ours.final_norm, nn.Identity) != norm_first  # Pre-LN ends with a final norm
    assert isinstance(theirs.final_norm, nn.Identity) != norm_first
    for block, layer in zip(ours.layers, theirs.layers):  # weight for weight
        w_qkv = torch.cat([block.attn.w_q.weight, block.attn.w_k.weight, block.attn.w_v.weight])
        assert torch.equal(w_qkv, layer.self_attn.in_proj_weight)
        assert torch.equal(block.attn.w_o.weight, layer.self_attn.out_proj.weight)
        assert torch.equal(block.ffn[0].bias, layer.linear1.bias)
        assert torch.equal(block.ffn[2].weight, layer.linear2.weight)
    x, r = _randn(2, 7, 8, seed=6), _randn(2, 7, 8, seed=8)
    y, grad = _output_and_input_grad(ours, x, r)
    y_ref, grad_ref = _output_and_input_grad(theirs, x, r)
    torch.testing.assert_close(y, y_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, grad_ref, rtol=1e-12, atol=1e-12)


def test_mask_is_gradlibs_convention_true_may_attend():
    stack = torch_encoder_stack(2, 8, 2, 16, norm_first=True, seed=1, dtype=F64)
    allowed = torch.tril(torch.ones(5, 5, dtype=torch.bool))
    x = _randn(2, 5, 8, seed=3)
    expected = x
    for layer in stack.layers:
        expected = layer(expected, src_mask=~allowed)  # PyTorch's bool src_mask: True = may NOT attend
    torch.testing.assert_close(stack(x, mask=allowed), stack.final_norm(expected), rtol=0, atol=0)


# ---------------------------------------------------------------------------------- PyTorch's distributions
def test_layers_are_pytorchs_encoder_layers_with_dropout_zero_and_batch_first():
    stack = torch_encoder_stack(3, 8, 2, 16, norm_first=True, seed=0)
    assert isinstance(stack, TorchEncoderStack) and len(stack.layers) == 3
    assert all(isinstance(layer, nn.TransformerEncoderLayer) for layer in stack.layers)
    first = stack.layers[0]
    assert first.dropout.p == 0.0 and first.self_attn.batch_first and first.norm_first
    assert isinstance(stack.final_norm, nn.LayerNorm)


def test_draws_are_pytorchs_init_distributions_re_derived_by_hand():
    d, d_ff = 8, 16
    layer = torch_encoder_stack(1, d, 2, d_ff, norm_first=False, seed=3, dtype=F64).layers[0]
    g = torch.Generator().manual_seed(3)

    def uniform(shape, bound):
        return (2.0 * torch.rand(shape, generator=g, dtype=F64) - 1.0) * bound

    # xavier_uniform_ over the packed in_proj, nn.Linear's U[±1/√fan_in] elsewhere; biases of attention 0.
    assert torch.equal(layer.self_attn.in_proj_weight, uniform((3 * d, d), math.sqrt(6.0 / (4 * d))))
    assert torch.equal(layer.self_attn.out_proj.weight, uniform((d, d), 1.0 / math.sqrt(d)))
    assert torch.equal(layer.linear1.weight, uniform((d_ff, d), 1.0 / math.sqrt(d)))
    assert torch.equal(layer.linear1.bias, uniform((d_ff,), 1.0 / math.sqrt(d)))
    assert torch.equal(layer.linear2.weight, uniform((d, d_ff), 1.0 / math.sqrt(d_ff)))
    assert torch.equal(layer.linear2.bias, uniform((d,), 1.0 / math.sqrt(d_ff)))
    assert torch.count_nonzero(layer.self_attn.in_proj_bias) == 0
    assert torch.count_nonzero(layer.self_attn.out_proj.bias) == 0
    assert torch.equal(layer.norm1.weight, torch.ones(d, dtype=F64)) and torch.count_nonzero(layer.norm2.bias) == 0


def test_draws_stay_within_the_bounds_of_pytorchs_own_init():
    d, d_ff = 32, 64
    ours = torch_encoder_stack(1, d, 4, d_ff, norm_first=True, seed=0, dtype=F64).layers[0]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        theirs = nn.TransformerEncoderLayer(d, 4, d_ff, dropout=0.0, batch_first=True, dtype=F64)
    for name in ("self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight", "linear2.weight"):
        a, b = ours.get_parameter(name).abs().max().item(), theirs.get_parameter(name).abs().max().item()
        assert a == pytest.approx(b, rel=0.1), name  # both near the same bound of the same U[−b, b]


# ------------------------------------------------------------------------------ independence and seeding
def test_layers_are_independently_initialised():
    stack = torch_encoder_stack(3, 8, 2, 16, norm_first=True, seed=0)
    first, second = stack.layers[0], stack.layers[1]
    assert not torch.allclose(first.self_attn.in_proj_weight, second.self_attn.in_proj_weight)
    assert not torch.allclose(first.linear1.weight, second.linear1.weight)


def test_torch_transformer_encoder_deep_copies_one_layer_into_identical_layers():
    # The trap torch_encoder_stack avoids: every layer of nn.TransformerEncoder(layer, N) starts the same.
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    encoder = nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    for other in encoder.layers[1:]:
        assert torch.equal(encoder.layers[0].self_attn.in_proj_weight, other.self_attn.in_proj_weight)
        assert torch.equal(encoder.layers[0].linear1.weight, other.linear1.weight)


def test_same_seed_gives_identical_weights_and_different_seed_different():
    a, b, c = (torch_encoder_stack(2, 8, 2, 16, norm_first=False, seed=s) for s in (0, 0, 1))
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        if "weight" in name and "norm" not in name:
            assert not torch.equal(pa, pc), name
    x = _randn(2, 5, 8, seed=3, dtype=torch.float32)
    assert torch.equal(a(x), b(x)) and not torch.allclose(a(x), c(x))


def test_construction_leaves_the_global_rng_untouched():
    state = torch.random.get_rng_state()
    torch_encoder_stack(2, 8, 2, 16, norm_first=True, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())


# Computed from HEAD's gradlib/blocks.py (before the split) for seeds 0, 1, 123: the numbers must not change.
HEAD_WEIGHTS = ("232715a170c6930f", "d153743990d6d9e1", "6b15a43534fd3dc9")


def test_weights_are_bit_for_bit_those_before_the_split():
    got = tuple(_checksum(torch_encoder_stack(2, 8, 2, 16, norm_first=True, seed=s)) for s in (0, 1, 123))
    assert got == HEAD_WEIGHTS


# --------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    "args, kwargs, name",
    [
        ((0, 8, 2, 16), {"norm_first": True}, "n_layers"),
        ((2, 6, 4, 16), {"norm_first": True}, "d_model"),
        ((2, 8, 2, 0), {"norm_first": True}, "d_ff"),
        ((2, 8, 2, 16), {"norm_first": "pre"}, "norm_first"),
        ((2, 8, 2, 16), {"norm_first": True, "final_norm": 1}, "final_norm"),
        ((2, 8, 2, 16), {"norm_first": True, "seed": "0"}, "seed"),
        ((2, 8, 2, 16), {"norm_first": True, "dtype": torch.int64}, "dtype"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        torch_encoder_stack(*args, **kwargs)
