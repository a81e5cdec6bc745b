"""GAN sample-quality metrics: ``gj.metrics.wasserstein1(fake, real)``, ``gj.metrics.mode_metrics(...)``."""

from gamejax._src.gan.classifier import DigitsClassifier, digits_classifier
from gamejax._src.gan.metrics import (
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
