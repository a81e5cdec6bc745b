"""Wrappers that change the game's field: consensus optimization, symplectic gradient adjustment, HGD.

Each hands the inner transformation a new :class:`~gamejax.Game` whose field is corrected, so
they compose with every method (first- or second-order) and every other wrapper.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gamejax._src import derivatives
from gamejax._src.core import (
    Batch,
    Game,
    GameTransformation,
    Players,
    check_not_transformation,
    check_transformation,
    checks,
)
from gamejax._src.core.tree_math import add_scaled

Adjust = Callable[[Game], Game]


def _field_wrapper(adjust: Adjust, name: str) -> Callable[[GameTransformation], GameTransformation]:
    """A wrapper whose inner transformation sees ``adjust(game)`` instead of ``game``; no state of its own."""

    def wrap(inner: GameTransformation) -> GameTransformation:
        check_transformation(inner, f"{name}(...)", f"gj.{name}(1.0)(gj.gda(optax.sgd(0.1)))")

        def update(game: Game, params: Players, state: Any, batch: Batch = None):
            return inner.update(adjust(game), params, state, batch)

        return GameTransformation(inner.init, update)

    wrap.adjusted_game = adjust  # the game every inner method sees, e.g. for its spectrum
    return wrap


def _add_scaled(field: Players, correction: Players, scale: Players) -> Players:
    return Players(*(add_scaled(v, c, s) for v, c, s in zip(field, correction, scale, strict=True)))


def _examples(batch: Batch) -> tuple[Batch, int]:
    """The batch as examples along the leading axis, each a batch of one."""
    sizes = checks.leading_sizes(batch)
    if len(sizes) != 1 or None in sizes or min(sizes) < 2:
        raise ValueError(
            "consensus(debias=True) needs a batch whose leaves all share a leading example axis of "
            f"size >= 2 (the loss of a batch being the mean over it); got leading sizes {sorted(map(str, sizes))}."
        )
    return jax.tree.map(lambda a: a[:, None], batch), sizes.pop()


def _consensus_field(game: Game, gammas: Players, debias: bool):
    def plain(params: Players, batch: Batch):
        field, pullback, losses = derivatives.field_vjp(game, params, batch)
        return _add_scaled(field, pullback(field), gammas), losses  # Jᵀv = ∇(½‖v‖²)

    def debiased(params: Players, batch: Batch):
        examples, n = _examples(batch)
        fields, pullback, losses = derivatives.per_example_field_vjp(game, params, examples)
        total = jax.tree.map(lambda f: jnp.sum(f, axis=0), fields)
        # ∇ of the unbiased ½·mean_{i≠j} v_i·v_j: cotangent (Σv − v_i) / (n(n−1)) on each v_i.
        cotangent = jax.tree.map(lambda f, s: (s[None] - f) / (n * (n - 1)), fields, total)
        correction = pullback(cotangent)
        field = jax.tree.map(lambda s: s / n, total)
        return _add_scaled(field, correction, gammas), jax.tree.map(jnp.mean, losses)

    return debiased if debias else plain


def consensus(gamma: Any, *, debias: bool = False) -> Callable[[GameTransformation], GameTransformation]:
    """Consensus optimization: both players also descend ``γ·½‖v‖²`` (Numerics of GANs, Alg. 2).

    The inner transformation sees the game whose field is

    .. math::  v + γ\\, J^⊤ v = v + γ\\, ∇\\big(\\tfrac12 \\|v\\|^2\\big)

    (Mescheder et al. maximize utilities ``f − γL``; in gamejax's minimizing convention each
    player descends ``loss + γL`` with ``L = ½‖v‖²``.) So
    ``gj.consensus(10.0)(gj.gda(optax.rmsprop(1e-4)))`` is the paper's method, and consensus
    composes with every other method. ``Jᵀv`` is one vector-Jacobian product of the field
    (double backpropagation): about three gradient evaluations per field evaluation.

    **Minibatch bias.** ``½‖v_B‖²`` over a minibatch overestimates ``L`` by ``Var[v_1]/(2B)``
    (the paper's supplement, Lemma 15). With ``debias=True`` the regularizer is the unbiased
    ``L_B − (1/(2B−2))·(sample variance of the v_i)``, i.e. ``½·mean_{i≠j} v_i·v_j``, from the
    per-example fields (``jax.vmap`` over the batch's leading axis, each example evaluated as a
    batch of one). This requires every batch leaf to have that leading example axis and the
    game's loss on a batch to be the *mean* of its per-example losses (``jnp.mean``, as GAN
    losses are written); the field is then the mean of the per-example fields.

    Args:
      gamma: ``γ >= 0``, one value or ``gj.Players(x=..., y=...)``; may be traced.
      debias: use the unbiased minibatch estimate of ``½‖v‖²``.

    Returns:
      A wrapper ``consensus(gamma)(inner) -> GameTransformation`` (the inner state, unchanged).
      Its ``adjusted_game(game)`` is the game with the field above, e.g. for
      :func:`gamejax.jacobian_eigenvalues` of ``v + γJᵀv``.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.consensus(10.0)(gj.gda(optax.rmsprop(1e-4)))
      >>> tx = gj.lookahead(5, 0.5)(gj.consensus(1.0)(gj.extragradient(optax.adam(1e-4))))

    References:
      Mescheder, Nowozin & Geiger, `The Numerics of GANs <https://arxiv.org/abs/1705.10461>`_,
      2017 (§4, Alg. 2; supplement, "The bias in consensus optimization").
    """
    check_not_transformation(gamma, "gj.consensus(gamma)(inner)")
    gammas = checks.per_player_number("gamma", gamma, low=0.0, high=math.inf, high_open=True)
    checks.check_bool("debias", debias)

    def adjust(game: Game) -> Game:
        # Jᵀv is a double-backward pass: about two evaluations of the field on top of it.
        field = _consensus_field(game, gammas, debias)
        return game.with_field(field, name=f"consensus({game.name})", zero_sum=False, cost=3 * game.cost)

    return _field_wrapper(adjust, "consensus")


def _sga_field(game: Game, lams: Players, align: bool, eps: float):
    def fn(params: Players, batch: Batch):
        field, jvp, vjp, losses = derivatives.field_jvp_and_vjp(game, params, batch)
        jt_v, j_v = vjp(field), jvp(field)
        antisymmetric = jax.tree.map(lambda a, b: 0.5 * (a - b), jt_v, j_v)  # Aᵀv = ½(Jᵀ − J)v
        scale = lams
        if align:
            dim = sum(jnp.size(a) for a in jax.tree.leaves(params))
            sign = jnp.sign(optax.tree.vdot(field, jt_v) * optax.tree.vdot(antisymmetric, jt_v) / dim + eps)
            scale = Players(*(sign * lam for lam in lams))
        return _add_scaled(field, antisymmetric, scale), losses

    return fn


def sga(lam: Any, *, align: bool = False, eps: float = 0.1) -> Callable[[GameTransformation], GameTransformation]:
    """Symplectic gradient adjustment: add ``λ·Aᵀv``, ``A`` the antisymmetric part of the Jacobian.

    The inner transformation sees the game whose field is

    .. math::  v + λ A^⊤ v, \\qquad A = \\tfrac12 (J - J^⊤), \\quad A^⊤ v = \\tfrac12 (J^⊤ v - J v)

    (Balduzzi et al. 2018, in their convention of losses and ``ξ = v``.) ``Jv`` and ``Jᵀv``
    come from one linearization of the field and its transpose: about three gradient
    evaluations. With ``align=True`` the sign of ``λ`` is chosen each step by the alignment
    criterion ``sign(⟨v, ∇H⟩⟨Aᵀv, ∇H⟩/d + ε)`` with ``∇H = Jᵀv`` (their Alg. 1).

    Args:
      lam: ``λ >= 0``, one value or ``gj.Players``; may be traced.
      align: choose the sign of ``λ`` by alignment.
      eps: the alignment criterion's ``ε >= 0`` (finite; 0.1 in the paper).

    Returns:
      A wrapper ``sga(lam)(inner) -> GameTransformation``; its ``adjusted_game(game)`` is the
      game with the adjusted field ``v + λAᵀv``.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.sga(1.0)(gj.gda(optax.sgd(0.05)))

    References:
      Balduzzi et al, `The Mechanics of n-Player Differentiable Games
      <https://arxiv.org/abs/1802.05642>`_, 2018 (SGA, Alg. 1); cited as a baseline by the LEAD
      paper (§6).
    """
    check_not_transformation(lam, "gj.sga(lam)(inner)")
    lams = checks.per_player_number("lam", lam, low=0.0, high=math.inf, high_open=True)
    checks.check_number("eps", eps, low=0.0, high=math.inf, high_open=True)
    checks.check_bool("align", align)

    def adjust(game: Game) -> Game:
        # Jv and Jᵀv from one linearization: about one evaluation of the field each on top of it.
        field = _sga_field(game, lams, align, eps)
        return game.with_field(field, name=f"sga({game.name})", zero_sum=False, cost=3 * game.cost)

    return _field_wrapper(adjust, "sga")


def _halves(batch: Batch) -> Batch:
    """The batch as two halves stacked along a new leading axis (two independent minibatches)."""
    sizes = checks.leading_sizes(batch)
    if len(sizes) != 1 or None in sizes or min(sizes) < 2 or min(sizes) % 2:
        raise ValueError(
            "hamiltonian(unbiased=True) needs a batch whose leaves all share a leading example axis of even "
            "size >= 2, split into two independent halves (the loss of a batch being the mean over it); got "
            f"leading sizes {sorted(map(str, sizes))}."
        )
    n = sizes.pop()
    return jax.tree.map(lambda a: a.reshape((2, n // 2) + a.shape[1:]), batch)


def _hamiltonian_field(game: Game, unbiased: bool):
    def plain(params: Players, batch: Batch):
        field, pullback, losses = derivatives.field_vjp(game, params, batch)
        return pullback(field), losses  # Jᵀv = ∇(½‖v‖²)

    def two_sample(params: Players, batch: Batch):
        fields, pullback, losses = derivatives.per_example_field_vjp(game, params, _halves(batch))
        # ½(J₁ᵀv₂ + J₂ᵀv₁): the cotangent on each half's field is half the other half's field.
        swapped = jax.tree.map(lambda f: 0.5 * f[::-1], fields)
        return pullback(swapped), jax.tree.map(jnp.mean, losses)

    return two_sample if unbiased else plain


def hamiltonian(*, unbiased: bool = False) -> Callable[[GameTransformation], GameTransformation]:
    """Hamiltonian gradient descent: every player descends ``H = ½‖v‖²`` (Loizou et al. 2020).

    The inner transformation sees the game whose field is

    .. math::  ∇H = J^⊤ v = ∇\\big(\\tfrac12 \\|v\\|^2\\big),

    consensus optimization's correction without the field itself (:func:`consensus` adds
    ``γJᵀv`` to ``v``). ``gj.hamiltonian()(gj.gda(optax.sgd(η)))`` is Hamiltonian gradient
    descent ``z ← z − η Jᵀv``, and any method or base optimizer runs on top. Where ``v`` is
    affine (``xᵀAy``, quadratic games) ``H`` is a quadratic whose minimizers are the game's
    stationary points, so HGD converges linearly: on ``xᵀAy`` with step ``η = 1/σ_max(A)²`` the
    distance shrinks by at least ``1 − σ_min(A)²/σ_max(A)²`` per step (the paper's ``μ_H/L_H``),
    whatever the game's rotation. One vector-Jacobian product of the field: about three
    gradient evaluations per field evaluation, as consensus.

    **Stochastic games.** ``½‖v_B‖²`` of one minibatch is a biased estimate of ``H``. With
    ``unbiased=True`` the batch is split into two halves, independent minibatches ``i`` and
    ``j``, and the field is the paper's unbiased estimator ``½(J_iᵀv_j + J_jᵀv_i)`` of ``Jᵀv``
    (SHGD): every batch leaf must have a leading example axis of even size, and the game's
    loss on a batch be the *mean* of its examples' (``jnp.mean``). One vector-Jacobian product
    of both halves' fields: the same cost (declared as the game's ``cost``, docs/design.md §4).

    Args:
      unbiased: use the two-sample unbiased estimator on each batch's two halves.

    Returns:
      A wrapper ``hamiltonian()(inner) -> GameTransformation`` (the inner state, unchanged). Its
      ``adjusted_game(game)`` is the game with field ``Jᵀv``.

    Example:
      >>> import optax, gamejax as gj
      >>> tx = gj.hamiltonian()(gj.gda(optax.sgd(0.5)))                  # HGD
      >>> tx = gj.hamiltonian(unbiased=True)(gj.gda(optax.adam(1e-3)))   # SHGD's estimator, Adam on top

    References:
      Loizou, Berard, Jolicoeur-Martineau, Vincent, Lacoste-Julien & Mitliagkas, `Stochastic
      Hamiltonian Gradient Methods for Smooth Games <https://arxiv.org/abs/2007.04202>`_, ICML 2020
      (HGD and SHGD, Alg. 1, with the unbiased estimator; linear convergence on bilinear games);
      Balduzzi et al. 2018 (the Hamiltonian ``½‖ξ‖²``).
    """
    checks.check_bool("unbiased", unbiased)

    def adjust(game: Game) -> Game:
        # Jᵀv is a double-backward pass: about two evaluations of the field on top of it.
        field = _hamiltonian_field(game, unbiased)
        return game.with_field(field, name=f"hamiltonian({game.name})", zero_sum=False, cost=3 * game.cost)

    return _field_wrapper(adjust, "hamiltonian")
