"""The lookahead paper's convolutional GANs as Flax NNX modules: its DCGAN (Table 5) and ResNets (Tables 6–7).

Images are NHWC (``(batch, height, width, channels)``) in ``[-1, 1]``; generators map ``(batch,
noise_dim)`` noise to images, discriminators map images to ``(batch, 1)`` logits (the sigmoid of
Table 5's last layer is inside :func:`gamejax.gan.non_saturating`). BatchNorm statistics and the
spectral norm's power-iteration vectors are ``nnx.BatchStat`` variables: :func:`gamejax.flax.split`
makes them model state, threaded once per step by every method (docs/design.md §5). NNX modules
start in training mode; ``module.eval()`` (or ``pair.merge(..., train=False)``) switches BatchNorm to
its running averages and freezes the power iteration.

Every default is the paper's size; ``width``, ``resolution`` and ``channels`` shrink the networks
for a CPU. The parameter counts at the paper's sizes are in each class's docstring.

References:
  Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
  ICLR 2021, App. H.2, Tables 5–7.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

# PyTorch's default initialization (lookahead paper, App. H.2.1, for the DCGAN): weights uniform on
# ±1/√fan_in, i.e. Kaiming-uniform with a = √5. For a transposed convolution PyTorch's fan_in is
# out_channels·k·k; with ``transpose_kernel=True`` the NNX kernel is (k, k, out, in), whose default
# fan-in axis (-2) is that same out_channels.
_TORCH_DEFAULT = nnx.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")
_XAVIER = nnx.initializers.variance_scaling(1.0, "fan_avg", "uniform")  # Glorot & Bengio, gain 1
_XAVIER_SQRT2 = nnx.initializers.variance_scaling(2.0, "fan_avg", "uniform")  # gain √2
_BATCH_NORM_MOMENTUM = 0.9  # PyTorch's BatchNorm momentum 0.1, in Flax's convention (1 − 0.1)
_NEGATIVE_SLOPE = 0.2  # Table 5's LeakyReLU


def _check_size(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}.")
    return value


def _check_images(name: str, images: jax.Array, resolution: int, channels: int) -> None:
    expected = (resolution, resolution, channels)
    if jnp.ndim(images) != 4 or tuple(jnp.shape(images)[1:]) != expected:
        raise ValueError(
            f"{name} takes NHWC images of shape (batch, {resolution}, {resolution}, {channels}); got shape "
            f"{jnp.shape(images)}. Build it with resolution= and channels= matching the data "
            "(e.g. gj.data.digits(size=28).images is (n, 28, 28, 1))."
        )


def _check_noise(name: str, noise: jax.Array, noise_dim: int) -> None:
    if jnp.ndim(noise) != 2 or jnp.shape(noise)[1] != noise_dim:
        raise ValueError(f"{name} takes noise of shape (batch, {noise_dim}); got shape {jnp.shape(noise)}.")


def _batch_norm(features: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(features, momentum=_BATCH_NORM_MOMENTUM, epsilon=1e-5, rngs=rngs)


def _transposed(n_in: int, n_out: int, kernel: int, stride: int, pad: int, rngs: nnx.Rngs) -> nnx.ConvTranspose:
    """PyTorch's ``ConvTranspose2d(n_in, n_out, kernel, stride, pad, bias=False)``: output ``(h−1)·s − 2p + k``.

    ``transpose_kernel=True`` makes it the adjoint of a convolution with the same stride and padding
    ``pad``; ``lax.conv_transpose`` pads the stride-dilated input by ``k − 1 − pad`` on each side.
    """
    edge = kernel - 1 - pad
    return nnx.ConvTranspose(
        n_in,
        n_out,
        (kernel, kernel),
        (stride, stride),
        padding=((edge, edge), (edge, edge)),
        use_bias=False,
        transpose_kernel=True,
        kernel_init=_TORCH_DEFAULT,
        rngs=rngs,
    )


def _conv(n_in: int, n_out: int, kernel: int, stride: int, pad: int, rngs: nnx.Rngs, **kwargs) -> nnx.Conv:
    """PyTorch's ``Conv2d(n_in, n_out, kernel, stride, pad)``: output ``⌊(h + 2p − k)/s⌋ + 1``."""
    return nnx.Conv(
        n_in, n_out, (kernel, kernel), (stride, stride), padding=((pad, pad), (pad, pad)), rngs=rngs, **kwargs
    )


class SpectralNorm(nnx.Module):
    """A linear or convolutional layer applied with its kernel divided by its largest singular value.

    Miyato et al.'s spectral normalization as PyTorch's ``spectral_norm`` applies it (the lookahead
    paper's ResNet discriminator, Tables 6–7): the kernel, reshaped to a ``(fan_in, out)`` matrix
    ``W``, is used as ``W / σ`` with ``σ = vᵀ W u`` after one power-iteration step from the stored
    ``u`` (``v = W u / ‖W u‖``, ``u ← Wᵀ v / ‖Wᵀ v‖``, both vectors outside the gradient). ``u`` is an
    ``nnx.BatchStat`` (model state); in training mode every call stores the new ``u``, in evaluation
    mode (``module.eval()``) it is read only and the call writes nothing.

    The wrapped layer's params are never written: ``nnx.SpectralNorm`` (Flax 0.12) stores ``W / σ``
    into the kernel, so that a second call (a discriminator on the real, then the fake batch)
    normalizes the normalized kernel again; here every call applies the same ``W / σ``.

    Args:
      layer: an ``nnx.Linear`` or an ``nnx.Conv`` (its strides, padding, dilations and groups are
        honoured; ``"CIRCULAR"`` padding is not supported).
      rngs: draws the initial ``u ~ N(0, I)``, normalized.
      epsilon: added to the norms before dividing.

    Example:
      >>> from flax import nnx
      >>> layer = SpectralNorm(nnx.Linear(4, 3, rngs=nnx.Rngs(0)), rngs=nnx.Rngs(1))
      >>> layer(jnp.ones((2, 4))).shape
      (2, 3)

    References:
      Miyato et al, `Spectral Normalization for Generative Adversarial Networks
      <https://arxiv.org/abs/1802.05957>`_, ICLR 2018, Algorithm 1.
    """

    def __init__(self, layer: nnx.Linear | nnx.Conv, *, rngs: nnx.Rngs, epsilon: float = 1e-12):
        if not isinstance(layer, (nnx.Linear, nnx.Conv)):
            raise TypeError(f"layer must be an nnx.Linear or nnx.Conv; got {type(layer).__name__}.")
        if isinstance(layer, nnx.Conv) and isinstance(layer.padding, str) and layer.padding.upper() == "CIRCULAR":
            raise ValueError("layer must not use CIRCULAR padding: pad the input with jnp.pad(..., mode='wrap').")
        self.layer = layer
        n_out = layer.kernel.shape[-1]
        u = jax.random.normal(rngs.params(), (n_out,), jnp.float32)
        self.u = nnx.BatchStat(u / jnp.linalg.norm(u))
        self.epsilon = epsilon
        self.use_running_average = False  # nnx's train()/eval() switch: True freezes u

    def sigma(self) -> tuple[jax.Array, jax.Array]:
        """``(σ, u)``: the estimated largest singular value of the kernel, and ``u`` after one power-iteration step."""
        kernel = self.layer.kernel[...]
        matrix = jnp.reshape(kernel, (-1, kernel.shape[-1]))
        u = self.u[...].astype(matrix.dtype)
        v = matrix @ u
        v = jax.lax.stop_gradient(v / (jnp.linalg.norm(v) + self.epsilon))
        u = matrix.T @ v
        u = jax.lax.stop_gradient(u / (jnp.linalg.norm(u) + self.epsilon))
        return v @ matrix @ u, u

    def __call__(self, x: jax.Array) -> jax.Array:
        sigma, u = self.sigma()
        if not self.use_running_average:
            self.u[...] = u.astype(self.u[...].dtype)
        layer = self.layer
        kernel = layer.kernel[...] / sigma
        if isinstance(layer, nnx.Linear):
            y = x @ kernel
        else:
            spatial = len(layer.kernel_size)

            def per_axis(value):
                return (1,) * spatial if value is None else ((value,) * spatial if isinstance(value, int) else value)

            padding = layer.padding
            if isinstance(padding, int):
                padding = ((padding, padding),) * spatial
            elif not isinstance(padding, str):
                padding = tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)
            layout = "N" + "HWD"[:spatial] + "C"
            y = jax.lax.conv_general_dilated(
                x,
                kernel,
                per_axis(layer.strides),
                padding,
                lhs_dilation=per_axis(layer.input_dilation),
                rhs_dilation=per_axis(layer.kernel_dilation),
                dimension_numbers=(layout, "HWD"[:spatial] + "IO", layout),
                feature_group_count=layer.feature_group_count,
            )
        if layer.bias is not None:
            y = y + jnp.reshape(layer.bias[...], (1,) * (y.ndim - 1) + (-1,))
        return y


def _upsample(x: jax.Array) -> jax.Array:
    """Nearest-neighbour ×2 (PyTorch's default ``Upsample(scale_factor=2)``, Table 6)."""
    return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _avg_pool(x: jax.Array) -> jax.Array:
    """2×2 average pooling with stride 2 (Table 6)."""
    b, h, w, c = x.shape
    return jnp.mean(jnp.reshape(x, (b, h // 2, 2, w // 2, 2, c)), axis=(2, 4))


# --------------------------------------------------------------------------------------------------
# DCGAN (Table 5)

# resolution -> (kernel of the generator's first and the discriminator's last layer, paddings of the
# generator's three stride-2 transposed convolutions).
_DCGAN_GEOMETRY = {28: (3, (1, 0, 1)), 32: (4, (1, 1, 1))}


def _dcgan_geometry(resolution: object) -> tuple[int, tuple[int, int, int]]:
    if not isinstance(resolution, int) or isinstance(resolution, bool) or resolution not in _DCGAN_GEOMETRY:
        raise ValueError(
            f"resolution must be 28 (the paper's MNIST DCGAN, Table 5) or 32 (the same network with 4×4 end "
            f"kernels: 1 → 4 → 8 → 16 → 32); got {resolution!r}. Resize the images to one of these."
        )
    return _DCGAN_GEOMETRY[resolution]


class DCGANGenerator(nnx.Module):
    """The DCGAN generator of the lookahead paper's MNIST experiments (Table 5).

    Layers, at the defaults (``w = width = 64``; transposed convolutions without bias, PyTorch's
    ``ConvTranspose2d`` padding semantics; spatial sizes 1 → 3 → 6 → 14 → 28)::

      z ∈ R^128, as a 1×1 image
      transposed conv 3×3, 128 → 8w = 512, stride 1, pad 0        → 3×3
      BatchNorm, ReLU
      transposed conv 4×4, 8w → 4w = 256, stride 2, pad 1         → 6×6
      BatchNorm, ReLU
      transposed conv 4×4, 4w → 2w = 128, stride 2, pad 0         → 14×14
      BatchNorm, ReLU
      transposed conv 4×4, 2w → channels = 1, stride 2, pad 1     → 28×28
      tanh

    **3,215,104 parameters** at the defaults: the four kernels 589,824 + 2,097,152 + 524,288 + 2,048
    and the three BatchNorms' scales and offsets 1,024 + 512 + 256. Table 5 states no padding for the
    two middle layers, but only ``(1, 0)`` or ``(0, 2)`` give its 28×28 output; gamejax uses
    ``(1, 0)``, the authors' released MNIST code, which also has no biases (every layer but the last
    is followed by BatchNorm). ``resolution=32`` gives the same network with a 4×4 first kernel and
    paddings ``(1, 1, 1)`` (1 → 4 → 8 → 16 → 32). Weights start as PyTorch's defaults (App. H.2.1:
    uniform on ``±1/√fan_in``); BatchNorm uses PyTorch's momentum 0.1 and ε = 10⁻⁵.

    Args:
      noise_dim: the noise size (Table 5: 128).
      rngs: ``nnx.Rngs`` for the initialization.
      width: ``w``; the hidden layers have ``8w``, ``4w`` and ``2w`` channels (Table 5: 64).
      channels: the image channels (1 for grey, 3 for RGB).
      resolution: 28 (Table 5) or 32.

    Example:
      >>> from flax import nnx
      >>> G = DCGANGenerator(16, width=8, rngs=nnx.Rngs(0))
      >>> G(jnp.zeros((2, 16))).shape
      (2, 28, 28, 1)

    References:
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      ICLR 2021, Table 5. Radford et al, `Unsupervised Representation Learning with Deep Convolutional
      Generative Adversarial Networks <https://arxiv.org/abs/1511.06434>`_, ICLR 2016.
    """

    def __init__(
        self, noise_dim: int = 128, *, rngs: nnx.Rngs, width: int = 64, channels: int = 1, resolution: int = 28
    ):
        self.noise_dim = _check_size("noise_dim", noise_dim)
        width = _check_size("width", width)
        self.channels = _check_size("channels", channels)
        first, pads = _dcgan_geometry(resolution)
        self.resolution = resolution
        sizes = (noise_dim, 8 * width, 4 * width, 2 * width, channels)
        kernels, strides = (first, 4, 4, 4), (1, 2, 2, 2)
        self.layers = nnx.List(
            [
                _transposed(a, b, k, s, p, rngs)
                for a, b, k, s, p in zip(sizes[:-1], sizes[1:], kernels, strides, (0, *pads), strict=True)
            ]
        )
        self.norms = nnx.List([_batch_norm(n, rngs) for n in sizes[1:-1]])

    def __call__(self, noise: jax.Array) -> jax.Array:
        _check_noise("DCGANGenerator", noise, self.noise_dim)
        x = jnp.reshape(noise, (noise.shape[0], 1, 1, self.noise_dim))
        for layer, norm in zip(self.layers[:-1], self.norms, strict=True):
            x = jax.nn.relu(norm(layer(x)))
        return jnp.tanh(self.layers[-1](x))


class DCGANDiscriminator(nnx.Module):
    """The DCGAN discriminator of the lookahead paper's MNIST experiments (Table 5).

    Layers, at the defaults (``w = width = 64``; convolutions without bias; spatial sizes
    28 → 14 → 7 → 3 → 1)::

      x ∈ R^{28×28×1}
      conv 4×4, channels = 1 → w = 64, stride 2, pad 1             → 14×14
      LeakyReLU(0.2)
      conv 4×4, w → 2w = 128, stride 2, pad 1                      → 7×7
      BatchNorm, LeakyReLU(0.2)
      conv 4×4, 2w → 4w = 256, stride 2, pad 1                     → 3×3
      BatchNorm, LeakyReLU(0.2)
      conv 3×3, 4w → 1, stride 1, pad 0                            → 1×1: the logit

    **659,456 parameters** at the defaults: the four kernels 1,024 + 131,072 + 524,288 + 2,304 and
    the two BatchNorms' 256 + 512. Table 5's final sigmoid is left to the loss (logits in, as
    :func:`gamejax.gan.non_saturating` takes them). No biases, as the authors' released MNIST code;
    PyTorch's default initialization (App. H.2.1). ``resolution=32`` ends with a 4×4 kernel
    (32 → 16 → 8 → 4 → 1).

    Args:
      rngs: ``nnx.Rngs`` for the initialization.
      width: ``w``; the layers have ``w``, ``2w`` and ``4w`` channels (Table 5: 64).
      channels: the image channels.
      resolution: 28 (Table 5) or 32.

    Example:
      >>> from flax import nnx
      >>> D = DCGANDiscriminator(width=8, rngs=nnx.Rngs(0))
      >>> D(jnp.zeros((2, 28, 28, 1))).shape
      (2, 1)

    References:
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      ICLR 2021, Table 5.
    """

    def __init__(self, *, rngs: nnx.Rngs, width: int = 64, channels: int = 1, resolution: int = 28):
        width = _check_size("width", width)
        self.channels = _check_size("channels", channels)
        last, _ = _dcgan_geometry(resolution)
        self.resolution = resolution
        sizes = (channels, width, 2 * width, 4 * width, 1)
        kernels, strides, pads = (4, 4, 4, last), (2, 2, 2, 1), (1, 1, 1, 0)
        self.layers = nnx.List(
            [
                _conv(a, b, k, s, p, rngs, use_bias=False, kernel_init=_TORCH_DEFAULT)
                for a, b, k, s, p in zip(sizes[:-1], sizes[1:], kernels, strides, pads, strict=True)
            ]
        )
        self.norms = nnx.List([_batch_norm(n, rngs) for n in sizes[2:-1]])

    def __call__(self, images: jax.Array) -> jax.Array:
        _check_images("DCGANDiscriminator", images, self.resolution, self.channels)
        x = jax.nn.leaky_relu(self.layers[0](images), _NEGATIVE_SLOPE)
        for layer, norm in zip(self.layers[1:-1], self.norms, strict=True):
            x = jax.nn.leaky_relu(norm(layer(x)), _NEGATIVE_SLOPE)
        return jnp.reshape(self.layers[-1](x), (images.shape[0], 1))


# --------------------------------------------------------------------------------------------------
# ResNets (Tables 6–7)


def _resnet_blocks(resolution: object) -> int:
    """The number of generator blocks: ``resolution = 4 · 2^blocks``, at least one block."""
    ok = isinstance(resolution, int) and not isinstance(resolution, bool) and resolution >= 8
    blocks = int(round(math.log2(resolution / 4))) if ok else 0
    if not ok or 4 * 2**blocks != resolution:
        raise ValueError(
            f"resolution must be 4·2^n with n >= 1 (8, 16, 32 = Table 7, 64, ...): the generator starts at 4×4 and "
            f"doubles per block; got {resolution!r}."
        )
    return blocks


class _GBlock(nnx.Module):
    """Table 6, left: ``conv(ReLU(BN(conv(up(ReLU(BN(x))))))) + up(x)``, 3×3 convolutions with pad 1."""

    def __init__(self, width: int, rngs: nnx.Rngs):
        self.norm1 = _batch_norm(width, rngs)
        self.conv1 = _conv(width, width, 3, 1, 1, rngs, kernel_init=_XAVIER)
        self.norm2 = _batch_norm(width, rngs)
        self.conv2 = _conv(width, width, 3, 1, 1, rngs, kernel_init=_XAVIER)

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.conv1(_upsample(jax.nn.relu(self.norm1(x))))
        return self.conv2(jax.nn.relu(self.norm2(h))) + _upsample(x)


class _DBlock(nnx.Module):
    """Table 6, right: two spectrally normalized 3×3 convolutions, and a 1×1 one on the bypass of a downsampling block.

    The first block (``first=True``) starts with the convolution (no ReLU on the input) and pools
    its bypass before the 1×1 convolution; a later downsampling block pools after both. A block
    that keeps the resolution and the width has an identity bypass.
    """

    def __init__(self, n_in: int, n_out: int, *, first: bool, down: bool, rngs: nnx.Rngs):
        def sn_conv(a, b, k, pad, init):
            return SpectralNorm(_conv(a, b, k, 1, pad, rngs, kernel_init=init), rngs=rngs)

        self.first, self.down = first, down
        self.conv1 = sn_conv(n_in, n_out, 3, 1, _XAVIER)
        self.conv2 = sn_conv(n_out, n_out, 3, 1, _XAVIER)
        self.bypass = sn_conv(n_in, n_out, 1, 0, _XAVIER_SQRT2) if (down or n_in != n_out) else None

    def __call__(self, x: jax.Array) -> jax.Array:
        h = self.conv1(x if self.first else jax.nn.relu(x))
        h = self.conv2(jax.nn.relu(h))
        if self.down:
            h = _avg_pool(h)
        if self.bypass is None:
            return h + x
        if self.first:
            return h + self.bypass(_avg_pool(x))
        shortcut = self.bypass(x)
        return h + (_avg_pool(shortcut) if self.down else shortcut)


class ResNetGenerator(nnx.Module):
    """The SNGAN-style ResNet generator of the lookahead paper's CIFAR-10/SVHN/ImageNet experiments (Table 7).

    Layers, at the defaults (``w = width = 256``; 3×3 convolutions with pad 1 and bias)::

      z ∈ R^128
      Linear(128 → 4·4·w = 4096), reshaped to 4×4×w
      G-ResBlock × 3 (Table 6: BN, ReLU, upsample ×2, conv w → w, BN, ReLU, conv w → w;
                      bypass: upsample ×2)                         → 8, 16, 32
      BatchNorm, ReLU
      conv 3×3, w → channels = 3, pad 1
      tanh

    **4,079,363 parameters** at the defaults: the linear layer 524,288 + 4,096; per block two convolutions
    of 589,824 + 256 and two BatchNorms of 512 (1,181,184, three times 3,543,552); the last BatchNorm 512
    and convolution 6,912 + 3. Xavier-uniform weights and zero biases (Table 7: "initialized using the
    Xavier initialization"); nearest-neighbour upsampling (Table 6). ``resolution`` sets the number of
    blocks (``resolution = 4·2^blocks``: 8 → 1 block, 16 → 2, 32 → 3).

    Args:
      noise_dim: the noise size (Table 7: 128; 512 for ImageNet).
      rngs: ``nnx.Rngs`` for the initialization.
      width: the channels of every block (Table 6: 256).
      channels: the image channels (Table 7: 3).
      resolution: the image side, ``4·2^n`` with ``n >= 1`` (Table 7: 32).

    Example:
      >>> from flax import nnx
      >>> G = ResNetGenerator(16, width=8, resolution=16, rngs=nnx.Rngs(0))
      >>> G(jnp.zeros((2, 16))).shape
      (2, 16, 16, 3)

    References:
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      ICLR 2021, Tables 6–7. Miyato et al, `Spectral Normalization for Generative Adversarial Networks
      <https://arxiv.org/abs/1802.05957>`_, ICLR 2018.
    """

    def __init__(
        self, noise_dim: int = 128, *, rngs: nnx.Rngs, width: int = 256, channels: int = 3, resolution: int = 32
    ):
        self.noise_dim = _check_size("noise_dim", noise_dim)
        self.width = _check_size("width", width)
        channels = _check_size("channels", channels)
        blocks = _resnet_blocks(resolution)
        self.dense = nnx.Linear(noise_dim, 16 * width, kernel_init=_XAVIER, rngs=rngs)
        self.blocks = nnx.List([_GBlock(width, rngs) for _ in range(blocks)])
        self.norm = _batch_norm(width, rngs)
        self.out = _conv(width, channels, 3, 1, 1, rngs, kernel_init=_XAVIER)

    def __call__(self, noise: jax.Array) -> jax.Array:
        _check_noise("ResNetGenerator", noise, self.noise_dim)
        x = jnp.reshape(self.dense(noise), (noise.shape[0], 4, 4, self.width))
        for block in self.blocks:
            x = block(x)
        return jnp.tanh(self.out(jax.nn.relu(self.norm(x))))


class ResNetDiscriminator(nnx.Module):
    """The SNGAN-style ResNet discriminator of the lookahead paper (Tables 6–7), spectrally normalized.

    Layers, at the defaults (``w = width = 128``; every convolution and the linear layer spectrally
    normalized, with bias)::

      x ∈ R^{32×32×3}
      D-ResBlock 1: conv 3×3 3 → w, ReLU, conv 3×3 w → w, avg-pool 2;
                    bypass: avg-pool 2, conv 1×1 3 → w               → 16×16
      D-ResBlock 2: ReLU, conv 3×3, ReLU, conv 3×3, avg-pool 2;
                    bypass: conv 1×1 w → w, avg-pool 2               → 8×8
      D-ResBlock 3, 4: ReLU, conv 3×3, ReLU, conv 3×3; bypass: identity
      ReLU, average pool over the 8×8 positions (Table 7's AvgPool 8×8)
      Linear(w → 1): the logit

    **1,053,825 parameters** at the defaults: block 1 has 3,456 + 128, 147,456 + 128 and 384 + 128
    (151,680); block 2 two convolutions of 147,456 + 128 and a 1×1 one of 16,384 + 128 (311,680);
    blocks 3 and 4 two of 147,456 + 128 each (590,336); the linear layer 128 + 1. Table 7's 8×8 pooling
    after four blocks leaves two blocks that downsample; Table 6's 1×1 bypass convolution belongs to
    those, the other two keep an identity bypass (Miyato et al.'s CIFAR discriminator, and the authors'
    released code). Xavier-uniform weights (gain √2 on the 1×1 bypass, as that code), zero biases. Each
    layer's power-iteration vector is model state (:class:`SpectralNorm`).

    Args:
      rngs: ``nnx.Rngs`` for the initialization.
      width: the channels of every block (Table 6: 128).
      channels: the image channels (Table 7: 3).
      resolution: the image side, ``4·2^n`` with ``n >= 1`` (Table 7: 32); the final pooling averages
        over the ``resolution/4`` squared positions left.

    Example:
      >>> from flax import nnx
      >>> D = ResNetDiscriminator(width=8, resolution=16, rngs=nnx.Rngs(0))
      >>> D(jnp.zeros((2, 16, 16, 3))).shape
      (2, 1)

    References:
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      ICLR 2021, Tables 6–7. Miyato et al, `Spectral Normalization for Generative Adversarial Networks
      <https://arxiv.org/abs/1802.05957>`_, ICLR 2018.
    """

    def __init__(self, *, rngs: nnx.Rngs, width: int = 128, channels: int = 3, resolution: int = 32):
        width = _check_size("width", width)
        self.channels = _check_size("channels", channels)
        _resnet_blocks(resolution)
        self.resolution = resolution
        self.blocks = nnx.List(
            [
                _DBlock(channels, width, first=True, down=True, rngs=rngs),
                _DBlock(width, width, first=False, down=True, rngs=rngs),
                _DBlock(width, width, first=False, down=False, rngs=rngs),
                _DBlock(width, width, first=False, down=False, rngs=rngs),
            ]
        )
        self.out = SpectralNorm(nnx.Linear(width, 1, kernel_init=_XAVIER, rngs=rngs), rngs=rngs)

    def __call__(self, images: jax.Array) -> jax.Array:
        _check_images("ResNetDiscriminator", images, self.resolution, self.channels)
        x = images
        for block in self.blocks:
            x = block(x)
        return self.out(jnp.mean(jax.nn.relu(x), axis=(1, 2)))
