"""The README's Flax GAN recipe, executed from the README itself (not a copy that could drift)."""

from __future__ import annotations

import pathlib
import re

import jax
import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def section_code(heading: str) -> str:
    """The first ```python block after the Markdown heading ``heading`` in the README."""
    text = README.read_text()
    start = text.index(f"\n{heading}\n")
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


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
