"""The lookahead paper's conv GANs (gj.flax.DCGAN*/ResNet*): the tables' layers and parameter counts, shapes,
PyTorch's layer semantics, spectral normalization, and model state threaded once per step by every method."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from methods import METHODS
from test_flax import FAMILIES

import gamejax as gj
from gamejax.flax import DCGANDiscriminator, DCGANGenerator, ResNetDiscriminator, ResNetGenerator, SpectralNorm

# ---------------------------------------------------------------------------------------------
# The tables, transcribed by hand: (kernel h, kernel w, in, out, bias) per convolution or linear
# layer (a linear layer is a 1×1 kernel), and the channels of each BatchNorm (a scale and an offset).


def _conv(k, n_in, n_out, bias):
    return k * k * n_in * n_out + (n_out if bias else 0)


# Table 5, generator: z 128 → tconv 3×3 512 → BN → tconv 4×4 256 → BN → tconv 4×4 128 → BN → tconv 4×4 1.
DCGAN_G = [_conv(3, 128, 512, False), 2 * 512, _conv(4, 512, 256, False), 2 * 256, _conv(4, 256, 128, False)]
DCGAN_G += [2 * 128, _conv(4, 128, 1, False)]
# Table 5, discriminator: conv 4×4 64 → conv 4×4 128 → BN → conv 4×4 256 → BN → conv 3×3 1.
DCGAN_D = [_conv(4, 1, 64, False), _conv(4, 64, 128, False), 2 * 128, _conv(4, 128, 256, False), 2 * 256]
DCGAN_D += [_conv(3, 256, 1, False)]
# Tables 6–7, generator: Linear 128 → 4096; 3 × (BN, conv 3×3 256 → 256, BN, conv 3×3); BN; conv 3×3 256 → 3.
G_BLOCK = [2 * 256, _conv(3, 256, 256, True), 2 * 256, _conv(3, 256, 256, True)]
RESNET_G = [_conv(1, 128, 4096, True), *G_BLOCK * 3, 2 * 256, _conv(3, 256, 3, True)]
# Tables 6–7, discriminator: block 1 (3 → 128 with a 1×1 bypass), block 2 (1×1 bypass), blocks 3–4, Linear 128 → 1.
RESNET_D = [_conv(3, 3, 128, True), _conv(3, 128, 128, True), _conv(1, 3, 128, True)]
RESNET_D += [_conv(3, 128, 128, True), _conv(3, 128, 128, True), _conv(1, 128, 128, True)]
RESNET_D += [_conv(3, 128, 128, True)] * 4 + [_conv(1, 128, 1, True)]

PAPER_SIZES = {  # model, the table's layers, the count stated in the docstring (summed by hand)
    "DCGANGenerator": (lambda: DCGANGenerator(rngs=nnx.Rngs(0)), DCGAN_G, 3_215_104),
    "DCGANDiscriminator": (lambda: DCGANDiscriminator(rngs=nnx.Rngs(0)), DCGAN_D, 659_456),
    "ResNetGenerator": (lambda: ResNetGenerator(rngs=nnx.Rngs(0)), RESNET_G, 4_079_363),
    "ResNetDiscriminator": (lambda: ResNetDiscriminator(rngs=nnx.Rngs(0)), RESNET_D, 1_053_825),
}


def _sizes(tree):
    return [int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree)]


@pytest.mark.parametrize("name", list(PAPER_SIZES))
def test_paper_size_parameter_counts_match_the_tables(name):
    make, layers, stated = PAPER_SIZES[name]
    model = nnx.eval_shape(make)  # abstract: nothing is allocated or computed
    count = sum(_sizes(nnx.state(model, nnx.Param)))
    assert count == sum(layers) == stated
    assert nnx.state(model, nnx.Not(nnx.Param)) is not None


def test_dcgan_layer_listing_is_table_5():
    """Kernels (h, w, in, out) in order; the transposed ones are stored (h, w, out, in), as a conv's adjoint."""
    g = nnx.eval_shape(lambda: DCGANGenerator(rngs=nnx.Rngs(0)))
    d = nnx.eval_shape(lambda: DCGANDiscriminator(rngs=nnx.Rngs(0)))
    assert [tuple(layer.kernel.shape) for layer in g.layers] == [
        (3, 3, 512, 128),
        (4, 4, 256, 512),
        (4, 4, 128, 256),
        (4, 4, 1, 128),
    ]
    assert [(layer.strides, layer.padding) for layer in g.layers][1:] == [
        ((2, 2), ((2, 2), (2, 2))),  # PyTorch pad 1 = lax.conv_transpose pad k − 1 − 1
        ((2, 2), ((3, 3), (3, 3))),  # pad 0
        ((2, 2), ((2, 2), (2, 2))),  # pad 1
    ]
    assert [norm.num_features for norm in g.norms] == [512, 256, 128]
    assert [tuple(layer.kernel.shape) for layer in d.layers] == [
        (4, 4, 1, 64),
        (4, 4, 64, 128),
        (4, 4, 128, 256),
        (3, 3, 256, 1),
    ]
    assert [norm.num_features for norm in d.norms] == [128, 256]
    assert all(layer.bias is None for layer in [*g.layers, *d.layers])


def test_resnet_layer_listing_is_tables_6_and_7():
    g = nnx.eval_shape(lambda: ResNetGenerator(rngs=nnx.Rngs(0)))
    d = nnx.eval_shape(lambda: ResNetDiscriminator(rngs=nnx.Rngs(0)))
    assert g.dense.kernel.shape == (128, 4096) and len(g.blocks) == 3 and g.out.kernel.shape == (3, 3, 256, 3)
    assert all(b.conv1.kernel.shape == b.conv2.kernel.shape == (3, 3, 256, 256) for b in g.blocks)
    shapes = [
        (b.conv1.layer.kernel.shape, b.conv2.layer.kernel.shape, b.bypass and b.bypass.layer.kernel.shape)
        for b in d.blocks
    ]
    assert shapes == [
        ((3, 3, 3, 128), (3, 3, 128, 128), (1, 1, 3, 128)),
        ((3, 3, 128, 128), (3, 3, 128, 128), (1, 1, 128, 128)),
        ((3, 3, 128, 128), (3, 3, 128, 128), None),
        ((3, 3, 128, 128), (3, 3, 128, 128), None),
    ]
    assert [(b.first, b.down) for b in d.blocks] == [(True, True), (False, True), (False, False), (False, False)]
    assert d.out.layer.kernel.shape == (128, 1)


def test_initialization_is_pytorchs_default_for_the_dcgan_and_xavier_for_the_resnets():
    """App. H.2.1: PyTorch's default, U(±1/√fan_in) with fan_in = out·k² for a transposed conv; Table 7: Xavier."""

    def check_uniform(kernel, bound):
        kernel = np.asarray(kernel, np.float64)
        assert np.max(np.abs(kernel)) <= bound and np.max(np.abs(kernel)) > 0.95 * bound
        assert abs(np.var(kernel) / (bound**2 / 3) - 1) < 0.1  # the variance of U(−b, b)

    g = DCGANGenerator(16, width=4, rngs=nnx.Rngs(0))  # layer 1: transposed conv 4×4, 32 → 16 channels
    check_uniform(g.layers[1].kernel[...], 1 / np.sqrt(16 * 4 * 4))
    d = DCGANDiscriminator(width=4, rngs=nnx.Rngs(0))  # layer 2: conv 4×4, 8 → 16 channels
    check_uniform(d.layers[2].kernel[...], 1 / np.sqrt(8 * 4 * 4))
    r = ResNetDiscriminator(width=16, resolution=8, rngs=nnx.Rngs(0))  # conv 3×3, 16 → 16, and a 1×1 bypass
    check_uniform(r.blocks[1].conv1.layer.kernel[...], np.sqrt(6 / (16 * 9 + 16 * 9)))
    check_uniform(r.blocks[1].bypass.layer.kernel[...], np.sqrt(2) * np.sqrt(6 / (16 + 16)))
    assert np.all(np.asarray(r.blocks[1].conv1.layer.bias[...]) == 0)


# ---------------------------------------------------------------------------------------------
# Shapes at CPU sizes (abstract evaluation: nothing is compiled).


def _abstract(make, method, *args):
    """``method(module, *args)`` on the module ``make()`` builds, both evaluated abstractly: nothing is computed."""
    graphdef, state = nnx.split(nnx.eval_shape(make))
    return jax.eval_shape(lambda state, *args: method(nnx.merge(graphdef, state), *args), state, *args)


@functools.partial(jax.jit, static_argnums=0)
def _run(graphdef, state, *args):
    merged = nnx.merge(graphdef, state)
    return merged(*args), nnx.state(merged)


def _call(module, *args):
    """``module(*args)`` compiled, updating the module's state as an eager call would."""
    graphdef, state = nnx.split(module)
    out, state = _run(graphdef, state, *args)
    nnx.update(module, state)
    return out


def _spec(*shape):
    return jax.ShapeDtypeStruct(shape, jnp.float32)


def _layer_by_layer(g, z):
    x = jnp.reshape(z, (z.shape[0], 1, 1, z.shape[1]))
    sides = []
    for layer in g.layers:
        x = layer(x)
        sides.append(x.shape[1])
    return sides


@pytest.mark.parametrize("resolution, channels, spatial", [(28, 1, [3, 6, 14, 28]), (32, 3, [4, 8, 16, 32])])
def test_dcgan_shapes(resolution, channels, spatial):
    """The spatial size after each transposed convolution: (h − 1)·s − 2p + k, as PyTorch's ConvTranspose2d."""

    def g():
        return DCGANGenerator(8, width=2, channels=channels, resolution=resolution, rngs=nnx.Rngs(0))

    def d():
        return DCGANDiscriminator(width=2, channels=channels, resolution=resolution, rngs=nnx.Rngs(1))

    def call(module, x):
        return module(x)

    sides = []
    _abstract(g, lambda module, z: sides.extend(_layer_by_layer(module, z)), _spec(5, 8))
    assert sides == spatial
    assert _abstract(g, call, _spec(5, 8)).shape == (5, resolution, resolution, channels)
    assert _abstract(d, call, _spec(5, resolution, resolution, channels)).shape == (5, 1)
    with pytest.raises(ValueError, match=rf"\(batch, {resolution}, {resolution}, {channels}\)"):
        _abstract(d, call, _spec(5, resolution + 1, resolution + 1, channels))
    with pytest.raises(ValueError, match=r"noise of shape \(batch, 8\)"):
        _abstract(g, call, _spec(5, 7))


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_resnet_shapes(resolution):
    def g():
        return ResNetGenerator(8, width=4, channels=3, resolution=resolution, rngs=nnx.Rngs(0))

    def d():
        return ResNetDiscriminator(width=4, channels=3, resolution=resolution, rngs=nnx.Rngs(1))

    def call(module, x):
        return module(x)

    assert len(nnx.eval_shape(g).blocks) == {8: 1, 16: 2, 32: 3}[resolution]  # resolution = 4 · 2^blocks
    assert _abstract(g, call, _spec(5, 8)).shape == (5, resolution, resolution, 3)
    assert _abstract(d, call, _spec(5, resolution, resolution, 3)).shape == (5, 1)
    with pytest.raises(ValueError, match=rf"\(batch, {resolution}, {resolution}, 3\)"):
        _abstract(d, call, _spec(5, resolution, resolution, 1))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: DCGANGenerator(rngs=nnx.Rngs(0), resolution=64), "resolution must be 28"),
        (lambda: DCGANDiscriminator(rngs=nnx.Rngs(0), width=0), "width must be an int >= 1"),
        (lambda: ResNetGenerator(rngs=nnx.Rngs(0), resolution=24), r"resolution must be 4·2\^n"),
        (lambda: ResNetDiscriminator(rngs=nnx.Rngs(0), resolution=4), r"resolution must be 4·2\^n"),
        (lambda: ResNetGenerator(0, rngs=nnx.Rngs(0)), "noise_dim must be an int >= 1"),
        (lambda: DCGANGenerator(rngs=nnx.Rngs(0), channels=2.0), "channels must be an int >= 1"),
    ],
)
def test_bad_arguments_name_the_argument(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---------------------------------------------------------------------------------------------
# Layer semantics against independent computations.


def test_transposed_convolutions_are_the_adjoints_of_convolutions():
    """PyTorch defines ConvTranspose2d(stride s, padding p) as the gradient of Conv2d(s, p) w.r.t. its input.

    Table 5's generator layers at 28×28 (the middle two's paddings as the docstring derives them):
    kernel, stride, PyTorch padding and input side of each.
    """
    layers = DCGANGenerator(3, width=1, rngs=nnx.Rngs(0)).layers
    geometry = [(3, 1, 0, 1), (4, 2, 1, 3), (4, 2, 0, 6), (4, 2, 1, 14)]
    kernels = [jnp.asarray(layer.kernel[...], jnp.float64) for layer in layers]  # (k, k, out, in): a conv out → in
    inputs = [
        jax.random.normal(jax.random.key(i), (2, side, side, w.shape[3]), jnp.float64)
        for i, (w, (_, _, _, side)) in enumerate(zip(kernels, geometry, strict=True))
    ]

    @jax.jit
    def both(inputs):
        pairs = []
        for layer, w, x, (kernel, stride, pad, side) in zip(layers, kernels, inputs, geometry, strict=True):
            big = (side - 1) * stride - 2 * pad + kernel

            def conv(y, w=w, stride=stride, pad=pad):
                return jax.lax.conv_general_dilated(
                    y, w, (stride, stride), ((pad, pad), (pad, pad)), dimension_numbers=("NHWC", "HWIO", "NHWC")
                )

            _, adjoint = jax.vjp(conv, jnp.zeros((2, big, big, w.shape[2]), jnp.float64))
            pairs.append((layer(x), adjoint(x)[0]))
        return pairs

    for (ours, expected), w, (kernel, stride, pad, side) in zip(both(inputs), kernels, geometry, strict=True):
        assert w.shape[:2] == (kernel, kernel)
        assert ours.shape == (
            2,
            (side - 1) * stride - 2 * pad + kernel,
            (side - 1) * stride - 2 * pad + kernel,
            w.shape[2],
        )
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_spectral_norm_divides_by_the_largest_singular_value_and_keeps_the_kernel():
    conv = nnx.Conv(3, 5, (3, 3), padding=((1, 1), (1, 1)), rngs=nnx.Rngs(0))
    kernel = np.asarray(conv.kernel[...], np.float64)
    _, singular, right = np.linalg.svd(kernel.reshape(-1, 5))
    layer = SpectralNorm(conv, rngs=nnx.Rngs(1))
    layer.u[...] = jnp.asarray(right[0], jnp.float32)  # the converged power iteration: the top right singular vector
    x = jax.random.normal(jax.random.key(0), (2, 6, 6, 3), jnp.float32)
    out = _call(layer, x)
    np.testing.assert_array_equal(layer.layer.kernel[...], kernel.astype(np.float32))  # the params are untouched
    np.testing.assert_allclose(np.abs(layer.u[...]), np.abs(right[0]), rtol=1e-4, atol=1e-6)
    bias = np.asarray(conv.bias[...], np.float64)[None, None, None, :]
    expected = (
        jax.lax.conv_general_dilated(
            np.asarray(x, np.float64),
            kernel / singular[0],
            (1, 1),
            ((1, 1), (1, 1)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        + bias
    )
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    # A strided, padded conv gives what nnx.Conv gives with the kernel W/σ.
    strided = nnx.Conv(3, 5, (3, 3), (2, 2), padding=((2, 1), (0, 1)), rngs=nnx.Rngs(0))
    normalized = SpectralNorm(strided, rngs=nnx.Rngs(1))
    normalized.u[...] = jnp.asarray(right[0], jnp.float32)
    out_strided = _call(normalized, x)
    strided.kernel[...] = jnp.asarray(kernel / singular[0], jnp.float32)
    np.testing.assert_allclose(out_strided, _call(strided, x), rtol=1e-4, atol=1e-6)
    # The same weights on every call (nnx.SpectralNorm writes W/σ into the kernel and normalizes it again).
    np.testing.assert_allclose(_call(layer, x), out, rtol=1e-5, atol=1e-6)
    u = np.asarray(layer.u[...])
    layer.eval()
    _call(layer, x)
    np.testing.assert_array_equal(layer.u[...], u)  # evaluation mode: u is read only


def test_spectral_norm_power_iteration_from_a_random_vector():
    """One call = one step: u ← Wᵀv/‖Wᵀv‖ with v = Wu/‖Wu‖, and σ = vᵀWu, computed here by hand in float64."""
    linear = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
    layer = SpectralNorm(linear, rngs=nnx.Rngs(2))
    w = np.asarray(linear.kernel[...], np.float64)
    u = np.asarray(layer.u[...], np.float64)
    v = w @ u / np.linalg.norm(w @ u)
    new_u = w.T @ v / np.linalg.norm(w.T @ v)
    x = np.asarray(jax.random.normal(jax.random.key(3), (2, 4), jnp.float32), np.float64)
    out = _call(layer, jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(layer.u[...], new_u, rtol=1e-5)
    expected = x @ (w / (v @ w @ new_u)) + np.asarray(linear.bias[...], np.float64)[None, :]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Model state, threaded once per step by every method family (as the MLP's in tests/test_flax.py).

NOISE, BATCH = 4, 4
PAIRS = {  # the paper's pairings and losses, at CPU sizes: BatchNorm in both DCGAN players; BatchNorm in G, SN in D
    "dcgan": (
        lambda: (DCGANGenerator(NOISE, width=1, rngs=nnx.Rngs(0)), DCGANDiscriminator(width=1, rngs=nnx.Rngs(1))),
        gj.gan.non_saturating(),
        (28, 1),
    ),
    "resnet": (
        lambda: (
            ResNetGenerator(NOISE, width=1, resolution=8, rngs=nnx.Rngs(0)),
            ResNetDiscriminator(width=1, resolution=8, rngs=nnx.Rngs(1)),
        ),
        gj.gan.hinge(),
        (8, 3),
    ),
}


def _batch(seed, side, channels):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    real = jax.random.uniform(k1, (BATCH, side, side, channels), jnp.float32, -1.0, 1.0)
    return gj.gan.GANBatch(real, jax.random.normal(k2, (BATCH, NOISE), jnp.float32) + 0.5, k3)


@pytest.fixture(scope="module", params=list(PAIRS))
def pair_and_references(request):
    """A pair, its game, and the reference states: the modules' own state after each loss once (as test_flax's)."""
    make, loss, (side, channels) = PAIRS[request.param]
    pair = gj.flax.split(*make())
    leaves = jax.tree.leaves(pair.model_state, is_leaf=lambda v: isinstance(v, nnx.Variable))
    assert {type(v).__name__ for v in leaves} == {"BatchStat"}

    @jax.jit
    def after_one_forward(params, model_state, batch):
        g, d = pair.merge(params, model_state)
        loss.generator(g, d, batch)
        loss.discriminator(g, d, batch)
        return gj.Players(nnx.state(g, nnx.Not(nnx.Param)), nnx.state(d, nnx.Not(nnx.Param)))

    batches = [_batch(seed, side, channels) for seed in range(2)]
    other = jax.tree.map(lambda p: 1.1 * p, pair.params)  # the second step starts elsewhere
    first = after_one_forward(pair.params, pair.model_state, batches[0])
    second = after_one_forward(other, first, batches[1])
    for a, b in zip(jax.tree.leaves((pair.model_state, first)), jax.tree.leaves((first, second)), strict=True):
        assert a.size == 1 or not np.allclose(a, b)  # every statistic and power-iteration vector moves each step
    # The game's field and update, compiled once and shared by every method's trace (jit changes no value).
    game = pair.game(loss)
    game = gj.StatefulGame(jax.jit(game.fn), jax.jit(game.advance), game.zero_sum, game.name)
    return pair, game, batches, other, first, second


@pytest.mark.parametrize("name", FAMILIES)
def test_every_method_advances_conv_model_state_once_per_step(name, pair_and_references):
    """BatchNorm statistics and power-iteration vectors after a step: those after one forward of each loss.

    Stale statistics (never updated) and statistics updated per evaluation (extragradient's extra
    one, lookahead's, CGD's products) both fail. The compiled program returns the model state only,
    so XLA drops the params' update, which the model state does not depend on.
    """
    pair, game, batches, other, first, second = pair_and_references
    tx = METHODS[name].build(0.01)
    step = gj.make_step(game, tx)
    model_state_after = jax.jit(lambda p, s, b: step(p, s, b)[1].model_state)
    state = gj.init_state(game, tx, pair.params, pair.model_state)
    chex.assert_trees_all_close(model_state_after(pair.params, state, batches[0]), first, rtol=2e-5, atol=1e-6)
    state = gj.WithModelState(gj.init_state(game, tx, other, first).tx_state, first)
    chex.assert_trees_all_close(model_state_after(other, state, batches[1]), second, rtol=2e-5, atol=1e-6)
