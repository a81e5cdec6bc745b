"""Krylov solvers on pytrees that report how well they converged.

Conjugate gradient, BiCGSTAB and restarted GMRES run inside ``jit`` as ``lax.while_loop`` s,
take a warm start, and return ``(solution, SolveInfo)`` instead of raising, so a solve that did
not reach its tolerance is visible in the optimizer state. Inner products, iterates, residuals
and search directions are kept in at least float32 (the matrix-vector products run in the
operands' own dtype), so a solve on bfloat16 params does not stall on bfloat16 rounding.
``jax.scipy.sparse.linalg.cg`` returns no convergence information, hence these.

CG and BiCGSTAB update the residual by a recurrence (``r ← r − α·A·p``), which in finite
precision drifts from the true residual ``b − A·x``: the recurrence keeps shrinking while ``x``
no longer improves, and a stopping test on it claims a convergence the solution does not have.
So, as lineax's CG does, every ``recompute_every`` iterations ``b − A·x`` is computed (one more
product), and the solve always ends on it: :class:`SolveInfo` reports the true residual, and it
alone decides ``converged`` and when to stop. GMRES(m) needs ``b − A·x`` at each restart anyway:
its cycles are its restarts, each ending on the true residual it restarts from.
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
      iterations: iterations run (each costs ``products_per_iteration`` matrix-vector products).
      residual: the TRUE relative residual ``‖b − A·x‖ / ‖b‖`` of the returned ``x`` (computed
        from ``x``, not taken from the recurrence), 0 when ``b = 0``.
      matvecs: matrix-vector products used: the iterations', the warm start's ``A·x0``, and one per
        true-residual computation (every ``recompute_every`` iterations, or at each GMRES restart,
        and whenever the iterations stop).
      converged: whether ``residual <= tol`` (always true for ``b = 0``).
      products_per_iteration: int32, the matrix-vector products one iteration costs: 1 for CG and
        GMRES, 2 for BiCGSTAB (so iterations of different solvers can be compared).
    """

    iterations: jax.Array
    residual: jax.Array
    matvecs: jax.Array
    converged: jax.Array
    products_per_iteration: jax.Array


def solve_dtype(leaf: jax.Array) -> jnp.dtype:
    """The dtype a method solves in for a params leaf: its own, promoted to at least float32."""
    return jnp.promote_types(checks.dtype_of(leaf), jnp.float32)


def to_solve_dtype(tree: Tree) -> Tree:
    """``tree`` cast leaf by leaf to :func:`solve_dtype` (bfloat16/float16 params solve in float32)."""
    return jax.tree.map(lambda t: t.astype(solve_dtype(t)), tree)


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


class _Method(NamedTuple):
    """One Krylov method, as the shared driver :func:`_krylov` runs it.

    ``init(r, rr)`` is the recurrence state that starts from a residual ``r`` with ``rr = ‖r‖²``;
    ``step(x, r, rr, state) -> (x, r, rr, state)`` is one iteration (``products`` matrix-vector
    products), returning the recursively updated residual and its squared norm (GMRES: the
    residual it started from, with its least-squares estimate of the current norm);
    ``finish(x, state)`` is the iterate at the end of a cycle (GMRES forms it there); with
    ``restarts`` every cycle restarts the recurrence from the true residual.
    """

    products: int
    init: Callable
    step: Callable
    finish: Callable
    restarts: bool


# A recursive residual more than this far (relatively) from the true one is replaced, and the
# recurrence restarted from it. One that is closer is kept: swapping in the true residual at every
# check perturbs the recurrences (CG on a condition-1e4 SPD system took 517 iterations instead of
# 399 in float64), and keeping their state after a large swap can diverge (float32 CG grew the
# residual to 2 where it stagnates at 1e-4). Replacing only when needed follows van der Vorst & Ye,
# "Residual replacement strategies for Krylov subspace iterative methods", SIAM J. Sci. Comput. (2000).
_DRIFT = 0.1


def _krylov(
    make: Callable[[Callable[[Tree], Tree], Callable[[Tree, Tree], jax.Array]], _Method],
    matvec: Callable[[Tree], Tree],
    b: Tree,
    x0: Tree | None,
    tol: Any,
    maxiter: Any,
    recompute_every: Any,
) -> tuple[Tree, SolveInfo]:
    """The shared driver: set-up, iterations in cycles that each end on a true residual, the tail.

    A cycle runs the method for up to ``recompute_every`` iterations (fewer when its recursive
    residual meets the tolerance), then computes ``b − A·x``. Cycles repeat until that true
    residual meets the tolerance or ``maxiter`` iterations are spent, so a recursive residual that
    drifted below the tolerance starts another cycle instead of ending the solve. Nested loops
    rather than a ``lax.cond`` in one loop: under ``vmap`` a batched ``cond`` runs both branches,
    i.e. the extra product at every iteration. A restarting method (GMRES) starts every cycle
    afresh from the true residual that ended the previous one.
    """
    checks.check_number("tol", tol, low=0.0, high=float("inf"), high_open=True)
    checks.check_int("maxiter", maxiter, minimum=0)
    if recompute_every is not None:
        checks.check_int("recompute_every", recompute_every, minimum=0)
    matvec, b, x0, back = _in_accumulator_dtype(matvec, b, x0)
    dtype = _accumulator_dtype(b)
    dot = lambda u, w: _dot(u, w, dtype)
    method = make(matvec, dot)
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
        x, r, rr, state = method.step(x, r, rr, state)
        return x, r, rr, state, k + 1

    def cycle(carry):  # carry: (x, recursive r, its ‖r‖², state, iterations, cycles, true ‖r‖²)
        x, r, rr, state, k, cycles, _ = carry
        stop = jnp.minimum(k + period, maxiter)
        x, r, rr, state, k = jax.lax.while_loop(lambda c: going(c[2], c[4], stop), iteration, (x, r, rr, state, k))
        x = method.finish(x, state)
        true_r = optax.tree.sub(b, matvec(x))
        true_rr = dot(true_r, true_r)
        if method.restarts:
            return x, true_r, true_rr, method.init(true_r, true_rr), k, cycles + 1, true_rr
        gap = optax.tree.sub(true_r, r)
        drifted = dot(gap, gap) > _DRIFT**2 * true_rr
        # Replace a drifted residual (restarting the recurrence from it), and one that claims a
        # convergence the true residual denies (the next cycle must make progress from the truth).
        replace = drifted | (jnp.sqrt(rr) <= threshold)
        state = jax.tree.map(lambda fresh, old: jnp.where(drifted, fresh, old), method.init(true_r, true_rr), state)
        r = optax.tree.where(replace, true_r, r)
        return x, r, jnp.where(replace, true_rr, rr), state, k, cycles + 1, true_rr

    carry = (x, r, rr, method.init(r, rr), zero, zero, rr)
    x, *_, k, cycles, rr = jax.lax.while_loop(lambda c: going(c[6], c[4], maxiter) & (b_norm > 0), cycle, carry)
    zero_rhs = b_norm == 0
    x = optax.tree.where(zero_rhs, optax.tree.zeros_like(x), x)
    r_norm = jnp.sqrt(rr)
    residual = jnp.where(zero_rhs, 0.0, r_norm / jnp.where(zero_rhs, 1.0, b_norm)).astype(dtype)
    converged = zero_rhs | (r_norm <= threshold)
    matvecs = method.products * k + cycles + int(x0 is not None)
    return back(x), SolveInfo(k, residual, matvecs, converged, jnp.asarray(method.products, jnp.int32))


def _unchanged(x: Tree, state: Any) -> Tree:
    return x


def _cg(matvec: Callable[[Tree], Tree], dot: Callable[[Tree, Tree], jax.Array]) -> _Method:
    def init(r, rr):  # p = 0 and ‖r_prev‖² = 1: the first direction is p = r.
        return optax.tree.zeros_like(r), jnp.ones_like(rr)

    def step(x, r, rr, state):
        p, rr_prev = state
        p = _axpy(_safe_divide(rr, rr_prev), p, r)
        ap = matvec(p)
        alpha = _safe_divide(rr, dot(p, ap))
        r_new = _axpy(-alpha, ap, r)
        return _axpy(alpha, p, x), r_new, dot(r_new, r_new), (p, rr)

    return _Method(1, init, step, _unchanged, restarts=False)


def _bicgstab(matvec: Callable[[Tree], Tree], dot: Callable[[Tree, Tree], jax.Array]) -> _Method:
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
        r_new = _axpy(-omega, t, s)
        return x, r_new, dot(r_new, r_new), (r_hat, p, v, rho_new, alpha, omega)

    return _Method(2, init, step, _unchanged, restarts=False)


def _gmres(restart: int) -> Callable[[Callable[[Tree], Tree], Callable[[Tree, Tree], jax.Array]], _Method]:
    """GMRES(``restart``): Arnoldi with Givens rotations; the cycle's iterate is formed at its end."""
    m = restart
    highest = jax.lax.Precision.HIGHEST  # no reduced-precision (TF32) projections on accelerators

    def make(matvec: Callable[[Tree], Tree], dot: Callable[[Tree, Tree], jax.Array]) -> _Method:
        def project(basis: Tree, w: Tree) -> jax.Array:  # Vᵀw, one entry per basis vector
            return sum(
                jnp.tensordot(v, u, axes=u.ndim, precision=highest)
                for v, u in zip(jax.tree.leaves(basis), jax.tree.leaves(w), strict=True)
            )

        def combine(coefficients: jax.Array, basis: Tree) -> Tree:  # Σ_i c_i V_i
            return jax.tree.map(
                lambda v: jnp.tensordot(coefficients.astype(v.dtype), v, axes=1, precision=highest), basis
            )

        # State: the Arnoldi basis V (m + 1 vectors stacked on a leading axis; unused ones are 0),
        # the rotated Hessenberg matrix R (upper triangular; unused columns are the identity's),
        # the rotated right-hand side g (β·e₁ at the start: |g_j| is the residual norm after j
        # iterations), the Givens rotations (c, s), and the iteration j within the cycle.
        def init(r, rr):
            beta = jnp.sqrt(rr)
            first = jax.tree.map(lambda u: _safe_divide(u, beta.astype(u.dtype)), r)
            basis = jax.tree.map(lambda u: jnp.zeros((m + 1, *jnp.shape(u)), u.dtype).at[0].set(u), first)
            dtype = rr.dtype
            return (
                basis,
                jnp.eye(m, dtype=dtype),
                jnp.zeros(m + 1, dtype).at[0].set(beta),
                jnp.ones(m, dtype),
                jnp.zeros(m, dtype),
                jnp.zeros([], jnp.int32),
            )

        def step(x, r, rr, state):
            basis, upper, g, cosines, sines, j = state
            w = matvec(jax.tree.map(lambda v: v[j], basis))
            # Classical Gram-Schmidt applied twice ("twice is enough": Giraud, Langou & Rozložník,
            # Comput. Math. Appl. 50, 2005), as stable as modified Gram-Schmidt and one projection
            # on the whole basis each time instead of j sequential ones.
            h = project(basis, w)
            w = optax.tree.sub(w, combine(h, basis))
            correction = project(basis, w)
            w = optax.tree.sub(w, combine(correction, basis))
            h = h + correction
            norm = jnp.sqrt(dot(w, w))
            basis = jax.tree.map(lambda v, u: v.at[j + 1].set(_safe_divide(u, norm.astype(u.dtype))), basis, w)
            column = h.at[j + 1].set(norm)

            def rotate(i, column):  # the previous rotations, i < j
                a, b = column[i], column[i + 1]
                active = i < j
                column = column.at[i].set(jnp.where(active, cosines[i] * a + sines[i] * b, a))
                return column.at[i + 1].set(jnp.where(active, cosines[i] * b - sines[i] * a, b))

            column = jax.lax.fori_loop(0, m, rotate, column)
            a, b = column[j], column[j + 1]
            radius = jnp.hypot(a, b)  # the new rotation zeroes the subdiagonal entry
            c = jnp.where(radius == 0, jnp.ones_like(radius), _safe_divide(a, radius))
            s = _safe_divide(b, radius)
            column = column.at[j].set(radius).at[j + 1].set(0)
            upper = upper.at[:, j].set(column[:m])
            g = g.at[j + 1].set(-s * g[j]).at[j].set(c * g[j])
            state = (basis, upper, g, cosines.at[j].set(c), sines.at[j].set(s), j + 1)
            return x, r, jnp.square(g[j + 1]), state

        def finish(x, state):
            # x + V_j y with R_j y = g_j: the minimizer of ‖b − A·x‖ over the cycle's Krylov space.
            basis, upper, g, _, _, j = state
            used = jnp.arange(m) < j
            # A zero pivot only follows an exact breakdown, whose basis vector is 0 (any y_i will do).
            upper = jnp.where(jnp.eye(m, dtype=bool) & (upper == 0), jnp.ones_like(upper), upper)
            y = jax.scipy.linalg.solve_triangular(upper, jnp.where(used, g[:m], 0), lower=False)
            return optax.tree.add(x, combine(y, jax.tree.map(lambda v: v[:m], basis)))

        return _Method(1, init, step, finish, restarts=True)

    return make


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


def gmres(
    matvec: Callable[[Tree], Tree],
    b: Tree,
    x0: Tree | None = None,
    *,
    tol: Any,
    maxiter: int,
    restart: int = 20,
) -> tuple[Tree, SolveInfo]:
    """Restarted GMRES for a general (non-symmetric) ``A``: solve ``A·x = b`` from ``x0``.

    Saad & Schultz, "GMRES: a generalized minimal residual algorithm for solving nonsymmetric
    linear systems", SIAM J. Sci. Stat. Comput. 7 (1986), restarted every ``restart`` iterations
    (GMRES(m)). Each iteration costs one matrix-vector product (BiCGSTAB's cost two) and extends
    an orthonormal Krylov basis (Arnoldi, classical Gram-Schmidt applied twice); within a cycle
    the iterate minimizes ``‖b − A·x‖`` over the basis, and its residual norm is known from
    Givens rotations without forming ``x``. A cycle ends after ``restart`` iterations or when
    that norm meets the tolerance; ``x`` is then formed and ``b − A·x`` computed (one product),
    the true residual that :class:`SolveInfo` reports and the next cycle restarts from. Same
    stopping rule on the true residual, warm start and 0/0 guards as :func:`cg`.

    Memory: ``restart + 1`` basis vectors shaped like ``b`` (in at least float32).

    Args:
      matvec: ``v ↦ A·v`` on pytrees shaped like ``b`` (real dtypes).
      b: the right-hand side (a pytree); ``b = 0`` returns ``x = 0``.
      x0: the warm start, or ``None``.
      tol: relative tolerance on the true residual; maxiter: the iteration cap (products of
        the iterations; restarts add one each).
      restart: the cycle length ``m`` (a concrete int >= 1): the basis size.

    Returns:
      ``(x, SolveInfo)``, ``x`` in ``b``'s dtypes; ``matvecs = iterations + cycles`` (+ 1 for a
      warm start).
    """
    if not checks.is_concrete(restart):
        raise ValueError("restart must be a concrete int (it sets the size of the Krylov basis); got a traced value.")
    checks.check_int("restart", restart, minimum=1)
    if jnp.issubdtype(_accumulator_dtype(b), jnp.complexfloating):
        raise TypeError("gmres solves real systems; got complex right-hand side leaves.")
    return _krylov(_gmres(int(restart)), matvec, b, x0, tol, maxiter, int(restart))
