"""Babel extractor for notebooks: the code cells' _() / N_() strings, as Babel's own Python extractor sees them.

Registered in tools/babel.cfg (``[extractors] ipynb = babel_ipynb:extract``); `make pot` puts tools/ on the
path. Line numbers count the code cells' lines one after another (a cell's magics, %… and !…, are blanked
so that the rest still parses as Python).
"""

from __future__ import annotations

import io
import json
from typing import Any, Iterator

from babel.messages.extract import extract_python


def extract(fileobj: Any, keywords: Any, comment_tags: Any, options: dict) -> Iterator[tuple]:
    """Yield (lineno, funcname, message, comments) for every marked string of the notebook's code cells."""
    cells = json.load(io.TextIOWrapper(fileobj, encoding="utf-8"))["cells"]
    offset = 0
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        lines = "".join(cell.get("source", "")).splitlines()
        code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines) + "\n"
        for lineno, funcname, message, comments in extract_python(io.BytesIO(code.encode("utf-8")), keywords,
                                                                  comment_tags, options):
            yield offset + lineno, funcname, message, comments
        offset += len(lines)
