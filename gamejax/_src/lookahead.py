"""Lookahead-minmax: joint backtracking of both players towards their slow weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src import alternating as alternating_lib
from gamejax._src import base as base_lib
from gamejax._src import checks
from gamejax._src.core import Batch, Game, GameTransformation, Players, split_batch
from gamejax._src.tree_math import lerp


class LookaheadState(NamedTuple):
    """State of :func:`lookahead`.

    Attributes:
      inner: the inner transformation's state.
      slow: the slow weights (both players' params at the start of the current k-cycle).
      count: inner steps taken.
    """

    inner: Any
    slow: Players
    count: jax.Array


class AlternatingLookaheadState(NamedTuple):
    """State of :func:`alternating_lookahead`.

    Attributes:
      base: each player's base optimizer state.
      slow: each player's slow weights.
      count: ``Players`` of int32, each player's number of base steps taken.
    """

    base: Players
    slow: Players
    count: Players


def _check_alphas(alpha: Any) -> Players:
    return checks.per_player_number("alpha", alpha, low=0.0, high=1.0, low_open=True)


def lookahead(k: Any, alpha: Any = 0.5) -> Callable[[GameTransformation], GameTransformation]:
    """Joint Lookahead-minmax: every ``k`` inner steps both players backtrack at once.

    The wrapped transformation produces the fast weights. Every ``k``-th step, both players
    are set to a point on the line between the slow weights (the params at the start of the
    cycle) and the fast weights, *at the same time* (lookahead paper, Alg. 1, Alg. 3):

    .. math::  \\omega \\leftarrow \\omega^{slow} + \\alpha (\\omega^{fast} - \\omega^{slow}),
       \\qquad \\omega^{slow} \\leftarrow \\omega

    The slow weights live in the state; params stay plain ``Players``. The inner state (e.g.
    Adam's moments) is not reset at a backtrack, as in Alg. 5. Because the slow weights are
    the params received at the start of each cycle, lookahead composes over any inner
    transformation, including another lookahead:
    ``lookahead(k_ss, a)(lookahead(k_s, a)(inner))`` is the nested Alg. 6 iterate for iterate
    when ``k_ss`` is a multiple of ``k_s`` (as in the paper, e.g. 5 and 5000). No extra game
    evaluation.

    Args:
      k: steps between backtracks, an integer ``>= 1`` (may be a traced int for sweeps).
      alpha: interpolation factor in ``(0, 1]``, one value or ``gj.Players(x=..., y=...)``
        (may be traced). ``alpha = 1`` leaves the inner method unchanged.

    Returns:
      A wrapper: ``lookahead(k, alpha)(inner) -> GameTransformation`` with state
      :class:`LookaheadState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.lookahead(k=5, alpha=0.5)(gj.extragradient(optax.adam(2e-4)))
      >>> nested = gj.lookahead(5000, 0.5)(gj.lookahead(5, 0.5)(gj.alternating(optax.adam(2e-4))))

    References:
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      2021 (Alg. 1, 3, 5, 6; Observation 2); Zhang et al, `Lookahead Optimizer
      <https://arxiv.org/abs/1907.08610>`_, 2019.
    """
    checks.check_not_transformation(k, "gj.lookahead(k, alpha)(inner)")
    checks.check_int("k", k, minimum=1)
    alphas = _check_alphas(alpha)

    def wrap(inner: GameTransformation) -> GameTransformation:
        if not isinstance(inner, GameTransformation):
            raise TypeError(
                "lookahead(k, alpha) wraps a gj.GameTransformation, e.g. "
                f"gj.lookahead(5, 0.5)(gj.gda(optax.sgd(0.1))); got {type(inner).__name__}."
            )

        def init(params: Players) -> LookaheadState:
            return LookaheadState(inner.init(params), params, jnp.zeros([], jnp.int32))

        def update(game: Game, params: Players, state: LookaheadState, batch: Batch = None):
            checks.check_same_layout(params, state.slow, "params", "the lookahead slow weights")
            slow = optax.tree.where(state.count % k == 0, params, state.slow)
            inner_updates, inner_state = inner.update(game, params, state.inner, batch)
            fast = optax.apply_updates(params, inner_updates)
            count = state.count + 1
            sync = count % k == 0
            pulled = Players(*(lerp(s, f, a) for s, f, a in zip(slow, fast, alphas, strict=True)))
            updates = optax.tree.where(sync, optax.tree.sub(pulled, params), inner_updates)
            slow = optax.tree.where(sync, pulled, slow)
            return updates, LookaheadState(inner_state, slow, count)

        return GameTransformation(init, update)

    return wrap


def alternating_lookahead(
    base: Any,
    *,
    k: Any,
    alpha: Any = 0.5,
    y_steps: int = 1,
    x_steps: int = 1,
    first: str = "y",
) -> GameTransformation:
    """Alternating updates with lookahead applied to each player separately (Alg. 7).

    Like :func:`alternating`, but each player keeps its own slow weights and backtracks
    after every ``k`` of *its own* base steps, immediately — so the opponent's next step
    already sees the backtracked params. Steps are counted from 1 (the printed Alg. 7 tests
    ``t % k == 0`` from ``t = 0``, which would backtrack after the very first step). The
    lookahead paper calls this "alternating lookahead" and finds the joint :func:`lookahead`
    better; it is here for comparison.

    Args:
      base: an ``optax.GradientTransformation`` for both players or ``gj.Players`` of them.
      k: per-player backtracking period(s), an int or ``gj.Players`` of ints ``>= 1``.
      alpha: per-player interpolation factor(s) in ``(0, 1]``.
      y_steps, x_steps, first: the schedule, as in :func:`alternating`.

    Returns:
      A :class:`GameTransformation` with state :class:`AlternatingLookaheadState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.alternating_lookahead(optax.adam(2e-4), k=5, alpha=0.5, y_steps=1)

    References:
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      2021 (App. G.2, Alg. 7).
    """
    bases = base_lib.as_players(base)
    ks, alphas = base_lib.per_player(k), _check_alphas(alpha)
    for player, value in zip(("x", "y"), ks, strict=True):
        checks.check_int(f"k (player {player})", value, minimum=1)
    steps = alternating_lib.schedule(first, x_steps, y_steps)

    def backtrack(player: str, before: Players, after: Players, carry: tuple[Players, Players]):
        slow, count = carry
        k_p, alpha_p = getattr(ks, player), getattr(alphas, player)
        n = getattr(count, player)
        slow_p = optax.tree.where(n % k_p == 0, getattr(before, player), getattr(slow, player))
        fast_p = getattr(after, player)
        sync = (n + 1) % k_p == 0
        new_p = optax.tree.where(sync, lerp(slow_p, fast_p, alpha_p), fast_p)
        slow = slow._replace(**{player: optax.tree.where(sync, new_p, slow_p)})
        count = count._replace(**{player: n + 1})
        return after._replace(**{player: new_p}), (slow, count)

    def init(params: Players) -> AlternatingLookaheadState:
        zero = jnp.zeros([], jnp.int32)
        return AlternatingLookaheadState(base_lib.init(bases, params), params, Players(zero, zero))

    def update(game: Game, params: Players, state: AlternatingLookaheadState, batch: Batch = None):
        checks.check_same_layout(params, state.slow, "params", "the lookahead slow weights")
        batches = split_batch(batch, len(steps), "alternating_lookahead")
        new_params, base_state, (slow, count) = alternating_lib.run_schedule(
            game, bases, params, state.base, batches, steps, backtrack, (state.slow, state.count)
        )
        updates = optax.tree.sub(new_params, params)
        return updates, AlternatingLookaheadState(base_state, slow, count)

    return GameTransformation(init, update)
