"""gradlib.threads: the body runs on one torch thread, and the caller's count comes back (errors included)."""

import pytest
import torch

from gradlib import experiments
from gradlib.threads import one_torch_thread, single_threaded


@pytest.fixture
def two_threads():
    """The session runs on one thread (conftest); these tests need a caller with two."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_one_torch_thread_runs_the_body_on_one_thread_and_restores_the_callers_count(two_threads):
    with one_torch_thread():
        assert torch.get_num_threads() == 1
        with one_torch_thread():  # nesting keeps one thread and does not restore early
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_one_torch_thread_restores_the_count_when_the_body_raises(two_threads):
    with pytest.raises(RuntimeError, match="boom"), one_torch_thread():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def test_single_threaded_runs_each_call_on_one_thread_and_keeps_name_and_result(two_threads):
    @single_threaded
    def seen(x: int) -> tuple[int, int]:
        """doc"""
        return x, torch.get_num_threads()

    assert seen(3) == (3, 1) and seen(x=4) == (4, 1)
    assert torch.get_num_threads() == 2
    assert seen.__name__ == "seen" and seen.__doc__ == "doc" and seen.single_threaded is True


def test_every_indexed_experiment_runs_single_threaded():
    loose = [name for name in experiments.__all__ if not getattr(getattr(experiments, name), "single_threaded", False)]
    assert not loose, f"experiments without @single_threaded: {loose}"


def test_every_chapters_facts_runs_single_threaded():
    import importlib
    import pkgutil

    import gradlib

    modules = [importlib.import_module(f"gradlib.{name}") for _, name, _ in pkgutil.iter_modules(gradlib.__path__)
               if name.startswith("exp_")]
    loose = [m.__name__ for m in modules if hasattr(m, "facts") and not getattr(m.facts, "single_threaded", False)]
    assert not loose, f"facts() without @single_threaded in {loose}"
