"""Data sets of the GAN experiments: ``mix = gj.data.ring(); x = mix.sample(key, 128)``."""

from gamejax._src.gan.data import (
    Digits,
    Mixture,
    digits,
    grid,
    ring,
    sampler,
)

__all__ = [
    "Digits",
    "Mixture",
    "digits",
    "grid",
    "ring",
    "sampler",
]
