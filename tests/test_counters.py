"""Step counters in states never wrap: bounded phases or saturating int32 counts.

A small game trains at millions of steps per second, so an int32 ``count + 1`` wraps to
negative values within minutes and ``count % k`` then goes wrong. Lookahead keeps the phase
of its k-cycle (in ``[0, k)``) instead of a total; the other counters saturate at the int32
maximum (``optax.safe_increment``). Each test starts a method from a state whose counters are
a few steps below 2^31 and checks that it behaves as it does far from the boundary.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gamejax as gj

MAX = 2**31 - 1  # int32 maximum
NEAR = MAX - 2  # three increments from the maximum: the fourth would wrap
STEPS = 8


@pytest.fixture(scope="module")
def bilinear():
    game, init, _ = gj.games.bilinear()
    return game, init


def i32(value) -> jax.Array:
    return jnp.asarray(value, jnp.int32)


def run(game, tx, params, state, steps=STEPS):
    """The params (as ``[x, y]`` rows) and the states after each of ``steps`` compiled steps."""
    step = jax.jit(gj.make_step(game, tx))
    trajectory, states = [], []
    for _ in range(steps):
        params, state, _ = step(params, state)
        trajectory.append([float(params.x), float(params.y)])
        states.append(state)
    return np.array(trajectory), states


def ints(tree) -> list[int]:
    """The signed integer entries of a state (counters; SVRE's unsigned key data is left out)."""
    leaves = [np.ravel(leaf) for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.signedinteger)]
    return [int(value) for leaf in leaves for value in leaf]


def assert_no_negative_counter(states):
    for state in states:
        assert all(value >= 0 for value in ints(state)), state


# --------------------------------------------------------------------------------------------
# Lookahead: the phase of the k-cycle, in [0, k)
# --------------------------------------------------------------------------------------------


def lookahead_reference(init, *, k, alpha, eta, steps, phase=0):
    """Alg. 1 of the lookahead paper as its two loops, GDA inner steps on ``x·y`` (v = (y, −x)).

    ``phase`` fast steps of the first cycle are taken as already done, from slow = init.
    """
    x, y = float(init.x), float(init.y)
    slow, out = (x, y), []
    i = phase
    for _ in range(steps):
        if i == 0:
            slow = (x, y)
        x, y = x - eta * y, y + eta * x
        i += 1
        if i == k:
            x, y = slow[0] + alpha * (x - slow[0]), slow[1] + alpha * (y - slow[1])
            i = 0
        out.append([x, y])
    return np.array(out)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_lookahead_counter_stays_in_0_k_after_3k_plus_1_steps(bilinear, k):
    game, init = bilinear
    tx = gj.lookahead(k, 0.5)(gj.gda(optax.sgd(0.1)))
    trajectory, states = run(game, tx, init, tx.init(init), steps=3 * k + 1)
    phases = [int(s.steps_since_sync) for s in states]
    assert phases == [(t + 1) % k for t in range(3 * k + 1)]
    assert all(0 <= p < k for p in phases)
    assert states[-1].steps_since_sync.dtype == jnp.int32
    expected = lookahead_reference(init, k=k, alpha=0.5, eta=0.1, steps=3 * k + 1)
    np.testing.assert_allclose(trajectory, expected, rtol=1e-13, atol=1e-15)


def test_lookahead_counter_stays_bounded_over_many_steps(bilinear):
    """10^4 steps in one compiled loop: the stored phase is the step count mod k, never more."""
    game, init = bilinear
    k, steps = 7, 10_000
    tx = gj.lookahead(k, 0.5)(gj.gda(optax.sgd(0.01)))
    step = gj.make_step(game, tx)

    @jax.jit
    def many(params, state):
        def body(carry, _):
            params, state, _ = step(*carry)
            return (params, state), state.steps_since_sync

        return jax.lax.scan(body, (params, state), None, length=steps)

    (_, state), phases = many(init, tx.init(init))
    phases = np.asarray(phases)
    assert phases.min() >= 0 and phases.max() == k - 1
    np.testing.assert_array_equal(phases, (np.arange(1, steps + 1)) % k)
    assert int(state.steps_since_sync) == steps % k


@pytest.mark.parametrize("k", [2, 3, 5])
def test_lookahead_from_a_stored_count_near_the_int32_maximum(bilinear, k):
    """A phase stored past k (an old total count) is read mod k: same syncs as a fresh state."""
    game, init = bilinear
    tx = gj.lookahead(k, 0.5)(gj.gda(optax.sgd(0.1)))
    near = tx.init(init)._replace(steps_since_sync=i32(NEAR))
    same_phase = tx.init(init)._replace(steps_since_sync=i32(NEAR % k))
    got, states = run(game, tx, init, near)
    far, _ = run(game, tx, init, same_phase)
    np.testing.assert_array_equal(got, far)
    expected = lookahead_reference(init, k=k, alpha=0.5, eta=0.1, steps=STEPS, phase=NEAR % k)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    assert_no_negative_counter(states)
    assert [int(s.steps_since_sync) for s in states] == [(NEAR % k + t + 1) % k for t in range(STEPS)]


# --------------------------------------------------------------------------------------------
# Alternating lookahead: one phase per player, in [0, k_p)
# --------------------------------------------------------------------------------------------


def alternating_lookahead_reference(init, *, k, alpha, eta, steps, schedule=("y", "y", "x"), phase=(0, 0)):
    """Alg. 7 as per-player loops: each player backtracks after every k_p of its own steps."""
    p = {"x": float(init.x), "y": float(init.y)}
    slow, n, out = dict(p), {"x": phase[0], "y": phase[1]}, []
    ks = {"x": k[0], "y": k[1]}
    for _ in range(steps):
        for player in schedule:
            if n[player] == 0:
                slow[player] = p[player]
            grad = p["y"] if player == "x" else -p["x"]  # v = (∂x xy, −∂y xy)
            p[player] -= eta * grad
            n[player] += 1
            if n[player] == ks[player]:
                p[player] = slow[player] + alpha * (p[player] - slow[player])
                n[player] = 0
        out.append([p["x"], p["y"]])
    return np.array(out)


def test_alternating_lookahead_counters_stay_in_0_k_and_match_alg7(bilinear):
    game, init = bilinear
    k = (2, 3)
    tx = gj.alternating_lookahead(optax.sgd(0.1), k=gj.Players(*k), alpha=0.5, y_steps=2)
    steps = 3 * 3 + 1
    got, states = run(game, tx, init, tx.init(init), steps=steps)
    for t, state in enumerate(states, start=1):
        x, y = (int(v) for v in state.steps_since_sync)
        assert (x, y) == ((t * 1) % k[0], (t * 2) % k[1])  # one x step, two y steps per step
    expected = alternating_lookahead_reference(init, k=k, alpha=0.5, eta=0.1, steps=steps)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


def test_alternating_lookahead_from_stored_counts_near_the_int32_maximum(bilinear):
    game, init = bilinear
    k = (2, 3)
    tx = gj.alternating_lookahead(optax.sgd(0.1), k=gj.Players(*k), alpha=0.5, y_steps=2)
    near = tx.init(init)._replace(steps_since_sync=gj.Players(i32(NEAR), i32(NEAR)))
    phase = (NEAR % k[0], NEAR % k[1])
    same_phase = tx.init(init)._replace(steps_since_sync=gj.Players(i32(phase[0]), i32(phase[1])))
    got, states = run(game, tx, init, near)
    far, _ = run(game, tx, init, same_phase)
    np.testing.assert_array_equal(got, far)
    expected = alternating_lookahead_reference(init, k=k, alpha=0.5, eta=0.1, steps=STEPS, phase=phase)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    assert_no_negative_counter(states)
    for state in states:
        assert all(0 <= int(n) < k_p for n, k_p in zip(state.steps_since_sync, k, strict=True))


# --------------------------------------------------------------------------------------------
# Saturating counts: optimistic, CGD/ACGD, averaging, SVRE, skip_nonfinite
# --------------------------------------------------------------------------------------------


def test_optimistic_count_saturates_and_keeps_extrapolating(bilinear):
    game, init = bilinear
    tx = gj.optimistic(optax.sgd(0.1))
    step = jax.jit(gj.make_step(game, tx))
    params, state, _ = step(init, tx.init(init))  # past the first step: `previous` is set
    far, _ = run(game, tx, params, state)
    got, states = run(game, tx, params, state._replace(count=i32(NEAR)))
    np.testing.assert_array_equal(got, far)
    assert_no_negative_counter(states)
    assert [int(s.count) for s in states] == [min(NEAR + t + 1, MAX) for t in range(STEPS)]


@pytest.mark.parametrize("method", ["cgd", "acgd"])
def test_competitive_count_saturates_with_schedules_and_bias_correction(bilinear, method):
    game, init = bilinear
    schedule = optax.linear_schedule(0.2, 0.1, transition_steps=100)  # constant from step 100 on
    tx = gj.cgd(schedule) if method == "cgd" else gj.acgd(schedule, beta2=0.9)
    step = jax.jit(gj.make_step(game, tx))
    params, state, _ = step(init, tx.init(init))
    far, _ = run(game, tx, params, state._replace(count=i32(1000)))  # 0.9**1000 underflows too
    got, states = run(game, tx, params, state._replace(count=i32(NEAR)))
    np.testing.assert_allclose(got, far, rtol=1e-12, atol=1e-14)
    assert_no_negative_counter(states)
    assert [int(s.count) for s in states] == [min(NEAR + t + 1, MAX) for t in range(STEPS)]


def test_ema_counters_saturate_and_keep_every_th_step(bilinear):
    """Near the maximum the EMA averages on the same steps, with the same weights, as far from it."""
    game, init = bilinear
    tx = gj.ema(0.7, every=3)(gj.gda(optax.sgd(0.1)))
    fresh = tx.init(init)
    far = fresh._replace(count=i32(100), n_averaged=i32(30), phase=i32(1))
    near = fresh._replace(count=i32(NEAR), n_averaged=i32(NEAR), phase=i32(1))
    _, far_states = run(game, tx, init, far)
    _, near_states = run(game, tx, init, near)
    for a, b in zip(far_states, near_states, strict=True):
        chex.assert_trees_all_equal(a.average, b.average)
        assert int(a.phase) == int(b.phase) < 3
    assert_no_negative_counter(near_states)
    assert [int(s.count) for s in near_states] == [min(NEAR + t + 1, MAX) for t in range(STEPS)]
    # Averaged after steps 2, 5, 8 (phase 1 → 2 → 0): n_averaged goes NEAR+1, NEAR+2, then stays.
    assert [int(s.n_averaged) for s in near_states] == [NEAR, NEAR + 1, NEAR + 1, NEAR + 1, MAX, MAX, MAX, MAX]


def test_moving_average_counters_saturate_and_weights_stay_one_over_n(bilinear):
    game, init = bilinear
    tx = gj.moving_average(start=5, every=3)(gj.gda(optax.sgd(0.1)))
    near = tx.init(init)._replace(count=i32(NEAR), n_averaged=i32(NEAR), phase=i32(1))
    trajectory, states = run(game, tx, init, near)
    assert_no_negative_counter(states)
    assert [int(s.phase) for s in states] == [2, 0, 1, 2, 0, 1, 2, 0]
    # A NumPy recursion with n saturating at the maximum: average += (ω − average) / n.
    average, n = np.array([float(init.x), float(init.y)]), NEAR
    for t, state in enumerate(states):
        if t % 3 == 1:
            n = min(n + 1, MAX)
            average = average + (trajectory[t] - average) / n
        assert int(state.n_averaged) == n
        np.testing.assert_allclose([float(state.average.x), float(state.average.y)], average, rtol=1e-15)
    assert n == MAX and not np.array_equal(average, [float(init.x), float(init.y)])


def test_svre_counters_saturate(bilinear):
    game, init = bilinear
    tx = gj.svre(0.1, full_batch=None, dataset_size=2, snapshot_cost=1.0, restart_probability=0.0)
    step = jax.jit(gj.make_step(game, tx))
    params, state, _ = step(init, tx.init(init))  # epoch 1 started
    far, _ = run(game, tx, params, state._replace(epoch=i32(3), averaged=i32(10)))
    got, states = run(game, tx, params, state._replace(epoch=i32(NEAR), averaged=i32(NEAR)))
    np.testing.assert_array_equal(got, far)  # no restarts: the average does not steer the iterates
    assert_no_negative_counter(states)
    assert [int(s.averaged) for s in states] == [min(NEAR + t + 1, MAX) for t in range(STEPS)]
    assert int(states[-1].epoch) == MAX  # an epoch is ~2 steps long here
    chex.assert_tree_all_finite(states[-1].average)


def test_skip_nonfinite_counters_saturate_after_giving_up(bilinear):
    game, init = bilinear
    tx = gj.skip_nonfinite(3)(gj.gda(optax.sgd(0.1)))
    gave_up = tx.init(init)._replace(consecutive=i32(NEAR), skipped=i32(NEAR), gave_up=jnp.asarray(True))
    got, states = run(game, tx, init, gave_up)
    np.testing.assert_array_equal(got, np.tile([float(init.x), float(init.y)], (STEPS, 1)))  # frozen
    assert_no_negative_counter(states)
    assert [int(s.consecutive) for s in states] == [min(NEAR + t + 1, MAX) for t in range(STEPS)]
    assert [int(s.skipped) for s in states] == [min(NEAR + t + 1, MAX) for t in range(STEPS)]
    # Without giving up, a finite step resets `consecutive` and leaves `skipped` alone.
    _, states = run(game, tx, init, gave_up._replace(gave_up=jnp.asarray(False)), steps=1)
    assert (int(states[0].consecutive), int(states[0].skipped)) == (0, NEAR)


def test_pass_count_keeps_counting_past_float32_integer_range():
    """A plain float32 total stops adding 3s correctly past 2**25; the compensated count does not."""
    start = gj.PassCount(jnp.float32(2**25), jnp.float32(0))
    counted = jax.jit(lambda c: jax.lax.fori_loop(0, 4000, lambda i, c: c.add(3.0), c))(start)
    assert float(counted.value) - 2**25 == 12000.0
    plain = jax.jit(lambda t: jax.lax.fori_loop(0, 4000, lambda i, t: t + jnp.float32(3.0), t))(jnp.float32(2**25))
    assert float(plain) - 2**25 != 12000.0  # what the compensation is for


def test_fit_refuses_a_run_past_the_int32_step_counter():
    game, init, _ = gj.games.bilinear()
    with pytest.raises(ValueError, match="initial_step \\+ steps must be at most 2147483647"):
        gj.fit(game, gj.gda(optax.sgd(0.1)), init, steps=10, initial_step=2**31 - 5)
