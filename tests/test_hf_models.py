"""gradlib.hf_models: small random Hugging Face models — their blocks, where their norms stand, seeds, bad input.

The truths are read from the models as they run (forward hooks record which module runs first and last in each
block), from the weights themselves, and from torch's RNG state; never from the registry's own claims.
"""

import subprocess
import sys

import pytest
import torch
from torch import nn

from gradlib import hf_models
from gradlib.discovery import find_layers

FAMILIES = sorted(hf_models.FAMILIES)
SMALL = dict(d_model=16, n_heads=2, vocab_size=32, max_len=16)


def _leaf_calls(model: nn.Module, ids: torch.Tensor) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """(name, module, output) of every leaf module with parameters, in the order the forward runs them."""
    calls, handles = [], []
    for name, m in model.named_modules():
        if not list(m.children()) and list(m.parameters(recurse=False)):
            handles.append(m.register_forward_hook(
                lambda mod, args, out, name=name: calls.append((name, mod, out if torch.is_tensor(out) else out[0]))))
    try:
        with torch.no_grad():
            model(ids)
    finally:
        for h in handles:
            h.remove()
    return calls


def _is_norm(module: nn.Module) -> bool:
    return "norm" in type(module).__name__.lower()


@pytest.mark.parametrize("family", FAMILIES)
def test_the_model_has_the_asked_number_of_blocks_under_the_declared_name(family):
    model = hf_models.build(family, 3, **SMALL)
    names = [name for name, _ in find_layers(model)]
    prefix = hf_models.FAMILIES[family].blocks
    assert names == [f"{prefix}.{i}" for i in range(3)]


@pytest.mark.parametrize("family", FAMILIES)
def test_each_block_runs_its_norm_first_for_pre_ln_and_last_for_post_ln_and_a_final_norm_as_declared(family):
    fam = hf_models.FAMILIES[family]
    model = hf_models.build(family, 2, **SMALL)
    calls = _leaf_calls(model, hf_models.token_ids(2, 5, vocab_size=32))
    prefix = fam.blocks + ".1."
    in_block = [(n, m, out) for n, m, out in calls if n.startswith(prefix)]
    first, last = in_block[0][1], in_block[-1][1]
    assert _is_norm(first) == (fam.norm_position == "pre")
    assert _is_norm(last) == (fam.norm_position == "post")
    after_blocks = [m for n, m, _ in calls[calls.index(in_block[-1]) + 1:]]
    assert (len(after_blocks) == 1 and _is_norm(after_blocks[0])) == fam.final_norm
    assert after_blocks == [] or fam.final_norm
    # the norm's kind, from what it outputs (gamma = 1, beta = 0 at init): LayerNorm centres, RMSNorm does not
    norm_out = next(out for _, m, out in in_block if _is_norm(m))
    # both rescale each token to a unit mean square (less the share of epsilon: the inputs are small at init)
    assert torch.allclose(norm_out.pow(2).mean(-1), torch.ones(()), atol=0.05)
    centred = bool(norm_out.mean(-1).abs().max() < 1e-5)
    assert centred == (fam.norm == "layer")


@pytest.mark.parametrize("family", FAMILIES)
def test_the_same_seed_gives_the_same_weights_another_seed_others_and_the_global_rng_is_untouched(family):
    state = torch.random.get_rng_state()
    a, b = hf_models.build(family, 2, seed=3, **SMALL), hf_models.build(family, 2, seed=3, **SMALL)
    c = hf_models.build(family, 2, seed=4, **SMALL)
    assert torch.equal(torch.random.get_rng_state(), state)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    drawn = [k for k in sa if sa[k].is_floating_point() and sa[k].std() > 0]
    assert drawn and not any(torch.equal(sa[k], sc[k]) for k in drawn)


@pytest.mark.parametrize("family", FAMILIES)
def test_dropout_is_off_even_in_training_mode_and_the_model_comes_in_eval_mode(family):
    model = hf_models.build(family, 2, **SMALL)
    assert not model.training
    ids = hf_models.token_ids(2, 6, vocab_size=32)
    model.train()
    with torch.no_grad():
        assert torch.equal(model(ids).last_hidden_state, model(ids).last_hidden_state)


def test_gpt2_draws_its_residual_projections_smaller_by_root_2l_unless_asked_not_to():
    L = 6
    scaled = hf_models.gpt2(L, d_model=64, n_heads=4, vocab_size=32, seed=0)
    plain = hf_models.gpt2(L, d_model=64, n_heads=4, vocab_size=32, seed=0, scaled_residual_init=False)
    std = {name: torch.cat([b.mlp.c_proj.weight.flatten() for b in m.h]).std().item()
           for name, m in (("scaled", scaled), ("plain", plain))}
    assert std["scaled"] == pytest.approx(0.02 / (2 * L) ** 0.5, rel=0.05)
    assert std["plain"] == pytest.approx(0.02, rel=0.05)
    assert torch.equal(scaled.h[0].attn.c_attn.weight, plain.h[0].attn.c_attn.weight)  # nothing else changes


def test_token_ids_are_reproducible_in_range_and_of_the_asked_shape():
    ids = hf_models.token_ids(3, 7, vocab_size=11, seed=2)
    assert ids.shape == (3, 7) and ids.dtype == torch.int64 and 0 <= ids.min() and ids.max() < 11
    assert torch.equal(ids, hf_models.token_ids(3, 7, vocab_size=11, seed=2))
    assert not torch.equal(ids, hf_models.token_ids(3, 7, vocab_size=11, seed=3))


@pytest.mark.parametrize("call, name", [
    (lambda: hf_models.build("gpt3", 2), "family"),
    (lambda: hf_models.build("bert", 0), "n_layers"),
    (lambda: hf_models.build("llama", 2, d_model=30, n_heads=4), "n_heads"),
    (lambda: hf_models.build("gpt2", 2, d_ff=0), "d_ff"),
    (lambda: hf_models.build("gpt2", 2, seed=1.5), "seed"),
    (lambda: hf_models.build("bert", 2, dtype=torch.int64), "dtype"),
    (lambda: hf_models.build("bert", 2, scaled_residual_init=False), "scaled_residual_init"),
    (lambda: hf_models.build("gpt2", 2, widht=8), "widht"),
    (lambda: hf_models.gpt2(2, scaled_residual_init=1), "scaled_residual_init"),
    (lambda: hf_models.token_ids(0, 4), "batch"),
])
def test_bad_arguments_are_a_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_importing_the_module_does_not_import_transformers():
    code = "import sys, gradlib.hf_models; print('transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
