"""Restarted stochastic variance-reduced extragradient (SVRE) for games with a finite dataset."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Game, GameTransformation, PassCount, Players, checks, split_batch


class SVREState(NamedTuple):
    """State of :func:`svre`.

    Attributes:
      snapshot: the epoch's snapshot ``ω_S``.
      snapshot_field: the full-batch field ``μ`` at the snapshot.
      average: the online average ``ω̄`` of the iterates (the restart point).
      averaged: iterates in the average since the last restart (saturates at the int32 maximum).
      remaining: inner steps left in the current epoch (a new epoch starts at 0).
      epoch: epochs started (saturates at the int32 maximum; only ``epoch > 0`` is used).
      key: PRNG key data (``jax.random.key_data``) for restarts and epoch lengths.
      evaluations: passes so far (:class:`gamejax.PassCount`), in minibatch-gradient units (a
        full-batch snapshot counts ``snapshot_cost``), weighted by the game's ``cost``;
        :func:`gamejax.fit` reports it as ``passes``.
    """

    snapshot: Players
    snapshot_field: Players
    average: Players
    averaged: jax.Array
    remaining: jax.Array
    epoch: jax.Array
    key: jax.Array
    evaluations: PassCount


def svre(
    learning_rate: Any,
    *,
    full_batch: Batch,
    dataset_size: int,
    snapshot_cost: Any,
    minibatch_scale: Any = 1.0,
    restart_probability: Any = 0.1,
    key: jax.Array | None = None,
) -> GameTransformation:
    """Restarted SVRE (Chavdarova et al. 2019; lookahead paper, App. D.1, Alg. 2).

    Extragradient with variance-reduced fields. Each epoch takes a snapshot ``ω_S`` and its
    full-batch field ``μ``; inside the epoch the field on a minibatch ``B`` is corrected to

    .. math::  d(ω) = μ + s\\,(v_B(ω) − v_B(ω_S)),

    where ``s`` (``minibatch_scale``) makes ``s·v_B`` an unbiased estimate of the full-batch
    field: 1 when the game's loss on a batch is a *mean* over its samples (GAN losses), ``n / B``
    when it is a *sum* (as SB-G's). Each step extrapolates ``ω' = ω − η d(ω)``, then updates
    ``ω ← ω − η d(ω')``, each with its own minibatch. Epoch lengths are geometric with mean
    ``dataset_size``. At the start of each epoch after the first, with probability
    ``restart_probability``, the iterate restarts from the running average ``ω̄`` of the
    iterates. One step is one inner iteration: four minibatch evaluations (``v_B`` at two
    points for each of the two stages), plus a full batch (``snapshot_cost``
    minibatch-equivalents) when an epoch starts; the state counts them in ``evaluations``,
    which :func:`gamejax.fit` reports as ``passes``.

    Args:
      learning_rate: ``η > 0``, one value or ``gj.Players(x=..., y=...)`` (may be traced).
      full_batch: the batch that is the whole dataset (for SB-G, ``None``).
      dataset_size: ``n``, the number of samples (sets the epoch length).
      snapshot_cost: the cost of one full-batch evaluation in minibatches (``n / B``).
      minibatch_scale: ``s`` above (1 for mean-reduced losses, ``n / B`` for summed ones).
      restart_probability: ``p``, the chance to restart at each new epoch (0.1 in Table 4).
      key: PRNG key for the restarts and epoch lengths (default ``jax.random.key(0)``).

    Returns:
      A :class:`GameTransformation` with state :class:`SVREState`. Batches: one minibatch for
      both stages, or :class:`gamejax.PerEvaluation` of 2 (extrapolation, update).

    Example:
      >>> import jax, gamejax as gj
      >>> game, init, optimum = gj.games.sbg(jax.random.key(0))
      >>> tx = gj.svre(0.1, full_batch=None, dataset_size=100, snapshot_cost=100, minibatch_scale=100)  # B = 1

    References:
      Chavdarova, Gidel, Fleuret & Lacoste-Julien, `Reducing Noise in GAN Training with Variance
      Reduced Extragradient <https://arxiv.org/abs/1904.08598>`_, 2019 (restarted SVRE);
      Chavdarova et al, `Taming GANs with Lookahead-Minmax <https://arxiv.org/abs/2006.14567>`_,
      2021 (Alg. 2, Table 4).
    """
    rates = checks.per_player_number(
        "learning_rate", learning_rate, low=0.0, low_open=True, high=float("inf"), high_open=True
    )
    checks.check_int("dataset_size", dataset_size, minimum=1)
    checks.check_number("snapshot_cost", snapshot_cost, low=0.0, high=float("inf"), high_open=True)
    checks.check_number("minibatch_scale", minibatch_scale, low=0.0, low_open=True, high=float("inf"), high_open=True)
    checks.check_number("restart_probability", restart_probability, low=0.0, high=1.0)
    key = jax.random.key(0) if key is None else key
    if not hasattr(key, "dtype"):
        raise TypeError(f"key must be a jax.random key, e.g. jax.random.key(0); got {type(key).__name__}.")
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)  # plain integers in the state: checkpointable, comparable

    def step(params: Players, field: Players) -> Players:
        return Players(
            *(
                jax.tree.map(lambda p, g, r=r: (p - r * g).astype(p.dtype), pp, gg)
                for pp, gg, r in zip(params, field, rates, strict=True)
            )
        )

    def init(params: Players) -> SVREState:
        checks.check_players(params, "params")
        zero = jnp.zeros([], jnp.int32)
        return SVREState(params, optax.tree.zeros_like(params), params, zero, zero, zero, key, PassCount.zero())

    def new_epoch(game: Game, params: Players, state: SVREState) -> tuple[Players, SVREState]:
        key, restart_key, length_key = jax.random.split(jax.random.wrap_key_data(state.key), 3)
        restart = jax.random.bernoulli(restart_key, restart_probability) & (state.epoch > 0)
        start = optax.tree.where(restart, state.average, params)
        length = jax.random.geometric(length_key, 1.0 / dataset_size).astype(jnp.int32)
        return start, state._replace(
            snapshot=start,
            snapshot_field=game.field(start, full_batch),
            averaged=jnp.where(restart, 1, state.averaged),
            remaining=jnp.maximum(length, 1),
            epoch=optax.safe_increment(state.epoch),
            key=jax.random.key_data(key),
            evaluations=state.evaluations.add(snapshot_cost * game.cost),
        )

    def update(game: Game, params: Players, state: SVREState, batch: Batch = None):
        checks.check_same_layout(params, state.snapshot, "params", "the SVRE snapshot")
        start, state = jax.lax.cond(
            state.remaining <= 0, lambda p, s: new_epoch(game, p, s), lambda p, s: (p, s), params, state
        )
        extrapolation_batch, update_batch = split_batch(batch, 2, "svre")

        def corrected(point: Players, minibatch: Batch) -> Players:
            here, there = game.field(point, minibatch), game.field(state.snapshot, minibatch)
            return jax.tree.map(lambda mu, a, b: mu + minibatch_scale * (a - b), state.snapshot_field, here, there)

        extrapolated = step(start, corrected(start, extrapolation_batch))
        new = step(start, corrected(extrapolated, update_batch))
        t = state.averaged.astype(jnp.float32)
        average = jax.tree.map(lambda a, w: (t * a + w) / (t + 1), state.average, new)
        average = jax.tree.map(lambda a, p: a.astype(p.dtype), average, params)
        state = state._replace(
            average=average,
            averaged=optax.safe_increment(state.averaged),
            remaining=state.remaining - 1,
            evaluations=state.evaluations.add(4.0 * game.cost),
        )
        return optax.tree.sub(new, params), state

    return GameTransformation(init, update)
