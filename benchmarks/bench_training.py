"""What does recording a History cost over a plain torch training loop on the same model and data?

ratio = time(gradlib.training.train(model, task, record_every=10)) / time(the plain loop below)

The plain loop is what one writes without gradlib: draw a batch, forward, cross-entropy, loss.item(),
zero_grad, backward, Adam step — the same optimizer (torch.optim.Adam, foreach), the same batches
(gradlib.draws.data_generator(seed)), one torch thread. train() adds, every step, accuracy, ‖∇θ‖, and the
first/last-layer update ratios; every 10th step the probes' per-layer gradients (an extra forward and
backward) and the attention entropy (an extra forward). Both loops train the same weights to the same
losses (checked), measured interleaved, best and median of `repeats` (CPU time: the machine is shared).
Run as a script to print the table; benchmarks/bench.py prints it as section 5. Goal: ratio ≤ 1.2.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from gradlib import draws  # noqa: E402
from gradlib.seq_model import SequenceModel  # noqa: E402
from gradlib.tasks import SequenceTask  # noqa: E402
from gradlib.threads import one_torch_thread  # noqa: E402
from gradlib.training import train  # noqa: E402

RECORD_GOAL = 1.2
STEPS, RECORD_EVERY, LR = 60, 20, 1e-3  # as gradlib.exp_training.RECORD_EVERY


def _model() -> SequenceModel:
    # the chapter's Post-LN/Pre-LN model (gradlib.exp_training's LN_* settings)
    return SequenceModel(16, 16, 32, 4, 128, 3, norm_position="post", seed=0)


def plain_loop(model: torch.nn.Module, task: SequenceTask, steps: int = STEPS, seed: int = 0) -> list[float]:
    """The loop without gradlib: same optimizer, same batches, the loss of every step as a Python float."""
    opt = torch.optim.Adam(model.parameters(), lr=LR, foreach=True)
    g, losses = draws.data_generator(seed), []
    for _ in range(steps):
        x, y = task.batch(g)
        loss = task.loss(model(x), y)
        losses.append(loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return losses


def record_overhead(repeats: int = 5) -> dict[str, Any]:
    """Time plain_loop and train side by side, interleaved; ratio of medians (and of minima), steps per second."""
    task = SequenceTask("reverse", vocab=16, seq_len=16, batch=32)
    plain_t, train_t = [], []
    with one_torch_thread():
        plain_loop(_model(), task, 5)  # warm-up: lazy imports and allocator
        train(_model(), task, steps=5, lr=LR)
        for _ in range(repeats):
            c0 = time.process_time()
            losses = plain_loop(_model(), task)
            c1 = time.process_time()
            history = train(_model(), task, steps=STEPS, lr=LR, record_every=RECORD_EVERY)
            c2 = time.process_time()
            plain_t.append(c1 - c0)
            train_t.append(c2 - c1)
    same = bool(np.array_equal(np.asarray(losses), history.loss))
    plain_s, train_s = statistics.median(plain_t), statistics.median(train_t)
    return {"model": "3 nn.TransformerEncoderLayer (d 32, 4 heads), reverse 16 tokens, batch 32",
            "steps": STEPS, "record_every": RECORD_EVERY, "plain_s": plain_s, "train_s": train_s,
            "ratio": train_s / plain_s, "ratio_min": min(train_t) / min(plain_t),
            "plain_steps_per_s": STEPS / plain_s, "train_steps_per_s": STEPS / train_s, "same_losses": same}


def rows(result: dict[str, Any]) -> list[list[str]]:
    ok = "yes" if result["ratio"] <= RECORD_GOAL else "**no**"
    return [[f"{result['model']}, {result['steps']} steps, probes every {result['record_every']}",
             f"{result['plain_steps_per_s']:.0f}", f"{result['train_steps_per_s']:.0f}",
             f"{result['ratio']:.3f} (best of runs {result['ratio_min']:.3f})",
             "yes" if result["same_losses"] else "**no**", ok]]


HEADER = ["model", "plain steps/s", "train() steps/s", "ratio (median CPU)", "same losses", f"≤ {RECORD_GOAL}"]

if __name__ == "__main__":
    result = record_overhead()
    print(" | ".join(HEADER))
    for row in rows(result):
        print(" | ".join(row))
