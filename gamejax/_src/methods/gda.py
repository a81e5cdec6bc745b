"""Simultaneous gradient descent-ascent (GDA)."""

from __future__ import annotations

from typing import Any, NamedTuple

from gamejax._src.core import Batch, Game, GameTransformation, Players, split_batch
from gamejax._src.core import optax_players as base_lib


class GDAState(NamedTuple):
    """State of :func:`gda`: each player's base optimizer state."""

    base: Players


def gda(base: Any) -> GameTransformation:
    """Simultaneous gradient descent-ascent: both players step along the field at once.

    .. math::  (x, y)_{t+1} = (x, y)_t + \\mathrm{base}(v(x_t, y_t)),
       \\quad v = (\\nabla_x \\ell_x, \\nabla_y \\ell_y)

    With ``optax.sgd(η)`` this is ``ω_{t+1} = ω_t − η v(ω_t)``: for a zero-sum ``f`` the
    second player ascends ``f`` (lookahead paper, Observation 1: on ``x·y`` the squared norm
    grows by exactly ``1 + η²`` per step). One game evaluation per step.

    Args:
      base: an ``optax.GradientTransformation`` used (with separate state) for both players,
        or ``gj.Players(x=..., y=...)`` of them.

    Returns:
      A :class:`GameTransformation` with state :class:`GDAState`.

    Example:
      >>> import optax, jax.numpy as jnp, gamejax as gj
      >>> game = gj.zero_sum(lambda x, y: x * y)
      >>> tx = gj.gda(optax.sgd(0.1))
      >>> params = gj.Players(jnp.array(1.0), jnp.array(1.0))
      >>> updates, state = tx.update(game, params, tx.init(params))

    References:
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      2021 (§4, Observation 1).
    """
    bases = base_lib.as_players(base)

    def init(params: Players) -> GDAState:
        return GDAState(base_lib.init(bases, params))

    def update(game: Game, params: Players, state: GDAState, batch: Batch = None):
        (batch,) = split_batch(batch, 1, "gda")
        field = game.field(params, batch)
        updates, base_state = base_lib.update(bases, field, state.base, params)
        return updates, GDAState(base_state)

    return GameTransformation(init, update)
