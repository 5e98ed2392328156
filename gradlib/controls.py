"""The controls of an explorer, described without ipywidgets (built only when a live explorer needs them).

    Control(name, kind, value, ...)   kind ∈ {int, float, log, choice, toggle, check}
    int_slider, float_slider, log_slider, choice, checkbox    the usual ways to make one

Only widget APIs common to ipywidgets 7 (Colab's) and 8 are used: IntSlider, FloatSlider, FloatLogSlider,
Dropdown, ToggleButtons, Checkbox, and ``.observe(handler, names="value")``. ipywidgets itself is imported
only by :func:`ipywidgets_module`, so ``import gradlib.controls`` works without it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["INSTALL_HINT", "ipywidgets_module", "Control", "int_slider", "float_slider", "log_slider", "choice",
           "checkbox", "static_texts"]

INSTALL_HINT = (
    "The live explorers need ipywidgets (version 7 or 8) in the notebook's kernel: run "
    "`pip install \"ipywidgets>=7.6,<9\"` (or `pip install \"gradlib[widgets]\"`) and restart the kernel. "
    "Without a kernel, gradlib.static.static_explorer(...) or <explorer>(static=True) gives the same figures."
)


def ipywidgets_module() -> Any:
    """The ipywidgets module, or ImportError with an install hint."""
    try:
        import ipywidgets
    except ImportError as err:  # also raised when sys.modules["ipywidgets"] is None
        raise ImportError(INSTALL_HINT) from err
    return ipywidgets


_KINDS = ("int", "float", "log", "choice", "toggle", "check")


@dataclass(frozen=True)
class Control:
    """One input of an explorer, described without ipywidgets (built lazily by :meth:`build`).

    kind ∈ {int, float, log, choice, toggle, check}; value ∈ [min, max] or value ∈ options
    Args:
        name: the keyword passed to compute (a Python identifier).
        kind: slider type ("log" = FloatLogSlider), "choice" (Dropdown), "toggle" (ToggleButtons), "check".
        value: initial value; options: (n,) for choice/toggle; min, max, step: for sliders.
        label: the text shown next to the control (default: name).
        option_labels: (n,) texts shown for the options of a choice/toggle (default: the values themselves).
    """

    name: str
    kind: str
    value: Any
    options: tuple = ()
    min: float = 0.0
    max: float = 1.0
    step: float = 1.0
    label: str | None = None
    option_labels: tuple = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name must be a Python identifier; got {self.name!r}")
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}; got {self.kind!r}")
        if self.kind in ("choice", "toggle"):
            if not self.options or self.value not in self.options:
                raise ValueError(f"value of control {self.name!r} must be one of its options {self.options!r}; "
                                 f"got {self.value!r}")
            if self.option_labels and len(self.option_labels) != len(self.options):
                raise ValueError(f"option_labels of control {self.name!r} must have one text per option "
                                 f"({len(self.options)}); got {len(self.option_labels)}")
        elif self.kind in ("int", "float", "log"):
            if not self.min <= self.value <= self.max:
                raise ValueError(f"value of control {self.name!r} must be in [{self.min:g}, {self.max:g}]; "
                                 f"got {self.value!r}")

    def build(self, w: Any) -> Any:
        """The ipywidgets widget for this control (`w` is the ipywidgets module)."""
        common = dict(description=self.label or self.name, style={"description_width": "initial"})
        if self.kind == "int":
            return w.IntSlider(value=int(self.value), min=int(self.min), max=int(self.max), step=int(self.step),
                               continuous_update=False, **common)
        if self.kind == "float":
            return w.FloatSlider(value=float(self.value), min=self.min, max=self.max, step=self.step,
                                 continuous_update=False, readout_format=".2f", **common)
        if self.kind == "log":
            return w.FloatLogSlider(value=float(self.value), base=10, min=math.log10(self.min),
                                    max=math.log10(self.max), step=self.step, continuous_update=False,
                                    readout_format=".3g", **common)
        # (label, value) pairs: the option list form that ipywidgets 7 and 8 both accept
        options = list(zip(self.option_labels, self.options)) if self.option_labels else list(self.options)
        if self.kind == "choice":
            return w.Dropdown(options=options, value=self.value, **common)
        if self.kind == "toggle":
            return w.ToggleButtons(options=options, value=self.value, **common)
        return w.Checkbox(value=bool(self.value), indent=False, description=self.label or self.name)


def int_slider(name: str, min: int, max: int, value: int, step: int = 1, label: str | None = None) -> Control:
    """An integer slider control.  value ∈ {min, min+step, …, max}"""
    return Control(name, "int", int(value), min=int(min), max=int(max), step=int(step), label=label)


def float_slider(name: str, min: float, max: float, value: float, step: float = 0.05,
                 label: str | None = None) -> Control:
    """A float slider control.  value ∈ [min, max] in steps of `step`"""
    return Control(name, "float", float(value), min=float(min), max=float(max), step=float(step), label=label)


def log_slider(name: str, min: float, max: float, value: float, step: float = 0.05,
               label: str | None = None) -> Control:
    """A log-scale float slider.  log₁₀ value ∈ [log₁₀ min, log₁₀ max] in steps of `step`"""
    if not 0 < min < max:
        raise ValueError(f"log_slider needs 0 < min < max; got min={min!r}, max={max!r}")
    return Control(name, "log", float(value), min=float(min), max=float(max), step=float(step), label=label)


def choice(name: str, options: Sequence[Any], value: Any = None, label: str | None = None,
           buttons: bool = False, option_labels: Sequence[str] | None = None) -> Control:
    """A dropdown (or toggle buttons) control.  value ∈ options, shown as option_labels (default: the values)"""
    options = tuple(options)
    if not options:
        raise ValueError(f"options of control {name!r} must be a non-empty sequence; got {options!r}")
    return Control(name, "toggle" if buttons else "choice", options[0] if value is None else value,
                   options=options, label=label, option_labels=tuple(option_labels or ()))


def static_texts(controls: Sequence[Control], grid: Any) -> dict[str, Any]:
    """static_explorer's keywords `labels` and `option_labels` from the live controls (the twins read alike)."""
    return dict(labels={c.name: c.label for c in controls if c.name in grid and c.label},
                option_labels={c.name: dict(zip(c.options, c.option_labels))
                               for c in controls if c.name in grid and c.option_labels})


def checkbox(name: str, value: bool = False, label: str | None = None) -> Control:
    """A checkbox control.  value ∈ {False, True}"""
    return Control(name, "check", bool(value), label=label)
