"""gradlib.residual_variants: every placement computes its formula (checked with torch.nn.functional), which
variants keep the skip path an exact identity, and how stacks draw, end and refuse bad arguments."""

import math

import pytest
import torch
import torch.nn.functional as F

from gradlib.probes import layer_grad_norms
from gradlib.residual_variants import (
    HE_VARIANTS, NORMED_STREAM, VARIANTS, ResidualVariantBlock, ResidualVariantStack,
)

DT = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def by_formula(block, x):
    """The variant's formula written with torch's own layer_norm and relu (norms at γ = 1, β = 0)."""
    w1, w2 = block.w1, block.w2
    n = lambda t: F.layer_norm(t, t.shape[-1:], eps=1e-5)  # noqa: E731
    f = lambda t: F.relu(t @ w1.T) @ w2.T  # noqa: E731
    return {
        "original": lambda: F.relu(x + n(F.relu(n(x @ w1.T)) @ w2.T)),
        "norm_after_add": lambda: F.relu(n(x + F.relu(n(x @ w1.T)) @ w2.T)),
        "relu_before_add": lambda: x + F.relu(n(F.relu(n(x @ w1.T)) @ w2.T)),
        "relu_only_pre": lambda: x + n(F.relu(n(F.relu(x) @ w1.T)) @ w2.T),
        "full_pre": lambda: x + F.relu(n(F.relu(n(x)) @ w1.T)) @ w2.T,
        "post_ln": lambda: n(x + f(x)),
        "pre_ln": lambda: x + f(n(x)),
        "peri_ln": lambda: x + n(f(n(x))),
        "output_ln": lambda: x + n(f(x)),
    }[block.variant]()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_computes_its_formula(variant):
    block = ResidualVariantBlock(6, variant, d_hidden=10, seed=1, dtype=DT)
    x = randn(4, 6, seed=2)
    torch.testing.assert_close(block(x), by_formula(block, x))


def test_he_variants_are_the_five_units_of_identity_mappings_and_the_table_covers_nine():
    assert HE_VARIANTS == ("original", "norm_after_add", "relu_before_add", "relu_only_pre", "full_pre")
    assert len(VARIANTS) == 9 and set(NORMED_STREAM) < set(VARIANTS)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_with_the_branch_off_only_the_normed_stream_variants_are_not_the_identity(variant):
    block = ResidualVariantBlock(8, variant, seed=0, dtype=DT)
    with torch.no_grad():
        block.w2.zero_()  # the branch now adds nothing (where it is added at all)
    x = randn(3, 8, seed=3)
    identity = torch.allclose(block(x), x, atol=1e-12, rtol=0)
    assert identity == (variant not in NORMED_STREAM)


def test_a_stack_draws_independent_blocks_reproducibly_with_he_init():
    a = ResidualVariantStack(3, 256, "pre_ln", seed=5)
    b = ResidualVariantStack(3, 256, "pre_ln", seed=5)
    w = [blk.w1 for blk in a.layers]
    assert not torch.equal(w[0], w[1])
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    var = torch.cat([blk.w2.reshape(-1) for blk in a.layers]).double().var().item()
    assert var == pytest.approx(2 / 256, rel=0.03)  # He: Var W = 2/fan_in


def test_weight_gain_multiplies_every_branch_weight_exactly():
    a = ResidualVariantStack(2, 8, "peri_ln", seed=0, dtype=DT)
    b = ResidualVariantStack(2, 8, "peri_ln", weight_gain=4.0, seed=0, dtype=DT)
    for p, q in zip(a.layers.parameters(), b.layers.parameters()):
        if p.dim() == 2:
            torch.testing.assert_close(q, 4.0 * p)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_final_norm_is_added_unless_the_stream_is_normed_already(variant):
    stack = ResidualVariantStack(2, 4, variant)
    assert isinstance(stack.final_norm, torch.nn.Identity) == (variant in NORMED_STREAM)


def test_head_gives_logits_and_the_probes_find_the_blocks():
    stack = ResidualVariantStack(5, 8, "full_pre", n_out=3, seed=0)
    x = randn(4, 8).float()
    assert stack(x).shape == (4, 3)
    grads = layer_grad_norms(stack, x)
    assert grads.names == [f"layers.{i}" for i in range(5)]
    assert stack.head.weight.std().item() == pytest.approx(8**-0.5, rel=0.5)


def test_rms_and_dyt_norms_can_stand_in_for_layer_norm():
    x = randn(2, 8).float()
    for norm in ("rms", "dyt"):
        stack = ResidualVariantStack(2, 8, "pre_ln", norm=norm)
        assert type(stack.final_norm).__name__ == {"rms": "RMSNorm", "dyt": "DyT"}[norm]
        assert torch.isfinite(stack(x)).all()


@pytest.mark.parametrize("kwargs, name", [
    (dict(variant="pre-ln"), "variant"), (dict(norm="batch"), "norm"), (dict(weight_gain=0.0), "weight_gain"),
    (dict(weight_gain=math.inf), "weight_gain"), (dict(d_hidden=0), "d_hidden"), (dict(d=2.5), "d"),
])
def test_bad_block_arguments_raise_value_errors_naming_them(kwargs, name):
    args = {"d": 4, "variant": "pre_ln", **kwargs}
    with pytest.raises(ValueError, match=name):
        ResidualVariantBlock(args.pop("d"), args.pop("variant"), **args)


def test_bad_stack_arguments_and_inputs_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="n_layers"):
        ResidualVariantStack(0, 4, "pre_ln")
    with pytest.raises(ValueError, match="n_out"):
        ResidualVariantStack(2, 4, "pre_ln", n_out=0)
    with pytest.raises(ValueError, match="final_norm"):
        ResidualVariantStack(2, 4, "pre_ln", final_norm="yes")
    with pytest.raises(ValueError, match=r"x must be a tensor of shape \(\.\.\., d=4\)"):
        ResidualVariantStack(2, 4, "pre_ln")(torch.zeros(3, 5))
