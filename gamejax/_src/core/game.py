"""Games: the vector field a method evaluates, how much one evaluation costs, and model state.

Sign convention (docs/design.md §1): each player *minimizes* its own loss. The vector field
``v(x, y) = (∇x loss_x, ∇y loss_y)`` is a descent direction for both players, and every
method in gamejax is written in terms of it.

Cost is counted one way (docs/design.md §4): each game declares the cost of one evaluation of
its field in gradient-equivalents (``Game.cost``: 1 for a game's own field, 3 for consensus's
``v + γJᵀv``), and :func:`counting_evaluations` sums the declared cost of every evaluation a
traced step makes. Evaluations made *inside* another game's field (the game that consensus
wraps) are part of that field's declared cost and are not counted again.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import inspect
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.extend import core as jax_core

from gamejax._src.core import checks
from gamejax._src.core.players import Players

Batch = Any
ModelState = Any

FieldAndLosses = Callable[[Players, Batch], tuple[Players, Players]]


@dataclasses.dataclass(frozen=True)
class Game:
    """A differentiable two-player game, given by its vector field.

    The primitive is ``fn(params, batch) -> (field, losses)``, with
    ``field = Players(∇x loss_x, ∇y loss_y)`` and ``losses = Players(loss_x, loss_y)`` (kept
    for logging). Methods only ever call the field, so a wrapper that changes the field
    (consensus optimization, symplectic gradient adjustment) yields a new game every method
    runs on unchanged. Build games with :func:`zero_sum` or :func:`general_sum`; construct
    ``Game`` directly only to supply a field by hand.

    A ``Game`` holds no arrays: it is a static pytree, so it can be passed through
    ``jax.jit``/``jax.vmap`` as an argument. Data the losses need either lives in the loss
    functions' closures (fixed games) or travels in ``batch``.

    Attributes:
      fn: the function described above.
      zero_sum: whether ``loss_y == -loss_x`` (second-order methods may exploit it).
      name: a label for tables and plots.
      cost: the cost of one evaluation of the field in gradient-equivalents ("passes", the
        papers' x-axis): 1 for a game's own field (each player's gradient), more for a field
        that adds derivative work on top (consensus's ``Jᵀv``: 3 times the inner field).
    """

    fn: FieldAndLosses
    zero_sum: bool = False
    name: str = "game"
    cost: float = 1.0

    def field_and_losses(self, params: Players, batch: Batch = None) -> tuple[Players, Players]:
        """The field and the losses at ``params`` (one evaluation of the game)."""
        tally = _TALLY.get()
        if tally is None:
            return self.fn(params, batch)
        top_level = tally.depth == 0
        if top_level:
            tally.calls += 1
            tally.passes += self.cost
        tally.depth += 1
        try:
            out = self.fn(params, batch)
        finally:
            tally.depth -= 1
        if top_level and tally.first is None:
            with jax_core.take_current_trace() as trace:
                tally.first = Evaluation(self, params, batch, trace, *out)
        return out

    def field(self, params: Players, batch: Batch = None) -> Players:
        """The vector field ``v = (∇x loss_x, ∇y loss_y)`` at ``params``."""
        return self.field_and_losses(params, batch)[0]

    def losses(self, params: Players, batch: Batch = None) -> Players:
        """The two players' losses at ``params``."""
        return self.field_and_losses(params, batch)[1]

    def with_field(
        self, fn: FieldAndLosses, name: str | None = None, zero_sum: bool | None = None, cost: float | None = None
    ) -> Game:
        """This game with another field function (used by wrappers that modify the field).

        ``zero_sum`` says whether the new field is still that of a zero-sum game, ``cost`` what one
        evaluation of it costs in gradient-equivalents (both default to this game's).
        """
        return dataclasses.replace(
            self,
            fn=fn,
            name=self.name if name is None else name,
            zero_sum=self.zero_sum if zero_sum is None else zero_sum,
            cost=self.cost if cost is None else cost,
        )


jax.tree_util.register_static(Game)


def _accepts_batch(fn: Callable, what: str) -> bool:
    """Whether ``fn`` takes a third positional argument (the batch)."""
    if not callable(fn):
        raise TypeError(f"{what} must be a callable loss(x, y[, batch]); got {type(fn).__name__}.")
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # builtins, some C callables: assume the full signature
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    variadic = any(p.kind == p.VAR_POSITIONAL for p in params)
    if len(required) <= 3 and (variadic or len(positional) >= 3):
        return True
    if len(required) <= 2 and len(positional) == 2:
        return False
    raise TypeError(
        f"{what} must take the two players' params (x, y) and optionally a batch: "
        f"loss(x, y) or loss(x, y, batch); its signature is {inspect.signature(fn)}."
    )


def _loss_caller(fn: Callable, what: str) -> Callable[[Any, Any, Batch], jax.Array]:
    takes_batch = _accepts_batch(fn, what)

    def call(x, y, batch):
        loss = fn(x, y, batch) if takes_batch else fn(x, y)
        checks.check_scalar_loss(loss, what)
        return loss

    return call


def zero_sum(f: Callable, *, name: str = "zero-sum game") -> Game:
    """A zero-sum game: ``x`` minimizes ``f(x, y, batch)``, ``y`` maximizes it.

    In gamejax's convention ``loss_x = f`` and ``loss_y = -f``, so the field is
    ``v = (∇x f, -∇y f)``. Both gradients come from one backward pass.

    Args:
      f: ``f(x, y, batch) -> scalar`` (or ``f(x, y)`` for games without data).
      name: a label for tables and plots.

    Returns:
      A :class:`Game`.

    Example:
      >>> import jax.numpy as jnp, gamejax as gj
      >>> game = gj.zero_sum(lambda x, y: x * y)
      >>> game.field(gj.Players(jnp.array(1.0), jnp.array(2.0)))
      Players(x=Array(2., dtype=float32, weak_type=True), y=Array(-1., dtype=float32, weak_type=True))
    """
    call = _loss_caller(f, "the zero-sum loss f")

    def field_and_losses(params: Players, batch: Batch) -> tuple[Players, Players]:
        checks.check_players(params, "params")
        value, (gx, gy) = jax.value_and_grad(call, argnums=(0, 1))(params.x, params.y, batch)
        return Players(gx, jax.tree.map(jnp.negative, gy)), Players(value, -value)

    return Game(field_and_losses, zero_sum=True, name=name)


def general_sum(loss_x: Callable, loss_y: Callable, *, name: str = "general-sum game") -> Game:
    """A general-sum game: ``x`` minimizes ``loss_x``, ``y`` minimizes ``loss_y``.

    The field ``v = (∇x loss_x, ∇y loss_y)`` is each player's gradient of its own loss
    (``jax.value_and_grad`` of ``loss_x`` in ``x`` and of ``loss_y`` in ``y``), the program a
    user writes by hand: no pullback through the other player's parameters. Forward work the two
    losses share (a GAN's generated samples) is computed once under ``jit`` (XLA's common
    subexpression elimination).

    Args:
      loss_x: ``loss_x(x, y, batch) -> scalar`` (or ``loss_x(x, y)``).
      loss_y: ``loss_y(x, y, batch) -> scalar`` (or ``loss_y(x, y)``).
      name: a label for tables and plots.

    Returns:
      A :class:`Game`.

    Example (the non-saturating GAN has this form):
      >>> import jax.numpy as jnp, gamejax as gj
      >>> game = gj.general_sum(lambda x, y: (x - y) ** 2, lambda x, y: x * y)
      >>> game.field(gj.Players(jnp.array(1.0), jnp.array(3.0)))
      Players(x=Array(-4., dtype=float32, weak_type=True), y=Array(1., dtype=float32, weak_type=True))
    """
    call_x = _loss_caller(loss_x, "loss_x")
    call_y = _loss_caller(loss_y, "loss_y")

    def field_and_losses(params: Players, batch: Batch) -> tuple[Players, Players]:
        checks.check_players(params, "params")
        lx, gx = jax.value_and_grad(lambda x: call_x(x, params.y, batch))(params.x)
        ly, gy = jax.value_and_grad(lambda y: call_y(params.x, y, batch))(params.y)
        return Players(gx, gy), Players(lx, ly)

    return Game(field_and_losses, zero_sum=False, name=name)


@dataclasses.dataclass(frozen=True)
class StatefulGame:
    """A game whose losses read and update non-trainable model state (BatchNorm, spectral norm).

    Built by :func:`gamejax.flax.split` for Flax NNX modules with BatchNorm or spectral
    normalization. A training step (:func:`gamejax.make_step`) binds the model state into an
    ordinary :class:`Game` for the transformation and advances it once per step; see
    docs/design.md §5 for why.

    Attributes:
      fn: ``fn(params, model_state, batch) -> (field, losses)``; the model state it reads
        is not updated.
      advance: ``advance(params, model_state, batch) -> model_state``, the state after one
        evaluation of the players' losses.
      zero_sum: whether ``loss_y == -loss_x``.
      name: a label for tables and plots.
    """

    fn: Callable[[Players, ModelState, Batch], tuple[Players, Players]]
    advance: Callable[[Players, ModelState, Batch], ModelState]
    zero_sum: bool = False
    name: str = "game"

    def bind(self, model_state: ModelState) -> Game:
        """The ordinary :class:`Game` at fixed ``model_state`` (for methods, diagnostics)."""
        return Game(lambda params, batch: self.fn(params, model_state, batch), self.zero_sum, self.name)


jax.tree_util.register_static(StatefulGame)


class PassCount(NamedTuple):
    """The passes a variable-cost method has spent so far, kept in its state and found by type.

    Most methods cost the same every step, and the step's trace says how much (the declared
    ``cost`` of each field evaluation). A method whose cost varies from step to step (CGD's
    iterative solve, SVRE's occasional full-batch snapshot) keeps one ``PassCount`` leaf in its
    state and adds what each step spent, in gradient-equivalents (each evaluation or product of
    its game weighted by ``game.cost``); :func:`gamejax.fit` then reports that count.

    The sum is compensated (Kahan): a plain float32 total stops counting small increments once
    it passes 2²⁴ (16.8 million passes, minutes of training on a small game); the compensation
    keeps the count exact to float32 rounding of the true total far beyond that.

    Attributes:
      total: float32, gradient-equivalents spent since ``init``.
      compensation: float32, the rounding error ``total`` carries (the true count is
        ``total − compensation``; read it with :attr:`value`).
    """

    total: jax.Array
    compensation: jax.Array

    @classmethod
    def zero(cls) -> PassCount:
        return cls(jnp.zeros([], jnp.float32), jnp.zeros([], jnp.float32))

    def add(self, passes: Any) -> PassCount:
        """This count plus ``passes`` (Kahan's compensated summation)."""
        increment = jnp.asarray(passes, jnp.float32) - self.compensation
        total = self.total + increment
        return PassCount(total, (total - self.total) - increment)

    @property
    def value(self) -> jax.Array:
        """The passes counted, float32."""
        return self.total - self.compensation


class Evaluation(NamedTuple):
    """One traced evaluation of a game: where it was made (``trace``: the JAX trace it ran in) and its outputs."""

    game: Game
    params: Players
    batch: Batch
    trace: Any
    field: Players
    losses: Players


@dataclasses.dataclass
class Tally:
    """What :func:`counting_evaluations` has counted: top-level field evaluations and their cost.

    ``first`` is the first top-level evaluation, which a training step may reuse for its
    metrics when it was made at the step's own starting point (see :meth:`Step.__call__`).
    """

    calls: int = 0
    passes: float = 0.0
    depth: int = 0
    first: Evaluation | None = None


_TALLY: contextvars.ContextVar[Tally | None] = contextvars.ContextVar("gamejax_tally", default=None)


@contextlib.contextmanager
def counting_evaluations() -> Iterator[Tally]:
    """Count the field evaluations of the code traced inside, and their declared cost.

    Only evaluations at the top level count: a field that evaluates another game (consensus
    around the user's game) declares that work in its own ``cost``. A call inside a ``lax``
    loop or ``lax.cond`` body is traced, and so counted, once.
    """
    token = _TALLY.set(Tally())
    try:
        yield _TALLY.get()
    finally:
        _TALLY.reset(token)


def current_tally() -> Tally | None:
    """The :class:`Tally` of the innermost active :func:`counting_evaluations`, if any."""
    return _TALLY.get()
