"""Run by tests/test_multihost.py: one of several JAX processes forming one runtime on 127.0.0.1.

``python multihost_script.py PART PORT PROCESSES PROCESS_ID WORKDIR``, with
``XLA_FLAGS=--xla_force_host_platform_device_count=2``: every process has two CPU devices and the
mesh spans all of them. Each process checks the multi-process run against its own
single-process run of the same computation (float64, to 1e-12), prints one ``ok`` line per
check, and exits non-zero on the first failure.

PART ``train``: ``fit(sample=, mesh=)`` (lookahead-Extra-Adam, CGD, LEAD) and continuing a CGD
run from its global params and state, ``fit(batches=)``
from process-local rows (and the wrong ``PartitionSpec`` refused), ``make_step(mesh=)`` in a
hand-written loop, typed keys and locally committed params on the mesh, values that differ
between processes refused, a sharded seed sweep.

PART ``checkpoints``: checkpoint and resume bit-identical with one shared directory (one
writer) and with one directory per process; the skew cases (a process missing its newest
checkpoint resumes from the common one; a process with none, one behind by two, or holding
another run's, raise the same error in every process within seconds).
"""

from __future__ import annotations

import faulthandler
import os
import pathlib
import sys
import time

assert "--xla_force_host_platform_device_count=2" in os.environ.get("XLA_FLAGS", ""), "set XLA_FLAGS first"

import jax  # noqa: E402

PART, PORT, PROCESSES, ME, WORKDIR = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{PORT}",
    num_processes=PROCESSES,
    process_id=ME,
    initialization_timeout=30,
    heartbeat_timeout_seconds=15,
    shutdown_timeout_seconds=15,
)
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

import gamejax as gj  # noqa: E402
from gamejax._src.training import checkpoint  # noqa: E402

DIM, BATCH, STEPS = 3, 16, 6
ROWS = BATCH // PROCESSES  # each process's rows of a batch
DEVICES = 2 * PROCESSES


def loss(x, y, batch):
    """Nonlinear in x and y, a mean over the batch rows: its Hessian products depend on the data."""
    return jnp.mean(jnp.tanh(batch @ x) * (batch @ y)) + 0.3 * jnp.sum(x**2) - 0.3 * jnp.sum(y**2)


GAME = gj.zero_sum(loss, name="nonlinear data game")
INIT = gj.Players(jnp.array([0.5, -1.0, 2.0]), jnp.array([1.0, 0.2, -0.7]))
LA_EG = gj.lookahead(3, 0.5)(gj.extragradient(optax.adam(0.05)))
METHODS = {
    "lookahead(extragradient(adam))": LA_EG,
    "cgd": gj.cgd(0.2, tol=1e-12, maxiter=20),
    "lead": gj.lead(optax.sgd(0.1, momentum=0.3), coupling=0.5),
}


def sample(key):
    return jax.random.normal(key, (BATCH, DIM))


WATCHDOG = 60  # seconds a check may take (compiling included) before this process dumps its stack and exits


def check(name: str, ok: bool, detail: str = "") -> None:
    print(("ok  " if ok else "FAIL") + f" [process {ME}] {name} {detail}", flush=True)
    if not ok:
        sys.exit(1)
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)  # a hang in the next check ends the process


def on_host(tree):
    """Every leaf as a NumPy array; a global array that is not replicated is gathered first."""

    def fetch(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable and not leaf.is_fully_replicated:
            replicated = NamedSharding(leaf.sharding.mesh, PartitionSpec())
            leaf = jax.jit(lambda a: a, out_shardings=replicated)(leaf)
        if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        return np.asarray(leaf)

    return jax.tree.map(fetch, tree)


def max_difference(a, b) -> float:
    pairs = zip(jax.tree.leaves(on_host(a)), jax.tree.leaves(on_host(b)), strict=True)
    return max(float(np.max(np.abs(np.asarray(u, float) - np.asarray(v, float)))) for u, v in pairs)


def identical(a, b) -> bool:
    pairs = zip(jax.tree.leaves(on_host(a)), jax.tree.leaves(on_host(b)), strict=True)
    return all(np.array_equal(u, v) for u, v in pairs)


def devices_of(tree) -> set[int]:
    return {len(leaf.sharding.device_set) for leaf in jax.tree.leaves(tree)}


def raises(name: str, fn, *fragments: str, within: float | None = None) -> None:
    """``fn()`` raises ``ValueError`` whose message holds every fragment (in ``within`` seconds)."""
    if within is not None:
        faulthandler.dump_traceback_later(3 * within, exit=True)
    start = time.perf_counter()
    try:
        fn()
    except ValueError as error:
        took = time.perf_counter() - start
        message = str(error)
        missing = [f for f in fragments if f not in message]
        check(name, not missing and (within is None or took < within), f"{took:.1f} s: {message[:300]}")
    else:
        check(name, False, "no error")


def mine(rows, axis):
    """This process's share of a global batch: its block of rows along ``axis``."""
    return jax.tree.map(lambda a: jax.lax.slice_in_dim(a, ME * ROWS, (ME + 1) * ROWS, axis=axis), rows)


def train(mesh) -> None:
    key = jax.random.key(0)
    for name, tx in METHODS.items():
        single = gj.fit(GAME, tx, INIT, steps=STEPS, sample=sample, key=key, log_every=3)
        spread = gj.fit(GAME, tx, INIT, steps=STEPS, sample=sample, key=key, log_every=3, mesh=mesh)
        diff = max_difference(
            (single.params, single.state, single.metrics), (spread.params, spread.state, spread.metrics)
        )
        moved = max_difference(single.params, INIT)
        readable = all(leaf.is_fully_replicated for leaf in jax.tree.leaves(spread))  # every process reads it whole
        ok = diff <= 1e-12 and devices_of(spread.params) == {DEVICES} and readable and moved > 1e-3
        check(f"fit(sample=, mesh=) {name}", ok, f"max |Δ| = {diff:.1e}, moved {moved:.2f}")
        if name != "cgd":
            continue
        # Continuing a run from its global (replicated) params and state (CGD's: with its solver's warm start).
        more = {"steps": 3, "sample": sample, "key": key, "log_every": 3, "initial_step": STEPS}
        single = gj.fit(GAME, tx, single.params, state=single.state, **more)
        spread = gj.fit(GAME, tx, spread.params, state=spread.state, mesh=mesh, **more)
        check(
            f"continue a run, {name}",
            max_difference((single.params, single.state), (spread.params, spread.state)) <= 1e-12,
        )

    # Stacked (steps, batch, dim) batches: each process passes its rows of every batch.
    stacked = jax.random.normal(jax.random.key(1), (4, BATCH, DIM))
    single = gj.fit(GAME, LA_EG, INIT, steps=STEPS, batches=stacked, log_every=3)
    batches = gj.shard_local(mine(stacked, 1), mesh, stacked=True)
    spread = gj.fit(GAME, LA_EG, INIT, steps=STEPS, batches=batches, log_every=3, mesh=mesh)
    diff = max_difference((single.params, single.metrics), (spread.params, spread.metrics))
    ok = batches.shape == stacked.shape and identical(batches, stacked) and diff <= 1e-12
    check("fit(batches=gj.shard_local(rows, stacked=True))", ok, f"global {batches.shape}, max |Δ| = {diff:.1e}")

    # The old README's spec split the steps axis: a (8, 8, 3) global array. fit refuses it.
    wrong = jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("batch")), mine(stacked, 1))
    raises(
        "wrong PartitionSpec refused",
        lambda: gj.fit(GAME, LA_EG, INIT, steps=STEPS, batches=wrong, mesh=mesh),
        "batches",
        "along axis 1",
        "gj.shard_local",
    )

    # make_step(mesh=) in a hand-written loop, each process feeding its rows.
    step = jax.jit(gj.make_step(GAME, LA_EG, mesh=mesh))
    params, state = gj.replicate((INIT, LA_EG.init(INIT)), mesh)
    for t in range(STEPS):
        params, state, _ = step(params, state, gj.shard_local(mine(stacked[t % 4], 0), mesh))
    check("make_step(mesh=) loop", max_difference(single.params, params) <= 1e-12)

    # Typed PRNG keys and params committed to a local device go on the mesh like any array.
    keys = jax.random.split(jax.random.key(3), 8)
    placed_keys = gj.shard(keys, mesh)
    placed_key = gj.replicate(jax.random.key(3), mesh)
    ok = (
        identical(placed_keys, keys)
        and devices_of(placed_keys) == {DEVICES}
        and identical(placed_key, jax.random.key(3))
    )
    check("typed keys shard and replicate", ok and jnp.issubdtype(placed_keys.dtype, jax.dtypes.prng_key))
    committed = jax.device_put(INIT, jax.local_devices()[0])
    spread = gj.fit(GAME, LA_EG, committed, steps=STEPS, sample=sample, key=key, log_every=3, mesh=mesh)
    single = gj.fit(GAME, LA_EG, INIT, steps=STEPS, sample=sample, key=key, log_every=3)
    check("locally committed params", max_difference(single.params, spread.params) <= 1e-12)

    # What must be one global value is checked to be the same on every process.
    raises("replicate of differing values", lambda: gj.replicate({"w": jnp.ones(2) * ME}, mesh), "['w']", "differs")
    raises("shard of differing values", lambda: gj.shard(stacked[0] + ME, mesh), "gj.shard_local")
    raises(
        "fit with a different key per process",
        lambda: gj.fit(GAME, LA_EG, INIT, steps=2, sample=sample, key=jax.random.key(ME), mesh=mesh),
        "key",
        "differs",
    )

    # A seed sweep sharded over all processes' devices.
    def run(seed_key):
        init = gj.Players(*jax.random.normal(seed_key, (2, DIM)))
        return gj.fit(GAME, gj.extragradient(optax.sgd(0.1)), init, steps=STEPS, sample=sample, key=seed_key).params

    seeds = jax.random.split(jax.random.key(5), 8)
    sweep = jax.jit(jax.vmap(run))
    reference = sweep(seeds)
    result = sweep(gj.shard(seeds, jax.make_mesh((DEVICES,), ("sweep",))))
    diff = max_difference(reference, result)
    check("sharded sweep", diff <= 1e-12 and devices_of(result) == {DEVICES}, f"max |Δ| = {diff:.1e}")


def checkpoints(mesh) -> None:
    work = pathlib.Path(WORKDIR)
    writes = []
    real_save = checkpoint.save
    checkpoint.save = lambda directory, step, *args, **kwargs: (
        writes.append(step),
        real_save(directory, step, *args, **kwargs),
    )[1]
    key = jax.random.key(0)

    def fit(steps, directory, init=INIT):
        return gj.fit(GAME, LA_EG, init, steps=steps, sample=sample, key=key, log_every=2, mesh=mesh,
                      checkpoint_dir=directory, checkpoint_every=2)  # fmt: skip

    uninterrupted = gj.fit(GAME, LA_EG, INIT, steps=8, sample=sample, key=key, log_every=2, mesh=mesh)
    single = gj.fit(GAME, LA_EG, INIT, steps=8, sample=sample, key=key, log_every=2)
    for layout, directory in (("shared", work / "shared"), ("per-process", work / f"own-{ME}")):
        writes.clear()
        fit(4, directory)
        resumed = fit(8, directory)
        same = identical(uninterrupted, resumed)
        diff = max_difference((single.params, single.metrics), (resumed.params, resumed.metrics))
        expected = [2, 4, 6, 8] if layout == "per-process" or ME == 0 else []
        names = sorted(p.name for p in directory.iterdir())
        ok = same and diff <= 1e-12 and writes == expected and names == ["ckpt_0000000006.npz", "ckpt_0000000008.npz"]
        check(f"checkpoint and resume, {layout} directory", ok, f"wrote {writes}, files {names}, max |Δ| = {diff:.1e}")

    # Skew: every process's directory holds steps 4 and 6, then one process's differs.
    reference = gj.fit(GAME, LA_EG, INIT, steps=6, sample=sample, key=key, log_every=2, mesh=mesh)
    own = work / f"skew-{ME}"
    fit(6, own)
    if ME == 1:
        (own / "ckpt_0000000006.npz").unlink()  # its newest write never reached disk
    start = time.perf_counter()
    resumed = fit(6, own)
    took = time.perf_counter() - start
    ok = identical(reference, resumed) and sorted(checkpoint.steps_in(own)) == [4, 6]
    check("a process missing its newest checkpoint: all resume from the common one", ok, f"{took:.1f} s")

    empty = work / f"empty-{ME}"
    raises("a process with no checkpoint", lambda: fit(6, empty if ME == 1 else own),
           "process 0: 4, 6; process 1: none", "ckpt_0000000006.npz", within=10)  # fmt: skip

    behind = work / f"behind-{ME}"
    if ME == 1:
        gj.fit(GAME, LA_EG, INIT, steps=2, sample=sample, key=key, log_every=2, checkpoint_dir=behind,
               checkpoint_every=2)  # fmt: skip
    raises("a process behind by two checkpoints", lambda: fit(6, behind if ME == 1 else own),
           "process 0: 4, 6; process 1: 2", within=10)  # fmt: skip

    other = work / f"other-{ME}"
    if ME == 1:  # the same steps, written by a run from other params
        moved = gj.Players(INIT.x + 1.0, INIT.y)
        gj.fit(GAME, LA_EG, moved, steps=6, sample=sample, key=key, log_every=2, checkpoint_dir=other,
               checkpoint_every=2)  # fmt: skip
    raises("a process holding another run's checkpoints", lambda: fit(6, other if ME == 1 else own),
           "differ between processes", within=10)  # fmt: skip

    again = fit(6, own)  # the processes are still in step after the errors
    check("still in step after the errors", identical(reference, again))


def main() -> None:
    faulthandler.dump_traceback_later(WATCHDOG, exit=True)
    check("processes", jax.process_count() == PROCESSES and jax.device_count() == DEVICES)
    mesh = jax.make_mesh((jax.device_count(),), ("batch",))
    {"train": train, "checkpoints": checkpoints}[PART](mesh)


if __name__ == "__main__":
    main()
