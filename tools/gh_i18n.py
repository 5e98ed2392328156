"""Sphinx extension for the two editions of Gradient Highways (English source, Chinese translation via gettext).

1. Glue in translated text. Sphinx's i18n transform parses each msgstr as a small document of its own (its
   source ends in "<translated>"); myst-nb parses that as plain Markdown, without the notebook, so a local
   {glue:text}`key:.2f` in a translation found no glue data and vanished with a warning. Here a local key in a
   translated paragraph becomes a reference to the same key of the same document (`/<doc>::key`), which
   myst-nb resolves after reading from the glue cache that the notebook's own parse wrote. So a translation
   shows the number of the very execution the English page shows, and the msgid keeps the role, not a number.
2. Language switch. Each page gets `gh_alternate` (the same page in the other edition: relative href, language
   and label) for the template book/_templates/lang-switch.html, and a <link rel="alternate" hreflang> in its
   head. The editions are `gh_editions` (language -> folder relative to the English site root).
3. The PDF (latex builder, XeLaTeX). A kernel-free explorer is an HTML output (controls, script, frames) that
   LaTeX cannot show: its bundle becomes its default frame, the picture the page shows on load. Chapter titles
   lose their "Chapter 1 — " / "第 1 章　" prefix, since LaTeX numbers the chapters itself. The LaTeX class of
   sphinx-jupyterbook-latex needs bbm.sty, which Debian ships only in texlive-fonts-extra (500 MB): a
   stand-in (tools/latex/bbm.sty) goes next to the .tex. Its preamble's ucharclasses is replaced by xeCJK with
   the Noto CJK fonts (fonts-noto-cjk), for the Chinese edition and the Chinese terms of the English one.
4. Titles per edition: `gh_titles` (language -> title) names the site and the PDF of a translated edition;
   the toctree captions ("Chapters", "Reference"), which sphinx-external-toc inserts after Sphinx's i18n
   transform has run, are translated from the root document's catalog; the LaTeX bibliography title too (BIBNAME).
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

from myst_nb.ext.glue.roles import PasteRoleAny, PasteTextRole

logger = logging.getLogger(__name__)

# language -> (folder of that edition under the English site root, label of the link that leads there)
EDITIONS: dict[str, tuple[str, str]] = {"en": ("", "English"), "zh_CN": ("zh", "中文")}


def _in_translation(document: nodes.document) -> bool:
    return str(getattr(document, "current_source", "") or "").endswith("<translated>")


def _this_doc(role: Any) -> str:
    env = role.document.settings.env
    return "/" + str(env.doc2path(env.docname, False))


class TranslatedPasteText(PasteTextRole):
    """{glue:text}`key:fmt` that also works inside a translated paragraph (see 1. above)."""

    def run(self):
        if _in_translation(self.document) and "::" not in self.text:
            key, _, fmt = self.text.partition(":")
            self.text = f"{_this_doc(self)}::{key}:{fmt or 's'}"  # rsplit(':') needs an explicit format
        return super().run()


class TranslatedPasteAny(PasteRoleAny):
    """{glue}`key` that also works inside a translated paragraph."""

    def run(self):
        if _in_translation(self.document) and "::" not in self.text:
            self.text = f"{_this_doc(self)}::{self.text}"
        return super().run()


# --- 2. language switch ------------------------------------------------------------------------------


def _language(app: Sphinx) -> str:
    return app.config.language or "en"


def alternate(app: Sphinx, pagename: str) -> dict[str, str] | None:
    """The same page in the other edition: href relative to `pagename`'s own URL, hreflang and label."""
    editions = app.config.gh_editions
    here = _language(app)
    if here not in editions:
        return None
    other = next((lang for lang in editions if lang != here), None)
    if other is None:
        return None
    up = "../" * pagename.count("/")  # from this page to its edition's root
    here_root, there_root = editions[here][0], editions[other][0]
    # from this edition's root to the English root, then down into the other edition
    to_en_root = "../" * len([p for p in here_root.split("/") if p])
    there = f"{there_root}/" if there_root else ""
    return {"href": f"{up}{to_en_root}{there}{pagename}.html", "hreflang": other.replace("_", "-"),
            "label": editions[other][1]}


def add_alternate(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if app.builder.format != "html" or doctree is None:  # search, genindex, redirects: no twin page
        return
    link = alternate(app, pagename)
    if link is None:
        return
    context["gh_alternate"] = link
    context["metatags"] = context.get("metatags", "") + (
        f'\n<link rel="alternate" hreflang="{link["hreflang"]}" href="{html.escape(link["href"])}">')


# --- 3. explorers in LaTeX ---------------------------------------------------------------------------

_FRAME = re.compile(r'<img class="gh-explorer-frame" src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


class ExplorerDefaultFrame(SphinxPostTransform):
    """latex: replace each kernel-free explorer's mime bundle by its default frame, as a PNG image."""

    default_priority = 3  # before myst-nb's SelectMimeType (4), which would pick text/plain
    builders = ("latex",)

    def run(self, **kwargs: Any) -> None:
        for bundle in list(self.document.findall(nodes.container)):
            if bundle.get("nb_element") != "mime_bundle":
                continue
            raw = [c for c in bundle.children if c.get("mime_type") == "text/html"]
            match = _FRAME.search(raw[0].astext()) if raw else None
            if match is None:
                continue
            # a data-URI image: Sphinx's DataURIExtractor (priority 150) writes it out for LaTeX
            uri = "data:image/png;base64," + match.group(1)
            image = nodes.image(uri=uri, candidates={"?": uri}, alt="explorer, default setting")
            bundle.replace_self(image)


_CHAPTER_PREFIX = re.compile(r"^(Chapter \d+ — |第 \d+ 章\s*)")


class ChapterTitlesWithoutNumber(SphinxPostTransform):
    """latex: "Chapter 1 — The telephone game" -> "The telephone game" (LaTeX prints "Chapter 1" itself)."""

    default_priority = 3
    builders = ("latex",)

    def run(self, **kwargs: Any) -> None:
        for title in self.document.findall(nodes.title):
            first = title.next_node(nodes.Text)
            if first is not None and _CHAPTER_PREFIX.match(first.astext()):
                first.parent.replace(first, nodes.Text(_CHAPTER_PREFIX.sub("", first.astext(), count=1)))


LATEX_PREAMBLE = r"""
\hypersetup{pdfencoding=auto, psdextra}
% Chinese in both editions (the glossary pairs every term with its Chinese): Debian's fonts-noto-cjk
\usepackage{xeCJK}
\setCJKmainfont{Noto Serif CJK SC}
\setCJKsansfont{Noto Sans CJK SC}
\setCJKmonofont{Noto Sans Mono CJK SC}
% code and outputs: DejaVu Sans Mono (fonts-dejavu-core) has the ✘ and ᵀ that FreeMono lacks
\setmonofont[Scale=0.9]{DejaVu Sans Mono}
"""


def latex_config(app: Sphinx, config: Any) -> None:
    """After sphinx-jupyterbook-latex's config-inited: bbm stand-in, CJK fonts, the edition's title."""
    config.latex_additional_files = [*config.latex_additional_files, "tools/latex/bbm.sty"]
    elements = dict(config.latex_elements)
    # its preamble loads ucharclasses, which fights xeCJK over the CJK ranges; drop it, add xeCJK
    elements["preamble"] = re.sub(r"% Start of preamble defined in sphinx-jupyterbook-latex %.*"
                                  r"% End of preamble defined in sphinx-jupyterbook-latex %", "",
                                  elements.get("preamble", ""), flags=re.S) + LATEX_PREAMBLE
    if (config.language or "en") == "en":  # xeCJK would set quotes and dashes full-width, as in Chinese
        elements["preamble"] += '\\xeCJKDeclareCharClass{Default}{"2014, "2018, "2019, "201C, "201D}\n'
    if config.language in LATEX_HEADINGS:  # titlesec (which Sphinx loads) instead of fncychap's "CHAPTER 1"
        elements["fncychap"] = ""
        elements["preamble"] += LATEX_HEADINGS[config.language]
    if config.language in BIBNAME:
        elements["preamble"] += "\\AtBeginDocument{\\renewcommand{\\bibname}{%s}}\n" % BIBNAME[config.language]
    config.latex_elements = elements
    title = config.gh_titles.get(config.language or "en")
    if title:
        documents = list(config.latex_documents)  # before the project changes: the file keeps its name
        config.html_title = title
        config.project = title
        config.latex_documents = [(d[0], d[1], title, *d[3:]) for d in documents]


BIBNAME = {"zh_CN": "参考文献"}  # babel has no Chinese captions; Sphinx translates "Index" itself
# Chapter and part headings in Chinese: 第 1 章, 第 1 部分 (LaTeX's report class would print "Part I"); the
# running head "第 1 章 title" through Sphinx's own hook for Japanese (\@chappos after the number)
LATEX_HEADINGS = {"zh_CN": r"""
\makeatletter\def\@chappos{章}\makeatother
\AtBeginDocument{\renewcommand{\chaptername}{第}}
\renewcommand{\thepart}{\arabic{part}}
\titleformat{\part}[display]{\normalfont\bfseries\Huge\filcenter}{第\,\thepart\,部分}{20pt}{}
\titleformat{\chapter}[display]{\normalfont\bfseries\huge}{第\,\thechapter\,章}{16pt}{\Huge}
"""}


def translate_toctree_captions(app: Sphinx, doctree: nodes.document) -> None:
    """doctree-read: translate toctree captions with the document's own catalog, as Sphinx does for text."""
    language = app.config.language
    if not language or language == "en":
        return
    from sphinx import addnodes
    from sphinx.locale import init as init_locale
    from sphinx.util.i18n import docname_to_domain

    dirs = [str(Path(app.srcdir) / d) for d in app.config.locale_dirs]
    catalog, found = init_locale(dirs, language, docname_to_domain(app.env.docname, app.config.gettext_compact))
    if not found:
        return
    for toctree in doctree.findall(addnodes.toctree):
        if toctree.get("caption"):
            toctree["caption"] = catalog.gettext(toctree["caption"])
    # the PDF's parts: sphinx-jupyterbook-latex makes each \part from its toctree wrapper's own caption
    for wrapper in doctree.findall(nodes.compound):
        if "toctree-wrapper" in wrapper.get("classes", []) and wrapper.get("caption"):
            wrapper["caption"] = catalog.gettext(wrapper["caption"])


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("gh_editions", EDITIONS, "html")
    app.add_config_value("gh_titles", {}, "env")
    app.connect("config-inited", latex_config, priority=950)  # after sphinx-jupyterbook-latex and external-toc
    app.add_post_transform(ChapterTitlesWithoutNumber)
    app.add_role_to_domain("glue", "text", TranslatedPasteText(), override=True)
    app.add_role_to_domain("glue", "", TranslatedPasteAny(), override=True)
    app.add_role_to_domain("glue", "any", TranslatedPasteAny(), override=True)
    app.connect("html-page-context", add_alternate)
    app.connect("doctree-read", translate_toctree_captions)
    app.add_post_transform(ExplorerDefaultFrame)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
