"""Browser checks of the built site, page by page, in Debian's chromium driven by playwright (marker `site`).

`make test` builds the site and runs this module with GH_SITE_DIR=_build/html; then a missing site FAILS.
Without GH_SITE_DIR the module is skipped, so a plain `pytest tests` needs neither a build nor a browser.
It runs once per edition: the Chinese one with GH_SITE_DIR=_build/html/zh GH_LANGUAGE=zh_CN
GH_SCREENSHOTS=_build/screenshots/zh. Every page declares its language and links to the same page of the other
edition; the pages that locales/<lang>/translated.txt declares translated show no English prose.

Every page of _toc.yml is served from 127.0.0.1 and visited once; the checks then read that visit:
no console errors (beyond the allowlist below), no request to any other host (all are blocked and
recorded; only a reader's click may leave the site, and the test never clicks), no failed local request,
every <img> decoded, math typeset by the vendored MathJax, each kernel-free explorer (.gh-explorer) swaps
its picture when any control moves, chapters link Binder/Colab to their own .ipynb on the repository's
branch from _config.yml and offer the .ipynb for download, and page weights stay within budget.
Full-page screenshots (light, and dark for chapters) go to _build/screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import json
from html import unescape as _unescape
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest
import yaml
from test_book import toc_files  # tests/ is on sys.path: pytest's default (prepend) import mode puts it there

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("GH_SITE_DIR"):
    pytest.skip("browser checks run from `make test` (set GH_SITE_DIR=_build/html)", allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402  (only needed when the checks run)

SITE = (ROOT / os.environ["GH_SITE_DIR"]).resolve()
SCREENSHOTS = Path(os.environ["GH_SCREENSHOTS"]).resolve() if os.environ.get("GH_SCREENSHOTS") else SITE.parent / "screenshots"
# the edition under test; the English one is the site root, a translation sits in its folder below it
LANGUAGE = os.environ.get("GH_LANGUAGE", "en")
EDITION_FOLDERS = {"en": "", "zh_CN": "zh"}  # as gh_editions in tools/gh_i18n.py
EN_SITE = SITE if LANGUAGE == "en" else SITE.parent
OTHER_SITE = EN_SITE / EDITION_FOLDERS["zh_CN"] if LANGUAGE == "en" else EN_SITE
TRANSLATED_LIST = ROOT / "locales" / LANGUAGE / "translated.txt"
TRANSLATED = ([line.strip() for line in TRANSLATED_LIST.read_text(encoding="utf8").splitlines()
               if line.strip() and not line.startswith("#")] if LANGUAGE != "en" else [])
CHROMIUM = os.environ.get("GH_CHROMIUM", "/usr/bin/chromium")  # Debian's; never a downloaded browser
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
LOCAL_HOSTS = {"127.0.0.1"}

# Budgets. An HTML page may carry at most two kernel-free explorers (1.5 MB each by the widgets contract)
# plus its text; everything one page load fetches (HTML, CSS, JS, MathJax and its fonts, images) is capped
# so that a chapter stays comfortable on a slow connection.
HTML_BUDGET_BYTES = 4 * 2**20
LOAD_BUDGET_BYTES = 12 * 2**20
EXPLORER_BUDGET_BYTES = int(1.5 * 2**20)

# Console errors that are known to be harmless, each with why. Everything else fails the page.
ALLOWED_CONSOLE_ERRORS: list[tuple[re.Pattern, str]] = []

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))


PAGES = toc_files(TOC)
CHAPTERS = [c["file"] for part in TOC.get("parts", []) if part.get("caption") == "Chapters"
            for c in part["chapters"]]


# --- serving and browsing ----------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".woff": "font/woff", ".woff2": "font/woff2", ".ipynb": "application/json"}

    def log_message(self, format, *args):  # noqa: A002  (the base class's name)
        pass


@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        pytest.fail(f"no built site at {SITE}: build it first (make book, or the build step of make test)")
    return SITE


@pytest.fixture(scope="session")
def base_url(site: Path):
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: any free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test does this as root)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class PageReport:
    docname: str
    final_url: str = ""
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    local_files: set[Path] = field(default_factory=set)
    images: list[dict] = field(default_factory=list)
    math: dict = field(default_factory=dict)
    explorers: list[dict] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    thebe_buttons: int = 0
    dead_widgets: int = 0
    download_checks: list[dict] = field(default_factory=list)
    prose: list[str] = field(default_factory=list)


def _is_local(url: str) -> bool:
    parsed = urlparse(url)
    return parsed.scheme in ("data", "blob", "about") or parsed.hostname in LOCAL_HOSTS


def _site_file(url: str) -> Path | None:
    path = SITE / unquote(urlparse(url).path).lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    return path if path.is_file() else None


_JS_SETTLE = """async () => {
  // images lazily loaded below the fold would be skipped otherwise
  const images = [...document.images];
  images.forEach((img) => { img.loading = "eager"; });
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise;
}"""

_JS_IMAGES = """() => [...document.images].map((img) => ({
  src: img.currentSrc.startsWith("data:") ? img.currentSrc.slice(0, 40) + "..." : img.currentSrc,
  complete: img.complete, width: img.naturalWidth }))"""

_JS_MATH = r"""() => {
  const math = [...document.querySelectorAll(".math")];
  const skip = ["SCRIPT", "STYLE", "PRE", "CODE", "TEXTAREA", "NOSCRIPT", "MJX-CONTAINER", "KBD", "SAMP"];
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let el = node.parentElement, code = false;
    for (; el; el = el.parentElement) {
      if (skip.includes(el.tagName) || el.classList.contains("highlight")) { code = true; break; }
    }
    if (!code && /\\\(|\\\[|\$\$/.test(node.textContent)) raw.push(node.textContent.trim().slice(0, 120));
  }
  return {
    elements: math.length,
    typeset: math.filter((m) => m.querySelector("mjx-container")).length,
    errors: document.querySelectorAll("mjx-merror").length,
    raw: raw,
    version: window.MathJax ? window.MathJax.version || null : null,
  };
}"""

# The visible prose of the article: paragraphs, list items, headings, admonition titles, table cells, each
# without its code, math, glue numbers and permalink marks; code cells, their outputs and the explorers skipped.
_JS_PROSE = r"""() => {
  // skipped inside a passage: citations (authors' names), as well as code, math and glue numbers
  const skip = "pre, code, kbd, samp, .math, mjx-container, .pasted-text, .headerlink, script, style, .bibtex-citation";
  // skipped passages: code cells and outputs, explorers, an <object>'s fallback text (shown only when its SVG
  // cannot load), the bibliography's entries, and glossary terms (each entry lists its English and Chinese names)
  const inside = "div.cell_output, div.highlight, .gh-explorer, div.cell_input, object, div.citation, dl.glossary > dt";
  const article = document.querySelector("article.bd-article") || document.body;
  return [...article.querySelectorAll("p, li, dt, dd, h1, h2, h3, h4, th, td, figcaption")]
    .filter((el) => !el.closest(inside))
    .map((el) => { const copy = el.cloneNode(true); copy.querySelectorAll(skip).forEach((n) => n.remove());
                   return copy.textContent.replace(/\s+/g, " ").trim(); })
    .filter((text) => text.length > 0);
}"""

_JS_MOVE_CONTROL = """(el) => {
  if (el.tagName === "SELECT") {
    if (el.options.length < 2) return false;
    el.selectedIndex = (el.selectedIndex + 1) % el.options.length;
  } else {
    const min = Number(el.min), max = Number(el.max), value = Number(el.value);
    if (!(max > min)) return false;
    el.value = String(value < max ? max : min);
  }
  el.dispatchEvent(new Event("input", { bubbles: true }));
  el.dispatchEvent(new Event("change", { bubbles: true }));
  return true;
}"""

_JS_FRAME_OK = """async (img) => { await img.decode().catch(() => null); return img.naturalWidth > 0; }"""


def _set_theme(page, theme: str) -> None:
    # what the theme's light/dark switch does to the document (pydata-sphinx-theme)
    page.evaluate("(theme) => { document.documentElement.dataset.theme = theme;"
                  " document.documentElement.dataset.mode = theme; }", theme)
    page.wait_for_timeout(150)


def _screenshot(page, docname: str, theme: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    _set_theme(page, theme)
    page.screenshot(path=str(SCREENSHOTS / f"{Path(docname).name}-{theme}.png"), full_page=True)


def _explore(page) -> list[dict]:
    found = []
    explorers = page.locator(".gh-explorer")
    for i in range(explorers.count()):
        explorer = explorers.nth(i)
        frame = explorer.locator("img.gh-explorer-frame")
        info = {
            "id": explorer.get_attribute("data-gh-explorer"),
            "bytes": explorer.evaluate("(e) => e.outerHTML.length"),
            "frames": frame.count(),
            "controls": [],
        }
        if frame.count() == 1:
            controls = explorer.locator(".gh-control")
            for j in range(controls.count()):
                control = controls.nth(j)
                before = frame.get_attribute("src")
                moved = control.evaluate(_JS_MOVE_CONTROL)
                after = frame.get_attribute("src")
                info["controls"].append({
                    "param": control.get_attribute("data-param"),
                    "moved": moved,
                    "changed": bool(moved) and after != before,
                    "frame_ok": frame.evaluate(_JS_FRAME_OK),
                })
        found.append(info)
    return found


def _visit(browser, base_url: str, docname: str) -> PageReport:
    report = PageReport(docname)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")

    def route(route):
        url = route.request.url
        if _is_local(url):
            route.continue_()
        else:
            report.external_requests.append(url)
            route.abort("blockedbyclient")

    def on_response(response):
        if response.status >= 400:
            report.failed_requests.append(f"{response.url} (HTTP {response.status})")
        elif (path := _site_file(response.url)) is not None:
            report.local_files.add(path)

    def on_failed(request):
        if _is_local(request.url):
            report.failed_requests.append(f"{request.url} ({request.failure})")

    def on_console(message):
        if message.type == "error":
            where = message.location.get("url", "") if isinstance(message.location, dict) else ""
            report.console_errors.append(f"{message.text} [{where}]")

    context.route("**/*", route)
    page = context.new_page()
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("console", on_console)
    page.on("pageerror", lambda error: report.page_errors.append(str(error)))
    try:
        page.goto(f"{base_url}/{docname}.html", wait_until="load")
        page.evaluate(_JS_SETTLE)
        page.wait_for_load_state("networkidle")
        report.final_url = page.url
        report.images = page.evaluate(_JS_IMAGES)
        report.math = page.evaluate(_JS_MATH)
        report.prose = page.evaluate(_JS_PROSE)
        report.links = page.eval_on_selector_all("a[href]", "(els) => els.map((a) => a.href)")
        report.thebe_buttons = page.locator("[onclick*='initThebe']").count()
        report.dead_widgets = page.locator(
            "script[type='application/vnd.jupyter.widget-view+json'], .jupyter-widgets").count()
        for href in report.links:
            if "/_sources/" in href and href.endswith(".ipynb"):
                response = context.request.get(href)
                try:
                    notebook = json.loads(response.body())
                    cells, nbformat = len(notebook.get("cells", [])), notebook.get("nbformat")
                except ValueError:
                    cells, nbformat = 0, None
                report.download_checks.append(
                    {"url": href, "status": response.status, "nbformat": nbformat, "cells": cells})
        _screenshot(page, docname, "light")
        if docname in CHAPTERS:
            _screenshot(page, docname, "dark")
            _set_theme(page, "light")
        report.explorers = _explore(page)
        page.wait_for_load_state("networkidle")
    finally:
        context.close()
    return report


@pytest.fixture(scope="session")
def visit(browser, base_url):
    """visit(docname) -> PageReport, each page visited once per session."""
    cache: dict[str, PageReport] = {}

    def get(docname: str) -> PageReport:
        if docname not in cache:
            cache[docname] = _visit(browser, base_url, docname)
        return cache[docname]

    return get


# --- every page --------------------------------------------------------------------------------------


def test_site_root_redirects_to_the_intro(browser, base_url):
    page = browser.new_page()
    try:
        page.goto(f"{base_url}/index.html")
        page.wait_for_url(f"**/{PAGES[0]}.html", timeout=10_000)
    finally:
        page.close()


@pytest.mark.parametrize("docname", PAGES)
def test_page_logs_no_console_errors(visit, docname):
    report = visit(docname)
    unexpected = [m for m in report.console_errors
                  if not any(pattern.search(m) for pattern, _why in ALLOWED_CONSOLE_ERRORS)]
    uncaught = report.page_errors
    assert not uncaught, f"uncaught JavaScript errors: {uncaught}"
    assert not unexpected, "console errors:\n" + "\n".join(unexpected)


@pytest.mark.parametrize("docname", PAGES)
def test_page_declares_a_favicon_that_the_site_serves(site, base_url, docname):
    # Browsers ask for /favicon.ico when a page names none; headless chromium does not, so check the link.
    html = (site / f"{docname}.html").read_text(encoding="utf8")
    links = re.findall(r'<link[^>]+rel="(?:shortcut )?icon"[^>]*>', html)
    assert links, f"{docname}: no <link rel=icon>"
    href = re.search(r'href="([^"]+)"', links[0]).group(1)
    icon = (site / docname).parent / unquote(href)
    assert icon.is_file() and icon.read_bytes().lstrip().startswith(b"<svg"), f"{docname}: favicon {href} missing"


@pytest.mark.parametrize("docname", PAGES)
def test_page_requests_nothing_outside_localhost(visit, docname):
    external = visit(docname).external_requests
    assert not external, "requests to other hosts (only a reader's click may leave the site):\n" + "\n".join(external)


@pytest.mark.parametrize("docname", PAGES)
def test_page_resources_all_load(visit, docname):
    failed = visit(docname).failed_requests
    assert not failed, "failed requests:\n" + "\n".join(failed)


@pytest.mark.parametrize("docname", PAGES)
def test_every_image_loads(visit, docname):
    broken = [img for img in visit(docname).images if not (img["complete"] and img["width"] > 0)]
    assert not broken, f"images that did not load: {broken}"


@pytest.mark.parametrize("docname", PAGES)
def test_math_is_typeset_by_the_vendored_mathjax(visit, docname):
    math = visit(docname).math
    assert not math["raw"], f"untypeset TeX in the visible text: {math['raw'][:5]}"
    assert math["errors"] == 0, f"{math['errors']} TeX errors (mjx-merror) on the page"
    if math["elements"]:
        assert math["version"] == "3.2.2", f"MathJax {math['version']} (expected the vendored 3.2.2)"
        assert math["typeset"] == math["elements"], f"{math['typeset']} of {math['elements']} formulas typeset"


@pytest.mark.parametrize("docname", PAGES)
def test_page_weight_is_within_budget(visit, docname):
    report = visit(docname)
    html = SITE / f"{docname}.html"
    assert html.stat().st_size <= HTML_BUDGET_BYTES, f"{html.name}: {html.stat().st_size} B > {HTML_BUDGET_BYTES}"
    loaded = sum(path.stat().st_size for path in report.local_files)
    assert loaded <= LOAD_BUDGET_BYTES, f"one load of {docname} fetches {loaded} B > {LOAD_BUDGET_BYTES}"


@pytest.mark.parametrize("docname", PAGES)
def test_kernel_free_explorers_change_their_picture_when_any_control_moves(visit, docname):
    explorers = visit(docname).explorers
    if not explorers:
        pytest.skip("no kernel-free explorer on this page")
    ids = [e["id"] for e in explorers]
    assert all(ids) and len(set(ids)) == len(ids), f"data-gh-explorer ids must be set and unique: {ids}"
    for explorer in explorers:
        name = explorer["id"]
        assert explorer["frames"] == 1, f"{name}: {explorer['frames']} img.gh-explorer-frame (expected 1)"
        assert explorer["bytes"] <= EXPLORER_BUDGET_BYTES, f"{name}: {explorer['bytes']} B > 1.5 MB"
        assert explorer["controls"], f"{name}: no .gh-control"
        for control in explorer["controls"]:
            assert control["moved"], f"{name}: control {control['param']!r} has a single value"
            assert control["changed"], f"{name}: moving {control['param']!r} left the picture unchanged"
            assert control["frame_ok"], f"{name}: after moving {control['param']!r} the picture is broken"


# --- chapters ----------------------------------------------------------------------------------------


def _repository() -> tuple[str, str, str, str]:
    repo = CONFIG["repository"]
    org, name = urlparse(repo["url"]).path.strip("/").removesuffix(".git").split("/")[:2]
    path_to_book = (repo.get("path_to_book") or "").strip("/")
    return org, name, repo["branch"], path_to_book


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_launch_links_open_its_notebook_on_the_configured_branch(visit, docname):
    org, name, branch, path_to_book = _repository()
    notebook = "/".join(p for p in (path_to_book, f"{docname}.ipynb") if p)
    assert (ROOT / notebook).is_file(), f"{notebook} is not in the repository"
    links = visit(docname).links
    binder_base = CONFIG["launch_buttons"]["binderhub_url"].rstrip("/")
    binder = [u for u in links if u.startswith(binder_base + "/v2/")]
    assert binder, "no Binder launch link"
    for url in binder:
        parsed = urlparse(url)
        assert parsed.path == f"/v2/gh/{org}/{name}/{branch}", url
        urlpath = parse_qs(parsed.query)["urlpath"][0]
        assert urlpath.endswith(f"tree/{notebook}"), url
    colab_base = CONFIG["launch_buttons"]["colab_url"].rstrip("/")
    colab = [u for u in links if u.startswith(colab_base + "/")]
    assert colab == [f"{colab_base}/github/{org}/{name}/blob/{branch}/{notebook}"], colab
    assert CONFIG["repository"]["url"] in links, "no link to the repository"
    thebe_buttons = visit(docname).thebe_buttons
    assert thebe_buttons >= 1, "no Live Code (thebe) button"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_offers_its_notebook_for_download(visit, docname):
    downloads = visit(docname).download_checks
    assert downloads, "no .ipynb download link"
    for download in downloads:
        assert download["url"].endswith(f"_sources/{docname}.ipynb"), download["url"]
        assert download["status"] == 200, download
        assert download["nbformat"] == 4 and download["cells"] > 0, download


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_has_no_dead_widget_output(visit, docname):
    # a static page cannot run ipywidgets: tag widget cells `remove-output` (the kernel-free twin shows instead)
    dead = visit(docname).dead_widgets
    assert dead == 0, f"{dead} ipywidgets output(s) on the page: tag those cells remove-output"


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_screenshots_exist_in_light_and_dark(visit, docname):
    visit(docname)
    for theme in ("light", "dark"):
        shot = SCREENSHOTS / f"{Path(docname).name}-{theme}.png"
        assert shot.is_file() and shot.stat().st_size > 10_000, shot


# --- editions ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("docname", PAGES)
def test_page_declares_its_language_and_links_to_the_same_page_in_the_other_edition(site, docname):
    html = (site / f"{docname}.html").read_text(encoding="utf8")
    lang = re.search(r'<html[^>]*\slang="([^"]+)"', html)
    assert lang and lang.group(1) == LANGUAGE.replace("_", "-"), f"<html lang> is {lang and lang.group(1)!r}"
    switches = re.findall(r'<a[^>]*class="[^"]*gh-lang-switch[^"]*"[^>]*>', html)
    assert len(switches) == 1, f"{len(switches)} language switches (expected 1)"
    href = unquote(re.search(r'href="([^"]+)"', switches[0]).group(1))
    target = ((site / docname).parent / href).resolve()
    assert target == (OTHER_SITE / f"{docname}.html").resolve(), f"the switch leads to {href}"
    assert target.is_file(), f"the other edition has no {docname}.html (build both: make html)"
    hreflang = re.search(r'hreflang="([^"]+)"', switches[0]).group(1)
    assert f'<link rel="alternate" hreflang="{hreflang}"' in html, "no <link rel=alternate> in the head"


# an English sentence: three Latin words in a row and not one Chinese character in the whole text
_ENGLISH = re.compile(r"[A-Za-z][a-z]+[ ,;:]+[A-Za-z][a-z]+[ ,;:]+[A-Za-z][a-z]+")
_CJK = re.compile(r"[\u3400-\u9fff]")


@pytest.mark.parametrize("docname", TRANSLATED or ["(the English edition)"])
def test_translated_page_shows_no_english_prose(visit, docname):
    if not TRANSLATED:
        pytest.skip("the source edition")
    prose = visit(docname).prose
    assert prose, "no prose found on the page"
    english = [text for text in prose if _ENGLISH.search(text) and not _CJK.search(text)]
    assert not english, f"{len(english)} English passage(s) on a translated page:\n" + "\n".join(
        t[:100] for t in english[:10])
    # Markdown that did not render: CommonMark emphasis next to Chinese punctuation needs care (*“x”* fails)
    stray = [text for text in prose if "*" in text]
    assert not stray, "unrendered emphasis (*) in:\n" + "\n".join(t[:100] for t in stray[:10])


_EXPLORER = re.compile(r'<div class="gh-explorer".*?<img class="gh-explorer-frame"', re.S)
_EXPLORER_WORDS = re.compile(r'<div style="font-weight:600[^"]*">([^<]*)</div>|<label[^>]*>([^<]*)<')


@pytest.mark.parametrize("docname", TRANSLATED or ["(the English edition)"])
def test_translated_page_labels_its_explorers_in_its_language(site, docname):
    """The kernel-free explorers' titles and control labels come from the Chinese execution (gradlib.i18n)."""
    if not TRANSLATED:
        pytest.skip("the source edition")
    page = (site / f"{docname}.html").read_text(encoding="utf8")
    explorers = _EXPLORER.findall(page)
    if not explorers:
        pytest.skip("no kernel-free explorer on this page")
    for block in explorers:
        words = [_unescape(t or l).strip() for t, l in _EXPLORER_WORDS.findall(block)]
        assert len(words) >= 2 and _CJK.search(words[0]), f"an explorer without a translated title: {words}"
        # "d_k" or "ρ" alone reads in any language; a word of three letters or more does not
        english = [w for w in words if re.search(r"[A-Za-z]{3,}", w) and not _CJK.search(w)]
        assert not english, f"explorer words left in English: {english}"


# --- the closing chapter's map -------------------------------------------------------------------------


def _map_links_in_source() -> int:
    """How many nodes of the {graphviz} map in book/08_closing.ipynb carry a URL (the one source of the map)."""
    nb = json.loads((ROOT / "book" / "08_closing.ipynb").read_text(encoding="utf8"))
    source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    block = source[source.index("{graphviz}"):]
    return len(re.findall(r"\bURL\s*=", block[:block.index("```", 3)]))


def test_closing_chapter_map_is_a_local_svg_whose_links_all_resolve(browser, base_url):
    page = browser.new_page()
    try:
        page.goto(f"{base_url}/book/08_closing.html")
        obj = page.wait_for_selector("div.graphviz object[type='image/svg+xml']")
        page.wait_for_function("o => o.contentDocument && o.contentDocument.querySelector('svg')", arg=obj)
        # Sphinx rewrites the SVG with ns0:/ns1: prefixes: read each link's resolved href, not the attribute
        links = obj.evaluate("""o => [...o.contentDocument.querySelectorAll('a')].map(a => ({
            href: new URL(a.href.baseVal, o.contentDocument.URL).href, target: a.getAttribute('target')}))""")
        box = obj.bounding_box()
    finally:
        page.close()
    assert box and box["width"] > 300
    assert len(links) == _map_links_in_source() > 10
    for link in links:
        assert link["target"] == "_top", link  # a click replaces the page, not the embedded SVG
        path = _site_file(link["href"])
        assert urlparse(link["href"]).hostname == "127.0.0.1" and path is not None, link
        fragment = urlparse(link["href"]).fragment
        assert not fragment or f'id="{fragment}"' in path.read_text(encoding="utf8"), link
