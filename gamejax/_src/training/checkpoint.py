"""Atomic on-disk checkpoints of a training run (params, full state, step, PRNG key, metrics so far).

One checkpoint is one ``.npz`` file, ``ckpt_<step>.npz``, written to a temporary name in the
same directory, flushed to disk and renamed into place (``os.replace`` is atomic on POSIX and
Windows), so an interrupted write never leaves a partial checkpoint behind. Each leaf is
stored as its raw bytes with its dtype, shape and tree path in a JSON manifest, so bfloat16
leaves and typed PRNG keys round-trip exactly, and restoring checks the tree structure,
paths, shapes and dtypes against the run's own state before anything is loaded. The
temporary name is unique across processes and hosts sharing a directory
(:func:`gamejax._src.files.write_atomically`).

:class:`Checkpoints` is what :func:`gamejax.fit` writes and resumes through. On a mesh over
several processes it makes them agree, before any of them reads, on who writes each directory
and on the step to resume from, so that a skewed set of directories raises one clear error in
every process instead of leaving them waiting in a collective (docs/design.md §9).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from gamejax._src.files import write_atomically
from gamejax._src.training import fingerprint, processes

_NAME = re.compile(r"^ckpt_(\d+)\.npz$")
_MANIFEST = "__manifest__"


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _encode(leaf: Any) -> tuple[np.ndarray, dict]:
    """Raw bytes of a leaf and what it takes to rebuild it."""
    info: dict[str, Any] = {}
    if _is_key(leaf):
        info["key_impl"] = str(jax.random.key_impl(leaf))
        leaf = jax.random.key_data(leaf)
    array = np.array(leaf, order="C", copy=True)  # (np.ascontiguousarray would make 0-d arrays 1-d)
    info.update(shape=list(array.shape), dtype=jnp.dtype(array.dtype).name)
    return array.reshape(-1).view(np.uint8), info


def _decode(raw: np.ndarray, info: dict) -> Any:
    array = raw.view(jnp.dtype(info["dtype"])).reshape(info["shape"])
    if "key_impl" in info:
        return jax.random.wrap_key_data(jnp.asarray(array), impl=info["key_impl"])
    return jnp.asarray(array)


def _describe(path: str, info: dict) -> str:
    kind = f"key<{info['key_impl']}>" if "key_impl" in info else info["dtype"]
    return f"{path}: shape {tuple(info['shape'])} {kind}"


def _layout(tree: Any) -> tuple[str, list[tuple[str, dict]]]:
    """The treedef (as text) and each leaf's path and abstract description."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    described = []
    for path, leaf in leaves:
        info: dict[str, Any] = {}
        if _is_key(leaf):
            info["key_impl"] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        info.update(shape=list(np.shape(leaf)), dtype=jnp.dtype(leaf.dtype).name)
        described.append((jax.tree_util.keystr(path), info))
    return str(treedef), described


def checkpoint_path(directory: pathlib.Path, step: int) -> pathlib.Path:
    return directory / f"ckpt_{step:010d}.npz"


def latest(directory: str | os.PathLike) -> pathlib.Path | None:
    """The newest checkpoint (highest step) in ``directory``, or ``None``."""
    steps = steps_in(directory)
    return checkpoint_path(pathlib.Path(directory), steps[-1]) if steps else None


def save(directory: str | os.PathLike, step: int, trees: dict[str, Any], meta: dict, keep: int = 2) -> pathlib.Path:
    """Write ``trees`` (name → pytree) and ``meta`` (JSON-able) atomically as the checkpoint of ``step``.

    Keeps the ``keep`` newest checkpoints of ``directory`` and deletes older ones.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays, manifest = {}, {"meta": meta, "trees": {}}
    for name, tree in trees.items():
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
        entries = []
        for i, (path, leaf) in enumerate(leaves):
            arrays[f"{name}/{i}"], info = _encode(leaf)
            entries.append([jax.tree_util.keystr(path), info])
        manifest["trees"][name] = {"treedef": str(treedef), "leaves": entries}
        if isinstance(tree, dict) and all(isinstance(k, str) for k in tree):
            manifest["trees"][name]["keys"] = sorted(tree)  # a flat dict: restorable without a template
    arrays[_MANIFEST] = np.frombuffer(json.dumps(manifest).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    final = write_atomically(checkpoint_path(directory, step), buffer.getbuffer())
    old = sorted(p for p in directory.iterdir() if _NAME.match(p.name))[:-keep]
    for path in old:
        path.unlink(missing_ok=True)
    return final


def _check_matches(name: str, saved: dict, template: Any, source: pathlib.Path) -> None:
    treedef, expected = _layout(template)
    stored = [(path, info) for path, info in saved["leaves"]]
    problems = []
    saved_paths, expected_paths = dict(stored), dict(expected)
    only_saved = [p for p in saved_paths if p not in expected_paths]
    only_expected = [p for p in expected_paths if p not in saved_paths]
    if only_saved:
        problems.append(f"leaves only in the checkpoint: {', '.join(name + p for p in only_saved[:5])}")
    if only_expected:
        problems.append(f"leaves only in this run: {', '.join(name + p for p in only_expected[:5])}")
    for path, info in expected:
        if path in saved_paths and saved_paths[path] != info:
            problems.append(
                f"{name}{_describe(path, saved_paths[path])} in the checkpoint, "
                f"but this run has {name}{_describe(path, info)}"
            )
    if not problems and saved["treedef"] != treedef:
        problems.append(f"tree structure differs:\n    checkpoint: {saved['treedef']}\n    this run:   {treedef}")
    if problems:
        raise ValueError(
            f"checkpoint {source} does not match this run's {name} (was it written by another "
            "transformation stack or for other params?):\n  " + "\n  ".join(problems[:8])
        )


def restore(path: str | os.PathLike, templates: dict[str, Any]) -> tuple[dict[str, Any], dict]:
    """Load a checkpoint; trees named in ``templates`` must match their template's layout exactly.

    A template of ``None`` restores a tree that was saved as a flat dict of arrays (e.g. the
    metrics history, whose length grows) as that dict. Raises ``ValueError`` naming every mismatch.
    """
    path = pathlib.Path(path)
    with np.load(path) as stored:
        manifest = json.loads(stored[_MANIFEST].tobytes().decode())
        trees = {}
        for name, saved in manifest["trees"].items():
            leaves = [_decode(stored[f"{name}/{i}"], info) for i, (_, info) in enumerate(saved["leaves"])]
            template = templates.get(name)
            if template is None:
                trees[name] = dict(zip(saved["keys"], leaves, strict=True))
                continue
            _check_matches(name, saved, template, path)
            trees[name] = jax.tree.unflatten(jax.tree.structure(template), leaves)
    missing = [name for name, template in templates.items() if template is not None and name not in trees]
    if missing:
        raise ValueError(f"checkpoint {path} holds no {', '.join(missing)}; it was not written by gj.fit.")
    return trees, manifest["meta"]


_CARRY = ("params", "state", "step", "status", "diverged_at")
_LISTED = 8  # the newest checkpoints each process reports when the processes agree on a step


def _key_bits(key: jax.Array) -> jax.Array:
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def steps_in(directory: str | os.PathLike) -> list[int]:
    """The steps of the checkpoints in ``directory``, in increasing order (empty if there is none)."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return []
    return sorted(int(m.group(1)) for p in directory.iterdir() if (m := _NAME.match(p.name)))


def agreed_step(steps: dict[int, list[int]], directory: Any) -> int | None:
    """The step every process resumes from, given each process's checkpoint steps (``None``: start over).

    The newest step every process holds a checkpoint of; ``None`` when no process holds any.
    Raises ``ValueError`` naming each process's steps when some hold checkpoints but no step is
    common to all (a process crashed before its first write reached disk, or fell behind).
    """
    if not any(steps.values()):
        return None
    common = set.intersection(*(set(held) for held in steps.values()))
    if common:
        return max(common)
    held = "; ".join(
        f"process {process}: " + (", ".join(map(str, held)) if held else "none")
        for process, held in sorted(steps.items())
    )
    newest = max(max(held) for held in steps.values() if held)
    raise ValueError(
        f"checkpoint_dir: the processes hold no checkpoint of a common step, so they cannot resume together "
        f"(newest steps held — {held}). Every checkpoint holds the whole run (params and state are replicated): "
        f"copy the newest, {checkpoint_path(pathlib.Path(), newest)}, into the checkpoint_dir of each process "
        f"that lacks it (this process's is {directory}), or start over with empty directories."
    )


@dataclasses.dataclass(frozen=True)
class Checkpoints:
    """The checkpoints of one :func:`gamejax.fit` call: where they go, who writes, where a run resumes.

    On one process (or a mesh of one process's devices) this is ``directory``, written and
    read as it is. On a mesh over several processes (docs/design.md §9), :meth:`open` makes
    the processes agree before any of them reads: which of them share a directory (a shared
    filesystem: the lowest process among them writes, the others wait at a barrier) and the
    step they resume from (:func:`agreed_step`); resuming, each process reads its own copy and
    the copies are checked to be equal. Every decision is taken from values gathered from all
    processes, and every local failure (an unreadable file, a full disk) is gathered too, so
    every process raises the same error together instead of leaving the others waiting.

    Attributes:
      directory: this process's ``checkpoint_dir``.
      mesh: the run's mesh when it spans several processes, else ``None``.
      writes: whether this process writes checkpoints.
      step: on several processes, the step they agreed to resume from (``None``: start over).
    """

    directory: pathlib.Path
    mesh: Mesh | None
    writes: bool
    step: int | None

    @classmethod
    def open(cls, directory: str | os.PathLike, mesh: Mesh | None) -> Checkpoints:
        """The checkpoints in ``directory`` of a run on ``mesh`` (a collective on a mesh over several processes)."""
        directory = pathlib.Path(directory)
        if not processes.spans_processes(mesh):
            return cls(directory, None, True, None)
        listed, failure = _attempt(lambda: (directory.mkdir(parents=True, exist_ok=True), steps_in(directory))[1])
        newest = (listed or [])[-_LISTED:]
        token = np.frombuffer(os.urandom(8), np.int32)
        rows = processes.gather(mesh, [failure is not None, *token, *newest, *[-1] * (_LISTED - len(newest))])
        _raise_if_any_failed(rows, failure, f"could not list checkpoint_dir {directory}")
        steps = {process: [int(s) for s in row[3:] if s >= 0] for process, row in rows.items()}
        writes = _lowest_sharing(mesh, directory, "".join(f"{int(w) & 0xFFFFFFFF:08x}" for w in rows[min(rows)][1:3]))
        return cls(directory, mesh, writes, agreed_step(steps, directory))

    def resume(self, carry: tuple, key: Any, log_every: int, program: str) -> tuple[tuple, dict | None]:
        """The carry and metrics of the checkpoint to resume from (``carry``, ``None`` if there is none).

        ``program`` is the text of this run's step (:func:`fingerprint.step_program`): a checkpoint
        written by a run with another program is refused, naming the first line that differs.
        """
        if self.mesh is None:
            path = latest(self.directory)
        else:
            path = None if self.step is None else checkpoint_path(self.directory, self.step)
        if path is None:
            return carry, None
        if self.mesh is not None:
            self._check_copies_equal(path)
        templates = dict(zip(_CARRY, carry, strict=True), metrics=None)
        if key is not None:
            templates["key"] = key
        trees, meta = restore(path, templates)
        _check_same_program(path, meta, program)
        if meta["log_every"] != log_every:
            raise ValueError(
                f"checkpoint {path} was written with log_every={meta['log_every']}, this call has "
                f"log_every={log_every}; pass log_every={meta['log_every']} to continue that run."
            )
        if key is not None and not np.array_equal(np.asarray(_key_bits(trees["key"])), np.asarray(_key_bits(key))):
            raise ValueError(f"checkpoint {path} was written with another PRNG key: pass the run's original key=.")
        return tuple(trees[name] for name in _CARRY), trees["metrics"]

    def save(self, carry: tuple, key: Any, log_every: int, history: dict, program: str) -> None:
        """Write the run's carry, PRNG key and metrics so far (on several processes: the writers, then a barrier)."""
        failure = None
        if self.writes:
            trees = dict(zip(_CARRY, carry, strict=True), metrics=history)
            if key is not None:
                trees["key"] = key
            meta = {"log_every": log_every, "program": fingerprint.encode(program)}
            if self.mesh is None:
                save(self.directory, int(carry[2]), trees, meta)
                return
            _, failure = _attempt(lambda: save(self.directory, int(carry[2]), trees, meta))
        rows = processes.gather(self.mesh, [failure is not None])
        _raise_if_any_failed(rows, failure, f"could not write a checkpoint to {self.directory}")

    def _check_copies_equal(self, path: pathlib.Path) -> None:
        """Raise ``ValueError`` in every process unless all processes' copies of ``path`` hold the same run."""
        fingerprint, failure = _attempt(lambda: _fingerprint(path))
        row = np.zeros(4, np.int32) if fingerprint is None else fingerprint
        rows = processes.gather(self.mesh, [failure is not None, *row])
        _raise_if_any_failed(rows, failure, f"could not read checkpoint {path}")
        if odd := processes.differing(rows):
            raise ValueError(
                f"the checkpoints of step {self.step} differ between processes: process(es) {odd} hold another "
                f"run than process {min(rows)} (this process's is {path}). Were the directories written by "
                "different runs? Give every process the checkpoint_dir of the same run."
            )


def stored_log_every(directory: str | os.PathLike) -> int | None:
    """The ``log_every`` of the newest checkpoint in ``directory`` (``None`` without one): a run that
    is resumed or extended keeps its records' spacing when ``log_every`` is left to its default."""
    path = latest(directory)
    if path is None:
        return None
    with np.load(path) as stored:
        return int(json.loads(stored[_MANIFEST].tobytes().decode())["meta"]["log_every"])


def _check_same_program(path: pathlib.Path, meta: dict, program: str) -> None:
    """Raise ``ValueError`` unless the checkpoint at ``path`` was written by a run with this step program."""
    if "program" not in meta:
        raise ValueError(
            f"checkpoint {path} was written by an older gamejax that did not record its run's program, so this "
            "call cannot check that it continues the same run: use a new checkpoint_dir."
        )
    stored = fingerprint.decode(meta["program"])
    if stored == program:
        return
    line, old, new = fingerprint.first_difference(stored, program)
    raise ValueError(
        f"checkpoint {path} holds another run: the program of one training step differs from the one that "
        f"wrote it (a changed hyperparameter such as a learning rate or alpha, another method, loss, batch "
        f"shape or dtype), first at line {line}:\n    checkpoint: {old[:200]}\n    this run:   {new[:200]}\n"
        "Use a new checkpoint_dir to start this run, or call fit with the original arguments to resume that one."
    )


def _attempt(fn: Any) -> tuple[Any, BaseException | None]:
    """``(fn(), None)``, or ``(None, error)``: a local failure is gathered before it is raised."""
    try:
        return fn(), None
    except Exception as error:  # (raised by _raise_if_any_failed, in every process)
        return None, error


def _raise_if_any_failed(rows: dict[int, np.ndarray], failure: BaseException | None, what: str) -> None:
    """Raise in every process when any process's row reports a failure (its first entry)."""
    failed = [process for process, row in sorted(rows.items()) if row[0]]
    if failure is not None:
        raise RuntimeError(f"process {jax.process_index()} {what}: {failure}") from failure
    if failed:
        raise RuntimeError(f"process(es) {failed} {what} (see their error); this process stops with them.")


def _lowest_sharing(mesh: Mesh, directory: pathlib.Path, token: str) -> bool:
    """Whether this process is the lowest of the processes whose ``checkpoint_dir`` is this same directory.

    Each process leaves a probe file named after itself in its directory; after a barrier,
    each looks for the others' probes: a process sees another's exactly when their
    directories are one (a shared filesystem). Per-process directories each get one writer.
    """
    me = jax.process_index()
    probe = directory / f".gamejax-probe-{token}-{me}"
    _, failure = _attempt(probe.touch)
    try:
        rows = processes.gather(mesh, [failure is not None])
        _raise_if_any_failed(rows, failure, f"could not create a file in checkpoint_dir {directory}")
        sharing = [p for p in rows if (directory / f".gamejax-probe-{token}-{p}").exists()]
        processes.barrier(mesh)  # (every process has looked before any probe goes)
    finally:
        probe.unlink(missing_ok=True)
    return min(sharing) == me


def _fingerprint(path: pathlib.Path) -> np.ndarray:
    """A digest of a checkpoint's arrays and manifest (the file's bytes differ with its write time)."""
    with np.load(path) as stored:
        return processes.digest(*(part for name in sorted(stored.files) for part in (name, stored[name].tobytes())))
