"""Linear analysis of game dynamics: Jacobians of fields and of whole optimizer steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gamejax._src import checks
from gamejax._src.core import Batch, Game, GameTransformation, Players
from gamejax._src.training import make_step


def _split_inexact(tree: Any) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """Flatten the floating-point leaves of ``tree`` into one vector; other leaves stay fixed."""
    leaves, treedef = jax.tree.flatten(tree)
    moving = [i for i, leaf in enumerate(leaves) if jnp.issubdtype(checks.dtype_of(leaf), jnp.inexact)]
    dtype = jnp.result_type(*[leaves[i] for i in moving]) if moving else jnp.float32
    sizes = [jnp.size(leaves[i]) for i in moving]
    flat = jnp.concatenate([jnp.ravel(leaves[i]).astype(dtype) for i in moving]) if moving else jnp.zeros(0)

    def rebuild(vector: jax.Array) -> Any:
        out = list(leaves)
        offset = 0
        for i, size in zip(moving, sizes, strict=True):
            out[i] = vector[offset : offset + size].reshape(jnp.shape(leaves[i])).astype(checks.dtype_of(leaves[i]))
            offset += size
        return jax.tree.unflatten(treedef, out)

    return flat, rebuild


def step_jacobian(
    tx: GameTransformation,
    game: Game,
    params: Players,
    *,
    batch: Batch = None,
    steps: int = 1,
    state: Any = None,
) -> jax.Array:
    """The dense Jacobian of ``steps`` steps of ``tx`` as a map of params *and* optimizer state.

    The step map ``(ω, s) ↦ (ω', s')`` is linearized with ``jax.jacfwd`` over every
    floating-point leaf of ``(params, state)``: momentum buffers, previous iterates, slow
    weights, averages. Integer leaves (step counters) are held at their values, so ``steps``
    should cover a whole cycle of a periodic method (``k`` for ``lookahead(k, ...)``). Rows
    and columns follow the flattened floating-point leaves of ``(params, state)``. For small
    games only.

    Args:
      tx: the transformation; game: the game; params: where to linearize.
      batch: the batch every step uses.
      steps: number of steps composed.
      state: the state to linearize at (default ``tx.init(params)``).

    Returns:
      A square matrix.
    """
    state = tx.init(params) if state is None else state
    step = make_step(game, tx)
    z0, rebuild = _split_inexact((params, state))

    def step_map(z):
        p, s = rebuild(z)
        for _ in range(steps):
            p, s, _ = step(p, s, batch)
        return _split_inexact((p, s))[0]

    return jax.jacfwd(step_map)(z0)


def spectral_radius(
    tx: GameTransformation,
    game: Game,
    params: Players,
    *,
    batch: Batch = None,
    steps: int = 1,
    state: Any = None,
) -> float:
    """The spectral radius of ``steps`` steps of ``tx`` at ``params`` (see :func:`step_jacobian`).

    Below 1 at a fixed point, the method converges locally at that linear rate per ``steps``
    steps (lookahead paper, Theorem 2/3; LEAD, Theorem 2).
    """
    jacobian = np.asarray(step_jacobian(tx, game, params, batch=batch, steps=steps, state=state))
    if not np.all(np.isfinite(jacobian)):
        raise ValueError(
            "The step map is not differentiable here (its Jacobian has non-finite entries): e.g. Adam's "
            "update divides by the square root of a second moment that is zero at a fixed point."
        )
    return float(np.max(np.abs(np.linalg.eigvals(jacobian))))
