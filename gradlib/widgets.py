"""Interactive explorers: sliders wired to an experiment and a figure that is redrawn in place.

Two twins share one design — controls → ``compute(**values)`` → ``view.update(result)`` → PNG:

- :class:`Explorer` (live, needs a kernel and ipywidgets 7 or 8): every control change recomputes (results
  are cached per tuple of control values), moves the artists of ONE persistent matplotlib Figure
  (``Line2D.set_data``, autoscale) and renders it to PNG bytes shown in an ``ipywidgets.Image``. The figure
  is a ``matplotlib.figure.Figure`` (not pyplot), so nothing leaks into the notebook's inline output.
- :func:`static_explorer` (no kernel: the static site): renders the view for every point of a small grid
  once, embeds the PNGs and a few lines of inline JavaScript that swap the image when a control moves.

ipywidgets is imported only inside the functions that need it: ``import gradlib.widgets`` works without it.
Only widget APIs common to ipywidgets 7 and 8 are used (sliders, Dropdown, ToggleButtons, Checkbox, HBox,
VBox, Image, HTML, ``.observe(handler, names="value")``).
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import inspect
import io
import itertools
import json
import math
import numbers
import re
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from gradlib import plotting as gp

__all__ = [
    "INSTALL_HINT",
    "Control",
    "int_slider",
    "float_slider",
    "log_slider",
    "choice",
    "checkbox",
    "FigureView",
    "ProfileView",
    "PathLengthView",
    "Explorer",
    "StaticExplorer",
    "static_explorer",
    "MAX_STATIC_BYTES",
    "mlp_explorer",
    "path_length_explorer",
    "residual_explorer",
    "norm_explorer",
    "mlp_compute",
    "path_length_compute",
    "residual_compute",
    "norm_compute",
]

INSTALL_HINT = (
    "The live explorers need ipywidgets (version 7 or 8) in the notebook's kernel: run "
    "`pip install \"ipywidgets>=7.6,<9\"` (or `pip install \"gradlib[widgets]\"`) and restart the kernel. "
    "Without a kernel, gradlib.widgets.static_explorer(...) or <explorer>(static=True) gives the same figures."
)

MAX_STATIC_BYTES = 1_500_000  # per static explorer: the site's page-weight budget


def _ipywidgets() -> Any:
    """The ipywidgets module, or ImportError with an install hint."""
    try:
        import ipywidgets
    except ImportError as err:  # also raised when sys.modules["ipywidgets"] is None
        raise ImportError(INSTALL_HINT) from err
    return ipywidgets


# ============================================================================================== controls
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
    """

    name: str
    kind: str
    value: Any
    options: tuple = ()
    min: float = 0.0
    max: float = 1.0
    step: float = 1.0
    label: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"name must be a Python identifier; got {self.name!r}")
        if self.kind not in _KINDS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, _KINDS))}; got {self.kind!r}")
        if self.kind in ("choice", "toggle"):
            if not self.options or self.value not in self.options:
                raise ValueError(f"value of control {self.name!r} must be one of its options {self.options!r}; "
                                 f"got {self.value!r}")
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
        if self.kind == "choice":
            return w.Dropdown(options=list(self.options), value=self.value, **common)
        if self.kind == "toggle":
            return w.ToggleButtons(options=list(self.options), value=self.value, **common)
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
           buttons: bool = False) -> Control:
    """A dropdown (or toggle buttons) control.  value ∈ options"""
    options = tuple(options)
    return Control(name, "toggle" if buttons else "choice", options[0] if value is None else value,
                   options=options, label=label)


def checkbox(name: str, value: bool = False, label: str | None = None) -> Control:
    """A checkbox control.  value ∈ {False, True}"""
    return Control(name, "check", bool(value), label=label)


# ================================================================================================= views
class FigureView:
    """Owns ONE persistent Figure; subclasses create artists in `setup` and move them in `update`.

    frame = PNG(draw(figure)); the figure is never rebuilt, only its artists' data change
    Args:
        figsize: (w, h) in inches; dpi: pixels per inch (small: a slider step must render in a few ms).
        margins: (left, bottom, right, top) of the axes in figure fractions (fixed: no layout engine per draw).
    """

    def __init__(self, *, figsize: tuple[float, float] = (5.4, 3.3), dpi: int = 90,
                 margins: tuple[float, float, float, float] = (0.14, 0.16, 0.97, 0.90)) -> None:
        with gp.style(**{"figure.constrained_layout.use": False}):
            self.figure = Figure(figsize=figsize, dpi=dpi)
            FigureCanvasAgg(self.figure)  # attaches itself as figure.canvas
            left, bottom, right, top = margins
            self.figure.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
            self.ax = self.figure.add_subplot()
            gp._dress(self.ax)
            self.setup(self.ax)

    def setup(self, ax: Any) -> None:
        """Create the artists (called once)."""

    def update(self, result: Any) -> None:
        """Move the artists to show `result` (no new figure, no ax.clear())."""
        raise NotImplementedError

    def caption(self, result: Any) -> str:
        """One line of plain text under the figure (what to notice), or ''."""
        return ""

    def render(self, *, palette: bool = False) -> bytes:
        """The figure as PNG bytes; `palette=True` quantizes to ≤ 64 colours (≈ 3× smaller, for the site)."""
        from PIL import Image  # matplotlib's own dependency

        with gp.style():
            self.figure.canvas.draw()
            rgba = np.asarray(self.figure.canvas.buffer_rgba())
        img = Image.fromarray(rgba[..., :3])  # the figure is opaque white: alpha carries nothing
        buf = io.BytesIO()
        if palette:
            quantize = getattr(Image, "Quantize", Image)  # enum namespaces arrived in Pillow 9.1
            dither = getattr(Image, "Dither", Image)
            img.quantize(colors=64, method=quantize.MEDIANCUT, dither=dither.NONE).save(
                buf, format="PNG", optimize=True)
        else:
            img.save(buf, format="PNG", compress_level=1)  # speed over size: this goes over a local socket
        return buf.getvalue()


def _log_limits(ax: Any, values: Iterable[np.ndarray], min_decades: float = 2.0) -> None:
    """y-limits covering every finite positive value, padded, at least `min_decades` tall."""
    good = np.concatenate([gp.masked_log(v).compressed() for v in values] or [np.zeros(0)])
    if good.size == 0:
        ax.set_ylim(1e-1, 1e1)
        return
    lo, hi = np.log10(good.min()), np.log10(good.max())
    pad = max(0.0, (min_decades - (hi - lo)) / 2) + 0.15 * max(hi - lo, 0.5)
    lo, hi = max(lo - pad, -300.0), min(hi + pad, 300.0)
    ax.set_ylim(10.0**lo, 10.0**hi)


class ProfileView(FigureView):
    """Per-layer gradient norms of one or more DepthProfiles, log y, ✕ where a run exploded.

    y_l = ‖∂loss/∂h_l‖, l = 1 (input side) … L
    Args:
        title: fixed title (default: the profile's label); n_lines: most profiles shown at once.
        figsize, dpi: as in FigureView.
    """

    def __init__(self, *, title: str | None = None, n_lines: int = 3, **kw: Any) -> None:
        self._title = title
        self.n_lines = int(n_lines)
        super().__init__(**kw)

    def setup(self, ax: Any) -> None:
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())  # minor log ticks cost ~40% of a redraw
        ax.set_xlabel("layer  (1 = input side)")
        ax.set_ylabel(r"$\|\partial \ell / \partial h_l\|$")
        self.lines = [ax.plot([], [], marker="o", markersize=3, color=gp.CYCLE[i])[0] for i in range(self.n_lines)]
        self.crosses = []
        for i in range(self.n_lines):
            cross, note = gp.mark_exploded(ax, 0.0, label="", slot=i)
            cross.set_visible(False)
            note.set_visible(False)
            self.crosses.append((cross, note))
        self.title = ax.set_title("")
        self.legend = None

    def update(self, result: Any) -> None:
        profiles = [result] if hasattr(result, "grad_norms") else list(result)
        if len(profiles) > self.n_lines:
            raise ValueError(f"result has {len(profiles)} profiles; this view shows at most {self.n_lines}")
        colors = gp.colors_for([p.label for p in profiles])
        xs = []
        for i, line in enumerate(self.lines):
            cross, note = self.crosses[i]
            if i >= len(profiles):
                line.set_visible(False)
                cross.set_visible(False)
                note.set_visible(False)
                continue
            p = profiles[i]
            layer = np.asarray(p.layer, dtype=float)
            g = np.asarray(p.grad_norms, dtype=float)
            xs.append(layer)
            line.set_data(layer, gp.masked_log(g).filled(np.nan))
            line.set(color=colors[i], label=p.label, visible=True, marker="o" if len(layer) <= 24 else "None")
            k = gp.exploded_index(p, g)
            exploded = k is not None and 0 <= k < len(layer)
            cross.set_visible(exploded)
            note.set_visible(exploded)
            if exploded:
                cross.set_xdata([layer[k]])
                cross.set_color(colors[i])
                note.xy = (layer[k], note.xy[1])
                note.set_text(f"exploded at layer {layer[k]:g}")
                note.set_color(colors[i])
        lo = min(x.min() for x in xs) if xs else 0.0
        hi = max(x.max() for x in xs) if xs else 1.0
        self.ax.set_xlim(lo - 0.5, hi + 0.5)
        _log_limits(self.ax, [p.grad_norms for p in profiles])
        if self._title is not None:
            self.title.set_text(self._title)
        elif len(profiles) == 1:  # the number to notice goes into the picture (the static site has no caption)
            self.title.set_text(f"{profiles[0].label}  ·  {self._verdict(profiles[0], short=True)}")
        else:
            self.title.set_text(", ".join(p.label for p in profiles))
        if len(profiles) > 1:
            if self.legend is not None:
                self.legend.remove()
            self.legend = self.ax.legend(handles=self.lines[: len(profiles)], loc="lower right")
        elif self.legend is not None:
            self.legend.remove()
            self.legend = None

    @staticmethod
    def _verdict(p: Any, short: bool = False) -> str:
        k = gp.exploded_index(p, p.grad_norms)
        if k is not None:
            return f"exploded (inf/NaN) at layer {np.asarray(p.layer)[k]:g}"
        ratio = getattr(p, "ratio", None)
        if ratio is None or not np.isfinite(ratio):
            g = np.asarray(p.grad_norms, dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = float(g[0] / g[-1])
        verdict = "vanishing" if ratio < 0.1 else "exploding" if ratio > 10 else "steady"
        return f"first/last = {ratio:.2g}" + ("" if short else f" ({verdict})")

    def caption(self, result: Any) -> str:
        profiles = [result] if hasattr(result, "grad_norms") else list(result)
        return "; ".join(f"{p.label}: gradient at the first layer / at the last: {self._verdict(p)}"
                         if gp.exploded_index(p, p.grad_norms) is None else f"{p.label}: {self._verdict(p)}"
                         for p in profiles)


class PathLengthView(FigureView):
    """‖∂y_j/∂x_i‖ against the distance |j − i|: RNN vs one attention layer, log y.

    RNN: exponential decay (path length O(n)); attention: slow decay (path length O(1))
    Args:
        figsize, dpi: as in FigureView.
    """

    def setup(self, ax: Any) -> None:
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("distance between the tokens  |j − i|")
        ax.set_ylabel(r"$\|\partial y_j / \partial x_i\|_F$")
        (self.rnn,) = ax.plot([], [], color=gp.COLORS["baseline"], label="RNN (relay of calls)")
        (self.att,) = ax.plot([], [], color=gp.COLORS["attention"], label="attention (group call)")
        ax.legend(loc="lower left")
        self.title = ax.set_title("")

    def update(self, result: Any) -> None:
        d = np.asarray(result.distance, dtype=float)
        self.rnn.set_data(d, gp.masked_log(result.rnn).filled(np.nan))
        self.att.set_data(d, gp.masked_log(result.attention).filled(np.nan))
        self.ax.set_xlim(-0.5, max(float(d.max()) if d.size else 1.0, 1.0) + 0.5)
        _log_limits(self.ax, [result.rnn, result.attention], min_decades=3.0)
        self.title.set_text(f"n = {result.seq_len} tokens, RNN spectral radius ρ = {result.rho:g}")

    def caption(self, result: Any) -> str:
        rnn, att = np.asarray(result.rnn, dtype=float), np.asarray(result.attention, dtype=float)
        return (f"farthest token (distance {len(rnn) - 1}): RNN {rnn[-1]:.2g}, attention {att[-1]:.2g}"
                if len(rnn) else "")


# ============================================================================================== explorer
def _cache_key(values: Mapping[str, Any]) -> tuple:
    return tuple(sorted(values.items()))


class Explorer:
    """A live explorer: controls → compute(**values) (cached) → view.update(result) → PNG in an Image.

    frame_t = render(view.update(compute(**values_t))); the same Figure object for every t
    Args:
        compute: any callable taking the controls' values as keywords and returning what `view` draws.
        view: an object with `figure`, `update(result)`, `render() -> bytes` and optionally `caption(result)`.
        controls: the Control descriptions, in display order.
        title: shown in bold above the controls.
        cache_size: most results kept (least recently used dropped first).
        key: maps the control values to the cache key (e.g. to ignore a control that does not matter).
    """

    def __init__(self, compute: Callable[..., Any], view: Any, controls: Sequence[Control], *,
                 title: str = "", cache_size: int = 256,
                 key: Callable[[Mapping[str, Any]], Hashable] | None = None) -> None:
        w = _ipywidgets()  # fail early, with the install hint, before any work
        if not callable(compute):
            raise ValueError(f"compute must be callable; got {compute!r}")
        for attr in ("update", "render", "figure"):
            if not hasattr(view, attr):
                raise ValueError(f"view must have update(result), render() and figure; {view!r} lacks {attr!r}")
        names = [c.name for c in controls]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"controls must be a non-empty list with unique names; got {names}")
        self.compute = compute
        self.view = view
        self.controls = {c.name: c for c in controls}
        self.values: dict[str, Any] = {c.name: c.value for c in controls}
        self.key = key or _cache_key
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[Hashable, Any] = OrderedDict()
        self.timings: dict[str, float] = {}  # the last step: compute_ms, update_ms, render_ms, cached
        self._hold = False

        self.widgets = {name: c.build(w) for name, c in self.controls.items()}
        for name, widget in self.widgets.items():
            widget.observe(self._on_change(name), names="value")
        self.image = w.Image(value=b"", format="png")
        self.caption = w.HTML(value="")
        header = [w.HTML(value=f"<b>{html.escape(title)}</b>")] if title else []
        self.box = w.VBox(header + [w.HBox(list(self.widgets.values())[:2]),
                                    w.HBox(list(self.widgets.values())[2:]), self.image, self.caption])
        self.refresh()

    @property
    def figure(self) -> Figure:
        """The view's one persistent Figure."""
        return self.view.figure

    def _on_change(self, name: str) -> Callable[[dict], None]:
        def handler(change: dict) -> None:
            self.values[name] = change["new"]
            if self._hold:
                return
            try:
                self.refresh()
            except Exception as err:  # noqa: BLE001 - an observer's exception would vanish into the kernel log
                self.caption.value = (f'<span style="color:{gp.COLORS["baseline"]}">'
                                      f"{html.escape(type(err).__name__)}: {html.escape(str(err))}</span>")

        return handler

    def result(self, **values: Any) -> Any:
        """compute(**values), from the cache when this tuple of values was seen before."""
        key = self.key(values)
        if key in self._cache:
            self._cache.move_to_end(key)
            self.timings["cached"] = True
            return self._cache[key]
        self.timings["cached"] = False
        out = self.compute(**values)
        self._cache[key] = out
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def refresh(self) -> None:
        """Recompute (or fetch) the result for the current values and redraw the same figure in place."""
        t0 = time.perf_counter()
        out = self.result(**self.values)
        t1 = time.perf_counter()
        self.view.update(out)
        t2 = time.perf_counter()
        png = self.view.render()
        t3 = time.perf_counter()
        self.image.value = png
        caption = getattr(self.view, "caption", None)
        self.caption.value = html.escape(caption(out)) if callable(caption) else ""
        self.timings.update(compute_ms=1e3 * (t1 - t0), update_ms=1e3 * (t2 - t1), render_ms=1e3 * (t3 - t2),
                            total_ms=1e3 * (time.perf_counter() - t0))

    def set(self, **values: Any) -> None:
        """Move controls programmatically (one redraw for all of them), e.g. `explorer.set(depth=20)`."""
        unknown = sorted(set(values) - set(self.widgets))
        if unknown:
            raise ValueError(f"controls must be among {', '.join(self.widgets)}; got {', '.join(unknown)}")
        self._hold = True
        try:
            for name, value in values.items():
                self.widgets[name].value = value
                self.values[name] = self.widgets[name].value  # the widget may round the value
        finally:
            self._hold = False
        self.refresh()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def __repr__(self) -> str:
        return f"Explorer({getattr(self.compute, '__name__', 'compute')}, values={self.values})"


# ======================================================================================= static explorer
@dataclass
class StaticExplorer:
    """A kernel-free explorer: pre-rendered frames and inline JavaScript; displays via `_repr_html_`.

    Attributes:
        html: the full HTML (see the DOM contract in the spec); id: unique within a page;
        grid: the control values; n_frames: ∏ |grid values|; n_unique: distinct PNGs stored;
        size_bytes: len(html) in UTF-8 bytes (≤ the budget).
    """

    html: str
    id: str
    grid: dict[str, list]
    n_frames: int
    n_unique: int
    size_bytes: int
    frame_bytes: list[int] = field(default_factory=list)

    def _repr_html_(self) -> str:
        return self.html

    def save(self, path: str) -> None:
        """Write a standalone HTML page with the explorer."""
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"<!doctype html><meta charset='utf-8'><title>{html.escape(self.id)}</title>\n{self.html}\n")

    def __repr__(self) -> str:
        return (f"StaticExplorer(id={self.id!r}, frames={self.n_frames} ({self.n_unique} unique), "
                f"size={self.size_bytes / 1e6:.2f} MB)")


_static_counter = itertools.count(1)

_SCRIPT = """(function () {
  var root = document.querySelector('[data-gh-explorer="%(id)s"]');
  if (!root) { return; }
  var frames = %(frames)s;
  var index = %(index)s;
  var shown = %(shown)s;
  var params = %(params)s;
  var img = root.querySelector("img.gh-explorer-frame");
  function control(p) { return root.querySelector('.gh-control[data-param="' + p + '"]'); }
  function show() {
    var key = params.map(function (p) { return control(p).value; }).join(",");
    params.forEach(function (p) {
      var c = control(p), out = c.parentNode.querySelector("output");
      if (out) { out.textContent = shown[p][+c.value]; }
    });
    var f = index[key];
    if (f !== undefined) { img.src = "data:image/png;base64," + frames[f]; }
  }
  params.forEach(function (p) {
    control(p).addEventListener("input", show);
    control(p).addEventListener("change", show);
  });
  show();
})();"""


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _shown(v: Any) -> str:
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _json_for_script(obj: Any) -> str:
    # "</" would end the <script> element early; "<!--" would start an HTML comment inside it
    return json.dumps(obj, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def _render(view: Any) -> bytes:
    try:
        if "palette" in inspect.signature(view.render).parameters:
            return view.render(palette=True)
    except (TypeError, ValueError):
        pass
    return view.render()


def static_explorer(compute: Callable[..., Any], view: Any, grid: Mapping[str, Sequence[Any]], *,
                    title: str = "Explorer", initial: Mapping[str, Any] | None = None, alt: str | None = None,
                    max_bytes: int = MAX_STATIC_BYTES) -> StaticExplorer:
    """The kernel-free twin of an Explorer: every grid point pre-rendered, swapped by inline JavaScript.

    frames = {render(view.update(compute(**v))) : v ∈ ∏_k grid[k]}; numbers → range slider, others → <select>
    Args:
        compute: callable taking one value per grid key as keywords.
        view: as for Explorer (update(result), render(); a `palette=True` render is used when offered).
        grid: name -> (n_k,) values, in display order; ∏ n_k frames are rendered.
        title: shown above the controls; initial: starting value per key (default: the first value);
        alt: the image's alt text; max_bytes: size budget of the whole HTML (ValueError when over it).
    """
    if not callable(compute):
        raise ValueError(f"compute must be callable; got {compute!r}")
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty dict name -> list of values; got {grid!r}")
    params = list(grid)
    values: dict[str, list] = {}
    for name in params:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"grid keys must be Python identifiers; got {name!r}")
        options = list(grid[name]) if not isinstance(grid[name], (str, bytes)) else []
        if not options:
            raise ValueError(f"grid[{name!r}] must be a non-empty list of values; got {grid[name]!r}")
        values[name] = options
    initial = dict(initial or {})
    unknown = sorted(set(initial) - set(params))
    if unknown:
        raise ValueError(f"initial must only name grid keys ({', '.join(params)}); got {', '.join(unknown)}")
    start = {}
    for name in params:
        if name in initial:
            if initial[name] not in values[name]:
                raise ValueError(f"initial[{name!r}] must be one of {values[name]!r}; got {initial[name]!r}")
            start[name] = values[name].index(initial[name])
        else:
            start[name] = 0

    frames: list[str] = []
    frame_of_png: dict[str, int] = {}
    index: dict[str, int] = {}
    frame_bytes: list[int] = []
    for combo in itertools.product(*(range(len(values[n])) for n in params)):
        kwargs = {n: values[n][i] for n, i in zip(params, combo)}
        view.update(compute(**kwargs))
        png = _render(view)
        digest = hashlib.sha1(png).hexdigest()
        if digest not in frame_of_png:  # identical frames (a control that does not matter here) stored once
            frame_of_png[digest] = len(frames)
            frames.append(base64.b64encode(png).decode("ascii"))
            frame_bytes.append(len(png))
        index[",".join(map(str, combo))] = frame_of_png[digest]

    content = hashlib.sha1((title + "".join(frame_of_png)).encode()).hexdigest()[:10]
    uid = f"gh-{content}-{next(_static_counter)}"
    esc = html.escape
    controls = []
    for name in params:
        opts = values[name]
        if all(_is_number(v) for v in opts):
            controls.append(
                f'<label style="margin-right:1.2em;white-space:nowrap">{esc(name)} '
                f'<input type="range" class="gh-control" data-param="{esc(name)}" min="0" max="{len(opts) - 1}" '
                f'step="1" value="{start[name]}" style="vertical-align:middle"> '
                f'<output>{esc(_shown(opts[start[name]]))}</output></label>')
        else:
            options = "".join(
                f'<option value="{i}"{" selected" if i == start[name] else ""}>{esc(_shown(v))}</option>'
                for i, v in enumerate(opts))
            controls.append(
                f'<label style="margin-right:1.2em;white-space:nowrap">{esc(name)} '
                f'<select class="gh-control" data-param="{esc(name)}">{options}</select></label>')
    first = frames[index[",".join(str(start[n]) for n in params)]]
    script = _SCRIPT % dict(
        id=uid,
        frames=_json_for_script(frames),
        index=_json_for_script(index),
        shown=_json_for_script({n: [_shown(v) for v in values[n]] for n in params}),
        params=_json_for_script(params),
    )
    # a white card with dark text, like the figures: reads the same on the light and the dark theme
    card = ("background:#ffffff;color:#222222;color-scheme:light;border:1px solid #d0d0d0;border-radius:6px;"
            "padding:0.6em 0.8em;margin:0.5em 0;max-width:100%;box-sizing:border-box;"
            "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:0.9rem")
    heading = f'<div style="font-weight:600;margin-bottom:0.3em">{esc(title)}</div>' if title else ""
    alt_text = alt if alt is not None else f"{title}: figure for the chosen " + ", ".join(params)
    page = (
        f'<div class="gh-explorer" data-gh-explorer="{uid}" style="{card}">\n'
        f"{heading}\n" + "\n".join(controls) + "\n"
        f'<img class="gh-explorer-frame" src="data:image/png;base64,{first}" alt="{esc(alt_text)}" '
        f'style="display:block;max-width:100%;height:auto;margin-top:0.4em;background:#ffffff">\n'
        f"<script>{script}</script>\n</div>"
    )
    size = len(page.encode("utf-8"))
    n_frames = math.prod(len(values[n]) for n in params)
    if size > max_bytes:
        raise ValueError(
            f"static explorer {title!r} is {size / 1e6:.2f} MB, over the {max_bytes / 1e6:.2f} MB budget "
            f"({n_frames} frames, {len(frames)} unique, mean {np.mean(frame_bytes) / 1e3:.1f} kB per PNG): "
            f"use fewer grid values or a smaller figure (figsize/dpi)")
    return StaticExplorer(html=page, id=uid, grid=values, n_frames=n_frames, n_unique=len(frames),
                          size_bytes=size, frame_bytes=frame_bytes)


# ===================================================================================== chapter explorers
# Small default sizes: one uncached step (compute + redraw) must stay near 100 ms on 2 CPU cores.
MLP_WIDTH, MLP_BATCH = 128, 16
STATIC_DPI = 110  # the site's frames: sharper than the live 90 dpi, still ~5 kB per palette PNG
STACK_WIDTH, STACK_TOKENS, STACK_BATCH = 32, 8, 2


def _one_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run `fn` with one torch thread (restored after): the explorers' models are tiny, and with 2+ threads
    OpenMP's start-up and spin-waiting costs more than the work — 3-30× slower when other processes share
    the cores (measured by benchmarks/bench.py)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import torch

        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(n)

    return wrapper


def _call_accepted(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """fn(**kwargs) without the keywords fn does not take (the experiments' signatures may grow)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in params})


@_one_thread
def mlp_compute(depth: int = 10, activation: str = "tanh", init: str = "old", weight_scale: float = 1.0,
                *, width: int = MLP_WIDTH, batch: int = MLP_BATCH, seed: int = 0) -> Any:
    """Per-layer gradient norms of a deep MLP: experiments.mlp_gradients.  ‖∂ℓ/∂h_l‖, l = 1…depth

    Args:
        depth, activation: as in mlp_gradients; init: 'old', 'xavier', 'he' or 'scaled' (W ~ N(0, σ_w²/n)
            with σ_w = weight_scale; weight_scale is ignored otherwise); width, batch, seed: model size, inputs.
    """
    from gradlib import experiments

    scale = float(weight_scale) if init == "scaled" else None
    return _call_accepted(experiments.mlp_gradients, depth=int(depth), width=width, activation=activation,
                          init="xavier" if init == "scaled" else init, weight_scale=scale, batch=batch,
                          seed=seed)


@_one_thread
def path_length_compute(seq_len: int = 16, rho: float = 1.0, *, d: int = 16, seed: int = 0) -> Any:
    """‖∂y_j/∂x_i‖ against |j − i| for a tanh RNN and one attention layer: experiments.path_lengths.

    Args:
        seq_len: n tokens; rho: the RNN's spectral radius; d: token width; seed: init and inputs.
    """
    from gradlib import experiments

    return _call_accepted(experiments.path_lengths, seq_len=int(seq_len), rho=float(rho), d=d, seed=seed)


@_one_thread
def residual_compute(depth: int = 30, residual: bool = True, alpha: float = 1.0, *, activation: str = "tanh",
                     init: str = "old", width: int = MLP_WIDTH, batch: int = MLP_BATCH, seed: int = 0) -> Any:
    """Per-layer gradient norms of a tanh MLP, plain or with scaled skips: experiments.mlp_gradients.

    h_l = h_{l−1} + α·f(h_{l−1}) with skips (branch_scale = α), h_l = f(h_{l−1}) without (α unused)
    Args:
        depth: layers; residual: skips on/off; alpha: branch scale α ≥ 0; activation, init, width, batch,
        seed: as in experiments.mlp_gradients.
    """
    from gradlib import experiments

    alpha = float(alpha)
    if not (alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number >= 0; got {alpha!r}")
    common = dict(depth=int(depth), width=width, activation=activation, init=init, batch=batch, seed=seed)
    if not residual:
        # the label names α although it plays no part: every control change must change the picture
        return experiments.mlp_gradients(residual=False, label=f"plain (no skips; α = {alpha:g} unused)",
                                         **common)
    return experiments.mlp_gradients(residual=True, branch_scale=alpha, label=f"residual, α = {alpha:g}",
                                     **common)


@_one_thread
def norm_compute(depth: int = 12, norm: str = "layer", position: str = "pre", *, d_model: int = STACK_WIDTH,
                 n_tokens: int = STACK_TOKENS, batch: int = STACK_BATCH, seed: int = 0) -> Any:
    """Per-layer gradient norms of a residual Transformer stack: experiments.stack_gradients.

    pre: x = x + f(N(x)) (and a final N); post: x = N(x + f(x)); g_l = ‖∂ℓ/∂x_l‖
    Args:
        depth: blocks; norm: 'layer', 'rms' or 'none'; position: 'pre' or 'post'; d_model, n_tokens, batch,
        seed: stack size and inputs x ~ N(0, 1) of shape (batch, n_tokens, d_model).
    """
    from gradlib import experiments

    if norm not in ("layer", "rms", "none"):
        raise ValueError(f"norm must be one of 'layer', 'rms', 'none'; got {norm!r}")
    if position not in ("pre", "post"):
        raise ValueError(f"position must be one of 'pre', 'post'; got {position!r}")
    # without a norm the position changes nothing, but the label says so (every control changes the picture)
    label = f"no norm ({position}: nothing to place)" if norm == "none" else None
    return experiments.stack_gradients(int(depth), norm, position, d_model=d_model, n_heads=1,
                                       n_tokens=n_tokens, batch=batch, seed=seed, label=label)


def _mlp_key(values: Mapping[str, Any]) -> tuple:
    v = dict(values)
    if v.get("init") != "scaled":
        v["weight_scale"] = None
    return _cache_key(v)


def _make(compute: Callable[..., Any], view: Callable[..., Any], controls: Sequence[Control], title: str, key: Any,
          static: bool, grid: Mapping[str, Sequence[Any]] | None, default_grid: Mapping[str, Sequence[Any]]
          ) -> Explorer | StaticExplorer:
    if static:
        g = grid or default_grid
        initial = {c.name: c.value for c in controls if c.name in g and c.value in list(g[c.name])}
        return static_explorer(compute, view(dpi=STATIC_DPI), g, title=title, initial=initial)
    return Explorer(compute, view(), controls, title=title, key=key)


def mlp_explorer(*, compute: Callable[..., Any] | None = None, static: bool = False,
                 grid: Mapping[str, Sequence[Any]] | None = None) -> Explorer | StaticExplorer:
    """Chapter 1: depth, activation and init of a deep MLP → gradient reaching each layer.

    ‖∂ℓ/∂h_l‖ = ‖(∏_{m>l} diag(φ′) W_m)ᵀ ∂ℓ/∂h_L‖
    Args:
        compute: replaces :func:`mlp_compute` (same keywords: depth, activation, init, weight_scale).
        static: return the kernel-free StaticExplorer instead (no ipywidgets needed).
        grid: the static explorer's grid (default: depth × activation × init).
    """
    controls = [
        int_slider("depth", 2, 50, 10, label="depth"),
        choice("activation", ("tanh", "sigmoid", "relu", "identity"), "tanh", label="activation"),
        choice("init", ("old", "xavier", "he", "scaled"), "old", label="init"),
        log_slider("weight_scale", 0.25, 4.0, 1.0, label="σ_w (init = scaled)"),
    ]
    default_grid = {"depth": [5, 10, 20, 30, 50], "activation": ["tanh", "sigmoid", "relu", "identity"],
                    "init": ["old", "xavier", "he"]}
    return _make(compute or mlp_compute, ProfileView, controls, "Vanishing gradients in a deep MLP",
                 _mlp_key, static, grid, default_grid)


def path_length_explorer(*, compute: Callable[..., Any] | None = None, static: bool = False,
                         grid: Mapping[str, Sequence[Any]] | None = None) -> Explorer | StaticExplorer:
    """Chapter 2: sequence length and RNN spectral radius → how much the farthest token still counts.

    RNN ∂h_n/∂x_1 has n − 1 factors; attention reaches x_1 in one step
    Args:
        compute: replaces :func:`path_length_compute` (keywords seq_len, rho).
        static: return the kernel-free StaticExplorer; grid: its grid (default seq_len × rho).
    """
    controls = [
        int_slider("seq_len", 4, 64, 16, step=4, label="sequence length n"),
        float_slider("rho", 0.5, 1.5, 1.0, step=0.05, label="RNN spectral radius ρ"),
    ]
    default_grid = {"seq_len": [8, 16, 32, 64], "rho": [0.5, 0.8, 1.0, 1.2, 1.5]}
    return _make(compute or path_length_compute, PathLengthView, controls,
                 "Path length: a relay of calls vs a group call", None, static, grid, default_grid)


def residual_explorer(*, compute: Callable[..., Any] | None = None, static: bool = False,
                      grid: Mapping[str, Sequence[Any]] | None = None) -> Explorer | StaticExplorer:
    """Chapter 3: depth, skip connections on/off and branch scale α → gradient reaching each layer.

    ∂h_l/∂h_{l−1} = I + α·J_f (with skips) vs J_f (plain)
    Args:
        compute: replaces :func:`residual_compute` (keywords depth, residual, alpha).
        static: return the kernel-free StaticExplorer; grid: its grid (default depth × residual × alpha).
    """
    controls = [
        int_slider("depth", 2, 50, 30, label="depth"),
        checkbox("residual", True, label="skip connections"),
        float_slider("alpha", 0.0, 2.0, 1.0, step=0.1, label="branch scale α"),
    ]
    default_grid = {"depth": [5, 10, 20, 30, 50], "residual": [False, True], "alpha": [0.0, 0.1, 0.5, 1.0, 2.0]}
    return _make(compute or residual_compute, ProfileView, controls, "Skip connections: the expressway",
                 None, static, grid, default_grid)


def norm_explorer(*, compute: Callable[..., Any] | None = None, static: bool = False,
                  grid: Mapping[str, Sequence[Any]] | None = None) -> Explorer | StaticExplorer:
    """Chapter 4: depth, norm type and its position (pre/post) → gradient reaching each block.

    pre: x = x + f(N(x)); post: x = N(x + f(x)); N ∈ {LayerNorm, RMSNorm, none}
    Args:
        compute: replaces :func:`norm_compute` (keywords depth, norm, position).
        static: return the kernel-free StaticExplorer; grid: its grid (default depth × norm × position).
    """
    controls = [
        int_slider("depth", 2, 24, 12, label="blocks"),
        choice("norm", ("layer", "rms", "none"), "layer", label="norm", buttons=True),
        choice("position", ("pre", "post"), "pre", label="position", buttons=True),
    ]
    default_grid = {"depth": [2, 4, 8, 12, 24], "norm": ["layer", "rms", "none"], "position": ["pre", "post"]}
    return _make(compute or norm_compute, ProfileView, controls, "Where the norm goes: Pre-LN vs Post-LN",
                 None, static, grid, default_grid)
