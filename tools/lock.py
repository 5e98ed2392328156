"""Write requirements.lock (the exact versions a full test run passed with) and derive Binder's pins from it.

    make lock                      # a fresh .venv-lock from requirements.txt's ranges, then this script on it
    python tools/lock.py PYTHON    # freeze the environment of PYTHON into requirements.lock, rewrite binder/
    python tools/lock.py --colab   # print the Colab profile's constraints: the lock with Colab's own pins

`make install` (and so `make book` and `make test`) installs requirements.txt *constrained* by the lock, so
every machine gets the versions the last green run used; requirements.txt keeps the ranges. tests/test_lock.py
checks that the lock satisfies those ranges, that Binder's pins are the lock's, and that .venv matches it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
BINDER = ROOT / "binder" / "requirements.txt"
# What a Binder reader needs beyond Jupyter itself (gradlib is installed by binder/postBuild).
BINDER_PACKAGES = ("torch", "numpy", "matplotlib", "ipywidgets", "myst-nb")
# Colab's own pins that the course must work with (Colab's runtime, 2026): its widget stack is ipywidgets 7.
COLAB_PINS = {"ipywidgets": "7.7.1", "widgetsnbextension": "3.6.1", "jupyterlab-widgets": "1.1.1"}
SKIP = {"gradlib", "pip", "setuptools", "wheel"}  # the project itself and the installer's own tools

HEADER = """\
# The exact versions the full test run (make test) last passed with; installed as constraints by make install.
# Do not edit by hand: `make lock` rebuilds it from requirements.txt's ranges (see tools/lock.py), then run
# `make test` and commit both. torch comes from the CPU wheel (elsewhere: PyTorch's CPU index).
"""


def normalise(name: str) -> str:
    """PEP 503 name: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read(path: Path = LOCK) -> dict[str, str]:
    """name -> exact version of every `name==version` line."""
    pins = {}
    for line in path.read_text(encoding="utf8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalise(name)] = version.strip()
    return pins


def freeze(python: str) -> dict[str, str]:
    out = subprocess.run([python, "-m", "pip", "freeze", "--exclude-editable", "--all"], check=True,
                         capture_output=True, text=True).stdout
    pins = {}
    for line in out.splitlines():
        if "==" in line and not line.startswith("-e"):
            name, version = line.split("==", 1)
            if normalise(name) not in SKIP:
                pins[normalise(name)] = version.strip()
    return pins


def write_lock(pins: dict[str, str]) -> None:
    LOCK.write_text(HEADER + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items())), encoding="utf8")


def write_binder(pins: dict[str, str]) -> None:
    lines = BINDER.read_text(encoding="utf8").splitlines()
    keep = [line for line in lines if line.startswith("#") or line.startswith("--")]
    pinned = [f"{n}=={pins[n]}" for n in BINDER_PACKAGES]
    BINDER.write_text("\n".join(keep + pinned) + "\n", encoding="utf8")


def colab_constraints(pins: dict[str, str]) -> str:
    merged = {n: v for n, v in pins.items() if n not in {"notebook", "ipython-genutils"}}
    merged.update(COLAB_PINS)
    return "".join(f"{n}=={v}\n" for n, v in sorted(merged.items()))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--colab"]:
        sys.stdout.write(colab_constraints(read()))
        return 0
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    pins = freeze(argv[0])
    write_lock(pins)
    write_binder(pins)
    print(f"wrote {LOCK.name} ({len(pins)} packages) and {BINDER.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
