"""GPU benchmarks in one prepared script (issue 12 §5): step cost, a 64-seed sweep, conv GAN throughput.

Meant to run once, unattended, on one GPU (sized for under 8 minutes on an H100), from the working
tree, with a Python that has JAX (with CUDA), Flax, Optax and chex and nothing else: no install
step (gamejax is imported from this checkout), no network (every batch is synthetic), no plotting.

    python benchmarks/gpu.py              # the full run: benchmarks/results/gpu.json and gpu.md
    python benchmarks/gpu.py --quick      # a CPU smoke run (under a minute): gpu_quick.json/.md (CI)
    python benchmarks/gpu.py --paths      # every item and method of the full run at --quick's sizes (minutes)

Three sections, each item independent: an item runs in its own ``try`` (a failure is recorded
with its traceback and the next item runs), the JSON and the Markdown are rewritten after every
item, progress is printed, and an item that would start after its section's deadline is recorded
as skipped. Every time is a median over interleaved rounds (each round runs every variant once);
every ratio is taken round by round (docs of ``perf.py``).

1. **Sweep** (the performance target: ≥ 8×): 64 seeds of a run as one ``jax.jit(jax.vmap(run))``
   against 64 calls of ``jax.jit(run)`` (``perf.sweep_case``: 200 steps of LA-EG on x·y and SB-G),
   and 64 seeds of 100 steps of GDA with Adam on the 8-Gaussians MLP GAN (``step_cost.py``, width
   64), each seed drawing its start and its batches.
2. **Conv GAN throughput**: steps per second of GDA with Adam on the lookahead paper's DCGAN
   (Table 5, 28×28×1) and ResNet (Tables 6–7, 32×32×3) at their widths, batch 64, synthetic
   images drawn inside the step: ``gj.fit``, a jitted ``lax.scan`` of ``gj.make_step`` and a Python
   loop of the jitted ``gj.make_step``, against a hand-written Flax loop (the same losses on the
   NNX modules, ``jax.grad`` and ``optax.adam``, BatchNorm statistics and spectral-norm vectors
   threaded by hand; a Python loop of its jitted step, and its ``lax.scan``).
3. **Step cost** (``step_cost.py`` on the GPU): each method's step time and XLA FLOPs ÷ one
   hand-written gradient, and ÷ the same method written by hand in plain JAX and Optax, on the
   zero-sum (saturating) and general-sum (non-saturating) GAN: the MLPs at width 2000 (the LEAD
   paper's App. I.1 width) with all of ``step_cost.methods``, and the two conv GANs with GDA and
   Extra-Adam (hand-written twins) and LEAD-Adam, consensus and ACGD (gamejax's only).

The conv models are ``gj.flax.DCGANGenerator`` etc.; a checkout without them records that section's
conv items as skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, NamedTuple

ROOT = pathlib.Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "benchmarks"):  # gamejax from this checkout, and the sibling benchmark modules
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import perf  # noqa: E402
import step_cost  # noqa: E402
from _common import _plain  # noqa: E402
from flax import nnx  # noqa: E402

import gamejax as gj  # noqa: E402

CONV_MODELS = ("DCGANGenerator", "DCGANDiscriminator", "ResNetGenerator", "ResNetDiscriminator")
SWEEP_TARGET = perf.SWEEP_TARGET


class Size(NamedTuple):
    """The sizes of a run (``FULL`` on a GPU, ``QUICK`` on a CPU)."""

    budgets_s: dict[str, float]  # seconds after the start by which each section's items must have started
    sweep_cases: tuple[tuple[str, str], ...]  # (game, driver) of perf.sweep_case
    sweep_steps: int
    gan_sweep: tuple[int, int] | None  # (width, steps) of the GAN sweep
    seeds: int
    throughput_steps: int
    throughput_rounds: int
    conv: dict[str, dict]  # model -> {generator and discriminator kwargs, batch}
    mlp_width: int
    mlp_methods: tuple[str, ...] | None  # names of step_cost.methods (None: all)
    conv_methods: tuple[str, ...]
    losses: tuple[str, ...]
    step_scan: int
    step_rounds: int


FULL = Size(
    # Seconds after the start by which a section's items must have started: the sweep takes about a
    # minute, each conv model's throughput one to two, each step-cost item one to two (compiles
    # included), so the last item ends before 8 minutes.
    budgets_s={"sweep": 80.0, "conv_throughput": 190.0, "step_cost": 340.0},
    sweep_cases=(("x·y", "scan"), ("x·y", "fit"), ("SB-G, full batch", "scan"), ("SB-G, B = 16", "scan")),
    sweep_steps=200,  # a small game's scan on a GPU is launch-bound: 64 sequential runs take seconds
    gan_sweep=(64, 100),
    seeds=64,
    throughput_steps=200,
    throughput_rounds=5,
    conv={
        "DCGAN": {"generator": {}, "discriminator": {}, "batch": 64},  # Table 5 at its defaults: 28×28×1
        "ResNet": {"generator": {}, "discriminator": {}, "batch": 64},  # Tables 6–7: 32×32×3
    },
    mlp_width=2000,
    mlp_methods=None,
    conv_methods=("GDA (Adam)", "Extra-Adam", "LEAD-Adam", "consensus (Adam)", step_cost.ACGD_TOL),
    losses=("saturating", "non-saturating"),
    step_scan=10,
    step_rounds=5,
)
QUICK = Size(
    budgets_s={"sweep": 900.0, "conv_throughput": 900.0, "step_cost": 900.0},  # never skip: CI checks every item
    sweep_cases=(("x·y", "scan"),),
    sweep_steps=50,
    gan_sweep=(8, 5),
    seeds=64,
    throughput_steps=3,
    throughput_rounds=1,
    conv={
        "DCGAN": {"generator": {"width": 2, "noise_dim": 8}, "discriminator": {"width": 2}, "batch": 4},
        "ResNet": {
            "generator": {"width": 4, "noise_dim": 8, "resolution": 8, "channels": 1},
            "discriminator": {"width": 4, "resolution": 8, "channels": 1},
            "batch": 4,
        },
    },
    mlp_width=16,
    mlp_methods=("GDA (Adam)",),
    conv_methods=("GDA (Adam)",),
    losses=("saturating", "non-saturating"),
    step_scan=2,
    step_rounds=1,
)
# QUICK's sizes with FULL's items and methods: every code path of the full run, on a CPU (``--paths``,
# several minutes; a check before the one GPU run, not part of CI).
PATHS = QUICK._replace(
    sweep_cases=FULL.sweep_cases, mlp_methods=FULL.mlp_methods, conv_methods=FULL.conv_methods, step_rounds=1
)
# The CI run, under a minute of CPU: one item of each kind but the GAN sweep; the GAN sweep, ResNet and
# the other items are left to --paths.
CI_ITEMS = {
    "sweep": ("x·y (scan)",),
    "conv_throughput": ("DCGAN",),
    "step_cost": ("MLP, saturating", "MLP, non-saturating", "DCGAN, non-saturating"),
}


# ---------------------------------------------------------------------------------------------
# Output: rewritten after every item


class Report:
    """The record of a run, written to ``<out>/<stem>.json`` and ``.md`` after every item."""

    def __init__(self, out: pathlib.Path, stem: str, record: dict):
        self.out, self.stem, self.record, self.start = out, stem, record, time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def run(self, section: str, label: str, fn: Callable[[], dict]) -> None:
        """Run one item of a section (unless its deadline has passed), record it, write the files."""
        items = self.record["sections"].setdefault(section, [])
        deadline = self.record["budgets_s"][section]
        began, cpu = self.elapsed(), time.process_time()
        if began > deadline:
            item = {"item": label, "status": "skipped", "reason": f"section deadline {deadline:.0f} s passed"}
        else:
            print(f"[{began:6.1f} s] {section}: {label} ...", flush=True)
            try:
                item = {"item": label, "status": "ok", **fn()}
            except Exception as error:  # noqa: BLE001 (one item's failure must not lose the others)
                item = {"item": label, "status": "failed", "error": repr(error), "traceback": traceback.format_exc()}
                print(item["traceback"], flush=True)
            item["seconds"] = self.elapsed() - began
            item["cpu_seconds"] = time.process_time() - cpu
        print(
            f"[{self.elapsed():6.1f} s] {section}: {label}: {item['status']} (CPU {time.process_time() - cpu:.1f} s)",
            flush=True,
        )
        items.append(item)
        self.write()

    def write(self) -> None:
        self.record["elapsed_s"] = self.elapsed()
        (self.out / f"{self.stem}.json").write_text(json.dumps(_plain(self.record), indent=1))
        (self.out / f"{self.stem}.md").write_text(markdown(self.record) + "\n")


# ---------------------------------------------------------------------------------------------
# The conv GANs: gamejax's game and the same step written by hand


def conv_classes() -> dict[str, type] | None:
    """gamejax's conv GAN modules (``gj.flax.DCGANGenerator`` ...), or ``None`` if this checkout lacks them."""
    found = {name: getattr(gj.flax, name, None) for name in CONV_MODELS}
    return None if None in found.values() else found


def conv_modules(model: str, size: Size) -> tuple[nnx.Module, nnx.Module, dict]:
    classes = conv_classes()
    if classes is None:
        raise LookupError(f"gj.flax has no {', '.join(CONV_MODELS)} in this checkout")
    spec = size.conv[model]
    generator = classes[f"{model}Generator"](rngs=nnx.Rngs(0), **spec["generator"])
    discriminator = classes[f"{model}Discriminator"](rngs=nnx.Rngs(1), **spec["discriminator"])
    return generator, discriminator, spec


def image_sampler(generator: nnx.Module, discriminator: nnx.Module, batch: int) -> Callable:
    """``key -> (real, noise)``: synthetic images in [-1, 1] of the discriminator's input shape, and noise."""
    defaults = (28, 1) if "DCGAN" in type(discriminator).__name__ else (32, 3)  # the classes' defaults
    resolution = getattr(discriminator, "resolution", defaults[0])
    channels = getattr(discriminator, "channels", defaults[1])
    noise_dim = getattr(generator, "noise_dim", 128)

    def sample(key):
        kr, kz = jax.random.split(key)
        real = jnp.tanh(jax.random.normal(kr, (batch, resolution, resolution, channels)))
        return real, jax.random.normal(kz, (batch, noise_dim))

    return sample


class Conv(NamedTuple):
    game: Any  # gamejax's (stateful) game on the module losses
    params: gj.Players
    model_state: gj.Players
    sample: Callable
    hand: dict  # name -> step_cost.HandWritten, written without gamejax
    gradient: Callable  # (carry) -> carry: one hand-written gradient (for the unit)


def conv_gan(model: str, loss: str, size: Size) -> Conv:
    generator, discriminator, spec = conv_modules(model, size)
    zero_sum, loss_x, loss_y = step_cost.module_losses(loss)
    pair = gj.flax.split(generator, discriminator)
    game = pair.zero_sum(loss_x) if zero_sum else pair.general_sum(loss_x, loss_y)
    sample = image_sampler(generator, discriminator, spec["batch"])
    # The hand-written side splits the modules itself (the same arrays as gamejax's split).
    (g_def, g_params, g_state), (d_def, d_params, d_state) = (
        nnx.split(m, nnx.Param, ...) for m in (generator, discriminator)
    )
    hand, field = hand_written_stateful(g_def, d_def, zero_sum, loss_x, loss_y)

    def gradient(carry):  # the unit: one evaluation of both gradients, nudging the params by it
        (gp, dp), state, batch = carry
        (gx, gy), _ = field(gp, dp, state, batch)
        nudge = lambda p, g: jax.tree.map(lambda a, b: a + 1e-12 * b, p, g)  # noqa: E731
        return (nudge(gp, gx), nudge(dp, gy)), state, batch

    return Conv(game, pair.params, pair.model_state, sample, hand, gradient)


def gradient_carry(conv: Conv, batch) -> tuple:
    """The unit's carry: plain tuples (the hand-written code returns tuples, not gamejax's Players)."""
    return tuple(conv.params), tuple(conv.model_state), batch


def hand_written_stateful(g_def, d_def, zero_sum: bool, loss_x: Callable, loss_y: Callable) -> tuple[dict, Callable]:
    """GDA and Extra-Adam with ``optax.adam`` on NNX modules with model state, written by hand (no gamejax).

    The carry is ``((g_params, d_params), (g_state, d_state), adam states)``; every gradient of a
    step is taken at the model state the step started with, and the state advances once, to what
    the discriminator's loss evaluation at the step's start left (BatchNorm statistics,
    spectral-norm vectors): a training loop that threads the state through ``jax.grad``'s aux.
    """
    adam = optax.adam(1e-4, b1=0.5)

    def run(loss, gp, dp, state, batch):
        generator, critic = nnx.merge(g_def, gp, state[0], copy=True), nnx.merge(d_def, dp, state[1], copy=True)
        value = loss(generator, critic, batch)
        return value, (nnx.split(generator, nnx.Param, ...)[2], nnx.split(critic, nnx.Param, ...)[2])

    def field(gp, dp, state, batch):
        if zero_sum:
            (_, new), (gx, gy) = jax.value_and_grad(
                lambda a, b: run(loss_x, a, b, state, batch), argnums=(0, 1), has_aux=True
            )(gp, dp)
            return (gx, jax.tree.map(jnp.negative, gy)), new
        _, gx = jax.value_and_grad(lambda a: run(loss_x, a, dp, state, batch), has_aux=True)(gp)
        (_, new), gy = jax.value_and_grad(lambda b: run(loss_y, gp, b, state, batch), has_aux=True)(dp)
        return (gx, gy), new

    def adam_step(params, opt, grads):
        (gp, dp), (sg, sd) = params, opt
        ug, sg = adam.update(grads[0], sg, gp)
        ud, sd = adam.update(grads[1], sd, dp)
        return (optax.apply_updates(gp, ug), optax.apply_updates(dp, ud)), (sg, sd)

    def gda(carry, batch):
        params, state, opt = carry
        grads, new_state = field(*params, state, batch)
        params, opt = adam_step(params, opt, grads)
        return params, new_state, opt

    def extra_adam(carry, batch):
        params, state, opt = carry
        grads, new_state = field(*params, state, batch)
        half, half_opt = adam_step(params, opt, grads)
        params, opt = adam_step(params, half_opt, field(*half, state, batch)[0])
        return params, new_state, opt

    def init(gp, dp, state):
        return (gp, dp), (state[0], state[1]), (adam.init(gp), adam.init(dp))

    return {
        "GDA (Adam)": step_cost.HandWritten(init, gda),
        "Extra-Adam": step_cost.HandWritten(init, extra_adam),
    }, field


# ---------------------------------------------------------------------------------------------
# 1. Sweep


def sweep_item(game: str, driver: str, size: Size) -> dict:
    config = perf.QUICK._replace(sweep_seeds=size.seeds, sweep_steps=size.sweep_steps, budget_s=3.0)
    row = perf.sweep_case(game, driver, config)
    return {**row, "meets_target": row["speedup"] >= SWEEP_TARGET}


def gan_sweep_item(width: int, steps: int, size: Size) -> dict:
    """64 seeds of ``steps`` steps of GDA (Adam) on the MLP GAN: each seed perturbs the start and draws its batches."""
    model = step_cost.gan(width, "non-saturating")
    tx = gj.gda(optax.adam(1e-4, b1=0.5))
    step = gj.make_step(model.game, tx)

    def run(seed):
        key = jax.random.key(seed)
        leaves, treedef = jax.tree.flatten(model.params)
        keys = jax.random.split(jax.random.fold_in(key, 0), len(leaves))
        start = jax.tree.unflatten(
            treedef, [a + 0.01 * jax.random.normal(k, a.shape, a.dtype) for a, k in zip(leaves, keys, strict=True)]
        )

        def body(carry, t):
            return step(*carry, model.sample(jax.random.fold_in(key, t + 1)))[:2], None

        params = jax.lax.scan(body, (start, tx.init(start)), jnp.arange(steps))[0][0]
        return optax.tree.norm(params)

    seeds = jnp.arange(size.seeds)
    one, many = jax.jit(run), jax.jit(jax.vmap(run))
    _, compile_one = perf.stopwatch(lambda: one(0))
    _, compile_many = perf.stopwatch(lambda: many(seeds))
    thunks = {"sequential": lambda: [one(s) for s in range(size.seeds)], "vmapped": lambda: many(seeds)}
    seconds = perf.timed(thunks, 3.0)
    sequential = np.stack([np.asarray(v) for v in thunks["sequential"]()])
    vmapped = np.asarray(thunks["vmapped"]())
    speedup = perf.median_ratio(seconds["sequential"], seconds["vmapped"])
    return {
        "game": f"8-Gaussians GAN, width {width}",
        "method": "gda (adam)",
        "driver": "scan",
        "seeds": size.seeds,
        "steps": steps,
        "rounds": len(seconds["vmapped"]),
        "sequential_s": float(np.median(seconds["sequential"])),
        "vmapped_s": float(np.median(seconds["vmapped"])),
        "speedup": speedup,
        "meets_target": speedup >= SWEEP_TARGET,
        "first_call_s": {"jit(run)": compile_one, "jit(vmap(run))": compile_many},
        "max_result_difference": float(np.max(np.abs(sequential - vmapped)) / max(np.max(np.abs(sequential)), 1e-30)),
    }


# ---------------------------------------------------------------------------------------------
# 2. Conv GAN throughput


def throughput_item(model: str, size: Size) -> dict:
    """Steps per second of GDA (Adam) on a conv GAN: gamejax's drivers against a hand-written Flax loop."""
    conv = conv_gan(model, "non-saturating", size)
    tx = gj.gda(optax.adam(1e-4, b1=0.5))
    step = gj.make_step(conv.game, tx)
    state = gj.init_state(conv.game, tx, conv.params, conv.model_state)
    hand = conv.hand["GDA (Adam)"]
    steps, key = size.throughput_steps, jax.random.key(7)

    def batch_at(t):
        return conv.sample(jax.random.fold_in(key, t))

    ours = jax.jit(lambda p, s, t: step(p, s, batch_at(t))[:2])
    theirs = jax.jit(lambda carry, t: hand.step(carry, batch_at(t)))
    hand_carry = hand.init(*conv.params, conv.model_state)

    def gamejax_loop():
        p, s = conv.params, state
        for t in range(steps):
            p, s = ours(p, s, t)
        return p

    def hand_loop():
        carry = hand_carry
        for t in range(steps):
            carry = theirs(carry, t)
        return carry[0]

    scan_ours = jax.jit(
        lambda p, s: jax.lax.scan(lambda c, t: (step(*c, batch_at(t))[:2], None), (p, s), jnp.arange(steps))[0][0]
    )
    scan_theirs = jax.jit(
        lambda c: jax.lax.scan(lambda c, t: (hand.step(c, batch_at(t)), None), c, jnp.arange(steps))[0][0]
    )

    def fit():
        return gj.fit(
            conv.game,
            tx,
            conv.params,
            steps=steps,
            sample=conv.sample,
            key=key,
            model_state=conv.model_state,
            log_every=steps,
            progress=False,
        ).params

    thunks = {
        "hand-written Flax loop": hand_loop,
        "hand-written scan": lambda: scan_theirs(hand_carry),
        "gamejax loop (jit(make_step))": gamejax_loop,
        "gamejax scan (make_step)": lambda: scan_ours(conv.params, state),
        "gj.fit": fit,
    }
    first_call = {name: perf.stopwatch(thunk)[1] for name, thunk in thunks.items()}  # compiles
    seconds = step_cost.interleaved(thunks, size.throughput_rounds)
    per_s = {name: steps / float(np.median(values)) for name, values in seconds.items()}
    loop = seconds["hand-written Flax loop"]
    return {
        "model": model,
        "method": "GDA (Adam), non-saturating loss",
        "batch": size.conv[model]["batch"],
        "steps": steps,
        "rounds": size.throughput_rounds,
        "params": {p: int(sum(np.size(a) for a in jax.tree.leaves(v))) for p, v in zip("xy", conv.params, strict=True)},
        "steps_per_s": per_s,
        "over_hand_written_loop": {name: perf.median_ratio(loop, values) for name, values in seconds.items()},
        "gamejax_scan_over_hand_written_scan": perf.median_ratio(
            seconds["hand-written scan"], seconds["gamejax scan (make_step)"]
        ),
        "first_call_s": first_call,
    }


# ---------------------------------------------------------------------------------------------
# 3. Step cost


def step_cost_item(model: str, loss: str, size: Size) -> dict:
    """Each method's step time and FLOPs ÷ one hand-written gradient and ÷ its hand-written twin."""
    n = size.step_scan
    if model == "MLP":
        gan = step_cost.gan(size.mlp_width, loss)
        batch = gan.sample(jax.random.key(0))
        direction = step_cost.random_direction(gan.params, jax.random.key(1))
        unit = step_cost.scan_program(step_cost.gradient_body(gan.losses, batch), (gan.params, direction), n)
        game, params, start_state = gan.game, gan.params, None
        hand = step_cost.hand_written(gan.losses, acgd_iterations=10)
        hand_carry = {name: method.init(*params) for name, method in hand.items()}
        names = size.mlp_methods or tuple(step_cost.methods(10))
        what = f"MLP, width {size.mlp_width}, batch {step_cost.BATCH}"
    else:
        conv = conv_gan(model, loss, size)
        batch = conv.sample(jax.random.key(0))
        unit = step_cost.scan_program(conv.gradient, gradient_carry(conv, batch), n)
        game, params, start_state = conv.game, conv.params, conv.model_state
        hand = conv.hand
        hand_carry = {name: method.init(*params, conv.model_state) for name, method in hand.items()}
        names = size.conv_methods
        what = f"{model}, batch {size.conv[model]['batch']}"
    programs, reported = {"gradient": unit}, {}
    transformations = step_cost.methods(10)
    for name in names:
        tx = transformations[name][0]
        step = gj.make_step(game, tx)

        def body(carry, step=step):
            p, s, _ = step(*carry, batch)
            return p, s

        start = gj.init_state(game, tx, params, start_state)
        programs[name] = step_cost.scan_program(body, (params, start), n)
        final = jax.block_until_ready(programs[name].thunk())[1]
        tx_state = final.tx_state if start_state is not None else final
        reported[name] = gj.reported_evaluations(tx_state)
        if name in hand:
            programs[f"{name} [hand-written]"] = step_cost.scan_program(
                lambda carry, m=hand[name]: m.step(carry, batch), hand_carry[name], n
            )
    seconds = step_cost.interleaved({k: p.thunk for k, p in programs.items()}, size.step_rounds, n)
    rows = []
    for name in names:
        row = {
            "method": name,
            "ms_per_step": 1e3 * float(np.median(seconds[name])),
            "gradients_per_step": perf.median_ratio(seconds[name], seconds["gradient"]),
            "flops_per_gradient": programs[name].flops / unit.flops,
            "flops_exact": "ACGD" not in name,  # XLA counts a while loop's body once
            "passes_per_step": None if reported[name] is None else float(reported[name]) / n,
        }
        twin = f"{name} [hand-written]"
        if twin in programs:
            row["hand_written"] = {
                "ms_per_step": 1e3 * float(np.median(seconds[twin])),
                "time_ratio": perf.median_ratio(seconds[name], seconds[twin]),
                "flops_ratio": programs[name].flops / programs[twin].flops,
            }
        rows.append(row)
    return {
        "model": model,
        "loss": loss,
        "what": what,
        "gradient_ms": 1e3 * float(np.median(seconds["gradient"])),
        "gradient_flops": unit.flops,
        "params": {p: int(sum(np.size(a) for a in jax.tree.leaves(v))) for p, v in zip("xy", params, strict=True)},
        "methods": rows,
    }


# ---------------------------------------------------------------------------------------------
# The Markdown


def _status(item: dict) -> str:
    return "" if item["status"] == "ok" else f" — **{item['status']}**: {item.get('reason') or item.get('error')}"


def markdown(record: dict) -> str:
    machine = record["machine"]
    lines = [
        f"Device: {machine.get('device')} ({machine.get('backend')}), jax {machine['versions'].get('jax')}, "
        f"flax {machine['versions'].get('flax')}; {'quick run' if record['quick'] else 'full run'}; "
        f"{record.get('elapsed_s', 0):.0f} s.",
    ]
    sections = record["sections"]
    if "sweep" in sections:
        lines += ["", f"**Sweep**: {record['size']['seeds']} seeds, total wall time (target ≥ {SWEEP_TARGET:g}×):", ""]
        lines += ["| game | method | run | steps | 64 sequential `jit(run)` | `jit(vmap(run))` | speedup |"]
        lines += ["|---|---|---|---|---|---|---|"]
        for item in sections["sweep"]:
            if item["status"] != "ok":
                lines.append(f"| {item['item']} | | | | | | {_status(item)} |")
                continue
            lines.append(
                f"| {item['game']} | {item['method']} | {item['driver']} | {item['steps']} | "
                f"{1e3 * item['sequential_s']:.1f} ms | {1e3 * item['vmapped_s']:.1f} ms | "
                f"{item['speedup']:.1f}{'' if item['meets_target'] else ' (below target)'} |"
            )
    if "conv_throughput" in sections:
        lines += ["", "**Conv GAN throughput**, steps per second (÷ the hand-written Flax loop):", ""]
        for item in sections["conv_throughput"]:
            if item["status"] != "ok":
                lines.append(f"- {item['item']}{_status(item)}")
                continue
            cells = ", ".join(
                f"{name} {item['steps_per_s'][name]:,.0f}/s ({item['over_hand_written_loop'][name]:.2f}×)"
                for name in item["steps_per_s"]
            )
            lines.append(
                f"- {item['model']}, {item['method']}, batch {item['batch']} (params {item['params']['x']:,} + "
                f"{item['params']['y']:,}): {cells}; gamejax scan ÷ hand-written scan "
                f"{item['gamejax_scan_over_hand_written_scan']:.2f}"
            )
    if "step_cost" in sections:
        lines += ["", "**Step cost** (time and XLA FLOPs ÷ one hand-written gradient; ÷ the hand-written step):"]
        for item in sections["step_cost"]:
            if item["status"] != "ok":
                lines += ["", f"- {item['item']}{_status(item)}"]
                continue
            lines += [
                "",
                f"{item['what']}, {item['loss']} loss: one gradient {item['gradient_ms']:.3f} ms, "
                f"{item['gradient_flops']:.3g} FLOPs",
                "",
                "| method | ms / step | step ÷ gradient | FLOPs ÷ gradient | passes (state) "
                "| ÷ hand-written (time, FLOPs) |",
                "|---|---|---|---|---|---|",
            ]
            for row in item["methods"]:
                hand = row.get("hand_written")
                passes = "-" if row["passes_per_step"] is None else f"{row['passes_per_step']:.1f}"
                twin = f"{hand['time_ratio']:.2f}, {hand['flops_ratio']:.3f}" if hand else "-"
                flops = f"{row['flops_per_gradient']:.2f}" + ("" if row["flops_exact"] else "*")
                lines.append(
                    f"| {row['method']} | {row['ms_per_step']:.3f} | {row['gradients_per_step']:.2f} | {flops} | "
                    f"{passes} | {twin} |"
                )
        lines += ["", "\\* XLA counts a while loop's body once: FLOPs of one pass through the solver's loops."]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes on any device (the CI smoke run)")
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "benchmarks" / "results", help="output folder")
    parser.add_argument("--paths", action="store_true", help="--quick's sizes, the full run's items (CPU check)")
    parser.add_argument("--sections", default="sweep,conv_throughput,step_cost", help="which sections, in order")
    args = parser.parse_args(argv)
    args.quick = args.quick or args.paths
    size = PATHS if args.paths else QUICK if args.quick else FULL
    wanted = CI_ITEMS if args.quick and not args.paths else {}
    if not args.quick and jax.default_backend() == "cpu":
        print("warning: no accelerator found; the full run is sized for one GPU", flush=True)
    record = {
        "benchmark": "gpu (issue 12 §5)",
        "quick": args.quick,
        "machine": perf.machine(),
        "environment": {k: os.environ.get(k) for k in ("XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE")},
        "gamejax_file": gj.__file__,  # this checkout's, whatever the Python has installed
        "conv_models": conv_classes() is not None,
        "size": size._asdict(),
        "budgets_s": size.budgets_s,
        "sections": {},
    }
    report = Report(args.out, "gpu_paths" if args.paths else "gpu_quick" if args.quick else "gpu", record)
    items = {
        "sweep": [(f"{g} ({d})", lambda g=g, d=d: sweep_item(g, d, size)) for g, d in size.sweep_cases]
        + [
            (f"8-Gaussians GAN, width {w}", lambda w=w, n=n: gan_sweep_item(w, n, size))
            for w, n in [size.gan_sweep]
            if size.gan_sweep
        ],
        "conv_throughput": [(m, lambda m=m: throughput_item(m, size)) for m in size.conv],
        # Each model with one loss first (zero-sum and general-sum alternating), then the other
        # loss: an early deadline still leaves every model and both kinds of game.
        "step_cost": [
            (f"{m}, {k}", lambda m=m, k=k: step_cost_item(m, k, size))
            for i in range(len(size.losses))
            for j, m in enumerate(("MLP", *size.conv))
            for k in [size.losses[(i + j) % len(size.losses)]]
        ],
    }
    for section in args.sections.split(","):
        if section not in items:
            raise ValueError(f"unknown section {section!r}; choose from {', '.join(items)}")
        for label, fn in items[section]:
            if section not in wanted or label in wanted[section]:
                report.run(section, label, fn)
    report.write()
    print(markdown(record), flush=True)
    print(f"wrote {args.out / report.stem}.json and .md", flush=True)
    return record


if __name__ == "__main__":
    main()
