"""The words gradlib draws, in the reader's language: figure titles, axes, legends, explorer controls.

The English string in the code is the message id (gettext's convention): ``_("training step")`` returns it
unchanged in English and its translation from ``gradlib/locales/<lang>/LC_MESSAGES/gradlib.po`` otherwise.
A message with fields is translated first and formatted after, so that the translator can move the fields:
``_("{depth} blocks").format(depth=12)``.

The language is, innermost first: the one set by ``with language("zh_CN"):``, else the environment variable
``GH_LANGUAGE`` (how the book's Chinese build tells its kernels), else English. It is read when a string is
made, so results made in one language keep their labels.

Traps:
- the catalog is made with Babel from the code and the notebooks (``make po``); a message missing from it
  comes back in English (gettext's rule), and ``tests/test_translations.py`` fails the run on one;
- a CJK label needs a CJK font: :func:`font_families` is what :func:`gradlib.style.style` sets, the CJK font
  first (mathtext draws a label's words with the first font of the list only), DejaVu Sans as fallback.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Iterator

__all__ = ["LANGUAGES", "ENV", "DOMAIN", "LOCALES", "current", "language", "_", "N_", "catalog", "font_families"]

LANGUAGES: tuple[str, ...] = ("en", "zh_CN")
ENV = "GH_LANGUAGE"
DOMAIN = "gradlib"
LOCALES = Path(__file__).resolve().parent / "locales"

# English: DejaVu Sans (matplotlib's own font). Chinese: Debian's fonts-noto-cjk (simplified Chinese face)
# FIRST, DejaVu Sans after it for the rare glyph it lacks (matplotlib >= 3.6 falls back glyph by glyph along
# the list). First, because a label that mixes words and $math$ is laid out by mathtext, which draws the words
# with the first font only: with DejaVu first, "$P_{ij}$ 的奇异值" would show boxes. A missing font is
# matplotlib's "findfont: Font family ... not found" warning, and tests/test_i18n.py fails on it.
FONTS: dict[str, tuple[str, ...]] = {
    "en": ("DejaVu Sans",),
    "zh_CN": ("Noto Sans CJK SC", "DejaVu Sans"),
}

_stack: list[str] = []  # set only by language(), innermost last


def _checked(lang: str, name: str) -> str:
    if lang not in LANGUAGES:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, LANGUAGES))}, got {lang!r}")
    return lang


def current() -> str:
    """The language strings are made in now: language()'s, else $GH_LANGUAGE's, else "en"."""
    if _stack:
        return _stack[-1]
    return _checked(os.environ.get(ENV) or "en", f"${ENV}")


@contextlib.contextmanager
def language(lang: str) -> Iterator[str]:
    """Context in which gradlib's strings are made in `lang` ("en" or "zh_CN"); the previous one is restored."""
    _stack.append(_checked(lang, "lang"))
    try:
        yield lang
    finally:
        _stack.pop()


@functools.lru_cache(maxsize=None)
def catalog(lang: str) -> dict[str, str]:
    """msgid -> msgstr of `lang`'s catalog (translated, non-fuzzy entries only); {} for English."""
    if _checked(lang, "lang") == "en":
        return {}
    path = LOCALES / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    try:
        from babel.messages.pofile import read_po  # only the translated editions need Babel
    except ImportError as err:  # pragma: no cover - Babel comes with Sphinx and with gradlib[i18n]
        raise ImportError(f"gradlib's {lang} strings need Babel: pip install 'gradlib[i18n]'") from err
    if not path.is_file():
        raise FileNotFoundError(f"no {lang} catalog at {path}: run `make po` (and translate it)")
    with open(path, "rb") as f:
        entries = read_po(f, locale=lang)
    return {m.id: m.string for m in entries if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


def _(message: str) -> str:
    """`message` in the current language (unchanged in English, and where the catalog lacks it)."""
    lang = current()
    if lang == "en":
        return message
    return catalog(lang).get(message, message)


def N_(message: str) -> str:
    """Mark `message` for the catalog without translating it now (a table built at import); _() it when used."""
    return message


def font_families(lang: str | None = None) -> list[str]:
    """matplotlib's font.sans-serif list for `lang` (default: the current language)."""
    return list(FONTS[_checked(lang, "lang") if lang is not None else current()])
