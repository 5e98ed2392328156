"""A small local Sphinx extension for the Gradient Highways site (loaded from _config.yml, local_extensions).

1. De-duplicate inline scripts. Sphinx 7.4 registers an inline <script> that an extension adds after
   Builder.init() twice: once as filename None (builder.add_js_file) and once as filename '' (re-added from
   the registry in prepare_writing), and the two do not compare equal. sphinx-thebe adds its configuration
   (`const THEBE_JS_URL = ...`) exactly then, so every page declared the constant twice and the browser
   reported "Identifier 'THEBE_JS_URL' has already been declared", an uncaught error on every page.
2. Drop dead ipywidgets state. When a chapter runs a widget (its cell tagged remove-output), the executed
   notebook records the widget state and myst-nb embeds it in the page as a JSON <script>; with
   `nb_ipywidgets_js: {}` (no widget manager loaded from a CDN) nothing ever reads it, so it is only weight.
3. Refuse remote assets. A script or stylesheet whose URL names another host makes the page contact that
   host as soon as it is viewed; warn (an error under `-W`) so the build fails before the browser checks do.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _key(asset: Any) -> tuple:
    filename = getattr(asset, "filename", asset) or ""
    attributes = getattr(asset, "attributes", {}) or {}
    return (filename, getattr(asset, "priority", None), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _is_remote(asset: Any) -> bool:
    filename = str(getattr(asset, "filename", asset) or "")
    return "://" in filename or filename.startswith("//")


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def check_page_assets(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if scripts:
        keep_widget_state = bool(app.config["nb_ipywidgets_js"]) if "nb_ipywidgets_js" in app.config else True
        seen: set[tuple] = set()
        unique = []
        for asset in scripts:
            key = _key(asset)
            attributes = getattr(asset, "attributes", {}) or {}
            if key in seen or (attributes.get("type") == WIDGET_STATE and not keep_widget_state):
                continue
            seen.add(key)
            unique.append(asset)
        scripts[:] = unique  # in place: the builder restores its own list before the next page
    for kind in ("script_files", "css_files"):
        for asset in context.get(kind) or []:
            if _is_remote(asset):
                logger.warning(
                    "%s: remote asset %s would be requested on page view; vendor it under book/_static",
                    pagename, getattr(asset, "filename", asset), type="gradient_highways", subtype="remote",
                )


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", check_page_assets, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
