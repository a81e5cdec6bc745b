"""The main job: compare game optimizers on a built-in game at a fixed budget of passes.

Passes are gradient-equivalents, counted one way for every method (docs/design.md §4). Each
game has its own default step sizes (:data:`GAME_DEFAULTS`), chosen so that the first-order
methods converge on it; a run is reproducible from its seed, and SB-G can be run stochastic
(``batch_size``), with an independent minibatch for each field evaluation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import warnings
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import optax

from gamejax._src import games as games_lib
from gamejax._src.core import GameTransformation, Players, checks, per_evaluation
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
from gamejax._src.training.cost import evaluations_per_step, passes_per_step
from gamejax._src.training.fit import DivergenceWarning, fit
from gamejax._src.training.progress import Progress
from gamejax._src.wrappers.averaging import averaged, ema
from gamejax._src.wrappers.field_adjustments import consensus, hamiltonian, sga
from gamejax._src.wrappers.lookahead import lookahead

Rate = float | tuple[float, float]  # one step size for both players, or (x's, y's)


@dataclasses.dataclass(frozen=True)
class Options:
    """Hyperparameters shared by the method specs (defaults: lookahead paper, App. D.2, for η, k, α).

    ``lr`` and ``adam_lr`` are one step size for both players or a pair ``(η_x, η_y)``. The
    defaults suit SB-G; :func:`default_options` gives each game its own.
    """

    lr: Rate = 0.3
    adam_lr: Rate = 0.01
    adam_b1: float = 0.5
    k: int = 6
    k_slow: int = 60
    alpha: float = 0.5
    ema_decay: float = 0.99
    lead_alpha: float = 0.5  # LEAD's coupling α (Alg. 1: coupling = α/η); radius 0.87 on x·y at η = 0.3
    gamma: float = 1.0  # consensus
    lam: float = 1.0  # SGA
    unroll_steps: int = 6
    lookahead: float | None = None  # LOLA's and SOS's α; None: lr (one number)


def _check_rate(name: str, value: Any) -> None:
    """A step size is a positive number or a pair of them, one per player."""
    if isinstance(value, (tuple, list)) and len(value) != 2:
        raise ValueError(
            f"{name} must be one step size or a pair (x's, y's), one per player; got {len(value)} values {value!r}."
        )
    checks.check_number(name, value, low=0.0, high=math.inf, low_open=True, high_open=True, sequence=True)


def _rate(value: Rate) -> float | Players:
    """A step size for the methods that take one: a number, or ``Players`` of the two."""
    return Players(*value) if isinstance(value, (tuple, list)) else value


def _per_player_optax(make: Callable[[float], optax.GradientTransformation], value: Rate) -> Any:
    rate = _rate(value)
    return Players(make(rate.x), make(rate.y)) if isinstance(rate, Players) else make(rate)


def _sgd(o: Options) -> Any:
    return _per_player_optax(optax.sgd, o.lr)


def _adam(o: Options) -> Any:
    return _per_player_optax(lambda rate: optax.adam(rate, b1=o.adam_b1), o.adam_lr)


def _lead_coupling(o: Options) -> Any:
    """LEAD's Alg. 1 coupling α/η, per player when η is."""
    rate = _rate(o.lr)
    return Players(o.lead_alpha / rate.x, o.lead_alpha / rate.y) if isinstance(rate, Players) else o.lead_alpha / rate


def _lookahead(o: Options) -> float:
    """LOLA's and SOS's lookahead α: ``o.lookahead``, else the one step size η."""
    if o.lookahead is not None:
        return o.lookahead
    if isinstance(o.lr, (tuple, list)):
        raise ValueError(
            f"lola and sos take one lookahead α (compare sets it to the step size η); lr is per player ({o.lr!r}): "
            "give the lookahead explicitly (--lookahead)."
        )
    return o.lr


_BASES: dict[str, Callable[[Options], GameTransformation]] = {
    "gda": lambda o: gda(_sgd(o)),
    "alt-gda": lambda o: alternating(_sgd(o)),
    "eg": lambda o: extragradient(_sgd(o)),
    "ogda": lambda o: optimistic(_sgd(o)),
    "adam": lambda o: gda(_adam(o)),
    "extra-adam": lambda o: extragradient(_adam(o)),
    "oadam": lambda o: optimistic(_adam(o), on="updates"),
    "alt-la-gda": lambda o: alternating_lookahead(_sgd(o), k=o.k, alpha=o.alpha),
    "unroll-y": lambda o: unrolled(_sgd(o), unroll=_sgd(o), steps=o.unroll_steps, players="y"),
    "unroll-xy": lambda o: unrolled(_sgd(o), unroll=_sgd(o), steps=o.unroll_steps, players="xy"),
    "lead": lambda o: lead(_sgd(o), coupling=_lead_coupling(o)),
    "lead-adam": lambda o: lead(_adam(o), coupling=o.lead_alpha, alternating=True),
    "cgd": lambda o: cgd(_rate(o.lr), tol=1e-10, maxiter=100),
    "acgd": lambda o: acgd(_rate(o.adam_lr), tol=1e-10, maxiter=100),
    "co": lambda o: consensus(o.gamma)(gda(_sgd(o))),
    "sga": lambda o: sga(o.lam)(gda(_sgd(o))),
    "eag": lambda o: anchored_extragradient(_rate(o.lr)),  # EAG-C (Yoon & Ryu 2021)
    "feg": lambda o: fast_extragradient(_rate(o.lr)),  # FEG with ρ = 0 (Lee & Kim 2021)
    "past-eg": lambda o: past_extragradient(_sgd(o)),
    "past-extra-adam": lambda o: past_extragradient(_adam(o)),
    "fr": lambda o: follow_the_ridge(_sgd(o), tol=1e-10, maxiter=100),
    "hgd": lambda o: hamiltonian()(gda(_sgd(o))),
    "lola": lambda o: lola(_sgd(o), lookahead=_lookahead(o)),
    "sos": lambda o: sos(_sgd(o), lookahead=_lookahead(o)),
}

_WRAPPERS: dict[str, Callable[[Options], Callable[[GameTransformation], GameTransformation]]] = {
    "la": lambda o: lookahead(o.k, o.alpha),
    "nla": lambda o: lambda tx: lookahead(o.k_slow, o.alpha)(lookahead(o.k, o.alpha)(tx)),
    "ema": lambda o: ema(o.ema_decay),
}

GAMES: dict[str, Callable[[jax.Array], games_lib.GameProblem]] = {
    "sbg": games_lib.sbg,  # the key draws b, c and the initial point
    "bilinear": lambda key: games_lib.bilinear(),
    "quadratic": lambda key: games_lib.quadratic(jax.random.normal(key, (10, 10)) / jax.numpy.sqrt(10.0), h=0.1),
    "qp1": lambda key: games_lib.qp1(),
    "qp2": lambda key: games_lib.qp2(),
}

# Each game's hyperparameters where the options' defaults do not suit it, chosen by running the
# default methods for 2000 passes (the README's compare section has the tables):
# - QP-1's field has the double eigenvalue −2 (x minimizes a loss concave in x): with one step
#   size shared by both players every first-order method diverges; it needs η_y > 3η_x
#   (lookahead paper, App. E.1). The adjusted fields (consensus, SGA) and LEAD's coupling α/η_x
#   need their weights scaled down with it. All default methods but LEAD-Adam and ACGD then
#   reach 1e-6.
# - The quadratic game's field has eigenvalues h ± iσ (h = 0.1, σ up to 1.88 for seed 0). At
#   η = 0.3 the methods built against rotation converge and GDA diverges, as on x·y; GDA
#   converges only for η < 2h/(h² + σ²) ≈ 0.056, at ≥ 0.9986 per step (about 11 000 steps
#   to 1e-6), and smaller steps slow the others. LEAD needs a smaller coupling than on x·y.
GAME_DEFAULTS: dict[str, dict[str, Any]] = {
    "sbg": {},
    "bilinear": {},
    "qp2": {},
    "qp1": {
        "lr": (0.05, 0.5),
        "adam_lr": (0.005, 0.05),
        "lookahead": 0.05,
        "lead_alpha": 0.01,
        "gamma": 0.02,
        "lam": 0.02,
    },
    "quadratic": {"lead_alpha": 0.25},
}


def default_options(game: str) -> Options:
    """The options ``gamejax compare --game <game>`` runs with when none is given."""
    check_game(game)
    return Options(**GAME_DEFAULTS[game])


def check_game(game: str) -> None:
    """Raise ``ValueError`` for an unknown game name, listing the accepted ones."""
    if game not in GAMES:
        raise ValueError(f"unknown game {game!r}; accepted: {', '.join(sorted(GAMES))}")


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
      ValueError: for an unknown spec, listing the accepted names, or a step size that is not a
        positive number or a pair of them.
    """
    _check_rate("lr", options.lr)
    _check_rate("adam_lr", options.adam_lr)
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


DIVERGENCE_FACTOR = 10.0  # a run that ends farther than this × its start from ω* has diverged


@dataclasses.dataclass
class Row:
    """One method's result in the comparison table.

    Attributes:
      diverged_at: for a diverged run, the first step of its final stretch at a distance above
        ``DIVERGENCE_FACTOR`` × the start's (or non-finite), from which it never came back;
        ``None`` otherwise.
      nonfinite_at: the step whose params came out non-finite (``gj.fit``'s ``diverged_at``);
        the curve ends before it. ``None`` if the run stayed finite.
    """

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
    nonfinite_at: int | None = None


def divergence_step(step: np.ndarray, distance: np.ndarray, nonfinite_at: int | None) -> int | None:
    """The step a run diverged at (see :class:`Row`), or ``None`` if it did not diverge.

    ``distance[i]`` is the distance at ``step[i]``; a run that went non-finite at
    ``nonfinite_at`` is above the threshold from there on.
    """
    above = ~(distance <= DIVERGENCE_FACTOR * distance[0])  # NaN and inf count as above
    if nonfinite_at is None and not above[-1]:
        return None
    back = np.flatnonzero(~above)  # the last record at or below the threshold
    after = step[back[-1] + 1 :] if back.size else step
    return int(after[0]) if after.size else int(nonfinite_at)


def run_method(
    spec: str,
    problem: games_lib.GameProblem,
    passes: int,
    tol: float,
    options: Options,
    *,
    sample: Callable[[jax.Array], Any] | None = None,
    key: jax.Array | None = None,
) -> Row:
    """Run one method for ``passes`` passes (gradient-equivalents) and summarize its distance curve.

    Methods whose cost varies (CGD/ACGD's and FR's solves) report their own passes; every curve
    is cut at the budget, so all methods get the same number of passes. With ``sample`` (a
    stochastic game's minibatch sampler) and ``key``, each field evaluation of a step gets an
    independent minibatch (``gj.per_evaluation``); a pass is then one minibatch evaluation.
    """
    game, init, equilibrium = problem
    tx = build_method(spec, options)
    if sample is not None:
        if key is None:
            raise ValueError("run_method(sample=...) needs key=, a jax.random key, to draw the minibatches.")
        evaluations = evaluations_per_step(game, tx, init, sample(key))
        sample = per_evaluation(sample, evaluations) if evaluations > 1 else sample
    batch = None if sample is None else sample(key)
    steps = max(1, int(passes // max(1, passes_per_step(game, tx, init, batch))))
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
            sample=sample,
            key=key if sample is not None else None,
        )
    nonfinite_at = int(result.diverged_at) if int(result.diverged_at) >= 0 else None
    step = np.asarray(result.metrics["step"])
    # A run that went non-finite stops at its last finite point: its curve ends there (fit's later records repeat it).
    finite_until = np.inf if nonfinite_at is None else nonfinite_at
    used = (np.asarray(result.metrics["passes"]) <= passes) & (step < finite_until)
    distance = np.asarray(result.metrics["average_distance" if track_average else "distance"])[used]
    step = step[used]
    spent = np.asarray(result.metrics["passes"])[used]
    below = np.flatnonzero(distance <= tol)
    diverged_at = None if below.size else divergence_step(step, distance, nonfinite_at)
    if below.size:
        status = "converged"
    elif diverged_at is not None:
        status = f"diverged at step {diverged_at}"
    else:
        status = "not converged"
    return Row(
        method=spec,
        passes_per_step=round(float(spent[-1] / max(step[-1], 1)), 2),
        steps=int(step[-1]),
        final_distance=float(distance[-1]) if np.isfinite(distance[-1]) else None,
        steps_to_tol=int(step[below[0]]) if below.size else None,
        passes_to_tol=int(spent[below[0]]) if below.size else None,
        status=status,
        passes=spent.tolist(),
        distance=[float(d) if math.isfinite(d) else None for d in distance],
        diverged_at=diverged_at,
        nonfinite_at=nonfinite_at,
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


# Twenty distinct colours (tab10's, then tab20's light tones), each with its own line style
# for every ten methods: the first 40 methods never share a colour and a style.
_LIGHT = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5")
_DARK = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_LINESTYLES = ("-", "--", ":", "-.")


def line_style(index: int) -> tuple[str, str]:
    """The ``(colour, linestyle)`` of the ``index``-th method in a plot (unique for the first 40)."""
    colours = _DARK + _LIGHT
    return colours[index % len(colours)], _LINESTYLES[(index // 10) % len(_LINESTYLES)]


def figure(rows: list[Row], title: str) -> Any:
    """Distance to the equilibrium against passes, one line per method (log scale), legend outside the axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    start = max((row.distance[0] for row in rows if row.distance[0]), default=1.0)
    for index, row in enumerate(rows):
        distance = np.array([np.nan if d is None else d for d in row.distance], dtype=float)
        colour, linestyle = line_style(index)
        ax.semilogy(row.passes, distance, label=row.method, lw=1.4, color=colour, linestyle=linestyle)
    ax.set_ylim(1e-16, 1e4 * start)  # diverging runs leave the top of the plot
    ax.set_xlabel("passes (gradient-equivalents)")
    ax.set_ylabel("distance to equilibrium ‖ω − ω*‖")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, ncol=1 + len(rows) // 25)
    return fig


def plot(rows: list[Row], title: str, path: pathlib.Path) -> None:
    """Write :func:`figure` to ``path``."""
    import matplotlib.pyplot as plt

    fig = figure(rows, title)
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
    *,
    seed: int = 0,
    batch_size: int | None = None,
) -> list[Row]:
    """Run ``methods`` on the built-in ``game`` and optionally write ``compare_<game>.{json,png}`` to ``out``.

    Args:
      game: a name in :data:`GAMES`.
      methods: method specs (:func:`build_method`).
      passes: the budget of passes (gradient-equivalents) per method.
      tol: the distance that counts as converged.
      options: the methods' hyperparameters (default: :func:`default_options` of ``game``).
      out: a folder for the JSON and the plot, or ``None``.
      progress: show a progress bar over the methods.
      seed: draws the game (SB-G's data and initial point, the quadratic game's matrix) and the
        minibatches.
      batch_size: SB-G only: run it stochastic with minibatches of this many samples (drawn
        without replacement), one per field evaluation; ``None`` is the full batch.

    Raises:
      ValueError: for an unknown game or method, or a batch size for a game without data.
    """
    check_game(game)
    options = default_options(game) if options is None else options
    checks.check_int("seed", seed, minimum=0)
    if batch_size is not None and game != "sbg":
        raise ValueError(
            f"batch_size applies to the stochastic game sbg only; {game} has no data to sample. "
            "Leave it out, or run --game sbg."
        )
    for spec in methods:
        build_method(spec, options)  # fail fast on a bad name
    key = jax.random.key(seed)
    problem = GAMES[game](key)
    sample = None if batch_size is None else games_lib.sbg_sampler(batch_size, dim=problem.init.x.shape[0])
    sample_key = jax.random.fold_in(key, 1)
    bar = Progress(len(methods), f"compare on {game}", unit="method") if progress else None
    rows = []
    for spec in methods:
        rows.append(run_method(spec, problem, passes, tol, options, sample=sample, key=sample_key))
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
            "seed": seed,
            "batch_size": batch_size,
            "divergence_factor": DIVERGENCE_FACTOR,
            "options": dataclasses.asdict(options),
            "methods": [dataclasses.asdict(row) for row in rows],
        }
        (out / f"compare_{game}.json").write_text(json.dumps(record, indent=1))
        batches = "full batch" if batch_size is None else f"minibatches of {batch_size}"
        plot(rows, f"{problem.game.name}, {batches}, seed {seed}: distance to equilibrium", out / f"compare_{game}.png")
    return rows
