"""Methods against direct NumPy transcriptions of the papers' pseudocode, iterate for iterate.

The references use the dense field ``v(z) = Jz + r`` of a general-sum quadratic game (see
tests/problems.py), written independently of gamejax's autodiff field.
"""

from __future__ import annotations

import jax
import numpy as np
import optax
import pytest
from problems import dense_quadratic, flat, run_steps

import gamejax as gj

STEPS = 40


@pytest.fixture(scope="module")
def problem():
    return dense_quadratic(jax.random.key(7), monotone=1.0, zero_sum=False)


def gamejax_iterates(problem, tx, steps=STEPS):
    """The flattened params after each of ``steps`` compiled steps."""
    return np.array(run_steps(problem.game, tx, problem.init, steps, observe=flat)[2])


class Reference:
    """Per-player gradients of the dense game on flat vectors."""

    def __init__(self, problem):
        self.J, self.r = problem.J, problem.r
        self.nx = flat(problem.init.x).size
        self.z0 = flat(problem.init)

    def split(self, z):
        return z[: self.nx].copy(), z[self.nx :].copy()

    def field(self, x, y):
        v = self.J @ np.concatenate([x, y]) + self.r
        return v[: self.nx], v[self.nx :]

    def gx(self, x, y):
        return self.field(x, y)[0]

    def gy(self, x, y):
        return self.field(x, y)[1]


class NumpyAdam:
    """Adam of Kingma & Ba (lookahead paper, eqs. 5–8), returning the step to add."""

    def __init__(self, size, lr, b1=0.9, b2=0.999, eps=1e-8):
        self.m, self.v, self.n = np.zeros(size), np.zeros(size), 0
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps

    def step(self, g, commit=True):
        n = self.n + 1
        m = self.b1 * self.m + (1 - self.b1) * g
        v = self.b2 * self.v + (1 - self.b2) * g**2
        if commit:
            self.m, self.v, self.n = m, v, n
        m_hat, v_hat = m / (1 - self.b1**n), v / (1 - self.b2**n)
        return -self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def alg3_or_6(ref, *, eta, alpha, r, k_slow, k_super=None, steps=STEPS):
    """Lookahead paper Alg. 3 (LA with update ratio r) and, with ``k_super``, Alg. 6 (nested)."""
    (eta_x, eta_y), (a_x, a_y) = eta, alpha
    x, y = ref.split(ref.z0)
    xs, ys, xss, yss = x.copy(), y.copy(), x.copy(), y.copy()
    out = []
    for t in range(1, steps + 1):
        for _ in range(r):
            y = y - eta_y * ref.gy(x, y)
        x = x - eta_x * ref.gx(x, y)
        if t % k_slow == 0:
            y, x = ys + a_y * (y - ys), xs + a_x * (x - xs)
            xs, ys = x.copy(), y.copy()
        if k_super is not None and t % k_super == 0:
            y, x = yss + a_y * (y - yss), xss + a_x * (x - xss)
            xss, yss = x.copy(), y.copy()
            xs, ys = x.copy(), y.copy()
        out.append(np.concatenate([x, y]))
    return np.array(out)


def players_sgd(eta):
    return gj.Players(optax.sgd(eta[0]), optax.sgd(eta[1]))


def test_alternating_r5_equals_alg3_without_backtracking(problem):
    ref, eta = Reference(problem), (0.05, 0.08)
    expected = alg3_or_6(ref, eta=eta, alpha=(1.0, 1.0), r=5, k_slow=STEPS + 1)
    got = gamejax_iterates(problem, gj.alternating(players_sgd(eta), y_steps=5))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_lookahead_over_alternating_r5_equals_alg3(problem):
    ref, eta, alpha = Reference(problem), (0.05, 0.08), (0.5, 0.3)
    expected = alg3_or_6(ref, eta=eta, alpha=alpha, r=5, k_slow=4)
    tx = gj.lookahead(4, gj.Players(*alpha))(gj.alternating(players_sgd(eta), y_steps=5))
    np.testing.assert_allclose(gamejax_iterates(problem, tx), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("k_slow", "k_super"), [(3, 12), (2, 4), (5, 5)])
def test_nested_lookahead_equals_alg6(problem, k_slow, k_super):
    ref, eta, alpha = Reference(problem), (0.05, 0.08), (0.5, 0.4)
    expected = alg3_or_6(ref, eta=eta, alpha=alpha, r=2, k_slow=k_slow, k_super=k_super)
    inner = gj.lookahead(k_slow, gj.Players(*alpha))(gj.alternating(players_sgd(eta), y_steps=2))
    tx = gj.lookahead(k_super, gj.Players(*alpha))(inner)
    np.testing.assert_allclose(gamejax_iterates(problem, tx), expected, rtol=1e-10, atol=1e-12)


def test_alternating_lookahead_equals_alg7(problem):
    """Alg. 7: each player backtracks after every k of its own updates, before the opponent moves."""
    ref, (eta_x, eta_y), (k_x, k_y), (a_x, a_y), r = Reference(problem), (0.05, 0.08), (3, 4), (0.5, 0.3), 2
    x, y = ref.split(ref.z0)
    x_slow, y_slow, n_y = x.copy(), y.copy(), 0
    expected = []
    for n_x in range(1, STEPS + 1):
        for _ in range(r):
            y = y - eta_y * ref.gy(x, y)
            n_y += 1
            if n_y % k_y == 0:
                y = y_slow + a_y * (y - y_slow)
                y_slow = y.copy()
        x = x - eta_x * ref.gx(x, y)
        if n_x % k_x == 0:
            x = x_slow + a_x * (x - x_slow)
            x_slow = x.copy()
        expected.append(np.concatenate([x, y]))
    tx = gj.alternating_lookahead(
        players_sgd((eta_x, eta_y)), k=gj.Players(k_x, k_y), alpha=gj.Players(a_x, a_y), y_steps=r
    )
    np.testing.assert_allclose(gamejax_iterates(problem, tx), np.array(expected), rtol=1e-10, atol=1e-12)


def test_extragradient_equals_eq_eg(problem):
    ref, eta = Reference(problem), 0.1
    x, y = ref.split(ref.z0)
    expected = []
    for _ in range(STEPS):
        gx, gy = ref.field(x, y)
        gx, gy = ref.field(x - eta * gx, y - eta * gy)
        x, y = x - eta * gx, y - eta * gy
        expected.append(np.concatenate([x, y]))
    got = gamejax_iterates(problem, gj.extragradient(optax.sgd(eta)))
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("extrapolation_updates_state", [True, False])
def test_extra_adam_equals_gidel_alg4(problem, extrapolation_updates_state):
    """Extra-Adam (Gidel et al. 2019, Alg. 4): the extrapolation step shares the moment estimates."""
    ref, lr = Reference(problem), 0.02
    z = ref.z0.copy()
    adam = NumpyAdam(z.size, lr, b1=0.5)
    expected = []
    for _ in range(STEPS):
        half = z + adam.step(np.concatenate(ref.field(*ref.split(z))), commit=extrapolation_updates_state)
        z = z + adam.step(np.concatenate(ref.field(*ref.split(half))))
        expected.append(z.copy())
    tx = gj.extragradient(optax.adam(lr, b1=0.5), extrapolation_updates_state=extrapolation_updates_state)
    np.testing.assert_allclose(gamejax_iterates(problem, tx), np.array(expected), rtol=1e-9, atol=1e-12)


def test_ogda_equals_eq_ogda(problem):
    """ω_{t+1} = ω_t − 2η v_t + η v_{t−1} (lookahead paper, eq. OGDA), v_{−1} := v_0."""
    ref, eta = Reference(problem), 0.1
    z = ref.z0.copy()
    previous = None
    expected = []
    for _ in range(STEPS):
        v = np.concatenate(ref.field(*ref.split(z)))
        previous = v if previous is None else previous
        z = z - 2 * eta * v + eta * previous
        previous = v
        expected.append(z.copy())
    got = gamejax_iterates(problem, gj.optimistic(optax.sgd(eta)))
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-10, atol=1e-12)


def test_optimistic_adam_equals_daskalakis_alg1(problem):
    """Optimistic Adam: ω_{t+1} = ω_t + 2·adam_t − adam_{t−1} (Daskalakis et al. 2018, Alg. 1)."""
    ref, lr = Reference(problem), 0.02
    z = ref.z0.copy()
    adam = NumpyAdam(z.size, lr)
    previous = None
    expected = []
    for _ in range(STEPS):
        u = adam.step(np.concatenate(ref.field(*ref.split(z))))
        previous = u if previous is None else previous
        z = z + 2 * u - previous
        previous = u
        expected.append(z.copy())
    got = gamejax_iterates(problem, gj.optimistic(optax.adam(lr), on="updates"))
    np.testing.assert_allclose(got, np.array(expected), rtol=1e-9, atol=1e-12)


def sbg_reference_field(b, c, theta, phi, index):
    """∇θ, −∇φ of Σ_{i∈index} θᵀb_i + θ_iφ_i + c_iᵀφ (the SB-G minibatch loss), by hand."""
    g_theta = b[index].sum(0).copy()
    g_theta[index] += phi[index]
    g_phi = c[index].sum(0).copy()
    g_phi[index] += theta[index]
    return g_theta, -g_phi


def test_extragradient_uses_independent_samples_for_extrapolation_and_update():
    """Alg. 4: the extrapolation and the update draw their own minibatch (gj.PerEvaluation)."""
    dim, batch_size, eta = 10, 3, 0.2
    game, init, _ = gj.games.sbg(jax.random.key(1), dim=dim)
    # The data b_i, c_i, read off single-sample gradients at the origin (tests/test_games.py checks
    # the SB-G loss against its formula); the reference below then uses only this data.
    zero = gj.Players(np.zeros(dim), np.zeros(dim))
    b = np.stack([np.asarray(game.field(zero, np.array([i])).x) for i in range(dim)])
    c = np.stack([-np.asarray(game.field(zero, np.array([i])).y) for i in range(dim)])
    sample = gj.per_evaluation(gj.games.sbg_sampler(batch_size, dim), 2)
    keys = jax.random.split(jax.random.key(2), STEPS)
    batches = [sample(k) for k in keys]
    theta, phi = np.asarray(init.x), np.asarray(init.y)
    expected = []
    for batch in batches:
        first, second = np.asarray(batch.batches[0]), np.asarray(batch.batches[1])
        assert not np.array_equal(first, second)  # independent samples really differ
        gt, gp = sbg_reference_field(b, c, theta, phi, first)
        gt, gp = sbg_reference_field(b, c, theta - eta * gt, phi - eta * gp, second)
        theta, phi = theta - eta * gt, phi - eta * gp
        expected.append(np.concatenate([theta, phi]))
    _, _, got = run_steps(game, gj.extragradient(optax.sgd(eta)), init, batches=batches, observe=flat)
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-10, atol=1e-12)
    # ...and a plain batch is used for both evaluations.
    plain = batches[0].batches[0]
    gt, gp = sbg_reference_field(b, c, np.asarray(init.x), np.asarray(init.y), np.asarray(plain))
    gt, gp = sbg_reference_field(b, c, np.asarray(init.x) - eta * gt, np.asarray(init.y) - eta * gp, np.asarray(plain))
    one, _, _ = run_steps(game, gj.extragradient(optax.sgd(eta)), init, batches=[plain])
    np.testing.assert_allclose(flat(one), np.concatenate([init.x - eta * gt, init.y - eta * gp]), rtol=1e-12)
