"""Extragradient (EG), Extra-Adam, and extrapolation from the past (PastExtraAdam)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Game, GameTransformation, Players, checks, split_batch
from gamejax._src.core import optax_players as base_lib


class ExtragradientState(NamedTuple):
    """State of :func:`extragradient`: each player's base optimizer state."""

    base: Players


def extragradient(base: Any, *, extrapolation_updates_state: bool = True) -> GameTransformation:
    """Extragradient: extrapolate with the field, then update the *original* point.

    .. math::
       \\omega_{t+1/2} = \\omega_t + \\mathrm{base}(v(\\omega_t)), \\qquad
       \\omega_{t+1} = \\omega_t + \\mathrm{base}(v(\\omega_{t+1/2}))

    With ``optax.sgd(η)`` this is Korpelevich's method, eq. EG of the lookahead paper. With a
    stateful base such as ``optax.adam`` it is Extra-Adam (Gidel et al. 2019, Alg. 4): by
    default the extrapolation step *updates* the base state (moment estimates and step count
    advance twice per step, as the authors' code does); with
    ``extrapolation_updates_state=False`` the extrapolation uses the state without changing
    it, and only the update step advances it. Two game evaluations per step.

    Schedules: an Optax schedule in ``base`` sees the base's update count, which by default
    advances twice per step, so a schedule over ``N`` counts ends at step ``N/2``; index it by
    training step with ``gj.per_step(schedule, 2)`` (1 with
    ``extrapolation_updates_state=False``).

    Stochastic games: a plain batch is used for both evaluations. To draw independent samples
    for the extrapolation and the update (the lookahead paper's Alg. 4), pass
    ``gj.PerEvaluation(stacked)`` with a leading axis of 2 — index 0 for the extrapolation,
    index 1 for the update; ``gj.per_evaluation(sample, 2)`` builds such a sampler for
    :func:`gamejax.fit`.

    Args:
      base: an ``optax.GradientTransformation`` for both players or ``gj.Players`` of them.
      extrapolation_updates_state: whether the extrapolation step advances the base state.

    Returns:
      A :class:`GameTransformation` with state :class:`ExtragradientState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.extragradient(optax.adam(2e-4, b1=0.5))            # Extra-Adam
      >>> tx = gj.lookahead(k=5, alpha=0.5)(gj.extragradient(optax.sgd(0.3)))   # LA-EG

    References:
      Korpelevich, The extragradient method for finding saddle points, 1976;
      Gidel et al, `A Variational Inequality Perspective on GANs
      <https://arxiv.org/abs/1802.10551>`_, 2019 (Alg. 4, Extra-Adam);
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      2021 (eq. EG, Alg. 4).

    Warning:
      The game is evaluated at the extrapolated point. Models with non-trainable state
      (BatchNorm statistics) see that extra evaluation; thread such state explicitly.
    """
    bases = base_lib.as_players(base)
    checks.check_bool("extrapolation_updates_state", extrapolation_updates_state)

    def init(params: Players) -> ExtragradientState:
        return ExtragradientState(base_lib.init(bases, params))

    def update(game: Game, params: Players, state: ExtragradientState, batch: Batch = None):
        extrapolation_batch, update_batch = split_batch(batch, 2, "extragradient")
        field = game.field(params, extrapolation_batch)
        half_updates, half_state = base_lib.update(bases, field, state.base, params)
        extrapolated = optax.apply_updates(params, half_updates)
        field = game.field(extrapolated, update_batch)
        base_state = half_state if extrapolation_updates_state else state.base
        updates, base_state = base_lib.update(bases, field, base_state, params)
        return updates, ExtragradientState(base_state)

    return GameTransformation(init, update)


class PastExtragradientState(NamedTuple):
    """State of :func:`past_extragradient`.

    Attributes:
      base: each player's base optimizer state.
      past: the field at the previous step's extrapolated point, ``v(ω_{t−1/2})``.
      count: int32, steps taken, saturating at the int32 maximum (``optax.safe_increment``);
        only ``count == 0`` (the first step, with no past field) matters.
    """

    base: Players
    past: Players
    count: jax.Array


def past_extragradient(base: Any) -> GameTransformation:
    """Extrapolation from the past: extragradient whose extrapolation reuses the previous step's field.

    .. math::
       \\omega_{t+1/2} = \\omega_t + \\mathrm{base}(v(\\omega_{t-1/2})), \\qquad
       \\omega_{t+1} = \\omega_t + \\mathrm{base}(v(\\omega_{t+1/2}))

    One game evaluation per step (at the extrapolated point), against extragradient's two.
    With ``optax.sgd(η)`` this is Popov's method, Gidel et al.'s extrapolation from the past:
    its extrapolated points ``ω_{t+1/2}`` follow OGDA's recursion
    ``ω'_{t+1} = ω'_t − 2ηv(ω'_t) + ηv(ω'_{t−1})``. With ``optax.adam`` it is PastExtraAdam,
    Gidel et al.'s Alg. 4 with "Option 2: extrapolation from the past": the extrapolation feeds
    the saved gradient to Adam and the update the new one, so the moment estimates (and the
    step count of their bias correction) advance twice per step, the saved gradient entering
    them twice. That is *not* ``gj.optimistic(optax.adam(...), on=...)``, whose Adam state
    advances once per step on one gradient (``tests/test_beyond.py`` checks both against a
    transcription of Alg. 4). On the first step there is no past field: the extrapolation is
    skipped (``ω_{1/2} = ω_0``, the base state untouched), a plain step. An Optax schedule in
    ``base`` therefore sees a count that advances once on the first step and twice on every
    later one.

    Args:
      base: an ``optax.GradientTransformation`` for both players or ``gj.Players`` of them.

    Returns:
      A :class:`GameTransformation` with state :class:`PastExtragradientState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.past_extragradient(optax.adam(2e-4, b1=0.5))      # PastExtraAdam
      >>> tx = gj.past_extragradient(optax.sgd(0.1))                # Popov's method

    References:
      Popov, A modification of the Arrow-Hurwicz method for search of saddle points, 1980;
      Gidel et al, `A Variational Inequality Perspective on GANs
      <https://arxiv.org/abs/1802.10551>`_, ICLR 2019 ("extrapolation from the past"; Alg. 4,
      Option 2).
    """
    bases = base_lib.as_players(base)

    def init(params: Players) -> PastExtragradientState:
        return PastExtragradientState(
            base_lib.init(bases, params), optax.tree.zeros_like(params), jnp.zeros([], jnp.int32)
        )

    def update(game: Game, params: Players, state: PastExtragradientState, batch: Batch = None):
        (batch,) = split_batch(batch, 1, "past_extragradient")
        checks.check_same_layout(state.past, params, "the past field", "params", check_dtype=False)
        first = state.count == 0
        half_updates, half_state = base_lib.update(bases, state.past, state.base, params)
        extrapolated = optax.tree.where(first, params, optax.apply_updates(params, half_updates))
        base_state = optax.tree.where(first, state.base, half_state)
        field = game.field(extrapolated, batch)
        updates, base_state = base_lib.update(bases, field, base_state, params)
        past = jax.tree.map(lambda f, p: f.astype(p.dtype), field, state.past)
        return updates, PastExtragradientState(base_state, past, optax.safe_increment(state.count))

    return GameTransformation(init, update)
