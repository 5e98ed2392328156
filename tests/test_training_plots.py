"""gradlib.training_plots: the histories drawn as they are (per seed, medians), one drawing for notebook and explorer."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gradlib.exp_training import LRSweep  # noqa: E402
from gradlib.mlp import DeepMLP  # noqa: E402
from gradlib.tasks import TeacherTask  # noqa: E402
from gradlib.training import Runs, train  # noqa: E402
from gradlib.training_plots import HistoryFigure, plot_history, plot_lr_sweep  # noqa: E402


def _runs():
    task = TeacherTask(n_in=8, n_classes=4, batch=8)
    hs = [[train(DeepMLP(8, 3, seed=s, **kw), task, steps=6, optimizer="sgd", lr=0.1, record_every=2, seed=s)
           for s in (0, 1)] for kw in (dict(), dict(residual=True))]
    return Runs(("plain", "res"), ("plain", "residual"), ("baseline", "residual"), (0, 1),
                tuple(tuple(h) for h in hs), title="tiny")


RUNS = _runs()


def _visible(ax):
    return [ln for ln in ax.lines if ln.get_visible()]


def test_every_seed_is_drawn_thin_and_the_median_bold_with_the_histories_own_numbers():
    ax = plot_history(RUNS, which="loss")
    labels = [ln.get_label() for ln in _visible(ax)]
    assert labels.count("_seed") == 4 and "plain (median of 2 seeds)" in labels
    seed_lines = [ln for ln in _visible(ax) if ln.get_label() == "_seed"]
    np.testing.assert_array_equal(seed_lines[0].get_ydata(), RUNS["plain"][0].loss)
    median = next(ln for ln in _visible(ax) if ln.get_label().startswith("residual"))
    np.testing.assert_allclose(median.get_ydata(), np.median([h.loss for h in RUNS["res"]], axis=0))
    chance = next(ln for ln in _visible(ax) if ln.get_label().startswith("chance"))
    np.testing.assert_allclose(chance.get_ydata(), np.log(4))


def test_layer_ratio_and_update_ratio_are_read_from_the_history():
    ax = plot_history(RUNS, which="layer_ratio", keys=["plain"])
    h = RUNS["plain"][1]
    line = [ln for ln in _visible(ax) if ln.get_label() == "_seed"][1]
    np.testing.assert_allclose(line.get_ydata(), h.stream_grad_norms[:, 0] / h.stream_grad_norms[:, -1])
    np.testing.assert_array_equal(line.get_xdata(), h.record_steps)
    ax = plot_history(RUNS, which="update_first")
    assert ax.get_yscale() == "log"
    ref = next(ln for ln in _visible(ax) if ln.get_label().startswith("rule"))
    np.testing.assert_allclose(ref.get_ydata(), 1e-3)


def test_a_figure_moves_its_lines_instead_of_making_new_ones():
    ax = Figure().add_subplot()
    fig = HistoryFigure(ax, which="loss", minor_ticks=False)
    fig.show(RUNS)
    n = len(ax.lines)
    fig.show(RUNS)
    assert len(ax.lines) == n
    one = Runs(("plain",), ("plain",), ("baseline",), (0, 1), (RUNS["plain"],))
    fig.show(one, title="one")
    assert len(_visible(ax)) == 3 + 1 and ax.get_title() == "one"  # 2 seeds + median + chance


def test_the_sweep_plot_shows_every_run_made_and_skips_those_not_made():
    final = np.array([[[0.1, 0.2], [2.7, 2.7]], [[np.nan, np.nan], [0.05, 0.1]]])
    sweep = LRSweep(("a", "b"), ("A", "B"), ("baseline", "norm"), np.array([1e-3, 1e-2]), (0, 1), final,
                    (1e-3, 1e-2))
    ax = plot_lr_sweep(sweep, trained_below=0.3)
    medians = [ln for ln in ax.lines if ln.get_label().startswith(("A:", "B:"))]
    np.testing.assert_allclose(medians[0].get_ydata(), [0.15, 2.7])
    np.testing.assert_allclose(medians[1].get_ydata(), [0.075])  # the run not made is not drawn
    assert medians[1].get_label() == "B: trains up to 0.01"


@pytest.mark.parametrize("kwargs, name", [(dict(which="accuracy"), "which"), (dict(smooth=0), "smooth"),
                                          (dict(keys=["adam"]), "keys"), (dict(keys=[]), "keys")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        plot_history(RUNS, **kwargs)
