"""Atomic on-disk checkpoints of a training run (params, full state, step, PRNG key, metrics so far).

One checkpoint is one ``.npz`` file, ``ckpt_<step>.npz``, written to a temporary name in the
same directory, flushed to disk and renamed into place (``os.replace`` is atomic on POSIX and
Windows), so an interrupted write never leaves a partial checkpoint behind. Each leaf is
stored as its raw bytes with its dtype, shape and tree path in a JSON manifest, so bfloat16
leaves and typed PRNG keys round-trip exactly, and restoring checks the tree structure,
paths, shapes and dtypes against the run's own state before anything is loaded.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gamejax._src.files import write_atomically

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
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return max(found)[1] if found else None


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


def save_run(directory: Any, carry: tuple, key: Any, log_every: int, history: dict) -> None:
    """Write a :func:`gamejax.fit` run: its carry, PRNG key and the metrics so far."""
    trees = dict(zip(_CARRY, carry, strict=True), metrics=history)
    if key is not None:
        trees["key"] = key
    save(directory, int(carry[2]), trees, {"log_every": log_every})


def _key_bits(key: jax.Array) -> jax.Array:
    return jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key


def resume_run(directory: Any, carry: tuple, key: Any, log_every: int) -> tuple[tuple, dict | None]:
    """The carry and metrics of the newest checkpoint in ``directory`` (``carry``, ``None`` if there is none)."""
    newest = latest(directory)
    if newest is None:
        return carry, None
    templates = dict(zip(_CARRY, carry, strict=True), metrics=None)
    if key is not None:
        templates["key"] = key
    trees, meta = restore(newest, templates)
    if meta["log_every"] != log_every:
        raise ValueError(
            f"checkpoint {newest} was written with log_every={meta['log_every']}, this call has "
            f"log_every={log_every}; pass log_every={meta['log_every']} to continue that run."
        )
    if key is not None and not np.array_equal(np.asarray(_key_bits(trees["key"])), np.asarray(_key_bits(key))):
        raise ValueError(f"checkpoint {newest} was written with another PRNG key: pass the run's original key=.")
    return tuple(trees[name] for name in _CARRY), trees["metrics"]
