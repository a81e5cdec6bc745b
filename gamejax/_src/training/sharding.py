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
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from gamejax._src.core import Batch, PerEvaluation


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

    Leaves without that axis (a scalar, a PRNG key) are replicated. Every split size must be
    divisible by the number of devices.

    Example (a vmapped sweep over 64 seeds, spread over all devices)::

        mesh = jax.make_mesh((jax.device_count(),), ("sweep",))
        keys = gj.shard(jax.random.split(jax.random.key(0), 64), mesh)
        results = jax.jit(jax.vmap(run))(keys)   # each device runs its share of the seeds
    """
    return _map(jax.device_put, tree, as_auto(mesh), axis, what)


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Place a full copy of ``tree`` on every device of ``mesh`` (params, states)."""
    return jax.device_put(tree, NamedSharding(as_auto(mesh), PartitionSpec()))


def batch_axis(batch: Batch) -> int:
    """The batch axis of a step's batch: 1 inside a :class:`gamejax.PerEvaluation`, else 0."""
    return 1 if isinstance(batch, PerEvaluation) else 0


def shard_batch(batch: Batch, mesh: Mesh, *, stacked: bool = False) -> Batch:
    """Place a step's batch (or, with ``stacked``, a stack of them) split along its batch axis."""
    return shard(batch, mesh, batch_axis(batch) + int(stacked), "batch")


def constrain_batch(batch: Batch, mesh: Mesh) -> Batch:
    """Inside a traced step: ask for ``batch`` split along its batch axis (a drawn batch, a slice)."""
    return _map(jax.lax.with_sharding_constraint, batch, mesh, batch_axis(batch), "batch")


def constrain_replicated(tree: Any, mesh: Mesh) -> Any:
    """Inside a traced step: ask for ``tree`` replicated on every device."""
    return jax.lax.with_sharding_constraint(tree, NamedSharding(mesh, PartitionSpec()))
