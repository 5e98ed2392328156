"""gradlib.exercises: right answers pass, the classic mistakes get the right plain-English message, no traceback."""

import dataclasses
import re

import numpy as np
import pytest
import torch

from gradlib import draws
from gradlib.exercises import (
    EXERCISES,
    LN_EPS,
    Verdict,
    check,
    check_causal_attention,
    check_layer_jacobian,
    check_layernorm_backward,
    check_residual_jacobian,
    check_softmax_jacobian,
)

NUMBER = r"(-?[0-9.]+(?:e[-+]?[0-9]+)?|nan|inf|-inf)"
WRONG_ENTRY = re.compile(
    rf"^Not yet: on random input (\d+) of (\d+), entry \(([\d, ]+)\) is {NUMBER} but autograd gives {NUMBER} "
    rf"\(largest difference {NUMBER}\)\."
)


# ------------------------------------------------------------------------------ the worked solutions (closed form)
def layer_jacobian(w, h):
    s = 1 - torch.tanh(w @ h) ** 2  # (n,)   tanh' at W h
    return s[:, None] * w  # (n, n)   diag(s) W: row i scaled by s_i


def softmax_jacobian(a):
    p = torch.softmax(a, dim=-1)  # (S,)
    return torch.diag(p) - torch.outer(p, p)  # (S, S)


def residual_jacobian(w, x):
    return torch.eye(x.shape[0], dtype=x.dtype) + layer_jacobian(w, x)  # (n, n)


def causal_attention(x, w_q, w_k, w_v):
    q, k, v = x @ w_q, x @ w_k, x @ w_v  # (T, d_k), (T, d_k), (T, d_v)
    scores = q @ k.T / k.shape[-1] ** 0.5  # (T, T)
    future = torch.ones_like(scores, dtype=torch.bool).triu(1)  # j > i
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1) @ v  # (T, d_v)


def layernorm_backward(x, g):
    mu = x.mean()
    r = 1 / torch.sqrt(((x - mu) ** 2).mean() + LN_EPS)  # 1/√(σ² + ε)
    y = (x - mu) * r  # (d,)
    return (g - g.mean() - y * (g * y).mean()) * r  # (d,)


SOLUTIONS = {"layer_jacobian": layer_jacobian, "softmax_jacobian": softmax_jacobian,
             "residual_jacobian": residual_jacobian, "layernorm_backward": layernorm_backward,
             "causal_attention": causal_attention}


def recorded(fn):
    """fn, keeping a copy of every input it was called with (in .calls)."""
    def wrapper(*args):
        wrapper.calls.append(tuple(a.clone() for a in args))
        return fn(*args)
    wrapper.calls = []
    return wrapper


def on_call(k, fn, then):
    """A function that answers like fn, except on its k-th call (1-based), where it answers like then."""
    count = {"n": 0}

    def answer(*args):
        count["n"] += 1
        return then(*args) if count["n"] == k else fn(*args)
    return answer


# ------------------------------------------------------------------------------------------------- right answers
def test_the_exercises_are_the_chapters_in_order():
    assert list(EXERCISES) == ["layer_jacobian", "causal_attention", "residual_jacobian", "layernorm_backward",
                               "softmax_jacobian"]
    assert EXERCISES["layer_jacobian"] is check_layer_jacobian
    assert EXERCISES["causal_attention"] is check_causal_attention
    for checker in EXERCISES.values():
        assert "You write fn(" in checker.__doc__ and "autograd" not in checker.__doc__.split("\n")[0]


@pytest.mark.parametrize("name", list(EXERCISES))
def test_a_correct_solution_is_right(name):
    verdict = EXERCISES[name](SOLUTIONS[name])
    assert verdict.correct is True and bool(verdict)
    truth = "gradlib.attention" if name == "causal_attention" else "autograd"
    assert verdict.message.startswith(f"Right: your {name} matches {truth} on 5 random inputs (largest difference")
    assert verdict.trials == 5 and 0 <= verdict.largest_difference < 1e-12


@pytest.mark.parametrize("name", list(EXERCISES))
def test_sizes_vary_between_trials_and_stay_small(name):
    answer = recorded(SOLUTIONS[name])
    assert EXERCISES[name](answer, trials=8)
    sizes = [args[-1].shape[0] for args in answer.calls]
    assert len(sizes) == 8 and all(3 <= n <= 6 for n in sizes) and len(set(sizes)) > 1
    assert all(a.dtype == torch.float64 for args in answer.calls for a in args)


def test_answers_as_numpy_arrays_and_lists_are_accepted():
    assert check_layer_jacobian(lambda w, h: layer_jacobian(w, h).numpy())
    assert check_softmax_jacobian(lambda a: softmax_jacobian(a).tolist())
    assert check_residual_jacobian(lambda w, x: [row for row in residual_jacobian(w, x)])  # a list of tensors
    assert check_layernorm_backward(lambda x, g: tuple(float(v) for v in layernorm_backward(x, g)))
    assert check_layer_jacobian(lambda w, h: layer_jacobian(w, h).requires_grad_(True) * 1)  # grad is detached


def test_a_float32_answer_is_told_to_compute_in_float64():
    verdict = check_layer_jacobian(lambda w, h: layer_jacobian(w.float(), h.float()))  # rtol 1e-6 is below float32's
    assert not verdict and verdict.message.endswith(" Your layer_jacobian returned float32: compute in float64, "
                                                    "like the inputs.")
    def in_numpy_float32(w, h):
        w, h = w.numpy().astype(np.float32), h.numpy().astype(np.float32)
        return (1 - np.tanh(w @ h) ** 2)[:, None] * w
    verdict = check_layer_jacobian(in_numpy_float32)
    assert not verdict and verdict.message.endswith("like the inputs.")
    verdict = check_layer_jacobian(lambda w, h: layer_jacobian(w, h).half())
    assert not verdict and verdict.message.endswith("returned float16: compute in float64, like the inputs.")
    assert check(lambda w, h: layer_jacobian(w.float(), h.float()), layer_jacobian, inputs, name="f", rtol=1e-5)


# ------------------------------------------------------------------------------------------------ wrong values
def test_a_transposed_jacobian_is_wrong_and_the_swap_is_named():
    for checker, fn in ((check_layer_jacobian, layer_jacobian), (check_residual_jacobian, residual_jacobian)):
        verdict = checker(lambda *args: fn(*args).T)
        assert verdict.correct is False and not verdict
        assert WRONG_ENTRY.match(verdict.message), verdict.message
        assert "transposed: rows and columns are swapped" in verdict.message


def test_a_missing_diag_elementwise_product_is_wrong():
    verdict = check_layer_jacobian(lambda w, h: (1 - torch.tanh(w @ h) ** 2) * w)  # W diag(s), not diag(s) W
    assert not verdict and WRONG_ENTRY.match(verdict.message), verdict.message
    assert "transposed" not in verdict.message
    verdict = check_residual_jacobian(lambda w, x: 1 + layer_jacobian(w, x))  # 1 everywhere, not I
    assert not verdict and WRONG_ENTRY.match(verdict.message), verdict.message


def test_a_sign_error_is_wrong_and_said_to_be_one():
    verdict = check_layer_jacobian(lambda w, h: -layer_jacobian(w, h))
    assert not verdict and "look for a sign error" in verdict.message
    verdict = check_softmax_jacobian(lambda a: -softmax_jacobian(a))
    assert not verdict and "look for a sign error" in verdict.message
    verdict = check_layer_jacobian(lambda w, h: (1 + torch.tanh(w @ h) ** 2)[:, None] * w)  # 1 + tanh²
    assert not verdict and WRONG_ENTRY.match(verdict.message) and "sign error" not in verdict.message


def test_the_softmax_jacobian_written_as_diag_p_minus_p_is_a_wrong_value_not_a_shape():
    verdict = check_softmax_jacobian(lambda a: torch.diag(torch.softmax(a, -1)) - torch.softmax(a, -1))
    assert not verdict and WRONG_ENTRY.match(verdict.message), verdict.message  # (S, S) − (S,) broadcasts


@pytest.mark.parametrize("wrong", [
    lambda x, g: (g - g.mean()) / torch.sqrt(x.var(unbiased=False) + LN_EPS),  # forgot the −y·mean(g·y) term
    lambda x, g: layernorm_backward(x, g) * torch.sqrt(x.var(unbiased=False) + LN_EPS) ** 2,  # wrong power
    lambda x, g: (g - g.mean() - (x - x.mean()) * (g * x).mean()) / torch.sqrt(x.var() + LN_EPS),
])
def test_typical_layernorm_mistakes_are_wrong(wrong):
    verdict = check_layernorm_backward(wrong)
    assert not verdict and re.match(r"^Not yet: on random input 1 of 5, entry \d+ is ", verdict.message)


def test_the_first_wrong_entry_is_named_with_both_values():
    def off(w, h):  # right on inputs 1 and 3–5; on input 2, entries (2, 0) and (1, 2) are off, (0, 0) barely
        j = layer_jacobian(w, h).clone()
        j[0, 0] += 1e-13  # within atol + rtol·|r|: not a failure
        j[2, 0] += 0.1
        j[1, 2] += 0.25
        return j
    answer = recorded(on_call(2, layer_jacobian, off))
    verdict = check_layer_jacobian(answer)
    match = WRONG_ENTRY.match(verdict.message)
    assert match, verdict.message
    trial, of, entry, a, r, largest = match.groups()
    assert (trial, of, entry) == ("2", "5", "1, 2")  # row-major: (1, 2) comes before (2, 0)
    truth = layer_jacobian(*answer.calls[1])[1, 2].item()
    assert float(r) == pytest.approx(truth, rel=1e-3, abs=1e-4)
    assert float(a) == pytest.approx(truth + 0.25, rel=1e-3, abs=1e-4)
    assert float(largest) == pytest.approx(0.25, rel=0.05)
    assert verdict.largest_difference == pytest.approx(0.25) and verdict.trials == 2
    assert len(answer.calls) == 2  # it stops at the first failing input


def test_close_but_wrong_values_are_shown_with_enough_digits_to_differ():
    def slightly(w, h):
        j = layer_jacobian(w, h).clone()
        j[0, 1] *= 1 + 1e-5
        return j
    verdict = check_layer_jacobian(slightly)
    a, r = WRONG_ENTRY.match(verdict.message).group(4, 5)
    assert a != r and float(a) != float(r)


def test_a_nan_answer_is_called_non_finite_where_the_truth_is_finite():
    verdict = check_layer_jacobian(lambda w, h: layer_jacobian(w, h) * float("nan"))
    assert not verdict
    assert re.match(r"^Not yet: on random input 1 of 5, your layer_jacobian returned nan at entry \(0, 0\), "
                    r"where autograd gives the finite number -?[0-9.e-]+\.$", verdict.message), verdict.message
    assert verdict.largest_difference == float("inf")
    verdict = check_softmax_jacobian(on_call(3, softmax_jacobian, lambda a: softmax_jacobian(a) / 0.0))
    assert not verdict and "on random input 3 of 5" in verdict.message and "returned inf" in verdict.message


# -------------------------------------------------------------------------------------- wrong shapes and types
def test_the_forward_value_instead_of_the_jacobian_is_a_shape_error():
    answer = recorded(lambda w, h: torch.tanh(w @ h))
    verdict = check_layer_jacobian(answer)
    n = answer.calls[0][1].shape[0]
    assert verdict.message == (f"Not yet: your layer_jacobian returned shape ({n},), but the Jacobian here has "
                               f"shape ({n}, {n}).")
    assert verdict.trials == 1 and np.isnan(verdict.largest_difference)
    verdict = check_softmax_jacobian(lambda a: torch.softmax(a, -1) * (1 - torch.softmax(a, -1)))  # only the diagonal
    assert re.match(r"^Not yet: your softmax_jacobian returned shape \((\d),\), but the Jacobian here has "
                    r"shape \(\1, \1\)\.$", verdict.message), verdict.message
    verdict = check_layernorm_backward(lambda x, g: torch.outer(g, x))
    assert "returned shape" in verdict.message and "but dx = ∂L/∂x here has shape" in verdict.message


def test_a_shape_that_only_fits_the_first_size_fails_on_the_input_where_it_stops_fitting():
    sizes = [args[1].shape[0] for args in recorded_calls(check_residual_jacobian, residual_jacobian)]
    first = sizes[0]
    bad = next(t for t, n in enumerate(sizes, 1) if n != first)
    verdict = check_residual_jacobian(lambda w, x: residual_jacobian(w, x)[:first, :first])
    assert verdict.message.endswith(f"here has shape ({sizes[bad - 1]}, {sizes[bad - 1]}) "
                                    f"(on random input {bad} of 5)."), verdict.message


def recorded_calls(checker, solution):
    answer = recorded(solution)
    checker(answer)
    return answer.calls


@pytest.mark.parametrize("result, said", [
    ("J", "a str"), ({"J": 1}, "a dict"), ([[1.0, 2.0], [3.0]], "a list"), ((1.0, "x"), "a tuple"),
    (np.array(["a"]), "a numpy array of <U1"), (torch.ones(2, dtype=torch.cfloat), "a complex64 tensor"),
])
def test_a_result_that_is_not_a_tensor_says_what_came_back(result, said):
    verdict = check_layer_jacobian(lambda w, h: result)
    assert verdict.message == (f"Not yet: your layer_jacobian returned {said}, which cannot be read as a tensor "
                               f"of real numbers: return a torch.Tensor (a numpy array or a nested list of numbers "
                               f"also works).")


def test_returning_nothing_asks_about_the_return():
    def forgot(w, h):
        layer_jacobian(w, h)
    assert check_layer_jacobian(forgot).message == (
        "Not yet: your layer_jacobian returned None: did you forget the return?")


def test_a_non_callable_answer_gets_a_message():
    assert check_layer_jacobian(3).message == (
        "Not yet: layer_jacobian should be a function (def layer_jacobian(w, h): ...); you passed an int. "
        "Pass the function itself (layer_jacobian), not what it returns.")
    assert check_softmax_jacobian(None).message == (
        "Not yet: softmax_jacobian should be a function (def softmax_jacobian(a): ...); you passed None.")
    verdict = check_layernorm_backward(torch.zeros(4))
    assert "you passed a float32 tensor. Pass the function itself" in verdict.message and verdict.trials == 0


def test_an_answer_that_raises_gets_a_message_not_a_traceback():
    verdict = check_layer_jacobian(lambda w, h: 1 / 0)
    assert verdict.message == ("Not yet: your layer_jacobian raised ZeroDivisionError: division by zero "
                               "(on random input 1 of 5).")
    assert verdict.trials == 1 and np.isnan(verdict.largest_difference)
    verdict = check_residual_jacobian(on_call(4, residual_jacobian, lambda w, x: w @ torch.ones(7, dtype=x.dtype)))
    assert verdict.message.startswith("Not yet: your residual_jacobian raised RuntimeError: ")
    assert verdict.message.endswith("(on random input 4 of 5).") and "\n" not in verdict.message

    def silent(a):
        raise KeyError
    assert check_softmax_jacobian(silent).message == ("Not yet: your softmax_jacobian raised KeyError "
                                                      "(on random input 1 of 5).")


def test_the_wrong_number_of_arguments_gets_a_message():
    assert check_layer_jacobian(lambda w: w).message == (
        "Not yet: your layer_jacobian takes (w), but the exercise calls it with 2 arguments: layer_jacobian(w, h).")
    assert check_softmax_jacobian(lambda a, s: a).message == (
        "Not yet: your softmax_jacobian takes (a, s), but the exercise calls it with 1 argument: "
        "softmax_jacobian(a).")
    assert "takes no arguments" in check_layernorm_backward(lambda: 0).message
    assert check_softmax_jacobian(lambda *args: softmax_jacobian(args[0]))  # *args binds
    assert check_softmax_jacobian(lambda a, dim=-1: softmax_jacobian(a))  # an extra default binds


# ----------------------------------------------------------------------------------- inputs: copies, local RNG
def test_the_global_rng_is_untouched():
    state = torch.get_rng_state()
    for name, checker in EXERCISES.items():
        checker(SOLUTIONS[name])
        checker(lambda *args: 1 / 0)
    assert torch.equal(torch.get_rng_state(), state)


def inputs(g):
    return draws.normal((4, 4), 0.5, g), draws.normal((4,), 1.0, g)


def test_an_answer_writing_into_its_arguments_cannot_change_what_the_reference_sees():
    seen = []

    def reference(w, h):
        seen.append((w, h))  # the very tensors the reference got, not copies
        return layer_jacobian(w, h)

    def vandal(w, h):
        j = layer_jacobian(w, h)
        w.zero_()
        h.mul_(7.0)
        return j

    assert check(vandal, reference, inputs, name="layer_jacobian")
    g = draws.generator(0)
    for w, h in seen:
        fresh_w, fresh_h = inputs(g)
        assert torch.equal(w, fresh_w) and torch.equal(h, fresh_h)
    assert check_layer_jacobian(vandal) and check_layernorm_backward(
        lambda x, g: layernorm_backward(x, g).clone() + 0 * x.sub_(x) + 0 * g.mul_(0.0))


def test_the_same_seed_gives_the_same_inputs_and_another_seed_other_inputs():
    runs = {}
    for key, seed in (("a", 0), ("b", 0), ("c", 1)):
        answer = recorded(layer_jacobian)
        check(answer, layer_jacobian, inputs, name="layer_jacobian", seed=seed)
        runs[key] = answer.calls
    assert all(torch.equal(x, y) for cx, cy in zip(runs["a"], runs["b"]) for x, y in zip(cx, cy))
    assert not torch.equal(runs["a"][0][0], runs["c"][0][0])
    wrong = lambda w, h: layer_jacobian(w, h).T  # noqa: E731
    assert check_layer_jacobian(wrong).message == check_layer_jacobian(wrong).message
    assert check_layer_jacobian(wrong).message != check_layer_jacobian(wrong, seed=5).message


# ---------------------------------------------------------------------------------------- check and Verdict
def test_check_counts_trials_and_rejects_bad_arguments_naming_them():
    verdict = check(layer_jacobian, layer_jacobian, inputs, name="f", trials=1)
    assert verdict.message.startswith("Right: your f matches autograd on 1 random input (")
    with pytest.raises(ValueError, match="reference"):
        check(layer_jacobian, 3, inputs, name="f")
    with pytest.raises(ValueError, match="make_inputs"):
        check(layer_jacobian, layer_jacobian, None, name="f")
    with pytest.raises(ValueError, match="make_inputs must return a tuple of tensors"):
        check(layer_jacobian, layer_jacobian, lambda g: (1.0, 2.0), name="f")
    with pytest.raises(ValueError, match="name"):
        check(layer_jacobian, layer_jacobian, inputs, name="my function")
    for kwargs, arg in (({"trials": 0}, "trials"), ({"rtol": -1.0}, "rtol"), ({"atol": float("nan")}, "atol"),
                        ({"seed": 1.5}, "seed")):
        with pytest.raises(ValueError, match=arg):
            check(layer_jacobian, layer_jacobian, inputs, name="f", **kwargs)


def test_tolerances_decide_what_counts_as_close():
    plus = lambda w, h: layer_jacobian(w, h) + 1e-4  # noqa: E731
    assert not check(plus, layer_jacobian, inputs, name="f")
    assert check(plus, layer_jacobian, inputs, name="f", atol=2e-4)


def test_a_verdict_reads_as_its_message_and_shows_a_mark():
    right, wrong = check_layer_jacobian(layer_jacobian), check_layer_jacobian(lambda w, h: 0 * w)
    assert str(right) == right.message and repr(right) == "✔ " + right.message
    assert repr(wrong) == "✘ " + wrong.message and not wrong
    assert "✔ Right:</b>" in right._repr_html_() and "✘ Not yet:</b>" in wrong._repr_html_()
    escaped = Verdict(False, "Not yet: <b>&</b>")._repr_html_()
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in escaped and np.isnan(Verdict(True, "Right: x").largest_difference)
    with pytest.raises(dataclasses.FrozenInstanceError):
        right.correct = False  # type: ignore[misc]


# ------------------------------------------------------------------------------------------ causal attention
def _without_mask(x, w_q, w_k, w_v):
    q, k = x @ w_q, x @ w_k
    return torch.softmax(q @ k.T / k.shape[-1] ** 0.5, dim=-1) @ (x @ w_v)


def _upper_mask(x, w_q, w_k, w_v):  # the mask the wrong way round: each token sees the future
    scores = (x @ w_q) @ (x @ w_k).T / w_k.shape[-1] ** 0.5
    past = torch.ones_like(scores, dtype=torch.bool).tril(-1)
    return torch.softmax(scores.masked_fill(past, float("-inf")), dim=-1) @ (x @ w_v)


def _unscaled(x, w_q, w_k, w_v):
    scores = (x @ w_q) @ (x @ w_k).T
    future = torch.ones_like(scores, dtype=torch.bool).triu(1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1) @ (x @ w_v)


def _softmax_over_queries(x, w_q, w_k, w_v):
    scores = (x @ w_q) @ (x @ w_k).T / w_k.shape[-1] ** 0.5
    future = torch.ones_like(scores, dtype=torch.bool).triu(1)
    return torch.softmax(scores.masked_fill(future, float("-inf")), dim=0) @ (x @ w_v)


@pytest.mark.parametrize("wrong", [_without_mask, _upper_mask, _unscaled, _softmax_over_queries])
def test_typical_attention_mistakes_are_wrong_and_named_against_gradlib_attention(wrong):
    verdict = check_causal_attention(wrong)
    assert not verdict and "but gradlib.attention gives" in verdict.message, verdict.message


def test_the_causal_attention_checker_agrees_with_torch_sdpa():
    # the checker's truth is gradlib.attention; PyTorch's own is_causal attention is an independent one
    def sdpa(x, w_q, w_k, w_v):
        return torch.nn.functional.scaled_dot_product_attention(x @ w_q, x @ w_k, x @ w_v, is_causal=True)

    assert check_causal_attention(sdpa, trials=8)


def test_check_refuses_an_empty_truth_name():
    with pytest.raises(ValueError, match="truth"):
        check(lambda a: a, lambda a: a, lambda g: (torch.zeros(2),), name="f", truth="")
