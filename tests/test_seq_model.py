"""gradlib.seq_model.SequenceModel: embedding + positions + blocks + head, seeded and validated.

Independent truths: gradlib.reference.torch_encoder_stack (PyTorch's own layers, same seed), and the forward
composed by hand from the model's parts.
"""

import pytest
import torch
from torch import nn

from gradlib.multihead import SelfAttention
from gradlib.reference import torch_encoder_stack
from gradlib.seq_model import SequenceModel


def _ids(b=3, t=5, v=7):
    return torch.randint(0, v, (b, t), generator=torch.Generator().manual_seed(0))


def test_forward_is_embedding_plus_positions_through_the_layers_then_norm_then_head():
    model = SequenceModel(7, 6, 16, 2, 32, 2, norm_position="pre", seed=1)
    x = _ids()
    h = model.embed.weight[x] + model.pos[: x.shape[1]]
    for layer in model.layers:
        h = layer(h)
    expected = model.head(model.final_norm(h))
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)
    assert model(x).shape == (3, 5, 7)
    assert isinstance(model.final_norm, nn.LayerNorm)  # Pre-LN ends with a LayerNorm by default
    assert isinstance(SequenceModel(7, 6, 16, 2, norm_position="post").final_norm, nn.Identity)


@pytest.mark.parametrize("position", ["pre", "post"])
def test_torch_blocks_are_reference_stacks_independent_layers(position):
    model = SequenceModel(7, 6, 16, 2, 32, 3, norm_position=position, seed=4)
    ref = torch_encoder_stack(3, 16, 2, 32, norm_first=position == "pre", seed=4)
    for ours, theirs in zip(model.layers, ref.layers):
        assert isinstance(ours, nn.TransformerEncoderLayer)
        for (n, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert torch.equal(p, q), n
    assert not torch.equal(model.layers[0].linear1.weight, model.layers[1].linear1.weight)


def test_same_seed_same_model_other_seed_other_model_and_global_rng_untouched():
    state = torch.get_rng_state()
    a, b, c = (SequenceModel(7, 6, 16, 2, seed=s) for s in (2, 2, 3))
    assert torch.equal(state, torch.get_rng_state())
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n
    assert not torch.equal(a.embed.weight, c.embed.weight)
    assert float(a.embed.weight.detach().std()) == pytest.approx(1.0, rel=0.2)  # N(0, 1) embeddings


def test_gradlib_blocks_take_qk_norm_and_sigma_reparam_into_their_attention():
    model = SequenceModel(7, 6, 16, 2, 32, 2, implementation="gradlib", qk_norm="rms", sigma_reparam=True)
    for block in model.layers:
        assert isinstance(block.attn, SelfAttention)
        assert block.attn.qk_norm == "rms" and block.attn.sigma_reparam
    rezero = SequenceModel(7, 6, 16, 2, 32, 2, implementation="gradlib", norm="none", branch_scale=0.0,
                           final_norm=False)
    x = _ids()
    h = rezero.embed.weight[x] + rezero.pos[:5]  # α = 0: every block is the identity
    torch.testing.assert_close(rezero(x), rezero.head(h))


@pytest.mark.parametrize("kwargs, name", [
    (dict(vocab=1), "vocab"), (dict(seq_len=0), "seq_len"), (dict(d_model=10, n_heads=3), "n_heads"),
    (dict(d_ff=0), "d_ff"), (dict(n_layers=0), "n_layers"), (dict(norm_position="middle"), "norm_position"),
    (dict(implementation="jax"), "implementation"), (dict(final_norm=1), "final_norm"),
    (dict(qk_norm="l2", implementation="gradlib"), "qk_norm"), (dict(embed_std=0.0), "embed_std"),
    (dict(qk_norm="layer"), "qk_norm"), (dict(sigma_reparam=True), "sigma_reparam"),
    (dict(branch_scale=float("nan")), "branch_scale"), (dict(seed="0"), "seed"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, name):
    args = dict(vocab=7, seq_len=6, d_model=16, n_heads=2) | kwargs
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        SequenceModel(**args)


def test_bad_inputs_and_unknown_keywords():
    model = SequenceModel(7, 4, 16, 2)
    with pytest.raises(ValueError, match=r"^x\b"):
        model(torch.zeros(2, 4))  # floats are not token ids
    with pytest.raises(ValueError, match=r"^x\b"):
        model(_ids(t=5))  # longer than the learned positions
    with pytest.raises(TypeError):
        SequenceModel(7, 4, 16, 2, heads=2)
