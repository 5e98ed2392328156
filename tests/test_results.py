"""gradlib.results: what the experiments return — curves that carry their key, label, role and theory.

The containers are checked on hand-made numbers (the truth is the numbers put in); the last tests check that
every experiment names and colours its curves as the chapters tell the story (its baseline, its highway).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from gradlib import experiments as E
from gradlib.results import ROLES, Curve, CurveSet, DepthProfile, curve, first_non_finite


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: a second intra-op thread gains nothing, and on a busy 2-core machine its spin-waiting makes
    # every small op many times slower. Restored afterwards for the other test files.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _line(key: str = "a", role: str = "baseline", **kwargs) -> Curve:
    return curve(key, key.upper(), role, [1, 2, 3], [1.0, 2.0, 3.0], **kwargs)


# ------------------------------------------------------------------------------------------------ Curve
def test_the_roles_are_the_stories_parts():
    assert ROLES == ("baseline", "attention", "residual", "norm", "scaled", "reference", "series")


@pytest.mark.parametrize("role", ROLES)
def test_curve_accepts_every_role(role):
    assert _line(role=role).role == role


@pytest.mark.parametrize("role", ["highway", "Baseline", "", None])
def test_curve_refuses_a_role_outside_roles(role):
    with pytest.raises(ValueError, match="role must be one of 'baseline'"):
        Curve("a", "A", role, np.arange(3.0), np.ones(3))


def test_curve_refuses_x_and_y_of_different_shapes():
    with pytest.raises(ValueError, match=r"x and y of curve 'a' must have the same shape; got \(3,\) and \(2,\)"):
        Curve("a", "A", "baseline", np.arange(3.0), np.ones(2))


def test_curve_refuses_a_theory_not_shaped_like_y():
    with pytest.raises(ValueError, match=r"theory of curve 'a' must have y's shape \(3,\)"):
        curve("a", "A", "baseline", [1, 2, 3], [1, 2, 3], theory=[1, 2])


@pytest.mark.parametrize("field, value", [("key", 3), ("label", None), ("key", ("a",)), ("label", b"A")])
def test_curve_key_and_label_must_be_strings(field, value):
    names = dict(key="a", label="A")
    names[field] = value
    with pytest.raises(ValueError, match=f"{field} must be a str"):
        Curve(names["key"], names["label"], "baseline", np.arange(3.0), np.ones(3))


def test_curve_helper_stores_float64_arrays_and_the_theory():
    c = curve("rho=0.9", "ρ = 0.9", "series", [1, 2, 3], [0.9, 0.81, 0.729], theory=[0.9, 0.81, 0.729])
    assert (c.key, c.label, c.role) == ("rho=0.9", "ρ = 0.9", "series")
    for array in (c.x, c.y, c.theory):
        assert isinstance(array, np.ndarray) and array.dtype == np.float64
    np.testing.assert_array_equal(c.x, [1.0, 2.0, 3.0])
    assert c.exploded_at is None


def test_curve_without_a_theory_has_none():
    assert _line().theory is None


@pytest.mark.parametrize("y, where", [([1.0, np.inf, 3.0], 1), ([np.nan, 1.0, np.inf], 0), ([1.0, 2.0, -np.inf], 2),
                                      ([1.0, 2.0, 3.0], None)])
def test_curve_helper_finds_the_first_inf_or_nan_of_y(y, where):
    assert curve("a", "A", "baseline", [1, 2, 3], y).exploded_at == where


def test_first_non_finite_looks_at_every_array():
    assert first_non_finite(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, np.nan])) == 2
    assert first_non_finite(np.array([1.0, np.inf, 3.0]), np.array([np.nan, 2.0, 3.0])) == 0
    assert first_non_finite(np.ones(4)) is None


def test_curves_are_frozen():
    c = _line()
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.role = "residual"


# ---------------------------------------------------------------------------------------------- CurveSet
def test_curveset_looks_curves_up_by_key_and_keeps_their_order():
    a, b = _line("plain"), _line("residual", role="residual")
    curves = CurveSet((a, b))
    assert curves["residual"] is b and curves["plain"] is a
    assert curves.keys() == ["plain", "residual"]
    assert list(curves) == [a, b] and len(curves) == 2


def test_curveset_key_error_lists_the_keys():
    curves = CurveSet((_line("plain"), _line("residual")))
    with pytest.raises(KeyError, match="no curve 'skip'; the keys are plain, residual"):
        curves["skip"]


def test_curveset_never_looks_a_curve_up_by_its_label():
    curves = CurveSet((curve("plain", "plain (no skips)", "baseline", [1], [1.0]),))
    with pytest.raises(KeyError):
        curves["plain (no skips)"]


def test_curveset_refuses_two_curves_with_one_key():
    with pytest.raises(ValueError, match="curve keys must be unique"):
        CurveSet((_line("a"), _line("a")))


# ------------------------------------------------------------------------------------------- DepthProfile
def _profile(grad_norms, **kwargs) -> DepthProfile:
    n = len(grad_norms)
    args = dict(key="plain", label="plain", role="baseline", layer=np.arange(1, n + 1),
                grad_norms=np.asarray(grad_norms, dtype=np.float64), param_norms=np.ones(n))
    args.update(kwargs)
    return DepthProfile(**args)


@pytest.mark.parametrize("grad_norms", [[1e-3, 1e-2, 1.0], [4.0, 2.0, 1.0, 0.5], [2.5]])
def test_depth_profile_ratio_is_first_over_last(grad_norms):
    assert _profile(grad_norms).ratio == grad_norms[0] / grad_norms[-1]


def test_depth_profile_ratio_of_a_vanished_last_layer_is_inf_not_a_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _profile([1.0, 0.0]).ratio == np.inf
        assert np.isnan(_profile([0.0, 0.0]).ratio)


def test_depth_profile_ratio_is_computed_not_passed():
    with pytest.raises(TypeError):
        _profile([1.0, 2.0], ratio=0.5)


def test_depth_profile_refuses_a_role_outside_roles():
    with pytest.raises(ValueError, match="role must be one of"):
        _profile([1.0, 2.0], role="plain")


def test_depth_profile_curve_is_its_gradient_against_the_layer():
    profile = _profile([1.0, np.inf, 3.0], exploded_at=1, role="residual", key="res", label="residual")
    c = profile.curve
    assert isinstance(c, Curve)
    assert (c.key, c.label, c.role, c.exploded_at) == ("res", "residual", "residual", 1)
    np.testing.assert_array_equal(c.x, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(c.y, profile.grad_norms)


# ------------------------------------------------------------------------- the experiments' curves and roles
def _roles(curves) -> dict[str, str]:
    return {c.key: c.role for c in curves}


def test_path_lengths_rnn_is_the_baseline_and_attention_the_highway():
    result = E.path_lengths(seq_len=4, d=4, n_sequences=1)
    assert _roles(result) == {"rnn": "baseline", "attention": "attention"}
    np.testing.assert_array_equal(result.rnn, result["rnn"].y)
    np.testing.assert_array_equal(result.distance, np.arange(4))


def test_rank_collapse_keys_and_roles():
    result = E.rank_collapse_depth(depth=2, n_tokens=3, d=4, variants=("attention", "skip", "scaled"))
    assert _roles(result) == {"attention": "baseline", "skip": "residual", "scaled": "scaled"}
    assert [c.label for c in result] == ["attention only", "with skip connections", "skips, branch 1/√L"]


def test_qk_gradients_keys_and_roles_of_both_measures():
    result = E.qk_gradients(depths=(1, 2), n_tokens=3, d=4)
    expected = {"attention": "baseline", "scaled": "scaled"}
    assert _roles(result) == expected and _roles(result.cosine) == expected
    np.testing.assert_array_equal(result["attention"].x, [1.0, 2.0])


def test_softmax_saturation_unscaled_is_the_baseline_scaled_the_attention_a_temperature_a_series():
    result = E.softmax_saturation(d_ks=(4,), scales=("sqrt_dk", "none", 2.0), n_rows=2, n_keys=3)
    expected = {"sqrt_dk": "attention", "none": "baseline", "tau=2": "series"}
    for measure in (result.saturated_fraction, result.jacobian_norm, result.query_grad_norm):
        assert _roles(measure) == expected
    assert result.saturated_fraction["tau=2"].label == "temperature τ = 2"


def test_rnn_gradients_radii_are_a_series_with_the_theory_on_each():
    result = E.rnn_gradients(radii=(0.9, 1.1), T=3, d_hidden=4)
    assert _roles(result) == {"rho=0.9": "series", "rho=1.1": "series"}
    assert all(c.theory is not None for c in result)


def test_residual_vs_plain_profiles_are_baseline_and_residual():
    plain, residual = E.residual_vs_plain(depth=2, width=4, batch=2)
    assert [(p.key, p.role) for p in (plain, residual)] == [("plain", "baseline"), ("residual", "residual")]


def test_residual_scale_spectrum_curves_are_the_residual_highway_against_the_identity():
    result = E.residual_scale_spectrum(alphas=(0.0, 0.5), n_layers=1, d_model=4, n_tokens=2, k=2)
    assert _roles(result.curves) == {"sigma1": "residual", "sigma2": "residual", "identity": "reference"}
    np.testing.assert_array_equal(result.curves["identity"].y, [1.0, 1.0])


def test_residual_stream_roles():
    result = E.residual_stream_norms(depth=1, d_model=4, n_tokens=2, batch=1)
    assert _roles(result) == {"none": "baseline", "pre": "norm", "post": "series", "deepnorm": "residual"}


def test_activation_stats_roles():
    result = E.activation_stats(depth=1, d_model=4, n_tokens=2, batch=1)
    expected = {"none": "baseline", "layer": "norm", "rms": "series"}
    assert _roles(result.std) == expected and _roles(result.mean) == expected


def test_pre_post_curves_pre_ln_is_the_norm_highway_with_its_one_over_root_l_guide():
    result = E.pre_post_ln(depths=(1, 4), d_model=4, n_heads=1, d_ff=4, seeds=(0,), batch=1, seq_len=2)
    curves = result.curves
    assert _roles(curves) == {"pre": "norm", "post": "baseline"}
    pre = curves["pre"]
    np.testing.assert_allclose(pre.theory, pre.y[0] * np.sqrt([1.0, 1.0 / 4.0]), rtol=1e-12)
    assert curves["post"].theory is None


@pytest.mark.parametrize("kwargs, role", [
    (dict(), "baseline"),  # tanh, old init: the telephone game's failure
    (dict(activation="sigmoid", init="xavier"), "baseline"),
    (dict(init="xavier"), "series"),
    (dict(weight_scale=2.0), "series"),
    (dict(residual=True), "residual"),
    (dict(norm="layer"), "norm"),
    (dict(role="scaled"), "scaled"),  # chosen by the caller
])
def test_mlp_gradients_roles(kwargs, role):
    assert E.mlp_gradients(depth=2, width=4, batch=2, **kwargs).role == role


@pytest.mark.parametrize("kwargs, role", [
    (dict(norm_position="pre"), "norm"),
    (dict(norm_position="post"), "baseline"),
    (dict(norm="none"), "baseline"),
])
def test_stack_gradients_roles(kwargs, role):
    assert E.stack_gradients(depth=1, d_model=4, n_tokens=2, batch=1, **kwargs).role == role


@pytest.mark.parametrize("call", [
    lambda: E.mlp_gradients(depth=2, width=4, batch=2, role="highway"),
    lambda: E.stack_gradients(depth=1, d_model=4, n_tokens=2, batch=1, role="post"),
])
def test_a_role_outside_roles_is_refused_by_the_experiments(call):
    with pytest.raises(ValueError, match="role must be one of"):
        call()


def test_the_key_defaults_to_the_label_and_both_can_be_chosen():
    default = E.mlp_gradients(depth=2, width=4, batch=2)
    assert default.key == default.label == "tanh, old init"
    chosen = E.mlp_gradients(depth=2, width=4, batch=2, key="old", label="old init")
    assert (chosen.key, chosen.label) == ("old", "old init")


def test_the_index_lists_every_experiment_of_the_chapter_modules():
    import importlib
    import inspect
    import pkgutil

    import gradlib

    modules = {name: importlib.import_module(f"gradlib.{name}") for _, name, _ in pkgutil.iter_modules(gradlib.__path__)
               if name.startswith("exp_")}
    for name in E.__all__:
        fn = getattr(E, name)
        assert getattr(modules[fn.__module__.split(".")[-1]], name) is fn
    # and every public experiment function of those modules is in the index (facts() is each chapter's check)
    for module in modules.values():
        public = {n for n in module.__all__ if inspect.isfunction(getattr(module, n))
                  and "seed" in inspect.signature(getattr(module, n)).parameters and n != "facts"}
        missing = public - set(E.__all__)
        assert not missing, f"{module.__name__}: not in gradlib.experiments: {missing}"
