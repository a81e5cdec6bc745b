"""gj.games: each game's losses and field against its docstring formula, evaluated by hand."""

from __future__ import annotations

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest
from problems import flat

import gamejax as gj

EQ_TOL = 1e-10


def players(x, y) -> gj.Players:
    return gj.Players(jnp.asarray(x), jnp.asarray(y))


def assert_equilibrium(game, init, equilibrium, batch=None):
    """The field vanishes at the equilibrium and not at the initial point."""
    assert np.abs(flat(game.field(equilibrium, batch))).max() < EQ_TOL
    assert np.abs(flat(game.field(init, batch))).max() > 1e-3


def assert_losses_and_field(game, params, f, field_x, field_y, batch=None):
    """loss_x = f, loss_y = −f, and the field is (∇x f, −∇y f) as computed by hand."""
    losses = game.losses(params, batch)
    field = game.field(params, batch)
    np.testing.assert_allclose(losses.x, f, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(losses.y, -f, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(field.x, field_x, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(field.y, field_y, rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------------------------------------
# Deterministic games.


def test_bilinear():
    game, init, equilibrium = gj.games.bilinear()
    np.testing.assert_array_equal(flat(init), [1.0, 1.0])
    np.testing.assert_array_equal(flat(equilibrium), [0.0, 0.0])
    assert game.zero_sum
    assert_equilibrium(game, init, equilibrium)
    rng = np.random.default_rng(0)
    for _ in range(2):
        x, y = rng.normal(size=2)
        assert_losses_and_field(game, players(x, y), x * y, y, -x)


@pytest.mark.parametrize(
    ("make", "a", "b", "c"),
    [(gj.games.qp1, -3.0, 4.0, -1.0), (gj.games.qp2, 1.0, 5.0, -1.0)],
    ids=["qp1", "qp2"],
)
def test_scalar_quadratic_games(make, a, b, c):
    """QP-1: L = −3x² + 4xy − y²; QP-2: L = x² + 5xy − y² (lookahead paper, App. E)."""
    game, init, equilibrium = make()
    np.testing.assert_array_equal(flat(init), [1.0, 1.0])
    np.testing.assert_array_equal(flat(equilibrium), [0.0, 0.0])
    assert_equilibrium(game, init, equilibrium)
    rng = np.random.default_rng(1)
    for _ in range(2):
        x, y = rng.normal(size=2)
        L = a * x**2 + b * x * y + c * y**2
        assert_losses_and_field(game, players(x, y), L, 2 * a * x + b * y, -(b * x + 2 * c * y))


def test_qp1_literal_formula():
    """QP-1 at one point, the formula written out: L(2, −1) = −12 − 8 − 1 = −21."""
    game, _, _ = gj.games.qp1()
    losses = game.losses(players(2.0, -1.0))
    np.testing.assert_allclose([losses.x, losses.y], [-21.0, 21.0], rtol=1e-15)


def well_conditioned(rng, d):
    return 3.0 * np.eye(d) + 0.4 * rng.normal(size=(d, d))


def test_affine_bilinear():
    """f = xᵀAy + bᵀx + cᵀy; equilibrium Ay* = −b, Aᵀx* = −c."""
    rng = np.random.default_rng(2)
    d = 4
    A, b, c = well_conditioned(rng, d), rng.normal(size=d), rng.normal(size=d)
    assert np.linalg.cond(A) < 10
    game, init, equilibrium = gj.games.affine_bilinear(A, b, c)
    np.testing.assert_array_equal(flat(init), np.ones(2 * d))
    np.testing.assert_allclose(equilibrium.x, np.linalg.solve(A.T, -c), rtol=1e-12)
    np.testing.assert_allclose(equilibrium.y, np.linalg.solve(A, -b), rtol=1e-12)
    assert_equilibrium(game, init, equilibrium)
    for _ in range(2):
        x, y = rng.normal(size=d), rng.normal(size=d)
        f = x @ A @ y + b @ x + c @ y
        assert_losses_and_field(game, players(x, y), f, A @ y + b, -(A.T @ x + c))


def test_affine_bilinear_custom_init():
    init = players(np.arange(3.0), -np.arange(3.0))
    _, got, _ = gj.games.affine_bilinear(2 * np.eye(3), np.ones(3), np.zeros(3), init=init)
    np.testing.assert_array_equal(flat(got), flat(init))


@pytest.mark.parametrize("h", [1.0, 0.7])
def test_quadratic(h):
    """f = (h/2)‖x‖² − (h/2)‖y‖² + xᵀAy; Jacobian [[hI, A], [−Aᵀ, hI]]; equilibrium at the origin."""
    rng = np.random.default_rng(3)
    d = 3
    A = rng.normal(size=(d, d))
    game, init, equilibrium = gj.games.quadratic(A, h) if h != 1.0 else gj.games.quadratic(A)
    np.testing.assert_array_equal(flat(init), np.ones(2 * d))
    np.testing.assert_array_equal(flat(equilibrium), np.zeros(2 * d))
    assert_equilibrium(game, init, equilibrium)
    J = np.block([[h * np.eye(d), A], [-A.T, h * np.eye(d)]])
    for _ in range(2):
        x, y = rng.normal(size=d), rng.normal(size=d)
        f = 0.5 * h * (x @ x) - 0.5 * h * (y @ y) + x @ A @ y
        v = J @ np.concatenate([x, y])
        assert_losses_and_field(game, players(x, y), f, v[:d], v[d:])


def test_quadratic_custom_init():
    init = players(np.full(2, 3.0), np.full(2, -2.0))
    _, got, _ = gj.games.quadratic(np.eye(2), init=init)
    np.testing.assert_array_equal(flat(got), flat(init))


# ---------------------------------------------------------------------------------------------
# SB-G.

DIM = 6


@pytest.fixture(scope="module")
def sbg_problem():
    return gj.games.sbg(jax.random.key(7), dim=DIM)


@pytest.fixture(scope="module")
def sample_losses(sbg_problem):
    """``loss(theta, phi, index)``: loss_x of the single-sample batch ``[index]``, vmappable."""
    game = sbg_problem.game

    def loss(theta, phi, index):
        return game.losses(gj.Players(theta, phi), index[None]).x

    return jax.jit(jax.vmap(loss, in_axes=(0, 0, None)))


@pytest.fixture(scope="module")
def sbg_data(sample_losses):
    """b_i and c_i read off the per-sample losses: ℓ_i(e_k, 0) = b_i[k], ℓ_i(0, e_k) = c_i[k]."""
    eye, zeros = jnp.eye(DIM), jnp.zeros((DIM, DIM))
    b = np.stack([sample_losses(eye, zeros, jnp.asarray(i)) for i in range(DIM)])
    c = np.stack([sample_losses(zeros, eye, jnp.asarray(i)) for i in range(DIM)])
    return b, c


def test_sbg_per_sample_loss_is_bilinear_with_diagonal_coupling(sample_losses, sbg_data):
    """ℓ_i(θ, φ) = θᵀb_i + θ_iφ_i + c_iᵀφ, i.e. A_i = e_i e_iᵀ, at random points."""
    b, c = sbg_data
    assert np.abs(b).max() > 0.1 and np.abs(c).max() > 0.1
    rng = np.random.default_rng(4)
    theta, phi = rng.normal(size=(3, DIM)), rng.normal(size=(3, DIM))
    for i in range(DIM):
        got = sample_losses(jnp.asarray(theta), jnp.asarray(phi), jnp.asarray(i))
        expected = theta @ b[i] + theta[:, i] * phi[:, i] + phi @ c[i]
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_sbg_full_batch_is_sum_of_samples(sbg_problem, sbg_data):
    """The full-batch loss is Σ_i ℓ_i, and batches [0..n−1] and [i, j, k] are sums too."""
    game = sbg_problem.game
    b, c = sbg_data
    rng = np.random.default_rng(5)
    theta, phi = rng.normal(size=DIM), rng.normal(size=DIM)
    params = players(theta, phi)

    def by_hand(index):
        return sum(theta @ b[i] + theta[i] * phi[i] + c[i] @ phi for i in index)

    full = game.losses(params, None)
    np.testing.assert_allclose(full.x, by_hand(range(DIM)), rtol=1e-12)
    np.testing.assert_allclose(full.y, -by_hand(range(DIM)), rtol=1e-12)
    everything = game.losses(params, jnp.arange(DIM))
    np.testing.assert_allclose(everything.x, full.x, rtol=1e-12)
    np.testing.assert_allclose(flat(game.field(params, jnp.arange(DIM))), flat(game.field(params, None)), rtol=1e-12)
    subset = [0, 3, 4]
    np.testing.assert_allclose(game.losses(params, jnp.asarray(subset)).x, by_hand(subset), rtol=1e-12)


def test_sbg_equilibrium(sbg_problem, sbg_data):
    """(−Σc_i, −Σb_i) solves the dense linear system of the full-batch field; the field vanishes there."""
    game, init, equilibrium = sbg_problem
    b, c = sbg_data
    np.testing.assert_allclose(equilibrium.x, -c.sum(0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(equilibrium.y, -b.sum(0), rtol=1e-12, atol=1e-14)

    z0, unravel = jax.flatten_util.ravel_pytree(init)

    def flat_field(z):
        return jax.flatten_util.ravel_pytree(game.field(unravel(z), None))[0]

    J = np.asarray(jax.jacfwd(flat_field)(jnp.zeros_like(z0)))
    r = np.asarray(flat_field(jnp.zeros_like(z0)))
    # the field is affine with J = [[0, I], [−I, 0]] (Σ_i A_i = I)
    np.testing.assert_allclose(J, np.block([[0 * np.eye(DIM), np.eye(DIM)], [-np.eye(DIM), 0 * np.eye(DIM)]]))
    np.testing.assert_allclose(flat(equilibrium), np.linalg.solve(J, -r), rtol=1e-12, atol=1e-14)
    assert_equilibrium(game, init, equilibrium)


def test_sbg_default_size_and_scales():
    """dim = 100 by default; init ~ N(0, 1/d) and each coordinate of −Σc_i ~ N(0, 1)."""
    _, init, equilibrium = gj.games.sbg(jax.random.key(0))
    assert init.x.shape == init.y.shape == equilibrium.x.shape == equilibrium.y.shape == (100,)
    assert 0.5 < 100 * np.mean(flat(init) ** 2) < 1.6
    assert 0.5 < np.mean(flat(equilibrium) ** 2) < 1.6


def test_sbg_keys():
    """The same key gives the same game; another key another one."""
    _, init0, eq0 = gj.games.sbg(jax.random.key(1), dim=DIM)
    _, init1, eq1 = gj.games.sbg(jax.random.key(1), dim=DIM)
    _, init2, eq2 = gj.games.sbg(jax.random.key(2), dim=DIM)
    np.testing.assert_array_equal(flat((init0, eq0)), flat((init1, eq1)))
    assert np.abs(flat((init0, eq0)) - flat((init2, eq2))).min() > 0


def test_sbg_sampler():
    """batch_size distinct ints in [0, dim); different keys give different batches."""
    dim, batch_size = 12, 5
    sample = gj.games.sbg_sampler(batch_size, dim=dim)
    batches = [np.asarray(sample(jax.random.key(k))) for k in range(8)]
    for batch in batches:
        assert batch.shape == (batch_size,)
        assert np.issubdtype(batch.dtype, np.integer)
        assert len(set(batch.tolist())) == batch_size
        assert batch.min() >= 0 and batch.max() < dim
    assert len({tuple(sorted(batch.tolist())) for batch in batches}) >= 7
    np.testing.assert_array_equal(np.asarray(sample(jax.random.key(3))), batches[3])  # deterministic
    np.testing.assert_array_equal(np.asarray(jax.jit(sample)(jax.random.key(3))), batches[3])
    everything = np.asarray(gj.games.sbg_sampler(dim, dim=dim)(jax.random.key(0)))
    np.testing.assert_array_equal(np.sort(everything), np.arange(dim))


def test_sbg_sampler_default_dim_covers_range():
    sample = gj.games.sbg_sampler(50)
    seen = np.concatenate([np.asarray(sample(jax.random.key(k))) for k in range(4)])
    assert seen.min() >= 0 and seen.max() < 100
    assert seen.max() >= 90  # the default dim is 100, not a smaller range


def test_sbg_with_sampled_batch(sbg_problem, sbg_data):
    b, c = sbg_data
    index = np.asarray(gj.games.sbg_sampler(4, dim=DIM)(jax.random.key(11)))
    rng = np.random.default_rng(6)
    theta, phi = rng.normal(size=DIM), rng.normal(size=DIM)
    expected = sum(theta @ b[i] + theta[i] * phi[i] + c[i] @ phi for i in index)
    got = sbg_problem.game.losses(players(theta, phi), jnp.asarray(index)).x
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Invalid inputs.


@pytest.mark.parametrize(
    ("A", "b", "c"),
    [
        (np.ones((2, 3)), np.ones(2), np.ones(2)),  # non-square A
        (np.ones(3), np.ones(3), np.ones(3)),  # A not a matrix
        (np.eye(2), np.ones(3), np.ones(2)),  # b of the wrong size
        (np.eye(2), np.ones((2, 1)), np.ones(2)),  # b not a vector
        (np.eye(2), np.ones(2), np.ones(3)),  # c of the wrong size
    ],
    ids=["nonsquare", "vector-A", "b-size", "b-matrix", "c-size"],
)
def test_affine_bilinear_rejects_bad_shapes(A, b, c):
    with pytest.raises(ValueError):
        gj.games.affine_bilinear(A, b, c)


@pytest.mark.parametrize("A", [np.ones((2, 3)), np.ones(2)], ids=["nonsquare", "vector"])
def test_quadratic_rejects_non_square(A):
    with pytest.raises(ValueError, match="square"):
        gj.games.quadratic(A)


@pytest.mark.parametrize(("batch_size", "dim"), [(13, 12), (101, 100), (0, 12), (-1, 12), (2.0, 12), (2, 0)])
def test_sbg_sampler_rejects_bad_sizes(batch_size, dim):
    with pytest.raises(ValueError):
        gj.games.sbg_sampler(batch_size, dim=dim)


def test_sbg_rejects_bad_dim():
    with pytest.raises(ValueError):
        gj.games.sbg(jax.random.key(0), dim=0)


@pytest.mark.parametrize(
    "batch",
    [jnp.array([0.0, 1.0]), jnp.array([[0, 1]]), jnp.array(1)],
    ids=["float", "2-D", "0-D"],
)
def test_sbg_rejects_bad_batch(sbg_problem, batch):
    game, init, _ = sbg_problem
    with pytest.raises(ValueError, match="int array"):
        game.losses(init, batch)
    with pytest.raises(ValueError, match="int array"):
        game.field(init, batch)
