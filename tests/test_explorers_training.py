"""gradlib.explorers_training: the saved histories by position × warm-up × lr, live and kernel-free.

Runs are replaced by tiny ones (monkeypatched ln_run), so the test checks the wiring, not the chapter's numbers.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gradlib import exp_training as E  # noqa: E402
from gradlib import explorers_training as X  # noqa: E402
from gradlib.mlp import DeepMLP  # noqa: E402
from gradlib.static import MAX_STATIC_BYTES  # noqa: E402
from gradlib.tasks import TeacherTask  # noqa: E402
from gradlib.training import train  # noqa: E402

LRS = np.array([5e-3, 3e-2])
FINAL = np.array([[[0.1, 0.1], [2.7, 2.7]], [[np.nan, np.nan], [0.05, 0.2]], [[np.nan, np.nan], [0.0, 0.0]]])
SWEEP = E.LRSweep(tuple(E.LN_VARIANTS), ("Post-LN", "Post-LN + warm-up", "Pre-LN"), ("baseline", "series", "norm"),
                  LRS, (0, 1), FINAL, (5e-3, 3e-2, 3e-2))


@pytest.fixture(autouse=True)
def tiny_runs(monkeypatch):
    def fake(position, warmup, lr, seed, **kw):
        return train(DeepMLP(4, 2, seed=seed), TeacherTask(4, 3, batch=4), steps=4, optimizer="sgd",
                     lr=lr * (2 if position == "pre" else 1), record_every=2, seed=seed)

    monkeypatch.setattr(E, "ln_run", fake)


def test_a_trained_setting_shows_its_seeds_and_one_not_run_says_why():
    frame = X.training_compute("post", False, 5e-3, sweep=SWEEP)
    assert frame.runs is not None and len(frame.runs["post"]) == 2
    finals = frame.runs.final_losses("post")
    verdict = "trains" if (finals < E.TRAINED_BELOW).all() else "fails"  # from the runs shown, not the sweep
    assert f"{verdict} (final loss {finals[0]:.2f}, {finals[1]:.2f})" in frame.title
    frame = X.training_compute("post", True, 5e-3, sweep=SWEEP)
    assert frame.runs is None and "already trains at 0.03" in frame.message
    frame = X.training_compute("pre", True, 3e-2, sweep=SWEEP)
    assert frame.runs is None and "not trained" in frame.message


def test_the_static_twin_has_a_different_picture_for_every_setting_and_fits_the_budget():
    static = X.training_explorer(SWEEP, static=True)
    assert static.n_frames == 2 * 2 * 2 * 2 and static.size_bytes <= MAX_STATIC_BYTES
    # every setting has its own picture, message frames included (they name the setting and the quantity), so
    # moving any one control always changes what the reader sees
    assert static.n_unique == static.n_frames


def test_a_message_frame_names_the_whole_setting_quantity_included():
    a = X.training_compute("pre", True, float(SWEEP.lrs[0]), "loss", sweep=SWEEP)
    b = X.training_compute("pre", True, float(SWEEP.lrs[0]), "layer_ratio", sweep=SWEEP)
    assert a.runs is None and b.runs is None and a.message == b.message
    assert a.title.endswith(": loss") and b.title.endswith(": gradient at layer 1 / layer L")


@pytest.mark.parametrize("kwargs, name", [(dict(position="middle"), "position"), (dict(which="acc"), "which"),
                                          (dict(lr=0.5), "lr")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        X.training_compute(**{"sweep": SWEEP} | kwargs)
