"""Every ```python block of README.md and of the docs pages runs, executed from the files themselves.

Conventions (what a reader may rely on):

- **README.md**: each block is a complete program, run on its own in a fresh namespace (a reader
  copies one block). Two blocks have their own tests here instead of the generic one: the Flax
  GAN recipe (``## GANs in Flax``: 5000 steps on three seeds, checked for mode coverage, slow)
  and the multi-host ``train.py`` (it calls ``jax.distributed.initialize``: launched as the
  README's ``bash`` block launches it, two processes with two CPU devices each).
- **Docs pages** (``docs/**/*.md``): the blocks of one page run top to bottom in one namespace,
  as one script (a page is a walk-through; later blocks use earlier names).
- Blocks run as a user runs them: JAX's defaults (float32, implicit rank promotion allowed),
  the working directory a fresh temporary folder, warnings as errors (pyproject).
- A block is not run only when an HTML comment on the line right above its fence says why:
  ``<!-- test: skip (reason) -->``. Content that a docs page includes from README.md (MyST
  ``{include}``) is README content, run by the README's tests.
"""

from __future__ import annotations

import pathlib
import re
import sys

import jax
import pytest
from processes import free_port, run_processes

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
SKIP = re.compile(r"<!-- test: skip \((.+)\) -->\n\Z")


def section_code(heading: str) -> str:
    """The first ```python block after the Markdown heading ``heading`` in the README."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def python_blocks(path: pathlib.Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` for each ```python block of a Markdown file."""
    text = path.read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()]
        skip = SKIP.search(before)
        blocks.append((before.count("\n") + 1, match.group(1), skip.group(1) if skip else None))
    return blocks


def run_code(code: str, filename: str, namespace: dict | None = None) -> dict:
    """Execute ``code`` as a user runs it (JAX's defaults) in ``namespace``; the namespace after."""
    namespace = {"__name__": "__main__"} if namespace is None else namespace
    with jax.enable_x64(False), jax.numpy_rank_promotion("allow"):
        exec(compile(code, filename, "exec"), namespace)
    return namespace


# README blocks that dedicated tests below run, recognized by their content.
GAN_RECIPE = "gj.data.ring()"
MULTIHOST = "jax.distributed.initialize("


def readme_blocks() -> list:
    """The README's blocks that run on their own: not those the dedicated tests below run, nor
    those marked as quotations (``test_blocks_are_found`` accounts for all)."""
    return [
        pytest.param(code, id=f"README.md:{line}")
        for line, code, skip in python_blocks(README)
        if not skip and GAN_RECIPE not in code and MULTIHOST not in code
    ]


def docs_pages() -> list:
    params = []
    for page in sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts):
        if any(skip is None for _, _, skip in python_blocks(page)):
            params.append(pytest.param(page, id=str(page.relative_to(ROOT))))
    return params


@pytest.mark.parametrize("code", readme_blocks())
def test_readme_block_runs(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_code(code, str(README))


@pytest.mark.parametrize("page", docs_pages())
def test_docs_page_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    for line, code, skip in python_blocks(page):
        if skip is None:
            # Line numbers in tracebacks are the page's own.
            run_code("\n" * line + code, str(page), namespace)


def test_blocks_are_found():
    """The extraction sees the README's blocks (a changed fence style would silently test nothing)."""
    codes = [code for _, code, _ in python_blocks(README)]
    assert len(codes) >= 5
    assert sum(GAN_RECIPE in c for c in codes) == 1
    assert sum(MULTIHOST in c for c in codes) == 1
    assert section_code("## GANs in Flax") in codes
    for page in DOCS.rglob("*.md"):
        text = page.read_text()
        assert text.count("```python") == len(python_blocks(page)), f"{page}: a ```python fence the test does not see"
    assert README.read_text().count("```python") == len(codes)
    quoted = sum(skip is not None for _, _, skip in python_blocks(README))
    assert quoted <= 1 and len(readme_blocks()) + 2 + quoted == len(codes)  # 2: the GAN recipe, multi-host


def run_gan_recipe(seed: int) -> dict:
    code = section_code("## GANs in Flax")
    assert "\nseed = 0\n" in code
    namespace: dict = {}
    with jax.enable_x64(False), jax.numpy_rank_promotion("allow"):  # as a user runs it: JAX's defaults
        exec(compile(code.replace("\nseed = 0\n", f"\nseed = {seed}\n"), str(README), "exec"), namespace)
    return namespace


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_readme_flax_gan_covers_the_ring(seed, capsys):
    namespace = run_gan_recipe(seed)
    final = namespace["final"]
    assert int(final["modes_covered"]) >= 7, final
    assert float(final["high_quality"]) >= 0.5, final
    assert capsys.readouterr().out.endswith(f"{int(final['modes_covered'])} of 8 modes\n")
    # what fit recorded along the way is the raw generator's, not the EMA's
    assert namespace["result"].metrics["modes_covered"].shape == (101,)


def test_readme_multihost_script(tmp_path):
    """The README's ``train.py``, launched as its ``bash`` block says: two processes, two CPU devices each."""
    (code,) = [code for _, code, _ in python_blocks(README) if MULTIHOST in code]
    text = README.read_text()
    launch = text[text.index(code) :]
    launch = launch[launch.index("```bash\n") : launch.index("```\n", launch.index("```bash\n") + 8)]
    assert "JAX_PLATFORMS=cpu XLA_FLAGS=--xla_force_host_platform_device_count=2" in launch, launch
    commands = re.findall(r"python train\.py 127\.0\.0\.1:12355 (\d+) (\d+) (\d+) &", launch)
    assert [c[:2] for c in commands] == [("2", "0"), ("2", "1")], launch
    steps = commands[0][2]
    script = tmp_path / "train.py"
    script.write_text(code)
    port = free_port()
    commands = [[sys.executable, str(script), f"127.0.0.1:{port}", "2", str(i), steps] for i in range(2)]
    outputs = run_processes(commands, tmp_path, 240, cwd=tmp_path)
    report = "\n".join(f"--- process {i}:\n{out[-3000:]}" for i, out in enumerate(outputs))
    assert (tmp_path / "runs" / "a").is_dir(), report
