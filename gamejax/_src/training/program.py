"""The compiled training program that :func:`gamejax.fit` drives: intervals of steps, then a record.

One ``jax.jit``-compiled function runs ``n`` logging intervals as nested ``lax.scan``s: each
interval takes ``interval`` steps, tests finiteness, and records metrics. Its carry is
``(params, state, t, status, diverged_at)``; :class:`Status` says how the run stands.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Players, first_batch
from gamejax._src.core.game import Evaluation, counting_evaluations
from gamejax._src.core.tree_math import all_finite
from gamejax._src.training import sharding
from gamejax._src.training.cost import reported_evaluations
from gamejax._src.training.step import Metrics, Step, metrics_of
from gamejax._src.wrappers.guards import gave_up


class Status(enum.IntEnum):
    """How a run of :func:`gamejax.fit` stands (``FitResult.status``, an int32 array of these codes).

    Attributes:
      FINITE: every step stayed finite.
      DIVERGED: a step's params or state came out non-finite; the run froze at the last finite step.
      GAVE_UP: a :func:`gamejax.skip_nonfinite` guard gave up after too many non-finite steps in a row.
      EXCEEDED: a record's field norm ‖v‖ exceeded ``fit``'s ``diverge_above``; the run froze there.
    """

    FINITE = 0
    DIVERGED = 1
    GAVE_UP = 2
    EXCEEDED = 3


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

    A run can blow up with finite params: with ``diverge_above``, a record whose field norm
    ‖v‖ exceeds it sets status ``EXCEEDED`` and ``diverged_at`` to the recorded step, and the
    params and state freeze at that point. The record computes ‖v‖ anyway, so the test costs
    nothing; its resolution is ``log_every`` steps. (A NaN ‖v‖ does not count: at finite params
    it comes from a poisoned batch, which :func:`gamejax.skip_nonfinite` may be there to skip.)
    """

    step: Step
    sample: Callable | None
    metrics: Callable | None
    n_batches: int | None
    checked: bool = True
    diverge_above: float | None = None

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

    def record(self, params: Players, state: Any, t: jax.Array, data: tuple, passes_per_step, start: tuple) -> Metrics:
        """The metrics at step ``t`` from the field and losses ``start`` there (:func:`metrics_of`)."""
        out = metrics_of(params, *start, data[2])
        reported = reported_evaluations(state)
        passes = t * passes_per_step if reported is None else reported
        out.update(step=t, passes=jnp.asarray(passes, jnp.float32))
        if self.metrics is not None:
            out.update(self.metrics(params, state))
        return out

    def guarded_step(self, carry: tuple, batch: Batch) -> tuple[tuple, Evaluation | None]:
        """One step from ``carry`` (a checked program freezes at the last finite point, see the
        class docstring), and the step's evaluation at its starting point (:meth:`Step.step_from`)."""
        params, state, t, status, diverged_at = carry
        new_params, new_state, _, start = self.step.step_from(params, state, batch)
        if not self.checked:
            return (new_params, new_state, t + 1, status, diverged_at), start
        running = status == Status.FINITE
        finite = all_finite((new_params, new_state))
        new_status = jnp.where(finite, jnp.where(gave_up(new_state), Status.GAVE_UP, Status.FINITE), Status.DIVERGED)
        stops = running & (new_status != Status.FINITE)
        params, state = optax.tree.where(finite & running, (new_params, new_state), (params, state))
        status = jnp.where(stops, new_status, status).astype(jnp.int32)
        diverged_at = jnp.where(stops, t + 1, diverged_at).astype(jnp.int32)
        return (params, state, t + 1, status, diverged_at), start

    def bracket(self, start: tuple, end: tuple) -> tuple:
        """An unchecked interval that ended non-finite freezes at its ``start`` with status BRACKETED."""
        params, state, t, status, diverged_at = end
        running = status == Status.FINITE  # (a run that stopped in an earlier call stays frozen)
        fine = all_finite((params, state)) & ~gave_up(state)
        params, state = jax.lax.cond(running & fine, lambda: (params, state), lambda: start[:2])
        status = jnp.where(running & ~fine, BRACKETED, status).astype(jnp.int32)
        return params, state, t, status, diverged_at

    def stop_above(self, start: tuple, end: tuple, record: Metrics) -> tuple:
        """A run still going at ``start`` whose record there has ‖v‖ above ``diverge_above``
        freezes at ``start`` with status EXCEEDED (this precedes anything later in the interval)."""
        exceeded = (start[3] == Status.FINITE) & (record["field_norm"] > self.diverge_above)
        params, state = jax.lax.cond(exceeded, lambda: start[:2], lambda: end[:2])
        status = jnp.where(exceeded, Status.EXCEEDED, end[3]).astype(jnp.int32)
        diverged_at = jnp.where(exceeded, start[2], end[4]).astype(jnp.int32)
        return params, state, end[2], status, diverged_at

    def run_intervals(self, carry: tuple, data: tuple, n_intervals: int, interval: int) -> tuple[tuple, Metrics]:
        """A record of the starting point, then ``n_intervals`` × (``interval`` steps, then a record).

        Compile time is what a user waits for first, so the batch draw, the step and the record
        each appear once in the program. Pass ``i`` of an outer loop runs interval ``i``'s steps
        in an inner loop whose first iteration also records (under a ``lax.cond``) the point
        reached, on the batch its step uses; a last pass (``i = n_intervals``) takes one step
        only for that record and discards it. The record reuses the step's own evaluation of the
        game at that point when the method made one (:meth:`Step.step_from`), so it adds neither
        a field evaluation to the program nor one to the run; otherwise it evaluates the game.
        """
        tally: list = []  # the cost of one step, counted while the loop body traces it
        evaluate = jax.jit(  # jit caches the trace, so it serves both the shapes below and the loop
            lambda params, state, batch: self.step.bound(state)[0].field_and_losses(params, first_batch(batch))
        )

        def one_pass(carry, i):
            last = i == n_intervals

            def body(j, inner):
                carry, record = inner
                params, state, t = carry[:3]
                batch = self.batch_at(t, data)
                given = data[1]
                with counting_evaluations() as count:
                    new, start = self.guarded_step(carry, batch)
                tally.append(count.passes)
                if given is not None or start is None:
                    start = evaluate(params, state, batch if given is None else given)
                else:
                    start = (start.field, start.losses)

                def at_start():
                    return self.record(params, state, t, data, tally[-1], start)

                return new, jax.lax.cond(j == 0, at_start, lambda: record)

            shapes = jax.eval_shape(evaluate, *carry[:2], self.batch_at(carry[2], data))
            blank = jax.eval_shape(lambda c, s: self.record(*c[:3], data, 0.0, s), carry, shapes)
            blank = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), blank)
            end, record = jax.lax.fori_loop(0, jnp.where(last, 1, interval), body, (carry, blank))
            end = jax.lax.cond(last, lambda: carry, lambda: end)
            end = end if self.checked else self.bracket(carry, end)
            return (end if self.diverge_above is None else self.stop_above(carry, end, record)), record

        return jax.lax.scan(one_pass, carry, jnp.arange(n_intervals + 1))


_run_intervals = jax.jit(Program.run_intervals, static_argnums=(0, 3, 4))


def run(program: Program, carry: tuple, data: tuple, n: int, interval: int) -> tuple[tuple, Metrics]:
    """One compiled call; a divergence the unchecked program only bracketed is replayed step by step."""
    new, chunk = _run_intervals(program, carry, data, n, interval)
    if not program.checked and int(new[3]) == BRACKETED:
        new, chunk = _run_intervals(dataclasses.replace(program, checked=True), carry, data, n, interval)
    return new, chunk
