"""The kernel-free twin of an explorer, for the static site: every grid point pre-rendered, swapped by inline JS.

    frames = {render(view.update(compute(**v))) : v ∈ ∏_k grid[k]}; numbers → a range slider, others → <select>

The page carries the PNGs (identical frames stored once) and a few lines of inline JavaScript; nothing is
loaded from another host, and the whole HTML must stay within MAX_STATIC_BYTES.
"""
from __future__ import annotations

import base64
import hashlib
import html
import inspect
import itertools
import json
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from gradlib.explorer import check_keywords
from gradlib.i18n import _

__all__ = ["MAX_STATIC_BYTES", "StaticExplorer", "static_explorer"]

MAX_STATIC_BYTES = 1_500_000  # per static explorer: the site's page-weight budget

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
        return _("on") if v else _("off")
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _json_for_script(obj: Any) -> str:
    # "</" would end the <script> element early, "<!--" would start an HTML comment inside it: <, > and & are
    # written as \u escapes, which JavaScript and JSON read back as the same characters (and non-ASCII as \uXXXX)
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _render(view: Any) -> bytes:
    try:
        if "palette" in inspect.signature(view.render).parameters:
            return view.render(palette=True)
    except (TypeError, ValueError):
        pass
    return view.render()


def static_explorer(compute: Callable[..., Any], view: Any, grid: Mapping[str, Sequence[Any]], *,
                    title: str = "Explorer", initial: Mapping[str, Any] | None = None, alt: str | None = None,
                    labels: Mapping[str, str] | None = None, option_labels: Mapping[str, Mapping[Any, str]] | None = None,
                    max_bytes: int = MAX_STATIC_BYTES) -> StaticExplorer:
    """The kernel-free twin of an Explorer: every grid point pre-rendered, swapped by inline JavaScript.

    frames = {render(view.update(compute(**v))) : v ∈ ∏_k grid[k]}; numbers → range slider, others → <select>
    Args:
        compute: callable taking one value per grid key as keywords.
        view: as for Explorer (update(result), render(); a `palette=True` render is used when offered).
        grid: name -> (n_k,) values, in display order; ∏ n_k frames are rendered.
        title: shown above the controls; initial: starting value per key (default: the first value);
        alt: the image's alt text; labels: the text shown next to each control (default: its grid key; the
        live explorer's Control.label, so both twins read alike); option_labels: per grid key, the text shown for
        a value (default: the value; booleans "on"/"off"); max_bytes: size budget of the whole HTML (ValueError
        when over it).
    """
    if not callable(compute):
        raise ValueError(f"compute must be callable; got {compute!r}")
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty dict name -> list of values; got {grid!r}")
    params = list(grid)
    check_keywords(compute, params, "grid keys")
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
    labels = dict(labels or {})
    unknown = sorted(set(labels) - set(params))
    if unknown:
        raise ValueError(f"labels must only name grid keys ({', '.join(params)}); got {', '.join(unknown)}")
    shown_name = {n: str(labels.get(n) or n) for n in params}
    option_labels = dict(option_labels or {})
    unknown = sorted(set(option_labels) - set(params))
    if unknown:
        raise ValueError(f"option_labels must only name grid keys ({', '.join(params)}); got {', '.join(unknown)}")
    shown = {n: [str(option_labels.get(n, {}).get(v, _shown(v))) for v in values[n]] for n in params}

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
    uid = f"gh-{content}-{next(_static_counter):04d}"  # fixed width: same size every time
    esc = html.escape
    controls = []
    for name in params:
        opts = values[name]
        if all(_is_number(v) for v in opts):
            controls.append(
                f'<label style="margin-right:1.2em;white-space:nowrap">{esc(shown_name[name])} '
                f'<input type="range" class="gh-control" data-param="{esc(name)}" min="0" max="{len(opts) - 1}" '
                f'step="1" value="{start[name]}" style="vertical-align:middle"> '
                f'<output>{esc(shown[name][start[name]])}</output></label>')
        else:
            options = "".join(
                f'<option value="{i}"{" selected" if i == start[name] else ""}>{esc(shown[name][i])}</option>'
                for i in range(len(opts)))
            controls.append(
                f'<label style="margin-right:1.2em;white-space:nowrap">{esc(shown_name[name])} '
                f'<select class="gh-control" data-param="{esc(name)}">{options}</select></label>')
    first = frames[index[",".join(str(start[n]) for n in params)]]
    script = _SCRIPT % dict(
        id=uid,
        frames=_json_for_script(frames),
        index=_json_for_script(index),
        shown=_json_for_script(shown),
        params=_json_for_script(params),
    )
    # a white card with dark text, like the figures: reads the same on the light and the dark theme
    card = ("background:#ffffff;color:#222222;color-scheme:light;border:1px solid #d0d0d0;border-radius:6px;"
            "padding:0.6em 0.8em;margin:0.5em 0;max-width:100%;box-sizing:border-box;"
            "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:0.9rem")
    heading = f'<div style="font-weight:600;margin-bottom:0.3em">{esc(title)}</div>' if title else ""
    alt_text = alt if alt is not None else _("{title}: figure for the chosen {controls}").format(
        title=title, controls=", ".join(shown_name[n] for n in params))
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
