"""The two editions show the same numbers: each executes the notebooks once, in its own language, and every
value a chapter glues into its prose is the same in both.

Independent truth: the executed notebooks that myst-nb stored in each edition's jupyter-cache (read with
jupyter-cache's own API), compared glue name by glue name. Run by `make test` after both builds
(GH_EXEC_CACHES="en=<dir>,zh_CN=<dir>").
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.site

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = f"en={ROOT / '_build/.jupyter_cache'},zh_CN={ROOT / '_build/.jupyter_cache_zh'}"
CACHES = dict(item.split("=", 1) for item in os.environ.get("GH_EXEC_CACHES", DEFAULT).split(","))


def glued(cache_dir: str) -> dict[str, dict[str, str]]:
    """notebook name -> glue name -> its text/plain value, from one edition's execution cache."""
    from jupyter_cache import get_cache

    if not Path(cache_dir).is_dir():
        pytest.fail(f"no execution cache at {cache_dir}: build both editions first (make html)")
    cache = get_cache(cache_dir)
    out: dict[str, dict[str, str]] = {}
    for record in cache.list_cache_records():
        nb = cache.get_cache_bundle(record.pk).nb
        values = out.setdefault(Path(record.uri).stem, {})
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                name = output.get("metadata", {}).get("scrapbook", {}).get("name")
                if name is not None:
                    values[name] = output.get("data", {}).get("text/plain", "")
    return out


def test_every_glued_value_is_the_same_in_both_editions():
    (en_lang, en_dir), *others = CACHES.items()
    english = glued(en_dir)
    chapters = sorted(p.stem for p in (ROOT / "book").glob("[0-9]*.ipynb"))
    assert set(chapters) <= set(english), f"chapters missing from the {en_lang} execution"
    n_values = sum(len(v) for v in english.values())
    assert n_values > 100, f"only {n_values} glued values: is the cache the right one?"
    for lang, cache_dir in others:
        other = glued(cache_dir)
        assert set(other) == set(english), f"{lang} executed other notebooks than {en_lang}"
        differ = [f"{nb}:{name}: {english[nb][name]!r} vs {other[nb].get(name)!r}"
                  for nb in english for name in english[nb] if other[nb].get(name) != english[nb][name]]
        assert not differ, f"glued values differ between {en_lang} and {lang}:\n" + "\n".join(differ)
