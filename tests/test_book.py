"""Static checks of the book's sources: table of contents, configuration, Colab cells, no CDNs, citations.

These need no build and no browser; the browser checks of the built site are in tests/test_site.py.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / "book"
CONFIG_PATH = ROOT / "_config.yml"
TOC_PATH = ROOT / "_toc.yml"
BIB_PATH = BOOK / "references.bib"
SYNC_TOOL = ROOT / "tools" / "sync_colab_cells.py"

REPOSITORY_URL = "https://github.com/gradient-highways/gradient-highways"
CHAPTERS = [
    "book/01_telephone_game",
    "book/02_attention",
    "book/03_residual",
    "book/04_layer_norm",
    "book/05_scores",
    "book/06_encoder_layer",
    "book/07_training",
    "book/08_closing",
]
# The keys chapter writers cite (one per paper of /work/shared/science.md).
COURSE_BIB_KEYS = {
    "glorot2010understanding", "pascanu2013difficulty", "vaswani2017attention", "dong2021attention",
    "noci2022signal", "he2016deep", "he2016identity", "bachlechner2020rezero", "wang2022deepnet",
    "liu2020understanding", "ba2016layer", "zhang2019root", "ioffe2015batch", "xiong2020layer",
    "shleifer2021normformer", "zhai2023stabilizing", "he2015delving", "henry2020query", "dehghani2023scaling",
    "wortsman2023small", "devlin2019bert", "radford2019language", "touvron2023llama", "zhu2025transformers",
    "shen2020powernorm", "liu2020variance", "wang2019learning",
}
# Hosts that serve libraries, fonts or analytics to pages: none may appear in the site's configuration or
# static files (launch targets such as mybinder.org and colab are links a reader clicks, not page assets).
CDN_PATTERN = re.compile(
    r"(cdn\.|cdnjs|jsdelivr|unpkg\.com|googleapis\.com|gstatic\.com|fonts\.|bootstrapcdn|"
    r"cloudflare|plausible\.io|google-analytics|googletagmanager|polyfill\.io|mathjax\.org)",
    re.IGNORECASE,
)
CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]*)`")


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf8"))


def toc_files(node: object | None = None) -> list[str]:
    """Every `root`/`file` entry of _toc.yml, in reading order."""
    if node is None:
        node = _yaml(TOC_PATH)
    found: list[str] = []
    if isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                found.append(str(node[key]))
        for key in ("parts", "chapters", "sections"):
            for child in node.get(key, []) or []:
                found.extend(toc_files(child))
    return found


def book_notebooks() -> list[Path]:
    skip = {"_build", ".ipynb_checkpoints"}
    return sorted(p for p in BOOK.rglob("*.ipynb") if not skip & set(p.relative_to(BOOK).parts))


def bib_keys() -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),", BIB_PATH.read_text(encoding="utf8"), flags=re.MULTILINE))


def cited_keys(text: str) -> set[str]:
    keys = set()
    text = re.sub(r"``.+?``", "", text, flags=re.DOTALL)  # a role shown as code is an example, not a citation
    for body in CITE_ROLE.findall(text):
        body = re.sub(r"\{[^}]*\}", "", body)  # pre/post notes: {cite:p}`{see}key{p. 3}`
        keys.update(k.strip() for k in body.split(",") if k.strip())
    return keys


def run_sync_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SYNC_TOOL), *args], capture_output=True, text=True, cwd=ROOT)


# --- table of contents -------------------------------------------------------------------------------


def test_every_toc_entry_exists_exactly_once_as_md_or_ipynb():
    problems = []
    for entry in toc_files():
        sources = [s for s in (ROOT / f"{entry}.md", ROOT / f"{entry}.ipynb") if s.exists()]
        if len(sources) != 1:
            problems.append(f"{entry}: found {[s.name for s in sources] or 'no .md or .ipynb'}")
    assert not problems, "_toc.yml entries without exactly one source file:\n" + "\n".join(problems)


def test_every_notebook_in_book_is_in_the_toc():
    listed = set(toc_files())
    missing = [str(p.relative_to(ROOT)) for p in book_notebooks()
               if str(p.relative_to(ROOT).with_suffix("")) not in listed]
    assert not missing, f"notebooks not in _toc.yml (add them, or move them out of book/): {missing}"


def test_toc_starts_with_the_intro_then_the_four_chapters_in_order():
    toc = _yaml(TOC_PATH)
    assert toc["root"] == "book/intro"
    chapters = next(p for p in toc["parts"] if p.get("caption") == "Chapters")
    assert [c["file"] for c in chapters["chapters"]] == CHAPTERS


# --- configuration -----------------------------------------------------------------------------------


def test_config_names_the_repository_once_with_branch_main_and_book_at_the_root():
    config = _yaml(CONFIG_PATH)
    assert config["repository"] == {"url": REPOSITORY_URL, "branch": "main", "path_to_book": ""}
    assert CONFIG_PATH.read_text(encoding="utf8").count("github.com/gradient-highways") == 1


def test_config_force_executes_every_notebook_and_fails_the_build_on_an_error():
    config = _yaml(CONFIG_PATH)
    execute = config["execute"]
    assert execute["execute_notebooks"] == "force"
    assert execute["allow_errors"] is False
    assert execute["raise_on_error"] is True
    assert execute["timeout"] > 0
    assert config["sphinx"]["config"]["nb_execution_raise_on_error"] is True
    assert config["only_build_toc_files"] is True


def test_config_offers_binder_colab_live_code_repository_and_download_buttons():
    config = _yaml(CONFIG_PATH)
    launch = config["launch_buttons"]
    assert launch["binderhub_url"] == "https://mybinder.org"
    assert launch["colab_url"] == "https://colab.research.google.com"
    assert launch["thebe"] is True
    assert config["html"]["use_repository_button"] is True
    sphinx = config["sphinx"]
    # html_theme_options below would otherwise replace the launch buttons Jupyter Book derives
    assert sphinx["recursive_update"] is True
    assert sphinx["config"]["html_theme_options"]["use_download_button"] is True
    assert "sphinx_exercise" in sphinx["extra_extensions"]
    assert config["bibtex_bibfiles"] == ["book/references.bib"]


def test_site_loads_mathjax_locally_and_no_ipywidgets_scripts():
    sphinx_config = _yaml(CONFIG_PATH)["sphinx"]["config"]
    mathjax = sphinx_config["mathjax_path"]
    assert "://" not in mathjax and not mathjax.startswith("//"), mathjax
    assert sphinx_config["nb_ipywidgets_js"] == {}
    assert sphinx_config["html_static_path"] == ["book/_static"]


def test_no_cdn_urls_in_the_config_or_the_static_files():
    files = [CONFIG_PATH, TOC_PATH] + [
        p for p in (BOOK / "_static").rglob("*")
        if p.is_file() and "vendor" not in p.relative_to(BOOK / "_static").parts
    ]
    hits = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in files
            for m in CDN_PATTERN.finditer(p.read_text(encoding="utf8", errors="replace"))]
    assert not hits, "CDN references (vendor the asset instead):\n" + "\n".join(hits)
    remote_css = [str(p.relative_to(ROOT)) for p in (BOOK / "_static").glob("*.css")
                  if re.search(r"(@import|url\()\s*['\"]?(https?:)?//", p.read_text(encoding="utf8"))]
    assert not remote_css, f"stylesheets loading remote resources: {remote_css}"


# --- chapter notebooks -------------------------------------------------------------------------------


def test_colab_install_cells_are_in_sync_with_the_repository_in_config():
    result = run_sync_tool("--check")
    assert result.returncode == 0, result.stderr


def test_chapter_notebooks_run_on_the_python3_kernel():
    wrong = {}
    for path in book_notebooks():
        kernelspec = json.loads(path.read_text(encoding="utf8")).get("metadata", {}).get("kernelspec", {})
        if kernelspec.get("name") != "python3":
            wrong[path.name] = kernelspec.get("name")
    assert not wrong, f"kernelspec.name must be 'python3' (Binder, Colab, nbval, the build): {wrong}"


def test_every_cited_key_exists_in_references_bib():
    known = bib_keys()
    missing = {}
    sources = [(p, p.read_text(encoding="utf8")) for p in BOOK.glob("*.md")]
    for path in book_notebooks():
        nb = nbformat.read(path, as_version=4)
        sources.append((path, "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")))
    for path, text in sources:
        unknown = cited_keys(text) - known
        if unknown:
            missing[path.name] = sorted(unknown)
    assert not missing, f"cited keys missing from book/references.bib: {missing}"


# --- references --------------------------------------------------------------------------------------


def test_references_bib_parses_and_holds_every_paper_of_the_course():
    from pybtex.database import parse_file

    entries = parse_file(str(BIB_PATH), bib_format="bibtex").entries
    assert COURSE_BIB_KEYS <= set(entries), sorted(COURSE_BIB_KEYS - set(entries))
    for key, entry in entries.items():
        assert {"title", "year"} <= set(entry.fields), key
        assert entry.persons.get("author"), key
    # the arXiv identifiers science.md gives
    assert entries["pascanu2013difficulty"].fields["eprint"] == "1211.5063"
    assert entries["vaswani2017attention"].fields["eprint"] == "1706.03762"
    assert entries["xiong2020layer"].fields["eprint"] == "2002.04745"
    assert entries["zhai2023stabilizing"].fields["eprint"] == "2303.06296"


def test_references_page_holds_the_only_bibliography():
    pages = [p.name for p in BOOK.glob("*.md") if "{bibliography}" in p.read_text(encoding="utf8")]
    notebooks = [p.name for p in book_notebooks() if "{bibliography}" in p.read_text(encoding="utf8")]
    assert pages + notebooks == ["references.md"]


def test_cite_role_parser_reads_lists_roles_and_notes():
    text = "{cite}`a,b` and {cite:t}`c` and {cite:p}`{see}d{p. 3}, e`, not `` {cite}`shown` ``"
    assert cited_keys(text) == {"a", "b", "c", "d", "e"}


# --- the Colab sync tool itself ----------------------------------------------------------------------


def _notebook(cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_sync_tool_inserts_a_missing_cell_and_then_reports_in_sync(tmp_path: Path):
    path = tmp_path / "chapter.ipynb"
    nbformat.write(_notebook([nbformat.v4.new_markdown_cell("# A chapter")]), path)
    assert run_sync_tool("--check", str(path)).returncode == 1
    assert run_sync_tool(str(path)).returncode == 0
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and "remove-cell" in first.metadata["tags"]
    assert f"git+{REPOSITORY_URL}@main" in first.source
    assert len(nb.cells) == 2
    assert run_sync_tool("--check", str(path)).returncode == 0


def test_sync_tool_rewrites_a_stale_install_cell_in_place(tmp_path: Path):
    stale = nbformat.v4.new_code_cell(
        'import sys\nif "google.colab" in sys.modules:\n    %pip install -q "gradlib @ git+https://example.org/old@dev"'
    )
    path = tmp_path / "chapter.ipynb"
    nbformat.write(_notebook([stale, nbformat.v4.new_markdown_cell("# A chapter")]), path)
    check = run_sync_tool("--check", str(path))
    assert check.returncode == 1 and "differs" in check.stderr
    run_sync_tool(str(path))
    nb = nbformat.read(path, as_version=4)
    assert len(nb.cells) == 2
    assert "example.org" not in nb.cells[0].source
    assert run_sync_tool("--check", str(path)).returncode == 0


# --- executed notebooks ------------------------------------------------------------------------------

DRAWING_CALL = re.compile(r"\b(figures|charts)\.plot_\w+\(|\bdiagrams\.draw_\w+\(")


def test_every_cell_that_draws_a_figure_was_saved_with_its_picture():
    # A figure made by gradlib but never shown (e.g. interactive mode switched off behind the notebook's back)
    # leaves the cell without output: the site would silently lose the figure.
    missing = []
    for path in book_notebooks():
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code" or not DRAWING_CALL.search(cell.source):
                continue
            if not any("image/png" in out.get("data", {}) for out in cell.get("outputs", [])):
                missing.append(f"{path.name} cell {i}")
    assert not missing, "cells that draw a figure but were saved without one (re-execute them):\n" + "\n".join(missing)


# --- the exercises where the reader writes code ------------------------------------------------------

SOLUTION_BLOCK = re.compile(r"```(?:python|\{code-cell\}[^\n]*)?\n(# exercise: (\w+)\n.*?)```", re.DOTALL)


def _solutions() -> list[tuple[str, str, str]]:
    """(notebook, exercise name, code) of every worked solution block ("# exercise: <name>" first line)."""
    found = []
    for path in book_notebooks():
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                found += [(path.name, name, code) for code, name in SOLUTION_BLOCK.findall(cell.source)]
    return found


def _exercises() -> dict:
    """Every checker by exercise name: the EXERCISES of gradlib.exercises and of each gradlib.exercise_* module."""
    import importlib
    import pkgutil

    import gradlib

    found: dict = {}
    for _, name, _ in pkgutil.iter_modules(gradlib.__path__):
        if name == "exercises" or name.startswith("exercise_"):
            registry = importlib.import_module(f"gradlib.{name}").EXERCISES
            assert not set(registry) & set(found), f"gradlib.{name} reuses exercise names {set(registry) & set(found)}"
            found.update(registry)
    return found


CHECKER_CALL = re.compile(r"\b(exercises|exercise_\w+)\.check_\w+\(")


def test_every_chapter_has_an_exercise_where_the_reader_writes_code_and_a_checker_answers():
    EXERCISES = _exercises()
    with_solution = {nb for nb, _, _ in _solutions()}
    for chapter in CHAPTERS:
        path = ROOT / f"{chapter}.ipynb"
        nb = nbformat.read(path, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert path.name in with_solution, f"{path.name}: no worked solution block '# exercise: <name>'"
        assert CHECKER_CALL.search(code), f"{path.name}: no cell calls a gradlib exercise checker"
    names = [name for _, name, _ in _solutions()]
    assert set(names) <= set(EXERCISES), f"solution blocks name unknown exercises: {set(names) - set(EXERCISES)}"


def test_every_worked_solution_passes_its_checker():
    # The dropdown's code is what a reader copies: run it through the same checker the chapter calls.
    EXERCISES = _exercises()

    solutions = _solutions()
    assert solutions, "no worked solutions found"
    for notebook, name, code in solutions:
        namespace: dict = {}
        exec(compile(code, f"{notebook}: exercise {name}", "exec"), namespace)  # noqa: S102 (our own text)
        verdict = EXERCISES[name](namespace[name])
        assert verdict.correct, f"{notebook}: the worked solution of {name} fails its checker: {verdict.message}"
