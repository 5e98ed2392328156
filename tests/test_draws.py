"""gradlib.draws: seeded, dtype-independent draws from local generators, the global RNG untouched."""

import hashlib

import pytest
import torch

from gradlib import draws

F64 = torch.float64


def _checksum(t: torch.Tensor) -> str:
    """First 16 hex digits of the sha256 of a tensor's dtype, shape and bytes."""
    t = t.detach().cpu().contiguous()
    return hashlib.sha256(f"|{t.dtype}|{tuple(t.shape)}|".encode() + t.numpy().tobytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ seeding
@pytest.mark.parametrize(
    "draw",
    [
        lambda g: draws.uniform((4, 5), 0.3, g),
        lambda g: draws.normal((4, 5), 2.0, g),
        lambda g: draws.orthogonal(5, 0.9, g),
        lambda g: draws.randn((4, 5), g, torch.float32),
    ],
    ids=["uniform", "normal", "orthogonal", "randn"],
)
def test_same_seed_gives_the_same_numbers_and_another_seed_others(draw):
    assert torch.equal(draw(draws.generator(3)), draw(draws.generator(3)))
    assert not torch.equal(draw(draws.generator(3)), draw(draws.generator(4)))


def test_generator_is_a_cpu_generator_seeded_like_manual_seed():
    g = draws.generator(11)
    assert isinstance(g, torch.Generator) and g.device == torch.device("cpu")
    expected = torch.rand(6, generator=torch.Generator().manual_seed(11), dtype=F64)
    assert torch.equal(torch.rand(6, generator=g, dtype=F64), expected)


def test_successive_draws_from_one_generator_are_the_next_numbers_of_one_stream():
    g = draws.generator(0)
    first, second = draws.uniform((3, 3), 1.0, g), draws.uniform((3, 3), 1.0, g)
    both = draws.uniform((2, 3, 3), 1.0, draws.generator(0))
    assert torch.equal(first, both[0]) and torch.equal(second, both[1])


def test_draws_leave_the_global_rng_untouched():
    state = torch.random.get_rng_state()
    g = draws.generator(0)
    draws.uniform((10,), 1.0, g)
    draws.normal((10,), 1.0, g)
    draws.orthogonal(6, 1.0, g)
    draws.randn((10,), draws.data_generator(0), torch.float32)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("bad", [None, 0, "cpu"])
def test_a_missing_generator_is_refused_rather_than_falling_back_to_the_global_rng(bad):
    with pytest.raises(ValueError, match="g must be a torch.Generator"):
        draws.uniform((3,), 1.0, bad)
    with pytest.raises(ValueError, match="g must be a torch.Generator"):
        draws.randn((3,), bad, torch.float32)


def test_bad_seed_raises_value_error_naming_seed():
    with pytest.raises(ValueError, match="seed"):
        draws.generator("0")
    with pytest.raises(ValueError, match="seed"):
        draws.data_generator(1.5)


# ------------------------------------------------------------------------------------------ distributions
def test_uniform_is_two_u_minus_one_times_bound_in_float64():
    u = draws.uniform((2000,), 0.5, draws.generator(1))
    by_hand = (2.0 * torch.rand(2000, generator=torch.Generator().manual_seed(1), dtype=F64) - 1.0) * 0.5
    assert u.dtype == F64 and torch.equal(u, by_hand)
    assert u.abs().max() <= 0.5
    assert u.var().item() == pytest.approx(0.5**2 / 3, rel=0.1)  # Var U[−b, b] = b²/3


def test_normal_is_std_times_standard_normal_in_float64():
    z = draws.normal((4000,), 3.0, draws.generator(2))
    by_hand = torch.randn(4000, generator=torch.Generator().manual_seed(2), dtype=F64) * 3.0
    assert z.dtype == F64 and torch.equal(z, by_hand)
    assert z.std().item() == pytest.approx(3.0, rel=0.05)


@pytest.mark.parametrize("rho", [0.0, 0.5, 1.0, 1.7])
def test_orthogonal_matrix_has_every_singular_value_rho(rho):
    w = draws.orthogonal(7, rho, draws.generator(5))
    assert w.shape == (7, 7) and w.dtype == F64
    sv = torch.linalg.svdvals(w)
    torch.testing.assert_close(sv, torch.full_like(sv, rho), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w.T @ w, rho**2 * torch.eye(7, dtype=F64), rtol=1e-12, atol=1e-12)


def test_orthogonal_sign_fix_makes_the_diagonal_of_r_positive():
    # Q·diag(sign(diag R)) is the Q of the QR factorisation whose R has a positive diagonal (Mezzadri 2007).
    q = draws.orthogonal(6, 1.0, draws.generator(9))
    a = torch.randn(6, 6, generator=torch.Generator().manual_seed(9), dtype=F64)
    r = q.T @ a  # a = Q R
    assert torch.all(torch.diagonal(r) > 0)
    torch.testing.assert_close(torch.tril(r, diagonal=-1), torch.zeros(6, 6, dtype=F64), rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------- dtype, device, cast
def test_assigned_weights_are_the_float64_draw_rounded_in_every_dtype():
    w = draws.uniform((4, 4), 1.0, draws.generator(0))
    p32 = torch.nn.Parameter(torch.empty(4, 4, dtype=torch.float32))
    p64 = torch.nn.Parameter(torch.empty(4, 4, dtype=F64))
    draws.assign(p32, w)
    draws.assign(p64, w)
    assert torch.equal(p64, w) and torch.equal(p32, w.float())
    assert p32.requires_grad  # assigned under no_grad: still a leaf parameter


def test_assign_fills_a_number_and_skips_none():
    p = torch.nn.Parameter(torch.ones(3))
    draws.assign(p, 0.25)
    assert torch.equal(p, torch.full((3,), 0.25))
    draws.assign(None, 1.0)  # an absent bias: nothing to do


def test_randn_draws_in_its_dtype_on_the_cpu_generator():
    x = draws.randn((3, 4), draws.data_generator(0), F64, "cpu")
    by_hand = torch.randn(3, 4, generator=torch.Generator().manual_seed(draws.DATA_STREAM), dtype=F64)
    assert torch.equal(x, by_hand)
    assert draws.randn((3, 4), draws.data_generator(0), torch.float32).dtype == torch.float32


# ------------------------------------------------------------------------------------------- data stream
def test_data_stream_is_the_seed_plus_data_stream_and_differs_from_the_init_stream():
    assert draws.DATA_STREAM == 1_000_003
    inputs = draws.randn((16,), draws.data_generator(0), F64)
    weights = draws.randn((16,), draws.generator(0), F64)
    assert not torch.allclose(inputs, weights)
    assert torch.equal(inputs, draws.randn((16,), draws.generator(draws.DATA_STREAM), F64))


# Computed from HEAD's experiments._randn(shape, _data_generator(seed), dtype, cpu) before the split.
HEAD_DATA = {
    torch.float32: ("e647b1effa947610", "2d4b2dd31a72c123", "d185f7310d545345"),
    F64: ("317ca86447f29a2f", "dde4a44ce31488f9", "d214b1cbd429c309"),
}


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
def test_experiment_inputs_are_bit_for_bit_those_before_the_split(dtype):
    cpu = torch.device("cpu")
    got = tuple(_checksum(draws.randn((3, 4), draws.data_generator(s), dtype, cpu)) for s in (0, 1, 123))
    assert got == HEAD_DATA[dtype]

