"""How much does probes.layer_grad_norms cost over a plain forward + backward?

ratio = median time(layer_grad_norms(model, x)) / median time(model(x) → ⟨y, r⟩ → loss.backward())

Two models, measured the same way (interleaved repeats, medians; float32 on the CPU with torch's default
thread count unless `threads` is given):

- ``probe_overhead()``: a 12-layer, d = 128, 4-head Pre-LN Transformer stack (gradlib's TransformerStack
  when available, else 12 independently initialised nn.TransformerEncoderLayer), input (B, T, d) = (8, 64, 128).
- ``hf_probe_overhead()``: a 12-layer Hugging Face ``GPT2Model`` (n_embd = 256, 4 heads, random weights
  from a config, nothing downloaded), token ids (B, T) = (8, 64); the probe finds its blocks ``h.0 … h.11``
  itself and uses the projection of ``last_hidden_state``, exactly the plain run's loss.

The two timings are interleaved so that machine noise hits both alike. Run as a script to print the ratios
(optional argument: the thread count).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from gradlib.probes import layer_grad_norms, projection_loss


@contextlib.contextmanager
def _threads(threads: Optional[int]) -> Iterator[None]:
    """torch's thread count set to `threads` for the measurement only (None: left alone)."""
    saved = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def _interleaved(plain: Callable[[], None], probe: Callable[[], None], repeats: int, warmup: int) -> dict[str, Any]:
    """Time plain() and probe() in turn, `repeats` times each after `warmup` untimed runs of each."""
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
    plain_s, probe_s = statistics.median(plain_times), statistics.median(probe_times)
    return {
        "probe_s": probe_s,
        "plain_s": plain_s,
        "ratio": probe_s / plain_s,
        # less sensitive to other processes on a shared machine: fastest runs, and CPU time consumed
        "ratio_min": min(probe_times) / min(plain_times),
        "ratio_cpu": statistics.median(probe_cpu) / statistics.median(plain_cpu),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
    }


def _build_model(n_layers: int, d_model: int, n_heads: int, d_ff: int, seed: int) -> tuple[nn.Module, str]:
    try:
        from gradlib.transformer import TransformerStack
    except ImportError:
        TransformerStack = None
    if TransformerStack is not None:
        model = TransformerStack(n_layers, d_model, n_heads, d_ff, norm="layer", norm_position="pre", seed=seed)
        return model, "gradlib.transformer.TransformerStack (pre-LN, final LayerNorm)"

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
    with _threads(threads):
        model, description = _build_model(n_layers, d_model, n_heads, 4 * d_model, seed)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        x = torch.randn(batch, seq_len, d_model, generator=gen)  # (B, T, d)
        r = torch.randn(batch, seq_len, d_model, generator=torch.Generator(device="cpu").manual_seed(0))

        def plain() -> None:
            model.zero_grad(set_to_none=True)
            y = model(x)
            (y * r).sum().backward()

        result = _interleaved(plain, lambda: layer_grad_norms(model, x), repeats, warmup)
        model.zero_grad(set_to_none=True)
    return {**result, "model": description, "shape": (batch, seq_len, d_model), "n_layers": n_layers}


def hf_probe_overhead(
    repeats: int = 15,
    *,
    warmup: int = 3,
    n_layers: int = 12,
    batch: int = 8,
    seq_len: int = 64,
    d_model: int = 256,
    n_heads: int = 4,
    vocab_size: int = 1024,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """probe_overhead() for a Hugging Face GPT2Model on token ids: layer_grad_norms(gpt2, ids) over plain.

    plain = forward, projection_loss(last_hidden_state) = ⟨y, r⟩ (the probe's default loss), loss.backward().

    Args:
        as probe_overhead; d_model is GPT-2's n_embd, vocab_size the size of its token embedding (small, so
        that the timing is the blocks', not the embedding gradient's that only the plain run computes).
    Returns:
        dict as probe_overhead's, shape = (B, T) of the token ids, plus the probe's loss_source.
    """
    import transformers  # imported here: probe_overhead() runs without it

    with _threads(threads):
        config = transformers.GPT2Config(
            n_layer=n_layers, n_embd=d_model, n_head=n_heads, n_positions=seq_len, vocab_size=vocab_size,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = transformers.GPT2Model(config).eval()
        gen = torch.Generator(device="cpu").manual_seed(seed)
        ids = torch.randint(0, vocab_size, (batch, seq_len), generator=gen)  # (B, T) token ids

        def plain() -> None:
            model.zero_grad(set_to_none=True)
            y = model(ids).last_hidden_state  # (B, T, d)
            projection_loss(y).backward()  # the probe's own default loss, so both compute the same thing

        source = layer_grad_norms(model, ids).loss_source
        result = _interleaved(plain, lambda: layer_grad_norms(model, ids), repeats, warmup)
        model.zero_grad(set_to_none=True)
    description = (
        f"transformers.GPT2Model ({n_layers} layers, n_embd {d_model}, {n_heads} heads, vocab {vocab_size}, "
        f"{config._attn_implementation} attention, eval)"
    )
    return {**result, "model": description, "shape": (batch, seq_len), "n_layers": n_layers, "loss_source": source}


def _line(result: dict[str, Any]) -> str:
    return (
        f"{result['model']}, x {result['shape']}, {result['threads']} threads: "
        f"plain forward+backward {1e3 * result['plain_s']:.1f} ms, "
        f"layer_grad_norms {1e3 * result['probe_s']:.1f} ms, ratio {result['ratio']:.3f} "
        f"(fastest/fastest {result['ratio_min']:.3f}, CPU time {result['ratio_cpu']:.3f})"
    )


if __name__ == "__main__":
    import sys

    threads = int(sys.argv[1]) if len(sys.argv) > 1 else None
    print(_line(probe_overhead(threads=threads)))
    print(_line(hf_probe_overhead(threads=threads)))
