"""Linear analysis of game dynamics: Jacobians of fields and of whole optimizer steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gamejax._src.core import Batch, Game, GameTransformation, PassCount, Players, checks
from gamejax._src.derivatives import field_jacobian
from gamejax._src.training.step import Step, check_game_and_tx, make_step


def _split_inexact(tree: Any) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """Flatten the floating-point leaves of ``tree`` into one real vector; other leaves stay fixed.

    A complex leaf (e.g. a complex momentum buffer) contributes its real and imaginary parts;
    integer counters and :class:`gamejax.PassCount` leaves (cost bookkeeping) are held fixed.
    """
    leaves, treedef = jax.tree.flatten(tree, is_leaf=lambda node: isinstance(node, PassCount))
    moving = [
        i
        for i, leaf in enumerate(leaves)
        if not isinstance(leaf, PassCount) and jnp.issubdtype(checks.dtype_of(leaf), jnp.inexact)
    ]
    real_dtypes = [jnp.finfo(checks.dtype_of(leaves[i])).dtype for i in moving]
    dtype = jnp.result_type(*real_dtypes) if moving else jnp.float32
    complex_leaf = [jnp.issubdtype(checks.dtype_of(leaves[i]), jnp.complexfloating) for i in moving]
    sizes = [jnp.size(leaves[i]) * (2 if c else 1) for i, c in zip(moving, complex_leaf, strict=True)]

    def parts(leaf: jax.Array, is_complex: bool) -> jax.Array:
        flat = jnp.ravel(leaf)
        return jnp.concatenate([flat.real, flat.imag]) if is_complex else flat

    flat = (
        jnp.concatenate([parts(leaves[i], c).astype(dtype) for i, c in zip(moving, complex_leaf, strict=True)])
        if moving
        else jnp.zeros(0)
    )

    def rebuild(vector: jax.Array) -> Any:
        out = list(leaves)
        offset = 0
        for i, size, is_complex in zip(moving, sizes, complex_leaf, strict=True):
            piece = vector[offset : offset + size]
            if is_complex:
                piece = piece[: size // 2] + 1j * piece[size // 2 :]
            out[i] = piece.reshape(jnp.shape(leaves[i])).astype(checks.dtype_of(leaves[i]))
            offset += size
        return jax.tree.unflatten(treedef, out)

    return flat, rebuild


def step_jacobian(
    game: Game,
    tx: GameTransformation,
    params: Players,
    *,
    batch: Batch = None,
    steps: int = 1,
    state: Any = None,
    warmup: int = 1,
    model_state: Any = None,
) -> jax.Array:
    """The dense Jacobian of ``steps`` steps of ``tx`` as a map of params *and* optimizer state.

    The step map ``(ω, s) ↦ (ω', s')`` is linearized with ``jax.jacrev`` over every
    floating-point leaf of ``(params, state)``: momentum buffers, previous iterates, slow
    weights, averages (complex buffers as real and imaginary parts). Integer leaves (step
    counters) and cost bookkeeping (:class:`gamejax.PassCount`) are held at their values, so ``steps``
    should cover a whole cycle of a periodic method (``k`` for ``lookahead(k, ...)``). Rows
    and columns follow the flattened floating-point leaves of ``(params, state)``. For small
    games only.

    Args:
      game: the game; tx: the transformation (the order of :func:`gamejax.fit`); params: where
        to linearize.
      batch: the batch every step uses.
      steps: number of steps composed (an integer ``>= 1``).
      state: the state to linearize at (default: the step's initial state advanced by ``warmup``
        steps; for a :class:`gamejax.StatefulGame` it holds the model state, which is then part
        of the linearized map).
      warmup: steps (an integer ``>= 0``) taken from ``tx.init(params)`` before linearizing,
        so that first-step special cases (OGDA's first step has no previous gradient and is a
        plain GDA step) are left behind; at a fixed point the params do not move, only counters
        and buffers settle.
      model_state: the initial model state of a :class:`gamejax.StatefulGame` (when ``state`` is
        not given).

    Returns:
      A square matrix.
    """
    check_game_and_tx(game, tx, "step_jacobian")
    checks.check_int("steps", steps, minimum=1)
    checks.check_int("warmup", warmup, minimum=0)
    step = make_step(game, tx)
    if state is None:
        state = _warm_state(step.__self__, params, batch, warmup, model_state)
    z0, rebuild = _split_inexact((params, state))

    def step_map(z):
        p, s = rebuild(z)
        for _ in range(steps):
            p, s, _ = step(p, s, batch)
        return _split_inexact((p, s))[0]

    return jax.jacrev(step_map)(z0)


def _warm_state(step: Step, params: Players, batch: Batch, warmup: int, model_state: Any) -> Any:
    """The step's initial state advanced by ``warmup`` steps at fixed ``params``."""
    state = step.init(params, model_state)
    for _ in range(warmup):
        _, state, _ = step(params, state, batch)
    return state


def _fixed_point_gap(game, tx, params, batch, steps, state) -> float:
    """The largest change of any floating-point leaf of (params, state) over ``steps`` steps."""
    step = make_step(game, tx)
    p, s = params, state
    for _ in range(steps):
        p, s, _ = step(p, s, batch)
    before, _ = _split_inexact((params, state))
    after, _ = _split_inexact((p, s))
    return float(jnp.max(jnp.abs(after - before), initial=0.0))


def spectral_radius(
    game: Game,
    tx: GameTransformation,
    params: Players,
    *,
    batch: Batch = None,
    steps: int = 1,
    state: Any = None,
    warmup: int = 1,
    check: bool = True,
    model_state: Any = None,
) -> jax.Array | float:
    """The spectral radius of ``steps`` steps of ``tx`` at a fixed point (see :func:`step_jacobian`).

    Below 1, the method converges locally to the fixed point at that linear rate per ``steps``
    steps (lookahead paper, Theorem 2/3; LEAD, Theorem 2; Numerics of GANs, Prop. 3). The
    whole step map is linearized — params *and* optimizer state: momentum buffers (``optax.sgd``
    with momentum, complex momentum), previous iterates (OGDA, LEAD), slow weights
    (lookahead, over a whole cycle with ``steps = k``), averages, CG warm starts. States
    whose update is not differentiable at a fixed point are refused: Adam, RMSprop and ACGD
    divide by the square root of a second moment that is zero there.

    Works under ``jax.vmap`` (e.g. over the learning rate a transformation captures, for a
    grid search); there the checks below are skipped and non-differentiable steps give NaN.

    Args:
      game, tx, params, batch, steps, state, warmup, model_state: as in :func:`step_jacobian`; ``params``
        (with that state) must be a fixed point of the step.
      check: verify, when not traced, that the point is fixed and the Jacobian finite.

    Returns:
      The spectral radius (a float, or a traced scalar under transformations).

    Raises:
      ValueError: if ``params`` is not a fixed point or the step is not differentiable there.

    Example:
      >>> import optax, gamejax as gj
      >>> game, _, optimum = gj.games.bilinear()
      >>> round(gj.spectral_radius(game, gj.gda(optax.sgd(0.3)), optimum), 4)   # √(1 + η²)
      1.044
    """
    check_game_and_tx(game, tx, "spectral_radius")
    if state is None:
        state = _warm_state(make_step(game, tx).__self__, params, batch, warmup, model_state)
    jacobian = step_jacobian(game, tx, params, batch=batch, steps=steps, state=state)
    radius = jnp.max(jnp.abs(jnp.linalg.eigvals(jacobian)), initial=0.0)
    if not check or not checks.is_concrete(radius):
        return radius
    if not np.all(np.isfinite(np.asarray(jacobian))):
        raise ValueError(
            "The step map is not differentiable here (its Jacobian has non-finite entries): e.g. Adam's "
            "update divides by the square root of a second moment that is zero at a fixed point."
        )
    gap = _fixed_point_gap(game, tx, params, batch, steps, state)
    scale = 1.0 + float(jnp.max(jnp.abs(_split_inexact((params, state))[0]), initial=0.0))
    if gap > 1e-6 * scale:
        raise ValueError(
            f"params (with this state) is not a fixed point of {steps} step(s): they move by up to {gap:.3g}. "
            "The spectral radius describes local convergence at a fixed point: pass the equilibrium."
        )
    return float(radius)


def jacobian_eigenvalues(
    game: Game, params: Players, batch: Batch = None, *, chunk_size: int | None = None
) -> jax.Array:
    """The eigenvalues of the field's Jacobian ``J`` at ``params`` (dense; small games only).

    At a fixed point, all real parts positive means the continuous dynamics ``ω' = −v(ω)``
    are locally stable; imaginary parts mean rotation (Numerics of GANs, §3; lookahead paper §2).
    ``chunk_size`` builds ``J`` in chunks of columns (see
    :func:`gamejax.derivatives.field_jacobian`): use it for networks on large batches, where
    building every column at once can take many GB.
    """
    return jnp.linalg.eigvals(field_jacobian(game, params, batch, chunk_size=chunk_size))


def decompose_jacobian(jacobian: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``J = S + A``: the symmetric (potential) and antisymmetric (Hamiltonian) parts.

    ``S = (J + Jᵀ)/2`` is the Jacobian of a potential game's gradient, ``A = (J − Jᵀ)/2`` the
    rotational part that makes GDA cycle (Balduzzi et al. 2018; SGA adjusts the field by ``Aᵀv``).
    """
    jacobian = jnp.asarray(jacobian)
    return 0.5 * (jacobian + jacobian.T), 0.5 * (jacobian - jacobian.T)
