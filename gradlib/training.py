"""A small, seeded training loop on torch.optim that records how the gradient highways behave while learning.

    step t:   (x, y) = task.batch(g);  ℓ_t = task.loss(model(x), y);  θ ← opt(θ, ∇ℓ_t) at lr·warm-up(t)
    records:  ℓ_t, accuracy_t, lr_t, ‖∇θ‖_t (before clipping), ‖Δθ_1‖/‖θ_1‖ and ‖Δθ_L‖/‖θ_L‖ every step;
              every `record_every` steps: ‖∂ℓ/∂θ_l‖, ‖∂ℓ/∂h_l‖ of every layer l (gradlib.probes.layer_grad_norms)
              and the smallest attention entropy of any head (gradlib.entropy.attention_entropy)

Warm-up is ``torch.optim.lr_scheduler.LinearLR``: factor (1 + t·(W − 1)/W)/W, i.e. 1/W at t = 0 rising linearly
to 1 at t = W. Clipping is ``torch.nn.utils.clip_grad_norm_``. A run whose loss turns inf/NaN has *diverged*:
training stops there and ``History.diverged_at`` says when (never an exception). Batches come from
``gradlib.draws.data_generator(seed)``; with one torch thread (gradlib.threads) the same seed gives the same
History bit for bit on the CPU.

Recording is cheap by construction: the probes run their own forward and ``torch.autograd.grad`` (they never
touch ``.grad``), so they cost one extra forward + backward per recorded step; they and the entropy run in
eval mode, so a recording step leaves σReparam's power iteration (and any running statistics) as training
left them: the training does not depend on how often it is recorded. The entropy re-calls each attention
module on the inputs it received in the probes' forward (gradlib.entropy.recording): no forward of its own.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import importlib
import math
import multiprocessing
import sys
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from gradlib import checks, draws
from gradlib.discovery import LayersArg, find_layers
from gradlib.entropy import attention_modules, recording
from gradlib.probes import layer_grad_norms
from gradlib.threads import one_torch_thread

__all__ = ["OPTIMIZERS", "History", "Runs", "RunCache", "make_optimizer", "warmup_schedule", "train"]

OPTIMIZERS = ("adam", "adamw", "sgd")


@dataclass(frozen=True)
class History:
    """What one training run did, step by step (arrays have one entry per step taken, NaN after a divergence)."""

    loss: np.ndarray  # (S,) training loss ℓ_t of the batch at step t
    accuracy: np.ndarray  # (S,) fraction of correct predictions on that batch
    lr: np.ndarray  # (S,) the learning rate used at step t (after warm-up)
    grad_norm: np.ndarray  # (S,) ‖∇θ ℓ_t‖ over all parameters, before clipping
    update_ratio_first: np.ndarray  # (S,) ‖Δθ_1‖ / ‖θ_1‖ of the first layer's parameters, for the step at t
    update_ratio_last: np.ndarray  # (S,) the same for the last layer
    record_steps: np.ndarray  # (K,) the steps at which the probes ran (before that step's update)
    layer_grad_norms: np.ndarray  # (K, L) ‖∂ℓ/∂θ_l‖ per layer (probes.layer_grad_norms' param_norms)
    stream_grad_norms: np.ndarray  # (K, L) ‖∂ℓ/∂h_l‖ per layer output
    min_entropy: np.ndarray  # (K,) smallest mean attention entropy of any head (NaN without attention)
    layer_names: tuple[str, ...]  # (L,)
    diverged_at: Optional[int]  # the first step with a non-finite loss, else None
    chance_loss: float  # the task's loss of a uniform guess (ln V)

    @property
    def steps(self) -> int:
        """Steps asked for (the length of every per-step array)."""
        return len(self.loss)

    def final_loss(self, last: int = 10) -> float:
        """Mean loss of the last `last` steps; inf if the run diverged."""
        last = checks.positive_int(last, "last")
        return math.inf if self.diverged_at is not None else float(np.mean(self.loss[-last:]))


@dataclass(frozen=True)
class Runs:
    """Histories of several configurations over the same seeds: ``runs["pre"][i]`` was trained with seeds[i]."""

    keys: tuple[str, ...]
    labels: tuple[str, ...]
    roles: tuple[str, ...]
    seeds: tuple[int, ...]
    histories: tuple[tuple[History, ...], ...]  # (K configurations, S seeds)
    title: str = ""

    def __getitem__(self, key: str) -> tuple[History, ...]:
        if key not in self.keys:
            raise KeyError(f"no run {key!r}; the keys are {', '.join(self.keys)}")
        return self.histories[self.keys.index(key)]

    def final_losses(self, key: str, last: int = 10) -> np.ndarray:
        """(S,) mean loss of the last `last` steps of every seed (inf where a run diverged)."""
        return np.array([h.final_loss(last) for h in self[key]])


def _run_job(job: tuple[str, str, tuple]) -> History:
    """A worker process's task: (module, function, args) -> the History of that function's uncached run."""
    module, name, args = job
    return getattr(importlib.import_module(module), name).uncached(*args)


class RunCache:
    """Histories of finished runs kept by (module, function, arguments): a seeded run is trained once.

    ``@cache.cached`` wraps a function of positional, hashable arguments that returns a History; ``fill(jobs,
    workers)`` trains the missing ones of many such calls in `workers` forked processes (Linux; elsewhere in
    this one); every run is single-threaded and gives the same History, bit for bit, as in the caller.
    """

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str, tuple], History] = {}

    def cached(self, fn: Callable[..., History]) -> Callable[..., History]:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> History:
            key = (fn.__module__, fn.__name__, args)
            if key not in self.runs:
                self.runs[key] = fn(*args)
            return self.runs[key]

        wrapper.uncached = fn  # type: ignore[attr-defined]
        return wrapper

    def fill(self, jobs: Sequence[tuple[str, str, tuple]], workers: int = 2) -> None:
        """Train every job (module, function name, args) not cached yet, in `workers` processes (1: here)."""
        todo = [job for job in dict.fromkeys(jobs) if job not in self.runs]
        # fork, as torch's DataLoader workers do on Linux (spawn would re-run a caller's script); elsewhere: here
        if checks.positive_int(workers, "workers") == 1 or len(todo) < 2 or not sys.platform.startswith("linux"):
            done = [_run_job(job) for job in todo]
        else:
            context = multiprocessing.get_context("fork")
            with concurrent.futures.ProcessPoolExecutor(min(workers, len(todo)), mp_context=context) as pool:
                done = list(pool.map(_run_job, todo))
        for job, history in zip(todo, done):
            for a in (history.loss, history.accuracy, history.lr, history.grad_norm, history.update_ratio_first,
                      history.update_ratio_last):
                a.setflags(write=False)  # unpickled arrays come back writable
            self.runs[job] = history


def make_optimizer(params: Any, optimizer: str, lr: float, *, weight_decay: float = 0.0,
                   momentum: float = 0.0) -> torch.optim.Optimizer:
    """torch.optim.Adam / AdamW / SGD over `params` (SGD takes momentum; weight_decay is AdamW's decoupled one)."""
    checks.choice(optimizer, "optimizer", OPTIMIZERS)
    lr = checks.finite(lr, "lr", positive=True)
    weight_decay = checks.finite(weight_decay, "weight_decay", nonnegative=True)
    momentum = checks.finite(momentum, "momentum", nonnegative=True)
    if momentum and optimizer != "sgd":
        raise ValueError(f"momentum must be 0 unless optimizer='sgd'; got momentum={momentum} with {optimizer!r}")
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, foreach=True)
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=True)


def warmup_schedule(opt: torch.optim.Optimizer, warmup: int) -> Optional[torch.optim.lr_scheduler.LRScheduler]:
    """Linear warm-up over `warmup` steps (LinearLR from 1/W to 1), or None for warmup = 0."""
    warmup = checks.integer(warmup, "warmup", minimum=0)
    if warmup == 0:
        return None
    return torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup)


def _flat(tensors: list[Tensor]) -> Tensor:
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _total_norm(grads: list[Tensor]) -> Tensor:
    """‖(g_1, …, g_n)‖₂, the norm clip_grad_norm_ clips (torch's own get_total_norm where it exists)."""
    total = getattr(torch.nn.utils, "get_total_norm", None)
    if total is not None:
        return total(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


def _check_task(task: object) -> None:
    for attr in ("batch", "loss", "accuracy", "chance_loss"):
        if not hasattr(task, attr):
            raise ValueError(f"task must have batch(g), loss, accuracy and chance_loss (see gradlib.tasks); "
                             f"{type(task).__name__} lacks {attr!r}")


def train(model: nn.Module, task: Any, *, steps: int = 200, optimizer: str = "adam", lr: float = 1e-3,
          warmup: int = 0, clip: Optional[float] = None, weight_decay: float = 0.0, momentum: float = 0.0,
          record_every: int = 10, layers: LayersArg = None, seed: int = 0) -> History:
    """Train `model` on `task` for `steps` steps and return its History (the model is trained in place).

    θ_{t+1} = opt(θ_t, clip(∇ℓ_t)) at lr_t = lr · min(1, (1 + t·(W−1)/W)/W); stops at the first inf/NaN loss.

    Args:
        model: any nn.Module, called as model(x) with x from task.batch; its layers are found by
            gradlib.discovery.find_layers (or given as `layers`); the first and last give the update ratios.
        task: a gradlib.tasks task (batch(g) -> (x, y), loss(logits, y), accuracy(logits, y), chance_loss).
        steps: optimizer steps S ≥ 1.
        optimizer: "adam", "adamw" or "sgd"; lr > 0; weight_decay ≥ 0; momentum ≥ 0 (SGD only).
        warmup: W ≥ 0 steps of linear warm-up (0: none).
        clip: max ‖∇θ‖ for clip_grad_norm_, or None for no clipping.
        record_every: run the probes and the entropy every this many steps (and at the last step).
        layers: the layers to probe (default: found in the model).
        seed: seeds the stream of batches (draws.data_generator(seed)); the model brings its own seed.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
    _check_task(task)
    steps = checks.positive_int(steps, "steps")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model must have trainable parameters; it has none that require grad")
    opt = make_optimizer(params, optimizer, lr, weight_decay=weight_decay, momentum=momentum)
    schedule = warmup_schedule(opt, warmup)
    if clip is not None:
        clip = checks.finite(clip, "clip", positive=True)
    record_every = checks.positive_int(record_every, "record_every")
    named = find_layers(model, layers)
    ends = [[p for p in m.parameters() if p.requires_grad] for m in (named[0][1], named[-1][1])]
    has_attention = bool(attention_modules(model))
    g = draws.data_generator(checks.seed(seed))

    nan = np.full(steps, np.nan)
    loss_t, acc_t, lr_t, gn_t, first_t, last_t = (nan.copy() for _ in range(6))
    rec_steps, rec_param, rec_stream, rec_entropy = [], [], [], []
    diverged_at: Optional[int] = None
    with one_torch_thread():
        for step in range(steps):
            x, y = task.batch(g)
            lr_t[step] = opt.param_groups[0]["lr"]
            if step % record_every == 0 or step == steps - 1:
                was_training = model.training
                model.eval()  # recording must not move σReparam's power iteration or running statistics
                try:  # the entropy is read from the probe's own forward (its attention inputs), no extra forward
                    with recording(model) if has_attention else contextlib.nullcontext() as entropy:
                        probe = layer_grad_norms(model, x, loss_fn=lambda out, y=y: task.loss(out, y), layers=layers)
                    rec_entropy.append(entropy().min if has_attention else np.nan)
                finally:
                    model.train(was_training)
                rec_steps.append(step)
                rec_param.append(probe.param_norms)
                rec_stream.append(probe.output_grad_norms)
            logits = model(x)
            loss = task.loss(logits, y)
            loss_t[step] = value = float(loss.detach())
            acc_t[step] = float(task.accuracy(logits.detach(), y))
            if not math.isfinite(value):
                diverged_at = step
                break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grads = [p.grad for p in params if p.grad is not None]
            if clip is not None:
                gn_t[step] = float(torch.nn.utils.clip_grad_norm_(params, clip))
            else:
                gn_t[step] = float(_total_norm(grads))
            before = [_flat(group) for group in ends]  # (n_1,), (n_L,): copies, the step updates in place
            opt.step()
            if schedule is not None:
                schedule.step()
            with torch.no_grad():
                for out, group, old in ((first_t, ends[0], before[0]), (last_t, ends[1], before[1])):
                    out[step] = float(torch.linalg.vector_norm(_flat(group) - old) / torch.linalg.vector_norm(old))
    for a in (loss_t, acc_t, lr_t, gn_t, first_t, last_t):
        a.setflags(write=False)  # a History may be shared (experiments cache runs): nobody may edit it
    return History(loss=loss_t, accuracy=acc_t, lr=lr_t, grad_norm=gn_t, update_ratio_first=first_t,
                   update_ratio_last=last_t, record_steps=np.asarray(rec_steps, dtype=np.int64),
                   layer_grad_norms=np.asarray(rec_param, dtype=np.float64).reshape(len(rec_steps), len(named)),
                   stream_grad_norms=np.asarray(rec_stream, dtype=np.float64).reshape(len(rec_steps), len(named)),
                   min_entropy=np.asarray(rec_entropy, dtype=np.float64), layer_names=tuple(n for n, _ in named),
                   diverged_at=diverged_at, chance_loss=float(task.chance_loss))
