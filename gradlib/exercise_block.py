"""Chapter 6's exercise: the reader assembles a Pre-LN block from gradlib's parts; a checker compares it with PyTorch's.

    pre_ln_block(layer) -> block      layer: nn.TransformerEncoderLayer(norm_first=True, batch_first=True)
        block(x) = x' + FFN(LN₂(x')),  x' = x + SelfAttention(LN₁(x))        x: (B, T, d) -> (B, T, d)
        built from gradlib.multihead.SelfAttention, gradlib.norms.LayerNorm and an FFN, holding layer's weights

The checker draws PyTorch layers of two sizes (random weights, random LayerNorm γ and β, non-zero biases, so
that a weight left uncopied shows), hands the reader's function a copy of each, and compares the block's
output and its input gradient ∂⟨y, r⟩/∂x with PyTorch's on random inputs, through gradlib.exercises.check:
the first wrong entry is shown. Anything the reader passes or returns gets a Verdict in plain words (in the
reader's language, gradlib.i18n), never a traceback.
"""

from __future__ import annotations

import copy
import inspect
from typing import Callable

import torch
from torch import Tensor, nn

from gradlib import checks, draws
from gradlib.exercises import Verdict, check
from gradlib.i18n import _
from gradlib.probes import projection_loss
from gradlib.reference import torch_encoder_stack

__all__ = ["BLOCK_SIZES", "check_pre_ln_block", "EXERCISES"]

BLOCK_SIZES = ((8, 2, 16), (12, 3, 24))  # (d_model, n_heads, d_ff) of the layers the checker draws
RTOL, ATOL = 1e-4, 1e-5  # float32, like the parts' default dtype: the right block is off by ≈ 1e-6


def _kind(value: object) -> str:
    if value is None:
        return "None"
    noun = type(value).__name__
    return (_("an {type}") if noun[:1].lower() in "aeiou" else _("a {type}")).format(type=noun)


def _no(text: str) -> Verdict:
    return Verdict(False, _("Not yet: {problem}").format(problem=text))


def _torch_layer(d_model: int, n_heads: int, d_ff: int, seed: int) -> nn.TransformerEncoderLayer:
    """PyTorch's Pre-LN layer, every parameter random: weights as PyTorch draws them, then γ, β and biases."""
    layer = torch_encoder_stack(1, d_model, n_heads, d_ff, norm_first=True, final_norm=False, seed=seed).layers[0]
    g = draws.generator(seed + 1)
    for norm in (layer.norm1, layer.norm2):
        draws.assign(norm.weight, 1.0 + draws.normal((d_model,), 0.3, g))  # γ ≠ 1
        draws.assign(norm.bias, draws.normal((d_model,), 0.3, g))  # β ≠ 0
    draws.assign(layer.self_attn.in_proj_bias, draws.normal((3 * d_model,), 0.3, g))
    draws.assign(layer.self_attn.out_proj.bias, draws.normal((d_model,), 0.3, g))
    return layer


def _input_grad(f: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        y = f(x)
        if not y.requires_grad:
            # caught by check() and shown to the reader: "your pre_ln_block raised RuntimeError: …"
            raise RuntimeError(_("the block's output carries no gradient back to x "
                                 "(a .detach() or torch.no_grad() inside the block?)"))
        (g,) = torch.autograd.grad(projection_loss(y), x)  # ∂⟨y, r⟩/∂x
    return g


def check_pre_ln_block(fn: object, *, trials: int = 2, seed: int = 0) -> Verdict:
    """Chapter 6: you write fn(layer) -> block, a Pre-LN block from gradlib's parts holding `layer`'s weights.

    block(x) = x' + FFN(LN₂(x')), x' = x + Attn(LN₁(x)); x: (B, T, d). Compared with layer(x) (outputs) and
    with ∂⟨layer(x), r⟩/∂x (input gradients), for each size in BLOCK_SIZES on `trials` random inputs.
    """
    trials, seed = checks.positive_int(trials, "trials"), checks.seed(seed)
    if not callable(fn):
        return _no(_("pre_ln_block should be a function (def pre_ln_block(layer): ...); you passed {kind}.").format(
            kind=_kind(fn)))
    try:
        inspect.signature(fn).bind(None)
    except TypeError:
        return _no(_("your pre_ln_block must take one argument, PyTorch's layer: def pre_ln_block(layer): ..."))
    except ValueError:
        pass  # no signature to read (a builtin): just call it
    worst, tried = 0.0, 0
    for i, (d, h, d_ff) in enumerate(BLOCK_SIZES):
        layer = _torch_layer(d, h, d_ff, seed + 10 * i)
        try:
            with torch.random.fork_rng(devices=[]):  # nn.Linear(...) in the answer draws from the global RNG
                block = fn(copy.deepcopy(layer))  # a copy: the answer may change the layer it is given
        except Exception as error:  # the reader's bug, told in words
            text = (str(error).strip().splitlines() or [""])[0][:160]
            return _no(_("your pre_ln_block raised {error} (d_model={d_model}, n_heads={n_heads}).").format(
                error=f"{type(error).__name__}: {text}", d_model=d, n_heads=h))
        if block is None:
            return _no(_("your pre_ln_block returned None: did you forget `return block`?"))
        if not callable(block):
            return _no(_("your pre_ln_block should return the block, a function or nn.Module x -> y; "
                         "it returned {kind}.").format(kind=_kind(block)))

        def inputs(g: torch.Generator, d: int = d) -> tuple[Tensor]:
            b, t = (int(v) for v in torch.randint(1, 5, (2,), generator=g))
            return (draws.normal((b, t, d), 1.0, g).float(),)  # (B, T, d), float32 like the parts

        for what, answer, truth in ((_("the block's output"), lambda x: block(x), lambda x: layer(x)),
                                    (_("the input gradient ∂⟨y, r⟩/∂x"), lambda x: _input_grad(block, x),
                                     lambda x: _input_grad(layer, x))):
            # the truth is PyTorch's layer, in float32 on purpose (like the parts): no "compute in float64" for it
            verdict = check(answer, truth, inputs, name="pre_ln_block", trials=trials, rtol=RTOL, atol=ATOL,
                            seed=seed + i, what=what, truth=_("PyTorch's layer"), answer_of="autograd",
                            context=_("{what}, d_model={d_model}, n_heads={n_heads}").format(
                                what=what, d_model=d, n_heads=h),
                            low_precision=("float16", "bfloat16"))
            if not verdict:
                return verdict
            worst, tried = max(worst, verdict.largest_difference), tried + verdict.trials
    text = _("Right: your Pre-LN block matches PyTorch's nn.TransformerEncoderLayer(norm_first=True), outputs and "
             "input gradients, on {tried} random inputs of {sizes} sizes (largest difference {largest}).")
    return Verdict(True, text.format(tried=tried, sizes=len(BLOCK_SIZES), largest=f"{worst:.2g}"), worst, tried)


EXERCISES: dict[str, Callable[..., Verdict]] = {"pre_ln_block": check_pre_ln_block}
