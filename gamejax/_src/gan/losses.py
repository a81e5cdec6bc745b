"""GAN objectives as two-player games: ``x`` is the generator, ``y`` the discriminator.

Every objective is written in gamejax's sign convention (docs/design.md §1): each player
*minimizes* its own loss. A :class:`GANLoss` holds the two losses as functions of the two
networks (plain callables) and a :class:`~gamejax._src.gan.batches.GANBatch`; :func:`game` turns it
into a :class:`gamejax.Game` over ``Players(x=generator_params, y=discriminator_params)``. The
gradient penalties that wrap these objectives are in :mod:`gamejax._src.gan.penalties`.

Notation in the docstrings: ``D`` returns logits (or critic values), ``σ`` is the logistic
sigmoid, ``E`` the mean over the batch, ``x ~ batch.real`` and ``G(z)`` with ``z ~ batch.noise``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gamejax._src.core import Game, general_sum, zero_sum
from gamejax._src.gan.batches import GANBatch, _check_batch


class GANLoss(NamedTuple):
    """How a GAN objective splits into the two players' losses.

    Each loss is ``fn(generator, discriminator, batch) -> scalar``, where ``generator(noise)``
    returns a fake batch, ``discriminator(x)`` returns ``(B,)`` or ``(B, 1)`` logits (or critic
    values), and ``batch`` is a :class:`GANBatch`. The networks are plain callables: Flax NNX
    modules, or closures over params (as :func:`game` builds them).

    Attributes:
      generator: ``loss_x``, minimized by the generator.
      discriminator: ``loss_y``, minimized by the discriminator.
      zero_sum: ``True`` when ``discriminator == -generator`` (one backward pass serves both).
      name: a label for tables and plots.
    """

    generator: Callable[..., jax.Array]
    discriminator: Callable[..., jax.Array]
    zero_sum: bool
    name: str


# ---------------------------------------------------------------------------------------------
# Helpers


def _logits(discriminator: Callable, x: jax.Array, what: str) -> jax.Array:
    """``discriminator(x)`` as a ``(B,)`` array, or a ``ValueError`` naming the shape it returned."""
    n = jnp.shape(x)[0] if jnp.ndim(x) else None
    out = discriminator(x)
    shape = jnp.shape(out)
    if n is None or shape not in ((n,), (n, 1)):
        raise ValueError(
            f"The discriminator must return one logit per sample, of shape (B,) or (B, 1) with B = {n} "
            f"(the leading axis of its input); on {what} of shape {jnp.shape(x)} it returned shape {shape}. "
            "Reduce the other axes inside the discriminator (e.g. a final Dense(1) after flattening)."
        )
    if not jnp.issubdtype(jnp.result_type(out), jnp.floating):
        raise ValueError(f"The discriminator must return floating-point logits; got dtype {jnp.result_type(out)}.")
    return jnp.reshape(out, (n,))


def _scores(generator: Callable, discriminator: Callable, batch: GANBatch) -> tuple[jax.Array, jax.Array]:
    """``(D(x), D(G(z)))``, each of shape ``(B,)``."""
    _check_batch(batch)
    return _logits(discriminator, batch.real, "the real data"), _logits(
        discriminator, generator(batch.noise), "the generator's samples"
    )


def _check_loss(loss: Any, where: str) -> None:
    if not isinstance(loss, GANLoss):
        hint = " (call it: e.g. gj.gan.wgan(), not gj.gan.wgan)" if callable(loss) else ""
        raise TypeError(f"{where}: loss must be a gj.gan.GANLoss{hint}; got {type(loss).__name__}.")


# ---------------------------------------------------------------------------------------------
# Objectives


def saturating() -> GANLoss:
    """The original minimax GAN objective (zero-sum).

    .. math::  f(G, D) = E_x \\log σ(D(x)) + E_z \\log(1 − σ(D(G(z))))

    The generator minimizes ``f`` and the discriminator maximizes it, so in gamejax's
    convention ``loss_x = f`` and ``loss_y = −f`` (both are the full ``f``; its real-data term
    is a constant for the generator). ``log σ(l)`` and ``log(1 − σ(l)) = log σ(−l)`` are
    computed with ``jax.nn.log_sigmoid``, stable for logits of any size.

    The generator's gradient vanishes when ``D`` confidently rejects the fakes (the
    "saturation" that :func:`non_saturating` avoids).

    Returns:
      A :class:`GANLoss` with ``zero_sum=True``.

    Example:
      >>> import gamejax as gj
      >>> loss = gj.gan.saturating()

    References:
      Goodfellow et al, `Generative Adversarial Nets <https://arxiv.org/abs/1406.2661>`_, 2014 (eq. 1).
    """

    def f(generator: Callable, discriminator: Callable, batch: GANBatch) -> jax.Array:
        real, fake = _scores(generator, discriminator, batch)
        return jnp.mean(jax.nn.log_sigmoid(real)) + jnp.mean(jax.nn.log_sigmoid(-fake))

    def neg_f(generator: Callable, discriminator: Callable, batch: GANBatch) -> jax.Array:
        return -f(generator, discriminator, batch)

    return GANLoss(generator=f, discriminator=neg_f, zero_sum=True, name="saturating GAN")


def non_saturating() -> GANLoss:
    """The non-saturating GAN (general-sum).

    .. math::  loss_x = −E_z \\log σ(D(G(z))), \\qquad
               loss_y = −E_x \\log σ(D(x)) − E_z \\log(1 − σ(D(G(z))))

    The discriminator's loss is the one of :func:`saturating` (binary cross-entropy with real
    labelled 1, fake 0); the generator instead maximizes the log-probability that its samples
    are called real, which has strong gradients early in training.

    Returns:
      A :class:`GANLoss` with ``zero_sum=False``.

    Example:
      >>> import gamejax as gj
      >>> loss = gj.gan.non_saturating()

    References:
      Goodfellow et al, `Generative Adversarial Nets <https://arxiv.org/abs/1406.2661>`_, 2014 (§3).
    """

    def generator_loss(generator: Callable, discriminator: Callable, batch: GANBatch) -> jax.Array:
        _check_batch(batch)
        fake = _logits(discriminator, generator(batch.noise), "the generator's samples")
        return -jnp.mean(jax.nn.log_sigmoid(fake))

    def discriminator_loss(generator: Callable, discriminator: Callable, batch: GANBatch) -> jax.Array:
        real, fake = _scores(generator, discriminator, batch)
        return -jnp.mean(jax.nn.log_sigmoid(real)) - jnp.mean(jax.nn.log_sigmoid(-fake))

    return GANLoss(generator_loss, discriminator_loss, zero_sum=False, name="non-saturating GAN")


def wgan() -> GANLoss:
    """The Wasserstein GAN objective (zero-sum); ``D`` is the critic.

    .. math::  f(G, D) = E_x D(x) − E_z D(G(z))

    The critic maximizes ``f`` (real scores up, fake scores down); the generator minimizes
    it, i.e. pushes the critic's scores of its samples up. ``loss_x = f``, ``loss_y = −f``.
    The critic must be kept (roughly) 1-Lipschitz, e.g. with :func:`wgan_gp`.

    Returns:
      A :class:`GANLoss` with ``zero_sum=True``.

    Example:
      >>> import gamejax as gj
      >>> loss = gj.gan.wgan()

    References:
      Arjovsky et al, `Wasserstein GAN <https://arxiv.org/abs/1701.07875>`_, 2017.
    """

    def f(generator: Callable, discriminator: Callable, batch: GANBatch) -> jax.Array:
        real, fake = _scores(generator, discriminator, batch)
        return jnp.mean(real) - jnp.mean(fake)

    def neg_f(generator: Callable, discriminator: Callable, batch: GANBatch) -> jax.Array:
        return -f(generator, discriminator, batch)

    return GANLoss(generator=f, discriminator=neg_f, zero_sum=True, name="WGAN")


def hinge() -> GANLoss:
    """The hinge GAN loss (general-sum).

    .. math::  loss_x = −E_z D(G(z)), \\qquad
               loss_y = E_x \\max(0, 1 − D(x)) + E_z \\max(0, 1 + D(G(z)))

    Returns:
      A :class:`GANLoss` with ``zero_sum=False``.

    Example:
      >>> import gamejax as gj
      >>> loss = gj.gan.hinge()

    References:
      Lim & Ye, `Geometric GAN <https://arxiv.org/abs/1705.02894>`_, 2017;
      Miyato et al, `Spectral Normalization for Generative Adversarial Networks
      <https://arxiv.org/abs/1802.05957>`_, 2018.
    """

    def generator_loss(generator: Callable, discriminator: Callable, batch: GANBatch) -> jax.Array:
        _check_batch(batch)
        return -jnp.mean(_logits(discriminator, generator(batch.noise), "the generator's samples"))

    def discriminator_loss(generator: Callable, discriminator: Callable, batch: GANBatch) -> jax.Array:
        real, fake = _scores(generator, discriminator, batch)
        return jnp.mean(jax.nn.relu(1.0 - real)) + jnp.mean(jax.nn.relu(1.0 + fake))

    return GANLoss(generator_loss, discriminator_loss, zero_sum=False, name="hinge GAN")


# ---------------------------------------------------------------------------------------------
# Games


def game(
    loss: GANLoss,
    generator_apply: Callable[[Any, jax.Array], jax.Array],
    discriminator_apply: Callable[[Any, jax.Array], jax.Array],
    *,
    name: str | None = None,
) -> Game:
    """The GAN as a :class:`gamejax.Game` over ``Players(x=generator_params, y=discriminator_params)``.

    ``loss_x(gp, dp, batch) = loss.generator(G, D, batch)`` and likewise ``loss_y``, with
    ``G = generator_apply(gp, ·)`` and ``D = discriminator_apply(dp, ·)``. A zero-sum loss
    gives :func:`gamejax.zero_sum` (one backward pass for both players), any other
    :func:`gamejax.general_sum`. The game's batch is a :class:`GANBatch`.

    Args:
      loss: a :class:`GANLoss`, e.g. :func:`wgan_gp`.
      generator_apply: ``generator_apply(params, noise) -> fake batch``, pure.
      discriminator_apply: ``discriminator_apply(params, x) -> (B,) or (B, 1)`` logits, pure.
      name: a label for tables and plots (default: ``loss.name``).

    Returns:
      A :class:`gamejax.Game`.

    Example:
      >>> import jax, jax.numpy as jnp, gamejax as gj
      >>> G = lambda w, z: z @ w
      >>> D = lambda v, x: x @ v
      >>> game = gj.gan.game(gj.gan.wgan(), G, D)
      >>> batch = gj.gan.GANBatch(jnp.ones((4, 2)), jnp.ones((4, 3)), jax.random.key(0))
      >>> field = game.field(gj.Players(jnp.ones((3, 2)), jnp.ones(2)), batch)
    """
    _check_loss(loss, "game")
    for what, fn in (("generator_apply", generator_apply), ("discriminator_apply", discriminator_apply)):
        if not callable(fn):
            raise TypeError(f"{what} must be a callable {what}(params, inputs); got {type(fn).__name__}.")

    def networks(gp: Any, dp: Any) -> tuple[Callable, Callable]:
        return (lambda noise: generator_apply(gp, noise)), (lambda x: discriminator_apply(dp, x))

    def loss_x(gp: Any, dp: Any, batch: GANBatch) -> jax.Array:
        return loss.generator(*networks(gp, dp), batch)

    def loss_y(gp: Any, dp: Any, batch: GANBatch) -> jax.Array:
        return loss.discriminator(*networks(gp, dp), batch)

    label = loss.name if name is None else name
    if loss.zero_sum:
        return zero_sum(loss_x, name=label)
    return general_sum(loss_x, loss_y, name=label)
