"""Flax NNX adapter: ``pair = gj.flax.split(generator, discriminator)``; ``pair.game(loss)``.

See :func:`split` and, for how BatchNorm statistics and spectral-norm vectors are threaded
through methods that evaluate the game several times per step, :class:`gamejax.StatefulGame`.
The networks: :class:`MLP`, and the lookahead paper's convolutional GANs, :class:`DCGANGenerator`
and :class:`DCGANDiscriminator` (its Table 5) and :class:`ResNetGenerator` and
:class:`ResNetDiscriminator` (its Tables 6–7, with :class:`SpectralNorm`).
"""

from gamejax._src.gan.conv_models import (
    DCGANDiscriminator,
    DCGANGenerator,
    ResNetDiscriminator,
    ResNetGenerator,
    SpectralNorm,
)
from gamejax._src.gan.flax_nnx import ModulePair, split
from gamejax._src.gan.models import MLP

__all__ = [
    "DCGANDiscriminator",
    "DCGANGenerator",
    "MLP",
    "ModulePair",
    "ResNetDiscriminator",
    "ResNetGenerator",
    "SpectralNorm",
    "split",
]
