"""Methods beyond the five papers, each against something independent (issue 15).

- Anchored extragradient (EAG-C/EAG-V) and fast extragradient (FEG): iterate for iterate against
  dense NumPy transcriptions of the papers' updates, and the papers' O(1/k²) bounds on ‖v(z_k)‖²
  for every k up to 10⁴ (which plain extragradient violates, so the check can fail); FEG on a
  negatively comonotone game where extragradient diverges.
- Hamiltonian gradient descent: the closed form of its iterates on xᵀAy from A's SVD, and the
  two-sample estimator's unbiasedness by exhaustive averaging over a finite sum.
- PastExtraAdam: a transcription of Gidel et al.'s Alg. 4 (Option 2), which optimistic Adam is not.
- Follow-the-Ridge: the dense formula with a heavy-ball leader, and a local minimax point that is
  not a local Nash point (FR converges, GDA leaves it; both spectral radii in closed form).
- LOLA and SOS: dense transcriptions in the SOS paper's notation (SOS through every branch of p),
  the Tandem game's fixed points in closed form, and matching pennies.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import dense_quadratic, flat, run_steps

import gamejax as gj

P = gj.Players


# --------------------------------------------------------------------------------------------
# Games
# --------------------------------------------------------------------------------------------


def spread_bilinear(n: int = 12, h: float = 0.0, seed: int = 0):
    """``(h/2)(‖x‖² − ‖y‖²) + xᵀAy`` with A's singular values log-spaced in [1e-3, 1].

    The spread spectrum is what makes extragradient's ‖v‖² decay like 1/k (a component of
    singular value σ decays like exp(−kα²σ²); log-uniform σ sum to ~1/k) rather than linearly.
    Returns the problem, its Jacobian (for L and the NumPy references) and ``z0``.
    """
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    V, _ = np.linalg.qr(rng.normal(size=(n, n)))
    A = U @ np.diag(np.logspace(-3, 0, n)) @ V.T
    init = P(jnp.asarray(rng.normal(size=n)), jnp.asarray(rng.normal(size=n)))
    problem = gj.games.quadratic(jnp.asarray(A), h=h, init=init)
    J = np.block([[h * np.eye(n), A], [-A.T, h * np.eye(n)]])
    return problem, J


def field_norms(game, tx, init, steps):
    """‖v(z_k)‖² for k = 0..steps (compiled scan of the step)."""
    step = gj.make_step(game, tx)

    def body(carry, _):
        params, state = carry
        params, state, _ = step(params, state)
        return (params, state), optax.tree.norm(game.field(params), squared=True)

    (_, state), norms = jax.jit(lambda p: jax.lax.scan(body, (p, tx.init(p)), None, length=steps))(init)
    return np.concatenate([[float(optax.tree.norm(game.field(init), squared=True))], np.asarray(norms)]), state


# --------------------------------------------------------------------------------------------
# Anchored extragradient (Yoon & Ryu 2021) and fast extragradient (Lee & Kim 2021)
# --------------------------------------------------------------------------------------------


def eag_reference(J, r, z0, steps, alpha, lipschitz=None):
    """EAG-C (``lipschitz=None``) or EAG-V on the dense field ``v(z) = Jz + r``, transcribed from the paper."""
    field = lambda z: J @ z + r  # noqa: E731
    z, out = z0.copy(), []
    for k in range(steps):
        beta = 1 / (k + 2)
        half = z + beta * (z0 - z) - alpha * field(z)
        z = z + beta * (z0 - z) - alpha * field(half)
        if lipschitz is not None:
            a2 = (alpha * lipschitz) ** 2
            alpha = alpha / (1 - a2) * (1 - (k + 2) ** 2 / ((k + 1) * (k + 3)) * a2)
        out.append(z)
    return np.array(out)


def feg_reference(J, r, z0, steps, alpha, rho):
    """FEG on the dense field, transcribed from Lee & Kim's update."""
    field = lambda z: J @ z + r  # noqa: E731
    z, out = z0.copy(), []
    for k in range(steps):
        beta = 1 / (k + 1)
        half = z + beta * (z0 - z) - (1 - beta) * (alpha + 2 * rho) * field(z)
        z = z + beta * (z0 - z) - alpha * field(half) - (1 - beta) * 2 * rho * field(z)
        out.append(z)
    return np.array(out)


@pytest.fixture(scope="module", params=[0.0, 1.0], ids=["bilinear", "monotone-quadratic"])
def dense(request):
    """A zero-sum quadratic game on pytree players: purely bilinear (+ linear terms) or strongly monotone."""
    return dense_quadratic(jax.random.key(11), monotone=request.param, zero_sum=True)


@pytest.mark.parametrize("variant", ["constant", "varying"])
def test_anchored_extragradient_equals_its_dense_transcription(dense, variant):
    L = np.linalg.norm(dense.J, 2)
    if variant == "constant":
        tx, expected = gj.anchored_extragradient(1 / (8 * L)), dict(alpha=1 / (8 * L))
    else:
        tx, expected = (
            gj.anchored_extragradient(0.618 / L, variant="varying", lipschitz=L),
            dict(alpha=0.618 / L, lipschitz=L),
        )
    got = np.array(run_steps(dense.game, tx, dense.init, 40, observe=flat)[2])
    reference = eag_reference(dense.J, dense.r, flat(dense.init), 40, **expected)
    np.testing.assert_allclose(got, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("rho", [0.0, -0.2])
def test_fast_extragradient_equals_its_dense_transcription(dense, rho):
    L = np.linalg.norm(dense.J, 2)
    got = np.array(run_steps(dense.game, gj.fast_extragradient(1 / L, rho=rho / L), dense.init, 40, observe=flat)[2])
    reference = feg_reference(dense.J, dense.r, flat(dense.init), 40, 1 / L, rho / L)
    np.testing.assert_allclose(got, reference, rtol=1e-12, atol=1e-12)


def test_eag_v_step_sizes_follow_the_recursion_to_the_papers_limit():
    """α_0 = 0.618/L decreases to α_∞ ≈ 0.437/L (Yoon & Ryu, after Theorem 2): the state's α_k, per player."""
    game, init, _ = gj.games.bilinear()
    L = 2.0
    tx = gj.anchored_extragradient(P(0.618 / L, 0.3 / L), variant="varying", lipschitz=L)
    _, state = field_norms(game, tx, init, 3000)
    for alpha0, got in zip((0.618, 0.3), state.step_size, strict=True):
        alpha = alpha0 / L
        for k in range(3000):
            a2 = (alpha * L) ** 2
            alpha = alpha / (1 - a2) * (1 - (k + 2) ** 2 / ((k + 1) * (k + 3)) * a2)
        np.testing.assert_allclose(float(got), alpha, rtol=1e-12)
    assert abs(float(state.step_size.x) * L - 0.437) < 2e-3


def test_anchored_methods_take_one_batch_per_evaluation():
    """With PerEvaluation batches, slice 0 serves v(z_k) and slice 1 v(z_{k+1/2}), as in the NumPy steps."""
    game = gj.zero_sum(lambda x, y, b: x @ y + b @ x + 0.5 * (x @ x - y @ y))
    field = lambda z, b: np.concatenate([z[2:] + b + z[:2], -(z[:2] - z[2:])])  # noqa: E731
    init = P(jnp.array([1.0, -2.0]), jnp.array([0.5, 3.0]))
    batches = gj.PerEvaluation(jnp.array([[1.0, 2.0], [-3.0, 0.5]]))
    z0 = flat(init)
    for tx, first, second, beta in [
        (gj.anchored_extragradient(0.1), 0.1, 0.1, 0.5),  # k = 0: β = 1/2
        (gj.fast_extragradient(0.1), 0.0, 0.1, 1.0),  # k = 0: β = 1, no extrapolation
    ]:
        assert gj.evaluations_per_step(game, tx, init, batches) == 2
        updates, _ = tx.update(game, init, tx.init(init), batches)
        half = z0 - first * field(z0, np.asarray(batches.batches[0]))
        expected = beta * (z0 - z0) - second * field(half, np.asarray(batches.batches[1]))
        np.testing.assert_allclose(flat(updates), expected, rtol=1e-12, atol=1e-12)


STEPS = 10_000


@pytest.fixture(scope="module", params=[0.0, 0.05], ids=["bilinear", "monotone-quadratic"])
def spread(request):
    return spread_bilinear(h=request.param)


def test_eag_c_stays_below_theorem_1_and_extragradient_does_not(spread):
    """‖v(z_k)‖² ≤ 4‖z0 − z*‖²/(α²(k+1)²) with α = 1/(8L) for k ≤ 10⁴; on x·Ay, EG at the same α decays like 1/k."""
    (game, init, optimum), J = spread
    L = np.linalg.norm(J, 2)
    alpha = 1 / (8 * L)
    k = np.arange(STEPS + 1)
    bound = 4 * float(optax.tree.norm(optax.tree.sub(init, optimum), squared=True)) / (alpha**2 * (k + 1) ** 2)
    eag, _ = field_norms(game, gj.anchored_extragradient(alpha), init, STEPS)
    assert np.all(eag <= bound), (eag / bound).max()
    if J[0, 0] == 0:  # bilinear: EG's ‖v‖² decays like 1/k and crosses the bound (so the check can fail)
        eg, _ = field_norms(game, gj.extragradient(optax.sgd(alpha)), init, STEPS)
        assert np.any(eg > bound)
        slope = lambda norms: np.polyfit(np.log(k[100:]), np.log(norms[100:]), 1)[0]  # noqa: E731
        assert -1.2 < slope(eg) < -0.8 and slope(eag) < -1.6


def test_eag_v_stays_below_theorem_2(spread):
    (game, init, optimum), J = spread
    L = np.linalg.norm(J, 2)
    alpha0 = 0.618 / L
    alpha_inf = alpha0
    for j in range(1_000_000):  # α_k decreases to α_∞; stop when it no longer moves
        a2 = (alpha_inf * L) ** 2
        nxt = alpha_inf / (1 - a2) * (1 - (j + 2) ** 2 / ((j + 1) * (j + 3)) * a2)
        if alpha_inf - nxt < 1e-15 * alpha_inf:
            break
        alpha_inf = nxt
    k = np.arange(STEPS + 1)
    distance2 = float(optax.tree.norm(optax.tree.sub(init, optimum), squared=True))
    bound = 4 * (1 + alpha0 * alpha_inf * L**2) * distance2 / (alpha_inf**2 * (k + 1) ** 2)
    norms, _ = field_norms(game, gj.anchored_extragradient(alpha0, variant="varying", lipschitz=L), init, STEPS)
    assert np.all(norms <= bound), (norms / bound).max()


def test_feg_stays_below_its_bound_on_monotone_games(spread):
    (game, init, optimum), J = spread
    L = np.linalg.norm(J, 2)
    k = np.arange(1, STEPS + 1)
    bound = 4 * L**2 * float(optax.tree.norm(optax.tree.sub(init, optimum), squared=True)) / k**2
    norms, _ = field_norms(game, gj.fast_extragradient(1 / L), init, STEPS)
    assert np.all(norms[1:] <= bound), (norms[1:] / bound).max()


def comonotone_rotation(rho: float = -0.3):
    """The 1-Lipschitz, ρ-comonotone field ``v(z) = [[ρ, b], [−b, ρ]] z`` (b = √(1 − ρ²)): ``(ρ/2)(x² − y²) + bxy``.

    ``⟨v(z), z⟩ = ρ‖z‖² = ρ‖v(z)‖²``: ρ-comonotone with equality, a nonconvex-nonconcave game for ρ < 0.
    """
    return gj.games.quadratic(jnp.array([[np.sqrt(1 - rho**2)]]), h=rho, init=P(jnp.ones(1), jnp.ones(1)))


def test_feg_converges_where_extragradient_diverges_on_a_negatively_comonotone_game():
    rho = -0.3
    game, init, optimum = comonotone_rotation(rho)
    k = np.arange(1, STEPS + 1)
    bound = 4 * float(optax.tree.norm(optax.tree.sub(init, optimum), squared=True)) / ((1 + 2 * rho) ** 2 * k**2)
    norms, _ = field_norms(game, gj.fast_extragradient(1.0, rho=rho), init, STEPS)
    ratio = norms[1:] / bound
    assert np.all(ratio <= 1 + 1e-9) and ratio.max() > 0.99  # the bound holds, and is attained here
    # EG's multiplier |1 − ηλ + η²λ²| (λ = ρ ± ib) exceeds 1 for every η in (0, 1/L]: it diverges.
    lam = rho + 1j * np.sqrt(1 - rho**2)
    etas = np.linspace(1e-4, 1.0, 2000)
    assert np.all(np.abs(1 - etas * lam + (etas * lam) ** 2) > 1)
    for eta in (0.1, 0.5, 1.0):
        eg, _ = field_norms(game, gj.extragradient(optax.sgd(eta)), init, 2000)
        assert np.nanmax(eg) > 1e6 * eg[0]  # grows without bound (to inf, then NaN at the largest η)


# --------------------------------------------------------------------------------------------
# Hamiltonian gradient descent (Loizou et al. 2020)
# --------------------------------------------------------------------------------------------


def bilinear_svd(seed=3, n=4):
    """``xᵀAy`` with known singular values (0.5, 0.9, 1.3, 2.0) and its SVD."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(n, n)))
    V, _ = np.linalg.qr(rng.normal(size=(n, n)))
    s = np.array([0.5, 0.9, 1.3, 2.0])
    A = U @ np.diag(s) @ V.T
    game = gj.zero_sum(lambda x, y: x @ jnp.asarray(A) @ y)
    return game, U, s, V


def test_hgd_on_bilinear_contracts_by_the_singular_value_closed_form():
    """z_k = (I − ηJᵀJ)^k z0: along the singular pair (u_i, v_i) of A the distance shrinks by 1 − ησ_i² per step."""
    game, U, s, V = bilinear_svd()
    eta = 1 / s.max() ** 2
    z0 = P(jnp.asarray(U @ np.array([1.0, -2.0, 0.5, 3.0])), jnp.asarray(V @ np.array([0.7, 1.0, -1.5, 0.2])))
    tx = gj.hamiltonian()(gj.gda(optax.sgd(eta)))
    got = np.array(run_steps(game, tx, z0, 60, observe=flat)[2])
    cx, cy = U.T @ np.asarray(z0.x), V.T @ np.asarray(z0.y)
    k = np.arange(1, 61)[:, None]
    factors = (1 - eta * s**2)[None, :] ** k  # JᵀJ = diag(AAᵀ, AᵀA): the same factor on x's and y's mode i
    expected = np.concatenate([(factors * cx) @ U.T, (factors * cy) @ V.T], axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    # The paper's rate: ‖z_k‖² ≤ (1 − μ_H/L_H)^k ‖z0‖², μ_H = σ_min², L_H = σ_max²; along σ_min's pair
    # the distance shrinks by exactly 1 − μ_H/L_H per step.
    rate = 1 - s.min() ** 2 / s.max() ** 2
    distance2 = np.sum(got**2, axis=1)
    assert np.all(distance2 <= rate ** k[:, 0] * np.sum(flat(z0) ** 2) * (1 + 1e-12))
    slow = P(jnp.asarray(U[:, 0]), jnp.asarray(V[:, 0]))
    distances = np.linalg.norm(np.array(run_steps(game, tx, slow, 20, observe=flat)[2]), axis=1)
    np.testing.assert_allclose(distances[1:] / distances[:-1], rate, rtol=1e-10)


def finite_sum_bilinear(n=5, d=3, seed=4):
    """``mean_i (xᵀA_i y + b_iᵀx + c_iᵀy)`` over a batch of examples ``(A_i, b_i, c_i)``."""
    rng = np.random.default_rng(seed)
    data = (rng.normal(size=(n, d, d)), rng.normal(size=(n, d)), rng.normal(size=(n, d)))

    def f(x, y, batch):
        A, b, c = batch
        return jnp.mean(jnp.einsum("i,nij,j->n", x, A, y) + b @ x + c @ y)

    params = P(jnp.asarray(rng.normal(size=d)), jnp.asarray(rng.normal(size=d)))
    return gj.zero_sum(f), tuple(map(jnp.asarray, data)), params


def test_hamiltonian_unbiased_estimator_averages_to_the_full_batch_field():
    """½(J_iᵀv_j + J_jᵀv_i) over independent i, j (all n² ordered pairs) averages to J̄ᵀv̄; ∇½‖v_i‖² does not."""
    game, data, params = finite_sum_bilinear()
    n = data[0].shape[0]
    full = flat(gj.hamiltonian().adjusted_game(game).field(params, data))
    unbiased = jax.jit(gj.hamiltonian(unbiased=True).adjusted_game(game).field)
    pairs = [jax.tree.map(lambda a, i=i, j=j: a[jnp.array([i, j])], data) for i in range(n) for j in range(n)]
    average = np.mean([flat(unbiased(params, pair)) for pair in pairs], axis=0)
    np.testing.assert_allclose(average, full, rtol=1e-12, atol=1e-12)
    one_sample = jax.jit(gj.hamiltonian().adjusted_game(game).field)
    biased = np.mean([flat(one_sample(params, jax.tree.map(lambda a, i=i: a[i : i + 1], data))) for i in range(n)], 0)
    assert np.abs(biased - full).max() > 1e-2


def test_hamiltonian_costs_three_passes_and_composes():
    game, data, params = finite_sum_bilinear()
    data = jax.tree.map(lambda a: a[:4], data)  # two halves of two examples
    for unbiased in (False, True):
        tx = gj.lookahead(2, 0.5)(gj.hamiltonian(unbiased=unbiased)(gj.extragradient(optax.sgd(0.1))))
        assert gj.evaluations_per_step(game, tx, params, data) == 2
        assert gj.passes_per_step(game, tx, params, data) == 6
    with pytest.raises(ValueError, match=r"^hamiltonian\(unbiased=True\) needs a batch .* even size"):
        gj.hamiltonian(unbiased=True).adjusted_game(game).field(params, jax.tree.map(lambda a: a[:3], data))
    with pytest.raises(ValueError, match="^unbiased must be True or False"):
        gj.hamiltonian(unbiased=1)
    with pytest.raises(TypeError, match="wraps a gj.GameTransformation"):
        gj.hamiltonian()(optax.sgd(0.1))


# --------------------------------------------------------------------------------------------
# Extrapolation from the past with Adam: PastExtraAdam (Gidel et al. 2019, Alg. 4, Option 2)
# --------------------------------------------------------------------------------------------


class NumpyAdam:
    """Adam (Kingma & Ba) on a flat vector, elementwise: each player's own Adam in one array."""

    def __init__(self, size, lr, b1, b2, eps):
        self.m, self.v, self.t = np.zeros(size), np.zeros(size), 0
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps

    def step(self, g):
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g**2
        m_hat, v_hat = self.m / (1 - self.b1**self.t), self.v / (1 - self.b2**self.t)
        return -self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def past_extra_adam_reference(problem, steps, lr=0.05, b1=0.5, b2=0.9, eps=1e-8):
    """Alg. 4 with Option 2: the saved gradient g_{t−1/2} moves the moments and the extrapolation
    ω_{t+1/2} = ω_t − η m̂/(√v̂ + ε); the new gradient g_{t+1/2} = v(ω_{t+1/2}) moves them again and
    the update ω_{t+1} = ω_t − η m̂/(√v̂ + ε). The first step has no saved gradient: ω_{1/2} = ω_0.
    """
    z = flat(problem.init)
    adam, past, out = NumpyAdam(z.size, lr, b1, b2, eps), None, []
    for _ in range(steps):
        half = z if past is None else z + adam.step(past)
        past = problem.field(half)
        z = z + adam.step(past)
        out.append(z)
    return np.array(out)


@pytest.fixture(scope="module")
def general():
    return dense_quadratic(jax.random.key(7), monotone=1.0, zero_sum=False)


def test_past_extra_adam_equals_a_transcription_of_alg_4_option_2(general):
    adam = optax.adam(0.05, b1=0.5, b2=0.9, eps=1e-8)
    got = np.array(run_steps(general.game, gj.past_extragradient(adam), general.init, 40, observe=flat)[2])
    reference = past_extra_adam_reference(general, 40)
    np.testing.assert_allclose(got, reference, rtol=1e-12, atol=1e-12)
    # Optimistic Adam (either extrapolation) is another method: it moves Adam's state once per step.
    for on in ("gradients", "updates"):
        optimistic = np.array(run_steps(general.game, gj.optimistic(adam, on=on), general.init, 40, observe=flat)[2])
        assert np.abs(optimistic - reference).max() > 1e-2


def test_past_extragradient_with_sgd_extrapolates_along_ogda(general):
    """Popov's method: the extrapolated points ω'_t = ω_t − ηv(ω'_{t−1}) satisfy OGDA's recursion."""
    eta = 0.05
    tx = gj.past_extragradient(optax.sgd(eta))
    step = jax.jit(gj.make_step(general.game, tx))
    params, state, points = general.init, tx.init(general.init), []
    for _ in range(30):
        params, state, _ = step(params, state)
        points.append(flat(params) - eta * flat(state.past))  # ω'_{t+1} = ω_{t+1} − ηv(ω'_t)
    points = np.array(points)
    for t in range(1, len(points) - 1):
        ogda = points[t] - 2 * eta * general.field(points[t]) + eta * general.field(points[t - 1])
        np.testing.assert_allclose(points[t + 1], ogda, rtol=1e-12, atol=1e-12)
    assert gj.evaluations_per_step(general.game, tx, general.init) == 1


# --------------------------------------------------------------------------------------------
# Follow-the-Ridge (Wang, Zhang & Ba 2020)
# --------------------------------------------------------------------------------------------


def test_follow_the_ridge_equals_the_dense_formula(general):
    """Δx = base_x(v_x), Δy = base_y(v_y) − J_yy⁻¹J_yxΔx: heavy-ball bases, three steps, a general-sum game."""
    ex, ey, beta = 0.05, 0.1, 0.5
    base = P(optax.sgd(ex, momentum=beta), optax.sgd(ey))
    tx = gj.follow_the_ridge(base, tol=1e-14, maxiter=100)
    got = np.array(run_steps(general.game, tx, general.init, 3, observe=flat)[2])
    nx = flat(general.init.x).size
    J = general.J
    z, momentum, expected = flat(general.init), np.zeros(nx), []
    for _ in range(3):
        v = general.field(z)
        momentum = v[:nx] + beta * momentum  # optax's heavy ball: trace m ← g + βm, step −ηm
        dx = -ex * momentum
        dy = -ey * v[nx:] - np.linalg.solve(J[nx:, nx:], J[nx:, :nx] @ dx)
        z = z + np.concatenate([dx, dy])
        expected.append(z)
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-12, atol=1e-12)


def local_minimax_game():
    """``f = −3x² + 4xy − y²``: (0, 0) is a local minimax point (H_yy = −2, Schur complement −6 + 8 = 2 > 0)
    but not a local Nash point (H_xx = −6: x sits at a maximum of f(·, 0))."""
    return gj.zero_sum(lambda x, y: -3 * x**2 + 4 * x * y - y**2), P(jnp.array(1.0), jnp.array(-0.5))


@pytest.mark.parametrize("eta", [0.05, 0.1, 0.3])
def test_follow_the_ridge_converges_to_a_local_minimax_point_that_gda_leaves(eta):
    game, init = local_minimax_game()
    optimum = P(jnp.array(0.0), jnp.array(0.0))
    ex, ey = eta, 1.5 * eta  # y's rate below 3·x's: two-timescale GDA does not converge either
    fr = gj.follow_the_ridge(P(optax.sgd(ex), optax.sgd(ey)), tol=1e-12)
    gda = gj.gda(P(optax.sgd(ex), optax.sgd(ey)))
    # FR's linearized step has eigenvalues 1 − η_x·(Schur complement 2) and 1 + η_y·H_yy = 1 − 2η_y
    # (the paper's analysis); GDA's are those of I − diag(η_x, η_y)·[[−6, 4], [−4, 2]].
    assert float(gj.spectral_radius(game, fr, optimum)) == pytest.approx(
        max(abs(1 - 2 * ex), abs(1 - 2 * ey)), rel=1e-10
    )
    gda_radius = np.abs(np.linalg.eigvals(np.eye(2) - np.diag([ex, ey]) @ np.array([[-6.0, 4.0], [-4.0, 2.0]]))).max()
    assert float(gj.spectral_radius(game, gda, optimum)) == pytest.approx(gda_radius, rel=1e-10)
    assert gda_radius > 1
    steps = int(30 / eta)
    ridge = gj.fit(game, fr, init, steps=steps, equilibrium=optimum, progress=False)
    plain = gj.fit(game, gda, init, steps=steps, equilibrium=optimum, progress=False)
    assert float(ridge.metrics["distance"][-1]) < 1e-10
    assert float(plain.metrics["distance"][-1]) > 1e3


def test_follow_the_ridge_reports_its_solve(general):
    tx = gj.follow_the_ridge(optax.sgd(0.05), tol=1e-12, maxiter=50)
    _, state, _ = run_steps(general.game, tx, general.init, 2)
    ny = flat(general.init.y).size
    assert 1 <= int(state.iterations) <= ny and float(state.residual) <= 1e-12
    # one linearization + J_yx·Δx + the solve's products, each a pass (what fit reports)
    assert gj.evaluations_per_step(general.game, tx, general.init) == 1
    capped = gj.follow_the_ridge(optax.sgd(0.05), tol=1e-12, maxiter=1, warm_start=False)
    _, state, _ = run_steps(general.game, capped, general.init, 1)
    assert int(state.iterations) == 1 and float(state.residual) > 1e-6
    # one linearization, J_yx·Δx, one iteration and the final true-residual product
    assert float(state.evaluations.value) == 4


# --------------------------------------------------------------------------------------------
# LOLA (Foerster et al. 2018) and SOS (Letcher et al. 2019), in the SOS paper's notation
# --------------------------------------------------------------------------------------------


def shaping_reference(problem, steps, eta, alpha, rule, a=0.5, b=0.1, zero_sum=False):
    """θ ← θ − η(ξ_0 − pαχ) on the dense quadratic game, from the SOS paper's definitions.

    ``ξ_0 = ξ − αH_oξ``, ``χ = diag(H_oᵀ∇L)``: for ``ℓ_x = ½xᵀPx + xᵀAy + bᵀx`` and
    ``ℓ_y = ½yᵀQy + yᵀBx + cᵀy``, ``H_12 = A``, ``H_21 = B``, ``∇_y ℓ_x = Aᵀx``, ``∇_x ℓ_y = Bᵀy``
    (zero-sum: ``ℓ_y = −ℓ_x``). ``rule`` is ``"lola"`` (p = 1) or ``"sos"`` (Alg. 1's p). Returns
    the iterates and which branches of p were taken.
    """
    nx = flat(problem.init.x).size
    J = problem.J
    A, B = J[:nx, nx:], J[nx:, :nx]
    z, out, branches = flat(problem.init), [], set()
    for _ in range(steps):
        x, y = z[:nx], z[nx:]
        xi = problem.field(z)
        ho = np.concatenate([A @ xi[nx:], B @ xi[:nx]])
        cross_y, cross_x = (-xi[nx:], -xi[:nx]) if zero_sum else (A.T @ x, B.T @ y)
        chi = np.concatenate([B.T @ cross_y, A.T @ cross_x])
        xi0 = xi - alpha * ho
        p = 1.0
        if rule == "sos":
            dot = np.dot(-alpha * chi, xi0)
            p1 = 1.0 if dot >= 0 else min(1.0, -a * np.dot(xi0, xi0) / dot)
            p2 = np.dot(xi, xi) if np.linalg.norm(xi) < b else 1.0
            p = min(p1, p2)
            branches |= {("p1<1" if p1 < 1 else "p1=1"), ("p2<1" if p2 < 1 else "p2=1")}
        z = z - eta * (xi0 - p * alpha * chi)
        out.append(z)
    return np.array(out), branches


@pytest.mark.parametrize("zero_sum", [False, True], ids=["general-sum", "zero-sum"])
def test_lola_equals_its_dense_transcription(zero_sum):
    problem = dense_quadratic(jax.random.key(5), monotone=1.0, zero_sum=zero_sum)
    got = np.array(run_steps(problem.game, gj.lola(optax.sgd(0.05), lookahead=0.1), problem.init, 30, observe=flat)[2])
    expected, _ = shaping_reference(problem, 30, 0.05, 0.1, "lola", zero_sum=zero_sum)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("zero_sum", [False, True], ids=["general-sum", "zero-sum"])
def test_sos_equals_its_dense_transcription_through_every_branch_of_p(zero_sum):
    problem = dense_quadratic(jax.random.key(6), monotone=1.0, zero_sum=zero_sum)
    a, b, steps = 0.2, 0.9, 150
    tx = gj.sos(optax.sgd(0.1), lookahead=0.3, a=a, b=b)
    got = np.array(run_steps(problem.game, tx, problem.init, steps, observe=flat)[2])
    expected, branches = shaping_reference(problem, steps, 0.1, 0.3, "sos", a=a, b=b, zero_sum=zero_sum)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # In a zero-sum game H_o is antisymmetric and χ = H_oξ, so ⟨−αχ, ξ_0⟩ = α²‖H_oξ‖² ≥ 0: p₁ = 1.
    assert branches == ({"p1=1", "p2<1", "p2=1"} | (set() if zero_sum else {"p1<1"}))


def test_the_zero_sum_shortcut_is_the_general_formula():
    """χ = H_oξ in a zero-sum game: the same steps from the zero-sum game and from (f, −f) as a general-sum one."""
    problem = dense_quadratic(jax.random.key(6), monotone=0.5, zero_sum=True)
    f = lambda x, y: problem.game.losses(P(x, y)).x  # noqa: E731
    general = gj.general_sum(f, lambda x, y: -f(x, y))
    for tx in (gj.lola(optax.sgd(0.05), lookahead=0.2), gj.sos(optax.sgd(0.05), lookahead=0.2, b=0.5)):
        fast = np.array(run_steps(problem.game, tx, problem.init, 20, observe=flat)[2])
        slow = np.array(run_steps(general, tx, problem.init, 20, observe=flat)[2])
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
        assert gj.passes_per_step(problem.game, tx, problem.init) == 3
        assert gj.passes_per_step(general, tx, problem.init) == 7
        assert gj.evaluations_per_step(general, tx, problem.init) == 1


TANDEM = gj.general_sum(lambda x, y: (x + y) ** 2 - 2 * x, lambda x, y: (x + y) ** 2 - 2 * y)


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.2])
def test_tandem_lola_leaves_the_stable_fixed_points_and_sos_keeps_them(alpha):
    """Tandem (SOS paper): the fixed points x + y = 1 are stable; LOLA's field vanishes at
    x + y = (1 − 2α)/(1 − 4α) instead (ξ = 2s − 2, H_oξ = 2ξ, χ = 4s per player, s = x + y)."""
    starts = [P(jnp.array(0.5), jnp.array(0.5)), P(jnp.array(-1.3), jnp.array(0.9)), P(jnp.array(2.0), jnp.array(1.0))]
    for start in starts:
        lola = gj.fit(TANDEM, gj.lola(optax.sgd(alpha), lookahead=alpha), start, steps=400, progress=False)
        sos = gj.fit(TANDEM, gj.sos(optax.sgd(alpha), lookahead=alpha), start, steps=400, progress=False)
        assert float(sum(lola.params)) == pytest.approx((1 - 2 * alpha) / (1 - 4 * alpha), abs=1e-10)
        assert float(sum(sos.params)) == pytest.approx(1.0, abs=1e-10)
    at_fixed_point = gj.sos(optax.sgd(alpha), lookahead=alpha)
    params, _, _ = run_steps(TANDEM, at_fixed_point, starts[0], 5)
    assert float(params.x) == float(params.y) == 0.5  # ξ = 0: p₂ = 0 and ξ_p = ξ_0 = 0


def matching_pennies():
    """Player x's loss (2p_x − 1)(2p_y − 1) with p = σ(θ), player y's its negative; the Nash point is θ = 0."""
    return gj.zero_sum(lambda x, y: (2 * jax.nn.sigmoid(x) - 1) * (2 * jax.nn.sigmoid(y) - 1))


def test_matching_pennies_lola_and_sos_converge_to_nash_and_naive_learning_does_not():
    game, start = matching_pennies(), P(jnp.array(1.0), jnp.array(-0.5))
    for tx in (gj.lola(optax.sgd(1.0), lookahead=1.0), gj.sos(optax.sgd(1.0), lookahead=1.0)):
        result = gj.fit(game, tx, start, steps=1000, progress=False)
        np.testing.assert_allclose(jax.nn.sigmoid(flat(result.params)), 0.5, atol=1e-8)
    naive = gj.fit(game, gj.gda(optax.sgd(1.0)), start, steps=1000, progress=False)
    assert np.abs(jax.nn.sigmoid(flat(naive.params)) - 0.5).min() > 0.4


# --------------------------------------------------------------------------------------------
# The compare job's specs
# --------------------------------------------------------------------------------------------

SPECS = {
    "eag": "AnchoredExtragradientState",
    "feg": "FastExtragradientState",
    "past-eg": "PastExtragradientState",
    "past-extra-adam": "PastExtragradientState",
    "fr": "FollowTheRidgeState",
    "hgd": "GDAState",
    "lola": "LOLAState",
    "sos": "SOSState",
}


@pytest.mark.parametrize("spec", sorted(SPECS))
def test_compare_specs_build_the_methods(spec):
    from gamejax._src.gan import compare

    tx = compare.build_method(spec, compare.Options())
    assert type(tx.init(P(jnp.ones(2), jnp.ones(2)))).__name__ == SPECS[spec]
    assert type(compare.build_method(f"la-{spec}", compare.Options()).init(P(jnp.ones(2), jnp.ones(2)))).__name__ == (
        "LookaheadState"
    )


def test_compare_runs_the_new_specs_at_their_cost():
    from gamejax._src.gan import compare

    rows = {row.method: row for row in compare.compare("qp2", tuple(SPECS), passes=60, progress=False)}
    expected = {"eag": 2, "feg": 2, "past-eg": 1, "past-extra-adam": 1, "hgd": 3, "lola": 3, "sos": 3}
    assert {name: rows[name].passes_per_step for name in expected} == expected  # qp2 is zero-sum
    assert rows["fr"].passes_per_step > 2  # a linearization, J_yx·Δx and the solve's products
    assert all(row.distance[0] is not None for row in rows.values())


# --------------------------------------------------------------------------------------------
# Invalid hyperparameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: gj.anchored_extragradient(0.0), r"^learning_rate \(player x\) must lie in \(0\.0, inf\)"),
        (lambda: gj.anchored_extragradient(P(0.1, -1.0)), r"^learning_rate \(player y\) must lie in"),
        (lambda: gj.anchored_extragradient(0.1, variant="fast"), r"^variant must be one of \('constant', 'varying'\)"),
        (lambda: gj.anchored_extragradient(0.1, variant="varying"), r"needs lipschitz=L"),
        (lambda: gj.anchored_extragradient(0.1, lipschitz=1.0), r"^lipschitz is used only by .*variant='varying'"),
        (
            lambda: gj.anchored_extragradient(0.1, variant="varying", lipschitz=-1.0),
            r"^lipschitz must lie in \(0\.0, inf\)",
        ),
        (
            lambda: gj.anchored_extragradient(0.9, variant="varying", lipschitz=1.0),
            r"^learning_rate \(player x\) times lipschitz must be below √3/2",
        ),
        (lambda: gj.fast_extragradient(float("nan")), r"^learning_rate \(player x\) must lie in"),
        (lambda: gj.fast_extragradient(1.0, rho=float("inf")), r"^rho must lie in"),
        (lambda: gj.fast_extragradient(1.0, rho=-0.5), r"^rho must be greater than -learning_rate/2"),
        (lambda: gj.fast_extragradient(P(2.0, 1.0), rho=-0.6), r"learning_rate \(player y\) = 1\.0"),
        (lambda: gj.follow_the_ridge(optax.sgd(0.1), damping=-1.0), r"^damping must lie in \[0\.0, inf\)"),
        (lambda: gj.follow_the_ridge(optax.sgd(0.1), tol=float("nan")), r"^tol must lie in"),
        (lambda: gj.follow_the_ridge(optax.sgd(0.1), maxiter=0), r"^maxiter must be an integer >= 1"),
        (lambda: gj.follow_the_ridge(optax.sgd(0.1), warm_start="yes"), r"^warm_start must be True or False"),
        (lambda: gj.lola(optax.sgd(0.1), lookahead=-0.1), r"^lookahead must lie in \[0\.0, inf\)"),
        (lambda: gj.sos(optax.sgd(0.1), lookahead=float("nan")), r"^lookahead must lie in"),
        (lambda: gj.sos(optax.sgd(0.1), lookahead=0.1, a=1.0), r"^a must lie in \(0\.0, 1\.0\)"),
        (lambda: gj.sos(optax.sgd(0.1), lookahead=0.1, b=0.0), r"^b must lie in \(0\.0, 1\.0\)"),
    ],
)
def test_constructors_reject_invalid_hyperparameters(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_anchored_methods_reject_params_other_than_their_anchor():
    tx = gj.anchored_extragradient(0.1)
    params = P(jnp.ones(2), jnp.ones(2))
    with pytest.raises(ValueError, match="anchor"):
        tx.update(gj.games.bilinear().game, P(jnp.ones(3), jnp.ones(2)), tx.init(params))


def test_traced_hyperparameters_are_not_validated():
    game, init, _ = gj.games.bilinear()

    def run(lr, lipschitz, rho):
        eag = gj.anchored_extragradient(lr, variant="varying", lipschitz=lipschitz)
        feg = gj.fast_extragradient(lr, rho=rho)
        return run_steps_pure(game, eag, init), run_steps_pure(game, feg, init)

    swept = jax.vmap(run)(jnp.array([0.1, 0.2]), jnp.array([1.0, 2.0]), jnp.array([0.0, -0.05]))
    for i, (lr, lipschitz, rho) in enumerate([(0.1, 1.0, 0.0), (0.2, 2.0, -0.05)]):
        looped = run(lr, lipschitz, rho)
        for got, want in zip(jax.tree.leaves(swept), jax.tree.leaves(looped), strict=True):
            np.testing.assert_allclose(got[i], want, rtol=1e-12)


def run_steps_pure(game, tx, init, steps=5):
    step = gj.make_step(game, tx)
    params, state = init, tx.init(init)
    for _ in range(steps):
        params, state, _ = step(params, state)
    return params
