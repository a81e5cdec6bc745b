"""Data sets of the GAN experiments (``mix = gj.data.ring(); x = mix.sample(key, 128)``) and your ``images``."""

from gamejax._src.gan.data import (
    Digits,
    Mixture,
    digits,
    grid,
    ring,
    sampler,
)
from gamejax._src.gan.images import images

__all__ = [
    "Digits",
    "Mixture",
    "digits",
    "grid",
    "images",
    "ring",
    "sampler",
]
