"""Shared plumbing of the GAN benchmarks: Flax MLP pairs, sampling from a trained generator, sample plots."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from flax import nnx

import gamejax as gj
from gamejax.flax import MLP


def mlp_pair(
    seed: int, *, noise_dim: int, data_dim: int, width: int, depth: int, output: Any = None
) -> gj.flax.ModulePair:
    """Generator ``noise_dim → width × depth → data_dim`` and discriminator ``data_dim → width × depth → 1``."""
    rngs = nnx.Rngs(seed)
    generator = MLP((noise_dim, *[width] * depth, data_dim), rngs=rngs, output=output)
    discriminator = MLP((data_dim, *[width] * depth, 1), rngs=rngs)
    return gj.flax.split(generator, discriminator)


def generate(pair: gj.flax.ModulePair, params: gj.Players, noise: jax.Array, model_state: Any = None) -> jax.Array:
    """Samples of the generator at ``params`` (jittable, vmappable over params)."""
    generator, _ = pair.merge(params, model_state)
    return generator(noise)


def seed_params(pair_of_seed, seeds: list[int]) -> gj.Players:
    """The initial params of several seeds stacked along a leading axis, for ``jax.vmap``."""
    return jax.tree.map(lambda *a: np.stack(a), *[pair_of_seed(s).params for s in seeds])


def plot_samples(ax, samples: np.ndarray, centers: np.ndarray, title: str, limit: float) -> None:
    """Generated samples (blue) over the mixture's modes (red crosses)."""
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, color="tab:blue")
    ax.scatter(centers[:, 0], centers[:, 1], s=40, marker="x", color="tab:red")
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
