"""Chapter 4's experiments, part 1 — highway 3, normalization: what a norm does (exp_placement: where it stands).

    activation_stats           post-norm N(x + f(x)) resets every block to std ≈ 1; without N the std compounds
    norm_comparison            LN/RMS look at one token; BatchNorm's output depends on the batch (size 1, padding, mode)
    scale_invariant_loss_trap  mean(LN(x)²) ≈ 1 for every x, so its gradient ≈ 0: a probe needs ⟨y, r⟩

Measured through gradlib.probes; results are gradlib.results types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from gradlib import checks, draws
from gradlib.i18n import N_, _
from gradlib.norms import LayerNorm, RMSNorm, TokenBatchNorm
from gradlib.probes import layer_stats, projection_loss
from gradlib.results import CurveSet, curve
from gradlib.threads import single_threaded
from gradlib.transformer import TransformerStack

__all__ = ["NORM_NAMES", "NORM_TESTS", "ActivationStats", "NormComparison", "LossTrap", "activation_stats",
           "norm_comparison", "scale_invariant_loss_trap"]

Device = Union[str, torch.device]
NORM_NAMES = {"none": N_("no norm"), "layer": "LayerNorm", "rms": "RMSNorm", "batch": "BatchNorm"}
_NORM_ROLES = {"none": "baseline", "layer": "norm", "rms": "series", "batch": "baseline"}


# ------------------------------------------------------------------------------------------ activation stats
@dataclass(frozen=True)
class ActivationStats:
    """Standard deviation and mean of the activations after each block (x = layer 0 = the input), per norm."""

    std: CurveSet
    mean: CurveSet
    norm_position: str


@single_threaded
def activation_stats(
    depth: int = 24,
    d_model: int = 64,
    norms: Sequence[str] = ("none", "layer", "rms"),
    norm_position: str = "post",
    n_heads: int = 1,
    n_tokens: int = 16,
    batch: int = 2,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> ActivationStats:
    """Standard deviation and mean of the activations after each residual block, with and without a norm.

    Post-norm x_{l+1} = N(x_l + f(x_l)) resets every block to std ≈ 1 (LN also mean 0); without N, std grows.

    Args:
        depth, d_model, n_heads, norm_position: the stacks (d_ff = 4·d_model), as in TransformerStack.
        norms: the norms to compare, keys of NORM_NAMES without "batch": "none", "layer", "rms".
        n_tokens, batch: input x ~ N(0, 1), shape (batch, n_tokens, d_model).
        seed, device, dtype: as everywhere.
    """
    kinds = checks.sequence(norms, "norms")
    for kind in kinds:
        checks.choice(kind, "every entry of norms", ("none", "layer", "rms"))
    checks.positive_int(depth, "depth")  # named as here, not as TransformerStack's n_layers
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    batch = checks.positive_int(batch, "batch")
    device = checks.device(device)
    std, mean = [], []
    for kind in kinds:
        model = TransformerStack(depth, d_model, n_heads, norm=kind, norm_position=norm_position, residual=True,
                                 final_norm=False, seed=seed, dtype=dtype, device=device)
        x = draws.randn((batch, n_tokens, model.d_model), draws.data_generator(seed), dtype, device)  # (B, T, d)
        stats = layer_stats(model, x)
        layer = np.arange(model.n_layers + 1)
        std.append(curve(kind, _(NORM_NAMES[kind]), _NORM_ROLES[kind], layer, np.r_[x.std().item(), stats.std]))
        mean.append(curve(kind, _(NORM_NAMES[kind]), _NORM_ROLES[kind], layer, np.r_[x.mean().item(), stats.mean]))
    return ActivationStats(std=CurveSet(tuple(std)), mean=CurveSet(tuple(mean)), norm_position=norm_position)


# ------------------------------------------------------------------------------------------ norm comparison
# keys of NormComparison.changes, so English; _() one where it is shown (plot_norm_table's row labels)
NORM_TESTS = (N_("batch of one token (training)"), N_("padding: same sentence, two pad lengths"),
              N_("train vs eval mode"))


@dataclass(frozen=True)
class NormComparison:
    """max |Δ output| of each norm in situations that should not matter; a str where the norm refused.

    ``changes[test][kind]``: test in NORM_TESTS, kind in "batch", "layer", "rms".
    """

    changes: dict[str, dict[str, Union[float, str]]]


_SENTENCE = "the cat sat on the mat".split()
_OTHER_SENTENCE = "gradients flow along highways through deep networks today".split()


@single_threaded
def norm_comparison(
    d: int = 16,
    pad_lengths: tuple[int, int] = (8, 12),
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> NormComparison:
    """LayerNorm vs BatchNorm vs RMSNorm on three situations that should not change a token's output.

    LN/RMS: statistics over one token's d features; BN: y = (x − μ_B)/√(σ²_B + ε), μ_B over all B·T tokens.

    Tests (each value: max |Δ output| on the real tokens, or "fails: <error>"):
      1. the token alone in a training batch vs the same token inside a normal batch;
      2. a sentence padded (zero vectors) to two lengths, batched with another sentence;
      3. the same batch through a fresh norm in training and in evaluation mode.

    Args:
        d: embedding width (≥ 2).
        pad_lengths: the two padded lengths of test 2 (different, both ≥ the longer sentence's length).
        seed: seeds the word embeddings.
        device, dtype: where and in what precision to run.
    """
    d = checks.integer(d, "d", minimum=2)
    pads = checks.int_list(pad_lengths, "pad_lengths")
    longest = max(len(_SENTENCE), len(_OTHER_SENTENCE))
    if len(pads) != 2 or pads[0] == pads[1] or min(pads) < longest:
        raise ValueError(f"pad_lengths must be two different lengths >= {longest}; got {pad_lengths!r}")
    device = checks.device(device)
    checks.floating_dtype(dtype)  # before the embeddings are drawn in it
    vocab = sorted(set(_SENTENCE) | set(_OTHER_SENTENCE))
    embedding = draws.randn((len(vocab), d), draws.data_generator(checks.seed(seed)), dtype, device)  # (V, d)

    def embed(words: list[str], length: int) -> Tensor:  # (length, d); padding = zero vectors
        tokens = torch.stack([embedding[vocab.index(w)] for w in words])
        return torch.cat([tokens, torch.zeros(length - len(words), d, dtype=dtype, device=device)])

    def fresh(kind: str) -> nn.Module:  # training mode, γ = 1, β = 0
        return {"batch": TokenBatchNorm, "layer": LayerNorm, "rms": RMSNorm}[kind](d, device=device, dtype=dtype)

    n_real = len(_SENTENCE)
    batch_a = torch.stack([embed(_SENTENCE, pads[0]), embed(_OTHER_SENTENCE, pads[0])])  # (2, T_a, d)
    batch_b = torch.stack([embed(_SENTENCE, pads[1]), embed(_OTHER_SENTENCE, pads[1])])  # (2, T_b, d)
    alone = batch_a[:1, :1]  # (1, 1, d): the sentence's first token, nothing else in the batch
    changes: dict[str, dict[str, Union[float, str]]] = {test: {} for test in NORM_TESTS}
    one, pad, mode = NORM_TESTS
    for kind in ("batch", "layer", "rms"):
        with torch.no_grad():
            norm = fresh(kind)
            try:
                changes[one][kind] = _max_abs_diff(norm(alone)[0, 0], norm(batch_a)[0, 0])
            except (ValueError, RuntimeError) as err:
                changes[one][kind] = f"fails: {err}"
            norm = fresh(kind)
            changes[pad][kind] = _max_abs_diff(norm(batch_a)[0, :n_real], norm(batch_b)[0, :n_real])
            norm = fresh(kind)
            y_train = norm(batch_a)
            changes[mode][kind] = _max_abs_diff(y_train, norm.eval()(batch_a))
    return NormComparison(changes=changes)


def _max_abs_diff(a: Tensor, b: Tensor) -> float:
    return (a - b).abs().max().item()


# ------------------------------------------------------------------------------------------ the loss trap
@dataclass(frozen=True)
class LossTrap:
    """Gradients of two losses of y = LN(x W) with respect to x: the mean of squares and a random projection."""

    mean_square_loss: float  # mean(y²) = σ²/(σ² + ε) ≈ 1 for every x
    mean_square_grad: float  # ‖∂ mean(y²)/∂x‖ ≈ 0 (exactly 0 at ε = 0)
    projection_grad: float  # ‖∂⟨y, r⟩/∂x‖, of order one
    ratio: float  # mean_square_grad / projection_grad


@single_threaded
def scale_invariant_loss_trap(
    d: int = 64,
    n_tokens: int = 16,
    batch: int = 4,
    eps: float = 1e-5,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> LossTrap:
    """Why a probe's loss must not be invariant to the model's final LayerNorm.

    y = LN(x W) has mean(y²) = σ²/(σ² + ε) ≈ 1 whatever x is, so ∂mean(y²)/∂x ≈ 0; ⟨y, r⟩ is not invariant.

    Args:
        d: width of the linear layer and the LayerNorm (≥ 2).
        n_tokens, batch: input x ~ N(0, 1), shape (batch, n_tokens, d).
        eps: the LayerNorm's ε > 0: the only thing that keeps the first gradient from being exactly 0.
        seed: seeds W (Xavier-uniform) and (separately) the inputs.
        device, dtype: float64 by default, so that the near-zero gradient is resolved.
    """
    d = checks.integer(d, "d", minimum=2)
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    batch = checks.positive_int(batch, "batch")
    device = checks.device(device)
    checks.floating_dtype(dtype)  # LayerNorm does not check it
    norm = LayerNorm(d, eps=eps, device=device, dtype=dtype)  # checks eps and dtype
    w = torch.empty(d, d, dtype=dtype)
    nn.init.xavier_uniform_(w, generator=draws.generator(checks.seed(seed)))
    w = w.to(device)  # (d, d)
    x = draws.randn((batch, n_tokens, d), draws.data_generator(seed), dtype, device).requires_grad_(True)  # (B, T, d)
    y = norm(x @ w)  # (B, T, d)
    mean_square = (y**2).mean()
    (g_square,) = torch.autograd.grad(mean_square, x, retain_graph=True)
    (g_proj,) = torch.autograd.grad(projection_loss(y), x)
    square, proj = g_square.norm().item(), g_proj.norm().item()
    return LossTrap(mean_square_loss=mean_square.item(), mean_square_grad=square, projection_grad=proj,
                    ratio=square / proj if proj > 0 else float("nan"))
