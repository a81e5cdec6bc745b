"""What defines a run, for checkpoints: the text of one training step's program.

A checkpoint resumed by another run would silently return or continue the wrong training (issue
14): another learning rate, coupling or method, another loss, batch shape or dtype. All of them
change the program of one step — ``jax.make_jaxpr`` of the batch draw and the step, where a
Python-number hyperparameter is a literal, an array one a constant (hashed in), and every shape
and dtype is written out — so :func:`gamejax.fit` stores that text with each checkpoint and
refuses to resume from one whose text differs, naming the first line that does (docs/design.md §5).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

import jax
import numpy as np


def step_program(program: Any, carry: tuple, data: tuple) -> str:
    """The text of one step of ``program`` (a :class:`~gamejax._src.training.program.Program`) from ``carry``."""
    params, state, t = carry[:3]

    def one_step(params, state, t, data):
        return program.step(params, state, program.batch_at(t, data))

    closed = jax.make_jaxpr(one_step)(params, state, t, data)
    hasher = hashlib.sha256()
    for const in closed.consts:
        if jax.dtypes.issubdtype(getattr(const, "dtype", None), jax.dtypes.prng_key):
            const = jax.random.key_data(const)
        hasher.update(np.asarray(const).tobytes())
    return f"{closed.jaxpr}\nconstants sha256 {hasher.hexdigest()}"


def encode(text: str) -> str:
    """``text`` compressed, as JSON-safe ASCII (for a checkpoint's metadata)."""
    return base64.b64encode(zlib.compress(text.encode(), 6)).decode()


def decode(stored: str) -> str:
    return zlib.decompress(base64.b64decode(stored)).decode()


def first_difference(stored: str, current: str) -> tuple[int, str, str]:
    """The first differing line of two program texts: ``(line number, stored line, current line)``."""
    old, new = stored.splitlines(), current.splitlines()
    for i, (a, b) in enumerate(zip(old, new, strict=False)):
        if a != b:
            return i + 1, a.strip(), b.strip()
    i = min(len(old), len(new))
    return i + 1, (old[i].strip() if i < len(old) else "(end)"), (new[i].strip() if i < len(new) else "(end)")
