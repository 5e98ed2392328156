"""gradlib.norms against torch.nn.LayerNorm / RMSNorm / BatchNorm1d, and the invariances each one has."""

import pytest
import torch
from torch import nn

from gradlib.norms import DYT_ALPHA, NORM_KINDS, DyT, GroupNorm, LayerNorm, RMSNorm, TokenBatchNorm, make_norm

DT = torch.float64


def randn(*shape, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=DT)


def outputs_and_input_grads(module, x, r):
    x = x.detach().clone().requires_grad_()
    y = module(x)
    (grad,) = torch.autograd.grad((y * r).sum(), x)
    return y.detach(), grad


# ---------------------------------------------------------------------------------------------- vs torch
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_torch_layer_norm_outputs_and_input_grads(affine):
    d = 6
    ours = LayerNorm(d, eps=1e-5, affine=affine, dtype=DT)
    ref = nn.LayerNorm(d, eps=1e-5, elementwise_affine=affine, dtype=DT)
    if affine:
        with torch.no_grad():
            ours.weight.copy_(randn(d, seed=1))
            ours.bias.copy_(randn(d, seed=2))
        ref.load_state_dict(ours.state_dict())  # same parameter names as torch
    x, r = 3 * randn(2, 5, d, seed=3) + 1, randn(2, 5, d, seed=4)
    y, g = outputs_and_input_grads(ours, x, r)
    y_ref, g_ref = outputs_and_input_grads(ref, x, r)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, g_ref)


@pytest.mark.parametrize("affine", [True, False])
def test_rms_norm_matches_torch_rms_norm_outputs_and_input_grads(affine):
    d = 6
    ours = RMSNorm(d, eps=1e-6, affine=affine, dtype=DT)
    ref = nn.RMSNorm(d, eps=1e-6, elementwise_affine=affine, dtype=DT)
    if affine:
        with torch.no_grad():
            ours.weight.copy_(randn(d, seed=1))
        ref.load_state_dict(ours.state_dict())
    x, r = 3 * randn(2, 5, d, seed=3) + 1, randn(2, 5, d, seed=4)
    y, g = outputs_and_input_grads(ours, x, r)
    y_ref, g_ref = outputs_and_input_grads(ref, x, r)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, g_ref)


def test_layer_norm_parameter_grads_match_torch():
    d = 4
    ours, ref = LayerNorm(d, dtype=DT), nn.LayerNorm(d, dtype=DT)
    x, r = randn(3, d, seed=1), randn(3, d, seed=2)
    (ours(x) * r).sum().backward()
    (ref(x) * r).sum().backward()
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
    torch.testing.assert_close(ours.bias.grad, ref.bias.grad)


def test_layer_norm_uses_biased_variance_like_torch():
    x = torch.tensor([[1.0, 3.0]], dtype=DT)  # mean 2, biased variance 1 (unbiased would be 2)
    y = LayerNorm(2, eps=1e-12, affine=False)(x)
    torch.testing.assert_close(y, torch.tensor([[-1.0, 1.0]], dtype=DT))


@pytest.mark.parametrize("train", [True, False])
def test_token_batch_norm_matches_batch_norm1d_on_flattened_tokens(train):
    d = 4
    ours = TokenBatchNorm(d, eps=1e-5, momentum=0.1).to(DT)
    ref = nn.BatchNorm1d(d, eps=1e-5, momentum=0.1).to(DT)
    with torch.no_grad():
        ours.bn.weight.copy_(randn(d, seed=1))
        ours.bn.bias.copy_(randn(d, seed=2))
    ref.load_state_dict(ours.bn.state_dict())
    for seed in (3, 4):  # two training steps move the running statistics
        x = 2 * randn(3, 5, d, seed=seed) + 1
        ours(x), ref(x.reshape(-1, d))
    torch.testing.assert_close(ours.bn.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.bn.running_var, ref.running_var)
    ours.train(train), ref.train(train)
    x, r = randn(3, 5, d, seed=5), randn(3, 5, d, seed=6)
    y, g = outputs_and_input_grads(ours, x, r)
    y_ref, g_ref = outputs_and_input_grads(ref, x.reshape(-1, d), r.reshape(-1, d))
    torch.testing.assert_close(y, y_ref.reshape(3, 5, d))
    torch.testing.assert_close(g, g_ref.reshape(3, 5, d))


def test_token_batch_norm_output_depends_on_the_other_sequences_in_training():
    norm = TokenBatchNorm(4).to(DT)
    x = randn(2, 5, 4, seed=1)
    alone = norm(x[:1])
    together = norm(torch.cat([x[:1], 10 * x[1:]]))[:1]
    assert not torch.allclose(alone, together)


# ---------------------------------------------------------------------------------------------- invariances
def test_layer_norm_is_invariant_to_per_token_shift_and_positive_scale():
    norm = LayerNorm(8, eps=1e-12, affine=False)
    x = randn(2, 5, 8, seed=1)
    shift = randn(2, 5, 1, seed=2) * 10
    scale = randn(2, 5, 1, seed=3).abs() * 5 + 0.1
    torch.testing.assert_close(norm(scale * x + shift), norm(x))


def test_rms_norm_is_invariant_to_scale_but_not_to_shift():
    norm = RMSNorm(8, eps=1e-12, affine=False)
    x = randn(2, 5, 8, seed=1)
    scale = randn(2, 5, 1, seed=3).abs() * 5 + 0.1
    torch.testing.assert_close(norm(scale * x), norm(x))
    assert not torch.allclose(norm(x + 3.0), norm(x), atol=1e-3)


def test_layer_and_rms_norm_outputs_have_unit_rms():
    x = randn(3, 16, seed=1) * 7 + 2
    torch.testing.assert_close(LayerNorm(16, eps=1e-12, affine=False)(x).pow(2).mean(-1), torch.ones(3, dtype=DT))
    torch.testing.assert_close(RMSNorm(16, eps=1e-12, affine=False)(x).pow(2).mean(-1), torch.ones(3, dtype=DT))


@pytest.mark.parametrize("cls", [LayerNorm, RMSNorm, TokenBatchNorm])
def test_norms_do_not_check_their_input_for_nan(cls):
    x = randn(2, 3, 8, seed=2)
    x[1, 2, 5] = float("nan")
    norm = cls(8, dtype=DT).eval()  # eval: BatchNorm's running statistics, so the NaN stays where it is
    y = norm(x)  # no ValueError: inside a stack an overflow is a result to measure
    assert torch.isnan(y[1, 2, 5])
    assert torch.isfinite(y[0]).all() and torch.isfinite(y[1, :2]).all()


# ---------------------------------------------------------------------------------------------- make_norm
def test_make_norm_builds_each_kind():
    expected = {"layer": LayerNorm, "rms": RMSNorm, "batch": TokenBatchNorm, "dyt": DyT, "none": nn.Identity}
    assert set(NORM_KINDS) == set(expected)
    for kind in NORM_KINDS:
        norm = make_norm(kind, 4)
        assert type(norm) is expected[kind]
        assert norm(torch.ones(2, 3, 4)).shape == (2, 3, 4)
    assert make_norm("layer", 4, eps=1e-3).eps == 1e-3
    assert make_norm("dyt", 4).alpha.item() == DYT_ALPHA
    with pytest.raises(ValueError, match="eps must be None"):
        make_norm("dyt", 4, eps=1e-5)


# ---------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("bad", ["batchnorm", "Layer", "", None])
def test_make_norm_bad_kind_raises_value_error_naming_kind(bad):
    with pytest.raises(ValueError, match="kind"):
        make_norm(bad, 4)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_bad_d_raises_value_error_naming_d(bad):
    with pytest.raises(ValueError, match="d must"):
        make_norm("layer", bad)
    for cls in (LayerNorm, RMSNorm, TokenBatchNorm):
        with pytest.raises(ValueError, match="d must"):
            cls(bad)


@pytest.mark.parametrize("bad", [0.0, -1e-5, float("nan")])
def test_bad_eps_raises_value_error_naming_eps(bad):
    for cls in (LayerNorm, RMSNorm, TokenBatchNorm):
        with pytest.raises(ValueError, match="eps"):
            cls(4, eps=bad)


@pytest.mark.parametrize("cls", [LayerNorm, RMSNorm, TokenBatchNorm])
def test_bad_affine_raises_value_error_naming_affine(cls):
    with pytest.raises(ValueError, match="affine"):
        cls(4, affine="no")


def test_bad_momentum_and_inputs_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="momentum"):
        TokenBatchNorm(4, momentum=1.5)
    for norm in (LayerNorm(4), RMSNorm(4), TokenBatchNorm(4)):
        with pytest.raises(ValueError, match="x must have last dimension"):
            norm(torch.ones(2, 3, 5))
    with pytest.raises(ValueError, match="x must hold at least 2 tokens"):
        TokenBatchNorm(4)(torch.ones(1, 1, 4))


# ---------------------------------------------------------------------------------------------- GroupNorm
@pytest.mark.parametrize("groups", [1, 2, 4])
def test_group_norm_matches_torch_group_norm_on_the_tokens_as_samples(groups):
    d = 8
    ours = GroupNorm(d, groups, dtype=DT)
    ref = nn.GroupNorm(groups, d, eps=1e-5, dtype=DT)  # (N, C) input: statistics per sample, per group
    with torch.no_grad():
        ours.weight.copy_(randn(d, seed=1))
        ours.bias.copy_(randn(d, seed=2))
    ref.load_state_dict(ours.state_dict())
    x, r = 2 * randn(3, 5, d, seed=3) - 1, randn(3, 5, d, seed=4)
    y, g = outputs_and_input_grads(ours, x, r)
    y_ref, g_ref = outputs_and_input_grads(lambda t: ref(t.reshape(-1, d)).reshape(t.shape), x, r)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(g, g_ref)


def test_group_norm_with_one_group_is_layer_norm():
    x = randn(2, 4, 6, seed=5)
    torch.testing.assert_close(GroupNorm(6, 1, dtype=DT)(x), nn.functional.layer_norm(x, (6,)))


def test_group_norm_never_mixes_tokens():
    x = randn(1, 5, 8, seed=6).requires_grad_()
    y = GroupNorm(8, 2, dtype=DT)(x)
    (grad,) = torch.autograd.grad(y[0, 0].sum() + (y[0, 0] * randn(8, seed=7)).sum(), x)
    assert grad[0, 1:].abs().max() == 0 and grad[0, 0].abs().max() > 0


def test_group_norm_refuses_groups_that_do_not_divide_d():
    with pytest.raises(ValueError, match="groups must divide d=6"):
        GroupNorm(6, 4)
    with pytest.raises(ValueError, match="groups must"):
        GroupNorm(6, 0)


# ---------------------------------------------------------------------------------------------- DyT
def test_dyt_is_gamma_tanh_alpha_x_plus_beta_with_torch_parameters():
    d = 6
    dyt = DyT(d, alpha=0.7, dtype=DT)
    with torch.no_grad():
        dyt.weight.copy_(randn(d, seed=1))
        dyt.bias.copy_(randn(d, seed=2))
    x = 3 * randn(2, 4, d, seed=3)
    truth = dyt.weight * torch.tanh(0.7 * x) + dyt.bias  # the paper's formula, on torch's tanh
    torch.testing.assert_close(dyt(x), truth)
    assert {name for name, _ in dyt.named_parameters()} == {"alpha", "weight", "bias"}
    assert dyt.alpha.shape == ()


def test_dyt_jacobian_is_diagonal_alpha_gamma_sech_squared_and_bounded_by_alpha_gamma():
    d = 5
    dyt = DyT(d, alpha=0.5, dtype=DT)
    with torch.no_grad():
        dyt.weight.copy_(randn(d, seed=1))
    x = 4 * randn(d, seed=2)
    jac = torch.autograd.functional.jacobian(dyt, x)  # (d, d)
    assert torch.count_nonzero(jac - torch.diag(torch.diagonal(jac))) == 0
    expected = 0.5 * dyt.weight.detach() / torch.cosh(0.5 * x) ** 2
    torch.testing.assert_close(torch.diagonal(jac), expected)
    assert bool((torch.diagonal(jac).abs() <= 0.5 * dyt.weight.detach().abs()).all())


def test_dyt_does_not_rescale_by_the_input_size_so_it_is_not_scale_invariant():
    x = randn(2, 3, 8, seed=4)
    dyt, ln = DyT(8, dtype=DT), LayerNorm(8, dtype=DT)
    torch.testing.assert_close(ln(10 * x), ln(x), atol=1e-4, rtol=0)  # up to ε
    assert (dyt(10 * x) - dyt(x)).abs().max() > 0.1


def test_dyt_alpha_and_gamma_receive_gradients_from_autograd():
    dyt = DyT(4, dtype=DT)
    (dyt(randn(3, 4, seed=5)) * randn(3, 4, seed=6)).sum().backward()
    assert dyt.alpha.grad is not None and dyt.alpha.grad.abs() > 0
    assert dyt.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "0.5", True])
def test_dyt_bad_alpha_raises_value_error_naming_alpha(bad):
    with pytest.raises(ValueError, match="alpha"):
        DyT(4, alpha=bad)


@pytest.mark.parametrize("cls", [GroupNorm, DyT])
def test_new_norms_refuse_a_wrong_width_naming_x(cls):
    norm = cls(4, 2) if cls is GroupNorm else cls(4)
    with pytest.raises(ValueError, match="x must have last dimension d=4"):
        norm(torch.zeros(2, 3))
