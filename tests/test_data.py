"""gj.data: the mixtures' centres against the papers, their sampling statistics, the digits split."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gamejax import data

# ---------------------------------------------------------------------------------------------
# Mixtures of Gaussians.


def test_ring_defaults_are_leads():
    """LEAD App. I.1: 8 modes on the unit circle, spread 0.05; the centres of its released code."""
    mix = data.ring()
    assert isinstance(mix, data.Mixture)
    assert mix.centers.shape == (8, 2) and mix.centers.dtype == jnp.float32
    assert mix.std == 0.05
    h = 1 / math.sqrt(2)
    leads_code = [(1, 0), (-1, 0), (0, 1), (0, -1), (h, h), (h, -h), (-h, h), (-h, -h)]
    assert sorted(map(tuple, np.round(np.asarray(mix.centers, float), 6))) == sorted(
        tuple(np.round(c, 6) + 0.0) for c in np.asarray(leads_code, float)
    )


@pytest.mark.parametrize("n_modes, radius", [(8, 1.0), (8, 2.0), (5, 0.5), (1, 3.0)])
def test_ring_geometry(n_modes, radius):
    centers = np.asarray(data.ring(n_modes, radius=radius).centers, float)
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), radius, rtol=1e-6)
    angles = np.mod(np.arctan2(centers[:, 1], centers[:, 0]), 2 * np.pi)
    np.testing.assert_allclose(np.sort(angles), 2 * np.pi * np.arange(n_modes) / n_modes, atol=1e-6)
    if n_modes > 1:  # consecutive modes are a chord 2r·sin(π/m) apart
        chords = np.linalg.norm(centers - np.roll(centers, -1, axis=0), axis=1)
        np.testing.assert_allclose(chords, 2 * radius * math.sin(math.pi / n_modes), rtol=1e-5)


def test_ring_mescheder_setting():
    """Numerics of GANs §5: standard deviation 10⁻², unit circle."""
    mix = data.ring(std=0.01)
    assert mix.std == 0.01
    np.testing.assert_allclose(np.linalg.norm(np.asarray(mix.centers, float), axis=1), 1.0, rtol=1e-6)


def test_grid_centres():
    """Averaging paper §4.1: 16 Gaussians on a 4×4 grid, σ = 0.2 (centres {−3, −1, 1, 3}², spacing 2)."""
    mix = data.grid()
    assert mix.centers.shape == (16, 2) and mix.centers.dtype == jnp.float32
    assert mix.std == 0.2
    expected = {(x, y) for x in (-3.0, -1.0, 1.0, 3.0) for y in (-3.0, -1.0, 1.0, 3.0)}
    assert {tuple(map(float, c)) for c in np.asarray(mix.centers)} == expected
    small = np.asarray(data.grid(2, 3, spacing=0.5).centers, float)
    expected = {(x, y) for x in (-0.5, 0.0, 0.5) for y in (-0.25, 0.25)}
    assert {tuple(c) for c in small} == expected


@pytest.mark.parametrize(
    "make, kwargs",
    [(data.ring, {"n_modes": 0}), (data.ring, {"std": -1.0}), (data.ring, {"radius": float("nan")})]
    + [(data.grid, {"rows": 0}), (data.grid, {"cols": 2.5}), (data.grid, {"spacing": 0.0})],
)
def test_mixture_constructors_reject_bad_arguments(make, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make(**kwargs)


def _nearest(samples, centers):
    return np.argmin(((samples[:, None, :] - centers[None, :, :]) ** 2).sum(-1), axis=1)


@pytest.mark.parametrize("mix", [data.grid(), data.ring(std=0.05), data.Mixture(jnp.array([[0.0, 0.0, 5.0]]), 0.7)])
def test_mixture_sample_statistics(mix):
    """Uniform mode choice; per mode, the mean is the centre and every coordinate has std ``std``."""
    n = 40_000
    samples = mix.sample(jax.random.key(0), n)
    assert samples.shape == (n, mix.centers.shape[1]) and samples.dtype == jnp.float32
    samples, centers = np.asarray(samples, float), np.asarray(mix.centers, float)
    m = centers.shape[0]
    labels = _nearest(samples, centers)  # the modes are ≥ 7σ apart: nearest = generating mode
    counts = np.bincount(labels, minlength=m)
    p = 1 / m
    assert np.all(np.abs(counts - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1e-9)
    for k in range(m):
        mode = samples[labels == k]
        se = mix.std / math.sqrt(len(mode))
        np.testing.assert_array_less(np.abs(mode.mean(0) - centers[k]), 5 * se)
        # std estimate: standard error ≈ σ/√(2N)
        np.testing.assert_array_less(np.abs(mode.std(0, ddof=1) - mix.std), 5 * mix.std / math.sqrt(2 * len(mode)))


def test_mixture_sample_is_a_pure_function_of_the_key():
    mix = data.grid()
    a = mix.sample(jax.random.key(1), 32)
    np.testing.assert_array_equal(a, mix.sample(jax.random.key(1), 32))
    assert not np.array_equal(a, mix.sample(jax.random.key(2), 32))


def test_mixture_sample_jit_and_vmap():
    mix = data.ring()
    k0, k1 = jax.random.split(jax.random.key(3))
    # The mixture is a pytree: it can be an argument of a compiled function.
    compiled = jax.jit(data.Mixture.sample, static_argnums=2)(mix, k0, 32)
    np.testing.assert_allclose(compiled, mix.sample(k0, 32), rtol=1e-6, atol=1e-6)
    # vmap over keys and spreads at once: same key, same modes and noise, scaled by std.
    keys, stds = jnp.stack([k0, k0, k1]), jnp.array([0.0, 0.1, 0.2])
    swept = jax.jit(jax.vmap(lambda k, s: data.Mixture(mix.centers, s).sample(k, 32)))(keys, stds)
    assert swept.shape == (3, 32, 2) and swept.dtype == jnp.float32
    assert set(map(tuple, np.asarray(swept[0]))) <= set(map(tuple, np.asarray(mix.centers)))
    np.testing.assert_allclose(swept[1], swept[0] + 0.1 * (compiled - swept[0]) / 0.05, atol=1e-5)
    np.testing.assert_allclose(swept[2], data.Mixture(mix.centers, 0.2).sample(k1, 32), rtol=1e-6, atol=1e-6)


def test_mixture_rejects_bad_centres():
    with pytest.raises(ValueError, match=r"\(m, d\)"):
        data.Mixture(jnp.zeros(3), 0.1).sample(jax.random.key(0), 4)


# ---------------------------------------------------------------------------------------------
# Digits.


def test_digits_matches_sklearn_scaled_to_unit_range():
    from sklearn.datasets import load_digits

    raw = load_digits()
    images, labels = data.digits("all")
    assert images.shape == (1797, 64) and images.dtype == jnp.float32
    assert labels.shape == (1797,) and labels.dtype == jnp.int32
    np.testing.assert_allclose(images, (raw.data - 8.0) / 8.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(labels, raw.target)
    assert float(images.min()) == -1.0 and float(images.max()) == 1.0


def _sorted_rows(images, labels):
    rows = np.concatenate([np.asarray(images, float), np.asarray(labels, float)[:, None]], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


def test_digits_split_is_a_stratified_partition():
    train, test, everything = data.digits("train"), data.digits("test"), data.digits("all")
    assert train.images.shape == (1437, 64) and test.images.shape == (360, 64)
    for split in (train, test):
        assert split.images.dtype == jnp.float32 and split.labels.dtype == jnp.int32
        assert float(split.images.min()) >= -1.0 and float(split.images.max()) <= 1.0
    # train ∪ test is the whole data set, as a multiset of (image, label) rows
    union = _sorted_rows(np.concatenate([train.images, test.images]), np.concatenate([train.labels, test.labels]))
    np.testing.assert_array_equal(union, _sorted_rows(*everything))
    # stratified: every class is split in the 80/20 proportion (up to rounding)
    total = np.bincount(np.asarray(everything.labels), minlength=10)
    held_out = np.bincount(np.asarray(test.labels), minlength=10)
    assert np.all(np.abs(held_out - 0.2 * total) <= 1)


def test_digits_split_is_deterministic_and_seeded():
    a, b = data.digits("test"), data.digits("test")
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.labels, b.labels)
    other = data.digits("test", seed=1)
    assert not np.array_equal(a.images, other.images)
    assert data.digits("test", test_fraction=0.5).images.shape == (899, 64)


@pytest.mark.parametrize("kwargs", [{"split": "valid"}, {"test_fraction": 0.0}, {"test_fraction": 1.5}])
def test_digits_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        data.digits(**kwargs)


# ---------------------------------------------------------------------------------------------
# sampler.


def test_sampler_draws_rows_with_replacement():
    rows = jnp.arange(10.0)[:, None] * jnp.ones((1, 3))
    sample = data.sampler(rows)
    draws = sample(jax.random.key(0), 5000)  # with replacement: far more draws than rows
    assert draws.shape == (5000, 3) and draws.dtype == rows.dtype
    draws = np.asarray(draws)
    np.testing.assert_array_equal(draws, draws[:, :1] * np.ones((1, 3)))  # whole rows
    counts = np.bincount(draws[:, 0].astype(int), minlength=10)
    assert counts.sum() == 5000 and np.all(np.abs(counts - 500) <= 5 * math.sqrt(5000 * 0.1 * 0.9))


def test_sampler_jit_and_vmap():
    images = data.digits("train").images
    sample = data.sampler(images)
    keys = jax.random.split(jax.random.key(4), 3)
    batch = jax.jit(jax.vmap(lambda k: sample(k, 16)))(keys)
    assert batch.shape == (3, 16, 64)
    np.testing.assert_array_equal(batch[1], sample(keys[1], 16))
    rows = {tuple(r) for r in np.asarray(images)}
    assert all(tuple(r) in rows for r in np.asarray(batch).reshape(-1, 64))


def test_sampler_rejects_empty_data():
    with pytest.raises(ValueError, match="at least one row"):
        data.sampler(jnp.zeros((0, 2)))


def _bilinear(n_in, n_out):
    """The ``(n_out, n_in)`` matrix of 1-D linear interpolation with half-pixel centres, edges held constant."""
    matrix = np.zeros((n_out, n_in))
    for i in range(n_out):
        c = min(max((i + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1.0)
        lo = math.floor(c)
        hi = min(lo + 1, n_in - 1)
        matrix[i, lo] += 1 - (c - lo)
        matrix[i, hi] += c - lo
    return matrix


@pytest.mark.parametrize("size", [28, 32])
def test_digits_upsampled_to_nhwc_images(size):
    """``digits(size=s)``: each 8×8 image interpolated bilinearly (separable, computed here by hand) to s×s×1."""
    flat, labels = data.digits("test")
    images, same_labels = data.digits("test", size=size)
    assert images.shape == (360, size, size, 1) and images.dtype == jnp.float32
    np.testing.assert_array_equal(same_labels, labels)
    m = _bilinear(8, size)
    expected = np.einsum("ij,njk,lk->nil", m, np.asarray(flat, np.float64).reshape(-1, 8, 8), m)
    np.testing.assert_allclose(images[..., 0], expected, atol=1e-5)
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    np.testing.assert_array_equal(data.digits("test", size=8).images, np.asarray(flat).reshape(-1, 8, 8, 1))


@pytest.mark.parametrize("size", [7, 28.0, True])
def test_digits_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="size must be None"):
        data.digits(size=size)
