"""GAN objectives as two-player games: ``x`` is the generator, ``y`` the discriminator.

Every objective is written in gamejax's sign convention (DESIGN.md §1): each player
*minimizes* its own loss. A :class:`GANLoss` holds the two losses as functions of the two
networks (plain callables) and a :class:`GANBatch`; :func:`game` turns it into a
:class:`gamejax.Game` over ``Players(x=generator_params, y=discriminator_params)``.

Notation in the docstrings: ``D`` returns logits (or critic values), ``σ`` is the logistic
sigmoid, ``E`` the mean over the batch, ``x ~ batch.real`` and ``G(z)`` with ``z ~ batch.noise``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp

from gamejax._src import checks
from gamejax._src.core import Game, general_sum, zero_sum

PenaltyPoints = Literal["real", "fake", "interpolates"]
POINTS = ("real", "fake", "interpolates")


class GANBatch(NamedTuple):
    """One minibatch of a GAN game.

    Attributes:
      real: ``(B, ...)`` real data.
      noise: ``(B, noise_dim)`` generator input.
      key: PRNG key for losses that need randomness (the interpolation points of
        :func:`gradient_penalty` with ``at="interpolates"``).
    """

    real: jax.Array
    noise: jax.Array
    key: jax.Array


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


def _check_batch(batch: Any) -> None:
    if not isinstance(batch, GANBatch):
        raise TypeError(
            f"GAN losses take a gj.gan.GANBatch(real, noise, key) as batch; got {type(batch).__name__}. "
            "Build batches with gj.gan.batch_sampler(sample_real, noise_dim, batch_size)."
        )


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


def _check_weight(name: str, value: Any) -> None:
    checks.check_number(name, value, low=0.0, high=math.inf, high_open=True)


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
# Gradient penalties


def _penalty_points(generator: Callable, batch: GANBatch, at: PenaltyPoints) -> jax.Array:
    if at == "real":
        return batch.real
    fake = generator(batch.noise)
    if at == "fake":
        return fake
    real = batch.real
    if jnp.shape(fake) != jnp.shape(real):
        raise ValueError(
            'gradient_penalty(at="interpolates") needs generator samples of the shape of the real batch; '
            f"got fake {jnp.shape(fake)} and real {jnp.shape(real)}."
        )
    dtype = jnp.result_type(real, fake)
    eps = jax.random.uniform(batch.key, (jnp.shape(real)[0],), dtype=dtype)
    eps = jnp.reshape(eps, (-1,) + (1,) * (jnp.ndim(real) - 1))
    return eps * real + (1 - eps) * fake


def _squared_gradient_norms(discriminator: Callable, points: jax.Array) -> jax.Array:
    """``‖∇D(x̂_i)‖²`` for every sample ``i`` of ``points`` (shape ``(B,)``).

    One backward pass of ``Σ_i D(x̂_i)`` with respect to the whole batch: its ``i``-th slice
    is ``∇D(x̂_i)`` because each output depends on its own input only.
    """
    if not jnp.issubdtype(jnp.result_type(points), jnp.floating):
        raise ValueError(
            f"A gradient penalty differentiates the discriminator with respect to its input, which must be "
            f"floating-point; got dtype {jnp.result_type(points)}. Convert the data, e.g. real.astype(float)."
        )
    grads = jax.grad(lambda p: jnp.sum(_logits(discriminator, p, "the gradient-penalty points")))(points)
    return jnp.sum(jnp.reshape(grads, (jnp.shape(grads)[0], -1)) ** 2, axis=1)


def _safe_norm(squared: jax.Array) -> jax.Array:
    """``sqrt`` with a zero (not NaN) derivative at zero."""
    positive = squared > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squared, 1)), 0)


def gradient_penalty(loss: GANLoss, weight: Any, *, center: Any = 0.0, at: PenaltyPoints = "real") -> GANLoss:
    """Add a gradient penalty on the discriminator's input to the discriminator's loss.

    .. math::  loss_y' = loss_y + weight · E_i (‖∇_x D(x̂_i)‖ − center)^2

    and ``loss_x`` is unchanged, so the result is general-sum (``zero_sum=False``). For
    ``center = 0`` the penalty is computed as ``weight · E_i ‖∇_x D(x̂_i)‖²`` (no square root).
    The norm is over all of a sample's non-batch axes. The points ``x̂`` are chosen by ``at``:

    - ``"real"``: the real batch, ``x̂ = x`` (R1 of Mescheder et al. when ``center = 0``);
    - ``"fake"``: the generator's samples, ``x̂ = G(z)`` (R2 when ``center = 0``);
    - ``"interpolates"``: ``x̂_i = ε_i x_i + (1 − ε_i) G(z_i)`` with ``ε_i ~ U[0, 1]`` drawn
      independently per sample from ``batch.key`` (WGAN-GP; needs ``G(z)`` of the shape of ``x``).

    Each player differentiates only its own loss, so the generator gets no gradient from the
    penalty in its own update, as in WGAN-GP. ``loss_y`` does depend on the generator's
    params through ``G(z)`` (``at="fake"`` or ``"interpolates"``): methods that use the mixed
    derivative ``∇x∇y loss_y`` (LEAD, CGD, consensus, SGA) see the penalty's term, which the
    first-order reference implementations never compute (Mescheder et al.'s code even detaches
    ``G(z)``).

    Warning:
      The per-sample gradients come from one backward pass of ``Σ_i D(x̂_i)`` with respect to
      the whole batch. This is exact only when each output ``D(x̂)_i`` depends on input ``i``
      alone. A discriminator that mixes samples (BatchNorm in training mode, minibatch
      discrimination, minibatch standard deviation) breaks this assumption, as it does the
      penalty in every reference implementation; use LayerNorm, spectral normalization or no
      normalization in ``D``.

    Args:
      loss: the :class:`GANLoss` to regularize.
      weight: the penalty's coefficient, ``>= 0`` and finite (may be traced for sweeps).
      center: the target gradient norm, ``>= 0``: ``1`` for WGAN-GP, ``0`` for the
        zero-centred penalties (may be traced).
      at: where to evaluate the gradient, one of ``"real"``, ``"fake"``, ``"interpolates"``.

    Returns:
      A :class:`GANLoss` with ``zero_sum=False``.

    Raises:
      ValueError: for a negative or non-finite ``weight`` or ``center``, or an unknown ``at``.

    Example:
      >>> import gamejax as gj
      >>> loss = gj.gan.gradient_penalty(gj.gan.non_saturating(), 1.0, center=1.0, at="interpolates")

    References:
      Gulrajani et al, `Improved Training of Wasserstein GANs <https://arxiv.org/abs/1704.00028>`_, 2017 (Alg. 1);
      Mescheder et al, `Which Training Methods for GANs do actually Converge?
      <https://arxiv.org/abs/1801.04406>`_, 2018 (§4.1).
    """
    _check_loss(loss, "gradient_penalty")
    _check_weight("weight", weight)
    checks.check_number("center", center, low=0.0, high=math.inf, high_open=True)
    if not isinstance(at, str) or at not in POINTS:
        raise ValueError(f"at must be one of {POINTS}; got {at!r}.")
    zero_centred = isinstance(center, (int, float)) and center == 0

    def discriminator_loss(generator: Callable, discriminator: Callable, batch: GANBatch) -> jax.Array:
        base = loss.discriminator(generator, discriminator, batch)
        squared = _squared_gradient_norms(discriminator, _penalty_points(generator, batch, at))
        deviation = squared if zero_centred else (_safe_norm(squared) - center) ** 2
        return base + weight * jnp.mean(deviation)

    label = "zero-GP" if zero_centred else "GP"
    return GANLoss(loss.generator, discriminator_loss, zero_sum=False, name=f"{loss.name} + {label} ({at})")


def zero_gp(loss: GANLoss, weight: Any, *, at: PenaltyPoints = "real") -> GANLoss:
    """The zero-centred gradient penalty: ``gradient_penalty(loss, weight, center=0, at=at)``.

    .. math::  loss_y' = loss_y + weight · E_i ‖∇_x D(x̂_i)‖^2

    Conventions, stated exactly:

    - ``weight`` multiplies the mean squared norm directly. Mescheder et al. (2018) write
      ``R1 = (γ/2) E_x ‖∇D(x)‖²``, so their ``γ`` is ``weight = γ/2``; their public code
      (``reg_param * mean(‖∇D‖²)``) uses ``weight = reg_param`` directly.
    - The averaging paper (Yazıcı et al.) compares against "Zero Centered Gradient Penalty
      (Mescheder, 2018)", "following the original implementations as closely as possible",
      with coefficient ``1.0`` on the mixture of Gaussians (its Table 8); it does not restate
      the formula or the points. ``zero_gp(loss, 1.0)`` is that setting: R1 on real data with
      the implementation's convention. If the paper's ``1.0`` was the ``γ`` of Mescheder's
      formula instead, use ``weight=0.5``.
    - ``at="real"`` (default) is R1, ``at="fake"`` is R2 (Mescheder et al. 2018, §4.1);
      ``at="interpolates"`` is the zero-centred penalty of Thanh-Tung et al. (2019) on
      random points between real and fake samples.

    Args:
      loss: the :class:`GANLoss` to regularize.
      weight: the coefficient, ``>= 0`` and finite (may be traced).
      at: ``"real"``, ``"fake"`` or ``"interpolates"`` (see :func:`gradient_penalty`).

    Returns:
      A :class:`GANLoss` with ``zero_sum=False``.

    Example (the averaging paper's Zero-GP baseline on the mixture of Gaussians):
      >>> import gamejax as gj
      >>> loss = gj.gan.zero_gp(gj.gan.non_saturating(), 1.0)

    References:
      Mescheder et al, `Which Training Methods for GANs do actually Converge?
      <https://arxiv.org/abs/1801.04406>`_, 2018 (§4.1);
      Thanh-Tung et al, `Improving Generalization and Stability of Generative Adversarial Networks
      <https://arxiv.org/abs/1902.03984>`_, 2019;
      Yazıcı et al, `The Unusual Effectiveness of Averaging in GAN Training
      <https://arxiv.org/abs/1806.04498>`_, 2019 (§4.1, Table 8).
    """
    return gradient_penalty(loss, weight, center=0.0, at=at)


def wgan_gp(weight: Any = 10.0) -> GANLoss:
    """WGAN-GP: :func:`wgan` with a one-centred gradient penalty on interpolates.

    .. math::  loss_x = E_x D(x) − E_z D(G(z)), \\qquad
               loss_y = E_z D(G(z)) − E_x D(x) + weight · E_i (‖∇_x D(x̂_i)‖ − 1)^2

    with ``x̂_i = ε_i x_i + (1 − ε_i) G(z_i)``, ``ε_i ~ U[0, 1]`` from ``batch.key``. Equal to
    ``gradient_penalty(wgan(), weight, center=1.0, at="interpolates")``.

    Args:
      weight: the penalty coefficient ``λ`` (10 in the paper), ``>= 0`` and finite.

    Returns:
      A :class:`GANLoss` with ``zero_sum=False``.

    Example:
      >>> import gamejax as gj
      >>> loss = gj.gan.wgan_gp(10.0)

    References:
      Gulrajani et al, `Improved Training of Wasserstein GANs <https://arxiv.org/abs/1704.00028>`_, 2017 (Alg. 1).
    """
    return gradient_penalty(wgan(), weight, center=1.0, at="interpolates")._replace(name="WGAN-GP")


# ---------------------------------------------------------------------------------------------
# Games and batches


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


def batch_sampler(
    sample_real: Callable[[jax.Array, int], jax.Array], noise_dim: int, batch_size: int
) -> Callable[[jax.Array], GANBatch]:
    """``sample(key) -> GANBatch``: real data, standard normal noise, and a key for the losses.

    The key is split three ways: one for ``sample_real(key, batch_size)``, one for the noise
    ``z ~ N(0, I)`` of shape ``(batch_size, noise_dim)``, and one passed on as
    ``GANBatch.key``. The noise has the real data's dtype when that is floating-point (JAX's
    default float otherwise). ``sample`` is pure: it jits and vmaps (e.g. over seeds), and
    :func:`gamejax.fit` can call it inside its scan.

    Args:
      sample_real: ``sample_real(key, n) -> (n, ...)`` array of real data.
      noise_dim: the generator's input size, an integer ``>= 1``.
      batch_size: samples per batch, an integer ``>= 1``.

    Returns:
      ``sample(key) -> GANBatch``.

    Example:
      >>> import jax, gamejax as gj
      >>> sample = gj.gan.batch_sampler(lambda key, n: jax.random.normal(key, (n, 2)), noise_dim=8, batch_size=64)
      >>> batch = sample(jax.random.key(0))
      >>> batch.real.shape, batch.noise.shape
      ((64, 2), (64, 8))
    """
    if not callable(sample_real):
        raise TypeError(f"sample_real must be a callable sample_real(key, n); got {type(sample_real).__name__}.")
    checks.check_int("noise_dim", noise_dim, minimum=1)
    checks.check_int("batch_size", batch_size, minimum=1)
    noise_dim, batch_size = int(noise_dim), int(batch_size)  # shapes, used inside fit's scan: Python ints

    def sample(key: jax.Array) -> GANBatch:
        key_real, key_noise, key_loss = jax.random.split(key, 3)
        real = sample_real(key_real, batch_size)
        if jnp.ndim(real) < 1 or jnp.shape(real)[0] != batch_size:
            raise ValueError(
                f"sample_real(key, n) must return an array with leading axis n = {batch_size}; "
                f"it returned shape {jnp.shape(real)}."
            )
        dtype = jnp.result_type(real)
        if not jnp.issubdtype(dtype, jnp.floating):
            dtype = jnp.result_type(float)
        noise = jax.random.normal(key_noise, (batch_size, noise_dim), dtype=dtype)
        return GANBatch(real=real, noise=noise, key=key_loss)

    return sample
