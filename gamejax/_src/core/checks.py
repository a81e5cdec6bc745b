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

from gamejax._src.core.players import PLAYERS, Players, per_player


def is_concrete(value: Any) -> bool:
    """Whether ``value`` is a known number rather than a JAX tracer."""
    return not isinstance(value, jax.core.Tracer)


def _numbers(name: str, value: Any, *, sequence: bool) -> list[float]:
    """The concrete numbers in ``value`` (traced entries are skipped, so sweeps pass).

    Raises ``ValueError`` naming ``name`` for anything that is not a real number (strings,
    booleans, None), a sequence where one number is expected, or an empty sequence.
    """
    if not is_concrete(value):
        return []
    if isinstance(value, (list, tuple)):
        if not sequence:
            raise ValueError(f"{name} must be a single number; got a {type(value).__name__}.")
        if not value or any(isinstance(v, (list, tuple)) or np.ndim(v) for v in value):
            raise ValueError(
                f"{name} must be a number or a non-empty 1-D sequence of numbers; got shape {np.shape(value)}."
            )
        return [v for item in value for v in _numbers(name, item, sequence=False)]
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{name} must be a real number; got {value!r}.")
    array = np.asarray(value)
    if not (jnp.issubdtype(array.dtype, jnp.floating) or jnp.issubdtype(array.dtype, jnp.integer)):
        raise ValueError(f"{name} must be a real number; got {value!r}.")
    array = array.astype(np.float64)
    if array.ndim > int(sequence) or (array.ndim == 1 and array.size == 0):
        expected = "a number or a non-empty 1-D sequence of numbers" if sequence else "a single number"
        raise ValueError(f"{name} must be {expected}; got shape {array.shape}.")
    return [float(v) for v in array.reshape(-1)]


def check_number(
    name: str,
    value: Any,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
    sequence: bool = False,
) -> None:
    """Raise unless every concrete entry of ``value`` is a real number in the interval.

    ``sequence=True`` also accepts a 1-D sequence of numbers (e.g. several EMA decays).
    """
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    for v in _numbers(name, value, sequence=sequence):
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        if not (above and below):  # also catches NaN
            raise ValueError(f"{name} must lie in {lo}{low}, {high}{hi}; got {value!r}.")


def per_player_number(name: str, value: Any, **interval: Any) -> Any:
    """``value`` as ``Players`` (one number for both, or ``Players(x, y)``), each checked by :func:`check_number`."""
    values = per_player(value)
    for player, v in zip(PLAYERS, values, strict=True):
        check_number(f"{name} (player {player})", v, **interval)
    return values


def check_int(name: str, value: Any, *, minimum: int) -> None:
    """Raise ``ValueError`` unless a concrete ``value`` is an integer ``>= minimum``."""
    if not is_concrete(value):
        return
    integral = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if isinstance(value, (np.ndarray, jax.Array)):
        integral = value.ndim == 0 and jnp.issubdtype(value.dtype, jnp.integer)
    if not integral or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")


def check_bool(name: str, value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is ``True`` or ``False`` (a flag, not any truthy object)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}.")


def check_choice(name: str, value: Any, choices: tuple) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}.")


def check_players(value: Any, name: str) -> None:
    """Raise ``TypeError`` unless ``value`` is a ``Players(x=..., y=...)`` of arrays.

    Every leaf must be an array or a number (docs/design.md §1: the players' params are what
    the methods differentiate and update). A leaf that is not, such as the activation function
    an Equinox module holds, is named by its path, with the fix: ``gj.equinox.split`` for
    Equinox modules, closing over the value in the loss for any other pytree.
    """
    if not isinstance(value, Players):
        raise TypeError(
            f"{name} must be gj.Players(x=..., y=...), one pytree per player; "
            f"got {type(value).__name__}. Wrap your two players' params as gj.Players(x, y)."
        )
    if all(is_array_leaf(leaf) for leaf in jax.tree.leaves(value)):
        return
    for path, leaf in jax.tree_util.tree_flatten_with_path(value)[0]:
        if not is_array_leaf(leaf):
            player = getattr(value, path[0].name)
            described = repr(leaf)
            described = described if len(described) <= 80 else described[:77] + "..."
            raise TypeError(
                f"{name}{jax.tree_util.keystr(path)} is a {type(leaf).__name__} ({described}), not an array: "
                f"every leaf of a player's params must be an array or a number, since the methods differentiate "
                f"and update every leaf. {_non_array_hint(player)}"
            )


_ARRAY_LEAVES = (jax.Array, np.ndarray, np.generic, int, float, complex, jax.ShapeDtypeStruct)


def is_array_leaf(leaf: Any) -> bool:
    """Whether a params leaf is an array (tracers included) or a number."""
    return isinstance(leaf, _ARRAY_LEAVES) or hasattr(leaf, "__jax_array__")


def _non_array_hint(player: Any) -> str:
    """How to keep non-array values out of a player's params (Equinox modules get their helper)."""
    if any(cls.__module__.partition(".")[0] == "equinox" for cls in type(player).__mro__):
        return (
            "An Equinox module holds its functions and other non-array fields as leaves: split the two "
            "modules with pair = gj.equinox.split(x_module, y_module) and train pair.params (the arrays, "
            "as eqx.partition(module, eqx.is_inexact_array) keeps them; the rest stays static), with "
            "pair.game(loss) or pair.zero_sum(f) as the game."
        )
    return (
        "Keep non-array values out of the params: close over them in the loss instead (for an Equinox "
        "module, pair = gj.equinox.split(x_module, y_module) does this)."
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


def dtype_of(leaf: Any) -> jnp.dtype:
    """A leaf's own dtype (``jnp.result_type`` would turn a weak float32 into float64 under x64)."""
    return leaf.dtype if hasattr(leaf, "dtype") else jnp.result_type(leaf)


def leading_sizes(tree: Any) -> set:
    """The leading-axis sizes of a pytree's leaves (``None`` for a 0-d leaf)."""
    return {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in jax.tree.leaves(tree)}


def layout(tree: Any) -> list[tuple[tuple[int, ...], Any]]:
    """Each leaf's ``(shape, dtype)``, in tree order."""
    return [(jnp.shape(leaf), dtype_of(leaf)) for leaf in jax.tree.leaves(tree)]


def same_layout(tree: Any, reference: Any) -> bool:
    """Whether two pytrees have the same structure, shapes and dtypes (arrays or ``jax.ShapeDtypeStruct``)."""
    return jax.tree.structure(tree) == jax.tree.structure(reference) and layout(tree) == layout(reference)


def check_same_layout(
    tree: Any,
    reference: Any,
    name: str,
    reference_name: str,
    *,
    check_dtype: bool = True,
    hint: str = "Call tx.init with params of the same structure, shapes and dtypes you train.",
) -> None:
    """Raise ``ValueError`` unless ``tree`` has the structure, shapes (and dtypes) of ``reference``."""
    structure, expected = jax.tree.structure(tree), jax.tree.structure(reference)
    if structure != expected:
        raise ValueError(
            f"{name} does not have the tree structure of {reference_name}.\n"
            f"  expected: {expected}\n  got:      {structure}\n{hint}"
        )
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(reference)[0]]
    for path, (shape, dtype), (ref_shape, ref_dtype) in zip(paths, layout(tree), layout(reference), strict=True):
        if shape != ref_shape or (check_dtype and dtype != ref_dtype):
            raise ValueError(
                f"{_at(name, path)} has shape {shape} and dtype {dtype}, but {_at(reference_name, path)} has "
                f"shape {ref_shape} and dtype {ref_dtype}. {hint}"
            )


def _at(name: str, path: str) -> str:
    """``params.x['w']`` for an identifier-like name, ``the state (leaf [0].mu)`` otherwise."""
    if not path:
        return name
    return f"{name}{path}" if " " not in name else f"{name} (leaf {path})"


def check_state(state: Any, expected: Any) -> None:
    """Raise ``ValueError`` unless a transformation state has the layout of ``tx.init(params)``.

    ``expected`` is ``jax.eval_shape(tx.init, params)``; the message names the first leaf
    whose path, shape or dtype differs (a state built for other params, another stack).
    """
    if jax.tree.structure(state) == jax.tree.structure(expected) and layout(state) == layout(expected):
        return
    got, want = jax.tree_util.tree_flatten_with_path(state)[0], jax.tree_util.tree_flatten_with_path(expected)[0]
    got_paths = {jax.tree_util.keystr(p): leaf for p, leaf in got}
    detail = (
        f"tree structure differs:\n  expected: {jax.tree.structure(expected)}\n  got:      {jax.tree.structure(state)}"
    )
    for path, leaf in want:
        key = jax.tree_util.keystr(path)
        if key not in got_paths:
            detail = f"state{key} is missing (expected shape {jnp.shape(leaf)} {dtype_of(leaf)})"
            break
        mine = got_paths[key]
        if (jnp.shape(mine), dtype_of(mine)) != (jnp.shape(leaf), dtype_of(leaf)):
            detail = (
                f"state{key} has shape {jnp.shape(mine)} and dtype {dtype_of(mine)}, "
                f"expected shape {jnp.shape(leaf)} and dtype {dtype_of(leaf)}"
            )
            break
    raise ValueError(
        f"state does not match tx.init(params): {detail}. Build the state with tx.init (or gj.init_state) "
        "from params of the same structure, shapes and dtypes as the params you step, with the same "
        "transformation stack."
    )
