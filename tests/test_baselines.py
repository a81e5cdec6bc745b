"""Unrolling, restarted SVRE and complex momentum against transcriptions and exact expectations."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import dense_quadratic, flat, run_steps

import gamejax as gj

STEPS = 15


@pytest.fixture(scope="module")
def problem():
    return dense_quadratic(jax.random.key(30), zero_sum=False)


def iterates(problem, tx, steps=STEPS):
    _, state, out = run_steps(problem.game, tx, problem.init, steps, observe=flat)
    return np.array(out), state


def split(problem, z):
    nx = flat(problem.init.x).size
    return z[:nx], z[nx:]


def gradients(problem, x, y):
    v = problem.field(np.concatenate([x, y]))
    return split(problem, v)


@pytest.mark.parametrize("players", ["y", "xy"])
def test_unrolled_equals_the_lookahead_papers_unroll_updates(problem, players):
    """App. D.1: y^m = m GD steps of y against x_t; x steps at (x_t, y^m); y at (x^m or x_t, y_t)."""
    eta, eta_unroll, m = 0.05, 0.1, 3
    x, y = split(problem, flat(problem.init))
    expected = []
    for _ in range(STEPS):
        y_m, x_m = y.copy(), x.copy()
        for _ in range(m):
            y_m = y_m - eta_unroll * gradients(problem, x, y_m)[1]
            if players == "xy":
                x_m = x_m - eta_unroll * gradients(problem, x_m, y)[0]
        gx = gradients(problem, x, y_m)[0]
        gy = gradients(problem, x_m, y)[1]
        x, y = x - eta * gx, y - eta * gy
        expected.append(np.concatenate([x, y]))
    tx = gj.unrolled(optax.sgd(eta), unroll=optax.sgd(eta_unroll), steps=m, players=players)
    np.testing.assert_allclose(iterates(problem, tx)[0], np.array(expected), rtol=1e-10, atol=1e-12)
    assert gj.evaluations_per_step(problem.game, tx, problem.init) == m * len(players) + 2


def test_complex_momentum_with_real_beta_is_heavy_ball(problem):
    for beta in (0.6, -0.4):
        got, _ = iterates(problem, gj.gda(gj.complex_momentum(0.05, beta)))
        expected, _ = iterates(problem, gj.gda(optax.sgd(0.05, momentum=beta)))
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_complex_momentum_equals_its_recurrence_and_its_companion_radius():
    """μ ← βμ − v, ω ← ω + η Re μ (Lorraine & Duvenaud, Alg. 1), on x·y with β complex."""
    eta, beta = 0.3, 0.8 * np.exp(1j * np.pi / 6)
    game, init, optimum = gj.games.bilinear()
    J = np.array([[0.0, 1.0], [-1.0, 0.0]])  # v(ω) = Jω on x·y
    w, mu = np.array([1.0, 1.0]), np.zeros(2, complex)
    expected = []
    for _ in range(STEPS):
        mu = beta * mu - J @ w
        w = w + eta * mu.real
        expected.append(w.copy())
    tx = gj.gda(gj.complex_momentum(eta, beta))
    _, _, got = run_steps(game, tx, init, STEPS, observe=lambda p: [float(p.x), float(p.y)])
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # The linear map on (ω, Re μ, Im μ) has the radius gamejax's step Jacobian reports.
    re, im = beta.real, beta.imag
    M = np.block(
        [
            [np.eye(2) - eta * J, eta * re * np.eye(2), -eta * im * np.eye(2)],
            [-J, re * np.eye(2), -im * np.eye(2)],
            [np.zeros((2, 2)), im * np.eye(2), re * np.eye(2)],
        ]
    )
    np.testing.assert_allclose(gj.spectral_radius(game, tx, optimum), max(abs(np.linalg.eigvals(M))), rtol=1e-10)


def test_svre_without_noise_or_restarts_is_extragradient(problem):
    """Full batch for every minibatch: d(ω) = μ + v(ω) − v(ω_S) = v(ω), i.e. extragradient."""
    eta = 0.05
    tx = gj.svre(eta, full_batch=None, dataset_size=4, snapshot_cost=1.0, restart_probability=0.0)
    got, state = iterates(problem, tx)
    expected, _ = iterates(problem, gj.extragradient(optax.sgd(eta)))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert int(state.epoch) >= 2  # several epochs (snapshots) were taken


def test_svre_estimator_is_unbiased_over_all_minibatches():
    """Sum-reduced SB-G, B = 1, s = n: the mean of d(ω) over every index is the full-batch field."""
    n = 6
    game, init, _ = gj.games.sbg(jax.random.key(31), dim=n)
    snapshot = jax.tree.map(lambda a: a + 0.3, init)
    point = jax.tree.map(lambda a: a - 0.2, init)
    mu = game.field(snapshot, None)
    estimates = [
        jax.tree.map(
            lambda m, a, b: m + n * (a - b), mu, game.field(point, jnp.array([i])), game.field(snapshot, jnp.array([i]))
        )
        for i in range(n)
    ]
    mean = jax.tree.map(lambda *e: sum(e) / n, *estimates)
    chex.assert_trees_all_close(mean, game.field(point, None), rtol=1e-12)
    # ...and gamejax's step uses exactly that estimator at the snapshot: one step from ω_S is an
    # extragradient step with d = μ + n (v_i(ω') − v_i(ω_S)).
    tx = gj.svre(
        0.01, full_batch=None, dataset_size=n, snapshot_cost=float(n), minibatch_scale=float(n), restart_probability=0.0
    )
    index = jnp.array([2])
    updates, state = tx.update(game, init, tx.init(init), index)
    d0 = game.field(init, None)  # at the snapshot the correction vanishes
    half = jax.tree.map(lambda p, g: p - 0.01 * g, init, d0)
    d1 = jax.tree.map(lambda m, a, b: m + n * (a - b), d0, game.field(half, index), game.field(init, index))
    chex.assert_trees_all_close(
        gj.apply_updates(init, updates), jax.tree.map(lambda p, g: p - 0.01 * g, init, d1), rtol=1e-12
    )
    assert float(state.evaluations.value) == n + 4


def test_svre_restarts_from_the_running_average():
    """With p = 1 every new epoch after the first restarts at the average of the iterates since the last restart."""
    game, init, _ = gj.games.bilinear()
    tx = gj.svre(
        0.2, full_batch=None, dataset_size=3, snapshot_cost=1.0, restart_probability=1.0, key=jax.random.key(5)
    )
    params, state = init, tx.init(init)
    history = []
    for _ in range(30):
        before = state
        updates, state = tx.update(game, params, state)
        new_params = gj.apply_updates(params, updates)
        if int(before.remaining) <= 0 and int(before.epoch) > 0:  # an epoch started with a restart
            restarted_from = before.average
            d = game.field(restarted_from)
            half = jax.tree.map(lambda p, g: p - 0.2 * g, restarted_from, d)
            expected = jax.tree.map(lambda p, g: p - 0.2 * g, restarted_from, game.field(half))
            chex.assert_trees_all_close(new_params, expected, rtol=1e-12)
            history.append(int(before.epoch))
        params = new_params
    assert len(history) >= 3
    assert float(state.evaluations.value) == 4 * 30 + int(state.epoch) * 1.0


def test_svre_converges_on_stochastic_sbg_with_single_samples():
    """Lookahead paper §4.2.2: with B = 1, SVRE converges (the variance-reduced field)."""
    game, init, optimum = gj.games.sbg(jax.random.key(0))
    tx = gj.svre(
        0.003, full_batch=None, dataset_size=100, snapshot_cost=100.0, minibatch_scale=100.0, restart_probability=0.1
    )
    sample = gj.per_evaluation(gj.games.sbg_sampler(1), 2)
    result = gj.fit(
        game, tx, init, steps=12_500, sample=sample, key=jax.random.key(1), equilibrium=optimum, log_every=2500
    )
    distance = np.asarray(result.metrics["distance"])
    assert distance[-1] < 0.05 * distance[0]
    assert float(result.metrics["passes"][-1]) > 4 * 12_500  # snapshots are counted too
