"""The training driver: :func:`fit` runs a :class:`~gamejax._src.training.step.Step` for many steps.

``fit`` only drives (docs/design.md §5): it validates its arguments, splits the run into
compiled calls (for the progress bar and checkpoints), replays a call whose divergence the
fast program only bracketed, and writes and resumes checkpoints. The step is
:mod:`~gamejax._src.training.step`, the compiled program :mod:`~gamejax._src.training.program`,
the cost accounting :mod:`~gamejax._src.training.cost`.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jax_core
from jax.sharding import Mesh

from gamejax._src.core import Batch, Game, GameTransformation, Players, StatefulGame, checks
from gamejax._src.training import checkpoint, fingerprint, sharding
from gamejax._src.training.program import Program, Status, run
from gamejax._src.training.progress import Progress
from gamejax._src.training.step import Metrics, Step, check_game_and_tx


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      params: the final params.
      state: the final transformation state.
      metrics: a dict of arrays with one entry per logged step (step 0, every ``log_every``
        steps, and the last step): ``step``, ``passes`` (cost so far, the papers' x-axis:
        ``step × passes_per_step``, or what a variable-cost method reports, see
        :func:`gamejax.passes_per_step`), ``loss_x``, ``loss_y``, ``field_norm`` (‖v‖),
        ``finite`` (all params finite), ``distance`` (‖ω − ω*‖, when an equilibrium is given)
        and any user metrics.
      step: the step count reached (pass it as ``initial_step`` to continue the run).
      diverged_at: int32, the step (counted as in ``metrics["step"]``) whose params or state
        came out non-finite, or at which a :func:`gamejax.skip_nonfinite` guard gave up; -1
        while ``status`` is ``Status.FINITE``. ``params`` and ``state`` are then those of the
        last finite step: the run froze there (later records repeat that point).
      status: int32, a :class:`Status` code: ``FINITE``, ``DIVERGED``, ``GAVE_UP`` or ``EXCEEDED``.
    """

    params: Players
    state: Any
    metrics: Metrics
    step: jax.Array
    diverged_at: jax.Array
    status: jax.Array


def fit(
    game: Game | StatefulGame,
    tx: GameTransformation,
    params: Players,
    *,
    steps: int,
    state: Any = None,
    sample: Callable[[jax.Array], Batch] | None = None,
    key: jax.Array | None = None,
    batches: Batch = None,
    log_every: int | None = None,
    progress: bool | None = None,
    equilibrium: Players | None = None,
    eval_batch: Batch = None,
    metrics: Callable[[Players, Any], Metrics] | None = None,
    label: str = "fit",
    initial_step: Any = 0,
    model_state: Any = None,
    mesh: Mesh | None = None,
    checkpoint_dir: str | None = None,
    checkpoint_every: int | None = None,
    diverge_above: float | None = None,
) -> FitResult:
    """Train ``params`` with ``tx`` on ``game`` for ``steps`` steps as compiled ``lax.scan`` chunks.

    Batches come from one of: ``sample(key) -> batch``, called inside the scan, step ``t``
    using ``sample(jax.random.fold_in(key, t))`` (so the trajectory does not depend on
    logging or chunking); ``batches``, a pytree whose leaves are stacked along a leading
    axis, step ``t`` using slice ``t % len``; or neither (``batch=None``, full-batch games).
    Metrics (see :class:`FitResult`) are recorded at the first step and every ``log_every``
    steps, evaluated on ``eval_batch`` if given, else on the batch of the step taken from
    that point (as a training loop logs the loss of the batch it trains on: the params do
    not depend on it yet). When the method's own first evaluation of the game in that step
    is at the point recorded (most methods), the losses and ‖v‖ come from it, so recording
    costs no extra evaluation, in compile time or in run time.

    Divergence: a step whose params or state come out non-finite is not applied; the run
    stops there and reports ``status`` (:class:`Status`) and ``diverged_at`` with the last
    finite params, instead of returning NaNs. Wrap ``tx`` in :func:`gamejax.skip_nonfinite` to
    skip such steps (a poisoned batch) and stop only after several in a row. A run that blows
    up without overflowing (plain GDA on a bilinear game) stops at the first record whose ‖v‖
    exceeds ``diverge_above``, with status ``EXCEEDED``. A top-level ``fit`` that returns a
    stopped run says so with a :class:`DivergenceWarning`.

    Checkpoints: with ``checkpoint_dir``, params, the full state, the step, the PRNG key and
    the metrics so far are written atomically every ``checkpoint_every`` steps and at the end
    (the two newest are kept). Calling ``fit`` again with the same arguments resumes from the
    newest checkpoint in ``checkpoint_dir`` and gives the same result, bit for bit, as an
    uninterrupted run; a finished run is returned from its last checkpoint without computing
    (``fit`` says which on stderr), and calling it with more ``steps`` extends the run. Each
    checkpoint records the program of one training step (docs/design.md §5): a call whose step
    differs (another learning rate, method, loss, batch shape or dtype) raises ``ValueError``
    naming the first difference instead of resuming another run. Checkpoints do not change what
    is recorded.

    The compiled program is cached on ``(game, tx, sample, metrics)``: calling ``fit`` again
    with the same objects (e.g. to continue a run) does not recompile. To continue a run,
    pass its ``params``, ``state`` and ``step`` back (``initial_step=result.step``): batches,
    step counts and passes then carry on where they stopped.

    ``fit`` is pure apart from the progress bar and checkpoints: it runs under ``jax.vmap``
    (seeds, initial points, hyperparameters captured by ``tx``), where the progress bar is
    switched off (checkpoints need concrete values).

    Args:
      game: the game.
      tx: the transformation.
      params: initial ``Players`` (finite).
      steps: number of steps (an integer ``>= 0``).
      state: initial state (default ``tx.init(params)``), e.g. to continue a run.
      sample: ``sample(key) -> batch``; needs ``key``.
      key: PRNG key for ``sample``.
      batches: stacked batches (alternative to ``sample``).
      log_every: steps between metric records (default: about 100 records, ``steps // 100``;
        resuming, the checkpoint's).
      progress: show a progress bar (default: on for more than 10 000 steps, off under tracing).
      equilibrium: a known equilibrium, to record ``distance``.
      eval_batch: the batch metrics are evaluated on.
      metrics: ``metrics(params, state) -> dict of scalars``, extra metrics to record.
      label: the progress bar's label.
      initial_step: the step count to start from (default 0), to continue a run.
      model_state: the initial model state of a :class:`gamejax.StatefulGame` (e.g.
        ``pair.model_state`` from :func:`gamejax.flax.split`); the result's state is then
        ``WithModelState(tx_state, model_state)``.
      mesh: a ``jax.sharding.Mesh`` for data parallelism: every batch is split along its
        batch axis over all the mesh's devices, params and state are replicated (see
        :func:`gamejax.shard`). Batch sizes must be multiples of the device count.
      checkpoint_dir: a directory to write checkpoints to and resume from (on a mesh over
        several processes, shared or one per process: docs/design.md §9).
      checkpoint_every: steps between checkpoints (a multiple of ``log_every``; default: the
        multiple of ``log_every`` nearest below ``steps // 10``).
      diverge_above: a field norm ‖v‖ above which the run counts as diverged (default: none,
        only non-finite values stop it), tested at every record (every ``log_every`` steps)
        at no extra cost; the run freezes at the first record above it.

    Returns:
      A :class:`FitResult` ``(params, state, metrics, step, diverged_at, status)``.

    Example:
      >>> import optax, gamejax as gj
      >>> game, init, optimum = gj.games.bilinear()
      >>> tx = gj.lookahead(k=6, alpha=0.5)(gj.gda(optax.sgd(0.3)))
      >>> result = gj.fit(game, tx, init, steps=600, equilibrium=optimum)
      >>> bool(result.metrics["distance"][-1] < 1e-6)
      True
    """
    check_game_and_tx(game, tx, "fit")
    checks.check_players(params, "params")
    checks.check_int("steps", steps, minimum=0)
    checks.check_int("initial_step", initial_step, minimum=0)
    if diverge_above is not None:
        if not checks.is_concrete(diverge_above):
            raise TypeError("diverge_above must be a concrete number (a Python float), not a traced value.")
        checks.check_number("diverge_above", diverge_above, low=0.0, low_open=True)
    if sample is not None and batches is not None:
        raise ValueError("fit takes either sample= or batches=, not both.")
    if sample is not None and key is None:
        raise ValueError("fit(sample=...) needs key=, a jax.random key, to draw the batches.")
    traced = _is_traced((params, state, key, batches, eval_batch, initial_step))
    under_transformation = traced or _under_transformation()
    if not under_transformation and not _host_all_finite(params):
        raise ValueError("params must be finite: the initial params contain NaN or Inf.")
    if log_every is None and checkpoint_dir is not None:  # a resumed or extended run keeps its records' spacing
        log_every = checkpoint.stored_log_every(checkpoint_dir)
    log_every, checkpoint_every = _log_and_checkpoint_every(steps, log_every, checkpoint_dir, checkpoint_every)
    if checkpoint_dir is not None and under_transformation:
        raise ValueError("checkpoint_dir needs concrete values: fit cannot write checkpoints under jax.vmap/jit.")
    progress = bool(steps > 10_000 if progress is None else progress) and not under_transformation

    step = Step(game, tx, None if mesh is None else sharding.as_auto(mesh))
    if state is None:
        state = step.init(params, model_state)
    elif model_state is not None:
        raise ValueError("fit takes model_state= only to start a run; a given state= already holds it.")
    if step.mesh is not None:
        params, state = sharding.replicate((params, state), step.mesh, what="(params, state)")
        batches = None if batches is None else sharding.shard_batch(batches, step.mesh, stacked=True)
        eval_batch = None if eval_batch is None else sharding.shard_batch(eval_batch, step.mesh)
        key = None if key is None else sharding.replicate(key, step.mesh, what="key")
    data = (batches, eval_batch, equilibrium, key)
    # Under vmap/jit no host replay is possible: test every step.
    program = Program(
        step,
        sample,
        metrics,
        _stacked_batch_count(batches),
        checked=under_transformation,
        diverge_above=None if diverge_above is None else float(diverge_above),
    )
    start = jnp.asarray(initial_step, jnp.int32) if traced else np.int32(initial_step)
    carry = (params, state, start, np.int32(Status.FINITE), np.int32(-1))
    logs: list[Metrics] = []
    target = int(initial_step) + steps if not traced else None
    if checkpoint_dir is not None:
        checkpoints = checkpoint.Checkpoints.open(checkpoint_dir, step.mesh)
        program_text = fingerprint.step_program(program, carry, data)
        carry, history = checkpoints.resume(carry, key, log_every, program_text)
        if step.mesh is not None:
            carry = (*sharding.replicate(carry[:2], step.mesh, what="(params, state)"), *carry[2:])
        logs = [] if history is None else [history]
        if history is not None:
            reached = int(carry[2])
            news = "returning the finished run" if reached >= target else f"resuming from step {reached} of {target}"
            print(f"gj.fit ({label}): {news} (checkpoint_dir {checkpoint_dir})", file=sys.stderr)
    if target is not None and target > _LAST_STEP:
        raise ValueError(
            f"fit counts steps in int32: initial_step + steps must be at most {_LAST_STEP}; got {target}. "
            "Split the run: start a new one from result.params and result.state with initial_step=0 "
            "and another key."
        )
    remaining = steps if target is None else target - int(carry[2])
    if remaining < 0:
        raise ValueError(
            f"the newest checkpoint in {checkpoint_dir} is at step {int(carry[2])}, past this run's last step "
            f"{target}; use another checkpoint_dir or more steps."
        )
    calls = _calls(remaining, log_every, checkpoint_every, progress, needs_first=not logs)
    bar = Progress(remaining, label) if progress else None
    for n, interval in calls:
        carry, chunk = run(program, carry, data, n, interval)
        logs.append(chunk if not logs else jax.tree.map(lambda a: a[1:], chunk))
        if checkpoint_dir is not None:
            logs = [_concatenate(logs)]
            checkpoints.save(carry, key, log_every, logs[0], program_text)
        if bar:
            bar.advance(n * interval)
    if bar:
        bar.close()
    params, state, reached, status, diverged_at = carry
    metrics = _concatenate(logs)
    if not under_transformation and int(status) != Status.FINITE:
        warnings.warn(_stopped(label, int(status), int(diverged_at), diverge_above), DivergenceWarning, stacklevel=2)
    elif not under_transformation and diverge_above is None and _grew(metrics["field_norm"]):
        first, last = (float(metrics["field_norm"][i]) for i in (0, -1))
        warnings.warn(
            f"gj.fit ({label}): the field norm grew from {first:.3g} to {last:.3g} over the run, which looks "
            f"diverged although it stayed finite. Pass diverge_above= (e.g. {100 * first:.3g}) to stop such a "
            "run at the first record above it, or lower the learning rate.",
            DivergenceWarning,
            stacklevel=2,
        )
    return FitResult(params, state, metrics, reached, diverged_at, status)


def _stopped(label: str, status: int, at: int, diverge_above: float | None) -> str:
    """The warning for a run that stopped early with ``status`` at step ``at``."""
    if status == Status.EXCEEDED:
        what = (
            f"diverged at step {at}: its field norm exceeded diverge_above={diverge_above:g} there, so "
            "result.params and result.state are those of that step"
        )
    else:
        how = "diverged" if status == Status.DIVERGED else "gave up (gj.skip_nonfinite)"
        what = (
            f"{how} at step {at}: its params or state came out non-finite there, so result.params "
            "and result.state are those of the last finite step"
        )
    return (
        f"gj.fit ({label}): the run {what} (result.status, result.diverged_at). Lower the learning "
        "rate, or wrap the method in gj.skip_nonfinite to skip isolated bad steps."
    )


_GROWTH = 1e6  # a finished run whose ‖v‖ grew by this factor is reported as looking diverged


def _grew(field_norm: jax.Array) -> bool:
    """Whether the last recorded ‖v‖ is over ``_GROWTH`` times the first (on a multi-host run,
    records are replicated, so every process reads the same)."""
    norms = np.asarray(jax.device_get(field_norm)) if field_norm.is_fully_addressable else None
    return norms is not None and norms.size > 1 and bool(norms[-1] > _GROWTH * max(norms[0], 1e-30))


class DivergenceWarning(RuntimeWarning):
    """Issued when a top-level :func:`fit` returns a run that diverged, exceeded ``diverge_above``
    or whose guard gave up, or whose field norm grew over a million-fold."""


_LAST_STEP = 2**31 - 1  # the step counter (batches, PRNG keys, records) is an int32


def _concatenate(logs: list[Metrics]) -> Metrics:
    """The metrics of several compiled calls as one history (one call's are returned as they are)."""
    if len(logs) == 1:
        return logs[0]
    return jax.tree.map(lambda *parts: jnp.concatenate(parts), *logs)


def _is_traced(tree: Any) -> bool:
    return any(not checks.is_concrete(leaf) for leaf in jax.tree.leaves(tree))


def _host_all_finite(tree: Any) -> bool:
    """Whether every inexact leaf is finite, tested on the host (no JAX computation is launched).

    Leaves this process cannot read whole (a multi-host array) are left to the compiled
    program, which freezes the run at a non-finite point anyway.
    """
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            continue
        array = np.asarray(leaf)
        if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
            return False
    return True


with jax_core.take_current_trace() as _EAGER:
    pass


def _under_transformation() -> bool:
    """Whether ``fit`` runs inside ``jax.vmap``/``jax.jit`` (e.g. a sweep over hyperparameters that
    only ``tx`` captures), where its results are tracers."""
    with jax_core.take_current_trace() as trace:
        return type(trace) is not type(_EAGER)


def _stacked_batch_count(batches: Batch) -> int | None:
    if batches is None:
        return None
    sizes = checks.leading_sizes(batches)
    if len(sizes) != 1 or None in sizes or 0 in sizes:
        raise ValueError(
            "batches must be a non-empty pytree whose leaves all have the same non-zero leading "
            f"(step) axis; got leading sizes {sorted(map(str, sizes))} (None: a 0-d leaf)."
        )
    return sizes.pop()


def _log_and_checkpoint_every(
    steps: int, log_every: int | None, checkpoint_dir: Any, checkpoint_every: int | None
) -> tuple[int, int | None]:
    """Validated ``(log_every, checkpoint_every)``; records fall on checkpoint boundaries."""
    if checkpoint_dir is None:
        if checkpoint_every is not None:
            raise ValueError("checkpoint_every was given without checkpoint_dir.")
        log_every = max(1, steps // 100) if log_every is None else log_every
        checks.check_int("log_every", log_every, minimum=1)
        return log_every, None
    # Records as without checkpoints (every steps // 100), checkpoints on a record near every steps // 10;
    # only a given checkpoint_every that is not a multiple of that spacing makes records denser.
    default_log = max(1, steps // 100)
    if checkpoint_every is None:
        log_every = default_log if log_every is None else log_every
        checks.check_int("log_every", log_every, minimum=1)
        checkpoint_every = log_every * max(1, steps // 10 // log_every)
    checks.check_int("checkpoint_every", checkpoint_every, minimum=1)
    if log_every is None:
        log_every = math.gcd(default_log, checkpoint_every)
    checks.check_int("log_every", log_every, minimum=1)
    if checkpoint_every % log_every:
        raise ValueError(
            f"checkpoint_every must be a multiple of log_every, so that checkpoints fall on records; "
            f"got checkpoint_every={checkpoint_every}, log_every={log_every}."
        )
    return log_every, checkpoint_every


def _calls(remaining: int, log_every: int, checkpoint_every: int | None, progress: bool, needs_first: bool):
    """The ``(n_intervals, interval)`` of each compiled call that covers ``remaining`` steps.

    Calls of equal size reuse one compiled program: ``checkpoint_every // log_every``
    intervals with checkpoints, about a twentieth of the run with a progress bar, else all.
    """
    n_intervals, remainder = divmod(remaining, log_every)
    if checkpoint_every is not None:
        size = checkpoint_every // log_every
    elif progress and n_intervals > 1:
        target = max(1, -(-n_intervals // 20))
        size = max(d for d in range(1, target + 1) if n_intervals % d == 0)
    else:
        size = max(n_intervals, 1)
    calls = [(size, log_every)] * (n_intervals // size)
    if n_intervals % size:
        calls.append((n_intervals % size, log_every))
    if remainder:
        calls.append((1, remainder))
    if not calls and needs_first:
        calls.append((0, log_every))  # no step to take: record the starting point only
    return calls
