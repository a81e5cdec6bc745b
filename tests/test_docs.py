"""The docs site builds with Sphinx, warnings as errors, and documents every public name.

The build is ``sphinx-build -W --keep-going -b html docs OUT`` (docs/conf.py), run in a fresh
process into a temporary folder: autodoc renders every public docstring (Google style with reST
math, through napoleon), MyST renders the pages, the README sections they include and
benchmarks/README.md with its plots, and MyST-NB renders the notebooks from their stored outputs
(never executing them: nbmake does, in this suite). Any warning (a docstring that is not valid
reST, a broken cross-reference, an include whose README heading moved) fails the test.
"""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys
import zlib

import gamejax as gj

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def inventory(path: pathlib.Path) -> set[str]:
    """The object names in a Sphinx ``objects.inv`` (version 2: four header lines, then zlib)."""
    data = path.read_bytes()
    lines = data.split(b"\n", 4)
    assert lines[0] == b"# Sphinx inventory version 2", lines[0]
    body = zlib.decompress(lines[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if re.match(r"\S+ py:\w+ ", line)}


def public_names() -> set[str]:
    """``gamejax.NAME`` for every name in ``gj.__all__``, and ``gamejax.MODULE.NAME`` for its submodules'."""
    names = set()
    for name in gj.__all__:
        value = getattr(gj, name)
        if isinstance(value, type(gj)):
            names.update(f"gamejax.{name}.{member}" for member in value.__all__)
        else:
            names.add(f"gamejax.{name}")
    return names


def test_docs_build_strictly(tmp_path):
    out = tmp_path / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    build = subprocess.run(
        [*command, "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, f"sphinx-build failed:\n{build.stderr[-8000:]}"

    documented = inventory(out / "objects.inv")
    missing = sorted(public_names() - documented)
    assert not missing, f"public names without an entry in the API reference: {missing}"

    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        page = out / "notebooks" / f"{notebook.stem}.html"
        assert page.is_file(), f"{notebook.name} is not rendered"
        assert "cell_output" in page.read_text(), f"{notebook.name} is rendered without its outputs"

    plots = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (ROOT / "benchmarks" / "README.md").read_text())
    assert plots
    for plot in plots:
        assert (out / "_images" / pathlib.Path(plot).name).is_file(), f"benchmark plot {plot} is not in the site"
