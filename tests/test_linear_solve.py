"""The Krylov solvers (CG, BiCGSTAB, GMRES): accuracy on pytrees, honest residuals, matvec counts, jit/vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from gamejax._src.linear_solve import SolveInfo, bicgstab, cg, gmres

SHAPES = {"a": (3,), "b": (2, 2)}  # a dict of two arrays: 7 unknowns
N = 7


def spd(seed: int, n: int = N) -> np.ndarray:
    g = np.random.default_rng(seed).normal(size=(n, n))
    return g @ g.T + np.eye(n)


def nonsymmetric(seed: int, n: int = N) -> np.ndarray:
    return 3 * np.eye(n) + np.random.default_rng(seed).normal(size=(n, n)) / np.sqrt(n)


def tree(vector: np.ndarray) -> dict:
    _, unravel = ravel_pytree({k: jnp.zeros(s) for k, s in SHAPES.items()})
    return unravel(jnp.asarray(vector))


def flat(t) -> np.ndarray:
    return np.asarray(ravel_pytree(t)[0])


def tree_matvec(matrix: np.ndarray):
    """``A·v`` for ``v`` a pytree shaped like ``SHAPES``, through the flattened vector."""
    m = jnp.asarray(matrix)

    def matvec(v):
        flat_v, unravel = ravel_pytree(v)
        return unravel(m @ flat_v)

    return matvec


def true_residual(matrix, b, x) -> float:
    """``‖b − A·x‖ / ‖b‖`` in float64 NumPy, independently of the solver."""
    matrix, b, x = (np.asarray(a, np.float64) for a in (matrix, b, x))
    return float(np.linalg.norm(b - matrix @ x) / np.linalg.norm(b))


SOLVERS = [(cg, spd), (bicgstab, nonsymmetric), (gmres, nonsymmetric)]
IDS = ["cg", "bicgstab", "gmres"]


@pytest.mark.parametrize(("solve", "make"), SOLVERS, ids=IDS)
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_solves_a_pytree_system_to_the_tolerance(solve, make, warm):
    rng = np.random.default_rng(1)
    matrix, b = make(2), rng.normal(size=N)
    x0 = tree(10 * rng.normal(size=N)) if warm else None
    x, info = solve(tree_matvec(matrix), tree(b), x0, tol=1e-12, maxiter=100)
    assert isinstance(info, SolveInfo) and set(x) == set(SHAPES)
    np.testing.assert_allclose(flat(x), np.linalg.solve(matrix, b), rtol=1e-9, atol=1e-11)
    assert bool(info.converged) and float(info.residual) <= 1e-12
    # The reported residual is the true one (up to float64 rounding of ‖b − A·x‖ itself).
    np.testing.assert_allclose(float(info.residual), true_residual(matrix, b, flat(x)), rtol=1e-2, atol=1e-15)
    assert info.iterations.dtype == jnp.int32 and info.converged.dtype == jnp.bool_
    assert int(info.products_per_iteration) == {cg: 1, bicgstab: 2, gmres: 1}[solve]


@pytest.mark.parametrize(("solve", "make"), SOLVERS, ids=IDS)
def test_a_zero_right_hand_side_gives_zero(solve, make):
    zero = tree(np.zeros(N))
    for x0 in (None, tree(np.random.default_rng(3).normal(size=N))):
        x, info = solve(tree_matvec(make(4)), zero, x0, tol=0.0, maxiter=5)
        assert np.all(flat(x) == 0) and float(info.residual) == 0 and bool(info.converged)
        assert int(info.iterations) == 0 and int(info.matvecs) == int(x0 is not None)


@pytest.mark.parametrize(("solve", "make"), SOLVERS, ids=IDS)
def test_a_warm_start_at_the_solution_takes_no_iteration(solve, make):
    matrix, b = make(5), np.random.default_rng(5).normal(size=N)
    x, info = solve(tree_matvec(matrix), tree(b), tree(np.linalg.solve(matrix, b)), tol=1e-10, maxiter=50)
    assert int(info.iterations) == 0 and int(info.matvecs) == 1 and bool(info.converged)
    assert np.all(np.isfinite(flat(x)))


def counted_matvec(matrix):
    """``v ↦ matrix·v`` and the list a host callback appends to on every product actually run."""
    calls, m = [], jnp.asarray(matrix)

    def matvec(v):
        jax.debug.callback(lambda: calls.append(1))
        return m @ v

    return matvec, calls


@pytest.mark.parametrize(("solve", "make", "products"), [(cg, spd, 1), (bicgstab, nonsymmetric, 2)], ids=IDS[:2])
@pytest.mark.parametrize("recompute_every", [None, 1, 3, 10])
@pytest.mark.parametrize(("tol", "maxiter"), [(1e-12, 100), (1e-12, 4), (0.0, 7)], ids=["solved", "capped", "tol0"])
def test_matvecs_counts_every_product_made_at_run_time(solve, make, products, recompute_every, tol, maxiter):
    """A host callback in the matvec counts the products actually run (a while loop traces it once)."""
    matvec, calls = counted_matvec(make(6, 20))
    b = jnp.asarray(np.random.default_rng(6).normal(size=20))
    for x0 in (None, jnp.ones(20)):
        calls.clear()
        _, info = jax.jit(
            lambda b, x0: solve(matvec, b, x0, tol=tol, maxiter=maxiter, recompute_every=recompute_every)
        )(b, x0)
        jax.effects_barrier()
        assert int(info.matvecs) == len(calls)
        # The iterations' products, the warm start's, and one true residual per cycle of at most
        # ``recompute_every`` iterations (at least one: the final residual is always recomputed).
        k, warm = int(info.iterations), int(x0 is not None)
        assert products * k + warm + 1 <= int(info.matvecs) <= (products + 1) * k + warm
        if tol == 0.0:  # no early stops: exactly ceil(maxiter / recompute_every) cycles
            assert int(info.matvecs) == products * maxiter + warm + -(-maxiter // (recompute_every or maxiter))


def ill_conditioned_float32(n: int = 100, condition: float = 1e4):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    matrix = (q * np.logspace(0, np.log10(condition), n)) @ q.T
    return ((matrix + matrix.T) / 2).astype(np.float32), rng.normal(size=n).astype(np.float32)


def recursive_cg_float32(matrix, b, iterations):
    """Textbook CG in float32 NumPy: the residual only ever updated recursively."""
    x, r = np.zeros_like(b), b.copy()
    p, rs = r.copy(), r @ r
    for _ in range(iterations):
        ap = matrix @ p
        alpha = rs / (p @ ap)
        x, r = x + alpha * p, r - alpha * ap
        rs, rs_old = r @ r, rs
        p = r + (rs / rs_old) * p
    return x, float(np.sqrt(rs) / np.linalg.norm(b.astype(np.float64)))


@pytest.mark.parametrize("solve", [cg, bicgstab], ids=IDS[:2])
@pytest.mark.parametrize("recompute_every", [None, 10])
@pytest.mark.parametrize("tol", [1e-12, 1e-4])
def test_float32_reports_the_true_residual_not_the_drifted_recursion(solve, recompute_every, tol):
    """On a condition-1e4 float32 system the recursive residual drifts 10x+ below the truth.

    Past ~300 iterations textbook CG's recursive residual keeps falling while ``b − A·x``
    stagnates near 4e-4, so a recursion-based stopping test would claim ``tol = 1e-4``. The
    solvers must report the true residual of the ``x`` they return and not claim convergence.
    """
    matrix, b = ill_conditioned_float32()
    x_ref, recursive = recursive_cg_float32(matrix, b, 500)
    assert recursive < 1e-4 and true_residual(matrix, b, x_ref) > 10 * recursive  # the drift is real
    m = jnp.asarray(matrix)
    x, info = jax.jit(lambda b: solve(lambda v: m @ v, b, tol=tol, maxiter=500, recompute_every=recompute_every))(
        jnp.asarray(b)
    )
    assert x.dtype == jnp.float32 and info.residual.dtype == jnp.float32
    truth = true_residual(matrix, b, x)
    assert truth / 1.25 <= float(info.residual) <= 1.25 * truth
    assert bool(info.converged) == (float(info.residual) <= tol)
    if tol < 1e-6:  # far below float32's attainable accuracy: runs to maxiter and says so
        assert not bool(info.converged) and int(info.iterations) == 500


@pytest.mark.parametrize("restart", [10, 50])
@pytest.mark.parametrize("tol", [1e-12, 1e-4])
def test_gmres_in_float32_reports_the_true_residual(restart, tol):
    """GMRES has no recursive residual to drift, and reports ``b − A·x`` of its float32 answer.

    On the condition-1e4 system above it stagnates near 5e-5, 10x below CG's floor, where
    float32's own evaluation of ``b − A·x`` is off by up to ~30 % (n·ε·‖A‖·‖x‖ ≈ 1e-5): hence the
    looser factor than for CG.
    """
    matrix, b = ill_conditioned_float32()
    m = jnp.asarray(matrix)
    x, info = jax.jit(lambda b: gmres(lambda v: m @ v, b, tol=tol, maxiter=500, restart=restart))(jnp.asarray(b))
    assert x.dtype == jnp.float32 and info.residual.dtype == jnp.float32
    truth = true_residual(matrix, b, x)
    assert truth / 1.5 <= float(info.residual) <= 1.5 * truth
    assert bool(info.converged) == (float(info.residual) <= tol)
    if tol < 1e-6:
        assert not bool(info.converged) and int(info.iterations) == 500


@pytest.mark.parametrize(("solve", "make"), SOLVERS, ids=IDS)
def test_converged_is_false_when_maxiter_is_too_small(solve, make):
    matrix, b = make(7, 30), np.random.default_rng(7).normal(size=30)
    matvec = lambda v: jnp.asarray(matrix) @ v  # noqa: E731
    _, capped = solve(matvec, jnp.asarray(b), tol=1e-10, maxiter=2)
    assert not bool(capped.converged) and int(capped.iterations) == 2 and float(capped.residual) > 1e-10
    _, none = solve(matvec, jnp.asarray(b), tol=1e-10, maxiter=0)
    assert not bool(none.converged) and int(none.matvecs) == 0 and float(none.residual) == 1.0
    x, solved = solve(matvec, jnp.asarray(b), tol=1e-10, maxiter=200)
    assert bool(solved.converged) and float(solved.residual) <= 1e-10
    np.testing.assert_allclose(x, np.linalg.solve(matrix, b), rtol=1e-8)


@pytest.mark.parametrize(("solve", "make"), SOLVERS, ids=IDS)
def test_jit_and_vmap_over_right_hand_sides(solve, make):
    """Lanes that need different iteration counts (a zero rhs, an eigenvector, random) each get their own answer."""
    matrix = make(8)
    rhs = np.random.default_rng(8).normal(size=(4, N))
    rhs[0] = 0.0
    values, vectors = np.linalg.eig(matrix)  # N is odd: a real eigenvalue exists
    rhs[1] = vectors[:, np.argmin(np.abs(values.imag))].real  # CG solves it in one iteration
    batch = jax.vmap(tree)(jnp.asarray(rhs))
    run = jax.jit(jax.vmap(lambda b: solve(tree_matvec(matrix), b, tol=1e-12, maxiter=100)))
    x, info = run(batch)
    assert info.residual.shape == info.converged.shape == info.iterations.shape == (4,)
    assert bool(jnp.all(info.converged)) and float(jnp.max(info.residual)) <= 1e-12
    for i in range(4):
        lane = jax.tree.map(lambda leaf, i=i: leaf[i], x)
        np.testing.assert_allclose(flat(lane), np.linalg.solve(matrix, rhs[i]), rtol=1e-9, atol=1e-12)
        _, single = solve(tree_matvec(matrix), tree(rhs[i]), tol=1e-12, maxiter=100)
        assert int(single.iterations) == int(info.iterations[i])
    assert int(info.iterations[0]) == 0 and np.all(flat(jax.tree.map(lambda leaf: leaf[0], x)) == 0)


@pytest.mark.parametrize("solve", [cg, bicgstab], ids=IDS[:2])
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tol": -1.0, "maxiter": 5}, "tol"),
        ({"tol": float("nan"), "maxiter": 5}, "tol"),
        ({"tol": 1e-6, "maxiter": -1}, "maxiter"),
        ({"tol": 1e-6, "maxiter": 2.5}, "maxiter"),
        ({"tol": 1e-6, "maxiter": 5, "recompute_every": -2}, "recompute_every"),
        ({"tol": 1e-6, "maxiter": 5, "recompute_every": 1.5}, "recompute_every"),
    ],
)
def test_invalid_settings_are_rejected(solve, kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve(lambda v: v, jnp.ones(3), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"restart": 0}, "restart"),
        ({"restart": 2.5}, "restart"),
        ({"restart": True}, "restart"),
        ({"tol": -1.0}, "tol"),
        ({"maxiter": -1}, "maxiter"),
    ],
)
def test_gmres_rejects_invalid_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gmres(lambda v: v, jnp.ones(3), **{"tol": 1e-6, "maxiter": 5, **kwargs})


def test_gmres_rejects_a_traced_restart_and_complex_systems():
    with pytest.raises(ValueError, match="restart must be a concrete int"):
        jax.jit(lambda m: gmres(lambda v: v, jnp.ones(3), tol=1e-6, maxiter=5, restart=m))(3)
    with pytest.raises(TypeError, match="real systems"):
        gmres(lambda v: v, jnp.ones(3, jnp.complex64), tol=1e-6, maxiter=5)


def restarted_gmres_by_least_squares(matrix, b, restart, iterations):
    """GMRES(m) transcribed from its definition, independently of the solver's Arnoldi process.

    Each cycle minimizes ``‖r − A·z‖`` over the Krylov space ``K_j(A, r) = span{r, Ar, …, A^{j−1}r}``
    of the cycle's starting residual ``r`` (a dense least-squares problem on an orthonormal basis
    of the powers, float64 NumPy), then restarts from the new residual.
    """
    x = np.zeros_like(b)
    done = 0
    while done < iterations:
        j = min(restart, iterations - done)
        r = b - matrix @ x
        powers = [r]
        for _ in range(j - 1):
            powers.append(matrix @ powers[-1])
        basis, _ = np.linalg.qr(np.stack(powers, axis=1))
        z, *_ = np.linalg.lstsq(matrix @ basis, r, rcond=None)
        x = x + basis @ z
        done += j
    return x


@pytest.mark.parametrize(("restart", "iterations"), [(30, 6), (4, 6), (3, 12), (1, 5)])
def test_gmres_minimizes_the_residual_over_each_cycles_krylov_space(restart, iterations):
    """The iterate after a fixed number of iterations is restarted GMRES's, by its definition."""
    matrix, b = nonsymmetric(11, 30), np.random.default_rng(11).normal(size=30)
    x, info = gmres(lambda v: jnp.asarray(matrix) @ v, jnp.asarray(b), tol=0.0, maxiter=iterations, restart=restart)
    expected = restarted_gmres_by_least_squares(matrix, b, restart, iterations)
    np.testing.assert_allclose(np.asarray(x), expected, rtol=1e-9, atol=1e-12)
    assert int(info.iterations) == iterations
    assert int(info.matvecs) == iterations + -(-iterations // restart)  # one true residual per cycle


def test_gmres_needs_restarts_and_still_solves_to_the_tolerance():
    """A 60-unknown system that GMRES(5) solves only over many cycles; the answer is NumPy's."""
    n, restart = 60, 5
    rng = np.random.default_rng(12)
    matrix = 2 * np.eye(n) + rng.normal(size=(n, n)) / np.sqrt(n)  # eigenvalues in a disc around 2
    b = rng.normal(size=n)
    for x0 in (None, jnp.asarray(10 * rng.normal(size=n))):
        x, info = jax.jit(
            lambda b, x0: gmres(lambda v: jnp.asarray(matrix) @ v, b, x0, tol=1e-11, maxiter=1000, restart=restart)
        )(jnp.asarray(b), x0)
        np.testing.assert_allclose(np.asarray(x), np.linalg.solve(matrix, b), rtol=1e-8, atol=1e-10)
        assert bool(info.converged) and float(info.residual) <= 1e-11
        assert np.isclose(float(info.residual), true_residual(matrix, b, np.asarray(x)), rtol=1e-2)
        cycles = -(-int(info.iterations) // restart)
        assert cycles > 3 and int(info.matvecs) == int(info.iterations) + cycles + int(x0 is not None)
    # Without restarts it needs fewer iterations (the full Krylov space), never more than n.
    _, full = gmres(lambda v: jnp.asarray(matrix) @ v, jnp.asarray(b), tol=1e-11, maxiter=1000, restart=n)
    assert int(full.iterations) <= min(n, int(info.iterations))


@pytest.mark.parametrize("restart", [1, 3, 10, 50])
@pytest.mark.parametrize(("tol", "maxiter"), [(1e-12, 100), (1e-12, 4), (0.0, 7)], ids=["solved", "capped", "tol0"])
def test_gmres_matvecs_count_every_product_made_at_run_time(restart, tol, maxiter):
    """One product per iteration and one per restart (the true residual it restarts from), counted at run time."""
    matvec, calls = counted_matvec(nonsymmetric(6, 20))
    b = jnp.asarray(np.random.default_rng(6).normal(size=20))
    for x0 in (None, jnp.ones(20)):
        calls.clear()
        _, info = jax.jit(lambda b, x0: gmres(matvec, b, x0, tol=tol, maxiter=maxiter, restart=restart))(b, x0)
        jax.effects_barrier()
        k, warm = int(info.iterations), int(x0 is not None)
        assert int(info.matvecs) == len(calls) and int(info.products_per_iteration) == 1
        assert k + warm + 1 <= int(info.matvecs) <= 2 * k + warm
        if tol == 0.0:
            assert k == maxiter and int(info.matvecs) == maxiter + warm + -(-maxiter // restart)
