"""Krylov solvers on pytrees that report how well they converged.

Both run inside ``jit`` as ``lax.while_loop`` s, take a warm start, and return
``(solution, SolveInfo)`` instead of raising, so a solve that did not reach its tolerance is
visible in the optimizer state. Inner products, iterates, residuals and search directions are
kept in at least float32 (the matrix-vector products run in the operands' own dtype), so a
solve on bfloat16 params does not stall on bfloat16 rounding.
``jax.scipy.sparse.linalg.cg`` returns no convergence information, hence these.

Both update the residual by a recurrence (``r ← r − α·A·p``), which in finite precision drifts
from the true residual ``b − A·x``: the recurrence keeps shrinking while ``x`` no longer improves,
and a stopping test on it claims a convergence the solution does not have. So, as lineax's CG
does, every ``recompute_every`` iterations ``b − A·x`` is computed (one more product), and the
solve always ends on it: :class:`SolveInfo` reports the true residual, and it alone decides
``converged`` and when to stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import checks

Tree = Any


class SolveInfo(NamedTuple):
    """How a linear solve ended.

    Attributes:
      iterations: iterations run (each costs one matrix-vector product for CG, two for BiCGSTAB).
      residual: the TRUE relative residual ``‖b − A·x‖ / ‖b‖`` of the returned ``x`` (computed
        from ``x``, not taken from the recurrence), 0 when ``b = 0``.
      matvecs: matrix-vector products used: the iterations', the warm start's ``A·x0``, and one per
        true-residual computation (every ``recompute_every`` iterations, and whenever they stop).
      converged: whether ``residual <= tol`` (always true for ``b = 0``).
    """

    iterations: jax.Array
    residual: jax.Array
    matvecs: jax.Array
    converged: jax.Array


def _accumulator_dtype(tree: Tree) -> jnp.dtype:
    return jnp.result_type(jnp.float32, *(checks.dtype_of(leaf) for leaf in jax.tree.leaves(tree)))


def _dot(a: Tree, b: Tree, dtype: jnp.dtype) -> jax.Array:
    return sum(
        (
            jnp.vdot(u.astype(dtype), w.astype(dtype))
            for u, w in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        ),
        jnp.zeros([], dtype),
    )


def _axpy(alpha: jax.Array, x: Tree, y: Tree) -> Tree:
    """``alpha·x + y`` in ``y``'s dtypes."""
    return jax.tree.map(lambda u, w: (alpha * u.astype(alpha.dtype) + w.astype(alpha.dtype)).astype(w.dtype), x, y)


def _safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den``, and 0 where ``den == 0`` (an exactly converged iteration, not a NaN)."""
    return jnp.where(den == 0, jnp.zeros_like(num), num / jnp.where(den == 0, jnp.ones_like(den), den))


def _in_accumulator_dtype(
    matvec: Callable[[Tree], Tree], b: Tree, x0: Tree | None
) -> tuple[Callable[[Tree], Tree], Tree, Tree | None, Callable[[Tree], Tree]]:
    """The problem with every Krylov vector in at least float32 (bfloat16/float16 params).

    The products still run in the operands' own dtypes; the iterates, residuals and search
    directions (the recurrences, where low precision stalls a solve) are kept in the
    accumulator dtype, and the solution is cast back to ``b``'s dtypes at the end.
    """
    dtype = _accumulator_dtype(b)
    up = lambda tree: jax.tree.map(lambda leaf: leaf.astype(jnp.promote_types(leaf.dtype, dtype)), tree)

    def wide_matvec(v: Tree) -> Tree:
        return up(matvec(jax.tree.map(lambda u, ref: u.astype(ref.dtype), v, b)))

    def back(x: Tree) -> Tree:
        return jax.tree.map(lambda u, ref: u.astype(ref.dtype), x, b)

    return wide_matvec, up(b), None if x0 is None else up(x0), back


# A method is ``make(matvec, dot) -> (products per iteration, init, step)``: ``init(r, rr)`` is the
# recurrence state that starts from a residual ``r`` with ``rr = ‖r‖²``, and
# ``step(x, r, rr, state) -> (x, r, state)`` one iteration with the recursively updated ``r``.
Method = Callable[[Callable[[Tree], Tree], Callable[[Tree, Tree], jax.Array]], tuple[int, Callable, Callable]]

# A recursive residual more than this far (relatively) from the true one is replaced, and the
# recurrence restarted from it. One that is closer is kept: swapping in the true residual at every
# check perturbs the recurrences (CG on a condition-1e4 SPD system took 517 iterations instead of
# 399 in float64), and keeping their state after a large swap can diverge (float32 CG grew the
# residual to 2 where it stagnates at 1e-4). Replacing only when needed follows van der Vorst & Ye,
# "Residual replacement strategies for Krylov subspace iterative methods", SIAM J. Sci. Comput. (2000).
_DRIFT = 0.1


def _krylov(
    make: Method, matvec: Callable[[Tree], Tree], b: Tree, x0: Tree | None, tol: Any, maxiter: Any, recompute_every: Any
) -> tuple[Tree, SolveInfo]:
    """The shared driver: set-up, iterations in cycles that each end on a true residual, the tail.

    A cycle runs the method for up to ``recompute_every`` iterations (fewer when its recursive
    residual meets the tolerance), then computes ``b − A·x``. Cycles repeat until that true
    residual meets the tolerance or ``maxiter`` iterations are spent, so a recursive residual that
    drifted below the tolerance starts another cycle instead of ending the solve. Nested loops
    rather than a ``lax.cond`` in one loop: under ``vmap`` a batched ``cond`` runs both branches,
    i.e. the extra product at every iteration.
    """
    checks.check_number("tol", tol, low=0.0, high=float("inf"), high_open=True)
    checks.check_int("maxiter", maxiter, minimum=0)
    if recompute_every is not None:
        checks.check_int("recompute_every", recompute_every, minimum=0)
    matvec, b, x0, back = _in_accumulator_dtype(matvec, b, x0)
    dtype = _accumulator_dtype(b)
    dot = lambda u, w: _dot(u, w, dtype)
    products, init, step = make(matvec, dot)
    b_norm = jnp.sqrt(dot(b, b))
    threshold = jnp.maximum(tol * b_norm, jnp.finfo(dtype).tiny)
    # Warm start: the initial residual is b − A·x0 (one product), not b; cold: x = 0, r = b.
    x, r = (optax.tree.zeros_like(b), b) if x0 is None else (x0, optax.tree.sub(b, matvec(x0)))
    rr = dot(r, r)
    period = maxiter if recompute_every is None or recompute_every == 0 else recompute_every
    zero = jnp.zeros([], jnp.int32)

    def going(rr, k, stop):
        return (k < stop) & (jnp.sqrt(rr) > threshold)

    def iteration(carry):
        x, r, rr, state, k = carry
        x, r, state = step(x, r, rr, state)
        return x, r, dot(r, r), state, k + 1

    def cycle(carry):  # carry: (x, recursive r, its ‖r‖², state, iterations, cycles, true ‖r‖²)
        x, r, rr, state, k, cycles, _ = carry
        stop = jnp.minimum(k + period, maxiter)
        x, r, rr, state, k = jax.lax.while_loop(lambda c: going(c[2], c[4], stop), iteration, (x, r, rr, state, k))
        true_r = optax.tree.sub(b, matvec(x))
        true_rr = dot(true_r, true_r)
        gap = optax.tree.sub(true_r, r)
        drifted = dot(gap, gap) > _DRIFT**2 * true_rr
        # Replace a drifted residual (restarting the recurrence from it), and one that claims a
        # convergence the true residual denies (the next cycle must make progress from the truth).
        replace = drifted | (jnp.sqrt(rr) <= threshold)
        state = jax.tree.map(lambda fresh, old: jnp.where(drifted, fresh, old), init(true_r, true_rr), state)
        r = optax.tree.where(replace, true_r, r)
        return x, r, jnp.where(replace, true_rr, rr), state, k, cycles + 1, true_rr

    carry = (x, r, rr, init(r, rr), zero, zero, rr)
    x, *_, k, cycles, rr = jax.lax.while_loop(lambda c: going(c[6], c[4], maxiter) & (b_norm > 0), cycle, carry)
    zero_rhs = b_norm == 0
    x = optax.tree.where(zero_rhs, optax.tree.zeros_like(x), x)
    r_norm = jnp.sqrt(rr)
    residual = jnp.where(zero_rhs, 0.0, r_norm / jnp.where(zero_rhs, 1.0, b_norm)).astype(dtype)
    converged = zero_rhs | (r_norm <= threshold)
    return back(x), SolveInfo(k, residual, products * k + cycles + int(x0 is not None), converged)


def _cg(matvec: Callable[[Tree], Tree], dot: Callable[[Tree, Tree], jax.Array]) -> tuple[int, Callable, Callable]:
    def init(r, rr):  # p = 0 and ‖r_prev‖² = 1: the first direction is p = r.
        return optax.tree.zeros_like(r), jnp.ones_like(rr)

    def step(x, r, rr, state):
        p, rr_prev = state
        p = _axpy(_safe_divide(rr, rr_prev), p, r)
        ap = matvec(p)
        alpha = _safe_divide(rr, dot(p, ap))
        return _axpy(alpha, p, x), _axpy(-alpha, ap, r), (p, rr)

    return 1, init, step


def _bicgstab(matvec: Callable[[Tree], Tree], dot: Callable[[Tree, Tree], jax.Array]) -> tuple[int, Callable, Callable]:
    # A restart takes the shadow residual r̂ = r (so ρ = ‖r‖² > 0), not the old r̂, which is
    # nearly orthogonal to the current r by then (ρ ≈ 0, a breakdown: restarted that way, a
    # float32 solve diverged). ρ = α = ω = 1 and p = v = 0 make the first direction p = r.
    def init(r, rr):
        one = jnp.ones_like(rr)
        zeros = optax.tree.zeros_like(r)
        return r, zeros, zeros, one, one, one

    def step(x, r, rr, state):
        r_hat, p, v, rho, alpha, omega = state
        rho_new = dot(r_hat, r)
        beta = _safe_divide(rho_new, rho) * _safe_divide(alpha, omega)
        p = _axpy(beta, _axpy(-omega, v, p), r)
        v = matvec(p)
        alpha = _safe_divide(rho_new, dot(r_hat, v))
        s = _axpy(-alpha, v, r)
        t = matvec(s)
        omega = _safe_divide(dot(t, s), dot(t, t))
        x = _axpy(omega, s, _axpy(alpha, p, x))
        return x, _axpy(-omega, t, s), (r_hat, p, v, rho_new, alpha, omega)

    return 2, init, step


def cg(
    matvec: Callable[[Tree], Tree],
    b: Tree,
    x0: Tree | None = None,
    *,
    tol: Any,
    maxiter: int,
    recompute_every: int | None = 10,
) -> tuple[Tree, SolveInfo]:
    """Conjugate gradient for a symmetric positive-definite ``A``: solve ``A·x = b`` from ``x0``.

    Hestenes & Stiefel, "Methods of conjugate gradients for solving linear systems", J. Res. Nat.
    Bur. Standards 49 (1952). Stops when the true residual ``‖b − A·x‖ <= tol·‖b‖`` or after
    ``maxiter`` iterations. The initial residual is ``b − A·x0`` (a warm start is honoured;
    ``x0=None`` starts from zero without that product), and an exactly converged iteration
    (``r = 0``) cannot produce ``0/0``.

    Args:
      matvec: ``v ↦ A·v`` on pytrees shaped like ``b``.
      b: the right-hand side (a pytree); ``b = 0`` returns ``x = 0``.
      x0: the warm start, or ``None``.
      tol: relative tolerance on the true residual; maxiter: the iteration cap.
      recompute_every: compute the true residual ``b − A·x`` every this many iterations (one more
        product each); it replaces the recursive one (restarting the recurrence) once they differ
        by over 10%, or when only the recursion claims convergence. ``None`` or 0: only when the
        iterations stop (convergence claimed, or ``maxiter``), which happens once in any case.

    Returns:
      ``(x, SolveInfo)``, ``x`` in ``b``'s dtypes.
    """
    return _krylov(_cg, matvec, b, x0, tol, maxiter, recompute_every)


def bicgstab(
    matvec: Callable[[Tree], Tree],
    b: Tree,
    x0: Tree | None = None,
    *,
    tol: Any,
    maxiter: int,
    recompute_every: int | None = 10,
) -> tuple[Tree, SolveInfo]:
    """BiCGSTAB for a general (non-symmetric) ``A``: solve ``A·x = b`` from ``x0``.

    van der Vorst, "Bi-CGSTAB: a fast and smoothly converging variant of Bi-CG for the solution
    of nonsymmetric linear systems", SIAM J. Sci. Stat. Comput. 13 (1992). Same arguments,
    stopping rule, warm start, residual recomputation and 0/0 guards as :func:`cg`; two products
    per iteration.
    """
    return _krylov(_bicgstab, matvec, b, x0, tol, maxiter, recompute_every)
