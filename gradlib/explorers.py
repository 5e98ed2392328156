"""The chapters' explorers: which controls, which experiment they call, which figure they redraw.

    mlp_explorer          chapter 1  depth, activation, init, σ_w  → exp_telephone.mlp_gradients → DepthProfileFigure
    path_length_explorer  chapter 2  sequence length, RNN ρ        → exp_attention.path_lengths  → PathLengthFigure
    residual_explorer     chapter 3  depth, skips, branch scale α  → exp_telephone.mlp_gradients → DepthProfileFigure
    norm_explorer         chapter 4  blocks, norm, its position    → exp_placement.stack_gradients → DepthProfileFigure

Each ``*_compute`` calls its experiment with exactly the keywords it names (a renamed argument is an error,
never silently dropped) at sizes small enough for a slider step well under 100 ms on 2 cores. Each explorer
is live (`Explorer`, ipywidgets) or, with ``static=True``, its kernel-free twin (`StaticExplorer`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from gradlib.controls import Control, checkbox, choice, float_slider, int_slider, log_slider, static_texts
from gradlib.exp_attention import path_lengths
from gradlib.exp_placement import stack_gradients
from gradlib.exp_telephone import mlp_gradients
from gradlib.explorer import Explorer, FigureView
from gradlib.figures import DepthProfileFigure, PathLengthFigure
from gradlib.i18n import _
from gradlib.report import profile_verdict
from gradlib.results import DepthProfile
from gradlib.static import StaticExplorer, static_explorer
from gradlib.threads import one_torch_thread

__all__ = ["mlp_compute", "path_length_compute", "residual_compute", "norm_compute", "profile_view",
           "path_length_view", "mlp_explorer", "path_length_explorer", "residual_explorer", "norm_explorer"]

# Small default sizes: one uncached step (compute + redraw) must stay well under 100 ms on 2 CPU cores.
MLP_WIDTH, MLP_BATCH = 128, 16
STACK_WIDTH, STACK_TOKENS, STACK_BATCH = 32, 8, 2
STATIC_DPI = 110  # the site's frames: sharper than the live 90 dpi, still ~5 kB per palette PNG


# ------------------------------------------------------------------------------------------------ compute
def mlp_compute(depth: int = 10, activation: str = "tanh", init: str = "old", weight_scale: float = 1.0, *,
                width: int = MLP_WIDTH, batch: int = MLP_BATCH, seed: int = 0) -> DepthProfile:
    """Per-layer gradient norms of a deep MLP (exp_telephone.mlp_gradients).  ‖∂ℓ/∂h_l‖, l = 1…depth

    Args:
        depth, activation: as in mlp_gradients; init: "old", "xavier", "he" or "scaled" — W ~ N(0, σ_w²/n) with
            σ_w = weight_scale (weight_scale is unused by the other inits); width, batch, seed: size and inputs.
    """
    scaled = init == "scaled"
    with one_torch_thread():
        return mlp_gradients(depth=int(depth), width=width, activation=activation,
                             init="xavier" if scaled else init,  # any named init: weight_scale overrides it
                             weight_scale=float(weight_scale) if scaled else None, batch=batch, seed=seed)


def path_length_compute(seq_len: int = 16, rho: float = 1.0, *, d: int = 16, seed: int = 0) -> Any:
    """‖∂y_j/∂x_i‖ against |j − i| for a tanh RNN and one attention layer (exp_attention.path_lengths).

    Args:
        seq_len: n tokens; rho: the RNN's spectral radius; d: token width; seed: init and inputs.
    """
    with one_torch_thread():
        return path_lengths(seq_len=int(seq_len), rho=float(rho), d=d, seed=seed)


def residual_compute(depth: int = 30, residual: bool = True, alpha: float = 1.0, *, activation: str = "tanh",
                     init: str = "old", width: int = MLP_WIDTH, batch: int = MLP_BATCH, seed: int = 0) -> DepthProfile:
    """Per-layer gradient norms of a tanh MLP, plain or with scaled skips (exp_telephone.mlp_gradients).

    h_l = h_{l−1} + α·f(h_{l−1}) with skips (branch_scale = α), h_l = f(h_{l−1}) without (α unused).
    """
    alpha = float(alpha)
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number >= 0; got {alpha!r}")
    common = dict(depth=int(depth), width=width, activation=activation, init=init, batch=batch, seed=seed)
    with one_torch_thread():
        if not residual:  # the label names α although it plays no part: every control must change the picture
            label = _("plain (no skips; α = {alpha} unused)").format(alpha=f"{alpha:g}")
            return mlp_gradients(residual=False, key="plain", label=label, role="baseline", **common)
        label = _("residual, α = {alpha}").format(alpha=f"{alpha:g}")
        return mlp_gradients(residual=True, branch_scale=alpha, key="residual", label=label, role="residual",
                             **common)


def norm_compute(depth: int = 12, norm: str = "layer", position: str = "pre", *, d_model: int = STACK_WIDTH,
                 n_tokens: int = STACK_TOKENS, batch: int = STACK_BATCH, seed: int = 0) -> DepthProfile:
    """Per-layer gradient norms of a residual Transformer stack (exp_placement.stack_gradients).

    pre: x = x + f(N(x)) (and a final N); post: x = N(x + f(x)); g_l = ‖∂ℓ/∂x_l‖.
    """
    # without a norm the position changes nothing, but the label says so (every control changes the picture)
    label = _("no norm ({position}: nothing to place)").format(position=position) if norm == "none" else None
    with one_torch_thread():
        return stack_gradients(depth=int(depth), norm=norm, norm_position=position, d_model=d_model, n_heads=1,
                               n_tokens=n_tokens, batch=batch, seed=seed, label=label)


# -------------------------------------------------------------------------------------------------- views
def _profile_title(result: Any) -> Optional[str]:
    profiles = [result] if isinstance(result, DepthProfile) else list(result)
    if len(profiles) == 1:  # the number to notice goes into the picture: the static site has no caption
        return f"{profiles[0].label}  ·  {profile_verdict(profiles[0], short=True)}"
    return ", ".join(p.label for p in profiles)


def _profile_caption(result: Any) -> str:
    profiles = [result] if isinstance(result, DepthProfile) else list(result)
    return "; ".join(_("{label}: gradient at the first layer / at the last: {verdict}").format(
        label=p.label, verdict=profile_verdict(p)) if p.exploded_at is None else f"{p.label}: {profile_verdict(p)}"
        for p in profiles)


def profile_view(**kw: Any) -> FigureView:
    """A FigureView of DepthProfileFigure, the label and first/last ratio in its title."""
    return FigureView(DepthProfileFigure, title=_profile_title, caption=_profile_caption, **kw)


def _path_caption(result: Any) -> str:
    rnn, att = result.rnn, result.attention
    return _("farthest token (distance {distance}): RNN {rnn}, attention {attention}").format(
        distance=len(rnn) - 1, rnn=f"{rnn[-1]:.2g}", attention=f"{att[-1]:.2g}")


def path_length_view(**kw: Any) -> FigureView:
    """A FigureView of PathLengthFigure, the farthest token's two numbers in its caption."""
    return FigureView(PathLengthFigure, caption=_path_caption, **kw)


# --------------------------------------------------------------------------------------------- explorers
def _mlp_key(values: Mapping[str, Any]) -> tuple:
    v = dict(values)
    if v.get("init") != "scaled":
        v["weight_scale"] = None  # unused: the same result for every σ_w
    return tuple(sorted(v.items()))


def _make(compute: Callable[..., Any], view: Callable[..., FigureView], controls: Sequence[Control], title: str,
          key: Any, static: bool, grid: Optional[Mapping[str, Sequence[Any]]],
          default_grid: Mapping[str, Sequence[Any]]) -> Union[Explorer, StaticExplorer]:
    if static:
        g = grid or default_grid
        initial = {c.name: c.value for c in controls if c.name in g and c.value in list(g[c.name])}
        return static_explorer(compute, view(dpi=STATIC_DPI), g, title=title, initial=initial, **static_texts(controls, g))
    return Explorer(compute, view(), controls, title=title, key=key)


def mlp_explorer(*, compute: Optional[Callable[..., Any]] = None, static: bool = False,
                 grid: Optional[Mapping[str, Sequence[Any]]] = None) -> Union[Explorer, StaticExplorer]:
    """Chapter 1: depth, activation and init of a deep MLP → gradient reaching each layer.

    ‖∂ℓ/∂h_l‖ = ‖(∏_{m>l} diag(φ′) W_m)ᵀ ∂ℓ/∂h_L‖
    Args:
        compute: replaces :func:`mlp_compute` (same keywords: depth, activation, init, weight_scale).
        static: return the kernel-free StaticExplorer instead (no ipywidgets needed).
        grid: the static explorer's grid (default: depth × activation × init).
    """
    controls = [
        int_slider("depth", 2, 50, 10, label=_("depth")),
        choice("activation", ("tanh", "sigmoid", "relu", "identity"), "tanh", label=_("activation")),
        choice("init", ("old", "xavier", "he", "scaled"), "old", label=_("init"),
               option_labels=(_("old"), "Xavier", "He", _("scaled"))),
        log_slider("weight_scale", 0.25, 4.0, 1.0, label=_("σ_w (init = scaled)")),
    ]
    default_grid = {"depth": [5, 10, 20, 30, 50], "activation": ["tanh", "sigmoid", "relu", "identity"],
                    "init": ["old", "xavier", "he"]}
    return _make(compute or mlp_compute, profile_view, controls, _("Vanishing gradients in a deep MLP"), _mlp_key,
                 static, grid, default_grid)


def path_length_explorer(*, compute: Optional[Callable[..., Any]] = None, static: bool = False,
                         grid: Optional[Mapping[str, Sequence[Any]]] = None) -> Union[Explorer, StaticExplorer]:
    """Chapter 2: sequence length and RNN spectral radius → how much the farthest token still counts.

    RNN ∂h_n/∂x_1 has n − 1 factors; attention reaches x_1 in one step
    """
    controls = [
        int_slider("seq_len", 4, 64, 16, step=4, label=_("sequence length n")),
        float_slider("rho", 0.5, 1.5, 1.0, step=0.05, label=_("RNN spectral radius ρ")),
    ]
    default_grid = {"seq_len": [8, 16, 32, 64], "rho": [0.5, 0.8, 1.0, 1.2, 1.5]}
    return _make(compute or path_length_compute, path_length_view, controls,
                 _("Path length: a relay of calls vs a group call"), None, static, grid, default_grid)


def residual_explorer(*, compute: Optional[Callable[..., Any]] = None, static: bool = False,
                      grid: Optional[Mapping[str, Sequence[Any]]] = None) -> Union[Explorer, StaticExplorer]:
    """Chapter 3: depth, skip connections on/off and branch scale α → gradient reaching each layer.

    ∂h_l/∂h_{l−1} = I + α·J_f (with skips) vs J_f (plain)
    """
    controls = [
        int_slider("depth", 2, 50, 30, label=_("depth")),
        checkbox("residual", True, label=_("skip connections")),
        float_slider("alpha", 0.0, 2.0, 1.0, step=0.1, label=_("branch scale α")),
    ]
    default_grid = {"depth": [5, 10, 20, 30, 50], "residual": [False, True], "alpha": [0.0, 0.1, 0.5, 1.0, 2.0]}
    return _make(compute or residual_compute, profile_view, controls, _("Skip connections: the expressway"), None,
                 static, grid, default_grid)


def norm_explorer(*, compute: Optional[Callable[..., Any]] = None, static: bool = False,
                  grid: Optional[Mapping[str, Sequence[Any]]] = None) -> Union[Explorer, StaticExplorer]:
    """Chapter 4: depth, norm type and its position (pre/post) → gradient reaching each block.

    pre: x = x + f(N(x)); post: x = N(x + f(x)); N ∈ {LayerNorm, RMSNorm, none}
    """
    controls = [
        int_slider("depth", 2, 24, 12, label=_("blocks")),
        choice("norm", ("layer", "rms", "none"), "layer", label=_("norm"), buttons=True,
               option_labels=("LayerNorm", "RMSNorm", _("none"))),
        choice("position", ("pre", "post"), "pre", label=_("position"), buttons=True, option_labels=("Pre", "Post")),
    ]
    default_grid = {"depth": [2, 4, 8, 12, 24], "norm": ["layer", "rms", "none"], "position": ["pre", "post"]}
    return _make(compute or norm_compute, profile_view, controls, _("Where the norm goes: Pre-LN vs Post-LN"), None,
                 static, grid, default_grid)
