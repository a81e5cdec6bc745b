"""gj.gan: each GAN loss and penalty against its formula, computed by hand in the test."""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gamejax as gj
from gamejax import gan

TOL = 1e-12
KEY = jax.random.key(0)

# Fixed logits: with the identity as generator and as discriminator on 1-D data, D(x) = x and
# D(G(z)) = z, so the losses are known functions of these numbers.
REAL = [0.5, -1.0, 2.0]
FAKE = [0.3, -0.7, 1.5]


def sigmoid(t: float) -> float:
    return 1.0 / (1.0 + math.exp(-t))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def identity_batch(real=REAL, fake=FAKE) -> gan.GANBatch:
    return gan.GANBatch(jnp.asarray(real)[:, None], jnp.asarray(fake)[:, None], KEY)


def identity_generator(z):
    return z


def identity_discriminator(shape: str):
    """D(x) = x, returning ``(B,)`` or ``(B, 1)``."""
    return (lambda x: x[:, 0]) if shape == "(B,)" else (lambda x: x)


def expected_losses(name: str) -> tuple[float, float]:
    """(loss_x, loss_y) of each objective at the logits REAL, FAKE, by hand."""
    if name == "saturating":
        f = mean(math.log(sigmoid(r)) for r in REAL) + mean(math.log(1.0 - sigmoid(s)) for s in FAKE)
        return f, -f
    if name == "non_saturating":
        d = -mean(math.log(sigmoid(r)) for r in REAL) - mean(math.log(1.0 - sigmoid(s)) for s in FAKE)
        return -mean(math.log(sigmoid(s)) for s in FAKE), d
    if name == "wgan":
        f = mean(REAL) - mean(FAKE)
        return f, -f
    if name == "hinge":
        return -mean(FAKE), mean(max(0.0, 1.0 - r) for r in REAL) + mean(max(0.0, 1.0 + s) for s in FAKE)
    raise AssertionError(name)


LOSSES = ["saturating", "non_saturating", "wgan", "hinge"]
ZERO_SUM = {"saturating": True, "non_saturating": False, "wgan": True, "hinge": False}


# ---------------------------------------------------------------------------------------------
# The four objectives.


@pytest.mark.parametrize("shape", ["(B,)", "(B, 1)"])
@pytest.mark.parametrize("name", LOSSES)
def test_loss_matches_formula(name, shape):
    loss = getattr(gan, name)()
    batch = identity_batch()
    D = identity_discriminator(shape)
    expected_x, expected_y = expected_losses(name)
    np.testing.assert_allclose(loss.generator(identity_generator, D, batch), expected_x, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(loss.discriminator(identity_generator, D, batch), expected_y, rtol=TOL, atol=TOL)
    assert loss.zero_sum is ZERO_SUM[name]
    assert isinstance(loss.name, str) and loss.name


@pytest.mark.parametrize("name", LOSSES)
def test_zero_sum_losses_are_negatives(name):
    loss = getattr(gan, name)()
    rng = np.random.default_rng(1)
    batch = gan.GANBatch(jnp.asarray(rng.normal(size=(7, 3))), jnp.asarray(rng.normal(size=(7, 2))), KEY)
    W, v = jnp.asarray(rng.normal(size=(2, 3))), jnp.asarray(rng.normal(size=3))
    G, D = (lambda z: z @ W), (lambda x: jnp.tanh(x) @ v)
    lx, ly = loss.generator(G, D, batch), loss.discriminator(G, D, batch)
    if loss.zero_sum:
        np.testing.assert_allclose(ly, -lx, rtol=TOL, atol=TOL)
    else:
        assert abs(float(lx + ly)) > 1e-3


def test_saturating_is_stable_for_large_logits():
    """log σ(−800) = −800 and log(1 − σ(800)) = −800, where a naive log(sigmoid) gives −inf."""
    loss = gan.saturating()
    batch = identity_batch(real=[-800.0], fake=[800.0])
    D = identity_discriminator("(B,)")
    np.testing.assert_allclose(loss.generator(identity_generator, D, batch), -1600.0, rtol=TOL)
    grads = jax.grad(lambda z: loss.generator(identity_generator, D, batch._replace(noise=z)))(batch.noise)
    np.testing.assert_allclose(grads, [[-1.0]], rtol=TOL)  # d/dl log(1 − σ(l)) = −σ(l) → −1


@pytest.mark.parametrize("name", LOSSES)
def test_generator_descent_raises_fake_scores(name):
    """G(z) = z + θ, D(x) = x: a descent step of the generator's loss increases D(G(z));
    D_w(x) = w·x: a descent step of the discriminator's loss increases E D(x) − E D(G(z))."""
    loss = getattr(gan, name)()
    batch = identity_batch(real=[2.0, 1.0], fake=[-1.0, -2.0])
    D = identity_discriminator("(B,)")
    d_theta = jax.grad(lambda t: loss.generator(lambda z: z + t, D, batch))(0.0)
    assert d_theta < 0
    d_w = jax.grad(lambda w: loss.discriminator(identity_generator, lambda x: w * x[:, 0], batch))(0.1)
    assert d_w < 0  # E x_real − E z > 0, so increasing w separates real from fake


@pytest.mark.parametrize("name", LOSSES)
@pytest.mark.parametrize("bad", [lambda x: jnp.ones((x.shape[0], 2)), lambda x: jnp.sum(x), lambda x: x[:-1, 0]])
def test_discriminator_output_shape_is_checked(name, bad):
    loss = getattr(gan, name)()
    with pytest.raises(ValueError, match=r"one logit per sample, of shape \(B,\) or \(B, 1\)"):
        loss.discriminator(identity_generator, bad, identity_batch())


def test_batch_type_is_checked():
    with pytest.raises(TypeError, match="GANBatch"):
        gan.wgan().generator(identity_generator, identity_discriminator("(B,)"), (jnp.ones((2, 1)),) * 3)


# ---------------------------------------------------------------------------------------------
# Gradient penalties.

B = 4


def image_batch(seed: int = 0) -> gan.GANBatch:
    """Real "images" of shape (B, 2, 3); the generator reshapes (B, 6) noise into that shape."""
    rng = np.random.default_rng(seed)
    return gan.GANBatch(jnp.asarray(rng.normal(size=(B, 2, 3))), jnp.asarray(rng.normal(size=(B, 6))), KEY)


def reshape_generator(z):
    return jnp.reshape(z, (z.shape[0], 2, 3))


@pytest.mark.parametrize("at", ["real", "fake", "interpolates"])
@pytest.mark.parametrize("center", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("base", [gan.wgan, gan.non_saturating])
def test_penalty_of_linear_discriminator(base, center, at):
    """D(x) = <w, x>: ∇D = w at every point, so the penalty is weight·(‖w‖ − center)² exactly."""
    w = np.arange(1.0, 7.0).reshape(2, 3) / 10.0
    D = lambda x: jnp.einsum("bij,ij->b", x, jnp.asarray(w))
    weight = 0.7
    norm = math.sqrt(float(np.sum(w**2)))
    loss = base()
    penalized = gan.gradient_penalty(loss, weight, center=center, at=at)
    batch = image_batch()
    expected = loss.discriminator(reshape_generator, D, batch) + weight * (norm - center) ** 2
    np.testing.assert_allclose(penalized.discriminator(reshape_generator, D, batch), expected, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(
        penalized.generator(reshape_generator, D, batch), loss.generator(reshape_generator, D, batch), rtol=0, atol=0
    )
    assert penalized.zero_sum is False


# D(x)_i = s/2 · ‖x_i‖²: ∇D(x_i) = s·x_i, so the per-sample norms are s·‖x_i‖.
POINTS_2D = [[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]]  # norms 5, 1, 0
OTHER_2D = [[0.0, 2.0], [6.0, 8.0], [1.0, 1.0]]  # norms 2, 10, √2


def quadratic_discriminator(s=1.0):
    return lambda x: 0.5 * s * jnp.sum(x**2, axis=1)


@pytest.mark.parametrize("at", ["real", "fake"])
def test_penalty_of_quadratic_discriminator(at):
    points, other = (POINTS_2D, OTHER_2D) if at == "real" else (OTHER_2D, POINTS_2D)
    batch = gan.GANBatch(jnp.asarray(points), jnp.asarray(other), KEY)
    D = quadratic_discriminator()

    def extra(loss):
        return loss.discriminator(identity_generator, D, batch) - gan.wgan().discriminator(identity_generator, D, batch)

    # center 1, weight 2: 2 · mean((5 − 1)², (1 − 1)², (0 − 1)²) = 2 · 17/3
    np.testing.assert_allclose(extra(gan.gradient_penalty(gan.wgan(), 2.0, center=1.0, at=at)), 34 / 3, rtol=TOL)
    # zero-centred, weight 2: 2 · mean(25, 1, 0) = 52/3
    np.testing.assert_allclose(extra(gan.zero_gp(gan.wgan(), 2.0, at=at)), 52 / 3, rtol=TOL)


def test_penalty_gradient_is_finite_at_a_zero_input_gradient():
    """d/ds of 2·mean((s‖x_i‖ − 1)²) at s = 1 is 2·mean(2(‖x_i‖ − 1)‖x_i‖) = 2·(40 + 0 + 0)/3,
    finite although ∇D = 0 at the third point (where the norm is not differentiable)."""
    batch = gan.GANBatch(jnp.asarray(POINTS_2D), jnp.asarray(OTHER_2D), KEY)
    penalized, base = gan.gradient_penalty(gan.wgan(), 2.0, center=1.0), gan.wgan()

    def extra(s):
        D = quadratic_discriminator(s)
        return penalized.discriminator(identity_generator, D, batch) - base.discriminator(identity_generator, D, batch)

    np.testing.assert_allclose(jax.grad(extra)(1.0), 80 / 3, rtol=TOL)


@jax.jit
def interpolation_points(key, real, fake) -> jax.Array:
    """The penalty's points x̂, read off its gradient with respect to per-entry scales.

    D_s(x)_i = ½ Σ_k s_ik x_ik² has ∇D(x̂_i) = s_i ⊙ x̂_i, so the zero-centred penalty with weight 1
    is mean_i Σ_k s_ik² x̂_ik² and its derivative at s = 1 is 2 x̂_ik² / B.
    """
    batch = gan.GANBatch(real, fake, key)
    penalized, base = gan.zero_gp(gan.wgan(), 1.0, at="interpolates"), gan.wgan()

    def extra(s):
        D = lambda x: 0.5 * jnp.sum(s * x**2, axis=1)
        return penalized.discriminator(identity_generator, D, batch) - base.discriminator(identity_generator, D, batch)

    return jnp.sqrt(jax.grad(extra)(jnp.ones(real.shape)) * real.shape[0] / 2)


def test_interpolates_lie_on_the_segments():
    """x̂_i = ε_i x_i + (1 − ε_i) G(z_i): the same ε_i on every coordinate, in [0, 1], drawn
    independently per sample (uniform: mean ½, variance 1/12) from batch.key."""
    n = 1000
    rng = np.random.default_rng(2)
    real = rng.uniform(1.0, 2.0, size=(n, 3))  # positive, so x̂ = √(x̂²)
    fake = real + rng.uniform(1.0, 2.0, size=(n, 3))  # every coordinate differs from the real one
    points = np.asarray(interpolation_points(KEY, real, fake))
    eps = (points - fake) / (real - fake)
    np.testing.assert_allclose(eps, np.repeat(eps[:, :1], 3, axis=1), atol=1e-9)  # on the segment
    eps = eps[:, 0]
    assert eps.min() >= -1e-9 and eps.max() <= 1 + 1e-9
    assert abs(eps.mean() - 0.5) < 0.04 and abs(eps.var() - 1 / 12) < 0.012
    assert eps.min() < 0.02 and eps.max() > 0.98
    np.testing.assert_array_equal(interpolation_points(KEY, real, fake), points)  # a function of the key
    assert np.abs(np.asarray(interpolation_points(jax.random.key(1), real, fake)) - points).max() > 0.1


def test_wgan_gp_is_gradient_penalty_of_wgan():
    loss = gan.wgan_gp()
    reference = gan.gradient_penalty(gan.wgan(), 10.0, center=1.0, at="interpolates")
    batch = gan.GANBatch(jnp.asarray(POINTS_2D), jnp.asarray(OTHER_2D), KEY)
    D = quadratic_discriminator()
    for fn in ("generator", "discriminator"):
        np.testing.assert_allclose(
            getattr(loss, fn)(identity_generator, D, batch),
            getattr(reference, fn)(identity_generator, D, batch),
            rtol=TOL,
        )
    assert loss.zero_sum is False and loss.name == "WGAN-GP"


def test_penalty_weight_and_center_may_be_traced():
    """A vmap sweep over the weight (the penalty is linear in it), and a traced center under jit."""
    batch = gan.GANBatch(jnp.asarray(POINTS_2D), jnp.asarray(OTHER_2D), KEY)
    D = quadratic_discriminator()

    def extra(weight, center):
        penalized = gan.gradient_penalty(gan.wgan(), weight, center=center)
        return penalized.discriminator(identity_generator, D, batch) - gan.wgan().discriminator(
            identity_generator, D, batch
        )

    weights = jnp.asarray([0.0, 1.0, 2.0])
    np.testing.assert_allclose(jax.vmap(extra, (0, None))(weights, 1.0), weights * 17 / 3, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(jax.jit(extra)(2.0, 0.0), 52 / 3, rtol=TOL)


# ---------------------------------------------------------------------------------------------
# Games.

NOISE, DATA, HIDDEN, N = 3, 2, 4, 5


def generator_apply(p, z):
    return z @ p["W"] + p["b"][None]


def discriminator_apply(p, x):
    return jnp.tanh(x @ p["V"] + p["c"][None]) @ p["u"]


def mlp_params(seed: int = 4) -> gj.Players:
    rng = np.random.default_rng(seed)
    a = lambda *shape: jnp.asarray(rng.normal(size=shape))
    return gj.Players(
        x={"W": a(NOISE, DATA), "b": a(DATA)},
        y={"V": a(DATA, HIDDEN), "c": a(HIDDEN), "u": a(HIDDEN)},
    )


def mlp_batch(seed: int = 5) -> gan.GANBatch:
    rng = np.random.default_rng(seed)
    return gan.GANBatch(jnp.asarray(rng.normal(size=(N, DATA))), jnp.asarray(rng.normal(size=(N, NOISE))), KEY)


def single_input_grad(p, x):
    """∇x D(x) for one sample: tanh'(xV + c) ⊙ u mapped back through V (chain rule by hand)."""
    h = x @ p["V"] + p["c"]
    return p["V"] @ ((1 - jnp.tanh(h) ** 2) * p["u"])


def hand_losses(name: str, gp, dp, batch):
    """(loss_x, loss_y) of each objective written out by hand with the MLPs above."""
    fake = batch.noise @ gp["W"] + gp["b"][None]
    d_real = jnp.tanh(batch.real @ dp["V"] + dp["c"][None]) @ dp["u"]
    d_fake = jnp.tanh(fake @ dp["V"] + dp["c"][None]) @ dp["u"]
    log_p_real = -jnp.log1p(jnp.exp(-d_real))  # log σ(D(x))
    log_q_fake = -jnp.log1p(jnp.exp(d_fake))  # log(1 − σ(D(G(z))))
    if name == "saturating":
        f = jnp.mean(log_p_real) + jnp.mean(log_q_fake)
        return f, -f
    if name == "non_saturating":
        return jnp.mean(jnp.log1p(jnp.exp(-d_fake))), -jnp.mean(log_p_real) - jnp.mean(log_q_fake)
    if name == "wgan":
        return jnp.mean(d_real) - jnp.mean(d_fake), jnp.mean(d_fake) - jnp.mean(d_real)
    if name == "hinge":
        return -jnp.mean(d_fake), jnp.mean(jnp.maximum(0, 1 - d_real)) + jnp.mean(jnp.maximum(0, 1 + d_fake))
    if name in ("r1", "r2"):  # non-saturating + zero-GP (weight 3) on real / fake data
        lx, ly = hand_losses("non_saturating", gp, dp, batch)
        points = batch.real if name == "r1" else fake
        grads = jax.vmap(single_input_grad, in_axes=(None, 0))(dp, points)  # one sample at a time
        return lx, ly + 3.0 * jnp.mean(jnp.sum(grads**2, axis=1))
    raise AssertionError(name)


GAME_LOSSES = {
    "saturating": gan.saturating(),
    "non_saturating": gan.non_saturating(),
    "wgan": gan.wgan(),
    "hinge": gan.hinge(),
    "r1": gan.zero_gp(gan.non_saturating(), 3.0, at="real"),
    "r2": gan.zero_gp(gan.non_saturating(), 3.0, at="fake"),
}


@functools.cache
def game_results() -> dict:
    """For every loss: the game's (field, losses) and the hand-computed ones, all in one compilation."""

    @jax.jit
    def run(params, batch):
        results = {}
        for name, loss in GAME_LOSSES.items():
            hand = lambda gp, dp, name=name: hand_losses(name, gp, dp, batch)
            gx = jax.grad(lambda gp, hand=hand: hand(gp, params.y)[0])(params.x)
            gy = jax.grad(lambda dp, hand=hand: hand(params.x, dp)[1])(params.y)
            game = gan.game(loss, generator_apply, discriminator_apply)
            expected = (gj.Players(gx, gy), gj.Players(*hand(params.x, params.y)))
            results[name] = (game.field_and_losses(params, batch), expected)
        return results

    return run(mlp_params(), mlp_batch())


@pytest.mark.parametrize("name", list(GAME_LOSSES))
def test_game_field_is_gradient_of_hand_losses(name):
    loss = GAME_LOSSES[name]
    game = gan.game(loss, generator_apply, discriminator_apply)
    assert isinstance(game, gj.Game) and game.zero_sum is loss.zero_sum and game.name == loss.name
    (field, losses), (expected_field, expected_losses) = game_results()[name]
    np.testing.assert_allclose(losses.x, expected_losses.x, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(losses.y, expected_losses.y, rtol=TOL, atol=TOL)
    for got, expected in zip(jax.tree.leaves(field), jax.tree.leaves(expected_field), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=TOL)


def test_penalized_games():
    """Only the discriminator's loss has the penalty, so the field's x part is the WGAN one; the
    y part is the gradient of the penalized loss (WGAN-GP: on interpolates, drawn from batch.key)."""
    losses = [gan.wgan(), gan.gradient_penalty(gan.wgan(), 10.0, center=1.0, at="fake"), gan.wgan_gp()]
    assert gan.game(gan.wgan_gp(), generator_apply, discriminator_apply, name="my GAN").name == "my GAN"

    @jax.jit
    def fields(params, batch):
        def networks(dp):
            return (lambda z: generator_apply(params.x, z)), (lambda x: discriminator_apply(dp, x))

        fields = [gan.game(loss, generator_apply, discriminator_apply).field(params, batch) for loss in losses]
        gy = [jax.grad(lambda dp, loss=loss: loss.discriminator(*networks(dp), batch))(params.y) for loss in losses]
        return fields, gy

    (plain, *penalized), expected_gy = fields(mlp_params(), mlp_batch())
    chex.assert_trees_all_close([f.y for f in [plain, *penalized]], expected_gy, rtol=TOL, atol=TOL)
    for field in penalized:
        chex.assert_trees_all_close(field.x, plain.x, rtol=TOL, atol=TOL)
        assert max(float(jnp.abs(field.y[k] - plain.y[k]).max()) for k in plain.y) > 1e-3


# ---------------------------------------------------------------------------------------------
# Batches.


def sample_real(key, n):
    return jax.random.uniform(key, (n, 2, 3), dtype=jnp.float32)


def test_batch_sampler_shapes_dtypes_jit_and_vmap():
    sample = gan.batch_sampler(sample_real, noise_dim=8, batch_size=16)
    batch = sample(KEY)
    assert isinstance(batch, gan.GANBatch)
    assert batch.real.shape == (16, 2, 3) and batch.real.dtype == jnp.float32
    assert batch.noise.shape == (16, 8) and batch.noise.dtype == jnp.float32  # the data's dtype
    assert abs(float(batch.noise.mean())) < 0.5 and 0.5 < float(batch.noise.std()) < 1.5  # standard normal
    assert jax.random.key_data(batch.key).shape == jax.random.key_data(KEY).shape  # a key for the losses
    chex.assert_trees_all_equal(sample(KEY), batch)  # a function of the key
    assert float(jnp.abs(sample(jax.random.key(1)).noise - batch.noise).max()) > 0.1
    # Traceable under jit and vmap (checked without paying for XLA compilations).
    jax.jit(sample).lower(KEY)
    stacked = jax.eval_shape(jax.vmap(sample), jax.random.split(KEY, 3))
    assert stacked.real.shape == (3, 16, 2, 3) and stacked.noise.shape == (3, 16, 8)
    integers = jax.eval_shape(gan.batch_sampler(lambda key, n: jnp.zeros((n, 2), dtype=int), 3, 4), KEY)
    assert integers.noise.dtype == jnp.result_type(float)


def test_batch_sampler_errors():
    with pytest.raises(ValueError, match="noise_dim"):
        gan.batch_sampler(sample_real, 0, 4)
    with pytest.raises(ValueError, match="batch_size"):
        gan.batch_sampler(sample_real, 2, 2.5)
    with pytest.raises(TypeError, match="sample_real"):
        gan.batch_sampler(None, 2, 4)
    with pytest.raises(ValueError, match="leading axis n = 4"):
        gan.batch_sampler(lambda key, n: jnp.zeros((n + 1, 2)), 2, 4)(KEY)


# ---------------------------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize("weight", [-1.0, math.nan, math.inf, "1"])
def test_bad_weight(weight):
    with pytest.raises(ValueError, match="weight"):
        gan.gradient_penalty(gan.wgan(), weight)
    with pytest.raises(ValueError, match="weight"):
        gan.zero_gp(gan.wgan(), weight)
    with pytest.raises(ValueError, match="weight"):
        gan.wgan_gp(weight)


@pytest.mark.parametrize("center", [-0.5, math.nan, math.inf])
def test_bad_center(center):
    with pytest.raises(ValueError, match="center"):
        gan.gradient_penalty(gan.wgan(), 1.0, center=center)


@pytest.mark.parametrize("at", ["interpolate", None, "REAL"])
def test_bad_points(at):
    with pytest.raises(ValueError, match=r"at must be one of \('real', 'fake', 'interpolates'\)"):
        gan.gradient_penalty(gan.wgan(), 1.0, at=at)
    with pytest.raises(ValueError, match="at must be one of"):
        gan.zero_gp(gan.wgan(), 1.0, at=at)


def test_loss_must_be_a_gan_loss():
    with pytest.raises(TypeError, match=r"call it: e\.g\. gj\.gan\.wgan\(\)"):
        gan.gradient_penalty(gan.wgan, 1.0)
    with pytest.raises(TypeError, match="GANLoss"):
        gan.game("wgan", generator_apply, discriminator_apply)
    with pytest.raises(TypeError, match="discriminator_apply"):
        gan.game(gan.wgan(), generator_apply, None)


def test_penalty_input_errors():
    mismatched = gan.GANBatch(jnp.ones((3, 1)), jnp.ones((3, 2)), KEY)
    with pytest.raises(ValueError, match="shape of the real batch"):
        gan.wgan_gp().discriminator(identity_generator, lambda x: x[:, 0], mismatched)
    integers = gan.GANBatch(jnp.ones((3, 1), dtype=int), jnp.ones((3, 1)), KEY)
    with pytest.raises(ValueError, match="floating-point"):
        gan.zero_gp(gan.wgan(), 1.0).discriminator(identity_generator, lambda x: x[:, 0] * 1.0, integers)
