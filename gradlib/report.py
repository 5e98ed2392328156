"""Results as text: orders of magnitude, the checked facts of a chapter, and tables in Markdown.

The experiments return numbers only; everything that turns them into words for a notebook lives here, so
every chapter rounds and prints the same way.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from gradlib import checks
from gradlib.i18n import _

__all__ = ["order_of_magnitude", "print_facts", "NORM_COLUMNS", "table_cell", "norm_table_markdown",
           "profile_verdict"]

NORM_COLUMNS = {"batch": "BatchNorm", "layer": "LayerNorm", "rms": "RMSNorm"}


def order_of_magnitude(x: float) -> str:
    """The nearest power of ten, as text: 6.6e-3 -> "1e-02", 2.2e-12 -> "1e-12", 47 -> "1e+02", 0 -> "0".

    10^round(log10 |x|) (nearest on the log scale); inf/NaN are written as they are.
    """
    x = float(x)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    return ("-" if x < 0 else "") + f"1e{round(math.log10(abs(x))):+03d}"


def print_facts(facts: Mapping[str, bool], width: int = 0) -> None:
    """Print one checked fact per line, 'fact ... True', aligned (the check cell asserts them itself)."""
    width = width or max(len(f) for f in facts) + 1
    for fact, holds in facts.items():
        print(f"{fact:<{width}s} {holds}")


def table_cell(value: Any, digits: int = 2) -> str:
    """A table cell: a number to `digits` significant digits, 'fails' for a norm that refused (a str)."""
    checks.positive_int(digits, "digits")
    if isinstance(value, str):
        return _("fails") if value.startswith("fails") else value
    return f"{float(value):.{digits}g}"


def norm_table_markdown(result: Any, digits: int = 2) -> str:
    """A NormComparison as a Markdown table: one line per test, one column per norm ("fails" where it refused)."""
    kinds = [k for k in NORM_COLUMNS if any(k in row for row in result.changes.values())]
    lines = [f"| {_('max abs change of the output')} | " + " | ".join(NORM_COLUMNS[k] for k in kinds) + " |",
             "|---|" + "---:|" * len(kinds)]
    for test, row in result.changes.items():
        lines.append(f"| {test} | " + " | ".join(table_cell(row.get(k, ""), digits) for k in kinds) + " |")
    return "\n".join(lines)


def profile_verdict(profile: Any, short: bool = False) -> str:
    """What a DepthProfile says in words: "first/last = 0.0066 (vanishing)", or where it exploded.

    vanishing: first/last < 0.1; exploding: > 10; steady in between.
    """
    k = profile.exploded_at
    if k is not None:
        return _("exploded (inf/NaN) at layer {layer}").format(layer=f"{profile.layer[k]:g}")
    ratio = profile.ratio
    verdict = _("vanishing") if ratio < 0.1 else _("exploding") if ratio > 10 else _("steady")
    first_last = _("first/last = {ratio}").format(ratio=f"{ratio:.2g}")
    return first_last if short else _("{first_last} ({verdict})").format(first_last=first_last, verdict=verdict)
