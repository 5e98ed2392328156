"""How much does probes.layer_grad_norms cost over a plain forward + backward?

ratio = median time(layer_grad_norms(model, x)) / median time(model(x) → ⟨y, r⟩ → loss.backward())

Model: a 12-layer, d = 128, 4-head Pre-LN Transformer stack (gradlib's TransformerStack when available,
else 12 independently initialised nn.TransformerEncoderLayer), input (B, T, d) = (8, 64, 128), float32 on
the CPU with torch's default thread count. The two timings are interleaved so that machine noise hits
both alike. Run as a script to print the ratio.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch import nn

from gradlib.probes import layer_grad_norms


def _build_model(n_layers: int, d_model: int, n_heads: int, d_ff: int, seed: int) -> tuple[nn.Module, str]:
    try:
        from gradlib.blocks import TransformerStack
    except ImportError:
        TransformerStack = None
    if TransformerStack is not None:
        model = TransformerStack(n_layers, d_model, n_heads, d_ff, norm="layer", norm_position="pre", seed=seed)
        return model, "gradlib.blocks.TransformerStack (pre-LN, final LayerNorm)"

    class EncoderStack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # each layer built separately: nn.TransformerEncoder(layer, N) would deep-copy ONE layer
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                self.layers = nn.ModuleList(
                    nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout=0.0, batch_first=True, norm_first=True)
                    for _ in range(n_layers)
                )
            self.final_norm = nn.LayerNorm(d_model)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.layers:
                x = layer(x)
            return self.final_norm(x)

    return EncoderStack(), "12 x nn.TransformerEncoderLayer (norm_first, final LayerNorm)"


def probe_overhead(
    repeats: int = 15,
    *,
    warmup: int = 3,
    n_layers: int = 12,
    batch: int = 8,
    seq_len: int = 64,
    d_model: int = 128,
    n_heads: int = 4,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Median time of layer_grad_norms over the median time of a plain forward + loss.backward().

    Args:
        repeats: timed runs of each (interleaved); warmup: untimed runs of each first.
        n_layers, batch, seq_len, d_model, n_heads: the model and input (d_ff = 4·d_model).
        seed: seed of the model and the input.
        threads: None leaves torch's thread count alone; an int sets it for the measurement only (1 gives
            steadier numbers on a machine shared with other jobs).
    Returns:
        dict with probe_s, plain_s (medians in seconds), ratio = probe_s / plain_s, ratio_min (fastest run
        over fastest run), ratio_cpu (median process CPU time over median), model, shape, threads.
    """
    if threads is not None:
        saved_threads = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            return probe_overhead(
                repeats, warmup=warmup, n_layers=n_layers, batch=batch, seq_len=seq_len, d_model=d_model,
                n_heads=n_heads, seed=seed, threads=None,
            )
        finally:
            torch.set_num_threads(saved_threads)
    model, description = _build_model(n_layers, d_model, n_heads, 4 * d_model, seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(batch, seq_len, d_model, generator=gen)  # (B, T, d)
    r = torch.randn(batch, seq_len, d_model, generator=torch.Generator(device="cpu").manual_seed(0))  # (B, T, d)

    def plain() -> None:
        model.zero_grad(set_to_none=True)
        y = model(x)
        (y * r).sum().backward()

    def probe() -> None:
        layer_grad_norms(model, x)

    for _ in range(warmup):
        plain()
        probe()
    plain_times, probe_times, plain_cpu, probe_cpu = [], [], [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        plain()
        t1, c1 = time.perf_counter(), time.process_time()
        probe()
        t2, c2 = time.perf_counter(), time.process_time()
        plain_times.append(t1 - t0)
        probe_times.append(t2 - t1)
        plain_cpu.append(c1 - c0)
        probe_cpu.append(c2 - c1)
    model.zero_grad(set_to_none=True)
    plain_s, probe_s = statistics.median(plain_times), statistics.median(probe_times)
    return {
        "probe_s": probe_s,
        "plain_s": plain_s,
        "ratio": probe_s / plain_s,
        # less sensitive to other processes on a shared machine: fastest runs, and CPU time consumed
        "ratio_min": min(probe_times) / min(plain_times),
        "ratio_cpu": statistics.median(probe_cpu) / statistics.median(plain_cpu),
        "model": description,
        "shape": (batch, seq_len, d_model),
        "n_layers": n_layers,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
    }


if __name__ == "__main__":
    import sys

    # optional argument: the thread count (default: torch's own)
    result = probe_overhead(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(
        f"{result['model']}, x {result['shape']}, {result['threads']} threads: "
        f"plain forward+backward {1e3 * result['plain_s']:.1f} ms, "
        f"layer_grad_norms {1e3 * result['probe_s']:.1f} ms, ratio {result['ratio']:.3f} "
        f"(fastest/fastest {result['ratio_min']:.3f}, CPU time {result['ratio_cpu']:.3f})"
    )
