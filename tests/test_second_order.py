"""LEAD, CGD/ACGD, consensus and SGA against closed forms, dense linear algebra and the papers' pseudocode."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import dense_quadratic, flat, run_steps

import gamejax as gj
from gamejax._src.linear_solve import bicgstab, cg

STEPS = 25


def random_matrix(seed, n, m=None, scale=1.0):
    return scale * np.random.default_rng(seed).normal(size=(n, m or n)) / np.sqrt(n)


def iterates(game, tx, params, steps=STEPS):
    return np.array(run_steps(game, tx, params, steps, observe=flat)[2])


# ------------------------------------------------------------------------------------------ LEAD


@pytest.mark.parametrize(
    ("h", "eta", "beta", "alpha"), [(0.0, 0.1, 0.0, 0.1), (0.2, 0.05, 0.3, 0.2), (0.1, 0.2, -0.2, 0.05)]
)
def test_lead_spectrum_matches_theorem_2(h, eta, beta, alpha):
    """LEAD paper, Theorem 2 (eq. 23): the linearized LEAD step at the equilibrium of eq. 13."""
    n = 4
    A = random_matrix(0, n)
    game, _, optimum = gj.games.quadratic(A, h=h)
    tx = gj.lead(optax.sgd(eta, momentum=beta), coupling=alpha / eta)
    computed = np.linalg.eigvals(np.asarray(gj.step_jacobian(game, tx, optimum)))
    sigma = np.linalg.svd(A, compute_uv=False)
    predicted = []
    for lam in np.concatenate([1j * sigma, -1j * sigma]):
        b = 1 - (eta + alpha) * lam + beta - eta * h
        root = np.sqrt(b**2 - 4 * (beta - alpha * lam) + 0j)
        predicted += [(b + root) / 2, (b - root) / 2]
    for mu in predicted:  # every eigenvalue of Theorem 2 is in the step's spectrum...
        assert np.min(np.abs(computed - mu)) < 1e-9
    # ...and it sets the spectral radius (the state's extra directions decay faster).
    np.testing.assert_allclose(np.max(np.abs(computed)), np.max(np.abs(predicted)), rtol=1e-10)


def test_lead_converges_linearly_where_gda_does_not():
    rng = np.random.default_rng(1)
    U, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    A = U @ np.diag(np.linspace(0.5, 1.0, 5))  # singular values in [0.5, 1]
    game, init, optimum = gj.games.quadratic(A, h=0.0)  # bilinear: GDA's radius is > 1
    eta, alpha = 0.3, 0.8  # radius ≈ 0.96 by Theorem 2; GDA's is √(1 + η²) ≈ 1.04
    lead = gj.lead(optax.sgd(eta), coupling=alpha / eta)
    radius = gj.spectral_radius(game, lead, optimum)
    assert radius < 1 < gj.spectral_radius(game, gj.gda(optax.sgd(eta)), optimum)
    distance = np.asarray(gj.fit(game, lead, init, steps=400, log_every=1, equilibrium=optimum).metrics["distance"])
    assert distance[-1] < 1e-6 * distance[0]
    measured = (distance[400] / distance[200]) ** (1 / 200)  # modes of nearly equal radius: 0.5 % tolerance
    np.testing.assert_allclose(measured, radius, rtol=5e-3)
    gda = gj.fit(game, gj.gda(optax.sgd(eta)), init, steps=400, equilibrium=optimum).metrics["distance"]
    assert gda[-1] > gda[0]


def test_lead_equals_eq_12_in_the_papers_convention():
    """x ← x + βΔx − η∇x f − α∇xy f Δy,  y ← y + βΔy + η∇y f + α∇yx f Δx  (LEAD, eq. 12)."""
    n, h, eta, beta, alpha = 3, 0.3, 0.1, 0.4, 0.25
    A = random_matrix(2, n)
    game, init, _ = gj.games.quadratic(A, h=h, init=gj.Players(jnp.arange(1.0, 4.0), -jnp.ones(3)))
    x, y = np.asarray(init.x), np.asarray(init.y)
    x_prev, y_prev = x.copy(), y.copy()
    expected = []
    for _ in range(STEPS):
        gx, gy = h * x + A @ y, -h * y + A.T @ x  # ∇x f, ∇y f of eq. 13
        x_new = x + beta * (x - x_prev) - eta * gx - alpha * A @ (y - y_prev)
        y_new = y + beta * (y - y_prev) + eta * gy + alpha * A.T @ (x - x_prev)
        x_prev, y_prev, x, y = x, y, x_new, y_new
        expected.append(np.concatenate([x, y]))
    tx = gj.lead(optax.sgd(eta, momentum=beta), coupling=alpha / eta)
    np.testing.assert_allclose(iterates(game, tx, init), np.array(expected), rtol=1e-10, atol=1e-12)


def test_lead_adam_equals_app_g_alg_2():
    """LEAD-Adam: x steps with g_x + α_x∇xy f Δy; y's gradient and coupling at the new x."""
    n, lr, (a_x, a_y) = 3, 0.05, (0.1, 0.3)
    A = random_matrix(3, n)
    h = 0.2
    game, init, _ = gj.games.quadratic(A, h=h)
    b1, b2, eps = 0.5, 0.99, 1e-8

    def adam(state, g, t):
        m, v = state
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g**2
        return (m, v), (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)

    x, y = np.asarray(init.x), np.asarray(init.y)
    y_prev = y.copy()
    sx, sy = (np.zeros(n), np.zeros(n)), (np.zeros(n), np.zeros(n))
    expected = []
    for t in range(1, STEPS + 1):
        gx = h * x + A @ y + a_x * A @ (y - y_prev)
        sx, step = adam(sx, gx, t)
        x_new = x - lr * step
        gy = -h * y + A.T @ x_new + a_y * A.T @ (x_new - x)  # ∇y f(x_{t+1}, y_t) + α∇yx f Δx
        sy, step = adam(sy, gy, t)
        y_prev, x, y = y, x_new, y + lr * step  # ascent for y
        expected.append(np.concatenate([x, y]))
    tx = gj.lead(optax.adam(lr, b1=b1, b2=b2, eps=eps), coupling=gj.Players(a_x, a_y), alternating=True)
    np.testing.assert_allclose(iterates(game, tx, init), np.array(expected), rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------- CGD


def cgd_closed_form(A, grad_x, grad_y, eta_x, eta_y):
    """One CGD step on a zero-sum game with mixed Hessian D = A (Schäfer & Anandkumar; ICR §5)."""
    nx, ny = A.shape
    dx = -np.sqrt(eta_x) * np.linalg.solve(
        np.eye(nx) + np.sqrt(eta_x) * A * eta_y @ A.T * np.sqrt(eta_x),
        np.sqrt(eta_x) * (grad_x + A @ (eta_y * grad_y)),
    )
    dy = np.sqrt(eta_y) * np.linalg.solve(
        np.eye(ny) + np.sqrt(eta_y) * A.T * eta_x @ A * np.sqrt(eta_y),
        np.sqrt(eta_y) * (grad_y - A.T @ (eta_x * grad_x)),
    )
    return dx, dy


@pytest.mark.parametrize("h", [0.0, 0.5])
def test_cgd_step_is_the_local_nash_equilibrium(h):
    """f = xᵀAy + bᵀx + cᵀy (h = 0) and the quadratic game (h > 0): one step vs dense algebra."""
    n, eta = 5, 0.7
    A = random_matrix(4, n, scale=2.0)
    rng = np.random.default_rng(5)
    b, c = rng.normal(size=n), rng.normal(size=n)
    f = lambda x, y: 0.5 * h * (x @ x) - 0.5 * h * (y @ y) + x @ jnp.asarray(A) @ y + b @ x + c @ y  # noqa: E731
    game = gj.zero_sum(f)
    params = gj.Players(jnp.asarray(rng.normal(size=n)), jnp.asarray(rng.normal(size=n)))
    updates, state = gj.cgd(eta, tol=1e-14, maxiter=100).update(game, params, gj.cgd(eta).init(params))
    x, y = np.asarray(params.x), np.asarray(params.y)
    dx, dy = cgd_closed_form(A, h * x + A @ y + b, -h * y + A.T @ x + c, eta, eta)
    np.testing.assert_allclose(updates.x, dx, rtol=1e-10)
    np.testing.assert_allclose(updates.y, dy, rtol=1e-10)
    assert float(state.residual) <= 1e-14 and 0 < int(state.iterations) <= n + 1


def test_cgd_per_player_step_sizes_and_pytree_players_of_several_networks():
    """A non-quadratic game whose x is two small networks: dense closed form with D = ∇xy f."""
    key = jax.random.key(6)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    x = {"net_a": {"w": jax.random.normal(k1, (3, 2)), "b": jnp.zeros(2)}, "net_b": {"w": jax.random.normal(k2, (2,))}}
    y = (jax.random.normal(k3, (2, 2)), jax.random.normal(k4, ()))
    data = jax.random.normal(jax.random.key(7), (8, 3))

    def f(x, y):
        hidden = jnp.tanh(data @ x["net_a"]["w"] + x["net_a"]["b"][None])
        out = hidden @ y[0] @ x["net_b"]["w"]
        return jnp.mean(out) * y[1] + 0.1 * jnp.sum(hidden**2) - 0.05 * jnp.sum(y[0] ** 2)

    params = gj.Players(x, y)
    eta = gj.Players(0.3, 0.5)
    tx = gj.cgd(eta, tol=1e-13, maxiter=200)
    updates, _ = tx.update(gj.zero_sum(f), params, tx.init(params))

    fx, unravel_x = jax.flatten_util.ravel_pytree(x)
    fy, unravel_y = jax.flatten_util.ravel_pytree(y)
    flat_f = lambda a, b: f(unravel_x(a), unravel_y(b))  # noqa: E731
    D = np.asarray(jax.jacfwd(jax.grad(flat_f, 0), 1)(fx, fy))
    gx, gy = (np.asarray(g) for g in jax.grad(flat_f, (0, 1))(fx, fy))
    dx, dy = cgd_closed_form(D, gx, gy, 0.3, 0.5)
    np.testing.assert_allclose(flat(updates.x), dx, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(flat(updates.y), dy, rtol=1e-9, atol=1e-12)


GENERAL_SUM_SOLVERS = [{"solver": "bicgstab"}, {}, {"solver": "gmres", "restart": 2}]
GENERAL_SUM_IDS = ["bicgstab", "gmres-default", "gmres-restarted"]


@pytest.mark.parametrize("solver", GENERAL_SUM_SOLVERS, ids=GENERAL_SUM_IDS)
def test_cgd_on_a_general_sum_game_solves_the_block_system(solver):
    """General sum: [[I, ηJxy], [ηJyx, I]] Δ = −ηv, not symmetric (GMRES, restarted or not, or BiCGSTAB)."""
    problem = dense_quadratic(jax.random.key(8), zero_sum=False)
    eta = 0.4
    tx = gj.cgd(eta, tol=1e-13, maxiter=200, **solver)
    updates, state = tx.update(problem.game, problem.init, tx.init(problem.init))
    nx = flat(problem.init.x).size
    J = problem.J
    block = np.eye(J.shape[0]) + eta * np.block(
        [[np.zeros((nx, nx)), J[:nx, nx:]], [J[nx:, :nx], np.zeros_like(J[nx:, nx:])]]
    )
    expected = np.linalg.solve(block, -eta * problem.field(flat(problem.init)))
    np.testing.assert_allclose(flat(updates), expected, rtol=1e-9, atol=1e-12)
    assert float(state.residual) <= 1e-13
    # Products reported: BiCGSTAB two per iteration, GMRES one (and one per restart); the
    # (zero) warm start and the final true residual one each at least.
    k, matvecs = int(state.iterations), int(state.matvecs)
    if solver.get("solver", "gmres") == "gmres":  # the default
        assert matvecs == k + -(-k // solver.get("restart", 20)) + 1
        assert k > solver.get("restart", 20) or "restart" not in solver  # restarted: several cycles
    else:
        assert 2 * k + 2 <= matvecs <= 3 * k + 1
    assert float(state.evaluations.value) == 3 + 2 * matvecs  # passes: linearization, 2 block products, 2 per matvec


@pytest.mark.parametrize("solver", GENERAL_SUM_SOLVERS[1:], ids=GENERAL_SUM_IDS[1:])
def test_acgd_with_gmres_plays_the_local_nash_equilibrium_of_a_general_sum_game(solver):
    """ACGD (ICR App. A.5, Alg. 1's step sizes) on a general-sum game, several steps, against dense algebra.

    Each step's update solves the local game's first-order conditions
    ``v_x + J_xy Δy + A_x⁻¹Δx = 0``, ``v_y + J_yx Δx + A_y⁻¹Δy = 0`` (one dense block system,
    not the Schur complement that gamejax solves), with ``A = α / (√ν̂ + ε)``.
    """
    problem = dense_quadratic(jax.random.key(21), zero_sum=False)
    alpha, beta2, eps, steps = 0.3, 0.9, 1e-5, 8
    nx = flat(problem.init.x).size
    J = problem.J
    z = flat(problem.init)
    nu = np.zeros_like(z)
    expected = []
    for t in range(1, steps + 1):
        v = problem.field(z)
        nu = beta2 * nu + (1 - beta2) * v**2
        a = alpha / (np.sqrt(nu / (1 - beta2**t)) + eps)
        block = np.diag(1 / a)
        block[:nx, nx:], block[nx:, :nx] = J[:nx, nx:], J[nx:, :nx]
        z = z + np.linalg.solve(block, -v)
        expected.append(z)
    tx = gj.acgd(alpha, beta2=beta2, eps=eps, tol=1e-14, maxiter=100, **solver)
    np.testing.assert_allclose(iterates(problem.game, tx, problem.init, steps), np.array(expected), rtol=1e-9)


def test_competitive_solver_settings_are_checked():
    with pytest.raises(ValueError, match="solver must be one of"):
        gj.cgd(0.1, solver="cg")
    with pytest.raises(ValueError, match="restart"):
        gj.acgd(0.1, solver="gmres", restart=0)


def test_cgd_warm_start_is_exact_over_several_steps():
    """A warm-started solve must start from b − A·x0 (a bug in two public CGD codes): every step exact."""
    n, eta = 6, 0.5
    A = random_matrix(9, n, scale=3.0)
    game, init, _ = gj.games.affine_bilinear(A, np.ones(n), -np.ones(n))
    tx = gj.cgd(eta, tol=1e-13, maxiter=100, warm_start=True)
    _, _, trajectory = run_steps(game, tx, init, 4, observe=lambda p: p)
    for params, new in zip([init, *trajectory[:-1]], trajectory, strict=True):
        x, y = np.asarray(params.x), np.asarray(params.y)
        dx, dy = cgd_closed_form(A, A @ y + 1.0, A.T @ x - 1.0, eta, eta)
        np.testing.assert_allclose(flat(new), np.concatenate([x + dx, y + dy]), rtol=1e-10, atol=1e-12)


def test_warm_started_solves_refine_each_other():
    """Two CG iterations per call at a fixed point: warm starts carry the solve to convergence.

    With a cold start every call would stop at the same 2-iteration residual; with the warm
    start's residual mistaken for b the iterates would not converge to the closed form.
    """
    n, eta, calls = 8, 1.0, 40
    A = random_matrix(18, n)
    game, init, _ = gj.games.affine_bilinear(A, np.ones(n), -np.ones(n))
    x, y = np.asarray(init.x), np.asarray(init.y)
    dx, dy = cgd_closed_form(A, A @ y + 1.0, A.T @ x - 1.0, eta, eta)
    residuals, final = {}, {}
    for warm in (True, False):
        tx = gj.cgd(eta, tol=1e-12, maxiter=2, warm_start=warm)
        update = jax.jit(lambda s, tx=tx: tx.update(game, init, s))
        state = tx.init(init)
        history = []
        for _ in range(calls):
            updates, state = update(state)
            history.append(float(state.residual))
        residuals[warm], final[warm] = history, updates
    assert residuals[True][-1] < 1e-10 < residuals[False][-1]
    assert residuals[False][0] == residuals[False][-1]
    np.testing.assert_allclose(flat(final[True]), np.concatenate([dx, dy]), rtol=1e-8, atol=1e-10)


def test_cg_honours_warm_starts_and_never_divides_zero_by_zero():
    rng = np.random.default_rng(10)
    M = rng.normal(size=(6, 6))
    M = M @ M.T + np.eye(6)
    b = rng.normal(size=6)
    matvec = lambda v: jnp.asarray(M) @ v  # noqa: E731
    exact = np.linalg.solve(M, b)
    for x0 in (np.zeros(6), rng.normal(size=6) * 10):
        x, info = cg(matvec, jnp.asarray(b), jnp.asarray(x0), tol=1e-12, maxiter=50)
        np.testing.assert_allclose(x, exact, rtol=1e-9)
        assert float(info.residual) <= 1e-12
    x, info = cg(matvec, jnp.asarray(b), jnp.asarray(exact), tol=1e-12, maxiter=50)
    assert int(info.iterations) == 0 and np.all(np.isfinite(x))
    x, info = cg(matvec, jnp.zeros(6), jnp.asarray(rng.normal(size=6)), tol=0.0, maxiter=5)
    assert np.all(np.asarray(x) == 0) and float(info.residual) == 0
    # A system that converges exactly in one iteration, with no tolerance to stop the loop:
    x, info = cg(lambda v: 2.0 * v, jnp.ones(3), jnp.zeros(3), tol=0.0, maxiter=5)
    np.testing.assert_array_equal(x, 0.5 * np.ones(3))
    assert np.isfinite(float(info.residual))
    x, info = bicgstab(lambda v: 2.0 * v, jnp.ones(3), jnp.zeros(3), tol=0.0, maxiter=5)
    np.testing.assert_array_equal(x, 0.5 * np.ones(3))


def test_cgd_at_an_equilibrium_is_exactly_still():
    game, _, optimum = gj.games.affine_bilinear(random_matrix(11, 4), np.ones(4), np.ones(4))
    for tx in (gj.cgd(0.5, tol=0.0), gj.acgd(0.01, tol=0.0)):
        updates, state = tx.update(game, optimum, tx.init(optimum))
        assert np.all(np.isfinite(flat(updates))) and np.max(np.abs(flat(updates))) < 1e-12
        assert np.isfinite(float(state.residual))


def test_cg_reaches_the_tolerance_on_an_ill_conditioned_game():
    n, eta, tol = 30, 30.0, 1e-10
    rng = np.random.default_rng(12)
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    V, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = U @ np.diag(np.logspace(-3, 0, n)) @ V.T  # cond(A) = 1e3, cond(I + η²AAᵀ) ≈ 900
    b, c = rng.normal(size=n), rng.normal(size=n)
    game, init, _ = gj.games.affine_bilinear(A, b, c)
    tx = gj.cgd(eta, tol=tol, maxiter=500)
    updates, state = tx.update(game, init, tx.init(init))
    assert float(state.residual) <= tol and int(state.iterations) < 500
    x, y = np.asarray(init.x), np.asarray(init.y)
    dx, dy = cgd_closed_form(A, A @ y + b, A.T @ x + c, eta, eta)
    np.testing.assert_allclose(flat(updates), np.concatenate([dx, dy]), rtol=1e-6, atol=1e-9)
    # ...and a too-small iteration cap is reported, not hidden.
    _, capped = gj.cgd(eta, tol=tol, maxiter=3).update(game, init, tx.init(init))
    assert int(capped.iterations) == 3 and float(capped.residual) > tol


def test_cgd_with_a_scalar_lagrange_multiplier_player():
    """min ‖x‖² s.t. x1 + x2 = 1 as min_x max_λ ‖x‖² + λ(x1 + x2 − 1): y is a single scalar."""
    game = gj.zero_sum(lambda x, lam: x @ x + lam * (x[0] + x[1] - 1.0))
    init = gj.Players(jnp.array([2.0, -1.0]), jnp.array(0.0))
    result = gj.fit(game, gj.cgd(0.3, tol=1e-12), init, steps=300)
    np.testing.assert_allclose(result.params.x, [0.5, 0.5], atol=1e-9)
    np.testing.assert_allclose(result.params.y, -1.0, atol=1e-9)
    assert result.params.y.shape == ()


def test_acgd_with_equal_step_sizes_is_cgd():
    """All |gradients| equal at the start ⇒ ACGD's first step sizes are all α/(|g| + ε): CGD's step."""
    n, alpha, eps = 4, 0.2, 1e-5
    A = random_matrix(13, n)
    rng = np.random.default_rng(14)
    x0, y0 = rng.normal(size=n), rng.normal(size=n)
    sx, sy = rng.choice([-1.0, 1.0], n), rng.choice([-1.0, 1.0], n)
    b, c = sx - A @ y0, sy - A.T @ x0  # ∇x f = sx, ∇y f = sy at (x0, y0): all magnitudes 1
    game, _, _ = gj.games.affine_bilinear(A, b, c)
    init = gj.Players(jnp.asarray(x0), jnp.asarray(y0))
    acgd = gj.acgd(alpha, beta2=0.9, eps=eps, tol=1e-14)
    cgd = gj.cgd(alpha / (1 + eps), tol=1e-14)
    a, _ = acgd.update(game, init, acgd.init(init))
    c_, _ = cgd.update(game, init, cgd.init(init))
    np.testing.assert_allclose(flat(a), flat(c_), rtol=1e-12)


def test_acgd_equals_icr_alg_1():
    """ICR paper, App. A.5, Alg. 1 (both systems solved densely), several steps."""
    n, alpha, beta2, eps, h = 4, 0.05, 0.9, 1e-5, 0.3
    A = random_matrix(15, n, scale=2.0)
    game, init, _ = gj.games.quadratic(A, h=h)
    x, y = np.asarray(init.x), np.asarray(init.y)
    vx, vy = np.zeros(n), np.zeros(n)
    expected = []
    for t in range(1, STEPS + 1):
        gx, gy = h * x + A @ y, -h * y + A.T @ x
        vx, vy = beta2 * vx + (1 - beta2) * gx**2, beta2 * vy + (1 - beta2) * gy**2
        ex = alpha / (np.sqrt(vx / (1 - beta2**t)) + eps)
        ey = alpha / (np.sqrt(vy / (1 - beta2**t)) + eps)
        rx, ry = np.sqrt(ex), np.sqrt(ey)
        dx = -rx * np.linalg.solve(np.eye(n) + (rx[:, None] * A) @ (ey[:, None] * A.T * rx), rx * (gx + A @ (ey * gy)))
        dy = ry * np.linalg.solve(np.eye(n) + (ry[:, None] * A.T) @ (ex[:, None] * A * ry), ry * (gy - A.T @ (ex * gx)))
        x, y = x + dx, y + dy
        expected.append(np.concatenate([x, y]))
    tx = gj.acgd(alpha, beta2=beta2, eps=eps, tol=1e-14, maxiter=100)
    np.testing.assert_allclose(iterates(game, tx, init), np.array(expected), rtol=1e-8, atol=1e-12)


# ------------------------------------------------------------------------------- consensus, SGA


@pytest.fixture(scope="module")
def general():
    return dense_quadratic(jax.random.key(16), zero_sum=False)


def adjusted_field(wrapper, problem, params):
    """The field the inner transformation sees, read through a probe transformation."""
    seen = []

    def update(game, p, state, batch=None):
        seen.append(game.field(p, batch))
        return jax.tree.map(jnp.zeros_like, p), state

    wrapper(gj.GameTransformation(lambda p: (), update)).update(problem.game, params, ())
    return flat(seen[0])


@pytest.mark.parametrize("gamma", [0.0, 0.3, 2.0])
def test_consensus_field_is_v_plus_gamma_jt_v(general, gamma):
    z = flat(general.init)
    v = general.field(z)
    np.testing.assert_allclose(
        adjusted_field(gj.consensus(gamma), general, general.init), v + gamma * general.J.T @ v, rtol=1e-12
    )


def test_consensus_per_player_gamma(general):
    z, nx = flat(general.init), flat(general.init.x).size
    v = general.field(z)
    correction = general.J.T @ v
    expected = v + np.concatenate([0.5 * correction[:nx], 2.0 * correction[nx:]])
    got = adjusted_field(gj.consensus(gj.Players(0.5, 2.0)), general, general.init)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_sga_field_is_v_plus_lambda_antisymmetric_transpose_v(general, lam):
    z = flat(general.init)
    v, J = general.field(z), general.J
    antisymmetric = 0.5 * (J - J.T)
    np.testing.assert_allclose(
        adjusted_field(gj.sga(lam), general, general.init), v + lam * antisymmetric.T @ v, rtol=1e-12
    )


def test_adjusted_game_is_what_the_inner_method_sees_and_has_the_dense_jacobian(general):
    """On a quadratic game J is constant, so v + γJᵀv has Jacobian J + γJᵀJ and v + λAᵀv has J + λAᵀJ."""
    J = general.J
    for wrapper, jacobian in (
        (gj.consensus(0.7), J + 0.7 * J.T @ J),
        (gj.sga(0.4), J + 0.4 * (0.5 * (J - J.T)).T @ J),
    ):
        game = wrapper.adjusted_game(general.game)
        np.testing.assert_allclose(flat(game.field(general.init)), adjusted_field(wrapper, general, general.init))
        np.testing.assert_allclose(gj.derivatives.field_jacobian(game, general.init), jacobian, atol=1e-10)


def test_sga_alignment_picks_the_sign_of_lambda(general):
    z = flat(general.init)
    v, J = general.field(z), general.J
    at_v = 0.5 * (J - J.T).T @ v
    grad_h = J.T @ v
    sign = np.sign(v @ grad_h * (at_v @ grad_h) / z.size + 0.1)
    got = adjusted_field(gj.sga(0.7, align=True), general, general.init)
    np.testing.assert_allclose(got, v + sign * 0.7 * at_v, rtol=1e-12)


@pytest.mark.parametrize("wrapper", [gj.consensus(0.5), gj.sga(1.0)], ids=["consensus", "sga"])
def test_field_adjustments_converge_where_gda_diverges(wrapper):
    game, init, optimum = gj.games.bilinear()
    gda = gj.fit(game, gj.gda(optax.sgd(0.2)), init, steps=300, equilibrium=optimum).metrics["distance"]
    adjusted = gj.fit(game, wrapper(gj.gda(optax.sgd(0.2))), init, steps=300, equilibrium=optimum).metrics["distance"]
    assert gda[-1] > gda[0] and adjusted[-1] < 1e-6 * adjusted[0]


def test_adjusted_games_are_not_zero_sum_for_cgd():
    game, init, _ = gj.games.bilinear()
    seen = []
    probe = gj.GameTransformation(lambda p: (), lambda g, p, s, b=None: (seen.append(g.zero_sum), (p, s))[1])
    gj.consensus(1.0)(probe).update(game, init, ())
    gj.sga(1.0)(probe).update(game, init, ())
    assert game.zero_sum and seen == [False, False]


def per_example_game(data):
    """A mean-over-examples zero-sum game with a non-linear per-example field."""

    def f(x, y, batch):
        return jnp.mean(jnp.tanh(batch @ x) * (batch @ y) + 0.1 * (batch @ x) ** 2 - 0.1 * (batch @ y) ** 2)

    return gj.zero_sum(f)


def test_debiased_consensus_is_unbiased_over_all_minibatches():
    """Averaged over every ordered pair of examples (batches of two, drawn with replacement),
    the debiased consensus field equals the full-data consensus field exactly; the plain one does not."""
    n, d, gamma = 5, 3, 1.0
    data = np.random.default_rng(17).normal(size=(n, d))
    game = per_example_game(data)
    params = gj.Players(jnp.asarray([0.3, -0.2, 0.5]), jnp.asarray([0.1, 0.4, -0.3]))
    full = gj.consensus(gamma)

    def consensus_field(wrapper, batch):
        seen = []
        probe = gj.GameTransformation(lambda p: (), lambda g, p, s, b=None: (seen.append(g.field(p, b)), (p, s))[1])
        wrapper(probe).update(game, params, (), batch)
        return flat(seen[0])

    target = consensus_field(full, jnp.asarray(data))
    pairs = [jnp.asarray(data[[i, j]]) for i in range(n) for j in range(n)]
    debiased = np.mean([consensus_field(gj.consensus(gamma, debias=True), b) for b in pairs], axis=0)
    biased = np.mean([consensus_field(gj.consensus(gamma), b) for b in pairs], axis=0)
    np.testing.assert_allclose(debiased, target, rtol=1e-10, atol=1e-12)
    assert np.max(np.abs(biased - target)) > 1e-3
    # The debiased field's first part is still the minibatch field v_B.
    v_batch = flat(game.field(params, pairs[1]))
    np.testing.assert_allclose(consensus_field(gj.consensus(0.0, debias=True), pairs[1]), v_batch, rtol=1e-12)


def test_debiased_consensus_needs_a_batch_of_examples():
    game = per_example_game(None)
    params = gj.Players(jnp.zeros(3), jnp.zeros(3))
    tx = gj.consensus(1.0, debias=True)(gj.gda(optax.sgd(0.1)))
    with pytest.raises(ValueError, match="leading example axis of size >= 2"):
        tx.update(game, params, tx.init(params), jnp.ones((1, 3)))


@pytest.mark.parametrize(
    ("zero_sum", "solver"), [(True, "bicgstab"), (False, "bicgstab"), (False, "gmres")], ids=["cg", "bicgstab", "gmres"]
)
@pytest.mark.parametrize("method", ["cgd", "acgd"])
def test_competitive_steps_are_reverse_differentiable(zero_sum, solver, method):
    """A meta-gradient through a solve (implicit differentiation) equals central differences."""
    problem = dense_quadratic(jax.random.key(19), zero_sum=zero_sum)

    def loss_after_two_steps(lr):
        build = gj.cgd if method == "cgd" else gj.acgd
        tx = build(lr, tol=1e-14, maxiter=100, solver=solver, restart=3)
        params, state = problem.init, tx.init(problem.init)
        for _ in range(2):
            updates, state = tx.update(problem.game, params, state)
            params = gj.apply_updates(params, updates)
        return jnp.sum(jax.flatten_util.ravel_pytree(params)[0] ** 2)

    lr, eps = 0.3 if method == "cgd" else 0.05, 1e-6
    grad = jax.grad(loss_after_two_steps)(lr)
    finite = (loss_after_two_steps(lr + eps) - loss_after_two_steps(lr - eps)) / (2 * eps)
    np.testing.assert_allclose(grad, finite, rtol=1e-6)


def test_simultaneous_lead_takes_one_batch_per_player():
    """Each player's gradient and mixed product is one evaluation: PerEvaluation slice 0 for x, 1 for y."""
    dim, eta, coupling = 8, 0.1, 0.5
    game, init, _ = gj.games.sbg(jax.random.key(20), dim=dim)
    tx = gj.lead(optax.sgd(eta), coupling=coupling)
    sample = gj.per_evaluation(gj.games.sbg_sampler(3, dim), gj.evaluations_per_step(game, tx, init))
    result = gj.fit(game, tx, init, steps=5, sample=sample, key=jax.random.key(21))
    x, y = init
    x_prev, y_prev = x, y
    for t in range(5):
        bx, by = sample(jax.random.fold_in(jax.random.key(21), t)).batches
        gx, jxy = gj.derivatives.player_field_jvp(game, gj.Players(x, y), bx, "x", y - y_prev)
        gy, jyx = gj.derivatives.player_field_jvp(game, gj.Players(x, y), by, "y", x - x_prev)
        x_prev, y_prev = x, y
        x, y = x - eta * (gx + coupling * jxy), y - eta * (gy + coupling * jyx)
    np.testing.assert_allclose(flat(result.params), np.concatenate([x, y]), rtol=1e-12)
