"""Keep the first cell of every chapter notebook equal to the Colab install cell built from _config.yml.

On Colab a chapter has nothing but the notebook, so its first cell installs gradlib from the course
repository; everywhere else (local, Binder, the site build, nbval) the cell does nothing. The repository URL
and branch live once, in _config.yml (`repository.url`, `repository.branch`); this script derives the cell
from them, so moving the repository means editing _config.yml and running this script.

    python tools/sync_colab_cells.py            # rewrite: replace (or insert) the first cell where needed
    python tools/sync_colab_cells.py --check    # exit 1, listing the notebooks that are out of sync

Notebooks: the ones given on the command line, else every .ipynb under book/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "_config.yml"
BOOK = ROOT / "book"
TAG = "remove-cell"
CELL_ID = "colab-install"
MARKER = '"google.colab" in sys.modules'  # how an existing install cell is recognised

TEMPLATE = """\
# On Colab: install gradlib from the course repository. Anywhere else (local, Binder, the site build): nothing.
import sys
if "google.colab" in sys.modules:
    %pip install -q "gradlib[notebook] @ git+{url}@{branch}\""""


def repository(config: Path = CONFIG) -> tuple[str, str]:
    """The repository URL (no trailing slash or .git) and branch named in _config.yml."""
    data = yaml.safe_load(config.read_text(encoding="utf8"))
    repo = data.get("repository") or {}
    url, branch = repo.get("url"), repo.get("branch")
    if not url or not branch:
        raise SystemExit(f"error: {config} must set repository.url and repository.branch")
    url = url.rstrip("/")
    if url.endswith(".git"):
        url = url[: -len(".git")]
    return url, branch


def expected_source(config: Path = CONFIG) -> str:
    url, branch = repository(config)
    return TEMPLATE.format(url=url, branch=branch)


def chapter_notebooks() -> list[Path]:
    skip = {"_build", ".ipynb_checkpoints"}
    return sorted(p for p in BOOK.rglob("*.ipynb") if not skip & set(p.relative_to(BOOK).parts))


def problems(nb: nbformat.NotebookNode, source: str) -> list[str]:
    """Why the notebook's first cell is not the install cell (empty when it is)."""
    if not nb.cells:
        return ["the notebook has no cells"]
    first = nb.cells[0]
    found = []
    if first.cell_type != "code":
        found.append(f"first cell is a {first.cell_type} cell, not code")
    elif first.source != source:
        found.append("first cell's source differs from the Colab install cell of _config.yml")
    if TAG not in first.get("metadata", {}).get("tags", []):
        found.append(f"first cell lacks the tag {TAG!r}")
    return found


def sync(nb: nbformat.NotebookNode, source: str) -> None:
    """Make the first cell the install cell: rewrite an existing one in place, else insert a new one."""
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "code" and MARKER in first.source:
        cell = first
        cell.source = source
    else:
        cell = nbformat.v4.new_code_cell(source)
        if nb.nbformat_minor < 5:
            cell.pop("id", None)  # cell ids only exist from nbformat 4.5 on
        elif CELL_ID not in {c.get("id") for c in nb.cells}:
            cell["id"] = CELL_ID  # a stable id keeps re-syncs from churning the diff
        nb.cells.insert(0, cell)
    tags = cell.metadata.setdefault("tags", [])
    if TAG not in tags:
        tags.insert(0, TAG)
    # the cell prints nothing anywhere but on Colab: keep stale outputs out of the repository
    cell.outputs = []
    cell.execution_count = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if anything is out of sync")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)

    source = expected_source()
    paths = args.notebooks or chapter_notebooks()
    bad = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        found = problems(nb, source)
        if not found:
            continue
        if args.check:
            bad += 1
            for why in found:
                print(f"{path}: {why}", file=sys.stderr)
        else:
            sync(nb, source)
            nbformat.write(nb, path)
            print(f"synced {path}")
    if args.check and bad:
        print(f"{bad} notebook(s) out of sync: run `python tools/sync_colab_cells.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
