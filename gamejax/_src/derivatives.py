"""Every derivative of a game that gamejax methods need, as Jacobian-vector products of its field.

``J`` is the Jacobian of the vector field ``v = (∇x loss_x, ∇y loss_y)`` with respect to
``(x, y)``; its blocks are ``Jxx = ∂v_x/∂x``, ``Jxy = ∂v_x/∂y = ∇xy loss_x``,
``Jyx = ∂v_y/∂x = ∇yx loss_y`` and ``Jyy = ∂v_y/∂y``. Nothing here builds a dense matrix:
products come from ``jax.jvp``, ``jax.vjp`` and ``jax.linearize`` of ``game.field``, so they
work for any pytree players and any game wrapper that changes the field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.flatten_util
import jax.numpy as jnp
import optax

from gamejax._src import checks
from gamejax._src.core import Batch, Game, Players


def field_jvp(game: Game, params: Players, batch: Batch, tangent: Players) -> tuple[Players, Players]:
    """``(v, J·tangent)`` at ``params``: one forward-over-reverse pass."""
    return jax.jvp(lambda p: game.field(p, batch), (params,), (tangent,))


def field_vjp(game: Game, params: Players, batch: Batch) -> tuple[Players, Callable[[Players], Players]]:
    """``(v, pullback)`` with ``pullback(w) = Jᵀ·w``, linearized once and reusable."""
    v, pullback = jax.vjp(lambda p: game.field(p, batch), params)
    return v, lambda w: pullback(w)[0]


def linearize_field(game: Game, params: Players, batch: Batch) -> tuple[Players, Callable[[Players], Players]]:
    """``(v, jvp)`` with ``jvp(t) = J·t``, linearized once and reusable across many products.

    This is what an iterative solver (CGD's conjugate gradient) should use: the forward pass
    and its residuals are computed once per step, each product costs one linear pass.
    """
    return jax.linearize(lambda p: game.field(p, batch), params)


def off_diagonal_from_jvp(jvp: Callable[[Players], Players], delta: Players) -> Players:
    """``Players(Jxy·delta.y, Jyx·delta.x)`` from a linearized field ``jvp`` (see ``linearize_field``)."""
    zeros = optax.tree.zeros_like(delta)
    along_y = jvp(Players(zeros.x, delta.y))
    along_x = jvp(Players(delta.x, zeros.y))
    return Players(along_y.x, along_x.y)


def player_field_jvp(game: Game, params: Players, batch: Batch, player: str, delta_other: Any) -> tuple[Any, Any]:
    """One player's gradient and its derivative along the *other* player's displacement.

    For ``player="x"`` returns ``(v_x, Jxy·delta_other) = (∇x loss_x, ∇xy loss_x · Δy)``; for
    ``player="y"``, ``(v_y, Jyx·Δx)``. One ``jax.jvp`` of that player's gradient (forward over
    reverse); the other player's gradient is not computed.
    """
    other = "y" if player == "x" else "x"

    def own_gradient(value):
        return getattr(game.field(params._replace(**{other: value}), batch), player)

    return jax.jvp(own_gradient, (getattr(params, other),), (delta_other,))


def mixed_products(game: Game, params: Players, batch: Batch, delta: Players) -> tuple[Players, Players]:
    """The field and its off-diagonal Jacobian blocks applied to ``delta``.

    Returns ``(v, Players(x=∇xy loss_x · delta.y, y=∇yx loss_y · delta.x))``: each player's
    gradient differentiated along the *other* player's displacement, the coupling term of LEAD
    and the matrix-vector products of competitive gradient descent. Each block is one
    :func:`player_field_jvp`, so no diagonal block is computed.
    """
    vx, jxy = player_field_jvp(game, params, batch, "x", delta.y)
    vy, jyx = player_field_jvp(game, params, batch, "y", delta.x)
    return Players(vx, vy), Players(jxy, jyx)


def jacobian_transpose_product(game: Game, params: Players, batch: Batch, w: Players) -> tuple[Players, Players]:
    """``(v, Jᵀ·w)``: the field and one vector-Jacobian product (consensus optimization's ``Jᵀv``)."""
    v, pullback = field_vjp(game, params, batch)
    return v, pullback(w)


def field_jacobian(game: Game, params: Players, batch: Batch = None, *, chunk_size: int | None = None) -> jax.Array:
    """The dense Jacobian of the field on the flattened params (for diagnostics of small games only).

    Rows and columns follow ``jax.flatten_util.ravel_pytree(params)`` (``x`` first, then ``y``).
    Compiled (the game is a static argument). By default every column's Jacobian-vector
    product is taken at once (``jax.jacfwd``), which holds one tangent of every activation
    per param: with ``chunk_size``, the field is linearized once and the products are mapped
    over chunks of that many basis vectors (``lax.map``), e.g. for a GAN on a large batch.
    """
    if chunk_size is not None:
        checks.check_int("chunk_size", chunk_size, minimum=1)
        chunk_size = int(chunk_size)
    return _field_jacobian(game, params, batch, chunk_size)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _field_jacobian(game: Game, params: Players, batch: Batch, chunk_size: int | None) -> jax.Array:
    flat, unravel = jax.flatten_util.ravel_pytree(params)

    def flat_field(z: jax.Array) -> jax.Array:
        return jax.flatten_util.ravel_pytree(game.field(unravel(z), batch))[0]

    if chunk_size is None:
        return jax.jacfwd(flat_field)(flat)
    _, jvp = jax.linearize(flat_field, flat)
    return jax.lax.map(jvp, jnp.eye(flat.size, dtype=flat.dtype), batch_size=chunk_size).T  # row i: J e_i
