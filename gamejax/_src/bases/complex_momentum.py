"""Complex momentum, an Optax base optimizer for games."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gamejax._src.core import checks


class ComplexMomentumState(NamedTuple):
    """State of :func:`complex_momentum`: the complex momentum buffer, shaped like the params."""

    buffer: Any


def _check_beta(beta: Any) -> None:
    """Raise ``ValueError`` unless a concrete ``beta`` is one real or complex number with ``|beta| < 1``."""
    if not checks.is_concrete(beta):
        return
    array = None if isinstance(beta, (bool, np.bool_, str, bytes)) or beta is None else np.asarray(beta)
    if array is None or array.ndim != 0 or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"beta must be one real or complex number with |beta| < 1; got {beta!r}.")
    if not np.abs(array) < 1:  # also catches NaN
        raise ValueError(f"beta must be a complex number with |beta| < 1; got {beta!r}.")


def complex_momentum(learning_rate: Any, beta: Any) -> optax.GradientTransformation:
    """Gradient descent with complex momentum (Lorraine & Duvenaud 2022, Alg. 1).

    .. math::  μ_{t+1} = β μ_t − g_t, \\qquad ω_{t+1} = ω_t + η\\, \\mathrm{Re}(μ_{t+1}),
       \\qquad β ∈ \\mathbb{C}

    A real ``β`` is Polyak's heavy ball (positive) or negative momentum (negative); a complex
    ``β`` adds a rotation that can damp a game's oscillations. An ordinary Optax
    ``GradientTransformation``: use it as a player's base, e.g. ``gj.gda(gj.complex_momentum(...))``.
    The buffer is complex (``complex64`` for float32 params, ``complex128`` for float64).

    Args:
      learning_rate: ``η > 0`` (may be traced).
      beta: the momentum, a complex number with ``|β| < 1`` (may be traced; build it from a
        magnitude and a phase, ``m * jnp.exp(1j * phi)``, to sweep them).

    Returns:
      An ``optax.GradientTransformation`` with state :class:`ComplexMomentumState`.

    Example:
      >>> import numpy as np, gamejax as gj
      >>> tx = gj.gda(gj.complex_momentum(0.3, 0.9 * np.exp(1j * np.pi / 8)))

    References:
      Lorraine, Acuna, Vicol & Duvenaud, `Complex Momentum for Optimization in Games
      <https://arxiv.org/abs/2102.08431>`_, 2022 (Alg. 1); compared in the LEAD paper, Fig. 3.
    """
    checks.check_number("learning_rate", learning_rate, low=0.0, low_open=True, high=float("inf"), high_open=True)
    _check_beta(beta)

    def init(params: Any) -> ComplexMomentumState:
        def zeros(p):
            return jnp.zeros(jnp.shape(p), jnp.result_type(checks.dtype_of(p), jnp.complex64))

        return ComplexMomentumState(jax.tree.map(zeros, params))

    def update(updates: Any, state: ComplexMomentumState, params: Any = None):
        del params
        buffer = jax.tree.map(lambda m, g: (beta * m - g).astype(m.dtype), state.buffer, updates)
        steps = jax.tree.map(lambda m, g: (learning_rate * jnp.real(m)).astype(checks.dtype_of(g)), buffer, updates)
        return steps, ComplexMomentumState(buffer)

    return optax.GradientTransformation(init, update)
