"""Tests of gradlib.geometry against direct numpy computations and exact cases."""

import numpy as np
import pytest
import torch

from gradlib.geometry import rank_collapse, token_cosine_similarity

F64 = torch.float64


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator(device="cpu").manual_seed(seed), dtype=F64)


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
    assert rank_collapse(torch.zeros(3, 4)) == 0.0  # all-zero H counts as collapsed, not 0/0
    with pytest.raises(ValueError, match="h"):
        rank_collapse(torch.ones(8))


def test_rank_collapse_equals_a_numpy_computation_of_the_formula():
    h = np.random.default_rng(3).normal(size=(3, 7, 5)) * np.array([1.0, 10.0, 0.01])[:, None, None]
    expected = np.mean([np.linalg.norm(hb - hb.mean(axis=0)) / np.linalg.norm(hb) for hb in h])
    assert rank_collapse(h) == pytest.approx(expected, rel=1e-13)  # numpy input works
    assert rank_collapse(torch.from_numpy(h).float()) == pytest.approx(expected, rel=1e-6)  # float32 too
    # r² = 1 − T‖h̄‖² / ‖H‖_F² (Pythagoras: H = 1h̄ᵀ + (H − 1h̄ᵀ), the two parts orthogonal)
    hb = h[0]
    assert rank_collapse(hb) == pytest.approx(np.sqrt(1 - 7 * np.sum(hb.mean(0) ** 2) / np.sum(hb**2)), rel=1e-13)


def test_token_cosine_similarity_is_one_for_parallel_and_minus_one_for_opposite_tokens():
    e1 = torch.tensor([[1.0, 0.0, 0.0]])
    assert token_cosine_similarity(torch.cat([e1, 2 * e1, 5 * e1])) == pytest.approx(1.0)
    assert token_cosine_similarity(torch.cat([e1, -e1])) == pytest.approx(-1.0)
    assert token_cosine_similarity(torch.eye(3)) == pytest.approx(0.0)
    h = _randn(2, 4, 3)
    unit = torch.nn.functional.normalize(h, dim=-1)
    pairs = [float(unit[b, i] @ unit[b, j]) for b in range(2) for i in range(4) for j in range(4) if i != j]
    assert token_cosine_similarity(h) == pytest.approx(np.mean(pairs), rel=1e-12)
    assert token_cosine_similarity(h.numpy()) == pytest.approx(np.mean(pairs), rel=1e-12)
    with pytest.raises(ValueError, match="T >= 2"):
        token_cosine_similarity(e1)


@pytest.mark.parametrize("fn", [rank_collapse, token_cosine_similarity])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_tokens_are_rejected_naming_h(fn, bad):
    h = _randn(2, 4, 3)
    h[1, 2, 0] = bad
    with pytest.raises(ValueError, match=r"h must be finite .* first at index \(1, 2, 0\)"):
        fn(h)
    with pytest.raises(ValueError, match=r"h must be finite"):
        fn(h.numpy())  # the same message for a numpy array


@pytest.mark.parametrize("fn", [rank_collapse, token_cosine_similarity])
def test_non_tensor_input_is_rejected_naming_h(fn):
    with pytest.raises(ValueError, match="h must be a torch.Tensor or numpy array"):
        fn([[1.0, 2.0], [3.0, 4.0]])
