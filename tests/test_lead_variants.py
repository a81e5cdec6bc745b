"""LEAD's two couplings on a general-sum game, against dense NumPy transcriptions (float64).

Game: loss_x = ½xᵀAx + xᵀBy + aᵀx, loss_y = ½yᵀCy + yᵀDx + cᵀy, so v_x = Ax + By + a and
v_y = Cy + Dx + c. The paper's coupling uses the player's own loss, ∇xy loss_x = B and
∇yx loss_y = D; the authors' code differentiates the opponent's gradient, ∇y(v_x·Δx) = BᵀΔx
and ∇x(v_y·Δy) = DᵀΔy, and moves y first.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gamejax as gj

RNG = np.random.default_rng(0)
A = np.diag([1.0, 2.0])
C = np.diag([1.5, 0.5, 1.0])
B = RNG.normal(size=(2, 3))
D = RNG.normal(size=(3, 2))
a, c = RNG.normal(size=2), RNG.normal(size=3)
GAME = gj.general_sum(
    lambda x, y: 0.5 * x @ A @ x + x @ B @ y + a @ x,
    lambda x, y: 0.5 * y @ C @ y + y @ D @ x + c @ y,
)
X0, Y0 = RNG.normal(size=2), RNG.normal(size=3)
ETA, CX, CY, STEPS = 0.05, 0.7, 1.3, 12


def v_x(x, y):
    return A @ x + B @ y + a


def v_y(x, y):
    return C @ y + D @ x + c


def run(tx):
    step = gj.make_step(GAME, tx)
    params = gj.Players(jnp.asarray(X0), jnp.asarray(Y0))
    state = tx.init(params)
    for _ in range(STEPS):
        params, state, _ = step(params, state)
    return np.asarray(params.x), np.asarray(params.y)


def test_paper_variant_simultaneous_sgd():
    x, y, x_prev, y_prev = X0, Y0, X0, Y0
    for _ in range(STEPS):
        gx = v_x(x, y) + CX * B @ (y - y_prev)
        gy = v_y(x, y) + CY * D @ (x - x_prev)
        x_prev, y_prev = x, y
        x, y = x - ETA * gx, y - ETA * gy
    got = run(gj.lead(optax.sgd(ETA), coupling=gj.Players(CX, CY)))
    np.testing.assert_allclose(got[0], x, rtol=1e-12)
    np.testing.assert_allclose(got[1], y, rtol=1e-12)


def _authors_by_hand(base_step):
    """The authors' order and couplings; ``base_step(player, g)`` applies that player's base."""
    x, y, x_prev = X0, Y0, X0
    for _ in range(STEPS):
        gy = v_y(x, y) - CY * B.T @ (x - x_prev)
        y_new = y + base_step("y", gy)
        gx = v_x(x, y_new) - CX * D.T @ (y_new - y)
        x_prev, x, y = x, x + base_step("x", gx), y_new
    return x, y


def test_authors_variant_sgd():
    x, y = _authors_by_hand(lambda player, g: -ETA * g)
    got = run(gj.lead(optax.sgd(ETA), coupling=gj.Players(CX, CY), variant="authors"))
    np.testing.assert_allclose(got[0], x, rtol=1e-12)
    np.testing.assert_allclose(got[1], y, rtol=1e-12)


def test_authors_variant_adam_is_lsd_adam():
    """LSD_Adam: Adam on g − α·vjp, with the authors' betas (0.5, 0.9) and eps 1e-8."""
    b1, b2, eps = 0.5, 0.9, 1e-8
    moments = {p: [np.zeros(n), np.zeros(n), 0] for p, n in (("x", 2), ("y", 3))}

    def adam(player, g):
        m, v, t = moments[player]
        t += 1
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        moments[player] = [m, v, t]
        return -ETA * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)

    x, y = _authors_by_hand(adam)
    got = run(gj.lead(optax.adam(ETA, b1=b1, b2=b2, eps=eps), coupling=gj.Players(CX, CY), variant="authors"))
    np.testing.assert_allclose(got[0], x, rtol=1e-10)
    np.testing.assert_allclose(got[1], y, rtol=1e-10)


def test_variants_differ_on_general_sum():
    paper = run(gj.lead(optax.sgd(ETA), coupling=gj.Players(CX, CY), alternating=True))
    authors = run(gj.lead(optax.sgd(ETA), coupling=gj.Players(CX, CY), variant="authors"))
    assert not np.allclose(paper[0], authors[0], rtol=1e-3)


def test_authors_variant_on_a_zero_sum_game_is_the_papers_coupling_with_y_first():
    """f = ½xᵀAx + xᵀBy − ½yᵀCy: the paper's couplings ∇xy loss_x = B, ∇yx loss_y = −Bᵀ."""
    game = gj.zero_sum(lambda x, y: 0.5 * x @ A @ x + x @ B @ y - 0.5 * y @ C @ y)
    x, y, x_prev = X0, Y0, X0
    for _ in range(STEPS):
        gy = -(B.T @ x - C @ y) + CY * (-B.T) @ (x - x_prev)
        y_new = y - ETA * gy
        gx = A @ x + B @ y_new + CX * B @ (y_new - y)
        x_prev, x, y = x, x - ETA * gx, y_new
    tx = gj.lead(optax.sgd(ETA), coupling=gj.Players(CX, CY), variant="authors")
    step = gj.make_step(game, tx)
    params = gj.Players(jnp.asarray(X0), jnp.asarray(Y0))
    state = tx.init(params)
    for _ in range(STEPS):
        params, state, _ = step(params, state)
    np.testing.assert_allclose(np.asarray(params.x), x, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(params.y), y, rtol=1e-12)


def test_authors_variant_rejects_simultaneous_updates_and_unknown_variants():
    with pytest.raises(ValueError, match="alternates"):
        gj.lead(optax.sgd(0.1), coupling=0.5, variant="authors", alternating=False)
    with pytest.raises(ValueError, match='variant must be "paper" or "authors"'):
        gj.lead(optax.sgd(0.1), coupling=0.5, variant="author")
