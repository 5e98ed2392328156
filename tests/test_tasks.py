"""gradlib.tasks: copy / reverse / sort and the linear teacher, drawn from a local generator.

Independent truths: Python's own list reversal and sorted(), numpy's argmax of x·W*ᵀ, and cross-entropy
written out as −log softmax by hand.
"""

import math

import numpy as np
import pytest
import torch

from gradlib.tasks import SEQUENCE_TASKS, SequenceTask, TeacherTask


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("task, answer", [("copy", lambda s: s), ("reverse", lambda s: s[::-1]),
                                          ("sort", sorted)])
def test_sequence_targets_are_the_python_answer(task, answer):
    x, y = SequenceTask(task, vocab=5, seq_len=7, batch=4).batch(_g())
    assert x.shape == y.shape == (4, 7) and x.dtype == y.dtype == torch.int64
    assert 0 <= int(x.min()) and int(x.max()) < 5
    for row_x, row_y in zip(x.tolist(), y.tolist()):
        assert row_y == list(answer(row_x))


def test_the_same_generator_state_gives_the_same_batch_and_the_global_rng_is_untouched():
    state = torch.get_rng_state()
    a = SequenceTask("sort").batch(_g(3))
    b = SequenceTask("sort").batch(_g(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], SequenceTask("sort").batch(_g(4))[0])
    assert torch.equal(state, torch.get_rng_state())


def test_teacher_labels_are_the_argmax_of_the_teacher_and_every_class_occurs():
    task = TeacherTask(n_in=8, n_classes=4, batch=512, seed=1)
    x, y = task.batch(_g())
    expected = np.argmax(x.double().numpy() @ task.teacher.numpy().T, axis=1)
    np.testing.assert_array_equal(y.numpy(), expected)
    assert set(y.tolist()) == {0, 1, 2, 3}  # symmetric teacher: no class missing
    assert task.chance_loss == pytest.approx(math.log(4))


def test_loss_is_cross_entropy_written_out_and_accuracy_counts_matches():
    task = SequenceTask("copy", vocab=3, seq_len=2, batch=1)
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]])
    targets = torch.tensor([[0, 2]])
    by_hand = -(torch.log_softmax(logits, -1)[0, 0, 0] + torch.log_softmax(logits, -1)[0, 1, 2]) / 2
    assert float(task.loss(logits, targets)) == pytest.approx(float(by_hand))
    assert float(task.accuracy(logits, targets)) == 0.5
    assert task.chance_loss == pytest.approx(math.log(3))
    # the uniform guess scores exactly the chance loss
    assert float(task.loss(torch.zeros(1, 2, 3), targets)) == pytest.approx(math.log(3))


@pytest.mark.parametrize("call, name", [
    (lambda: SequenceTask("shuffle"), "task"),
    (lambda: SequenceTask(vocab=1), "vocab"),
    (lambda: SequenceTask(seq_len=0), "seq_len"),
    (lambda: SequenceTask(batch=0), "batch"),
    (lambda: SequenceTask().batch(None), "g"),
    (lambda: TeacherTask(n_in=0), "n_in"),
    (lambda: TeacherTask(n_classes=1), "n_classes"),
    (lambda: TeacherTask(batch=-1), "batch"),
    (lambda: TeacherTask(seed=0.5), "seed"),
    (lambda: TeacherTask(dtype=torch.int32), "dtype"),
    (lambda: TeacherTask().batch(3), "g"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


def test_unknown_keywords_are_errors():
    with pytest.raises(TypeError):
        SequenceTask("copy", vocabulary=3)
    with pytest.raises(TypeError):
        TeacherTask(classes=3)
    assert SEQUENCE_TASKS == ("copy", "reverse", "sort")
