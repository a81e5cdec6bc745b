"""GAN sample-quality metrics: ``gj.metrics.wasserstein1(fake, real)``, ``gj.metrics.mode_metrics(...)``."""

from gamejax._src.metrics import (
    DigitsClassifier,
    digits_classifier,
    digits_scores,
    frechet_distance,
    inception_score,
    mode_metrics,
    wasserstein1,
)

__all__ = [
    "DigitsClassifier",
    "digits_classifier",
    "digits_scores",
    "frechet_distance",
    "inception_score",
    "mode_metrics",
    "wasserstein1",
]
