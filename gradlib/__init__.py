"""gradlib: the experiments behind *Gradient Highways*.

One module per idea, each importable on its own:

- ``attention``   scaled dot-product attention written out, and its analytic Jacobians (∂A/∂Q, softmax)
- ``norms``       LayerNorm, RMSNorm and BatchNorm over tokens, written out
- ``blocks``      deep MLPs, Transformer blocks (pre/post norm, residual scales) and stacks of them
- ``rnn``         a vanilla RNN whose recurrent matrix has a chosen spectral radius
- ``probes``      measurements from one backward pass: per-layer gradient norms, gradient through time,
                  gradient between positions, Jacobian singular values, rank collapse
- ``experiments`` seeded sweeps that return small dataclasses of numpy arrays
- ``plotting``    draws those results (one visual language for the whole course)
- ``widgets``     ipywidgets explorers and their kernel-free static twins (ipywidgets imported lazily)
- ``checks``      argument checks shared by the modules: a bad argument raises ValueError naming it

The names most chapters use are re-exported here; everything else lives in its module.
"""
from gradlib import attention, blocks, experiments, norms, plotting, probes, rnn, widgets
from gradlib.attention import SelfAttention, softmax_jacobian, scores_jacobian, weights_jacobian
from gradlib.blocks import DeepMLP, TransformerBlock, TransformerStack, attention_stack, torch_encoder_stack
from gradlib.norms import LayerNorm, RMSNorm, TokenBatchNorm, make_norm
from gradlib.probes import (
    grad_through_time,
    jacobian_top_singular_values,
    layer_grad_norms,
    layer_stats,
    position_grad_norms,
    rank_collapse,
)
from gradlib.rnn import VanillaRNN

__version__ = "0.1.0"

__all__ = [
    # modules
    "attention", "blocks", "experiments", "norms", "plotting", "probes", "rnn", "widgets",
    # attention
    "SelfAttention", "softmax_jacobian", "scores_jacobian", "weights_jacobian",
    # models
    "DeepMLP", "TransformerBlock", "TransformerStack", "attention_stack", "torch_encoder_stack", "VanillaRNN",
    "LayerNorm", "RMSNorm", "TokenBatchNorm", "make_norm",
    # probes
    "layer_grad_norms", "grad_through_time", "position_grad_norms", "jacobian_top_singular_values",
    "rank_collapse", "layer_stats",
]
