"""The compiled training program that :func:`gamejax.fit` drives: intervals of steps, then a record.

One ``jax.jit``-compiled function runs ``n`` logging intervals as nested ``lax.scan``s: each
interval takes ``interval`` steps, tests finiteness, and records metrics. Its carry is
``(params, state, t, status, diverged_at)``; :class:`Status` says how the run stands.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, first_batch
from gamejax._src.core.game import counting_evaluations
from gamejax._src.core.tree_math import all_finite
from gamejax._src.training import sharding
from gamejax._src.training.cost import reported_evaluations
from gamejax._src.training.step import Metrics, Step
from gamejax._src.wrappers.guards import gave_up


class Status(enum.IntEnum):
    """How a run of :func:`gamejax.fit` stands (``FitResult.status``, an int32 array of these codes).

    Attributes:
      FINITE: every step stayed finite.
      DIVERGED: a step's params or state came out non-finite; the run froze at the last finite step.
      GAVE_UP: a :func:`gamejax.skip_nonfinite` guard gave up after too many non-finite steps in a row.
    """

    FINITE = 0
    DIVERGED = 1
    GAVE_UP = 2


# Inside the program only, never returned: an unchecked interval ended non-finite somewhere.
BRACKETED = -1


@dataclasses.dataclass(frozen=True)
class Program:
    """What a compiled training program depends on besides its arrays (hashable: a jit static argument).

    A *checked* program tests every step: a step whose params or state are not finite (or
    whose :func:`gamejax.skip_nonfinite` guard gave up) sets the status and ``diverged_at``
    (its step number), and the params and state freeze at the last finite step (later steps
    are computed and discarded with a ``jnp.where``; under ``jax.vmap`` a ``lax.cond`` would
    run both branches anyway). An unchecked program tests only at the end of each logging
    interval (on the tiniest games the per-step test costs several times the step): an
    interval that ended non-finite freezes at its start with status :data:`BRACKETED`, and
    :func:`run` replays that call with the checked program to find the exact step.
    """

    step: Step
    sample: Callable | None
    metrics: Callable | None
    n_batches: int | None
    checked: bool = True

    def batch_at(self, t: jax.Array, data: tuple) -> Batch:
        stacked, _, _, key = data
        if self.sample is not None:
            batch = self.sample(jax.random.fold_in(key, t))
        elif stacked is not None:
            batch = jax.tree.map(lambda a: a[t % self.n_batches], stacked)
        else:
            return None
        mesh = self.step.mesh
        return batch if mesh is None else sharding.constrain_batch(batch, mesh)

    def metrics_batch(self, t: jax.Array, data: tuple) -> Batch:
        _, given, _, key = data
        if given is not None:
            return given
        if self.sample is not None:
            return first_batch(self.sample(jax.random.fold_in(jax.random.fold_in(key, t), 0x6D657472)))
        return first_batch(self.batch_at(jnp.maximum(t - 1, 0), data))

    def record(self, carry: tuple, data: tuple, passes_per_step: float) -> Metrics:
        params, state, t, _, _ = carry
        out = self.step.evaluate(params, state, self.metrics_batch(t, data), data[2])
        reported = reported_evaluations(state)
        passes = t * passes_per_step if reported is None else reported
        out.update(step=t, passes=jnp.asarray(passes, jnp.float32))
        if self.metrics is not None:
            out.update(self.metrics(params, state))
        return out

    def advance(self, carry: tuple, data: tuple, n: int, tally: list) -> tuple:
        """``n`` steps; the cost of one (traced once, with the step) goes into ``tally``."""

        def body(carry, _):
            params, state, t, status, diverged_at = carry
            with counting_evaluations() as count:
                new_params, new_state, _ = self.step(params, state, self.batch_at(t, data))
            tally.append(count.passes)
            if not self.checked:
                return (new_params, new_state, t + 1, status, diverged_at), None
            running = status == Status.FINITE
            finite = all_finite((new_params, new_state))
            quit_ = gave_up(new_state)
            params, state = optax.tree.where(finite & running, (new_params, new_state), (params, state))
            new_status = jnp.where(finite, jnp.where(quit_, Status.GAVE_UP, Status.FINITE), Status.DIVERGED)
            stops = running & (new_status != Status.FINITE)
            status = jnp.where(stops, new_status, status).astype(jnp.int32)
            diverged_at = jnp.where(stops, t + 1, diverged_at).astype(jnp.int32)
            return (params, state, t + 1, status, diverged_at), None

        return jax.lax.scan(body, carry, None, length=n)[0]

    def run_intervals(self, carry: tuple, data: tuple, n_intervals: int, interval: int) -> tuple[tuple, Metrics]:
        """``n_intervals`` × (``interval`` steps, then a record), after a record of the starting point."""
        tally: list = []

        def body(carry, _):
            new = self.advance(carry, data, interval, tally)
            if not self.checked:
                params, state, t, status, diverged_at = new
                running = status == Status.FINITE  # (a run that stopped in an earlier call stays frozen)
                fine = all_finite((params, state)) & ~gave_up(state)
                params, state = optax.tree.where(running & fine, (params, state), carry[:2])
                status = jnp.where(running & ~fine, BRACKETED, status).astype(jnp.int32)
                new = (params, state, t, status, diverged_at)
            return new, self.record(new, data, tally[-1])

        end, logs = jax.lax.scan(body, carry, None, length=n_intervals)
        if not tally:  # no interval: trace one step for its cost, without running it
            jax.eval_shape(lambda c: self.advance(c, data, 1, tally), carry)
        first = self.record(carry, data, tally[-1])
        return end, jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, logs)


_run_intervals = jax.jit(Program.run_intervals, static_argnums=(0, 3, 4))


def run(program: Program, carry: tuple, data: tuple, n: int, interval: int) -> tuple[tuple, Metrics]:
    """One compiled call; a divergence the unchecked program only bracketed is replayed step by step."""
    new, chunk = _run_intervals(program, carry, data, n, interval)
    if not program.checked and int(new[3]) == BRACKETED:
        new, chunk = _run_intervals(dataclasses.replace(program, checked=True), carry, data, n, interval)
    return new, chunk
