"""Krylov solvers on pytrees that report how well they converged.

Both run inside ``jit`` as one ``lax.while_loop``, take a warm start, and return
``(solution, SolveInfo)`` instead of raising, so a solve that did not reach its tolerance is
visible in the optimizer state. Inner products, iterates, residuals and search directions are
kept in at least float32 (the matrix-vector products run in the operands' own dtype), so a
solve on bfloat16 params does not stall on bfloat16 rounding.
``jax.scipy.sparse.linalg.cg`` returns no convergence information, hence these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src import checks

Tree = Any


class SolveInfo(NamedTuple):
    """How a linear solve ended.

    Attributes:
      iterations: iterations run (each costs one matrix-vector product for CG, two for BiCGSTAB).
      residual: final relative residual ``‖r‖ / ‖b‖`` of the solver's recursively updated residual
        ``r`` (which tracks ``b − A·x`` up to rounding), 0 when ``b = 0``.
      matvecs: matrix-vector products used, including the warm start's ``A·x0``.
    """

    iterations: jax.Array
    residual: jax.Array
    matvecs: jax.Array


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


def _threshold(b_norm: jax.Array, tol: Any) -> jax.Array:
    return jnp.maximum(tol * b_norm, jnp.finfo(b_norm.dtype).tiny)


def _in_accumulator_dtype(
    matvec: Callable[[Tree], Tree], b: Tree, x0: Tree | None
) -> tuple[Callable[[Tree], Tree], Tree, Tree | None, Callable[[Tree], Tree]]:
    """The problem with every Krylov vector in at least float32 (bfloat16/float16 params).

    The products still run in the operands' own dtypes; the iterates, residuals and search
    directions (the recurrences, where low precision stalls a solve) are kept in the
    accumulator dtype, and the solution is cast back to ``b``'s dtypes at the end.
    """
    dtype = _accumulator_dtype(b)
    up = lambda tree: jax.tree.map(lambda leaf: leaf.astype(jnp.promote_types(leaf.dtype, dtype)), tree)  # noqa: E731

    def wide_matvec(v: Tree) -> Tree:
        return up(matvec(jax.tree.map(lambda u, ref: u.astype(ref.dtype), v, b)))

    def back(x: Tree) -> Tree:
        return jax.tree.map(lambda u, ref: u.astype(ref.dtype), x, b)

    return wide_matvec, up(b), None if x0 is None else up(x0), back


def _start(matvec: Callable[[Tree], Tree], b: Tree, x0: Tree | None) -> tuple[Tree, Tree]:
    """The initial iterate and residual: ``b − A·x0`` for a warm start, ``b`` from zero."""
    if x0 is None:
        return optax.tree.zeros_like(b), b
    return x0, optax.tree.sub(b, matvec(x0))


def cg(
    matvec: Callable[[Tree], Tree], b: Tree, x0: Tree | None = None, *, tol: Any, maxiter: int
) -> tuple[Tree, SolveInfo]:
    """Conjugate gradient for a symmetric positive-definite ``A``: solve ``A·x = b`` from ``x0``.

    Stops when ``‖r‖ <= tol·‖b‖`` or after ``maxiter`` iterations. The initial residual is
    ``b − A·x0`` (a warm start is honoured, not mistaken for a cold one; ``x0=None`` starts
    from zero without that product), and an exactly
    converged iteration (``r = 0``) cannot produce ``0/0``.
    """
    matvec, b, x0, back = _in_accumulator_dtype(matvec, b, x0)
    dtype = _accumulator_dtype(b)
    b_norm = jnp.sqrt(_dot(b, b, dtype))
    threshold = _threshold(b_norm, tol)
    warm = x0 is not None
    x0, r = _start(matvec, b, x0)
    rs = _dot(r, r, dtype)

    def cond(carry):
        _, _, _, rs, k = carry
        return (k < maxiter) & (jnp.sqrt(rs) > threshold)

    def body(carry):
        x, r, p, rs, k = carry
        ap = matvec(p)
        alpha = _safe_divide(rs, _dot(p, ap, dtype))
        x = _axpy(alpha, p, x)
        r = _axpy(-alpha, ap, r)
        rs_new = _dot(r, r, dtype)
        p = _axpy(_safe_divide(rs_new, rs), p, r)
        return x, r, p, rs_new, k + 1

    x, _, _, rs, k = jax.lax.while_loop(cond, body, (x0, r, r, rs, jnp.zeros([], jnp.int32)))
    zero_rhs = b_norm == 0
    x = optax.tree.where(zero_rhs, optax.tree.zeros_like(x), x)
    residual = jnp.where(zero_rhs, 0.0, jnp.sqrt(rs) / jnp.where(zero_rhs, 1.0, b_norm))
    return back(x), SolveInfo(k, residual.astype(dtype), k + int(warm))


def bicgstab(
    matvec: Callable[[Tree], Tree], b: Tree, x0: Tree | None = None, *, tol: Any, maxiter: int
) -> tuple[Tree, SolveInfo]:
    """BiCGSTAB for a general (non-symmetric) ``A``: solve ``A·x = b`` from ``x0``.

    Same stopping rule, warm start and 0/0 guards as :func:`cg`; two products per iteration.
    """
    matvec, b, x0, back = _in_accumulator_dtype(matvec, b, x0)
    dtype = _accumulator_dtype(b)
    b_norm = jnp.sqrt(_dot(b, b, dtype))
    threshold = _threshold(b_norm, tol)
    warm = x0 is not None
    x0, r = _start(matvec, b, x0)
    r_hat = r
    one = jnp.ones([], dtype)
    zeros = optax.tree.zeros_like(b)

    def cond(carry):
        _, r, *_, k = carry
        return (k < maxiter) & (jnp.sqrt(_dot(r, r, dtype)) > threshold)

    def body(carry):
        x, r, p, v, rho, alpha, omega, k = carry
        rho_new = _dot(r_hat, r, dtype)
        beta = _safe_divide(rho_new, rho) * _safe_divide(alpha, omega)
        p = _axpy(beta, _axpy(-omega, v, p), r)
        v = matvec(p)
        alpha = _safe_divide(rho_new, _dot(r_hat, v, dtype))
        s = _axpy(-alpha, v, r)
        t = matvec(s)
        omega = _safe_divide(_dot(t, s, dtype), _dot(t, t, dtype))
        x = _axpy(omega, s, _axpy(alpha, p, x))
        r = _axpy(-omega, t, s)
        return x, r, p, v, rho_new, alpha, omega, k + 1

    init = (x0, r, zeros, zeros, one, one, one, jnp.zeros([], jnp.int32))
    x, r, *_, k = jax.lax.while_loop(cond, body, init)
    zero_rhs = b_norm == 0
    x = optax.tree.where(zero_rhs, optax.tree.zeros_like(x), x)
    r_norm = jnp.sqrt(_dot(r, r, dtype))
    residual = jnp.where(zero_rhs, 0.0, r_norm / jnp.where(zero_rhs, 1.0, b_norm))
    return back(x), SolveInfo(k, residual.astype(dtype), 2 * k + int(warm))
