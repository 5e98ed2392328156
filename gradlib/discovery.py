"""Discovery: find a model's repeated blocks and read what its forward returned.

    find_layers(model)   the (name, module) pairs of the model's stack of blocks, in forward order
    first_tensor(out)    a tensor, or the first tensor inside a tuple / list / dict / ModelOutput
    read_output(out)     (y, the model's own scalar loss or None, what y is) of any forward's return value
    capture_outputs(named_layers)   a `with` block whose forward hooks keep each layer's output tensor

Nothing here knows gradlib's own models: layers are found from the module tree alone, so the same code
probes a gradlib stack, ``nn.TransformerEncoder`` and Hugging Face models (GPT-2's ``h``, BERT's
``encoder.layer``, Llama's ``layers``). Outputs may be a tensor, a tuple, a dict or a Hugging Face
``ModelOutput`` (an OrderedDict subclass, so a Mapping: transformers need not be installed).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Callable, Iterator, Optional, Sequence, Union

from torch import Tensor, nn

__all__ = ["LayersArg", "find_layers", "first_tensor", "read_output", "capture_outputs"]

LayersArg = Optional[Union[nn.ModuleList, nn.Sequential, Sequence[nn.Module]]]

_CONTAINERS = (nn.ModuleList, nn.Sequential)


def _named(model: nn.Module, modules: Sequence[nn.Module]) -> list[tuple[str, nn.Module]]:
    """Each module with its qualified name in `model` ("h.0", "encoder.layer.3"), else "Class[i]"."""
    qualified = {id(m): name for name, m in model.named_modules()}
    return [(qualified.get(id(m), f"{type(m).__name__}[{i}]"), m) for i, m in enumerate(modules)]


def _checked_layers(layers: object) -> list[nn.Module]:
    if isinstance(layers, nn.Module) and not isinstance(layers, _CONTAINERS):
        raise ValueError(
            "layers must be an nn.ModuleList, nn.Sequential or a list of nn.Module; "
            f"got a single {type(layers).__name__}"
        )
    if isinstance(layers, (str, bytes, Mapping)) or not hasattr(layers, "__iter__"):
        raise ValueError(
            f"layers must be an nn.ModuleList, nn.Sequential or a list of nn.Module; got {type(layers).__name__}"
        )
    found = list(layers)  # type: ignore[call-overload]
    if not found:
        raise ValueError("layers must contain at least one nn.Module; got an empty sequence")
    for i, m in enumerate(found):
        if not isinstance(m, nn.Module):
            raise ValueError(f"layers must contain only nn.Module objects; layers[{i}] is {type(m).__name__}")
    if len({id(m) for m in found}) != len(found):
        raise ValueError("layers must not contain the same module twice")
    return found


def _repeated_blocks(model: nn.Module) -> Optional[nn.Module]:
    """The largest outermost ModuleList/Sequential of >= 2 modules that all have the same class.

    "Same class" keeps a block's own Sequential(Linear, GELU, Linear) from looking like a stack; "outermost"
    (not inside another such list) keeps a list of attention heads inside every block from winning over
    the list of blocks. Of equal lengths the first met in the module tree wins (T5: the encoder's blocks).
    """
    found = [
        (name, m)
        for name, m in model.named_modules()
        if name and isinstance(m, _CONTAINERS) and len(m) >= 2 and len({type(c) for c in m}) == 1
    ]
    names = [name for name, _ in found]
    outermost = [m for name, m in found if not any(name.startswith(other + ".") for other in names)]
    return max(outermost, key=len) if outermost else None  # max() keeps the first of equal lengths


def find_layers(model: nn.Module, layers: LayersArg = None) -> list[tuple[str, nn.Module]]:
    """The (name, module) pairs to probe, in stack order.

    Search order: `layers` as given; the children of an nn.Sequential; a non-empty ``.layers``
    ModuleList/Sequential (gradlib stacks, nn.TransformerEncoder, Llama); the largest outermost
    ModuleList/Sequential of >= 2 modules of one class (GPT-2's ``h``, BERT's ``encoder.layer``);
    otherwise ValueError asking for ``layers=``.

    Args:
        model: any nn.Module.
        layers: ModuleList / Sequential / list of distinct modules of `model`, overriding the search.
    Returns:
        [(qualified name, module), ...]; names are those of ``model.named_modules()`` ("h.0", ...).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module; got {type(model).__name__}")
    if layers is not None:
        return _named(model, _checked_layers(layers))
    container: Optional[nn.Module] = None
    own = getattr(model, "layers", None)
    if isinstance(model, nn.Sequential) and len(model) > 0:
        container = model
    elif isinstance(own, _CONTAINERS) and len(own) > 0:
        container = own
    else:
        container = _repeated_blocks(model)
    if container is None:
        raise ValueError(f"could not find the layers of {type(model).__name__}; pass layers=[...]")
    return _named(model, list(container))


def first_tensor(out: object) -> Optional[Tensor]:
    """`out` itself if a tensor, else the first tensor of a tuple/list or the first tensor value of a Mapping.

    A block returning (hidden, attention weights) gives hidden. A ModelOutput's first field is its loss when
    the model computed one: use `read_output` for the model's prediction.
    """
    if isinstance(out, Tensor):
        return out
    if isinstance(out, Mapping):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        return next((item for item in out if isinstance(item, Tensor)), None)
    return None


def read_output(out: object) -> tuple[Tensor, Optional[Tensor], str]:
    """What a forward returned: (y, the model's own scalar loss or None, a short name of y).

    y is ``logits``, else ``last_hidden_state``, else the first other tensor of a dict / ModelOutput; the
    first tensor of a tuple/list ("output[i]"); `out` itself if a tensor ("output"). The loss is a
    Mapping's ``loss`` when it is a one-element tensor (e.g. ``GPT2LMHeadModel(ids, labels=ids)``).

    Raises:
        ValueError: `out` holds no tensor.
    """
    if isinstance(out, Tensor):
        return out, None, "output"
    if isinstance(out, (tuple, list)):
        for i, item in enumerate(out):
            if isinstance(item, Tensor):
                return item, None, f"output[{i}]"
    elif isinstance(out, Mapping):
        loss = out.get("loss")
        loss = loss if isinstance(loss, Tensor) and loss.numel() == 1 else None
        tensors = {k: v for k, v in out.items() if isinstance(v, Tensor) and k != "loss"}
        for key in ("logits", "last_hidden_state", *tensors):
            if key in tensors:
                return tensors[key], loss, str(key)
        if loss is not None:  # only a loss: it is the output too
            return loss, loss, "loss"
    raise ValueError(f"the model returned no tensor (got {type(out).__name__})")


def _version_of(h: Optional[Tensor]) -> Optional[int]:
    """The tensor's in-place modification counter (None where there is none: inference-mode tensors)."""
    try:
        return None if h is None else h._version
    except RuntimeError:
        return None


@contextlib.contextmanager
def capture_outputs(named_layers: list[tuple[str, nn.Module]]) -> Iterator[list[Optional[Tensor]]]:
    """Forward hooks that store each layer's output tensor (the list yielded); removed on exit even if the forward raises.

    On exit it checks that every layer ran exactly once, returned a tensor, and that no later op modified that
    tensor in place (ValueError naming the layer otherwise): a gradient read from it is then the layer's own.

    Args:
        named_layers: (name, module) pairs, e.g. from :func:`find_layers`; names are for the error messages.
    """
    outputs: list[Optional[Tensor]] = [None] * len(named_layers)
    versions: list[Optional[int]] = [None] * len(named_layers)
    calls = [0] * len(named_layers)

    def make_hook(i: int) -> Callable:
        def hook(module: nn.Module, args: object, out: object) -> None:
            calls[i] += 1
            outputs[i] = h = first_tensor(out)  # HF v5 blocks return a tensor, older ones a tuple
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
