"""Plots of game dynamics (matplotlib, imported only when a function is called).

import gamejax as gj
ax = gj.plots.eigenvalues(values)                    # complex plane with the unit circle
ax = gj.plots.distances({"LA-GDA": result, ...})     # distance to equilibrium vs passes
ax = gj.plots.trajectory(game, path)                 # 2-D iterates over the level sets
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from gamejax._src.core import Game, Players


def _axes(ax: Any) -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("gamejax.plots needs matplotlib: pip install 'gamejax[examples]'") from err
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    return ax


def eigenvalues(
    values: Any, ax: Any = None, *, label: str | None = None, unit_circle: bool = True, **style: Any
) -> Any:
    """Scatter eigenvalues in the complex plane, with the unit circle (``|λ| < 1``: local convergence).

    Args:
      values: complex eigenvalues (any array shape), e.g. of :func:`gamejax.step_jacobian`.
      ax: matplotlib axes (default: a new figure).
      label: legend label.
      unit_circle: draw the unit circle.
      style: passed to ``ax.scatter``.

    Returns:
      The axes.
    """
    ax = _axes(ax)
    values = np.asarray(values).ravel()
    if unit_circle:
        angle = np.linspace(0, 2 * np.pi, 400)
        ax.plot(np.cos(angle), np.sin(angle), color="black", lw=0.8)
    ax.scatter(values.real, values.imag, s=style.pop("s", 12), label=label, **style)
    ax.axhline(0, color="gray", lw=0.4)
    ax.axvline(0, color="gray", lw=0.4)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    return ax


def distances(results: Mapping[str, Any], ax: Any = None, *, metric: str = "distance") -> Any:
    """Distance to the equilibrium against passes (gradient-equivalents), one line per run, log scale.

    Args:
      results: ``{label: FitResult or metrics dict}`` from :func:`gamejax.fit` (with an equilibrium).
      ax: matplotlib axes (default: a new figure).
      metric: the metric on the y-axis.

    Returns:
      The axes.
    """
    ax = _axes(ax)
    for label, result in results.items():
        metrics = getattr(result, "metrics", result)
        ax.semilogy(np.asarray(metrics["passes"]), np.asarray(metrics[metric]), label=label, lw=1.4)
    ax.set_xlabel("passes (gradient-equivalents)")
    ax.set_ylabel({"distance": "distance to equilibrium ‖ω − ω*‖"}.get(metric, metric))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def trajectory(
    game: Game,
    path: Sequence[Players] | Any,
    ax: Any = None,
    *,
    extent: tuple[float, float, float, float] | None = None,
    levels: int = 15,
    label: str | None = None,
    **style: Any,
) -> Any:
    """Iterates of a game with two scalar players over the level sets of ``loss_x``.

    Args:
      game: a game whose players are scalars.
      path: a sequence of ``Players`` of scalars, or an array of shape ``(T, 2)``.
      ax: matplotlib axes (default: a new figure).
      extent: ``(x_min, x_max, y_min, y_max)`` (default: the path's range, padded).
      levels: number of contour levels of ``loss_x``.
      label: legend label; style: passed to ``ax.plot``.

    Returns:
      The axes.
    """
    import jax

    ax = _axes(ax)
    points = np.array([[float(p.x), float(p.y)] for p in path]) if isinstance(path, Sequence) else np.asarray(path)
    if extent is None:
        low, high = points.min(0), points.max(0)
        pad = 0.15 * np.maximum(high - low, 1e-3)
        extent = (low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1])
    xs = np.linspace(extent[0], extent[1], 80)
    ys = np.linspace(extent[2], extent[3], 80)
    grid_x, grid_y = np.meshgrid(xs, ys)
    loss = jax.vmap(lambda x, y: game.losses(Players(x, y)).x)(grid_x.ravel(), grid_y.ravel())
    ax.contour(
        grid_x, grid_y, np.asarray(loss).reshape(grid_x.shape), levels=levels, colors="lightgray", linewidths=0.7
    )
    ax.plot(points[:, 0], points[:, 1], ".-", ms=3, lw=1, label=label, **style)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return ax
