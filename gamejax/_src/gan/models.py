"""Small Flax NNX networks for the papers' GAN experiments (mixtures of Gaussians, digits)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class MLP(nnx.Module):
    """A fully connected network: ``Linear → [BatchNorm] → activation`` per hidden layer.

    The generators and discriminators of the mixture-of-Gaussians experiments (LEAD App. I.1:
    4 affine layers with ReLU; Numerics of GANs §5: 4 hidden layers of 16 units) and of the
    digits GAN.

    Args:
      sizes: layer widths, input first, output last, e.g. ``(16, 16, 16, 16, 16, 2)``.
      rngs: ``nnx.Rngs`` for the initialization.
      activation: hidden non-linearity (default ReLU).
      output: non-linearity of the output (e.g. ``jnp.tanh`` for images in [-1, 1]).
      batch_norm: BatchNorm after each hidden affine layer (statistics are model state).
      spectral_norm: spectral normalization of every affine layer (its power-iteration
        vectors are model state).
      param_dtype: the params' dtype (e.g. ``jnp.bfloat16``; train such params with
        :func:`gamejax.mixed_precision` to keep float32 master weights and state).
      dtype: the computation dtype (default: inferred from inputs and params).

    Example:
      >>> from flax import nnx
      >>> from gamejax.flax import MLP
      >>> D = MLP((2, 16, 16, 1), rngs=nnx.Rngs(0))
    """

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        rngs: nnx.Rngs,
        activation: Callable[[jax.Array], jax.Array] = jax.nn.relu,
        output: Callable[[jax.Array], jax.Array] | None = None,
        batch_norm: bool = False,
        spectral_norm: bool = False,
        param_dtype: Any = jnp.float32,
        dtype: Any = None,
    ):
        widths = list(sizes) if isinstance(sizes, (Sequence, np.ndarray)) and not isinstance(sizes, str) else []
        integral = all(isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)) for s in widths)
        if not integral or len(widths) < 2 or min(widths) < 1:
            raise ValueError(
                f"sizes must list at least an input and an output width, all integers >= 1; got {sizes!r}."
            )
        sizes = tuple(int(s) for s in widths)

        def affine(n_in: int, n_out: int) -> nnx.Module:
            layer = nnx.Linear(n_in, n_out, rngs=rngs, param_dtype=param_dtype, dtype=dtype)
            return nnx.SpectralNorm(layer, rngs=rngs) if spectral_norm else layer

        self.layers = nnx.List([affine(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        self.norms = nnx.List(
            [nnx.BatchNorm(n, rngs=rngs, param_dtype=param_dtype, dtype=dtype) for n in sizes[1:-1]]
            if batch_norm
            else []
        )
        self.activation = activation
        self.output = output

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                if self.norms:
                    x = self.norms[i](x)
                x = self.activation(x)
        return x if self.output is None else self.output(x)
