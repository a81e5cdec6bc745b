"""Small games with pytree players and independent (hand-written or dense) references."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

import gamejax as gj


class DenseQuadratic(NamedTuple):
    """A general-sum quadratic game on pytree players, with its dense description.

    ``loss_x = ½ x̄ᵀPx̄ + x̄ᵀAȳ + bᵀx̄`` and ``loss_y = ½ ȳᵀQȳ + ȳᵀBx̄ + cᵀȳ`` where ``x̄, ȳ``
    are the flattened players. The field is ``J z + r`` with ``J = [[P, A], [B, Q]]`` and
    ``r = (b, c)`` (P, Q symmetric), so the equilibrium is ``−J⁻¹ r``.
    """

    game: gj.Game
    init: gj.Players
    J: np.ndarray
    r: np.ndarray
    unravel: object

    def field(self, z: np.ndarray) -> np.ndarray:
        return self.J @ z + self.r

    @property
    def equilibrium(self) -> gj.Players:
        return self.unravel(jnp.asarray(np.linalg.solve(self.J, -self.r)))


def pytree_players(key: jax.Array, dtype=jnp.float64) -> gj.Players:
    """Players of mixed structure: x a dict of two arrays, y a tuple of a scalar and a matrix."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    x = {"a": jax.random.normal(k1, (2,), dtype), "b": jax.random.normal(k2, (3,), dtype)}
    y = (jax.random.normal(k3, (), dtype), jax.random.normal(k4, (2, 2), dtype))
    return gj.Players(x, y)


def dense_quadratic(key: jax.Array, *, monotone: float = 1.0, zero_sum: bool = False) -> DenseQuadratic:
    """A random ``DenseQuadratic`` game on :func:`pytree_players`.

    ``monotone`` scales the symmetric diagonal blocks ``P = Q = monotone·I`` (0 gives a purely
    bilinear game); ``zero_sum`` makes ``loss_y = −loss_x`` (then ``Q = −(−P)``, ``B = −Aᵀ``).
    """
    init = pytree_players(key)
    flat, unravel = jax.flatten_util.ravel_pytree(init)
    nx = jax.flatten_util.ravel_pytree(init.x)[0].size
    ny = flat.size - nx
    rng = np.random.default_rng(int(jax.random.randint(key, (), 0, 2**31 - 1)))
    A = rng.normal(size=(nx, ny)) / np.sqrt(ny)
    b, c = rng.normal(size=nx), rng.normal(size=ny)
    P = monotone * np.eye(nx)
    if zero_sum:
        Q, B = monotone * np.eye(ny), -A.T
    else:
        Q, B = monotone * np.eye(ny) + 0.1 * np.diag(rng.uniform(size=ny)), rng.normal(size=(ny, nx)) / np.sqrt(nx)
    ravel_x = lambda x: jax.flatten_util.ravel_pytree(x)[0]  # noqa: E731
    Aj, Bj, bj, cj = map(jnp.asarray, (A, B, b, c))

    def loss_x(x, y):
        xf, yf = ravel_x(x), ravel_x(y)
        return 0.5 * monotone * xf @ xf + xf @ Aj @ yf + bj @ xf

    def loss_y(x, y):
        xf, yf = ravel_x(x), ravel_x(y)
        return 0.5 * yf @ jnp.asarray(Q) @ yf + yf @ Bj @ xf + cj @ yf

    if zero_sum:

        def f(x, y):
            xf, yf = ravel_x(x), ravel_x(y)
            return 0.5 * monotone * (xf @ xf - yf @ yf) + xf @ Aj @ yf + bj @ xf - cj @ yf

        game = gj.zero_sum(f)
    else:
        game = gj.general_sum(loss_x, loss_y)
    J = np.block([[P, A], [B, Q]])
    return DenseQuadratic(game, init, J, np.concatenate([b, c]), unravel)


def flat(tree) -> np.ndarray:
    return np.asarray(jax.flatten_util.ravel_pytree(tree)[0])


def run_steps(game, tx, params, steps=None, *, batches=None, state=None, observe=None):
    """Params, state and observations after looping the compiled step in Python.

    ``jax.jit(gj.make_step(game, tx))`` (compiled anew for each call, never cached across calls)
    runs from ``params`` and ``state`` (``tx.init(params)`` by default): ``steps`` times with the
    batch ``None``, or, with ``batches``, once per batch in order — a list of batches, or one
    stacked pytree whose leaves share a leading step axis (``steps`` may then be left out).
    ``observe(params)`` is recorded after each step (not before the first).

    Returns:
      ``(params, state, observed)``, ``observed`` the list of ``observe`` results (``[]``
      without ``observe``).
    """
    if batches is None:
        if steps is None:
            raise ValueError("run_steps needs steps or batches")
        batch_list = [None] * steps
    else:
        if isinstance(batches, list):
            batch_list = batches
        else:
            n = jax.tree.leaves(batches)[0].shape[0]
            batch_list = [jax.tree.map(lambda a, t=t: a[t], batches) for t in range(n)]
        if steps is not None and steps != len(batch_list):
            raise ValueError(f"steps={steps} but {len(batch_list)} batches")
    step = jax.jit(gj.make_step(game, tx))
    state = tx.init(params) if state is None else state
    observed = []
    for batch in batch_list:
        params, state, _ = step(params, state, batch)
        if observe is not None:
            observed.append(observe(params))
    return params, state, observed
