"""gradlib: the experiments behind *Gradient Highways*, in three layers that only look down.

Flat, one idea per module, each readable in one sitting. The names most chapters use are re-exported here;
everything else lives in its module. (Line counts: ``python tools/module_table.py``; tests/test_layout.py
keeps this table and the README's in step with the code.)

| layer | module | lines | what it holds |
|---|---|---:|---|
| models and measurements | `checks` | 189 | Argument checks: a bad argument raises ValueError naming the argument and what is allowed. |
|  | `draws` | 121 | Seeded random draws: every random number gradlib uses comes from a local generator, never the global RNG. |
|  | `threads` | 49 | One torch thread for the body of a `with` block or a decorated function, restored afterwards. |
|  | `i18n` | 102 | The words gradlib draws, in the reader's language: figure titles, axes, legends, explorer controls. |
|  | `attention` | 300 | Scaled dot-product attention written out step by step, with its Jacobians in closed form. |
|  | `multihead` | 245 | Multi-head self-attention as an nn.Module: project, split into heads, attend, merge, project out. |
|  | `norms` | 283 | Normalization layers written out as their formulas: LayerNorm, RMSNorm, GroupNorm, DyT, BatchNorm over tokens. |
|  | `mlp` | 210 | Deep fully connected stacks, where gradients vanish or explode, and the skip connection that keeps them flowing. |
|  | `residual_variants` | 203 | Where the residual addition and the norm go: He et al. 2016's five units and the Transformer's four placements. |
|  | `transformer` | 332 | The Transformer block with every highway switchable, and stacks of N independently drawn blocks. |
|  | `transformer_init` | 144 | The init schemes of a Transformer block: PyTorch's encoder-layer init, Xavier, and DeepNet's. |
|  | `reference` | 106 | Reference models built from PyTorch's own layers, to check gradlib's Transformer against. |
|  | `rnn` | 158 | A vanilla recurrent network: the long path that attention and residuals shorten. |
|  | `discovery` | 203 | Discovery: find a model's repeated blocks and read what its forward returned. |
|  | `probes` | 279 | Probes: how gradients travel through any ``nn.Module``, measured with forward hooks. |
|  | `jacobians` | 230 | Jacobian probes: through time and between positions (the spectrum of J: gradlib.spectra). |
|  | `spectra` | 140 | Jacobian spectra: the k largest singular values of a model's input–output Jacobian, exact or converged. |
|  | `geometry` | 77 | Token geometry: how far a set of token representations is from collapsing onto a single token. |
|  | `hf_models` | 159 | Small Hugging Face models from configs, random seeded weights: GPT-2 (Pre-LN), BERT (Post-LN), Llama (Pre-RMSNorm). |
|  | `tasks` | 124 | Synthetic training tasks, drawn on the fly from a seeded generator: no downloads, chance loss known. |
|  | `seq_model` | 113 | A small sequence model to train: token embedding + learned positions + a stack of blocks + a head. |
|  | `entropy` | 145 | Attention entropy of every attention module of a model, read from the weights each module returns. |
|  | `training` | 270 | A small, seeded training loop on torch.optim that records how the gradient highways behave while learning. |
| experiments and results | `results` | 129 | What the experiments return: small dataclasses of numpy arrays that say what they are. |
|  | `exp_telephone` | 242 | Chapter 1's experiments — the telephone game: products of Jacobians vanish or explode. |
|  | `exp_rnn` | 142 | Chapter 1's recurrent experiments — the telephone game along time: ∂h_T/∂h_t is a product of T − t Jacobians. |
|  | `exp_attention` | 256 | Chapter 2's experiments — highway 1, self-attention: one step between any two tokens, and where it ends. |
|  | `exp_residual` | 324 | Chapter 3's experiments — highway 2, residual connections: the identity lane, and how loud the branch is. |
|  | `exp_norms` | 220 | Chapter 4's experiments, part 1 — highway 3, normalization: what a norm does (exp_placement: where it stands). |
|  | `exp_placement` | 272 | Chapter 4's experiments, part 2 — where the norm stands: Pre-LN vs Post-LN (exp_norms: what a norm does). |
|  | `exp_scores` | 339 | Chapter 5's experiments — the math of ∂A/∂Q: what the attention score does to the gradient. |
|  | `exp_encoder` | 294 | Chapter 6's experiments — the encoder layer, line by line, and the layers the world uses. |
|  | `exp_training` | 311 | Chapter 7's experiments — does it matter in training? The init-time diagnoses of chapters 1–4, trained. |
|  | `exp_faq` | 310 | Chapter 8's experiments — the FAQ answered by measurement: norms that leak, where the skip goes, norm-free stacks. |
|  | `experiments` | 76 | Every experiment of the course, by chapter (an index: the code lives in the exp_* modules). |
| drawing and interaction | `style` | 195 | The course's visual language: one colour per role, log axes that read as plain numbers, white figures. |
|  | `figures` | 271 | The course's figures, each drawn by ONE piece of code that the notebook and the live explorer both call. |
|  | `charts` | 268 | The remaining figures of chapters 2–5, on the same CurveFigure as gradlib.figures (one drawing per figure). |
|  | `diagrams` | 204 | The course's diagrams, drawn with matplotlib patches (no diagram script from another host). |
|  | `report` | 68 | Results as text: orders of magnitude, the checked facts of a chapter, and tables in Markdown. |
|  | `controls` | 138 | The controls of an explorer, described without ipywidgets (built only when a live explorer needs them). |
|  | `explorer` | 212 | A live explorer: controls → compute(**values) (cached) → the figure redrawn in place → a PNG in an Image. |
|  | `static` | 236 | The kernel-free twin of an explorer, for the static site: every grid point pre-rendered, swapped by inline JS. |
|  | `explorers` | 214 | The chapters' explorers: which controls, which experiment they call, which figure they redraw. |
|  | `explorers_scores` | 159 | Chapter 5's figures and explorer: what the attention score does to the softmax, drawn once for both. |
|  | `explorers_models` | 110 | Chapter 6's explorer: depth × norm position × architecture → the gradient reaching each block. |
|  | `training_plots` | 206 | Chapter 7's figures: training histories over seeds, one drawing per figure for notebook and explorer alike. |
|  | `explorers_training` | 154 | Chapter 7's explorer: the saved training histories, by norm position × warm-up × learning rate. |
|  | `verdicts` | 293 | Verdicts: the reader's function against the truth on random inputs, and what went wrong in plain words. |
|  | `exercises` | 147 | Exercises: the reader writes a small function, and a checker compares it with the truth on random inputs. |
|  | `exercise_block` | 123 | Chapter 6's exercise: the reader assembles a Pre-LN block from gradlib's parts; a checker compares it with PyTorch's. |
|  | `exercise_training` | 52 | Chapter 7's exercise: the reader writes the update-to-data ratio, a checker compares it with a real SGD step. |
|  | `exercise_faq` | 46 | Chapter 8's exercise: the reader writes DyT's Jacobian, and a checker compares it with autograd in plain words. |
"""

from gradlib.attention import scores_jacobian, softmax_jacobian, weights_jacobian
from gradlib.discovery import find_layers
from gradlib.geometry import rank_collapse, token_cosine_similarity
from gradlib.jacobians import grad_through_time, position_grad_norms, source_grad_norms
from gradlib.mlp import DeepMLP
from gradlib.multihead import SelfAttention
from gradlib.norms import LayerNorm, RMSNorm, TokenBatchNorm, make_norm
from gradlib.probes import layer_grad_norms, layer_stats, param_grad_norms, projection_loss
from gradlib.reference import torch_encoder_stack
from gradlib.results import Curve, CurveSet, DepthProfile
from gradlib.rnn import VanillaRNN
from gradlib.spectra import jacobian_top_singular_values
from gradlib.transformer import TransformerBlock, TransformerStack, attention_stack, deepnorm_constants

__version__ = "0.2.0"

__all__ = [
    # attention and its Jacobians
    "SelfAttention", "softmax_jacobian", "scores_jacobian", "weights_jacobian",
    # models
    "DeepMLP", "TransformerBlock", "TransformerStack", "attention_stack", "deepnorm_constants",
    "torch_encoder_stack", "VanillaRNN", "LayerNorm", "RMSNorm", "TokenBatchNorm", "make_norm",
    # probes
    "layer_grad_norms", "param_grad_norms", "projection_loss", "layer_stats", "find_layers", "grad_through_time",
    "position_grad_norms", "source_grad_norms", "jacobian_top_singular_values", "rank_collapse",
    "token_cosine_similarity",
    # results
    "Curve", "CurveSet", "DepthProfile",
]
