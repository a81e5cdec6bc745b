"""Optimistic gradient descent-ascent (OGDA) and optimistic Adam."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Game, GameTransformation, Players, checks, split_batch
from gamejax._src.core import optax_players as base_lib


class OptimisticState(NamedTuple):
    """State of :func:`optimistic`.

    Attributes:
      base: each player's base optimizer state.
      previous: the previous step's field (``on="gradients"``) or base update (``on="updates"``).
      count: int32, steps taken, saturating at the int32 maximum (``optax.safe_increment``)
        so that it never wraps back to 0 or below; only ``count == 0`` (the first step) matters.
    """

    base: Players
    previous: Players
    count: jax.Array


def _extrapolate_from_past(current: Players, previous: Players, count: jax.Array) -> Players:
    """``2·current − previous``, with ``previous := current`` on the first step."""
    previous = optax.tree.where(count == 0, current, previous)
    return jax.tree.map(lambda c, p: (2 * c - p).astype(c.dtype), current, previous)


def optimistic(base: Any, *, on: str = "gradients") -> GameTransformation:
    """Optimistic gradient descent-ascent: extrapolation from the past, one gradient per step.

    With ``on="gradients"`` (default) the base optimizer receives the optimistic field

    .. math::  \\tilde v_t = 2 v(\\omega_t) - v(\\omega_{t-1}),

    so ``optimistic(optax.sgd(η))`` is OGDA, ``ω_{t+1} = ω_t − 2η v_t + η v_{t−1}`` (lookahead
    paper, eq. OGDA). With ``on="updates"`` the base update itself is extrapolated,
    ``u_t = 2·base(v_t) − base(v_{t−1})``: with ``optax.adam`` this is the Optimistic Adam of
    Daskalakis et al. (2018) used as a baseline in the averaging paper. For SGD both coincide.
    On the first step the previous value is taken equal to the current one (a plain step).
    One game evaluation per step.

    Args:
      base: an ``optax.GradientTransformation`` for both players or ``gj.Players`` of them.
      on: ``"gradients"`` or ``"updates"``, what is extrapolated.

    Returns:
      A :class:`GameTransformation` with state :class:`OptimisticState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.optimistic(optax.sgd(0.3))                      # OGDA
      >>> tx = gj.optimistic(optax.adam(2e-4), on="updates")      # Optimistic Adam

    References:
      Rakhlin & Sridharan, Optimization, learning, and games with predictable sequences, 2013;
      Daskalakis et al, `Training GANs with Optimism <https://arxiv.org/abs/1711.00141>`_, 2018;
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      2021 (eq. OGDA, App. D.1).
    """
    bases = base_lib.as_players(base)
    checks.check_choice("on", on, ("gradients", "updates"))

    def init(params: Players) -> OptimisticState:
        return OptimisticState(base_lib.init(bases, params), optax.tree.zeros_like(params), jnp.zeros([], jnp.int32))

    def update(game: Game, params: Players, state: OptimisticState, batch: Batch = None):
        (batch,) = split_batch(batch, 1, "optimistic")
        checks.check_same_layout(state.previous, params, "the optimistic state", "params", check_dtype=False)
        field = game.field(params, batch)
        if on == "gradients":
            optimistic_field = _extrapolate_from_past(field, state.previous, state.count)
            updates, base_state = base_lib.update(bases, optimistic_field, state.base, params)
            remembered = field
        else:
            base_updates, base_state = base_lib.update(bases, field, state.base, params)
            updates = _extrapolate_from_past(base_updates, state.previous, state.count)
            remembered = base_updates
        remembered = jax.tree.map(lambda r, p: r.astype(p.dtype), remembered, state.previous)
        return updates, OptimisticState(base_state, remembered, optax.safe_increment(state.count))

    return GameTransformation(init, update)
