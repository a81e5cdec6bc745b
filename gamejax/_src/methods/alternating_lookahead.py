"""Alternating lookahead: each player backtracks towards its own slow weights (Alg. 7)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Game, GameTransformation, Players, checks, per_player, split_batch
from gamejax._src.core import optax_players as base_lib
from gamejax._src.core.tree_math import lerp
from gamejax._src.methods import alternating as alternating_lib


class AlternatingLookaheadState(NamedTuple):
    """State of :func:`alternating_lookahead`.

    Attributes:
      base: each player's base optimizer state.
      slow: each player's slow weights.
      steps_since_sync: ``Players`` of int32, each player's base steps since its last backtrack
        (or since ``init``), in ``[0, k_p)``: the phase of its own k-cycle, not a total, so it
        never overflows however long the run.
    """

    base: Players
    slow: Players
    steps_since_sync: Players


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
      y_steps, x_steps, first: the order of updates, as in :func:`alternating` (whose note on
        Optax schedules and :func:`gamejax.per_step` applies here too).

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
    ks, alphas = per_player(k), checks.per_player_number("alpha", alpha, low=0.0, high=1.0, low_open=True)
    for player, value in zip(("x", "y"), ks, strict=True):
        checks.check_int(f"k (player {player})", value, minimum=1)
    steps = alternating_lib.schedule(first, x_steps, y_steps)

    # Alg. 7 as nested loops, for each player p separately (its own slow weights, its own k_p):
    #
    #     p^fast = p^slow;  k_p times: p^fast ← p^fast + base_p(...)   (p's own base steps, in the
    #                                                                   alternating schedule)
    #     p^slow ← p^slow + α_p (p^fast − p^slow);  p^fast ← p^slow     (p's backtrack)
    #
    # The schedule runs one base step of one player at a time; after each, this hook plays the
    # part of p's loops, told its place in p's cycle by n = p's steps since its last backtrack
    # (kept in [0, k_p), never a running total that could overflow):
    #
    # * n + 1 < k_p: an inner-loop step, p keeps the base step's result (`after`).
    # * n + 1 = k_p: the k_p-th base step, then the backtrack: p's fast and slow weights both
    #   become the pulled point lerp(slow, after, α_p), written into the params at once, so the
    #   opponent's next step (and the returned update, new params − params) already sees it.
    #
    # Both are computed and one chosen with `tree.where` on a traced bool: one program for every
    # phase. p's slow weights for a cycle are read from p's params just before its first base
    # step of the cycle (n = 0): by the loops, p^fast starts at p^slow, so these are p's slow
    # weights; and if a wrapper moved the params in between (e.g. an outer gj.lookahead's
    # backtrack), they are the point p's cycle really starts from.
    def backtrack(player: str, before: Players, after: Players, carry: tuple[Players, Players]):
        slow, steps_since_sync = carry
        k_p, alpha_p = getattr(ks, player), getattr(alphas, player)
        n = getattr(steps_since_sync, player) % k_p  # `% k_p` keeps a phase stored for another k in range
        slow_p = optax.tree.where(n == 0, getattr(before, player), getattr(slow, player))
        fast_p = getattr(after, player)
        n = ((n + 1) % k_p).astype(jnp.int32)
        sync = n == 0
        new_p = optax.tree.where(sync, lerp(slow_p, fast_p, alpha_p), fast_p)
        slow = slow._replace(**{player: optax.tree.where(sync, new_p, slow_p)})
        steps_since_sync = steps_since_sync._replace(**{player: n})
        return after._replace(**{player: new_p}), (slow, steps_since_sync)

    def init(params: Players) -> AlternatingLookaheadState:
        zero = jnp.zeros([], jnp.int32)
        return AlternatingLookaheadState(base_lib.init(bases, params), params, Players(zero, zero))

    def update(game: Game, params: Players, state: AlternatingLookaheadState, batch: Batch = None):
        checks.check_same_layout(params, state.slow, "params", "the lookahead slow weights")
        batches = split_batch(batch, len(steps), "alternating_lookahead")
        new_params, base_state, (slow, steps_since_sync) = alternating_lib.run_schedule(
            game, bases, params, state.base, batches, steps, backtrack, (state.slow, state.steps_since_sync)
        )
        updates = optax.tree.sub(new_params, params)
        return updates, AlternatingLookaheadState(base_state, slow, steps_since_sync)

    return GameTransformation(init, update)
