"""Plots of game dynamics (matplotlib, imported only when a function is called).

Usage::

    import gamejax as gj
    ax = gj.plots.eigenvalues(values)                    # complex plane with the unit circle
    ax = gj.plots.distances({"LA-GDA": result, ...})     # distance to equilibrium vs passes
    ax = gj.plots.trajectory(game, path)                 # 2-D iterates over the level sets
"""

from gamejax._src.gan.plots import distances, eigenvalues, trajectory

__all__ = ["distances", "eigenvalues", "trajectory"]
