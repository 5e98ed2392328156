"""The course's experiments: seeded, deterministic sweeps that return plain data for the plots.

Every function builds small models from gradlib's modules, runs one forward and backward pass per setting,
and returns a small dataclass of numpy arrays — nothing is drawn here (gradlib.plotting does that). Each
takes ``seed``, ``device`` and ``dtype``; two calls with the same arguments return identical numbers.
Random inputs come from a local ``torch.Generator`` (a data stream separate from the model's init stream),
never from torch's global RNG. Runs that explode do not raise: inf/NaN stay in the arrays, and per-layer
results expose ``exploded_at``. Default arguments are sized to run in well under 1.5 s on 2 CPU cores.

Which experiment backs which claim (see the chapters for the citations):

    mlp_gradients, residual_vs_plain      ∂L/∂h_l = ∏ Wᵀ diag(φ') … : products of layer Jacobians vanish/explode
    stack_gradients                       the same per-layer profile for a residual Transformer stack (pre/post norm)
    rnn_gradients                         ‖∂h_T/∂h_t‖ = ρ^(T−t) for a linear RNN with W = ρ·(orthogonal)
    path_lengths                          RNN: O(n) path, exponential decay; attention: one step, ~1/n
    rank_collapse_depth, qk_gradients     pure attention collapses tokens to rank one; skips (scaled 1/√L) prevent it
    softmax_saturation                    J = diag(p) − ppᵀ → 0 when q·k has variance d_k (no 1/√d_k)
    residual_scale_spectrum               x + α·f(x): Jacobian I + α J_f, α = 0 the identity; DeepNorm LN(s·x + f(x))
    residual_stream_norms, activation_stats, norm_comparison, pre_post_ln, scale_invariant_loss_trap
                                          what normalization does, and where its placement matters
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from gradlib import checks
from gradlib.attention import SelfAttention, score_scale, softmax_jacobian, weights_jacobian
from gradlib.blocks import DeepMLP, TransformerStack, attention_stack, torch_encoder_stack
from gradlib.norms import LayerNorm, RMSNorm, TokenBatchNorm
from gradlib.probes import (
    grad_through_time,
    jacobian_top_singular_values,
    layer_grad_norms,
    layer_stats,
    rank_collapse,
    token_cosine_similarity,
)
from gradlib.rnn import VanillaRNN

__all__ = [
    "DepthProfile",
    "RNNGradients",
    "PathLengths",
    "RankCollapse",
    "QKGradients",
    "SoftmaxSaturation",
    "ResidualScale",
    "StreamNorms",
    "NormComparison",
    "PrePostSweep",
    "ActivationStats",
    "mlp_gradients",
    "stack_gradients",
    "rnn_gradients",
    "path_lengths",
    "rank_collapse_depth",
    "qk_gradients",
    "softmax_saturation",
    "residual_vs_plain",
    "residual_scale_spectrum",
    "residual_stream_norms",
    "activation_stats",
    "norm_comparison",
    "pre_post_ln",
    "scale_invariant_loss_trap",
    "sweep",
]

Device = Union[str, torch.device]

MLP_ACTIVATIONS = ("tanh", "sigmoid", "relu", "identity")
MLP_INITS = ("old", "xavier", "he")
MLP_NORMS = ("none", "layer", "rms", "batch")
RNN_ACTIVATIONS = ("tanh", "identity")
STACK_NORMS = ("none", "layer", "rms")
NORM_POSITIONS = ("pre", "post")
STACK_INITS = ("default", "xavier", "deepnorm")
NORM_NAMES = {"none": "no norm", "layer": "LayerNorm", "rms": "RMSNorm", "batch": "BatchNorm"}  # display names
IMPLEMENTATIONS = ("gradlib", "torch")
DTYPES = (torch.float32, torch.float64)

# The model classes seed their own generator with `seed`; inputs must come from a different stream, or the
# first input numbers would repeat the first weight numbers.
_DATA_STREAM = 1_000_003


# ================================================================================================ results
@dataclass
class DepthProfile:
    """One configuration's gradient norm at every layer (layer 1 = nearest the input)."""

    label: str
    layer: np.ndarray  # (L,) 1..L
    grad_norms: np.ndarray  # (L,) ‖∂loss/∂h_l‖, h_l the output of layer l
    param_norms: np.ndarray  # (L,) ‖∂loss/∂θ_l‖
    exploded_at: Optional[int]  # first layer (0-based) with an inf/NaN gradient, else None
    ratio: float  # grad_norms[0] / grad_norms[-1]: first over last; ≪ 1 vanishing, ≫ 1 exploding


@dataclass
class RNNGradients:
    """‖∂h_T/∂h_t‖₂ against the distance T − t, per spectral radius ρ, with the linear theory ρ^(T−t)."""

    radii: np.ndarray  # (R,)
    steps: np.ndarray  # (T,) distance T − t, ascending
    norms: np.ndarray  # (R, T)
    theory: np.ndarray  # (R, T) ρ^(T−t): exact for activation "identity", an upper bound for tanh
    activation: str


@dataclass
class PathLengths:
    """‖∂y_n/∂x_1‖_F against the distance n − 1, for a recurrent net and for one self-attention layer."""

    distance: np.ndarray  # (T,) n − 1 = 0..T−1
    rnn: np.ndarray  # (T,)
    attention: np.ndarray  # (T,)
    seq_len: int
    rho: float


@dataclass
class RankCollapse:
    """Relative distance from rank one, ‖H − 1h̄ᵀ‖_F/‖H‖_F, after each layer (layer 0 = the input)."""

    layer: np.ndarray  # (L+1,) 0..L
    curves: dict[str, np.ndarray]  # label -> (L+1,)


@dataclass
class QKGradients:
    """‖∇W_Q‖/‖∇W_V‖ at one layer (see ``layer``) against depth, and the output tokens' cosine similarity."""

    depth: np.ndarray  # (D,)
    curves: dict[str, np.ndarray]  # label -> (D,)
    cosine: dict[str, np.ndarray]  # label -> (D,)
    layer: str = "last"  # where the ratio was measured: "last", "first" or a 1-based index


@dataclass
class SoftmaxSaturation:
    """Softmax saturation against d_k, per score scale (keys of the dicts: the scales as strings)."""

    d_k: np.ndarray  # (K,)
    saturated_fraction: dict[str, np.ndarray]  # fraction of rows with max p > threshold
    jacobian_norm: dict[str, np.ndarray]  # mean ‖diag(p) − ppᵀ‖₂ over rows
    query_grad_norm: dict[str, np.ndarray]  # mean ‖∂p_i/∂q_i‖_F = ‖(diag(p_i) − p_i p_iᵀ) K s‖_F over rows


@dataclass
class ResidualScale:
    """Top singular values of a stack's input-output Jacobian, per branch scale α."""

    alphas: np.ndarray  # (A,)
    singular_values: np.ndarray  # (A, k), descending
    variant: str = "rezero"  # "rezero": x + α·f(norm(x)); "deepnorm": LN(s·x + α·f(x)), DeepNet's s and init


@dataclass
class StreamNorms:
    """Mean token norm ‖x_l‖ of the residual stream after each layer (layer 0 = the input)."""

    layer: np.ndarray  # (L+1,)
    curves: dict[str, np.ndarray]  # label -> (L+1,)


@dataclass
class NormComparison:
    """One row per test: {"test": str, "batch": float|str, "layer": float, "rms": float}.

    Numbers are max |Δ output| between two situations that should not matter; a str says the norm failed.
    """

    rows: list[dict]

    def to_markdown(self, digits: int = 2) -> str:
        """The rows as a Markdown table: one line per test, one column per norm ("fails" where it refused).

        Args:
            digits: significant digits of the numbers.
        """
        checks.positive_int(digits, "digits")
        kinds = [k for k in ("batch", "layer", "rms") if any(k in row for row in self.rows)]
        lines = ["| max abs change of the output | " + " | ".join(NORM_NAMES[k] for k in kinds) + " |",
                 "|---|" + "---:|" * len(kinds)]
        for row in self.rows:
            cells = [_shown(row.get(k, ""), digits) for k in kinds]
            lines.append(f"| {row['test']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _shown(value: Any, digits: int) -> str:
    """A table cell: a number to `digits` significant digits, 'fails' for a norm that refused (a str)."""
    if isinstance(value, str):
        return "fails" if value.startswith("fails") else value
    return f"{float(value):.{digits}g}"


@dataclass
class PrePostSweep:
    """Gradient norm of the last block's second FFN weight W_2 against depth, Pre-LN vs Post-LN."""

    depths: np.ndarray  # (D,)
    last_layer_grad: dict[str, np.ndarray]  # "pre"/"post" -> (D,) mean over seeds
    per_seed: dict[str, np.ndarray]  # "pre"/"post" -> (S, D)
    hidden_norm: dict[str, np.ndarray]  # "pre"/"post" -> (D,) mean token norm ‖x_L‖ (before any final norm)
    implementation: str
    # "pre"/"post" -> (L_max,) ‖∇W_2‖ of every block of the deepest stack, mean over seeds (layer 1 first)
    per_layer: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ActivationStats:
    """Per-layer standard deviation and mean of the activations (layer 0 = the input)."""

    layer: np.ndarray  # (L+1,)
    std: dict[str, np.ndarray]  # label -> (L+1,)
    mean: dict[str, np.ndarray]  # label -> (L+1,)


# ================================================================================================ helpers
def _check_run(seed: object, device: object, dtype: object) -> tuple[int, torch.device]:
    """The arguments every experiment takes: seed (an integer >= 0), device, dtype (float32 or float64)."""
    seed = checks.integer(seed, "seed", minimum=0)
    dev = checks.device(device)
    checks.floating_dtype(dtype, allowed=DTYPES)
    return seed, dev


def _data_generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed + _DATA_STREAM)


def _randn(shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype, device: torch.device) -> Tensor:
    # Drawn on the CPU generator, then moved: the same numbers on every device.
    return torch.randn(shape, generator=gen, dtype=dtype).to(device)


def _projection_loss(y: Tensor) -> Tensor:
    """probes' default loss ⟨y, r⟩, r ~ N(0, 1) fixed (seed 0): not invariant to a final normalization."""
    # Drawn in float64 on the CPU, then cast, exactly as probes draws it: the same r for every dtype.
    r = torch.randn(y.shape, generator=torch.Generator(device="cpu").manual_seed(0), dtype=torch.float64).to(y)
    return (y * r).sum()


def _first_over_last(norms: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(norms[0]) / np.float64(norms[-1]))


def _depth_profile(label: str, grads: Any) -> DepthProfile:
    """A DepthProfile from probes.layer_grad_norms' result; layers numbered 1..L from the input side."""
    grad_norms = np.asarray(grads.output_grad_norms, dtype=np.float64)
    return DepthProfile(
        label=label,
        layer=np.arange(1, len(grad_norms) + 1),
        grad_norms=grad_norms,
        param_norms=np.asarray(grads.param_norms, dtype=np.float64),
        exploded_at=grads.exploded_at,
        ratio=_first_over_last(grad_norms),
    )


def _numpy(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def _causal_mask(n: int, device: torch.device) -> Tensor:
    return torch.ones(n, n, dtype=torch.bool, device=device).tril()  # (T, T)  True = may attend


# ====================================================================================== vanishing gradients
def _mlp_label(activation: str, init: str, weight_scale: Optional[float], residual: bool, norm: str,
               branch_scale: float = 1.0) -> str:
    parts = [activation, f"weight scale {weight_scale:g}" if weight_scale is not None else f"{init} init"]
    if residual:
        parts.append("residual" if branch_scale == 1.0 else f"residual, α = {branch_scale:g}")
    if norm != "none":
        parts.append(f"{norm} norm")
    return ", ".join(parts)


def mlp_gradients(
    depth: int = 10,
    width: int = 256,
    activation: str = "tanh",
    init: str = "old",
    weight_scale: Optional[float] = None,
    residual: bool = False,
    norm: str = "none",
    batch: int = 64,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
    label: Optional[str] = None,
    branch_scale: float = 1.0,
) -> DepthProfile:
    """Gradient norm at every layer of a deep MLP, for one init / activation / architecture.

    ∂L/∂h_l = (∏_{m>l} J_m)ᵀ ∂L/∂h_L with J_m = diag(φ'(·)) W_m (plain) or I + α·diag(φ'(·)) W_m (residual).

    Args:
        depth: number of layers L.
        width: width of every layer n.
        activation: "tanh", "sigmoid", "relu" or "identity".
        init: "old" (U[±1/√n], n·Var W = 1/3), "xavier" or "he".
        weight_scale: if given, overrides init: W ~ N(0, weight_scale²/n); above the critical scale (1 for
            identity and tanh, √2 for relu) the gradient grows toward the input.
        residual: h_l = h_{l−1} + α·φ(W h_{l−1}) instead of φ(W h_{l−1}).
        norm: "none", "layer", "rms" or "batch", applied before each layer's weight.
        batch: number of input rows; inputs x ~ N(0, 1), shape (batch, width).
        seed: seeds the init and (on a separate stream) the inputs.
        device, dtype: where and in what precision to run.
        label: the profile's label; default built from the arguments, e.g. "tanh, old init".
        branch_scale: α ≥ 0 of the residual branch (α = 0: every layer is the identity); must be 1 unless
            residual=True.
    """
    depth = checks.positive_int(depth, "depth")
    width = checks.positive_int(width, "width")
    checks.choice(activation, "activation", MLP_ACTIVATIONS)
    checks.choice(init, "init", MLP_INITS)
    if weight_scale is not None:
        weight_scale = checks.finite(weight_scale, "weight_scale", positive=True)
    checks.boolean(residual, "residual")
    branch_scale = checks.finite(branch_scale, "branch_scale", nonnegative=True)
    if not residual and branch_scale != 1.0:
        raise ValueError(f"branch_scale must be 1.0 when residual=False (it scales the residual branch); "
                         f"got {branch_scale!r}")
    checks.choice(norm, "norm", MLP_NORMS)
    batch = checks.positive_int(batch, "batch")
    seed, dev = _check_run(seed, device, dtype)
    if label is not None and not isinstance(label, str):
        raise ValueError(f"label must be a str or None; got {label!r}")

    model = DeepMLP(
        width, depth, activation=activation, init=init, weight_scale=weight_scale,
        residual=residual, branch_scale=branch_scale, norm=norm, seed=seed, dtype=dtype, device=dev,
    )
    x = _randn((batch, width), _data_generator(seed), dtype, dev)  # (B, n)
    if label is None:
        label = _mlp_label(activation, init, weight_scale, residual, norm, branch_scale)
    return _depth_profile(label, layer_grad_norms(model, x))


def _stack_label(norm: str, norm_position: str, init: str) -> str:
    if init == "deepnorm":
        return "DeepNorm" if norm == "layer" else f"DeepNorm ({NORM_NAMES[norm]})"
    if norm == "none":
        return "no norm"
    return f"{norm_position}-{NORM_NAMES[norm]}"


def stack_gradients(
    depth: int = 12,
    norm: str = "layer",
    norm_position: str = "pre",
    d_model: int = 32,
    n_heads: int = 1,
    n_tokens: int = 8,
    batch: int = 2,
    seed: int = 0,
    d_ff: Optional[int] = None,
    init: str = "default",
    final_norm: Optional[bool] = None,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
    label: Optional[str] = None,
) -> DepthProfile:
    """Gradient norm after every block of a residual Transformer stack, with the norm before or after each sub-layer.

    pre: x = x + f(N(x)) (+ a final N);  post: x = N(x + f(x));  g_l = ‖∂ℓ/∂x_l‖, x_l the output of block l.

    Measured by probes.layer_grad_norms with its default loss ⟨y, r⟩ (r ~ N(0, 1) fixed), which a final norm
    does not make invariant. Without a norm (norm="none") the position changes nothing.

    Args:
        depth: number of blocks L.
        norm: "layer", "rms" or "none".
        norm_position: "pre" or "post".
        d_model, n_heads, d_ff: block sizes (d_ff None -> 4·d_model; n_heads must divide d_model).
        n_tokens, batch: input x ~ N(0, 1), shape (batch, n_tokens, d_model), from the data stream of `seed`.
        seed: seeds the init and (separately) the inputs.
        init: "default" (PyTorch's encoder-layer init), "xavier" or "deepnorm" (DeepNet: post-norm only,
            skip scale (2N)^(1/4), β-scaled value/output/FFN weights).
        final_norm: as in blocks.TransformerStack (None: a final norm for pre-norm stacks with a norm).
        device, dtype: where and in what precision to run.
        label: the profile's label; default e.g. "pre-LayerNorm", "post-RMSNorm", "no norm", "DeepNorm".
    """
    depth = checks.positive_int(depth, "depth")
    checks.choice(norm, "norm", STACK_NORMS)
    checks.choice(norm_position, "norm_position", NORM_POSITIONS)
    d_model, n_heads = checks.heads(d_model, n_heads)
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    batch = checks.positive_int(batch, "batch")
    if d_ff is not None:
        d_ff = checks.positive_int(d_ff, "d_ff")
    checks.choice(init, "init", STACK_INITS)
    if init == "deepnorm" and norm_position != "post":
        raise ValueError(f"norm_position must be 'post' with init='deepnorm' (DeepNet is post-norm); "
                         f"got {norm_position!r}")
    if final_norm is not None and not isinstance(final_norm, bool):
        raise ValueError(f"final_norm must be True, False or None; got {final_norm!r}")
    seed, dev = _check_run(seed, device, dtype)
    if label is not None and not isinstance(label, str):
        raise ValueError(f"label must be a str or None; got {label!r}")

    model = TransformerStack(
        depth, d_model, n_heads, d_ff, norm=norm, norm_position=norm_position, residual=True,
        final_norm=final_norm, init=init, seed=seed, dtype=dtype, device=dev,
    )
    x = _randn((batch, n_tokens, d_model), _data_generator(seed), dtype, dev)  # (B, T, d)
    label = label if label is not None else _stack_label(norm, norm_position, init)
    return _depth_profile(label, layer_grad_norms(model, x))


def rnn_gradients(
    radii: Sequence[float] = (0.9, 1.0, 1.1),
    T: int = 50,
    d_hidden: int = 32,
    activation: str = "identity",
    input_scale: float = 1.0,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> RNNGradients:
    """‖∂h_T/∂h_t‖₂ through time of a vanilla RNN whose recurrent matrix is ρ·(orthogonal), per ρ.

    ∂h_T/∂h_t = ∏_{s=t+1}^{T} diag(φ'(·)) W_hh, so with φ = identity, ‖∂h_T/∂h_t‖₂ = ρ^(T−t) exactly.

    Args:
        radii: spectral radii ρ (> 0) to compare, (R,).
        T: sequence length.
        d_hidden: hidden (and input) width.
        activation: "identity" (the linear theory holds exactly) or "tanh" (ρ^(T−t) is an upper bound).
        input_scale: the inputs are input_scale · N(0, 1), shape (1, T, d_hidden); larger saturates tanh.
        seed: seeds the recurrent matrices and (separately) the inputs; the same inputs for every ρ.
        device, dtype: float64 by default because ρ^T spans many decades.
    """
    rhos = checks.float_list(radii, "radii", positive=True)
    T = checks.positive_int(T, "T")
    d_hidden = checks.positive_int(d_hidden, "d_hidden")
    checks.choice(activation, "activation", RNN_ACTIVATIONS)
    input_scale = checks.finite(input_scale, "input_scale", nonnegative=True)
    seed, dev = _check_run(seed, device, dtype)

    x = input_scale * _randn((1, T, d_hidden), _data_generator(seed), dtype, dev)  # (1, T, d)
    rows = []
    for rho in rhos:
        rnn = VanillaRNN(
            d_hidden, d_hidden, activation=activation, spectral_radius=rho, seed=seed, dtype=dtype, device=dev
        )
        through_time = grad_through_time(rnn, x)
        distance = np.asarray(through_time.distance)  # T − t, with h_0 the initial state and h_T the last
        order = np.argsort(distance)
        rows.append((distance[order], np.asarray(through_time.norms, dtype=np.float64)[order]))
    steps = rows[0][0].astype(np.int64)
    radii_np = _numpy(rhos)
    with np.errstate(over="ignore"):
        theory = radii_np[:, None] ** steps[None, :].astype(np.float64)  # (R, T)
    return RNNGradients(
        radii=radii_np,
        steps=steps,
        norms=np.stack([r[1] for r in rows]),
        theory=theory,
        activation=activation,
    )


# ========================================================================================= attention highway
def path_lengths(
    seq_len: int = 32,
    rho: Optional[float] = None,
    d: int = 32,
    n_sequences: int = 8,
    input_scale: float = 1.0,
    causal: bool = True,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> PathLengths:
    """How much output n feels input 1: ‖∂y_n/∂x_1‖_F for a tanh RNN and for one self-attention layer.

    RNN: ∂h_n/∂x_1 = ∏_{s=2}^{n} diag(tanh'(·)) W_hh · diag(tanh'(·)) W_xh — n − 1 factors (path length O(n)).
    Attention: y_n = Σ_j p_nj v_j W_O — x_1 enters in one step with weight p_n1 ≈ 1/n (path length O(1)).

    Args:
        seq_len: T; distances n − 1 = 0..T−1.
        rho: spectral radius of the RNN's recurrent matrix (ρ·orthogonal), or None for nn.RNN's default
            init U[±1/√d] (spectral radius ≈ 1/√3). The result's ``rho`` is the measured max |eigenvalue|.
        d: width of tokens and hidden state.
        n_sequences: norms are averaged over this many random input sequences (smooths the attention curve).
        input_scale: tokens are input_scale · N(0, 1), shape (n_sequences, T, d), the same for both models.
        causal: mask attention so that y_n sees x_1..x_n only (as a recurrent net does).
        seed: seeds both inits and (separately) the inputs.
        device, dtype: float64 by default (the RNN's gradients reach 1e-10).
    """
    seq_len = checks.positive_int(seq_len, "seq_len")
    if rho is not None:
        rho = checks.finite(rho, "rho", positive=True)
    d = checks.positive_int(d, "d")
    n_sequences = checks.positive_int(n_sequences, "n_sequences")
    input_scale = checks.finite(input_scale, "input_scale", nonnegative=True)
    checks.boolean(causal, "causal")
    seed, dev = _check_run(seed, device, dtype)

    xs = input_scale * _randn((n_sequences, seq_len, d), _data_generator(seed), dtype, dev)  # (N, T, d)
    rnn = VanillaRNN(d, d, activation="tanh", spectral_radius=rho, seed=seed, dtype=dtype, device=dev)
    attn = SelfAttention(d, 1, seed=seed, dtype=dtype, device=dev)
    mask = _causal_mask(seq_len, dev) if causal else None
    with torch.no_grad():
        radius = torch.linalg.eigvals(rnn.w_hh.detach().cpu().double()).abs().max().item()
    return PathLengths(
        distance=np.arange(seq_len),
        rnn=_grad_from_first_token(rnn, xs).mean(axis=0),
        attention=_grad_from_first_token(lambda h: attn(h, mask), xs).mean(axis=0),
        seq_len=seq_len,
        rho=radius,
    )


def _grad_from_first_token(fn: Callable[[Tensor], Tensor], xs: Tensor) -> np.ndarray:
    """‖∂y_n/∂x_1‖_F for every sequence and output n, (N, T), by forward mode: one tangent per input feature.

    Tangent k perturbs feature k of x_1 in every sequence at once (the sequences do not interact), so
    d forward-mode passes, batched by vmap, give every column of every ∂y_n/∂x_1.
    """
    n_seq, _, d = xs.shape
    x_1, rest = xs[:, :1], xs[:, 1:]  # (N, 1, d), (N, T−1, d)

    def outputs(first: Tensor) -> Tensor:  # (N, 1, d) -> (N, T, d)
        return fn(torch.cat([first, rest], dim=1))

    def column(tangent: Tensor) -> Tensor:  # (N, 1, d) -> (N, T, d) = ∂y/∂x_1 · tangent
        return torch.func.jvp(outputs, (x_1,), (tangent,))[1]

    basis = torch.eye(d, dtype=xs.dtype, device=xs.device)[:, None, None, :].expand(d, n_seq, 1, d)  # (d, N, 1, d)
    with warnings.catch_warnings():
        # torch.func.jvp registers its decompositions with torch.jit.script on first use, which newer torch
        # flags as deprecated: torch's internal business, not the reader's.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)
        columns = torch.func.vmap(column)(basis)  # (d, N, T, d): [k, b, n, :] = ∂y_n/∂x_1[k] for sequence b
    return columns.pow(2).sum(dim=(0, 3)).sqrt().detach().cpu().double().numpy()  # (N, T)


_COLLAPSE_VARIANTS = ("attention only", "with skip connections", "residual, branch 1/√L")


def rank_collapse_depth(
    depth: int = 12,
    n_tokens: int = 16,
    d: int = 32,
    n_heads: int = 1,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
    variants: Sequence[str] = _COLLAPSE_VARIANTS[:2],
) -> RankCollapse:
    """Distance from rank one after each layer of a pure-attention stack, with and without skip connections.

    res(H) = ‖H − 1 h̄ᵀ‖_F / ‖H‖_F; without skips res(H_l) falls doubly exponentially (Dong et al. 2021).

    Args:
        depth: number of attention layers L.
        n_tokens: tokens per sequence T; inputs x ~ N(0, 1), shape (1, T, d).
        d: token width.
        n_heads: heads per layer (must divide d).
        seed: seeds the (Xavier) init and, separately, the inputs.
        device, dtype: float64 by default — float32 stops resolving the residual near 1e-7.
        variants: which stacks (the curves' labels, in this order): "attention only" (x_{l+1} = attn(x_l)),
            "with skip connections" (x_l + attn(x_l)), "residual, branch 1/√L" (x_l + attn(x_l)/√L, the
            depth-scaled branches of Noci et al. 2022). Every stack has the same weights and input.
    """
    depth = checks.positive_int(depth, "depth")
    n_tokens = checks.integer(n_tokens, "n_tokens", minimum=2)
    d, n_heads = checks.heads(d, n_heads, d_name="d")
    seed, dev = _check_run(seed, device, dtype)
    variant_list = checks.sequence(variants, "variants")
    for v in variant_list:
        checks.choice(v, "every entry of variants", _COLLAPSE_VARIANTS)
    if len(set(variant_list)) != len(variant_list):
        raise ValueError(f"variants must not repeat; got {variants!r}")

    x = _randn((1, n_tokens, d), _data_generator(seed), dtype, dev)  # (1, T, d)
    curves = {}
    for label in variant_list:
        residual = label != "attention only"
        alpha = 1.0 / math.sqrt(depth) if label == "residual, branch 1/√L" else 1.0
        model = attention_stack(
            depth, d, n_heads, residual=residual, branch_scale=alpha, seed=seed, dtype=dtype, device=dev
        )
        stats = layer_stats(model, x)
        curves[label] = np.concatenate([[rank_collapse(x)], np.asarray(stats.rank_collapse, dtype=np.float64)])
    return RankCollapse(layer=np.arange(depth + 1), curves=curves)


def qk_gradients(
    depths: Sequence[int] = (1, 2, 4, 8, 16),
    n_tokens: int = 16,
    d: int = 32,
    n_heads: int = 1,
    layer: Union[str, int] = "last",
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> QKGradients:
    """‖∇W_Q‖/‖∇W_V‖ of one layer of a pure-attention stack vs depth, without and with depth-scaled skips.

    If a layer's input tokens are all equal, X = 1xᵀ, its scores are equal, ∂L/∂P has equal entries in
    every row and (diag(p) − ppᵀ)·const = 0, so ∇W_Q = ∇W_K = 0 (Noci et al. 2022, Thm 3.2);
    x_{l+1} = x_l + attn(x_l)/√L keeps the tokens apart (cosine ≪ 1) and the ratio O(1).

    Which layer: the collapse is in the layers' *inputs*, so the effect shows at the layers deep in the
    stack ("last", the default). At the first layer (input: random tokens) ∇W_Q does not vanish: the
    gradient arriving from the collapsed layers is the same for every token, which scales ∇W_Q and ∇W_V
    alike — measured: the ratio there drifts from ≈ 0.8 (L = 1) to ≈ 0.3–0.6 (L = 16), never toward 0.

    Args:
        depths: stack depths L to compare, (D,).
        n_tokens: tokens per sequence; inputs x ~ N(0, 1), shape (1, T, d), the same for every depth.
        d: token width.
        n_heads: heads per layer (must divide d).
        layer: where to measure: "last", "first", or a 1-based layer index ≤ min(depths).
        seed: seeds the (Xavier) init and, separately, the inputs; the loss is ⟨y, r⟩, r ~ N(0, 1) fixed.
        device, dtype: float64 by default (the collapsed ratio reaches 1e-18).
    """
    depth_list = checks.int_list(depths, "depths")
    n_tokens = checks.integer(n_tokens, "n_tokens", minimum=2)
    d, n_heads = checks.heads(d, n_heads, d_name="d")
    if isinstance(layer, str):
        checks.choice(layer, "layer", ("first", "last"))
    elif isinstance(layer, bool) or not isinstance(layer, numbers.Integral) or not 1 <= layer <= min(depth_list):
        raise ValueError(
            f"layer must be 'first', 'last' or a 1-based index between 1 and min(depths) = {min(depth_list)}; "
            f"got {layer!r}"
        )
    seed, dev = _check_run(seed, device, dtype)

    x = _randn((1, n_tokens, d), _data_generator(seed), dtype, dev)  # (1, T, d)
    labels = ("attention only", "residual, branch 1/√L")
    curves: dict[str, list[float]] = {k: [] for k in labels}
    cosine: dict[str, list[float]] = {k: [] for k in labels}
    for L in depth_list:
        index = {"first": 0, "last": L - 1}.get(layer, None) if isinstance(layer, str) else int(layer) - 1
        for label in labels:
            residual = label != "attention only"
            alpha = 1.0 / math.sqrt(L) if residual else 1.0
            model = attention_stack(
                L, d, n_heads, residual=residual, branch_scale=alpha, seed=seed, dtype=dtype, device=dev
            )
            attn = model.layers[index].attn
            y = model(x)  # (1, T, d)
            g_q, g_v = torch.autograd.grad(_projection_loss(y), [attn.w_q.weight, attn.w_v.weight])
            with np.errstate(divide="ignore", invalid="ignore"):
                curves[label].append(float(np.float64(g_q.norm().item()) / np.float64(g_v.norm().item())))
            cosine[label].append(float(token_cosine_similarity(y.detach())))
    return QKGradients(
        depth=np.asarray(depth_list),
        curves={k: _numpy(v) for k, v in curves.items()},
        cosine={k: _numpy(v) for k, v in cosine.items()},
        layer=str(layer),
    )


def _scale_key(scale: Union[str, float]) -> str:
    return scale if isinstance(scale, str) else f"tau={float(scale):g}"


def softmax_saturation(
    d_ks: Sequence[int] = (16, 64, 256, 1024),
    scales: Sequence[Union[str, float]] = ("sqrt_dk", "none"),
    n_rows: int = 512,
    n_keys: int = 32,
    threshold: float = 0.99,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> SoftmaxSaturation:
    """How often the softmax saturates, and how small its Jacobian gets, as d_k grows — with and without 1/√d_k.

    q·k with i.i.d. N(0, 1) entries has variance d_k; P = softmax(s·q Kᵀ); J = diag(p) − p pᵀ; ∂p/∂q = J K s.

    Args:
        d_ks: key/query widths d_k, (K,).
        scales: score scales as in gradlib.attention: "sqrt_dk", "none" or a temperature τ > 0.
        n_rows: number of query rows (each row is one softmax over the keys).
        n_keys: number of keys S each query attends over.
        threshold: a row counts as saturated when max p > threshold.
        seed: seeds q and k; the same q, k for every scale.
        device, dtype: float64 by default.

    Note: query_grad_norm carries the factor s itself, so with s = 1/√d_k it is not automatically larger than
    without scaling; the claim of the scale is about saturation and the softmax Jacobian.
    """
    dk_list = checks.int_list(d_ks, "d_ks")
    scale_list = checks.sequence(scales, "scales")
    for scale in scale_list:
        try:
            score_scale(1, scale)
        except ValueError:
            raise ValueError(
                f"every entry of scales must be 'sqrt_dk', 'none' or a positive float temperature; got {scale!r}"
            ) from None
    keys = [_scale_key(s) for s in scale_list]
    if len(set(keys)) != len(keys):
        raise ValueError(f"scales must not repeat; got {scales!r}")
    n_rows = checks.positive_int(n_rows, "n_rows")
    n_keys = checks.positive_int(n_keys, "n_keys")
    threshold = checks.finite(threshold, "threshold", positive=True)
    if threshold >= 1.0:
        raise ValueError(f"threshold must be in (0, 1); got {threshold!r}")
    seed, dev = _check_run(seed, device, dtype)

    gen = _data_generator(seed)
    frac: dict[str, list[float]] = {k: [] for k in keys}
    jnorm: dict[str, list[float]] = {k: [] for k in keys}
    qgrad: dict[str, list[float]] = {k: [] for k in keys}
    for d_k in dk_list:
        q = _randn((n_rows, d_k), gen, dtype, dev)  # (N, d_k)
        k = _randn((n_keys, d_k), gen, dtype, dev)  # (S, d_k)
        for key, scale in zip(keys, scale_list):
            s = score_scale(d_k, scale)
            p = torch.softmax(q @ k.T * s, dim=-1)  # (N, S)
            frac[key].append((p.max(dim=-1).values > threshold).double().mean().item())
            j_softmax = softmax_jacobian(p)  # (N, S, S), symmetric PSD
            jnorm[key].append(torch.linalg.eigvalsh(j_softmax)[..., -1].mean().item())
            dp_dq = weights_jacobian(q, k, scale)  # (N, S, d_k)
            qgrad[key].append(dp_dq.flatten(1).norm(dim=1).mean().item())
    return SoftmaxSaturation(
        d_k=np.asarray(dk_list),
        saturated_fraction={k: _numpy(v) for k, v in frac.items()},
        jacobian_norm={k: _numpy(v) for k, v in jnorm.items()},
        query_grad_norm={k: _numpy(v) for k, v in qgrad.items()},
    )


# ========================================================================================== residual highway
def residual_vs_plain(
    depth: int = 50,
    width: int = 128,
    activation: str = "tanh",
    init: str = "old",
    batch: int = 64,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> list[DepthProfile]:
    """The same deep MLP without and with skip connections: [plain, residual] gradient profiles.

    Plain: ∂h_L/∂h_l = ∏ J_m → 0; residual: ∏ (I + J_m), whose identity term always survives.

    Args:
        depth, width, activation, init, batch: as in :func:`mlp_gradients`.
        seed: the same weights and inputs for both networks.
        device, dtype: where and in what precision to run.
    """
    common = dict(depth=depth, width=width, activation=activation, init=init, batch=batch,
                  seed=seed, device=device, dtype=dtype)
    plain = mlp_gradients(residual=False, label="plain", **common)
    residual = mlp_gradients(residual=True, label="residual", **common)
    return [plain, residual]


RESIDUAL_VARIANTS = ("rezero", "deepnorm")


def residual_scale_spectrum(
    alphas: Sequence[float] = (0.0, 0.1, 0.5, 1.0),
    n_layers: int = 6,
    d_model: int = 32,
    n_heads: int = 1,
    norm: Optional[str] = None,
    k: int = 4,
    n_tokens: int = 8,
    method: str = "exact",
    n_iter: int = 50,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
    variant: str = "rezero",
) -> ResidualScale:
    """Top singular values of a Transformer stack's input-output Jacobian for branch scales α (ReZero: α = 0).

    rezero:   each sub-layer is x ↦ x + α f(x), Jacobian I + α J_f; at α = 0 the stack is the identity, all σ = 1.
    deepnorm: each sub-layer is x ↦ LN(s·x + α f(x)), s = (2N)^(1/4), value/output/FFN weights × (8N)^(−1/4)
              (DeepNet, Wang et al. 2022; α = 1 is DeepNorm itself). Jacobian ≈ P (I + (α/s) J_f)/σ with P the
              LayerNorm's projection, so at α = 0 the stack computes LN(x): its nonzero σ are 1/std of the tokens.

    Args:
        alphas: branch scales α ≥ 0 to compare, (A,).
        n_layers, d_model, n_heads: stack size (d_ff = 4·d_model).
        norm: rezero: "none" (default) or "layer"/"rms" in pre-norm position (no final norm, which would break
            the identity); deepnorm: "layer" (default) or "rms", in post-norm position.
        k: how many top singular values.
        n_tokens: tokens of the input x ~ N(0, 1), shape (1, T, d_model).
        method: "exact" — the full (T·d × T·d) Jacobian from one vectorised backward pass, then its singular
            values (fast at these sizes); "power" — probes.jacobian_top_singular_values, subspace iteration
            that never forms J (what a large model needs; ~100× slower here).
        n_iter: subspace iterations for method="power".
        seed: the same weights (for every α) and inputs.
        device, dtype: float64 by default.
        variant: "rezero" (pre-norm stack, skip scale 1, PyTorch's init) or "deepnorm" (as above).
    """
    checks.choice(variant, "variant", RESIDUAL_VARIANTS)
    alpha_list = checks.float_list(alphas, "alphas", nonnegative=True)
    n_layers = checks.positive_int(n_layers, "n_layers")
    d_model, n_heads = checks.heads(d_model, n_heads)
    if norm is None:
        norm = "none" if variant == "rezero" else "layer"
    checks.choice(norm, "norm", STACK_NORMS if variant == "rezero" else ("layer", "rms"))
    k = checks.positive_int(k, "k")
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    if k > n_tokens * d_model:
        raise ValueError(f"k must be at most n_tokens·d_model = {n_tokens * d_model}; got {k}")
    checks.choice(method, "method", ("exact", "power"))
    n_iter = checks.positive_int(n_iter, "n_iter")
    seed, dev = _check_run(seed, device, dtype)

    x = _randn((1, n_tokens, d_model), _data_generator(seed), dtype, dev)  # (1, T, d)
    rows = []
    structure: dict[str, Any] = (
        dict(norm_position="pre") if variant == "rezero" else dict(norm_position="post", init="deepnorm")
    )
    for alpha in alpha_list:
        model = TransformerStack(
            n_layers, d_model, n_heads, norm=norm, residual=True, branch_scale=alpha, final_norm=False,
            seed=seed, dtype=dtype, device=dev, **structure,
        )
        if method == "exact":
            rows.append(_top_singular_values(model, x, k))
        else:
            spectrum = jacobian_top_singular_values(model, x, k=k, n_iter=n_iter, seed=seed)
            rows.append(np.asarray(spectrum.singular_values, dtype=np.float64))
    return ResidualScale(alphas=_numpy(alpha_list), singular_values=np.stack(rows), variant=variant)


def _top_singular_values(fn: Callable[[Tensor], Tensor], x: Tensor, k: int) -> np.ndarray:
    """σ_1..σ_k of the whole Jacobian ∂fn(x)/∂x, formed explicitly (NaN if it is not finite)."""
    jac = torch.autograd.functional.jacobian(fn, x.detach(), vectorize=True)  # (*y.shape, *x.shape)
    jac = jac.reshape(-1, x.numel()).detach()  # (m, n)
    if not torch.isfinite(jac).all():
        return np.full(k, np.nan)
    return torch.linalg.svdvals(jac)[:k].cpu().double().numpy()


# ====================================================================================== normalization highway
_STREAM_VARIANTS = {
    # label: TransformerStack keyword arguments (all with residual connections, no final norm)
    "residual, no norm": dict(norm="none", norm_position="pre"),
    "residual + pre-LN": dict(norm="layer", norm_position="pre"),
    "residual + post-LN": dict(norm="layer", norm_position="post"),
    "DeepNorm": dict(norm="layer", norm_position="post", init="deepnorm"),
}


def residual_stream_norms(
    depth: int = 24,
    d_model: int = 64,
    n_heads: int = 1,
    d_ff: Optional[int] = None,
    n_tokens: int = 16,
    batch: int = 2,
    variants: Sequence[str] = tuple(_STREAM_VARIANTS),
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> StreamNorms:
    """Mean token norm of the residual stream after each block, for different norm placements.

    No norm: x_{l+1} = x_l + f(x_l) grows; Pre-LN: E‖x_l‖² grows linearly in l (Xiong et al. 2020);
    Post-LN: x_{l+1} = LN(x_l + f(x_l)) has ‖x‖ ≈ √d at every layer.

    Args:
        depth: number of blocks L.
        d_model, n_heads, d_ff: block sizes (d_ff None -> 4·d_model).
        n_tokens, batch: input x ~ N(0, 1), shape (batch, n_tokens, d_model).
        variants: which of "residual, no norm", "residual + pre-LN", "residual + post-LN", "DeepNorm".
        seed: seeds the inits and (separately) the inputs.
        device, dtype: where and in what precision to run.
    """
    depth = checks.positive_int(depth, "depth")
    d_model, n_heads = checks.heads(d_model, n_heads)
    if d_ff is not None:
        d_ff = checks.positive_int(d_ff, "d_ff")
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    batch = checks.positive_int(batch, "batch")
    variant_list = checks.sequence(variants, "variants")
    for v in variant_list:
        checks.choice(v, "every entry of variants", tuple(_STREAM_VARIANTS))
    seed, dev = _check_run(seed, device, dtype)

    x = _randn((batch, n_tokens, d_model), _data_generator(seed), dtype, dev)  # (B, T, d)
    x_norm = x.norm(dim=-1).mean().item()
    curves = {}
    for label in variant_list:
        model = TransformerStack(
            depth, d_model, n_heads, d_ff, residual=True, final_norm=False, seed=seed, dtype=dtype, device=dev,
            **_STREAM_VARIANTS[label],
        )
        stats = layer_stats(model, x)
        curves[label] = np.concatenate([[x_norm], np.asarray(stats.norm, dtype=np.float64)])
    return StreamNorms(layer=np.arange(depth + 1), curves=curves)


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

    Post-norm x_{l+1} = N(x_l + f(x_l)) resets every layer to std ≈ 1 (LN also mean 0); without N, std grows.

    Args:
        depth: number of blocks L.
        d_model, n_heads: block sizes (d_ff = 4·d_model).
        norms: which norms to compare: "none", "layer", "rms".
        norm_position: "post" (the norm's output is what the next layer sees) or "pre".
        n_tokens, batch: input x ~ N(0, 1), shape (batch, n_tokens, d_model).
        seed: seeds the inits and (separately) the inputs.
        device, dtype: where and in what precision to run.
    """
    depth = checks.positive_int(depth, "depth")
    d_model, n_heads = checks.heads(d_model, n_heads)
    norm_list = checks.sequence(norms, "norms")
    for kind in norm_list:
        checks.choice(kind, "every entry of norms", STACK_NORMS)
    checks.choice(norm_position, "norm_position", ("pre", "post"))
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    batch = checks.positive_int(batch, "batch")
    seed, dev = _check_run(seed, device, dtype)

    x = _randn((batch, n_tokens, d_model), _data_generator(seed), dtype, dev)  # (B, T, d)
    std, mean = {}, {}
    for kind in norm_list:
        model = TransformerStack(
            depth, d_model, n_heads, norm=kind, norm_position=norm_position, residual=True,
            final_norm=False, seed=seed, dtype=dtype, device=dev,
        )
        stats = layer_stats(model, x)
        std[kind] = np.concatenate([[x.std().item()], np.asarray(stats.std, dtype=np.float64)])
        mean[kind] = np.concatenate([[x.mean().item()], np.asarray(stats.mean, dtype=np.float64)])
    return ActivationStats(layer=np.arange(depth + 1), std=std, mean=mean)


_SENTENCE = "the cat sat on the mat".split()
_OTHER_SENTENCE = "gradients flow along highways through deep networks today".split()


def norm_comparison(
    d: int = 16,
    pad_lengths: tuple[int, int] = (8, 12),
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> NormComparison:
    """LayerNorm vs BatchNorm vs RMSNorm on three situations that should not change a token's output.

    LN/RMS: statistics over one token's d features; BN: y = (x − μ_B)/√(σ²_B + ε), μ_B over all B·T tokens.

    Rows (each value is max |Δ output| on the real tokens, or "fails: <error>"):
      1. "batch of one token (training)": the token alone vs the same token inside a normal batch.
      2. "padding: same sentence, two pad lengths": a sentence padded to two lengths, batched with another.
      3. "train vs eval mode": the same batch through the norm in training and in evaluation mode.

    Args:
        d: embedding width.
        pad_lengths: the two padded lengths of test 2 (both ≥ the sentence's length, different).
        seed: seeds the word embeddings.
        device, dtype: where and in what precision to run.
    """
    d = checks.integer(d, "d", minimum=2)
    pads = checks.int_list(pad_lengths, "pad_lengths")
    longest = max(len(_SENTENCE), len(_OTHER_SENTENCE))
    if len(pads) != 2 or pads[0] == pads[1] or min(pads) < longest:
        raise ValueError(f"pad_lengths must be two different lengths >= {longest}; got {pad_lengths!r}")
    seed, dev = _check_run(seed, device, dtype)

    vocab = sorted(set(_SENTENCE) | set(_OTHER_SENTENCE))
    embedding = _randn((len(vocab), d), _data_generator(seed), dtype, dev)  # (V, d)

    def embed(words: list[str], length: int) -> Tensor:  # (length, d); padding = zero vectors
        tokens = torch.stack([embedding[vocab.index(w)] for w in words])
        return torch.cat([tokens, torch.zeros(length - len(words), d, dtype=dtype, device=dev)])

    def fresh(kind: str) -> nn.Module:  # training mode, default γ = 1, β = 0
        return {"batch": TokenBatchNorm, "layer": LayerNorm, "rms": RMSNorm}[kind](d, device=dev, dtype=dtype)

    n_real = len(_SENTENCE)
    batch_a = torch.stack([embed(_SENTENCE, pads[0]), embed(_OTHER_SENTENCE, pads[0])])  # (2, T_a, d)
    batch_b = torch.stack([embed(_SENTENCE, pads[1]), embed(_OTHER_SENTENCE, pads[1])])  # (2, T_b, d)
    alone = batch_a[:1, :1]  # (1, 1, d): the sentence's first token, nothing else in the batch

    rows: list[dict] = [
        {"test": "batch of one token (training)"},
        {"test": "padding: same sentence, two pad lengths"},
        {"test": "train vs eval mode"},
    ]
    for kind in ("batch", "layer", "rms"):
        with torch.no_grad():
            norm = fresh(kind)
            try:
                rows[0][kind] = _max_abs_diff(norm(alone)[0, 0], norm(batch_a)[0, 0])
            except (ValueError, RuntimeError) as err:
                rows[0][kind] = f"fails: {err}"
            norm = fresh(kind)
            rows[1][kind] = _max_abs_diff(norm(batch_a)[0, :n_real], norm(batch_b)[0, :n_real])
            norm = fresh(kind)
            y_train = norm(batch_a)
            y_eval = norm.eval()(batch_a)
            rows[2][kind] = _max_abs_diff(y_train, y_eval)
    return NormComparison(rows=rows)


def _max_abs_diff(a: Tensor, b: Tensor) -> float:
    return (a - b).abs().max().item()


def _w2(layer: nn.Module) -> Tensor:
    """The second FFN weight W_2 (d_model × d_ff) of a gradlib block or a torch encoder layer."""
    if isinstance(layer, nn.TransformerEncoderLayer):
        return layer.linear2.weight
    return layer.ffn[-1].weight


def pre_post_ln(
    depths: Sequence[int] = (2, 4, 8, 16, 32),
    d_model: int = 64,
    n_heads: int = 4,
    d_ff: int = 256,
    implementation: str = "gradlib",
    seeds: Sequence[int] = (0, 1, 2),
    batch: int = 8,
    seq_len: int = 16,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> PrePostSweep:
    """Gradient of the last block's W_2 against depth for Pre-LN and Post-LN Transformers (Xiong et al. 2020).

    Post-LN: ‖∂L/∂W_2^L‖ = O(d√ln d), flat in L; Pre-LN: O(d√(ln d / L)), through the final LN's 1/‖x_L‖.

    Pre-LN ends with a final LayerNorm (as the paper defines it); ``hidden_norm`` is ‖x_L‖ before it.
    Loss: ⟨y, r⟩ with r ~ N(0, 1) fixed — not invariant to the final norm (see scale_invariant_loss_trap).

    Args:
        depths: numbers of blocks L, (D,).
        d_model, n_heads, d_ff: block sizes.
        implementation: "gradlib" (TransformerStack) or "torch" (independent nn.TransformerEncoderLayer's).
        seeds: one model init and input per seed, (S,); curves are means over seeds.
        batch, seq_len: input x ~ N(0, 1), shape (batch, seq_len, d_model).
        device, dtype: where and in what precision to run.
    """
    depth_list = checks.int_list(depths, "depths")
    d_model, n_heads = checks.heads(d_model, n_heads)
    d_ff = checks.positive_int(d_ff, "d_ff")
    checks.choice(implementation, "implementation", IMPLEMENTATIONS)
    seed_list = checks.int_list(seeds, "seeds", minimum=0)
    batch = checks.positive_int(batch, "batch")
    seq_len = checks.positive_int(seq_len, "seq_len")
    dev = checks.device(device)
    checks.floating_dtype(dtype, allowed=DTYPES)

    kinds = ("pre", "post")
    grads = {k: np.zeros((len(seed_list), len(depth_list))) for k in kinds}
    hidden = {k: np.zeros((len(seed_list), len(depth_list))) for k in kinds}
    per_layer = {k: np.zeros(max(depth_list)) for k in kinds}
    deepest = int(np.argmax(depth_list))
    for s, seed in enumerate(seed_list):
        x = _randn((batch, seq_len, d_model), _data_generator(seed), dtype, dev)  # (B, T, d)
        for kind in kinds:
            # One stack of the largest depth per seed; the depth-L network is its first L blocks and its
            # final norm (nested networks: the depth comparison is not blurred by redrawing every block).
            if implementation == "gradlib":
                stack = TransformerStack(
                    max(depth_list), d_model, n_heads, d_ff, norm="layer", norm_position=kind,
                    seed=seed, dtype=dtype, device=dev,
                )
            else:
                stack = torch_encoder_stack(
                    max(depth_list), d_model, n_heads, d_ff, norm_first=(kind == "pre"),
                    seed=seed, dtype=dtype, device=dev,
                )
            for j, L in enumerate(depth_list):
                w2_grads, x_last = _w2_grads(stack.layers[:L], stack.final_norm, x)
                grads[kind][s, j] = w2_grads[-1]
                hidden[kind][s, j] = x_last
                if j == deepest:
                    per_layer[kind] += w2_grads / len(seed_list)
    return PrePostSweep(
        depths=np.asarray(depth_list),
        last_layer_grad={k: grads[k].mean(axis=0) for k in kinds},
        per_seed=grads,
        hidden_norm={k: hidden[k].mean(axis=0) for k in kinds},
        implementation=implementation,
        per_layer=per_layer,
    )


def _w2_grads(blocks: Sequence[nn.Module], final_norm: nn.Module, x: Tensor) -> tuple[np.ndarray, float]:
    """‖∂L/∂W_2‖ of every block (one backward pass) and the mean token norm ‖x_L‖ before the final norm.

    y = final_norm(block_L(… block_1(x))), L = ⟨y, r⟩.
    """
    for block in blocks:
        x = block(x)  # (B, T, d)
    hidden = x.detach().norm(dim=-1).mean().item()
    y = final_norm(x)  # (B, T, d)
    g = torch.autograd.grad(_projection_loss(y), [_w2(block) for block in blocks])
    return np.array([gi.norm().item() for gi in g], dtype=np.float64), hidden


def scale_invariant_loss_trap(
    d: int = 64,
    n_tokens: int = 16,
    batch: int = 4,
    eps: float = 1e-5,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float64,
) -> dict[str, float]:
    """Why a probe's loss must not be invariant to the model's final LayerNorm.

    y = LN(x W) has mean(y²) = σ²/(σ² + ε) ≈ 1 whatever x is, so ∂mean(y²)/∂x ≈ 0 (exactly 0 at ε = 0);
    a random projection ⟨y, r⟩ is not invariant and has a gradient of order 1.

    Args:
        d: width of the linear layer and the LayerNorm.
        n_tokens, batch: input x ~ N(0, 1), shape (batch, n_tokens, d).
        eps: the LayerNorm's ε (> 0): the only thing that keeps the first gradient from being exactly 0.
        seed: seeds the linear layer and (separately) the inputs.
        device, dtype: float64 by default, so that the near-zero gradient is resolved.

    Returns:
        {"mean_square_loss": mean(y²), "mean_square_grad": ‖∂mean(y²)/∂x‖, "projection_grad": ‖∂⟨y, r⟩/∂x‖,
         "ratio": mean_square_grad / projection_grad}
    """
    d = checks.integer(d, "d", minimum=2)
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    batch = checks.positive_int(batch, "batch")
    eps = checks.finite(eps, "eps", positive=True)
    seed, dev = _check_run(seed, device, dtype)

    init = torch.Generator(device="cpu").manual_seed(seed)
    w = torch.empty(d, d, dtype=dtype)
    nn.init.xavier_uniform_(w, generator=init)
    w = w.to(dev)  # (d, d)
    norm = LayerNorm(d, eps=eps, device=dev, dtype=dtype)
    x = _randn((batch, n_tokens, d), _data_generator(seed), dtype, dev).requires_grad_(True)  # (B, T, d)

    y = norm(x @ w)  # (B, T, d)
    mean_square = (y**2).mean()
    (g_square,) = torch.autograd.grad(mean_square, x, retain_graph=True)
    (g_proj,) = torch.autograd.grad(_projection_loss(y), x)
    square, proj = g_square.norm().item(), g_proj.norm().item()
    return {
        "mean_square_loss": mean_square.item(),
        "mean_square_grad": square,
        "projection_grad": proj,
        "ratio": square / proj if proj > 0 else math.nan,
    }


# ================================================================================================== sweeps
def sweep(fn: Callable[..., Any], param: str, values: Sequence[Any], **fixed: Any) -> list:
    """Call one experiment for each value of one argument: [fn(**{param: v}, **fixed) for v in values].

    Args:
        fn: an experiment function of this module (any callable with named arguments).
        param: the name of the argument to vary; must be an argument of fn and not in fixed.
        values: the values to try, (V,).
        **fixed: the other arguments, held fixed.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable; got {fn!r}")
    accepted = inspect.signature(fn).parameters
    if not isinstance(param, str) or param not in accepted:
        raise ValueError(f"param must be an argument of {getattr(fn, '__name__', fn)}: one of "
                         f"{', '.join(accepted)}; got {param!r}")
    if param in fixed:
        raise ValueError(f"param {param!r} is varied, so it must not also be passed as a fixed argument")
    unknown = [name for name in fixed if name not in accepted]
    if unknown:
        raise ValueError(f"fixed arguments must be arguments of {getattr(fn, '__name__', fn)}; got {unknown}")
    value_list = checks.sequence(values, "values")
    return [fn(**{param: value}, **fixed) for value in value_list]
