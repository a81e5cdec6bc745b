"""Lookahead-minmax: joint backtracking of both players towards their slow weights."""

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
from gamejax._src.core.tree_math import lerp


class LookaheadState(NamedTuple):
    """State of :func:`lookahead`.

    Attributes:
      inner: the inner transformation's state.
      slow: the slow weights (both players' params at the start of the current k-cycle).
      steps_since_sync: int32 in ``[0, k)``, inner steps taken since the last backtrack (or
        since ``init``). It is the phase of the k-cycle, not a total: it never grows past
        ``k - 1``, so it cannot overflow however long the run (a total count would wrap after
        2^31 steps and break ``count % k``). ``0`` means the next step starts a cycle.
    """

    inner: Any
    slow: Players
    steps_since_sync: jax.Array


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
    check_not_transformation(k, "gj.lookahead(k, alpha)(inner)")
    checks.check_int("k", k, minimum=1)
    alphas = _check_alphas(alpha)

    def wrap(inner: GameTransformation) -> GameTransformation:
        check_transformation(inner, "lookahead(k, alpha)", "gj.lookahead(5, 0.5)(gj.gda(optax.sgd(0.1)))")

        def init(params: Players) -> LookaheadState:
            return LookaheadState(inner.init(params), params, jnp.zeros([], jnp.int32))

        # The paper (Alg. 1, 3) writes lookahead as two nested loops, t = 1, 2, ...:
        #
        #     ω_{t,0} = ω^slow_{t-1}                                   (fast weights start at the slow ones)
        #     for i in 1..k:  ω_{t,i} = ω_{t,i-1} + inner(ω_{t,i-1})   (k fast steps)
        #     ω^slow_t = ω^slow_{t-1} + α (ω_{t,k} − ω^slow_{t-1})      (backtrack: the sync)
        #
        # A GameTransformation takes one step per call, so the loops are unrolled into calls,
        # each told its place in the cycle by `steps_since_sync` = i − 1 (kept in [0, k), never a
        # running total that could overflow). There are two kinds of call:
        #
        # * i < k (no sync): one fast step, the slow weights untouched: updates = inner's updates.
        # * i = k (sync): the k-th fast step, fast = params + inner's updates, then the backtrack.
        #   Both the next fast weights ω_{t+1,0} and the new slow weights are the pulled point
        #   slow + α (fast − slow), and `make_step` adds the returned updates to params, so the
        #   one update that lands there is `pulled − params` (= inner's updates − (1 − α)(fast − slow)).
        #
        # Both kinds are computed and one is chosen with `tree.where(sync, ...)` on a traced bool,
        # so the step is one program for every phase (no retrace, `k` may itself be traced).
        #
        # The slow weights of a cycle are read from params at its first call (i = 1) rather than
        # kept from the previous sync: by the loop, ω_{t,0} = ω^slow_{t-1}, so they are equal when
        # nothing else touched the params — and when something did, params are what the cycle
        # actually starts from. That something is an outer lookahead: in
        # lookahead(k_ss)(lookahead(k_s)(inner)) with k_ss a multiple of k_s, the outer sync falls
        # on an inner sync, so the outer's "fast" weights are the inner's new slow weights and it
        # moves params to the super-slow point. Alg. 6 then restarts both the slow and fast
        # weights there, which is exactly what reading slow := params at the next inner cycle
        # start does, so the nested wrappers reproduce Alg. 6 iterate for iterate with no
        # communication between them. (`state.slow` still records the pulled point at a sync so
        # the state shows the current slow weights.)
        def update(game: Game, params: Players, state: LookaheadState, batch: Batch = None):
            checks.check_same_layout(params, state.slow, "params", "the lookahead slow weights")
            # `% k` keeps a stored phase from another k (a checkpoint, a sweep) in range.
            phase = state.steps_since_sync % k
            slow = optax.tree.where(phase == 0, params, state.slow)
            inner_updates, inner_state = inner.update(game, params, state.inner, batch)
            fast = optax.apply_updates(params, inner_updates)
            steps_since_sync = ((phase + 1) % k).astype(jnp.int32)
            sync = steps_since_sync == 0
            pulled = Players(*(lerp(s, f, a) for s, f, a in zip(slow, fast, alphas, strict=True)))
            updates = optax.tree.where(sync, optax.tree.sub(pulled, params), inner_updates)
            slow = optax.tree.where(sync, pulled, slow)
            return updates, LookaheadState(inner_state, slow, steps_since_sync)

        return GameTransformation(init, update)

    return wrap
