"""Alternating updates: one player steps, then the other sees its new params."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import optax

from gamejax._src.core import Batch, Game, GameTransformation, Players, checks, split_batch
from gamejax._src.core import optax_players as base_lib

# after_step(player, params_before, params_after, carry) -> (params, carry)
StepHook = Callable[[str, Players, Players, Any], tuple[Players, Any]]


class AlternatingState(NamedTuple):
    """State of :func:`alternating`: each player's base optimizer state."""

    base: Players


def schedule(first: str, x_steps: int, y_steps: int) -> tuple[str, ...]:
    """The order of single-player steps in one alternating step, e.g. ``('y',)*r + ('x',)``."""
    checks.check_choice("first", first, ("x", "y"))
    checks.check_int("x_steps", x_steps, minimum=1)
    checks.check_int("y_steps", y_steps, minimum=1)
    if not (isinstance(x_steps, int) and isinstance(y_steps, int)):
        raise ValueError("x_steps and y_steps must be Python ints (they fix the program's shape).")
    steps = {"x": x_steps, "y": y_steps}
    order = ("y", "x") if first == "y" else ("x", "y")
    return tuple(player for player in order for _ in range(steps[player]))


def run_schedule(
    game: Game,
    bases: Players,
    params: Players,
    base_state: Players,
    batches: Sequence[Batch],
    steps: Sequence[str],
    after_step: StepHook | None = None,
    carry: Any = None,
) -> tuple[Players, Players, Any]:
    """Take the single-player steps ``steps`` in order, each at the current params.

    Each step evaluates the game once (the other player's gradient is discarded and removed
    by XLA under ``jit``) and moves only that player. ``after_step`` may modify the params
    after each step (Alg. 7's per-player lookahead does).
    """
    for player, batch in zip(steps, batches, strict=True):
        grad = getattr(game.field(params, batch), player)
        updates, base_state = base_lib.update_player(bases, player, grad, base_state, params)
        moved = params._replace(**{player: optax.apply_updates(getattr(params, player), updates)})
        if after_step is not None:
            moved, carry = after_step(player, params, moved, carry)
        params = moved
    return params, base_state, carry


def alternating(base: Any, *, y_steps: int = 1, x_steps: int = 1, first: str = "y") -> GameTransformation:
    """Alternating gradient updates with an update ratio (lookahead paper, Alg. 3 convention).

    With ``first="y"`` (the default, as GAN training does), one step is: ``y`` (the
    discriminator) takes ``y_steps`` base steps, each at the current params, then ``x`` takes
    ``x_steps`` base steps using the new ``y``:

    .. math::  y \\leftarrow y + \\mathrm{base}_y(\\nabla_y \\ell_y(x, y))\\ (r\\text{ times}),\\quad
       x \\leftarrow x + \\mathrm{base}_x(\\nabla_x \\ell_x(x, y))

    ``first="x"`` swaps the order. One game evaluation per single-player step
    (``x_steps + y_steps`` per step); with :class:`gamejax.PerEvaluation` batches each
    evaluation gets its own sample, in schedule order.

    Schedules: each player's base advances its update count once per base step, so ``y_steps``
    and ``x_steps`` times per training step; index an Optax schedule by training step with a
    base per player, ``gj.Players(optax.adam(gj.per_step(s, x_steps)), optax.adam(gj.per_step(s,
    y_steps)))``.

    Args:
      base: an ``optax.GradientTransformation`` for both players or ``gj.Players`` of them.
      y_steps: base steps of ``y`` per step (the update ratio ``r``), a Python int ``>= 1``.
      x_steps: base steps of ``x`` per step, a Python int ``>= 1``.
      first: ``"y"`` or ``"x"``, the player that moves first.

    Returns:
      A :class:`GameTransformation` with state :class:`AlternatingState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.alternating(optax.adam(2e-4), y_steps=5)   # 5 D steps per G step

    References:
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      2021 (Alg. 3, App. D.1); Mescheder et al, `The Numerics of GANs
      <https://arxiv.org/abs/1705.10461>`_, 2017 (simultaneous vs alternating updates).
    """
    bases = base_lib.as_players(base)
    steps = schedule(first, x_steps, y_steps)

    def init(params: Players) -> AlternatingState:
        return AlternatingState(base_lib.init(bases, params))

    def update(game: Game, params: Players, state: AlternatingState, batch: Batch = None):
        batches = split_batch(batch, len(steps), "alternating")
        new_params, base_state, _ = run_schedule(game, bases, params, state.base, batches, steps)
        return optax.tree.sub(new_params, params), AlternatingState(base_state)

    return GameTransformation(init, update)
