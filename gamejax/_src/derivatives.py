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

from gamejax._src.core import Batch, Game, Players, checks
from gamejax._src.core.players import other


def linearize_field(game: Game, params: Players, batch: Batch) -> tuple[Players, Callable[[Players], Players], Players]:
    """``(v, jvp, losses)`` with ``jvp(t) = J·t``, linearized once and reusable across many products.

    What an iterative solver (CGD's conjugate gradient) uses: the forward pass and its
    residuals are computed once per step, each product costs one linear pass.
    """
    return jax.linearize(lambda p: game.field_and_losses(p, batch), params, has_aux=True)


def field_vjp(game: Game, params: Players, batch: Batch) -> tuple[Players, Callable[[Players], Players], Players]:
    """``(v, pullback, losses)`` with ``pullback(w) = Jᵀ·w`` (consensus optimization's ``Jᵀv``)."""
    v, pullback, losses = jax.vjp(lambda p: game.field_and_losses(p, batch), params, has_aux=True)
    return v, lambda w: pullback(w)[0], losses


def field_jvp_and_vjp(
    game: Game, params: Players, batch: Batch
) -> tuple[Players, Callable[[Players], Players], Callable[[Players], Players], Players]:
    """``(v, jvp, vjp, losses)``: ``J·t`` and ``Jᵀ·w`` from one linearization (SGA's ``Jv`` and ``Jᵀv``).

    The transpose of the linearized field (``jax.linear_transpose``) reuses its residuals, so
    both products together cost about two gradients on top of the field.
    """
    v, jvp, losses = linearize_field(game, params, batch)
    transpose = jax.linear_transpose(jvp, params)
    return v, jvp, lambda w: transpose(w)[0], losses


def linearize_field_and_losses(
    game: Game, params: Players, batch: Batch
) -> tuple[Players, Callable[[Players], Players], Callable[[Players], Players], Players, Players]:
    """``(v, jvp, vjp, cross, losses)``: ``J·t``, ``Jᵀ·w`` and the cross gradients ``(∇x loss_y, ∇y loss_x)``.

    One linearization of ``params ↦ (field, losses)`` (the losses differentiated too) and its
    transpose: ``jvp`` and ``vjp`` are the field's products (SGA's pair), and ``cross`` holds
    each player's gradient of the *other* player's loss, which the field leaves out (LOLA's
    and SOS's ``χ`` needs them). Two transposed products give ``cross`` exactly (no difference
    of gradients is taken).
    """
    (v, losses), linear = jax.linearize(lambda p: game.field_and_losses(p, batch), params)
    transpose = jax.linear_transpose(linear, params)
    no_field = optax.tree.zeros_like(v)

    def loss_gradient(weights: Players) -> Players:
        cotangent = Players(*(jnp.asarray(w, jnp.result_type(loss)) for w, loss in zip(weights, losses, strict=True)))
        return transpose((no_field, cotangent))[0]

    cross = Players(loss_gradient(Players(0.0, 1.0)).x, loss_gradient(Players(1.0, 0.0)).y)
    no_losses = optax.tree.zeros_like(losses)
    return v, lambda t: linear(t)[0], lambda w: transpose((w, no_losses))[0], cross, losses


def per_example_field_vjp(
    game: Game, params: Players, examples: Batch
) -> tuple[Players, Callable[[Players], Players], Players]:
    """``(fields, pullback, losses)`` of the per-example fields, stacked along the examples' leading axis.

    Each example (a leading-axis slice of ``examples``) is evaluated as a batch of its own under
    ``jax.vmap``; ``pullback(w)`` is ``Σ_i J_iᵀ w_i`` for cotangents ``w`` stacked the same way
    (debiased consensus optimization's unbiased ``∇ ½ mean_{i≠j} v_i·v_j``).
    """

    def per_example(p: Players):
        return jax.vmap(lambda b: game.field_and_losses(p, b))(examples)

    fields, pullback, losses = jax.vjp(per_example, params, has_aux=True)
    return fields, lambda w: pullback(w)[0], losses


def off_diagonal_blocks(
    jvp: Callable[[Players], Players], params: Players
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``(jxy, jyx)``: ``w ↦ Jxy·w`` (``w`` shaped like ``y``) and ``u ↦ Jyx·u`` (``u`` like ``x``).

    From a linearized field ``jvp`` (:func:`linearize_field`): each block is one product along a
    displacement of one player only, the products of competitive gradient descent. Each input is
    cast to its player's dtypes first.
    """
    zeros = optax.tree.zeros_like(params)

    def like(tree: Any, reference: Any) -> Any:
        return jax.tree.map(lambda t, r: t.astype(checks.dtype_of(r)), tree, reference)

    def jxy(w: Any) -> Any:
        return jvp(Players(zeros.x, like(w, params.y))).x

    def jyx(u: Any) -> Any:
        return jvp(Players(like(u, params.x), zeros.y)).y

    return jxy, jyx


def diagonal_blocks(
    jvp: Callable[[Players], Players], params: Players
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """``(jxx, jyy)``: ``u ↦ Jxx·u`` (``u`` shaped like ``x``) and ``w ↦ Jyy·w`` (``w`` like ``y``).

    From a linearized field ``jvp`` (:func:`linearize_field`): each block is one product along a
    displacement of its own player only (``Jyy = ∇yy loss_y``, the follower's Hessian that
    Follow-the-Ridge inverts). Each input is cast to its player's dtypes first.
    """
    zeros = optax.tree.zeros_like(params)

    def like(tree: Any, reference: Any) -> Any:
        return jax.tree.map(lambda t, r: t.astype(checks.dtype_of(r)), tree, reference)

    def jxx(u: Any) -> Any:
        return jvp(Players(like(u, params.x), zeros.y)).x

    def jyy(w: Any) -> Any:
        return jvp(Players(zeros.x, like(w, params.y))).y

    return jxx, jyy


def player_field_jvp(game: Game, params: Players, batch: Batch, player: str, delta_other: Any) -> tuple[Any, Any]:
    """One player's gradient and its derivative along the *other* player's displacement.

    For ``player="x"`` returns ``(v_x, Jxy·delta_other) = (∇x loss_x, ∇xy loss_x · Δy)``; for
    ``player="y"``, ``(v_y, Jyx·Δx)``: LEAD's coupling term. One ``jax.jvp`` of that player's
    gradient (forward over reverse); no diagonal block is computed.
    """
    opponent = other(player)

    def own_gradient(value):
        return getattr(game.field(params._replace(**{opponent: value}), batch), player)

    return jax.jvp(own_gradient, (getattr(params, opponent),), (delta_other,))


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
