"""Cost per step of game optimizers on the 8-Gaussians GAN, as multiples of one gradient evaluation.

Reproduces the LEAD paper's §6 / Fig. 2 cost comparison in JAX: generator and discriminator
are the App. I.1 MLPs (four affine layers with ReLU, z ∈ R^64, batch 128) at several widths.
For each width the script times, interleaved over several rounds so that every
measurement sees the same machine load, one gradient (a field evaluation), the unit
operations the methods are built from (a player's gradient with its mixed product, a field
with its vjp, CG's matrix-vector product) and each method's step — each as a ``lax.scan``
of steps so dispatch is amortized — and reports medians of per-round ratios to the gradient.

Each method gets two predictions. The papers' accounting of gradient-equivalents (LEAD paper
§6): a field evaluation, a player's gradient with its mixed product and a Jacobian-vector
product count 1, a double-backward vjp 2 (LEAD ≈ 2, Extra-Adam ≈ 2, consensus ≈ 3, ACGD with
k CG matrix-vector products, true-residual checks included, ≈ 3 + 2k). And the method's bare
derivative program (its products at the points it evaluates them, no optimizer or state) timed alone in the same run, so
"measured / blocks" isolates overhead in gamejax's method code from how fast XLA computes the
derivatives themselves. Target: within 1.2×. A hand-written simultaneous GDA with plain
``optax.adam`` is the baseline ``gda`` must match. The game is the zero-sum (saturating)
GAN, so ACGD uses conjugate gradient as in the ICR paper.

    python benchmarks/step_cost.py                 # widths 64..512, writes JSON + PNG
    python benchmarks/step_cost.py --quick         # one small width, for CI
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import gamejax as gj
from gamejax import derivatives

LATENT, BATCH = 64, 128


def mlp(sizes: list[int], seed: int) -> nnx.Module:
    rngs = nnx.Rngs(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nnx.Linear(a, b, rngs=rngs))
        if i < len(sizes) - 2:
            layers.append(jax.nn.relu)
    return nnx.Sequential(*layers)


def eight_gaussians(key: jax.Array, n: int, std: float = 0.05**0.5) -> jax.Array:
    """Samples of the 8-Gaussians mixture on the unit circle (LEAD App. I.1: variance 0.05)."""
    kc, kn = jax.random.split(key)
    angles = 2 * jnp.pi * jax.random.randint(kc, (n,), 0, 8) / 8
    centers = jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=1)
    return centers + std * jax.random.normal(kn, (n, 2))


def gan_game(width: int) -> tuple[gj.Game, gj.Players, Callable[[jax.Array], tuple]]:
    """The zero-sum GAN ``min_G max_D E[log D(x)] + E[log(1 − D(G(z)))]`` on NNX state."""
    g_def, g_state = nnx.split(mlp([LATENT, width, width, width, 2], 0))
    d_def, d_state = nnx.split(mlp([2, width, width, width, 1], 1))

    def value(g, d, batch):
        real, z = batch
        critic = nnx.merge(d_def, d)
        fake = nnx.merge(g_def, g)(z)
        return jnp.mean(jax.nn.log_sigmoid(critic(real))) + jnp.mean(jax.nn.log_sigmoid(-critic(fake)))

    def sample(key):
        kr, kz = jax.random.split(key)
        return eight_gaussians(kr, BATCH), jax.random.normal(kz, (BATCH, LATENT))

    return gj.zero_sum(value, name=f"8-Gaussians GAN (width {width})"), gj.Players(g_state, d_state), sample


def methods(acgd_iterations: int) -> dict[str, tuple[gj.GameTransformation, dict[str, int | None]]]:
    """Each method with its evaluations per step.

    ``field`` = field evaluations (one gradient of each player); ``player_product`` = one
    player's gradient together with its mixed product along the opponent (LEAD's unit: one
    double-backward in the paper's PyTorch accounting); ``vjp`` = a vector-Jacobian product of
    the field (consensus: double backpropagation); ``jvp`` = a Jacobian(-block)-vector product
    of the once-linearized field (SGA, and CG: two per iteration plus two).
    """
    adam = optax.adam(1e-4, b1=0.5)
    return {
        "GDA (Adam)": (gj.gda(adam), {"field": 1}),
        "OGDA (Adam)": (gj.optimistic(adam), {"field": 1}),
        "Extra-Adam": (gj.extragradient(adam), {"field": 2}),
        "LEAD-Adam": (gj.lead(adam, coupling=gj.Players(0.0, 0.3), alternating=True), {"player_product": 2}),
        "consensus (Adam)": (gj.consensus(10.0)(gj.gda(adam)), {"field": 1, "vjp": 1}),
        "SGA (Adam)": (gj.sga(1.0)(gj.gda(adam)), {"field": 1, "jvp": 2}),
        f"ACGD ({acgd_iterations} CG its)": (
            gj.acgd(1e-4, tol=0.0, maxiter=acgd_iterations),
            {"field": 1, "jvp": None},
        ),
        "ACGD (tol 1e-4)": (gj.acgd(1e-4, tol=1e-4, maxiter=100), {"field": 1, "jvp": None}),
    }


# The papers' accounting in gradient-equivalents (LEAD paper §6: LEAD ≈ 2 gradients, consensus ≈ 3).
GRADIENTS_PER = {"field": 1, "player_product": 1, "vjp": 2, "jvp": 1}


def compiled_scan(body: Callable, carry, n: int) -> Callable[[], object]:
    """A thunk running ``carry ↦ body(carry)`` ``n`` times in one compiled ``lax.scan``."""
    run = jax.jit(lambda c: jax.lax.scan(lambda c, _: (body(c), None), c, None, length=n)[0])
    jax.block_until_ready(run(carry))  # compile and warm up
    return lambda: run(carry)


def method_scan(game: gj.Game, tx: gj.GameTransformation, params: gj.Players, batch, n: int) -> tuple[Callable, object]:
    """A thunk running ``n`` steps of ``tx`` from its initial state in one compiled scan, and its final carry."""
    step = gj.make_step(game, tx)

    def body(carry):
        p, s, _ = step(*carry, batch)
        return p, s

    thunk = compiled_scan(body, (params, tx.init(params)), n)
    return thunk, jax.block_until_ready(thunk())


def interleaved(thunks: dict[str, Callable[[], object]], rounds: int, n: int = 1) -> dict[str, np.ndarray]:
    """Seconds per step of each thunk (``n`` steps a call), one value per round.

    Within a round every thunk runs once, in turn, so that all of them see the same machine
    load; ratios are then taken round by round.
    """
    seconds = {name: [] for name in thunks}
    for _ in range(rounds):
        for name, thunk in thunks.items():
            start = time.perf_counter()
            jax.block_until_ready(thunk())
            seconds[name].append((time.perf_counter() - start) / n)
    return {name: np.array(values) for name, values in seconds.items()}


def random_direction(params, key: jax.Array):
    """A standard normal pytree shaped like ``params`` (the tangent the product bodies carry)."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(
        treedef, [jax.random.normal(k, jnp.shape(a), jnp.result_type(a)) for k, a in zip(keys, leaves, strict=True)]
    )


def unit_bodies(game: gj.Game, batch) -> dict[str, Callable]:
    """The derivative building blocks of the methods, one per scan iteration.

    Every body moves *both* players by a tiny amount of its result, so no part of the work is
    loop-invariant (XLA would hoist it out of the scan), and products use an independent
    random tangent carried along (a tangent equal to the params would let XLA merge tangent and
    primal work).
    """

    def nudge(p, t):
        return jax.tree.map(lambda a, b: a + 1e-12 * b, p, t)

    def gradient(carry):
        p, t = carry
        return nudge(p, game.field(p, batch)), t

    def player_product(player):
        other = "y" if player == "x" else "x"

        def body(carry):
            p, t = carry
            _, product = derivatives.player_field_jvp(game, p, batch, player, getattr(t, other))
            return nudge(p, p._replace(**{player: product})), t  # the other player moves along itself

        return body

    def lead_alternating(carry):  # LEAD-Adam's derivatives: x's product, then y's at the new x
        p, t = carry
        vx, px = derivatives.player_field_jvp(game, p, batch, "x", t.y)
        x_new = jax.tree.map(lambda a, g: a - 1e-6 * g, p.x, vx)
        step_x = jax.tree.map(jnp.subtract, x_new, p.x)
        vy, py = derivatives.player_field_jvp(game, p._replace(x=x_new), batch, "y", step_x)
        return nudge(p, gj.Players(px, jax.tree.map(jnp.add, vy, py))), t

    def field_and_vjp(carry):
        p, t = carry
        v, pullback, _ = derivatives.field_vjp(game, p, batch)
        return nudge(p, pullback(v)), t

    def linearized(kind, count=1):
        def body(carry):
            p, t = carry
            v, jvp, _ = derivatives.linearize_field(game, p, batch)
            if kind == "none":
                out = v
            elif kind == "jvp":
                out = jvp(t)
            elif kind == "transpose":
                (out,) = jax.linear_transpose(jvp, p)(t)
            elif kind == "jvp and transpose":  # SGA's derivatives: Jv and Jᵀv from one linearization
                (transposed,) = jax.linear_transpose(jvp, p)(v)
                out = jax.tree.map(jnp.subtract, transposed, jvp(v))
            else:  # CG's matrix-vector product Jxy·(Jyx·u), ``count`` times
                zeros = jax.tree.map(jnp.zeros_like, p)
                u = t.x
                for _ in range(count):
                    u = jvp(gj.Players(zeros.x, jvp(gj.Players(u, zeros.y)).y)).x
                out = gj.Players(u, v.y)
            return nudge(p, out), t

        return body

    return {
        "gradient": gradient,
        "player product (x)": player_product("x"),
        "player product (y)": player_product("y"),
        "LEAD-Adam derivatives": lead_alternating,
        "field + vjp": field_and_vjp,
        "linearize": linearized("none"),
        "SGA derivatives": linearized("jvp and transpose"),
        "linearize + jvp": linearized("jvp"),
        "linearize + transpose": linearized("transpose"),
        "linearize + 1 CG matvec": linearized("matvec", 1),
        "linearize + 3 CG matvecs": linearized("matvec", 3),
    }


def unit_prediction(counts: dict, units: dict) -> float:
    """A method's cost predicted from its derivative program, measured alone in the same run (gradients)."""
    if "player_product" in counts:
        return units["LEAD-Adam derivatives"]
    if counts.get("vjp"):
        return units["field + vjp"]
    if counts.get("jvp") == 2:
        return units["SGA derivatives"]
    if counts.get("jvp"):  # CG: right-hand side and back-substitution, two block products per iteration
        return units["linearize"] + counts["jvp"] * units["jvp (one block)"]
    return counts["field"]


def plain_optax_gda_body(game: gj.Game, batch) -> tuple[Callable, Callable]:
    """Simultaneous GDA written by hand with ``optax.adam`` on both players: gamejax's ``gda`` must not cost more."""
    adam = optax.adam(1e-4, b1=0.5)

    def body(carry):
        (g, d), (sg, sd) = carry
        grads = game.field(gj.Players(g, d), batch)
        ug, sg = adam.update(grads.x, sg, g)
        ud, sd = adam.update(grads.y, sd, d)
        return (optax.apply_updates(g, ug), optax.apply_updates(d, ud)), (sg, sd)

    return body, lambda params: (tuple(params), (adam.init(params.x), adam.init(params.y)))


def measure(width: int, n: int, rounds: int, acgd_iterations: int) -> dict:
    """Per-step costs at one width, from ``rounds`` interleaved timings (median of per-round ratios)."""
    game, params, sample = gan_game(width)
    batch = sample(jax.random.key(0))
    direction = random_direction(params, jax.random.key(1))
    thunks = {name: compiled_scan(body, (params, direction), n) for name, body in unit_bodies(game, batch).items()}
    body, carry = plain_optax_gda_body(game, batch)
    thunks["plain Optax GDA (Adam)"] = compiled_scan(body, carry(params), n)
    counts, final_states = {"plain Optax GDA (Adam)": {"field": 1}}, {}
    for name, (tx, method_counts) in methods(acgd_iterations).items():
        thunks[name], (_, final_states[name]) = method_scan(game, tx, params, batch, n)
        counts[name] = dict(method_counts)
    seconds = interleaved(thunks, rounds, n)
    gradient = seconds["gradient"]

    def in_gradients(name):
        return float(np.median(seconds[name] / gradient))

    linearize = in_gradients("linearize")
    units = {
        "player product (x)": in_gradients("player product (x)"),
        "player product (y)": in_gradients("player product (y)"),
        "LEAD-Adam derivatives": in_gradients("LEAD-Adam derivatives"),
        "field + vjp": in_gradients("field + vjp"),
        "SGA derivatives": in_gradients("SGA derivatives"),
        "linearize": linearize,
        "jvp (full)": in_gradients("linearize + jvp") - linearize,
        "transpose (full)": in_gradients("linearize + transpose") - linearize,
        "jvp (one block)": (in_gradients("linearize + 3 CG matvecs") - in_gradients("linearize + 1 CG matvec")) / 4,
    }
    rows = []
    for name, method_counts in counts.items():
        if method_counts.get("jvp", 0) is None:
            # CG: two products per matrix-vector product, and the solver's matrix-vector products
            # include its true-residual checks; ACGD reports its passes (3 + 2 per matvec) in its
            # state, so the mean over the n steps gives the products each step made.
            passes = float(final_states[name].evaluations.value) / n
            method_counts.update(jvp=passes - 1, cg_iterations=int(final_states[name].iterations))
        accounted = sum(GRADIENTS_PER[k] * v for k, v in method_counts.items() if k in GRADIENTS_PER)
        from_units = unit_prediction(method_counts, units)
        measured = in_gradients(name)
        rows.append(
            {
                "method": name,
                "ms_per_step": 1e3 * float(np.median(seconds[name])),
                "gradients_per_step": measured,
                "counts": method_counts,
                "papers_accounting": accounted,
                "measured_over_papers_accounting": measured / accounted,
                "predicted_from_units": from_units,
                "measured_over_units": measured / from_units,
            }
        )
    return {
        "width": width,
        "gradient_ms": 1e3 * float(np.median(gradient)),
        "gradient_ms_spread": [1e3 * float(gradient.min()), 1e3 * float(gradient.max())],
        "unit_costs_in_gradients": units,
        "methods": rows,
    }


def plot(results: list[dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["method"] for row in results[0]["methods"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(names))
    bar = 0.8 / len(results)
    for i, result in enumerate(results):
        ms = [row["ms_per_step"] for row in result["methods"]]
        ratio = [row["gradients_per_step"] for row in result["methods"]]
        left.bar(x + i * bar, ms, bar, label=f"width {result['width']}")
        right.bar(x + i * bar, ratio, bar, label=f"width {result['width']}")
    for ax, label in ((left, "ms per step (log)"), (right, "step time / one gradient")):
        ax.set_xticks(x + bar * (len(results) - 1) / 2, names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    left.set_yscale("log")
    fig.suptitle("Cost per step on the 8-Gaussians GAN (LEAD paper §6, Fig. 2), CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(result: dict) -> str:
    lines = [
        f"width {result['width']}: one gradient = {result['gradient_ms']:.3f} ms; measured building blocks "
        "(gradients): " + ", ".join(f"{k} {v:.2f}" for k, v in result["unit_costs_in_gradients"].items()),
        f"{'method':<24} {'ms/step':>9} {'× gradient':>10} {'papers':>7} {'ratio':>6} "
        f"{'blocks':>7} {'ratio':>6}  counts",
    ]
    for row in result["methods"]:
        lines.append(
            f"{row['method']:<24} {row['ms_per_step']:>9.3f} {row['gradients_per_step']:>10.2f} "
            f"{row['papers_accounting']:>7.2f} {row['measured_over_papers_accounting']:>6.2f} "
            f"{row['predicted_from_units']:>7.2f} {row['measured_over_units']:>6.2f}  {row['counts']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,128,256,512", help="comma-separated hidden widths")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed scan")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (medians are reported)")
    parser.add_argument("--acgd-iterations", type=int, default=10, help="CG iterations of the fixed-iteration ACGD")
    parser.add_argument("--quick", action="store_true", help="one width 32, few steps (CI smoke run)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/step_cost"))
    args = parser.parse_args(argv)
    widths = [32] if args.quick else [int(w) for w in args.widths.split(",")]
    steps, rounds = (3, 2) if args.quick else (args.steps, args.rounds)
    results = []
    for width in widths:
        result = measure(width, steps, rounds, args.acgd_iterations)
        print(table(result), end="\n\n", flush=True)
        results.append(result)
    record = {
        "benchmark": "step cost, 8-Gaussians GAN (LEAD paper §6, Fig. 2)",
        "device": jax.devices()[0].device_kind,
        "platform": platform.platform(),
        "jax": jax.__version__,
        "steps_per_scan": steps,
        "rounds": rounds,
        "gradients_per": GRADIENTS_PER,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "step_cost_quick" if args.quick else "step_cost"
    (args.out / f"{name}.json").write_text(json.dumps(record, indent=1))
    plot(results, args.out / f"{name}.png")
    print(f"wrote {args.out / name}.json and .png")
    return record


if __name__ == "__main__":
    main()
