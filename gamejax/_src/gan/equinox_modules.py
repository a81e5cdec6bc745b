"""Equinox adapter: a pair of Equinox modules as a game, and back.

As thin as the Flax adapter (docs/design.md §7), and in Equinox's own idiom: :func:`split`
partitions each module once with ``eqx.partition(module, eqx.is_inexact_array)`` into the
player's params (the module's pytree with its floating-point arrays, ``None`` elsewhere, what
an Equinox user hands to Optax) and a static rest (activation functions, integer arrays, other
fields); the game's losses rebuild the modules with ``eqx.combine`` inside the pure field. The
params are ordinary pytrees of arrays, so every gamejax transformation trains them, and
Equinox types never enter the core. Equinox is optional: it is imported when a function here
is called.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from gamejax._src import core
from gamejax._src.core import Batch, Game, Players, checks
from gamejax._src.core.players import PLAYERS, per_player
from gamejax._src.gan import losses as losses_lib

ModuleLoss = Callable[[Any, Any, Batch], jax.Array]


def _equinox() -> Any:
    try:
        import equinox
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("gj.equinox needs Equinox: pip install equinox") from err
    return equinox


@dataclasses.dataclass(frozen=True)
class ModulePair:
    """Two Equinox modules partitioned into trainable arrays and a static rest.

    Build it with :func:`split`.

    Attributes:
      params: ``Players`` of the modules' trainable halves (``eqx.partition``'s first output),
        the players' params.
      static: ``Players`` of the other halves, closed over by the game.
    """

    params: Players
    static: Players

    def merge(self, params: Players | None = None) -> Players:
        """The modules at ``params`` (default: this pair's own), as ``Players``, by ``eqx.combine``.

        ``params`` has the tree structure of ``pair.params`` (a fit's ``result.params``,
        ``gj.averaged(result.state)``); leaves may carry a leading axis, e.g. from a vmapped
        sweep, and the modules then hold it too (call them under ``jax.vmap``).

        Raises:
          ValueError: if ``params`` does not have the structure of ``pair.params``.
        """
        eqx = _equinox()
        params = self.params if params is None else params
        checks.check_players(params, "params")
        for player, mine, theirs in zip(PLAYERS, params, self.params, strict=True):
            if jax.tree.structure(mine) != jax.tree.structure(theirs):
                raise ValueError(
                    f"params.{player} does not have the tree structure of pair.params.{player}.\n"
                    f"  expected: {jax.tree.structure(theirs)}\n  got:      {jax.tree.structure(mine)}\n"
                    "Pass params trained from pair.params (result.params, gj.averaged(result.state))."
                )
        return Players(*(eqx.combine(p, s) for p, s in zip(params, self.static, strict=True)))

    def game(self, loss: Any, *, per_example: bool = True, name: str | None = None) -> Game:
        """The GAN game of a :class:`gamejax.gan.GANLoss` over the two modules.

        The GAN losses call the networks on batches. Equinox layers (``eqx.nn.MLP``,
        ``eqx.nn.Conv2d``) map one example, so by default each module is applied with
        ``jax.vmap`` over the batch's leading axis; ``per_example=False`` calls modules whose
        ``__call__`` already takes a batch as they are.

        Args:
          loss: e.g. ``gj.gan.non_saturating()`` or ``gj.gan.zero_gp(gj.gan.wgan(), 1.0)``.
          per_example: whether to ``jax.vmap`` the modules over the batch.
          name: a label for tables and plots (default: ``loss.name``).

        Returns:
          A :class:`gamejax.Game` over ``Players(x=generator params, y=discriminator params)``.
        """
        checks.check_bool("per_example", per_example)
        eqx = _equinox()

        def apply(static: Any) -> Callable[[Any, jax.Array], jax.Array]:
            def run(params: Any, inputs: jax.Array) -> jax.Array:
                module = eqx.combine(params, static)
                return jax.vmap(module)(inputs) if per_example else module(inputs)

            return run

        return losses_lib.game(loss, apply(self.static.x), apply(self.static.y), name=name)

    def zero_sum(self, f: ModuleLoss, *, name: str = "zero-sum module game") -> Game:
        """The zero-sum game where module ``x`` minimizes ``f(module_x, module_y, batch)`` and ``y`` maximizes it."""
        return core.zero_sum(self._on_params(f), name=name)

    def general_sum(self, loss_x: ModuleLoss, loss_y: ModuleLoss, *, name: str = "module game") -> Game:
        """The game where module ``x`` minimizes ``loss_x(module_x, module_y, batch)`` and ``y`` ``loss_y``."""
        return core.general_sum(self._on_params(loss_x), self._on_params(loss_y), name=name)

    def _on_params(self, loss: ModuleLoss) -> Callable[[Any, Any, Batch], jax.Array]:
        if not callable(loss):
            raise TypeError(f"the loss must be a callable loss(module_x, module_y, batch); got {type(loss).__name__}.")
        eqx, static = _equinox(), self.static

        def on_params(x: Any, y: Any, batch: Batch) -> jax.Array:
            return loss(eqx.combine(x, static.x), eqx.combine(y, static.y), batch)

        return on_params


def split(x_module: Any, y_module: Any, *, trainable: Any = None) -> ModulePair:
    """Split two Equinox modules (e.g. generator and discriminator) for gamejax.

    Args:
      x_module: the first player's module (the generator in a GAN).
      y_module: the second player's module (the discriminator).
      trainable: the ``filter_spec`` of ``eqx.partition`` that selects the trainable arrays
        (default ``eqx.is_inexact_array``), or ``gj.Players`` of one per module.

    Returns:
      A :class:`ModulePair`: ``pair.params`` to train, ``pair.game(loss)`` (or
      ``pair.zero_sum(f)``, ``pair.general_sum(loss_x, loss_y)``) the game,
      ``pair.merge(params)`` the modules back.

    Raises:
      TypeError: if a module is not an ``equinox.Module``, or ``trainable`` selects a leaf
        that is not an array.
      ValueError: if a module holds Equinox state (``eqx.nn.BatchNorm``, ``eqx.nn.SpectralNorm``):
        its ``eqx.nn.State`` is not threaded through training; use Flax NNX's
        ``gj.flax.split`` for such networks.

    Example:
      >>> import jax, optax, equinox as eqx, gamejax as gj
      >>> G = eqx.nn.MLP(2, 2, 16, 1, key=jax.random.key(0))
      >>> D = eqx.nn.MLP(2, "scalar", 16, 1, key=jax.random.key(1))
      >>> pair = gj.equinox.split(G, D)
      >>> game = pair.game(gj.gan.non_saturating())
      >>> sample = gj.gan.batch_sampler(gj.data.ring().sample, noise_dim=2, batch_size=64)
      >>> result = gj.fit(game, gj.gda(optax.adam(1e-3)), pair.params, steps=10,
      ...                 sample=sample, key=jax.random.key(0), progress=False)
      >>> G, D = pair.merge(result.params)
    """
    eqx = _equinox()
    filters = per_player(eqx.is_inexact_array if trainable is None else trainable)
    halves = []
    for player, module, spec in zip(PLAYERS, (x_module, y_module), filters, strict=True):
        what = f"{player}_module"
        if not isinstance(module, eqx.Module):
            raise TypeError(
                f"{what} must be an equinox.Module (e.g. eqx.nn.MLP); got {type(module).__name__}. "
                "For Flax NNX modules use gj.flax.split; any pytree of arrays can be passed as params directly."
            )
        is_index = lambda node: isinstance(node, eqx.nn.StateIndex)  # noqa: E731
        if any(is_index(node) for node in jax.tree.leaves(module, is_leaf=is_index)):
            raise ValueError(
                f"{what} holds Equinox state (an eqx.nn.StateIndex: BatchNorm, SpectralNorm), which "
                "gj.equinox.split does not thread through training. Use a network without it, or write it "
                "with Flax NNX and gj.flax.split (model state advances once per step, docs/design.md §5)."
            )
        params, static = eqx.partition(module, spec)
        for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
            if not checks.is_array_leaf(leaf):
                raise TypeError(
                    f"trainable selected {what}{jax.tree_util.keystr(path)}, a {type(leaf).__name__}, which is not "
                    "an array: the trainable filter must select arrays only, as the default eqx.is_inexact_array does."
                )
        halves.append((params, static))
    return ModulePair(params=Players(*(h[0] for h in halves)), static=Players(*(h[1] for h in halves)))
