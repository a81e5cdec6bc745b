"""Property-based tests over random small games and random hyperparameters (hypothesis)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from hypothesis import given
from hypothesis import strategies as st
from problems import dense_quadratic

import gamejax as gj

seeds = st.integers(0, 2**16)
learning_rates = st.floats(0.01, 0.3)
alphas = st.floats(0.05, 1.0)
ks = st.integers(1, 5)
INNER = {
    "gda": lambda lr: gj.gda(optax.sgd(lr)),
    "extragradient-adam": lambda lr: gj.extragradient(optax.adam(lr)),
    "optimistic": lambda lr: gj.optimistic(optax.sgd(lr, momentum=0.5)),
    "alternating": lambda lr: gj.alternating(optax.sgd(lr), y_steps=2),
}
inner_names = st.sampled_from(sorted(INNER))


def trajectory(game, tx, params, steps):
    """Params after each step (eager, no compilation: hypothesis runs many small cases)."""
    state = tx.init(params)
    out = []
    for _ in range(steps):
        updates, state = tx.update(game, params, state)
        params = gj.apply_updates(params, updates)
        out.append(params)
    return out


@given(seed=seeds, lr=learning_rates, k=ks, name=inner_names)
def test_lookahead_with_alpha_one_is_its_inner_method(seed, lr, k, name):
    problem = dense_quadratic(jax.random.key(seed), zero_sum=seed % 2 == 0)
    inner = INNER[name](lr)
    got = trajectory(problem.game, gj.lookahead(k, 1.0)(inner), problem.init, 6)
    chex.assert_trees_all_close(got, trajectory(problem.game, inner, problem.init, 6), rtol=1e-12, atol=1e-12)


@given(seed=seeds, lr=learning_rates, alpha=alphas)
def test_lookahead_with_k_one_over_gda_is_gda_with_step_alpha_eta(seed, lr, alpha):
    """k = 1: ω ← ω + α(ω − ηv − ω), i.e. GDA with step size αη."""
    problem = dense_quadratic(jax.random.key(seed))
    got = trajectory(problem.game, gj.lookahead(1, alpha)(gj.gda(optax.sgd(lr))), problem.init, 5)
    expected = trajectory(problem.game, gj.gda(optax.sgd(alpha * lr)), problem.init, 5)
    chex.assert_trees_all_close(got, expected, rtol=1e-12, atol=1e-12)


@given(seed=seeds, lr=learning_rates, name=inner_names)
def test_ema_with_decay_zero_is_the_current_params(seed, lr, name):
    problem = dense_quadratic(jax.random.key(seed))
    tx = gj.ema(0.0)(INNER[name](lr))
    params, state = problem.init, tx.init(problem.init)
    for _ in range(3):
        updates, state = tx.update(problem.game, params, state)
        params = gj.apply_updates(params, updates)
        chex.assert_trees_all_close(gj.averaged(state), params, rtol=0, atol=0)


@given(seed=seeds, lr=learning_rates, r=st.integers(1, 4), first=st.sampled_from(["x", "y"]))
def test_alternating_with_a_frozen_player_is_single_objective_optax(seed, lr, r, first):
    """x frozen (optax.set_to_zero): y runs plain Optax Adam on loss_y(x0, ·), r steps per step."""
    problem = dense_quadratic(jax.random.key(seed))
    tx = gj.alternating(gj.Players(optax.set_to_zero(), optax.adam(lr)), y_steps=r, first=first)
    got = trajectory(problem.game, tx, problem.init, 3)[-1]

    adam = optax.adam(lr)
    y, opt_state = problem.init.y, adam.init(problem.init.y)
    loss_y = lambda y: problem.game.losses(gj.Players(problem.init.x, y)).y  # noqa: E731
    for _ in range(3 * r):
        updates, opt_state = adam.update(jax.grad(loss_y)(y), opt_state, y)
        y = optax.apply_updates(y, updates)
    chex.assert_trees_all_equal(got.x, problem.init.x)
    chex.assert_trees_all_close(got.y, y, rtol=1e-12, atol=1e-12)


@given(seed=seeds, lr=learning_rates, name=st.sampled_from(["gda", "extragradient", "optimistic"]))
def test_a_pair_of_identical_base_optimizers_equals_passing_one(seed, lr, name):
    method = {"gda": gj.gda, "extragradient": gj.extragradient, "optimistic": gj.optimistic}[name]
    problem = dense_quadratic(jax.random.key(seed))
    adam = optax.adam(lr, b1=0.5)
    one = trajectory(problem.game, method(adam), problem.init, 4)
    pair = trajectory(problem.game, method(gj.Players(adam, optax.adam(lr, b1=0.5))), problem.init, 4)
    chex.assert_trees_all_close(one, pair, rtol=0, atol=0)


shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
dtypes = st.sampled_from([jnp.float32, jnp.float64])
leaves = st.tuples(shapes, dtypes)
player_trees = st.dictionaries(st.sampled_from(["w", "b", "u", "v"]), leaves, min_size=1, max_size=3)


@given(tree_x=player_trees, tree_y=st.lists(leaves, min_size=1, max_size=3), seed=seeds, name=inner_names)
def test_updates_keep_any_tree_structure_and_dtypes(tree_x, tree_y, seed, name):
    key = jax.random.key(seed)
    x = {n: jax.random.normal(jax.random.fold_in(key, i), s, d) for i, (n, (s, d)) in enumerate(tree_x.items())}
    y = [jax.random.normal(jax.random.fold_in(key, 100 + i), s, d) for i, (s, d) in enumerate(tree_y)]

    def f(x, y):
        sx = sum(jnp.sum(jnp.sin(a)) for a in jax.tree.leaves(x))
        sy = sum(jnp.sum(a**2) for a in jax.tree.leaves(y))
        return sx * sy + 0.5 * sx**2

    params = gj.Players(x, y)
    tx = gj.ema(0.9)(gj.lookahead(2, 0.5)(INNER[name](0.1)))
    state = tx.init(params)
    for _ in range(2):
        updates, state = tx.update(gj.zero_sum(f), params, state)
        chex.assert_trees_all_equal_structs(updates, params)
        params = gj.apply_updates(params, updates)
    chex.assert_trees_all_equal_shapes_and_dtypes(params, gj.Players(x, y))
    chex.assert_trees_all_equal_shapes_and_dtypes(gj.averaged(state), gj.Players(x, y))
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(params))
