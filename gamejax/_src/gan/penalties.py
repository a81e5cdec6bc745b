"""Gradient penalties on the discriminator's input, as wrappers of a :class:`GANLoss`.

:func:`gradient_penalty` adds ``weight · E_i (‖∇_x D(x̂_i)‖ − center)²`` to the discriminator's
loss; :func:`zero_gp` (R1/R2) and :func:`wgan_gp` are its named special cases.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp

from gamejax._src.core import checks
from gamejax._src.gan.batches import GANBatch
from gamejax._src.gan.losses import GANLoss, _check_loss, _logits, wgan

PenaltyPoints = Literal["real", "fake", "interpolates"]
POINTS = ("real", "fake", "interpolates")


def _check_weight(name: str, value: Any) -> None:
    checks.check_number(name, value, low=0.0, high=math.inf, high_open=True)


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
