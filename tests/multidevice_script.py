"""Run by tests/test_multidevice.py in a subprocess with 8 simulated CPU devices.

Every method family trained with ``gj.fit(..., mesh=mesh)`` (batches split over 8 devices,
params and state replicated) must equal the single-device run to float64 round-off, and a
vmapped sweep whose seed axis is sharded over the devices must equal the unsharded sweep.
Prints one line per check and exits non-zero on the first failure.
"""

from __future__ import annotations

import os
import sys

assert "--xla_force_host_platform_device_count=8" in os.environ.get("XLA_FLAGS", ""), "set XLA_FLAGS first"

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import gamejax as gj  # noqa: E402

DIM, BATCH, STEPS = 3, 16, 6


def loss(x, y, batch):
    """Nonlinear in x and y, a mean over the batch rows: its Hessian products depend on the data."""
    return jnp.mean(jnp.tanh(batch @ x) * (batch @ y)) + 0.3 * jnp.sum(x**2) - 0.3 * jnp.sum(y**2)


GAME = gj.zero_sum(loss, name="nonlinear data game")
INIT = gj.Players(jnp.array([0.5, -1.0, 2.0]), jnp.array([1.0, 0.2, -0.7]))
FULL = jax.random.normal(jax.random.key(9), (BATCH, DIM))

METHODS = {
    "gda-adam": gj.gda(optax.adam(0.05)),
    "alternating": gj.alternating(optax.sgd(0.1), y_steps=2),
    "extra-adam": gj.extragradient(optax.adam(0.05)),
    "optimistic-adam": gj.optimistic(optax.adam(0.05), on="updates"),
    "lookahead-extra-adam": gj.lookahead(3, 0.5)(gj.extragradient(optax.adam(0.05))),
    "alternating-lookahead": gj.alternating_lookahead(optax.sgd(0.1), k=2, alpha=0.5),
    "ema-ogda": gj.ema(0.9)(gj.optimistic(optax.sgd(0.1))),
    "lead": gj.lead(optax.sgd(0.1, momentum=0.3), coupling=0.5),
    "lead-adam-alternating": gj.lead(optax.adam(0.05), coupling=0.3, alternating=True),
    "cgd": gj.cgd(0.2, tol=1e-12, maxiter=20),
    "acgd": gj.acgd(0.05, tol=1e-12, maxiter=20),
    "consensus-eg": gj.consensus(0.5)(gj.extragradient(optax.sgd(0.1))),
    "sga-aligned": gj.sga(0.5, align=True)(gj.optimistic(optax.sgd(0.1))),
    "unrolled": gj.unrolled(optax.sgd(0.1), unroll=optax.sgd(0.1), steps=2, players="xy"),
    "complex-momentum": gj.gda(gj.complex_momentum(0.1, 0.5 * np.exp(1j * np.pi / 8))),
    "svre": gj.svre(0.1, full_batch=FULL, dataset_size=BATCH, snapshot_cost=1.0, restart_probability=0.3),
    "skip-nonfinite-lookahead": gj.skip_nonfinite(2)(gj.lookahead(2, 0.5)(gj.gda(optax.sgd(0.1)))),
}


def sample(key):
    return jax.random.normal(key, (BATCH, DIM))


def check(name: str, ok: bool, detail: str = "") -> None:
    print(("ok  " if ok else "FAIL") + f" {name} {detail}", flush=True)
    if not ok:
        sys.exit(1)


def max_difference(a, b) -> float:
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return max(float(jnp.max(jnp.abs(jnp.asarray(u, float) - jnp.asarray(v, float)))) for u, v in pairs)


def main() -> None:
    devices = jax.devices()
    check("eight devices", len(devices) == 8, str(len(devices)))
    mesh = jax.make_mesh((8,), ("batch",))
    key = jax.random.key(0)
    for name, tx in METHODS.items():
        single = gj.fit(GAME, tx, INIT, steps=STEPS, sample=sample, key=key, log_every=3)
        sharded = gj.fit(GAME, tx, INIT, steps=STEPS, sample=sample, key=key, log_every=3, mesh=mesh)
        spread = {len(leaf.sharding.device_set) for leaf in jax.tree.leaves(sharded.params)}
        diff = max_difference((single.params, single.metrics), (sharded.params, sharded.metrics))
        moved = max_difference(single.params, INIT)
        check(name, diff < 1e-12 and spread == {8} and moved > 1e-3, f"max |Δ| = {diff:.1e}, moved {moved:.2f}")

    # Stacked batches are split along axis 1 (axis 0 is the step); the step function takes a mesh too.
    stacked = jax.random.normal(jax.random.key(1), (4, BATCH, DIM))
    tx = gj.lookahead(2, 0.5)(gj.extragradient(optax.adam(0.05)))
    single = gj.fit(GAME, tx, INIT, steps=STEPS, batches=stacked, log_every=3)
    sharded = gj.fit(GAME, tx, INIT, steps=STEPS, batches=stacked, log_every=3, mesh=mesh)
    check("stacked batches", max_difference(single.params, sharded.params) < 1e-12)
    placed = gj.shard_local(stacked, mesh, stacked=True)  # one process: its rows are the whole batch
    local = gj.fit(GAME, tx, INIT, steps=STEPS, batches=placed, log_every=3, mesh=mesh)
    ok = placed.sharding.spec == jax.sharding.PartitionSpec(None, ("batch",)) and len(placed.sharding.device_set) == 8
    check(
        "shard_local on one process",
        ok and max_difference(single.params, local.params) < 1e-12,
        str(placed.sharding.spec),
    )
    step = jax.jit(gj.make_step(GAME, tx, mesh=mesh))
    params, state = gj.replicate((INIT, tx.init(INIT)), mesh)
    for t in range(STEPS):
        params, state, _ = step(params, state, gj.shard(stacked[t % 4], mesh))
    check("make_step(mesh=)", max_difference(single.params, params) < 1e-12)

    # A sweep over 16 seeds with its seed axis sharded: each device runs two seeds.
    def run(seed_key):
        init = gj.Players(*jax.random.normal(seed_key, (2, DIM)))
        return gj.fit(GAME, gj.extragradient(optax.sgd(0.1)), init, steps=STEPS, sample=sample, key=seed_key).params

    keys = jax.random.split(jax.random.key(5), 16)
    sweep = jax.jit(jax.vmap(run))
    reference = sweep(keys)
    sharded_keys = gj.shard(keys, jax.make_mesh((8,), ("sweep",)))
    result = sweep(sharded_keys)
    spread = {len(leaf.sharding.device_set) for leaf in jax.tree.leaves(result)}
    check("sharded sweep", max_difference(reference, result) < 1e-12 and spread == {8}, f"devices {spread}")

    try:
        gj.fit(GAME, METHODS["gda-adam"], INIT, steps=1, batches=stacked[:, :12], mesh=mesh)
    except ValueError as error:
        check("indivisible batch", "not divisible by the 8 devices" in str(error), str(error)[:80])
    else:
        check("indivisible batch", False, "no error")


if __name__ == "__main__":
    main()
