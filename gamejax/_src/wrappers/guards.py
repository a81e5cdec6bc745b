"""Skipping steps whose updates are not finite, like ``optax.apply_if_finite`` for games."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import (
    Batch,
    Game,
    GameTransformation,
    Players,
    check_not_transformation,
    check_transformation,
    checks,
)
from gamejax._src.core.tree_math import all_finite, nodes_of_type


class SkipNonFiniteState(NamedTuple):
    """State of :func:`skip_nonfinite`.

    Attributes:
      inner: the inner transformation's state (as of the last finite step).
      consecutive: int32, non-finite steps in a row (0 after a finite step); saturates at the
        int32 maximum (after giving up, every step counts as skipped).
      skipped: int32, non-finite steps skipped in total; saturates likewise.
      gave_up: bool, whether ``max_consecutive`` non-finite steps came in a row; the params
        then stay frozen for good and :func:`gamejax.fit` reports the run as diverged.
    """

    inner: Any
    consecutive: jax.Array
    skipped: jax.Array
    gave_up: jax.Array


def skip_nonfinite(max_consecutive: int = 10) -> Callable[[GameTransformation], GameTransformation]:
    """Skip every step whose updates or new state are not finite; give up after ``max_consecutive``.

    A step whose updates or inner state contain NaN or ±Inf (a poisoned batch, an overflow,
    a diverging method) returns zero updates and keeps the inner state of the last finite
    step, so the params are left as they were; the skip is counted in the state. After
    ``max_consecutive`` such steps in a row the guard gives up: the params stay frozen,
    ``gave_up`` is set, and :func:`gamejax.fit` reports ``diverged_at`` and stops stepping.
    Put it outermost to protect the whole stack (lookahead's slow weights, EMA averages)::

        tx = gj.skip_nonfinite(5)(gj.lookahead(5, 0.5)(gj.extragradient(optax.adam(1e-3))))

    The game counterpart of ``optax.apply_if_finite``; unlike it, the guard also checks the
    new state and never lets a non-finite update through.

    Args:
      max_consecutive: non-finite steps in a row after which the guard gives up (integer >= 1).

    Returns:
      A wrapper ``GameTransformation -> GameTransformation`` with :class:`SkipNonFiniteState`.
    """
    check_not_transformation(max_consecutive, "gj.skip_nonfinite(max_consecutive)(tx)")
    checks.check_int("max_consecutive", max_consecutive, minimum=1)

    def wrap(tx: GameTransformation) -> GameTransformation:
        check_transformation(tx, "skip_nonfinite(max_consecutive)", "gj.skip_nonfinite(5)(gj.gda(optax.sgd(0.1)))")

        def init(params: Players) -> SkipNonFiniteState:
            zero = jnp.zeros([], jnp.int32)
            return SkipNonFiniteState(tx.init(params), zero, zero, jnp.asarray(False))

        def update(game: Game, params: Players, state: SkipNonFiniteState, batch: Batch = None):
            updates, inner = tx.update(game, params, state.inner, batch)
            finite = all_finite((updates, inner)) & ~state.gave_up
            consecutive = jnp.where(finite, 0, optax.safe_increment(state.consecutive)).astype(jnp.int32)
            zeros = jax.tree.map(jnp.zeros_like, updates)
            return optax.tree.where(finite, updates, zeros), SkipNonFiniteState(
                inner=optax.tree.where(finite, inner, state.inner),
                consecutive=consecutive,
                skipped=jnp.where(finite, state.skipped, optax.safe_increment(state.skipped)),
                gave_up=state.gave_up | (consecutive >= max_consecutive),
            )

        return GameTransformation(init, update)

    return wrap


def gave_up(state: Any) -> jax.Array:
    """Whether a :func:`skip_nonfinite` guard anywhere in ``state`` has given up (``False`` if none)."""
    guards = [node.gave_up for node in nodes_of_type(state, SkipNonFiniteState)]
    return jnp.any(jnp.stack(guards)) if guards else jnp.asarray(False)
