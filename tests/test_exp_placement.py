"""Chapter 4 — where the norm stands (gradlib.exp_placement): Pre-LN vs Post-LN, and the gradient of every block.

Every conclusion is re-measured over seeds 0, 1, 2 with thresholds that leave a margin of ~3× or more over
what the seeds measured. Independent truths: PyTorch's own encoder layers (gradlib.reference, drawn with the
same numbers as gradlib's blocks), autograd on the block outputs unrolled by hand (no hooks), ∂⟨y, r⟩/∂y = r,
and ‖x‖ = √d after a LayerNorm. Where a number can be recomputed by calling the probe directly on the same
model and input, it must be equal.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from _experiment_helpers import _assert_facts_hold, _assert_same  # tests/: checks every experiment test shares
from gradlib import draws
from gradlib import exp_placement as P
from gradlib.probes import layer_grad_norms, param_grad_norms
from gradlib.reference import torch_encoder_stack
from gradlib.transformer import TransformerStack

SEEDS = (0, 1, 2)
F64 = torch.float64


@functools.lru_cache(maxsize=None)
def _sweep(implementation: str) -> P.PrePostSweep:
    """The chapter's sweep at its default sizes, at its shallowest and deepest depth, over seeds 0, 1, 2.

    The depth-L network of a seed is the first L blocks of one 32-block stack, so these numbers are the ones
    the chapter's sweep over L = 2, 4, 8, 16, 32 prints at L = 2 and 32 (its seeds are 0 and 1).
    """
    return P.pre_post_ln(depths=(2, 32), seeds=SEEDS, implementation=implementation)


def _projection(shape: tuple[int, ...]) -> torch.Tensor:
    """The probes' loss direction r ~ N(0, 1) (seed 0, float64), written out: the loss is ⟨y, r⟩."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=F64)


def _inputs(shape: tuple[int, ...], seed: int, dtype=F64) -> torch.Tensor:
    """The experiments' inputs, written out: N(0, 1) from the data stream seed + 1_000_003."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1_000_003), dtype=dtype)


# ------------------------------------------------------------------------------------------ Pre-LN vs Post-LN
@pytest.mark.parametrize("implementation", ["gradlib", "torch"])
def test_pre_ln_last_layer_gradient_shrinks_with_depth_post_ln_stays_flat(implementation):
    result = _sweep(implementation)
    pre, post = result.per_seed["pre"], result.per_seed["post"]  # (S, D)
    assert pre.shape == post.shape == (3, 2)
    assert np.all(pre[:, 1] < 0.6 * pre[:, 0])  # measured 0.50-0.53×; theory √(2/32) = 0.25
    assert np.all(post[:, 1] / post[:, 0] < 1.5) and np.all(post[:, 1] / post[:, 0] > 1 / 1.5)  # 1.02-1.14
    assert np.all(result.hidden_per_seed["pre"][:, 1] > 1.5 * result.hidden_per_seed["pre"][:, 0])  # ‖x_L‖ grows
    np.testing.assert_allclose(result.hidden_per_seed["post"], 8.0, rtol=1e-3)  # √64 after the last LN
    assert result.per_layer["pre"].shape == result.per_layer["post"].shape == (32,)
    assert result.implementation == implementation
    np.testing.assert_array_equal(result.depths, [2, 32])


def test_pre_post_means_are_over_the_seeds():
    result = _sweep("gradlib")
    for kind in ("pre", "post"):
        np.testing.assert_array_equal(result.last_layer_grad[kind], result.per_seed[kind].mean(axis=0))
        np.testing.assert_array_equal(result.hidden_norm[kind], result.hidden_per_seed[kind].mean(axis=0))


def test_pre_post_gradlib_and_torch_implementations_compute_the_same_numbers():
    # torch_encoder_stack draws the same weights as TransformerStack for a seed: PyTorch's own layer is an
    # independent implementation of the same network (the chapter: "rel. diff < 1e-4").
    ours, theirs = _sweep("gradlib"), _sweep("torch")
    for kind in ("pre", "post"):
        np.testing.assert_allclose(ours.per_seed[kind], theirs.per_seed[kind], rtol=1e-4)
        np.testing.assert_allclose(ours.hidden_per_seed[kind], theirs.hidden_per_seed[kind], rtol=1e-4)
        np.testing.assert_allclose(ours.per_layer[kind], theirs.per_layer[kind], rtol=1e-4)


@pytest.mark.parametrize("implementation", ["gradlib", "torch"])
def test_regression_pre_post_ln_of_chapter_four(implementation):
    # What chapter 4 prints, seeds 0 and 1 (the old gradlib.experiments produced the same numbers)
    result = _sweep(implementation)
    mean = {k: v[:2].mean(axis=0) for k, v in result.per_seed.items()}  # seeds 0, 1
    np.testing.assert_allclose(mean["pre"], [622.02, 321.78], rtol=1e-3)
    np.testing.assert_allclose(mean["post"], [632.80, 686.09], rtol=1e-3)
    np.testing.assert_allclose(result.hidden_per_seed["pre"][:2].mean(axis=0), [8.4961, 17.412], rtol=1e-3)


@pytest.mark.parametrize("implementation", ["gradlib", "torch"])
def test_pre_post_ln_measures_through_param_grad_norms_and_equals_autograd_on_w2(implementation):
    depths, seeds, d, d_ff = (1, 3), (4, 5), 8, 16
    result = P.pre_post_ln(depths=depths, d_model=d, n_heads=2, d_ff=d_ff, implementation=implementation, seeds=seeds,
                           batch=2, seq_len=3, dtype=F64)
    for kind in ("pre", "post"):
        per_layer = np.zeros(3)
        for s, seed in enumerate(seeds):
            if implementation == "gradlib":
                stack = TransformerStack(3, d, 2, d_ff, norm="layer", norm_position=kind, seed=seed, dtype=F64)
                w2 = [block.ffn[-1].weight for block in stack.layers]
            else:
                stack = torch_encoder_stack(3, d, 2, d_ff, norm_first=kind == "pre", seed=seed, dtype=F64)
                w2 = [layer.linear2.weight for layer in stack.layers]
            x = _inputs((2, 3, d), seed)
            for j, L in enumerate(depths):
                h = x
                for block in stack.layers[:L]:  # by hand, no hooks
                    h = block(h)
                y = stack.final_norm(h)
                grads = torch.autograd.grad((y * _projection(tuple(y.shape))).sum(), w2[:L])
                assert result.per_seed[kind][s, j] == pytest.approx(grads[-1].norm().item(), rel=1e-12)
                assert result.hidden_per_seed[kind][s, j] == pytest.approx(h.norm(dim=-1).mean().item(), rel=1e-12)
                net = nn.Sequential(*stack.layers[:L], stack.final_norm)
                probe = param_grad_norms(net, draws.randn((2, 3, d), draws.data_generator(seed), F64),
                                         {str(i): w for i, w in enumerate(w2[:L])})
                assert result.per_seed[kind][s, j] == probe.norms[-1]  # measured through the probe
            per_layer += np.array([g.norm().item() for g in grads]) / len(seeds)  # the deepest: every block
        np.testing.assert_allclose(result.per_layer[kind], per_layer, rtol=1e-12)


def test_pre_post_per_layer_counts_the_deepest_stack_once_even_if_it_is_listed_twice():
    kwargs = dict(d_model=4, n_heads=1, d_ff=4, seeds=(0,), batch=1, seq_len=2)
    twice = P.pre_post_ln(depths=(2, 2), **kwargs)
    once = P.pre_post_ln(depths=(2,), **kwargs)
    for kind in ("pre", "post"):
        np.testing.assert_array_equal(twice.per_layer[kind], once.per_layer[kind])
        np.testing.assert_array_equal(twice.per_seed[kind], np.repeat(once.per_seed[kind], 2, axis=1))


# ------------------------------------------------------------------------------------------ stack gradients
def _autograd_block_grads(stack, x: torch.Tensor) -> np.ndarray:
    """‖∂⟨y, r⟩/∂x_l‖ for every block output x_l, by autograd on the outputs themselves (no hooks)."""
    outputs, h = [], x
    for block in stack.layers:
        h = block(h)
        outputs.append(h)
    y = stack.final_norm(h)
    grads = torch.autograd.grad((y * _projection(tuple(y.shape))).sum(), outputs)
    return np.array([g.norm().item() for g in grads])


@pytest.mark.parametrize("norm, norm_position, init", [("layer", "pre", "default"), ("rms", "post", "xavier"),
                                                       ("layer", "post", "deepnorm"), ("none", "pre", "default")])
def test_stack_gradients_match_autograd_on_the_block_outputs(norm, norm_position, init):
    profile = P.stack_gradients(depth=4, norm=norm, norm_position=norm_position, init=init, d_model=16, n_heads=2,
                                n_tokens=5, batch=2, seed=3, dtype=F64)
    stack = TransformerStack(4, 16, 2, norm=norm, norm_position=norm_position, init=init, seed=3, dtype=F64)
    expected = _autograd_block_grads(stack, _inputs((2, 5, 16), seed=3))
    np.testing.assert_allclose(profile.grad_norms, expected, rtol=1e-12)
    np.testing.assert_array_equal(profile.layer, np.arange(1, 5))


def test_stack_gradients_measures_through_layer_grad_norms():
    profile = P.stack_gradients(depth=3, d_model=8, n_heads=2, d_ff=16, n_tokens=4, batch=2, final_norm=False, seed=6)
    stack = TransformerStack(3, 8, 2, 16, norm="layer", norm_position="pre", final_norm=False, seed=6)
    probe = layer_grad_norms(stack, draws.randn((2, 4, 8), draws.data_generator(6), torch.float32))
    np.testing.assert_array_equal(profile.grad_norms, probe.output_grad_norms)
    np.testing.assert_array_equal(profile.param_norms, probe.param_norms)
    assert profile.exploded_at == probe.exploded_at


def test_post_ln_gradient_at_the_last_block_is_the_loss_direction_itself():
    # No final norm after a Post-LN stack: y = x_L, so ∂⟨y, r⟩/∂x_L = r whatever the weights.
    for seed in SEEDS:
        profile = P.stack_gradients(norm_position="post", seed=seed)
        assert profile.grad_norms[-1] == pytest.approx(_projection((2, 8, 32)).norm().item(), rel=1e-6)


@pytest.mark.parametrize("seed", SEEDS)
def test_pre_ln_gradient_grows_toward_the_input_while_post_ln_shrinks(seed):
    # Pre-LN: ∂x_L/∂x_l = I + …, the identity path adds up, first/last > 1 (measured 1.53-2.04 at depth 24).
    # Post-LN: every LN divides by the std of x + f(x) > 1 (measured first/last 0.53-0.80 at depth 24).
    pre = P.stack_gradients(depth=24, norm_position="pre", seed=seed)
    post = P.stack_gradients(depth=24, norm_position="post", seed=seed)
    assert pre.ratio > 1.2
    assert post.ratio < 0.9
    assert pre.ratio > 1.5 * post.ratio  # measured 2.5-2.9×
    assert pre.exploded_at is None and post.exploded_at is None


def test_stack_without_a_norm_is_the_same_network_in_either_position():
    pre = P.stack_gradients(depth=3, norm="none", norm_position="pre", seed=0)
    post = P.stack_gradients(depth=3, norm="none", norm_position="post", seed=0)
    np.testing.assert_array_equal(pre.grad_norms, post.grad_norms)
    assert pre.label == post.label == "no norm"


def test_stack_gradients_labels_name_the_norm_and_its_place():
    labels = [P.stack_gradients(depth=2, norm=n, norm_position=p, seed=0).label
              for n, p in (("rms", "post"), ("layer", "post"), ("layer", "pre"), ("rms", "pre"))]
    assert labels == ["post-RMSNorm", "post-LayerNorm", "pre-LayerNorm", "pre-RMSNorm"]
    assert P.stack_gradients(depth=2, norm_position="post", init="deepnorm").label == "DeepNorm"
    assert P.stack_gradients(depth=2, norm="rms", norm_position="post", init="deepnorm").label == "DeepNorm (RMSNorm)"
    assert P.stack_gradients(depth=2, label="mine").label == "mine"
    assert P.stack_gradients(depth=2, label="mine").key == "mine"


# ---------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("call", [
    lambda: P.stack_gradients(depth=3, d_model=16, seed=5),
    lambda: P.pre_post_ln(depths=(2,), seeds=(5,), d_model=16, n_heads=2, d_ff=32),
    lambda: P.pre_post_ln(depths=(1, 2), seeds=(5,), d_model=8, n_heads=2, d_ff=16, implementation="torch"),
])
def test_two_runs_with_the_same_seed_are_identical(call):
    _assert_same(call(), call())


@pytest.mark.parametrize("call", [
    lambda seed: P.stack_gradients(depth=2, d_model=8, seed=seed).grad_norms,
    lambda seed: P.pre_post_ln(depths=(1,), seeds=(seed,), d_model=8, n_heads=2, d_ff=16, batch=1,
                               seq_len=2).per_seed["pre"],
])
def test_different_seeds_give_different_numbers(call):
    assert not np.array_equal(call(0), call(1))


def test_experiments_leave_the_global_rng_untouched():
    state = torch.get_rng_state()
    P.stack_gradients(depth=1, d_model=4, n_tokens=2, batch=1)
    P.pre_post_ln(depths=(1,), seeds=(0,), d_model=8, n_heads=2, d_ff=16, implementation="torch")
    P.pre_post_ln(depths=(1,), seeds=(0,), d_model=8, n_heads=2, d_ff=16)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("call, name", [
    (lambda: P.stack_gradients(norm="group"), "norm"),
    (lambda: P.stack_gradients(norm_position="middle"), "norm_position"),
    (lambda: P.stack_gradients(init="orthogonal"), "init"),
    (lambda: P.stack_gradients(init="deepnorm", norm_position="pre"), "norm_position"),
    (lambda: P.stack_gradients(d_model=30, n_heads=4), "n_heads"),
    (lambda: P.stack_gradients(depth=0), "depth"),
    (lambda: P.stack_gradients(d_ff=0), "d_ff"),
    (lambda: P.stack_gradients(n_tokens=0), "n_tokens"),
    (lambda: P.stack_gradients(batch=0), "batch"),
    (lambda: P.stack_gradients(final_norm="yes"), "final_norm"),
    (lambda: P.stack_gradients(depth=1, d_model=4, n_tokens=2, batch=1, label=3), "label"),
    (lambda: P.stack_gradients(depth=1, d_model=4, n_tokens=2, batch=1, key=3), "key"),
    (lambda: P.stack_gradients(depth=1, d_model=4, n_tokens=2, batch=1, role="pre"), "role"),
    (lambda: P.stack_gradients(dtype=torch.int64), "dtype"),
    (lambda: P.stack_gradients(seed=1.5), "seed"),
    (lambda: P.stack_gradients(device="nowhere"), "device"),
    (lambda: P.pre_post_ln(implementation="jax"), "implementation"),
    (lambda: P.pre_post_ln(seeds=[]), "seeds"),
    (lambda: P.pre_post_ln(seeds=(0, -1)), "seeds"),
    (lambda: P.pre_post_ln(depths=(2, 0)), "depths"),
    (lambda: P.pre_post_ln(d_model=30, n_heads=4), "n_heads"),
    (lambda: P.pre_post_ln(d_ff=0), "d_ff"),
    (lambda: P.pre_post_ln(batch=0), "batch"),
    (lambda: P.pre_post_ln(seq_len=0), "seq_len"),
    (lambda: P.pre_post_ln(dtype=torch.int64), "dtype"),
    (lambda: P.pre_post_ln(dtype=torch.int64, implementation="torch"), "dtype"),
])
def test_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^(every entry of )?{name}\b"):
        call()


@pytest.mark.parametrize("call", [
    lambda: P.stack_gradients(n_layers=2),
    lambda: P.pre_post_ln(seed=0),
])
def test_unknown_keywords_are_errors(call):
    with pytest.raises(TypeError):
        call()


# ------------------------------------------------------------------------------------------ DeepNorm vs depth
def _sigma_max_by_hand(n_layers: int, alpha: float, init: str, seed: int, d: int = 8, t: int = 3) -> float:
    """σ_max of the whole stack's Jacobian, from torch.autograd.functional.jacobian and an SVD (no probes)."""
    stack = TransformerStack(n_layers, d, 1, norm="layer", norm_position="post", residual=True, branch_scale=alpha,
                             final_norm=False, init=init, seed=seed, dtype=F64)
    x = _inputs((1, t, d), seed)
    jac = torch.autograd.functional.jacobian(lambda v: stack(v.reshape(1, t, d)).reshape(-1), x.reshape(-1))
    return torch.linalg.svdvals(jac)[0].item()


@pytest.mark.parametrize("alpha", [0.0, 0.7])
def test_deepnorm_depth_is_the_largest_singular_value_of_the_stacks_jacobian(alpha):
    result = P.deepnorm_depth(depths=(1, 3), alpha=alpha, d_model=8, n_tokens=3, seed=4)
    np.testing.assert_array_equal(result["postln"].x, [1, 3])
    for key, init in (("postln", "default"), ("deepnorm", "deepnorm")):
        expected = [_sigma_max_by_hand(n, alpha, init, seed=4) for n in (1, 3)]
        np.testing.assert_allclose(result[key].y, expected, rtol=1e-10)
    assert (result["postln"].role, result["deepnorm"].role) == ("baseline", "scaled")


def test_deepnorm_depth_at_alpha_zero_is_layernorm_alone_for_both():
    # Branches off: every block is LN(s·x), s > 0, so the stack is LN(x) (up to ε): its Jacobian is block-diagonal,
    # token t's block a projection divided by √(σ_t² + ε); σ_max = 1/√(min σ_t² + ε), whatever N and s.
    result = P.deepnorm_depth(depths=(2, 5), alpha=0.0, d_model=16, n_tokens=4, seed=1)
    x = _inputs((1, 4, 16), seed=1)
    theory = 1 / torch.sqrt(x.var(dim=-1, unbiased=False).min() + 1e-5).item()
    for key in ("postln", "deepnorm"):
        np.testing.assert_allclose(result[key].y, theory, rtol=1e-4)


@pytest.mark.parametrize("call, name", [
    (lambda: P.deepnorm_depth(depths=(0, 2)), "depths"),
    (lambda: P.deepnorm_depth(depths=[]), "depths"),
    (lambda: P.deepnorm_depth(alpha=-1.0), "alpha"),
    (lambda: P.deepnorm_depth(n_tokens=0), "n_tokens"),
    (lambda: P.deepnorm_depth(seed=0.5), "seed"),
])
def test_deepnorm_depth_bad_arguments_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^(every entry of )?{name}\b"):
        call()


def test_deepnorm_depth_is_deterministic():
    call = lambda: P.deepnorm_depth(depths=(1, 2), d_model=8, n_tokens=2, seed=3)  # noqa: E731
    _assert_same(call(), call())


# ------------------------------------------------------------------------------------------ the headline
@functools.lru_cache(maxsize=None)
def _facts(seed: int) -> dict[str, bool]:
    return P.facts(seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_chapters_facts_hold_on_every_seed(seed):
    _assert_facts_hold(_facts(seed), seed)


def test_facts_are_booleans_and_name_their_thresholds():
    result = _facts(0)
    assert all(isinstance(v, bool) for v in result.values())
    assert any(f"{P.DEEPNORM_GROWTH_MAX:g}x" in fact for fact in result)  # the threshold is in the sentence
    assert any("DeepNorm" in fact for fact in result) and len(result) >= 15


def test_facts_reject_a_bad_seed():
    with pytest.raises(ValueError, match=r"^seed\b"):
        P.facts(1.5)
