"""Benchmark games from the papers: ``game, init, equilibrium = gj.games.bilinear()``."""

from gamejax._src.games import (
    GameProblem,
    affine_bilinear,
    bilinear,
    qp1,
    qp2,
    quadratic,
    sbg,
    sbg_sampler,
)

__all__ = [
    "GameProblem",
    "affine_bilinear",
    "bilinear",
    "qp1",
    "qp2",
    "quadratic",
    "sbg",
    "sbg_sampler",
]
