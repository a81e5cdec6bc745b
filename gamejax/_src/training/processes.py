"""What the processes of a multi-controller JAX run (``jax.distributed``) tell each other.

Under ``jax.distributed`` every process runs the same program on its own devices, and a
``Mesh`` may span the devices of several processes (docs/design.md §9). Placing arrays on such
a mesh and resuming from checkpoints needs a few small host values exchanged between the
mesh's processes: which checkpoint steps each one holds, a digest of what each one passed.
:func:`gather` exchanges them with one all-gather over the mesh's own devices, so only the
processes of the mesh take part, and every one of them gets the same table: a decision made
from it (the step to resume from, an error) is the same in every process, and none is left
waiting in a collective the others never reach.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def process_indices(mesh: Mesh) -> tuple[int, ...]:
    """The indices of the processes whose devices ``mesh`` holds, in increasing order."""
    return tuple(sorted({device.process_index for device in mesh.devices.flat}))


def spans_processes(mesh: Mesh | None) -> bool:
    """Whether ``mesh`` holds devices of more than one process (a multi-controller run)."""
    return mesh is not None and len(process_indices(mesh)) > 1


def identity(x: Any) -> Any:
    """``x``: compiled with ``out_shardings``, it moves an array to another sharding."""
    return x


def gather(mesh: Mesh, row: Any) -> dict[int, np.ndarray]:
    """Every process's ``row`` (int32 values, the same length everywhere) by process index.

    A collective: every process of ``mesh`` must call it at the same point, with a row of
    the same length. Each device of the mesh contributes its process's row to one array
    split over the mesh's devices, which is then replicated on all of them.
    """
    row = np.asarray(row, np.int32).reshape(-1)
    devices = mesh.devices.reshape(-1)
    line = Mesh(devices, ("processes",))
    table = np.broadcast_to(row, (devices.size, row.size))
    split = jax.make_array_from_callback(
        table.shape, NamedSharding(line, PartitionSpec("processes")), table.__getitem__
    )
    replicated = jax.jit(identity, out_shardings=NamedSharding(line, PartitionSpec()))(split)
    gathered = np.asarray(replicated)
    return {device.process_index: gathered[i] for i, device in enumerate(devices)}


def barrier(mesh: Mesh) -> None:
    """Return once every process of ``mesh`` has called ``barrier`` (a collective)."""
    gather(mesh, [0])


def digest(*parts: bytes | str) -> np.ndarray:
    """Four int32 words of a SHA-256 of ``parts``, to compare large host values across processes."""
    hasher = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)
    return np.frombuffer(hasher.digest()[:16], np.int32).copy()


def differing(rows: dict[int, np.ndarray]) -> list[int]:
    """The processes whose row differs from the lowest process's (empty when all agree)."""
    first = rows[min(rows)]
    return [process for process, row in sorted(rows.items()) if not np.array_equal(row, first)]
