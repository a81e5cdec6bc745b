"""Opponent shaping: LOLA (Foerster et al. 2018) and Stable Opponent Shaping (Letcher et al. 2019).

Both are written in the SOS paper's notation for two players: ``ξ`` is the simultaneous
gradient (gamejax's field ``v``), ``H = ∇ξ`` its Jacobian (gamejax's ``J``) with off-diagonal
blocks ``H_o``, ``ξ_0 = (I − αH_o)ξ`` the LookAhead gradient and ``χ = diag(H_oᵀ∇L)`` the
shaping term; LOLA follows ``ξ_0 − αχ`` and SOS ``ξ_0 − pαχ`` with ``p ∈ [0, 1]`` chosen each
step so that the shaping never fights convergence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Game, GameTransformation, Players, checks, split_batch
from gamejax._src.core import optax_players as base_lib
from gamejax._src.derivatives import linearize_field, linearize_field_and_losses, off_diagonal_blocks


class LOLAState(NamedTuple):
    """State of :func:`lola`: each player's base optimizer state."""

    base: Players


class SOSState(NamedTuple):
    """State of :func:`sos`: each player's base optimizer state."""

    base: Players


def _shaping_terms(game: Game, params: Players, batch: Batch) -> tuple[Players, Players, Players, Players]:
    """``(ξ, H_oξ, χ, losses)`` at ``params``.

    ``(H_oξ)_x = J_xy ξ_y`` and ``χ_x = J_yxᵀ ∇_y loss_x`` (the symmetric formulas for ``y``):
    two Jacobian-vector products, and for a general-sum game two transposed products for the
    cross gradients ``∇_y loss_x, ∇_x loss_y`` and two for ``χ``. In a zero-sum game
    ``∇_y loss_x = −ξ_y`` and ``J_yx = −J_xyᵀ``, so ``χ = H_oξ`` and those four are not needed.
    """
    if game.zero_sum:
        field, jvp, losses = linearize_field(game, params, batch)
    else:
        field, jvp, vjp, cross, losses = linearize_field_and_losses(game, params, batch)
    jxy, jyx = off_diagonal_blocks(jvp, params)
    lookahead = Players(jxy(field.y), jyx(field.x))
    if game.zero_sum:
        return field, lookahead, lookahead, losses
    zeros = optax.tree.zeros_like(params)
    chi = Players(vjp(Players(zeros.x, cross.y)).x, vjp(Players(cross.x, zeros.y)).y)
    return field, lookahead, chi, losses


def _combine(field: Players, lookahead: Players, chi: Players, alpha: Any, p: Any) -> Players:
    """``ξ − αH_oξ − pαχ`` leaf by leaf, in the field's dtypes."""
    return jax.tree.map(lambda v, h, c: (v - alpha * h - p * alpha * c).astype(v.dtype), field, lookahead, chi)


def _shaped_game(game: Game, name: str, field_fn: Callable) -> Game:
    # One linearization and its products: 1 + 2 (H_oξ) for a zero-sum game; + 2 (cross
    # gradients) + 2 (χ) for a general-sum one, each about one gradient evaluation.
    cost = (3 if game.zero_sum else 7) * game.cost
    return game.with_field(field_fn, name=f"{name}({game.name})", zero_sum=False, cost=cost)


def _shaping_method(bases: Players, name: str, field_fn: Callable, state_type: type) -> GameTransformation:
    """The base optimizers fed one evaluation of the shaped game (its field ``field_fn(game)``)."""

    def init(params: Players) -> Any:
        return state_type(base_lib.init(bases, params))

    def update(game: Game, params: Players, state: Any, batch: Batch = None):
        (batch,) = split_batch(batch, 1, name)
        shaped = _shaped_game(game, name, field_fn(game))
        updates, base_state = base_lib.update(bases, shaped.field(params, batch), state.base, params)
        return updates, state_type(base_state)

    return GameTransformation(init, update)


def _check_lookahead(lookahead: Any) -> None:
    checks.check_number("lookahead", lookahead, low=0.0, high=math.inf, high_open=True)


def lola(base: Any, *, lookahead: Any) -> GameTransformation:
    """LOLA: each player shapes the opponent's anticipated gradient step (SOS paper's form).

    Each player assumes the opponent takes a naive step ``−α ξ_opponent`` and differentiates its
    own loss through that step (to first order, Foerster et al. 2018). For two players, in the
    SOS paper's notation (Letcher et al. 2019) with ``ξ`` the field, ``H_o`` the off-diagonal
    blocks of its Jacobian and ``χ = diag(H_oᵀ∇L)``, the base optimizer receives

    .. math::  ξ_{\\mathrm{LOLA}} = ξ − αH_oξ − αχ, \\qquad
               (H_oξ)_x = J_{xy} ξ_y,\\quad χ_x = J_{yx}^⊤ ∇_y \\ell_x

    (and symmetrically for ``y``): ``−αH_oξ`` is LookAhead's term, ``−αχ`` the shaping term,
    through which LOLA does not preserve the game's stable fixed points (the SOS paper's
    Tandem game). ``gj.lola(optax.sgd(α), lookahead=α)`` is the paper's
    ``θ ← θ − αξ_LOLA``. For a zero-sum game ``χ = H_oξ`` (so LOLA is ``ξ − 2αH_oξ``).

    Cost: one linearization of the field and two Jacobian-vector products (zero-sum games;
    about 3 gradient evaluations), plus four transposed products for a general-sum game (the
    cross gradients ``∇_y loss_x, ∇_x loss_y`` and ``χ``; about 7): one evaluation of a field
    that declares that cost, so :func:`gamejax.passes_per_step` reports it (docs/design.md §4).
    No dense Jacobian.

    Args:
      base: an ``optax.GradientTransformation`` for both players or ``gj.Players`` of them.
      lookahead: ``α >= 0``, the opponent's anticipated learning rate; may be traced.

    Returns:
      A :class:`GameTransformation` with state :class:`LOLAState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.lola(optax.sgd(0.1), lookahead=0.1)

    References:
      Foerster et al, `Learning with Opponent-Learning Awareness <https://arxiv.org/abs/1709.04326>`_,
      AAMAS 2018; Letcher et al, `Stable Opponent Shaping in Differentiable Games
      <https://arxiv.org/abs/1811.08469>`_, ICLR 2019 (LOLA in this form; the Tandem game).
    """
    bases = base_lib.as_players(base)
    _check_lookahead(lookahead)

    def field_fn(game: Game) -> Callable:
        def fn(params: Players, batch: Batch):
            field, ho, chi, losses = _shaping_terms(game, params, batch)
            return _combine(field, ho, chi, lookahead, 1.0), losses

        return fn

    return _shaping_method(bases, "lola", field_fn, LOLAState)


def sos(base: Any, *, lookahead: Any, a: Any = 0.5, b: Any = 0.1) -> GameTransformation:
    """Stable Opponent Shaping: LOLA's shaping term, scaled down where it would fight convergence.

    In the SOS paper's notation (Letcher et al. 2019, Alg. 1; see :func:`lola`), with the
    LookAhead gradient ``ξ_0 = (I − αH_o)ξ`` and the shaping term ``χ``, the base optimizer
    receives

    .. math::  ξ_p = ξ_0 − pαχ, \\qquad p = \\min(p_1, p_2),

    where ``p_1 = 1`` if ``⟨−αχ, ξ_0⟩ ≥ 0`` and ``p_1 = min(1, −a‖ξ_0‖² / ⟨−αχ, ξ_0⟩)``
    otherwise (the shaping never turns ``ξ_p`` more than ``a`` away from ``ξ_0``), and
    ``p_2 = ‖ξ‖²`` if ``‖ξ‖ < b``, else 1 (the shaping fades near fixed points, which SOS
    therefore preserves, unlike LOLA). Norms and inner products run over both players.
    ``gj.sos(optax.sgd(α), lookahead=α)`` is Alg. 1's ``θ ← θ − αξ_p``; ``p = 1`` is LOLA and
    ``p = 0`` LookAhead. Same cost as :func:`lola`.

    Args:
      base: an ``optax.GradientTransformation`` for both players or ``gj.Players`` of them.
      lookahead: ``α >= 0``, the opponent's anticipated learning rate; may be traced.
      a: ``a ∈ (0, 1)``, the alignment bound of ``p_1`` (0.5 in the paper); may be traced.
      b: ``b ∈ (0, 1)``, the field norm under which ``p_2 = ‖ξ‖²`` (0.1 in the paper); may be traced.

    Returns:
      A :class:`GameTransformation` with state :class:`SOSState`.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.sos(optax.sgd(0.1), lookahead=0.1)            # a = 0.5, b = 0.1

    References:
      Letcher et al, `Stable Opponent Shaping in Differentiable Games
      <https://arxiv.org/abs/1811.08469>`_, ICLR 2019 (Alg. 1; SOS's and LookAhead's convergence
      results).
    """
    bases = base_lib.as_players(base)
    _check_lookahead(lookahead)
    checks.check_number("a", a, low=0.0, high=1.0, low_open=True, high_open=True)
    checks.check_number("b", b, low=0.0, high=1.0, low_open=True, high_open=True)

    def field_fn(game: Game) -> Callable:
        def fn(params: Players, batch: Batch):
            field, ho, chi, losses = _shaping_terms(game, params, batch)
            xi0 = _combine(field, ho, chi, lookahead, 0.0)
            dot = -lookahead * optax.tree.vdot(chi, xi0)  # ⟨−αχ, ξ_0⟩
            xi0_norm2 = optax.tree.norm(xi0, squared=True)
            negative = dot < 0
            p1 = jnp.where(negative, jnp.minimum(1.0, -a * xi0_norm2 / jnp.where(negative, dot, -1.0)), 1.0)
            xi_norm2 = optax.tree.norm(field, squared=True)
            p2 = jnp.where(xi_norm2 < jnp.square(b), xi_norm2, 1.0)
            p = jnp.minimum(p1, p2)
            return _combine(field, ho, chi, lookahead, p), losses

        return fn

    return _shaping_method(bases, "sos", field_fn, SOSState)
