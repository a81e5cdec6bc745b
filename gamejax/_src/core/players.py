"""The two players: one value per player (params, updates, gradients, losses, optimizers).

Sign convention (docs/design.md §1): each player *minimizes* its own loss, and the vector field
``v(x, y) = (∇x loss_x, ∇y loss_y)`` is a descent direction for both players.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Players(NamedTuple):
    """A pair of values, one per player: params, updates, gradients, losses, optimizers.

    Each field may be any pytree (a scalar, an array, a dict, Flax NNX state, several
    networks at once). ``x`` is the first player (the generator in a GAN), ``y`` the second
    (the discriminator).

    Example:
      >>> import jax.numpy as jnp, gamejax as gj
      >>> params = gj.Players(x=jnp.ones(3), y={"w": jnp.zeros(2)})
    """

    x: Any
    y: Any


PLAYERS = ("x", "y")


def per_player(value: Any) -> Players:
    """A value given once for both players, or as ``Players(x=..., y=...)``, as ``Players``."""
    return value if isinstance(value, Players) else Players(value, value)


def other(player: str) -> str:
    """The other player's name: ``"y"`` for ``"x"`` and ``"x"`` for ``"y"``."""
    return "y" if player == "x" else "x"
