"""Strict test settings: float64, no implicit rank promotion, warnings are errors (pyproject)."""

import gc
import pathlib

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "gamejax",
    max_examples=20,
    deadline=None,  # the first example of a property pays JAX's tracing cost
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,  # reproducible in CI
)
settings.load_profile("gamejax")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    An xdist worker runs hundreds of modules in one process; each compiled XLA:CPU program keeps
    its own memory mappings, and a worker holding every program of the suite passed Linux's
    ``vm.max_map_count`` (65,530 mappings) and crashed in the compiler with a segfault
    (tests/test_linear_solve.py in CI). Clearing the caches keeps a worker's mappings bounded.
    """
    yield
    jax.clear_caches()
    gc.collect()


# The fast loop, ``pytest -n 2 -m "not slow"``: whole modules that run scripts, subprocesses or
# notebooks, and the tests tests/slow_tests.txt lists (over 0.75 s each in the last full run).
SLOW_MODULES = {
    "test_benchmarks.py",
    "test_bench_8gaussians.py",
    "test_bench_digits.py",
    "test_bench_grid_sweep.py",
    "test_docs.py",
    "test_gan_training.py",
    "test_multidevice.py",
    "test_multihost.py",
    "test_readme.py",
}
SLOW_TESTS = pathlib.Path(__file__).with_name("slow_tests.txt")


def pytest_collection_modifyitems(config, items):
    listed = {line for line in SLOW_TESTS.read_text().splitlines() if line and not line.startswith("#")}
    for item in items:
        path = pathlib.Path(str(item.fspath))
        if path.suffix == ".ipynb" or path.name in SLOW_MODULES or item.nodeid in listed:
            item.add_marker(pytest.mark.slow)
