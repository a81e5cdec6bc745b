"""LEAD paper, Fig. 1: eigenvalues of the GDA and LEAD steps on the bilinear game as η varies.

The eigenvalues are those of the whole linearized step (``gj.step_jacobian``, params and LEAD's
previous iterate), vmapped over the learning rate, with β = h = 0 and a fixed coupling α; they
are checked against the closed form of Theorem 2 (eq. 23).

    python benchmarks/lead_fig1.py [--quick] [--out benchmarks/results/lead_fig1]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import arguments, claim, figure, report

import gamejax as gj

PAPER = (
    "LEAD paper (Hemmat et al.), §4.2 / Fig. 1: on the bilinear game no learning rate makes GDA converge (its "
    "eigenvalues lie on a line tangent to the unit circle, outside it); for a fixed α > 0 LEAD moves its eigenvalues "
    "μ+ inside the circle, and its extra eigenvalues μ− do not affect convergence."
)
ALPHA = 0.4


def eigenvalues(build, etas: np.ndarray) -> np.ndarray:
    game, _, optimum = gj.games.bilinear()

    def spectrum(eta):
        return jnp.linalg.eigvals(gj.step_jacobian(game, build(eta), optimum))

    return np.asarray(jax.jit(jax.vmap(spectrum))(jnp.asarray(etas)))


def theorem_2(eta: np.ndarray, alpha: float) -> np.ndarray:
    """μ± of eq. 23 with β = h = 0 for the off-diagonal eigenvalues λ = ±i of x·y."""
    out = []
    for lam in (1j, -1j):
        b = 1 - (eta + alpha) * lam
        root = np.sqrt(b**2 + 4 * alpha * lam + 0j)
        out += [(b + root) / 2, (b - root) / 2]
    return np.stack(out, axis=1)


def main(argv: list[str] | None = None) -> dict:
    args = arguments(__doc__.splitlines()[0], argv, "benchmarks/results/lead_fig1")
    jax.config.update("jax_enable_x64", True)
    etas = np.linspace(0.02, 1.0, 12 if args.quick else 60)
    gda = eigenvalues(lambda eta: gj.gda(optax.sgd(eta)), etas)
    lead = eigenvalues(lambda eta: gj.lead(optax.sgd(eta), coupling=ALPHA / eta), etas)
    predicted = theorem_2(etas, ALPHA)
    error = max(np.min(np.abs(lead[i][:, None] - predicted[i][None, :]), axis=0).max() for i in range(len(etas)))
    lead_radius = np.abs(lead).max(axis=1)
    moduli = np.sort(np.abs(lead), axis=1)
    mu_minus, mu_plus = moduli[:, :2], moduli[:, 2:]  # per η: μ− the two smallest, μ+ the two largest
    inside = etas[lead_radius < 1]

    claims = [
        claim(
            "GDA's eigenvalues lie outside the unit circle for every η",
            bool(np.all(np.abs(gda) > 1)),
            f"smallest |λ| {np.abs(gda).min():.6f} (= √(1 + η²) at the smallest η)",
        ),
        claim(
            f"LEAD (α = {ALPHA}) moves all its eigenvalues inside the unit circle for a range of η",
            inside.size > 0,
            f"radius < 1 for η in [{inside.min():.2f}, {inside.max():.2f}]; best {lead_radius.min():.4f}"
            if inside.size
            else "never",
        ),
        claim(
            "LEAD's extra eigenvalues μ− do not set the rate: smaller in modulus than μ+ at every η",
            bool(np.all(mu_minus.max(axis=1) < mu_plus.min(axis=1))),
            f"|μ−| in [{mu_minus.min():.3f}, {mu_minus.max():.3f}] (≈ α), "
            f"|μ+| in [{mu_plus.min():.3f}, {mu_plus.max():.3f}]",
        ),
        claim(
            "the eigenvalues of gamejax's linearized LEAD step equal Theorem 2 (eq. 23)",
            error < 1e-9,
            f"largest distance to the closed form {error:.2e}",
        ),
    ]

    fig, axes = figure(ncols=2, size=(5.2, 5))
    left, right = axes[0]
    gj.plots.eigenvalues(gda, left, label="GDA", color="tab:blue", s=10)
    gj.plots.eigenvalues(lead, left, label=f"LEAD (α={ALPHA})", color="tab:red", s=10, unit_circle=False)
    left.set_title("eigenvalues as η varies")
    left.legend(fontsize=8)
    right.plot(etas, np.abs(gda).max(axis=1), label="GDA")
    right.plot(etas, lead_radius, label="LEAD")
    right.axhline(1.0, color="black", lw=0.8)
    right.set(xlabel="η", ylabel="spectral radius", title="radius against η")
    right.legend(fontsize=8)
    record = {
        "alpha": ALPHA,
        "etas": etas,
        "gda_radius": np.abs(gda).max(axis=1),
        "lead_radius": lead_radius,
        "theorem_2_error": error,
    }
    return report("lead_fig1", PAPER, record, claims, fig, args)


if __name__ == "__main__":
    main()
