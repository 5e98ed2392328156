"""Chapter 6's experiments — the encoder layer, line by line, and the layers the world uses.

    layer_match      a written-out layer against nn.TransformerEncoderLayer (same weights): max |Δy|, max |Δ∂ℓ/∂x|
    layer_choices    PyTorch's defaults that are not bugs but matter: dropout, batch_first, the 2048-wide FFN
    family_profile   ‖∂ℓ/∂h_l‖ after every block of a random GPT-2, BERT or Llama (gradlib.hf_models)
    torch_profile    the same for PyTorch's own encoder layers, Pre-LN or Post-LN (chapter 4's stacks)
    depth_sweep      first/last = ‖∂ℓ/∂h_1‖ / ‖∂ℓ/∂h_L‖ of each family against the depth L
    facts            the chapter's headline, re-measured for one seed: {checked sentence: holds?}

Measured through gradlib.probes (layer_grad_norms finds the blocks of a Hugging Face model itself); profiles are
gradlib.results.DepthProfile, relative to the last block when ``relative=True`` (the families' outputs differ in
scale, their shapes are what is compared).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from gradlib import checks, draws, hf_models
from gradlib.discovery import find_layers
from gradlib.exp_telephone import depth_profile
from gradlib.i18n import _
from gradlib.probes import layer_grad_norms, projection_loss
from gradlib.reference import TorchEncoderStack, torch_encoder_stack
from gradlib.results import CurveSet, DepthProfile, curve
from gradlib.threads import single_threaded
from gradlib.transformer import TransformerBlock

__all__ = ["LayerMatch", "LayerChoices", "layer_match", "layer_choices", "family_profile", "torch_profile",
           "depth_sweep", "facts", "D_MODEL", "N_HEADS", "BATCH", "SEQ_LEN", "DEPTH", "DEPTHS"]

D_MODEL, N_HEADS, BATCH, SEQ_LEN = 64, 4, 4, 16  # the chapter's models (d_ff = 4·d) and inputs
DEPTH, DEPTHS = 12, (2, 4, 8, 12, 24)  # the side-by-side profiles; the depth sweep


# ------------------------------------------------------------------------------------------ the layer itself
@dataclass(frozen=True)
class LayerMatch:
    """How far a written-out layer is from PyTorch's, on one input: largest absolute differences."""

    output_diff: float  # max |y_ours − y_torch|
    grad_diff: float  # max |∂ℓ/∂x ours − ∂ℓ/∂x torch|, ℓ = probes.projection_loss(y)
    output_scale: float  # max |y_torch|: what the differences are small against


def _output_and_input_grad(f: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor]:
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        y = f(x)
        (g,) = torch.autograd.grad(projection_loss(y), x)
    return y.detach(), g


@single_threaded
def layer_match(forward: Callable[[Tensor], Tensor], layer: nn.TransformerEncoderLayer, batch: int = 2,
                seq_len: int = 8, seed: int = 0) -> LayerMatch:
    """Compare forward(x) with layer(x) and their input gradients, x ~ N(0, 1) of shape (batch, seq_len, d).

    output_diff = max |forward(x) − layer(x)|;  grad_diff = max |∂ℓ/∂x − ∂ℓ_torch/∂x|, ℓ = ⟨y, r⟩.

    Args:
        forward: the written-out layer, x (B, T, d) -> y (B, T, d), holding `layer`'s weights.
        layer: nn.TransformerEncoderLayer with batch_first=True (dropout 0, or in eval mode).
        batch, seq_len: input shape; seed: its data stream; x has the dtype of the layer's weights.
    """
    if not callable(forward):
        raise ValueError(f"forward must be a function x -> y; got {type(forward).__name__}")
    if not isinstance(layer, nn.TransformerEncoderLayer):
        raise ValueError(f"layer must be an nn.TransformerEncoderLayer; got {type(layer).__name__}")
    if not layer.self_attn.batch_first:
        raise ValueError("layer must have batch_first=True: the written-out layer reads x as (B, T, d)")
    batch, seq_len = checks.positive_int(batch, "batch"), checks.positive_int(seq_len, "seq_len")
    weight = layer.linear1.weight
    x = draws.randn((batch, seq_len, layer.self_attn.embed_dim), draws.data_generator(checks.seed(seed)),
                    weight.dtype, weight.device)  # (B, T, d)
    y_ours, g_ours = _output_and_input_grad(forward, x)
    y_torch, g_torch = _output_and_input_grad(layer, x)
    if y_ours.shape != y_torch.shape:
        raise ValueError(f"forward must return shape {tuple(y_torch.shape)}; got {tuple(y_ours.shape)}")
    return LayerMatch(output_diff=float((y_ours - y_torch).abs().max()),
                      grad_diff=float((g_ours - g_torch).abs().max()), output_scale=float(y_torch.abs().max()))


@dataclass(frozen=True)
class LayerChoices:
    """nn.TransformerEncoderLayer's defaults, and what each does (measured at d_model, n_heads)."""

    norm_first: bool  # the default norm position: False = Post-LN, as in Vaswani et al. 2017
    batch_first: bool  # the default layout: False = (T, B, d)
    dropout: float  # the default dropout probability
    dropout_sites: tuple[str, ...]  # where the layer applies dropout
    dropout_train_diff: float  # max |y − y'| between two calls in train mode (dropout on)
    dropout_eval_diff: float  # the same in eval mode
    batch_leak: float  # ‖∂⟨y_0, r⟩/∂x_1‖: sequence 0's output against sequence 1's input, (B, T, d) fed as (T, B, d)
    batch_leak_fixed: float  # the same with batch_first=True
    d_ff: int  # the default FFN width
    params: int  # parameters of the default layer
    params_4x: int  # parameters with d_ff = 4·d_model
    ffn_share: float  # fraction of the default layer's parameters in its FFN


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _cross_sequence_grad(layer: nn.Module, x: Tensor) -> float:
    """‖∂⟨y[0], r⟩/∂x[1:]‖ for a (B, T, d) input: how much sequence 0's output depends on the other sequences."""
    with torch.enable_grad():
        x = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(projection_loss(layer(x)[0]), x)
    return float(g[1:].norm())


@single_threaded
def layer_choices(d_model: int = D_MODEL, n_heads: int = N_HEADS, batch: int = 2, seq_len: int = 8,
                  seed: int = 0) -> LayerChoices:
    """What nn.TransformerEncoderLayer(d_model, n_heads) does by default, each choice measured once.

    Args:
        d_model, n_heads: the layer; batch, seq_len: the input x ~ N(0, 1), (B, T, d); seed: layer and input.
    """
    d, h = checks.heads(d_model, n_heads)
    batch, seq_len, seed = checks.positive_int(batch, "batch"), checks.positive_int(seq_len, "seq_len"), checks.seed(seed)
    if batch < 2:
        raise ValueError(f"batch must be >= 2 (the leak is between sequences); got {batch}")
    x = draws.randn((batch, seq_len, d), draws.data_generator(seed), torch.float32, "cpu")  # (B, T, d)
    with torch.random.fork_rng(devices=[]):  # the layers' own init and dropout use the global RNG
        torch.manual_seed(seed)
        default = nn.TransformerEncoderLayer(d, h)
        ffn_params = _n_params(default.linear1) + _n_params(default.linear2)
        with torch.no_grad():
            train = (default(x.transpose(0, 1)), default(x.transpose(0, 1)))  # two calls, dropout on
            default.eval()
            evals = (default(x.transpose(0, 1)), default(x.transpose(0, 1)))
        layouts = {first: nn.TransformerEncoderLayer(d, h, 4 * d, dropout=0.0, batch_first=first)
                   for first in (False, True)}
    sites = tuple(name for name, m in default.named_modules() if isinstance(m, nn.Dropout))
    return LayerChoices(
        norm_first=default.norm_first, batch_first=default.self_attn.batch_first, dropout=float(default.dropout.p),
        dropout_sites=sites + ("self_attn (attention weights)",) * (default.self_attn.dropout > 0),
        dropout_train_diff=float((train[0] - train[1]).abs().max()),
        dropout_eval_diff=float((evals[0] - evals[1]).abs().max()),
        batch_leak=_cross_sequence_grad(layouts[False], x), batch_leak_fixed=_cross_sequence_grad(layouts[True], x),
        d_ff=default.linear1.out_features, params=_n_params(default), params_4x=_n_params(layouts[True]),
        ffn_share=ffn_params / _n_params(default),
    )


# ------------------------------------------------------------------------------------ the layers the world uses
def _relative(profile: DepthProfile) -> DepthProfile:
    """The profile divided by its last layer's values (so 1 at the top): a shape, comparable across models."""
    g, p = profile.grad_norms, profile.param_norms
    return replace(profile, grad_norms=g / g[-1], param_norms=p / p[-1])


def _role(position: str) -> str:
    return "norm" if position == "pre" else "baseline"  # Post-LN is chapter 4's troubled baseline


@single_threaded
def family_profile(family: str = "gpt2", depth: int = DEPTH, d_model: int = D_MODEL, n_heads: int = N_HEADS,
                   batch: int = BATCH, seq_len: int = SEQ_LEN, seed: int = 0, relative: bool = True,
                   key: Optional[str] = None, label: Optional[str] = None,
                   build_kwargs: Optional[Mapping[str, Any]] = None, model: Optional[nn.Module] = None) -> DepthProfile:
    """Gradient after every block of a random Hugging Face model of one family, on random token ids.

    g_l = ‖∂ℓ/∂h_l‖, h_l the output of block l, ℓ = ⟨last_hidden_state, r⟩ (probes.layer_grad_norms).

    Args:
        family: a key of hf_models.FAMILIES ("gpt2", "bert", "llama").
        depth, d_model, n_heads: the model (d_ff = 4·d_model, vocabulary 256), seeded by `seed`.
        batch, seq_len: token ids (B, T) from the data stream of `seed`.
        relative: divide by the last block's values (g_L = 1).
        key, label: how the profile is named (default: the family's key and label).
        build_kwargs: more keywords for hf_models.build, e.g. {"scaled_residual_init": False} for GPT-2.
        model: the model hf_models.build(family, depth, …) already built (an explorer's cache), probed instead.
    """
    checks.choice(family, "family", tuple(hf_models.FAMILIES))
    checks.boolean(relative, "relative")
    fam = hf_models.FAMILIES[family]
    if model is None:
        model = hf_models.build(family, depth, d_model=d_model, n_heads=n_heads, seed=seed, **dict(build_kwargs or {}))
    elif len(find_layers(model)) != checks.positive_int(depth, "depth"):
        raise ValueError(f"model must have depth={depth} blocks; got {len(find_layers(model))}")
    ids = hf_models.token_ids(batch, seq_len, seed=seed)  # (B, T)
    profile = depth_profile(key or family, label or fam.label, _role(fam.norm_position), layer_grad_norms(model, ids))
    return _relative(profile) if relative else profile


@single_threaded
def torch_profile(position: str = "pre", depth: int = DEPTH, d_model: int = D_MODEL, n_heads: int = N_HEADS,
                  batch: int = BATCH, seq_len: int = SEQ_LEN, seed: int = 0, relative: bool = True,
                  stack: Optional[TorchEncoderStack] = None) -> DepthProfile:
    """Chapter 4's stack: PyTorch's own encoder layers, Pre-LN (+ final LN) or Post-LN (reference.torch_encoder_stack).

    g_l = ‖∂ℓ/∂x_l‖ after every layer, x ~ N(0, 1) of shape (batch, seq_len, d_model), ℓ = ⟨y, r⟩; d_ff = 4·d.

    Args:
        position: "pre" or "post"; depth, d_model, n_heads, seed: the stack; batch, seq_len: the input.
        relative: divide by the last layer's values.
        stack: torch_encoder_stack(N ≥ depth, d_model, …, norm_first=position == "pre", seed=seed) already built:
            its first `depth` layers and final norm are probed — the same numbers, since a stack draws its
            layers in turn from one generator.
    """
    checks.choice(position, "position", ("pre", "post"))
    checks.boolean(relative, "relative")
    depth, batch, seq_len = (checks.positive_int(v, n) for v, n in ((depth, "depth"), (batch, "batch"),
                                                                     (seq_len, "seq_len")))
    if stack is None:
        stack = torch_encoder_stack(depth, d_model, n_heads, 4 * d_model, norm_first=position == "pre", seed=seed)
    elif len(stack.layers) < depth or stack.layers[0].norm_first != (position == "pre"):
        raise ValueError(f"stack must hold >= depth={depth} layers with norm_first={position == 'pre'}")
    layers = list(stack.layers[:depth])
    x = draws.randn((batch, seq_len, stack.layers[0].self_attn.embed_dim), draws.data_generator(checks.seed(seed)),
                    torch.float32, "cpu")  # (B, T, d)
    grads = layer_grad_norms(nn.Sequential(*layers, stack.final_norm), x, layers=layers)
    label = _("PyTorch layers, {norm}").format(norm=f"{position.capitalize()}-LN")  # Pre-LN, Post-LN: names
    profile = depth_profile(f"torch_{position}", label, _role(position), grads)
    return _relative(profile) if relative else profile


@single_threaded
def depth_sweep(families: Sequence[str] = tuple(hf_models.FAMILIES), depths: Sequence[int] = DEPTHS,
                seeds: Sequence[int] = (0,)) -> CurveSet:
    """first/last = ‖∂ℓ/∂h_1‖ / ‖∂ℓ/∂h_L‖ of each family against its depth L, mean over seeds (one curve each)."""
    names = checks.sequence(families, "families")
    for name in names:
        checks.choice(name, "families", tuple(hf_models.FAMILIES))
    depth_list = checks.int_list(depths, "depths")
    seed_list = checks.int_list(seeds, "seeds", minimum=0)
    curves = []
    for name in names:
        ratios = [np.mean([family_profile(name, L, seed=s).ratio for s in seed_list]) for L in depth_list]
        fam = hf_models.FAMILIES[name]
        curves.append(curve(name, fam.label, _role(fam.norm_position), depth_list, ratios))
    return CurveSet(tuple(curves))


# ------------------------------------------------------------------------------ the chapter's headline
MATCH_TOL = 1e-12  # float64, written-out layer vs PyTorch's: ≈ 1e-15 (outputs), ≈ 1e-14 (input gradients)
FFN_SHARE_MIN = 0.9  # d = 64: the 2048-wide FFN holds 0.94 of the default layer's parameters
PRE_FALLS = 1.1  # Pre-LN families, first/last at 12 blocks: GPT-2 1.22-1.24, Llama 2.3-2.6 (monotone falls)
POST_FLAT = 1.05  # BERT, max/min over 12 blocks: 1.018-1.021, the last block the largest
LLAMA_OVER_GPT2 = 1.5  # Llama's first/last over GPT-2's: 1.86-2.13 (GPT-2 draws its residual projections smaller)
UNSCALED_OVER_SCALED = 1.8  # GPT-2 with c_proj drawn like every other weight: 2.07-2.35 x GPT-2's own first/last


def _match(position: str, seed: int) -> LayerMatch:
    layer = torch_encoder_stack(1, 16, 2, 32, norm_first=position == "pre", final_norm=False, seed=seed,
                                dtype=torch.float64).layers[0]
    block = TransformerBlock(16, 2, 32, norm_position=position, dtype=torch.float64)
    block.copy_from_torch(layer)
    return layer_match(block, layer, seed=seed)


@single_threaded
def facts(seed: int) -> dict[str, bool]:
    """The chapter's headline re-measured at its settings for one seed: {checked sentence: holds?}.

    Args:
        seed: seeds every model and input, as in each experiment.
    """
    seed = checks.seed(seed)
    match = [_match(p, seed) for p in ("post", "pre")]
    ch = layer_choices(seed=seed)
    prof = {f: family_profile(f, DEPTH, seed=seed) for f in hf_models.FAMILIES}
    shallow = {f: family_profile(f, 4, seed=seed).ratio for f in ("gpt2", "llama")}
    unscaled = family_profile("gpt2", DEPTH, seed=seed, build_kwargs={"scaled_residual_init": False}).ratio
    bert = prof["bert"].grad_norms
    return {
        f"TransformerBlock == nn.TransformerEncoderLayer, Post-LN and Pre-LN (to {MATCH_TOL:g})": all(
            m.output_diff < MATCH_TOL and m.grad_diff < MATCH_TOL for m in match),
        "batch_first=False on a (B, T, d) batch mixes sequences; batch_first=True exactly not": bool(
            ch.batch_leak > 0 and ch.batch_leak_fixed == 0.0),
        "dropout: two train-mode calls differ, two eval-mode calls do not": bool(
            ch.dropout_train_diff > 0 and ch.dropout_eval_diff == 0.0),
        f"default d_ff = 2048: the FFN holds > {FFN_SHARE_MIN:.0%} of the layer (d = {D_MODEL})": bool(
            ch.d_ff == 2048 and ch.ffn_share > FFN_SHARE_MIN),
        f"GPT-2, Llama (Pre-LN): gradient falls block by block, first/last > {PRE_FALLS:g}": all(
            bool(np.all(np.diff(prof[f].grad_norms) < 0) and prof[f].ratio > PRE_FALLS) for f in ("gpt2", "llama")),
        f"BERT (Post-LN): flat within {POST_FLAT - 1:.0%}, largest at the last block": bool(
            bert.max() / bert.min() < POST_FLAT and np.argmax(bert) == len(bert) - 1),
        f"Llama's first/last > {LLAMA_OVER_GPT2:g} x GPT-2's": bool(
            prof["llama"].ratio > LLAMA_OVER_GPT2 * prof["gpt2"].ratio),
        "Pre-LN families: first/last grows from 4 to 12 blocks": all(
            prof[f].ratio > shallow[f] for f in ("gpt2", "llama")),
        f"GPT-2 without its 1/sqrt(2L) c_proj init: first/last > {UNSCALED_OVER_SCALED:g} x with it": bool(
            unscaled > UNSCALED_OVER_SCALED * prof["gpt2"].ratio),
    }
