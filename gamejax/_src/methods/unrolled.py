"""Unrolled updates: a player steps against its opponent's predicted response."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import optax

from gamejax._src.core import Batch, Game, GameTransformation, Players, checks, split_batch
from gamejax._src.core import optax_players as base_lib


class UnrolledState(NamedTuple):
    """State of :func:`unrolled`: each player's base optimizer state."""

    base: Players


def _unroll(game: Game, unroll: Players, params: Players, player: str, batches: Sequence[Batch]) -> Any:
    """``player``'s params after ``len(batches)`` steps of its ``unroll`` optimizer, the opponent fixed."""
    tx = getattr(unroll, player)
    value, state = getattr(params, player), tx.init(getattr(params, player))
    for batch in batches:
        grad = getattr(game.field(params._replace(**{player: value}), batch), player)
        updates, state = tx.update(grad, state, value)
        value = optax.apply_updates(value, updates)
    return value


def unrolled(base: Any, *, unroll: Any, steps: int, players: str = "y") -> GameTransformation:
    """Unrolling (Metz et al. 2017) as the lookahead paper's Unroll-Y and Unroll-XY (App. D.1).

    The unrolled player's response is predicted by ``steps`` steps of its ``unroll`` optimizer
    (from its current params, with a fresh optimizer state, the opponent held fixed); the
    opponent then takes its base step with the gradient at that predicted point:

    * ``players="y"`` (Unroll-Y): ``y^m`` unrolled from ``y_t``;
      ``x_{t+1} = x_t + base(∇x ℓ_x(x_t, y^m))``, ``y_{t+1} = y_t + base(∇y ℓ_y(x_t, y_t))``.
    * ``players="xy"`` (Unroll-XY): both unrolled against the other's current params;
      ``x`` steps with the gradient at ``(x_t, y^m)``, ``y`` at ``(x^m, y_t)``.

    As in the lookahead paper's baselines, gradients are taken *at* the unrolled point, not
    back-propagated through the unrolling (the "approximated" unrolled GAN). Game evaluations per
    step: ``steps + 2`` (Unroll-Y) or ``2·steps + 2`` (Unroll-XY); with
    :class:`gamejax.PerEvaluation` batches the slices go to the unrolling steps (``y``'s first),
    then ``x``'s update, then ``y``'s.

    Args:
      base: the players' optimizer (an ``optax.GradientTransformation`` or ``gj.Players`` of them).
      unroll: the optimizer of the unrolling steps (same forms), e.g. ``optax.sgd(η)``.
      steps: unrolling steps, a Python int ``>= 1`` (6 in the lookahead paper's Fig. 3).
      players: ``"y"`` or ``"xy"``, the unrolled player(s).

    Returns:
      A :class:`GameTransformation` with state :class:`UnrolledState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.unrolled(optax.sgd(0.3), unroll=optax.sgd(0.3), steps=6, players="y")   # Unroll-Y

    References:
      Metz et al, `Unrolled Generative Adversarial Networks <https://arxiv.org/abs/1611.02163>`_,
      2017; Chavdarova et al, `Taming GANs with Lookahead-Minmax
      <https://arxiv.org/abs/2006.14567>`_, 2021 (App. D.1, Fig. 3).
    """
    bases = base_lib.as_players(base)
    unrolls = base_lib.as_players(unroll, "unroll")
    checks.check_choice("players", players, ("y", "xy"))
    checks.check_int("steps", steps, minimum=1)
    if not isinstance(steps, int):
        raise ValueError("steps must be a Python int (it fixes the program's shape).")
    unrolled_players = ("y", "x") if players == "xy" else ("y",)

    def init(params: Players) -> UnrolledState:
        return UnrolledState(base_lib.init(bases, params))

    def update(game: Game, params: Players, state: UnrolledState, batch: Batch = None):
        checks.check_players(params, "params")
        batches = split_batch(batch, steps * len(unrolled_players) + 2, f"unrolled(players={players!r})")
        predicted = {
            p: _unroll(game, unrolls, params, p, batches[i * steps : (i + 1) * steps])
            for i, p in enumerate(unrolled_players)
        }
        x_batch, y_batch = batches[-2:]
        gx = game.field(params._replace(y=predicted["y"]), x_batch).x
        gy = game.field(params._replace(x=predicted.get("x", params.x)), y_batch).y
        updates, base_state = base_lib.update(bases, Players(gx, gy), state.base, params)
        return updates, UnrolledState(base_state)

    return GameTransformation(init, update)
