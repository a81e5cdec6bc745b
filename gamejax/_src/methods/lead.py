"""LEAD: Least Action Dynamics, the coupling-corrected field fed into any Optax base."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from gamejax._src.core import Batch, Game, GameTransformation, Players, checks, split_batch
from gamejax._src.core import optax_players as base_lib
from gamejax._src.core.tree_math import add_scaled
from gamejax._src.derivatives import field_vjp, player_field_jvp


class LEADState(NamedTuple):
    """State of :func:`lead`.

    Attributes:
      base: each player's base optimizer state.
      previous: the params of the previous step (for the displacements ``Δx, Δy``).
    """

    base: Players
    previous: Players


def lead(base: Any, *, coupling: Any, alternating: bool | None = None, variant: str = "paper") -> GameTransformation:
    """Least Action Dynamics: each player's field corrected by the opponent's displacement.

    Each player feeds its base optimizer the coupling-corrected field

    .. math::  g_x = v_x + c_x\\, \\nabla_{xy}\\ell_x\\, (y_t - y_{t-1}), \\qquad
               g_y = v_y + c_y\\, \\nabla_{yx}\\ell_y\\, (x_t - x_{t-1}).

    **Mapping to the paper.** LEAD (Alg. 1, eq. 12) with learning rate ``η``, momentum ``β``
    and coupling ``α`` is ``gj.lead(optax.sgd(η, momentum=β), coupling=α/η)``. The paper
    writes ascent for ``y``: ``y ← y + βΔy + η∇y f + α∇yx f Δx``. With gamejax's
    ``v_y = −∇y f`` and ``∇yx ℓ_y = −∇yx f``, this is ``y ← y + βΔy − η(v_y + (α/η)∇yx ℓ_y Δx)``:
    the same form as ``x``'s update. ``optax.sgd`` with ``momentum=β`` is Polyak's heavy ball
    ``x_{t+1} = x_t + β(x_t − x_{t−1}) − η g_t``. LEAD-Adam (App. G, Alg. 2) is
    ``gj.lead(optax.adam(η), coupling=α, alternating=True)``: ``x`` steps first, then ``y``'s
    field and coupling are evaluated at the new ``x`` with ``Δx = x_{t+1} − x_t``.

    **Cost.** One :func:`~gamejax.derivatives.player_field_jvp` per player (the player's
    gradient and its mixed product in one forward-over-reverse pass): two game evaluations per
    step. No dense Jacobian is formed. On the first step ``Δ = 0`` (a plain base step).

    **The authors' variant** (``variant="authors"``: ``LSD_Adam`` in the authors' released
    ``Gaussians_py3.py``). The discriminator ``y`` moves first, and each player's coupling
    differentiates the *opponent's* gradient instead of its own:

    .. math::  g_y = v_y(x_t, y_t) - c_y\\, \\nabla_y\\big(v_x(x_t, y_t) \\cdot (x_t - x_{t-1})\\big), \\qquad
               g_x = v_x(x_t, y_{t+1}) - c_x\\, \\nabla_x\\big(v_y(x_t, y_{t+1}) \\cdot (y_{t+1} - y_t)\\big).

    On a zero-sum game (``v_y = −∇y f``) the coupling terms equal the paper's
    ``c ∇xy ℓ Δ``; on a general-sum game they differ (the opponent's loss's mixed derivative
    ``∇ᵢ∇ⱼℓⱼ`` against the player's own ``∇ᵢ∇ⱼℓᵢ``). The authors' code takes the opponent's
    gradient from the opponent's last step (its autograd graph, one evaluation earlier); a pure
    step keeps no graph, so here it is taken where the player's own gradient is, from the same
    evaluation (:func:`~gamejax.derivatives.field_vjp`: one vector-Jacobian product of the
    field per player, so two game evaluations per step, each a double backward pass).

    Args:
      base: an ``optax.GradientTransformation`` for both players or ``gj.Players`` of them.
      coupling: the coupling coefficient (``α/η`` for Alg. 1, ``α`` for LEAD-Adam), one value or
        ``gj.Players(x=..., y=...)``; may be traced. The paper's GANs use ``c_x = 0`` and
        ``c_y = 0.3``.
      alternating: update ``x`` then ``y`` at the new ``x`` (Alg. 2) instead of simultaneously
        (default ``False``; the authors' variant always alternates, ``y`` first).
      variant: ``"paper"`` (the couplings above) or ``"authors"`` (the authors' code, above).

    Returns:
      A :class:`GameTransformation` with state :class:`LEADState`. Each player's gradient and
      mixed product is one game evaluation: with :class:`gamejax.PerEvaluation` batches, slice 0
      serves ``x``'s and slice 1 ``y``'s (simultaneous or alternating).

    Example:
      >>> import optax, gamejax as gj
      >>> eta, beta, alpha = 0.2, 0.5, 0.3
      >>> tx = gj.lead(optax.sgd(eta, momentum=beta), coupling=alpha / eta)         # Alg. 1
      >>> tx = gj.lead(optax.adam(2e-4, b1=0.5), coupling=gj.Players(0.0, 0.3), alternating=True)

    References:
      Hemmat et al, `LEAD: Min-Max Optimization from a Physical Perspective
      <https://arxiv.org/abs/2010.13846>`_, 2023 (Alg. 1, eq. 12; App. G, Alg. 2).
    """
    bases = base_lib.as_players(base)
    if variant not in ("paper", "authors"):
        raise ValueError(f'variant must be "paper" or "authors"; got {variant!r}.')
    if alternating is not None:
        checks.check_bool("alternating", alternating)
    if variant == "authors" and alternating is False:
        raise ValueError(
            'lead(variant="authors") alternates (the discriminator y first), as the authors\' code does; '
            "leave alternating unset."
        )
    alternating = variant == "authors" or bool(alternating)
    couplings = checks.per_player_number(
        "coupling", coupling, low=-math.inf, high=math.inf, low_open=True, high_open=True
    )

    def init(params: Players) -> LEADState:
        return LEADState(base_lib.init(bases, params), params)

    def update(game: Game, params: Players, state: LEADState, batch: Batch = None):
        checks.check_same_layout(params, state.previous, "params", "the LEAD previous params")
        delta = optax.tree.sub(params, state.previous)
        x_batch, y_batch = split_batch(batch, 2, "lead")
        if variant == "authors":
            return authors_update(game, params, state, delta.x, x_batch, y_batch)
        vx, jxy = player_field_jvp(game, params, x_batch, "x", delta.y)
        gx = add_scaled(vx, jxy, couplings.x)
        if not alternating:  # both players at (x_t, y_t); with one batch XLA shares the forward pass
            vy, jyx = player_field_jvp(game, params, y_batch, "y", delta.x)
            corrected = Players(gx, add_scaled(vy, jyx, couplings.y))
            updates, base_state = base_lib.update(bases, corrected, state.base, params)
            return updates, LEADState(base_state, params)
        ux, base_state = base_lib.update_player(bases, "x", gx, state.base, params)
        moved = params._replace(x=optax.apply_updates(params.x, ux))
        vy, jyx = player_field_jvp(game, moved, y_batch, "y", optax.tree.sub(moved.x, params.x))
        uy, base_state = base_lib.update_player(bases, "y", add_scaled(vy, jyx, couplings.y), base_state, moved)
        return Players(ux, uy), LEADState(base_state, params)

    def authors_update(game: Game, params: Players, state: LEADState, delta_x: Any, x_batch: Batch, y_batch: Batch):
        v, pullback, _ = field_vjp(game, params, y_batch)
        coupling_y = pullback(Players(delta_x, jax.tree.map(jnp.zeros_like, params.y))).y  # ∇y(v_x · Δx)
        gy = add_scaled(v.y, coupling_y, -couplings.y)
        uy, base_state = base_lib.update_player(bases, "y", gy, state.base, params)
        moved = params._replace(y=optax.apply_updates(params.y, uy))
        v, pullback, _ = field_vjp(game, moved, x_batch)
        delta_y = optax.tree.sub(moved.y, params.y)
        coupling_x = pullback(Players(jax.tree.map(jnp.zeros_like, params.x), delta_y)).x  # ∇x(v_y · Δy)
        gx = add_scaled(v.x, coupling_x, -couplings.x)
        ux, base_state = base_lib.update_player(bases, "x", gx, base_state, moved)
        return Players(ux, uy), LEADState(base_state, params)

    return GameTransformation(init, update)
