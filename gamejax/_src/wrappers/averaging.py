"""Parameter averaging (EMA, uniform moving average) as wrappers that leave the dynamics alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import (
    Batch,
    Game,
    GameTransformation,
    Players,
    check_not_transformation,
    check_transformation,
    checks,
)
from gamejax._src.core.tree_math import lerp, nodes_of_type


class EmaState(NamedTuple):
    """State of :func:`ema`.

    Attributes:
      inner: the inner transformation's state.
      average: the averaged params (leaves with a leading axis when several decays are tracked).
      count: int32, steps taken. It saturates at the int32 maximum (2^31 − 1 steps) instead
        of wrapping to negative values: it only decides ``count >= start``, which stays true.
      n_averaged: int32, iterates folded into the average (including the initial params);
        saturates like ``count``: past 2^31 − 1 averaged iterates, each new one gets weight
        ``1/(2^31 − 1)`` instead of ``1/n``, both under 5e-10 (below float32 resolution).
      phase: int32 in ``[0, every)``, ``count % every`` kept on its own so that it stays
        right after ``count`` saturates (and never grows).
    """

    inner: Any
    average: Players
    count: jax.Array
    n_averaged: jax.Array
    phase: jax.Array


class MovingAverageState(NamedTuple):
    """State of :func:`moving_average`; fields as in :class:`EmaState`."""

    inner: Any
    average: Players
    count: jax.Array
    n_averaged: jax.Array
    phase: jax.Array


_AVERAGE_STATES = (EmaState, MovingAverageState)


def _blend(average: jax.Array, params: jax.Array, weight: jax.Array) -> jax.Array:
    """``average + weight·(params − average)``; a 1-D ``weight`` indexes the leading axis."""
    if jnp.ndim(weight) == 1:
        weight = jnp.reshape(weight, (-1,) + (1,) * jnp.ndim(params))
        params = params[None]
    return lerp(average, params, weight)


def _averaging_wrapper(
    state_type: type,
    name: str,
    weight: Callable[[jax.Array], jax.Array],
    stack: int | None,
    start: Any,
    every: Any,
    include_initial: Any,
) -> Callable[[GameTransformation], GameTransformation]:
    """A wrapper that folds the params after every ``every``-th step (from ``start``) into an average.

    ``weight(n)`` is the weight of the new iterate when it is the ``n``-th one averaged
    (counting the initial params when ``include_initial``); ``stack`` is the number of averages
    tracked at once (``None``: one, no leading axis).
    """

    def initial_average(params: Players) -> Players:
        if stack is None:
            return params
        return jax.tree.map(lambda p: jnp.broadcast_to(p[None], (stack, *jnp.shape(p))), params)

    def one_average(average: Players) -> Players:
        return average if stack is None else jax.tree.map(lambda a: a[0], average)

    def wrap(inner: GameTransformation) -> GameTransformation:
        check_transformation(inner, f"{name}(...)", f"gj.{name}(...)(gj.gda(optax.sgd(0.1)))")

        def init(params: Players):
            zero = jnp.zeros([], jnp.int32)
            n_averaged = jnp.asarray(include_initial, jnp.int32)
            return state_type(inner.init(params), initial_average(params), zero, n_averaged, zero)

        def update(game: Game, params: Players, state, batch: Batch = None):
            checks.check_same_layout(params, one_average(state.average), "params", f"the {name} average")
            updates, inner_state = inner.update(game, params, state.inner, batch)
            new_params = optax.apply_updates(params, updates)
            # No counter wraps: `count` and `n_averaged` saturate at the int32 maximum (a
            # saturated count is still >= start), and `count % every` is the bounded `phase`.
            count = optax.safe_increment(state.count)
            phase = ((state.phase % every + 1) % every).astype(jnp.int32)
            averaging = (count >= start) & (phase == 0)
            n_averaged = jnp.where(averaging, optax.safe_increment(state.n_averaged), state.n_averaged)
            # Before `start`, the average tracks the iterate (weight 1).
            w = jnp.where(averaging, weight(n_averaged), jnp.where(count < start, 1.0, 0.0))
            average = jax.tree.map(lambda a, p: _blend(a, p, w), state.average, new_params)
            return updates, state_type(inner_state, average, count, n_averaged, phase)

        return GameTransformation(init, update)

    return wrap


def ema(decay: Any, *, every: Any = 1, init: str = "params") -> Callable[[GameTransformation], GameTransformation]:
    """Exponential moving average of the params, kept in the state; the dynamics are unchanged.

    .. math::  \\bar\\omega_t = \\beta \\bar\\omega_{t-1} + (1 - \\beta) \\omega_t,
       \\qquad \\bar\\omega_0 = \\omega_0

    (averaging paper, eq. 2; lookahead paper, eq. EMA). Read the average with
    :func:`averaged`. Several decays can be tracked in one run, as the averaging paper tunes
    ``β``: pass a sequence and the average gets a leading axis, one entry per decay. With
    ``every = k`` over a ``lookahead(k, ...)`` stack, only the slow weights (the params right
    after each backtrack) are averaged: the lookahead paper's "EMA-slow" (App. F, Listing 1).
    ``init="first"`` starts the average at the first averaged iterate instead of ``ω_0``, as
    Listing 1 does; with few averaged iterates and ``β`` near 1 this keeps the random
    initialization out of the average (App. F's reason for ``β = 0.8`` with large ``k``).

    Args:
      decay: ``β`` in ``[0, 1]``, or a sequence of them (may be traced).
      every: average only after every ``every``-th step (an integer ``>= 1``).
      init: ``"params"`` (the average starts at the initial params, averaging paper eq. 2) or
        ``"first"`` (it starts at the first averaged iterate; until then it holds the initial params).

    Returns:
      A wrapper ``ema(decay)(inner) -> GameTransformation`` with state :class:`EmaState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.ema(0.999)(gj.lookahead(k=5, alpha=0.5)(gj.gda(optax.adam(2e-4))))
      >>> tx = gj.ema([0.99, 0.999, 0.9999])(gj.gda(optax.adam(2e-4)))   # three averages at once
      >>> tx = gj.ema(0.8, every=5)(gj.lookahead(5, 0.5)(gj.gda(optax.sgd(0.1))))  # EMA-slow

    References:
      Yazıcı et al, `The Unusual Effectiveness of Averaging in GAN Training
      <https://arxiv.org/abs/1806.04498>`_, 2019 (§3, eq. 2); Chavdarova et al, `Taming GANs
      with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_, 2021 (App. F).
    """
    check_not_transformation(decay, "gj.ema(decay)(inner)")
    if isinstance(decay, Players):  # a tuple, which would silently mean two averages of both players
        raise ValueError(
            "decay is one β for both players' average (or a list of β, one average each), not one "
            f"per player; got {decay!r}."
        )
    checks.check_number("decay", decay, low=0.0, high=1.0, sequence=True)
    checks.check_int("every", every, minimum=1)
    decays = jnp.asarray(decay)
    if decays.ndim > 1 or decays.size == 0:
        raise ValueError(f"decay must be a number or a non-empty 1-D sequence of numbers; got shape {decays.shape}.")
    stack = decays.shape[0] if decays.ndim == 1 else None
    checks.check_choice("init", init, ("params", "first"))
    # The first iterate averaged replaces the average (weight 1); it is the second one when the
    # initial params count as the first.
    return _averaging_wrapper(
        EmaState, "ema", lambda n: jnp.where(n == 1, 1.0, 1.0 - decays), stack, 0, every, init == "params"
    )


def moving_average(*, start: Any = 0, every: Any = 1) -> Callable[[GameTransformation], GameTransformation]:
    """Uniform moving average (MA) of the params from step ``start`` on; dynamics unchanged.

    .. math::  \\bar\\omega_n = \\tfrac{n-1}{n} \\bar\\omega_{n-1} + \\tfrac{1}{n} \\omega_t

    where ``n`` counts the iterates averaged so far (averaging paper, eq. 1). ``start = 0``
    includes the initial params; before step ``start`` the average equals the current
    iterate. Read it with :func:`averaged`.

    Args:
      start: the first step whose params are averaged (an integer ``>= 0``, may be traced).
      every: average only after every ``every``-th step (an integer ``>= 1``).

    Returns:
      A wrapper ``moving_average()(inner) -> GameTransformation`` with state
      :class:`MovingAverageState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.moving_average(start=1000)(gj.gda(optax.adam(2e-4)))

    References:
      Yazıcı et al, `The Unusual Effectiveness of Averaging in GAN Training
      <https://arxiv.org/abs/1806.04498>`_, 2019 (§3, eq. 1).
    """
    checks.check_int("start", start, minimum=0)
    checks.check_int("every", every, minimum=1)
    return _averaging_wrapper(MovingAverageState, "moving_average", lambda n: 1.0 / n, None, start, every, start == 0)


def averaged(state: Any, decay: int | None = None) -> Players:
    """The averaged params from the state of any stack containing :func:`ema` or :func:`moving_average`.

    Returns the average of the outermost averaging wrapper; pass ``state.inner`` (or a deeper
    state) to reach an inner one. With several EMA decays the leaves have a leading axis,
    one entry per decay; ``decay=i`` returns the average of the ``i``-th decay alone (params
    shaped like the model's). An averaging wrapper averages what its inner transformation
    produces: wrap it outermost to average the iterates you see; placed inside a
    :func:`~gamejax.lookahead` it averages the fast weights.

    Raises:
      ValueError: if the state holds no averaging wrapper's state, or ``decay`` is not an index
        of its decays.

    Example:
      >>> import optax, jax.numpy as jnp, gamejax as gj
      >>> tx = gj.ema(0.9)(gj.gda(optax.sgd(0.1)))
      >>> state = tx.init(gj.Players(jnp.zeros(2), jnp.zeros(2)))
      >>> gj.averaged(state).x
      Array([0., 0.], dtype=float32)
    """
    found = nodes_of_type(state, _AVERAGE_STATES)
    if not found:
        raise ValueError(
            "This state holds no averaged params: wrap the transformation with gj.ema(decay) or "
            "gj.moving_average() (e.g. gj.ema(0.999)(tx)) and pass the state of that stack."
        )
    average = found[0].average
    if decay is None:
        return average
    sizes = checks.leading_sizes(average)
    if len(sizes) != 1 or None in sizes:
        raise ValueError("decay= selects one of several EMA decays, but this average tracks a single one.")
    checks.check_int("decay", decay, minimum=0)
    (count,) = sizes
    if int(decay) >= count:
        raise ValueError(f"decay must be an index below the {count} tracked decays; got {decay}.")
    return jax.tree.map(lambda leaf: leaf[int(decay)], average)
