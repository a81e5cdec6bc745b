"""First-order methods against the closed forms of the lookahead paper (§4, App. B, D.2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import run_steps

import gamejax as gj


def squared_norms(game, tx, params, steps):
    """‖ω_t‖² for t = 0..steps, from a Python loop of the compiled step."""
    squared_norm = lambda p: float(optax.tree.norm(p, squared=True))
    return np.array([squared_norm(params), *run_steps(game, tx, params, steps, observe=squared_norm)[2]])


def vector_bilinear(dim=4):
    """``min_x max_y xᵀy`` in ``dim`` dimensions, started at a random point."""
    kx, ky = jax.random.split(jax.random.key(0))
    game = gj.zero_sum(lambda x, y: x @ y)
    return game, gj.Players(jax.random.normal(kx, (dim,)), jax.random.normal(ky, (dim,)))


@pytest.mark.parametrize("eta", [0.05, 0.3, 1.0])
def test_gda_norm_grows_by_one_plus_eta_squared(eta):
    """Observation 1: GDA on x·y has ‖ω_{t+1}‖² = (1 + η²)‖ω_t‖²."""
    for game, init in (gj.games.bilinear()[:2], vector_bilinear()):
        norms = squared_norms(game, gj.gda(optax.sgd(eta)), init, 20)
        np.testing.assert_allclose(norms[1:] / norms[:-1], 1 + eta**2, rtol=1e-12)


@pytest.mark.parametrize(("eta", "alpha"), [(0.3, 0.5), (0.5, 0.2), (1.0, 0.4)])
def test_lookahead_gda_k2_follows_observation_2(eta, alpha):
    """Observation 2: LA-GDA with k = 2 scales ‖ω‖² by (1 − η²α)² + 4η²α² per lookahead step."""
    game, init = vector_bilinear()
    norms = squared_norms(game, gj.lookahead(2, alpha)(gj.gda(optax.sgd(eta))), init, 20)
    at_backtracks = norms[::2]
    expected = (1 - eta**2 * alpha) ** 2 + 4 * eta**2 * alpha**2
    np.testing.assert_allclose(at_backtracks[1:] / at_backtracks[:-1], expected, rtol=1e-12)


@pytest.mark.parametrize(("k", "eta", "alpha"), [(3, 0.3, 0.5), (6, 0.3, 0.4), (10, 0.1, 0.5)])
def test_lookahead_gda_radius_is_one_minus_alpha_plus_alpha_lambda_k(k, eta, alpha):
    """§4.1/App. B: on x·y one LA-GDA cycle multiplies ‖ω‖ by |1 − α + α λ^k|, λ = 1 + iη."""
    game, init = vector_bilinear()
    norms = squared_norms(game, gj.lookahead(k, alpha)(gj.gda(optax.sgd(eta))), init, 5 * k)
    cycles = np.sqrt(norms[::k])
    expected = abs(1 - alpha + alpha * (1 + 1j * eta) ** k)
    np.testing.assert_allclose(cycles[1:] / cycles[:-1], expected, rtol=1e-12)


@pytest.mark.parametrize("eta", [0.1, 0.3, 0.9])
def test_extragradient_contracts_by_its_closed_form(eta):
    """EG on x·y: ω ← ((1 − η²)I − ηJ)ω, so ‖ω‖² shrinks by (1 − η²)² + η² per step."""
    game, init = vector_bilinear()
    norms = squared_norms(game, gj.extragradient(optax.sgd(eta)), init, 20)
    np.testing.assert_allclose(norms[1:] / norms[:-1], (1 - eta**2) ** 2 + eta**2, rtol=1e-12)


def test_ogda_rate_is_the_spectral_radius_of_its_recurrence():
    """OGDA ω_{t+1} = ω_t − 2ηJω_t + ηJω_{t−1}: its asymptotic rate is the companion matrix's radius."""
    eta = 0.3
    game, init = vector_bilinear(dim=2)
    J = np.array([[0.0, 1.0], [-1.0, 0.0]])  # field of x·y on one coordinate pair: (y, −x)
    companion = np.block([[np.eye(2) - 2 * eta * J, eta * J], [np.eye(2), np.zeros((2, 2))]])
    radius = max(abs(np.linalg.eigvals(companion)))
    norms = np.sqrt(squared_norms(game, gj.optimistic(optax.sgd(eta)), init, 400))
    measured = (norms[400] / norms[200]) ** (1 / 200)
    np.testing.assert_allclose(measured, radius, rtol=1e-6)
    assert radius < 1


@pytest.fixture(scope="module")
def sbg_full():
    return gj.games.sbg(jax.random.key(0))


@pytest.mark.parametrize(
    ("name", "tx", "steps"),
    [
        ("EG", gj.extragradient(optax.sgd(0.3)), 600),
        ("OGDA", gj.optimistic(optax.sgd(0.3)), 600),
        ("LA-GDA", gj.lookahead(6, 0.5)(gj.gda(optax.sgd(0.3))), 600),
        ("LA-EG", gj.lookahead(6, 0.5)(gj.extragradient(optax.sgd(0.3))), 600),
    ],
)
@pytest.mark.parametrize("game_name", ["bilinear", "sbg"])
def test_converge_where_gda_diverges(name, tx, steps, game_name, sbg_full):
    """§4.2.1 / Fig. 3 (η = 0.3, k = 6, α = 0.5 as App. D.2): these converge, GDA diverges."""
    game, init, optimum = sbg_full if game_name == "sbg" else gj.games.bilinear()
    distance = np.asarray(gj.fit(game, tx, init, steps=steps, equilibrium=optimum).metrics["distance"])
    assert distance[-1] < 1e-8 * distance[0], name
    gda = gj.fit(game, gj.gda(optax.sgd(0.3)), init, steps=steps, equilibrium=optimum)
    gda_distance = np.asarray(gda.metrics["distance"])
    assert gda_distance[-1] > 1e3 * gda_distance[0]


def test_sbg_full_batch_gda_spiral_matches_observation_1(sbg_full):
    """On full-batch SB-G the field is (φ + Σb, θ + Σc): GDA's distance grows by √(1 + η²) per step."""
    game, init, optimum = sbg_full
    eta = 0.3
    result = gj.fit(game, gj.gda(optax.sgd(eta)), init, steps=30, log_every=1, equilibrium=optimum)
    distance = np.asarray(result.metrics["distance"])
    np.testing.assert_allclose(distance[1:] / distance[:-1], np.sqrt(1 + eta**2), rtol=1e-10)


def test_alternating_gda_on_bilinear_is_area_preserving_and_bounded():
    """Alternating GDA on x·y is the map [[1 − η², −η], [η, 1]] (y first): det 1, bounded orbit."""
    eta = 0.3
    game, init, _ = gj.games.bilinear()
    _, _, trajectory = run_steps(game, gj.alternating(optax.sgd(eta)), init, 50, observe=lambda p: p)
    matrix = np.array([[1 - eta**2, -eta], [eta, 1.0]])
    z = np.array([1.0, 1.0])
    for params in trajectory:
        z = matrix @ z
        np.testing.assert_allclose([params.x, params.y], z, rtol=1e-12)
    assert abs(np.linalg.det(matrix) - 1) < 1e-15
    assert jnp.abs(jnp.asarray(params)).max() < 3
