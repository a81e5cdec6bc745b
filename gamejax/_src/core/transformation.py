"""The game transformation protocol: ``init(params)`` and ``update(game, params, state, batch)``.

A :class:`GameTransformation` is to a two-player game what an ``optax.GradientTransformation``
is to a loss (docs/design.md §2). Methods build one from per-player Optax optimizers; wrappers
map one to another (docs/design.md §3). The argument order of ``update`` lives in a type,
:class:`TransformUpdateFn`, as Optax's ``TransformUpdateFn`` does.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import optax

from gamejax._src.core import checks
from gamejax._src.core.game import Batch, Game
from gamejax._src.core.players import Players

State = Any


class TransformInitFn(Protocol):
    """``init(params) -> state``: the transformation's initial state for these params."""

    def __call__(self, params: Players) -> State: ...


class TransformUpdateFn(Protocol):
    """``update(game, params, state, batch=None) -> (updates, new_state)``.

    The game comes first and is passed on every call, never captured: one transformation
    serves every game and every batch, and a wrapper may hand its inner transformation a
    changed game (consensus, mixed precision).
    """

    def __call__(self, game: Game, params: Players, state: State, batch: Batch = None) -> tuple[Players, State]: ...


class GameTransformation(NamedTuple):
    """A pure optimizer for two-player games (docs/design.md §2).

    Attributes:
      init: ``init(params: Players) -> state`` (any pytree).
      update: ``update(game, params, state, batch=None) -> (updates, new_state)``; add the
        updates to the params with :func:`apply_updates`. The game is an argument of every
        call, so one transformation serves every game and every batch.
    """

    init: TransformInitFn
    update: TransformUpdateFn


def apply_updates(params: Players, updates: Players) -> Players:
    """``params + updates`` leaf by leaf, keeping each param's dtype (as ``optax.apply_updates``).

    Raises:
      ValueError: if ``updates`` does not have the tree structure and shapes of ``params``.
    """
    checks.check_players(params, "params")
    checks.check_same_layout(updates, params, "updates", "params", check_dtype=False)
    return optax.apply_updates(params, updates)


def check_not_transformation(value: Any, usage: str) -> None:
    """Catch the forgotten second call of a curried wrapper, e.g. ``gj.lookahead(inner)``."""
    if isinstance(value, GameTransformation):
        raise TypeError(f"Wrappers are curried: write {usage}, not a transformation as the first argument.")


def check_transformation(inner: Any, wrapper: str, example: str) -> None:
    """Raise ``TypeError`` unless a wrapper was handed a :class:`GameTransformation` to wrap."""
    if isinstance(inner, GameTransformation):
        return
    hint = ""
    if isinstance(inner, optax.GradientTransformation):
        hint = " Wrap the Optax optimizer in a method first, e.g. gj.gda(optax.adam(1e-3))."
    raise TypeError(f"{wrapper} wraps a gj.GameTransformation, e.g. {example}; got {type(inner).__name__}.{hint}")
