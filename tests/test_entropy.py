"""gradlib.entropy: attention entropy read from the weights the modules themselves return.

Independent truths: −Σ p log p computed by hand from SelfAttention(..., return_weights=True) and from
nn.MultiheadAttention(need_weights=True, average_attn_weights=False); uniform attention has entropy log S.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradlib.entropy import attention_entropy, attention_modules, row_entropy
from gradlib.multihead import SelfAttention
from gradlib.seq_model import SequenceModel


def _ids(b=2, t=6, v=9):
    return torch.randint(0, v, (b, t), generator=torch.Generator().manual_seed(1))


def _by_hand(p: torch.Tensor) -> np.ndarray:
    p = p.double()
    h = -(p * torch.log(p.clamp_min(1e-300))).sum(-1)  # (B, h, T)
    return h.mean(dim=(0, 2)).numpy()


def test_gradlib_attention_entropy_is_the_hand_computation_from_its_returned_weights():
    model = SequenceModel(9, 6, 16, 4, 32, 2, implementation="gradlib", norm_position="post", seed=2)
    x = _ids()
    result = attention_entropy(model, x)
    h = model.embed.weight[x] + model.pos[:6]
    expected = []
    with torch.no_grad():
        for block in model.layers:
            _, w = block.attn(h, return_weights=True)  # Post-LN: attention sees the block's input
            expected.append(_by_hand(w))
            h = block(h)
    np.testing.assert_allclose(result.entropy, np.stack(expected), rtol=1e-10)
    assert result.names == ("layers.0.attn", "layers.1.attn")
    assert result.min == pytest.approx(np.min(expected))
    assert result.max_entropy == pytest.approx(math.log(6))


@pytest.mark.parametrize("mode", ["train", "eval"])  # eval: the fused fast path would skip self_attn
def test_pytorch_attention_entropy_is_the_hand_computation_from_multihead_attention(mode):
    model = SequenceModel(9, 6, 16, 4, 32, 1, norm_position="post", seed=3)
    getattr(model, mode)()
    x = _ids()
    h = (model.embed.weight[x] + model.pos[:6]).detach()
    mha = model.layers[0].self_attn
    _, w = mha(h, h, h, need_weights=True, average_attn_weights=False)
    np.testing.assert_allclose(attention_entropy(model, x).entropy[0], _by_hand(w.detach()), rtol=1e-6)
    assert model.training == (mode == "train")  # the mode is left as it was
    assert torch.backends.mha.get_fastpath_enabled()  # and the fast path switched back on


def test_uniform_attention_has_entropy_log_s_and_one_hot_has_zero():
    attn = SelfAttention(8, 2, seed=0)
    with torch.no_grad():
        attn.w_q.weight.zero_()  # all scores 0: every row uniform over the S keys
    model = nn.Sequential(attn)
    result = attention_entropy(model, torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(0)))
    np.testing.assert_allclose(result.entropy, math.log(5), rtol=1e-6)
    assert float(row_entropy(torch.tensor([0.0, 1.0, 0.0]))) == 0.0


def test_hooks_are_removed_even_when_the_forward_raises():
    model = SequenceModel(9, 6, 16, 4, 32, 2, implementation="gradlib")
    with pytest.raises(ValueError):
        attention_entropy(model, torch.zeros(2, 6))  # floats: the model refuses them mid-way
    assert all(not m._forward_pre_hooks for _, m in attention_modules(model))
    attention_entropy(model, _ids())
    assert all(not m._forward_pre_hooks for _, m in attention_modules(model))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^model\b"):
        attention_entropy(nn.Sequential(nn.Linear(3, 3)), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"^model\b"):
        attention_entropy("gpt", torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"^x\b"):
        attention_entropy(nn.Sequential(SelfAttention(4)), torch.full((1, 2, 4), float("nan")))
    with pytest.raises(TypeError):
        attention_entropy(nn.Sequential(SelfAttention(4)), torch.zeros(1, 2, 4), heads=1)
