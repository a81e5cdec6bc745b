"""Competitive gradient descent (CGD) and its adaptive variant ACGD."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Game, GameTransformation, PassCount, Players, checks, per_player, split_batch
from gamejax._src.derivatives import linearize_field, off_diagonal_blocks
from gamejax._src.linear_solve import SolveInfo, bicgstab, cg, gmres, solve_dtype, to_solve_dtype

# The solvers of a general-sum game's (non-symmetric) system; zero-sum games use conjugate gradient.
SOLVERS = ("gmres", "bicgstab")


class CGDState(NamedTuple):
    """State of :func:`cgd`.

    Attributes:
      solution: the last solve's solution (in the scaled coordinates of ``x``), the warm start.
      iterations: iterations the last solve used.
      residual: the last solve's final relative residual; above ``tol`` means it hit ``maxiter``.
      matvecs: matrix-vector products the last solve used, each a pair of Jacobian-block products
        (``J_xy·(J_yx·u)``): one per iteration for CG and GMRES, two for BiCGSTAB, plus the warm
        start's and one per true-residual check (:class:`gamejax.SolveInfo`).
      count: steps taken (for learning-rate schedules), saturating at the int32 maximum
        (``optax.safe_increment``, as Optax's own counts) instead of wrapping.
      evaluations: passes so far (:class:`gamejax.PassCount`, gradient-equivalents): per step
        one linearization, two block products for the right-hand side and back-substitution,
        and two per matrix-vector product of the solve, each weighted by the game's ``cost``
        (:func:`gamejax.fit` reports it as ``passes``).
    """

    solution: Any
    iterations: jax.Array
    residual: jax.Array
    matvecs: jax.Array
    count: jax.Array
    evaluations: PassCount


class ACGDState(NamedTuple):
    """State of :func:`acgd`: :class:`CGDState`'s fields plus ``nu``, the second-moment estimates."""

    nu: Players
    solution: Any
    iterations: jax.Array
    residual: jax.Array
    matvecs: jax.Array
    count: jax.Array
    evaluations: PassCount


def _like(tree: Any, reference: Any) -> Any:
    return jax.tree.map(lambda t, r: t.astype(checks.dtype_of(r)), tree, reference)


def _scale(step: Any, tree: Any) -> Any:
    """``step ⊙ tree`` for per-parameter step sizes shaped like ``tree``."""
    return jax.tree.map(lambda s, t: s * t, step, tree)


def _broadcast(rates: Players, params: Players) -> Players:
    """One step size per player as per-parameter step sizes (CGD is ACGD with ``A = ηI``)."""
    return Players(
        *(
            jax.tree.map(lambda p, r=r: jnp.full(jnp.shape(p), r, solve_dtype(p)), player)
            for player, r in zip(params, rates, strict=True)
        )
    )


def _neg(tree: Any) -> Any:
    return jax.tree.map(jnp.negative, tree)


def local_nash(
    field: Players,
    jvp: Callable[[Players], Players],
    params: Players,
    steps: Players,
    guess: Any,
    *,
    symmetric: bool,
    tol: Any,
    maxiter: Any,
    solver: str = "gmres",
    restart: int = 20,
) -> tuple[Players, Any, SolveInfo]:
    """The Nash equilibrium ``(Δx, Δy)`` of the local bilinear game with step sizes ``A``.

    In gamejax's convention (each player minimizes, field ``v``, blocks ``Jxy = ∂v_x/∂y``,
    ``Jyx = ∂v_y/∂x``) the local game is

    .. math:: \\min_{Δx} Δx^⊤v_x + Δx^⊤J_{xy}Δy + ½Δx^⊤A_x^{-1}Δx, \\quad
              \\min_{Δy} Δy^⊤v_y + Δy^⊤J_{yx}Δx + ½Δy^⊤A_y^{-1}Δy,

    whose equilibrium solves ``(I − A_x^½ J_xy A_y J_yx A_x^½) u = −A_x^½ (v_x − J_xy A_y v_y)``
    with ``Δx = A_x^½ u`` and then ``Δy = −A_y (v_y + J_yx Δx)``. For a zero-sum game
    ``J_yx = −J_xyᵀ`` and the matrix is ``I + A_x^½ D_xy A_y D_yx A_x^½``, symmetric positive
    definite (ICR paper, App. A.5): solved by conjugate gradient. Otherwise by ``solver``:
    restarted GMRES (one matrix-vector product per iteration) or BiCGSTAB (two). Each
    matrix-vector product costs two Jacobian-vector products of the linearized field (``jvp``).

    Args:
      field: ``v`` at ``params``; ``jvp``: ``t ↦ J·t`` linearized there.
      params: the params (for shapes and dtypes).
      steps: ``Players`` of per-parameter step sizes ``A_x, A_y``, shaped like the players.
      guess: the warm start for ``u`` (in solve dtype, shaped like ``x``), or ``None``.
      symmetric: use conjugate gradient (zero-sum games).
      tol, maxiter: the solver's relative tolerance and iteration cap.
      solver: ``"gmres"`` or ``"bicgstab"``, for a non-symmetric system; restart: GMRES's cycle.

    Returns:
      ``(updates, u, SolveInfo)``.
    """
    block_xy, block_yx = off_diagonal_blocks(jvp, params)

    def jxy(w):  # Jxy·w for w shaped like y (solve dtype) -> x-shaped (solve dtype)
        return to_solve_dtype(block_xy(w))

    def jyx(u):
        return to_solve_dtype(block_yx(u))

    root_x = jax.tree.map(jnp.sqrt, steps.x)
    v = to_solve_dtype(field)

    def matvec(u):
        return optax.tree.sub(u, _scale(root_x, jxy(_scale(steps.y, jyx(_scale(root_x, u))))))

    rhs = _neg(_scale(root_x, optax.tree.sub(v.x, jxy(_scale(steps.y, v.y)))))
    if symmetric:
        method = cg
    elif solver == "gmres":
        method = lambda *args, **kwargs: gmres(*args, restart=restart, **kwargs)  # noqa: E731
    else:
        method = bicgstab

    def solve(operator, b):
        return method(operator, b, guess, tol=tol, maxiter=maxiter)

    def transpose_solve(operator, b):
        return method(operator, b, None, tol=tol, maxiter=maxiter)

    # Implicit differentiation at the solution: the step can be differentiated in reverse mode
    # (the while-loop solver itself cannot be).
    u, info = jax.lax.custom_linear_solve(
        matvec, rhs, solve, transpose_solve=None if symmetric else transpose_solve, symmetric=symmetric, has_aux=True
    )
    dx = _scale(root_x, u)
    dy = _neg(_scale(steps.y, optax.tree.add(v.y, jyx(dx))))
    return _like(Players(dx, dy), params), u, info


def _check_solver_args(tol: Any, maxiter: Any, solver: str, restart: Any) -> None:
    checks.check_number("tol", tol, low=0.0, high=math.inf, high_open=True)
    checks.check_int("maxiter", maxiter, minimum=1)
    checks.check_choice("solver", solver, SOLVERS)
    checks.check_int("restart", restart, minimum=1)  # (and concrete: gmres says so when it runs)


def _learning_rates(learning_rate: Any, name: str) -> Players:
    rates = per_player(learning_rate)
    for player, rate in zip(("x", "y"), rates, strict=True):
        if not callable(rate):
            checks.check_number(
                f"{name} (player {player})", rate, low=0.0, low_open=True, high=float("inf"), high_open=True
            )
    return rates


def _at(rates: Players, count: jax.Array) -> Players:
    return Players(*(rate(count) if callable(rate) else rate for rate in rates))


def _empty_solve(params: Players) -> tuple[Any, jax.Array, jax.Array, jax.Array]:
    solution = optax.tree.zeros_like(to_solve_dtype(params.x))
    dtype = jnp.result_type(jnp.float32, *(checks.dtype_of(leaf) for leaf in jax.tree.leaves(params.x)))
    return solution, jnp.zeros([], jnp.int32), jnp.zeros([], dtype), jnp.zeros([], jnp.int32)


def _evaluations(previous: PassCount, info: SolveInfo, game: Game) -> PassCount:
    """Add one step's cost: a linearization, two block products, two per matrix-vector product."""
    return previous.add((3 + 2 * info.matvecs) * game.cost)


def cgd(
    learning_rate: Any,
    *,
    tol: Any = 1e-6,
    maxiter: Any = 50,
    warm_start: bool = True,
    solver: str = "gmres",
    restart: int = 20,
) -> GameTransformation:
    """Competitive gradient descent: each step plays the Nash equilibrium of the local bilinear game.

    With step size ``η`` (ICR paper, §5; Schäfer & Anandkumar 2019), in gamejax's convention:

    .. math::  Δx = −η (I − η^2 J_{xy} J_{yx})^{-1} (v_x − η J_{xy} v_y), \\qquad
               Δy = −η (v_y + J_{yx} Δx)

    which for a zero-sum ``f`` (``v = (∇x f, −∇y f)``) is the paper's
    ``Δx = −η(I + η² D_xy D_yx)^{-1}(∇x f + η D_xy ∇y f)``. The linear system is solved inside
    the compiled step with a conjugate-gradient ``lax.while_loop`` (for general-sum games, where
    the system is not symmetric, restarted GMRES or BiCGSTAB: ``solver``), on one linearization
    of the field per step, warm-started from the previous step's solution. The state reports
    the iterations and matrix-vector products used and the final relative residual, so a solve
    that stopped at ``maxiter`` is visible.

    Cost per step: one linearization of the field (a gradient's forward and backward pass),
    two Jacobian-vector products for the right-hand side and back-substitution, and two per
    matrix-vector product of the solve: one product per iteration for CG and GMRES, two for
    BiCGSTAB, plus the warm start's and the true-residual checks' (``CGDState.matvecs``).

    Args:
      learning_rate: ``η > 0``, one value or ``gj.Players`` of them, or Optax schedules.
      tol: relative residual at which the solve stops.
      maxiter: iteration cap of the solve.
      warm_start: start each solve from the previous solution.
      solver: the solver of a general-sum game's system: ``"gmres"`` (GMRES(``restart``), Saad &
        Schultz 1986; one matrix-vector product per iteration and one per restart, ``restart + 1``
        stored vectors the size of ``x``) or ``"bicgstab"`` (van der Vorst 1992; two products per
        iteration, a fixed handful of vectors). GMRES is the default: on GAN systems it reached every
        tolerance from 1e-1 to 1e-6 with 0.56–0.73× BiCGSTAB's products, and trained with
        0.51–0.87× the products per step (benchmarks/README.md, "CGD's solvers on general-sum
        games"); BiCGSTAB needs less memory. Zero-sum games always use conjugate gradient (their
        system is symmetric positive definite).
      restart: GMRES's restart length (a concrete int >= 1; ignored by the other solvers).

    Returns:
      A :class:`GameTransformation` with state :class:`CGDState`.

    Example:
      >>> import gamejax as gj
      >>> tx = gj.cgd(0.1, tol=1e-8, maxiter=100)

    References:
      Schäfer & Anandkumar, `Competitive Gradient Descent <https://arxiv.org/abs/1905.12103>`_,
      2019; Schäfer, Zheng & Anandkumar, `Implicit competitive regularization in GANs
      <https://arxiv.org/abs/1910.05852>`_, 2020 (§5).
    """
    rates = _learning_rates(learning_rate, "learning_rate")
    _check_solver_args(tol, maxiter, solver, restart)
    checks.check_bool("warm_start", warm_start)

    def init(params: Players) -> CGDState:
        checks.check_players(params, "params")
        return CGDState(*_empty_solve(params), jnp.zeros([], jnp.int32), PassCount.zero())

    def update(game: Game, params: Players, state: CGDState, batch: Batch = None):
        (batch,) = split_batch(batch, 1, "cgd")
        field, jvp, _ = linearize_field(game, params, batch)
        guess = state.solution if warm_start else None
        updates, solution, info = local_nash(
            field,
            jvp,
            params,
            _broadcast(_at(rates, state.count), params),
            guess,
            symmetric=game.zero_sum,
            tol=tol,
            maxiter=maxiter,
            solver=solver,
            restart=restart,
        )
        residual = info.residual.astype(state.residual.dtype)
        evaluations = _evaluations(state.evaluations, info, game)
        count = optax.safe_increment(state.count)
        return updates, CGDState(solution, info.iterations, residual, info.matvecs, count, evaluations)

    return GameTransformation(init, update)


def acgd(
    learning_rate: Any = 1e-4,
    *,
    beta2: Any = 0.99,
    eps: Any = 1e-5,
    tol: Any = 1e-6,
    maxiter: Any = 50,
    warm_start: bool = True,
    solver: str = "gmres",
    restart: int = 20,
) -> GameTransformation:
    """Adaptive competitive gradient descent (ICR paper, App. A.5, Alg. 1).

    CGD with per-parameter step sizes from RMSprop-type second-moment estimates:

    .. math::  ν_t = β_2 ν_{t-1} + (1 − β_2) v_t^2, \\quad \\hat ν_t = ν_t / (1 − β_2^t), \\quad
               A = \\mathrm{diag}(α / (\\sqrt{\\hat ν_t} + ε))

    then the local game of :func:`cgd` with ``A_x, A_y`` in place of ``η``: for a zero-sum
    game the symmetric positive-definite system ``I + A_x^½ D_xy A_y D_yx A_x^½`` is solved by
    conjugate gradient. (Alg. 1 overwrites ``ν`` with its bias-corrected value; this keeps
    the estimate and its correction apart, as Adam does.) If all step sizes are equal, ACGD
    is CGD with that step size. Same solvers, warm start and reporting as :func:`cgd`.

    Args:
      learning_rate: ``α > 0`` (paper: 1e-4), one value, ``gj.Players`` or Optax schedules.
      beta2: second-moment decay in ``[0, 1)`` (paper: 0.99).
      eps: ``ε > 0`` (paper: 1e-5).
      tol, maxiter, warm_start, solver, restart: as in :func:`cgd`.

    Returns:
      A :class:`GameTransformation` with state :class:`ACGDState`.

    Example:
      >>> import gamejax as gj
      >>> tx = gj.acgd(1e-4, beta2=0.99, eps=1e-5)

    References:
      Schäfer, Zheng & Anandkumar, `Implicit competitive regularization in GANs
      <https://arxiv.org/abs/1910.05852>`_, 2020 (App. A.5, Alg. 1).
    """
    rates = _learning_rates(learning_rate, "learning_rate")
    checks.check_number("beta2", beta2, low=0.0, high=1.0, high_open=True)
    checks.check_number("eps", eps, low=0.0, low_open=True, high=float("inf"), high_open=True)
    _check_solver_args(tol, maxiter, solver, restart)
    checks.check_bool("warm_start", warm_start)

    def init(params: Players) -> ACGDState:
        checks.check_players(params, "params")
        nu = optax.tree.zeros_like(to_solve_dtype(params))
        return ACGDState(nu, *_empty_solve(params), jnp.zeros([], jnp.int32), PassCount.zero())

    def update(game: Game, params: Players, state: ACGDState, batch: Batch = None):
        (batch,) = split_batch(batch, 1, "acgd")
        checks.check_same_layout(state.nu, to_solve_dtype(params), "the ACGD second moments", "params")
        field, jvp, _ = linearize_field(game, params, batch)
        count = optax.safe_increment(state.count)  # saturates: 1 - beta2**count stays right
        nu = jax.tree.map(lambda n, g: beta2 * n + (1 - beta2) * jnp.square(g.astype(n.dtype)), state.nu, field)
        correction = 1 - beta2 ** count.astype(jnp.result_type(*jax.tree.leaves(nu)))
        alphas = _at(rates, state.count)
        steps = Players(
            *(
                jax.tree.map(lambda n, a=a: a / (jnp.sqrt(n / correction) + eps), nu_p)
                for nu_p, a in zip(nu, alphas, strict=True)
            )
        )
        guess = state.solution if warm_start else None
        updates, solution, info = local_nash(
            field,
            jvp,
            params,
            steps,
            guess,
            symmetric=game.zero_sum,
            tol=tol,
            maxiter=maxiter,
            solver=solver,
            restart=restart,
        )
        residual = info.residual.astype(state.residual.dtype)
        evaluations = _evaluations(state.evaluations, info, game)
        return updates, ACGDState(nu, solution, info.iterations, residual, info.matvecs, count, evaluations)

    return GameTransformation(init, update)
