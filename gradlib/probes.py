"""Probes: how gradients travel through any ``nn.Module``, measured with forward hooks.

    layer_grad_norms(model, x)           ‖∂loss/∂h_l‖ and ‖∂loss/∂θ_l‖ of every layer l, one backward pass
    param_grad_norms(model, x, params)   ‖∂loss/∂p‖ of each named parameter, one backward pass
    layer_stats(model, x)                forward statistics of every layer's output (mean, std, norm, rank)
    projection_loss(y)                   the default loss ⟨y, r⟩, r a fixed N(0, 1) tensor
    first_over_last(values)              values[0] / values[-1] (the vanishing ratio), inf/NaN allowed

Every probe runs ONE forward and ONE ``torch.autograd.grad``, never touches ``.grad`` and removes its
hooks in ``finally``. ``x`` is a tensor (features or token ids), called as ``model(x)``, or a Mapping of
keyword inputs, called as ``model(**x)``; NaN/inf in a floating input is refused (it would look exactly
like an explosion). An explosion inside the model is a result (``exploded_at``), never an exception.

The loss is, in this order: ``loss_fn(y)``; the model's own loss (a Hugging Face model given labels);
``projection_loss(y)``, y the logits, else the last hidden state, else the output (see
`gradlib.discovery.read_output`). Layers are found by `gradlib.discovery.find_layers`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from gradlib import checks
from gradlib.discovery import LayersArg, capture_outputs, find_layers, read_output
from gradlib.geometry import rank_collapse

__all__ = [
    "projection_loss", "first_over_last", "LayerGradNorms", "layer_grad_norms",
    "ParamGradNorms", "param_grad_norms", "LayerStats", "layer_stats",
]

Inputs = Union[Tensor, Mapping[str, Any]]
LossFn = Optional[Callable[[Tensor], Tensor]]


# -- the default loss and the first/last ratio -----------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _direction(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    # cached already cast and moved: no float64 draw or host-to-device copy on every call
    r = torch.randn(shape, generator=torch.Generator(device="cpu").manual_seed(0), dtype=torch.float64)
    return r.to(dtype=dtype, device=device)


def projection_loss(y: Tensor) -> Tensor:
    """The probes' default loss: a fixed random projection of the output, so ∂loss/∂y = r.

    loss = ⟨y, r⟩ = Σ y ⊙ r, r ~ N(0, 1) of y's shape, drawn in float64 from a CPU generator seeded 0, then
    cast to y's dtype and device (the same r on every device; cached per shape, dtype and device).
    Deliberately not mean(y²): after a final normalization (Pre-LN's last LayerNorm) mean(y²) is constant,
    so its gradient is exactly zero everywhere.
    """
    return (y * _direction(tuple(y.shape), y.dtype, y.device)).sum()


def first_over_last(values: Sequence[float]) -> float:
    """values[0] / values[-1] in float64; x/0 gives inf or NaN, never a warning (< 1: vanishes inputward)."""
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise ValueError("values must hold at least one number; got an empty sequence")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return float(a[0] / a[-1])


# -- result types ----------------------------------------------------------------------------------------
@dataclass
class LayerGradNorms:
    """Per-layer gradient norms of one backward pass, layers in forward (stack) order."""

    names: list[str]
    param_norms: np.ndarray  # (L,) ‖∂loss/∂θ_l‖ over all parameters of layer l
    output_grad_norms: np.ndarray  # (L,) ‖∂loss/∂h_l‖, h_l = output of layer l
    loss: float
    exploded_at: Optional[int]  # first layer (0-based) with an inf/NaN norm, else None
    loss_source: str = "projection of output"  # "model's own loss", "projection of logits", "loss_fn of …"

    def ratio(self) -> float:
        """‖∂loss/∂h_1‖ / ‖∂loss/∂h_L‖ (< 1: the gradient vanishes toward the input)."""
        return first_over_last(self.output_grad_norms)


@dataclass
class ParamGradNorms:
    """‖∂loss/∂p‖ of each parameter asked for, in the order given."""

    names: list[str]
    norms: np.ndarray  # (P,)
    loss: float
    exploded_at: Optional[int]  # first entry with an inf/NaN norm, else None
    loss_source: str


@dataclass
class LayerStats:
    """Forward statistics of every layer's output (layer 1 = the layer nearest the input)."""

    layer: np.ndarray  # (L,) 1..L
    mean: np.ndarray  # (L,) mean of all entries
    std: np.ndarray  # (L,) standard deviation of all entries
    norm: np.ndarray  # (L,) mean token norm ‖h_{b,t}‖ (norm over the last axis)
    rank_collapse: np.ndarray  # (L,) gradlib.geometry.rank_collapse(h_l)


# -- shared steps: check the inputs, run the model, choose the loss, capture the layers' outputs ---------
def _checked(model: object, x: object, loss_fn: object = None) -> Inputs:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise ValueError(f"loss_fn must be a callable y -> scalar tensor or None; got {type(loss_fn).__name__}")
    if isinstance(x, Mapping):
        for key, value in x.items():
            if isinstance(value, Tensor):
                checks.tensor(value, f"x[{key!r}]", finite=True)
        return x
    return checks.tensor(x, "x", finite=True)


def _run(model: nn.Module, x: Inputs) -> object:
    return model(**x) if isinstance(x, Mapping) else model(x)


def _loss(out: object, loss_fn: LossFn) -> tuple[Tensor, str]:
    """The scalar loss of a forward's output and where it came from."""
    y, own, what = read_output(out)
    if loss_fn is not None:
        loss, source = loss_fn(y), f"loss_fn of {what}"
    elif own is not None:
        loss, source = own, "model's own loss"
    else:
        loss, source = projection_loss(y), f"projection of {what}"
    if not isinstance(loss, Tensor) or loss.numel() != 1:
        raise ValueError("loss_fn must return a scalar tensor")
    return loss.reshape(()), source


def _norms64(tensors: Sequence[Optional[Tensor]], like: Tensor) -> Tensor:
    """‖g‖₂ of every tensor (None -> 0), in float64 so that float32 gradients near 1e38 do not overflow."""
    zero = torch.zeros((), dtype=torch.float64, device=like.device)
    if not tensors:
        return zero.reshape(0)
    return torch.stack([zero if g is None else torch.linalg.vector_norm(g, dtype=torch.float64) for g in tensors])


def _first_non_finite(*arrays: np.ndarray) -> Optional[int]:
    bad = ~np.logical_and.reduce([np.isfinite(a) for a in arrays])
    return int(np.argmax(bad)) if bad.any() else None


# -- the probes ------------------------------------------------------------------------------------------
def layer_grad_norms(model: nn.Module, x: Inputs, loss_fn: LossFn = None, layers: LayersArg = None) -> LayerGradNorms:
    """Gradient norm at every layer's output and parameters, from one backward pass.

    output_grad_norms_l = ‖∂loss/∂h_l‖₂ (h_l the output of layer l); param_norms_l = ‖(∂loss/∂θ)_{θ ∈ layer l}‖₂.

    Forward hooks capture each layer's output (its first tensor when it returns a tuple), then ONE
    ``torch.autograd.grad(loss, θ_layers + [h_1 … h_L])`` gives both kinds of gradient. Each probed layer
    must run exactly once per forward. Works as is on Hugging Face models: ``layer_grad_norms(gpt2, ids)``.

    Args:
        model: any nn.Module. Dropout in train mode makes the result random (use ``model.eval()``).
        x: the input: a tensor, (B, T, d) features or (B, T) token ids, called as ``model(x)``; or a Mapping
            of keyword inputs called as ``model(**x)``, e.g. ``{"input_ids": ids, "labels": ids}``.
        loss_fn: ``loss_fn(y) -> scalar tensor``; default the model's own loss, else ``projection_loss(y)``.
        layers: ModuleList / Sequential / list of modules to probe (overrides `find_layers`).
    Returns:
        LayerGradNorms with arrays of shape (L,) in the order of the layers and the loss used.
    """
    x = _checked(model, x, loss_fn)
    named_layers = find_layers(model, layers)

    # a parameter shared by several layers is asked for once but counted in every layer that holds it
    params: list[Tensor] = []  # unique trainable parameters of the layers
    index_of: dict[int, int] = {}  # id(parameter) -> its position in params
    owned: list[list[int]] = []  # owned[l] = positions of layer l's parameters
    for _, m in named_layers:
        trainable = [p for p in m.parameters() if p.requires_grad]
        for p in trainable:
            if id(p) not in index_of:
                index_of[id(p)] = len(params)
                params.append(p)
        owned.append([index_of[id(p)] for p in trainable])

    if isinstance(x, Tensor) and x.is_floating_point() and not x.requires_grad:
        # makes every layer output part of the graph even when the first layer has no parameters; the
        # gradient w.r.t. x itself is never asked for, so autograd does not compute it (token ids: skipped)
        x = x.detach().requires_grad_(True)

    with torch.enable_grad():
        with capture_outputs(named_layers) as outputs:
            out = _run(model, x)
        loss, source = _loss(out, loss_fn)
    for (name, _), h in zip(named_layers, outputs):
        if not h.requires_grad:
            raise ValueError(f"the output of layer '{name}' does not depend on anything that requires grad")

    grads = torch.autograd.grad(loss, params + outputs, allow_unused=True)
    param_grads, output_grads = grads[: len(params)], grads[len(params) :]

    # (P + L,) ‖∂loss/∂θ_p‖² then ‖∂loss/∂h_l‖, brought to the CPU in one device sync
    both = torch.cat([_norms64(param_grads, loss).pow(2), _norms64(output_grads, loss)]).cpu().numpy()
    param_norms = np.sqrt([both[i].sum() for i in owned])  # (L,) an empty list sums to 0
    output_grad_norms = both[len(params) :]
    return LayerGradNorms(
        names=[name for name, _ in named_layers],
        param_norms=param_norms,
        output_grad_norms=output_grad_norms,
        loss=float(loss.detach()),
        exploded_at=_first_non_finite(output_grad_norms, param_norms),
        loss_source=source,
    )


def param_grad_norms(
    model: nn.Module, x: Inputs, params: Mapping[str, Tensor], loss_fn: LossFn = None
) -> ParamGradNorms:
    """Gradient norm of each named parameter, from one forward and one backward pass.

    norms_p = ‖∂loss/∂p‖₂ (Frobenius for a matrix), e.g. ‖∇W_2‖ of every block or ‖∇W_Q‖ against ‖∇W_V‖.

    Args:
        model: any nn.Module, called as in `layer_grad_norms`.
        x: a tensor or a Mapping of keyword inputs, as in `layer_grad_norms`.
        params: {name: parameter} (tensors that require grad and that the loss may depend on; one that it
            does not reach gets norm 0). The same tensor under two names is asked for once.
        loss_fn: as in `layer_grad_norms`.
    Returns:
        ParamGradNorms with norms of shape (P,) in the order of `params`.
    """
    x = _checked(model, x, loss_fn)
    if not isinstance(params, Mapping) or len(params) == 0:
        raise ValueError(f"params must be a non-empty mapping {{name: parameter}}; got {type(params).__name__}")
    names = [str(name) for name in params]
    for name, p in params.items():
        if not isinstance(p, Tensor) or not p.requires_grad:
            raise ValueError(f"params[{name!r}] must be a tensor that requires grad; got {type(p).__name__}")
    unique = list({id(p): p for p in params.values()}.values())
    slot = {id(p): i for i, p in enumerate(unique)}

    with torch.enable_grad():
        loss, source = _loss(_run(model, x), loss_fn)
    grads = torch.autograd.grad(loss, unique, allow_unused=True)
    norms = _norms64(grads, loss).cpu().numpy()[[slot[id(p)] for p in params.values()]]
    return ParamGradNorms(names, norms, float(loss.detach()), _first_non_finite(norms), source)


def layer_stats(model: nn.Module, x: Inputs, layers: LayersArg = None) -> LayerStats:
    """Forward-only statistics of every layer's output: mean, std, mean token norm, rank collapse.

    norm_l = mean_{b,t} ‖h_l[b, t, :]‖₂; rank_collapse_l = ‖H − 1 h̄ᵀ‖_F / ‖H‖_F (gradlib.geometry).

    Args:
        model: any nn.Module, run under ``torch.no_grad()``; layers found as in `layer_grad_norms`.
        x: a tensor or a Mapping of keyword inputs, as in `layer_grad_norms`.
        layers: ModuleList / Sequential / list of modules to probe (overrides `find_layers`).
    Returns:
        LayerStats with arrays of shape (L,), computed in float64; rank_collapse is NaN for 1-D or
        non-finite outputs.
    """
    x = _checked(model, x)
    named_layers = find_layers(model, layers)
    with torch.no_grad(), capture_outputs(named_layers) as outputs:
        _run(model, x)
    mean, std, norm, collapse = [], [], [], []
    for h in outputs:
        h = h.detach().to(torch.float64)
        mean.append(float(h.mean()))
        std.append(float(h.std(correction=0)))
        norm.append(float(torch.linalg.vector_norm(h, dim=-1).mean()))
        # rank_collapse refuses inf/NaN tokens; here they are an explosion to report, so NaN
        finite = h.ndim >= 2 and bool(torch.isfinite(h).all())
        collapse.append(rank_collapse(h.reshape(-1, *h.shape[-2:])) if finite else float("nan"))
    mean, std, norm, collapse = (np.array(v) for v in (mean, std, norm, collapse))
    return LayerStats(layer=np.arange(1, len(outputs) + 1), mean=mean, std=std, norm=norm, rank_collapse=collapse)
