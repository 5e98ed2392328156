"""gradlib.training.train: a seeded loop on torch.optim that records the highways while learning.

Independent truths: autograd on the same batch (the data stream written out), torch.optim.lr_scheduler's
LinearLR, clip_grad_norm_'s own total norm, and SGD's update θ − lr·g.
"""

import math
import time

import numpy as np
import pytest
import torch
from torch import nn

from gradlib import draws
from gradlib.mlp import DeepMLP
from gradlib.seq_model import SequenceModel
from gradlib.tasks import SequenceTask, TeacherTask
from gradlib.training import History, train


def _mlp(seed=0, **kw):
    return DeepMLP(8, 4, seed=seed, **kw)


def _teacher(batch=16):
    return TeacherTask(n_in=8, n_classes=8, batch=batch, seed=0)


def _same(a: History, b: History) -> None:
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x == y, name


def test_same_seed_same_history_bit_for_bit_and_another_seed_differs():
    task = SequenceTask("reverse", vocab=8, seq_len=6, batch=8)
    runs = [train(SequenceModel(8, 6, 16, 2, 32, 2, seed=1), task, steps=12, lr=1e-2, warmup=4, clip=1.0,
                  record_every=5, seed=s) for s in (3, 3, 4)]
    _same(runs[0], runs[1])
    assert not np.array_equal(runs[0].loss, runs[2].loss)
    np.testing.assert_array_equal(runs[0].record_steps, [0, 5, 10, 11])  # every 5 steps and the last
    assert runs[0].layer_grad_norms.shape == runs[0].stream_grad_norms.shape == (4, 2)
    assert np.isfinite(runs[0].min_entropy).all() and (runs[0].min_entropy <= math.log(6) + 1e-9).all()


def test_a_one_layer_transformer_learns_the_copy_task():
    task = SequenceTask("copy", vocab=8, seq_len=8, batch=16)
    h = train(SequenceModel(8, 8, 32, 2, 64, 1, seed=0), task, steps=120, lr=1e-2, record_every=60)
    assert h.loss[0] > 0.5 * task.chance_loss  # it starts near chance (ln 8 = 2.08)
    assert h.final_loss() < 0.05 and h.accuracy[-1] == 1.0
    assert h.diverged_at is None


def test_a_diverged_run_is_a_result_that_stops_where_the_loss_went_non_finite():
    h = train(_mlp(init="he", activation="relu"), _teacher(), steps=40, optimizer="sgd", lr=1e9, record_every=3)
    assert h.diverged_at is not None and h.diverged_at < 40
    assert not math.isfinite(h.loss[h.diverged_at]) and math.isfinite(h.loss[h.diverged_at - 1])
    assert np.isnan(h.loss[h.diverged_at + 1:]).all() and h.final_loss() == math.inf
    assert len(h.loss) == 40


def test_the_recorded_gradients_and_update_ratios_are_autograds_on_the_same_batch():
    lr, seed, task = 0.3, 5, _teacher()
    model, twin = _mlp(), _mlp()
    h = train(model, task, steps=1, optimizer="sgd", lr=lr, seed=seed)
    x, y = task.batch(torch.Generator().manual_seed(seed + 1_000_003))  # the data stream, written out
    hidden, out = [], x
    for layer in twin.layers:
        out = layer(out)
        out.retain_grad()
        hidden.append(out)
    task.loss(out, y).backward()
    grads = [layer.linear.weight.grad for layer in twin.layers]
    np.testing.assert_allclose(h.layer_grad_norms[0], [float(g.norm()) for g in grads], rtol=1e-5)
    np.testing.assert_allclose(h.stream_grad_norms[0], [float(t.grad.norm()) for t in hidden], rtol=1e-5)
    assert h.grad_norm[0] == pytest.approx(float(torch.stack([g.norm() for g in grads]).norm()), rel=1e-5)
    w1, wl = twin.layers[0].linear.weight, twin.layers[-1].linear.weight
    assert h.update_ratio_first[0] == pytest.approx(lr * float(grads[0].norm() / w1.detach().norm()), rel=1e-4)
    assert h.update_ratio_last[0] == pytest.approx(lr * float(grads[-1].norm() / wl.detach().norm()), rel=1e-4)
    torch.testing.assert_close(model.layers[0].linear.weight, (w1 - lr * grads[0]).detach())


def test_warmup_is_torchs_linear_lr_and_clipping_is_clip_grad_norm():
    model = _mlp()
    h = train(model, _teacher(), steps=8, optimizer="adamw", lr=0.1, warmup=5, clip=1e-3, record_every=100)
    opt = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / 5, total_iters=5)
    expected = []
    for _ in range(8):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(h.lr, expected, rtol=1e-12)
    assert h.lr[0] == pytest.approx(0.02) and h.lr[5] == pytest.approx(0.1)
    # with SGD, a clipped step moves the parameters by at most lr·clip in total
    model = _mlp()
    before = torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()])
    h = train(model, _teacher(), steps=1, optimizer="sgd", lr=1.0, clip=1e-3)
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert h.grad_norm[0] > 1e-3  # the norm before clipping, as clip_grad_norm_ returns it
    assert float((after - before).norm()) == pytest.approx(1e-3, rel=1e-4)


def test_recording_does_not_change_the_training_even_with_sigma_reparam():
    task = SequenceTask("sort", vocab=6, seq_len=5, batch=4)

    def run(every):
        model = SequenceModel(6, 5, 16, 2, 32, 1, implementation="gradlib", sigma_reparam=True, seed=0)
        return train(model, task, steps=6, lr=1e-2, record_every=every)

    np.testing.assert_array_equal(run(1).loss, run(1000).loss)


def test_history_arrays_are_read_only_and_the_global_rng_is_untouched():
    state = torch.get_rng_state()
    h = train(_mlp(), _teacher(), steps=2, optimizer="sgd", lr=0.1)
    assert torch.equal(state, torch.get_rng_state())
    with pytest.raises(ValueError):
        h.loss[0] = 0.0


def _plain_loop(model, task, steps):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)
    g, losses = draws.data_generator(0), []
    for _ in range(steps):
        x, y = task.batch(g)
        loss = task.loss(model(x), y)
        losses.append(float(loss.detach()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return losses


def test_recording_costs_little_against_a_plain_torch_loop():
    # the same model, data and optimizer; the benchmark (benchmarks/bench_training.py) holds it to 1.2x,
    # here a looser bound, as a shared machine's timings are noisy: best of three, interleaved
    task = SequenceTask("reverse", vocab=16, seq_len=16, batch=32)
    make = lambda: SequenceModel(16, 16, 32, 4, 128, 2, seed=0)  # noqa: E731
    plain, ours = [], []
    for _ in range(3):
        t = time.process_time()
        _plain_loop(make(), task, 30)
        plain.append(time.process_time() - t)
        t = time.process_time()
        h = train(make(), task, steps=30, lr=1e-3, record_every=10)
        ours.append(time.process_time() - t)
    np.testing.assert_array_equal(h.loss, _plain_loop(make(), task, 30))  # it is the same training
    assert min(ours) / min(plain) < 1.5


@pytest.mark.parametrize("kwargs, name", [
    (dict(model="mlp"), "model"), (dict(task=object()), "task"), (dict(steps=0), "steps"),
    (dict(optimizer="lion"), "optimizer"), (dict(lr=0.0), "lr"), (dict(lr=float("inf")), "lr"),
    (dict(warmup=-1), "warmup"), (dict(clip=0.0), "clip"), (dict(clip=float("nan")), "clip"),
    (dict(weight_decay=-1.0), "weight_decay"), (dict(momentum=0.9), "momentum"),
    (dict(record_every=0), "record_every"), (dict(seed=1.5), "seed"), (dict(layers=nn.Linear(8, 8)), "layers"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(kwargs, name):
    args = dict(model=_mlp(), task=_teacher(), steps=2) | kwargs
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        train(**args)


def test_unknown_keywords_are_errors():
    with pytest.raises(TypeError):
        train(_mlp(), _teacher(), epochs=3)


from gradlib.training import RunCache  # noqa: E402

CACHE = RunCache()


@CACHE.cached
def _tiny(seed: int, lr: float) -> History:
    return train(_mlp(seed), _teacher(), steps=4, optimizer="sgd", lr=lr, record_every=2, seed=seed)


def test_a_run_cache_trains_once_and_worker_processes_give_the_same_histories_bit_for_bit():
    jobs = [(__name__, "_tiny", (s, 0.1)) for s in (0, 1, 2)]
    CACHE.fill(jobs, workers=2)  # forked workers on Linux
    for _, _, (seed, lr) in jobs:
        _same(_tiny(seed, lr), _tiny.uncached(seed, lr))
        assert _tiny(seed, lr) is _tiny(seed, lr)
        with pytest.raises(ValueError):
            _tiny(seed, lr).loss[0] = 1.0  # read-only, even after the trip through pickle
    with pytest.raises(ValueError, match=r"^workers\b"):
        CACHE.fill(jobs, workers=0)
