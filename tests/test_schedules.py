"""gj.per_step: Optax schedules indexed by training step under methods with several base updates a step."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gamejax as gj

A = np.array([[1.0, 0.5], [-0.3, 2.0]])
GAME = gj.zero_sum(lambda x, y: x @ A @ y + 0.1 * (x @ x) - 0.05 * (y @ y))
INIT = gj.Players(jnp.array([1.0, -0.5]), jnp.array([0.3, 0.8]))
SCHEDULE = optax.linear_schedule(0.2, 0.0, transition_steps=6)  # reaches 0 at count 6
STEPS = 8


def field(x, y):
    """The game's field (∇x f, −∇y f), written out by hand."""
    return A @ y + 0.2 * x, -(A.T @ x - 0.1 * y)


def run(tx):
    step = gj.make_step(GAME, tx)
    params, state = INIT, tx.init(INIT)
    for _ in range(STEPS):
        params, state, _ = step(params, state)
    return params


def extragradient_by_hand(rate):
    """Korpelevich's extragradient with the learning rate of step t given by rate(t, half)."""
    x, y = (np.asarray(p) for p in INIT)
    for t in range(STEPS):
        gx, gy = field(x, y)
        xh, yh = x - rate(t, 0) * gx, y - rate(t, 0) * gy
        gx, gy = field(xh, yh)
        x, y = x - rate(t, 1) * gx, y - rate(t, 1) * gy
    return x, y


def close(params, reference):
    # Optax schedules compute in float32 (the rates differ from float64 ones in the 8th digit),
    # while a wrong index changes a rate by 1/6 of its range: 1e-6 separates them.
    np.testing.assert_allclose(np.asarray(params.x), reference[0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(params.y), reference[1], rtol=1e-6)


def test_extragradient_with_per_step_uses_the_schedule_of_the_training_step():
    params = run(gj.extragradient(optax.sgd(gj.per_step(SCHEDULE, 2))))
    close(params, extragradient_by_hand(lambda t, half: float(SCHEDULE(t))))


def test_without_per_step_extragradient_advances_the_schedule_twice_a_step():
    """The documented pitfall: the schedule sees the base's count, two per step."""
    params = run(gj.extragradient(optax.sgd(SCHEDULE)))
    close(params, extragradient_by_hand(lambda t, half: float(SCHEDULE(2 * t + half))))
    # ... and the schedule has reached 0 by step 3 of 8: the last steps do not move.
    frozen = extragradient_by_hand(lambda t, half: float(SCHEDULE(2 * t + half)) if t < 3 else 0.0)
    close(params, frozen)


def test_extragradient_with_a_frozen_extrapolation_state_needs_no_per_step():
    params = run(gj.extragradient(optax.sgd(SCHEDULE), extrapolation_updates_state=False))
    close(params, extragradient_by_hand(lambda t, half: float(SCHEDULE(t))))


def test_alternating_players_with_their_own_updates_per_step():
    y_steps = 3
    tx = gj.alternating(
        gj.Players(optax.sgd(gj.per_step(SCHEDULE, 1)), optax.sgd(gj.per_step(SCHEDULE, y_steps))), y_steps=y_steps
    )
    params = run(tx)
    x, y = (np.asarray(p) for p in INIT)
    for t in range(STEPS):
        rate = float(SCHEDULE(t))
        for _ in range(y_steps):  # y first (the default), each at the current params
            y = y - rate * field(x, y)[1]
        x = x - rate * field(x, y)[0]
    close(params, (x, y))


def test_per_step_rejects_bad_input():
    with pytest.raises(TypeError, match="schedule must be a callable"):
        gj.per_step(0.1, 2)
    with pytest.raises(ValueError, match="updates_per_step must be an integer >= 1"):
        gj.per_step(SCHEDULE, 0)
    assert gj.per_step(SCHEDULE, 1) is SCHEDULE
