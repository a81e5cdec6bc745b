"""Elementwise tree arithmetic shared by the methods, in each leaf's own dtype."""

from __future__ import annotations

from typing import Any

import jax


def add_scaled(tree: Any, other: Any, scale: Any) -> Any:
    """``tree + scale·other`` leaf by leaf, cast back to ``tree``'s dtypes (a coupling or correction term)."""
    return jax.tree.map(lambda a, b: (a + scale * b).astype(a.dtype), tree, other)


def lerp(start: Any, end: Any, weight: Any) -> Any:
    """``start + weight·(end − start)`` leaf by leaf, in ``start``'s dtypes (equation LA, EMA)."""
    return jax.tree.map(lambda a, b: (a + weight * (b - a)).astype(a.dtype), start, end)
