"""Every experiment of the course, by chapter (an index: the code lives in the exp_* modules).

    chapter 1  exp_telephone  mlp_gradients, rnn_gradients
    chapter 2  exp_attention  path_lengths, rank_collapse_depth, qk_gradients, softmax_saturation
    chapter 3  exp_residual   residual_vs_plain, residual_scale_spectrum, residual_stream_norms
    chapter 4  exp_norms      activation_stats, norm_comparison, scale_invariant_loss_trap
               exp_placement  pre_post_ln, stack_gradients

Each is a seeded, deterministic sweep that builds gradlib models, measures them through gradlib's probes and
returns a result of gradlib.results (or of its chapter module); nothing is drawn here.
"""

from gradlib.exp_attention import path_lengths, qk_gradients, rank_collapse_depth, softmax_saturation
from gradlib.exp_norms import activation_stats, norm_comparison, scale_invariant_loss_trap
from gradlib.exp_placement import pre_post_ln, stack_gradients
from gradlib.exp_residual import residual_scale_spectrum, residual_stream_norms, residual_vs_plain
from gradlib.exp_telephone import mlp_gradients, rnn_gradients

__all__ = [
    "mlp_gradients", "rnn_gradients",
    "path_lengths", "rank_collapse_depth", "qk_gradients", "softmax_saturation",
    "residual_vs_plain", "residual_scale_spectrum", "residual_stream_norms",
    "activation_stats", "norm_comparison", "pre_post_ln", "stack_gradients", "scale_invariant_loss_trap",
]
