"""What a step costs: game evaluations and passes (gradient-equivalents, the papers' x-axis).

One way to count (docs/design.md §4): every game declares what one evaluation of its field
costs (``Game.cost``), tracing one step abstractly sums that over the step's field
evaluations, and a method whose cost varies from step to step reports what it spent in a
:class:`gamejax.PassCount` leaf of its state, found by type.
"""

from __future__ import annotations

from typing import Any

import jax

from gamejax._src.core import Batch, Game, GameTransformation, PassCount, Players, StatefulGame, checks
from gamejax._src.core.game import Tally, counting_evaluations
from gamejax._src.core.tree_math import nodes_of_type
from gamejax._src.training.step import Step, check_game_and_tx


def trace_cost(step: Step, params: Players, state: Any, batch: Batch) -> Tally:
    """The field evaluations of one step and their declared cost, traced abstractly (nothing runs)."""
    with counting_evaluations() as tally:
        jax.eval_shape(step, params, state, batch)
    return tally


def reported_evaluations(state: Any) -> jax.Array | None:
    """The passes a variable-cost method in the stack has counted itself (its :class:`gamejax.PassCount`).

    ``None`` when no method in ``state`` reports its cost; :func:`gamejax.fit` then reports
    ``step × passes_per_step``.
    """
    found = nodes_of_type(state, PassCount)
    return found[0].value if found else None


def _step_and_state(game: Any, tx: Any, params: Players, state: Any, caller: str) -> tuple[Step, Any]:
    check_game_and_tx(game, tx, caller)
    checks.check_players(params, "params")
    step = Step(game, tx)
    if state is None:
        if isinstance(game, StatefulGame):
            raise ValueError(
                f"{caller}: {game.name!r} carries model state: pass state=gj.init_state(game, tx, params, model_state)."
            )
        state = jax.eval_shape(tx.init, params)
    return step, state


def evaluations_per_step(
    game: Game | StatefulGame, tx: GameTransformation, params: Players, batch: Batch = None, *, state: Any = None
) -> int:
    """How many times one step of ``tx`` evaluates the game's field.

    This is how many independent batches the step can consume (:class:`gamejax.PerEvaluation`,
    :func:`gamejax.per_evaluation`). Counted by tracing one step abstractly (``jax.eval_shape``:
    nothing is computed); a call inside a ``lax`` loop or ``lax.cond`` body counts once.
    ``state`` is needed only for a :class:`gamejax.StatefulGame` (:func:`gamejax.init_state`).
    """
    step, state = _step_and_state(game, tx, params, state, "evaluations_per_step")
    return trace_cost(step, params, state, batch).calls


def passes_per_step(
    game: Game | StatefulGame, tx: GameTransformation, params: Players, batch: Batch = None, *, state: Any = None
) -> float:
    """The cost of one step in "passes", gradient-equivalents (the papers' x-axis).

    Each field evaluation counts what its game declares (``Game.cost``): 1 for a game's own
    field (a player's gradient with its mixed product, LEAD's unit, is one evaluation), 3 for
    consensus's and SGA's adjusted fields (their Jacobian products on top of the field). For
    a method whose cost varies (CGD/ACGD's solves, SVRE's snapshots; their state holds a
    :class:`gamejax.PassCount`), the answer is the cost of the step taken from ``state``
    (default ``tx.init(params)``): that step is run, compiled, on ``params`` and ``batch``,
    and its reported passes are returned. This is exactly what :func:`gamejax.fit` adds to
    ``metrics["passes"]`` for that step.
    """
    given = state is not None
    step, state = _step_and_state(game, tx, params, state, "passes_per_step")
    if not nodes_of_type(state, PassCount):
        return _number(trace_cost(step, params, state, batch).passes)
    if not given:
        state = tx.init(params)
    _, after, _ = jax.jit(step)(params, state, batch)
    return _number(float(reported_evaluations(after)) - float(reported_evaluations(state)))


def _number(value: float) -> float:
    return int(value) if float(value).is_integer() else value
