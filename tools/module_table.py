"""Print gradlib's module table (layer, module, lines, purpose) as Markdown, from the package itself.

The layer of each module is declared once, in LAYERS below; the purpose is the first line of the module's
docstring. `gradlib/__init__.py`'s docstring and the README carry this table; tests/test_layout.py checks
that both list every module, in this order, with line counts within 10% of the code's.

    python tools/module_table.py            # print the table
    python tools/module_table.py --write    # rewrite the table in gradlib/__init__.py and README.md
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gradlib"

# Three layers that only look down: a module may import from its own layer and the layers above it here.
LAYERS: dict[str, list[str]] = {
    "models and measurements": ["checks", "draws", "threads", "i18n", "attention", "multihead", "norms", "mlp",
                                "residual_variants", "transformer", "transformer_init", "reference", "rnn",
                                "discovery", "probes", "jacobians", "spectra", "geometry", "hf_models", "tasks",
                                "seq_model", "entropy", "training"],
    "experiments and results": ["results", "exp_telephone", "exp_rnn", "exp_attention", "exp_residual", "exp_norms",
                                "exp_placement", "exp_scores", "exp_encoder", "exp_training", "exp_faq", "experiments"],
    "drawing and interaction": ["style", "figures", "charts", "diagrams", "report", "controls", "explorer",
                                "static", "explorers", "explorers_scores", "explorers_models", "training_plots",
                                "explorers_training", "verdicts", "exercises", "exercise_block", "exercise_training",
                                "exercise_faq"],
}


def layer_of(module: str) -> int:
    for i, names in enumerate(LAYERS.values()):
        if module in names:
            return i
    raise KeyError(module)


def lines(module: str) -> int:
    return len((PACKAGE / f"{module}.py").read_text(encoding="utf8").splitlines())


def purpose(module: str) -> str:
    doc = ast.get_docstring(ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def rows() -> list[tuple[str, str, int, str]]:
    return [(layer, m, lines(m), purpose(m)) for layer, names in LAYERS.items() for m in names]


def markdown() -> str:
    out = ["| layer | module | lines | what it holds |", "|---|---|---:|---|"]
    last = None
    for layer, module, n, what in rows():
        out.append(f"| {layer if layer != last else ''} | `{module}` | {n} | {what} |")
        last = layer
    return "\n".join(out)


TABLE_LINE = re.compile(r"^\|[^\n]*\|$")


def write(path: Path) -> None:
    """Replace the first block of table lines that starts with the header (or a line TABLE) in `path`."""
    text = path.read_text(encoding="utf8").splitlines()
    header = "| layer | module | lines | what it holds |"
    start = next((i for i, line in enumerate(text) if line.strip() in (header, "TABLE")), None)
    if start is None:
        raise SystemExit(f"{path}: no module table (or TABLE placeholder) to replace")
    end = start + 1
    while end < len(text) and TABLE_LINE.match(text[end].strip()):
        end += 1
    text[start:end] = markdown().splitlines()
    path.write_text("\n".join(text) + "\n", encoding="utf8")


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        for target in (PACKAGE / "__init__.py", ROOT / "README.md"):
            write(target)
            print(f"wrote the module table into {target.relative_to(ROOT)}")
    else:
        sys.stdout.write(markdown() + "\n")
