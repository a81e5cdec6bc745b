"""Diagnostics against closed forms: spectral radii of whole steps, Jacobian spectra, plots."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
import pytest

import gamejax as gj

matplotlib.use("Agg")

ETAS = [0.05, 0.3, 1.0]


@pytest.fixture(scope="module")
def bilinear():
    return gj.games.bilinear()


@pytest.mark.parametrize("eta", ETAS)
def test_gda_radius_on_xy_is_sqrt_one_plus_eta_squared(bilinear, eta):
    game, _, optimum = bilinear
    assert gj.spectral_radius(game, gj.gda(optax.sgd(eta)), optimum) == pytest.approx(np.sqrt(1 + eta**2), rel=1e-12)


@pytest.mark.parametrize("eta", ETAS)
def test_extragradient_and_cgd_radii_on_xy(bilinear, eta):
    game, _, optimum = bilinear
    eg = gj.spectral_radius(game, gj.extragradient(optax.sgd(eta)), optimum)
    assert eg == pytest.approx(np.sqrt((1 - eta**2) ** 2 + eta**2), rel=1e-12)
    cgd = gj.spectral_radius(game, gj.cgd(eta, tol=1e-14), optimum)  # step (1 ± iη)/(1 + η²)
    assert cgd == pytest.approx(1 / np.sqrt(1 + eta**2), rel=1e-12)


@pytest.mark.parametrize("eta", ETAS)
def test_optimistic_radius_is_its_companion_matrix_radius(bilinear, eta):
    """OGDA ω' = ω − 2ηJω + ηJω_prev: the steady-state step (after the first, plain, step)."""
    game, _, optimum = bilinear
    J = np.array([[0.0, 1.0], [-1.0, 0.0]])
    companion = np.block([[np.eye(2) - 2 * eta * J, eta * J], [np.eye(2), np.zeros((2, 2))]])
    radius = gj.spectral_radius(game, gj.optimistic(optax.sgd(eta)), optimum)
    assert radius == pytest.approx(max(abs(np.linalg.eigvals(companion))), rel=1e-12)


@pytest.mark.parametrize(("k", "alpha", "eta"), [(2, 0.5, 0.3), (6, 0.5, 0.3), (6, 0.4, 0.3), (5, 0.3, 1.0)])
def test_lookahead_cycle_radius_is_one_minus_alpha_plus_alpha_lambda_k(bilinear, k, alpha, eta):
    """Lookahead paper §4.1: over a cycle of k steps the radius is |1 − α + α λ^k|, λ = 1 + iη."""
    game, _, optimum = bilinear
    tx = gj.lookahead(k, alpha)(gj.gda(optax.sgd(eta)))
    radius = gj.spectral_radius(game, tx, optimum, steps=k)
    assert radius == pytest.approx(abs(1 - alpha + alpha * (1 + 1j * eta) ** k), rel=1e-12)


def test_spectral_radius_vmaps_over_captured_hyperparameters(bilinear):
    game, _, optimum = bilinear

    def radius(eta, alpha):
        return gj.spectral_radius(game, gj.lookahead(3, alpha)(gj.gda(optax.sgd(eta))), optimum, steps=3)

    etas, alphas = jnp.array([0.1, 0.3, 0.5]), jnp.array([0.2, 0.5, 0.8])
    np.testing.assert_allclose(
        jax.vmap(radius)(etas, alphas),
        [radius(float(e), float(a)) for e, a in zip(etas, alphas, strict=True)],
        rtol=1e-12,
    )


def test_spectral_radius_needs_a_fixed_point(bilinear):
    game, init, _ = bilinear
    with pytest.raises(ValueError, match="not a fixed point"):
        gj.spectral_radius(game, gj.gda(optax.sgd(0.1)), init)


def test_field_jacobian_spectrum_and_its_split_on_the_quadratic_game():
    """LEAD eq. 13: J = [[hI, A], [−Aᵀ, hI]] has eigenvalues h ± iσ_j; S = hI and A the coupling."""
    rng = np.random.default_rng(0)
    A, h = rng.normal(size=(4, 4)), 0.3
    game, init, _ = gj.games.quadratic(A, h=h)
    eigenvalues = np.asarray(gj.jacobian_eigenvalues(game, init))
    eigenvalues = eigenvalues[np.argsort(eigenvalues.imag)]
    sigma = np.linalg.svd(A, compute_uv=False)
    expected = np.concatenate([h - 1j * sigma, h + 1j * sigma])
    expected = expected[np.argsort(expected.imag)]
    np.testing.assert_allclose(eigenvalues, expected, atol=1e-10)
    symmetric, antisymmetric = gj.decompose_jacobian(gj.derivatives.field_jacobian(game, init))
    np.testing.assert_allclose(symmetric, h * np.eye(8), atol=1e-12)
    np.testing.assert_allclose(antisymmetric, np.block([[np.zeros((4, 4)), A], [-A.T, np.zeros((4, 4))]]), atol=1e-12)


def test_plots_draw_what_they_are_given(bilinear, tmp_path):
    game, init, optimum = bilinear
    values = np.array([0.5 + 0.5j, 1.2 - 0.1j])
    ax = gj.plots.eigenvalues(values, label="two")
    offsets = ax.collections[0].get_offsets()
    np.testing.assert_allclose(offsets, [[0.5, 0.5], [1.2, -0.1]])
    results = {"GDA": gj.fit(game, gj.gda(optax.sgd(0.1)), init, steps=10, log_every=5, equilibrium=optimum)}
    ax = gj.plots.distances(results)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), results["GDA"].metrics["distance"])
    path = [init, gj.Players(jnp.array(0.5), jnp.array(1.5))]
    ax = gj.plots.trajectory(game, path)
    np.testing.assert_allclose(ax.lines[-1].get_xydata(), [[1.0, 1.0], [0.5, 1.5]])
    ax.figure.savefig(tmp_path / "trajectory.png")
    assert (tmp_path / "trajectory.png").stat().st_size > 5_000
