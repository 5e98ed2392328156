"""Tests of gradlib.probes against hand-unrolled autograd, explicit Jacobians, and theory."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gradlib.probes import (
    grad_through_time,
    jacobian_top_singular_values,
    layer_grad_norms,
    layer_stats,
    position_grad_norms,
    rank_collapse,
    token_cosine_similarity,
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


class _LinearRNN(nn.Module):
    """h_t = W h_{t−1} + U x_t, written here so the probe is tested on a model it has never seen."""

    def __init__(self, w: torch.Tensor, d_input: int, activation=None):
        super().__init__()
        self.d_hidden = w.shape[0]
        self.w = nn.Parameter(w)
        self.u = nn.Parameter(_randn(w.shape[0], d_input, seed=11, dtype=w.dtype))
        self.activation = activation

    def step(self, h, x_t):
        a = h @ self.w.T + x_t @ self.u.T
        return a if self.activation is None else self.activation(a)


def _orthogonal(d: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(_randn(d, d, seed=seed))
    return q * torch.sign(torch.diagonal(r))


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
    layers = []
    for _ in range(10):
        lin = nn.Linear(4, 4, bias=False)
        with torch.no_grad():
            lin.weight.copy_(1e5 * torch.eye(4))
        layers.append(lin)
    model = nn.Sequential(*layers)
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


# ---------------------------------------------------------------------------------------------------------
# grad_through_time
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rho", [0.9, 1.1])
def test_grad_through_time_of_linear_rnn_with_scaled_orthogonal_weights_is_rho_power(rho):
    n_steps, d = 20, 6
    rnn = _LinearRNN(rho * _orthogonal(d, seed=1), d_input=3)
    result = grad_through_time(rnn, _randn(1, n_steps, 3, seed=2))
    np.testing.assert_array_equal(result.steps, np.arange(n_steps))
    np.testing.assert_array_equal(result.distance, n_steps - np.arange(n_steps))
    np.testing.assert_allclose(result.norms, rho ** (n_steps - np.arange(n_steps)), rtol=1e-10)
    assert result.exploded_at is None


def test_grad_through_time_of_tanh_rnn_matches_explicit_jacobians():
    d, n_steps = 5, 7
    rnn = _LinearRNN(_randn(d, d, seed=3) * 0.6, d_input=2, activation=torch.tanh)
    x = _randn(n_steps, 2, seed=4)  # (T, d_in) is accepted as well as (1, T, d_in)
    result = grad_through_time(rnn, x)

    states = [torch.zeros(1, d, dtype=F64)]
    for t in range(n_steps):
        states.append(rnn.step(states[-1], x[t : t + 1]).detach())
    for t in range(n_steps):

        def unroll(h, t=t):
            for s in range(t, n_steps):
                h = rnn.step(h, x[s : s + 1])
            return h

        jac = torch.autograd.functional.jacobian(unroll, states[t]).reshape(d, d)
        assert result.norms[t] == pytest.approx(torch.linalg.matrix_norm(jac, ord=2).item(), rel=1e-10)


def test_grad_through_time_reports_explosion_without_raising():
    rnn = _LinearRNN((1e8 * _orthogonal(4, seed=5)).float(), d_input=2)
    rnn.u.data = rnn.u.data.float()
    result = grad_through_time(rnn, torch.ones(1, 8, 2))
    assert result.exploded_at == 0  # ρ^8 = 1e64 overflows float32 at the longest distance
    assert not np.isfinite(result.norms[0]) and np.isfinite(result.norms[-1])


def test_grad_through_time_rejects_bad_inputs():
    rnn = _LinearRNN(_orthogonal(3, seed=0), d_input=2)
    with pytest.raises(ValueError, match="x"):
        grad_through_time(rnn, _randn(2, 5, 2))  # batch of 2
    with pytest.raises(ValueError, match="x"):
        grad_through_time(rnn, _randn(5))
    with pytest.raises(ValueError, match="step"):
        grad_through_time(nn.Linear(3, 3), _randn(5, 3))
    rnn.d_hidden = "three"
    with pytest.raises(ValueError, match="d_hidden"):
        grad_through_time(rnn, _randn(5, 2))


# ---------------------------------------------------------------------------------------------------------
# position_grad_norms
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", [-1, 2])
def test_position_grad_norms_match_explicit_jacobian(target):
    enc = _encoder(n_layers=2)
    x = _randn(1, 6, 8, seed=7)
    result = position_grad_norms(enc, x, target=target)
    jac = torch.autograd.functional.jacobian(enc, x)  # (1, T, d, 1, T, d)
    j = target % 6
    expected = [torch.linalg.matrix_norm(jac[0, j, :, 0, i, :]).item() for i in range(6)]
    np.testing.assert_allclose(result.norms, expected, rtol=1e-10)
    np.testing.assert_array_equal(result.distance, np.abs(j - np.arange(6)))


def test_position_grad_norms_of_causal_mixing_are_zero_for_future_positions():
    weights = torch.tril(torch.ones(5, 5, dtype=F64))

    def causal(x):  # y_j = Σ_{i ≤ j} x_i
        return weights @ x

    result = position_grad_norms(causal, _randn(1, 5, 3), target=1)
    np.testing.assert_allclose(result.norms, [math.sqrt(3), math.sqrt(3), 0, 0, 0], atol=1e-15)


def test_position_grad_norms_rejects_bad_inputs():
    f = nn.Identity()
    with pytest.raises(ValueError, match="target"):
        position_grad_norms(f, _randn(1, 4, 2), target=4)
    with pytest.raises(ValueError, match="target"):
        position_grad_norms(f, _randn(1, 4, 2), target=-5)
    with pytest.raises(ValueError, match="x"):
        position_grad_norms(f, _randn(4, 2))
    with pytest.raises(ValueError, match="fn"):
        position_grad_norms(None, _randn(1, 4, 2))
    with pytest.raises(ValueError, match="fn"):
        position_grad_norms(lambda t: t.sum(dim=1), _randn(1, 4, 2))


# ---------------------------------------------------------------------------------------------------------
# jacobian_top_singular_values
# ---------------------------------------------------------------------------------------------------------
def test_jacobian_top_singular_values_match_svdvals_of_explicit_jacobian():
    model = nn.Sequential(nn.Linear(4, 7, dtype=F64), nn.Tanh(), nn.Linear(7, 3, dtype=F64))
    _reinit(model, 13, std=0.8)
    x = _randn(1, 5, 4, seed=14)  # J: R^20 -> R^15, non-square
    result = jacobian_top_singular_values(model, x, k=4, n_iter=40)
    jac = torch.autograd.functional.jacobian(model, x).reshape(15, 20)
    expected = torch.linalg.svdvals(jac)[:4].numpy()
    np.testing.assert_allclose(result.singular_values, expected, rtol=1e-6)
    assert np.all(np.diff(result.singular_values) <= 0)


def test_jacobian_top_singular_values_through_torch_attention_match_svdvals():
    # the fused CPU attention kernel has no forward-mode derivative: the probe must still work
    enc = _encoder(n_layers=1)
    x = _randn(1, 4, 8, seed=15)
    result = jacobian_top_singular_values(enc, x, k=2, n_iter=40)
    jac = torch.autograd.functional.jacobian(enc, x).reshape(32, 32)
    np.testing.assert_allclose(result.singular_values, torch.linalg.svdvals(jac)[:2].numpy(), rtol=1e-6)


def test_jacobian_top_singular_values_of_identity_are_one_and_deterministic():
    x = _randn(2, 3, 4)
    a = jacobian_top_singular_values(lambda t: t, x, k=3, n_iter=5, seed=1)
    b = jacobian_top_singular_values(lambda t: t, x, k=3, n_iter=5, seed=1)
    np.testing.assert_allclose(a.singular_values, 1.0, rtol=1e-14)
    assert np.array_equal(a.singular_values, b.singular_values)


def test_jacobian_top_singular_values_rejects_bad_inputs():
    x = _randn(1, 3, 2)
    for bad_k in (0, -1, 2.5, 7):
        with pytest.raises(ValueError, match="k must"):
            jacobian_top_singular_values(lambda t: t, x, k=bad_k)
    with pytest.raises(ValueError, match="k must"):  # more than the output size
        jacobian_top_singular_values(lambda t: t.sum(), x, k=2)
    with pytest.raises(ValueError, match="n_iter"):
        jacobian_top_singular_values(lambda t: t, x, n_iter=0)
    with pytest.raises(ValueError, match="x"):
        jacobian_top_singular_values(lambda t: t, torch.ones(3, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------------
# rank collapse, cosine similarity, layer_stats
# ---------------------------------------------------------------------------------------------------------
def test_rank_collapse_is_zero_for_identical_tokens_and_scale_invariant():
    token = _randn(1, 8)
    assert rank_collapse(token.expand(5, 8)) == 0.0
    h = _randn(2, 5, 8, seed=1)
    assert rank_collapse(3.7 * h) == pytest.approx(rank_collapse(h), rel=1e-14)
    # tokens ±e1 have mean 0: the residual is all of H
    assert rank_collapse(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])) == pytest.approx(1.0)
    # batch: the mean of the per-sample values
    batch = torch.stack([token.expand(5, 8), torch.tensor([[1.0] * 8, [-1.0] * 8] * 2 + [[0.0] * 8], dtype=F64)])
    assert rank_collapse(batch) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="h"):
        rank_collapse(torch.ones(8))


def test_token_cosine_similarity_is_one_for_parallel_and_minus_one_for_opposite_tokens():
    e1 = torch.tensor([[1.0, 0.0, 0.0]])
    assert token_cosine_similarity(torch.cat([e1, 2 * e1, 5 * e1])) == pytest.approx(1.0)
    assert token_cosine_similarity(torch.cat([e1, -e1])) == pytest.approx(-1.0)
    assert token_cosine_similarity(torch.eye(3)) == pytest.approx(0.0)
    h = _randn(2, 4, 3)
    unit = torch.nn.functional.normalize(h, dim=-1)
    pairs = [float(unit[b, i] @ unit[b, j]) for b in range(2) for i in range(4) for j in range(4) if i != j]
    assert token_cosine_similarity(h) == pytest.approx(np.mean(pairs), rel=1e-12)
    with pytest.raises(ValueError, match="T >= 2"):
        token_cosine_similarity(e1)


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
        assert stats.rank_collapse[i] == pytest.approx(rank_collapse(h), rel=1e-12)
    np.testing.assert_array_equal(stats.layer, [1, 2, 3])
    with pytest.raises(ValueError, match="pass layers="):
        layer_stats(nn.Linear(3, 3), torch.ones(1, 3))


# ---------------------------------------------------------------------------------------------------------
# gradlib's own models (written by other modules; skipped only while those modules do not exist)
# ---------------------------------------------------------------------------------------------------------
def test_layer_grad_norms_on_gradlib_deep_mlp_matches_manual_computation():
    blocks = pytest.importorskip("gradlib.blocks")
    model = blocks.DeepMLP(8, 6, activation="tanh", init="xavier", seed=0, dtype=F64)
    x = _randn(4, 8, seed=17)
    result = layer_grad_norms(model, x)
    assert result.names == [f"layers.{i}" for i in range(6)]
    out_ref, par_ref, _ = _manual_norms(list(model.layers), x)
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-12)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-12)


def test_layer_grad_norms_on_gradlib_pre_norm_stack_passes_through_its_final_norm():
    blocks = pytest.importorskip("gradlib.blocks")
    stack = blocks.TransformerStack(3, 8, 2, 16, norm="layer", norm_position="pre", seed=0, dtype=F64)
    x = _randn(2, 5, 8, seed=18)
    result = layer_grad_norms(stack, x)
    out_ref, par_ref, _ = _manual_norms(list(stack.layers), x, head=stack.final_norm)
    np.testing.assert_allclose(result.output_grad_norms, out_ref, rtol=1e-10)
    np.testing.assert_allclose(result.param_norms, par_ref, rtol=1e-10)


def test_grad_through_time_on_gradlib_linear_rnn_is_rho_power():
    rnn_module = pytest.importorskip("gradlib.rnn")
    n_steps = 15
    rnn = rnn_module.VanillaRNN(6, 3, activation="identity", spectral_radius=0.8, seed=0, dtype=F64)
    result = grad_through_time(rnn, _randn(1, n_steps, 3, seed=19))
    np.testing.assert_allclose(result.norms, 0.8 ** (n_steps - np.arange(n_steps)), rtol=1e-10)


def test_rank_collapse_of_gradlib_pure_attention_stack_falls_with_depth():
    blocks = pytest.importorskip("gradlib.blocks")
    stack = blocks.attention_stack(6, 8, 1, residual=False, seed=0, dtype=F64)
    stats = layer_stats(stack, _randn(1, 10, 8, seed=20))
    assert np.all(np.diff(stats.rank_collapse) < 0)
    assert stats.rank_collapse[-1] < 1e-3 * rank_collapse(_randn(1, 10, 8, seed=20))



def test_position_grad_norms_of_gradlib_causal_attention_match_jacobian_and_vanish_for_the_future():
    attention = pytest.importorskip("gradlib.attention")
    attn = attention.SelfAttention(8, 2, seed=0, dtype=F64)
    mask = torch.ones(6, 6, dtype=torch.bool).tril()  # True = may attend

    def causal(x):
        return attn(x, mask)

    x = _randn(1, 6, 8, seed=21)
    result = position_grad_norms(causal, x, target=3)
    jac = torch.autograd.functional.jacobian(causal, x)  # (1, T, d, 1, T, d)
    expected = [torch.linalg.matrix_norm(jac[0, 3, :, 0, i, :]).item() for i in range(6)]
    np.testing.assert_allclose(result.norms, expected, rtol=1e-10)
    assert np.all(result.norms[:4] > 0) and np.all(result.norms[4:] == 0)
    # and the top singular values of the same map, without forming its Jacobian
    spectrum = jacobian_top_singular_values(causal, x, k=3, n_iter=40)
    svals = torch.linalg.svdvals(jac.reshape(48, 48))[:3].numpy()
    np.testing.assert_allclose(spectrum.singular_values, svals, rtol=1e-6)
