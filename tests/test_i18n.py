"""gradlib.i18n: the words gradlib draws, in English and in Chinese.

Independent truths: the strings marked for translation are found by Babel's own extractor (the mapping
tools/babel.cfg that `make pot` uses), not by a list kept here; the catalog is read with Babel's PO reader;
a figure's words are read back from the matplotlib Text artists it drew, and its fonts from matplotlib's
font manager.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from matplotlib import font_manager
from matplotlib.text import Text

from gradlib import charts, diagrams, figures, i18n
from gradlib.i18n import _, language

ROOT = Path(__file__).resolve().parent.parent
FIELD = re.compile(r"\{(\w*)[^{}]*\}")
CJK = re.compile(r"[\u4e00-\u9fff]")
TRANSLATED = [lang for lang in i18n.LANGUAGES if lang != "en"]


@functools.lru_cache(maxsize=1)
def extracted() -> dict[str, list[str]]:
    """msgid -> where it is marked, as Babel extracts it with the build's own mapping (once per run)."""
    sys.path.insert(0, str(ROOT / "tools"))  # the notebook extractor named in babel.cfg
    try:
        with (ROOT / "tools" / "babel.cfg").open() as f:
            method_map, options_map = parse_mapping_cfg(f)
        found: dict[str, list[str]] = {}
        for filename, lineno, message, _comments, _context in extract_from_dir(
                str(ROOT), method_map, options_map, keywords={"_": None, "N_": None}):
            found.setdefault(message, []).append(f"{filename}:{lineno}")
        return found
    finally:
        sys.path.remove(str(ROOT / "tools"))


# ------------------------------------------------------------------------------------------- the language
def test_english_is_the_message_itself():
    with language("en"):
        assert _("training step") == "training step"
        assert _("no such message, anywhere") == "no such message, anywhere"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_a_translated_language_answers_from_its_catalog_and_falls_back_to_english(lang):
    with language(lang):
        assert _("training step") == i18n.catalog(lang)["training step"] != "training step"
        assert _("no such message, anywhere") == "no such message, anywhere"  # gettext's rule


def test_language_is_restored_after_the_context_even_on_error(monkeypatch):
    monkeypatch.delenv(i18n.ENV, raising=False)
    assert i18n.current() == "en"
    with pytest.raises(RuntimeError):
        with language("zh_CN"):
            with language("en"):
                assert i18n.current() == "en"
            assert i18n.current() == "zh_CN"
            raise RuntimeError("inside")
    assert i18n.current() == "en"


def test_the_environment_variable_sets_the_default_and_the_context_wins(monkeypatch):
    monkeypatch.setenv(i18n.ENV, "zh_CN")
    assert i18n.current() == "zh_CN"
    with language("en"):
        assert _("training step") == "training step"
    monkeypatch.setenv(i18n.ENV, "")
    assert i18n.current() == "en"


def test_an_unknown_language_is_a_value_error_naming_where_it_came_from(monkeypatch):
    with pytest.raises(ValueError, match=r"lang must be one of 'en', 'zh_CN', got 'fr'"):
        with language("fr"):
            pass
    monkeypatch.setenv(i18n.ENV, "zh")
    with pytest.raises(ValueError, match=r"\$GH_LANGUAGE must be one of"):
        i18n.current()


# -------------------------------------------------------------------------------------------- the catalog
@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_marked_string_is_translated_keeping_its_fields(lang):
    with (i18n.LOCALES / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po").open("rb") as f:
        entries = {m.id: m for m in read_po(f) if m.id}
    found = extracted()
    assert len(found) > 150, "Babel found too few marked strings: is tools/babel.cfg still right?"
    problems = []
    for msgid, where in sorted(found.items()):
        m = entries.get(msgid)
        if m is None:
            problems.append(f"not in the catalog (run make po): {msgid!r} at {where[0]}")
        elif m.fuzzy or not m.string:
            problems.append(f"{'fuzzy' if m.fuzzy else 'untranslated'}: {msgid!r} at {where[0]}")
        elif sorted(FIELD.findall(msgid)) != sorted(FIELD.findall(m.string)):
            problems.append(f"fields differ: {msgid!r} -> {m.string!r}")
    stale = sorted(set(entries) - set(found))
    problems += [f"no longer marked anywhere (run make po): {msgid!r}" for msgid in stale]
    assert not problems, "\n".join(problems)


def test_marked_strings_are_literals_with_named_fields():
    """A positional "{}" cannot be moved by a translator; an f-string is formatted before it is looked up."""
    bad = [f"{msgid!r} at {where[0]}" for msgid, where in extracted().items() if "{}" in msgid]
    assert not bad, "use named fields: " + "; ".join(bad)
    sources = [p for p in (ROOT / "gradlib").glob("*.py")]
    fstrings = [f"{p.name}:{i + 1}" for p in sources
                for i, line in enumerate(p.read_text(encoding="utf8").splitlines())
                if re.search(r"\bN?_\(\s*r?f[\"']", line)]
    assert not fstrings, "an f-string inside _() is never found in the catalog: " + ", ".join(fstrings)


# ----------------------------------------------------------------------------------------- the figures
def _texts(fig: matplotlib.figure.Figure) -> list[str]:
    fig.canvas.draw()  # tick labels and legends exist only once drawn
    return [t.get_text() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]


def _chinese_figures(lang: str) -> dict[str, matplotlib.figure.Figure]:
    from gradlib.exp_telephone import mlp_gradients

    with language(lang):
        made = {
            "relay diagram": diagrams.draw_relay_vs_group_call().figure,
            "road diagram": diagrams.draw_mountain_road_vs_expressway().figure,
            "block diagram": diagrams.draw_transformer_block(norm_position="post").figure,
            "attention weights": charts.plot_attention_weights(np.full((3, 3), 1 / 3)).figure,
            "depth profile": figures.plot_depth_profiles(
                [mlp_gradients(depth=4, width=8, batch=4, residual=r, key=str(r), label=_("residual") if r
                               else _("plain"), role="residual" if r else "baseline") for r in (False, True)]
            ).figure,
        }
    return made


@pytest.mark.parametrize("lang", TRANSLATED)
def test_a_chinese_figure_has_no_english_message_left_and_draws_every_glyph(lang, caplog):
    cat = i18n.catalog(lang)
    english = {msgid for msgid, msgstr in cat.items() if msgstr != msgid and CJK.search(msgstr)}
    caplog.set_level(logging.WARNING, logger="matplotlib")  # mathtext reports a missing glyph by logging
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Glyph … missing from font(s)" and "findfont: … not found"
        figs = _chinese_figures(lang)
        try:
            for name, fig in figs.items():
                texts = _texts(fig)
                left = [t for t in texts if t in english]
                assert not left, f"{name}: English left in the {lang} figure: {left}"
                assert any(CJK.search(t) for t in texts), f"{name}: no Chinese in the {lang} figure: {texts}"
        finally:
            for fig in figs.values():
                plt.close(fig)
    glyphs = [r.getMessage() for r in caplog.records if "glyph" in r.getMessage() or "findfont" in r.getMessage()]
    assert not glyphs, "missing glyphs or fonts:\n" + "\n".join(sorted(set(glyphs))[:10])


def test_an_english_figure_is_unchanged_by_the_machinery(monkeypatch):
    monkeypatch.delenv(i18n.ENV, raising=False)
    fig = diagrams.draw_relay_vs_group_call(n_tokens=4).figure
    try:
        texts = _texts(fig)
        assert "Recurrence: a relay of phone calls" in texts
        assert "token 1 reaches token 4 after 3 hand-offs" in texts
        assert not any(CJK.search(t) for t in texts)
    finally:
        plt.close(fig)


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_cjk_font_is_installed_and_found_by_matplotlib(lang):
    families = i18n.font_families(lang)
    assert "DejaVu Sans" in families  # the fallback for any glyph the CJK font lacks
    for family in families:
        try:
            path = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
        except ValueError as err:
            pytest.fail(f"matplotlib cannot find {family!r} ({err}): install Debian's fonts-noto-cjk "
                        f"(make system) and remove matplotlib's font cache")
        assert Path(path).is_file()


@pytest.mark.parametrize("lang", TRANSLATED)
def test_a_static_explorer_labels_its_controls_in_the_language(lang):
    from gradlib.explorers import mlp_explorer

    with language(lang):
        ex = mlp_explorer(static=True, grid={"depth": [3], "init": ["old", "xavier"]})
    cat = i18n.catalog(lang)
    assert f">{cat['depth']} <" in ex.html and f">{cat['init']} <" in ex.html
    assert cat["Vanishing gradients in a deep MLP"] in ex.html
    assert ">depth <" not in ex.html

