"""Cost per step of game optimizers on the 8-Gaussians GAN: time and XLA FLOPs, against hand-written JAX.

Reproduces the LEAD paper's §6 / Fig. 2 cost comparison in JAX: generator and discriminator
are the App. I.1 MLPs (four affine layers with ReLU, z ∈ R^64, batch 128) at several widths, on
the zero-sum (saturating) GAN and on two general-sum ones (non-saturating, hinge). For each
width and loss the script times, interleaved over several rounds so that every measurement
sees the same machine load, one gradient (each player's gradient of its own loss, written by
hand with ``jax.grad``), each method's step in gamejax, and the same method written by hand in
plain JAX and Optax (:func:`hand_written`: the losses, ``jax.grad``/``jvp``/``vjp``/``linearize``
and ``optax.adam``; never gamejax) — each as a ``lax.scan`` of steps so dispatch is amortized —
and reports medians of per-round ratios. Beside every time it reports XLA's FLOP count of the
compiled step (``compiled.cost_analysis()["flops"]``, deterministic): the step's FLOPs over one
gradient's and over the hand-written step's. XLA counts a loop body once, so for ACGD (whose
solver is a ``while_loop``) the FLOPs are those of the program with one pass through each loop,
not of the iterations run; its products are counted in its state instead.

Each method gets two predictions. The papers' accounting of gradient-equivalents (LEAD paper
§6): a field evaluation, a player's gradient with its mixed product and a Jacobian-vector
product count 1, a double-backward vjp 2 (LEAD ≈ 2, Extra-Adam ≈ 2, consensus ≈ 3, ACGD with
k CG matrix-vector products, true-residual checks included, ≈ 3 + 2k). And, on the zero-sum
game, the method's bare derivative program (its products at the points it evaluates them, no
optimizer or state) timed alone in the same run ("blocks"). Target: within 1.2× of the papers'
count; gamejax's step within noise of the hand-written one.

    python benchmarks/step_cost.py                 # widths 64, 256; three losses; writes JSON + PNG
    python benchmarks/step_cost.py --quick         # width 32, two losses, five methods (CI)
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import platform
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import gamejax as gj
from gamejax import derivatives

LATENT, BATCH = 64, 128
LOSSES = ("saturating", "non-saturating", "hinge")


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


# ---------------------------------------------------------------------------------------------
# The GAN: its losses in plain JAX, and the gamejax game built from them


class PlainLosses(NamedTuple):
    """A GAN's two losses in plain JAX, functions of ``(generator state, discriminator state, batch)``.

    ``loss_x`` is the generator's, ``loss_y`` the discriminator's (each minimizes its own);
    ``zero_sum``: ``loss_y = −loss_x``.
    """

    loss: str
    zero_sum: bool
    loss_x: Callable
    loss_y: Callable


def module_losses(loss: str) -> tuple[bool, Callable, Callable]:
    """``(zero_sum, loss_x, loss_y)``: the GAN loss as functions ``fn(generator, discriminator, batch)`` of two modules.

    Written by hand (no gamejax); ``batch = (real, noise)``, the discriminator returns logits.
    Saturating: ``min_G max_D E log σ(D(x)) + E log(1 − σ(D(G(z))))`` (Goodfellow et al. 2014),
    ``loss_y = −loss_x``; non-saturating: the generator minimizes ``−E log σ(D(G(z)))`` instead;
    hinge: ``D`` minimizes ``E relu(1 − D(x)) + E relu(1 + D(G(z)))``, ``G`` minimizes
    ``−E D(G(z))`` (Lim & Ye 2017).
    """
    if loss == "saturating":

        def f(generator, critic, batch):
            real, z = batch
            return jnp.mean(jax.nn.log_sigmoid(critic(real))) + jnp.mean(jax.nn.log_sigmoid(-critic(generator(z))))

        return True, f, lambda generator, critic, batch: -f(generator, critic, batch)
    if loss == "non-saturating":

        def loss_x(generator, critic, batch):
            return jnp.mean(jax.nn.softplus(-critic(generator(batch[1]))))

        def loss_y(generator, critic, batch):
            real, z = batch
            return jnp.mean(jax.nn.softplus(-critic(real))) + jnp.mean(jax.nn.softplus(critic(generator(z))))

        return False, loss_x, loss_y
    if loss == "hinge":

        def loss_x(generator, critic, batch):
            return -jnp.mean(critic(generator(batch[1])))

        def loss_y(generator, critic, batch):
            real, z = batch
            return jnp.mean(jax.nn.relu(1 - critic(real))) + jnp.mean(jax.nn.relu(1 + critic(generator(z))))

        return False, loss_x, loss_y
    raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}.")


def plain_losses(loss: str, g_def: Any, d_def: Any) -> PlainLosses:
    """:func:`module_losses` on the two networks' ``nnx.State`` (merged with their graph definitions)."""
    zero_sum, loss_x, loss_y = module_losses(loss)

    def on_states(fn):
        return lambda g, d, batch: fn(nnx.merge(g_def, g), nnx.merge(d_def, d), batch)

    return PlainLosses(loss, zero_sum, on_states(loss_x), on_states(loss_y))


class GAN(NamedTuple):
    game: gj.Game  # gamejax's game on the plain losses
    params: gj.Players  # (generator state, discriminator state)
    sample: Callable[[jax.Array], tuple]  # key -> (real, noise)
    losses: PlainLosses


def gan(width: int, loss: str = "saturating") -> GAN:
    """The 8-Gaussians GAN at ``width``: gamejax's game and the same losses in plain JAX."""
    g_def, g_state = nnx.split(mlp([LATENT, width, width, width, 2], 0))
    d_def, d_state = nnx.split(mlp([2, width, width, width, 1], 1))
    losses = plain_losses(loss, g_def, d_def)
    name = f"8-Gaussians GAN ({loss}, width {width})"
    if losses.zero_sum:
        game = gj.zero_sum(losses.loss_x, name=name)
    else:
        game = gj.general_sum(losses.loss_x, losses.loss_y, name=name)

    def sample(key):
        kr, kz = jax.random.split(key)
        return eight_gaussians(kr, BATCH), jax.random.normal(kz, (BATCH, LATENT))

    return GAN(game, gj.Players(g_state, d_state), sample, losses)


def gan_game(width: int, loss: str = "saturating") -> tuple[gj.Game, gj.Players, Callable[[jax.Array], tuple]]:
    """``(game, params, sample)`` of :func:`gan`."""
    return gan(width, loss)[:3]


# ---------------------------------------------------------------------------------------------
# The methods, in gamejax and by hand

# ACGD's hyperparameters (ICR paper, App. A.5: α = 1e-4). The fixed-iteration row uses α = 1e-2:
# at 1e-4 the solve reaches float32 round-off within 2-3 iterations near the initial point, and the
# remaining ones would only repeat true-residual checks (gamejax) or stop (jax.scipy), so the two
# sides would not do the same work; at 1e-2 all iterations do real work in both.
ALPHA, ALPHA_FIXED, BETA2, EPS = 1e-4, 1e-2, 0.99, 1e-5


def methods(acgd_iterations: int) -> dict[str, tuple[gj.GameTransformation, dict[str, int | None]]]:
    """Each method with its evaluations per step.

    ``field`` = field evaluations (one gradient of each player); ``player_product`` = one
    player's gradient together with its mixed product along the opponent (LEAD's unit: one
    double-backward in the paper's PyTorch accounting); ``vjp`` = a vector-Jacobian product of
    the field (consensus: double backpropagation); ``jvp`` = a Jacobian(-block)-vector product
    of the once-linearized field (SGA, and CG: two per matrix-vector product plus two).
    """
    adam = optax.adam(1e-4, b1=0.5)
    return {
        "GDA (Adam)": (gj.gda(adam), {"field": 1}),
        "OGDA (Adam)": (gj.optimistic(adam), {"field": 1}),
        "Extra-Adam": (gj.extragradient(adam), {"field": 2}),
        "LEAD-Adam": (gj.lead(adam, coupling=gj.Players(0.0, 0.3), alternating=True), {"player_product": 2}),
        "consensus (Adam)": (gj.consensus(10.0)(gj.gda(adam)), {"field": 1, "vjp": 1}),
        "SGA (Adam)": (gj.sga(1.0)(gj.gda(adam)), {"field": 1, "jvp": 2}),
        acgd_name(acgd_iterations): (
            gj.acgd(ALPHA_FIXED, beta2=BETA2, eps=EPS, tol=0.0, maxiter=acgd_iterations),
            {"field": 1, "jvp": None},
        ),
        ACGD_TOL: (gj.acgd(ALPHA, beta2=BETA2, eps=EPS, tol=1e-4, maxiter=100), {"field": 1, "jvp": None}),
    }


def acgd_name(iterations: int) -> str:
    return f"ACGD (α 1e-2, {iterations} its)"


ACGD_TOL = "ACGD (α 1e-4, tol 1e-4)"


# The papers' accounting in gradient-equivalents (LEAD paper §6: LEAD ≈ 2 gradients, consensus ≈ 3).
GRADIENTS_PER = {"field": 1, "player_product": 1, "vjp": 2, "jvp": 1}


def _tmap(fn: Callable, *trees):
    return jax.tree.map(fn, *trees)


def plain_field(losses: PlainLosses) -> Callable:
    """``(g, d, batch) -> (∇_g loss_x, ∇_d loss_y)`` with ``jax.grad``, as a user writes it.

    Zero-sum: one backward pass of ``f`` for both players (``loss_y = −f``); general-sum: each
    player's gradient of its own loss.
    """
    if losses.zero_sum:

        def field(g, d, batch):
            gx, gy = jax.grad(losses.loss_x, argnums=(0, 1))(g, d, batch)
            return gx, _tmap(jnp.negative, gy)

    else:

        def field(g, d, batch):
            return jax.grad(losses.loss_x)(g, d, batch), jax.grad(losses.loss_y, argnums=1)(g, d, batch)

    return field


class HandWritten(NamedTuple):
    init: Callable  # (g, d) -> carry
    step: Callable  # (carry, batch) -> carry


def hand_written(losses: PlainLosses, acgd_iterations: int) -> dict[str, HandWritten]:
    """Every method of :func:`methods`, written by hand in plain JAX and Optax (never gamejax).

    The same formulas as the gamejax methods, from the papers: GDA and OGDA (Daskalakis et al.
    2018, the optimistic gradient ``2v_t − v_{t−1}`` fed to Adam), Extra-Adam (Gidel et al. 2019,
    Alg. 4: the extrapolation advances Adam's state), LEAD-Adam (Hemmat et al., App. G, Alg. 2:
    ``x`` first, then ``y`` at the new ``x``), consensus (Mescheder et al. 2017, ``v + γJᵀv``),
    SGA (Balduzzi et al. 2018, ``v + λ·½(Jᵀ − J)v``) and ACGD (Schäfer et al. 2020, App. A.5, in
    gamejax's convention: ``(I − A_x^½ J_xy A_y J_yx A_x^½) u = −A_x^½ (v_x − J_xy A_y v_y)``,
    ``Δx = A_x^½ u``, ``Δy = −A_y (v_y + J_yx Δx)``), solved with ``jax.scipy``'s CG (zero-sum)
    or GMRES(20) (general-sum, as gamejax's default) from the previous solution.
    """
    field = plain_field(losses)
    adam = optax.adam(1e-4, b1=0.5)
    own_x = jax.grad(losses.loss_x)
    own_y = jax.grad(losses.loss_y, argnums=1)

    def adam_init(g, d):
        return adam.init(g), adam.init(d)

    def adam_step(params, states, grads):
        (g, d), (sg, sd) = params, states
        ug, sg = adam.update(grads[0], sg, g)
        ud, sd = adam.update(grads[1], sd, d)
        return (optax.apply_updates(g, ug), optax.apply_updates(d, ud)), (sg, sd)

    def gda(carry, batch):
        params, states = carry
        return adam_step(params, states, field(*params, batch))

    def ogda(carry, batch):
        params, states, previous, first = carry
        grads = field(*params, batch)
        previous = _tmap(lambda c, p: jnp.where(first, c, p), grads, previous)
        params, states = adam_step(params, states, _tmap(lambda c, p: 2 * c - p, grads, previous))
        return params, states, grads, jnp.zeros_like(first)

    def extra_adam(carry, batch):
        params, states = carry
        half, half_states = adam_step(params, states, field(*params, batch))
        return adam_step(params, half_states, field(*half, batch))

    def lead(carry, batch):
        (g, d), (sg, sd), (g_prev, d_prev) = carry
        vx, jxy = jax.jvp(lambda d_: own_x(g, d_, batch), (d,), (_tmap(jnp.subtract, d, d_prev),))
        ug, sg = adam.update(_tmap(lambda a, b: a + 0.0 * b, vx, jxy), sg, g)
        g_new = optax.apply_updates(g, ug)
        vy, jyx = jax.jvp(lambda g_: own_y(g_, d, batch), (g_new,), (_tmap(jnp.subtract, g_new, g),))
        ud, sd = adam.update(_tmap(lambda a, b: a + 0.3 * b, vy, jyx), sd, d)
        return (g_new, optax.apply_updates(d, ud)), (sg, sd), (g, d)

    def consensus(carry, batch):
        params, states = carry
        v, pullback = jax.vjp(lambda g, d: field(g, d, batch), *params)
        return adam_step(params, states, _tmap(lambda a, b: a + 10.0 * b, v, pullback(v)))

    def sga(carry, batch):
        params, states = carry
        v, jvp = jax.linearize(lambda p: field(*p, batch), params)
        (jtv,) = jax.linear_transpose(jvp, params)(v)
        return adam_step(params, states, _tmap(lambda a, t, j: a + 0.5 * (t - j), v, jtv, jvp(v)))

    def acgd(alpha, tol, maxiter):
        if losses.zero_sum:
            solve = functools.partial(jax.scipy.sparse.linalg.cg, maxiter=maxiter)
        else:  # gamejax's default GMRES(20); jax.scipy's maxiter counts restarts, and its
            # "incremental" method (Givens rotations, as gamejax's) stops inside a cycle at the tolerance
            restart = min(20, maxiter)
            solve = functools.partial(
                jax.scipy.sparse.linalg.gmres,
                restart=restart,
                maxiter=-(-maxiter // restart),
                solve_method="incremental",
            )

        def step(carry, batch):
            (g, d), (nu_g, nu_d), count, guess = carry
            (vx, vy), jvp = jax.linearize(lambda g, d: field(g, d, batch), g, d)
            count = count + 1
            nu_g = _tmap(lambda n, v: BETA2 * n + (1 - BETA2) * v**2, nu_g, vx)
            nu_d = _tmap(lambda n, v: BETA2 * n + (1 - BETA2) * v**2, nu_d, vy)
            correction = 1 - BETA2**count
            ax, ay = (
                _tmap(lambda n: (alpha / (jnp.sqrt(n / correction) + EPS)).astype(n.dtype), nu) for nu in (nu_g, nu_d)
            )
            root = _tmap(jnp.sqrt, ax)
            zeros_g, zeros_d = _tmap(jnp.zeros_like, g), _tmap(jnp.zeros_like, d)

            def jxy(w):
                return jvp(zeros_g, w)[0]

            def jyx(u):
                return jvp(u, zeros_d)[1]

            def matvec(u):
                return _tmap(
                    jnp.subtract,
                    u,
                    _tmap(jnp.multiply, root, jxy(_tmap(jnp.multiply, ay, jyx(_tmap(jnp.multiply, root, u))))),
                )

            rhs = _tmap(lambda r, a, b: -r * (a - b), root, vx, jxy(_tmap(jnp.multiply, ay, vy)))
            u, _ = solve(matvec, rhs, x0=guess, tol=tol, atol=0.0)
            dx = _tmap(jnp.multiply, root, u)
            dy = _tmap(lambda a, v, j: -a * (v + j), ay, vy, jyx(dx))
            return (_tmap(jnp.add, g, dx), _tmap(jnp.add, d, dy)), (nu_g, nu_d), count, u

        def init(g, d):
            zeros = _tmap(jnp.zeros_like, (g, d))
            return (g, d), zeros, jnp.zeros([], jnp.int32), zeros[0]

        return HandWritten(init, step)

    return {
        "GDA (Adam)": HandWritten(lambda g, d: ((g, d), adam_init(g, d)), gda),
        "OGDA (Adam)": HandWritten(
            lambda g, d: ((g, d), adam_init(g, d), _tmap(jnp.zeros_like, (g, d)), jnp.ones([], bool)), ogda
        ),
        "Extra-Adam": HandWritten(lambda g, d: ((g, d), adam_init(g, d)), extra_adam),
        "LEAD-Adam": HandWritten(lambda g, d: ((g, d), adam_init(g, d), (g, d)), lead),
        "consensus (Adam)": HandWritten(lambda g, d: ((g, d), adam_init(g, d)), consensus),
        "SGA (Adam)": HandWritten(lambda g, d: ((g, d), adam_init(g, d)), sga),
        acgd_name(acgd_iterations): acgd(ALPHA_FIXED, 0.0, acgd_iterations),
        ACGD_TOL: acgd(ALPHA, 1e-4, 100),
    }


# ---------------------------------------------------------------------------------------------
# Compiled scans: a thunk to time and the program's FLOPs


def flops_of(compiled: Any) -> float:
    """XLA's FLOP count of a compiled program (``cost_analysis``: a dict, or a list of one in older JAX)."""
    analysis = compiled.cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))


class Program(NamedTuple):
    thunk: Callable[[], object]  # runs the compiled scan once on its fixed input
    flops: float  # XLA's count: the scan body once, i.e. one step


def scan_program(body: Callable, carry, n: int) -> Program:
    """``carry ↦ body(carry)`` ``n`` times in one compiled ``lax.scan``, and its FLOPs.

    XLA's cost analysis counts a loop body once, so the FLOPs are one step's.
    """
    run = jax.jit(lambda c: jax.lax.scan(lambda c, _: (body(c), None), c, None, length=n)[0])
    compiled = run.lower(carry).compile()
    jax.block_until_ready(compiled(carry))  # warm up
    return Program(lambda: compiled(carry), flops_of(compiled))


def compiled_scan(body: Callable, carry, n: int) -> Callable[[], object]:
    """A thunk running ``carry ↦ body(carry)`` ``n`` times in one compiled ``lax.scan``."""
    return scan_program(body, carry, n).thunk


def method_scan(game: gj.Game, tx: gj.GameTransformation, params: gj.Players, batch, n: int) -> tuple[Callable, object]:
    """A thunk running ``n`` steps of ``tx`` from its initial state in one compiled scan, and its final carry."""
    program, final = method_program(game, tx, params, batch, n)
    return program.thunk, final


def method_program(
    game: gj.Game, tx: gj.GameTransformation, params: gj.Players, batch, n: int
) -> tuple[Program, object]:
    """:func:`method_scan` with the step's FLOPs."""
    step = gj.make_step(game, tx)

    def body(carry):
        p, s, _ = step(*carry, batch)
        return p, s

    program = scan_program(body, (params, tx.init(params)), n)
    return program, jax.block_until_ready(program.thunk())


def hand_program(method: HandWritten, params: gj.Players, batch, n: int) -> Program:
    return scan_program(lambda carry: method.step(carry, batch), method.init(*params), n)


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


def relative_difference(a, b, start) -> float:
    """``max |a − b| / max |a − start|`` over all leaves: how far two runs end apart, per distance travelled."""
    gap = max(float(jnp.max(jnp.abs(u - w))) for u, w in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    moved = max(float(jnp.max(jnp.abs(u - w))) for u, w in zip(jax.tree.leaves(a), jax.tree.leaves(start), strict=True))
    return gap / max(moved, 1e-30)


def _nudge(p, t):
    return jax.tree.map(lambda a, b: a + 1e-12 * b, p, t)


def gradient_body(losses: PlainLosses, batch) -> Callable:
    """One gradient (each player's gradient of its own loss, by hand) per scan iteration: the unit."""
    field = plain_field(losses)

    def body(carry):
        p, t = carry
        return _nudge(p, gj.Players(*field(*p, batch))), t

    return body


def unit_bodies(game: gj.Game, batch) -> dict[str, Callable]:
    """The derivative building blocks of the methods (gamejax's derivatives), one per scan iteration.

    Every body moves *both* players by a tiny amount of its result, so no part of the work is
    loop-invariant (XLA would hoist it out of the scan), and products use an independent
    random tangent carried along (a tangent equal to the params would let XLA merge tangent and
    primal work).
    """

    def player_product(player):
        other = "y" if player == "x" else "x"

        def body(carry):
            p, t = carry
            _, product = derivatives.player_field_jvp(game, p, batch, player, getattr(t, other))
            return _nudge(p, p._replace(**{player: product})), t  # the other player moves along itself

        return body

    def lead_alternating(carry):  # LEAD-Adam's derivatives: x's product, then y's at the new x
        p, t = carry
        vx, px = derivatives.player_field_jvp(game, p, batch, "x", t.y)
        x_new = jax.tree.map(lambda a, g: a - 1e-6 * g, p.x, vx)
        step_x = jax.tree.map(jnp.subtract, x_new, p.x)
        vy, py = derivatives.player_field_jvp(game, p._replace(x=x_new), batch, "y", step_x)
        return _nudge(p, gj.Players(px, jax.tree.map(jnp.add, vy, py))), t

    def field_and_vjp(carry):
        p, t = carry
        v, pullback, _ = derivatives.field_vjp(game, p, batch)
        return _nudge(p, pullback(v)), t

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
            return _nudge(p, out), t

        return body

    return {
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


# ---------------------------------------------------------------------------------------------
# One width and loss


def measure(width: int, loss: str, n: int, rounds: int, acgd_iterations: int, names: list[str], units: bool) -> dict:
    """Per-step costs at one width and loss, from ``rounds`` interleaved timings (median of per-round ratios)."""
    model = gan(width, loss)
    game, params = model.game, model.params
    batch = model.sample(jax.random.key(0))
    direction = random_direction(params, jax.random.key(1))
    programs = {"gradient": scan_program(gradient_body(model.losses, batch), (params, direction), n)}
    if units:
        for name, body in unit_bodies(game, batch).items():
            programs[name] = scan_program(body, (params, direction), n)
    hand = hand_written(model.losses, acgd_iterations)
    counts, final_states, agreement = {}, {}, {}
    for name, (tx, method_counts) in methods(acgd_iterations).items():
        if name not in names:
            continue
        programs[name], (final_params, final_states[name]) = method_program(game, tx, params, batch, n)
        programs[f"{name} [hand-written]"] = hand_program(hand[name], params, batch, n)
        hand_params = gj.Players(*jax.block_until_ready(programs[f"{name} [hand-written]"].thunk())[0])
        agreement[name] = relative_difference(final_params, hand_params, params)
        counts[name] = dict(method_counts)
    seconds = interleaved({name: program.thunk for name, program in programs.items()}, rounds, n)
    gradient = seconds["gradient"]

    def in_gradients(name):
        return float(np.median(seconds[name] / gradient))

    unit_costs = {}
    if units:
        linearize = in_gradients("linearize")
        unit_costs = {
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
    gradient_flops = programs["gradient"].flops
    rows = []
    for name, method_counts in counts.items():
        if method_counts.get("jvp", 0) is None:
            # CG/GMRES: two products per matrix-vector product, and the solver's matrix-vector
            # products include its warm start and true-residual checks; ACGD reports its passes
            # (3 + 2 per matvec) in its state, so the mean over the n steps gives each step's.
            state = final_states[name]
            passes = float(state.evaluations.value) / n
            method_counts.update(jvp=passes - 1, cg_iterations=int(state.iterations), matvecs=int(state.matvecs))
        accounted = sum(GRADIENTS_PER[k] * v for k, v in method_counts.items() if k in GRADIENTS_PER)
        measured = in_gradients(name)
        hand_name = f"{name} [hand-written]"
        row = {
            "method": name,
            "ms_per_step": 1e3 * float(np.median(seconds[name])),
            "gradients_per_step": measured,
            "flops": programs[name].flops,
            "flops_per_gradient": programs[name].flops / gradient_flops,
            "hand_written": {
                "ms_per_step": 1e3 * float(np.median(seconds[hand_name])),
                "gradients_per_step": in_gradients(hand_name),
                "flops": programs[hand_name].flops,
            },
            "time_over_hand_written": float(np.median(seconds[name] / seconds[hand_name])),
            "flops_over_hand_written": programs[name].flops / programs[hand_name].flops,
            "flops_exact": "ACGD" not in name,  # a while loop's body is counted once
            # max |gamejax − hand-written| after the n steps, relative to the largest displacement
            "difference_to_hand_written": agreement[name],
            "counts": method_counts,
            "papers_accounting": accounted,
            "measured_over_papers_accounting": measured / accounted,
        }
        if units:
            from_units = unit_prediction(method_counts, unit_costs)
            row.update(predicted_from_units=from_units, measured_over_units=measured / from_units)
        rows.append(row)
    return {
        "width": width,
        "loss": loss,
        "zero_sum": model.losses.zero_sum,
        "gradient_ms": 1e3 * float(np.median(gradient)),
        "gradient_ms_spread": [1e3 * float(gradient.min()), 1e3 * float(gradient.max())],
        "gradient_flops": gradient_flops,
        "unit_costs_in_gradients": unit_costs,
        "methods": rows,
    }


def plot(results: list[dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["method"] for row in results[0]["methods"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    x = np.arange(len(names))
    bar = 0.8 / len(results)
    for i, result in enumerate(results):
        label = f"{result['loss']}, width {result['width']}"
        rows = {row["method"]: row for row in result["methods"]}
        left.bar(x + i * bar, [rows[m]["gradients_per_step"] for m in names], bar, label=label)
        right.bar(x + i * bar, [rows[m]["time_over_hand_written"] for m in names], bar, label=label)
        right.plot(x + i * bar, [rows[m]["flops_over_hand_written"] for m in names], "k_", markersize=9)
    right.axhline(1.0, color="gray", lw=0.8)
    for ax, label in ((left, "step time / one gradient"), (right, "gamejax / hand-written (bars: time, —: FLOPs)")):
        ax.set_xticks(x + bar * (len(results) - 1) / 2, names, rotation=35, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    left.legend(fontsize=7)
    fig.suptitle("Cost per step on the 8-Gaussians GAN (LEAD paper §6, Fig. 2), CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(result: dict) -> str:
    lines = [
        f"{result['loss']} GAN, width {result['width']}: one gradient = {result['gradient_ms']:.3f} ms, "
        f"{result['gradient_flops']:.3g} FLOPs"
    ]
    if result["unit_costs_in_gradients"]:
        lines.append(
            "measured building blocks (gradients): "
            + ", ".join(f"{k} {v:.2f}" for k, v in result["unit_costs_in_gradients"].items())
        )
    lines.append(
        f"{'method':<22} {'ms/step':>8} {'×grad':>6} {'FLOPs×grad':>10} {'÷hand t':>8} {'÷hand FLOPs':>11} "
        f"{'papers':>7} {'ratio':>6}  counts"
    )
    for row in result["methods"]:
        exact = "" if row["flops_exact"] else "*"
        lines.append(
            f"{row['method']:<22} {row['ms_per_step']:>8.3f} {row['gradients_per_step']:>6.2f} "
            f"{row['flops_per_gradient']:>9.2f}{exact:1} {row['time_over_hand_written']:>8.2f} "
            f"{row['flops_over_hand_written']:>10.3f}{exact:1} {row['papers_accounting']:>7.2f} "
            f"{row['measured_over_papers_accounting']:>6.2f}  {row['counts']}"
        )
    return "\n".join(lines)


QUICK_METHODS = ("GDA (Adam)", "Extra-Adam", "LEAD-Adam", "consensus (Adam)")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,256", help="comma-separated hidden widths")
    parser.add_argument("--losses", default=",".join(LOSSES), help=f"comma-separated, of {LOSSES}")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed scan")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (medians are reported)")
    parser.add_argument("--acgd-iterations", type=int, default=10, help="solver iterations of the fixed-iteration ACGD")
    parser.add_argument("--quick", action="store_true", help="width 32, two losses, five methods (CI smoke run)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/step_cost"))
    args = parser.parse_args(argv)
    all_names = list(methods(args.acgd_iterations))
    if args.quick:
        widths, losses, steps, rounds = [32], ["saturating", "non-saturating"], 3, 2
        names = [*QUICK_METHODS, acgd_name(args.acgd_iterations)]
    else:
        widths = [int(w) for w in args.widths.split(",")]
        losses, steps, rounds, names = args.losses.split(","), args.steps, args.rounds, all_names
    results = []
    for width in widths:
        for loss in losses:
            # The building blocks (gamejax's derivative programs alone) on the zero-sum game only.
            result = measure(
                width, loss, steps, rounds, args.acgd_iterations, names, units=loss == "saturating" and not args.quick
            )
            print(table(result), end="\n\n", flush=True)
            results.append(result)
    record = {
        "benchmark": "step cost, 8-Gaussians GAN (LEAD paper §6, Fig. 2), gamejax against hand-written JAX",
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
