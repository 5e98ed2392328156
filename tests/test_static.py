"""Tests of gradlib.static: the kernel-free explorer's HTML follows the site's DOM contract (one img.gh-explorer-frame,
one .gh-control per grid key), stores identical frames once, keeps to its byte budget, escapes its JSON, loads
nothing from another host, and its inline script swaps the picture whenever a control moves."""
from __future__ import annotations

import base64
import itertools
import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gradlib import explorer as gx  # noqa: E402
from gradlib import figures as gf  # noqa: E402
from gradlib import static as gst  # noqa: E402
from gradlib.results import DepthProfile  # noqa: E402


# ------------------------------------------------------------------------------------------------ fakes
class Counting:
    """A fake experiment: a DepthProfile whose numbers depend on every argument."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, depth: int = 6, activation: str = "tanh", weight_scale: float = 1.0):
        self.calls.append(dict(depth=depth, activation=activation, weight_scale=weight_scale))
        layer = np.arange(1, depth + 1)
        base = {"tanh": 0.6, "relu": 1.0}[activation] * weight_scale
        g = base ** (depth - layer).astype(float) + 0.05 * layer
        return DepthProfile(key=activation, label=f"{activation} ×{weight_scale:g}", role="baseline", layer=layer,
                            grad_norms=g, param_norms=g)


class RecordingView(gx.FigureView):
    """A FigureView that keeps the PNG of every frame it rendered."""

    def __init__(self) -> None:
        super().__init__(gf.DepthProfileFigure, figsize=(2.0, 1.4), dpi=30)
        self.rendered: list[bytes] = []

    def render(self, *, palette: bool = False) -> bytes:
        png = super().render(palette=palette)
        self.rendered.append(png)
        return png


def small_view() -> gx.FigureView:
    return gx.FigureView(gf.DepthProfileFigure, figsize=(2.0, 1.4), dpi=30)


GRID = {"depth": [2, 4], "activation": ["tanh", "relu"], "weight_scale": [0.5, 1.0]}


def _static(**kw):
    return gst.static_explorer(Counting(), small_view(), GRID, title="MLP", **kw)


@pytest.fixture(scope="module")
def static():
    """The explorer of GRID starting at depth 4, built once for the tests that only read it."""
    return _static(initial={"depth": 4})


class DOM(HTMLParser):
    """Collects the elements of the static explorer (tags with attributes, <option>s, script text)."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.select_options: dict[str, list[str]] = {}
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        if tag == "select":
            self._select = a.get("data-param")
            self.select_options[self._select] = []
        if tag == "option" and self._select is not None:
            self.select_options[self._select].append(a["value"])

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False
        if tag == "select":
            self._select = None

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data

    def find(self, tag, cls=None):
        return [a for t, a in self.elements if t == tag and (cls is None or cls in a.get("class", "").split())]


def _dom(html: str) -> DOM:
    dom = DOM()
    dom.feed(html)
    return dom


def _var(script: str, name: str):
    return json.loads(re.search(rf"var {name} = (.*?);\n", script).group(1))


# ---------------------------------------------------------------------------------------- DOM contract
def test_static_explorer_html_follows_the_dom_contract(static):
    dom = _dom(static._repr_html_())
    (root,) = dom.find("div", "gh-explorer")
    assert root["data-gh-explorer"] == static.id
    (img,) = dom.find("img", "gh-explorer-frame")
    assert img["src"].startswith("data:image/png;base64,") and img["alt"]
    sliders = dom.find("input", "gh-control")
    selects = dom.find("select", "gh-control")
    every = [a for _, a in dom.elements if "gh-control" in a.get("class", "").split()]
    assert len(every) == len(sliders) + len(selects) == len(GRID)  # one control per grid key
    assert {a["data-param"] for a in sliders} == {"depth", "weight_scale"}  # numbers -> range sliders
    assert {a["data-param"] for a in selects} == {"activation"}  # strings -> <select>
    for a in sliders:
        assert (a["type"], a["min"], a["max"], a["step"]) == ("range", "0", str(len(GRID[a["data-param"]]) - 1), "1")
    assert next(a for a in sliders if a["data-param"] == "depth")["value"] == "1"  # initial depth 4
    assert dom.select_options == {"activation": ["0", "1"]}
    assert len(dom.find("output")) == len(sliders)
    (script,) = dom.scripts
    assert static.id in script
    index, frames = _var(script, "index"), _var(script, "frames")
    assert len(index) == math.prod(len(v) for v in GRID.values()) == static.n_frames == static.n_unique == len(frames)
    assert set(index) == {",".join(map(str, c)) for c in itertools.product(range(2), range(2), range(2))}
    assert _var(script, "params") == list(GRID)
    assert _var(script, "shown") == {"depth": ["2", "4"], "activation": ["tanh", "relu"],
                                     "weight_scale": ["0.5", "1"]}
    # the image shown first is the frame of the initial values
    assert img["src"] == "data:image/png;base64," + frames[index["1,0,0"]]
    assert static.grid == GRID and static.size_bytes == len(static.html.encode("utf-8"))
    assert static.size_bytes <= gst.MAX_STATIC_BYTES


def test_every_frame_is_the_render_of_its_grid_point():
    fake, view = Counting(), RecordingView()
    static = gst.static_explorer(fake, view, {"depth": [3, 5], "activation": ["tanh", "relu"]})
    assert [(c["depth"], c["activation"]) for c in fake.calls] == list(itertools.product([3, 5], ["tanh", "relu"]))
    script = _dom(static.html).scripts[0]
    index, frames = _var(script, "index"), _var(script, "frames")
    for n, combo in enumerate(itertools.product(range(2), range(2))):
        assert base64.b64decode(frames[index[",".join(map(str, combo))]]) == view.rendered[n]
    assert static.frame_bytes == [len(png) for png in view.rendered]


def test_a_static_explorers_frames_differ_when_any_control_moves(static):
    script = _dom(static.html).scripts[0]
    index = _var(script, "index")
    sizes = [len(v) for v in GRID.values()]
    for combo in itertools.product(*(range(n) for n in sizes)):
        for k in range(len(sizes)):
            moved = list(combo)
            moved[k] = (moved[k] + 1) % sizes[k]
            assert index[",".join(map(str, combo))] != index[",".join(map(str, moved))], (combo, k)


def test_static_explorer_stores_identical_frames_once():
    def ignores_scale(depth, activation, weight_scale):
        return Counting()(depth=depth, activation=activation)

    static = gst.static_explorer(ignores_scale, small_view(), GRID)
    assert static.n_frames == 8 and static.n_unique == 4
    script = _dom(static.html).scripts[0]
    index, frames = _var(script, "index"), _var(script, "frames")
    assert len(frames) == 4 == len(set(frames)) == len(set(index.values()))
    for depth, act in itertools.product(range(2), range(2)):
        assert index[f"{depth},{act},0"] == index[f"{depth},{act},1"]  # the scale does not matter here
    assert len(static.frame_bytes) == 4
    assert "frames=8 (4 unique)" in repr(static)


def test_static_explorer_over_the_size_budget_raises_value_error_with_sizes():
    assert gst.MAX_STATIC_BYTES == 1_500_000

    def two(**kw):  # two grid points, one picture
        return gst.static_explorer(lambda depth: Counting()(depth=3), small_view(), {"depth": [2, 3]}, title="two",
                                   **kw)

    size = two().size_bytes
    with pytest.raises(ValueError, match=r"static explorer 'two' is 0\.\d\d MB, over the 0\.\d\d MB budget "
                                         r"\(2 frames, 1 unique, mean [\d.]+ kB per PNG\): use fewer grid values"):
        two(max_bytes=size - 1)
    assert two(max_bytes=size).size_bytes == size  # at the budget is fine


def test_static_explorer_rejects_bad_grids_and_grid_keys_compute_does_not_take():
    for grid, match in [({}, "non-empty dict"), ({"depth": []}, "non-empty list"), ({"depth": "248"}, "non-empty"),
                        ({"not valid": [1, 2]}, "identifiers|does not take")]:
        with pytest.raises(ValueError, match=match):
            gst.static_explorer(Counting(), small_view(), grid)
    with pytest.raises(ValueError, match="does not take: widht"):
        gst.static_explorer(Counting(), small_view(), {"depth": [2, 3], "widht": [1, 2]})
    with pytest.raises(ValueError, match="initial"):
        _static(initial={"depth": 5})
    with pytest.raises(ValueError, match="initial must only name grid keys"):
        _static(initial={"width": 5})
    with pytest.raises(ValueError, match="callable"):
        gst.static_explorer(None, small_view(), GRID)


def test_static_explorers_get_unique_ids():
    ids = {gst.static_explorer(Counting(), small_view(), {"depth": [2]}).id for _ in range(3)}
    assert len(ids) == 3


def test_static_explorer_makes_no_external_request(static):
    html = static._repr_html_()
    dom = _dom(html)
    for tag, attrs in dom.elements:
        for name in ("src", "href"):
            if name in attrs:
                assert attrs[name].startswith("data:"), f"<{tag} {name}={attrs[name][:40]!r}>"
    assert all("src" not in a for a in dom.find("script"))
    # base64 never contains ':' so any URL scheme would show up here
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/|fetch\(|XMLHttpRequest|import\(", html)


def test_json_in_the_script_is_escaped_so_no_value_can_end_the_script_or_open_a_comment():
    evil = ["</script><img src=x onerror=alert(1)>", "<!--", "a & b \u2028"]

    def compute(depth, label):
        return Counting()(depth=depth)

    static = gst.static_explorer(compute, small_view(), {"depth": [2], "label": evil}, title="</script> & <b>")
    html = static.html
    assert html.count("</script>") == 1  # only the element's own end tag
    assert "<!--" not in html
    dom = _dom(html)
    (script,) = dom.scripts
    assert _var(script, "shown")["label"] == evil  # the JSON still parses back to the values
    assert dom.select_options == {"label": ["0", "1", "2"]}
    assert "&lt;/script&gt; &amp; &lt;b&gt;" in html  # the title as text
    assert json.loads(gst._json_for_script(evil)) == evil
    assert not re.search(r"[<>&]", gst._json_for_script(evil))


def test_save_writes_a_standalone_page(static, tmp_path):
    path = tmp_path / "explorer.html"
    static.save(str(path))
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and static.html in text


_NODE_HARNESS = r"""
const spec = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const handlers = {}, controls = {};
for (const c of spec.controls) {
  handlers[c.param] = [];
  controls[c.param] = { value: c.value, parentNode: { querySelector: () => ({ textContent: '' }) },
    addEventListener: (ev, fn) => handlers[c.param].push([ev, fn]) };
}
const img = { src: spec.src };
const root = { querySelector: (sel) => {
  if (sel.startsWith('img')) return img;
  const m = sel.match(/data-param="([^"]+)"/); return controls[m[1]]; } };
global.document = { querySelector: (sel) => sel.includes(spec.id) ? root : null };
eval(spec.script);
const seen = [img.src];
for (const c of spec.controls) {             // move each control to another value, fire input only
  controls[c.param].value = String(c.target);
  for (const [ev, fn] of handlers[c.param]) if (ev === 'input') fn();
  seen.push(img.src);
}
console.log(JSON.stringify({ seen, events: Object.values(handlers).map(h => h.map(x => x[0]).sort()) }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the inline script")
def test_static_explorer_script_swaps_the_image_when_any_control_moves(static):
    dom = _dom(static.html)
    (img,) = dom.find("img", "gh-explorer-frame")
    ctrl = [{"param": a["data-param"], "value": a.get("value", "0"),
             "max": int(a["max"]) if "max" in a else len(dom.select_options[a["data-param"]]) - 1}
            for t, a in dom.elements if "gh-control" in a.get("class", "")]
    for c in ctrl:  # the last value, or the first where it starts at the last
        c["target"] = 0 if int(c["value"]) == c["max"] else c["max"]
    spec = {"id": static.id, "script": dom.scripts[0], "src": img["src"], "controls": ctrl}
    out = subprocess.run(["node", "-e", _NODE_HARNESS], input=json.dumps(spec), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    seen = result["seen"]
    assert seen[0] == img["src"]  # the script starts on the frame the HTML shows
    assert all(a != b for a, b in zip(seen, seen[1:])), "a control moved but the picture did not change"
    script = dom.scripts[0]
    frames, index = _var(script, "frames"), _var(script, "index")
    moved = ",".join(str(c["target"]) for c in ctrl)
    assert seen[-1] == "data:image/png;base64," + frames[index[moved]]  # the frame of the controls' new values
    assert result["events"] == [["change", "input"]] * len(ctrl)


def test_labels_and_option_labels_are_what_the_controls_show_and_the_values_stay_the_keys():
    fake, view = Counting(), RecordingView()
    static = gst.static_explorer(fake, view, {"depth": [3, 5], "activation": ["tanh", "relu"]},
                                 labels={"depth": "layers"}, option_labels={"activation": {"relu": "ReLU"}})
    assert [c["activation"] for c in fake.calls] == ["tanh", "relu", "tanh", "relu"]  # compute gets the values
    assert ">layers <" in static.html and ">depth <" not in static.html
    assert re.search(r'<option value="1"[^>]*>ReLU</option>', static.html)
    assert re.search(r'<option value="0"[^>]*>tanh</option>', static.html)  # no label: the value itself
    with pytest.raises(ValueError, match=r"option_labels must only name grid keys"):
        gst.static_explorer(fake, view, {"depth": [3]}, option_labels={"width": {1: "one"}})
    with pytest.raises(ValueError, match=r"labels must only name grid keys"):
        gst.static_explorer(fake, view, {"depth": [3]}, labels={"width": "w"})
