"""gj.derivatives against dense Hessians of the losses and finite differences of the field.

Every reference is built from the two losses directly (``jax.hessian`` / ``jax.grad`` on the
flattened players), never from ``game.field`` or another gamejax function.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import chex
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from problems import dense_quadratic, flat, pytree_players

import gamejax as gj
from gamejax import derivatives as gjd

# ---------------------------------------------------------------------------------------------
# Small non-quadratic games on pytree players, with their dense references.


def _general_loss_x(x, y, batch):
    s, m = y
    a, b = x["a"], x["b"]
    return (
        jnp.sum(jnp.tanh(a @ m + s * a + batch["u"]))
        + 0.5 * jnp.exp(s) * jnp.sum(b**2)
        + jnp.sin(m[0, 1]) * (b @ batch["w"])
        + 0.1 * jnp.sum(a**4)
        + a[0] * b[2] * m[1, 0]
    )


def _general_loss_y(x, y, batch):
    s, m = y
    a, b = x["a"], x["b"]
    return (
        jnp.exp(0.3 * s * jnp.sum(b))
        + 0.5 * jnp.sum(m**2)
        + jnp.log1p(jnp.sum((m @ a) ** 2))
        + s**2 * jnp.cosh(a[0])
        + s * (batch["u"] @ a)
        + m[0, 0] * m[1, 1] * b[1]
    )


def _zero_sum_f(x, t):
    w, b = x["w"], x["b"]
    return (
        jnp.sum(jnp.tanh(t * (w @ b)))
        + 0.5 * (b @ b)
        - 0.5 * t**2
        + jnp.exp(0.5 * t * b[0])
        + 0.25 * t * jnp.sum(w**2)
        + w[0, 1] * w[1, 2] * jnp.sin(t)
    )


def _scalar_loss_x(a, y):
    (v,) = y
    return 0.5 * a**2 * (1.0 + v @ v) + jnp.sin(a * v[0]) + a**4 / 12.0


def _scalar_loss_y(a, y):
    (v,) = y
    return 0.5 * jnp.sum(v**2) + jnp.tanh(a) * jnp.sum(v**3) / 3.0 + a * v[1] + jnp.exp(a * v[2])


class Case(NamedTuple):
    """A game, a point, a batch and the two losses ``loss(x, y, batch)`` it was built from."""

    game: gj.Game
    params: gj.Players
    batch: Any
    loss_x: Any
    loss_y: Any


def _normal(key, shape):
    return jax.random.normal(key, shape, jnp.float64)


def general_case() -> Case:
    """General-sum: x a dict of (2,) and (3,) arrays, y a tuple (scalar, 2x2); data in the batch."""
    k1, k2, k3 = jax.random.split(jax.random.key(10), 3)
    params = pytree_players(k1)
    batch = {"u": _normal(k2, (2,)), "w": _normal(k3, (3,))}
    game = gj.general_sum(_general_loss_x, _general_loss_y)
    return Case(game, params, batch, _general_loss_x, _general_loss_y)


def zero_sum_case() -> Case:
    """Zero-sum: x a dict of a (2, 3) and a (3,) array, y a single scalar; no batch."""
    k1, k2, k3 = jax.random.split(jax.random.key(11), 3)
    params = gj.Players({"w": 0.7 * _normal(k1, (2, 3)), "b": _normal(k2, (3,))}, _normal(k3, ()))
    game = gj.zero_sum(_zero_sum_f)
    return Case(
        game,
        params,
        None,
        lambda x, y, batch: _zero_sum_f(x, y),
        lambda x, y, batch: -_zero_sum_f(x, y),
    )


def scalar_case() -> Case:
    """General-sum: x a single scalar, y a one-element tuple of a (3,) array; no batch."""
    k1, k2 = jax.random.split(jax.random.key(12))
    params = gj.Players(_normal(k1, ()), (0.8 * _normal(k2, (3,)),))
    game = gj.general_sum(_scalar_loss_x, _scalar_loss_y)
    return Case(
        game,
        params,
        None,
        lambda x, y, batch: _scalar_loss_x(x, y),
        lambda x, y, batch: _scalar_loss_y(x, y),
    )


CASES = {"general": general_case, "zero_sum": zero_sum_case, "scalar": scalar_case}


NAMES = sorted(CASES)
EPS = 1e-5  # central differences in float64: truncation ~1e-10, rounding ~1e-11
FD_TOL = 1e-6
TOL = 1e-10
# These small graphs compile several times faster without LLVM's optimizations.
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def random_like(tree, seed: int):
    """A random pytree with the structure and shapes of ``tree``."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    new = [_normal(k, jnp.shape(leaf)) for k, leaf in zip(keys, leaves, strict=True)]
    return jax.tree.unflatten(treedef, new)


class Reference(NamedTuple):
    """Dense quantities built from the losses alone (never from gamejax)."""

    case: Case
    nx: int
    v: np.ndarray  # the field, from jax.grad of each loss
    J: np.ndarray  # rows of the loss Hessians
    J_fd: np.ndarray  # central differences of the field along each basis vector
    t: gj.Players  # a random direction
    fd_t: np.ndarray  # (v(p + εt) − v(p − εt)) / 2ε


@functools.cache
def reference(name: str) -> Reference:
    case = CASES[name]()
    z0, unravel = jax.flatten_util.ravel_pytree(case.params)
    nx = jax.flatten_util.ravel_pytree(case.params.x)[0].size
    t = random_like(case.params, 1)

    def flat_loss(loss):
        return lambda z: loss(*unravel(z), case.batch)

    lx, ly = flat_loss(case.loss_x), flat_loss(case.loss_y)

    def field(z):
        return jnp.concatenate([jax.grad(lx)(z)[:nx], jax.grad(ly)(z)[nx:]])

    @functools.partial(jax.jit, compiler_options=FAST_COMPILE)
    def dense(z, dz):
        # [Jxx Jxy] are rows of loss_x's Hessian, [Jyx Jyy] rows of loss_y's.
        hx, hy = jax.hessian(lx)(z), jax.hessian(ly)(z)
        J = jnp.block([[hx[:nx, :nx], hx[:nx, nx:]], [hy[nx:, :nx], hy[nx:, nx:]]])
        steps = jnp.concatenate([EPS * jnp.eye(z.size), EPS * dz[None]])
        plus = jax.vmap(field)(z[None] + steps)
        minus = jax.vmap(field)(z[None] - steps)
        fd = (plus - minus) / (2 * EPS)
        return field(z), J, fd[:-1].T, fd[-1]  # J_fd column i: derivative along e_i

    v, J, J_fd, fd_t = map(np.asarray, dense(z0, jax.flatten_util.ravel_pytree(t)[0]))
    return Reference(case, nx, v, J, J_fd, t, fd_t)


def compute_all(game, params, batch, t, w1, w2, t2, delta):
    """Every function of gj.derivatives, at one point."""
    out = {}
    out["field"] = game.field(params, batch)
    out["vjp_v"], pullback, out["vjp_losses"] = gjd.field_vjp(game, params, batch)
    out["vjp_w1"], out["vjp_w2"] = pullback(w1), pullback(w2)
    out["lin_v"], jvp, out["lin_losses"] = gjd.linearize_field(game, params, batch)
    out["lin_t"], out["lin_t2"] = jvp(t), jvp(t2)
    jxy, jyx = gjd.off_diagonal_blocks(jvp, params)
    out["off_diagonal"] = gj.Players(jxy(delta.y), jyx(delta.x))
    out["both_v"], both_jvp, both_vjp, _ = gjd.field_jvp_and_vjp(game, params, batch)
    out["both_jvp"], out["both_vjp"] = both_jvp(t), both_vjp(w1)
    out["player_x"] = gjd.player_field_jvp(game, params, batch, "x", delta.y)
    out["player_y"] = gjd.player_field_jvp(game, params, batch, "y", delta.x)
    if batch is not None:  # two examples, each the whole batch: Σ_i J_iᵀ w_i = Jᵀ(w1 + w2)
        examples = jax.tree.map(lambda a: jnp.stack([a, a]), batch)
        fields, pullback, _ = gjd.per_example_field_vjp(game, params, examples)
        out["per_example_fields"] = fields
        out["per_example_vjp"] = pullback(jax.tree.map(lambda a, b: jnp.stack([a, b]), w1, w2))
    out["jacobian"] = gjd.field_jacobian(game, params, batch)
    out["jacobian_chunked"] = gjd.field_jacobian(game, params, batch, chunk_size=3)
    return out


def vectors(params):
    """The random directions the tests use: t, w1, w2, t2, delta."""
    return [random_like(params, 1)] + [random_like(params, seed) for seed in (3, 4, 5, 6)]


@functools.cache
def outputs(name: str) -> dict:
    """``compute_all`` under one ``jax.jit`` (one compilation per game keeps the file fast)."""
    case = reference(name).case
    run = jax.jit(compute_all, compiler_options=FAST_COMPILE)
    return run(case.game, case.params, case.batch, *vectors(case.params))


def assert_like_params(tree, params):
    """Same tree structure, shapes and float64 dtype as the params."""
    chex.assert_trees_all_equal_structs(tree, params)
    chex.assert_trees_all_equal_shapes(tree, params)
    for leaf in jax.tree.leaves(tree):
        assert jnp.result_type(leaf) == jnp.float64


def blocks(ref: Reference, J: np.ndarray):
    nx = ref.nx
    return J[:nx, :nx], J[:nx, nx:], J[nx:, :nx], J[nx:, nx:]


# ---------------------------------------------------------------------------------------------
# Sanity of the references themselves.


@pytest.mark.parametrize("name", NAMES)
def test_reference_jacobian_matches_finite_differences(name):
    """The Hessian-built J agrees with central differences; the games are asymmetric and coupled."""
    ref = reference(name)
    np.testing.assert_allclose(ref.J, ref.J_fd, rtol=0, atol=FD_TOL)
    np.testing.assert_allclose(ref.J @ flat(ref.t), ref.fd_t, rtol=0, atol=FD_TOL)
    _, jxy, jyx, _ = blocks(ref, ref.J)
    assert np.abs(jxy).max() > 1e-2 and np.abs(jyx).max() > 1e-2
    assert np.abs(ref.J - ref.J.T).max() > 1e-2  # the field is not a gradient


@pytest.mark.parametrize("name", NAMES)
def test_game_field_matches_loss_gradients(name):
    ref, out = reference(name), outputs(name)
    assert_like_params(out["field"], ref.case.params)
    np.testing.assert_allclose(flat(out["field"]), ref.v, rtol=0, atol=TOL)


# ---------------------------------------------------------------------------------------------
# The functions of gj.derivatives.


@pytest.mark.parametrize("name", NAMES)
def test_field_jacobian(name):
    ref, out = reference(name), outputs(name)
    J = np.asarray(out["jacobian"])
    assert J.shape == ref.J.shape
    np.testing.assert_allclose(J, ref.J, rtol=0, atol=TOL)
    np.testing.assert_allclose(J, ref.J_fd, rtol=0, atol=FD_TOL)
    # In chunks of 3 columns (one linearization, lax.map of its jvp): the same matrix.
    np.testing.assert_allclose(np.asarray(out["jacobian_chunked"]), ref.J, rtol=0, atol=TOL)


def test_field_jacobian_zero_sum_structure():
    """For loss_y = −loss_x the off-diagonal blocks satisfy Jyx = −Jxyᵀ."""
    ref, out = reference("zero_sum"), outputs("zero_sum")
    _, jxy, jyx, _ = blocks(ref, np.asarray(out["jacobian"]))
    np.testing.assert_allclose(jyx, -jxy.T, rtol=0, atol=TOL)


@pytest.mark.parametrize("zero_sum", [False, True], ids=["general", "zero_sum"])
def test_field_jacobian_of_dense_quadratic(zero_sum):
    """On a quadratic game the Jacobian is the hand-written constant [[P, A], [B, Q]], anywhere."""
    problem = dense_quadratic(jax.random.key(3), zero_sum=zero_sum)
    params = pytree_players(jax.random.key(4))
    J = jax.jit(gjd.field_jacobian)(problem.game, params)  # batch defaults to None
    np.testing.assert_allclose(J, problem.J, rtol=0, atol=1e-12)


def test_field_jacobian_rejects_a_bad_chunk_size():
    problem = dense_quadratic(jax.random.key(3), zero_sum=True)
    with pytest.raises(ValueError, match="^chunk_size must be an integer >= 1"):
        gjd.field_jacobian(problem.game, pytree_players(jax.random.key(4)), chunk_size=0)


@pytest.mark.parametrize("name", NAMES)
def test_field_jvp_and_vjp(name):
    """J·t and Jᵀw from one linearization, against the dense J and central differences."""
    ref, out = reference(name), outputs(name)
    t, w1, _, _, _ = vectors(ref.case.params)
    np.testing.assert_allclose(flat(out["both_v"]), ref.v, rtol=0, atol=TOL)
    assert_like_params(out["both_jvp"], ref.case.params)
    assert_like_params(out["both_vjp"], ref.case.params)
    np.testing.assert_allclose(flat(out["both_jvp"]), ref.J @ flat(t), rtol=0, atol=TOL)
    np.testing.assert_allclose(flat(out["both_jvp"]), ref.fd_t, rtol=0, atol=FD_TOL)
    np.testing.assert_allclose(flat(out["both_vjp"]), ref.J.T @ flat(w1), rtol=0, atol=TOL)
    np.testing.assert_allclose(flat(out["both_vjp"]), ref.J_fd.T @ flat(w1), rtol=0, atol=FD_TOL)
    assert np.abs(flat(out["both_vjp"]) - ref.J @ flat(w1)).max() > 1e-3  # Jᵀw ≠ Jw on these games


@pytest.mark.parametrize("name", NAMES)
def test_losses_come_with_the_products(name):
    ref, out = reference(name), outputs(name)
    losses = ref.case.game.losses(ref.case.params, ref.case.batch)
    chex.assert_trees_all_close(out["vjp_losses"], losses, rtol=1e-12)
    chex.assert_trees_all_close(out["lin_losses"], losses, rtol=1e-12)


@pytest.mark.parametrize("name", ["general"])  # the case whose data travel in the batch
def test_per_example_field_vjp(name):
    """Per-example fields stacked on the examples' axis; the pullback sums J_iᵀ w_i."""
    ref, out = reference(name), outputs(name)
    assert ref.case.batch is not None
    _, w1, w2, _, _ = vectors(ref.case.params)
    for i in range(2):
        np.testing.assert_allclose(flat(jax.tree.map(lambda a, i=i: a[i], out["per_example_fields"])), ref.v, atol=TOL)
    np.testing.assert_allclose(flat(out["per_example_vjp"]), ref.J.T @ (flat(w1) + flat(w2)), rtol=0, atol=TOL)


@pytest.mark.parametrize("name", NAMES)
def test_field_vjp(name):
    """The pullback is Jᵀw, reusable for several w."""
    ref, out = reference(name), outputs(name)
    _, w1, w2, _, _ = vectors(ref.case.params)
    np.testing.assert_allclose(flat(out["vjp_v"]), ref.v, rtol=0, atol=TOL)
    for w, jtw in ((w1, out["vjp_w1"]), (w2, out["vjp_w2"])):
        assert_like_params(jtw, ref.case.params)
        np.testing.assert_allclose(flat(jtw), ref.J.T @ flat(w), rtol=0, atol=TOL)
        np.testing.assert_allclose(flat(jtw), ref.J_fd.T @ flat(w), rtol=0, atol=FD_TOL)


@pytest.mark.parametrize("name", NAMES)
def test_linearize_field(name):
    """The linearized jvp is J·t, reusable across several tangents."""
    ref, out = reference(name), outputs(name)
    t, _, _, t2, _ = vectors(ref.case.params)
    assert_like_params(out["lin_v"], ref.case.params)
    np.testing.assert_allclose(flat(out["lin_v"]), ref.v, rtol=0, atol=TOL)
    for tangent, jt in ((t, out["lin_t"]), (t2, out["lin_t2"])):
        assert_like_params(jt, ref.case.params)
        np.testing.assert_allclose(flat(jt), ref.J @ flat(tangent), rtol=0, atol=TOL)
    np.testing.assert_allclose(flat(out["lin_t"]), ref.fd_t, rtol=0, atol=FD_TOL)


def assert_off_diagonal(ref: Reference, delta: gj.Players, products: gj.Players):
    """products == Players(Jxy·delta.y, Jyx·delta.x), against the dense and the FD blocks."""
    assert_like_params(products, ref.case.params)
    dx, dy = flat(delta.x), flat(delta.y)
    for J, tol in ((ref.J, TOL), (ref.J_fd, FD_TOL)):
        _, jxy, jyx, _ = blocks(ref, J)
        np.testing.assert_allclose(flat(products.x), jxy @ dy, rtol=0, atol=tol)
        np.testing.assert_allclose(flat(products.y), jyx @ dx, rtol=0, atol=tol)


@pytest.mark.parametrize("name", NAMES)
def test_off_diagonal_blocks(name):
    ref, out = reference(name), outputs(name)
    assert_off_diagonal(ref, vectors(ref.case.params)[-1], out["off_diagonal"])


@pytest.mark.parametrize("name", NAMES)
def test_off_diagonal_blocks_and_player_products_agree_under_jit(name):
    """Under one jax.jit, the blocks of the linearized field equal each player's own mixed product."""
    out = outputs(name)
    (_, jxy_dy), (_, jyx_dx) = out["player_x"], out["player_y"]
    chex.assert_trees_all_close(out["off_diagonal"], gj.Players(jxy_dy, jyx_dx), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_player_field_jvp(name):
    """(v_x, Jxy·Δy) and (v_y, Jyx·Δx): one player's gradient and its mixed product."""
    ref, out = reference(name), outputs(name)
    (vx, jxy_dy), (vy, jyx_dx) = out["player_x"], out["player_y"]
    np.testing.assert_allclose(np.concatenate([flat(vx), flat(vy)]), ref.v, rtol=0, atol=TOL)
    assert_off_diagonal(ref, vectors(ref.case.params)[-1], gj.Players(jxy_dy, jyx_dx))
