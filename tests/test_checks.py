"""gradlib.checks: each check returns a good value in plain form and rejects a bad one with a ValueError that
names the argument and what is allowed. bool is never a number; NaN and ±inf are never finite."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradlib import checks

NAN, INF = float("nan"), float("inf")


# ------------------------------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("value", [1, 7, np.int64(3), torch.tensor(2).item()])
def test_positive_int_accepts_and_returns_a_plain_int(value):
    got = checks.positive_int(value, "width")
    assert got == int(value) and type(got) is int


@pytest.mark.parametrize("value", [0, -3, 2.0, "4", None, True, False, np.bool_(True)])
def test_positive_int_rejects_naming_the_argument(value):
    with pytest.raises(ValueError, match=r"width must be an integer >= 1; got"):
        checks.positive_int(value, "width")


def test_integer_minimum_is_optional_and_inclusive():
    assert checks.integer(-5, "offset") == -5
    assert checks.integer(2, "n_tokens", minimum=2) == 2
    with pytest.raises(ValueError, match=r"n_tokens must be an integer >= 2; got 1"):
        checks.integer(1, "n_tokens", minimum=2)
    with pytest.raises(ValueError, match=r"offset must be an integer; got 1\.5"):
        checks.integer(1.5, "offset")
    with pytest.raises(ValueError, match="offset"):
        checks.integer(True, "offset")


def test_seed_takes_any_integer_but_not_a_bool_or_float():
    assert checks.seed(0) == 0 and checks.seed(-1) == -1 and checks.seed(np.int32(5)) == 5
    for bad in (True, 1.5, "0", None):
        with pytest.raises(ValueError, match="seed must be an integer"):
            checks.seed(bad)
    with pytest.raises(ValueError, match="data_seed"):
        checks.seed(0.5, "data_seed")


@pytest.mark.parametrize("value", [0.0, -2.5, 3, np.float32(1.5), 10**6])
def test_finite_accepts_real_numbers_and_returns_a_float(value):
    got = checks.finite(value, "skip_scale")
    assert got == float(value) and type(got) is float


@pytest.mark.parametrize("value", [NAN, INF, -INF, np.float64("nan"), "1", None, True, 1 + 2j])
def test_finite_rejects_nan_inf_bools_and_non_numbers(value):
    with pytest.raises(ValueError, match=r"skip_scale must be a finite number; got"):
        checks.finite(value, "skip_scale")


def test_finite_bounds_say_what_is_allowed():
    assert checks.finite(0.0, "alpha", nonnegative=True) == 0.0
    assert checks.finite(1e-9, "eps", positive=True) == 1e-9
    with pytest.raises(ValueError, match=r"alpha must be a finite number >= 0; got -0\.1"):
        checks.finite(-0.1, "alpha", nonnegative=True)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0; got 0\.0"):
        checks.finite(0.0, "eps", positive=True)
    with pytest.raises(ValueError, match=r"eps must be a finite number > 0; got inf"):
        checks.finite(INF, "eps", positive=True)


# ------------------------------------------------------------------------------------------- flags, names
def test_boolean_accepts_only_true_and_false():
    assert checks.boolean(True, "residual") is True and checks.boolean(False, "residual") is False
    for bad in (0, 1, "yes", None, np.bool_(True)):
        with pytest.raises(ValueError, match=r"residual must be True or False; got"):
            checks.boolean(bad, "residual")


def test_choice_accepts_an_allowed_string_and_lists_the_allowed_ones():
    assert checks.choice("rms", "norm", ("layer", "rms")) == "rms"
    for bad in ("group", "", None, 1, ("layer",)):
        with pytest.raises(ValueError, match=r"norm must be one of 'layer', 'rms'; got"):
            checks.choice(bad, "norm", ("layer", "rms"))


# ------------------------------------------------------------------------------------------------- torch
def test_floating_dtype_accepts_any_floating_dtype_by_default():
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        assert checks.floating_dtype(dtype) is dtype
    for bad in (torch.int64, torch.bool, "float32", float, None):
        with pytest.raises(ValueError, match=r"dtype must be a floating-point torch\.dtype"):
            checks.floating_dtype(bad)


def test_floating_dtype_with_allowed_names_them():
    allowed = (torch.float32, torch.float64)
    assert checks.floating_dtype(torch.float64, allowed=allowed) is torch.float64
    for bad in (torch.float16, torch.int32, "float64"):
        with pytest.raises(ValueError, match=r"dtype must be torch\.float32 or torch\.float64; got"):
            checks.floating_dtype(bad, allowed=allowed)
    with pytest.raises(ValueError, match=r"param_dtype must be torch\.float64; got"):
        checks.floating_dtype(torch.float32, "param_dtype", allowed=(torch.float64,))


def test_device_returns_a_torch_device():
    assert checks.device("cpu") == torch.device("cpu")
    assert checks.device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("nowhere", 1.5, None):
        with pytest.raises(ValueError, match=r"device must be a torch device or its name"):
            checks.device(bad)


def test_generator_accepts_a_generator_or_none():
    g = torch.Generator()
    assert checks.generator(g) is g and checks.generator(None) is None
    with pytest.raises(ValueError, match=r"generator must be a torch\.Generator or None; got int"):
        checks.generator(0)


def test_tensor_checks_type_dimensions_and_floating_dtype():
    x = torch.zeros(2, 3)
    assert checks.tensor(x, "x") is x
    assert checks.tensor(x, "x", min_dim=2, floating=True) is x
    with pytest.raises(ValueError, match=r"x must be a torch\.Tensor; got ndarray"):
        checks.tensor(np.zeros((2, 3)), "x")
    with pytest.raises(ValueError, match=r"q must have at least 2 dimensions; got shape \(3,\)"):
        checks.tensor(torch.zeros(3), "q", min_dim=2)
    with pytest.raises(ValueError, match=r"k must be a floating-point tensor; got dtype torch\.int64"):
        checks.tensor(torch.zeros(2, 2, dtype=torch.long), "k", floating=True)


# ---------------------------------------------------------------------------------------------- sequences
def test_sequence_accepts_non_empty_lists_tuples_arrays():
    assert checks.sequence((1, 2), "depths") == [1, 2]
    assert checks.sequence(np.array([0.5]), "alphas") == [0.5]
    for bad in ([], (), "abc", b"ab", 3, None, {1, 2}):
        with pytest.raises(ValueError, match=r"depths must be a non-empty sequence"):
            checks.sequence(bad, "depths")


def test_int_list_checks_every_entry():
    got = checks.int_list((1, np.int64(4)), "depths")
    assert got == [1, 4] and all(type(v) is int for v in got)
    assert checks.int_list([0, 3], "seeds", minimum=0) == [0, 3]
    for bad in ((2, 0), (2, 1.0), (True, 2), (2, "3")):
        with pytest.raises(ValueError, match=r"every entry of depths must be an integer >= 1; got"):
            checks.int_list(bad, "depths")
    with pytest.raises(ValueError, match=r"seeds must be a non-empty sequence"):
        checks.int_list([], "seeds", minimum=0)


def test_float_list_checks_every_entry_is_finite_and_in_bounds():
    got = checks.float_list((0, 0.5, np.float32(2)), "alphas", nonnegative=True)
    assert got == [0.0, 0.5, 2.0] and all(type(v) is float for v in got)
    assert checks.float_list([-1.0], "shifts") == [-1.0]
    for bad in ((1.0, NAN), (INF,), (1.0, True), ("1",)):
        with pytest.raises(ValueError, match=r"every entry of shifts must be a finite number; got"):
            checks.float_list(bad, "shifts")
    with pytest.raises(ValueError, match=r"every entry of alphas must be a finite number >= 0; got -0\.1"):
        checks.float_list((1.0, -0.1), "alphas", nonnegative=True)
    with pytest.raises(ValueError, match=r"every entry of radii must be a finite number > 0; got 0"):
        checks.float_list((0.9, 0), "radii", positive=True)


# ------------------------------------------------------------------------------------------------ shapes
def test_heads_returns_two_ints_with_n_heads_dividing_the_width():
    assert checks.heads(8, 2) == (8, 2)
    assert checks.heads(np.int64(6), 3, d_name="d") == (6, 3)
    with pytest.raises(ValueError, match=r"n_heads must divide d_model; got d_model=6, n_heads=4"):
        checks.heads(6, 4)
    with pytest.raises(ValueError, match=r"n_heads must divide d; got d=30, n_heads=4"):
        checks.heads(30, 4, d_name="d")
    with pytest.raises(ValueError, match=r"d_model must be an integer >= 1"):
        checks.heads(0, 1)
    with pytest.raises(ValueError, match=r"n_heads must be an integer >= 1"):
        checks.heads(8, True)
    with pytest.raises(ValueError, match=r"d must be an integer >= 1"):
        checks.heads(8.0, 2, d_name="d")


def test_every_check_raises_value_error_not_type_error():
    # the one exception type the course promises for bad arguments, whatever the bad value is
    calls = [
        lambda: checks.positive_int(object(), "n"),
        lambda: checks.finite(object(), "a"),
        lambda: checks.finite(math.nan, "a", positive=True),
        lambda: checks.choice(["layer"], "norm", ("layer",)),
        lambda: checks.floating_dtype(object()),
        lambda: checks.device(object()),
        lambda: checks.tensor(object(), "x"),
        lambda: checks.int_list(object(), "ns"),
        lambda: checks.float_list([object()], "xs"),
        lambda: checks.heads("8", 2),
    ]
    for call in calls:
        with pytest.raises(ValueError):
            call()
