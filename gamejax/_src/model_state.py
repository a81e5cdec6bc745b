"""Games whose networks carry non-trainable state (BatchNorm statistics, spectral-norm vectors).

How the state is threaded, and why. A method may evaluate the game several times per step
(extragradient's extrapolation, LEAD's and CGD's mixed products, a lookahead wrapper's
fast weights); if every evaluation also advanced the networks' statistics, one step would
update them a method-dependent number of times, at points the method then throws away
(the problem Optax's SAM documents for BatchNorm). gamejax therefore separates the two:

- every evaluation of the field inside a step sees the *same* model state, the one the
  step started with, and its state output is discarded;
- the model state then advances exactly once per step, by evaluating the players' losses
  once (``loss_x`` then ``loss_y``, or ``f`` once for a zero-sum game) at the step's
  starting params on the step's first batch — what one simultaneous step of a PyTorch
  training loop does.

So every method updates the statistics the same way, once per step, never from an
extrapolated or discarded point. The extra forward pass costs about a third of a gradient
evaluation (XLA often shares it with the step's first field evaluation).

The transformation stack never sees the model state: :func:`gamejax.make_step` binds it
into the game (:meth:`StatefulGame.bind`) and keeps it next to the transformation's state
in :class:`WithModelState`. Wrappers that keep copies of params (lookahead's slow weights,
EMA) therefore do not average statistics: evaluate averaged params with the current model
state, or recompute the statistics at them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from gamejax._src.core import Batch, Game, Players

ModelState = Any


class WithModelState(NamedTuple):
    """The state of a training step on a :class:`StatefulGame`.

    Attributes:
      tx_state: the game transformation's own state.
      model_state: the networks' non-trainable state (a ``Players`` pair).
    """

    tx_state: Any
    model_state: ModelState


@dataclasses.dataclass(frozen=True)
class StatefulGame:
    """A game whose losses read and update non-trainable model state.

    Built by :func:`gamejax.flax.split` for Flax NNX modules with BatchNorm or spectral
    normalization; see this module's docstring for how the state is threaded.

    Attributes:
      fn: ``fn(params, model_state, batch) -> (field, losses)``; the model state it reads
        is not updated.
      advance: ``advance(params, model_state, batch) -> model_state``, the state after one
        evaluation of the players' losses.
      zero_sum: whether ``loss_y == -loss_x``.
      name: a label for tables and plots.
    """

    fn: Callable[[Players, ModelState, Batch], tuple[Players, Players]]
    advance: Callable[[Players, ModelState, Batch], ModelState]
    zero_sum: bool = False
    name: str = "game"

    def bind(self, model_state: ModelState) -> Game:
        """The ordinary :class:`gamejax.Game` at fixed ``model_state`` (for methods, diagnostics)."""
        return Game(lambda params, batch: self.fn(params, model_state, batch), self.zero_sum, self.name)


jax.tree_util.register_static(StatefulGame)


def bound_game(game: Game | StatefulGame, state: Any) -> tuple[Game, Any]:
    """``(game, tx_state)`` as a transformation sees them, given a step's full ``state``."""
    if not isinstance(game, StatefulGame):
        return game, state
    if not isinstance(state, WithModelState):
        raise TypeError(
            f"{game.name!r} carries model state, so its training state must be "
            f"gj.WithModelState(tx_state, model_state); got {type(state).__name__}. "
            "Build it with gj.init_state(game, tx, params, model_state) or pass model_state= to gj.fit."
        )
    return game.bind(state.model_state), state.tx_state


def init_state(game: Game | StatefulGame, tx: Any, params: Players, model_state: ModelState = None) -> Any:
    """The initial state of a training step of ``tx`` on ``game``.

    ``tx.init(params)`` for an ordinary game; ``WithModelState(tx.init(params), model_state)``
    for a :class:`StatefulGame`, which needs ``model_state``.
    """
    if not isinstance(game, StatefulGame):
        if model_state is not None:
            raise ValueError(f"model_state was given, but {game.name!r} is not a StatefulGame.")
        return tx.init(params)
    if model_state is None:
        raise ValueError(f"{game.name!r} carries model state: pass its initial model_state.")
    return WithModelState(tx.init(params), model_state)
