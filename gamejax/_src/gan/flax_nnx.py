"""Flax NNX adapter: a pair of modules as a game, and back.

The adapter is thin (docs/design.md §7): :func:`split` splits the two modules once with
``nnx.split``; the game's losses merge them again with ``nnx.merge`` inside the pure
field, so every gamejax transformation runs on plain ``nnx.State`` pytrees and Flax types
never enter the core. Trainable variables (``nnx.Param`` by default) become the players'
params; every other variable (BatchNorm statistics, spectral-norm vectors, RNG counters)
is model state, threaded as :mod:`gamejax._src.training.step` describes: all evaluations in
a step read the state the step started with, and it advances once per step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
from flax import nnx

from gamejax._src import core
from gamejax._src.core import Batch, Game, Players, StatefulGame, checks

ModuleLoss = Callable[[nnx.Module, nnx.Module, Batch], jax.Array]


def _has_leaves(tree: Any) -> bool:
    return bool(jax.tree.leaves(tree))


@dataclasses.dataclass(frozen=True)
class ModulePair:
    """Two NNX modules split into graph definitions, trainable params and model state.

    Build it with :func:`split`. ``params`` and ``model_state`` are ``Players`` of
    ``nnx.State``; ``graphdefs`` is static.

    Attributes:
      graphdefs: ``Players`` of the modules' ``nnx.GraphDef``.
      params: the trainable variables, the players' params.
      model_state: every other variable (empty ``nnx.State`` for plain MLPs).
      trainable: the ``nnx`` filter that selected ``params``.
    """

    graphdefs: Players
    params: Players
    model_state: Players
    trainable: Any = nnx.Param

    @property
    def stateful(self) -> bool:
        """Whether the modules have non-trainable state that training must thread."""
        return _has_leaves(self.model_state)

    def merge(
        self, params: Players | None = None, model_state: Players | None = None, *, train: bool | None = None
    ) -> Players:
        """The modules at ``params`` and ``model_state`` (default: this pair's own), as ``Players``.

        Nothing is shared with the arguments: the modules may be called and mutated freely.
        They come in the mode they were split in (NNX modules start in training mode: BatchNorm
        normalizes with the batch's statistics and updates its running averages); ``train=False``
        returns them in evaluation mode (``module.eval()``: running averages, no updates), e.g.
        to sample a trained generator, and ``train=True`` in training mode.
        """
        params = self.params if params is None else params
        model_state = self.model_state if model_state is None else model_state
        modules = [nnx.merge(g, p, s, copy=True) for g, p, s in zip(self.graphdefs, params, model_state, strict=True)]
        if train is not None:
            checks.check_bool("train", train)
            for module in modules:
                module.train() if train else module.eval()
        return Players(*modules)

    def game(self, loss: Any, *, name: str | None = None) -> Game | StatefulGame:
        """The game of a loss over the two modules, e.g. one of :mod:`gamejax.gan`'s losses.

        ``loss`` has ``generator`` and ``discriminator`` (``fn(module_x, module_y, batch)``,
        the losses of ``x`` and ``y``), ``zero_sum`` and ``name``, as
        :class:`gamejax.gan.GANLoss`. Returns a :class:`gamejax.Game` for modules without
        model state, else a :class:`StatefulGame` (train it with ``gj.fit(...,
        model_state=pair.model_state)``).
        """
        name = loss.name if name is None else name
        if loss.zero_sum:
            return self.zero_sum(loss.generator, name=name)
        return self.general_sum(loss.generator, loss.discriminator, name=name)

    def zero_sum(self, f: ModuleLoss, *, name: str = "zero-sum module game") -> Game | StatefulGame:
        """The zero-sum game where module ``x`` minimizes ``f(module_x, module_y, batch)`` and ``y`` maximizes it."""
        return self._build((f,), zero_sum=True, name=name)

    def general_sum(self, loss_x: ModuleLoss, loss_y: ModuleLoss, *, name: str = "module game") -> Game | StatefulGame:
        """The game where module ``x`` minimizes ``loss_x(module_x, module_y, batch)`` and ``y`` ``loss_y``."""
        return self._build((loss_x, loss_y), zero_sum=False, name=name)

    def _build(self, losses: tuple[ModuleLoss, ...], *, zero_sum: bool, name: str) -> Game | StatefulGame:
        graphdefs, trainable = self.graphdefs, self.trainable

        def modules(params: Players, model_state: Players) -> Players:
            return Players(
                *(nnx.merge(g, p, s, copy=True) for g, p, s in zip(graphdefs, params, model_state, strict=True))
            )

        def on_params(loss: ModuleLoss, model_state: Players) -> Callable:
            return lambda x, y, batch: loss(*modules(Players(x, y), model_state), batch)

        def game_at(model_state: Players) -> Game:
            if zero_sum:
                return core.zero_sum(on_params(losses[0], model_state), name=name)
            return core.general_sum(*(on_params(loss, model_state) for loss in losses), name=name)

        if not self.stateful:
            return game_at(self.model_state)

        def fn(params: Players, model_state: Players, batch: Batch):
            return game_at(model_state).field_and_losses(params, batch)

        def advance(params: Players, model_state: Players, batch: Batch) -> Players:
            mods = modules(params, model_state)
            for loss in losses:
                loss(*mods, batch)
            return Players(*(nnx.split(m, trainable, ...)[2] for m in mods))

        return StatefulGame(fn, advance, zero_sum=zero_sum, name=name)


def split(x_module: nnx.Module, y_module: nnx.Module, *, trainable: Any = nnx.Param) -> ModulePair:
    """Split two Flax NNX modules (e.g. generator and discriminator) for gamejax.

    Args:
      x_module: the first player's module (the generator in a GAN).
      y_module: the second player's module (the discriminator).
      trainable: an ``nnx`` filter selecting the trainable variables (default ``nnx.Param``).

    Returns:
      A :class:`ModulePair`: ``pair.params`` to train, ``pair.game(loss)`` the game,
      ``pair.merge(params, model_state)`` the modules back.

    Example:
      >>> import optax, jax, gamejax as gj
      >>> from flax import nnx
      >>> G = nnx.Linear(2, 2, rngs=nnx.Rngs(0))
      >>> D = nnx.Linear(2, 1, rngs=nnx.Rngs(1))
      >>> pair = gj.flax.split(G, D)
      >>> game = pair.game(gj.gan.wgan())
      >>> sample = gj.gan.batch_sampler(gj.data.ring().sample, noise_dim=2, batch_size=64)
      >>> result = gj.fit(game, gj.gda(optax.sgd(1e-3)), pair.params, steps=10,
      ...                 sample=sample, key=jax.random.key(0))
      >>> G, D = pair.merge(result.params)
    """
    parts = [nnx.split(m, trainable, ...) for m in (x_module, y_module)]
    return ModulePair(
        graphdefs=Players(*(p[0] for p in parts)),
        params=Players(*(p[1] for p in parts)),
        model_state=Players(*(p[2] for p in parts)),
        trainable=trainable,
    )
