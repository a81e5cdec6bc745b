"""The Flax NNX adapter: split/merge round trips, and model state threaded once per step."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from methods import METHODS
from problems import run_steps

import gamejax as gj
from gamejax.flax import MLP

NOISE, BATCH = 3, 16


class Generator(nnx.Module):
    """BatchNorm straight on the noise: its running mean depends on the noise only."""

    def __init__(self, rngs: nnx.Rngs):
        self.norm = nnx.BatchNorm(NOISE, momentum=0.9, rngs=rngs)
        self.net = MLP((NOISE, 8, 2), rngs=rngs)

    def __call__(self, z):
        return self.net(self.norm(z))


def discriminator_loss(g, d, batch):
    real, noise = batch
    return jnp.mean(jax.nn.softplus(-d(real))) + jnp.mean(jax.nn.softplus(d(g(noise))))


def generator_loss(g, d, batch):
    return jnp.mean(jax.nn.softplus(-d(g(batch[1]))))


def networks(spectral_norm=True):
    g = Generator(nnx.Rngs(0))
    d = MLP((2, 8, 8, 1), rngs=nnx.Rngs(1), batch_norm=True, spectral_norm=spectral_norm)
    return g, d


def a_batch(seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    real = jax.random.normal(k1, (BATCH, 2), jnp.float32) + 1.0
    return real, jax.random.normal(k2, (BATCH, NOISE), jnp.float32) * 2.0 + 0.5


def model_state_after_one_forward(g, d, batch):
    """An independent reference: the modules' own state after evaluating each loss once, eagerly."""
    generator_loss(g, d, batch)
    discriminator_loss(g, d, batch)
    return gj.Players(nnx.state(g, nnx.Not(nnx.Param)), nnx.state(d, nnx.Not(nnx.Param)))


def test_split_merge_round_trips_exactly():
    g, d = networks()
    pair = gj.flax.split(g, d)
    assert pair.stateful
    g2, d2 = pair.merge()
    chex.assert_trees_all_equal(nnx.state(g2), nnx.state(g))
    chex.assert_trees_all_equal(nnx.state(d2), nnx.state(d))
    g2(a_batch()[1])  # merged modules are independent copies: calling one leaves the pair intact
    chex.assert_trees_all_equal(pair.merge()[0].norm.mean.get_value(), g.norm.mean.get_value())
    assert set(jax.tree.leaves(jax.tree.map(lambda v: type(v).__name__, pair.params, is_leaf=_is_var))) == {"Param"}


def test_merge_in_evaluation_mode_uses_the_running_statistics():
    g, d = networks(spectral_norm=False)
    pair = gj.flax.split(g, d)
    z = a_batch()[1]
    generator, _ = pair.merge(train=False)
    # Evaluation mode: (z − running mean) / sqrt(running var + eps), one sample at a time or in a batch alike.
    norm = pair.merge()[0].norm
    mean, var, scale, bias = (np.asarray(v.get_value())[None] for v in (norm.mean, norm.var, norm.scale, norm.bias))
    expected = (np.asarray(z) - mean) / np.sqrt(var + norm.epsilon) * scale + bias
    np.testing.assert_allclose(generator.norm(z), expected, rtol=1e-5)
    np.testing.assert_allclose(generator(z[:1]), generator(z)[:1], rtol=1e-5)
    chex.assert_trees_all_equal(generator.norm.mean.get_value(), norm.mean.get_value())  # not updated
    training, _ = pair.merge(train=True)
    assert not np.allclose(training(z[:2])[:1], training(z)[:1])  # batch statistics: depends on the batch
    with pytest.raises(ValueError, match="^train must be True or False"):
        pair.merge(train="eval")


def _is_var(x):
    return isinstance(x, nnx.Variable)


def test_stateless_modules_give_an_ordinary_game():
    pair = gj.flax.split(MLP((NOISE, 4, 2), rngs=nnx.Rngs(0)), MLP((2, 4, 1), rngs=nnx.Rngs(1)))
    assert not pair.stateful
    game = pair.general_sum(generator_loss, discriminator_loss)
    assert isinstance(game, gj.Game)
    batch = a_batch()
    field = game.field(pair.params, batch)
    g, d = pair.merge()
    grads = nnx.grad(lambda g, d: generator_loss(g, d, batch))(g, d)
    chex.assert_trees_all_close(field.x, nnx.state(grads, nnx.Param))


def test_zero_sum_module_game_matches_nnx_grad():
    pair = gj.flax.split(*networks())
    game = pair.zero_sum(discriminator_loss).bind(pair.model_state)
    batch = a_batch()
    field = game.field(pair.params, batch)
    g, d = pair.merge()
    g_grad = nnx.grad(lambda g, d: discriminator_loss(g, d, batch))(g, d)
    g, d = pair.merge()
    d_grad = nnx.grad(lambda d, g: discriminator_loss(g, d, batch))(d, g)
    chex.assert_trees_all_close(field.x, nnx.state(g_grad, nnx.Param), rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(field.y, jax.tree.map(jnp.negative, nnx.state(d_grad, nnx.Param)), rtol=1e-5, atol=1e-6)


# One method per family: the threading lives in make_step, each family evaluates the game differently.
FAMILIES = [
    "gda-adam",
    "alternating",
    "extragradient",
    "optimistic-adam",
    "lookahead-extra-adam-per-player-alpha",
    "nested-lookahead",
    "alternating-lookahead",
    "ema-slow",
    "lead-adam-alternating",
    "cgd",
    "acgd",
    "consensus-extragradient",
    "sga-aligned-optimistic",
    "unroll-xy-adam-unrolling",
    "complex-momentum",
    # Of the methods of issue 15, those whose derivatives take their own path (the anchored methods,
    # past_extragradient and hamiltonian evaluate the field as extragradient and consensus do):
    "follow-the-ridge-per-player",
    "sos-per-player",  # lola's code path too (p = 1)
]


@pytest.mark.parametrize("name", FAMILIES)
def test_every_method_advances_model_state_once_per_step(name):
    """Stale statistics (never updated) or doubly-updated ones (per evaluation) both fail here."""
    pair = gj.flax.split(*networks())
    game = pair.general_sum(generator_loss, discriminator_loss)
    tx = METHODS[name].build(0.01)
    step = jax.jit(gj.make_step(game, tx))
    params, state = pair.params, gj.init_state(game, tx, pair.params, pair.model_state)
    for seed in range(2):
        batch = a_batch(seed)
        expected = model_state_after_one_forward(*pair.merge(params, state.model_state), batch)
        params, state, _ = step(params, state, batch)
        chex.assert_trees_all_close(state.model_state, expected, rtol=2e-5, atol=1e-6)
        chex.assert_tree_all_finite(params)


def test_running_mean_follows_the_closed_form_over_a_fit():
    """BatchNorm on the noise: after n steps its running mean is (1 - m^(2n)) · mean(noise).

    The generator runs twice per model-state update (once in each player's loss), never
    in the extra evaluations of extragradient or the lookahead wrapper.
    """
    pair = gj.flax.split(*networks(spectral_norm=False))
    game = pair.general_sum(generator_loss, discriminator_loss)
    batch = a_batch()
    batches = jax.tree.map(lambda a: jnp.stack([a] * 4), batch)
    tx = gj.lookahead(2, 0.5)(gj.extragradient(optax.adam(1e-3)))
    n = 7
    result = gj.fit(game, tx, pair.params, steps=n, batches=batches, model_state=pair.model_state)
    assert isinstance(result.state, gj.WithModelState)
    mean = result.state.model_state.x["norm"]["mean"].get_value()
    expected = (1 - 0.9 ** (2 * n)) * np.mean(np.asarray(batch[1]), axis=0)
    np.testing.assert_allclose(mean, expected, rtol=1e-5)


def test_stateful_fit_runs_under_vmap_and_matches_the_step_loop():
    pair = gj.flax.split(*networks())
    game = pair.general_sum(generator_loss, discriminator_loss)
    tx = gj.extragradient(optax.sgd(0.05))  # (Adam would amplify float32 rounding of near-zero gradients)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *[a_batch(s) for s in range(3)])

    def run(params, model_state):
        return gj.fit(game, tx, params, steps=5, batches=stacked, model_state=model_state, log_every=5)

    result = run(pair.params, pair.model_state)
    params, state, _ = run_steps(
        game,
        tx,
        pair.params,
        batches=[jax.tree.map(lambda a, t=t: a[t % 3], stacked) for t in range(5)],
        state=gj.init_state(game, tx, pair.params, pair.model_state),
    )
    chex.assert_trees_all_close((result.params, result.state), (params, state), rtol=1e-5, atol=1e-7)

    twice = jax.tree.map(lambda a: jnp.stack([a, a]), (pair.params, pair.model_state))
    vmapped = jax.vmap(run)(*twice)
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[1], vmapped.params), result.params, rtol=1e-5, atol=1e-7)


def test_stateful_game_needs_its_model_state():
    pair = gj.flax.split(*networks())
    game = pair.general_sum(generator_loss, discriminator_loss)
    tx = gj.gda(optax.sgd(0.1))
    with pytest.raises(ValueError, match="model_state"):
        gj.init_state(game, tx, pair.params)
    with pytest.raises(TypeError, match="WithModelState"):
        gj.make_step(game, tx)(pair.params, tx.init(pair.params), a_batch())
    with pytest.raises(ValueError, match="not a StatefulGame"):
        gj.init_state(gj.zero_sum(lambda x, y: x * y), tx, gj.Players(1.0, 1.0), pair.model_state)
