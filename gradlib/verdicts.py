"""Verdicts: the reader's function against the truth on random inputs, and what went wrong in plain words.

    check(answer, reference, make_inputs, name=…)    answer(*x) against reference(*x), x = make_inputs(g)
        right when, on every trial and at every entry,  |a − r| ≤ atol + rtol·|r|
        wrong: the first failing entry in row-major order is shown, with both values

A Verdict is truthy when the answer is right and reads as one or two plain sentences ("Right: …" or
"Not yet: …"), in the current language (gradlib.i18n). Nothing the reader passes raises out of a checker:
a non-function, a wrong number of arguments, an exception, a wrong type or shape, a NaN all come back as a
Verdict saying what went wrong.
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
from gradlib.i18n import _, language

__all__ = ["Verdict", "check", "HEAD_SEPARATORS"]

# What ends a message's head ("Right", "Not yet"), bolded by Verdict._repr_html_: the first of these in the
# message. English uses ": "; a translation may use the full-width colon "：" (no space after it) instead.
HEAD_SEPARATORS: tuple[str, ...] = (": ", "：")


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
        head, colon, rest = _split_head(self.message)
        return (f'<div style="border-left: 4px solid {colour}; padding: 0.3em 0.8em; margin: 0.3em 0">'
                f'<b style="color: {colour}">{mark} {html.escape(head)}{colon}</b>{html.escape(rest)}</div>')


def _split_head(message: str) -> tuple[str, str, str]:
    """("Not yet", ":", " the rest"): message cut after the colon of its first separator (HEAD_SEPARATORS).

    A message without one is all head, shown as "head:" with nothing after it.
    """
    cuts = [(i, sep) for sep in HEAD_SEPARATORS if (i := message.find(sep)) >= 0]
    if not cuts:
        return message, ":", " "
    i, sep = min(cuts)
    colon = sep.rstrip()
    return message[:i], colon, message[i + len(colon):]


# --------------------------------------------------------------------------------------------- wording
def _no(text: str, trials: int = 0, largest: float = math.nan, context: str = "") -> Verdict:
    """A wrong answer: "Not yet: text", or "Not yet (context): text" where the checker names what it compared."""
    if context:
        return Verdict(False, _("Not yet ({context}): {problem}").format(context=context, problem=text),
                       largest, trials)
    return Verdict(False, _("Not yet: {problem}").format(problem=text), largest, trials)


def _a(value: object) -> str:
    """'None', 'an int', 'a complex64 tensor', 'a numpy array of <U1': what came back, in words."""
    if isinstance(value, Tensor):
        return _("a {dtype} tensor").format(dtype=str(value.dtype).replace("torch.", ""))
    if isinstance(value, np.ndarray):
        return _("a numpy array of {dtype}").format(dtype=value.dtype)
    if value is None:
        return "None"
    noun = type(value).__name__
    return (_("an {type}") if noun[:1].lower() in "aeiou" else _("a {type}")).format(type=noun)


def _entry(index: tuple[int, ...]) -> str:
    """'the value' (0-d), 'entry 3' (1-d), 'entry (0, 2)': where in the output, in words."""
    if not index:
        return _("the value")
    return _("entry {index}").format(index=index[0] if len(index) == 1 else str(index))


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
        takes = f"({', '.join(signature.parameters)})" if signature.parameters else _("no arguments")
        if n_args == 1:
            sentence = _("your {name} takes {takes}, but the exercise calls it with {n} argument: {call}.")
        else:
            sentence = _("your {name} takes {takes}, but the exercise calls it with {n} arguments: {call}.")
        return sentence.format(name=name, takes=takes, n=n_args, call=call)
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


def _compare(got: Tensor, truth: Tensor, rtol: float, atol: float, name: str, where: str, by: str = "autograd",
             answer_of: Optional[str] = None) -> tuple[Optional[str], float]:
    """(a sentence saying what is wrong, or None;  max |got − truth| over the entries finite in both).

    by: what "gives" the truth; answer_of: whose "answer" yours is transposed or minus of (default: by).
    """
    answer_of = by if answer_of is None else answer_of
    both = torch.isfinite(got) & torch.isfinite(truth)
    largest = float((got - truth).abs()[both].max()) if bool(both.any()) else 0.0
    broken = ~torch.isfinite(got) & torch.isfinite(truth)
    if bool(broken.any()):
        i = tuple(int(k) for k in broken.nonzero()[0])
        text = _("{where}, your {name} returned {value} at {entry}, where {truth} gives the finite number {number}.")
        return text.format(where=where, name=name, value=str(float(got[i])), entry=_entry(i), truth=by,
                           number=f"{float(truth[i]):.4g}"), math.inf
    wrong = ~_close(got, truth, rtol, atol)
    if not bool(wrong.any()):
        return None, largest
    largest = math.inf if bool((wrong & ~both).any()) else largest
    i = tuple(int(k) for k in wrong.nonzero()[0])  # nonzero() lists indices in row-major order
    a, r = _pair(float(got[i]), float(truth[i]))
    text = _("{where}, {entry} is {answer} but {truth} gives {expected} (largest difference {largest}).").format(
        where=where, entry=_entry(i), answer=a, truth=by, expected=r, largest=f"{largest:.2g}")
    if got.dim() == 2 and got.shape[0] == got.shape[1] and bool(_close(got, truth.T, rtol, atol).all()):
        text = _("{problem} Yours is {truth}'s answer transposed: "
                 "rows and columns are swapped (row i is output i).").format(problem=text, truth=answer_of)
    elif bool(_close(got, -truth, rtol, atol).all()):
        text = _("{problem} Yours is exactly minus {truth}'s answer: look for a sign error.").format(
            problem=text, truth=answer_of)
    return text, largest


# --------------------------------------------------------------------------------------------- checker
def check(answer: object, reference: Callable[..., Tensor],
          make_inputs: Callable[[torch.Generator], tuple[Tensor, ...]], *, name: str, trials: int = 5,
          rtol: float = 1e-6, atol: float = 1e-9, seed: int = 0, what: Optional[str] = None,
          truth: str = "autograd", matches: Optional[str] = None, answer_of: Optional[str] = None,
          context: str = "", low_precision: tuple[str, ...] = ("float32", "float16", "bfloat16")) -> Verdict:
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
        what: the output in words, for a wrong shape ("the Jacobian" has shape (4, 4)); default "the answer".
        truth: what computes the reference, as the verdict names it ("autograd", "gradlib.attention"):
            "… but {truth} gives 0.25".
        matches: what a right answer matches, "Right: your f matches {matches} …" (default: truth).
        answer_of: whose answer a transposed or negated one is, "Yours is {answer_of}'s answer transposed"
            (default: truth).
        context: what was compared, when a checker compares several things: "Not yet ({context}): …".
        low_precision: the dtypes whose answer, when wrong, is told "compute in float64, like the inputs".
        A string with words (what, or a truth like "PyTorch's layer") is passed already translated: _("…").
    """
    for arg, value in (("reference", reference), ("make_inputs", make_inputs)):
        if not callable(value):
            with language("en"):  # a programmer's error: in English, like every ValueError
                kind = _a(value)
            raise ValueError(f"{arg} must be a function; got {kind}")
    for arg, value in (("truth", truth), ("matches", matches), ("answer_of", answer_of)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(f"{arg} must name what computes the reference, a non-empty string; got {value!r}")
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
    what = _("the answer") if what is None else what

    if not callable(answer):
        if isinstance(answer, (Tensor, np.ndarray, numbers.Number, list, tuple)):
            text = _("{name} should be a function (def {call}: ...); you passed {kind}. "
                     "Pass the function itself ({name}), not what it returns.")
        else:
            text = _("{name} should be a function (def {call}: ...); you passed {kind}.")
        return _no(text.format(name=name, call=call, kind=_a(answer)), context=context)
    if args and (arity := _arity_problem(answer, len(args), name, call)):
        return _no(arity, context=context)

    largest = 0.0
    for t in range(1, trials + 1):
        where = _("on random input {t} of {trials}").format(t=t, trials=trials)
        inputs = tuple(make_inputs(g))
        if not all(isinstance(x, Tensor) for x in inputs):
            with language("en"):  # a programmer's error: in English, like every ValueError
                kinds = [_a(x) for x in inputs]
            raise ValueError(f"make_inputs must return a tuple of tensors; got {kinds}")
        expected = reference(*(x.clone() for x in inputs)).detach().to(torch.float64)
        try:
            result = answer(*(x.clone() for x in inputs))  # copies: the answer may write into its arguments
            got = _as_tensor(result)
        except Exception as error:  # the reader's bug, told in words; never re-raised
            text = _("your {name} raised {error} ({where}).")
            return _no(text.format(name=name, error=_error(error), where=where), t, context=context)
        if result is None:
            return _no(_("your {name} returned None: did you forget the return?").format(name=name), t,
                       context=context)
        if got is None:
            text = _("your {name} returned {kind}, which cannot be read as a tensor of real numbers: "
                     "return a torch.Tensor (a numpy array or a nested list of numbers also works).")
            return _no(text.format(name=name, kind=_a(result)), t, context=context)
        if got.shape != expected.shape:
            if t > 1:
                text = _("your {name} returned shape {shape}, but {what} here has shape {expected} ({where}).")
            else:
                text = _("your {name} returned shape {shape}, but {what} here has shape {expected}.")
            return _no(text.format(name=name, shape=str(tuple(got.shape)), what=what,
                                   expected=str(tuple(expected.shape)), where=where), t, context=context)
        wrong, difference = _compare(got, expected, rtol, atol, name, where, truth, answer_of)
        if wrong:
            dtype = str(getattr(result, "dtype", "")).replace("torch.", "")
            if dtype in low_precision:
                wrong = _("{problem} Your {name} returned {dtype}: compute in float64, like the inputs.").format(
                    problem=wrong, name=name, dtype=dtype)
            return _no(wrong, t, difference, context)
        largest = max(largest, difference)
    if trials == 1:
        text = _("Right: your {name} matches {truth} on {trials} random input (largest difference {largest}).")
    else:
        text = _("Right: your {name} matches {truth} on {trials} random inputs (largest difference {largest}).")
    return Verdict(True, text.format(name=name, truth=truth if matches is None else matches, trials=trials,
                                     largest=f"{largest:.2g}"), largest, trials)
