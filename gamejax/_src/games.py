"""Benchmark games from the papers, each with an initial point and its equilibrium."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from gamejax._src.core import Game, Players, checks, zero_sum


class GameProblem(NamedTuple):
    """A game with an initial point and its equilibrium (``None`` where unknown).

    Unpacks as ``game, init, equilibrium = gj.games.bilinear()``.
    """

    game: Game
    init: Players
    equilibrium: Players | None


def _finite(array: jax.Array, name: str) -> jax.Array:
    """``array``, or a ``ValueError`` if it is concrete and holds NaN or inf (traced arrays pass)."""
    if checks.is_concrete(array) and not bool(jnp.all(jnp.isfinite(array))):
        raise ValueError(f"{name} must be finite; it holds {int(jnp.sum(~jnp.isfinite(array)))} NaN/inf value(s).")
    return array


def _vector(value: ArrayLike, name: str, size: int) -> jax.Array:
    array = jnp.asarray(value, dtype=float)
    if array.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},); got {array.shape}.")
    return _finite(array, name)


def _square(value: ArrayLike, name: str) -> jax.Array:
    array = jnp.asarray(value, dtype=float)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"{name} must be a square matrix; got shape {array.shape}.")
    return _finite(array, name)


def _init(init: Players | None, d: int) -> Players:
    """The initial point: ``init`` (checked against the game's ``(d,)`` players) or ones."""
    default = Players(jnp.ones(d), jnp.ones(d))
    if init is None:
        return default
    checks.check_players(init, "init")
    checks.check_same_layout(
        init, default, "init", "the game's players", check_dtype=False, hint="Both players are vectors of size d."
    )
    return init


def bilinear() -> GameProblem:
    """The scalar bilinear game ``min_x max_y x·y``, started at ``(1, 1)``; equilibrium ``(0, 0)``.

    GDA spirals out (‖ω‖² grows by ``1 + η²`` per step), EG, OGDA and Lookahead-minmax
    converge (lookahead paper §4, Observations 1–2).
    """
    one, zero = jnp.ones([]), jnp.zeros([])
    return GameProblem(zero_sum(lambda x, y: x * y, name="bilinear x·y"), Players(one, one), Players(zero, zero))


def affine_bilinear(A: ArrayLike, b: ArrayLike, c: ArrayLike, init: Players | None = None) -> GameProblem:
    """``min_x max_y xᵀAy + bᵀx + cᵀy`` with square invertible ``A``.

    The equilibrium solves ``Ay + b = 0`` and ``Aᵀx + c = 0``. ``init`` defaults to ones.

    Raises:
      ValueError: if ``A`` is not square or singular, ``b`` or ``c`` is not a vector of its
        size, a value is NaN or inf (checked when concrete), or ``init`` is not two such vectors.
    """
    A = _square(A, "A")
    d = A.shape[0]
    b, c = _vector(b, "b", d), _vector(c, "c", d)
    equilibrium = Players(jnp.linalg.solve(A.T, -c), jnp.linalg.solve(A, -b))
    if checks.is_concrete(A) and not all(bool(jnp.all(jnp.isfinite(e))) for e in equilibrium):
        raise ValueError("A must be invertible (the equilibrium solves Ay = -b and Aᵀx = -c); it is singular.")
    game = zero_sum(lambda x, y: x @ A @ y + b @ x + c @ y, name="affine bilinear")
    return GameProblem(game, _init(init, d), equilibrium)


def quadratic(A: ArrayLike, h: float = 1.0, init: Players | None = None) -> GameProblem:
    """The quadratic game ``min_x max_y (h/2)‖x‖² − (h/2)‖y‖² + xᵀAy`` (LEAD paper, eq. 13).

    Its equilibrium is the origin; its field's Jacobian is ``[[hI, A], [−Aᵀ, hI]]``.
    ``init`` defaults to ones.

    Raises:
      ValueError: if ``A`` is not square, ``A`` or ``h`` is NaN or inf (checked when concrete),
        or ``init`` is not two vectors of ``A``'s size.
    """
    A = _square(A, "A")
    checks.check_number("h", h, low=-float("inf"), high=float("inf"), low_open=True, high_open=True)
    d = A.shape[0]

    def f(x, y):
        return 0.5 * h * (x @ x) - 0.5 * h * (y @ y) + x @ A @ y

    zeros = jnp.zeros(d)
    return GameProblem(zero_sum(f, name="quadratic"), _init(init, d), Players(zeros, zeros))


def _scalar_quadratic(a: float, b: float, c: float, name: str) -> GameProblem:
    one, zero = jnp.ones([]), jnp.zeros([])
    return GameProblem(
        zero_sum(lambda x, y: a * x * x + b * x * y + c * y * y, name=name),
        Players(one, one),
        Players(zero, zero),
    )


def qp1() -> GameProblem:
    """QP-1 of the lookahead paper (App. E.1): ``L(x, y) = −3x² + 4xy − y²``, stationary at ``(0, 0)``.

    ``x`` minimizes a function concave in ``x``, so ``(0, 0)`` is a stationary point rather than
    a Nash equilibrium (the paper calls it the optimum); it is locally stable for suitable
    per-player step sizes, while with one step size shared by both players GDA's spectral
    radius exceeds 1.
    """
    return _scalar_quadratic(-3.0, 4.0, -1.0, "QP-1")


def qp2() -> GameProblem:
    """QP-2 of the lookahead paper (App. E.2): ``L(x, y) = x² + 5xy − y²``, equilibrium ``(0, 0)``."""
    return _scalar_quadratic(1.0, 5.0, -1.0, "QP-2")


def sbg(key: jax.Array, dim: int = 100) -> GameProblem:
    """The stochastic bilinear game SB-G (lookahead paper, §4.2, App. D).

    ``n = d = dim`` samples, ``[A_i]_kl = δ_kli`` (``A_i = e_i e_iᵀ``), ``b_i, c_i ~ N(0, 1/d)``,
    and per-sample loss ``ℓ_i(θ, φ) = θᵀb_i + θᵀA_iφ + c_iᵀφ``; ``θ = x`` minimizes, ``φ = y``
    maximizes. The batch is an int array of sample indices (see :func:`sbg_sampler`), or
    ``None`` for the full batch.

    The loss of a batch is the *sum* of its per-sample losses. The paper writes a ``1/n``
    average, but its step sizes (``η = 0.3`` full batch, Fig. 3; Table 4) only make sense for
    the sum, which is what the authors' code computes (its equilibrium is
    ``θ* = −Σc_i, φ* = −Σb_i``). Sampling without replacement then gives every sampled
    coordinate a unit-scale gradient whatever the batch size. The initial point is drawn from
    ``N(0, 1/d)``, as in that code.

    Args:
      key: PRNG key for ``b``, ``c`` and the initial point.
      dim: ``n = d`` (100 in the paper).

    Returns:
      A :class:`GameProblem`.
    """
    checks.check_int("dim", dim, minimum=1)
    dim = int(dim)  # a shape: NumPy and JAX integers become a Python int
    kb, kc, kx, ky = jax.random.split(key, 4)
    scale = 1.0 / jnp.sqrt(dim)
    b = scale * jax.random.normal(kb, (dim, dim))
    c = scale * jax.random.normal(kc, (dim, dim))

    def f(theta, phi, batch):
        if batch is None:
            return theta @ b.sum(0) + theta @ phi + c.sum(0) @ phi
        index = jnp.asarray(batch)
        if index.ndim != 1 or not jnp.issubdtype(index.dtype, jnp.integer):
            raise ValueError(f"An SB-G batch is a 1-D int array of sample indices; got {index.dtype}{index.shape}.")
        return theta @ b[index].sum(0) + theta[index] @ phi[index] + c[index].sum(0) @ phi

    init = Players(scale * jax.random.normal(kx, (dim,)), scale * jax.random.normal(ky, (dim,)))
    equilibrium = Players(-c.sum(0), -b.sum(0))
    return GameProblem(zero_sum(f, name=f"SB-G (d={dim})"), init, equilibrium)


def sbg_sampler(batch_size: int, dim: int = 100) -> Callable[[jax.Array], jax.Array]:
    """``sample(key)``: ``batch_size`` distinct SB-G sample indices (drawn without replacement)."""
    checks.check_int("dim", dim, minimum=1)
    checks.check_int("batch_size", batch_size, minimum=1)
    dim, batch_size = int(dim), int(batch_size)  # shapes, used inside jit (fit's scan): Python ints
    if batch_size > dim:
        raise ValueError(f"batch_size must be at most dim={dim} (sampling without replacement); got {batch_size}.")

    def sample(key: jax.Array) -> jax.Array:
        return jax.random.permutation(key, dim)[:batch_size]

    return sample
