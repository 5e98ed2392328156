"""The translations are complete and current: no empty or "fuzzy" entry in the catalog of a document that
locales/<lang>/translated.txt declares translated, and no English paragraph missing from it.

Independent truth: the catalogs are read with Babel's own PO reader (the library Sphinx and sphinx-intl use),
and "current" is judged against the .pot that Sphinx's gettext builder extracts from the English sources right
now (`make translations` extracts it and sets GH_POT_DIR). A translation must also keep the numbers of its
English paragraph: the same {glue} roles (a number is never typed into a translation) and the same inline math.
Widen the check by adding documents to locales/<lang>/translated.txt.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
LANGUAGES = sorted(p.name for p in LOCALES.iterdir() if (p / "translated.txt").is_file())
POT_DIR = Path(os.environ["GH_POT_DIR"]).resolve() if os.environ.get("GH_POT_DIR") else None

GLUE = re.compile(r"\{glue(?::\w*)?\}`[^`]+`")
MATH = re.compile(r"(?<!\\)\$[^$]+\$")


def translated_docs(lang: str) -> list[str]:
    lines = (LOCALES / lang / "translated.txt").read_text(encoding="utf8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def catalog_path(lang: str, docname: str) -> Path:
    return LOCALES / lang / "LC_MESSAGES" / f"{docname}.po"


def read(path: Path) -> Catalog:
    with path.open("rb") as f:
        return read_po(f)


def problems(catalog: Catalog, template: Catalog | None = None) -> list[str]:
    """What keeps a catalog from being a complete, current translation (empty list: nothing)."""
    found = []
    for message in catalog:
        if not message.id:
            continue  # the header
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        short = msgid[:70].replace("\n", " ")
        if message.fuzzy:
            found.append(f"fuzzy (the English changed; check and remove the flag): {short!r}")
        elif not message.string:
            found.append(f"untranslated: {short!r}")
        else:
            if Counter(GLUE.findall(msgid)) != Counter(GLUE.findall(message.string)):
                found.append(f"glue roles differ from the English (numbers must come from glue): {short!r}")
            if Counter(MATH.findall(msgid)) != Counter(MATH.findall(message.string)):
                found.append(f"inline math differs from the English: {short!r}")
    if template is not None:
        for message in template:
            if message.id and message.id not in catalog:
                found.append(f"not yet in the catalog (run `make po`): {str(message.id)[:70]!r}")
    return found


DOCS = [(lang, doc) for lang in LANGUAGES for doc in translated_docs(lang)]


def test_some_document_is_declared_translated():
    assert DOCS, "no locales/<lang>/translated.txt lists a document"


@pytest.mark.parametrize(("lang", "docname"), DOCS, ids=[f"{lang}:{doc}" for lang, doc in DOCS])
def test_catalog_of_a_translated_document_is_complete_and_current(lang, docname):
    path = catalog_path(lang, docname)
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run `make po`"
    template = None
    if POT_DIR is not None:
        pot = POT_DIR / f"{docname}.pot"
        assert pot.is_file(), f"{docname} is declared translated but has no messages in {POT_DIR}"
        template = read(pot)
    found = problems(read(path), template)
    assert not found, f"{path.relative_to(ROOT)}: {len(found)} problem(s)\n" + "\n".join(found)


# --- the check itself can fail -----------------------------------------------------------------------


def _catalog(*messages: Message) -> Catalog:
    catalog = Catalog(locale="zh_CN")
    for message in messages:
        catalog[message.id] = message
    return catalog


def test_problems_names_untranslated_fuzzy_stale_and_number_changing_entries(tmp_path):
    catalog = _catalog(
        Message("Done paragraph.", "完成的段落。"),
        Message("Empty paragraph.", ""),
        Message("Changed paragraph.", "旧译文。", flags=["fuzzy"]),
        Message("It keeps {glue:text}`ch1_x:.2f` of it.", "它保留了 0.42。"),
        Message("With $\\rho = 1$ it is flat.", "当 $\\rho = 2$ 时曲线是平的。"),
    )
    # through a file, as the real catalogs are read
    path = tmp_path / "doc.po"
    with path.open("wb") as f:
        write_po(f, catalog)
    template = _catalog(Message("Done paragraph."), Message("A new English paragraph."))
    found = problems(read(path), template)
    assert any(p.startswith("untranslated: 'Empty") for p in found), found
    assert any(p.startswith("fuzzy") and "Changed" in p for p in found), found
    assert any(p.startswith("glue roles differ") for p in found), found
    assert any(p.startswith("inline math differs") for p in found), found
    assert any(p.startswith("not yet in the catalog") and "new English" in p for p in found), found
    assert not any("Done paragraph" in p for p in found), found
    assert len(found) == 5, found
