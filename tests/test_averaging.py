"""EMA and uniform moving averages against their recursions on stored iterates."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import dense_quadratic, flat, run_steps

import gamejax as gj

STEPS = 30


@pytest.fixture(scope="module")
def problem():
    return dense_quadratic(jax.random.key(3), zero_sum=True)


def run(problem, tx, steps=STEPS):
    """Flattened iterates ω_0..ω_T and the final state, from a loop of the compiled step."""
    _, state, iterates = run_steps(problem.game, tx, problem.init, steps, observe=flat)
    return np.array([flat(problem.init), *iterates]), state


def test_averaging_does_not_change_the_dynamics(problem):
    inner = gj.lookahead(3, 0.5)(gj.extragradient(optax.sgd(0.1)))
    plain, _ = run(problem, inner)
    for wrapper in (gj.ema([0.9, 0.99]), gj.moving_average(start=4), gj.ema(0.5, every=3)):
        wrapped, _ = run(problem, wrapper(inner))
        np.testing.assert_array_equal(wrapped, plain)


def test_ema_of_a_constant_sequence_is_that_constant(problem):
    tx = gj.ema([0.5, 0.9, 0.999])(gj.gda(optax.set_to_zero()))
    _, state = run(problem, tx)
    for i in range(3):
        chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: a[i], gj.averaged(state)), problem.init, rtol=0)


def test_ema_follows_its_recursion_for_each_decay(problem):
    decays = [0.0, 0.5, 0.9, 0.99]
    iterates, state = run(problem, gj.ema(decays)(gj.gda(optax.sgd(0.1))))
    for i, beta in enumerate(decays):
        expected = iterates[0]
        for theta in iterates[1:]:
            expected = beta * expected + (1 - beta) * theta
        np.testing.assert_allclose(flat(gj.averaged(state, decay=i)), expected, rtol=1e-12)
    np.testing.assert_allclose(flat(jax.tree.map(lambda a: a[0], gj.averaged(state))), iterates[-1], rtol=1e-12)
    for bad in (4, -1, 1.0):
        with pytest.raises(ValueError, match="^decay must be"):
            gj.averaged(state, decay=bad)
    with pytest.raises(ValueError, match="tracks a single one"):
        gj.averaged(gj.ema(0.9)(gj.gda(optax.sgd(0.1))).init(problem.init), decay=0)


@pytest.mark.parametrize("start", [0, 1, 7, STEPS])
def test_moving_average_is_the_mean_of_the_stored_iterates(problem, start):
    iterates, state = run(problem, gj.moving_average(start=start)(gj.gda(optax.sgd(0.1))))
    np.testing.assert_allclose(flat(gj.averaged(state)), iterates[start:].mean(0), rtol=1e-12)


def test_moving_average_before_start_is_the_current_iterate(problem):
    iterates, state = run(problem, gj.moving_average(start=STEPS + 5)(gj.gda(optax.sgd(0.1))))
    np.testing.assert_allclose(flat(gj.averaged(state)), iterates[-1], rtol=1e-12)


def test_ema_slow_averages_only_the_slow_weights(problem):
    """Lookahead paper, Listing 1 / App. F: EMA updated only after each backtrack (every k steps)."""
    k, beta = 4, 0.8
    iterates, state = run(problem, gj.ema(beta, every=k)(gj.lookahead(k, 0.5)(gj.gda(optax.sgd(0.1)))))
    expected = iterates[0]
    for t in range(k, STEPS + 1, k):
        expected = beta * expected + (1 - beta) * iterates[t]
    np.testing.assert_allclose(flat(gj.averaged(state)), expected, rtol=1e-12)


def test_moving_average_every_k_averages_every_kth_iterate(problem):
    iterates, state = run(problem, gj.moving_average(start=3, every=3)(gj.gda(optax.sgd(0.1))))
    np.testing.assert_allclose(flat(gj.averaged(state)), iterates[3::3].mean(0), rtol=1e-12)


def test_averaged_finds_the_outermost_average_anywhere_in_the_stack(problem):
    eta = 0.1
    outer = gj.ema(0.9)(gj.moving_average()(gj.lookahead(3, 0.5)(gj.gda(optax.sgd(eta)))))
    iterates, state = run(problem, outer)
    assert isinstance(state, gj.EmaState)
    chex.assert_trees_all_equal(gj.averaged(state), state.average)
    np.testing.assert_allclose(flat(gj.averaged(state.inner)), iterates.mean(0), rtol=1e-12)

    # Inside a lookahead, an average sees the inner method's output: the fast weights.
    inside = gj.lookahead(3, 0.5)(gj.moving_average()(gj.gda(optax.sgd(eta))))
    iterates, state = run(problem, inside)
    fast = [iterates[t] - eta * problem.field(iterates[t]) for t in range(STEPS)]
    np.testing.assert_allclose(flat(gj.averaged(state)), np.mean([iterates[0], *fast], 0), rtol=1e-12)


def test_traced_decay_under_vmap(problem):
    def final_average(decay):
        tx = gj.ema(decay)(gj.gda(optax.sgd(0.1)))
        step = gj.make_step(problem.game, tx)

        def body(carry, _):
            params, state, _ = step(*carry)
            return (params, state), None

        (_, state), _ = jax.lax.scan(body, (problem.init, tx.init(problem.init)), None, length=10)
        return gj.averaged(state)

    decays = jnp.array([0.3, 0.9])
    batched = jax.vmap(final_average)(decays)
    stacked = gj.averaged(run(problem, gj.ema([0.3, 0.9])(gj.gda(optax.sgd(0.1))), steps=10)[1])
    chex.assert_trees_all_close(batched, stacked, rtol=1e-12)


def test_ema_slow_with_init_first_is_listing_1(problem):
    """Listing 1: the EMA of the slow weights is a copy of the first one, then updated at each backtrack."""
    k, beta = 3, 0.9
    tx = gj.ema(beta, every=k, init="first")(gj.lookahead(k, 0.5)(gj.gda(optax.sgd(0.1))))
    iterates, state = run(problem, tx)
    expected = None
    for t in range(k, STEPS + 1, k):
        expected = iterates[t] if expected is None else beta * expected + (1 - beta) * iterates[t]
    np.testing.assert_allclose(flat(gj.averaged(state)), expected, rtol=1e-12)
    # Before the first backtrack the average still holds the initial params.
    _, early = run(problem, tx, steps=k - 1)
    np.testing.assert_allclose(flat(gj.averaged(early)), flat(problem.init), rtol=1e-12)


def test_ema_init_first_with_several_decays(problem):
    iterates, state = run(problem, gj.ema([0.5, 0.9], init="first")(gj.gda(optax.sgd(0.1))))
    for i, beta in enumerate([0.5, 0.9]):
        expected = iterates[1]
        for theta in iterates[2:]:
            expected = beta * expected + (1 - beta) * theta
        np.testing.assert_allclose(flat(jax.tree.map(lambda a, i=i: a[i], gj.averaged(state))), expected, rtol=1e-12)
