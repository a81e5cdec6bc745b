"""Anchored extragradient methods: EAG-C/EAG-V (Yoon & Ryu 2021) and FEG (Lee & Kim 2021).

Both are extragradient with an *anchor*: every step is pulled back towards the starting point
``z_0`` with a weight that decays like ``1/k``. The anchor turns extragradient's ``O(1/k)`` rate
on the squared field norm ``‖v(z_k)‖²`` into ``O(1/k²)`` (optimal for first-order methods on
smooth monotone games), and FEG's extrapolation correction extends it to negatively comonotone
(structured nonconvex-nonconcave) games where plain extragradient diverges.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Game, GameTransformation, Players, checks, split_batch


class AnchoredExtragradientState(NamedTuple):
    """State of :func:`anchored_extragradient`.

    Attributes:
      anchor: the anchor ``z_0``, the params ``tx.init`` was called with.
      step_size: ``Players`` of scalars, each player's step size ``α_k`` for the next step
        (the learning rate throughout for ``variant="constant"``; Yoon & Ryu's recursion for
        ``variant="varying"``).
      count: int32, the iteration ``k`` (steps taken), saturating at the int32 maximum
        (``optax.safe_increment``) instead of wrapping.
    """

    anchor: Players
    step_size: Players
    count: jax.Array


class FastExtragradientState(NamedTuple):
    """State of :func:`fast_extragradient`.

    Attributes:
      anchor: the anchor ``z_0``, the params ``tx.init`` was called with.
      count: int32, the iteration ``k`` (steps taken), saturating at the int32 maximum.
    """

    anchor: Players
    count: jax.Array


def _scalar_dtype(tree: Any) -> jnp.dtype:
    """The floating dtype of a per-player scalar: the widest of the player's leaves, at least float32."""
    return jnp.result_type(jnp.float32, *(checks.dtype_of(leaf) for leaf in jax.tree.leaves(tree)))


def _anchored(params: Players, anchor: Players, weight: Any, *terms: tuple[Players, Players]) -> Players:
    """``β (z_0 − z) − Σ s_i·v_i`` per player (the displacement of an anchored stage), in the params' dtypes.

    ``weight`` is the anchor weight ``β`` (a scalar); each term is a field ``v_i`` and a
    ``Players`` of its step sizes ``s_i``.
    """

    def player(i: int) -> Any:
        def leaf(a: jax.Array, a0: jax.Array, *fields: jax.Array) -> jax.Array:
            dtype = checks.dtype_of(a)
            out = weight.astype(dtype) * (a0 - a)
            for g, (_, scales) in zip(fields, terms, strict=True):
                out = out - jnp.asarray(scales[i]).astype(dtype) * g
            return out.astype(dtype)

        return jax.tree.map(leaf, params[i], anchor[i], *(field[i] for field, _ in terms))

    return Players(player(0), player(1))


def _beta(count: jax.Array, offset: int) -> jax.Array:
    """The anchor weight ``1 / (k + offset)`` in float64 if enabled (cast per leaf by the caller)."""
    dtype = jnp.result_type(float)
    return 1.0 / (count.astype(dtype) + offset)


def _check_anchor(params: Players, anchor: Players, method: str) -> None:
    checks.check_same_layout(params, anchor, "params", f"the {method} anchor (the params tx.init was called with)")


def anchored_extragradient(
    learning_rate: Any, *, variant: str = "constant", lipschitz: Any = None
) -> GameTransformation:
    """Extra anchored gradient (EAG): extragradient pulled towards its starting point with weight ``1/(k+2)``.

    With anchor ``z_0`` (the params passed to ``init``), field ``v`` and step sizes ``α_k``
    (Yoon & Ryu 2021, eqs. EAG-C and EAG-V; their ``∇L = (∇x L, −∇y L)`` is gamejax's field):

    .. math::
       z_{k+1/2} = z_k + \\tfrac{1}{k+2}(z_0 − z_k) − α_k\\, v(z_k), \\qquad
       z_{k+1} = z_k + \\tfrac{1}{k+2}(z_0 − z_k) − α_k\\, v(z_{k+1/2}).

    ``variant="constant"`` (EAG-C) keeps ``α_k = α``; for an ``L``-smooth convex-concave game
    and ``α ≤ 1/(8L)``, Theorem 1 gives ``‖v(z_k)‖² ≤ 4‖z_0 − z*‖² / (α²(k+1)²)``, against
    extragradient's ``O(1/k)``. ``variant="varying"`` (EAG-V) starts from ``α_0`` and follows

    .. math::  α_{k+1} = \\frac{α_k}{1 − α_k^2 L^2}\\Big(1 − \\frac{(k+2)^2}{(k+1)(k+3)} α_k^2 L^2\\Big),

    which decreases to a limit ``α_∞ > 0``; Theorem 2 gives ``‖v(z_k)‖² ≤ 4(1 + α_0α_∞L²)
    ‖z_0 − z*‖² / (α_∞²(k+1)²)`` (the paper takes ``α_0 = 0.618/L``, ``α_∞ ≈ 0.437/L``, a
    constant ≈ 27L², about ten times smaller than EAG-C's 256L²). The recursion's step sizes
    stay positive only for ``α_0 L < √3/2``. Two game evaluations per step, as extragradient.

    The anchor is part of the state: a step depends on where the run started, and wrappers
    (lookahead, averaging) see the anchored iterates. Gamejax's sign convention (docs/design.md
    §1) makes the same update apply to general-sum games (the paper's monotone operator).

    Args:
      learning_rate: ``α > 0`` (EAG-C) or ``α_0`` (EAG-V), one value or ``gj.Players`` of
        them; may be traced.
      variant: ``"constant"`` (EAG-C) or ``"varying"`` (EAG-V).
      lipschitz: ``L > 0``, the field's Lipschitz constant; required by ``variant="varying"``
        (its recursion uses ``α_k L``), not accepted otherwise. May be traced.

    Returns:
      A :class:`GameTransformation` with state :class:`AnchoredExtragradientState`. With
      :class:`gamejax.PerEvaluation` batches, slice 0 serves ``v(z_k)`` and slice 1
      ``v(z_{k+1/2})``.

    Example:
      >>> import gamejax as gj
      >>> tx = gj.anchored_extragradient(1 / 8)                                  # EAG-C, L = 1
      >>> tx = gj.anchored_extragradient(0.618, variant="varying", lipschitz=1.0)  # EAG-V

    References:
      Yoon & Ryu, `Accelerated Algorithms for Smooth Convex-Concave Minimax Problems with
      O(1/k²) Rate on Squared Gradient Norm <https://arxiv.org/abs/2102.07922>`_, ICML 2021
      (EAG-C, Theorem 1; EAG-V, Theorem 2).
    """
    checks.check_choice("variant", variant, ("constant", "varying"))
    rates = checks.per_player_number(
        "learning_rate", learning_rate, low=0.0, high=math.inf, low_open=True, high_open=True
    )
    if variant == "constant":
        if lipschitz is not None:
            raise ValueError(
                "lipschitz is used only by anchored_extragradient(variant='varying') (EAG-V's step-size "
                f"recursion); got lipschitz={lipschitz!r} with variant='constant'. Remove it, or pass "
                "variant='varying'."
            )
    else:
        if lipschitz is None:
            raise ValueError(
                "anchored_extragradient(variant='varying') needs lipschitz=L, the Lipschitz constant of the "
                "field: EAG-V's step sizes follow a recursion in α_k·L (Yoon & Ryu 2021, Theorem 2)."
            )
        checks.check_number("lipschitz", lipschitz, low=0.0, high=math.inf, low_open=True, high_open=True)
        if checks.is_concrete(lipschitz):
            limit = math.sqrt(3) / 2
            for player, rate in zip(("x", "y"), rates, strict=True):
                if checks.is_concrete(rate) and not float(rate) * float(lipschitz) < limit:
                    raise ValueError(
                        f"learning_rate (player {player}) times lipschitz must be below √3/2 ≈ 0.866 for EAG-V's "
                        f"step sizes to stay positive; got {float(rate)!r} × {float(lipschitz)!r}. The paper "
                        "uses learning_rate = 0.618 / lipschitz."
                    )

    def init(params: Players) -> AnchoredExtragradientState:
        checks.check_players(params, "params")
        step_size = Players(
            *(jnp.asarray(rate, _scalar_dtype(player)) for rate, player in zip(rates, params, strict=True))
        )
        return AnchoredExtragradientState(params, step_size, jnp.zeros([], jnp.int32))

    def next_step_size(step_size: Players, count: jax.Array) -> Players:
        if variant == "constant":
            return step_size

        def recursion(alpha: jax.Array) -> jax.Array:
            k = count.astype(alpha.dtype)
            product = jnp.square(alpha * jnp.asarray(lipschitz, alpha.dtype))
            factor = 1 + 1 / ((k + 1) * (k + 3))  # (k+2)²/((k+1)(k+3)), without the cancellation
            return (alpha / (1 - product) * (1 - factor * product)).astype(alpha.dtype)

        return Players(*(recursion(alpha) for alpha in step_size))

    def update(game: Game, params: Players, state: AnchoredExtragradientState, batch: Batch = None):
        first, second = split_batch(batch, 2, "anchored_extragradient")
        _check_anchor(params, state.anchor, "anchored_extragradient")
        beta = _beta(state.count, 2)
        half = optax.apply_updates(
            params, _anchored(params, state.anchor, beta, (game.field(params, first), state.step_size))
        )
        updates = _anchored(params, state.anchor, beta, (game.field(half, second), state.step_size))
        step_size = next_step_size(state.step_size, state.count)
        return updates, AnchoredExtragradientState(state.anchor, step_size, optax.safe_increment(state.count))

    return GameTransformation(init, update)


def fast_extragradient(learning_rate: Any, *, rho: Any = 0.0) -> GameTransformation:
    """Fast extragradient (FEG): anchored extragradient for smooth, possibly negatively comonotone games.

    With anchor ``z_0`` (the params passed to ``init``), field ``v``, step size ``α`` (the
    paper's ``1/L``) and comonotonicity parameter ``ρ`` (Lee & Kim 2021, FEG):

    .. math::
       z_{k+1/2} = z_k + \\tfrac{1}{k+1}(z_0 − z_k) − \\big(1 − \\tfrac{1}{k+1}\\big)(α + 2ρ)\\, v(z_k),
       \\qquad
       z_{k+1} = z_k + \\tfrac{1}{k+1}(z_0 − z_k) − α\\, v(z_{k+1/2})
                 − \\big(1 − \\tfrac{1}{k+1}\\big)\\, 2ρ\\, v(z_k).

    (The first step, ``k = 0``, is a plain gradient step from ``z_0``; with ``ρ = 0`` the last
    term vanishes.) The field is
    ``ρ``-comonotone when ``⟨v(z) − v(w), z − w⟩ ≥ ρ‖v(z) − v(w)‖²`` for all ``z, w``: ``ρ = 0``
    is a monotone (convex-concave) game, ``ρ < 0`` a structured nonconvex-nonconcave one. For an
    ``L``-smooth, ``ρ``-comonotone game with ``ρ > −1/(2L)`` and ``α = 1/L``, the paper's
    convergence theorem for FEG gives ``‖v(z_k)‖² ≤ 4‖z_0 − z*‖² / ((α + 2ρ)² k²)`` for
    ``k ≥ 1``: at ``ρ = 0``, ``4L²‖z_0 − z*‖²/k²``, a smaller constant than EAG's. The bound is
    attained (to 1e-7) by the rotation-like field ``[[ρ, b], [−b, ρ]]`` with ``ρ = −0.3``,
    ``b = √(1 − ρ²)`` (``L = 1``), on which extragradient diverges for every step size in
    ``(0, 1/L]`` (``tests/test_beyond.py``, ``benchmarks/beyond.py``). Two game evaluations
    per step.

    Args:
      learning_rate: ``α > 0`` (``1/L`` in the paper), one value or ``gj.Players`` of them; may
        be traced.
      rho: ``ρ``, the field's comonotonicity parameter, with ``α + 2ρ > 0`` (the paper's
        ``ρ > −1/(2L)``); 0 for monotone games. May be traced.

    Returns:
      A :class:`GameTransformation` with state :class:`FastExtragradientState`. With
      :class:`gamejax.PerEvaluation` batches, slice 0 serves ``v(z_k)`` and slice 1
      ``v(z_{k+1/2})``.

    Example:
      >>> import gamejax as gj
      >>> tx = gj.fast_extragradient(1.0)                 # L = 1, a monotone game
      >>> tx = gj.fast_extragradient(1.0, rho=-0.3)       # a −0.3-comonotone game

    References:
      Lee & Kim, `Fast Extra Gradient Methods for Smooth Structured Nonconvex-Nonconcave
      Minimax Problems <https://arxiv.org/abs/2106.02326>`_, NeurIPS 2021 (FEG and its
      O(1/k²) theorem for ρ-comonotone problems).
    """
    rates = checks.per_player_number(
        "learning_rate", learning_rate, low=0.0, high=math.inf, low_open=True, high_open=True
    )
    checks.check_number("rho", rho, low=-math.inf, high=math.inf, low_open=True, high_open=True)
    if checks.is_concrete(rho):
        for player, rate in zip(("x", "y"), rates, strict=True):
            if checks.is_concrete(rate) and not float(rate) + 2 * float(rho) > 0:
                raise ValueError(
                    f"rho must be greater than -learning_rate/2 (the paper's ρ > −1/(2L) with learning_rate = 1/L), "
                    f"so that the extrapolation step α + 2ρ is positive; got rho={float(rho)!r} with learning_rate "
                    f"(player {player}) = {float(rate)!r}."
                )

    def init(params: Players) -> FastExtragradientState:
        checks.check_players(params, "params")
        return FastExtragradientState(params, jnp.zeros([], jnp.int32))

    def update(game: Game, params: Players, state: FastExtragradientState, batch: Batch = None):
        first, second = split_batch(batch, 2, "fast_extragradient")
        _check_anchor(params, state.anchor, "fast_extragradient")
        beta = _beta(state.count, 1)
        field = game.field(params, first)
        extrapolation = Players(*((1 - beta) * (rate + 2 * jnp.asarray(rho)) for rate in rates))
        half = optax.apply_updates(params, _anchored(params, state.anchor, beta, (field, extrapolation)))
        correction = Players(*((1 - beta) * 2 * jnp.asarray(rho) for _ in rates))
        updates = _anchored(params, state.anchor, beta, (game.field(half, second), rates), (field, correction))
        return updates, FastExtragradientState(state.anchor, optax.safe_increment(state.count))

    return GameTransformation(init, update)
