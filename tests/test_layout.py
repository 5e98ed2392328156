"""The shape of gradlib: one idea per module, three layers that only look down, a module table that is true.

The layers are declared once, in tools/module_table.py; the package docstring and the README carry the table.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import gradlib

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "gradlib"
MAX_LINES = 340  # "small enough to read in one sitting" (~300 lines), with a little slack


def _table_tool():
    spec = importlib.util.spec_from_file_location("module_table", ROOT / "tools" / "module_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


TABLE = _table_tool()
MODULES = [p.stem for p in sorted(PACKAGE.glob("*.py")) if p.stem != "__init__"]
DECLARED = [m for names in TABLE.LAYERS.values() for m in names]


def _gradlib_imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "gradlib":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("gradlib."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("gradlib."))
    return found


def _table_rows(text: str) -> list[tuple[str, int]]:
    return [(m, int(n)) for m, n in re.findall(r"^\|[^|]*\| `(\w+)` \| (\d+) \|", text, flags=re.MULTILINE)]


def test_every_module_is_declared_in_exactly_one_layer():
    assert sorted(DECLARED) == sorted(MODULES), (set(DECLARED) ^ set(MODULES))
    assert len(DECLARED) == len(set(DECLARED))


def test_every_module_is_small_enough_to_read_in_one_sitting():
    long = {m: TABLE.lines(m) for m in MODULES if TABLE.lines(m) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split along a concept): {long}"


def test_every_module_opens_with_a_docstring_saying_what_it_holds():
    missing = [m for m in MODULES if not TABLE.purpose(m)]
    assert not missing, missing


def test_layers_only_look_down():
    upward = []
    for module in MODULES:
        for imported in _gradlib_imports(module):
            if TABLE.layer_of(imported) > TABLE.layer_of(module):
                upward.append(f"{module} (layer {TABLE.layer_of(module)}) imports {imported} "
                              f"(layer {TABLE.layer_of(imported)})")
    assert not upward, "\n".join(upward)


def test_package_docstring_and_readme_list_every_module_in_order_with_true_line_counts():
    for name, text in (("gradlib/__init__.py", gradlib.__doc__), ("README.md", (ROOT / "README.md").read_text())):
        rows = _table_rows(text)
        assert [m for m, _ in rows] == DECLARED, f"{name}: the module table differs from tools/module_table.py"
        off = {m: (n, TABLE.lines(m)) for m, n in rows if abs(n - TABLE.lines(m)) > 0.1 * TABLE.lines(m) + 3}
        assert not off, f"{name}: line counts off by more than 10% (run python tools/module_table.py): {off}"


def test_no_test_turns_an_import_error_in_gradlib_into_a_skip():
    pattern = re.compile(r"importorskip\(\s*['\"]gradlib")
    hits = [p.name for p in (ROOT / "tests").glob("*.py") if pattern.search(p.read_text(encoding="utf8"))]
    assert not hits, hits


def test_the_public_api_names_resolve():
    for name in gradlib.__all__:
        assert getattr(gradlib, name) is not None, name
