"""Precision: float32 by default, float64 when enabled, bfloat16 params with float32 master
weights and state (gj.mixed_precision), conjugate-gradient recurrences in at least float32."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from methods import METHODS
from problems import run_steps

import gamejax as gj
from gamejax._src import linear_solve

P = gj.Players


def _loss(x, y):
    return jnp.sum(jnp.tanh(x) * y) + 0.3 * jnp.sum(x**2) - 0.3 * jnp.sum(y**2)


GAME = gj.zero_sum(_loss)


def _floating_dtypes(tree) -> set:
    """The dtypes of the floating leaves, except the float32 pass counters (gj.PassCount) of CGD/SVRE."""
    leaves = jax.tree.leaves(tree, is_leaf=lambda node: isinstance(node, gj.PassCount))
    return {
        str(leaf.dtype)
        for leaf in leaves
        if not isinstance(leaf, gj.PassCount) and jnp.issubdtype(leaf.dtype, jnp.floating)
    }


def _step_dtypes(name: str, dtype) -> tuple[set, set]:
    """The floating dtypes of a method's new params and state, traced abstractly (nothing compiled)."""
    tx = METHODS[name].build(0.05)
    params = P(jnp.ones(3, dtype), jnp.full(3, 0.5, dtype))
    params, state, _ = jax.eval_shape(gj.make_step(GAME, tx), params, tx.init(params))
    return _floating_dtypes(params), _floating_dtypes(state)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_float32_by_default_float64_when_enabled(name):
    with jax.enable_x64(False):
        default = jnp.ones(1).dtype
        params, state = _step_dtypes(name, default)
        assert default == jnp.float32 and params == {"float32"} and state <= {"float32"}
    with jax.enable_x64(True):
        params, state = _step_dtypes(name, jnp.float64)
        assert params == {"float64"} and state <= {"float64"}


def test_cg_keeps_its_recurrences_in_float32_for_bfloat16_vectors():
    matrix = jnp.diag(jnp.linspace(1.0, 5.0, 6))

    def matvec(v):
        return jax.tree.map(lambda u: matrix.astype(u.dtype) @ u, v)

    b = jnp.ones(6, jnp.bfloat16)
    for solve in (linear_solve.cg, linear_solve.bicgstab, linear_solve.gmres):
        jaxpr = jax.make_jaxpr(lambda rhs, solve=solve: solve(matvec, rhs, tol=1e-6, maxiter=20))(b)
        loops = [eqn for eqn in jaxpr.eqns if eqn.primitive.name == "while"]
        carried = {str(var.aval.dtype) for eqn in loops for var in eqn.outvars}
        assert "bfloat16" not in carried and "float32" in carried, carried
        x, info = solve(matvec, b, tol=1e-6, maxiter=20)
        assert x.dtype == jnp.bfloat16 and info.residual.dtype == jnp.float32
        np.testing.assert_allclose(np.asarray(x, np.float32), 1 / np.linspace(1, 5, 6), rtol=2**-7)


def test_mixed_precision_is_the_inner_method_when_params_are_already_float32():
    tx = gj.lookahead(3, 0.5)(gj.extragradient(optax.adam(0.05)))
    params = P(jnp.ones(3, jnp.float32), jnp.full(3, 0.5, jnp.float32))
    wrapped = gj.mixed_precision()(tx)
    # (The same step program around both: under gj.fit the two programs differ in how their
    # metrics reuse the step's evaluation, and XLA may then round a fused float32 op differently.)
    a_params, a_state, _ = run_steps(GAME, tx, params, 12)
    b_params, b_state, _ = run_steps(GAME, wrapped, params, 12)
    jax.tree.map(np.testing.assert_array_equal, a_params, b_params)
    jax.tree.map(np.testing.assert_array_equal, a_state, b_state.inner)


def test_mixed_precision_bfloat16_params_follow_float32_master_weights():
    """Reference: the inner method in float32 on the field evaluated at bfloat16-rounded points."""
    inner = gj.extragradient(optax.adam(1e-3))
    start = P(jnp.array([2.5, -2.25, 3.0]), jnp.array([2.75, -3.5, 2.25]))  # bfloat16 spacing 2⁻⁶ there
    low = jax.tree.map(lambda a: a.astype(jnp.bfloat16), start)
    tx = gj.mixed_precision()(inner)
    result = gj.fit(GAME, tx, low, steps=200, log_every=200)
    assert _floating_dtypes(result.params) == {"bfloat16"}
    assert _floating_dtypes(result.state) == {"float32"}

    def rounded_field(p, batch):
        field, losses = GAME.field_and_losses(jax.tree.map(lambda a: a.astype(jnp.bfloat16), p), batch)
        return jax.tree.map(lambda a: a.astype(jnp.float32), field), losses

    reference = gj.fit(GAME.with_field(rounded_field), inner, jax.tree.map(lambda a: a.astype(jnp.float32), low),
                       steps=200, log_every=200)  # fmt: skip
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), result.state.master, reference.params)
    jax.tree.map(
        np.testing.assert_array_equal, result.params, jax.tree.map(lambda a: a.astype(jnp.bfloat16), reference.params)
    )
    # Without master weights, Adam's 1e-3 steps are below half the bfloat16 spacing: nothing moves.
    plain = gj.fit(GAME, inner, low, steps=200, log_every=200)
    jax.tree.map(np.testing.assert_array_equal, plain.params, low)
    assert float(optax.tree.norm(jax.tree.map(lambda a, b: a.astype(jnp.float32) - b, result.params, start))) > 0.1


def test_bfloat16_flax_gan_trains_with_float32_state():
    rngs = nnx.Rngs(0)
    kwargs = {"param_dtype": jnp.bfloat16, "dtype": jnp.bfloat16}
    pair = gj.flax.split(gj.flax.MLP((4, 32, 2), rngs=rngs, **kwargs), gj.flax.MLP((2, 32, 1), rngs=rngs, **kwargs))
    game = pair.game(gj.gan.non_saturating())
    sample = gj.gan.batch_sampler(lambda key, n: 0.1 * jax.random.normal(key, (n, 2)) + 1.0, 4, 64)
    tx = gj.mixed_precision()(gj.gda(optax.adam(3e-3)))
    result = gj.fit(game, tx, pair.params, steps=200, sample=sample, key=jax.random.key(1), log_every=200)
    assert _floating_dtypes(result.params) == {"bfloat16"} and _floating_dtypes(result.state) == {"float32"}
    assert int(result.diverged_at) == -1
    generator, _ = pair.merge(result.params)
    fake = generator(jax.random.normal(jax.random.key(2), (512, 4), jnp.bfloat16)).astype(jnp.float32)
    before, _ = pair.merge()
    start = before(jax.random.normal(jax.random.key(2), (512, 4), jnp.bfloat16)).astype(jnp.float32)
    # The generator's mean moves towards the data's (1, 1).
    assert float(jnp.linalg.norm(fake.mean(0) - 1.0)) < 0.5 * float(jnp.linalg.norm(start.mean(0) - 1.0))


def test_mixed_precision_rejects_a_non_float_dtype():
    with pytest.raises(ValueError, match="^dtype must be a floating-point dtype"):
        gj.mixed_precision(jnp.int32)
    with pytest.raises(TypeError, match="curried"):
        gj.mixed_precision(gj.gda(optax.sgd(0.1)))
