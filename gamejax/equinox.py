"""Equinox adapter: ``pair = gj.equinox.split(generator, discriminator)``; ``pair.game(loss)``.

See :func:`split`: each module is partitioned as ``eqx.partition(module, eqx.is_inexact_array)``
would, the arrays are the players' params and the rest is held static. Equinox is optional
(``pip install equinox``); it is imported when :func:`split` is called.
"""

from gamejax._src.gan.equinox_modules import ModulePair, split

__all__ = ["ModulePair", "split"]
