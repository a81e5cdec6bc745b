"""GAN objectives as games: ``game = gj.gan.game(gj.gan.wgan_gp(), generator_apply, discriminator_apply)``."""

from gamejax._src.gan.batches import GANBatch, batch_sampler
from gamejax._src.gan.losses import GANLoss, game, hinge, non_saturating, saturating, wgan
from gamejax._src.gan.penalties import gradient_penalty, wgan_gp, zero_gp

__all__ = [
    "GANBatch",
    "GANLoss",
    "batch_sampler",
    "game",
    "gradient_penalty",
    "hinge",
    "non_saturating",
    "saturating",
    "wgan",
    "wgan_gp",
    "zero_gp",
]
