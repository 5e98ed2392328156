"""gradlib.attention against autograd, gradcheck and F.scaled_dot_product_attention; non-finite inputs refused."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

from gradlib.attention import (
    AttentionResult,
    attention,
    attention_grads,
    score_scale,
    scores_jacobian,
    self_attention,
    softmax_jacobian,
    weights_jacobian,
)

DT = torch.float64
SCALES = ["sqrt_dk", "none", 2.5]


def randn(*shape, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=DT)


def causal(t, s=None):
    return torch.ones(t, t if s is None else s, dtype=torch.bool).tril()


# ---------------------------------------------------------------------------------------------- score_scale
def test_score_scale_is_inverse_sqrt_dk_one_or_inverse_temperature():
    assert score_scale(16) == pytest.approx(0.25)
    assert score_scale(16, "none") == 1.0
    assert score_scale(16, 4.0) == pytest.approx(0.25)
    assert score_scale(7, 2) == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------- attention
def test_attention_steps_are_scores_softmax_then_weights_times_values():
    q, k, v = randn(4, 3, seed=1), randn(5, 3, seed=2), randn(5, 2, seed=3)
    r = attention(q, k, v)
    assert isinstance(r, AttentionResult)
    torch.testing.assert_close(r.scores, q @ k.T / math.sqrt(3))
    torch.testing.assert_close(r.weights.sum(-1), torch.ones(4, dtype=DT))
    torch.testing.assert_close(r.output, r.weights @ v)  # Z = P V


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("use_mask", [False, True])
def test_attention_matches_torch_sdpa(scale, use_mask):
    q, k, v = randn(2, 3, 6, 4, seed=1), randn(2, 3, 6, 4, seed=2), randn(2, 3, 6, 5, seed=3)
    mask = causal(6) if use_mask else None
    sdpa_scale = None if scale == "sqrt_dk" else score_scale(4, scale)  # None = SDPA's own 1/√d_k
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=sdpa_scale)
    got = attention(q, k, v, scale=scale, mask=mask).output
    torch.testing.assert_close(got, expected)


def test_attention_masked_keys_get_exactly_zero_weight():
    q, k, v = randn(5, 3, seed=1), randn(5, 3, seed=2), randn(5, 3, seed=3)
    r = attention(q, k, v, mask=causal(5))
    assert torch.all(r.weights[~causal(5)] == 0)


def test_attention_batched_mask_broadcasts_like_sdpa():
    q, k, v = randn(2, 4, 3, seed=1), randn(2, 6, 3, seed=2), randn(2, 6, 3, seed=3)
    mask = randn(2, 4, 6, seed=4) > -0.3
    mask[..., 0] = True  # every query row keeps at least one key
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(attention(q, k, v, mask=mask).output, expected)


def test_attention_passes_gradcheck_in_float64():
    q = randn(4, 3, seed=1).requires_grad_()
    k = randn(5, 3, seed=2).requires_grad_()
    v = randn(5, 2, seed=3).requires_grad_()
    mask = causal(4, 5)
    assert torch.autograd.gradcheck(lambda q, k, v: attention(q, k, v).output, (q, k, v))
    assert torch.autograd.gradcheck(lambda q, k, v: attention(q, k, v, scale=0.7, mask=mask).output, (q, k, v))


def test_self_attention_projects_x_with_w_q_w_k_w_v():
    x = randn(5, 6, seed=1)
    w_q, w_k, w_v = randn(6, 3, seed=2), randn(6, 3, seed=3), randn(6, 2, seed=4)
    r = self_attention(x, w_q, w_k, w_v, mask=causal(5))
    torch.testing.assert_close(r.q, x @ w_q)
    expected = F.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, attn_mask=causal(5))
    torch.testing.assert_close(r.output, expected)


# ---------------------------------------------------------------------------------------------- Jacobians
def test_softmax_jacobian_matches_autograd():
    a = randn(3, 6, seed=1)
    j = softmax_jacobian(torch.softmax(a, -1))  # (3, 6, 6)
    for i in range(3):
        torch.testing.assert_close(j[i], jacobian(lambda r: torch.softmax(r, -1), a[i]))


def test_softmax_jacobian_rows_sum_to_zero_and_is_symmetric():
    j = softmax_jacobian(torch.softmax(randn(4, 7, seed=2), -1))
    torch.testing.assert_close(j.sum(-1), torch.zeros(4, 7, dtype=DT))
    torch.testing.assert_close(j, j.transpose(-2, -1))


def test_softmax_jacobian_vanishes_as_logits_grow_saturation():
    a = randn(8, seed=3)
    norms = [torch.linalg.matrix_norm(softmax_jacobian(torch.softmax(c * a, -1)), ord=2).item()
             for c in (1.0, 10.0, 100.0, 1000.0)]
    assert all(later < earlier for earlier, later in zip(norms, norms[1:]))
    assert norms[-1] < 1e-12  # p is one-hot to machine precision
    one_hot = torch.zeros(8, dtype=DT)
    one_hot[2] = 1.0
    assert torch.count_nonzero(softmax_jacobian(one_hot)) == 0


@pytest.mark.parametrize("scale", SCALES)
def test_scores_jacobian_matches_autograd(scale):
    q, k = randn(4, 3, seed=1), randn(5, 3, seed=2)
    s = score_scale(3, scale)
    expected = jacobian(lambda q: s * q @ k.T, q)  # (T, S, T, d_k)
    torch.testing.assert_close(scores_jacobian(q, k, scale), expected)
    torch.testing.assert_close(scores_jacobian(4, k, scale), expected)  # only T matters, not q's values


def test_scores_jacobian_is_zero_across_different_query_rows():
    j = scores_jacobian(4, randn(5, 3, seed=2))
    off_diagonal = ~torch.eye(4, dtype=torch.bool)  # l ≠ i
    assert torch.count_nonzero(j.permute(0, 2, 1, 3)[off_diagonal]) == 0


@pytest.mark.parametrize("scale", SCALES)
def test_weights_jacobian_matches_autograd(scale):
    q, k = randn(4, 3, seed=1), randn(5, 3, seed=2)
    full = jacobian(lambda q: attention(q, k, k, scale=scale).weights, q)  # (T, S, T, d_k)
    expected = torch.stack([full[i, :, i, :] for i in range(4)])  # ∂P_i/∂q_i
    torch.testing.assert_close(weights_jacobian(q, k, scale), expected)
    for i in range(4):  # and ∂P_i/∂q_l = 0 for l ≠ i
        others = [l for l in range(4) if l != i]
        assert torch.count_nonzero(full[i][:, others]) == 0


def test_weights_jacobian_with_mask_and_batch_matches_autograd():
    q, k = randn(2, 4, 3, seed=1), randn(2, 4, 3, seed=2)
    mask = causal(4)
    got = weights_jacobian(q, k, mask=mask)  # (2, 4, 4, 3)
    for b in range(2):
        full = jacobian(lambda q: attention(q, k[b], k[b], mask=mask).weights, q[b])
        torch.testing.assert_close(got[b], torch.stack([full[i, :, i, :] for i in range(4)]))


# ---------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("bad", ["foo", "sqrt", -1.0, 0.0, float("inf"), float("nan"), True, None])
def test_bad_scale_raises_value_error_naming_scale(bad):
    q = randn(3, 2)
    with pytest.raises(ValueError, match="scale"):
        attention(q, q, q, scale=bad)
    with pytest.raises(ValueError, match="scale"):
        score_scale(4, bad)


def test_bad_shapes_raise_value_error_naming_the_argument():
    q, k, v = randn(3, 2), randn(4, 2), randn(4, 5)
    with pytest.raises(ValueError, match="q and k"):
        attention(q, randn(4, 3), v)
    with pytest.raises(ValueError, match="k and v"):
        attention(q, k, randn(3, 5))
    with pytest.raises(ValueError, match="q must"):
        attention(randn(3), k, v)
    with pytest.raises(ValueError, match="v must"):
        attention(q, k, [[1.0]])
    with pytest.raises(ValueError, match="k must"):
        attention(q, torch.ones(4, 2, dtype=torch.long), v)
    with pytest.raises(ValueError, match="leading"):
        attention(randn(2, 3, 2), randn(3, 4, 2), randn(3, 4, 5))
    with pytest.raises(ValueError, match="d_k"):
        score_scale(0)
    with pytest.raises(ValueError, match="w_k"):
        self_attention(randn(3, 4), randn(4, 2), randn(5, 2), randn(4, 2))
    with pytest.raises(ValueError, match="k must be unbatched"):
        scores_jacobian(3, randn(2, 4, 2))
    with pytest.raises(ValueError, match="q"):
        scores_jacobian(0, k)


def test_bad_mask_raises_value_error_naming_mask():
    q = randn(3, 2)
    with pytest.raises(ValueError, match="mask must be a bool"):
        attention(q, q, q, mask=torch.ones(3, 3))
    with pytest.raises(ValueError, match="mask of shape"):
        attention(q, q, q, mask=torch.ones(2, 3, dtype=torch.bool))


def test_fully_masked_row_raises_instead_of_returning_nan():
    q = randn(3, 2)
    mask = causal(3)
    mask[1] = False
    with pytest.raises(ValueError, match="mask has a query row with no allowed key"):
        attention(q, q, q, mask=mask)


# ---------------------------------------------------------------------------------------------- non-finite
def _with(t, value, index=(1, 0)):
    """A copy of t with one entry set to `value` (NaN or ±inf)."""
    t = t.clone()
    t[index] = value
    return t


BAD_VALUES = [float("nan"), float("inf"), float("-inf")]


@pytest.mark.parametrize("value", BAD_VALUES, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", ["q", "k", "v"])
def test_attention_refuses_a_non_finite_input_naming_it(name, value):
    args = {"q": randn(3, 2, seed=1), "k": randn(4, 2, seed=2), "v": randn(4, 5, seed=3)}
    args[name] = _with(args[name], value)
    with pytest.raises(ValueError, match=rf"^{name} must be finite \(no NaN or inf\); got 1 non-finite entries, "
                                         r"the first at index \(1, 0\)"):
        attention(**args)


def test_attention_without_the_finite_check_lets_nan_through_as_a_result():
    q, k, v = randn(3, 2, seed=1), randn(4, 2, seed=2), randn(4, 5, seed=3)
    r = attention(_with(q, float("nan")), k, v, check_finite=False)  # what a model's forward does
    assert torch.isnan(r.output[1]).all() and torch.isfinite(r.output[[0, 2]]).all()


@pytest.mark.parametrize("value", BAD_VALUES, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", ["x", "w_q", "w_k", "w_v"])
def test_self_attention_refuses_non_finite_tokens_or_weights_naming_them(name, value):
    args = {"x": randn(5, 4, seed=1), "w_q": randn(4, 3, seed=2), "w_k": randn(4, 3, seed=3),
            "w_v": randn(4, 2, seed=4)}
    args[name] = _with(args[name], value)
    with pytest.raises(ValueError, match=rf"^{name} must be finite"):
        self_attention(args["x"], args["w_q"], args["w_k"], args["w_v"])


@pytest.mark.parametrize("value", BAD_VALUES, ids=["nan", "inf", "-inf"])
def test_softmax_jacobian_refuses_non_finite_probabilities_naming_p(value):
    p = torch.softmax(randn(2, 5, seed=1), -1)
    with pytest.raises(ValueError, match=r"^p must be finite"):
        softmax_jacobian(_with(p, value))


@pytest.mark.parametrize("value", BAD_VALUES, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("name", ["q", "k"])
def test_scores_and_weights_jacobians_refuse_non_finite_queries_or_keys_naming_them(name, value):
    args = {"q": randn(3, 2, seed=1), "k": randn(4, 2, seed=2)}
    args[name] = _with(args[name], value)
    with pytest.raises(ValueError, match=rf"^{name} must be finite"):
        scores_jacobian(args["q"], args["k"])
    with pytest.raises(ValueError, match=rf"^{name} must be finite"):
        weights_jacobian(args["q"], args["k"])


# ------------------------------------------------------------------------------------------ attention_grads
@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("use_mask", [False, True])
def test_attention_grads_equal_autograd(scale, use_mask):
    q, k, v = randn(2, 5, 3, seed=1), randn(2, 6, 3, seed=2), randn(2, 6, 4, seed=3)
    dz = randn(2, 5, 4, seed=4)
    mask = causal(5, 6) if use_mask else None
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    out = F.scaled_dot_product_attention(*leaves, attn_mask=mask,
                                         scale=None if scale == "sqrt_dk" else score_scale(3, scale))
    expected = torch.autograd.grad((out * dz).sum(), leaves)
    for got, truth in zip(attention_grads(q, k, v, dz, scale, mask=mask), expected):
        torch.testing.assert_close(got, truth, rtol=1e-12, atol=1e-14)


def test_attention_grads_refuse_a_grad_output_of_the_wrong_shape():
    q = randn(4, 3)
    with pytest.raises(ValueError, match="grad_output must have the output's shape"):
        attention_grads(q, q, q, randn(4, 2))
    with pytest.raises(ValueError, match="grad_output"):
        attention_grads(q, q, q, torch.full((4, 3), float("nan"), dtype=DT))
