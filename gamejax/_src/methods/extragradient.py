"""Extragradient (EG) and, with an Adam base, Extra-Adam."""

from __future__ import annotations

from typing import Any, NamedTuple

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
