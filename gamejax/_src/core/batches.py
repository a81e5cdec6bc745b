"""Batches for methods that evaluate the game several times per step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from gamejax._src.core import checks
from gamejax._src.core.game import Batch


class PerEvaluation(NamedTuple):
    """Independent batches for a step that evaluates the game several times.

    Every leaf of ``batches`` has a leading axis with one slice per game evaluation, in the
    order the method evaluates the game (extragradient: extrapolation, then update;
    ``alternating``: one per player step, in schedule order). A plain batch passed to a
    method is reused for all of its evaluations; wrap stacked batches in ``PerEvaluation``
    to give each evaluation its own sample, as the lookahead paper's Alg. 4 does. See
    :func:`per_evaluation` to build a sampler for :func:`gamejax.fit`.
    """

    batches: Any


def per_evaluation(sample: Callable[[jax.Array], Batch], n: int) -> Callable[[jax.Array], PerEvaluation]:
    """Turn ``sample(key) -> batch`` into a sampler of ``n`` independent batches per step.

    Args:
      sample: draws one batch from a PRNG key.
      n: the number of game evaluations per step of the method that will consume the batches
        (see :func:`gamejax.evaluations_per_step`).

    Returns:
      ``sample_n(key) -> PerEvaluation`` whose leaves have a leading axis of size ``n``.
    """
    if not callable(sample):
        raise TypeError(f"sample must be a callable sample(key) -> batch; got {type(sample).__name__}.")
    checks.check_int("n", n, minimum=1)
    n = int(n)  # a shape inside fit's scan: a Python int, also when given as a 0-d array

    def sample_n(key: jax.Array) -> PerEvaluation:
        return PerEvaluation(jax.vmap(sample)(jax.random.split(key, n)))

    return sample_n


def split_batch(batch: Batch, n: int, method: str) -> list[Batch]:
    """The batch for each of a method's ``n`` game evaluations in one step."""
    if not isinstance(batch, PerEvaluation):
        return [batch] * n
    sizes = checks.leading_sizes(batch.batches)
    if not sizes:
        raise ValueError(f"{method}: PerEvaluation holds no arrays; expected {n} stacked batches.")
    if sizes != {n}:
        raise ValueError(
            f"{method} evaluates the game {n} time(s) per step, so a PerEvaluation batch must "
            f"have a leading axis of size {n} on every leaf; got leading sizes {sorted(map(str, sizes))}."
        )
    return [jax.tree.map(lambda a, i=i: a[i], batch.batches) for i in range(n)]


def first_batch(batch: Batch) -> Batch:
    """One ordinary batch out of ``batch`` (the first slice of a :class:`PerEvaluation`)."""
    if isinstance(batch, PerEvaluation):
        return jax.tree.map(lambda a: a[0], batch.batches)
    return batch
