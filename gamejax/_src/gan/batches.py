"""GAN minibatches: :class:`GANBatch` (real data, noise, a key) and :func:`batch_sampler`.

A :class:`GANBatch` is the ``batch`` argument of every GAN loss (:mod:`gamejax._src.gan.losses`,
:mod:`gamejax._src.gan.penalties`) and of the games :func:`gamejax.gan.game` builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gamejax._src.core import checks


class GANBatch(NamedTuple):
    """One minibatch of a GAN game.

    Attributes:
      real: ``(B, ...)`` real data.
      noise: ``(B, noise_dim)`` generator input.
      key: PRNG key for losses that need randomness (the interpolation points of
        :func:`gradient_penalty` with ``at="interpolates"``).
    """

    real: jax.Array
    noise: jax.Array
    key: jax.Array


def _check_batch(batch: Any) -> None:
    if not isinstance(batch, GANBatch):
        raise TypeError(
            f"GAN losses take a gj.gan.GANBatch(real, noise, key) as batch; got {type(batch).__name__}. "
            "Build batches with gj.gan.batch_sampler(sample_real, noise_dim, batch_size)."
        )


def batch_sampler(
    sample_real: Callable[[jax.Array, int], jax.Array], noise_dim: int, batch_size: int
) -> Callable[[jax.Array], GANBatch]:
    """``sample(key) -> GANBatch``: real data, standard normal noise, and a key for the losses.

    The key is split three ways: one for ``sample_real(key, batch_size)``, one for the noise
    ``z ~ N(0, I)`` of shape ``(batch_size, noise_dim)``, and one passed on as
    ``GANBatch.key``. The noise has the real data's dtype when that is floating-point (JAX's
    default float otherwise). ``sample`` is pure: it jits and vmaps (e.g. over seeds), and
    :func:`gamejax.fit` can call it inside its scan.

    Args:
      sample_real: ``sample_real(key, n) -> (n, ...)`` array of real data.
      noise_dim: the generator's input size, an integer ``>= 1``.
      batch_size: samples per batch, an integer ``>= 1``.

    Returns:
      ``sample(key) -> GANBatch``.

    Example:
      >>> import jax, gamejax as gj
      >>> sample = gj.gan.batch_sampler(lambda key, n: jax.random.normal(key, (n, 2)), noise_dim=8, batch_size=64)
      >>> batch = sample(jax.random.key(0))
      >>> batch.real.shape, batch.noise.shape
      ((64, 2), (64, 8))
    """
    if not callable(sample_real):
        raise TypeError(f"sample_real must be a callable sample_real(key, n); got {type(sample_real).__name__}.")
    checks.check_int("noise_dim", noise_dim, minimum=1)
    checks.check_int("batch_size", batch_size, minimum=1)
    noise_dim, batch_size = int(noise_dim), int(batch_size)  # shapes, used inside fit's scan: Python ints

    def sample(key: jax.Array) -> GANBatch:
        key_real, key_noise, key_loss = jax.random.split(key, 3)
        real = sample_real(key_real, batch_size)
        if jnp.ndim(real) < 1 or jnp.shape(real)[0] != batch_size:
            raise ValueError(
                f"sample_real(key, n) must return an array with leading axis n = {batch_size}; "
                f"it returned shape {jnp.shape(real)}."
            )
        dtype = jnp.result_type(real)
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.result_type(float)
        noise = jax.random.normal(key_noise, (batch_size, noise_dim), dtype=dtype)
        return GANBatch(real=real, noise=noise, key=key_loss)

    return sample
