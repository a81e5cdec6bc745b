"""Elementwise tree arithmetic shared by the methods, in each leaf's own dtype."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def add_scaled(tree: Any, other: Any, scale: Any) -> Any:
    """``tree + scale·other`` leaf by leaf, cast back to ``tree``'s dtypes (a coupling or correction term)."""
    return jax.tree.map(lambda a, b: (a + scale * b).astype(a.dtype), tree, other)


def lerp(start: Any, end: Any, weight: Any) -> Any:
    """``start + weight·(end − start)`` leaf by leaf, in ``start``'s dtypes (equation LA, EMA)."""
    return jax.tree.map(lambda a, b: (a + weight * (b - a)).astype(a.dtype), start, end)


def all_finite(tree: Any) -> jax.Array:
    """Whether every element of every inexact leaf of ``tree`` is finite (integer leaves always are)."""
    leaves = [jnp.ravel(leaf) for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    if not leaves:
        return jnp.asarray(True)
    # One reduction over all leaves (x * 0 is 0 when x is finite, NaN otherwise): one fused
    # kernel instead of one per leaf, which on XLA:CPU is most of a small program's compile time.
    flat = jnp.concatenate([leaf.astype(jnp.result_type(*leaves)) for leaf in leaves])
    return jnp.isfinite(jnp.sum(flat * 0))


def nodes_of_type(tree: Any, types: type | tuple[type, ...]) -> list:
    """The subtrees of ``tree`` that are instances of ``types`` (e.g. one wrapper's state in a stack)."""
    return [node for node in jax.tree.leaves(tree, is_leaf=lambda n: isinstance(n, types)) if isinstance(node, types)]
