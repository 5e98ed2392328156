"""Chapter 4's experiments, part 2 — where the norm stands: Pre-LN vs Post-LN (exp_norms: what a norm does).

    pre_post_ln      ‖∇W_2‖ of the last block: Post-LN O(d√ln d) flat in L, Pre-LN O(d√(ln d/L)) (Xiong et al. 2020)
    stack_gradients  ‖∂ℓ/∂x_l‖ after every block of a residual stack, the norm before or after each sub-layer

Measured through gradlib.probes, on gradlib's TransformerStack and on PyTorch's own encoder layers
(gradlib.reference); results are gradlib.results types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from gradlib import checks, draws
from gradlib.exp_norms import NORM_NAMES
from gradlib.exp_telephone import depth_profile
from gradlib.probes import layer_grad_norms, layer_stats, param_grad_norms
from gradlib.reference import torch_encoder_stack
from gradlib.results import ROLES, CurveSet, DepthProfile, curve
from gradlib.transformer import TransformerStack

__all__ = ["PrePostSweep", "pre_post_ln", "stack_gradients"]

Device = Union[str, torch.device]


@dataclass(frozen=True)
class PrePostSweep:
    """‖∇W_2‖ of the last block against depth, Pre-LN ("pre") vs Post-LN ("post"), over seeds."""

    depths: np.ndarray  # (D,)
    per_seed: dict[str, np.ndarray]  # "pre"/"post" -> (S, D) last block's ‖∇W_2‖
    hidden_per_seed: dict[str, np.ndarray]  # "pre"/"post" -> (S, D) mean token norm ‖x_L‖ before any final norm
    per_layer: dict[str, np.ndarray]  # "pre"/"post" -> (L_max,) ‖∇W_2‖ of every block of the deepest stack
    implementation: str  # "gradlib" or "torch"

    @property
    def last_layer_grad(self) -> dict[str, np.ndarray]:
        """'pre'/'post' -> (D,) mean over seeds."""
        return {k: v.mean(axis=0) for k, v in self.per_seed.items()}

    @property
    def hidden_norm(self) -> dict[str, np.ndarray]:
        """'pre'/'post' -> (D,) mean over seeds of ‖x_L‖."""
        return {k: v.mean(axis=0) for k, v in self.hidden_per_seed.items()}

    @property
    def curves(self) -> CurveSet:
        """The last layer's gradient against L; Pre-LN's theory is Xiong et al.'s ∝ 1/√L, anchored at the first L."""
        pre, post = self.last_layer_grad["pre"], self.last_layer_grad["post"]
        guide = pre[0] * np.sqrt(self.depths[0] / self.depths)
        return CurveSet((curve("pre", "Pre-LN", "norm", self.depths, pre, theory=guide),
                         curve("post", "Post-LN", "baseline", self.depths, post)))


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

    Post-LN: ‖∂ℓ/∂W_2^L‖ = O(d√ln d), flat in L; Pre-LN: O(d√(ln d / L)), through the final LN's 1/‖x_L‖.

    Pre-LN ends with a final LayerNorm (as the paper defines it). The depth-L network of a seed is the first L
    blocks of one deep stack and its final norm (nested networks: the comparison is not blurred by redrawing).
    Loss: probes.projection_loss ⟨y, r⟩, which a final norm does not make invariant.

    Args:
        depths: numbers of blocks L, (D,).
        d_model, n_heads, d_ff: block sizes.
        implementation: "gradlib" (TransformerStack) or "torch" (independent nn.TransformerEncoderLayer's).
        seeds: one init and input per seed, (S,).
        batch, seq_len: input x ~ N(0, 1), shape (batch, seq_len, d_model).
        device, dtype: where and in what precision to run.
    """
    depth_list = checks.int_list(depths, "depths")
    checks.choice(implementation, "implementation", ("gradlib", "torch"))
    seed_list = checks.int_list(seeds, "seeds", minimum=0)
    batch = checks.positive_int(batch, "batch")
    seq_len = checks.positive_int(seq_len, "seq_len")
    device = checks.device(device)
    deepest = max(depth_list)
    deepest_at = depth_list.index(deepest)  # per_layer: once, even if the deepest depth is listed twice
    grads = {k: np.zeros((len(seed_list), len(depth_list))) for k in ("pre", "post")}
    hidden = {k: np.zeros((len(seed_list), len(depth_list))) for k in ("pre", "post")}
    per_layer = {k: np.zeros(deepest) for k in ("pre", "post")}
    for s, seed in enumerate(seed_list):
        for kind in ("pre", "post"):
            if implementation == "gradlib":
                stack = TransformerStack(deepest, d_model, n_heads, d_ff, norm="layer", norm_position=kind,
                                         seed=seed, dtype=dtype, device=device)
            else:
                stack = torch_encoder_stack(deepest, d_model, n_heads, d_ff, norm_first=(kind == "pre"), seed=seed,
                                            dtype=dtype, device=device)
            x = draws.randn((batch, seq_len, d_model), draws.data_generator(seed), dtype, device)  # (B, T, d)
            for j, L in enumerate(depth_list):
                blocks = list(stack.layers[:L])
                net = nn.Sequential(*blocks, stack.final_norm)  # y = final_norm(block_L(… block_1(x)))
                w2 = param_grad_norms(net, x, {f"block {i + 1}": _w2(b) for i, b in enumerate(blocks)}).norms
                grads[kind][s, j] = w2[-1]
                hidden[kind][s, j] = layer_stats(net, x, layers=[blocks[-1]]).norm[0]  # ‖x_L‖ before the norm
                if j == deepest_at:
                    per_layer[kind] += w2 / len(seed_list)
    return PrePostSweep(depths=np.asarray(depth_list), per_seed=grads, hidden_per_seed=hidden, per_layer=per_layer,
                        implementation=implementation)


def _w2(layer: nn.Module) -> Tensor:
    """The second FFN weight W_2 (d_model × d_ff) of a gradlib block or a torch encoder layer."""
    return layer.linear2.weight if isinstance(layer, nn.TransformerEncoderLayer) else layer.ffn[-1].weight


# ------------------------------------------------------------------------------------------ stack gradients
def stack_gradients(
    depth: int = 12,
    norm: str = "layer",
    norm_position: str = "pre",
    d_model: int = 32,
    n_heads: int = 1,
    n_tokens: int = 8,
    batch: int = 2,
    d_ff: Optional[int] = None,
    init: str = "default",
    final_norm: Optional[bool] = None,
    seed: int = 0,
    device: Device = "cpu",
    dtype: torch.dtype = torch.float32,
    key: Optional[str] = None,
    label: Optional[str] = None,
    role: Optional[str] = None,
) -> DepthProfile:
    """Gradient norm after every block of a residual Transformer stack, the norm before or after each sub-layer.

    pre: x = x + f(N(x)) (+ a final N);  post: x = N(x + f(x));  g_l = ‖∂ℓ/∂x_l‖, x_l the output of block l.

    Args:
        depth, norm, norm_position, d_model, n_heads, d_ff, init, final_norm: the stack, as in
            gradlib.transformer.TransformerStack (norm "layer", "rms" or "none"; init "deepnorm" is post-norm only).
        n_tokens, batch: input x ~ N(0, 1), shape (batch, n_tokens, d_model), from the data stream of `seed`.
        seed, device, dtype: as everywhere.
        key, label, role: how the profile is named and drawn (default label e.g. "pre-LayerNorm", "no norm").
    """
    device = checks.device(device)
    checks.positive_int(depth, "depth")  # named as here, not as TransformerStack's n_layers
    model = TransformerStack(depth, d_model, n_heads, d_ff, norm=norm, norm_position=norm_position, residual=True,
                             final_norm=final_norm, init=init, seed=seed, dtype=dtype, device=device)
    n_tokens = checks.positive_int(n_tokens, "n_tokens")
    batch = checks.positive_int(batch, "batch")
    x = draws.randn((batch, n_tokens, model.d_model), draws.data_generator(seed), dtype, device)  # (B, T, d)
    if label is None:
        deepnorm = "DeepNorm" if norm == "layer" else f"DeepNorm ({NORM_NAMES[norm]})"  # as the old module
        label = (deepnorm if init == "deepnorm" else "no norm" if norm == "none"
                 else f"{norm_position}-{NORM_NAMES[norm]}")
    role = role if role is not None else "baseline" if norm == "none" or norm_position == "post" else "norm"
    checks.choice(role, "role", ROLES)
    return depth_profile(key if key is not None else label, label, role, layer_grad_norms(model, x))
