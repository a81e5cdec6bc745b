"""Optax schedules indexed by training step under methods that update their base several times a step.

An Optax schedule is a function of the base optimizer's own update count. A method that calls
its base more than once per training step advances that count faster than the steps:
``extragradient`` twice per step (the extrapolation and the update; once with
``extrapolation_updates_state=False``), ``alternating`` ``y_steps`` times for ``y`` and
``x_steps`` times for ``x``, ``unrolled`` and ``alternating_lookahead`` likewise (see each
method's docstring). A 2000-step cosine schedule inside ``extragradient`` then reaches its end
at step 1000. :func:`per_step` indexes a schedule by the training step instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from gamejax._src.core import checks


def per_step(schedule: Callable[[Any], Any], updates_per_step: int) -> Callable[[Any], Any]:
    """``schedule`` indexed by training step when the base updates ``updates_per_step`` times a step.

    Returns ``lambda count: schedule(count // updates_per_step)``: every base update within
    training step ``t`` (counts ``t·k … t·k + k − 1``) uses ``schedule(t)``, as a hand-written
    loop that sets the learning rate once per step does.

    Args:
      schedule: an Optax schedule, ``count -> value``.
      updates_per_step: base updates per training step, ``k``: 2 for ``extragradient`` (1 with
        ``extrapolation_updates_state=False``), ``y_steps``/``x_steps`` for the two players of
        ``alternating`` (give each player its own base with ``gj.Players``).

    Returns:
      A schedule for the base optimizer.

    Example:
      >>> import optax, gamejax as gj
      >>> cosine = optax.cosine_decay_schedule(1e-3, decay_steps=2000)
      >>> tx = gj.extragradient(optax.adam(gj.per_step(cosine, 2)))   # decays over 2000 steps
      >>> tx = gj.alternating(gj.Players(optax.adam(gj.per_step(cosine, 1)),
      ...                                optax.adam(gj.per_step(cosine, 5))), y_steps=5)
    """
    if not callable(schedule):
        raise TypeError(f"per_step: schedule must be a callable count -> value (an Optax schedule); got {schedule!r}.")
    checks.check_int("updates_per_step", updates_per_step, minimum=1)
    if updates_per_step == 1:
        return schedule
    return lambda count: schedule(jnp.asarray(count) // updates_per_step)
