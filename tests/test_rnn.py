"""Tests for gradlib.rnn: the vanilla RNN and its ρ^(T−t) gradient law."""

import hashlib
import math

import pytest
import torch
from torch import nn

from gradlib.rnn import VanillaRNN, orthogonal_with_radius

F64 = torch.float64


def _checksum(obj) -> str:
    """First 16 hex digits of the sha256 of a module's state dict (names, dtypes, shapes, bytes) or a tensor."""
    h = hashlib.sha256()
    for name, t in obj.state_dict().items() if isinstance(obj, nn.Module) else [("", obj)]:
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def _jacobian_through_time(rnn: VanillaRNN, h_t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """∂h_T/∂h_t by autograd: unroll rnn.step from h_t over the inputs x (T−t, d_in)."""

    def unroll(h: torch.Tensor) -> torch.Tensor:
        h = h.unsqueeze(0)  # (1, d_h)
        for x_s in x:
            h = rnn.step(h, x_s.unsqueeze(0))
        return h.squeeze(0)

    return torch.autograd.functional.jacobian(unroll, h_t)  # (d_h, d_h)


@pytest.mark.parametrize("rho", [0.9, 1.0, 1.1])
def test_linear_rnn_gradient_norm_equals_rho_to_the_distance(rho):
    d, steps = 12, 30
    rnn = VanillaRNN(d, 3, activation="identity", spectral_radius=rho, seed=1, dtype=F64)
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(steps, 3, generator=gen, dtype=F64)
    h_t = torch.randn(d, generator=gen, dtype=F64)
    for distance in (1, 7, 19, 30):
        jac = _jacobian_through_time(rnn, h_t, x[:distance])
        norm = torch.linalg.matrix_norm(jac, ord=2).item()
        assert norm == pytest.approx(rho**distance, rel=1e-10, abs=0)
        # Not just the top singular value: the whole Jacobian is ρ^k times an orthogonal matrix.
        sv = torch.linalg.svdvals(jac)
        torch.testing.assert_close(sv, torch.full_like(sv, rho**distance), rtol=1e-10, atol=0)


def test_tanh_rnn_gradient_norm_is_at_most_rho_to_the_distance():
    d, steps, rho = 10, 15, 1.1
    rnn = VanillaRNN(d, 2, activation="tanh", spectral_radius=rho, seed=2, dtype=F64)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(steps, 2, generator=gen, dtype=F64)
    h_t = torch.randn(d, generator=gen, dtype=F64)
    norm = torch.linalg.matrix_norm(_jacobian_through_time(rnn, h_t, x), ord=2).item()
    # |tanh′| ≤ 1 can only shrink each factor diag(tanh′)·W_hh; with real inputs it shrinks strictly.
    assert norm < rho**steps


@pytest.mark.parametrize("rho", [0.5, 1.0, 3.0])
def test_orthogonal_with_radius_has_all_singular_values_equal_to_rho(rho):
    w = orthogonal_with_radius(16, rho, seed=3, dtype=F64)
    sv = torch.linalg.svdvals(w)
    torch.testing.assert_close(sv, torch.full_like(sv, rho), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w.T @ w, rho**2 * torch.eye(16, dtype=F64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("rho", [0.9, 1.1])
def test_rnn_w_hh_singular_values_all_equal_spectral_radius(rho):
    rnn = VanillaRNN(20, activation="identity", spectral_radius=rho, seed=4, dtype=F64)
    sv = torch.linalg.svdvals(rnn.w_hh.detach())
    torch.testing.assert_close(sv, torch.full_like(sv, rho), rtol=1e-12, atol=1e-12)
    # Q is drawn first from the RNN's generator, so it is the same matrix the public helper returns.
    torch.testing.assert_close(rnn.w_hh.detach(), orthogonal_with_radius(20, rho, seed=4, dtype=F64))


def test_orthogonal_with_radius_same_seed_same_matrix_different_seed_different():
    a = orthogonal_with_radius(8, 1.0, seed=0)
    b = orthogonal_with_radius(8, 1.0, seed=0)
    c = orthogonal_with_radius(8, 1.0, seed=1)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_rnn_forward_equals_torch_nn_rnn_with_copied_weights():
    d_h, d_in = 7, 3
    rnn = VanillaRNN(d_h, d_in, activation="tanh", seed=0, dtype=F64)
    ref = nn.RNN(d_in, d_h, nonlinearity="tanh", batch_first=True, dtype=F64)
    with torch.no_grad():
        ref.weight_hh_l0.copy_(rnn.w_hh)
        ref.weight_ih_l0.copy_(rnn.w_xh)
        ref.bias_ih_l0.copy_(rnn.b)
        ref.bias_hh_l0.zero_()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 9, d_in, generator=gen, dtype=F64)
    h0 = torch.randn(2, d_h, generator=gen, dtype=F64)
    expected, _ = ref(x, h0.unsqueeze(0))
    torch.testing.assert_close(rnn(x, h0), expected, rtol=1e-12, atol=1e-12)


def test_rnn_forward_returns_every_hidden_state_from_step():
    rnn = VanillaRNN(5, 2, seed=0, dtype=F64)
    x = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    states = rnn(x)
    assert states.shape == (3, 4, 5)
    h = torch.zeros(3, 5, dtype=F64)
    for t in range(4):
        h = torch.tanh(h @ rnn.w_hh.T + x[:, t] @ rnn.w_xh.T + rnn.b)
        torch.testing.assert_close(states[:, t], h, rtol=1e-14, atol=1e-14)


def test_rnn_default_init_is_uniform_within_one_over_sqrt_d_hidden():
    d = 64
    rnn = VanillaRNN(d, seed=0, dtype=F64)
    bound = 1 / math.sqrt(d)
    for p in (rnn.w_hh, rnn.w_xh, rnn.b):
        assert p.abs().max().item() <= bound
    # U[±a] has variance a²/3.
    assert rnn.w_hh.var().item() == pytest.approx(bound**2 / 3, rel=0.1)


def test_rnn_same_seed_identical_weights_different_seed_different():
    a = VanillaRNN(6, 2, spectral_radius=1.0, seed=3)
    b = VanillaRNN(6, 2, spectral_radius=1.0, seed=3)
    c = VanillaRNN(6, 2, spectral_radius=1.0, seed=4)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)


def test_rnn_weights_are_w_hh_w_xh_b_drawn_in_turn_from_one_generator():
    d_h, d_in = 5, 3
    rnn = VanillaRNN(d_h, d_in, seed=6, dtype=F64)
    g, bound = torch.Generator().manual_seed(6), 1 / math.sqrt(d_h)
    for p in (rnn.w_hh, rnn.w_xh, rnn.b):  # re-derived by hand: (2·U[0, 1) − 1)·b in float64
        assert torch.equal(p, (2.0 * torch.rand(p.shape, generator=g, dtype=F64) - 1.0) * bound)


def test_float32_rnn_holds_the_float64_weights_rounded():
    a, b = VanillaRNN(6, 2, spectral_radius=0.8, seed=1), VanillaRNN(6, 2, spectral_radius=0.8, seed=1, dtype=F64)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert pa.dtype == torch.float32 and torch.equal(pa, pb.float())


# Computed from HEAD's gradlib/rnn.py (before draws.py) for seeds 0, 1, 123: the numbers must not change.
# (The float64 orthogonal RNN is not hashed: LAPACK's QR rounds its last bits differently on different CPUs,
# seen between two x86 machines of this project; its orthogonality and radius are tested above.)
HEAD_WEIGHTS = {
    "rnn_uniform": (lambda s: VanillaRNN(6, 3, seed=s),
                    ("1d410a0aebcd4da9", "d7a9920c3b3a63c5", "359f4c96b6dac126")),
    "orthogonal_with_radius": (lambda s: orthogonal_with_radius(5, 1.1, seed=s),
                               ("b11ce45cc02d7b25", "d73236b117ad9dd8", "ee1bb10ca58f8f3c")),
}


@pytest.mark.parametrize("config", list(HEAD_WEIGHTS))
def test_weights_are_bit_for_bit_those_before_the_split(config):
    build, expected = HEAD_WEIGHTS[config]
    assert tuple(_checksum(build(s)) for s in (0, 1, 123)) == expected


def test_rnn_construction_leaves_global_rng_untouched():
    state = torch.random.get_rng_state()
    VanillaRNN(8, 3, seed=0)
    VanillaRNN(8, spectral_radius=1.2, seed=1)
    orthogonal_with_radius(8, 1.0, seed=2)
    assert torch.equal(state, torch.random.get_rng_state())


def test_exploding_linear_rnn_returns_non_finite_without_raising():
    rnn = VanillaRNN(8, activation="identity", spectral_radius=10.0, seed=0)  # float32: 10^39 overflows
    x = torch.ones(1, 60, 8)
    states = rnn(x)
    assert torch.isfinite(states[:, 0]).all()
    assert not torch.isfinite(states[:, -1]).all()


def test_rnn_empty_sequence_returns_no_states():
    rnn = VanillaRNN(4, 2)
    assert rnn(torch.zeros(3, 0, 2)).shape == (3, 0, 4)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"d_hidden": 0}, "d_hidden"),
        ({"d_hidden": 4.0}, "d_hidden"),
        ({"d_hidden": 4, "d_input": 0}, "d_input"),
        ({"d_hidden": 4, "activation": "relu"}, "activation"),
        ({"d_hidden": 4, "spectral_radius": -0.5}, "spectral_radius"),
        ({"d_hidden": 4, "spectral_radius": float("nan")}, "spectral_radius"),
        ({"d_hidden": 4, "seed": 1.5}, "seed"),
        ({"d_hidden": 4, "dtype": torch.int64}, "dtype"),
    ],
)
def test_vanilla_rnn_bad_arguments_raise_value_error_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        VanillaRNN(**kwargs)


@pytest.mark.parametrize(
    "args, kwargs, name",
    [((0, 1.0), {}, "d"), ((4, -1.0), {}, "rho"), ((4, 1.0), {"dtype": torch.int32}, "dtype")],
)
def test_orthogonal_with_radius_bad_arguments_raise_value_error_naming_them(args, kwargs, name):
    with pytest.raises(ValueError, match=name):
        orthogonal_with_radius(*args, **kwargs)


def test_rnn_forward_rejects_wrong_input_shapes():
    rnn = VanillaRNN(4, 2)
    with pytest.raises(ValueError, match="x must"):
        rnn(torch.zeros(3, 5, 4))
    with pytest.raises(ValueError, match="x must"):
        rnn(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="h0 must"):
        rnn(torch.zeros(3, 5, 2), torch.zeros(2, 4))
