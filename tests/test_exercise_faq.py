"""gradlib.exercise_faq: the DyT-Jacobian checker accepts the right answer, explains wrong ones in words, and the
chapter's worked solution passes it."""

import re
from pathlib import Path

import nbformat
import torch

from gradlib.exercise_faq import EXERCISES, check_dyt_jacobian

NOTEBOOK = Path(__file__).resolve().parent.parent / "book" / "08_closing.ipynb"


def right(x, alpha, gamma):
    return torch.diag(alpha * gamma * (1 - torch.tanh(alpha * x) ** 2))


def test_the_right_jacobian_passes_and_the_verdict_says_so():
    verdict = check_dyt_jacobian(right)
    assert verdict and verdict.message.startswith("Right:") and verdict.trials == 5
    assert verdict.largest_difference < 1e-12


def test_forgetting_alpha_is_shown_at_the_first_wrong_entry():
    verdict = check_dyt_jacobian(lambda x, alpha, gamma: torch.diag(gamma * (1 - torch.tanh(alpha * x) ** 2)))
    assert not verdict and verdict.message.startswith("Not yet:") and "entry (0, 0)" in verdict.message


def test_returning_the_diagonal_only_is_told_as_a_shape_problem():
    verdict = check_dyt_jacobian(lambda x, alpha, gamma: alpha * gamma * (1 - torch.tanh(alpha * x) ** 2))
    assert not verdict and "shape" in verdict.message


def test_a_dense_outer_product_is_wrong_off_the_diagonal_and_errors_come_back_as_words():
    def dense(x, alpha, gamma):
        s = alpha * gamma * (1 - torch.tanh(alpha * x) ** 2)
        return s[:, None] * torch.ones(len(x), len(x), dtype=x.dtype)

    assert not check_dyt_jacobian(dense)
    raised = check_dyt_jacobian(lambda x, alpha, gamma: 1 / 0)
    assert not raised and "ZeroDivisionError" in raised.message
    assert "takes" in check_dyt_jacobian(lambda x: x).message


def test_the_same_seed_gives_the_same_inputs_and_the_registry_names_the_checker():
    assert EXERCISES == {"dyt_jacobian": check_dyt_jacobian}
    assert check_dyt_jacobian(right, seed=3).largest_difference == check_dyt_jacobian(right, seed=3).largest_difference


def test_the_chapters_worked_solution_passes_the_checker():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    blocks = [m.group(1) for c in nb.cells if c.cell_type == "markdown"
              for m in re.finditer(r"```python\n(# exercise: dyt_jacobian\n.*?)```", c.source, re.DOTALL)]
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], "08_closing: dyt_jacobian", "exec"), namespace)  # noqa: S102 (our own text)
    assert check_dyt_jacobian(namespace["dyt_jacobian"])
