"""Vendor the site's third-party browser assets from the npm registry, so that no page ever asks a CDN.

Only MathJax is needed: Sphinx's default `mathjax_path` points at jsDelivr, and _config.yml points it at
book/_static/vendor/mathjax/tex-chtml.js instead. The tarball is fetched with `npm pack` (the registry's
ordinary client), checked against the pinned sha512 integrity, and the ES5 component files MathJax may load
at run time are copied out (the tex-chtml bundle, its woff fonts, the TeX extensions `autoload` pulls in,
and the menu's accessibility and speech components), together with its Apache-2.0 licence.

Usage:  python tools/fetch_vendor.py [--force]      (a no-op when the pinned version is already in place)
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "book" / "_static" / "vendor"

MATHJAX_VERSION = "3.2.2"
# `npm view mathjax@3.2.2 dist.integrity`; a changed tarball must never slip through silently.
MATHJAX_INTEGRITY = (
    "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="
)
# Paths inside the tarball's package/es5/ that the browser may request (everything else is for Node or
# for other input/output combinations we do not use).
MATHJAX_KEEP = (
    "tex-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "a11y",
    "ui",
    "sre",
)


def _integrity(path: Path) -> str:
    digest = hashlib.sha512(path.read_bytes()).digest()
    return "sha512-" + base64.b64encode(digest).decode()


def fetch_mathjax(force: bool = False) -> Path:
    dest = VENDOR / "mathjax"
    stamp = dest / f".mathjax-{MATHJAX_VERSION}"
    if stamp.exists() and not force:
        return dest
    if shutil.which("npm") is None:
        sys.exit("error: npm is needed once to vendor MathJax (apt-get install npm, or install Node.js)")
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        run = subprocess.run(
            ["npm", "pack", f"mathjax@{MATHJAX_VERSION}", "--json", "--silent", "--pack-destination", tmp],
            capture_output=True, text=True, cwd=tmp,
        )
        if run.returncode != 0:
            sys.exit(f"error: npm pack mathjax@{MATHJAX_VERSION} failed:\n{run.stderr}")
        tarball = tmpdir / json.loads(run.stdout)[0]["filename"]
        got = _integrity(tarball)
        if got != MATHJAX_INTEGRITY:
            sys.exit(f"error: mathjax-{MATHJAX_VERSION}.tgz integrity {got} != pinned {MATHJAX_INTEGRITY}")
        with tarfile.open(tarball) as tar:
            # the "data" filter refuses links and absolute paths; it exists from Python 3.11.4 on
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(tmpdir, **extra)
        es5 = tmpdir / "package" / "es5"
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for rel in MATHJAX_KEEP:
            src = es5 / rel
            if src.is_dir():
                shutil.copytree(src, dest / rel)
            else:
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / rel)
        shutil.copy2(tmpdir / "package" / "LICENSE", dest / "LICENSE")
    (dest / "README.txt").write_text(
        f"MathJax {MATHJAX_VERSION} (Apache-2.0, see LICENSE), from the npm registry by tools/fetch_vendor.py.\n"
        "Generated: do not edit, do not commit.\n",
        encoding="utf8",
    )
    stamp.touch()
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="fetch again even if the stamp is present")
    args = parser.parse_args()
    dest = fetch_mathjax(force=args.force)
    print(f"vendored MathJax {MATHJAX_VERSION} in {dest.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
