"""gradlib.exp_encoder: chapter 6's headline over three seeds, each experiment against an independent truth."""

import numpy as np
import pytest
import torch
from torch import nn

from gradlib import exp_encoder as E
from gradlib import hf_models
from gradlib.exp_placement import stack_gradients
from gradlib.probes import layer_grad_norms
from gradlib.reference import torch_encoder_stack
from gradlib.transformer import TransformerBlock


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_chapters_headline_holds(seed):
    facts = E.facts(seed)
    assert facts and all(facts.values()), [fact for fact, holds in facts.items() if not holds]


def _pair(position, d=8, heads=2, d_ff=16):
    layer = torch_encoder_stack(1, d, heads, d_ff, norm_first=position == "pre", final_norm=False, seed=5,
                                dtype=torch.float64).layers[0]
    block = TransformerBlock(d, heads, d_ff, norm_position=position, dtype=torch.float64)
    block.copy_from_torch(layer)
    return block, layer


@pytest.mark.parametrize("position", ["pre", "post"])
def test_layer_match_is_round_off_for_the_same_layer_and_large_for_the_other_order(position):
    block, layer = _pair(position)
    same = E.layer_match(block, layer, seed=3)
    assert same.output_diff < 1e-12 and same.grad_diff < 1e-12 and same.output_scale > 0.5
    other = "post" if position == "pre" else "pre"
    moved = TransformerBlock(8, 2, 16, norm_position=other, dtype=torch.float64)
    moved.load_state_dict(block.state_dict())  # the same weights, the two lines moved
    wrong = E.layer_match(moved, layer, seed=3)
    assert wrong.output_diff > 0.1 and wrong.grad_diff > 0.01


def test_layer_match_refuses_what_it_cannot_compare():
    block, layer = _pair("pre")
    with pytest.raises(ValueError, match="forward"):
        E.layer_match(3, layer)
    with pytest.raises(ValueError, match="layer"):
        E.layer_match(block, nn.Linear(8, 8))
    with pytest.raises(ValueError, match="batch_first"):
        E.layer_match(block, nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0))
    with pytest.raises(ValueError, match="shape"):
        E.layer_match(lambda x: x[:, :1], layer.double())


def test_layer_choices_count_parameters_as_the_closed_form_and_measure_each_default():
    d, h = 16, 2
    ch = E.layer_choices(d_model=d, n_heads=h, seed=1)
    attention, norms = 4 * d * d + 4 * d, 4 * d  # W_Q, W_K, W_V, W_O and their biases; two LayerNorms

    def ffn(width):
        return 2 * d * width + width + d

    assert ch.params == attention + norms + ffn(2048) and ch.params_4x == attention + norms + ffn(4 * d)
    assert ch.ffn_share == pytest.approx(ffn(2048) / ch.params)
    assert (ch.norm_first, ch.batch_first, ch.dropout, ch.d_ff) == (False, False, 0.1, 2048)
    assert ch.batch_leak > 0 and ch.batch_leak_fixed == 0.0
    assert ch.dropout_train_diff > 0 and ch.dropout_eval_diff == 0.0
    assert {"dropout", "dropout1", "dropout2"} <= set(ch.dropout_sites)
    with pytest.raises(ValueError, match="batch"):
        E.layer_choices(batch=1)


@pytest.mark.parametrize("family", sorted(hf_models.FAMILIES))
def test_family_profile_is_the_probe_of_the_built_model_relative_to_its_last_block(family):
    kw = dict(d_model=16, n_heads=2, batch=2, seq_len=5, seed=1)
    got = E.family_profile(family, 3, **kw)
    model = hf_models.build(family, 3, d_model=16, n_heads=2, seed=1)
    raw = layer_grad_norms(model, hf_models.token_ids(2, 5, seed=1)).output_grad_norms
    np.testing.assert_allclose(got.grad_norms, raw / raw[-1], rtol=1e-6)
    assert got.grad_norms[-1] == 1.0 and got.label == hf_models.FAMILIES[family].label
    np.testing.assert_array_equal(E.family_profile(family, 3, model=model, **kw).grad_norms, got.grad_norms)
    np.testing.assert_allclose(E.family_profile(family, 3, relative=False, **kw).grad_norms, raw, rtol=1e-6)
    with pytest.raises(ValueError, match="depth"):
        E.family_profile(family, 4, model=model, **kw)
    with pytest.raises(ValueError, match="family"):
        E.family_profile("t5", 3)


@pytest.mark.parametrize("position", ["pre", "post"])
def test_torch_profile_matches_gradlibs_own_blocks_and_a_deeper_stack_gives_the_same_numbers(position):
    kw = dict(d_model=16, n_heads=2, batch=2, seq_len=4, seed=2)
    got = E.torch_profile(position, 5, **kw)
    theirs = stack_gradients(depth=5, norm="layer", norm_position=position, d_model=16, n_heads=2, d_ff=64,
                             n_tokens=4, batch=2, seed=2)  # gradlib's written-out blocks, the same weights
    np.testing.assert_allclose(got.grad_norms, theirs.grad_norms / theirs.grad_norms[-1], rtol=1e-4)
    deep = torch_encoder_stack(9, 16, 2, 64, norm_first=position == "pre", seed=2)
    np.testing.assert_array_equal(E.torch_profile(position, 5, stack=deep, **kw).grad_norms, got.grad_norms)
    with pytest.raises(ValueError, match="stack"):
        E.torch_profile(position, 10, stack=deep, **kw)
    with pytest.raises(ValueError, match="position"):
        E.torch_profile("middle", 5)


def test_depth_sweep_is_each_familys_first_over_last_at_each_depth():
    sweep = E.depth_sweep(families=("bert", "llama"), depths=(2, 3), seeds=(0,))
    assert sweep.keys() == ["bert", "llama"]
    for c in sweep:
        np.testing.assert_array_equal(c.x, [2, 3])
        assert c.y[1] == pytest.approx(E.family_profile(c.key, 3, seed=0).ratio)
    with pytest.raises(ValueError, match="families"):
        E.depth_sweep(families=("gpt5",))
