"""Performance report: step costs, the scan driver, vmapped sweeps, compile times and memory, as ratios.

Everything is measured on this machine's CPU in one run, and every number that is compared with
a target is a ratio of two measurements taken in the same run (interleaved round by round where
both sides are timed, medians of the per-round ratios), so that machine load affects both sides
and the ratios carry over to other machines better than absolute times:

1. **Step cost.** Each method's step time ÷ one gradient evaluation (each player's gradient of
   its own loss, written by hand with ``jax.grad``) on the 8-Gaussians GAN of ``step_cost.py``
   (whose machinery this reuses), zero-sum (saturating) and general-sum (non-saturating, hinge),
   against its evaluation count: ``gj.passes_per_step`` (the papers' accounting of
   gradient-equivalents), or for CGD and ACGD the count they report in their state (3 + 2 per
   matrix-vector product of their solver). Target: within 1.2×. Beside each time, XLA's FLOP
   count of the compiled step ÷ the gradient's; hand-written GDA and Extra-Adam (plain JAX and
   ``optax.adam``, ``step_cost.hand_written``) are timed beside gamejax's ``adam`` and
   ``extra-adam``.
2. **Drivers.** Steps per second of ``gj.fit`` (compiled ``lax.scan`` chunks) and of a bare jitted
   ``lax.scan`` of ``gj.make_step`` against a Python loop calling the jitted step, on small games
   (x·y, SB-G) and a medium one (the GAN). Target: the scan driver ≥ 2× the loop on small games.
3. **Sweep.** 64 seeds of a 500-step run as one ``jax.jit(jax.vmap(run))`` against 64 calls of
   ``jax.jit(run)`` (compiled once, compile times reported apart), total wall time. Target: ≥ 8×
   on small games.
4. **Compile time** of the first step of every method of the ``compare`` job on the GAN: trace,
   lower and compile of ``jax.jit(gj.make_step(game, tx))``, in seconds and as a multiple of
   compiling one gradient (compiled next to it).
5. **Memory** of one step of ACGD against Extra-Adam on the GAN: XLA's buffer assignment of the
   compiled step (``compiled.memory_analysis()``: arguments, outputs, temporaries), and the
   growth of the peak resident set size during the step's first execution in a fresh process.

    python benchmarks/perf.py            # the full report, about 5 minutes on 2 CPU cores
    python benchmarks/perf.py --quick    # a CI smoke run (seconds): every section, tiny sizes

Writes ``perf.json`` and ``perf.md`` (``perf_quick.*`` with ``--quick``) to ``--out``
(default ``benchmarks/results``) and prints the Markdown.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import pathlib
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import step_cost
from _common import _plain

import gamejax as gj
from gamejax._src.gan import compare

STEP_TARGET, SCAN_TARGET, SWEEP_TARGET = 1.2, 2.0, 8.0
# Step sizes for the GAN (the compare job's defaults are for SB-G); CG solves to 1e-4, since the
# compare job's 1e-10 is out of float32's reach and would make every step take maxiter iterations.
GAN_OPTIONS = compare.Options(lr=1e-2, adam_lr=1e-4, adam_b1=0.5, k=5)
CG_TOL, CG_MAXITER = 1e-4, 100


class Config(NamedTuple):
    """Sizes of one run (``FULL`` or ``QUICK``)."""

    width: int  # hidden width of the GAN's MLPs
    losses: tuple[str, ...]  # GAN losses of the step-cost section (step_cost.LOSSES)
    step_methods: tuple[str, ...]  # compare specs whose step cost is measured
    compile_methods: tuple[str, ...]  # compare specs whose compile time is measured (with extra-adam and acgd)
    plain_baseline: bool  # time hand-written Extra-Adam too (hand-written GDA (Adam) always runs)
    step_scan: int  # steps per timed scan (step cost)
    step_rounds: int  # interleaved timing rounds (step cost)
    driver_steps: dict[str, int]  # steps per timed run, by driver case
    sweep_seeds: int
    sweep_steps: int
    sweep_cases: tuple[str, ...]
    sweep_drivers: tuple[str, ...]  # "fit" and/or "scan"
    budget_s: float  # timing budget per driver or sweep case (sets its number of rounds)
    compile_rounds: int
    gradient_next_to_each: bool  # compile a gradient next to every method (else once per round)
    rss: bool  # measure RSS in fresh processes


FULL = Config(
    width=128,
    losses=step_cost.LOSSES,
    step_methods=compare.DEFAULT_METHODS,
    compile_methods=compare.DEFAULT_METHODS,
    plain_baseline=True,
    step_scan=10,
    step_rounds=15,
    driver_steps={"x·y": 10_000, "SB-G, full batch": 4_000, "SB-G, B = 16": 2_000, "GAN": 100},
    sweep_seeds=64,
    sweep_steps=500,
    sweep_cases=("x·y", "SB-G, full batch", "SB-G, B = 16"),
    sweep_drivers=("fit", "scan"),
    budget_s=3.0,
    compile_rounds=1,
    gradient_next_to_each=True,
    rss=True,
)

QUICK = Config(
    width=32,
    losses=("saturating", "non-saturating"),
    step_methods=("adam",),
    compile_methods=("extra-adam", "acgd"),
    plain_baseline=False,
    step_scan=3,
    step_rounds=2,
    driver_steps={"x·y": 200},
    sweep_seeds=64,
    sweep_steps=50,
    sweep_cases=("x·y",),
    sweep_drivers=("fit",),
    budget_s=0.2,
    compile_rounds=1,
    gradient_next_to_each=False,
    rss=False,
)


# ---------------------------------------------------------------------------------------------
# Games and methods


def gan(width: int):
    """``(game, params, sample, batch)``: step_cost.py's zero-sum 8-Gaussians GAN and one batch."""
    game, params, sample = step_cost.gan_game(width)
    return game, params, sample, sample(jax.random.key(0))


def gan_method(spec: str) -> gj.GameTransformation:
    """A compare-job method with the GAN's step sizes (a fresh object: nothing is cached across builds)."""
    if spec == "cgd":
        return gj.cgd(GAN_OPTIONS.lr, tol=CG_TOL, maxiter=CG_MAXITER)
    if spec == "acgd":
        return gj.acgd(GAN_OPTIONS.adam_lr, tol=CG_TOL, maxiter=CG_MAXITER)
    return compare.build_method(spec, GAN_OPTIONS)


def small_game(name: str, key: jax.Array):
    """``(game, init, equilibrium, sample)`` of a small game; ``key`` draws SB-G, or perturbs x·y's start."""
    if name == "x·y":
        game, init, equilibrium = gj.games.bilinear()
        init = jax.tree.map(
            lambda a, k: a + 0.5 * jax.random.normal(k, jnp.shape(a)), init, gj.Players(*jax.random.split(key))
        )
        return game, init, equilibrium, None
    game, init, equilibrium = gj.games.sbg(key)
    return game, init, equilibrium, (gj.games.sbg_sampler(16) if name == "SB-G, B = 16" else None)


# ---------------------------------------------------------------------------------------------
# Timing helpers


def timed(thunks: dict[str, Callable[[], object]], budget_s: float, rounds=(3, 25), shortest_s: float = 0.02) -> dict:
    """Seconds per call of each thunk, one value per round, interleaved (step_cost.interleaved).

    After one discarded warm round, a thunk that takes less than ``shortest_s`` is called (and
    blocked on) several times per measurement, so that one scheduler hiccup does not make its
    round; the number of rounds is what fits ``budget_s`` (at least ``rounds[0]``, at most
    ``rounds[1]``).
    """
    warm = {name: float(v[0]) for name, v in step_cost.interleaved(thunks, 1).items()}
    repeats = {name: max(1, int(np.ceil(shortest_s / max(seconds, 1e-9)))) for name, seconds in warm.items()}

    def repeated(thunk, times):
        def run():
            for _ in range(times):
                jax.block_until_ready(thunk())

        return run

    per_round = sum(repeats[name] * warm[name] for name in thunks)
    count = int(np.clip(budget_s / max(per_round, 1e-9), *rounds))
    seconds = step_cost.interleaved({name: repeated(t, repeats[name]) for name, t in thunks.items()}, count)
    return {name: values / repeats[name] for name, values in seconds.items()}


def median_ratio(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.median(a / b))


def tree_difference(a, b) -> float:
    """max |a − b| over the leaves of two pytrees (nan when either is not finite)."""
    return max(
        float(jnp.max(jnp.abs(jnp.asarray(x) - jnp.asarray(y))))
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


def stopwatch(fn: Callable[[], object]) -> tuple[object, float]:
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    return out, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# 1. Step cost


# gamejax methods of the compare job with a twin in step_cost.hand_written (the same base optimizer)
HAND_WRITTEN_TWINS = {"adam": "GDA (Adam)", "extra-adam": "Extra-Adam"}


def step_costs(config: Config) -> dict:
    """Each method's step time and FLOPs in gradients, against its evaluation count, on each GAN loss."""
    return {
        "target": STEP_TARGET,
        "steps_per_scan": config.step_scan,
        "rounds": config.step_rounds,
        "games": [step_costs_on(loss, config) for loss in config.losses],
    }


def step_costs_on(loss: str, config: Config) -> dict:
    """:func:`step_costs` on one loss of step_cost.py's GAN (zero-sum saturating, or general-sum)."""
    model = step_cost.gan(config.width, loss)
    game, params = model.game, model.params
    batch = model.sample(jax.random.key(0))
    n = config.step_scan
    direction = step_cost.random_direction(params, jax.random.key(1))
    programs = {
        "gradient": step_cost.scan_program(step_cost.gradient_body(model.losses, batch), (params, direction), n)
    }
    predictions = {}
    hand = step_cost.hand_written(model.losses, acgd_iterations=10)
    references = [name for name in HAND_WRITTEN_TWINS.values() if config.plain_baseline or name == "GDA (Adam)"]
    for name in references:
        programs[f"hand-written {name}"] = step_cost.hand_program(hand[name], params, batch, n)
        predictions[f"hand-written {name}"] = (float(step_cost.methods(10)[name][1]["field"]), "field evaluations")
    finite = {}
    for spec in config.step_methods:
        tx = gan_method(spec)
        programs[spec], final = step_cost.method_program(game, tx, params, batch, n)
        reported = gj.reported_evaluations(final[1])
        if reported is None:
            predictions[spec] = (float(gj.passes_per_step(game, tx, params, batch)), "gj.passes_per_step")
        else:  # CG/BiCGSTAB: 3 + 2 per matrix-vector product, averaged over the scan's steps (warm starts)
            predictions[spec] = (float(reported) / n, f"reported by the state, mean over {n} steps")
        finite[spec] = bool(all(jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(final)))
    seconds = step_cost.interleaved({name: program.thunk for name, program in programs.items()}, config.step_rounds, n)
    gradient = seconds["gradient"]
    rows = []
    for name, (prediction, source) in predictions.items():
        measured = median_ratio(seconds[name], gradient)
        row = {
            "method": name,
            "ms_per_step": 1e3 * float(np.median(seconds[name])),
            "gradients_per_step": measured,
            "flops": programs[name].flops,
            "flops_per_gradient": programs[name].flops / programs["gradient"].flops,
            "flops_exact": name not in ("cgd", "acgd"),  # XLA counts a while loop's body once
            "evaluations_per_step": prediction,
            "evaluations_source": source,
            "measured_over_evaluations": measured / prediction,
            "within_target": measured / prediction <= STEP_TARGET,
            "finite": finite.get(name, True),
            "reference": name not in finite,  # a hand-written baseline, not a gamejax method
        }
        twin = f"hand-written {HAND_WRITTEN_TWINS.get(name)}"
        if twin in programs:
            row["hand_written"] = {
                "method": twin,
                "time_ratio": median_ratio(seconds[name], seconds[twin]),
                "flops_ratio": programs[name].flops / programs[twin].flops,
            }
        rows.append(row)
    return {
        "loss": loss,
        "zero_sum": model.losses.zero_sum,
        "game": f"8-Gaussians GAN (step_cost.py), {loss} loss, width {config.width}, batch {step_cost.BATCH}",
        "gradient_ms": 1e3 * float(np.median(gradient)),
        "gradient_flops": programs["gradient"].flops,
        "methods": rows,
    }


# ---------------------------------------------------------------------------------------------
# 2. Scan driver vs a Python loop


def driver_case(name: str, steps: int, config: Config) -> dict:
    """fit, a bare jitted scan and a Python loop of the jitted step: the same steps and batches."""
    if name == "GAN":
        game, params, sample, _ = gan(config.width)
        spec, size = "la-extra-adam", "medium"
        tx = gan_method(spec)
    else:
        game, params, _, sample = small_game(name, jax.random.key(0))
        spec, size = "la-eg", "small"
        tx = compare.build_method(spec, compare.Options())
    key = None if sample is None else jax.random.key(7)
    step = gj.make_step(game, tx)
    state = tx.init(params)

    def batch_at(t):
        return None if sample is None else sample(jax.random.fold_in(key, t))

    if sample is None:
        jitted = jax.jit(step)

        def call(p, s, t):
            return jitted(p, s)
    else:  # the batch is drawn inside the jitted step, as fit draws it (one dispatch per step)
        call = jax.jit(lambda p, s, t: step(p, s, batch_at(t)))

    def python_loop():
        p, s = params, state
        for t in range(steps):
            p, s, _ = call(p, s, t)
        return p

    def scan_body(carry, t):
        p, s, _ = step(*carry, batch_at(t))
        return (p, s), None

    scan = jax.jit(lambda p, s: jax.lax.scan(scan_body, (p, s), jnp.arange(steps))[0][0])

    def fit():
        return gj.fit(game, tx, params, steps=steps, log_every=steps, sample=sample, key=key, progress=False).params

    thunks = {"python loop": python_loop, "fit": fit, "scan": lambda: scan(params, state)}
    outputs, first_call = {}, {}
    for label, thunk in thunks.items():
        outputs[label], first_call[label] = stopwatch(thunk)  # compiles
    seconds = timed(thunks, config.budget_s)
    loop = seconds["python loop"]
    scale = max(float(jnp.max(jnp.abs(a))) for a in jax.tree.leaves(outputs["python loop"]))
    return {
        "game": name,
        "size": size,
        "method": spec,
        "steps": steps,
        "rounds": len(loop),
        "python_loop_steps_per_s": steps / float(np.median(loop)),
        "fit_steps_per_s": steps / float(np.median(seconds["fit"])),
        "scan_steps_per_s": steps / float(np.median(seconds["scan"])),
        "fit_over_loop": median_ratio(loop, seconds["fit"]),
        "scan_over_loop": median_ratio(loop, seconds["scan"]),
        "fit_minus_scan_ms": 1e3 * float(np.median(seconds["fit"] - seconds["scan"])),  # fit's own cost per call
        "first_call_s": first_call,
        "max_param_difference": {
            label: tree_difference(outputs[label], outputs["python loop"]) / max(scale, 1e-30)
            for label in ("fit", "scan")
        },
    }


# ---------------------------------------------------------------------------------------------
# 3. Vmapped sweep vs sequential runs


def sweep_run(name: str, steps: int, driver: str) -> Callable[[jax.Array], jax.Array]:
    """``run(seed)``: ``steps`` of LA-EG (compare defaults) on a game, start and batches drawn from the seed.

    ``driver`` is ``"fit"`` (``gj.fit``, as the README's sweeps do) or ``"scan"`` (a bare
    ``lax.scan`` of ``gj.make_step``, drawing the same batches). Returns the final distance to
    the equilibrium.
    """

    def run(seed):
        key = jax.random.key(seed)
        game, init, equilibrium, sample = small_game(name, key)
        tx = compare.build_method("la-eg", compare.Options())
        data_key = None if sample is None else jax.random.fold_in(key, 1)
        if driver == "fit":
            kwargs = {"sample": sample, "key": data_key, "log_every": steps, "progress": False}
            params = gj.fit(game, tx, init, steps=steps, **kwargs).params
        else:
            step = gj.make_step(game, tx)

            def body(carry, t):
                batch = None if sample is None else sample(jax.random.fold_in(data_key, t))
                return step(*carry, batch)[:2], None

            params = jax.lax.scan(body, (init, tx.init(init)), jnp.arange(steps))[0][0]
        return optax.tree.norm(optax.tree.sub(params, equilibrium))

    return run


def sweep_case(name: str, driver: str, config: Config) -> dict:
    run = sweep_run(name, config.sweep_steps, driver)
    seeds = jnp.arange(config.sweep_seeds)
    one, many = jax.jit(run), jax.jit(jax.vmap(run))
    _, compile_one = stopwatch(lambda: one(0))
    _, compile_many = stopwatch(lambda: many(seeds))
    thunks = {
        "sequential": lambda: [one(s) for s in range(config.sweep_seeds)],  # blocked once, at the end
        "vmapped": lambda: many(seeds),
    }
    seconds = timed(thunks, config.budget_s)
    sequential = np.stack([np.asarray(v) for v in thunks["sequential"]()])
    vmapped = np.asarray(thunks["vmapped"]())
    return {
        "game": name,
        "method": "la-eg",
        "driver": driver,
        "seeds": config.sweep_seeds,
        "steps": config.sweep_steps,
        "rounds": len(seconds["vmapped"]),
        "sequential_s": float(np.median(seconds["sequential"])),
        "vmapped_s": float(np.median(seconds["vmapped"])),
        "speedup": median_ratio(seconds["sequential"], seconds["vmapped"]),
        "first_call_s": {"jit(run)": compile_one, "jit(vmap(run))": compile_many},
        "max_result_difference": float(np.max(np.abs(sequential - vmapped)) / max(np.max(np.abs(sequential)), 1e-30)),
    }


# ---------------------------------------------------------------------------------------------
# 4. Compile times, 5. memory


def compile_parts(fn: Callable, *args) -> tuple[dict, object]:
    """Seconds to trace, lower and compile ``jax.jit(fn)`` at ``args``, and the compiled step."""
    start = time.perf_counter()
    traced = jax.jit(fn).trace(*args)
    traced_at = time.perf_counter()
    lowered = traced.lower()
    lowered_at = time.perf_counter()
    compiled = lowered.compile()
    done = time.perf_counter()
    times = {"trace_s": traced_at - start, "lower_s": lowered_at - traced_at, "compile_s": done - lowered_at}
    return {**times, "total_s": done - start}, compiled


def gradient_function(game: gj.Game) -> Callable:
    """A fresh function per call, so that no trace or lowering is reused from a cache."""
    return lambda params, batch: game.field(params, batch)


def compile_times(config: Config) -> tuple[dict, dict]:
    """Compile time of each method's first step; gradients are compiled in between (the unit)."""
    game, params, _, batch = gan(config.width)  # (JAX's one-time tracing costs were paid by the step costs)
    records = {spec: [] for spec in config.compile_methods}
    gradient_times, executables = [], {}
    for _ in range(config.compile_rounds):
        for i, spec in enumerate(config.compile_methods):
            if config.gradient_next_to_each or i == 0:
                gradient_times.append(compile_parts(gradient_function(game), params, batch)[0]["total_s"])
            tx = gan_method(spec)
            times, executables[spec] = compile_parts(gj.make_step(game, tx), params, tx.init(params), batch)
            records[spec].append(times)
    gradient_s = float(np.median(gradient_times))  # one compile is noisy: the median of all, spread over the run
    rows = []
    for spec, runs in records.items():
        row = {"method": spec, **{k: float(np.median([r[k] for r in runs])) for k in runs[0]}}
        rows.append({**row, "over_gradient": row["total_s"] / gradient_s})
    return {
        "game": f"8-Gaussians GAN, width {config.width}",
        "rounds": config.compile_rounds,
        "gradient_s": gradient_s,
        "gradient_compiles": len(gradient_times),
        "persistent_cache": bool(jax.config.jax_compilation_cache_dir),
        "methods": rows,
    }, executables


MEMORY_FIELDS = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "alias_size_in_bytes")


def memory(executables: dict, config: Config) -> dict:
    """XLA's memory analysis of one compiled step of ACGD and Extra-Adam, and RSS growth if measured."""
    per_method = {}
    for spec in ("extra-adam", "acgd"):
        analysis = executables[spec].memory_analysis()
        fields = {name: int(getattr(analysis, name)) for name in MEMORY_FIELDS}
        fields["xla_peak_memory_in_bytes"] = int(getattr(analysis, "peak_memory_in_bytes", -1))
        fields["peak_bytes"] = (
            fields["argument_size_in_bytes"]
            + fields["output_size_in_bytes"]
            + fields["temp_size_in_bytes"]
            - fields["alias_size_in_bytes"]
        )
        fields["rss_growth_bytes"] = rss_probe_in_fresh_process(spec, config.width) if config.rss else None
        per_method[spec] = fields
    ratios = {
        key: per_method["acgd"][key] / per_method["extra-adam"][key]
        for key in ("peak_bytes", "temp_size_in_bytes", "rss_growth_bytes")
        if per_method["acgd"][key] and per_method["extra-adam"][key]
    }
    return {"game": f"8-Gaussians GAN, width {config.width}", "methods": per_method, "acgd_over_extra_adam": ratios}


def _proc_status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def rss_probe(spec: str, width: int) -> int | None:
    """Peak-RSS growth (bytes) during the first execution of one compiled step (run in a fresh process).

    The compiled gradient runs first so that the runtime's one-time allocations are not counted;
    then the kernel's peak-RSS mark is reset (``/proc/self/clear_refs``) and the step runs once.
    """
    game, params, _, batch = gan(width)
    tx = gan_method(spec)
    state = tx.init(params)
    _, gradient = compile_parts(gradient_function(game), params, batch)
    _, step = compile_parts(gj.make_step(game, tx), params, state, batch)
    jax.block_until_ready(gradient(params, batch))
    gc.collect()
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        before = _proc_status("VmRSS")
    except OSError:
        return None
    jax.block_until_ready(step(params, state, batch))
    return _proc_status("VmHWM") - before


def rss_probe_in_fresh_process(spec: str, width: int) -> int | None:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-probe", spec, "--width", str(width)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in out.stdout.splitlines() if line.startswith("rss_growth_bytes ")]
    if out.returncode or not lines or lines[-1].split()[1] == "None":
        return None
    return int(lines[-1].split()[1])


# ---------------------------------------------------------------------------------------------
# Targets and the report


def targets(record: dict) -> list[dict]:
    steps = [
        {
            "case": row["method"] if len(games) == 1 else f"{row['method']} ({game['loss']})",
            "value": row["measured_over_evaluations"],
            "met": row["within_target"],
        }
        for games in [record["step_cost"]["games"]]
        for game in games
        for row in game["methods"]
        if not row["reference"]
    ]
    scans = [
        {
            "case": f"{row['game']} ({label})",
            "value": row[f"{label}_over_loop"],
            "met": row[f"{label}_over_loop"] >= SCAN_TARGET,
        }
        for row in record["drivers"]
        if row["size"] == "small"
        for label in ("fit", "scan")
    ]
    sweeps = [
        {"case": f"{row['game']} ({row['driver']})", "value": row["speedup"], "met": row["speedup"] >= SWEEP_TARGET}
        for row in record["sweeps"]
    ]
    return [
        {"target": f"every method's step within {STEP_TARGET}× of its evaluation count", "cases": steps},
        {"target": f"scan driver ≥ {SCAN_TARGET:g}× the Python loop on small games", "cases": scans},
        {
            "target": f"{record['config']['sweep_seeds']}-seed vmap ≥ {SWEEP_TARGET:g}× faster than sequential runs "
            "on small games",
            "cases": sweeps,
        },
    ]


def machine() -> dict:
    def version(package):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "device": jax.devices()[0].device_kind,
        "backend": jax.default_backend(),
        "x64": bool(jax.config.jax_enable_x64),
        "versions": {p: version(p) for p in ("jax", "jaxlib", "optax", "flax", "gamejax")},
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def _load(values: list[float] | None) -> str:
    return "-" if values is None else "/".join(f"{v:.1f}" for v in values)


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.2f}"


def target_summary(cases: list[dict]) -> str:
    """``k of n | met: lo–hi; not met: case value, ...`` (two table cells)."""
    met = [c["value"] for c in cases if c["met"]]
    missed = [f"{c['case']} {c['value']:.2f}" for c in cases if not c["met"]]
    parts = ([f"met: {min(met):.2f}–{max(met):.2f}"] if met else []) + (
        ["not met: " + ", ".join(missed)] if missed else []
    )
    return f"{len(met)} of {len(cases)} | {'; '.join(parts)}"


def _table(intro: str, header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table after a blank line and its introducing sentence."""
    cells = lambda row: "| " + " | ".join(row) + " |"  # noqa: E731
    return ["", intro, "", cells(header), "|" + "---|" * len(header), *(cells(row) for row in rows)]


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [
        f"Machine: {m['platform']}, {m['cpus_available']} of {m['cpu_count']} CPUs, jax {m['versions']['jax']}, "
        f"{'float64' if m['x64'] else 'float32'}; load average (1, 5, 15 min) "
        f"{_load(m['load_average_at_start'])} at start, {_load(m.get('load_average_at_end'))} at end; "
        f"run took {record['elapsed_s']:.0f} s.",
        "",
        "| target | cases met | measured |",
        "|---|---|---|",
    ]
    for target in record["targets"]:
        lines.append(f"| {target['target']} | {target_summary(target['cases'])} |")
    compiles = sorted(record["compile"]["methods"], key=lambda row: row["over_gradient"])
    if compiles:
        low, high = compiles[0], compiles[-1]
        lines.append(
            "| compile time of the first step ÷ one gradient's (no target) | - | "
            f"{low['over_gradient']:.1f} ({low['method']}) to {high['over_gradient']:.1f} ({high['method']}) |"
        )
    ratios = record["memory"]["acgd_over_extra_adam"]
    if "peak_bytes" in ratios:
        rss = f", RSS growth {ratios['rss_growth_bytes']:.2f}×" if "rss_growth_bytes" in ratios else ""
        lines.append(
            f"| peak memory of one step, ACGD ÷ Extra-Adam (no target) | - | {ratios['peak_bytes']:.2f}× "
            f"(XLA's buffers; temporaries {ratios['temp_size_in_bytes']:.2f}×{rss}) |"
        )
    cost = record["step_cost"]
    for game in cost["games"]:
        lines += _table(
            f"**Step cost** on the {game['game']} (one gradient = {game['gradient_ms']:.3f} ms, "
            f"{game['gradient_flops']:.3g} FLOPs; a scan of {cost['steps_per_scan']} steps, median of "
            f"{cost['rounds']} interleaved rounds; FLOPs: XLA's count of the compiled step, * where a "
            "while loop's body is counted once):",
            [
                "method",
                "ms / step",
                "step ÷ gradient",
                "FLOPs ÷ gradient",
                "evaluations / step",
                "ratio",
                "within 1.2×",
                "÷ hand-written (time, FLOPs)",
            ],
            [
                [
                    row["method"],
                    f"{row['ms_per_step']:.3f}",
                    f"{row['gradients_per_step']:.2f}",
                    f"{row['flops_per_gradient']:.2f}" + ("" if row["flops_exact"] else "*"),
                    f"{row['evaluations_per_step']:.3g}",
                    f"{row['measured_over_evaluations']:.2f}",
                    "yes" if row["within_target"] else "**no**",
                    f"{row['hand_written']['time_ratio']:.2f}, {row['hand_written']['flops_ratio']:.3f}"
                    if "hand_written" in row
                    else "-",
                ]
                for row in game["methods"]
            ],
        )
    lines += _table(
        "**Drivers**: steps per second, the same steps and batches each way:",
        [
            "game",
            "method",
            "steps",
            "Python loop",
            "`gj.fit`",
            "jitted `lax.scan`",
            "fit ÷ loop",
            "scan ÷ loop",
            "fit − scan, per call",
        ],
        [
            [
                f"{row['game']} ({row['size']})",
                row["method"],
                str(row["steps"]),
                f"{row['python_loop_steps_per_s']:,.0f}",
                f"{row['fit_steps_per_s']:,.0f}",
                f"{row['scan_steps_per_s']:,.0f}",
                f"{row['fit_over_loop']:.1f}",
                f"{row['scan_over_loop']:.1f}",
                f"{row['fit_minus_scan_ms']:.1f} ms",
            ]
            for row in record["drivers"]
        ],
    )
    lines += _table(
        f"**Sweep**: {record['config']['sweep_seeds']} seeds × {record['config']['sweep_steps']} steps, "
        "total wall time (compile excluded; first calls in the JSON):",
        ["game", "method", "run", "sequential `jit(run)`", "`jit(vmap(run))`", "speedup"],
        [
            [
                row["game"],
                row["method"],
                row["driver"],
                f"{1e3 * row['sequential_s']:.1f} ms",
                f"{1e3 * row['vmapped_s']:.1f} ms",
                f"{row['speedup']:.1f}",
            ]
            for row in record["sweeps"]
        ],
    )
    comp = record["compile"]
    lines += _table(
        f"**Compile time** of the first step on the {comp['game']} (one gradient: {comp['gradient_s']:.2f} s):",
        ["method", "trace", "lower", "compile", "total", "÷ gradient"],
        [
            [
                row["method"],
                *(f"{row[k]:.2f} s" for k in ("trace_s", "lower_s", "compile_s", "total_s")),
                f"{row['over_gradient']:.1f}",
            ]
            for row in comp["methods"]
        ],
    )
    mem = record["memory"]
    sizes = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes", "peak_bytes", "rss_growth_bytes")
    lines += _table(
        f"**Memory** of one step on the {mem['game']} (MiB; XLA's buffer assignment of the compiled step; "
        "peak = arguments + outputs + temporaries − aliased; RSS growth: first execution in a fresh process):",
        ["method", "arguments", "outputs", "temporaries", "peak", "RSS growth"],
        [[spec, *(_mib(row[k]) for k in sizes)] for spec, row in mem["methods"].items()],
    )
    ratios = ", ".join(f"{k.replace('_', ' ')} {v:.2f}×" for k, v in mem["acgd_over_extra_adam"].items())
    lines += ["", f"ACGD ÷ Extra-Adam: {ratios}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, every section (CI smoke run)")
    parser.add_argument("--width", type=int, default=None, help="GAN hidden width (default 128; 32 with --quick)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results"), help="output folder")
    parser.add_argument("--rss-probe", default=None, help=argparse.SUPPRESS)  # internal: one fresh-process RSS probe
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    if args.width is not None:
        config = config._replace(width=args.width)
    if args.rss_probe:
        print("rss_growth_bytes", rss_probe(args.rss_probe, config.width))
        return {}
    start = time.perf_counter()
    record = {"benchmark": "perf", "quick": args.quick, "machine": machine(), "config": config._asdict()}

    def section(name: str, fn: Callable[[], object]):
        began, cpu = time.perf_counter(), time.process_time()
        result = fn()
        print(f"[{name}: {time.perf_counter() - began:.1f} s, CPU {time.process_time() - cpu:.1f} s]", flush=True)
        return result

    record["step_cost"] = section("step cost", lambda: step_costs(config))
    record["drivers"] = section(
        "drivers", lambda: [driver_case(name, steps, config) for name, steps in config.driver_steps.items()]
    )
    record["sweeps"] = section(
        "sweeps",
        lambda: [sweep_case(name, driver, config) for name in config.sweep_cases for driver in config.sweep_drivers],
    )
    record["compile"], executables = section("compile times", lambda: compile_times(config))
    record["memory"] = section("memory", lambda: memory(executables, config))
    record["targets"] = targets(record)
    record["machine"]["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    record["elapsed_s"] = time.perf_counter() - start
    table = markdown(record)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "perf_quick" if args.quick else "perf"
    (args.out / f"{stem}.json").write_text(json.dumps(_plain(record), indent=1))
    (args.out / f"{stem}.md").write_text(table + "\n")
    print(f"wrote {args.out / stem}.json and .md")
    return record


if __name__ == "__main__":
    main()
