"""Lookahead paper, App. E: QP-1 and QP-2, step sizes chosen by the smallest spectral radius.

For GDA, LA-GDA, extragradient and LA-EG the per-player step sizes ``(η_x, η_y)`` — and for
lookahead also ``k`` and ``α`` — are searched on a grid by the spectral radius of the method's
step at the stationary point (``gj.spectral_radius`` vmapped over the grid, over a whole
cycle of ``k`` steps for lookahead) and compared per game evaluation (``ρ^(1/passes)``). Then each
method runs from (1, 1) with its chosen step sizes, and its measured rate is checked against
the radius.

    python benchmarks/lookahead_qp.py [--quick] [--out benchmarks/results/lookahead_qp]
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import arguments, claim, figure, report

import gamejax as gj

PAPER = (
    "Lookahead paper (Chavdarova et al. 2021), App. E: on QP-1 no single step size shared by both players makes GDA "
    "converge, per-player step sizes do (tuned so); on QP-2 GDA and extragradient converge with a shared step size "
    "(tuned so); with hyperparameters tuned by the spectral radius, Lookahead-minmax converges faster."
)
KS, ALPHAS = (2, 3, 5, 8), (0.3, 0.5, 0.7, 0.9)


def build(method: str, eta_x, eta_y, k: int = 1, alpha=1.0) -> gj.GameTransformation:
    base = gj.Players(optax.sgd(eta_x), optax.sgd(eta_y))
    inner = gj.extragradient(base) if "EG" in method else gj.gda(base)
    return gj.lookahead(k, alpha)(inner) if method.startswith("LA") else inner


EVALUATIONS = {"GDA": 1, "EG": 2, "LA-GDA": 1, "LA-EG": 2}  # game evaluations per step


def per_pass_rates(game: gj.Game, optimum: gj.Players, method: str, grid: np.ndarray, k: int = 1) -> np.ndarray:
    """ρ^(1/passes) over the grid: axes (η_x, η_y) for base methods, (α, η_x, η_y) for lookahead with this k."""
    alphas = np.asarray(ALPHAS) if method.startswith("LA") else np.ones(1)

    def rate(alpha, eta_x, eta_y):
        radius = gj.spectral_radius(game, build(method, eta_x, eta_y, k, alpha), optimum, steps=k)
        return radius ** (1.0 / (k * EVALUATIONS[method]))

    a, ex, ey = np.meshgrid(alphas, grid, grid, indexing="ij")
    rates = jax.jit(jax.vmap(rate))(*(jnp.asarray(v.ravel()) for v in (a, ex, ey)))
    return np.asarray(rates).reshape(a.shape)


def tune(rates: np.ndarray, grid: np.ndarray, k: int, lookahead: bool, shared: bool) -> dict:
    """The best point of one k's rate grid (axes α, η_x, η_y); ``shared`` keeps η_x = η_y."""
    if shared:
        diagonal = np.stack([np.diag(r) for r in rates])  # (α, η)
        a, i = np.unravel_index(np.nanargmin(diagonal), diagonal.shape)
        j = i
    else:
        a, i, j = np.unravel_index(np.nanargmin(rates), rates.shape)
    alpha = float(ALPHAS[a]) if lookahead else 1.0
    return {"eta_x": float(grid[i]), "eta_y": float(grid[j]), "k": k, "alpha": alpha, "rate": float(rates[a, i, j])}


def study(problem: gj.games.GameProblem, grid: np.ndarray, passes: int, shared: bool) -> dict:
    """Tune each method by spectral radius (lookahead: also k and α), then run it with its choice.

    ``shared``: one step size for both players (QP-2 in the paper); else per-player step sizes.
    Both tunings are reported; ``best`` is the one the paper uses for this problem.
    """
    game, init, optimum = problem
    out = {"tuning": "shared step size" if shared else "per-player step sizes", "best": {}, "other_tuning": {}}
    out.update(curves={}, measured={}, la_gda_rates=None)
    for method in EVALUATIONS:
        lookahead = method.startswith("LA")
        candidates = {True: [], False: []}
        for k in KS if lookahead else (1,):
            rates = per_pass_rates(game, optimum, method, grid, k)
            for mode in (True, False):
                candidates[mode].append(tune(rates, grid, k, lookahead, mode))
            if method == "LA-GDA" and k == KS[-1]:
                out["la_gda_rates"] = rates.min(0)
        best = {mode: min(c, key=lambda b: b["rate"]) for mode, c in candidates.items()}
        out["best"][method], out["other_tuning"][method] = best[shared], best[not shared]
        chosen = best[shared]
        tx = build(method, chosen["eta_x"], chosen["eta_y"], chosen["k"], chosen["alpha"])
        metrics = gj.fit(game, tx, init, steps=passes // EVALUATIONS[method], log_every=1, equilibrium=optimum).metrics
        distance, p = np.asarray(metrics["distance"]), np.asarray(metrics["passes"])
        out["curves"][method] = {"passes": p, "distance": distance}
        usable = np.flatnonzero((distance > 1e-150) & np.isfinite(distance))
        last = usable[-1]
        out["measured"][method] = float((distance[last] / distance[0]) ** (1.0 / max(p[last], 1)))
    return out


def main(argv: list[str] | None = None) -> dict:
    args = arguments(__doc__.splitlines()[0], argv, "benchmarks/results/lookahead_qp")
    jax.config.update("jax_enable_x64", True)
    grid = np.logspace(-2.5, 0.3, 15 if args.quick else 40)
    passes = 200 if args.quick else 400
    results = {
        "QP-1": study(gj.games.qp1(), grid, passes, shared=False),
        "QP-2": study(gj.games.qp2(), grid, passes, shared=True),
    }
    qp1, qp2 = results["QP-1"], results["QP-2"]

    def rate(res, method, key="best"):
        return res[key][method]["rate"]

    claims = [
        claim(
            "QP-1: GDA with one shared step size never converges (radius > 1 on the whole grid)",
            qp1["other_tuning"]["GDA"]["rate"] > 1,
            f"smallest shared-step radius {qp1['other_tuning']['GDA']['rate']:.4f}",
        ),
        claim(
            "QP-1: GDA with per-player step sizes converges",
            rate(qp1, "GDA") < 1,
            f"radius {rate(qp1, 'GDA'):.4f} at η = "
            f"({qp1['best']['GDA']['eta_x']:.3g}, {qp1['best']['GDA']['eta_y']:.3g})",
        ),
        claim(
            "QP-2: GDA and extragradient converge with a shared step size",
            rate(qp2, "GDA") < 1 and rate(qp2, "EG") < 1,
            f"rates per pass: GDA {rate(qp2, 'GDA'):.4f}, EG {rate(qp2, 'EG'):.4f}",
        ),
    ]
    for name, res in results.items():
        for base in ("GDA", "EG"):
            la = "LA-" + base
            claims.append(
                claim(
                    f"{name} ({res['tuning']}): {la} converges faster per game evaluation than {base}",
                    rate(res, la) < rate(res, base),
                    f"rates per pass {rate(res, la):.4f} vs {rate(res, base):.4f}; with the other tuning "
                    f"{rate(res, la, 'other_tuning'):.4f} vs {rate(res, base, 'other_tuning'):.4f}",
                    required=base == "GDA",  # LA-EG: not reproduced, extragradient is already well damped here
                )
            )
    agreement = max(
        abs(np.log(res["measured"][m]) / np.log(res["best"][m]["rate"]) - 1)
        for res in results.values()
        for m in res["best"]
    )
    claims.append(
        claim(
            "the measured rates of the runs match the spectral radii that chose their step sizes",
            agreement < 0.15,
            f"largest relative gap in log-rate {agreement:.3f}",
        )
    )

    fig, axes = figure(ncols=2, nrows=2, size=(5.5, 4.2))
    for col, (name, res) in enumerate(results.items()):
        image = axes[0, col].imshow(
            np.log10(np.minimum(res["la_gda_rates"], 2.0)),
            origin="lower",
            aspect="auto",
            cmap="viridis",
            extent=(np.log10(grid[0]), np.log10(grid[-1]), np.log10(grid[0]), np.log10(grid[-1])),
        )
        title = f"{name}: LA-GDA (k={KS[-1]}, best α) log10 rate/pass"
        axes[0, col].set(xlabel="log10 η_y", ylabel="log10 η_x", title=title)
        fig.colorbar(image, ax=axes[0, col])
        for method, curve in res["curves"].items():
            label = f"{method} ({res['best'][method]['rate']:.3f}/pass)"
            axes[1, col].semilogy(curve["passes"], np.clip(curve["distance"], 1e-200, None), label=label)
        axes[1, col].set(xlabel="passes", ylabel="distance to (0, 0)", title=f"{name}: {res['tuning']}")
        axes[1, col].grid(alpha=0.3)
        axes[1, col].legend(fontsize=7)
    record = {
        "grid": grid,
        "lookahead_grid": {"k": KS, "alpha": ALPHAS},
        "results": {name: {k: v for k, v in res.items() if k != "la_gda_rates"} for name, res in results.items()},
    }
    return report("lookahead_qp", PAPER, record, claims, fig, args)


if __name__ == "__main__":
    main()
