"""Every experiment of the course, by chapter (an index: the code lives in the exp_* modules).

    chapter 1  exp_telephone  mlp_gradients, chapter_profiles, gain_sweep, nn_linear_default
               exp_rnn        rnn_gradients, rnn_saturation
    chapter 2  exp_attention  path_lengths, rank_collapse_depth, qk_gradients
    chapter 3  exp_residual   residual_vs_plain, layer_spectrum, residual_scale_spectrum, residual_stream_norms,
                              branch_jacobian_scale
    chapter 4  exp_norms      activation_stats, norm_comparison, scale_invariant_loss_trap
               exp_placement  pre_post_ln, stack_gradients, deepnorm_depth
    chapter 5  exp_scores     key_scale_sweep, softmax_saturation, softmax_regimes, logit_growth
    chapter 6  exp_encoder    layer_match, layer_choices, family_profile, torch_profile, depth_sweep
    chapter 7  exp_training   mlp_run, ln_run, entropy_run, vanishing_trained, adam_caveat, warmup_runs, lr_sweep,
                              entropy_runs, clipping, prefetch
    chapter 8  exp_faq        causal_leak, placements, train_placements, deep_alternatives, norm_jacobian_scale,
                              optimizer_first_step, weight_growth

Each chapter module also has ``facts(seed)``: the chapter's headline checks, with their thresholds in one place
(the notebook's checked cell and tests/ both call it).

Each is a seeded, deterministic sweep that builds gradlib models, measures them through gradlib's probes and
returns a result of gradlib.results (or of its chapter module); nothing is drawn here.
"""

from gradlib.exp_attention import path_lengths, qk_gradients, rank_collapse_depth
from gradlib.exp_encoder import depth_sweep, family_profile, layer_choices, layer_match, torch_profile
from gradlib.exp_faq import (
    causal_leak,
    deep_alternatives,
    norm_jacobian_scale,
    optimizer_first_step,
    placements,
    train_placements,
    weight_growth,
)
from gradlib.exp_norms import activation_stats, norm_comparison, scale_invariant_loss_trap
from gradlib.exp_placement import deepnorm_depth, pre_post_ln, stack_gradients
from gradlib.exp_residual import (
    branch_jacobian_scale,
    layer_spectrum,
    residual_scale_spectrum,
    residual_stream_norms,
    residual_vs_plain,
)
from gradlib.exp_rnn import rnn_gradients, rnn_saturation
from gradlib.exp_scores import key_scale_sweep, logit_growth, softmax_regimes, softmax_saturation
from gradlib.exp_telephone import (
    chapter_profiles,
    gain_sweep,
    mlp_gradients,
    nn_linear_default,
)
from gradlib.exp_training import (
    adam_caveat,
    clipping,
    entropy_run,
    entropy_runs,
    ln_run,
    lr_sweep,
    mlp_run,
    prefetch,
    vanishing_trained,
    warmup_runs,
)

__all__ = [
    "mlp_gradients", "chapter_profiles", "gain_sweep", "nn_linear_default", "rnn_gradients", "rnn_saturation",
    "path_lengths", "rank_collapse_depth", "qk_gradients",
    "residual_vs_plain", "layer_spectrum", "residual_scale_spectrum", "residual_stream_norms", "branch_jacobian_scale",
    "activation_stats", "norm_comparison", "pre_post_ln", "stack_gradients", "deepnorm_depth", "scale_invariant_loss_trap",
    "key_scale_sweep", "softmax_saturation", "softmax_regimes", "logit_growth",
    "layer_match", "layer_choices", "family_profile", "torch_profile", "depth_sweep",
    "mlp_run", "ln_run", "entropy_run", "vanishing_trained", "adam_caveat", "warmup_runs", "lr_sweep", "entropy_runs",
    "clipping", "prefetch",
    "causal_leak", "placements", "train_placements", "deep_alternatives", "norm_jacobian_scale",
    "optimizer_first_step", "weight_growth",
]
