"""Data sets of the GAN experiments: mixtures of Gaussians (ring, grid) and scikit-learn's 8×8 digits.

Samplers are pure functions ``sample(key, n)`` of a PRNG key, so they run inside ``jax.jit``,
``jax.vmap`` and the ``lax.scan`` training driver (``n`` is a shape: keep it a Python int).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from gamejax._src.core import checks


class Mixture(NamedTuple):
    """An equal-weight mixture of isotropic Gaussians ``(1/m) Σᵢ N(centersᵢ, std² I)``.

    A ``NamedTuple`` of arrays, hence a pytree: it can be passed through ``jax.jit`` and
    ``jax.vmap`` (e.g. a batch of mixtures with different ``std``).

    Attributes:
      centers: ``(m, d)`` array, the means of the ``m`` modes.
      std: the standard deviation of every coordinate of every mode.

    Example:
      >>> mix = Mixture(jnp.array([[-1.0, 0.0], [1.0, 0.0]]), 0.1)
      >>> mix.sample(jax.random.key(0), 4).shape
      (4, 2)
    """

    centers: jax.Array
    std: float | jax.Array

    def sample(self, key: jax.Array, n: int) -> jax.Array:
        """``n`` samples, ``(n, d)`` float32: a mode chosen uniformly, plus ``std``·N(0, I) noise.

        Args:
          key: a PRNG key.
          n: the number of samples (a Python int: it is a shape).

        Returns:
          A ``(n, d)`` float32 array.
        """
        centers = jnp.asarray(self.centers)
        if centers.ndim != 2 or centers.shape[0] < 1:
            raise ValueError(f"Mixture.centers must have shape (m, d) with m >= 1; got shape {centers.shape}.")
        checks.check_number("Mixture.std", self.std, low=0.0, high=math.inf, high_open=True)
        mode_key, noise_key = jax.random.split(key)
        modes = jax.random.randint(mode_key, (n,), 0, centers.shape[0])
        noise = jax.random.normal(noise_key, (n, centers.shape[1]), dtype=jnp.float32)
        std = jnp.asarray(self.std, dtype=jnp.float32)
        return centers[modes].astype(jnp.float32) + std * noise


def _check_positive(name: str, value: float) -> None:
    # Concrete numbers only (NumPy and 0-d JAX ones included): traced values (vmap sweeps) pass.
    try:
        checks.check_number(name, value, low=0.0, low_open=True, high=math.inf, high_open=True)
    except ValueError:
        raise ValueError(f"{name} must be a positive finite number; got {value!r}.") from None


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive Python int; got {value!r}.")


def ring(n_modes: int = 8, radius: float = 1.0, std: float = 0.05) -> Mixture:
    """The "8 Gaussians" ring: ``n_modes`` equal-weight modes equally spaced on a circle.

    Mode ``k`` is centred at ``radius·(cos 2πk/n_modes, sin 2πk/n_modes)`` (the first on the
    positive x axis).

    The defaults are the LEAD paper's (App. I.1): 8 modes "uniformly distributed around the unit
    circle" with spread 0.05. The paper calls 0.05 a *variance*, but its released code
    (``get_8gaussians`` in ReyhaneAskari/Least_action_dynamics_minmax) draws ``0.05·randn`` around
    centres on a circle of radius 2 and then divides everything by 1.414, i.e. radius ≈ 1.414 and
    std ≈ 0.035; gamejax follows the text's unit circle and reads 0.05 as the standard deviation,
    as the code does. Use ``ring(radius=2 / 1.414, std=0.05 / 1.414)`` to match that code exactly.

    Mescheder et al.'s consensus-optimization experiment (Numerics of GANs, §5) uses 8 modes on the
    unit circle with standard deviation 10⁻²: ``ring(std=0.01)``.

    Args:
      n_modes: the number of modes.
      radius: the radius of the circle.
      std: the standard deviation of each mode (per coordinate).

    Returns:
      A :class:`Mixture` with ``(n_modes, 2)`` float32 centres.

    Example:
      >>> mix = ring()
      >>> mix.centers.shape, mix.sample(jax.random.key(0), 128).shape
      ((8, 2), (128, 2))

    References:
      Hemmat et al, `LEAD: Min-Max Optimization from a Physical Perspective
      <https://arxiv.org/abs/2010.13846>`_, App. I.1.
      Mescheder et al, `The Numerics of GANs <https://arxiv.org/abs/1705.10461>`_, 2017, §5.
    """
    _check_count("n_modes", n_modes)
    _check_positive("radius", radius)
    _check_positive("std", std)
    angles = 2.0 * np.pi * np.arange(n_modes) / n_modes
    centers = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return Mixture(jnp.asarray(centers, dtype=jnp.float32), std)


def grid(rows: int = 4, cols: int = 4, spacing: float = 2.0, std: float = 0.2) -> Mixture:
    """Equal-weight Gaussians on the intersections of a ``rows × cols`` grid centred at the origin.

    The centres are ``((i − (cols−1)/2)·spacing, (j − (rows−1)/2)·spacing)``; with the defaults the
    16 centres are ``{−3, −1, 1, 3}²``. Row-major order: ``centers[j·cols + i]``.

    The averaging paper (Yazıcı et al., §4.1) uses "a two-dimensional mixture of 16 Gaussians where
    the mean of each Gaussian lies on the intersection points of a 4x4 grid. Each Gaussian is
    isotropic with σ = 0.2", and reports the Wasserstein-1 distance between 2048-sample sets
    (Table 1). Neither §4.1 nor App. B.1 states the grid's spacing or position; gamejax uses spacing
    2 centred at the origin, the spacing of the common 5×5 "25 Gaussians" grid ``{−4, −2, 0, 2, 4}²``,
    which keeps neighbouring modes 10σ apart.

    Warning: Table 1's values (0.025–0.05) are not comparable with :func:`gamejax.metrics.wasserstein1`
    on this grid: two independent 2048-sample sets of the *true* distribution are already ≈ 0.16 apart
    in W₁ with spacing 2 (≈ 0.09 with spacing 1, ≈ 0.055 with spacing 0.5); compare methods with each
    other and with that floor.

    Args:
      rows: the number of grid rows (y values).
      cols: the number of grid columns (x values).
      spacing: the distance between neighbouring centres.
      std: the standard deviation of each mode (per coordinate).

    Returns:
      A :class:`Mixture` with ``(rows·cols, 2)`` float32 centres.

    Example:
      >>> mix = grid()
      >>> mix.centers.shape, float(mix.centers.min()), float(mix.centers.max())
      ((16, 2), -3.0, 3.0)

    References:
      Yazıcı et al, `The Unusual Effectiveness of Averaging in GAN Training
      <https://arxiv.org/abs/1806.04498>`_, ICLR 2019, §4.1.
    """
    _check_count("rows", rows)
    _check_count("cols", cols)
    _check_positive("spacing", spacing)
    _check_positive("std", std)
    xp = np if isinstance(spacing, (int, float, np.number)) else jnp  # host float64 for plain numbers
    xs = (xp.arange(cols) - (cols - 1) / 2.0) * spacing
    ys = (xp.arange(rows) - (rows - 1) / 2.0) * spacing
    gx, gy = xp.meshgrid(xs, ys)  # (rows, cols) each, row-major
    centers = xp.stack([gx.ravel(), gy.ravel()], axis=1)
    return Mixture(jnp.asarray(centers, dtype=jnp.float32), std)


class Digits(NamedTuple):
    """Digit images in ``[-1, 1]`` (flattened 8×8, or NHWC) and their labels (unpacks as ``images, labels``)."""

    images: jax.Array
    labels: jax.Array


@functools.cache
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (np.asarray(bunch.data, dtype=np.float64) / 8.0 - 1.0).astype(np.float32)  # 0..16 → [-1, 1]
    return images, np.asarray(bunch.target, dtype=np.int32)


@functools.cache
def _split_indices(test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    _, labels = _load_digits()
    index = np.arange(labels.shape[0])
    train, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(test)


def digits(split: str = "train", test_fraction: float = 0.2, seed: int = 0, size: int | None = None) -> Digits:
    """scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes; no download).

    Pixels (integers 0..16) are mapped linearly to ``[-1, 1]`` (``x/8 − 1``), the range GAN
    generators with a ``tanh`` output produce, as in the averaging paper ("All dataset samples are
    scaled to [-1, 1] range", §4). The train/test split is stratified by label and deterministic
    for a given ``(test_fraction, seed)``; rows keep the data set's order.

    ``size`` turns them into NHWC images ``(n, size, size, 1)`` for convolutional networks, upsampled
    bilinearly (``jax.image.resize``: half-pixel centres, edge pixels repeated, so every value stays
    in ``[-1, 1]``). ``digits(size=28)`` is gamejax's stand-in for MNIST, on which the lookahead paper
    trains its DCGAN (App. H.2.1, Table 5): nothing can be downloaded here, and these 1,797 digits are
    bundled with scikit-learn. They are blurrier and far fewer than MNIST's 60,000 28×28 digits, so
    scores on them are not comparable with the paper's.

    Args:
      split: ``"train"``, ``"test"`` or ``"all"``.
      test_fraction: the fraction of images held out for ``"test"`` (strictly between 0 and 1, and
        leaving at least one image of each class in both splits: about 0.0051 to 0.994).
      seed: the seed of the split.
      size: ``None`` for flattened 8×8 images, or the side of square NHWC images (an int ``>= 8``;
        8 keeps the pixels, 28 and 32 are the lookahead paper's MNIST and CIFAR-10 resolutions).

    Returns:
      :class:`Digits` ``(images, labels)``: float32 images, ``(n, 64)`` or ``(n, size, size, 1)``, and
      ``(n,)`` int32 labels. With the defaults, ``n`` is 1437 (train), 360 (test) or 1797 (all).

    Example:
      >>> images, labels = digits("test")
      >>> images.shape, labels.dtype
      ((360, 64), dtype('int32'))
      >>> digits("test", size=28).images.shape
      (360, 28, 28, 1)
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f'split must be "train", "test" or "all"; got {split!r}.')
    if not isinstance(test_fraction, (int, float)) or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be a number strictly between 0 and 1; got {test_fraction!r}.")
    checks.check_int("seed", seed, minimum=0)
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 8):
        raise ValueError(f"size must be None (flattened 8×8 images) or an int >= 8 (size×size images); got {size!r}.")
    images, labels = _load_digits()
    if split != "all":
        n, n_classes = labels.shape[0], np.unique(labels).size
        n_test = math.ceil(test_fraction * n)  # as scikit-learn rounds it
        if min(n_test, n - n_test) < n_classes:
            raise ValueError(
                f"test_fraction must leave at least one image of each of the {n_classes} classes in both splits "
                f"of the {n} images; got {test_fraction!r}, which holds out {n_test}."
            )
        train, test = _split_indices(float(test_fraction), int(seed))
        index = train if split == "train" else test
        images, labels = images[index], labels[index]
    images = jnp.asarray(images, dtype=jnp.float32)
    if size is not None:
        images = jnp.reshape(images, (-1, 8, 8, 1))
        if size != 8:
            images = jnp.clip(jax.image.resize(images, (images.shape[0], size, size, 1), "linear"), -1.0, 1.0)
    return Digits(images, jnp.asarray(labels, dtype=jnp.int32))


def sampler(data: ArrayLike) -> Callable[[jax.Array, int], jax.Array]:
    """``sample(key, n)``: ``n`` rows of ``data`` drawn uniformly with replacement.

    Args:
      data: an array with at least one dimension; rows are indexed along axis 0.

    Returns:
      A pure function ``sample(key, n) -> (n, *data.shape[1:])`` (``n`` a Python int), usable
      inside ``jax.jit``, ``jax.vmap`` over keys and the training driver's ``lax.scan``.

    Example:
      >>> sample = sampler(digits("train").images)
      >>> sample(jax.random.key(0), 64).shape
      (64, 64)
    """
    data = jnp.asarray(data)
    if data.ndim < 1 or data.shape[0] < 1:
        raise ValueError(f"data must be an array with at least one row; got shape {data.shape}.")

    def sample(key: jax.Array, n: int) -> jax.Array:
        return data[jax.random.randint(key, (n,), 0, data.shape[0])]

    return sample
