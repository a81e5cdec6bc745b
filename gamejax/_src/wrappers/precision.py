"""Mixed precision: params in bfloat16 (or float16), optimizer state and master weights in float32."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from gamejax._src.core import (
    Batch,
    Game,
    GameTransformation,
    Players,
    check_not_transformation,
    check_transformation,
    checks,
)


class MixedPrecisionState(NamedTuple):
    """State of :func:`mixed_precision`.

    Attributes:
      inner: the inner transformation's state, built from and kept in the master dtype.
      master: the master weights, the params in the master dtype (the params themselves
        are these rounded to their own dtype).
    """

    inner: Any
    master: Players


def _widen(tree: Any, dtype: jnp.dtype) -> Any:
    """Floating leaves narrower than ``dtype`` cast up to it (wider leaves and integers kept)."""

    def widen(leaf):
        if jnp.issubdtype(leaf.dtype, jnp.floating) and jnp.finfo(leaf.dtype).bits < jnp.finfo(dtype).bits:
            return leaf.astype(dtype)
        return leaf

    return jax.tree.map(widen, tree)


def _like(tree: Any, reference: Any) -> Any:
    return jax.tree.map(lambda leaf, ref: leaf.astype(ref.dtype), tree, reference)


def mixed_precision(dtype: Any = jnp.float32) -> Callable[[GameTransformation], GameTransformation]:
    """Train low-precision params (bfloat16 networks) with float32 master weights and state.

    The wrapped transformation runs entirely in ``dtype``: it is initialized from, and
    steps, a ``dtype`` master copy of the params, so its state (Adam's moments, lookahead's
    slow weights, EMA averages) and the small updates it adds never round to bfloat16. Every
    evaluation of the game happens at the master weights rounded to the params' own dtype,
    so the networks run in low precision, and their field is widened to ``dtype``. The
    params after a step are the new master weights rounded to their dtype (the returned
    updates are ``master − params`` in ``dtype``; :func:`gamejax.apply_updates` rounds).

    The standard recipe of mixed-precision training (Micikevicius et al., 2018) as a game
    wrapper: without master weights, a bfloat16 param (8 significant bits) ignores any
    update smaller than 2⁻⁸ of its size, e.g. an Adam step of 1e-4 on a weight of 0.1.

    Example::

        G = gj.flax.MLP((8, 64, 2), rngs=nnx.Rngs(0), param_dtype=jnp.bfloat16, dtype=jnp.bfloat16)
        tx = gj.mixed_precision()(gj.extragradient(optax.adam(1e-3)))

    Args:
      dtype: the master dtype (default float32); params already at least this wide are
        used as they are.

    Returns:
      A wrapper ``GameTransformation -> GameTransformation`` with :class:`MixedPrecisionState`.
    """
    check_not_transformation(dtype, "gj.mixed_precision(dtype)(tx)")
    try:
        dtype = jnp.dtype(dtype)
    except TypeError as error:
        raise ValueError(f"dtype must be a floating-point dtype such as jnp.float32; got {dtype!r}.") from error
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"dtype must be a floating-point dtype such as jnp.float32; got {dtype}.")

    def wrap(tx: GameTransformation) -> GameTransformation:
        check_transformation(tx, "mixed_precision(dtype)", "gj.mixed_precision()(gj.gda(optax.adam(1e-3)))")

        def init(params: Players) -> MixedPrecisionState:
            checks.check_players(params, "params")  # before widening: a non-array leaf is named
            master = _widen(params, dtype)
            return MixedPrecisionState(tx.init(master), master)

        def update(game: Game, params: Players, state: MixedPrecisionState, batch: Batch = None):
            def field_in_master_dtype(point: Players, b: Batch):
                field, losses = game.field_and_losses(_like(point, params), b)
                return _widen(field, dtype), losses

            wide_game = game.with_field(field_in_master_dtype)
            updates, inner = tx.update(wide_game, state.master, state.inner, batch)
            master = jax.tree.map(lambda m, u: (m + u).astype(m.dtype), state.master, updates)
            to_master = jax.tree.map(lambda m, p: m - p.astype(m.dtype), master, params)
            return to_master, MixedPrecisionState(inner, master)

        return GameTransformation(init, update)

    return wrap
