"""The main job: compare game optimizers on a built-in game at a fixed budget of game evaluations."""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import warnings
from collections.abc import Callable

import jax
import numpy as np
import optax

from gamejax._src import games as games_lib
from gamejax._src.core import GameTransformation
from gamejax._src.methods.alternating import alternating
from gamejax._src.methods.alternating_lookahead import alternating_lookahead
from gamejax._src.methods.anchored import anchored_extragradient, fast_extragradient
from gamejax._src.methods.competitive import acgd, cgd
from gamejax._src.methods.extragradient import extragradient, past_extragradient
from gamejax._src.methods.follow_the_ridge import follow_the_ridge
from gamejax._src.methods.gda import gda
from gamejax._src.methods.lead import lead
from gamejax._src.methods.opponent_shaping import lola, sos
from gamejax._src.methods.optimistic import optimistic
from gamejax._src.methods.unrolled import unrolled
from gamejax._src.training.cost import passes_per_step
from gamejax._src.training.fit import DivergenceWarning, fit
from gamejax._src.training.progress import Progress
from gamejax._src.wrappers.averaging import averaged, ema
from gamejax._src.wrappers.field_adjustments import consensus, hamiltonian, sga
from gamejax._src.wrappers.lookahead import lookahead


@dataclasses.dataclass(frozen=True)
class Options:
    """Hyperparameters shared by the method specs (defaults: lookahead paper, App. D.2, for η, k, α)."""

    lr: float = 0.3
    adam_lr: float = 0.01
    adam_b1: float = 0.5
    k: int = 6
    k_slow: int = 60
    alpha: float = 0.5
    ema_decay: float = 0.99
    lead_alpha: float = 0.5  # LEAD's coupling α (Alg. 1: coupling = α/η); radius 0.87 on x·y at η = 0.3
    gamma: float = 1.0  # consensus
    lam: float = 1.0  # SGA
    unroll_steps: int = 6


_BASES: dict[str, Callable[[Options], GameTransformation]] = {
    "gda": lambda o: gda(optax.sgd(o.lr)),
    "alt-gda": lambda o: alternating(optax.sgd(o.lr)),
    "eg": lambda o: extragradient(optax.sgd(o.lr)),
    "ogda": lambda o: optimistic(optax.sgd(o.lr)),
    "adam": lambda o: gda(optax.adam(o.adam_lr, b1=o.adam_b1)),
    "extra-adam": lambda o: extragradient(optax.adam(o.adam_lr, b1=o.adam_b1)),
    "oadam": lambda o: optimistic(optax.adam(o.adam_lr, b1=o.adam_b1), on="updates"),
    "alt-la-gda": lambda o: alternating_lookahead(optax.sgd(o.lr), k=o.k, alpha=o.alpha),
    "unroll-y": lambda o: unrolled(optax.sgd(o.lr), unroll=optax.sgd(o.lr), steps=o.unroll_steps, players="y"),
    "unroll-xy": lambda o: unrolled(optax.sgd(o.lr), unroll=optax.sgd(o.lr), steps=o.unroll_steps, players="xy"),
    "lead": lambda o: lead(optax.sgd(o.lr), coupling=o.lead_alpha / o.lr),
    "lead-adam": lambda o: lead(optax.adam(o.adam_lr, b1=o.adam_b1), coupling=o.lead_alpha, alternating=True),
    "cgd": lambda o: cgd(o.lr, tol=1e-10, maxiter=100),
    "acgd": lambda o: acgd(o.adam_lr, tol=1e-10, maxiter=100),
    "co": lambda o: consensus(o.gamma)(gda(optax.sgd(o.lr))),
    "sga": lambda o: sga(o.lam)(gda(optax.sgd(o.lr))),
    "eag": lambda o: anchored_extragradient(o.lr),  # EAG-C (Yoon & Ryu 2021)
    "feg": lambda o: fast_extragradient(o.lr),  # FEG with ρ = 0 (Lee & Kim 2021)
    "past-eg": lambda o: past_extragradient(optax.sgd(o.lr)),
    "past-extra-adam": lambda o: past_extragradient(optax.adam(o.adam_lr, b1=o.adam_b1)),
    "fr": lambda o: follow_the_ridge(optax.sgd(o.lr), tol=1e-10, maxiter=100),
    "hgd": lambda o: hamiltonian()(gda(optax.sgd(o.lr))),
    "lola": lambda o: lola(optax.sgd(o.lr), lookahead=o.lr),
    "sos": lambda o: sos(optax.sgd(o.lr), lookahead=o.lr),
}

_WRAPPERS: dict[str, Callable[[Options], Callable[[GameTransformation], GameTransformation]]] = {
    "la": lambda o: lookahead(o.k, o.alpha),
    "nla": lambda o: lambda tx: lookahead(o.k_slow, o.alpha)(lookahead(o.k, o.alpha)(tx)),
    "ema": lambda o: ema(o.ema_decay),
}

GAMES: dict[str, Callable[[], games_lib.GameProblem]] = {
    "sbg": lambda: games_lib.sbg(jax.random.key(0)),
    "bilinear": games_lib.bilinear,
    "quadratic": lambda: games_lib.quadratic(
        jax.random.normal(jax.random.key(0), (10, 10)) / jax.numpy.sqrt(10.0), h=0.1
    ),
    "qp1": games_lib.qp1,
    "qp2": games_lib.qp2,
}

DEFAULT_METHODS = (
    "gda",
    "alt-gda",
    "eg",
    "ogda",
    "la-gda",
    "la-eg",
    "la-ogda",
    "nla-gda",
    "unroll-y",
    "lead",
    "cgd",
    "co",
    "sga",
    "adam",
    "extra-adam",
    "lead-adam",
    "acgd",
)


def method_names() -> list[str]:
    """Every accepted base name; prefix any of them with ``la-``, ``nla-`` or ``ema-``."""
    return sorted(_BASES)


def build_method(spec: str, options: Options) -> GameTransformation:
    """A transformation from a spec such as ``la-eg`` (lookahead over extragradient) or ``ema-la-gda``.

    Raises:
      ValueError: for an unknown spec, listing the accepted names.
    """
    prefixes = []
    rest = spec
    while rest not in _BASES:
        head, sep, tail = rest.partition("-")
        if not sep or head not in _WRAPPERS:
            raise ValueError(
                f"unknown method {spec!r}; accepted: {', '.join(method_names())}, each optionally "
                f"prefixed by {', '.join(p + '-' for p in _WRAPPERS)} (e.g. la-eg, ema-la-gda)"
            )
        prefixes.append(head)
        rest = tail
    if "nla" in prefixes and options.k_slow % options.k:
        raise ValueError(
            f"nested lookahead needs k_slow to be a multiple of k (it is then Alg. 6 of the lookahead paper); "
            f"got k={options.k}, k_slow={options.k_slow}"
        )
    tx = _BASES[rest](options)
    for prefix in reversed(prefixes):
        tx = _WRAPPERS[prefix](options)(tx)
    return tx


@dataclasses.dataclass
class Row:
    """One method's result in the comparison table."""

    method: str
    passes_per_step: float
    steps: int
    final_distance: float | None
    steps_to_tol: int | None
    passes_to_tol: int | None
    status: str
    passes: list[float]
    distance: list[float]
    diverged_at: int | None = None


def _status(distance: np.ndarray, reached: bool, diverged_at: int | None) -> str:
    if reached:
        return "converged"
    if diverged_at is not None:
        return f"diverged at step {diverged_at}"
    if not np.isfinite(distance[-1]) or distance[-1] > 10 * distance[0]:
        return "diverged"
    return "not converged"


def run_method(spec: str, problem: games_lib.GameProblem, passes: int, tol: float, options: Options) -> Row:
    """Run one method for ``passes`` game evaluations and summarize its distance curve.

    Methods whose cost varies (CGD/ACGD's solves) report their own passes; every curve is cut
    at the budget, so all methods get the same number of game evaluations.
    """
    game, init, equilibrium = problem
    tx = build_method(spec, options)
    steps = max(1, int(passes // max(1, passes_per_step(game, tx, init))))
    track_average = spec.startswith("ema-")

    def average_distance(params, state):
        return {"average_distance": optax.tree.norm(optax.tree.sub(averaged(state), equilibrium))}

    with warnings.catch_warnings():  # the table reports a divergence itself
        warnings.simplefilter("ignore", DivergenceWarning)
        result = fit(
            game,
            tx,
            init,
            steps=steps,
            log_every=1,
            equilibrium=equilibrium,
            progress=False,
            metrics=average_distance if track_average else None,
        )
    diverged_at = int(result.diverged_at) if int(result.diverged_at) >= 0 else None
    step = np.asarray(result.metrics["step"])
    # A diverged run stops at its last finite point: its curve ends there (fit's later records repeat it).
    used = (np.asarray(result.metrics["passes"]) <= passes) & (step < (diverged_at or np.inf))
    distance = np.asarray(result.metrics["average_distance" if track_average else "distance"])[used]
    step = step[used]
    spent = np.asarray(result.metrics["passes"])[used]
    below = np.flatnonzero(distance <= tol)
    return Row(
        method=spec,
        passes_per_step=round(float(spent[-1] / max(step[-1], 1)), 2),
        steps=int(step[-1]),
        final_distance=float(distance[-1]) if np.isfinite(distance[-1]) else None,
        steps_to_tol=int(step[below[0]]) if below.size else None,
        passes_to_tol=int(spent[below[0]]) if below.size else None,
        status=_status(distance, below.size > 0, diverged_at),
        passes=spent.tolist(),
        distance=[float(d) if math.isfinite(d) else None for d in distance],
        diverged_at=diverged_at,
    )


def format_table(rows: list[Row], tol: float) -> str:
    """A fixed-width text table of the rows."""
    header = ("method", "passes/step", "steps", "final ‖ω−ω*‖", f"steps to {tol:g}", f"passes to {tol:g}", "status")
    lines = [
        (
            r.method,
            f"{r.passes_per_step:g}",
            str(r.steps),
            "non-finite" if r.final_distance is None else f"{r.final_distance:.3e}",
            "-" if r.steps_to_tol is None else str(r.steps_to_tol),
            "-" if r.passes_to_tol is None else str(r.passes_to_tol),
            r.status,
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt.format(*header), rule, *(fmt.format(*line) for line in lines)])


def plot(rows: list[Row], title: str, path: pathlib.Path) -> None:
    """Distance to the equilibrium against game evaluations, one line per method (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    start = max((row.distance[0] for row in rows if row.distance[0]), default=1.0)
    for row in rows:
        distance = np.array([np.nan if d is None else d for d in row.distance], dtype=float)
        ax.semilogy(row.passes, distance, label=row.method, lw=1.4)
    ax.set_ylim(1e-16, 1e4 * start)  # diverging runs leave the top of the plot
    ax.set_xlabel("passes (game evaluations)")
    ax.set_ylabel("distance to equilibrium ‖ω − ω*‖")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def compare(
    game: str = "sbg",
    methods: tuple[str, ...] = DEFAULT_METHODS,
    passes: int = 2000,
    tol: float = 1e-6,
    options: Options | None = None,
    out: pathlib.Path | None = None,
    progress: bool = True,
) -> list[Row]:
    """Run ``methods`` on the built-in ``game`` and optionally write ``compare_<game>.{json,png}`` to ``out``."""
    options = options or Options()
    if game not in GAMES:
        raise ValueError(f"unknown game {game!r}; accepted: {', '.join(sorted(GAMES))}")
    for spec in methods:
        build_method(spec, options)  # fail fast on a bad name
    problem = GAMES[game]()
    bar = Progress(len(methods), f"compare on {game}", unit="method") if progress else None
    rows = []
    for spec in methods:
        rows.append(run_method(spec, problem, passes, tol, options))
        if bar:
            bar.advance()
    if bar:
        bar.close()
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        record = {
            "game": problem.game.name,
            "passes": passes,
            "tol": tol,
            "options": dataclasses.asdict(options),
            "methods": [dataclasses.asdict(row) for row in rows],
        }
        (out / f"compare_{game}.json").write_text(json.dumps(record, indent=1))
        plot(rows, f"{problem.game.name}: distance to equilibrium", out / f"compare_{game}.png")
    return rows
