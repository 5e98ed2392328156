"""Chapter 2, highway 1 — self-attention (gradlib.exp_attention): one step between any two tokens, and its limits.

Every conclusion is re-measured over seeds 0, 1, 2 with thresholds that leave a margin of ~3× or more over
what the seeds measured. Independent truths: autograd's full Jacobians (reverse mode, where the experiment
uses forward mode), the stacks unrolled block by block by hand (no hooks) with r(H) and the cosine written
out in numpy. Where a number can be recomputed by calling the probe directly on the same model and input, it
must be equal. (The softmax-saturation tests moved with the experiment to tests/test_exp_scores.py.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from _experiment_helpers import _assert_facts_hold, _assert_same  # tests/: checks every experiment test shares
from gradlib import draws
from gradlib import exp_attention as A
from gradlib.jacobians import source_grad_norms
from gradlib.multihead import SelfAttention
from gradlib.probes import layer_stats, param_grad_norms
from gradlib.rnn import VanillaRNN
from gradlib.transformer import attention_stack

SEEDS = (0, 1, 2)
F64 = torch.float64


def _projection(shape: tuple[int, ...]) -> torch.Tensor:
    """The probes' loss direction r ~ N(0, 1) (seed 0, float64), written out: the loss is ⟨y, r⟩."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=F64)


def _inputs(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """The experiments' inputs, written out: N(0, 1) from the data stream seed + 1_000_003, float64."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1_000_003), dtype=F64)


def _unrolled(model, x: torch.Tensor) -> list[torch.Tensor]:
    """The output of every block, calling the blocks one after the other by hand."""
    outputs, h = [], x
    for block in model.layers:
        h = block(h)
        outputs.append(h)
    return outputs


def _r(h: torch.Tensor) -> float:
    """‖H − 1h̄ᵀ‖_F / ‖H‖_F of one sequence (T, d), in numpy."""
    a = h.detach().numpy()
    return float(np.linalg.norm(a - a.mean(axis=0)) / np.linalg.norm(a))


def _cosine(h: torch.Tensor) -> float:
    """Mean cosine similarity over all pairs of distinct tokens of one sequence (T, d), in numpy."""
    a = h.detach().numpy()
    unit = a / np.linalg.norm(a, axis=1, keepdims=True)
    n = len(a)
    return float(((unit @ unit.T).sum() - n) / (n * (n - 1)))


# ------------------------------------------------------------------------------------------- path lengths
@pytest.mark.parametrize("seed", SEEDS)
def test_rnn_path_decays_exponentially_while_attention_is_one_step(seed):
    result = A.path_lengths(seq_len=32, n_sequences=2, seed=seed)
    assert result.rnn[24] < 1e-5 * result.attention[24]  # measured: 0.5-4e-8 times attention (~0.3-0.7)
    assert result.rnn[31] < 1e-9  # measured 1.5e-11 to 1.5e-10 (the old file's 1e-8, tightened)
    # attention's dependence falls like a power of n, not exponentially: x_1 is one step from every y_n
    assert result.attention[31] > result.attention[0] / 100  # measured: / 5 to / 24
    assert 0.4 < result.rho < 0.8  # nn.RNN's default init: spectral radius ≈ 1/√3 (measured 0.54-0.63)
    np.testing.assert_array_equal(result.distance, np.arange(32))
    assert (result.seq_len, result.causal) == (32, True)


def test_path_lengths_measure_through_source_grad_norms():
    result = A.path_lengths(seq_len=6, d=4, n_sequences=3, rho=0.8, causal=False, seed=2)
    xs = draws.randn((3, 6, 4), draws.data_generator(2), F64)
    rnn = VanillaRNN(4, 4, activation="tanh", spectral_radius=0.8, seed=2, dtype=F64)
    attn = SelfAttention(4, 1, seed=2, dtype=F64)
    np.testing.assert_array_equal(result.rnn, source_grad_norms(rnn, xs, source=0).norms.mean(axis=0))
    np.testing.assert_array_equal(result.attention, source_grad_norms(attn, xs, source=0).norms.mean(axis=0))
    assert result.rho == pytest.approx(0.8, rel=1e-12)  # ρ·orthogonal: every |eigenvalue| is ρ


@pytest.mark.parametrize("causal", [True, False])
def test_path_lengths_equal_autograds_full_jacobians(causal):
    # reverse mode on the whole (T·d × d) Jacobian ∂y/∂x_1, one sequence at a time (the experiment: forward mode)
    seq_len, d, n_seq, seed = 5, 4, 2, 3
    result = A.path_lengths(seq_len=seq_len, d=d, n_sequences=n_seq, causal=causal, seed=seed)
    xs = _inputs((n_seq, seq_len, d), seed)
    rnn = VanillaRNN(d, d, activation="tanh", seed=seed, dtype=F64)
    attn = SelfAttention(d, 1, seed=seed, dtype=F64)
    mask = torch.ones(seq_len, seq_len, dtype=torch.bool).tril() if causal else None
    for fn, measured in ((rnn, result.rnn), (lambda h: attn(h, mask), result.attention)):
        norms = []
        for b in range(n_seq):
            rest = xs[b : b + 1, 1:]
            jac = torch.autograd.functional.jacobian(lambda x1: fn(torch.cat([x1, rest], dim=1)), xs[b : b + 1, :1])
            norms.append(jac.reshape(seq_len, -1).norm(dim=1).numpy())  # (T,) ‖∂y_n/∂x_1‖_F
        np.testing.assert_allclose(measured, np.mean(norms, axis=0), rtol=1e-10)


def test_causal_mask_changes_attention_but_not_the_rnn():
    causal = A.path_lengths(seq_len=5, d=4, n_sequences=1, causal=True)
    full = A.path_lengths(seq_len=5, d=4, n_sequences=1, causal=False)
    np.testing.assert_array_equal(causal.rnn, full.rnn)
    assert not np.allclose(causal.attention, full.attention)


# ------------------------------------------------------------------------------------------- rank collapse
@pytest.mark.parametrize("seed", SEEDS)
def test_pure_attention_collapses_to_rank_one_and_skips_prevent_it(seed):
    result = A.rank_collapse_depth(depth=12, seed=seed)
    pure, skip = result["attention"].y, result["skip"].y
    np.testing.assert_array_equal(result["attention"].x, np.arange(13))
    assert pure[0] == skip[0] > 0.9  # random tokens: far from rank one (measured 0.96-0.97)
    assert pure[-1] < 1e-10  # measured 2-3e-16 (float64 round-off) from layer 4 on (the old file's 1e-6)
    # Measured with skips at depth 12: 0.16, 0.22, 0.05 (seeds 0-2) — slowly shrinking, not collapsed.
    assert skip[-1] > 1e-2
    assert skip[-1] > 1e10 * pure[-1]


@pytest.mark.parametrize("seed", SEEDS)
def test_depth_scaled_branches_keep_a_deep_attention_stack_far_from_rank_one(seed):
    # Noci et al. 2022: x_l + attn(x_l)/√L. Measured at depth 48: unscaled skips collapse too (3e-7 to 9e-6),
    # branches scaled by 1/√L stay at 0.89-0.94.
    result = A.rank_collapse_depth(depth=48, seed=seed, variants=("skip", "scaled"))
    assert result.keys() == ["skip", "scaled"]
    scaled, unscaled = result["scaled"].y, result["skip"].y
    assert scaled[0] == unscaled[0]  # the same input
    assert scaled[-1] > 0.5
    assert scaled[-1] > 1e4 * unscaled[-1]  # measured 1e5 to 2.6e6 times (the old file's 1e3)


def test_rank_collapse_default_variants_are_pure_attention_and_plain_skips():
    assert A.rank_collapse_depth(depth=2, n_tokens=4, d=8).keys() == ["attention", "skip"]


@pytest.mark.parametrize("seed", SEEDS)
def test_pre_ln_slows_the_collapse_with_skips_and_post_ln_speeds_it_up(seed):
    # LayerNorm normalises each token on its own: it cannot remove what all tokens share. Measured (d = 32,
    # 16 tokens) at layers 12 / 24: skips 0.05-0.22 / 8e-4-0.010, Post-LN 0.03-0.10 / 4e-4-2.4e-3,
    # Pre-LN 0.35-0.43 / 0.26-0.28.
    result = A.rank_collapse_depth(depth=24, seed=seed, variants=("skip", "post", "pre"))
    skip, post, pre = result["skip"].y, result["post"].y, result["pre"].y
    assert skip[0] == post[0] == pre[0]  # the same input
    for layer in (12, 24):
        assert post[layer] < skip[layer] < pre[layer]
    assert pre[24] > 10 * skip[24]  # measured 26-350×
    assert pre[24] > 0.1
    assert post[24] < 0.6 * skip[24]  # measured 0.19-0.51×


@pytest.mark.parametrize("key", list(A.COLLAPSE_VARIANTS))
def test_rank_collapse_equals_r_of_the_hand_unrolled_blocks_and_layer_stats(key):
    depth, seed = 3, 4
    result = A.rank_collapse_depth(depth=depth, n_tokens=5, d=8, n_heads=2, variants=(key,), seed=seed)
    _, _, residual, scaled, position = A.COLLAPSE_VARIANTS[key]
    model = attention_stack(depth, 8, 2, residual=residual, branch_scale=1 / math.sqrt(depth) if scaled else 1.0,
                            seed=seed, dtype=F64)  # no norm: the norm is written out below
    x = _inputs((1, 5, 8), seed)
    ln = lambda t: torch.nn.functional.layer_norm(t, (8,), eps=1e-5)  # noqa: E731
    with torch.no_grad():
        hs, h = [], x
        for block in model.layers:
            a = block.attn
            h = (h + a(ln(h)) if position == "pre" else ln(h + a(h)) if position == "post" else block(h))
            hs.append(h)
        expected = [_r(x[0])] + [_r(h[0]) for h in hs]
    np.testing.assert_allclose(result[key].y, expected, rtol=1e-12)
    if position is not None:
        model = attention_stack(depth, 8, 2, residual=True, norm="layer", norm_position=position, seed=seed, dtype=F64)
    probe = layer_stats(model, draws.randn((1, 5, 8), draws.data_generator(seed), F64)).rank_collapse
    np.testing.assert_array_equal(result[key].y[1:], probe)


# ------------------------------------------------------------------------------------ query/key gradients
@pytest.mark.parametrize("seed", SEEDS)
def test_query_gradient_vanishes_under_rank_collapse_but_not_with_scaled_residuals(seed):
    result = A.qk_gradients(depths=(1, 8), seed=seed)
    pure, scaled = result["attention"].y, result["scaled"].y
    assert pure[0] == pytest.approx(scaled[0], rel=1e-12)  # depth 1: the same single layer
    assert pure[1] < 1e-10  # measured 4-8e-19: the last layer's input tokens are identical (the old file's 1e-6)
    assert scaled[1] > 0.1  # measured 0.72-0.94
    assert result.cosine["attention"].y[1] > 0.99  # measured 1 - 1e-16
    assert result.cosine["scaled"].y[1] < 0.5  # measured 0.07-0.19
    assert result.layer == "last"


def test_query_gradient_at_the_first_layer_does_not_vanish():
    # Documented in qk_gradients: collapse acts on the layers whose *input* is collapsed.
    result = A.qk_gradients(depths=(8,), layer="first", seed=0)
    assert result.layer == "first"
    assert result["attention"].y[0] > 0.05  # measured 0.38


@pytest.mark.parametrize("layer, index", [("last", 2), ("first", 0), (2, 1)])
def test_qk_ratio_and_cosine_equal_autograd_on_the_hand_unrolled_stack(layer, index):
    seed, L = 1, 3
    result = A.qk_gradients(depths=(L,), n_tokens=4, d=6, layer=layer, seed=seed)
    x = _inputs((1, 4, 6), seed)
    for key in ("attention", "scaled"):
        model = attention_stack(L, 6, residual=key == "scaled", branch_scale=1 / math.sqrt(L) if key == "scaled"
                                else 1.0, seed=seed, dtype=F64)
        y = _unrolled(model, x)[-1]
        attn = model.layers[index].attn
        g_q, g_v = torch.autograd.grad((y * _projection(tuple(y.shape))).sum(), [attn.w_q.weight, attn.w_v.weight])
        assert result[key].y[0] == pytest.approx((g_q.norm() / g_v.norm()).item(), rel=1e-12)
        assert result.cosine[key].y[0] == pytest.approx(_cosine(y[0]), rel=1e-12)
        probe = param_grad_norms(model, x, {"w_q": attn.w_q.weight, "w_v": attn.w_v.weight})
        assert result[key].y[0] == probe.norms[0] / probe.norms[1]  # measured through the probe
    assert result.layer == str(layer)


# ------------------------------------------------------------------------------------ the chapter's numbers
def test_regression_path_lengths_of_chapter_two_at_seed_0():
    # What chapter 2 prints (the old gradlib.experiments produced the same): a reshaping must not move them.
    result = A.path_lengths(seq_len=128, rho=0.9, d=32, n_sequences=8, seed=0)
    np.testing.assert_allclose(result.rnn[[8, 32, 127]], [0.12170, 1.0313e-5, 1.1039e-21], rtol=1e-3)
    np.testing.assert_allclose(result.attention[[8, 32, 127]], [0.55292, 0.22897, 0.071211], rtol=1e-3)


def test_regression_rank_collapse_and_qk_gradients_at_seed_0():
    rc = A.rank_collapse_depth(depth=48, seed=0, variants=("attention", "skip", "scaled"))
    np.testing.assert_allclose(rc["attention"].y[:4], [0.97256, 0.77112, 0.063296, 1.1100e-5], rtol=1e-3)
    np.testing.assert_allclose(rc["skip"].y[[12, 24, 48]], [0.16273, 8.8312e-3, 9.3632e-6], rtol=1e-3)
    np.testing.assert_allclose(rc["scaled"].y[[12, 48]], [0.96834, 0.92584], rtol=1e-3)
    qk = A.qk_gradients(seed=0)
    np.testing.assert_allclose(qk["attention"].y[:3], [0.81473, 0.062599, 5.7049e-12], rtol=1e-3)
    np.testing.assert_allclose(qk["scaled"].y, [0.81473, 1.0302, 1.0494, 0.94022, 0.64962], rtol=1e-3)


@pytest.mark.parametrize("seed", SEEDS)
def test_non_causal_attention_does_not_fall_with_distance(seed):
    # With causal=False every output sees all T tokens: the share of x_1 is set by T, not by the distance.
    # Measured log-log slopes over distances 1..127: -0.06 to -0.08 (causal: -1.05).
    full = A.path_lengths(seq_len=128, rho=0.9, n_sequences=8, causal=False, seed=seed)
    slope = np.polyfit(np.log(full.distance[1:]), np.log(full.attention[1:]), 1)[0]
    assert abs(slope) < A.FLAT_TOL
    assert full.attention[1:].mean() < 0.3 * full.attention[0]  # x_1 is also output 1's query: larger


@pytest.mark.parametrize("seed", SEEDS)
def test_every_fact_of_chapter_two_holds(seed):
    _assert_facts_hold(A.facts(seed), seed, exactly=8)


def test_facts_read_the_experiments_with_their_thresholds():
    facts = A.facts(0)
    paths = A.path_lengths(seq_len=A.SEQ_LEN, rho=A.RHO, d=A.WIDTH, seed=0)
    assert facts["RNN > 15 orders below attention at distance 127"] == (paths.attention[127] > 1e15 * paths.rnn[127])
    assert "pure attention: residual < 1e-10 at layer 12" in facts
    with pytest.raises(ValueError, match="seed"):
        A.facts(1.5)


# ---------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("call", [
    lambda: A.rank_collapse_depth(depth=3, n_tokens=4, d=8, seed=5, variants=("scaled",)),
    lambda: A.path_lengths(seq_len=8, d=8, n_sequences=1, seed=5),
    lambda: A.qk_gradients(depths=(2,), seed=5),
])
def test_two_runs_with_the_same_seed_are_identical(call):
    _assert_same(call(), call())


@pytest.mark.parametrize("call", [
    lambda seed: A.rank_collapse_depth(depth=2, n_tokens=4, d=8, seed=seed)["skip"].y,
    lambda seed: A.path_lengths(seq_len=4, d=4, n_sequences=1, seed=seed).attention,
    lambda seed: A.qk_gradients(depths=(2,), n_tokens=4, d=8, seed=seed)["scaled"].y,
])
def test_different_seeds_give_different_numbers(call):
    assert not np.array_equal(call(0), call(1))


def test_experiments_leave_the_global_rng_untouched():
    state = torch.get_rng_state()
    A.path_lengths(seq_len=4, d=4, n_sequences=1)
    A.rank_collapse_depth(depth=2, n_tokens=3, d=4)
    A.qk_gradients(depths=(1,), n_tokens=3, d=4)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("call, name", [
    (lambda: A.path_lengths(rho=-1.0), "rho"),
    (lambda: A.path_lengths(rho=float("nan")), "rho"),
    (lambda: A.path_lengths(d=0), "d"),
    (lambda: A.path_lengths(seq_len=0), "seq_len"),
    (lambda: A.path_lengths(n_sequences=0), "n_sequences"),
    (lambda: A.path_lengths(input_scale=-1.0), "input_scale"),
    (lambda: A.path_lengths(causal="yes"), "causal"),
    (lambda: A.path_lengths(dtype=torch.int64), "dtype"),
    (lambda: A.path_lengths(device="nowhere"), "device"),
    (lambda: A.rank_collapse_depth(variants=("nothing",)), "variants"),
    (lambda: A.rank_collapse_depth(variants=("attention", "attention")), "variants"),
    (lambda: A.rank_collapse_depth(variants=()), "variants"),
    (lambda: A.rank_collapse_depth(depth=0, variants=("scaled",)), "depth"),
    (lambda: A.rank_collapse_depth(n_tokens=1), "n_tokens"),
    (lambda: A.rank_collapse_depth(d=30, n_heads=4), "n_heads"),
    (lambda: A.rank_collapse_depth(d=-1), "d"),
    (lambda: A.rank_collapse_depth(dtype=torch.int64), "dtype"),
    (lambda: A.rank_collapse_depth(seed=1.5), "seed"),
    (lambda: A.qk_gradients(depths=(2, 0)), "depths"),
    (lambda: A.qk_gradients(depths=(2, 4), layer=3), "layer"),
    (lambda: A.qk_gradients(layer="middle"), "layer"),
    (lambda: A.qk_gradients(layer=0), "layer"),
    (lambda: A.qk_gradients(d=-1), "d"),
    (lambda: A.qk_gradients(d=30, n_heads=4), "n_heads"),
    (lambda: A.qk_gradients(dtype=torch.int64), "dtype"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^(every entry of )?{name}\b"):
        call()


@pytest.mark.parametrize("call", [
    lambda: A.path_lengths(spectral_radius=0.9),
    lambda: A.rank_collapse_depth(n_layers=2),
    lambda: A.qk_gradients(depth=2),
])
def test_unknown_keywords_are_errors(call):
    with pytest.raises(TypeError):
        call()
