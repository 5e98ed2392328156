"""Tests of gradlib.discovery, and of the probes on Hugging Face models built from small configs.

The Hugging Face models have random weights (nothing is downloaded). Their per-layer gradient norms are
checked against an independent computation: hooks of this file that call retain_grad() on every block's
output, then loss.backward() and each block's p.grad.
"""

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import transformers
from torch import nn
from transformers.modeling_outputs import BaseModelOutput, CausalLMOutput

from gradlib.discovery import find_layers, first_tensor, read_output
from gradlib.probes import layer_grad_norms, layer_stats

F64 = torch.float64
VOCAB = 100


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed)


def _names(model, **kwargs):
    return [name for name, _ in find_layers(model, **kwargs)]


class _Block(nn.Module):
    """A block with a mixed-class MLP Sequential, a same-class Sequential and a list of heads inside."""

    def __init__(self, width=4, n_heads=3):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.pair = nn.Sequential(nn.Linear(width, width), nn.Linear(width, width))
        self.heads = nn.ModuleList(nn.Linear(width, width) for _ in range(n_heads))

    def forward(self, h):
        return h + self.mlp(h) + self.pair(h) + sum(head(h) for head in self.heads)


class _Stack(nn.Module):
    """Blocks in a ModuleList that is neither the model nor called `layers`, next to a 4-layer head."""

    def __init__(self, depth=2, container=nn.ModuleList):
        super().__init__()
        self.embed = nn.Linear(4, 4)
        blocks = [_Block() for _ in range(depth)]
        self.body = nn.Sequential(*blocks) if container is nn.Sequential else nn.ModuleList(blocks)
        # 4 children, mixed classes: longer than the stack of 2 blocks, but not a stack of blocks
        self.head = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh())

    def forward(self, x):
        h = self.embed(x)
        for block in self.body:
            h = block(h)
        return self.head(h)


# ---------------------------------------------------------------------------------------------------------
# find_layers
# ---------------------------------------------------------------------------------------------------------
def test_find_layers_takes_the_children_of_a_sequential_and_a_layers_container():
    assert _names(nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 2))) == ["0", "1", "2"]

    class One(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2)])  # `.layers` is taken even with one layer

    assert _names(One()) == ["layers.0"]


@pytest.mark.parametrize("container", [nn.ModuleList, nn.Sequential])
def test_find_layers_takes_the_outermost_list_of_same_class_blocks(container):
    # not the mixed-class head (4 > 2 children), not the same-class `pair` or `heads` inside each block
    assert _names(_Stack(depth=2, container=container)) == ["body.0", "body.1"]


def test_find_layers_prefers_the_largest_list_and_the_first_of_equal_lengths():
    class TwoStacks(nn.Module):
        def __init__(self, n_enc, n_dec):
            super().__init__()
            self.encoder = nn.ModuleList(nn.Linear(2, 2) for _ in range(n_enc))
            self.decoder = nn.ModuleList(nn.Linear(2, 2) for _ in range(n_dec))

    assert _names(TwoStacks(2, 3)) == ["decoder.0", "decoder.1", "decoder.2"]
    assert _names(TwoStacks(3, 3)) == ["encoder.0", "encoder.1", "encoder.2"]  # first met in the module tree


def test_find_layers_uses_the_given_layers_with_their_qualified_names():
    model = _Stack(depth=3)
    assert _names(model, layers=[model.body[2], model.embed]) == ["body.2", "embed"]
    assert _names(model, layers=model.body[1].heads) == ["body.1.heads.0", "body.1.heads.1", "body.1.heads.2"]
    stranger = nn.Linear(2, 2)  # not inside the model: named by its class and position
    assert _names(model, layers=[model.embed, stranger]) == ["embed", "Linear[1]"]


def test_find_layers_errors_say_what_to_pass():
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.mixed = nn.ModuleList([nn.Linear(3, 3), nn.Tanh()])  # two classes: not a stack
            self.single = nn.ModuleList([nn.Linear(3, 3)])  # one module: not a stack

    with pytest.raises(ValueError, match=r"could not find the layers of Flat; pass layers=\[\.\.\.\]"):
        find_layers(Flat())
    model = _Stack()
    for bad in ([], [model.embed, "x"], model.embed, "body", {"a": model.embed}, 3, [model.embed, model.embed]):
        with pytest.raises(ValueError, match="layers"):
            find_layers(model, layers=bad)
    with pytest.raises(ValueError, match="model"):
        find_layers("not a model")


# ---------------------------------------------------------------------------------------------------------
# first_tensor, read_output
# ---------------------------------------------------------------------------------------------------------
def test_first_tensor_of_tensors_sequences_mappings_and_model_outputs():
    a, b = torch.ones(2), torch.zeros(3)
    assert first_tensor(a) is a
    assert first_tensor((None, a, b)) is a
    assert first_tensor([3, b]) is b
    assert first_tensor({"n": 1, "h": b, "a": a}) is b
    assert first_tensor(OrderedDict(h=a)) is a
    assert first_tensor(BaseModelOutput(last_hidden_state=b)) is b
    assert first_tensor(CausalLMOutput(loss=a.sum(), logits=b)).ndim == 0  # a ModelOutput's first field
    for nothing in (None, 3, (), (None, 1), {}, "text"):
        assert first_tensor(nothing) is None


def test_read_output_prefers_logits_then_last_hidden_state_and_takes_a_scalar_loss():
    logits, hidden, loss = torch.ones(2, 3, 5), torch.ones(2, 3, 4), torch.tensor(1.5)
    assert read_output(hidden) == (hidden, None, "output")
    y, own, what = read_output((None, hidden, logits))
    assert y is hidden and own is None and what == "output[1]"
    y, own, what = read_output(CausalLMOutput(loss=loss, logits=logits))
    assert y is logits and own is loss and what == "logits"
    y, own, what = read_output({"last_hidden_state": hidden, "logits": logits})
    assert y is logits and own is None and what == "logits"
    y, own, what = read_output(BaseModelOutput(last_hidden_state=hidden))
    assert y is hidden and own is None and what == "last_hidden_state"
    y, own, what = read_output({"pooled": hidden, "loss": torch.ones(2)})  # a per-sample loss is not a loss
    assert y is hidden and own is None and what == "pooled"
    y, own, what = read_output({"loss": loss})
    assert y is loss and own is loss and what == "loss"
    for nothing in (None, (1, 2), {"loss": None}):
        with pytest.raises(ValueError, match="no tensor"):
            read_output(nothing)


# ---------------------------------------------------------------------------------------------------------
# Hugging Face models, small configs, random weights
# ---------------------------------------------------------------------------------------------------------
def _gpt2_config(n_layer=3):
    return transformers.GPT2Config(
        n_layer=n_layer, n_embd=32, n_head=4, vocab_size=VOCAB, n_positions=16, bos_token_id=0, eos_token_id=0,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )


def _bert():
    config = transformers.BertConfig(
        num_hidden_layers=3, hidden_size=32, num_attention_heads=4, intermediate_size=64, vocab_size=VOCAB,
        max_position_embeddings=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    return transformers.BertModel(config)


def _llama_config():
    return transformers.LlamaConfig(
        num_hidden_layers=4, hidden_size=32, num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
        vocab_size=VOCAB, max_position_embeddings=16,
    )


def _seeded(build):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build().eval()


def _ids(batch=2, seq=7, seed=1):
    return torch.randint(0, VOCAB, (batch, seq), generator=_gen(seed))


def _projection(y):
    # the documented default loss ⟨y, r⟩, r ~ N(0, 1) drawn in float64 from a CPU generator seeded 0, then cast
    return (y * torch.randn(y.shape, generator=_gen(0), dtype=F64).to(y)).sum()


def _reference(model, blocks, inputs, loss_of):
    """retain_grad() on each block's output (this file's own hooks), loss.backward(), p.grad per block."""
    outputs = []

    def keep(module, args, out):
        h = out if isinstance(out, torch.Tensor) else out[0]
        h.retain_grad()
        outputs.append(h)

    handles = [block.register_forward_hook(keep) for block in blocks]
    try:
        loss = loss_of(model(**inputs))
    finally:
        for handle in handles:
            handle.remove()
    loss.backward()
    assert len(outputs) == len(blocks)
    out_norms = [h.grad.double().norm().item() for h in outputs]
    par_norms = [math.sqrt(sum(p.grad.double().pow(2).sum().item() for p in b.parameters())) for b in blocks]
    model.zero_grad(set_to_none=True)
    return np.array(out_norms), np.array(par_norms), loss.item()


@pytest.mark.parametrize(
    "build, blocks_of, names",
    [
        (lambda: transformers.GPT2Model(_gpt2_config()), lambda m: m.h, [f"h.{i}" for i in range(3)]),
        (_bert, lambda m: m.encoder.layer, [f"encoder.layer.{i}" for i in range(3)]),
        (lambda: transformers.LlamaModel(_llama_config()), lambda m: m.layers, [f"layers.{i}" for i in range(4)]),
    ],
    ids=["GPT2Model", "BertModel", "LlamaModel"],
)
def test_layer_grad_norms_on_hugging_face_models_match_retain_grad_and_backward(build, blocks_of, names):
    model = _seeded(build)
    ids = _ids()
    result = layer_grad_norms(model, ids)
    assert result.names == names
    assert result.loss_source == "projection of last_hidden_state"
    out_ref, par_ref, loss_ref = _reference(
        model, list(blocks_of(model)), {"input_ids": ids}, lambda out: _projection(out.last_hidden_state)
    )
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-5)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-5)
    assert result.loss == pytest.approx(loss_ref, rel=1e-5)
    assert result.exploded_at is None and np.all(result.output_grad_norms > 0)
    assert all(p.grad is None for p in model.parameters())
    assert all(not m._forward_hooks for m in blocks_of(model))


def test_layer_grad_norms_on_bert_with_keyword_inputs():
    model = _seeded(_bert)
    ids = _ids(seed=2)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0  # padding in the second sequence
    inputs = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    result = layer_grad_norms(model, inputs)
    out_ref, par_ref, _ = _reference(model, list(model.encoder.layer), inputs, lambda o: _projection(o[0]))
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-5)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-5)


def test_layer_grad_norms_on_a_causal_lm_given_labels_uses_its_own_loss():
    model = _seeded(lambda: transformers.GPT2LMHeadModel(_gpt2_config()))
    ids = _ids(seed=3)
    inputs = {"input_ids": ids, "labels": ids}
    result = layer_grad_norms(model, inputs)
    assert result.names == [f"transformer.h.{i}" for i in range(3)]
    assert result.loss_source == "model's own loss"
    out_ref, par_ref, loss_ref = _reference(model, list(model.transformer.h), inputs, lambda out: out.loss)
    assert result.loss == pytest.approx(loss_ref, rel=1e-6)
    assert result.loss == pytest.approx(math.log(VOCAB), rel=0.05)  # random weights: close to uniform
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-5)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-5)
    # without labels: the projection of the logits
    assert layer_grad_norms(model, ids).loss_source == "projection of logits"


def test_find_layers_of_causal_lm_wrappers_and_layer_stats_of_llama():
    llama = _seeded(lambda: transformers.LlamaForCausalLM(_llama_config()))
    assert _names(llama) == [f"model.layers.{i}" for i in range(4)]
    stats = layer_stats(llama, _ids(seed=4))
    assert stats.rank_collapse.shape == (4,) and np.all((stats.rank_collapse > 0) & (stats.rank_collapse <= 1))
    assert all(not m._forward_hooks for m in llama.modules())


def test_capture_outputs_keeps_each_layers_output_and_removes_its_hooks_even_on_error():
    from gradlib.discovery import capture_outputs

    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    layers = [("0", net[0]), ("2", net[2])]
    with capture_outputs(layers) as outputs:
        net(x)
    torch.testing.assert_close(outputs[0], net[0](x), rtol=0, atol=0)  # the same tensor a plain call gives
    torch.testing.assert_close(outputs[1], net(x), rtol=0, atol=0)
    assert all(not m._forward_hooks for m in net)
    with pytest.raises(RuntimeError, match="boom"), capture_outputs(layers):
        raise RuntimeError("boom")
    assert all(not m._forward_hooks for m in net)
    with pytest.raises(ValueError, match="layer '2' was not run"), capture_outputs(layers):
        net[0](x)
