"""gradlib.exercise_block: the right Pre-LN block passes, each usual mistake gets its own plain-words answer."""

import re

import pytest
import torch
from torch import nn

from gradlib.exercise_block import EXERCISES, check_pre_ln_block
from gradlib.multihead import SelfAttention
from gradlib.norms import LayerNorm


def _parts(layer, copy_norms=True):
    d, heads = layer.self_attn.embed_dim, layer.self_attn.num_heads
    attn = SelfAttention(d, heads)
    attn.copy_from_torch(layer.self_attn)
    norm1, norm2 = LayerNorm(d), LayerNorm(d)
    if copy_norms:
        norm1.load_state_dict(layer.norm1.state_dict())
        norm2.load_state_dict(layer.norm2.state_dict())
    ffn = nn.Sequential(layer.linear1, nn.ReLU(), layer.linear2)
    return attn, norm1, ffn, norm2


def pre_ln(layer):
    attn, norm1, ffn, norm2 = _parts(layer)

    def block(x):
        x = x + attn(norm1(x))
        return x + ffn(norm2(x))

    return block


def post_ln(layer):
    attn, norm1, ffn, norm2 = _parts(layer)
    return lambda x: norm2((y := norm1(x + attn(x))) + ffn(y))


def norms_not_copied(layer):
    attn, norm1, ffn, norm2 = _parts(layer, copy_norms=False)
    return lambda x: (y := x + attn(norm1(x))) + ffn(norm2(y))


def test_the_right_block_passes_against_pytorchs_layer_and_the_global_rng_is_untouched():
    state = torch.random.get_rng_state()
    verdict = check_pre_ln_block(pre_ln)
    assert verdict.correct and verdict.message.startswith("Right:") and verdict.largest_difference < 1e-5
    assert torch.equal(torch.random.get_rng_state(), state)
    assert EXERCISES["pre_ln_block"] is check_pre_ln_block


@pytest.mark.parametrize("answer, words", [
    (post_ln, r"Not yet \(the block's output.*entry \(0, 0, 0\) is .* but PyTorch's layer gives"),
    (norms_not_copied, r"Not yet \(the block's output.*PyTorch's layer gives"),
    (lambda layer: (lambda x, f=pre_ln(layer): f(x).detach()), "carries no gradient back to x"),
    (lambda layer: (lambda x, f=pre_ln(layer): f(x)[0]), r"returned shape \(\d+, \d+\), but the block's output"),
    (lambda layer: (lambda x: x), "PyTorch's layer gives"),
    (3, "should be a function .* you passed an int"),
    (lambda: None, "must take one argument"),
    (lambda layer: None, "returned None"),
    (lambda layer: torch.zeros(2), "should return the block, .* it returned a Tensor"),
    (lambda layer: 1 / 0, "raised ZeroDivisionError"),
    (lambda layer: (lambda x: x @ torch.ones(3, 3)), "raised RuntimeError"),
])
def test_each_mistake_gets_a_verdict_in_plain_words_not_a_traceback(answer, words):
    verdict = check_pre_ln_block(answer)
    assert not verdict and verdict.message.startswith("Not yet")
    assert re.search(words, verdict.message), verdict.message


def test_the_answer_gets_a_copy_of_the_layer():
    def vandal(layer):
        with torch.no_grad():
            layer.linear1.weight.zero_()  # changes the copy only: the truth still comes from the real layer
        return pre_ln(layer)

    verdict = check_pre_ln_block(vandal)
    assert not verdict and "PyTorch's layer gives" in verdict.message
