"""Trace-time accounting of game evaluations beyond the field calls themselves.

:func:`gamejax.evaluations_per_step` counts the calls of a game's field while tracing one step.
Code that adds derivative work on top of a field call (consensus's vector-Jacobian product,
SGA's Jacobian-vector product and transpose) declares it here, in gradient-equivalents; nothing
is recorded outside that counting, and nothing here touches traced values.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_EXTRA: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("gamejax_extra_evaluations", default=None)


def add(evaluations: float) -> None:
    """Declare ``evaluations`` gradient-equivalents of work beyond a field call (counted only while counting)."""
    extra = _EXTRA.get()
    if extra is not None:
        extra.append(evaluations)


@contextlib.contextmanager
def counting() -> Iterator[list[float]]:
    """Collect the declared extra evaluations of the code traced inside."""
    token = _EXTRA.set([])
    try:
        yield _EXTRA.get()
    finally:
        _EXTRA.reset(token)
