"""Sample-quality metrics of the GAN experiments.

- :func:`wasserstein1`: the exact Wasserstein-1 distance between two point sets (averaging paper, Table 1).
- :func:`mode_metrics`: high-quality fraction and modes covered for mixtures of Gaussians.
- :func:`frechet_distance`, :func:`inception_score`: FID and IS; :func:`digits_scores` computes both in
  the feature space of the small digits classifier of :mod:`gamejax._src.gan.classifier`.

Everything except :func:`wasserstein1` (an exact assignment on the host) and the one-time training of
the classifier is pure JAX and runs inside ``jax.jit``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.typing import ArrayLike

from gamejax._src.core import checks
from gamejax._src.gan.classifier import DigitsClassifier, digits_classifier
from gamejax._src.gan.data import digits

# --------------------------------------------------------------------------------------------------
# Wasserstein-1


def _point_set(name: str, value: ArrayLike) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of points with shape (n, d); got shape {array.shape}.")
    if array.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one point; got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite; it holds {np.size(array) - np.isfinite(array).sum()} NaN/inf values.")
    return array


def wasserstein1(a: ArrayLike, b: ArrayLike) -> float:
    """The exact Wasserstein-1 distance between two equal-size empirical point sets.

    With uniform weights ``1/n`` on both sets, an optimal transport plan is a permutation, so

    ``W₁(a, b) = min_σ (1/n) Σᵢ ‖aᵢ − b_σ(i)‖₂``.

    It is solved exactly by ``scipy.optimize.linear_sum_assignment`` on the host (2048 × 2048
    points take about a second). This is what the averaging paper reports for the 16-Gaussian grid
    (Table 1: W₁ between 2048 generated and 2048 real samples, computed with POT's exact ``emd``).

    Args:
      a: ``(n, d)`` points.
      b: ``(n, d)`` points (same ``n`` and ``d``).

    Returns:
      The distance, a Python float.

    Raises:
      ValueError: if an input is not 2-D, the sizes or dimensions differ, or a value is not finite.

    Example:
      >>> wasserstein1([[0.0], [1.0]], [[3.0], [2.0]])
      2.0

    References:
      Yazıcı et al, `The Unusual Effectiveness of Averaging in GAN Training
      <https://arxiv.org/abs/1806.04498>`_, ICLR 2019, §4.1 and Table 1.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    a, b = _point_set("a", a), _point_set("b", b)
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape (n, d): equal numbers of points of equal dimension; "
            f"got {a.shape} and {b.shape}. Draw the same number of samples from both distributions."
        )
    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


# --------------------------------------------------------------------------------------------------
# Mixtures of Gaussians


def mode_metrics(
    samples: ArrayLike,
    centers: ArrayLike,
    std: float | jax.Array,
    threshold: float = 3.0,
    min_fraction: float = 0.2,
) -> dict[str, jax.Array]:
    """The standard mixture-of-Gaussians GAN metrics: sample quality and mode coverage.

    Every sample is assigned to its nearest mode. Following VEEGAN (Srivastava et al. 2017, §5.1) and
    the unrolled-GAN experiments it builds on, a sample is **high quality** if it lies within
    ``threshold · std`` (3 standard deviations) of its nearest mode, and the number of modes that
    receive high-quality samples is reported. The criterion for a mode to count is an argument: a mode
    is **covered** if it receives at least ``min_fraction`` of its uniform share ``n/m`` of
    high-quality samples (and at least one). The default ``min_fraction = 0.2`` follows PacGAN's 2-D
    grid experiments (Lin et al. 2018), where a mode is lost when it receives fewer than 20 of the 100
    samples it would receive in expectation; ``min_fraction=0`` counts every mode that receives a
    single high-quality sample.

    Args:
      samples: ``(n, d)`` generated points.
      centers: ``(m, d)`` mode centres (e.g. ``gj.data.ring().centers``).
      std: the standard deviation of every mode, ``> 0`` (may be traced).
      threshold: the high-quality radius, in standard deviations, ``> 0``.
      min_fraction: the fraction of a mode's uniform share of samples it must receive to count as
        covered, ``>= 0``.

    Returns:
      A dict of scalars:

      - ``high_quality``: the fraction of samples within ``threshold · std`` of their nearest mode.
      - ``modes_covered``: the number of covered modes (int32).
      - ``mode_kl``: ``KL(p ‖ uniform)`` of the histogram ``p`` of all samples over their nearest
        modes (0 for perfectly balanced modes, ``log m`` for total collapse onto one mode), the
        "reverse KL" of PacGAN.

    Example:
      >>> mix = gj.data.ring()
      >>> metrics = mode_metrics(mix.sample(jax.random.key(0), 2000), mix.centers, mix.std)
      >>> int(metrics["modes_covered"])
      8

    References:
      Srivastava et al, `VEEGAN: Reducing Mode Collapse in GANs using Implicit Variational Learning
      <https://arxiv.org/abs/1705.07761>`_, 2017, §5.1.
      Lin et al, `PacGAN: The power of two samples in generative adversarial networks
      <https://arxiv.org/abs/1712.04086>`_, 2018.
    """
    checks.check_number("std", std, low=0.0, low_open=True, high=math.inf, high_open=True)
    checks.check_number("threshold", threshold, low=0.0, low_open=True, high=math.inf, high_open=True)
    checks.check_number("min_fraction", min_fraction, low=0.0, high=math.inf, high_open=True)
    samples, centers = jnp.asarray(samples), jnp.asarray(centers)
    if samples.ndim != 2 or centers.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(
            f"samples must have shape (n, d) and centers shape (m, d) with the same d; "
            f"got {samples.shape} and {centers.shape}."
        )
    n, m = samples.shape[0], centers.shape[0]
    if n == 0 or m == 0:
        raise ValueError(f"samples and centers must be non-empty; got {samples.shape} and {centers.shape}.")
    squared = jnp.sum((samples[:, None, :] - centers[None, :, :]) ** 2, axis=-1)  # (n, m)
    nearest = jnp.argmin(squared, axis=1)
    distance = jnp.sqrt(jnp.min(squared, axis=1))
    high_quality = distance <= threshold * std
    assigned = jax.nn.one_hot(nearest, m, dtype=jnp.float32)  # (n, m)
    hq_counts = jnp.sum(assigned * high_quality[:, None].astype(jnp.float32), axis=0)
    covered = (hq_counts >= min_fraction * n / m) & (hq_counts > 0)
    histogram = jnp.sum(assigned, axis=0) / n
    mode_kl = jnp.sum(jnp.where(histogram > 0, histogram * jnp.log(jnp.where(histogram > 0, histogram * m, 1.0)), 0.0))
    return {
        "high_quality": jnp.mean(high_quality.astype(jnp.float32)),
        "modes_covered": jnp.sum(covered, dtype=jnp.int32),
        "mode_kl": mode_kl,
    }


# --------------------------------------------------------------------------------------------------
# Fréchet distance and inception score


def _features(name: str, value: ArrayLike) -> jax.Array:
    array = jnp.asarray(value)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(f"{name} must have shape (n, d) with n ≥ 2 (a covariance is estimated); got {array.shape}.")
    if not jnp.issubdtype(array.dtype, jnp.floating):
        array = array.astype(jnp.float32)
    return array


def _moments(features: jax.Array) -> tuple[jax.Array, jax.Array]:
    mean = jnp.mean(features, axis=0)
    centred = features - mean[None, :]
    return mean, centred.T @ centred / (features.shape[0] - 1)


def _sqrt_psd(matrix: jax.Array) -> jax.Array:
    eigenvalues, eigenvectors = jnp.linalg.eigh(matrix)
    root = jnp.sqrt(jnp.clip(eigenvalues, 0.0, None))
    return (eigenvectors * root[None, :]) @ eigenvectors.T


def frechet_distance(features_a: ArrayLike, features_b: ArrayLike) -> jax.Array:
    """The Fréchet distance between Gaussians fitted to two feature sets (FID in any feature space).

    ``d² = ‖μa − μb‖² + tr(Σa + Σb − 2 (Σa Σb)^{1/2})``, with sample means and unbiased sample
    covariances (``ddof=1``, as ``np.cov``). ``tr (Σa Σb)^{1/2}`` is the sum of the square roots of
    the eigenvalues of the symmetric PSD matrix ``Σa^{1/2} Σb Σa^{1/2}`` (similar to ``Σa Σb``). It is
    computed from symmetric eigendecompositions only, as the sum of the singular values of
    ``Σa^{1/2} Σb^{1/2}`` (their squares are those eigenvalues), the square roots ``Σ^{1/2}`` coming
    from ``eigh`` with slightly negative rounding-error eigenvalues clipped to 0; summing singular
    values instead of square roots of eigenvalues keeps rounding errors from being amplified
    (in float32, two identical 128-d feature sets score ~1e-6·tr Σ instead of ~1e-4·tr Σ). The
    computation runs in float64 when ``jax_enable_x64`` is on, else in float32. A result that
    rounding makes negative is clipped to 0.

    Warning:
      On CPU, jaxlib 0.10's LAPACK ``eigh`` can deadlock when one compiled program runs two
      *vmapped* ``eigh`` calls concurrently on a 2-core machine (e.g. this function twice in a
      metrics function of a vmapped :func:`gamejax.fit`). Record the feature moments in the
      compiled run and compute the distance on the host, or call it once per program, as
      ``benchmarks/digits_gan.py`` does.

    Args:
      features_a: ``(n, d)`` features, ``n ≥ 2``.
      features_b: ``(k, d)`` features, ``k ≥ 2``.

    Returns:
      A scalar array (jittable).

    Example:
      >>> a = jax.random.normal(jax.random.key(0), (500, 4))
      >>> round(float(frechet_distance(a, a + 1.0)), 4)  # the means differ by (1, 1, 1, 1)
      4.0

    References:
      Heusel et al, `GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
      Equilibrium <https://arxiv.org/abs/1706.08500>`_, 2017 (FID). Used by the averaging paper
      (§4, Table 2).
    """
    a, b = _features("features_a", features_a), _features("features_b", features_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features_a and features_b must have the same dimension d; got {a.shape} and {b.shape}.")
    dtype = jnp.promote_types(jnp.result_type(a, b), jax.dtypes.canonicalize_dtype(jnp.float64))
    mean_a, cov_a = _moments(a.astype(dtype))
    mean_b, cov_b = _moments(b.astype(dtype))
    # The singular values of Σa^½ Σb^½ are the square roots of the eigenvalues of Σa^½ Σb Σa^½:
    # summing them avoids taking square roots of rounding errors (which costs float32 ~1e-3·tr Σ).
    trace_sqrt = jnp.sum(jnp.linalg.svd(_sqrt_psd(cov_a) @ _sqrt_psd(cov_b), compute_uv=False))
    distance = jnp.sum((mean_a - mean_b) ** 2) + jnp.trace(cov_a) + jnp.trace(cov_b) - 2.0 * trace_sqrt
    return jnp.maximum(distance, 0.0)


def inception_score(logits: ArrayLike) -> jax.Array:
    """The inception score ``exp(E_x KL(p(y|x) ‖ p(y)))`` of a classifier's logits.

    ``p(y|x) = softmax(logits)`` per sample and ``p(y)`` is their mean over the samples. It lies in
    ``[1, K]`` for ``K`` classes: ``K`` when predictions are confident and spread evenly over the
    classes, 1 when every sample gets the same prediction. Computed on all samples at once (no
    splits), in log space.

    Args:
      logits: ``(n, K)`` unnormalized log-probabilities.

    Returns:
      A scalar array (jittable).

    Example:
      >>> round(float(inception_score(100.0 * jnp.eye(10))), 4)  # confident and evenly spread
      10.0

    References:
      Salimans et al, `Improved Techniques for Training GANs <https://arxiv.org/abs/1606.03498>`_,
      2016, §4. Used by the averaging paper (§4, Table 2).
    """
    logits = jnp.asarray(logits)
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 1:
        raise ValueError(f"logits must have shape (n, K) with n, K ≥ 1; got {logits.shape}.")
    log_p = jax.nn.log_softmax(logits, axis=1)
    log_marginal = jax.nn.logsumexp(log_p, axis=0) - math.log(logits.shape[0])
    kl = jnp.sum(jnp.exp(log_p) * (log_p - log_marginal[None, :]), axis=1)
    return jnp.exp(jnp.mean(kl))


# --------------------------------------------------------------------------------------------------
# Scores of generated digits


def digits_scores(images: ArrayLike, reference: ArrayLike | None = None) -> dict[str, jax.Array]:
    """FID and inception score of generated digits, in the feature space of :func:`digits_classifier`.

    An evaluation entry point: it loads the classifier (training it the first time, see
    :func:`digits_classifier`) and computes both scores as one compiled program per input shape.
    For scale (measured against the default reference): the 1,437 training images score
    ``frechet`` ≈ 3.3 and ``inception_score`` ≈ 9.97; 360 images of uniform noise on ``[-1, 1]``
    score ``frechet`` ≈ 870 and ``inception_score`` ≈ 4.2.

    Args:
      images: ``(n, 64)`` generated images in ``[-1, 1]`` (``n ≥ 2``).
      reference: ``(k, 64)`` real images to compare with; defaults to ``gj.data.digits("test")``
        (360 images).

    Returns:
      ``{"frechet": ..., "inception_score": ...}``, scalar arrays: the Fréchet distance between the
      classifier's penultimate-layer features of ``images`` and ``reference`` (lower is better) and
      the inception score of the classifier's logits on ``images`` (higher is better, at most 10).

    Example:
      >>> scores = digits_scores(gj.data.digits("train").images)
      >>> sorted(scores)
      ['frechet', 'inception_score']
    """
    classifier = digits_classifier()
    images = DigitsClassifier._images(images)
    reference = digits("test").images if reference is None else DigitsClassifier._images(reference)
    if images.ndim != 2 or reference.ndim != 2:
        raise ValueError(f"images and reference must have shape (n, 64); got {images.shape} and {reference.shape}.")
    return _scores(classifier._graphdef, classifier.params, images, reference)


@functools.partial(jax.jit, static_argnums=0)
def _scores(graphdef: nnx.GraphDef, params: nnx.State, images: jax.Array, reference: jax.Array) -> dict[str, jax.Array]:
    model = nnx.merge(graphdef, params)
    return {
        "frechet": frechet_distance(model.features(images), model.features(reference)),
        "inception_score": inception_score(model(images)),
    }
