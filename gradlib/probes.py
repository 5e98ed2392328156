"""Probes: measure how gradients travel through any ``nn.Module``.

Every probe runs ONE forward and ONE backward pass (batched over basis vectors where a whole Jacobian is
needed), never touches ``.grad``, and removes its hooks in ``finally``. Results are small dataclasses of
numpy arrays; an exploding model returns inf/NaN inside the result (``exploded_at``) instead of raising.

The probes know nothing of gradlib's own models: layers are found by looking at the module tree, and
``grad_through_time`` only needs an object with ``.step(h, x_t)`` and ``.d_hidden``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Protocol, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from gradlib import checks

__all__ = [
    "LayerGradNorms",
    "layer_grad_norms",
    "GradThroughTime",
    "grad_through_time",
    "PositionGrads",
    "position_grad_norms",
    "JacobianSpectrum",
    "jacobian_top_singular_values",
    "rank_collapse",
    "token_cosine_similarity",
    "LayerStats",
    "layer_stats",
]

LayersArg = Optional[Union[nn.ModuleList, nn.Sequential, Sequence[nn.Module]]]


class SteppableRNN(Protocol):
    """What grad_through_time needs of a recurrent model (gradlib.rnn.VanillaRNN is one)."""

    d_hidden: int

    def step(self, h: Tensor, x_t: Tensor) -> Tensor:  # (B, d_hidden), (B, d_in) -> (B, d_hidden)
        ...


# --------------------------------------------------------------------------------------------------------
# result types
# --------------------------------------------------------------------------------------------------------
@dataclass
class LayerGradNorms:
    """Per-layer gradient norms of one backward pass, layers in forward (stack) order."""

    names: list[str]
    param_norms: np.ndarray  # (L,) ‖∂loss/∂θ_l‖ over all parameters of layer l
    output_grad_norms: np.ndarray  # (L,) ‖∂loss/∂h_l‖, h_l = output of layer l
    loss: float
    exploded_at: Optional[int]  # first layer (0-based) with an inf/NaN norm, else None

    def ratio(self) -> float:
        """First-to-last output-gradient ratio (< 1: the gradient vanishes toward the input).

        ratio = ‖∂loss/∂h_1‖ / ‖∂loss/∂h_L‖.
        """
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(self.output_grad_norms[0] / self.output_grad_norms[-1])


@dataclass
class GradThroughTime:
    """‖∂h_T/∂h_t‖₂ (spectral norm) for t = 0..T−1, where h_0 is the initial state and h_T the last."""

    steps: np.ndarray  # (T,) t = 0..T−1
    norms: np.ndarray  # (T,) ‖∂h_T/∂h_t‖₂
    exploded_at: Optional[int]  # first index of `steps` with an inf/NaN norm, else None

    @property
    def distance(self) -> np.ndarray:
        """T − t for every entry of `steps` (how many steps the gradient travelled back)."""
        return len(self.steps) - self.steps


@dataclass
class PositionGrads:
    """‖∂y_j/∂x_i‖_F for every input position i (entry i), against the distance |j − i| to the target j."""

    distance: np.ndarray  # (T,) |j − i|
    norms: np.ndarray  # (T,) ‖∂y_j/∂x_i‖_F


@dataclass
class JacobianSpectrum:
    """The k largest singular values of the input–output Jacobian, descending."""

    singular_values: np.ndarray  # (k,)


@dataclass
class LayerStats:
    """Forward statistics of every layer's output (layer 1 = the layer nearest the input)."""

    layer: np.ndarray  # (L,) 1..L
    mean: np.ndarray  # (L,) mean of all entries
    std: np.ndarray  # (L,) standard deviation of all entries
    norm: np.ndarray  # (L,) mean token norm ‖h_{b,t}‖ (norm over the last axis)
    rank_collapse: np.ndarray  # (L,) rank_collapse(h_l), see `rank_collapse`


# --------------------------------------------------------------------------------------------------------
# layer discovery and output capture (shared by layer_grad_norms and layer_stats)
# --------------------------------------------------------------------------------------------------------
def _model_name(model: nn.Module) -> str:
    return type(model).__name__


def _find_layers(model: nn.Module, layers: LayersArg) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs to probe, in stack order.

    Order of search: `layers` as given; the children of an nn.Sequential; a `.layers` ModuleList (gradlib
    stacks, nn.TransformerEncoder); the largest ModuleList that is not itself inside another ModuleList
    (so a ModuleList of attention heads inside each block does not win over the list of blocks).
    """
    qualified = {id(m): name for name, m in model.named_modules()}

    if layers is not None:
        if isinstance(layers, nn.Module) and not isinstance(layers, (nn.ModuleList, nn.Sequential)):
            raise ValueError(
                "layers must be an nn.ModuleList, nn.Sequential or a list of nn.Module; "
                f"got a single {type(layers).__name__}"
            )
        if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
            raise ValueError(
                f"layers must be an nn.ModuleList, nn.Sequential or a list of nn.Module; got {type(layers).__name__}"
            )
        found = list(layers)
        if len(found) == 0:
            raise ValueError("layers must contain at least one nn.Module; got an empty sequence")
        for i, m in enumerate(found):
            if not isinstance(m, nn.Module):
                raise ValueError(f"layers must contain only nn.Module objects; layers[{i}] is {type(m).__name__}")
        if len({id(m) for m in found}) != len(found):
            raise ValueError("layers must not contain the same module twice")
        return [(qualified.get(id(m), f"{type(m).__name__}[{i}]"), m) for i, m in enumerate(found)]

    container: Optional[nn.Module] = None
    if isinstance(model, nn.Sequential) and len(model) > 0:
        container = model
    elif isinstance(getattr(model, "layers", None), (nn.ModuleList, nn.Sequential)) and len(model.layers) > 0:
        container = model.layers
    else:
        lists = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
        names = [name for name, _ in lists]
        outermost = [
            (name, m) for name, m in lists if not any(name.startswith(other + ".") for other in names if other)
        ]
        if outermost:
            # max() keeps the first of equal lengths: the one met first in the module tree
            container = max(outermost, key=lambda item: len(item[1]))[1]
    if container is None:
        raise ValueError(f"could not find the layers of {_model_name(model)}; pass layers=[...]")
    return [(qualified.get(id(m), f"{type(m).__name__}[{i}]"), m) for i, m in enumerate(container)]


def _first_tensor(out: object) -> Optional[Tensor]:
    """The output itself, or the first tensor of a tuple/list output (e.g. (output, attention weights))."""
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, Tensor):
                return item
    return None


def _version_of(h: Optional[Tensor]) -> Optional[int]:
    """The tensor's in-place modification counter (None where there is none: inference-mode tensors)."""
    if h is None:
        return None
    try:
        return h._version
    except RuntimeError:
        return None


@contextlib.contextmanager
def _capture_outputs(named_layers: list[tuple[str, nn.Module]]) -> Iterator[list[Optional[Tensor]]]:
    """Forward hooks that store each layer's output tensor; removed on exit even if the forward raises."""
    outputs: list[Optional[Tensor]] = [None] * len(named_layers)
    versions: list[Optional[int]] = [None] * len(named_layers)
    calls = [0] * len(named_layers)

    def make_hook(i: int) -> Callable:
        def hook(module: nn.Module, args: object, out: object) -> None:
            calls[i] += 1
            h = _first_tensor(out)
            outputs[i] = h
            versions[i] = _version_of(h)

        return hook

    handles = [m.register_forward_hook(make_hook(i)) for i, (_, m) in enumerate(named_layers)]
    try:
        yield outputs
        # checks after the forward, still inside the try so the hooks go whatever happens
        for i, (name, _) in enumerate(named_layers):
            if calls[i] == 0:
                raise ValueError(
                    f"layer '{name}' was not run by the model's forward (or only through .forward(), which "
                    "skips hooks); pass layers= that the model calls"
                )
            if calls[i] > 1:
                raise ValueError(
                    f"layer '{name}' ran {calls[i]} times in one forward; each probed layer must run exactly once "
                    "(pass layers= with modules that run once)"
                )
            if outputs[i] is None:
                raise ValueError(f"layer '{name}' returned no tensor")
            if _version_of(outputs[i]) != versions[i]:
                # e.g. nn.ReLU(inplace=True) right after a Linear: the captured tensor now holds the ReLU's
                # output, so a gradient read from it would be silently attributed to the wrong layer
                raise ValueError(
                    f"the output of layer '{name}' was modified in place later in the forward "
                    "(e.g. by nn.ReLU(inplace=True)); pass layers= that excludes it"
                )
    finally:
        for handle in handles:
            handle.remove()


def _check_model_and_x(model: object, x: object) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
    checks.tensor(x, "x")


# --------------------------------------------------------------------------------------------------------
# layer_grad_norms
# --------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _probe_direction_cpu(shape: tuple[int, ...]) -> Tensor:
    return torch.randn(shape, generator=torch.Generator(device="cpu").manual_seed(0), dtype=torch.float64)


def _probe_direction(y: Tensor) -> Tensor:
    """The fixed N(0, 1) direction r of the default loss ⟨y, r⟩ (seed 0, drawn in float64 on the CPU)."""
    return _probe_direction_cpu(tuple(y.shape)).to(y)


def _norms64(tensors: Sequence[Optional[Tensor]], like: Tensor) -> Tensor:
    """‖g‖₂ of every tensor (None -> 0), in float64 so that float32 gradients near 1e38 do not overflow."""
    zero = torch.zeros((), dtype=torch.float64, device=like.device)
    if not tensors:
        return zero.reshape(0)
    return torch.stack([zero if g is None else torch.linalg.vector_norm(g, dtype=torch.float64) for g in tensors])


def _first_non_finite(*arrays: np.ndarray) -> Optional[int]:
    bad = np.zeros(len(arrays[0]), dtype=bool)
    for a in arrays:
        bad |= ~np.isfinite(a)
    return int(np.argmax(bad)) if bad.any() else None


def layer_grad_norms(
    model: nn.Module,
    x: Tensor,
    loss_fn: Optional[Callable[[Tensor], Tensor]] = None,
    layers: LayersArg = None,
) -> LayerGradNorms:
    """Gradient norm at every layer's output and parameters, from one backward pass.

    g_l = ∂loss/∂h_l with h_l the output of layer l; param_norms_l = ‖(∂loss/∂θ)_{θ ∈ layer l}‖₂.

    Forward hooks capture each layer's output (the first tensor when a layer returns a tuple), then ONE
    ``torch.autograd.grad(loss, θ_layers + [h_1 … h_L])`` gives both kinds of gradient; ``.grad`` is not
    touched and the hooks are removed in ``finally``. Non-finite norms are reported, not raised.

    The default loss is ⟨y, r⟩ with r a fixed N(0, 1) tensor of y's shape (seed 0), so ∂loss/∂y = r: a
    generic output direction. It is deliberately not mean(y²): a model ending in a normalization (Pre-LN's
    final LayerNorm) makes mean(y²) constant — exactly 1 after a LayerNorm without affine — so its gradient
    is exactly zero everywhere and every layer would look "vanished".

    Layers are found, in this order: ``layers`` as given; an nn.Sequential's children; a ``.layers``
    ModuleList (gradlib stacks, nn.TransformerEncoder); the largest outermost ModuleList in the model;
    otherwise ValueError. Each probed layer must run exactly once per forward.

    Args:
        model: any nn.Module; called as ``model(x)``. Dropout in train mode makes the result random.
        x: the model input, e.g. (B, T, d_model) or (B, width).
        loss_fn: ``loss_fn(y) -> scalar tensor``; default ⟨y, r⟩ as above.
        layers: ModuleList / Sequential / list of modules to probe (overrides discovery).
    Returns:
        LayerGradNorms with arrays of shape (L,) in the order of the layers.
    """
    _check_model_and_x(model, x)
    if loss_fn is not None and not callable(loss_fn):
        raise ValueError(f"loss_fn must be a callable y -> scalar tensor or None; got {type(loss_fn).__name__}")
    named_layers = _find_layers(model, layers)

    # Unique trainable parameters and, per (layer, parameter) pair, which layer it belongs to: a shared
    # parameter is asked for once but counted in every layer that holds it.
    params: list[Tensor] = []
    index_of: dict[int, int] = {}
    pair_layer: list[int] = []
    pair_param: list[int] = []
    for i, (_, m) in enumerate(named_layers):
        for p in m.parameters():
            if not p.requires_grad:
                continue
            if id(p) not in index_of:
                index_of[id(p)] = len(params)
                params.append(p)
            pair_layer.append(i)
            pair_param.append(index_of[id(p)])

    if x.is_floating_point() and not x.requires_grad:
        # makes every layer output part of the graph even when the first layer has no parameters; the
        # gradient w.r.t. x itself is never asked for, so autograd does not compute it
        x = x.detach().requires_grad_(True)

    with torch.enable_grad(), _capture_outputs(named_layers) as outputs:
        y = _first_tensor(model(x))
    if y is None:
        raise ValueError(f"model {_model_name(model)} returned no tensor")
    with torch.enable_grad():
        loss = (y * _probe_direction(y)).sum() if loss_fn is None else loss_fn(y)
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError("loss_fn must return a scalar tensor")
    for (name, _), h in zip(named_layers, outputs):
        if not h.requires_grad:
            raise ValueError(f"the output of layer '{name}' does not depend on anything that requires grad")

    grads = torch.autograd.grad(loss.reshape(()), params + outputs, allow_unused=True)
    param_grads, output_grads = grads[: len(params)], grads[len(params) :]

    device = y.device
    param_sq = _norms64(param_grads, y).pow(2)  # (P,) ‖∂loss/∂θ_p‖²
    layer_sq = torch.zeros(len(named_layers), dtype=torch.float64, device=device)
    if pair_layer:
        layer_sq.index_add_(
            0,
            torch.tensor(pair_layer, device=device),
            param_sq[torch.tensor(pair_param, device=device)],
        )
    both = torch.stack([layer_sq.sqrt(), _norms64(output_grads, y)]).cpu().numpy()  # one device sync
    param_norms, output_grad_norms = both[0], both[1]
    return LayerGradNorms(
        names=[name for name, _ in named_layers],
        param_norms=param_norms,
        output_grad_norms=output_grad_norms,
        loss=float(loss.detach()),
        exploded_at=_first_non_finite(output_grad_norms, param_norms),
    )


# --------------------------------------------------------------------------------------------------------
# grad_through_time
# --------------------------------------------------------------------------------------------------------
def grad_through_time(rnn: SteppableRNN, x: Tensor) -> GradThroughTime:
    """Spectral norm of ∂h_T/∂h_t for every t, from one batched backward pass.

    ∂h_T/∂h_t = ∏_{s=t+1..T} diag(act′(a_s)) W_hh  (for h_s = act(a_s), a_s = W_hh h_{s−1} + W_xh x_s + b).

    The RNN is unrolled with ``rnn.step(h, x_t)`` from h_0 = 0; the full d×d Jacobians of h_T w.r.t. every
    h_t come from one ``autograd.grad(..., is_grads_batched=True)`` over the basis vectors of h_T.

    Args:
        rnn: any object with ``step(h (1, d_h), x_t (1, d_in)) -> (1, d_h)`` and an int ``d_hidden``.
        x: the input sequence, (1, T, d_in) or (T, d_in).
    Returns:
        GradThroughTime with steps t = 0..T−1 and norms ‖∂h_T/∂h_t‖₂, shape (T,).
    """
    if not callable(getattr(rnn, "step", None)):
        raise ValueError(f"rnn must have a method step(h, x_t); {type(rnn).__name__} has none")
    d_hidden = getattr(rnn, "d_hidden", None)
    if not isinstance(d_hidden, int) or isinstance(d_hidden, bool) or d_hidden < 1:
        raise ValueError(f"rnn must have an integer attribute d_hidden >= 1; got {d_hidden!r}")
    checks.tensor(x, "x")
    if x.ndim == 3 and x.shape[0] != 1:
        raise ValueError(f"x must have batch size 1, shape (1, T, d_in); got shape {tuple(x.shape)}")
    if x.ndim not in (2, 3):
        raise ValueError(f"x must have shape (1, T, d_in) or (T, d_in); got shape {tuple(x.shape)}")
    xs = x.reshape(1, *x.shape[-2:]) if x.ndim == 2 else x  # (1, T, d_in)
    n_steps = xs.shape[1]
    if n_steps < 1:
        raise ValueError("x must have at least one time step")

    with torch.enable_grad():
        h = torch.zeros(1, d_hidden, dtype=xs.dtype, device=xs.device, requires_grad=True)  # h_0
        states = []  # h_0 … h_{T−1}
        for t in range(n_steps):
            states.append(h)
            h = rnn.step(h, xs[:, t])
        if tuple(h.shape) != (1, d_hidden):
            raise ValueError(f"rnn.step must return shape (1, {d_hidden}); got {tuple(h.shape)}")
        basis = torch.eye(d_hidden, dtype=h.dtype, device=h.device).unsqueeze(1)  # (d, 1, d)
        rows = torch.autograd.grad(h, states, grad_outputs=basis, is_grads_batched=True, allow_unused=True)
    # rows[t][i, 0, :] = ∂(h_T)_i/∂h_t, i.e. row i of the Jacobian
    jac = torch.stack(
        [torch.zeros(d_hidden, d_hidden, dtype=h.dtype, device=h.device) if g is None else g[:, 0, :] for g in rows]
    )  # (T, d, d)
    # the SVD refuses non-finite input: such steps get inf (an overflowed entry) or NaN (a NaN entry)
    finite = torch.isfinite(jac).flatten(1).all(dim=1)  # (T,)
    has_nan = torch.isnan(jac).flatten(1).any(dim=1)  # (T,)
    norms = torch.linalg.matrix_norm(torch.where(finite[:, None, None], jac, torch.zeros_like(jac)), ord=2)
    norms = torch.where(finite, norms, torch.where(has_nan, float("nan"), float("inf")))
    norms = norms.detach().cpu().numpy()
    return GradThroughTime(steps=np.arange(n_steps), norms=norms, exploded_at=_first_non_finite(norms))


# --------------------------------------------------------------------------------------------------------
# position_grad_norms
# --------------------------------------------------------------------------------------------------------
def position_grad_norms(fn: Callable[[Tensor], Tensor], x: Tensor, target: int = -1) -> PositionGrads:
    """How strongly output position j depends on every input position i, from one batched backward.

    norms_i = ‖∂y_j/∂x_i‖_F, with j = target; distance_i = |j − i|.

    Args:
        fn: module or callable, (1, T, d) -> (1, T, d_out) (or a tuple whose first element is that).
        x: (1, T, d) input.
        target: output position j, Python-style (−1 = the last position).
    Returns:
        PositionGrads with arrays of shape (T,); entry i is input position i.
    """
    if not callable(fn):
        raise ValueError(f"fn must be a module or callable (1, T, d) -> (1, T, d_out); got {type(fn).__name__}")
    checks.tensor(x, "x")
    if x.ndim != 3 or x.shape[0] != 1:
        raise ValueError(f"x must have shape (1, T, d); got shape {tuple(x.shape)}")
    n_pos = x.shape[1]
    if not isinstance(target, (int, np.integer)) or isinstance(target, bool):
        raise ValueError(f"target must be an int; got {type(target).__name__}")
    if not -n_pos <= target < n_pos:
        raise ValueError(f"target must be in [-{n_pos}, {n_pos - 1}] for T = {n_pos}; got {target}")
    j = int(target) % n_pos

    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = _first_tensor(fn(x))
        if y is None or y.ndim != 3 or y.shape[:2] != x.shape[:2]:
            got = None if y is None else tuple(y.shape)
            raise ValueError(f"fn must map (1, {n_pos}, d) to (1, {n_pos}, d_out); got output shape {got}")
        y_j = y[0, j]  # (d_out,)
        basis = torch.eye(y_j.shape[0], dtype=y.dtype, device=y.device)  # (d_out, d_out)
        (rows,) = torch.autograd.grad(y_j, x, grad_outputs=basis, is_grads_batched=True, allow_unused=True)
    if rows is None:  # y_j does not depend on x at all
        rows = torch.zeros(y_j.shape[0], *x.shape, dtype=x.dtype, device=x.device)
    # rows: (d_out, 1, T, d); the Frobenius norm of each (d_out × d) block ∂y_j/∂x_i
    norms = torch.linalg.vector_norm(rows[:, 0].transpose(0, 1).reshape(n_pos, -1), dim=1)
    return PositionGrads(distance=np.abs(j - np.arange(n_pos)), norms=norms.detach().cpu().numpy())


# --------------------------------------------------------------------------------------------------------
# jacobian_top_singular_values
# --------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _forward_mode_ready() -> Iterator[None]:
    """Context for torch.func.jvp through any model.

    Routes F.scaled_dot_product_attention to its plain-ops "math" kernel (the fused CPU kernel has no
    forward-mode derivative, so jvp through nn.MultiheadAttention would fail), and silences the
    DeprecationWarning torch itself raises when it first loads its forward-mode decompositions.
    """
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=DeprecationWarning)
        try:
            from torch.nn.attention import SDPBackend, sdpa_kernel

            stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        except ImportError:  # torch < 2.3 has no sdpa_kernel
            pass
        yield


def _vmapped(single: Callable[[Tensor], Tensor], batch: Tensor) -> Tensor:
    """single() applied to every row of batch: vmap where the ops support it, else a Python loop."""
    try:
        return torch.func.vmap(single)(batch)
    except (RuntimeError, NotImplementedError, ValueError):
        return torch.stack([single(b) for b in batch])


def jacobian_top_singular_values(
    fn: Callable[[Tensor], Tensor], x: Tensor, k: int = 4, *, n_iter: int = 50, seed: int = 0
) -> JacobianSpectrum:
    """Top-k singular values of J = ∂fn(x)/∂x by subspace iteration on JᵀJ, never forming J.

    V ← orth(Jᵀ J V) with J V from ``torch.func.jvp`` and Jᵀ U from ``torch.func.vjp``; finally
    σ = svdvals(J V) (Rayleigh–Ritz). A few extra columns beyond k speed convergence: the error of σ_i
    shrinks like (σ_{p+1}/σ_i)^(2·n_iter), p = number of columns.

    Args:
        fn: module or callable, x -> y (any shapes; a tuple output uses its first tensor).
        x: the point where the Jacobian is taken, any shape (n = x.numel()).
        k: how many singular values, 1 <= k <= min(x.numel(), y.numel()).
        n_iter: subspace iterations (>= 1).
        seed: seed of the random start subspace.
    Returns:
        JacobianSpectrum with the k largest singular values, descending (NaN if the model is non-finite).
    """
    if not callable(fn):
        raise ValueError(f"fn must be a module or callable; got {type(fn).__name__}")
    checks.tensor(x, "x", floating=True)
    k = checks.positive_int(k, "k")
    if k > x.numel():
        raise ValueError(f"k must be <= x.numel() = {x.numel()}; got {k}")
    n_iter = checks.positive_int(n_iter, "n_iter")

    x = x.detach()

    def f(inp: Tensor) -> Tensor:
        out = _first_tensor(fn(inp))
        if out is None:
            raise ValueError("fn must return a tensor")
        return out

    with torch.enable_grad(), _forward_mode_ready():
        y, vjp_fn = torch.func.vjp(f, x)  # one linearisation, reused for every Jᵀ U
    n, m = x.numel(), y.numel()
    if k > m:
        raise ValueError(f"k must be <= the output size {m}; got {k}")
    p = min(n, m, k + max(2, k // 2))  # columns: k plus a few for faster convergence

    def jv(v: Tensor) -> Tensor:  # (n,) -> (m,)  J v
        return torch.func.jvp(f, (x,), (v.reshape(x.shape),))[1].reshape(m)

    def jtu(u: Tensor) -> Tensor:  # (m,) -> (n,)  Jᵀ u
        return vjp_fn(u.reshape(y.shape))[0].reshape(n)

    g = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.linalg.qr(torch.randn(n, p, generator=g, dtype=torch.float64).to(x)).Q  # (n, p) orthonormal
    nan = np.full(k, np.nan)
    with torch.enable_grad(), _forward_mode_ready():
        for _ in range(n_iter):
            u = _vmapped(jv, v.T).T  # (m, p) = J V
            w = _vmapped(jtu, u.T).T  # (n, p) = Jᵀ J V
            if not torch.isfinite(w).all():
                return JacobianSpectrum(singular_values=nan)
            v = torch.linalg.qr(w).Q
        u = _vmapped(jv, v.T).T  # (m, p)
    if not torch.isfinite(u).all():
        return JacobianSpectrum(singular_values=nan)
    sigma = torch.linalg.svdvals(u.detach())[:k]
    return JacobianSpectrum(singular_values=sigma.cpu().numpy())


# --------------------------------------------------------------------------------------------------------
# token geometry
# --------------------------------------------------------------------------------------------------------
def _as_tokens(h: object, name: str = "h") -> Tensor:
    """h as a float64 tensor of shape (B, T, d)."""
    if isinstance(h, np.ndarray):
        h = torch.from_numpy(h)
    if not isinstance(h, Tensor):
        raise ValueError(f"{name} must be a torch.Tensor or numpy array; got {type(h).__name__}")
    if h.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (T, d) or (B, T, d); got shape {tuple(h.shape)}")
    h = h.detach().to(torch.float64)
    return h.unsqueeze(0) if h.ndim == 2 else h


def rank_collapse(h: Tensor) -> float:
    """How far the tokens are from all being equal: 0 = rank one (collapsed).

    r(H) = ‖H − 1 h̄ᵀ‖_F / ‖H‖_F with h̄ the mean token (Dong et al. 2021's residual, made scale-free).

    Args:
        h: (T, d) or (B, T, d) token representations; the batch is averaged over.
    Returns:
        The mean over the batch of r(H_b); computed in float64. All-zero H counts as collapsed (0).
    """
    h = _as_tokens(h)  # (B, T, d)
    residual = torch.linalg.vector_norm(h - h.mean(dim=1, keepdim=True), dim=(1, 2))  # (B,)
    total = torch.linalg.vector_norm(h, dim=(1, 2))  # (B,)
    ratio = torch.where(residual == 0, torch.zeros_like(residual), residual / total)
    return float(ratio.mean())


def token_cosine_similarity(h: Tensor) -> float:
    """Mean cosine similarity over all pairs of distinct tokens (1 = all tokens point the same way).

    c = mean_{i≠j} ⟨h_i, h_j⟩ / (‖h_i‖ ‖h_j‖).

    Args:
        h: (T, d) or (B, T, d), T >= 2; the batch is averaged over. Zero tokens count as similarity 0.
    """
    h = _as_tokens(h)  # (B, T, d)
    n_tok = h.shape[1]
    if n_tok < 2:
        raise ValueError(f"h must have at least 2 tokens (T >= 2); got T = {n_tok}")
    unit = torch.nn.functional.normalize(h, dim=-1)
    cos = unit @ unit.transpose(-2, -1)  # (B, T, T)
    off_diagonal = cos.sum(dim=(1, 2)) - cos.diagonal(dim1=1, dim2=2).sum(dim=1)  # (B,)
    return float((off_diagonal / (n_tok * (n_tok - 1))).mean())


def layer_stats(model: nn.Module, x: Tensor, layers: LayersArg = None) -> LayerStats:
    """Forward-only statistics of every layer's output: mean, std, mean token norm, rank collapse.

    norm_l = mean_{b,t} ‖h_l[b, t, :]‖₂; rank_collapse_l = ‖H − 1 h̄ᵀ‖_F / ‖H‖_F (see rank_collapse).

    Layers are found as in `layer_grad_norms`. Statistics are computed in float64.

    Args:
        model: any nn.Module, called as ``model(x)`` under ``torch.no_grad()``.
        x: the model input.
        layers: ModuleList / Sequential / list of modules to probe (overrides discovery).
    Returns:
        LayerStats with arrays of shape (L,); rank_collapse is NaN for 1-D outputs.
    """
    _check_model_and_x(model, x)
    named_layers = _find_layers(model, layers)
    with torch.no_grad(), _capture_outputs(named_layers) as outputs:
        model(x)
    mean, std, norm, collapse = [], [], [], []
    for h in outputs:
        h = h.detach().to(torch.float64)
        mean.append(float(h.mean()))
        std.append(float(h.std(correction=0)))
        norm.append(float(torch.linalg.vector_norm(h, dim=-1).mean()))
        collapse.append(rank_collapse(h.reshape(-1, *h.shape[-2:])) if h.ndim >= 2 else float("nan"))
    return LayerStats(
        layer=np.arange(1, len(outputs) + 1),
        mean=np.array(mean),
        std=np.array(std),
        norm=np.array(norm),
        rank_collapse=np.array(collapse),
    )
