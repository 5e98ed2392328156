"""The PDFs of both editions (make pdf): they open, have the chapters of _toc.yml in order in their table of
contents, typeset math and bibliography, carry every figure and each explorer's default picture, and a
chapter's first page renders to a PNG (_build/pdf/<edition>-chapter1.png) for a person to look at.

Independent truths: poppler's pdfinfo/pdftotext/pdfimages/pdftoppm read the files (not the LaTeX that wrote
them); the expected titles come from the notebooks' own first headings and, for the Chinese edition, from the
translation catalogs; the expected number of pictures from the notebooks' saved outputs.
`make test` builds the PDFs and runs this module with GH_PDF_DIR=_build/pdf; without it the module is skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
if not os.environ.get("GH_PDF_DIR"):
    pytest.skip("PDF checks run from `make test` (set GH_PDF_DIR=_build/pdf)", allow_module_level=True)
PDF_DIR = (ROOT / os.environ["GH_PDF_DIR"]).resolve()
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))
CHAPTERS = [c["file"] for part in TOC["parts"] if part.get("caption") == "Chapters" for c in part["chapters"]]
EDITIONS = {"en": None, "zh": "zh_CN"}  # file suffix -> catalog language
PREFIX = re.compile(r"^(Chapter \d+ — |第 \d+ 章\s*)")  # LaTeX numbers the chapters itself
BIBLIOGRAPHY = {"en": "Bibliography", "zh": "参考文献"}


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _notebook(docname: str) -> dict:
    return json.loads((ROOT / f"{docname}.ipynb").read_text(encoding="utf8"))


def _english_title(docname: str) -> str:
    for cell in _notebook(docname)["cells"]:
        if cell["cell_type"] == "markdown":
            match = re.search(r"^# (.+)$", "".join(cell["source"]), flags=re.M)
            if match:
                return match.group(1).strip()
    raise AssertionError(f"{docname}: no '# ' title")


def expected_title(docname: str, lang: str | None) -> str:
    title = _english_title(docname)
    if lang:
        po = ROOT / "locales" / lang / "LC_MESSAGES" / f"{docname}.po"
        if po.is_file():
            with po.open("rb") as f:
                message = read_po(f).get(title)
            if message is not None and message.string and not message.fuzzy:
                title = message.string
    return PREFIX.sub("", title)


def pdf(edition: str) -> Path:
    path = PDF_DIR / f"gradient-highways-{edition}.pdf"
    assert path.is_file(), f"{path} missing: run `make pdf`"
    return path


@pytest.mark.parametrize("edition", EDITIONS)
def test_pdf_opens_with_a_title_page_and_pages(edition):
    info = _run("pdfinfo", str(pdf(edition)))
    pages = int(re.search(r"^Pages:\s+(\d+)", info, flags=re.M).group(1))
    assert pages >= 20 * len(CHAPTERS) // 2, f"only {pages} pages"
    first_page = _run("pdftotext", "-f", "1", "-l", "1", str(pdf(edition)), "-")
    title = {"en": "Gradient Highways", "zh": "梯度高速公路"}[edition]
    assert title in first_page, f"title page: {first_page[:200]!r}"


@pytest.mark.parametrize("edition", EDITIONS)
def test_table_of_contents_lists_every_chapter_in_order_then_the_bibliography(edition):
    text = _squash(_run("pdftotext", "-f", "1", "-l", "6", str(pdf(edition)), "-"))
    where = []
    for docname in CHAPTERS:
        title = _squash(expected_title(docname, EDITIONS[edition]))
        assert title in text, f"{docname}: {title!r} not in the table of contents"
        where.append(text.index(title))
    assert where == sorted(where), "chapters out of order"
    assert BIBLIOGRAPHY[edition] in text, f"no {BIBLIOGRAPHY[edition]!r} in the table of contents"


@pytest.mark.parametrize("edition", EDITIONS)
def test_math_is_typeset_and_citations_resolve(edition):
    text = _run("pdftotext", str(pdf(edition)), "-")
    # MyST that reached the page as text (the glossary and references show {term} and {cite} as code, on purpose)
    for raw in ("$$", "{glue", "{cite:t}`glorot"):
        assert raw not in text, f"untypeset source {raw!r} in the PDF text"
    assert text.count("∂") >= 20 and "∏" in text, "typeset math (∂, ∏ from the chain rule) not found"
    assert "Glorot and Bengio" in text, "a {cite:t} citation did not resolve"
    assert "Understanding the difficulty" in text, "bibliography entry missing"


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_figure_and_each_explorers_default_picture_is_in_the_pdf(edition):
    expected = 0
    for docname in CHAPTERS:
        for cell in _notebook(docname)["cells"]:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                html = "".join(data.get("text/html", ""))
                expected += "image/png" in data or 'class="gh-explorer"' in html
    listing = _run("pdfimages", "-list", str(pdf(edition))).splitlines()[2:]
    images = [line for line in listing if line.split()[2] == "image"]  # not smasks
    assert len(images) >= expected, f"{len(images)} pictures in the PDF, the notebooks have {expected}"


@pytest.mark.parametrize("edition", EDITIONS)
def test_first_chapter_page_renders(edition):
    path = pdf(edition)
    title = _squash(expected_title(CHAPTERS[0], EDITIONS[edition]))
    pages = int(re.search(r"^Pages:\s+(\d+)", _run("pdfinfo", str(path)), flags=re.M).group(1))
    # the chapter's first page: the first page with its title that is not the table of contents (dot leaders)
    texts = {n: _squash(_run("pdftotext", "-f", str(n), "-l", str(n), str(path), "-")) for n in range(1, 12)}
    page = next(n for n, text in texts.items()  # the English chapter style sets titles in capitals
                if title.casefold() in text[:300].casefold() and "....." not in text)
    out = PDF_DIR / f"{edition}-chapter1"
    _run("pdftoppm", "-f", str(page), "-l", str(page), "-r", "80", "-png", "-singlefile", str(path), str(out))
    png = out.with_suffix(".png")
    assert png.is_file() and png.stat().st_size > 20_000, f"{png}: rendered page looks empty"


def test_the_chinese_pdf_numbers_its_chapters_and_parts_in_chinese():
    text = _run("pdftotext", str(pdf("zh")), "-")
    assert re.search(r"第\s*1\s*章", text), "no chapter heading 第 1 章"
    assert re.search(r"第\s*1\s*部分", text), "no part heading 第 1 部分"
    # at the start of a line: a heading or running head ("Chapter 1. …", fncychap's CHAPTER, "Part I"), not a
    # code comment that names a chapter (code stays as written)
    english = re.findall(r"^(?:CHAPTER|Chapter|Part)\s+(?:\d+|[IVX]+)\b", text, flags=re.M)
    assert not english, f"English headings left in the Chinese PDF: {sorted(set(english))}"
