"""Chapter 6's explorer: depth × norm position × architecture → the gradient reaching each block.

    encoder_compute(depth, position, architecture)
        = [exp_encoder.family_profile(architecture, depth),   a random GPT-2, BERT or Llama (Hugging Face)
           exp_encoder.torch_profile(position, depth)]        PyTorch's encoder layers, Pre-LN or Post-LN
        each relative to its last block (g_L = 1), drawn together by explorers.profile_view

The built models are cached: one Hugging Face model per (family, depth), one MAX_DEPTH-layer PyTorch stack per
position whose first L layers are the depth-L stack (a stack draws its layers in turn). A step to a depth seen
before only runs the two probes and redraws; :func:`prebuild` builds every model of the slider up front. Live (`Explorer`) or,
with ``static=True``, kernel-free (`StaticExplorer`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from torch import nn

from gradlib import checks, hf_models
from gradlib.controls import choice, int_slider, static_texts
from gradlib.exp_encoder import family_profile, torch_profile
from gradlib.explorer import Explorer
from gradlib.explorers import STATIC_DPI, profile_view
from gradlib.i18n import _
from gradlib.reference import TorchEncoderStack, torch_encoder_stack
from gradlib.results import DepthProfile
from gradlib.static import StaticExplorer, static_explorer
from gradlib.threads import one_torch_thread

__all__ = ["EXPLORER_WIDTH", "EXPLORER_HEADS", "EXPLORER_TOKENS", "EXPLORER_BATCH", "MAX_DEPTH", "DEPTH_STEP",
           "DEFAULT_GRID", "encoder_compute", "prebuild", "encoder_explorer"]

# Small sizes: probing a Hugging Face model and a PyTorch stack must fit one slider step.
EXPLORER_WIDTH, EXPLORER_HEADS, EXPLORER_TOKENS, EXPLORER_BATCH = 32, 4, 8, 2
MAX_DEPTH, DEPTH_STEP = 24, 2  # the slider: 2, 4, …, 24 blocks
DEFAULT_GRID = {"depth": [2, 6, 12, 24], "position": ["pre", "post"], "architecture": list(hf_models.FAMILIES)}


@functools.lru_cache(maxsize=None)  # a few dozen tiny models (≈ 0.1 MB each)
def _model(architecture: str, depth: int, width: int, heads: int, seed: int) -> nn.Module:
    return hf_models.build(architecture, depth, d_model=width, n_heads=heads, seed=seed)


@functools.lru_cache(maxsize=None)
def _stack(position: str, width: int, heads: int, seed: int) -> TorchEncoderStack:
    return torch_encoder_stack(MAX_DEPTH, width, heads, 4 * width, norm_first=position == "pre", seed=seed)


def encoder_compute(depth: int = 12, position: str = "pre", architecture: str = "gpt2", *,
                    width: int = EXPLORER_WIDTH, heads: int = EXPLORER_HEADS, tokens: int = EXPLORER_TOKENS,
                    batch: int = EXPLORER_BATCH, seed: int = 0) -> list[DepthProfile]:
    """[the family's profile, PyTorch's layers' profile], both g_l / g_L (exp_encoder).  g_l = ‖∂ℓ/∂h_l‖

    Args:
        depth: blocks of both models (1..MAX_DEPTH).
        position: "pre" or "post", the norm position of PyTorch's stack (a family's own is fixed by its design).
        architecture: a key of hf_models.FAMILIES.
        width, heads, tokens, batch, seed: the models' width and heads, the inputs (B, T), the seed.
    """
    depth = checks.positive_int(depth, "depth")
    if depth > MAX_DEPTH:
        raise ValueError(f"depth must be at most {MAX_DEPTH}; got {depth}")
    checks.choice(position, "position", ("pre", "post"))
    checks.choice(architecture, "architecture", tuple(hf_models.FAMILIES))
    width, heads = checks.heads(width, heads, d_name="width")
    sizes = dict(d_model=width, n_heads=heads, batch=checks.positive_int(batch, "batch"),
                 seq_len=checks.positive_int(tokens, "tokens"), seed=checks.seed(seed))
    with one_torch_thread():
        return [family_profile(architecture, depth, model=_model(architecture, depth, width, heads, seed), **sizes),
                torch_profile(position, depth, stack=_stack(position, width, heads, seed), **sizes)]


def prebuild(depths: Sequence[int] = tuple(range(DEPTH_STEP, MAX_DEPTH + 1, DEPTH_STEP)), *,
             width: int = EXPLORER_WIDTH, heads: int = EXPLORER_HEADS, seed: int = 0) -> int:
    """Build (and cache) every model the slider can ask for; returns how many models that is."""
    with one_torch_thread():
        for depth in checks.int_list(depths, "depths"):
            for architecture in hf_models.FAMILIES:
                _model(architecture, depth, width, heads, seed)
        for position in ("pre", "post"):
            _stack(position, width, heads, seed)
    return _model.cache_info().currsize + _stack.cache_info().currsize


def encoder_explorer(*, compute: Optional[Callable[..., Any]] = None, static: bool = False,
                     grid: Optional[Mapping[str, Sequence[Any]]] = None) -> Union[Explorer, StaticExplorer]:
    """Chapter 6: blocks, PyTorch's norm position and a real family → gradient reaching each block.

    g_l / g_L of GPT-2, BERT or Llama (random, from configs) next to PyTorch's encoder layers
    Args:
        compute: replaces :func:`encoder_compute` (same keywords: depth, position, architecture).
        static: return the kernel-free StaticExplorer instead (no ipywidgets needed).
        grid: the static explorer's grid (default DEFAULT_GRID: 4 × 2 × 3 = 24 frames).
    """
    compute = compute or encoder_compute
    controls = [
        int_slider("depth", DEPTH_STEP, MAX_DEPTH, 12, step=DEPTH_STEP, label=_("blocks")),
        choice("position", ("pre", "post"), "pre", label=_("PyTorch's norm"), buttons=True,
               option_labels=("Pre-LN", "Post-LN")),
        choice("architecture", tuple(hf_models.FAMILIES), "gpt2", label=_("family"), buttons=True,
               option_labels=tuple(f.label.split(" (")[0] for f in hf_models.FAMILIES.values())),
    ]
    title = _("The layers the world uses: gradient per block, relative to the last")
    if static:
        g = grid or DEFAULT_GRID
        initial = {c.name: c.value for c in controls if c.name in g and c.value in list(g[c.name])}
        return static_explorer(compute, profile_view(dpi=STATIC_DPI), g, title=title, initial=initial, **static_texts(controls, g))
    return Explorer(compute, profile_view(), controls, title=title)
