"""One torch thread for the body of a `with` block or a decorated function, restored afterwards.

gradlib's models are tiny (widths 16-256): with two or more intra-op threads, OpenMP's start-up and spin-waiting
cost more than the work, 3-30x when other processes share the cores (measured by benchmarks/bench.py). So every
experiment and explorer runs single-threaded, and the caller's thread count is left as it was.

    with one_torch_thread():            # a block
        ...

    @single_threaded                    # a function (experiments.py's index checks every experiment has it)
    def my_experiment(...): ...
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, TypeVar

import torch

__all__ = ["one_torch_thread", "single_threaded"]

F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the body with ``torch.get_num_threads() == 1``; the previous count is restored even on error."""
    threads = torch.get_num_threads()
    if threads != 1:  # set_num_threads is not free: skip it when nested or already single-threaded
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


def single_threaded(fn: F) -> F:
    """Decorate `fn` so that every call runs inside :func:`one_torch_thread` (marks it ``fn.single_threaded``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with one_torch_thread():
            return fn(*args, **kwargs)

    wrapper.single_threaded = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]
