"""The training step: one update of ``tx`` on ``game``, the one place that handles model state.

How model state is threaded, and why (docs/design.md §5). A method may evaluate the game
several times per step (extragradient's extrapolation, LEAD's and CGD's mixed products, a
lookahead wrapper's fast weights); if every evaluation also advanced the networks' statistics
(BatchNorm, spectral norm), one step would update them a method-dependent number of times, at
points the method then throws away (the problem Optax's SAM documents for BatchNorm). So:

- every evaluation of the field inside a step sees the *same* model state, the one the step
  started with, and its state output is discarded;
- the model state then advances exactly once per step, by evaluating the players' losses once
  at the step's starting params on the step's first batch — what one simultaneous step of a
  PyTorch training loop does.

The transformation stack never sees the model state: :class:`Step` binds it into the game
(:meth:`gamejax.StatefulGame.bind`) and keeps it next to the transformation's state in
:class:`WithModelState`. Wrappers that keep copies of params (lookahead's slow weights, EMA)
therefore do not average statistics: evaluate averaged params with the current model state,
or recompute the statistics at them. :func:`gamejax.fit`, the cost accounting and the
diagnostics all go through :class:`Step`, so none of them handles model state itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.extend import core as jax_core
from jax.sharding import Mesh

from gamejax._src.core import Batch, Game, GameTransformation, Players, StatefulGame, apply_updates, checks, first_batch
from gamejax._src.core.game import Evaluation, current_tally
from gamejax._src.core.tree_math import all_finite
from gamejax._src.training import sharding

Metrics = dict[str, jax.Array]
ModelState = Any


class WithModelState(NamedTuple):
    """The state of a training step on a :class:`gamejax.StatefulGame`.

    Attributes:
      tx_state: the game transformation's own state.
      model_state: the networks' non-trainable state (a ``Players`` pair).
    """

    tx_state: Any
    model_state: ModelState


def check_game_and_tx(game: Any, tx: Any, caller: str) -> None:
    """Raise ``TypeError`` naming the argument when ``game``/``tx`` are swapped or of the wrong kind."""
    if not isinstance(game, (Game, StatefulGame)):
        swapped = " (the arguments are game, tx: were they swapped?)" if isinstance(game, GameTransformation) else ""
        raise TypeError(
            f"{caller}: game must be a gj.Game (e.g. gj.zero_sum(f)) or a gj.StatefulGame; "
            f"got {type(game).__name__}{swapped}."
        )
    if not isinstance(tx, GameTransformation):
        hint = ""
        if isinstance(tx, optax.GradientTransformation):
            hint = " Wrap the Optax optimizer in a method, e.g. gj.gda(optax.adam(1e-3))."
        elif isinstance(tx, (Game, StatefulGame)):
            hint = " The arguments are game, tx: were they swapped?"
        raise TypeError(f"{caller}: tx must be a gj.GameTransformation; got {type(tx).__name__}.{hint}")


@dataclasses.dataclass(frozen=True)
class Step:
    """One training step of ``tx`` on ``game``: ``step(params, state, batch=None) -> (params, state, metrics)``.

    The one owner of model state (this module's docstring): on a :class:`gamejax.StatefulGame`
    the state is :class:`WithModelState` and :meth:`bound` gives the ordinary game the
    transformation sees; on a :class:`gamejax.Game` the state is the transformation's own.
    Hashable (a ``jax.jit`` static argument); build it with :func:`gamejax.make_step`.

    Attributes:
      game: the game.
      tx: the transformation.
      mesh: a mesh for data parallelism (batches split over its devices), or ``None``.
      update_norm: whether ``metrics`` holds ``update_norm`` (‖updates‖).
    """

    game: Game | StatefulGame
    tx: GameTransformation
    mesh: Mesh | None = None
    update_norm: bool = False

    @property
    def stateful(self) -> bool:
        """Whether the game carries model state."""
        return isinstance(self.game, StatefulGame)

    def init(self, params: Players, model_state: ModelState = None) -> Any:
        """The initial state: ``tx.init(params)``, or ``WithModelState(tx.init(params), model_state)``."""
        checks.check_players(params, "params")
        if not self.stateful:
            if model_state is not None:
                raise ValueError(f"model_state was given, but {self.game.name!r} is not a StatefulGame.")
            return self.tx.init(params)
        if model_state is None:
            raise ValueError(f"{self.game.name!r} carries model state: pass its initial model_state.")
        return WithModelState(self.tx.init(params), model_state)

    def bound(self, state: Any) -> tuple[Game, Any]:
        """``(game, tx_state)`` as the transformation sees them, given a step's full ``state``."""
        if not self.stateful:
            return self.game, state
        if not isinstance(state, WithModelState):
            raise TypeError(
                f"{self.game.name!r} carries model state, so its training state must be "
                f"gj.WithModelState(tx_state, model_state); got {type(state).__name__}. "
                "Build it with gj.init_state(game, tx, params, model_state) or pass model_state= to gj.fit."
            )
        return self.game.bind(state.model_state), state.tx_state

    def with_tx_state(self, state: Any, tx_state: Any) -> Any:
        """``state`` with its transformation part replaced (the model state kept)."""
        return state._replace(tx_state=tx_state) if self.stateful else tx_state

    def __call__(self, params: Players, state: Any, batch: Batch = None) -> tuple[Players, Any, Metrics]:
        return self.step_from(params, state, batch)[:3]

    def step_from(
        self, params: Players, state: Any, batch: Batch = None
    ) -> tuple[Players, Any, Metrics, Evaluation | None]:
        """The step, and the field and losses at its starting point when the step computed them.

        Traced inside :func:`gamejax.counting_evaluations`, the last output is the step's first
        evaluation of the game if it was made at exactly ``params`` and the step's (first)
        batch, at the step's own trace level (the same arrays, not a recomputation): most
        methods evaluate there first, so a training program can record its metrics from it
        without evaluating the game again. ``None`` otherwise.
        """
        checks.check_players(params, "params")
        game, tx_state = self.bound(state)
        checks.check_state(tx_state, jax.eval_shape(self.tx.init, params))
        if self.mesh is not None:
            batch = sharding.constrain_batch(batch, self.mesh)
        tally = current_tally()
        first = None if tally is None else tally.first
        updates, tx_state = self.tx.update(game, params, tx_state, batch)
        start = None if tally is None or first is not None else _made_at(tally.first, game, params, first_batch(batch))
        if self.stateful:
            tx_state = WithModelState(tx_state, self.game.advance(params, state.model_state, first_batch(batch)))
        new_params = apply_updates(params, updates)
        if self.mesh is not None:
            new_params, tx_state = sharding.constrain_replicated((new_params, tx_state), self.mesh)
        metrics = {"update_norm": optax.tree.norm(updates)} if self.update_norm else {}
        return new_params, tx_state, metrics, start

    def evaluate(self, params: Players, state: Any, batch: Batch = None, equilibrium: Players | None = None) -> Metrics:
        """:func:`evaluate` of the game as the step's transformation sees it at ``state``."""
        return evaluate(self.bound(state)[0], params, batch, equilibrium)


def make_step(
    game: Game | StatefulGame, tx: GameTransformation, *, mesh: Mesh | None = None, update_norm: bool = False
) -> Callable[..., tuple[Players, Any, Metrics]]:
    """The pure training step ``step(params, state, batch=None) -> (params, state, metrics)``.

    ``metrics`` is empty, or with ``update_norm=True`` holds ``update_norm`` (‖updates‖): off by
    default because its per-leaf reductions add ~40% to a jitted step called from Python on a
    small network (one reduction per leaf; free inside ``lax.scan`` when unused). Compile it with
    ``jax.jit``; it also runs under ``jax.vmap`` and ``jax.lax.scan``. When traced, the step
    checks that the transformation's state matches ``tx.init(params)`` (tree structure, leaf
    shapes and dtypes) and raises ``ValueError`` naming the first mismatch otherwise.

    With a ``mesh`` (data parallelism, see :func:`gamejax.shard`), the batch is split along its
    batch axis over every device of the mesh and params and state stay replicated; place the
    inputs with :func:`gamejax.shard` / :func:`gamejax.replicate` to avoid copies.

    On a :class:`gamejax.StatefulGame` (modules with BatchNorm or spectral normalization),
    ``state`` is ``WithModelState(tx_state, model_state)`` (:func:`gamejax.init_state`): the
    transformation sees the game bound to the step's starting model state, which then
    advances once (docs/design.md §5).

    Returns:
      The step function: the bound ``__call__`` of a :class:`Step` (``step.__self__``), which
      also builds the initial state (``step.__self__.init(params)``).

    Example:
      >>> import jax, optax, jax.numpy as jnp, gamejax as gj
      >>> game = gj.zero_sum(lambda x, y: x * y)
      >>> tx = gj.extragradient(optax.sgd(0.1))
      >>> step = jax.jit(gj.make_step(game, tx))
      >>> params = gj.Players(jnp.array(1.0), jnp.array(1.0))
      >>> params, state, metrics = step(params, tx.init(params))
    """
    check_game_and_tx(game, tx, "make_step")
    checks.check_bool("update_norm", update_norm)
    return Step(game, tx, None if mesh is None else sharding.as_auto(mesh), update_norm).__call__


def init_state(
    game: Game | StatefulGame, tx: GameTransformation, params: Players, model_state: ModelState = None
) -> Any:
    """The initial state of a training step of ``tx`` on ``game``.

    ``tx.init(params)`` for an ordinary game; ``WithModelState(tx.init(params), model_state)``
    for a :class:`gamejax.StatefulGame`, which needs ``model_state``.
    """
    check_game_and_tx(game, tx, "init_state")
    return Step(game, tx).init(params, model_state)


def _made_at(evaluation: Evaluation | None, game: Game, params: Players, batch: Batch) -> Evaluation | None:
    """``evaluation`` if it is ``game``'s at exactly these arrays, in the current trace; else ``None``."""
    if evaluation is None or evaluation.game is not game:
        return None
    with jax_core.take_current_trace() as trace:
        if evaluation.trace is not trace:
            return None
    for given, used in ((params, evaluation.params), (batch, evaluation.batch)):
        given_leaves, given_def = jax.tree.flatten(given)
        used_leaves, used_def = jax.tree.flatten(used)
        if given_def != used_def or any(a is not b for a, b in zip(given_leaves, used_leaves, strict=True)):
            return None
    return evaluation


def evaluate(game: Game, params: Players, batch: Batch = None, equilibrium: Players | None = None) -> Metrics:
    """Losses, ‖v‖, finiteness and (if given) the distance to ``equilibrium`` at ``params``."""
    return metrics_of(params, *game.field_and_losses(params, batch), equilibrium)


def metrics_of(params: Players, field: Players, losses: Players, equilibrium: Players | None = None) -> Metrics:
    """:func:`evaluate`'s metrics from the field and losses already computed at ``params``."""
    metrics = {
        "loss_x": jnp.asarray(losses.x),
        "loss_y": jnp.asarray(losses.y),
        "field_norm": optax.tree.norm(field),
        "finite": all_finite(params),
    }
    if equilibrium is not None:
        metrics["distance"] = optax.tree.norm(optax.tree.sub(params, equilibrium))
    return metrics
