"""CGD and ACGD on general-sum GANs: the products BiCGSTAB and restarted GMRES need to reach a residual.

On a general-sum game the system CGD solves each step,
``(I − A_x^½ J_xy A_y J_yx A_x^½) u = −A_x^½ (v_x − J_xy A_y v_y)`` (docs/design.md §4,
``gamejax/_src/methods/competitive.py``), is not symmetric, so conjugate gradient does not
apply. Each matrix-vector product is a pair of Jacobian-block products ``J_xy·(J_yx·w)`` (two
forward-over-reverse passes through both networks). BiCGSTAB (van der Vorst 1992) makes two such
products per iteration; GMRES(m) (Saad & Schultz 1986) one, plus one per restart. Users of the
ICR authors' code report that GMRES-based general-sum CGD needed fewer forward passes
(comp-physics/CPINN#1). This measures it on ``step_cost.py``'s 8-Gaussians GAN (App. I.1 MLPs,
batch 128, float32) with the non-saturating and the hinge loss:

1. **Systems.** Each method (CGD η = 0.1; ACGD α = 1e-4, the ICR paper's, 1e-3 and 1e-2) runs
   from the same initial point on the same batches (BiCGSTAB, tolerance 1e-5, warm starts); at
   steps 0, 100 and 300 the step's system is solved from zero (``warm_start=False``) by each
   solver to relative tolerances 1e-1 … 1e-6 (half-decades). gamejax's state reports the
   matrix-vector products each solve used (true-residual checks included) and the true residual
   it reached. For each tolerance: the products summed over all systems both solvers solved.
2. **Training.** 200 steps of each method with each solver (tolerance 1e-4, warm starts, the same
   batches): mean products per step, the largest residual, milliseconds per step (compiled
   scans, timed interleaved), and how far the two runs end apart.

    python benchmarks/cgd_solvers.py            # about 10 minutes on 2 CPU cores
    python benchmarks/cgd_solvers.py --quick    # a smaller run (CI)
"""

from __future__ import annotations

import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import step_cost
from _common import arguments, claim, figure, report

import gamejax as gj


class Size(NamedTuple):
    width: int
    losses: tuple[str, ...]
    methods: tuple[tuple[str, str, float], ...]  # (label, "cgd" | "acgd", learning rate)
    points: tuple[int, ...]  # steps of the method's run at which its system is solved
    tolerances: tuple[float, ...]
    solvers: tuple[tuple[str, int], ...]  # (solver, GMRES restart)
    training_steps: int
    training_methods: tuple[str, ...]  # labels of methods also trained with each solver
    rounds: int  # interleaved timing rounds of the training scans


FULL = Size(
    width=64,
    losses=("non-saturating", "hinge"),
    methods=(
        ("CGD η=0.1", "cgd", 0.1),
        ("ACGD α=1e-4", "acgd", 1e-4),
        ("ACGD α=1e-3", "acgd", 1e-3),
        ("ACGD α=1e-2", "acgd", 1e-2),
    ),
    points=(0, 100, 300),
    tolerances=tuple(10.0 ** (-k / 2) for k in range(2, 13)),
    solvers=(("bicgstab", 20), ("gmres", 10), ("gmres", 20), ("gmres", 50)),
    training_steps=200,
    training_methods=("CGD η=0.1", "ACGD α=1e-3", "ACGD α=1e-2"),
    rounds=5,
)
QUICK = Size(
    width=16,
    losses=("non-saturating",),
    methods=(("ACGD α=1e-2", "acgd", 1e-2),),
    points=(0, 10),
    tolerances=(1e-2, 1e-4),
    solvers=(("bicgstab", 20), ("gmres", 20)),
    training_steps=10,
    training_methods=("ACGD α=1e-2",),
    rounds=1,
)
REFERENCE, CHALLENGER = ("bicgstab", 20), ("gmres", 20)
TRAJECTORY_TOL, TRAINING_TOL, MAXITER = 1e-5, 1e-4, 500


def solver_name(solver: tuple[str, int]) -> str:
    return "BiCGSTAB" if solver[0] == "bicgstab" else f"GMRES({solver[1]})"


def build(kind: str, rate: float, solver: tuple[str, int], **kwargs) -> gj.GameTransformation:
    make = gj.cgd if kind == "cgd" else gj.acgd
    return make(rate, solver=solver[0], restart=solver[1], maxiter=MAXITER, **kwargs)


def batches(model: step_cost.GAN, steps: int):
    """The same batches for every run: step t's is drawn from ``fold_in(key, t)``."""
    key = jax.random.key(3)
    return jax.vmap(lambda t: model.sample(jax.random.fold_in(key, t)))(jnp.arange(steps))


def cold_solve(model: step_cost.GAN, kind: str, rate: float, solver: tuple[str, int]):
    """``(params, state, batch, tol) -> state``: one step's system solved from zero, its report in the state."""

    def solve(params, state, batch, tol):
        return build(kind, rate, solver, tol=tol, warm_start=False).update(model.game, params, state, batch)[1]

    return solve


def systems(model: step_cost.GAN, size: Size) -> list[dict]:
    """Part 1: every (method, point) system solved from zero by every solver to every tolerance."""
    rows = []
    last = max(size.points)
    data = batches(model, last + 1)
    for label, kind, rate in size.methods:
        tx = build(kind, rate, REFERENCE, tol=TRAJECTORY_TOL)
        step = jax.jit(gj.make_step(model.game, tx))
        solvers = {solver: jax.jit(cold_solve(model, kind, rate, solver)) for solver in size.solvers}
        params, state = model.params, tx.init(model.params)
        for t in range(last + 1):
            batch = jax.tree.map(lambda a, t=t: a[t], data)
            if t in size.points:
                for solver, solve in solvers.items():
                    for tol in size.tolerances:
                        out = solve(params, state, batch, tol)
                        rows.append(
                            {
                                "loss": model.losses.loss,
                                "method": label,
                                "step": t,
                                "solver": solver_name(solver),
                                "tol": tol,
                                "iterations": int(out.iterations),
                                "matvecs": int(out.matvecs),
                                "residual": float(out.residual),
                                "converged": bool(float(out.residual) <= tol),
                            }
                        )
            params, state, _ = step(params, state, batch)
        print(f"  systems: {model.losses.loss}, {label} done", flush=True)
    return rows


def training(model: step_cost.GAN, size: Size) -> list[dict]:
    """Part 2: each method trained with each solver on the same batches; products, residuals, time."""
    rows = []
    data = batches(model, size.training_steps)
    for label, kind, rate in size.methods:
        if label not in size.training_methods:
            continue
        thunks, finals = {}, {}
        for solver in (REFERENCE, CHALLENGER):
            tx = build(kind, rate, solver, tol=TRAINING_TOL)
            step = gj.make_step(model.game, tx)

            def body(carry, batch, step=step):
                params, state, _ = step(*carry, batch)
                return (params, state), (state.matvecs, state.residual)

            run = jax.jit(lambda p, s, body=body: jax.lax.scan(body, (p, s), data))
            compiled = run.lower(model.params, tx.init(model.params)).compile()
            init_state = tx.init(model.params)
            thunks[solver] = lambda compiled=compiled, s=init_state: compiled(model.params, s)
            finals[solver] = jax.block_until_ready(thunks[solver]())
        seconds = step_cost.interleaved(thunks, size.rounds, size.training_steps)
        (ref_params, _), _ = finals[REFERENCE]
        for solver in (REFERENCE, CHALLENGER):
            (params, state), (matvecs, residuals) = finals[solver]
            rows.append(
                {
                    "loss": model.losses.loss,
                    "method": label,
                    "solver": solver_name(solver),
                    "steps": size.training_steps,
                    "matvecs_per_step": float(np.mean(matvecs)),
                    "passes_per_step": float(state.evaluations.value) / size.training_steps,
                    "largest_residual": float(np.max(residuals)),
                    "ms_per_step": 1e3 * float(np.median(seconds[solver])),
                    "time_over_bicgstab": float(np.median(seconds[solver] / seconds[REFERENCE])),
                    "difference_to_bicgstab": step_cost.relative_difference(params, ref_params, model.params),
                    "finite": bool(all(jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(params))),
                }
            )
        print(f"  training: {model.losses.loss}, {label} done", flush=True)
    return rows


def summary(rows: list[dict], size: Size) -> list[dict]:
    """Per tolerance and solver: products summed over the systems every solver solved to it."""
    out = []
    names = [solver_name(s) for s in size.solvers]
    for tol in size.tolerances:
        at = [r for r in rows if r["tol"] == tol]
        keys = {(r["loss"], r["method"], r["step"]) for r in at}
        solved = [k for k in keys if all(r["converged"] for r in at if (r["loss"], r["method"], r["step"]) == k)]
        entry = {"tol": tol, "systems": len(keys), "solved_by_all": len(solved), "matvecs": {}, "worst_ratio": {}}
        for name in names:
            entry["matvecs"][name] = sum(
                r["matvecs"] for r in at if r["solver"] == name and (r["loss"], r["method"], r["step"]) in solved
            )
        reference = {(r["loss"], r["method"], r["step"]): r["matvecs"] for r in at if r["solver"] == names[0]}
        for name in names[1:]:
            ratios = [
                r["matvecs"] / reference[k]
                for r in at
                if r["solver"] == name and (k := (r["loss"], r["method"], r["step"])) in solved
            ]
            entry["worst_ratio"][name] = max(ratios) if ratios else None
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> dict:
    args = arguments(__doc__.splitlines()[0], argv, "benchmarks/results/cgd_solvers")
    size = QUICK if args.quick else FULL
    start = time.perf_counter()
    system_rows, training_rows = [], []
    for loss in size.losses:
        model = step_cost.gan(size.width, loss)
        system_rows += systems(model, size)
        training_rows += training(model, size)
    totals = summary(system_rows, size)
    reference, challenger = solver_name(REFERENCE), solver_name(CHALLENGER)
    fewer = [t for t in totals if t["solved_by_all"] and t["matvecs"][challenger] < t["matvecs"][reference]]
    ratios = [t["matvecs"][challenger] / t["matvecs"][reference] for t in totals if t["solved_by_all"]]
    trained = {(r["loss"], r["method"]): {} for r in training_rows}
    for r in training_rows:
        trained[(r["loss"], r["method"])][r["solver"]] = r
    per_step = [pair[challenger]["matvecs_per_step"] / pair[reference]["matvecs_per_step"] for pair in trained.values()]
    faster = [pair[challenger]["time_over_bicgstab"] for pair in trained.values()]
    claims = [
        claim(
            f"{challenger} reaches every tolerance with fewer matrix-vector products than BiCGSTAB "
            "(summed over the systems both solve)",
            len(fewer) == len([t for t in totals if t["solved_by_all"]]) > 0,
            f"{challenger} ÷ BiCGSTAB: {min(ratios):.2f}–{max(ratios):.2f} over tolerances "
            f"{min(size.tolerances):g}–{max(size.tolerances):g}",
        ),
        claim(
            f"in training (tolerance {TRAINING_TOL:g}, warm starts) {challenger} needs fewer products per step",
            all(r < 1 for r in per_step),
            f"products per step {challenger} ÷ BiCGSTAB: {min(per_step):.2f}–{max(per_step):.2f}; "
            f"time per step {min(faster):.2f}–{max(faster):.2f}",
            required=not args.quick,  # a 16-wide GAN's systems are easy; the claim is about the full size
        ),
    ]
    fig, axes = figure(2)
    left, right = axes[0]
    for name in [solver_name(s) for s in size.solvers]:
        left.plot([t["tol"] for t in totals], [t["matvecs"][name] for t in totals], "o-", label=name)
    left.set_xscale("log")
    left.invert_xaxis()
    left.set_xlabel("relative tolerance (true residual)")
    left.set_ylabel("matrix-vector products, summed over the systems")
    left.legend()
    labels = [f"{loss}\n{method}" for loss, method in trained]
    x = np.arange(len(labels))
    for i, name in enumerate((reference, challenger)):
        right.bar(x + 0.4 * i, [pair[name]["matvecs_per_step"] for pair in trained.values()], 0.4, label=name)
    right.set_xticks(x + 0.2, labels, fontsize=7)
    right.set_ylabel(f"products per training step (tol {TRAINING_TOL:g})")
    right.legend()
    record = {
        "size": size._asdict(),
        "systems": system_rows,
        "totals": totals,
        "training": training_rows,
        "elapsed_s": time.perf_counter() - start,
    }
    return report(
        "cgd_solvers",
        "Issue 12 §1 (comp-physics/CPINN#1): GMRES-based general-sum CGD needs fewer forward passes than BiCGSTAB",
        record,
        claims,
        fig,
        args,
    )


if __name__ == "__main__":
    main()
