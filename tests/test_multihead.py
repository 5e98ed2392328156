"""gradlib.multihead.SelfAttention against nn.MultiheadAttention with copied weights, and its seeded init."""

import hashlib
import math

import pytest
import torch
from torch import nn

from gradlib import draws
from gradlib.multihead import SelfAttention

DT = torch.float64


def randn(*shape, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=DT)


def causal(t):
    return torch.ones(t, t, dtype=torch.bool).tril()


def torch_mha(d, n_heads):
    """nn.MultiheadAttention(dropout=0, batch_first), its init drawn from a forked global RNG seeded 0."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.MultiheadAttention(d, n_heads, dropout=0.0, batch_first=True, dtype=DT)


def _checksum(model: nn.Module) -> str:
    """First 16 hex digits of the sha256 of every state-dict entry's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------ vs PyTorch
@pytest.mark.parametrize("n_heads", [1, 4])
@pytest.mark.parametrize("use_mask", [False, True])
def test_self_attention_module_matches_torch_multihead_attention(n_heads, use_mask):
    d, t = 8, 5
    mha = torch_mha(d, n_heads)
    with torch.no_grad():  # non-zero biases, so that copying them is tested too
        mha.in_proj_bias.copy_(randn(3 * d, seed=5))
        mha.out_proj.bias.copy_(randn(d, seed=6))
    ours = SelfAttention(d, n_heads, seed=1, dtype=DT)
    ours.copy_from_torch(mha)
    mask = causal(t) if use_mask else None
    x_torch = randn(3, t, d, seed=7).requires_grad_()
    x_ours = x_torch.detach().clone().requires_grad_()
    expected, _ = mha(x_torch, x_torch, x_torch, attn_mask=None if mask is None else ~mask)  # torch: True = blocked
    got = ours(x_ours, mask=mask)
    torch.testing.assert_close(got, expected)
    r = randn(3, t, d, seed=8)
    (expected * r).sum().backward()
    (got * r).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_torch.grad)


def test_self_attention_module_per_batch_mask_matches_torch():
    d, t, h = 8, 4, 2
    mha = torch_mha(d, h)
    ours = SelfAttention(d, h, dtype=DT, seed=0)
    ours.copy_from_torch(mha)
    mask = torch.stack([causal(t), causal(t).T])  # (B, T, T)
    x = randn(2, t, d, seed=3)
    expected, _ = mha(x, x, x, attn_mask=(~mask).repeat_interleave(h, dim=0))  # torch wants (B·h, T, T)
    torch.testing.assert_close(ours(x, mask=mask), expected)


def test_self_attention_returns_weights_of_every_head_on_request():
    ours = SelfAttention(8, 4, dtype=DT, seed=0)
    z, p = ours(randn(2, 5, 8, seed=1), return_weights=True)
    assert z.shape == (2, 5, 8) and p.shape == (2, 4, 5, 5)
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 4, 5, dtype=DT))


# ---------------------------------------------------------------------------------------------- seeding
def test_init_is_seeded_xavier_with_zero_bias():
    a, b, c = SelfAttention(64, 4, seed=3), SelfAttention(64, 4, seed=3), SelfAttention(64, 4, seed=4)
    assert torch.equal(a.w_q.weight, b.w_q.weight)
    assert not torch.equal(a.w_q.weight, c.w_q.weight)
    assert not torch.equal(a.w_q.weight, a.w_k.weight)  # the four projections are drawn independently
    for lin in (a.w_q, a.w_k, a.w_v, a.w_o):
        assert torch.count_nonzero(lin.bias) == 0
        assert lin.weight.abs().max() <= math.sqrt(6 / 128)  # Xavier bound √(6/(n_in+n_out))
        assert lin.weight.var().item() == pytest.approx(1 / 64, rel=0.15)  # Var = 2/(n_in+n_out)


def test_init_leaves_global_rng_untouched():
    state = torch.random.get_rng_state()
    SelfAttention(16, 2, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())


# Computed from HEAD's gradlib/attention.py (before the split) for seeds 0, 1, 123: the numbers must not change.
HEAD_WEIGHTS = {
    torch.float32: ("3561fe2450f9c3dd", "05992c37160cfc78", "4135889671cb013f"),
    DT: ("9dde35be090e0d18", "2a35ba9e3b779b94", "e7fb0a3f4101cccc"),
}


@pytest.mark.parametrize("dtype", [torch.float32, DT], ids=["float32", "float64"])
def test_weights_are_bit_for_bit_those_before_the_split(dtype):
    assert tuple(_checksum(SelfAttention(8, 2, seed=s, dtype=dtype)) for s in (0, 1, 123)) == HEAD_WEIGHTS[dtype]


def test_init_is_nn_inits_xavier_uniform_from_the_seeded_generator_in_order_q_k_v_o():
    ours = SelfAttention(6, 2, seed=4, dtype=DT)
    g = torch.Generator().manual_seed(4)
    for lin in (ours.w_q, ours.w_k, ours.w_v, ours.w_o):
        expected = nn.init.xavier_uniform_(torch.empty(6, 6, dtype=DT), generator=g)
        assert torch.equal(lin.weight, expected)


def test_a_given_generator_wins_over_the_seed_and_no_seed_means_seed_zero():
    assert torch.equal(SelfAttention(8, generator=draws.generator(5), seed=1).w_q.weight,
                       SelfAttention(8, seed=5).w_q.weight)
    assert torch.equal(SelfAttention(8).w_o.weight, SelfAttention(8, seed=0).w_o.weight)


def test_forward_does_not_check_its_input_for_nan():
    x = randn(2, 4, 8, seed=1)
    x[1, 2, 0] = float("nan")
    y = SelfAttention(8, 2, seed=0, dtype=DT)(x)  # every token of sequence 1 attends to the NaN token
    assert torch.isnan(y[1]).all() and torch.isfinite(y[0]).all()


# ---------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("bad", ["foo", "sqrt", -1.0, 0.0, float("inf"), float("nan"), True, None])
def test_bad_scale_raises_value_error_naming_scale(bad):
    with pytest.raises(ValueError, match="scale"):
        SelfAttention(4, scale=bad)


def test_bad_module_arguments_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="n_heads"):
        SelfAttention(6, 4)
    with pytest.raises(ValueError, match="d_model"):
        SelfAttention(0)
    with pytest.raises(ValueError, match="seed"):
        SelfAttention(4, seed="0")
    with pytest.raises(ValueError, match="x must"):
        SelfAttention(4)(randn(2, 3, 5))
    with pytest.raises(ValueError, match="mha must have embed_dim"):
        SelfAttention(8, 2).copy_from_torch(nn.MultiheadAttention(8, 4))
    with pytest.raises(ValueError, match="mha must have bias"):
        SelfAttention(8, 2, bias=False).copy_from_torch(nn.MultiheadAttention(8, 2))
    with pytest.raises(ValueError, match="mha must be"):
        SelfAttention(8, 2).copy_from_torch(nn.Linear(8, 8))


# ------------------------------------------------------------------------------------- QK-norm and σReparam
def test_options_off_keep_the_default_module_and_its_weights():
    plain, off = SelfAttention(8, 2, seed=1, dtype=DT), SelfAttention(8, 2, seed=1, dtype=DT, qk_norm="none",
                                                                    sigma_reparam=False)
    assert plain.state_dict().keys() == off.state_dict().keys() and _checksum(plain) == _checksum(off)
    assert "qk_norm" not in repr(plain) and "sigma_reparam" not in repr(plain)


@pytest.mark.parametrize("kind", ["layer", "rms"])
def test_qk_norm_gives_every_head_unit_rms_queries_and_keys_and_bounds_the_logits(kind):
    m = SelfAttention(16, 4, qk_norm=kind, seed=0, dtype=DT)
    with torch.no_grad():
        for name in ("w_q", "w_k"):
            m.raw_weight(name).mul_(50.0)  # large weights: the logits would be in the thousands
    x = randn(2, 6, 16, seed=2)
    q, k, _ = m._heads(x)  # (B, h, T, d_head)
    for t in (q, k):
        rms = t.pow(2).mean(-1).sqrt()  # per head and token
        torch.testing.assert_close(rms, torch.ones_like(rms), rtol=1e-6, atol=0)
        if kind == "layer":
            torch.testing.assert_close(t.mean(-1), torch.zeros_like(rms), rtol=0, atol=1e-12)
    assert m.scores(x).abs().max() <= math.sqrt(4)  # |q̂·k̂|/√d_head ≤ d_head/√d_head
    expected = {"layer": nn.LayerNorm, "rms": nn.RMSNorm}[kind]
    assert isinstance(m.q_norm, expected) and m.q_norm.normalized_shape == (4,) and "qk_norm" in repr(m)


def test_scores_are_the_logits_behind_the_weights():
    m = SelfAttention(8, 2, qk_norm="rms", seed=3, dtype=DT)
    x = randn(2, 5, 8, seed=4)
    _, p = m(x, return_weights=True)
    torch.testing.assert_close(torch.softmax(m.scores(x), dim=-1), p)
    q = (x @ m.w_q.weight.T).unflatten(-1, (2, 4)).transpose(1, 2)
    k = (x @ m.w_k.weight.T).unflatten(-1, (2, 4)).transpose(1, 2)
    rms = lambda t: t / t.pow(2).mean(-1, keepdim=True).add(torch.finfo(DT).eps).sqrt()  # noqa: E731
    torch.testing.assert_close(m.scores(x), rms(q) @ rms(k).transpose(-2, -1) / 2.0)


def test_sigma_reparam_makes_every_projection_have_spectral_norm_gamma():
    m = SelfAttention(32, 4, sigma_reparam=True, seed=2, dtype=DT).eval()  # eval: reading Ŵ runs no power step
    for name in ("w_q", "w_k", "w_v", "w_o"):
        lin, w = getattr(m, name), m.raw_weight(name)
        sigma = torch.linalg.matrix_norm(lin.weight, ord=2).item()
        # 115 power-method steps at init; σ is estimated from below (uᵀWv ≤ σ₁), so σ(Ŵ) ≥ γ (measured ≤ 1e-9 over)
        assert 1.0 - 1e-12 <= sigma < 1.0 + 1e-6
        assert torch.linalg.matrix_norm(w, ord=2).item() > 1.5  # the raw Xavier W is not normalised
        with torch.no_grad():
            lin.parametrizations.weight[1].gamma.fill_(3.0)
        assert torch.linalg.matrix_norm(lin.weight, ord=2).item() == pytest.approx(3 * sigma, rel=1e-12)
    x = randn(2, 5, 32, seed=1)
    m.train()
    for _ in range(40):
        m(x)  # one more power-method step per training-mode forward: σ(Ŵ) converges to γ
    for name in ("w_q", "w_k", "w_v", "w_o"):
        assert torch.linalg.matrix_norm(getattr(m, name).weight, ord=2).item() == pytest.approx(3.0, rel=1e-4)
    with torch.no_grad():
        m.raw_weight("w_q").mul_(100.0)  # σReparam does not see the scale of W
    assert torch.linalg.matrix_norm(m.eval().w_q.weight, ord=2).item() == pytest.approx(3.0, rel=1e-4)


def test_sigma_reparam_is_seeded_leaves_the_global_rng_and_learns_gamma():
    state = torch.random.get_rng_state()
    a, b = SelfAttention(8, 2, sigma_reparam=True, seed=4, dtype=DT), SelfAttention(8, 2, sigma_reparam=True,
                                                                                    seed=4, dtype=DT)
    assert torch.equal(state, torch.random.get_rng_state())
    assert _checksum(a) == _checksum(b)
    assert torch.equal(a.raw_weight("w_k"), SelfAttention(8, 2, seed=4, dtype=DT).w_k.weight)  # the same W drawn
    a(randn(1, 3, 8)).sum().backward()
    assert a.w_v.parametrizations.weight[1].gamma.grad is not None
    a.reset_parameters(draws.generator(4))
    torch.testing.assert_close(a.w_q.weight, b.w_q.weight)  # a fresh draw, σReparam re-attached


def test_bad_options_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="qk_norm"):
        SelfAttention(8, qk_norm="batch")
    with pytest.raises(ValueError, match="sigma_reparam"):
        SelfAttention(8, sigma_reparam="yes")
    with pytest.raises(ValueError, match="copy_from_torch needs sigma_reparam=False"):
        SelfAttention(8, 2, sigma_reparam=True).copy_from_torch(nn.MultiheadAttention(8, 2))
    with pytest.raises(ValueError, match="name"):
        SelfAttention(8).raw_weight("w_x")
