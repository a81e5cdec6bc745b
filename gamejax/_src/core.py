"""Core types of gamejax: players, games, game transformations.

Sign convention (DESIGN.md §1): each player *minimizes* its own loss. The vector field
``v(x, y) = (∇x loss_x, ∇y loss_y)`` is a descent direction for both players, and every
method in gamejax is written in terms of it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src import checks

Batch = Any
State = Any


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
    """

    fn: FieldAndLosses
    zero_sum: bool = False
    name: str = "game"

    def field_and_losses(self, params: Players, batch: Batch = None) -> tuple[Players, Players]:
        """The field and the losses at ``params`` (one evaluation of the game)."""
        return self.fn(params, batch)

    def field(self, params: Players, batch: Batch = None) -> Players:
        """The vector field ``v = (∇x loss_x, ∇y loss_y)`` at ``params``."""
        return self.fn(params, batch)[0]

    def losses(self, params: Players, batch: Batch = None) -> Players:
        """The two players' losses at ``params``."""
        return self.fn(params, batch)[1]

    def with_field(self, fn: FieldAndLosses, name: str | None = None, zero_sum: bool | None = None) -> Game:
        """This game with another field function (used by wrappers that modify the field).

        ``zero_sum`` says whether the new field is still that of a zero-sum game (default: unchanged).
        """
        return dataclasses.replace(
            self,
            fn=fn,
            name=self.name if name is None else name,
            zero_sum=self.zero_sum if zero_sum is None else zero_sum,
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

    The field ``v = (∇x loss_x, ∇y loss_y)`` is computed from one forward pass of both losses
    and two pullbacks (``jax.vjp``); unused cross terms are removed by XLA under ``jit``.

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
        (lx, ly), pullback = jax.vjp(lambda x, y: (call_x(x, y, batch), call_y(x, y, batch)), params.x, params.y)
        gx, _ = pullback((jnp.ones_like(lx), jnp.zeros_like(ly)))
        _, gy = pullback((jnp.zeros_like(lx), jnp.ones_like(ly)))
        return Players(gx, gy), Players(lx, ly)

    return Game(field_and_losses, zero_sum=False, name=name)


class GameTransformation(NamedTuple):
    """A pure optimizer for two-player games (DESIGN.md §2).

    Attributes:
      init: ``init(params: Players) -> state`` (any pytree).
      update: ``update(game, params, state, batch=None) -> (updates, new_state)``; add the
        updates to the params with :func:`apply_updates`. The game is an argument of every
        call, so one transformation serves every game and every batch.
    """

    init: Callable[[Players], State]
    update: Callable[..., tuple[Players, State]]


def apply_updates(params: Players, updates: Players) -> Players:
    """``params + updates`` leaf by leaf, keeping each param's dtype (as ``optax.apply_updates``).

    Raises:
      ValueError: if ``updates`` does not have the tree structure and shapes of ``params``.
    """
    checks.check_players(params, "params")
    checks.check_same_layout(updates, params, "updates", "params", check_dtype=False)
    return optax.apply_updates(params, updates)


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
