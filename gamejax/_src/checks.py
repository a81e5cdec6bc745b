"""Validation of user input, with errors that say what was expected and how to fix it.

Hyperparameters are checked only when they are concrete numbers, so traced values (a
``jax.vmap`` sweep over learning rates or ``alpha``) pass through untouched.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(value: Any) -> bool:
    """Whether ``value`` is a known number rather than a JAX tracer."""
    return not isinstance(value, jax.core.Tracer)


def _as_numbers(value: Any) -> list[float] | None:
    """The concrete numbers inside ``value`` (a scalar or 1-D sequence), or None if traced."""
    if not is_concrete(value):
        return None
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return None
    return [float(v) for v in array.reshape(-1)]


def check_number(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise ``ValueError`` naming ``name`` unless every concrete entry lies in the interval."""
    numbers = _as_numbers(value)
    if numbers is None:
        if is_concrete(value) and not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number; got {type(value).__name__}.")
        return
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    for v in numbers:
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        if not (above and below):  # also catches NaN
            raise ValueError(f"{name} must lie in {lo}{low}, {high}{hi}; got {value!r}.")


def check_int(name: str, value: Any, *, minimum: int) -> None:
    """Raise ``ValueError`` unless a concrete ``value`` is an integer ``>= minimum``."""
    if not is_concrete(value):
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, jax.Array)):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if isinstance(value, jax.Array) and (
        value.ndim or not jnp.issubdtype(value.dtype, jnp.integer)
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")


def check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}.")


def check_players(value: Any, name: str) -> None:
    """Raise ``TypeError`` unless ``value`` is a ``Players(x=..., y=...)``."""
    from gamejax._src.core import Players

    if not isinstance(value, Players):
        raise TypeError(
            f"{name} must be gj.Players(x=..., y=...), one pytree per player; "
            f"got {type(value).__name__}. Wrap your two players' params as gj.Players(x, y)."
        )


def check_scalar_loss(loss: Any, what: str) -> None:
    """Raise ``ValueError`` unless ``loss`` is a real scalar."""
    shape = jnp.shape(loss)
    if shape != ():
        raise ValueError(
            f"{what} must return a scalar; it returned an array of shape {shape}. "
            "Reduce it, e.g. with jnp.mean over the batch."
        )
    if not jnp.issubdtype(jnp.result_type(loss), jnp.floating):
        raise ValueError(f"{what} must return a real floating-point scalar; got dtype {jnp.result_type(loss)}.")


def _layout(tree: Any) -> list[tuple[tuple[int, ...], Any]]:
    return [(jnp.shape(leaf), jnp.result_type(leaf)) for leaf in jax.tree.leaves(tree)]


def check_same_layout(
    tree: Any, reference: Any, name: str, reference_name: str, *, check_dtype: bool = True
) -> None:
    """Raise ``ValueError`` unless ``tree`` has the structure, shapes (and dtypes) of ``reference``."""
    structure, expected = jax.tree.structure(tree), jax.tree.structure(reference)
    if structure != expected:
        raise ValueError(
            f"{name} does not have the tree structure of {reference_name}.\n"
            f"  expected: {expected}\n  got:      {structure}\n"
            "If this is a transformation's state, call tx.init with params of the same structure."
        )
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(reference)[0]]
    for path, (shape, dtype), (ref_shape, ref_dtype) in zip(
        paths, _layout(tree), _layout(reference), strict=True
    ):
        if shape != ref_shape or (check_dtype and dtype != ref_dtype):
            raise ValueError(
                f"{name}{path} has shape {shape} and dtype {dtype}, but {reference_name}{path} has "
                f"shape {ref_shape} and dtype {ref_dtype}. "
                "Call tx.init with params of the same shapes and dtypes you train."
            )
