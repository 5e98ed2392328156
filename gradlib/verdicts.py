"""Verdicts: the reader's function against the truth on random inputs, and what went wrong in plain words.

    check(answer, reference, make_inputs, name=…)    answer(*x) against reference(*x), x = make_inputs(g)
        right when, on every trial and at every entry,  |a − r| ≤ atol + rtol·|r|
        wrong: the first failing entry in row-major order is shown, with both values

A Verdict is truthy when the answer is right and reads as one or two plain sentences ("Right: …" or
"Not yet: …"). Nothing the reader passes raises out of a checker: a non-function, a wrong number of
arguments, an exception, a wrong type or shape, a NaN all come back as a Verdict saying what went wrong.
The answer gets copies of the inputs (it may write into them); the inputs come from a local generator seeded
`seed`, never from the global RNG, so the same seed gives the same inputs. The chapters' checkers that use
this are in gradlib.exercises.
"""

from __future__ import annotations

import html
import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

from gradlib import checks, draws

__all__ = ["Verdict", "check"]


@dataclass(frozen=True, repr=False)
class Verdict:
    """What a checker found: right or not, in plain words, and the largest |answer − autograd| it saw."""

    correct: bool
    message: str  # "Right: …" or "Not yet: …", one or two sentences
    largest_difference: float = math.nan  # max |a − r| over the compared entries; NaN when nothing was comparable
    trials: int = 0  # random inputs tried (when wrong, the failing one is the last)

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{'✔' if self.correct else '✘'} {self.message}"

    def _repr_html_(self) -> str:
        colour, mark = ("#1a7f37", "✔") if self.correct else ("#b3261e", "✘")
        head, _, rest = self.message.partition(": ")
        return (f'<div style="border-left: 4px solid {colour}; padding: 0.3em 0.8em; margin: 0.3em 0">'
                f'<b style="color: {colour}">{mark} {html.escape(head)}:</b> {html.escape(rest)}</div>')


# --------------------------------------------------------------------------------------------- wording
def _no(text: str, trials: int = 0, largest: float = math.nan) -> Verdict:
    return Verdict(False, f"Not yet: {text}", largest, trials)


def _a(value: object) -> str:
    """'None', 'an int', 'a complex64 tensor', 'a numpy array of <U1': what came back, in words."""
    if isinstance(value, Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor"
    if isinstance(value, np.ndarray):
        return f"a numpy array of {value.dtype}"
    noun = type(value).__name__
    return "None" if value is None else f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _entry(index: tuple[int, ...]) -> str:
    return "the value" if not index else f"entry {index[0]}" if len(index) == 1 else f"entry {index}"


def _pair(a: float, r: float) -> tuple[str, str]:
    """a and r to 4 significant digits, or as many more as it takes to tell them apart."""
    digits = next((d for d in range(4, 17) if f"{a:.{d}g}" != f"{r:.{d}g}"), 17)
    return f"{a:.{digits}g}", f"{r:.{digits}g}"


def _error(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _arity_problem(answer: Callable, n_args: int, name: str, call: str) -> Optional[str]:
    """A sentence if answer cannot be called with n_args positional arguments, else None."""
    try:
        signature = inspect.signature(answer)
    except (TypeError, ValueError):  # a builtin without a signature: just call it
        return None
    try:
        signature.bind(*range(n_args))
    except TypeError:
        takes = f"({', '.join(signature.parameters)})" if signature.parameters else "no arguments"
        return (f"your {name} takes {takes}, but the exercise calls it with {n_args} "
                f"argument{'s' if n_args != 1 else ''}: {call}.")
    return None


# ------------------------------------------------------------------------------------------- comparing
def _as_tensor(value: object) -> Optional[Tensor]:
    """The answer as a float64 CPU tensor (from a tensor, numpy array, number or nested list), or None."""
    if isinstance(value, Tensor):
        out = value.detach()
    elif isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            return None
        out = torch.from_numpy(value.astype(np.float64))
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        out = torch.tensor(float(value))
    elif isinstance(value, (list, tuple)):
        parts = [_as_tensor(v) for v in value]
        if any(p is None for p in parts) or len({tuple(p.shape) for p in parts}) > 1:  # type: ignore[union-attr]
            return None
        out = torch.stack(parts) if parts else torch.empty(0)  # type: ignore[arg-type]
    else:
        return None
    return None if out.is_complex() else out.to(device="cpu", dtype=torch.float64)


def _close(a: Tensor, r: Tensor, rtol: float, atol: float) -> Tensor:
    """|a − r| ≤ atol + rtol·|r| entry by entry; equal infinities and NaN against NaN count as close."""
    return ((a - r).abs() <= atol + rtol * r.abs()) | (a == r) | (a.isnan() & r.isnan())


def _compare(got: Tensor, truth: Tensor, rtol: float, atol: float, name: str, where: str, by: str = "autograd"
             ) -> tuple[Optional[str], float]:
    """(a sentence saying what is wrong, or None;  max |got − truth| over the entries finite in both)."""
    both = torch.isfinite(got) & torch.isfinite(truth)
    largest = float((got - truth).abs()[both].max()) if bool(both.any()) else 0.0
    broken = ~torch.isfinite(got) & torch.isfinite(truth)
    if bool(broken.any()):
        i = tuple(int(k) for k in broken.nonzero()[0])
        return (f"{where}, your {name} returned {float(got[i])} at {_entry(i)}, where {by} gives the "
                f"finite number {float(truth[i]):.4g}.", math.inf)
    wrong = ~_close(got, truth, rtol, atol)
    if not bool(wrong.any()):
        return None, largest
    largest = math.inf if bool((wrong & ~both).any()) else largest
    i = tuple(int(k) for k in wrong.nonzero()[0])  # nonzero() lists indices in row-major order
    a, r = _pair(float(got[i]), float(truth[i]))
    text = f"{where}, {_entry(i)} is {a} but {by} gives {r} (largest difference {largest:.2g})."
    if got.dim() == 2 and got.shape[0] == got.shape[1] and bool(_close(got, truth.T, rtol, atol).all()):
        text += f" Yours is {by}'s answer transposed: rows and columns are swapped (row i is output i)."
    elif bool(_close(got, -truth, rtol, atol).all()):
        text += f" Yours is exactly minus {by}'s answer: look for a sign error."
    return text, largest


# --------------------------------------------------------------------------------------------- checker
def check(answer: object, reference: Callable[..., Tensor],
          make_inputs: Callable[[torch.Generator], tuple[Tensor, ...]], *, name: str, trials: int = 5,
          rtol: float = 1e-6, atol: float = 1e-9, seed: int = 0, what: str = "the answer",
          truth: str = "autograd") -> Verdict:
    """Compare answer(*x) with reference(*x) on `trials` random inputs x = make_inputs(g), and say how it went.

    Right when every trial has the truth's shape and |a − r| ≤ atol + rtol·|r| at every entry.

    Args:
        answer: the reader's function (anything: a non-function gets a Verdict, not an error).
        reference: the truth, computed with autograd; its parameter names are the ones shown to the reader.
        make_inputs: g -> tuple of float64 tensors, drawn from the torch.Generator g only.
        name: the function's name as the exercise gives it, e.g. "layer_jacobian".
        trials: random inputs to try (>= 1).
        rtol, atol: tolerances (>= 0).
        seed: seeds g = draws.generator(seed): the same seed, the same inputs.
        what: the output in words, for a wrong shape ("the Jacobian" has shape (4, 4)).
        truth: what computes the reference, as the verdict names it ("autograd", "gradlib.attention").
    """
    for arg, value in (("reference", reference), ("make_inputs", make_inputs)):
        if not callable(value):
            raise ValueError(f"{arg} must be a function; got {_a(value)}")
    if not isinstance(truth, str) or not truth.strip():
        raise ValueError(f"truth must name what computes the reference, a non-empty string; got {truth!r}")
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be the function's name, a Python identifier; got {name!r}")
    trials = checks.positive_int(trials, "trials")
    rtol, atol = checks.finite(rtol, "rtol", nonnegative=True), checks.finite(atol, "atol", nonnegative=True)
    g = draws.generator(checks.seed(seed))
    try:
        args = list(inspect.signature(reference).parameters)  # the names the reader sees: (w, h)
    except (TypeError, ValueError):
        args = []
    call = f"{name}({', '.join(args)})"

    if not callable(answer):
        value = isinstance(answer, (Tensor, np.ndarray, numbers.Number, list, tuple))
        hint = f" Pass the function itself ({name}), not what it returns." if value else ""
        return _no(f"{name} should be a function (def {call}: ...); you passed {_a(answer)}.{hint}")
    if args and (arity := _arity_problem(answer, len(args), name, call)):
        return _no(arity)

    largest = 0.0
    for t in range(1, trials + 1):
        where = f"on random input {t} of {trials}"
        inputs = tuple(make_inputs(g))
        if not all(isinstance(x, Tensor) for x in inputs):
            raise ValueError(f"make_inputs must return a tuple of tensors; got {[_a(x) for x in inputs]}")
        expected = reference(*(x.clone() for x in inputs)).detach().to(torch.float64)
        try:
            result = answer(*(x.clone() for x in inputs))  # copies: the answer may write into its arguments
            got = _as_tensor(result)
        except Exception as error:  # the reader's bug, told in words; never re-raised
            return _no(f"your {name} raised {_error(error)} ({where}).", t)
        if result is None:
            return _no(f"your {name} returned None: did you forget the return?", t)
        if got is None:
            return _no(f"your {name} returned {_a(result)}, which cannot be read as a tensor of real numbers: "
                       f"return a torch.Tensor (a numpy array or a nested list of numbers also works).", t)
        if got.shape != expected.shape:
            also = f" ({where})" if t > 1 else ""
            return _no(f"your {name} returned shape {tuple(got.shape)}, but {what} here has shape "
                       f"{tuple(expected.shape)}{also}.", t)
        wrong, difference = _compare(got, expected, rtol, atol, name, where, truth)
        if wrong:
            dtype = str(getattr(result, "dtype", "")).replace("torch.", "")
            if dtype in ("float32", "float16", "bfloat16"):
                wrong += f" Your {name} returned {dtype}: compute in float64, like the inputs."
            return _no(wrong, t, difference)
        largest = max(largest, difference)
    return Verdict(True, f"Right: your {name} matches {truth} on {trials} random input{'s' * (trials > 1)} "
                         f"(largest difference {largest:.2g}).", largest, trials)
