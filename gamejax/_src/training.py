"""The pure step function and the ``lax.scan`` training driver (DESIGN.md §5)."""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from gamejax._src import checkpoint, checks, cost, guards, sharding
from gamejax._src.core import Batch, Game, GameTransformation, Players, apply_updates, first_batch
from gamejax._src.model_state import StatefulGame, WithModelState, bound_game, init_state
from gamejax._src.tree_math import all_finite, select

Metrics = dict[str, jax.Array]


class FitResult(NamedTuple):
    """What :func:`fit` returns.

    Attributes:
      params: the final params.
      state: the final transformation state.
      metrics: a dict of arrays with one entry per logged step (step 0, every ``log_every``
        steps, and the last step): ``step``, ``passes`` (cost so far, the papers' x-axis:
        ``step × passes_per_step``, or what the method reports when its cost
        varies, see :func:`reported_evaluations`), ``loss_x``, ``loss_y``, ``field_norm`` (‖v‖),
        ``finite`` (all params finite), ``distance`` (‖ω − ω*‖, when an equilibrium is given)
        and any user metrics.
      step: the step count reached (pass it as ``initial_step`` to continue the run).
      diverged_at: int32, -1 if every step stayed finite; else the step (counted as in
        ``metrics["step"]``) whose params or state came out non-finite, or at which a
        :func:`gamejax.skip_nonfinite` guard gave up. ``params`` and ``state`` are then those
        of the last finite step: the run froze there (later records repeat that point).
    """

    params: Players
    state: Any
    metrics: Metrics
    step: jax.Array
    diverged_at: jax.Array


def make_step(
    game: Game, tx: GameTransformation, *, mesh: Mesh | None = None, update_norm: bool = False
) -> Callable[..., tuple[Players, Any, Metrics]]:
    """The pure training step ``step(params, state, batch=None) -> (params, state, metrics)``.

    ``metrics`` is empty, or with ``update_norm=True`` holds ``update_norm`` (‖updates‖): off by
    default because its per-leaf reductions add ~40% to a jitted step called from Python on a
    small network (one reduction per leaf; free inside ``lax.scan`` when unused). Compile it with
    ``jax.jit``; it also runs under ``jax.vmap`` and ``jax.lax.scan``. When traced, the step
    checks that the transformation's state matches ``tx.init(params)`` (tree structure, leaf
    shapes and dtypes) and raises ``ValueError`` naming the first mismatch otherwise.

    With a ``mesh`` (data parallelism, see :mod:`gamejax._src.sharding`), the batch is split
    along its batch axis over every device of the mesh and params and state stay replicated;
    place the inputs with :func:`gamejax.shard` / :func:`gamejax.replicate` to avoid copies.

    On a :class:`gamejax.StatefulGame` (modules with BatchNorm or spectral normalization),
    ``state`` is ``WithModelState(tx_state, model_state)`` (:func:`gamejax.init_state`): the
    transformation sees the game bound to the step's starting model state, which then
    advances once (see :mod:`gamejax._src.model_state`).

    Example:
      >>> import jax, optax, jax.numpy as jnp, gamejax as gj
      >>> game = gj.zero_sum(lambda x, y: x * y)
      >>> tx = gj.extragradient(optax.sgd(0.1))
      >>> step = jax.jit(gj.make_step(game, tx))
      >>> params = gj.Players(jnp.array(1.0), jnp.array(1.0))
      >>> params, state, metrics = step(params, tx.init(params))
    """

    mesh = None if mesh is None else sharding.as_auto(mesh)
    checks.check_bool("update_norm", update_norm)

    def step(params: Players, state: Any, batch: Batch = None):
        checks.check_players(params, "params")
        tx_game, tx_state = bound_game(game, state)
        checks.check_state(tx_state, jax.eval_shape(tx.init, params))
        if mesh is not None:
            batch = sharding.constrain_batch(batch, mesh)
        updates, tx_state = tx.update(tx_game, params, tx_state, batch)
        if isinstance(game, StatefulGame):
            tx_state = WithModelState(tx_state, game.advance(params, state.model_state, first_batch(batch)))
        params = apply_updates(params, updates)
        if mesh is not None:
            params, tx_state = sharding.constrain_replicated((params, tx_state), mesh)
        return params, tx_state, ({"update_norm": optax.tree.norm(updates)} if update_norm else {})

    return step


def _trace_cost(game: Game, tx: GameTransformation, params: Players, batch: Batch) -> tuple[int, float]:
    """(field calls, declared extra gradient-equivalents) of one step, traced abstractly."""
    if isinstance(game, StatefulGame):
        raise TypeError(f"{game.name!r} carries model state: count the cost of game.bind(model_state).")
    calls = []

    def counted(p: Players, b: Batch):
        calls.append(1)
        return game.field_and_losses(p, b)

    counting_game = game.with_field(counted)
    with cost.counting() as extra:
        state = jax.eval_shape(tx.init, params)
        jax.eval_shape(lambda p, s, b: tx.update(counting_game, p, s, b), params, state, batch)
    return len(calls), float(sum(extra))


def evaluations_per_step(game: Game, tx: GameTransformation, params: Players, batch: Batch = None) -> int:
    """How many times one step of ``tx`` evaluates the game's field.

    This is how many independent batches the step can consume (:class:`gamejax.PerEvaluation`,
    :func:`gamejax.per_evaluation`). Counted by tracing one step abstractly (``jax.eval_shape``:
    nothing is computed); a call inside a ``lax`` loop or ``lax.cond`` body counts once.
    """
    return _trace_cost(game, tx, params, batch)[0]


def passes_per_step(game: Game, tx: GameTransformation, params: Players, batch: Batch = None) -> float:
    """The cost of one step in "passes", gradient-equivalents (the papers' x-axis).

    Each field evaluation counts 1 (a player's gradient with its mixed product, LEAD's unit,
    is one evaluation); derivative work on top of an evaluation counts what it declares:
    consensus's vector-Jacobian product and SGA's two products 2 each. Methods whose cost
    varies (CGD's solves, SVRE's snapshots) report their own count in their state, which
    :func:`fit` uses instead (see :func:`reported_evaluations`): for them this function gives
    only the fixed part (CGD: 1, its field), not the solver's products.
    """
    calls, extra = _trace_cost(game, tx, params, batch)
    total = calls + extra
    return int(total) if float(total).is_integer() else total


def _reports_evaluations(node: Any) -> bool:
    return isinstance(node, tuple) and "evaluations" in getattr(node, "_fields", ())


def reported_evaluations(state: Any) -> jax.Array | None:
    """The game evaluations a method counts itself, if a state in the stack reports them.

    Methods whose cost varies from step to step (CGD/ACGD with a tolerance, SVRE's snapshots)
    keep a cumulative ``evaluations`` field in their state; :func:`fit` reports it as ``passes``
    instead of ``step × evaluations_per_step``.
    """
    found = [n for n in jax.tree.leaves(state, is_leaf=_reports_evaluations) if _reports_evaluations(n)]
    return found[0].evaluations if found else None


def evaluate(game: Game, params: Players, batch: Batch = None, equilibrium: Players | None = None) -> Metrics:
    """Losses, ‖v‖, finiteness and (if given) the distance to ``equilibrium`` at ``params``."""
    field, losses = game.field_and_losses(params, batch)
    metrics = {
        "loss_x": jnp.asarray(losses.x),
        "loss_y": jnp.asarray(losses.y),
        "field_norm": optax.tree.norm(field),
        "finite": all_finite(params),
    }
    if equilibrium is not None:
        metrics["distance"] = optax.tree.norm(optax.tree.sub(params, equilibrium))
    return metrics


def _metrics_key(key: jax.Array, t: jax.Array) -> jax.Array:
    """The key of the batch metrics are evaluated on at step ``t`` (never a training key)."""
    return jax.random.fold_in(jax.random.fold_in(key, t), 0x6D657472)


def _is_traced(tree: Any) -> bool:
    return any(not checks.is_concrete(leaf) for leaf in jax.tree.leaves(tree))


def _under_transformation() -> bool:
    """Whether ``fit`` runs inside ``jax.vmap``/``jax.jit`` (e.g. a sweep over hyperparameters that
    only ``tx`` captures), where its results are tracers. Conservative if JAX's probe moves."""
    try:
        from jax._src.core import trace_state_clean
    except ImportError:
        return True
    return not trace_state_clean()


class _Progress:
    """A tqdm bar when tqdm is installed, else one line per chunk on stderr."""

    def __init__(self, total: int, label: str):
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        self.bar = tqdm(total=total, desc=label, unit="step") if tqdm else None
        self.total, self.done, self.label = total, 0, label

    def advance(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        else:
            print(f"{self.label}: {self.done}/{self.total} steps", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


_RUNNING, _UNLOCATED = -1, -2  # diverged_at while every step is finite / "somewhere in this call"


@dataclasses.dataclass(frozen=True)
class _Driver:
    """What a compiled training program depends on besides its arrays (hashable: a jit static argument).

    The program's carry is ``(params, state, t, diverged_at)``; ``diverged_at`` is -1 while the
    run is finite. A *checked* program tests every step: a step whose params or state are not
    finite (or whose :func:`gamejax.skip_nonfinite` guard gave up) sets ``diverged_at`` to its
    step number and the params and state freeze at the last finite step (later steps are
    computed and discarded with a ``jnp.where``; under ``jax.vmap`` a ``lax.cond`` would run
    both branches anyway). An unchecked program tests only at the end of each logging interval
    (on the tiniest games the per-step test costs several times the step): if the interval
    ended non-finite it freezes at the interval's start and sets ``diverged_at`` to -2, and
    :func:`fit` replays that call with the checked program to find the exact step.
    """

    game: Game
    tx: GameTransformation
    sample: Callable | None
    metrics: Callable | None
    n_batches: int | None
    passes_per_step: float
    mesh: Mesh | None = None
    checked: bool = True

    def batch_at(self, t: jax.Array, data: tuple) -> Batch:
        stacked, _, _, key = data
        if self.sample is not None:
            batch = self.sample(jax.random.fold_in(key, t))
        elif stacked is not None:
            batch = jax.tree.map(lambda a: a[t % self.n_batches], stacked)
        else:
            return None
        return batch if self.mesh is None else sharding.constrain_batch(batch, self.mesh)

    def metrics_batch(self, t: jax.Array, data: tuple) -> Batch:
        _, given, _, key = data
        if given is not None:
            return given
        if self.sample is not None:
            return first_batch(self.sample(_metrics_key(key, t)))
        return first_batch(self.batch_at(jnp.maximum(t - 1, 0), data))

    def record(self, carry, data) -> Metrics:
        params, state, t, _ = carry
        out = evaluate(bound_game(self.game, state)[0], params, self.metrics_batch(t, data), data[2])
        reported = reported_evaluations(state)
        passes = t * self.passes_per_step if reported is None else reported
        out.update(step=t, passes=jnp.asarray(passes, jnp.float32))
        if self.metrics is not None:
            out.update(self.metrics(params, state))
        return out

    def advance(self, carry, data, n: int):
        step = make_step(self.game, self.tx, mesh=self.mesh)

        def body(carry, _):
            params, state, t, diverged_at = carry
            new_params, new_state, _ = step(params, state, self.batch_at(t, data))
            if not self.checked:
                return (new_params, new_state, t + 1, diverged_at), None
            running = diverged_at == _RUNNING
            finite = all_finite((new_params, new_state))
            params, state = select(finite & running, (new_params, new_state), (params, state))
            stops = running & ~(finite & ~guards.gave_up(new_state))
            return (params, state, t + 1, jnp.where(stops, t + 1, diverged_at).astype(jnp.int32)), None

        return jax.lax.scan(body, carry, None, length=n)[0]

    def run_intervals(self, carry, data, n_intervals: int, interval: int):
        """``n_intervals`` × (``interval`` steps, then a record), after a record of the starting point."""

        def body(carry, _):
            new = self.advance(carry, data, interval)
            if not self.checked:
                params, state, t, diverged_at = new
                running = diverged_at == _RUNNING  # (a run that diverged in an earlier call stays frozen)
                fine = all_finite((params, state)) & ~guards.gave_up(state)
                params, state = select(running & fine, (params, state), carry[:2])
                new = (params, state, t, jnp.where(running & ~fine, _UNLOCATED, diverged_at).astype(jnp.int32))
            return new, self.record(new, data)

        first = self.record(carry, data)
        carry, logs = jax.lax.scan(body, carry, None, length=n_intervals)
        return carry, jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, logs)


_run_intervals = jax.jit(_Driver.run_intervals, static_argnums=(0, 3, 4))


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


def fit(
    game: Game,
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
) -> FitResult:
    """Train ``params`` with ``tx`` on ``game`` for ``steps`` steps as compiled ``lax.scan`` chunks.

    Batches come from one of: ``sample(key) -> batch``, called inside the scan, step ``t``
    using ``sample(jax.random.fold_in(key, t))`` (so the trajectory does not depend on
    logging or chunking); ``batches``, a pytree whose leaves are stacked along a leading
    axis, step ``t`` using slice ``t % len``; or neither (``batch=None``, full-batch games).
    Metrics (see :class:`FitResult`) are recorded at the first step and every ``log_every``
    steps, evaluated on ``eval_batch`` if given, else on a fresh sample, else on the step's
    stacked batch.

    Divergence: a step whose params or state come out non-finite is not applied; the run
    stops there and reports ``diverged_at`` with the last finite params, instead of returning
    NaNs. Wrap ``tx`` in :func:`gamejax.skip_nonfinite` to skip such steps (a poisoned batch)
    and stop only after several in a row.

    Checkpoints: with ``checkpoint_dir``, params, the full state, the step, the PRNG key and
    the metrics so far are written atomically every ``checkpoint_every`` steps and at the end
    (the two newest are kept). Calling ``fit`` again with the same arguments resumes from the
    newest checkpoint in ``checkpoint_dir`` and gives the same result, bit for bit, as an
    uninterrupted run; a finished run is returned from its last checkpoint without computing.

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
      log_every: steps between metric records (default: about 100 records; with
        checkpoints, a divisor of ``checkpoint_every``).
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
      checkpoint_dir: a directory to write checkpoints to and resume from.
      checkpoint_every: steps between checkpoints (a multiple of ``log_every``; default:
        ``steps // 10``).

    Returns:
      A :class:`FitResult` ``(params, state, metrics, step, diverged_at)``.

    Example:
      >>> import optax, gamejax as gj
      >>> game, init, optimum = gj.games.bilinear()
      >>> tx = gj.lookahead(k=6, alpha=0.5)(gj.gda(optax.sgd(0.3)))
      >>> result = gj.fit(game, tx, init, steps=600, equilibrium=optimum)
      >>> bool(result.metrics["distance"][-1] < 1e-6)
      True
    """
    checks.check_players(params, "params")
    checks.check_int("steps", steps, minimum=0)
    checks.check_int("initial_step", initial_step, minimum=0)
    if sample is not None and batches is not None:
        raise ValueError("fit takes either sample= or batches=, not both.")
    if sample is not None and key is None:
        raise ValueError("fit(sample=...) needs key=, a jax.random key, to draw the batches.")
    traced = _is_traced((params, state, key, batches, eval_batch, initial_step))
    under_transformation = traced or _under_transformation()
    if not under_transformation and not bool(all_finite(params)):
        raise ValueError("params must be finite: the initial params contain NaN or Inf.")
    log_every, checkpoint_every = _log_and_checkpoint_every(steps, log_every, checkpoint_dir, checkpoint_every)
    if checkpoint_dir is not None and under_transformation:
        raise ValueError("checkpoint_dir needs concrete values: fit cannot write checkpoints under jax.vmap/jit.")
    progress = bool(steps > 10_000 if progress is None else progress) and not under_transformation

    if state is None:
        state = init_state(game, tx, params, model_state)
    elif model_state is not None:
        raise ValueError("fit takes model_state= only to start a run; a given state= already holds it.")
    if mesh is not None:
        mesh = sharding.as_auto(mesh)
        params, state = sharding.replicate((params, state), mesh)
        batches = None if batches is None else sharding.shard_batch(batches, mesh, stacked=True)
        eval_batch = None if eval_batch is None else sharding.shard_batch(eval_batch, mesh)
    data = (batches, eval_batch, equilibrium, key)
    # Under vmap/jit no host replay is possible: test every step.
    driver = _Driver(game, tx, sample, metrics, _stacked_batch_count(batches), 0, mesh, under_transformation)
    start = jnp.asarray(initial_step, jnp.int32)
    cost = _fit_passes(driver, params, state, jax.eval_shape(driver.batch_at, start, data), under_transformation)
    driver = dataclasses.replace(driver, passes_per_step=cost)

    carry = (params, state, start, jnp.asarray(_RUNNING, jnp.int32))
    logs: list[Metrics] = []
    if checkpoint_dir is not None:
        carry, logs = _resume(checkpoint_dir, carry, key, log_every, mesh)
    target = int(initial_step) + steps if not traced else None
    remaining = steps if target is None else target - int(carry[2])
    if remaining < 0:
        raise ValueError(
            f"the newest checkpoint in {checkpoint_dir} is at step {int(carry[2])}, past this run's last step "
            f"{target}; use another checkpoint_dir or more steps."
        )
    calls = _calls(remaining, log_every, checkpoint_every, progress, needs_first=not logs)
    bar = _Progress(remaining, label) if progress else None
    for n, interval in calls:
        carry, chunk = _run_call(driver, carry, data, n, interval)
        logs.append(chunk if not logs else jax.tree.map(lambda a: a[1:], chunk))
        if checkpoint_dir is not None:
            _save(checkpoint_dir, carry, key, log_every, logs)
        if bar:
            bar.advance(n * interval)
    if bar:
        bar.close()
    history = jax.tree.map(lambda *parts: jnp.concatenate(parts), *logs)
    params, state, step, diverged_at = carry
    return FitResult(params, state, history, step, diverged_at)


_PASSES: dict = {}


def _abstract(tree: Any) -> tuple:
    return jax.tree.structure(tree), tuple(checks.layout(tree))


def _fit_passes(driver: _Driver, params: Players, state: Any, batch: Batch, under_transformation: bool) -> float:
    """:func:`passes_per_step` of the driver's step, cached on the game, tx and shapes (tracing a
    step costs ~0.2 s for a GAN: a repeated ``fit`` call should cost only its compiled run).
    Not cached inside a transformation, where ``tx`` may hold tracers."""
    key = (driver.game, driver.tx, _abstract(params), _abstract(batch))
    if under_transformation or key not in _PASSES:
        value = passes_per_step(bound_game(driver.game, state)[0], driver.tx, params, batch)
        if under_transformation:
            return value
        if len(_PASSES) > 256:
            _PASSES.clear()
        _PASSES[key] = value
    return _PASSES[key]


def _run_call(driver: _Driver, carry: tuple, data: tuple, n: int, interval: int) -> tuple[tuple, Metrics]:
    """One compiled call; a divergence the unchecked program only bracketed is replayed step by step."""
    new, chunk = _run_intervals(driver, carry, data, n, interval)
    if not driver.checked and int(new[3]) == _UNLOCATED:
        new, chunk = _run_intervals(dataclasses.replace(driver, checked=True), carry, data, n, interval)
    return new, chunk


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
    checkpoint_every = max(1, steps // 10) if checkpoint_every is None else checkpoint_every
    checks.check_int("checkpoint_every", checkpoint_every, minimum=1)
    if log_every is None:
        log_every = math.gcd(max(1, steps // 100), checkpoint_every)
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


def _save(directory: Any, carry: tuple, key: Any, log_every: int, logs: list[Metrics]) -> None:
    params, state, t, diverged_at = carry
    history = jax.tree.map(lambda *parts: jnp.concatenate(parts), *logs)
    trees = {"params": params, "state": state, "step": t, "diverged_at": diverged_at, "metrics": history}
    if key is not None:
        trees["key"] = key
    checkpoint.save(directory, int(t), trees, {"log_every": log_every})


def _key_bits(key: jax.Array) -> jax.Array:
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def _resume(directory: Any, carry: tuple, key: Any, log_every: int, mesh: Mesh | None) -> tuple[tuple, list]:
    """The carry and metrics of the newest checkpoint in ``directory`` (unchanged if there is none)."""
    newest = checkpoint.latest(directory)
    if newest is None:
        return carry, []
    params, state, t, diverged_at = carry
    templates = {"params": params, "state": state, "step": t, "diverged_at": diverged_at, "metrics": None}
    if key is not None:
        templates["key"] = key
    trees, meta = checkpoint.restore(newest, templates)
    if meta["log_every"] != log_every:
        raise ValueError(
            f"checkpoint {newest} was written with log_every={meta['log_every']}, this call has "
            f"log_every={log_every}; pass log_every={meta['log_every']} to continue that run."
        )
    if key is not None and not bool(jnp.all(_key_bits(trees["key"]) == _key_bits(key))):
        raise ValueError(f"checkpoint {newest} was written with another PRNG key: pass the run's original key=.")
    params, state = trees["params"], trees["state"]
    if mesh is not None:
        params, state = sharding.replicate((params, state), mesh)
    return (params, state, trees["step"], trees["diverged_at"]), [trees["metrics"]]
