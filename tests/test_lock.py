"""requirements.lock: the exact versions the test run passed with, Binder's pins, and the installed .venv agree.

Independent truths: requirements.txt's and pyproject.toml's ranges (parsed by `packaging`, pip's own parser),
and the versions importlib.metadata reports for what is installed.
"""

from __future__ import annotations

import importlib.metadata as md
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lock  # noqa: E402  (tools/lock.py)


def _requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf8").splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


PINS = lock.read()
REQUIREMENTS = _requirements(ROOT / "requirements.txt")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf8"))["project"]


def test_the_lock_pins_every_requirement_inside_its_range():
    for req in REQUIREMENTS + [Requirement(r) for r in PROJECT["dependencies"]]:
        name = lock.normalise(req.name)
        assert name in PINS, f"{req.name} is required but not in requirements.lock"
        assert req.specifier.contains(Version(PINS[name]), prereleases=True), \
            f"requirements.lock pins {name}=={PINS[name]}, outside {req}"


def test_binder_pins_are_the_locks_versions_and_torch_comes_from_the_cpu_index():
    text = (ROOT / "binder" / "requirements.txt").read_text(encoding="utf8")
    binder = {lock.normalise(r.name): str(r.specifier) for r in _requirements(ROOT / "binder" / "requirements.txt")}
    assert set(binder) == set(lock.BINDER_PACKAGES)
    for name, spec in binder.items():
        assert spec == f"=={PINS[name]}", f"binder pins {name}{spec}, the lock {PINS[name]}"
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text and PINS["torch"].endswith("+cpu")


@pytest.mark.parametrize("req", REQUIREMENTS, ids=lambda r: r.name)
def test_the_installed_environment_is_the_lock(req):
    name = lock.normalise(req.name)
    assert Version(md.version(req.name)) == Version(PINS[name]), \
        f"{req.name} {md.version(req.name)} is installed, requirements.lock says {PINS[name]}: run `make install`"


def test_the_colab_profile_is_the_lock_with_colabs_widget_pins():
    colab = dict(line.split("==") for line in lock.colab_constraints(PINS).splitlines())
    assert colab["ipywidgets"] == "7.7.1" and colab["widgetsnbextension"].startswith("3.6")
    assert all(colab[n] == v for n, v in PINS.items() if n in colab and n not in lock.COLAB_PINS)
    # ... and 7.7.1 is inside the ranges gradlib itself declares (Colab installs gradlib with its own widgets)
    widgets = Requirement(PROJECT["optional-dependencies"]["widgets"][0])
    assert widgets.specifier.contains(Version(colab["ipywidgets"]))
