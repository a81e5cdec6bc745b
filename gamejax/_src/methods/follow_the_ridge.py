"""Follow-the-Ridge (FR): the follower corrects its step to stay on the ridge of its best responses."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Game, GameTransformation, PassCount, Players, checks, split_batch
from gamejax._src.core import optax_players as base_lib
from gamejax._src.derivatives import diagonal_blocks, linearize_field, off_diagonal_blocks
from gamejax._src.linear_solve import cg, to_solve_dtype


class FollowTheRidgeState(NamedTuple):
    """State of :func:`follow_the_ridge`.

    Attributes:
      base: each player's base optimizer state.
      solution: the last solve's solution ``w = (J_yy + λI)⁻¹ J_yx Δx`` (shaped like ``y``, in at
        least float32), the next solve's warm start.
      iterations: conjugate-gradient iterations the last solve used.
      residual: the last solve's final relative residual (the true one); above ``tol`` means it
        hit ``maxiter`` (or ``J_yy + λI`` was not positive definite there).
      evaluations: passes so far (:class:`gamejax.PassCount`): per step one linearization of the
        field, one product ``J_yx Δx`` and one per matrix-vector product of the solve, each
        weighted by the game's ``cost`` (:func:`gamejax.fit` reports it as ``passes``).
    """

    base: Players
    solution: Any
    iterations: jax.Array
    residual: jax.Array
    evaluations: PassCount


def follow_the_ridge(
    base: Any, *, damping: Any = 0.0, tol: Any = 1e-6, maxiter: Any = 50, warm_start: bool = True
) -> GameTransformation:
    """Follow-the-Ridge: the leader's step, and the follower's step plus the ridge's response to it.

    ``x`` leads and ``y`` follows. A local minimax point of ``min_x max_y f`` lies on the *ridge*
    ``{(x, y): ∇y f = 0, ∇yy f ≺ 0}``, the follower's local best responses; plain GDA's ``y``
    lags behind it when ``x`` moves, which makes it miss local minimax points that are not local
    Nash points. FR moves ``y`` along the ridge as well (Wang, Zhang & Ba 2020, Alg. 1):

    .. math::  x_{t+1} = x_t − η_x ∇_x f, \\qquad
               y_{t+1} = y_t + η_y ∇_y f + η_x H_{yy}^{-1} H_{yx} ∇_x f.

    In gamejax's convention (docs/design.md §1: field ``v``, Jacobian blocks
    ``J_yy = ∂v_y/∂y = ∇yy loss_y`` and ``J_yx = ∂v_y/∂x``; for a zero-sum game ``J_yy = −H_yy``,
    ``J_yx = −H_yx``) the leader's update is ``Δx = base_x(v_x)`` and the follower's

    .. math::  Δy = \\mathrm{base}_y(v_y) − (J_{yy} + λI)^{-1} J_{yx} Δx,

    the ridge's tangent ``dy*/dx = −J_yy⁻¹J_yx`` applied to the leader's actual step: with
    ``optax.sgd`` (``Δx = −η_x v_x``) this is Alg. 1, and with a preconditioned or momentum base
    the correction follows the leader's preconditioned step, as the paper's preconditioned
    variant does. It holds for general-sum games too (``y`` minimizing ``loss_y``: the ridge of
    ``∇y loss_y = 0``). ``(J_yy + λI) w = J_yx Δx`` is solved by conjugate gradient on
    Hessian-vector products of one linearization of the field per step (``J_yy`` is the
    Hessian of ``loss_y`` in ``y``: symmetric, and positive definite near a strict local
    maximum of ``f`` in ``y``, where FR's guarantees hold), warm-started from the previous
    solution; the state reports the iterations used and the final relative residual, as
    :func:`cgd`'s. ``damping`` ``λ ≥ 0`` (0, the paper's update, by default) regularizes the
    solve where ``J_yy`` is ill-conditioned or indefinite (a gamejax option).

    Cost per step: one linearization of the field, one Jacobian-vector product for
    ``J_yx Δx`` and one per conjugate-gradient product (counted in ``state.evaluations``).

    Args:
      base: an ``optax.GradientTransformation`` for both players or ``gj.Players`` of them
        (``optax.sgd(η_x)``, ``optax.sgd(η_y)`` for Alg. 1).
      damping: ``λ >= 0`` added to ``J_yy``; may be traced.
      tol: relative residual at which the solve stops.
      maxiter: iteration cap of the solve.
      warm_start: start each solve from the previous solution.

    Returns:
      A :class:`GameTransformation` with state :class:`FollowTheRidgeState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.follow_the_ridge(gj.Players(optax.sgd(0.05), optax.sgd(0.1)))
      >>> tx = gj.follow_the_ridge(optax.rmsprop(1e-3), damping=1e-3, tol=1e-8, maxiter=20)

    References:
      Wang, Zhang & Ba, `On Solving Minimax Optimization Locally: A Follow-the-Ridge Approach
      <https://arxiv.org/abs/1910.07512>`_, ICLR 2020 (Alg. 1; its analysis: FR's stable fixed
      points are exactly the local minimax points).
    """
    bases = base_lib.as_players(base)
    checks.check_number("damping", damping, low=0.0, high=math.inf, high_open=True)
    checks.check_number("tol", tol, low=0.0, high=math.inf, high_open=True)
    checks.check_int("maxiter", maxiter, minimum=1)
    checks.check_bool("warm_start", warm_start)

    def init(params: Players) -> FollowTheRidgeState:
        checks.check_players(params, "params")
        solution = optax.tree.zeros_like(to_solve_dtype(params.y))
        dtype = jnp.result_type(jnp.float32, *(checks.dtype_of(leaf) for leaf in jax.tree.leaves(params.y)))
        return FollowTheRidgeState(
            base_lib.init(bases, params), solution, jnp.zeros([], jnp.int32), jnp.zeros([], dtype), PassCount.zero()
        )

    def update(game: Game, params: Players, state: FollowTheRidgeState, batch: Batch = None):
        (batch,) = split_batch(batch, 1, "follow_the_ridge")
        checks.check_same_layout(
            state.solution, to_solve_dtype(params.y), "the Follow-the-Ridge solution", "params.y", check_dtype=False
        )
        field, jvp, _ = linearize_field(game, params, batch)
        ux, base_state = base_lib.update_player(bases, "x", field.x, state.base, params)
        uy, base_state = base_lib.update_player(bases, "y", field.y, base_state, params)
        _, jyx = off_diagonal_blocks(jvp, params)
        _, jyy = diagonal_blocks(jvp, params)

        def matvec(w):  # (J_yy + λI)·w, in the solve's dtypes
            return jax.tree.map(lambda a, b: (a.astype(b.dtype) + damping * b).astype(b.dtype), jyy(w), w)

        rhs = to_solve_dtype(jyx(ux))
        guess = state.solution if warm_start else None

        def solve(operator, b):
            return cg(operator, b, guess, tol=tol, maxiter=maxiter)

        # Implicit differentiation at the solution: the step can be differentiated in reverse mode.
        w, info = jax.lax.custom_linear_solve(matvec, rhs, solve, symmetric=True, has_aux=True)
        uy = jax.tree.map(lambda u, c: (u - c.astype(u.dtype)).astype(u.dtype), uy, w)
        residual = info.residual.astype(state.residual.dtype)
        evaluations = state.evaluations.add((2 + info.matvecs) * game.cost)
        return Players(ux, uy), FollowTheRidgeState(base_state, w, info.iterations, residual, evaluations)

    return GameTransformation(init, update)
