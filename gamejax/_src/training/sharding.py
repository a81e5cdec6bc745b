"""Data parallelism and sharded sweeps with JAX's own sharding (``jax.sharding.Mesh``).

gamejax adds no communication code of its own: it places arrays with
``jax.sharding.NamedSharding`` and lets XLA's partitioner insert the collectives. Under a
mesh, a batch is split along its batch axis over *all* the mesh's devices (every mesh axis
together), params and states are replicated, and a field evaluation is therefore a
data-parallel gradient: each device differentiates its share of the batch and the partial
sums are all-reduced. Methods built from field evaluations, Jacobian-vector products and
tree arithmetic — CGD's conjugate-gradient solve and LEAD's mixed products included — run
unchanged and give the single-device result up to float reassociation.

A sweep (``jax.vmap`` over seeds or hyperparameters) is sharded the same way along its
sweep axis: :func:`shard` the stacked inputs and ``jax.jit`` the vmapped function.

On a mesh over several processes (``jax.distributed``, docs/design.md §9), :func:`shard` and
:func:`replicate` take one global value, the same on every process (checked), and each
process builds the part of the global array its devices hold; :func:`shard_local` builds a
global batch from each process's own rows. Typed PRNG keys and arrays committed to a local
device are placed like any other array.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from gamejax._src.core import Batch, PerEvaluation, checks
from gamejax._src.training import processes


def as_auto(mesh: Any) -> Mesh:
    """``mesh`` with every axis in Auto mode (XLA propagates shardings); ``TypeError`` for a non-mesh.

    ``jax.make_mesh`` makes Explicit axes by default, under which every op would need its
    output sharding spelled out; gamejax places inputs and lets the partitioner do the rest.
    """
    if not isinstance(mesh, Mesh):
        raise TypeError(
            f"mesh must be a jax.sharding.Mesh, e.g. jax.make_mesh((jax.device_count(),), ('batch',)); "
            f"got {type(mesh).__name__}."
        )
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def _spec(mesh: Mesh, axis: int) -> PartitionSpec:
    return PartitionSpec(*([None] * axis), tuple(mesh.axis_names))


def _sharding(leaf: Any, mesh: Mesh, axis: int, what: str, path: str) -> NamedSharding:
    """Split ``leaf`` along ``axis`` over every device of ``mesh``; replicate a leaf without that axis."""
    shape = jax.numpy.shape(leaf)
    if len(shape) <= axis:
        return NamedSharding(mesh, PartitionSpec())
    if shape[axis] % mesh.size:
        raise ValueError(
            f"{what}{path} has size {shape[axis]} along axis {axis}, which is not divisible by the "
            f"{mesh.size} devices of the mesh; use a size that is a multiple of {mesh.size}."
        )
    return NamedSharding(mesh, _spec(mesh, axis))


def _map(fn, tree: Any, mesh: Mesh, axis: int, what: str) -> Any:
    return jax.tree_util.tree_map_with_path(
        lambda path, leaf: fn(leaf, _sharding(leaf, mesh, axis, what, jax.tree_util.keystr(path))), tree
    )


def shard(tree: Any, mesh: Mesh, axis: int = 0, what: str = "tree") -> Any:
    """Place ``tree`` on ``mesh`` split along ``axis`` (a batch axis, or a sweep's leading axis).

    ``tree`` is the global value: on a mesh over several processes (``jax.distributed``)
    every process passes the same one (checked: a ``ValueError`` names the first leaf that
    differs) and keeps the slices its devices hold; to give each process its own rows of a
    batch, use :func:`shard_local`. Leaves without that axis (a scalar, a PRNG key) are
    replicated. Every split size must be divisible by the number of devices. Typed PRNG keys
    and arrays committed to one device are placed like any array.

    Example (a vmapped sweep over 64 seeds, spread over all devices)::

        mesh = jax.make_mesh((jax.device_count(),), ("sweep",))
        keys = gj.shard(jax.random.split(jax.random.key(0), 64), mesh)
        results = jax.jit(jax.vmap(run))(keys)   # each device runs its share of the seeds
    """
    mesh = as_auto(mesh)
    if _across_processes(tree, mesh):
        return _place_across_processes(tree, mesh, axis, what, local=False)
    return _map(jax.device_put, tree, mesh, axis, what)


def replicate(tree: Any, mesh: Mesh, what: str = "tree") -> Any:
    """Place a full copy of ``tree`` on every device of ``mesh`` (params, states).

    On a mesh over several processes every process passes the same ``tree`` (checked, as
    :func:`shard`).
    """
    mesh = as_auto(mesh)
    if _across_processes(tree, mesh):
        return _place_across_processes(tree, mesh, None, what, local=False)
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_local(rows: Batch, mesh: Mesh, *, stacked: bool = False, what: str = "batch") -> Batch:
    """The global batch of a mesh over several processes, from each process's own ``rows``.

    Each process passes its rows of one batch (``stacked=False``: batch axis first, or second
    inside a :class:`gamejax.PerEvaluation`) or of a stack of batches (``stacked=True``: a
    ``(steps, batch, ...)`` array for ``gj.fit(batches=...)``, split along axis 1; axis 0 is
    the step). The global batch holds the processes' rows one after another, in the order of
    their devices in ``mesh`` (process order for ``jax.make_mesh``), so every process must
    pass the same shapes, with a row count divisible by its number of devices in the mesh.
    Leaves without the batch axis (a scalar, a PRNG key) must be the same on every process.
    On a mesh of one process, ``rows`` is the whole batch and this is :func:`shard`.

    Example (two processes, each reading its own 64 rows of a 128-row batch)::

        mesh = jax.make_mesh((jax.device_count(),), ("batch",))
        batches = gj.shard_local(my_rows, mesh, stacked=True)   # my_rows: (steps, 64, dim)
        result = gj.fit(game, tx, params, steps=steps, batches=batches, mesh=mesh)
    """
    axis = batch_axis(rows) + int(stacked)
    mesh = as_auto(mesh)
    if _across_processes(rows, mesh):
        return _place_across_processes(rows, mesh, axis, what, local=True)
    return shard(rows, mesh, axis, what)


def batch_axis(batch: Batch) -> int:
    """The batch axis of a step's batch: 1 inside a :class:`gamejax.PerEvaluation`, else 0."""
    return 1 if isinstance(batch, PerEvaluation) else 0


def shard_batch(batch: Batch, mesh: Mesh, *, stacked: bool = False) -> Batch:
    """Place a step's batch (or, with ``stacked``, a stack of them) split along its batch axis."""
    return shard(batch, mesh, batch_axis(batch) + int(stacked), "batches" if stacked else "batch")


def constrain_batch(batch: Batch, mesh: Mesh) -> Batch:
    """Inside a traced step: ask for ``batch`` split along its batch axis (a drawn batch, a slice)."""
    return _map(jax.lax.with_sharding_constraint, batch, mesh, batch_axis(batch), "batch")


def constrain_replicated(tree: Any, mesh: Mesh) -> Any:
    """Inside a traced step: ask for ``tree`` replicated on every device."""
    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, PartitionSpec()))


# Several processes (jax.distributed): each process builds its part of every global array from
# host values, after checking with the others that they pass what they must (docs/design.md §9).


def _across_processes(tree: Any, mesh: Mesh) -> bool:
    """Whether ``tree`` goes on a mesh over several processes from host values (not traced ones,
    which ``jax.device_put`` places inside the compiled program)."""
    concrete = all(checks.is_concrete(leaf) for leaf in jax.tree.leaves(tree))
    return processes.spans_processes(mesh) and concrete


def _is_global(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and not leaf.is_fully_addressable


def _on_host(leaf: Any) -> tuple[np.ndarray, Any]:
    """A leaf's values as a NumPy array, and its key implementation if it is a typed PRNG key."""
    if isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(leaf)), jax.random.key_impl(leaf)
    array = np.asarray(leaf)
    return array.astype(jax.dtypes.canonicalize_dtype(array.dtype), copy=False), None


def _describe(path: str, array: np.ndarray, impl: Any) -> str:
    kind = f"key<{impl}>" if impl is not None else array.dtype.name
    return f"{path}: {array.shape} {kind}"


def _place_across_processes(tree: Any, mesh: Mesh, axis: int | None, what: str, local: bool) -> Any:
    """``shard``/``replicate``/``shard_local`` on a mesh over several processes (``axis=None``: replicate)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    paths = [jax.tree_util.keystr(path) for path, _ in flat]
    leaves = [leaf for _, leaf in flat]
    hosts = [None if _is_global(leaf) else _on_host(leaf) for leaf in leaves]
    splits = [axis is not None and jnp.ndim(leaf) > axis for leaf in leaves]
    _check_processes_agree(mesh, what, treedef, paths, leaves, hosts, splits, local)
    own = sum(device.process_index == jax.process_index() for device in mesh.devices.flat)
    placed = []
    for path, leaf, host, split in zip(paths, leaves, hosts, splits, strict=True):
        if host is None:
            placed.append(_reshard(leaf, mesh, axis if split else None, what, path))
            continue
        array, impl = host
        if not split:
            target = NamedSharding(mesh, PartitionSpec())
        elif local:  # (divisible by the mesh's size when each process's rows are by its own devices', below)
            target = NamedSharding(mesh, _spec(mesh, axis))
        else:
            target = _sharding(array, mesh, axis, what, path)
        if split and local:
            if array.shape[axis] % own:
                raise ValueError(
                    f"{what}{path} has {array.shape[axis]} rows along axis {axis} on process "
                    f"{jax.process_index()}, which is not divisible by its {own} devices of the mesh; "
                    f"give each process a multiple of {own} rows."
                )
            shape = (*array.shape[:axis], array.shape[axis] * mesh.size // own, *array.shape[axis + 1 :])
            built = jax.make_array_from_process_local_data(target, array, shape)
        else:
            built = jax.make_array_from_callback(array.shape, target, array.__getitem__)
        placed.append(built if impl is None else jax.random.wrap_key_data(built, impl=impl))
    return jax.tree_util.tree_unflatten(treedef, placed)


def _reshard(leaf: jax.Array, mesh: Mesh, axis: int | None, what: str, path: str) -> jax.Array:
    """A leaf that is already a global array, with the sharding gamejax expects of it.

    One split along another axis is refused rather than moved: it is how a batch built with
    the wrong ``PartitionSpec`` (the steps axis of a stacked batch) shows up.
    """
    target = NamedSharding(mesh, PartitionSpec() if axis is None else _spec(mesh, axis))
    if leaf.sharding.is_equivalent_to(target, leaf.ndim):
        return leaf
    if axis is not None and not leaf.sharding.is_fully_replicated:
        spec = getattr(leaf.sharding, "spec", leaf.sharding)
        raise ValueError(
            f"{what}{path} (shape {leaf.shape}) is already split over the mesh's processes as {spec}, but "
            f"gamejax splits it along axis {axis} ({target.spec}); build it from each process's rows with "
            "gj.shard_local(rows, mesh), with stacked=True for fit's (steps, batch, ...) batches."
        )
    if axis is not None:
        target = _sharding(leaf, mesh, axis, what, path)  # (a replicated array: its size must still divide)
    return jax.jit(processes.identity, out_shardings=target)(leaf)


def _check_processes_agree(mesh, what, treedef, paths, leaves, hosts, splits, local) -> None:
    """Raise ``ValueError`` in every process unless all pass the same layout and the same replicated values.

    A leaf that is split keeps per-process values under :func:`shard_local` (only its shape
    must agree); every other host leaf is one global value and must be equal everywhere.
    """
    layout, values = [str(treedef)], []
    for path, leaf, host, split in zip(paths, leaves, hosts, splits, strict=True):
        if host is None:
            layout.append(f"{path}: global {leaf.shape} {leaf.dtype} {leaf.sharding}")
            values.append(processes.digest(""))
            continue
        layout.append(_describe(path, *host))
        values.append(processes.digest("" if (split and local) else host[0].tobytes()))
    values.append(np.zeros(0, np.int32))  # (a tree without leaves)
    rows = processes.gather(
        mesh, np.concatenate([processes.digest(*layout), processes.digest(np.concatenate(values).tobytes())])
    )
    odd = processes.differing({process: row[:4] for process, row in rows.items()})
    if odd:
        mine = "; ".join(layout[1:5]) + ("; ..." if len(layout) > 5 else "")
        raise ValueError(
            f"{what} has another tree structure, shapes or dtypes on process(es) {odd} than on process "
            f"{min(rows)}: every process must pass the same layout (process {jax.process_index()} passes {mine})."
        )
    if not processes.differing({process: row[4:] for process, row in rows.items()}):
        return
    per_leaf = processes.gather(mesh, np.concatenate(values))
    for i, path in enumerate(paths):
        words = {process: row[4 * i : 4 * i + 4] for process, row in per_leaf.items()}
        if odd := processes.differing(words):
            fix = (
                "Leaves without the batch axis must be the same on every process."
                if local
                else "Every process must pass the same value (gj.shard and gj.replicate place one global value); "
                "to give each process its own rows of a batch, build it with gj.shard_local(rows, mesh)."
            )
            raise ValueError(
                f"{what}{path} differs between processes: process(es) {odd} hold other values than process "
                f"{min(per_leaf)}. {fix}"
            )
