"""Tests of gradlib.probes against hand-unrolled autograd (retain_grad + backward, p.grad) and theory.

The models are small nn.Modules written here, so the probes are tested on models they have never seen;
Hugging Face models are tested in test_discovery.py.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from gradlib.probes import (
    LayerGradNorms,
    first_over_last,
    layer_grad_norms,
    layer_stats,
    param_grad_norms,
    projection_loss,
)

F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed)


def _randn(*shape: int, seed: int = 0, dtype=F64) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _reinit(module: nn.Module, seed: int, std: float = 0.5) -> nn.Module:
    """Overwrite every parameter with seeded normals: torch's own init would use the global RNG."""
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=F64) * std)
    return module


def _tanh_mlp(depth: int = 5, width: int = 6, seed: int = 0) -> nn.Sequential:
    layers = [nn.Sequential(nn.Linear(width, width, dtype=F64), nn.Tanh()) for _ in range(depth)]
    return _reinit(nn.Sequential(*layers), seed)


def _default_loss(y: torch.Tensor) -> torch.Tensor:
    # the documented default: ⟨y, r⟩, r ~ N(0, 1) drawn in float64 from a CPU generator seeded 0
    r = torch.randn(y.shape, generator=_gen(0), dtype=F64).to(y)
    return (y * r).sum()


def _manual_norms(layers, x, head=lambda h: h, loss_fn=_default_loss):
    """Reference: unroll the layers by hand, retain_grad on every output, loss.backward()."""
    h = x
    outputs = []
    for layer in layers:
        h = layer(h)
        h.retain_grad()
        outputs.append(h)
    loss = loss_fn(head(h))
    loss.backward()
    out_norms = np.array([o.grad.norm().item() for o in outputs])
    par_norms = np.array(
        [math.sqrt(sum(p.grad.pow(2).sum().item() for p in lay.parameters() if p.grad is not None)) for lay in layers]
    )
    for layer in layers:
        layer.zero_grad(set_to_none=True)
    return out_norms, par_norms, loss.item()


def _encoder(n_layers=3, d=8, heads=2, d_ff=16, seed=0, final_norm=False):
    layer = nn.TransformerEncoderLayer(d, heads, d_ff, dropout=0.0, batch_first=True, dtype=F64)
    norm = nn.LayerNorm(d, dtype=F64) if final_norm else None
    enc = nn.TransformerEncoder(layer, n_layers, norm=norm, enable_nested_tensor=False)
    # nn.TransformerEncoder deep-copies one layer: give each copy its own weights
    for i, lay in enumerate(enc.layers):
        _reinit(lay, seed + i, std=0.3)
    return enc


def _exploding_mlp(depth: int = 10, gain: float = 1e5) -> nn.Sequential:
    """y_l = gain^l · x in float32: the outputs overflow from layer 8 on (1e40 > 3.4e38)."""
    layers = []
    for _ in range(depth):
        lin = nn.Linear(4, 4, bias=False)
        with torch.no_grad():
            lin.weight.copy_(gain * torch.eye(4))
        layers.append(lin)
    return nn.Sequential(*layers)


class _Blocks(nn.Module):
    """A user model: embedding, a ModuleList of blocks (not called `layers`), a small ModuleList of heads."""

    def __init__(self, width=6, depth=4):
        super().__init__()
        self.embed = nn.Linear(width, width, dtype=F64)
        self.blocks = nn.ModuleList(nn.Linear(width, width, dtype=F64) for _ in range(depth))
        self.heads = nn.ModuleList(nn.Linear(width, 1, dtype=F64) for _ in range(2))
        _reinit(self, 3)

    def forward(self, x):
        h = self.embed(x)
        for block in self.blocks:
            h = h + torch.tanh(block(h))
        return torch.cat([head(h) for head in self.heads], dim=-1)


# ---------------------------------------------------------------------------------------------------------
# projection_loss, first_over_last
# ---------------------------------------------------------------------------------------------------------
def test_projection_loss_is_the_inner_product_with_a_fixed_float64_normal_direction():
    y = _randn(3, 4, 5, seed=30)
    r = torch.randn(3, 4, 5, generator=_gen(0), dtype=F64)
    assert projection_loss(y).item() == pytest.approx((y * r).sum().item(), rel=1e-14)
    # its gradient is r itself, whatever y is
    leaf = y.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(projection_loss(leaf), leaf)
    assert torch.equal(grad, r)
    # float32: the same float64 numbers, cast (not a float32 draw from the same seed)
    y32 = y.float()
    assert projection_loss(y32).dtype == torch.float32
    expected = (y32 * r.float()).sum()
    assert projection_loss(y32).item() == pytest.approx(expected.item(), rel=1e-6)
    assert projection_loss(y).item() == projection_loss(y.clone()).item()  # cached r, same numbers


def test_first_over_last_is_the_float64_ratio_and_never_warns():
    assert first_over_last([2.0, 3.0, 8.0]) == 0.25
    assert first_over_last(np.array([3e38, 1e-30], dtype=np.float32)) == pytest.approx(3e68, rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert first_over_last([1.0, 0.0]) == math.inf
        assert math.isnan(first_over_last([0.0, 0.0]))
        assert math.isnan(first_over_last([math.nan, 1.0]))
    assert first_over_last([5]) == 1.0
    with pytest.raises(ValueError, match="values"):
        first_over_last([])
    result = LayerGradNorms(["a", "b"], np.ones(2), np.array([1.0, 0.0]), 0.0, None)
    assert result.ratio() == math.inf


# ---------------------------------------------------------------------------------------------------------
# layer_grad_norms
# ---------------------------------------------------------------------------------------------------------
def test_layer_grad_norms_equals_manual_retain_grad_and_backward_on_sequential():
    model = _tanh_mlp()
    x = _randn(4, 6, seed=1)
    result = layer_grad_norms(model, x)
    out_ref, par_ref, loss_ref = _manual_norms(list(model), x)
    assert result.names == ["0", "1", "2", "3", "4"]
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-12)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-12)
    assert result.loss == pytest.approx(loss_ref, rel=1e-12)
    assert result.exploded_at is None
    assert result.ratio() == pytest.approx(out_ref[0] / out_ref[-1], rel=1e-12)


def test_layer_grad_norms_with_custom_loss_equals_manual_computation():
    model = _tanh_mlp(seed=2)
    x = _randn(3, 6, seed=4)

    def loss_fn(y):
        return (y - 0.3).pow(2).sum()

    result = layer_grad_norms(model, x, loss_fn=loss_fn)
    out_ref, par_ref, _ = _manual_norms(list(model), x, loss_fn=loss_fn)
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-12)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-12)


def test_layer_grad_norms_finds_transformer_encoder_layers_and_matches_manual_unroll():
    enc = _encoder(final_norm=True)
    x = _randn(2, 5, 8, seed=5)
    result = layer_grad_norms(enc, x)
    assert result.names == ["layers.0", "layers.1", "layers.2"]
    out_ref, par_ref, _ = _manual_norms(list(enc.layers), x, head=enc.norm)
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-10)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-10)


def test_layer_grad_norms_picks_the_largest_module_list_of_a_custom_model():
    model = _Blocks()
    x = _randn(3, 6, seed=6)
    result = layer_grad_norms(model, x)
    assert result.names == ["blocks.0", "blocks.1", "blocks.2", "blocks.3"]

    # reference: the blocks' outputs are the pre-residual Linear outputs, gradient via retain_grad
    outs = []
    h = model.embed(x)
    for block in model.blocks:
        z = block(h)
        z.retain_grad()
        outs.append(z)
        h = h + torch.tanh(z)
    y = torch.cat([head(h) for head in model.heads], dim=-1)
    _default_loss(y).backward()
    np.testing.assert_allclose(result.output_grad_norms, [z.grad.norm().item() for z in outs], rtol=1e-12)
    par_ref = [math.sqrt(sum(p.grad.pow(2).sum().item() for p in b.parameters())) for b in model.blocks]
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-12)


def test_layer_grad_norms_uses_the_given_layers_in_the_given_order():
    model = _Blocks()
    x = _randn(3, 6, seed=6)
    chosen = [model.blocks[3], model.embed, model.blocks[1]]
    result = layer_grad_norms(model, x, layers=chosen)
    assert result.names == ["blocks.3", "embed", "blocks.1"]
    full = layer_grad_norms(model, x)
    np.testing.assert_allclose(result.output_grad_norms[[0, 2]], full.output_grad_norms[[3, 1]], rtol=1e-14)
    # a ModuleList works as well as a list
    again = layer_grad_norms(model, x, layers=model.blocks)
    np.testing.assert_allclose(again.output_grad_norms, full.output_grad_norms, rtol=1e-14)


def test_layer_grad_norms_given_layer_that_does_not_run_raises_value_error_naming_it():
    model = _Blocks()
    unused = nn.Linear(6, 6, dtype=F64)
    model.spare = unused
    with pytest.raises(ValueError, match="spare"):
        layer_grad_norms(model, _randn(2, 6), layers=[model.blocks[0], unused])
    assert not unused._forward_hooks and not model.blocks[0]._forward_hooks


def test_layer_grad_norms_without_discoverable_layers_raises_value_error():
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            return self.a(x)

    with pytest.raises(ValueError, match=r"could not find the layers of Flat; pass layers="):
        layer_grad_norms(Flat(), torch.ones(2, 3))


def test_layer_grad_norms_rejects_bad_layers_argument():
    model = _tanh_mlp()
    x = _randn(2, 6)
    with pytest.raises(ValueError, match="layers"):
        layer_grad_norms(model, x, layers=[])
    with pytest.raises(ValueError, match="layers"):
        layer_grad_norms(model, x, layers=[model[0], "not a module"])
    with pytest.raises(ValueError, match="layers"):
        layer_grad_norms(model, x, layers=model[0][0])  # a single Linear, not a collection
    with pytest.raises(ValueError, match="model"):
        layer_grad_norms(lambda t: t, x)
    with pytest.raises(ValueError, match="x"):
        layer_grad_norms(model, [[1.0] * 6])
    with pytest.raises(ValueError, match="loss_fn"):
        layer_grad_norms(model, x, loss_fn=3)


def test_layer_grad_norms_raises_when_a_layer_runs_twice():
    lin = nn.Linear(4, 4)

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([lin])

        def forward(self, x):
            return lin(lin(x))

    with pytest.raises(ValueError, match="ran 2 times"):
        layer_grad_norms(Twice(), torch.ones(1, 4))
    assert not lin._forward_hooks


def test_layer_grad_norms_raises_when_an_output_is_later_modified_in_place():
    # ReLU(inplace=True) overwrites the Linear's output: its gradient could no longer be read honestly
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(inplace=True), nn.Linear(4, 4))
    with pytest.raises(ValueError, match="in place"):
        layer_grad_norms(model, torch.ones(2, 4))
    assert all(not m._forward_hooks for m in model)
    # probing the modules whose outputs survive works
    result = layer_grad_norms(model, torch.ones(2, 4), layers=[model[1], model[2]])
    assert np.all(np.isfinite(result.output_grad_norms))


def test_layer_grad_norms_removes_hooks_after_success():
    enc = _encoder()
    layer_grad_norms(enc, _randn(1, 4, 8))
    layer_stats(enc, _randn(1, 4, 8))
    assert all(not m._forward_hooks for m in enc.modules())


def test_layer_grad_norms_removes_hooks_when_the_forward_raises():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(3, 3) for _ in range(3))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            raise RuntimeError("boom after the layers ran")

    model = Broken()
    with pytest.raises(RuntimeError, match="boom"):
        layer_grad_norms(model, torch.ones(2, 3))
    with pytest.raises(RuntimeError, match="boom"):
        layer_stats(model, torch.ones(2, 3))
    assert all(not m._forward_hooks for m in model.modules())


def test_layer_grad_norms_does_not_modify_existing_grad():
    model = _tanh_mlp()
    first = model[0][0]
    first.weight.grad = torch.full_like(first.weight, 7.0)
    before = first.weight.grad.clone()
    layer_grad_norms(model, _randn(2, 6))
    assert torch.equal(first.weight.grad, before)
    assert all(p.grad is None for name, p in model.named_parameters() if name != "0.0.weight")


def test_layer_grad_norms_works_when_the_first_layer_has_no_parameters():
    model = nn.Sequential(nn.Tanh(), nn.Linear(3, 3, dtype=F64), nn.Tanh())
    _reinit(model, 8)
    x = _randn(2, 3, seed=9)
    result = layer_grad_norms(model, x)
    out_ref, par_ref, _ = _manual_norms(list(model), x.clone().requires_grad_())
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-12)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-12)
    assert result.param_norms[0] == 0.0


def test_mean_square_loss_after_layer_norm_has_zero_gradient_but_default_loss_does_not():
    final_norm = nn.LayerNorm(8, eps=0.0, elementwise_affine=False)
    model = nn.Sequential(nn.Linear(8, 8, dtype=F64), nn.Tanh(), nn.Linear(8, 8, dtype=F64), final_norm)
    _reinit(model, 10)
    x = _randn(4, 8, seed=12)
    trap = layer_grad_norms(model, x, loss_fn=lambda y: y.pow(2).mean())
    # mean(y²) = σ²/(σ²+ε) = 1 with ε = 0, whatever the weights (with ε > 0 the gradient is O(ε/σ²), not 0)
    assert trap.loss == pytest.approx(1.0, rel=1e-14)
    assert np.all(trap.output_grad_norms[:3] < 1e-12)
    assert np.all(trap.param_norms < 1e-12)
    good = layer_grad_norms(model, x)
    assert np.all(good.output_grad_norms > 1e-2)
    assert np.all(good.param_norms[[0, 2]] > 1e-2)


def test_exploding_network_reports_exploded_at_and_does_not_raise():
    # y_l = 1e5^l · x in float32: outputs overflow from layer 8 on, the gradients of the first layers too
    model = _exploding_mlp()
    result = layer_grad_norms(model, torch.ones(2, 4))
    bad = ~(np.isfinite(result.output_grad_norms) & np.isfinite(result.param_norms))
    assert bad.any()
    assert result.exploded_at == int(np.argmax(bad)) == 0
    assert not np.isfinite(result.output_grad_norms[0])  # inf·0 inside the matmuls gives NaN
    assert np.isfinite(result.output_grad_norms[-1])


def test_layer_grad_norms_is_deterministic():
    enc = _encoder()
    x = _randn(2, 5, 8, seed=3)
    a, b = layer_grad_norms(enc, x), layer_grad_norms(enc, x)
    assert np.array_equal(a.output_grad_norms, b.output_grad_norms)
    assert np.array_equal(a.param_norms, b.param_norms)
    assert a.loss == b.loss


def test_layer_grad_norms_says_which_loss_it_used():
    model, x = _tanh_mlp(), _randn(2, 6)
    assert layer_grad_norms(model, x).loss_source == "projection of output"
    assert layer_grad_norms(model, x, loss_fn=lambda y: y.sum()).loss_source == "loss_fn of output"


class _TupleBlock(nn.Module):
    """A block returning (hidden, attention-like weights), as many Transformer blocks do."""

    def __init__(self, width: int):
        super().__init__()
        self.lin = nn.Linear(width, width, dtype=F64)

    def forward(self, h):
        z = torch.tanh(self.lin(h))
        return z, z.softmax(dim=-1)


class _TokenModel(nn.Module):
    """Token ids -> embedding -> a ModuleList of tuple-returning blocks -> a dict output, with its own loss
    when labels are given: the shape of a Hugging Face model's forward, written here without transformers."""

    def __init__(self, vocab=11, width=6, depth=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, width, dtype=F64)
        self.blocks = nn.ModuleList(_TupleBlock(width) for _ in range(depth))
        self.head = nn.Linear(width, vocab, dtype=F64)
        _reinit(self, 21)

    def forward(self, input_ids, labels=None):
        h = self.embed(input_ids)
        for block in self.blocks:
            h = h + block(h)[0]
        logits = self.head(h)
        out = {"logits": logits, "hidden": h}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        return out


def _token_reference(model, ids, labels=None):
    """retain_grad on every block's first output while unrolling the model by hand, then backward."""
    h = model.embed(ids)
    outs = []
    for block in model.blocks:
        z = block(h)[0]
        z.retain_grad()
        outs.append(z)
        h = h + z
    logits = model.head(h)
    if labels is None:
        loss = _default_loss(logits)
    else:
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
    loss.backward()
    out_norms = [z.grad.norm().item() for z in outs]
    par_norms = [math.sqrt(sum(p.grad.pow(2).sum().item() for p in b.parameters())) for b in model.blocks]
    model.zero_grad(set_to_none=True)
    return out_norms, par_norms, loss.item()


def test_layer_grad_norms_on_token_ids_and_a_dict_output_uses_the_projection_of_the_logits():
    model = _TokenModel()
    ids = torch.randint(0, 11, (2, 5), generator=_gen(3))  # integer input: no requires_grad on it
    result = layer_grad_norms(model, ids)
    out_ref, par_ref, loss_ref = _token_reference(model, ids)
    assert result.names == ["blocks.0", "blocks.1", "blocks.2"]
    assert result.loss_source == "projection of logits"
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-12)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-12)
    assert result.loss == pytest.approx(loss_ref, rel=1e-12)


def test_layer_grad_norms_with_keyword_inputs_uses_the_models_own_loss():
    model = _TokenModel()
    ids = torch.randint(0, 11, (2, 5), generator=_gen(4))
    labels = torch.randint(0, 11, (2, 5), generator=_gen(5))
    result = layer_grad_norms(model, {"input_ids": ids, "labels": labels})
    out_ref, par_ref, loss_ref = _token_reference(model, ids, labels)
    assert result.loss_source == "model's own loss"
    assert result.loss == pytest.approx(loss_ref, rel=1e-12)
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-12)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-12)
    # an explicit loss_fn still wins over the model's own loss
    own = layer_grad_norms(model, {"input_ids": ids, "labels": labels}, loss_fn=lambda y: y.pow(2).sum())
    assert own.loss_source == "loss_fn of logits"


# ---------------------------------------------------------------------------------------------------------
# non-finite input is refused; an explosion inside the model is a result
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_probes_refuse_non_finite_input_naming_the_argument(bad):
    model = _tanh_mlp()
    x = _randn(3, 6)
    x[1, 2] = bad
    for probe in (
        lambda x: layer_grad_norms(model, x),
        lambda x: layer_stats(model, x),
        lambda x: param_grad_norms(model, x, {"w": model[0][0].weight}),
    ):
        with pytest.raises(ValueError, match=r"x must be finite .*index \(1, 2\)"):
            probe(x)


def test_probes_refuse_non_finite_tensors_inside_keyword_inputs_naming_the_key():
    class Embeds(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(4, 4, dtype=F64) for _ in range(2))

        def forward(self, inputs_embeds, attention_mask=None):
            for layer in self.layers:
                inputs_embeds = layer(inputs_embeds)
            return inputs_embeds

    embeds = _randn(2, 3, 4)
    embeds[0, 0, 0] = float("nan")
    mask = torch.ones(2, 3, dtype=torch.long)  # integer tensors are always finite
    with pytest.raises(ValueError, match=r"x\['inputs_embeds'\] must be finite"):
        layer_grad_norms(Embeds(), {"inputs_embeds": embeds, "attention_mask": mask})
    result = layer_grad_norms(Embeds(), {"inputs_embeds": _randn(2, 3, 4), "attention_mask": mask})
    assert result.exploded_at is None


def test_an_explosion_inside_the_model_is_reported_by_every_probe_not_raised():
    model = _exploding_mlp()
    x = torch.ones(2, 4)  # finite input: everything non-finite happens inside the model
    grads = param_grad_norms(model, x, {f"W_{i}": lay.weight for i, lay in enumerate(model)})
    assert grads.exploded_at == 0 and not np.isfinite(grads.norms[0])
    stats = layer_stats(model, x)
    assert np.all(np.isfinite(stats.mean[:7])) and not np.isfinite(stats.mean[-1])
    assert np.isnan(stats.rank_collapse[-1])  # not an exception from the geometry's finite-input check


# ---------------------------------------------------------------------------------------------------------
# param_grad_norms
# ---------------------------------------------------------------------------------------------------------
def test_param_grad_norms_equal_hand_computed_autograd():
    model = _Blocks()
    x = _randn(3, 6, seed=31)
    params = {
        "W_0": model.blocks[0].weight,
        "b_3": model.blocks[3].bias,
        "head_1": model.heads[1].weight,
        "also W_0": model.blocks[0].weight,  # the same tensor under two names
    }
    result = param_grad_norms(model, x, params)
    loss = _default_loss(model(x))
    loss.backward()
    expected = [p.grad.norm().item() for p in params.values()]
    model.zero_grad(set_to_none=True)
    assert result.names == ["W_0", "b_3", "head_1", "also W_0"]
    np.testing.assert_allclose(result.norms, expected, rtol=1e-12)
    assert result.loss == pytest.approx(loss.item(), rel=1e-12)
    assert result.loss_source == "projection of output" and result.exploded_at is None
    # a custom loss, and a parameter the loss never reaches (norm 0)
    spare = nn.Parameter(torch.ones(3, dtype=F64))
    chosen = {"W_1": model.blocks[1].weight, "spare": spare}
    custom = param_grad_norms(model, x, chosen, loss_fn=lambda y: y.pow(2).sum())
    model(x).pow(2).sum().backward()
    assert custom.norms[0] == pytest.approx(model.blocks[1].weight.grad.norm().item(), rel=1e-12)
    assert custom.norms[1] == 0.0
    assert custom.loss_source == "loss_fn of output"


def test_param_grad_norms_does_not_touch_grad_and_rejects_bad_params():
    model = _Blocks()
    x = _randn(2, 6)
    param_grad_norms(model, x, {"w": model.embed.weight})
    assert all(p.grad is None for p in model.parameters())
    for bad in ({}, [model.embed.weight], {"frozen": torch.ones(3)}, {"w": "weight"}):
        with pytest.raises(ValueError, match="params"):
            param_grad_norms(model, x, bad)
    with pytest.raises(ValueError, match="model"):
        param_grad_norms(lambda t: t, x, {"w": model.embed.weight})
    with pytest.raises(ValueError, match="loss_fn"):
        param_grad_norms(model, x, {"w": model.embed.weight}, loss_fn="sum")


# ---------------------------------------------------------------------------------------------------------
# layer_stats
# ---------------------------------------------------------------------------------------------------------
def _rank_collapse_by_hand(h: torch.Tensor) -> float:
    """mean over the batch of ‖H − 1 h̄ᵀ‖_F / ‖H‖_F, one sequence at a time."""
    values = []
    for seq in h:
        values.append((seq - seq.mean(dim=0)).norm().item() / seq.norm().item())
    return float(np.mean(values))


def test_layer_stats_match_manual_forward_statistics():
    enc = _encoder()
    x = _randn(2, 5, 8, seed=16)
    stats = layer_stats(enc, x)
    h = x
    for i, layer in enumerate(enc.layers):
        h = layer(h).detach()
        assert stats.mean[i] == pytest.approx(h.mean().item(), abs=1e-12)
        assert stats.std[i] == pytest.approx(h.std(correction=0).item(), rel=1e-12)
        assert stats.norm[i] == pytest.approx(h.norm(dim=-1).mean().item(), rel=1e-12)
        assert stats.rank_collapse[i] == pytest.approx(_rank_collapse_by_hand(h), rel=1e-12)
    np.testing.assert_array_equal(stats.layer, [1, 2, 3])
    with pytest.raises(ValueError, match="pass layers="):
        layer_stats(nn.Linear(3, 3), torch.ones(1, 3))


def test_layer_stats_of_identical_tokens_have_zero_rank_collapse():
    # every token equal: the residual H − 1 h̄ᵀ is exactly zero at every layer
    model = _tanh_mlp(depth=3)
    x = _randn(1, 6).expand(2, 4, 6).contiguous()  # (B, T, d) with T identical tokens
    stats = layer_stats(model, x)
    np.testing.assert_allclose(stats.rank_collapse, 0.0, atol=1e-15)
    np.testing.assert_array_equal(stats.layer, [1, 2, 3])
