"""Per-player Optax base optimizers: one transformation for both players, or a ``Players`` pair.

Every method turns the field (or a corrected field) into updates through these helpers, so
schedules, clipping and ``optax.chain`` work exactly as in single-objective Optax.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from gamejax._src.core import checks
from gamejax._src.core.players import PLAYERS, Players
from gamejax._src.core.transformation import GameTransformation


def as_players(base: Any, name: str = "base") -> Players:
    """``Players(tx_x, tx_y)`` from one ``optax.GradientTransformation`` or a ``Players`` pair.

    Raises:
      TypeError: for anything else, saying what was expected.
    """
    if isinstance(base, optax.GradientTransformation):
        return Players(base, base)
    if isinstance(base, GameTransformation):
        raise TypeError(
            f"{name} must be an Optax optimizer such as optax.adam(1e-3); got a gj.GameTransformation. "
            "Methods (gda, extragradient, ...) take Optax optimizers; wrappers (lookahead, ema) take methods."
        )
    if isinstance(base, Players):
        for player, tx in zip(PLAYERS, base, strict=True):
            if not isinstance(tx, optax.GradientTransformation):
                raise TypeError(
                    f"{name}.{player} must be an optax.GradientTransformation (e.g. optax.adam(1e-3)); "
                    f"got {type(tx).__name__}."
                )
        return base
    hint = ""
    if isinstance(base, dict) or (isinstance(base, (tuple, list)) and len(base) == 2):
        hint = " To give each player its own optimizer, pass gj.Players(x=optax..., y=optax...)."
    raise TypeError(
        f"{name} must be an optax.GradientTransformation (used for both players) or "
        f"gj.Players(x=..., y=...) of them; got {type(base).__name__}.{hint}"
    )


def init(bases: Players, params: Players) -> Players:
    """Each player's base optimizer state."""
    checks.check_players(params, "params")
    return Players(bases.x.init(params.x), bases.y.init(params.y))


def update_player(bases: Players, player: str, grads: Any, states: Players, params: Players) -> tuple[Any, Players]:
    """One player's base update from its gradient; the other player's state is untouched."""
    tx, state, param = getattr(bases, player), getattr(states, player), getattr(params, player)
    checks.check_same_layout(grads, param, f"the field for player {player}", f"params.{player}")
    try:
        updates, state = tx.update(grads, state, param)
    except (ValueError, TypeError) as err:
        _explain(err, tx, state, param, player)
        raise
    checks.check_same_layout(updates, param, f"updates.{player}", f"params.{player}", check_dtype=False)
    checks.check_same_layout(
        state,
        getattr(states, player),
        f"the base optimizer state of player {player} after the update",
        "before it",
        hint="The state was initialized (tx.init) for params of other shapes or dtypes than those passed to update.",
    )
    return updates, states._replace(**{player: state})


def _explain(err: Exception, tx: Any, state: Any, param: Any, player: str) -> None:
    """Re-raise a base optimizer's error with its likely cause, when gamejax can tell it."""
    if not checks.same_layout(state, jax.eval_shape(tx.init, param)):
        raise ValueError(
            f"The base optimizer of player {player} failed because its state was initialized (tx.init) "
            f"for params of another structure, shapes or dtypes than params.{player}. Original error: {err}"
        ) from err
    if isinstance(tx, optax.GradientTransformationExtraArgs) and "argument" in str(err):
        raise TypeError(
            f"The base optimizer of player {player} needs extra arguments to update (e.g. value= for "
            "optax.contrib.reduce_on_plateau); gamejax calls tx.update(updates, state, params) only. "
            f"Original error: {err}"
        ) from err


def update(bases: Players, grads: Players, states: Players, params: Players) -> tuple[Players, Players]:
    """Both players' base updates from a field ``grads`` (simultaneous)."""
    ux, states = update_player(bases, "x", grads.x, states, params)
    uy, states = update_player(bases, "y", grads.y, states, params)
    return Players(ux, uy), states
