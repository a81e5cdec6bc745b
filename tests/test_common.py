"""The common suite: every method in tests/methods.py passes every check here."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from methods import METHODS
from problems import dense_quadratic, flat, pytree_players, run_steps

import gamejax as gj

NAMES = sorted(METHODS)


@pytest.fixture(scope="module")
def general():
    """A general-sum quadratic game on dict/tuple players (consistency checks)."""
    return dense_quadratic(jax.random.key(0), zero_sum=False)


@pytest.fixture(scope="module")
def monotone():
    """A strongly monotone zero-sum game: every method converges on it."""
    return dense_quadratic(jax.random.key(1), zero_sum=True)


def scan_steps(game, tx, params, n):
    step = gj.make_step(game, tx)

    def body(carry, _):
        params, state, _ = step(*carry)
        return (params, state), None

    return jax.lax.scan(body, (params, tx.init(params)), None, length=n)[0]


def tree_index(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


@pytest.mark.parametrize("name", NAMES)
def test_jit_matches_eager(name, general):
    tx = METHODS[name].build(0.05)
    step = gj.make_step(general.game, tx)
    results = []
    for wrap in (jax.jit, lambda f: f):
        params, state = general.init, tx.init(general.init)
        for _ in range(4):
            params, state, _ = wrap(step)(params, state)
        results.append((params, state))
    chex.assert_trees_all_close(results[0], results[1], rtol=METHODS[name].rtol, atol=METHODS[name].rtol)


@pytest.mark.parametrize("name", NAMES)
def test_vmap_over_seeds_matches_loop(name, general):
    tx = METHODS[name].build(0.05)

    def run(key):
        return scan_steps(general.game, tx, pytree_players(key), 5)

    keys = jax.random.split(jax.random.key(2), 8)
    batched = jax.jit(jax.vmap(run))(keys)
    single = jax.jit(run)
    for i in range(len(keys)):
        chex.assert_trees_all_close(
            tree_index(batched, i), single(keys[i]), rtol=METHODS[name].rtol, atol=METHODS[name].rtol
        )


@pytest.mark.parametrize("name", NAMES)
def test_fit_scan_matches_python_loop(name, general):
    tx = METHODS[name].build(0.05)
    result = gj.fit(general.game, tx, general.init, steps=7, log_every=3)
    params, state, _ = run_steps(general.game, tx, general.init, 7)
    chex.assert_trees_all_close(
        (result.params, result.state), (params, state), rtol=METHODS[name].rtol, atol=METHODS[name].rtol
    )


@pytest.mark.parametrize("name", NAMES)
def test_traced_learning_rate_under_vmap(name, general):
    def run(lr):
        return scan_steps(general.game, METHODS[name].build(lr), general.init, 4)

    lrs = np.array([0.01, 0.03, 0.05])
    batched = jax.jit(jax.vmap(run))(jnp.asarray(lrs))
    traced = jax.jit(run)  # one compiled program for every lane's scalar learning rate
    for i, lr in enumerate(lrs):
        # Each lane equals its own run; the middle one with the learning rate a Python float.
        single = run(float(lr)) if i == 1 else traced(jnp.asarray(lr))
        chex.assert_trees_all_close(tree_index(batched, i), single, rtol=METHODS[name].rtol, atol=METHODS[name].rtol)


@pytest.mark.parametrize("name", NAMES)
def test_no_retrace_on_second_call(name, general):
    tx = METHODS[name].build(0.05)
    chex.clear_trace_counter()
    step = jax.jit(chex.assert_max_traces(gj.make_step(general.game, tx), n=1))
    params, state, _ = step(general.init, tx.init(general.init))
    params, state, _ = step(params, state)  # would raise on a second trace
    chex.assert_tree_all_finite(params)


@pytest.mark.parametrize("name", NAMES)
def test_state_is_stable_and_works_under_cond(name, general):
    tx = METHODS[name].build(0.05)
    state = tx.init(general.init)
    _, new_state = tx.update(general.game, general.init, state)
    chex.assert_trees_all_equal_structs(state, new_state)
    chex.assert_trees_all_equal_shapes_and_dtypes(state, new_state)

    @jax.jit
    def maybe_update(params, state, pred):
        return jax.lax.cond(pred, lambda s: tx.update(general.game, params, s)[1], lambda s: s, state)

    chex.assert_trees_all_close(maybe_update(general.init, state, True), new_state, rtol=METHODS[name].rtol)
    chex.assert_trees_all_equal(maybe_update(general.init, state, False), state)


@pytest.mark.parametrize("name", NAMES)
def test_updates_keep_structure_and_dtypes(name, general):
    params = jax.tree.map(lambda a: a.astype(jnp.float32), general.init)  # float32 under x64
    params = params._replace(y=general.init.y)  # and float64 for the other player
    tx = METHODS[name].build(0.05)
    updates, _ = tx.update(general.game, params, tx.init(params))
    chex.assert_trees_all_equal_structs(updates, params)
    chex.assert_trees_all_equal_shapes(updates, params)
    new_params = gj.apply_updates(params, updates)
    chex.assert_trees_all_equal_shapes_and_dtypes(new_params, params)


@pytest.mark.parametrize("name", NAMES)
def test_counts_its_game_evaluations(name, general):
    tx = METHODS[name].build(0.05)
    method = METHODS[name]
    assert gj.evaluations_per_step(general.game, tx, general.init) == method.evaluations
    if not method.variable_cost:
        expected_passes = method.evaluations if method.passes is None else method.passes
        assert gj.passes_per_step(general.game, tx, general.init) == expected_passes


@pytest.mark.parametrize("name", NAMES)
def test_passes_per_step_is_what_fit_reports(name, general):
    """``passes_per_step`` from a state is exactly the cost ``fit`` adds for the step taken from it."""
    tx = METHODS[name].build(0.05)
    result = gj.fit(general.game, tx, general.init, steps=3, log_every=1)
    passes = np.asarray(result.metrics["passes"])
    first = gj.passes_per_step(general.game, tx, general.init)
    assert first > 0 and passes[1] == pytest.approx(first, rel=1e-6)
    # the third step, taken from the state after two
    two = gj.fit(general.game, tx, general.init, steps=2, log_every=1)
    third = gj.passes_per_step(general.game, tx, two.params, state=two.state)
    assert passes[3] - passes[2] == pytest.approx(third, rel=1e-6)
    if not METHODS[name].variable_cost:
        np.testing.assert_allclose(passes, first * np.arange(4))


@pytest.mark.parametrize("name", NAMES)
def test_converges_on_a_monotone_game(name, monotone):
    method = METHODS[name]
    lr, steps = (0.1, 1000) if method.sgd_based else (0.01, 2000)
    lr = 0.2 if method.anchored else lr
    result = gj.fit(monotone.game, method.build(lr), monotone.init, steps=steps, equilibrium=monotone.equilibrium)
    distance = np.asarray(result.metrics["distance"])
    if method.anchored:  # the anchor's pull, weight ~1/k, leaves a distance of order 1/k
        halfway = distance[np.searchsorted(np.asarray(result.metrics["step"]), steps // 2)]
        assert distance[-1] < 1e-2 * distance[0] and distance[-1] < 0.6 * halfway
    elif method.sgd_based:
        assert distance[-1] < 1e-8 * distance[0]
    else:  # constant-step Adam variants settle in a neighbourhood of the equilibrium
        assert distance[-1] < 1e-2 * distance[0]
    np.testing.assert_allclose(flat(result.params), flat(monotone.equilibrium), atol=1e-2 * distance[0])


@pytest.mark.parametrize("name", NAMES)
def test_flax_nnx_state_players(name):
    generator = nnx.Linear(3, 2, rngs=nnx.Rngs(0))
    discriminator = nnx.Sequential(nnx.Linear(2, 4, rngs=nnx.Rngs(1)), nnx.Linear(4, 1, rngs=nnx.Rngs(2)))
    g_def, g_state = nnx.split(generator)
    d_def, d_state = nnx.split(discriminator)
    z = jax.random.normal(jax.random.key(3), (8, 3))

    def f(g, d):
        fake = nnx.merge(g_def, g)(z)
        critic = nnx.merge(d_def, d)(fake)
        return jnp.mean(critic) + 0.1 * gj_sq(g) - 0.1 * gj_sq(d)

    def gj_sq(tree):
        return sum(jnp.sum(a**2) for a in jax.tree.leaves(tree))

    game = gj.zero_sum(f)
    params = gj.Players(g_state, d_state)
    tx = METHODS[name].build(0.05)
    new_params, state, _ = run_steps(game, tx, params, 3)
    assert isinstance(new_params.x, nnx.State) and isinstance(new_params.y, nnx.State)
    chex.assert_trees_all_equal_shapes_and_dtypes(new_params, params)
    chex.assert_tree_all_finite(new_params)
    assert float(gj_sq(jax.tree.map(jnp.subtract, new_params.x, params.x))) > 0
    nnx.merge(g_def, new_params.x)(z)  # merges back into a working module
