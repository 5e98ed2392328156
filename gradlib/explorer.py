"""A live explorer: controls → compute(**values) (cached) → the figure redrawn in place → a PNG in an Image.

    FigureView   ONE persistent matplotlib Figure (not pyplot) holding one figure of gradlib.figures/charts,
                 whose ``show(result)`` is the same code the notebook's ``plot_*`` calls; fixed margins, no
                 layout engine per draw, minor log ticks off: a slider step renders in a few ms
    Explorer     every control change recomputes (cached per tuple of values) and moves that figure's lines

Needs a kernel and ipywidgets 7 or 8 (imported lazily, see gradlib.controls); the kernel-free twin for the
static site is gradlib.static.static_explorer.
"""
from __future__ import annotations

import html
import inspect
import io
import time
from collections import OrderedDict
from typing import Any, Callable, Hashable, Mapping, Optional, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gradlib import style as gs
from gradlib.controls import Control, ipywidgets_module

__all__ = ["FigureView", "Explorer", "check_keywords"]


def check_keywords(fn: Callable[..., Any], names: Sequence[str], what: str) -> None:
    """ValueError unless `fn` takes every one of `names` as a keyword (a misspelt control must not be ignored)."""
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = [n for n in names if n not in params or params[n].kind is inspect.Parameter.POSITIONAL_ONLY]
    if unknown:
        name = getattr(fn, "__name__", repr(fn))
        raise ValueError(f"{what} name keywords that {name} does not take: {', '.join(unknown)} "
                         f"(it takes {', '.join(params)})")


class FigureView:
    """ONE persistent Figure showing one gradlib figure (e.g. DepthProfileFigure), moved in place by `update`.

    frame = PNG(draw(figure)); the figure is never rebuilt, only its lines' data change.
    Args:
        chart: a figure class of gradlib.figures / gradlib.charts: chart(ax, **chart_kw) with show(result, title=).
        title: a function result -> the title shown (default: the chart's own).
        caption: a function result -> one line of plain text under the figure (what to notice).
        figsize: (w, h) in inches; dpi: pixels per inch (small: a slider step must render in a few ms).
        margins: (left, bottom, right, top) of the axes in figure fractions (fixed: no layout engine per draw).
        chart_kw: passed to `chart`.
    """

    def __init__(self, chart: Callable[..., Any], *, title: Optional[Callable[[Any], str]] = None,
                 caption: Optional[Callable[[Any], str]] = None, figsize: tuple[float, float] = (5.4, 3.3),
                 dpi: int = 90, margins: tuple[float, float, float, float] = (0.14, 0.16, 0.97, 0.90),
                 **chart_kw: Any) -> None:
        self._title, self._caption = title, caption
        with gs.style(**{"figure.constrained_layout.use": False}):
            self.figure = Figure(figsize=figsize, dpi=dpi)
            FigureCanvasAgg(self.figure)  # attaches itself as figure.canvas
            left, bottom, right, top = margins
            self.figure.subplots_adjust(left=left, bottom=bottom, right=right, top=top)
            self.ax = self.figure.add_subplot()
            self.chart = chart(self.ax, minor_ticks=False, **chart_kw)

    def update(self, result: Any) -> None:
        """Move the figure's lines to show `result` (the chart's own show: no new figure, no ax.clear())."""
        self.chart.show(result, title=None if self._title is None else self._title(result))

    def caption(self, result: Any) -> str:
        """One line of plain text under the figure, or ''."""
        return "" if self._caption is None else self._caption(result)

    def render(self, *, palette: bool = False) -> bytes:
        """The figure as PNG bytes; `palette=True` quantizes to ≤ 64 colours (≈ 3× smaller, for the site)."""
        from PIL import Image  # matplotlib's own dependency

        with gs.style():
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
        w = ipywidgets_module()  # fail early, with the install hint, before any work
        if not callable(compute):
            raise ValueError(f"compute must be callable; got {compute!r}")
        for attr in ("update", "render", "figure"):
            if not hasattr(view, attr):
                raise ValueError(f"view must have update(result), render() and figure; {view!r} lacks {attr!r}")
        names = [c.name for c in controls]
        if len(set(names)) != len(names) or not names:
            raise ValueError(f"controls must be a non-empty list with unique names; got {names}")
        check_keywords(compute, names, "controls")
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
                self.caption.value = (f'<span style="color:{gs.ROLE_COLORS["baseline"]}">'
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
