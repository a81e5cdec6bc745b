"""Flax NNX adapter: ``pair = gj.flax.split(generator, discriminator)``; ``pair.game(loss)``.

See :func:`split` and, for how BatchNorm statistics and spectral-norm vectors are threaded
through methods that evaluate the game several times per step, :class:`gamejax.StatefulGame`.
"""

from gamejax._src.gan.flax_nnx import ModulePair, split
from gamejax._src.gan.models import MLP

__all__ = ["MLP", "ModulePair", "split"]
