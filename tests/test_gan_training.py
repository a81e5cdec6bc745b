"""A short Flax GAN run with every method family: finite, and the generator moves onto the data."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
import pytest
from flax import nnx

import gamejax as gj
from gamejax.flax import MLP

NOISE, STEPS = 4, 300
TARGET = gj.data.Mixture(jnp.array([[1.5, -1.0]], jnp.float32), 0.1)  # one Gaussian: every method makes progress
ADAM = optax.adam(1e-2, b1=0.5)

METHODS = {
    "gda": gj.gda(ADAM),
    "alternating": gj.alternating(ADAM, y_steps=2),
    "extra-adam": gj.extragradient(ADAM),
    "optimistic-adam": gj.optimistic(ADAM, on="updates"),
    "la-extra-adam-ema": gj.ema(0.99)(gj.lookahead(5, 0.5)(gj.extragradient(ADAM))),
    "lead-adam": gj.lead(ADAM, coupling=0.3),
    "acgd": gj.acgd(1e-2, maxiter=8),
    "cgd": gj.cgd(0.05, maxiter=8),
    "consensus": gj.consensus(1.0)(gj.gda(ADAM)),
    "sga": gj.sga(1.0)(gj.gda(ADAM)),
    "unrolled": gj.unrolled(ADAM, unroll=optax.sgd(0.05), steps=2),
    "moving-average": gj.moving_average(start=100)(gj.gda(ADAM)),
}


def mean_error(samples: jax.Array) -> jax.Array:
    """Distance of the samples' mean to the target's mean."""
    return jnp.linalg.norm(jnp.mean(samples, axis=0) - TARGET.centers[0])


@pytest.fixture(scope="module")
def setup():
    pair = gj.flax.split(
        MLP((NOISE, 16, 2), rngs=nnx.Rngs(0)),
        MLP((2, 16, 1), rngs=nnx.Rngs(1), spectral_norm=True),  # model state: spectral-norm vectors
    )
    noise = jax.random.normal(jax.random.key(7), (512, NOISE), jnp.float32)

    def metrics(params, state):
        generator, _ = pair.merge(params, state.model_state)
        return {"mean_error": mean_error(generator(noise))}

    sample = gj.gan.batch_sampler(TARGET.sample, NOISE, 64)
    return pair, pair.game(gj.gan.non_saturating()), sample, metrics


@pytest.mark.parametrize("name", sorted(METHODS))
def test_short_gan_run_is_finite_and_improves(name, setup):
    pair, game, sample, metrics = setup
    result = gj.fit(
        game,
        METHODS[name],
        pair.params,
        steps=STEPS,
        sample=sample,
        key=jax.random.key(0),
        model_state=pair.model_state,
        metrics=metrics,
        log_every=STEPS,
    )
    assert bool(jnp.all(result.metrics["finite"])), f"{name}: non-finite params"
    start, end = result.metrics["mean_error"]
    assert end < 0.35 * start, f"{name}: error of the samples' mean {float(start):.3f} -> {float(end):.3f}"
