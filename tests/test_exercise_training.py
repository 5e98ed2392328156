"""gradlib.exercise_training: the update-to-data ratio, written by the reader, checked against real SGD steps."""

import numpy as np
import torch

from gradlib.exercise_training import EXERCISES, check_update_ratio


def test_the_right_ratio_passes_as_a_tensor_or_a_float():
    assert check_update_ratio(lambda a, b: torch.linalg.vector_norm(b - a) / torch.linalg.vector_norm(a))
    assert check_update_ratio(lambda a, b: float(np.linalg.norm((b - a).numpy()) / np.linalg.norm(a.numpy())))
    assert EXERCISES["update_ratio"] is check_update_ratio


def test_wrong_answers_are_told_in_plain_words():
    no_division = check_update_ratio(lambda a, b: (b - a).norm())
    assert not no_division and no_division.message.startswith("Not yet:") and "torch.linalg" in no_division.message
    per_column = check_update_ratio(lambda a, b: (b - a).norm(dim=0) / a.norm(dim=0))
    assert not per_column and "shape" in per_column.message
    assert "function" in check_update_ratio(0.001).message
    assert "None" in check_update_ratio(lambda a, b: None).message
    assert "raised" in check_update_ratio(lambda a, b: 1 / 0).message


def test_the_inputs_are_one_real_sgd_step_and_the_same_seed_gives_the_same_inputs():
    seen = []

    def spy(a, b):
        seen.append((a.clone(), b.clone()))
        return torch.linalg.vector_norm(b - a) / torch.linalg.vector_norm(a)

    check_update_ratio(spy, trials=2, seed=3)
    check_update_ratio(spy, trials=2, seed=3)
    for (a1, b1), (a2, b2) in zip(seen[:2], seen[2:]):
        assert torch.equal(a1, a2) and torch.equal(b1, b2)
    for a, b in seen:
        r = float(torch.linalg.vector_norm(b - a) / torch.linalg.vector_norm(a))
        assert 1e-5 < r < 10.0 and a.dtype == torch.float64  # a step moved the weight, by a sane amount
