"""Multi-head self-attention as an nn.Module: project, split into heads, attend, merge, project out.

    Q = X W_Qᵀ + b_Q,  K = X W_Kᵀ + b_K,  V = X W_Vᵀ + b_V          X: (B, T, d_model), each W: (d_model, d_model)
    Q_h, K_h, V_h = split(Q), split(K), split(V)                   h = 1..H, each (B, T, d_head), d_head = d_model/H
    Z_h = softmax(s·Q_h K_hᵀ) V_h                                  s = 1/√d_head  (gradlib.attention.attention)
    Z = concat_h(Z_h) W_Oᵀ + b_O                                   (B, T, d_model)

The weights have nn.MultiheadAttention's layout: its packed in_proj_weight is the rows W_Q; W_K; W_V, and
:meth:`SelfAttention.copy_from_torch` copies them in, so the two modules can be checked against each other.

Two options bound the attention logits (both off by default):

    qk_norm = "layer" | "rms"   Q_h ← N(Q_h), K_h ← N(K_h) over each head's d_head features (one N for q, one
                                for k, shared by the heads), gain 1 at init
                                (QK-norm: Henry et al. 2020; Dehghani et al. 2023; Wortsman et al. 2023);
                                with unit gain ‖q̂‖, ‖k̂‖ ≤ √d_head, so |s·q̂·k̂| ≤ √d_head
    sigma_reparam = True        every W ← γ·W/σ(W), γ a learnable scalar (1 at init), σ by power iteration
                                (σReparam: Zhai et al. 2023; torch.nn.utils.parametrizations.spectral_norm)
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize, skip_init
from torch.nn.utils.parametrizations import spectral_norm

from gradlib import checks, draws
from gradlib.attention import Scale, attention, score_scale

__all__ = ["SelfAttention", "QK_NORMS", "Gain"]

QK_NORMS = ("none", "layer", "rms")
POWER_ITERATIONS = 100  # power-method steps after spectral_norm's own 15 at attach: σ(Ŵ) = γ to ~1e-8 (d = 64)


class Gain(nn.Module):
    """A learnable scalar gain, as a parametrization: W ↦ γ·W (γ = 1 at init); stacked after spectral_norm."""

    def __init__(self, device: Optional[Union[str, torch.device]] = None, dtype: Optional[torch.dtype] = None):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones((), device=device, dtype=dtype))

    def forward(self, w: Tensor) -> Tensor:
        return self.gamma * w


class SelfAttention(nn.Module):
    """Multi-head self-attention written out: project, split heads, attend, merge heads, project out.

    Z = concat_h(softmax(s·Q_h K_hᵀ) V_h) W_Oᵀ + b_O, with Q = X W_Qᵀ + b_Q (nn.Linear) and s = 1/√d_head.

    Default init: Xavier-uniform for each (d_model × d_model) projection, biases 0. Xavier gives each square
    map Var(W) = 1/d_model, which keeps activation and gradient variance through it (Glorot & Bengio 2010,
    chapter 1) and is the init Dong et al. 2021 use for their rank-collapse experiments. It differs from two
    PyTorch defaults on purpose: nn.Linear's U[±1/√d] (Var = 1/(3d), the "old" init that vanishes), and
    nn.MultiheadAttention, which applies Xavier to the *packed* (3d × d) in-projection, so each of W_Q, W_K,
    W_V gets Var = 2/(4d) = 1/(2d). :meth:`copy_from_torch` copies any such weights exactly.

    Args:
        d_model: token width; must be divisible by n_heads.
        n_heads: number of heads, each of width d_head = d_model / n_heads.
        scale: score scale per head, as in :func:`gradlib.attention.attention` ("sqrt_dk" uses d_head).
        bias: whether the four projections have biases.
        qk_norm: "none", "layer" (nn.LayerNorm(d_head, bias=False)) or "rms" (nn.RMSNorm(d_head)) applied to
            every head's queries and keys (one norm for q, one for k, shared by the heads).
        sigma_reparam: reparametrize W_Q, W_K, W_V, W_O as γ·W/σ(W) (σReparam); then copy_from_torch is refused.
        seed: seed of the local generator for the init (any integer).
        generator: a CPU torch.Generator to draw the init from instead (wins over seed); lets a stack draw
            independent layers from one stream.
        device, dtype: of the parameters.
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int = 1,
        *,
        scale: Scale = "sqrt_dk",
        bias: bool = True,
        qk_norm: str = "none",
        sigma_reparam: bool = False,
        seed: int = 0,
        generator: Optional[torch.Generator] = None,
        device: Optional[Union[str, torch.device]] = None,
        dtype: Optional[torch.dtype] = None,
    ) -> None:
        checks.heads(d_model, n_heads)
        score_scale(int(d_model) // int(n_heads), scale)  # raises ValueError naming `scale`
        checks.boolean(bias, "bias")
        checks.choice(qk_norm, "qk_norm", QK_NORMS)
        checks.boolean(sigma_reparam, "sigma_reparam")
        checks.seed(seed)
        checks.generator(generator)
        super().__init__()
        self.d_model = int(d_model)
        self.n_heads = int(n_heads)
        self.d_head = self.d_model // self.n_heads
        self.scale = scale
        self.qk_norm, self.sigma_reparam = qk_norm, bool(sigma_reparam)
        factory = {"device": "cpu" if device is None else device, "dtype": dtype}
        # skip_init: nn.Linear's own init would draw from (and advance) the global RNG for nothing.
        self.w_q = skip_init(nn.Linear, d_model, d_model, bias=bias, **factory)
        self.w_k = skip_init(nn.Linear, d_model, d_model, bias=bias, **factory)
        self.w_v = skip_init(nn.Linear, d_model, d_model, bias=bias, **factory)
        self.w_o = skip_init(nn.Linear, d_model, d_model, bias=bias, **factory)
        norm = {"none": None, "layer": lambda: nn.LayerNorm(self.d_head, bias=False, **factory),
                "rms": lambda: nn.RMSNorm(self.d_head, **factory)}[qk_norm]
        self.q_norm = nn.Identity() if norm is None else norm()  # gain 1 at init: |logit| ≤ √d_head
        self.k_norm = nn.Identity() if norm is None else norm()
        self.reset_parameters(draws.generator(seed) if generator is None else generator)

    def reset_parameters(self, generator: Optional[torch.Generator] = None) -> None:
        """Xavier-uniform weights U[±√(6/(2·d_model))], zero biases (see the class docstring for why).

        Args:
            generator: CPU torch.Generator to draw W_Q, W_K, W_V, W_O from, in that order (None: seed 0).
        """
        checks.generator(generator)
        g = draws.generator(0) if generator is None else generator
        projections = (self.w_q, self.w_k, self.w_v, self.w_o)
        for lin in projections:  # draw into the plain weight; σReparam is re-attached to the new W below
            if parametrize.is_parametrized(lin, "weight"):
                parametrize.remove_parametrizations(lin, "weight", leave_parametrized=False)
        with torch.no_grad():
            for lin in projections:
                # Drawn on the CPU generator, then copied: the same numbers on every device. Unlike the
                # draws of gradlib.draws these are drawn in the parameter's own dtype (nn.init's way, kept
                # so that a seed keeps its weights).
                w = torch.empty(lin.weight.shape, dtype=lin.weight.dtype)
                nn.init.xavier_uniform_(w, generator=g)
                lin.weight.copy_(w)
                if lin.bias is not None:
                    lin.bias.zero_()
        for norm in (self.q_norm, self.k_norm):
            if isinstance(norm, (nn.LayerNorm, nn.RMSNorm)):
                norm.reset_parameters()
        if self.sigma_reparam:
            self._attach_sigma_reparam()

    def _attach_sigma_reparam(self) -> None:
        """W ← γ·W/σ(W) on the four projections: spectral_norm's power iteration, then a Gain γ."""
        device = self.w_q.weight.device
        # spectral_norm starts its power iteration from vectors drawn with the global RNG: draw them from a
        # fork seeded 0, so a model is the same every time and the caller's RNG is left as it was.
        with torch.random.fork_rng(devices=[] if device.type != "cuda" else [device]):
            torch.manual_seed(0)
            for lin in (self.w_q, self.w_k, self.w_v, self.w_o):
                spectral_norm(lin, n_power_iterations=1)  # 1 more step per forward in training mode
                training = lin.training
                with torch.no_grad():
                    lin.train()
                    for _ in range(POWER_ITERATIONS):  # in training mode every read of the weight is one step
                        lin.weight
                lin.train(training)
                parametrize.register_parametrization(lin, "weight", Gain(device, lin.weight.dtype))

    def raw_weight(self, name: str) -> Tensor:
        """The parameter W of projection `name` ("w_q", "w_k", "w_v" or "w_o") before any σReparam: W, not Ŵ."""
        lin = getattr(self, checks.choice(name, "name", ("w_q", "w_k", "w_v", "w_o")))
        return lin.parametrizations.weight.original if parametrize.is_parametrized(lin, "weight") else lin.weight

    def _split_heads(self, t: Tensor) -> Tensor:
        return t.unflatten(-1, (self.n_heads, self.d_head)).transpose(-3, -2)  # (..., h, T, d_head)

    def _merge_heads(self, t: Tensor) -> Tensor:
        return t.transpose(-3, -2).flatten(-2)  # (..., T, d_model)

    def _heads(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        checks.tensor(x, "x", min_dim=2, floating=True)
        if x.shape[-1] != self.d_model:
            raise ValueError(f"x must have last dimension d_model={self.d_model}; got shape {tuple(x.shape)}")
        q = self.q_norm(self._split_heads(self.w_q(x)))  # (B, h, T, d_head)   N(Q_h), or Q_h
        k = self.k_norm(self._split_heads(self.w_k(x)))  # (B, h, T, d_head)
        return q, k, self._split_heads(self.w_v(x))

    def scores(self, x: Tensor) -> Tensor:
        """The attention logits of every head, before any mask: A_h = s·Q_h K_hᵀ (after QK-norm if any).

        Args:
            x: tokens (B, T, d_model) (or unbatched (T, d_model)).
        Returns:
            (B, n_heads, T, T)
        """
        q, k, _ = self._heads(x)
        return q @ k.transpose(-2, -1) * score_scale(self.d_head, self.scale)

    def forward(
        self, x: Tensor, mask: Optional[Tensor] = None, *, return_weights: bool = False
    ) -> Union[Tensor, tuple[Tensor, Tensor]]:
        """Z = W_O · merge(attention(split(W_Q x), split(W_K x), split(W_V x))).

        Args:
            x: tokens (B, T, d_model) (or unbatched (T, d_model)).
            mask: bool, True = may attend: (T, T), (B, T, T) or (B, n_heads, T, T).
            return_weights: also return the attention weights P, (B, n_heads, T, T).
        """
        if mask is not None and isinstance(mask, Tensor) and mask.dim() == 3:
            mask = mask.unsqueeze(-3)  # (B, 1, T, T): the same mask for every head
        q, k, v = self._heads(x)  # (B, h, T, d_head) each
        # No finiteness check: inside a deep stack an overflow is a result to measure, not a bad input.
        heads = attention(q, k, v, scale=self.scale, mask=mask, check_finite=False)
        z = self.w_o(self._merge_heads(heads.output))  # (B, T, d_model)
        return (z, heads.weights) if return_weights else z

    def copy_from_torch(self, mha: nn.MultiheadAttention) -> None:
        """Copy nn.MultiheadAttention's weights: packed in_proj (rows W_Q; W_K; W_V) and out_proj.

        Outputs then match mha(x, x, x) when mha has dropout=0 (and batch_first=True for (B, T, d) inputs).

        Args:
            mha: with embed_dim == d_model, num_heads == n_heads, the same bias setting, no bias_k/bias_v.
        """
        if not isinstance(mha, nn.MultiheadAttention):
            raise ValueError(f"mha must be an nn.MultiheadAttention; got {type(mha).__name__}")
        if self.sigma_reparam:
            raise ValueError("copy_from_torch needs sigma_reparam=False: σReparam's Ŵ = γ·W/σ(W) is not a copy of W")
        if mha.embed_dim != self.d_model or mha.num_heads != self.n_heads:
            raise ValueError(
                f"mha must have embed_dim={self.d_model} and num_heads={self.n_heads}; "
                f"got embed_dim={mha.embed_dim}, num_heads={mha.num_heads}"
            )
        if mha.in_proj_weight is None:
            raise ValueError("mha must use a packed in_proj_weight (kdim = vdim = embed_dim)")
        if mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("mha must not use add_bias_kv or add_zero_attn")
        has_bias = self.w_q.bias is not None
        if (mha.in_proj_bias is not None) != has_bias:
            raise ValueError(f"mha must have bias={has_bias} like this module")
        with torch.no_grad():
            for lin, w in zip((self.w_q, self.w_k, self.w_v), mha.in_proj_weight.chunk(3, dim=0)):
                lin.weight.copy_(w)
            if has_bias:
                for lin, b in zip((self.w_q, self.w_k, self.w_v), mha.in_proj_bias.chunk(3, dim=0)):
                    lin.bias.copy_(b)
            self.w_o.weight.copy_(mha.out_proj.weight)
            if has_bias:
                self.w_o.bias.copy_(mha.out_proj.bias)

    def extra_repr(self) -> str:
        extra = (f", qk_norm={self.qk_norm!r}" if self.qk_norm != "none" else "") + (
            ", sigma_reparam=True" if self.sigma_reparam else "")
        return f"d_model={self.d_model}, n_heads={self.n_heads}, scale={self.scale!r}{extra}"
