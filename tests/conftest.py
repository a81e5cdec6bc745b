"""Strict test settings: float64, no implicit rank promotion, warnings are errors (pyproject)."""

import jax
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
