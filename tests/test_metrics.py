"""gj.metrics against brute force, closed forms and independent numpy/scipy computations."""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gamejax import data, metrics
from gamejax._src.gan import classifier as classifier_impl

# ---------------------------------------------------------------------------------------------
# wasserstein1


def brute_force_w1(a, b):
    n = len(a)
    return min(np.mean([np.linalg.norm(a[i] - b[p[i]]) for i in range(n)]) for p in itertools.permutations(range(n)))


@pytest.mark.parametrize("n, d", [(1, 2), (2, 1), (3, 2), (4, 3), (5, 2), (6, 1), (6, 2)])
def test_wasserstein1_equals_brute_force(n, d):
    rng = np.random.default_rng(n * 10 + d)
    for _ in range(3):
        a, b = rng.normal(size=(n, d)), rng.normal(size=(n, d)) * 2.0 + 0.3
        w = metrics.wasserstein1(a, b)
        assert isinstance(w, float)
        np.testing.assert_allclose(w, brute_force_w1(a, b), rtol=1e-12)
        np.testing.assert_allclose(metrics.wasserstein1(b, a), w, rtol=1e-12)


def test_wasserstein1_zero_for_identical_and_permuted_sets():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 3))
    assert metrics.wasserstein1(a, a) == 0.0
    assert metrics.wasserstein1(a, a[rng.permutation(50)]) == 0.0


def test_wasserstein1_of_a_translation_is_the_shift():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 1))
    np.testing.assert_allclose(metrics.wasserstein1(a, a + 0.7), 0.7, rtol=1e-12)
    np.testing.assert_allclose(metrics.wasserstein1(a - 2.5, a), 2.5, rtol=1e-12)


def test_wasserstein1_2048_points_is_fast_and_exact():
    """W₁(μ, μ + c) = ‖c‖ in any dimension (mean bound below, identity coupling above)."""
    a = np.asarray(data.grid().sample(jax.random.key(0), 2048), float)
    shift = np.array([0.03, -0.04])
    start = time.perf_counter()
    w = metrics.wasserstein1(a, a + shift)
    assert time.perf_counter() - start < 10.0
    np.testing.assert_allclose(w, 0.05, rtol=1e-9)


@pytest.mark.parametrize(
    "a, b, match",
    [
        (np.zeros((3, 2)), np.zeros((4, 2)), r"same shape.*\(3, 2\) and \(4, 2\)"),
        (np.zeros((3, 2)), np.zeros((3, 3)), r"same shape.*\(3, 2\) and \(3, 3\)"),
        (np.zeros(3), np.zeros(3), r"a must be a 2-D array of points with shape \(n, d\)"),
        (np.zeros((3, 2)), np.zeros((3, 2, 1)), r"b must be a 2-D array"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "at least one point"),
        (np.array([[0.0, np.nan]]), np.zeros((1, 2)), "a must be finite.*1 NaN/inf"),
        (np.zeros((2, 2)), np.array([[np.inf, 0.0], [0.0, -np.inf]]), "b must be finite.*2 NaN/inf"),
    ],
)
def test_wasserstein1_rejects_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        metrics.wasserstein1(a, b)


# ---------------------------------------------------------------------------------------------
# mode_metrics (compiled: one XLA program per shape is cheaper than eager op-by-op compilation)

mode_metrics = jax.jit(metrics.mode_metrics)


def at_modes(centers, counts):
    return jnp.concatenate([jnp.repeat(centers[k][None, :], c, axis=0) for k, c in enumerate(counts) if c])


def test_mode_metrics_three_of_eight_modes():
    mix = data.ring()
    samples = at_modes(mix.centers, [0, 40, 0, 40, 0, 0, 40, 0])
    out = mode_metrics(samples, mix.centers, mix.std)
    assert set(out) == {"high_quality", "modes_covered", "mode_kl"}
    assert float(out["high_quality"]) == 1.0
    assert int(out["modes_covered"]) == 3 and out["modes_covered"].dtype == jnp.int32
    np.testing.assert_allclose(out["mode_kl"], math.log(8 / 3), rtol=1e-6)  # Σ ⅓·log(⅓·8)


def test_mode_metrics_far_samples_are_low_quality():
    mix = data.ring()
    far = jnp.zeros((100, 2))  # the origin: distance 1 = 20σ from every mode
    out = mode_metrics(far, mix.centers, mix.std)
    assert float(out["high_quality"]) == 0.0 and int(out["modes_covered"]) == 0


def test_mode_metrics_known_mix():
    mix = data.ring()
    samples = jnp.concatenate([at_modes(mix.centers, [100] * 8), jnp.full((200, 2), 5.0)])
    out = mode_metrics(samples, mix.centers, mix.std)
    np.testing.assert_allclose(out["high_quality"], 800 / 1000, rtol=1e-6)
    assert int(out["modes_covered"]) == 8


def test_mode_metrics_coverage_criterion():
    """Mode 7 gets 10 HQ samples, its uniform share is 710/8 = 88.75: covered iff 10 ≥ f·88.75."""
    mix = data.ring()
    samples = at_modes(mix.centers, [100] * 7 + [10])
    covered = {
        f: int(mode_metrics(samples, mix.centers, mix.std, min_fraction=f)["modes_covered"])
        for f in [0.0, 0.1, 0.2, 1.0]
    }
    assert covered == {0.0: 8, 0.1: 8, 0.2: 7, 1.0: 7}


def test_mode_metrics_threshold():
    centers = jnp.array([[0.0, 0.0], [10.0, 0.0]])
    samples = jnp.array([[0.25, 0.0], [10.0, -0.25]])  # 2.5σ from their modes, σ = 0.1
    assert float(mode_metrics(samples, centers, 0.1)["high_quality"]) == 1.0
    assert float(mode_metrics(samples, centers, 0.1, threshold=2.0)["high_quality"]) == 0.0


def test_mode_metrics_of_real_samples():
    """For 2-D isotropic Gaussians, P(‖x − μ‖ ≤ 3σ) = 1 − exp(−9/2) (a χ₂ radius)."""
    mix = data.ring()
    n = 20_000
    samples = mix.sample(jax.random.key(0), n)
    out = mode_metrics(samples, mix.centers, mix.std)
    p = 1 - math.exp(-4.5)
    assert abs(float(out["high_quality"]) - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert int(out["modes_covered"]) == 8
    assert 0.0 <= float(out["mode_kl"]) < 0.01


def test_mode_metrics_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(n, d\).*\(m, d\)"):
        metrics.mode_metrics(jnp.zeros((5, 3)), jnp.zeros((8, 2)), 0.1)


# ---------------------------------------------------------------------------------------------
# frechet_distance and inception_score


def frechet_numpy(a, b):
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a + cov_b - 2 * np.real(root)))


def test_frechet_distance_matches_scipy_and_the_closed_form():
    rng = np.random.default_rng(0)
    n, mean_a, mean_b = 20_000, np.array([0.0, 1.0, -2.0]), np.array([0.5, 1.0, 0.0])
    std_a, std_b = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.5])
    a = mean_a + std_a * rng.normal(size=(n, 3))
    b = mean_b + std_b * rng.normal(size=(n, 3))
    fd = float(metrics.frechet_distance(a, b))
    np.testing.assert_allclose(fd, frechet_numpy(a, b), rtol=1e-8)
    # population value for diagonal covariances: ‖μa − μb‖² + Σ (σa − σb)²
    np.testing.assert_allclose(fd, np.sum((mean_a - mean_b) ** 2) + np.sum((std_a - std_b) ** 2), rtol=0.03)


def test_frechet_distance_correlated_features():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) + 0.3
    np.testing.assert_allclose(metrics.frechet_distance(a, b), frechet_numpy(a, b), rtol=1e-8)
    np.testing.assert_allclose(jax.jit(metrics.frechet_distance)(b, a), frechet_numpy(a, b), rtol=1e-8)


def test_frechet_distance_zero_for_identical_sets():
    a = np.random.default_rng(2).normal(size=(100, 8))
    assert abs(float(metrics.frechet_distance(a, a))) < 1e-8
    assert abs(float(metrics.frechet_distance(a, a[::-1]))) < 1e-8


@pytest.mark.parametrize(
    "a, b, match",
    [(np.zeros((5, 2)), np.zeros((5, 3)), "same dimension"), (np.zeros((1, 2)), np.zeros((5, 2)), "n ≥ 2")],
)
def test_frechet_distance_rejects_bad_input(a, b, match):
    with pytest.raises(ValueError, match=match):
        metrics.frechet_distance(a, b)


def test_inception_score_extremes():
    k = 10
    confident_spread = 50.0 * jnp.tile(jnp.eye(k), (3, 1))  # 30 samples, 3 per class
    score = jax.jit(metrics.inception_score)  # the three inputs share one compiled program
    np.testing.assert_allclose(score(confident_spread), k, rtol=1e-6)
    all_same = 50.0 * jnp.tile(jnp.eye(k)[:1], (30, 1))
    np.testing.assert_allclose(score(all_same), 1.0, rtol=1e-9)
    np.testing.assert_allclose(score(jnp.zeros((30, k))), 1.0, rtol=1e-9)
    np.testing.assert_allclose(metrics.inception_score(all_same), 1.0, rtol=1e-9)  # eager


def test_inception_score_matches_numpy():
    logits = np.random.default_rng(3).normal(size=(64, 5)) * 2.0
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    marginal = p.mean(0)
    expected = math.exp(np.mean(np.sum(p * np.log(p / marginal), axis=1)))
    np.testing.assert_allclose(jax.jit(metrics.inception_score)(logits), expected, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# The digits classifier (trained once per test module, in a temporary cache directory).


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cache = tmp_path_factory.mktemp("gamejax_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GAMEJAX_CACHE", str(cache))
        patch.setattr(classifier_impl, "_MEMO", {})
        calls = []
        train = classifier_impl._train
        patch.setattr(classifier_impl, "_train", lambda: calls.append(1) or train())
        classifier = metrics.digits_classifier()
        assert calls == [1]
        yield cache, classifier


@pytest.fixture
def isolated(trained, monkeypatch):
    """The trained classifier's cache directory, an empty in-process memo, and training forbidden."""
    cache, classifier = trained
    monkeypatch.setenv("GAMEJAX_CACHE", str(cache))
    monkeypatch.setattr(classifier_impl, "_MEMO", {})

    def no_training():
        raise AssertionError("the classifier was retrained instead of loaded from the cache")

    monkeypatch.setattr(classifier_impl, "_train", no_training)
    return cache, classifier


def test_classifier_accuracy(trained):
    _, classifier = trained
    images, labels = data.digits("test")
    logits = classifier.logits(images)
    assert logits.shape == (360, 10) and classifier.features(images).shape == (360, 128)
    accuracy = float(np.mean(np.argmax(np.asarray(logits), axis=1) == np.asarray(labels)))
    assert accuracy >= 0.95
    assert classifier.test_accuracy == pytest.approx(accuracy)


def test_classifier_is_cached_and_reloaded(isolated):
    cache, classifier = isolated
    files = list(Path(cache).iterdir())
    assert [f.name for f in files] == ["digits_classifier_v1.npz"]  # no temporary files left behind
    loaded = metrics.digits_classifier()  # from the file: _train would raise
    assert loaded is not classifier and loaded.test_accuracy == classifier.test_accuracy
    images = data.digits("test").images[:50]
    np.testing.assert_array_equal(loaded.logits(images), classifier.logits(images))
    np.testing.assert_array_equal(loaded.features(images), classifier.features(images))
    assert metrics.digits_classifier() is loaded  # in-process memo


def test_classifier_retrains_on_a_version_mismatch(isolated, monkeypatch):
    cache, classifier = isolated
    path = Path(cache) / "digits_classifier_v1.npz"
    original = path.read_bytes()
    try:
        with np.load(path) as stored:
            fields = dict(stored)
        np.savez(path, **{**fields, "version": np.int64(0)})
        monkeypatch.setattr(classifier_impl, "_train", lambda: classifier)
        assert metrics.digits_classifier() is classifier  # retrained (here: the stub) ...
        with np.load(path) as stored:
            assert int(stored["version"]) == 1  # ... and the cache rewritten
    finally:
        path.write_bytes(original)


def test_classifier_retrains_on_a_corrupted_cache(isolated, monkeypatch):
    cache, classifier = isolated
    path = Path(cache) / "digits_classifier_v1.npz"
    original = path.read_bytes()
    try:
        path.write_bytes(original[: len(original) // 2])  # e.g. a copy interrupted half-way
        monkeypatch.setattr(classifier_impl, "_train", lambda: classifier)
        assert metrics.digits_classifier() is classifier
        with np.load(path) as stored:
            assert int(stored["version"]) == 1
    finally:
        path.write_bytes(original)


def test_classifier_warns_when_the_cache_is_not_writable(isolated, monkeypatch, tmp_path):
    _, classifier = isolated
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    monkeypatch.setenv("GAMEJAX_CACHE", str(not_a_directory))
    monkeypatch.setattr(classifier_impl, "_train", lambda: classifier)
    with pytest.warns(RuntimeWarning, match="could not cache"):
        assert metrics.digits_classifier() is classifier


def test_classifier_jit_and_shape_errors(trained):
    _, classifier = trained
    images = data.digits("test").images[:8]
    np.testing.assert_allclose(jax.jit(classifier.logits)(images), classifier.logits(images), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"\(\.\.\., 64\)"):
        classifier.logits(jnp.zeros((8, 8, 8)))


def test_digits_scores(isolated):
    test_images = data.digits("test").images
    same = metrics.digits_scores(test_images)
    assert set(same) == {"frechet", "inception_score"}
    assert abs(float(same["frechet"])) < 1e-3  # the reference is the test split itself
    real = metrics.digits_scores(data.digits("train").images[:360], reference=test_images)  # same shapes: no recompile
    noise = metrics.digits_scores(jax.random.uniform(jax.random.key(0), (360, 64), minval=-1.0, maxval=1.0))
    assert float(real["inception_score"]) > 8.0 and float(noise["inception_score"]) < float(real["inception_score"])
    assert 0.0 < float(real["frechet"]) < 0.2 * float(noise["frechet"])
