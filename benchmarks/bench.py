"""The course's performance goals, measured in one run: `python benchmarks/bench.py` prints markdown tables.

1. probe overhead: probes.layer_grad_norms ÷ a plain forward + backward (goal ≤ 1.15), on a 12-layer gradlib
   stack and on a 12-layer Hugging Face GPT-2 of width 256 (benchmarks/bench_probe.py).
2. widget slider step on mlp_explorer: median ms of one Explorer step (compute uncached / cached, update,
   render to PNG), against rebuilding the figure with pyplot on every step (goal: a step ≤ 100 ms).
3. each chapter experiment at its default arguments (seconds; the experiments aim at < 1.5 s).
4. the size of each chapter's kernel-free explorer at its default grid (budget 1.5 MB); skip: --no-static.
5. recording a training History (gradlib.training.train) ÷ a plain torch loop over the same model and data
   (goal ≤ 1.2), with both loops' steps per second (benchmarks/bench_training.py).

Inputs are deterministic (seeded experiments, a fixed sequence of slider values). Timings on a shared
machine are noisy: the load average is printed with them.
"""
from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without `pip install -e .`
sys.path.insert(0, str(HERE))  # bench_probe.py beside this file

from gradlib import experiments, explorers, figures, static, style  # noqa: E402

STEP_GOAL_MS = 100.0
PROBE_GOAL = 1.15
EXPERIMENT_GOAL_S = 1.5
# one slider sweep: every value is new the first time (uncached), seen before the second time (cached)
DEPTHS = [4, 8, 12, 16, 20, 24, 28, 32, 40, 50]


def machine() -> str:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.processor() or platform.machine()}, {cores} usable cores (os.cpu_count {os.cpu_count()}), "
            f"torch {torch.__version__} with {torch.get_num_threads()} threads, Python {platform.python_version()}, "
            f"matplotlib {matplotlib.__version__}, load average {load:.1f}")


def median_ms(values: list[float]) -> float:
    return 1e3 * statistics.median(values)


# --------------------------------------------------------------------------------------- 1. probe overhead
# benchmarks/bench_probe.py measures both models (a gradlib stack and a Hugging Face GPT-2), interleaved.
from bench_probe import hf_probe_overhead, probe_overhead  # noqa: E402
from bench_training import HEADER as TRAINING_HEADER, record_overhead, rows as training_rows  # noqa: E402


# ------------------------------------------------------------------------------------- 2. widget step
class _Steps:
    """mlp_explorer's pipeline without a browser: compute (cached per values), update in place, render."""

    def __init__(self) -> None:
        try:
            self.explorer = explorers.mlp_explorer()
            self.kind = "Explorer (ipywidgets)"
        except ImportError:  # no ipywidgets: the same pieces, driven directly
            self.explorer = None
            self.kind = "compute + profile_view (no ipywidgets)"
            self.view = explorers.profile_view()
            self.cache: dict = {}

    def step(self, depth: int) -> dict[str, float]:
        c0 = time.process_time()
        t0 = time.perf_counter()
        if self.explorer is not None:
            self.explorer.set(depth=depth)
            timings = dict(self.explorer.timings)
        else:
            key = ("tanh", "old", depth)
            cached = key in self.cache
            if not cached:
                self.cache[key] = explorers.mlp_compute(depth=depth)
            t1 = time.perf_counter()
            self.view.update(self.cache[key])
            t2 = time.perf_counter()
            self.view.render()
            t3 = time.perf_counter()
            timings = dict(cached=cached, compute_ms=1e3 * (t1 - t0), update_ms=1e3 * (t2 - t1),
                           render_ms=1e3 * (t3 - t2))
        timings["step_ms"] = 1e3 * (time.perf_counter() - t0)
        timings["cpu_ms"] = 1e3 * (time.process_time() - c0)  # less sensitive to other processes' load
        return timings

    def result(self, depth: int) -> Any:
        return self.explorer.result(**{**self.explorer.values, "depth": depth}) if self.explorer else \
            self.cache[("tanh", "old", depth)]


def widget_step() -> tuple[list[list[str]], str]:
    steps = _Steps()
    uncached = [steps.step(d) for d in DEPTHS]
    cached = [steps.step(d) for d in DEPTHS] + [steps.step(d) for d in DEPTHS]
    assert not any(t["cached"] for t in uncached) and all(t["cached"] for t in cached)

    import matplotlib.pyplot as plt

    view = steps.explorer.view if steps.explorer else steps.view
    w, h = view.figure.get_size_inches()
    dpi = view.figure.dpi

    def rebuild(depth: int) -> tuple[float, float]:  # a naive widget: a new pyplot figure every step
        c0 = time.process_time()
        t0 = time.perf_counter()
        fig, ax = style.subplots(figsize=(w, h), dpi=dpi)
        figures.plot_depth_profiles(steps.result(depth), ax=ax)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return time.perf_counter() - t0, time.process_time() - c0

    rebuilt = [rebuild(d) for d in DEPTHS] + [rebuild(d) for d in DEPTHS]

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    in_place_redraw = statistics.median(r["update_ms"] + r["render_ms"] for r in cached)
    rebuild_ms = median_ms([r[0] for r in rebuilt])
    rebuild_cpu = median_ms([r[1] for r in rebuilt])
    rows = [
        ["slider step, uncached (compute + redraw)", f"{med(uncached, 'step_ms'):.1f}",
         f"{med(uncached, 'cpu_ms'):.1f}",
         f"compute {med(uncached, 'compute_ms'):.1f}, update {med(uncached, 'update_ms'):.1f}, "
         f"render {med(uncached, 'render_ms'):.1f}", _ok(med(uncached, "step_ms") <= STEP_GOAL_MS)],
        ["slider step, cached (redraw only)", f"{med(cached, 'step_ms'):.1f}", f"{med(cached, 'cpu_ms'):.1f}",
         f"compute {med(cached, 'compute_ms'):.2f}, update {med(cached, 'update_ms'):.1f}, "
         f"render {med(cached, 'render_ms'):.1f}", _ok(med(cached, "step_ms") <= STEP_GOAL_MS)],
        ["rebuild with pyplot each step (cached data)", f"{rebuild_ms:.1f}", f"{rebuild_cpu:.1f}",
         f"{rebuild_ms / in_place_redraw:.1f}× the in-place redraw ({in_place_redraw:.1f} ms wall), "
         f"{rebuild_cpu / med(cached, 'cpu_ms'):.1f}× in CPU time", ""],
    ]
    note = (f"{steps.kind}; figure {w:.1f}×{h:.1f} in at {dpi:.0f} dpi; depth swept over {DEPTHS} "
            f"(tanh, old init, width {explorers.MLP_WIDTH}, batch {explorers.MLP_BATCH}); medians")
    return rows, note


OTHER_SWEEPS = {  # control sweeps of the other chapter explorers (each value new once, then cached)
    "path_length_explorer": ("seq_len", [8, 12, 16, 20, 24, 32]),
    "residual_explorer": ("depth", [5, 10, 20, 30, 40, 50]),
    "norm_explorer": ("depth", [2, 4, 8, 12, 16, 24]),
}


def other_explorers() -> list[list[str]]:
    rows = []
    for name, (param, values) in OTHER_SWEEPS.items():
        try:
            explorer = getattr(explorers, name)()
        except ImportError as err:
            rows.append([f"`{name}`", "", "", "", f"skipped: {err}"])
            continue
        values = [v for v in values if v != explorer.values[param]]  # the initial value is cached already
        runs = {}
        for label in ("uncached", "cached"):
            wall, cpu = [], []
            for v in values:
                c0, t0 = time.process_time(), time.perf_counter()
                explorer.set(**{param: v})
                wall.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
                assert explorer.timings["cached"] == (label == "cached")
            runs[label] = (median_ms(wall), median_ms(cpu))
        rows.append([f"`{name}` ({param} over {values})", f"{runs['uncached'][0]:.1f}", f"{runs['uncached'][1]:.1f}",
                     f"{runs['cached'][0]:.1f}", f"{runs['cached'][1]:.1f}"])
    return rows


def _ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


# -------------------------------------------------------------------------------------- 3. experiments
CHAPTER_EXPERIMENTS = [
    ("1", "mlp_gradients"), ("1", "rnn_gradients"), ("2", "path_lengths"), ("2", "rank_collapse_depth"),
    ("2", "qk_gradients"), ("3", "residual_vs_plain"), ("3", "residual_scale_spectrum"),
    ("4", "residual_stream_norms"), ("4", "activation_stats"), ("4", "norm_comparison"), ("4", "pre_post_ln"),
    ("4", "scale_invariant_loss_trap"), ("5", "key_scale_sweep"), ("5", "softmax_saturation"),
    ("5", "logit_growth"), ("6", "depth_sweep"), ("8", "deep_alternatives"), ("8", "placements"),
]


def experiment_times() -> list[list[str]]:
    rows = []
    for chapter, name in CHAPTER_EXPERIMENTS:
        fn: Callable[[], Any] | None = getattr(experiments, name, None)
        if fn is None:
            rows.append([chapter, name, "missing", "", ""])
            continue
        times = []
        for _ in range(2):  # the first call also pays one-off costs (lazy imports, allocator warm-up)
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        rows.append([chapter, f"`{name}()`", f"{times[0]:.2f}", f"{times[1]:.2f}",
                     _ok(times[1] <= EXPERIMENT_GOAL_S)])
    return rows


# -------------------------------------------------------------------------------- 4. static explorers
def static_sizes() -> list[list[str]]:
    rows = []
    for make in (explorers.mlp_explorer, explorers.path_length_explorer, explorers.residual_explorer,
                 explorers.norm_explorer):
        t0 = time.perf_counter()
        try:
            static_explorer = make(static=True)
        except ValueError as err:  # over budget: say so in the table
            rows.append([make.__name__, "", "", str(err), "**no**"])
            continue
        made = static_explorer
        rows.append([f"`{make.__name__}(static=True)`", " × ".join(str(len(v)) for v in made.grid.values())
                     + f" = {made.n_frames} ({made.n_unique} unique)",
                     f"{statistics.mean(made.frame_bytes) / 1e3:.1f}", f"{made.size_bytes / 1e6:.2f}",
                     f"{time.perf_counter() - t0:.1f}", _ok(made.size_bytes <= static.MAX_STATIC_BYTES)])
    return rows


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-static", action="store_true", help="skip rendering the static explorers")
    args = parser.parse_args(argv)

    print("## Gradient Highways benchmarks\n")
    print(f"Machine: {machine()}\n")

    print("### 1. Probe overhead: `probes.layer_grad_norms` ÷ a plain forward + backward of the same loss\n")
    rows = []
    for probe in (probe_overhead(), hf_probe_overhead()):
        extra = "".join(f"; {k} {probe[k]:.3f}" for k in ("ratio_min", "ratio_cpu") if k in probe)
        rows.append([f"{probe['model']}, x {probe['shape']}", f"{1e3 * probe['plain_s']:.1f} ms",
                     f"{1e3 * probe['probe_s']:.1f} ms", f"{probe['ratio']:.3f}{extra}",
                     _ok(probe["ratio"] <= PROBE_GOAL)])
    print(table(["model", "plain", "probe", "ratio", f"≤ {PROBE_GOAL}"], rows))
    print()

    rows, note = widget_step()
    print("### 2. Widget slider step (mlp_explorer)\n")
    print(table(["step", "median wall ms", "median CPU ms", "breakdown (median wall ms)",
                 f"wall ≤ {STEP_GOAL_MS:.0f} ms"], rows))
    print(f"\n({note})\n")
    print(table(["other explorers", "uncached wall ms", "uncached CPU ms", "cached wall ms", "cached CPU ms"],
                other_explorers()))
    print()

    print("### 3. Chapter experiments at default arguments\n")
    print(table(["chapter", "experiment", "first call s", "second call s", f"≤ {EXPERIMENT_GOAL_S} s"],
                experiment_times()))
    print()

    if not args.no_static:
        print("### 4. Kernel-free explorers at their default grids\n")
        print(table(["explorer", "frames", "mean PNG kB", "HTML MB", "build s", "≤ 1.5 MB"], static_sizes()))
        print()
    print("### 5. Recording a training History: `training.train` ÷ a plain torch loop, same model and data\n")
    print(table(TRAINING_HEADER, training_rows(record_overhead())))
    print()
    print(f"Load average at the end: {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "")


if __name__ == "__main__":
    main()
