"""Tests of gradlib.controls: a Control checks its description, builds only widgets common to ipywidgets 7 and 8,
and the drawing layer imports without ipywidgets (only a live explorer needs it, and says how to install it)."""
from __future__ import annotations

import importlib
import math
import re
import sys

import ipywidgets
import pytest

import gradlib
from gradlib import controls as gctl

DRAWING_MODULES = ("style", "figures", "charts", "diagrams", "report", "controls", "explorer", "static", "explorers")


def test_the_helpers_describe_controls_of_each_kind():
    assert gctl.int_slider("depth", 2, 30, 6) == gctl.Control("depth", "int", 6, min=2, max=30, step=1)
    assert gctl.float_slider("alpha", 0, 2, 1).kind == "float" and gctl.float_slider("alpha", 0, 2, 1).step == 0.05
    assert gctl.log_slider("sigma", 0.25, 4.0, 1.0).kind == "log"
    assert gctl.choice("norm", ("layer", "rms")).value == "layer"  # the first option by default
    assert gctl.choice("norm", ["layer", "rms"], "rms", buttons=True) == gctl.Control(
        "norm", "toggle", "rms", options=("layer", "rms"))
    assert gctl.checkbox("residual", True, label="skips") == gctl.Control("residual", "check", True, label="skips")


def test_bad_controls_raise_value_error_naming_the_problem():
    with pytest.raises(ValueError, match="must be one of its options"):
        gctl.choice("norm", ("layer", "rms"), "batch")
    with pytest.raises(ValueError, match="non-empty"):
        gctl.choice("norm", ())
    with pytest.raises(ValueError, match=r"must be in \[2, 30\]"):
        gctl.int_slider("depth", 2, 30, 40)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        gctl.float_slider("alpha", 0, 1, -0.5)
    with pytest.raises(ValueError, match="identifier"):
        gctl.int_slider("two words", 0, 3, 1)
    with pytest.raises(ValueError, match="0 < min < max"):
        gctl.log_slider("sigma", 0.0, 4.0, 1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        gctl.Control("depth", "knob", 3)


def test_controls_build_only_widgets_common_to_ipywidgets_7_and_8():
    w = gctl.ipywidgets_module()
    assert w is ipywidgets
    described = [gctl.int_slider("depth", 2, 30, 6, label="depth L"), gctl.choice("act", ("tanh", "relu"), "relu"),
                 gctl.choice("init", ("old", "xavier"), buttons=True), gctl.log_slider("sigma", 0.5, 2.0, 1.0),
                 gctl.checkbox("residual", True, label="skips"), gctl.float_slider("alpha", 0, 1, 0.5, step=0.1)]
    built = [c.build(w) for c in described]
    assert [type(b).__name__ for b in built] == ["IntSlider", "Dropdown", "ToggleButtons", "FloatLogSlider",
                                                 "Checkbox", "FloatSlider"]
    depth, act, init, sigma, residual, alpha = built
    assert (depth.value, depth.min, depth.max, depth.step, depth.description) == (6, 2, 30, 1, "depth L")
    assert list(act.options) == ["tanh", "relu"] and act.value == "relu" and act.description == "act"
    assert init.value == "old"
    assert sigma.value == pytest.approx(1.0)
    assert (sigma.min, sigma.max) == pytest.approx((math.log10(0.5), math.log10(2.0)))  # log10 units
    assert residual.value is True and residual.description == "skips"
    assert (alpha.value, alpha.step) == (0.5, 0.1)
    assert all(b.continuous_update is False for b in (depth, sigma, alpha))  # one redraw per release, not per pixel


def test_the_drawing_layer_imports_without_ipywidgets_and_only_live_explorers_ask_for_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now raises ImportError
    for name in DRAWING_MODULES:  # import every module of the layer afresh; restored afterwards
        importlib.import_module(f"gradlib.{name}")
        monkeypatch.delitem(sys.modules, f"gradlib.{name}")
        monkeypatch.setattr(gradlib, name, getattr(gradlib, name))
    fresh = {name: importlib.import_module(f"gradlib.{name}") for name in DRAWING_MODULES}
    assert fresh["controls"] is not gctl
    with pytest.raises(ImportError, match=re.escape(fresh["controls"].INSTALL_HINT)):
        fresh["controls"].ipywidgets_module()
    with pytest.raises(ImportError, match="pip install"):
        fresh["explorer"].Explorer(lambda depth=1: None, object(), [fresh["controls"].int_slider("depth", 1, 3, 1)])
    for make in ("mlp_explorer", "path_length_explorer", "residual_explorer", "norm_explorer"):
        with pytest.raises(ImportError, match="pip install"):
            getattr(fresh["explorers"], make)(compute=lambda **kw: None)
    # describing a control needs no ipywidgets either
    assert fresh["controls"].int_slider("depth", 1, 3, 2).value == 2


def test_the_install_hint_names_a_kernel_free_function_that_exists():
    hint = gctl.INSTALL_HINT
    assert "pip install" in hint and "ipywidgets" in hint and "static=True" in hint
    for dotted in re.findall(r"gradlib(?:\.\w+)+", hint):
        module, attr = dotted.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), attr), f"the hint names {dotted}, which does not exist"


def test_option_labels_show_text_while_the_widget_keeps_the_values():
    c = gctl.choice("warmup", (False, True), False, buttons=True, option_labels=("off", "on"))
    widget = c.build(ipywidgets)
    assert widget.value is False and list(widget.options) == [("off", False), ("on", True)]
    assert widget.label == "off"
    assert gctl.static_texts([c], {"warmup": [False, True]}) == {"labels": {},
                                                                  "option_labels": {"warmup": {False: "off", True: "on"}}}
    with pytest.raises(ValueError, match=r"option_labels of control 'warmup' must have one text per option \(2\)"):
        gctl.choice("warmup", (False, True), option_labels=("off",))
