"""ACGD in gamejax against the public CGD packages, and ``gda`` against hand-written Optax.

An optional benchmark (``pip install -e ".[peers,examples]" torch==2.13.0``; never required by
CI). On the 8-Gaussians GAN of ``step_cost.py`` (LEAD App. I.1: generator ``z ∈ R^64 → 2`` and
discriminator ``2 → 1``, four affine layers with ReLU, batch 128, ``gj.data.ring()``), with the
zero-sum saturating loss so that every ACGD solves its system by conjugate gradient, it runs
ACGD (ICR paper, App. A.5, Alg. 1) in

- gamejax: ``gj.acgd(lr, beta2=, eps=, tol=0, maxiter=k)``, one ``jax.jit`` of ``gj.make_step``
  called per step (also timed as a ``lax.scan`` of steps);
- jax-cgd (JAX): its ACGD update ``jax_cgd.acgd.step_func`` with its ``solvers.CG(tol=0,
  atol=0, max_iter=k)``, jitted per step as its ``ACGD`` class does (the class closes over one
  fixed batch; here the batch is an argument so every step sees the same data as gamejax's);
- cgds (the ICR authors' PyTorch optimizer, when PyTorch is installed): ``CGDs.ACGD`` with
  ``tol=0, atol=0``; its ``step`` has no iteration cap, so the benchmark passes ``nsteps=k`` to its
  CG routine (a wrapper around ``CGDs.acgd.general_conjugate_gradient``).

All start from the same initial point (the NNX arrays, flattened for jax-cgd, copied to torch
tensors for cgds) and see the same fixed batches (step ``t`` uses batch ``t mod B``). With ``tol =
0`` every solver runs exactly ``k`` iterations. A warm-started solve costs one more product with
the system's matrix (the residual of the warm start): gamejax warm-starts from its last solution,
cgds from its last solution or the opponent's (it alternates which player it solves for);
jax-cgd starts from zero (its warm start is a Python attribute set while tracing, so the compiled
step never sees it), and XLA folds its ``A·0`` away, so it does ``k`` products. gamejax with
``warm_start=False`` (also timed) does ``k`` too. Each product is two mixed second-derivative
products: jvps of the linearized field in gamejax, forward-over-reverse products written from
scratch in jax-cgd (XLA hoists their loop-invariant primal work out of the CG loop: both compiled
loop bodies hold the same number of matrix multiplications), double-backward in cgds.

Reported per width, float32: median per-step time over interleaved rounds (after compilation
and warm-up; ``block_until_ready`` for JAX, PyTorch on CPU is synchronous; every other round in
reverse order), gamejax's speedup as the median of per-round ratios, CG iterations and matrix
products per step. Then, in float64 and a short run, the distance between the trajectories
relative to gamejax's displacement, ``‖θ_peer − θ_gamejax‖ / ‖θ_gamejax − θ_0‖``, after one and
after N steps: (a) with ``β₂ = 0`` and converged solves, where the three updates are the same
formula (a check that the game, data and initial point are identical); (b) with the paper's
``β₂ = 0.99, ε = 1e-5`` and converged solves: the peers apply the bias correction to the step
size, ``α√(1 − β₂ᵗ)/(√ν + ε)``, where Alg. 1 and gamejax correct ``ν`` before adding ε,
``α/(√(ν/(1 − β₂ᵗ)) + ε)``; (c) with the timed solves (``β₂ = 0``, ``k`` iterations), where the
warm starts differ (jax-cgd is compared with gamejax's ``warm_start=False``) and CG's unconverged
iterates are sensitive to rounding.

Step sizes: (a) and (b) use the paper's ``α = 1e-4``; the timed runs and (c) use ``α = 1e-2``.
At ``α = 1e-4`` the local game is so weakly coupled near the initial point that CG reaches the
float32 round-off in about five iterations, and with ``tol = 0`` the peers' CG then divides 0 by 0
(cgds raises "vector nan"; gamejax's CG guards that division). At ``α = 1e-2`` CG needs 20–40
iterations to reach 1e-6, so all ``k = 10`` timed iterations do real work. PyTorch runs on one
thread (``--torch-threads``): its OpenMP threads spin, and on the shared 2-core machine two of
them made cgds up to 20× slower (≈ 730 against 33 ms per step at width 64 under load).

First-order overhead: ``gj.gda(optax.adam(...))`` against a hand-written jitted simultaneous
GDA with ``optax.adam`` on both players (``jax.grad`` of the same loss), both per-step calls and
``lax.scan``s; gamejax's must cost no more. Targets: gamejax's ACGD at least 1.5× faster per step
than the fastest peer at equal CG iterations, and ``gda`` within 5 % (timing noise) of hand-written
Optax. A peer that is not installed is skipped with a message.

    python benchmarks/peers.py                    # widths 64, 256; writes benchmarks/results/peers.json + .png
    python benchmarks/peers.py --quick            # a smoke run (CI runs it without the peers)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.metadata
import importlib.util
import os
import pathlib
import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import claim, figure, report
from flax import nnx

import gamejax as gj
from gamejax.flax import MLP

NAME = "peers"
TARGETS = (
    "Targets (issue): gamejax's ACGD at least 1.5x faster per step than the fastest public peer (jax-cgd, cgds) "
    "on the 8-Gaussians GAN at equal CG iterations; gamejax's gda costs no more than hand-written Optax GDA."
)
LATENT, BATCH, DEPTH = 64, 128, 3
PAPER_LR, BETA2, EPS = 1e-4, 0.99, 1e-5  # the ICR paper's ACGD settings (Alg. 1)
LR = 1e-2  # the timed runs' step size (see the docstring: at 1e-4, CG is done in ~4 iterations)
GDA_STEPS_FACTOR = 20  # first-order steps are cheap: time more of them per round
ADAM = {"learning_rate": 1e-4, "b1": 0.5}
CONVERGED_TOL, CONVERGED_MAXITER = 1e-10, 2000  # the trajectory check's "exact" solves
GDA_TOLERANCE = 1.05  # "no more than" plain Optax, up to timing noise
SPEEDUP_TARGET = 1.5
QUICK_DEPTH = 1  # --quick: one hidden layer and XLA's cheap compilation, a smoke run
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}
_compiler_options: dict | None = None  # FAST_COMPILE under --quick


def _jit(fn: Callable) -> Callable:
    return jax.jit(fn, compiler_options=_compiler_options)


PEERS = {
    "jax-cgd": {"module": "jax_cgd", "install": "pip install jax-cgd==1.0.4", "needs": []},
    "cgds": {"module": "CGDs", "install": "pip install cgds==0.4.5 torch==2.13.0", "needs": ["torch"]},
}


# ---------------------------------------------------------------------------------------------
# The game, its data and initial point


class Problem(NamedTuple):
    pair: gj.flax.ModulePair
    game: gj.Game
    value: Callable  # value(x_state, y_state, batch): the saturating GAN objective f (x minimizes, y maximizes)
    params: gj.Players  # float32 NNX states
    batches: list  # fixed GANBatches, step t uses batches[t % len(batches)]


@functools.lru_cache(maxsize=4)
def problem(width: int, n_batches: int, depth: int = DEPTH, seed: int = 0) -> Problem:
    def modules():  # the networks of _gan.mlp_pair, initialized in one compiled program (not op by op)
        rngs = nnx.Rngs(seed)
        return MLP((LATENT, *[width] * depth, 2), rngs=rngs), MLP((2, *[width] * depth, 1), rngs=rngs)

    pair = gj.flax.split(*nnx.jit(modules)())
    loss = gj.gan.saturating()

    def value(x, y, batch):
        generator, discriminator = pair.merge(gj.Players(x, y))
        return loss.generator(generator, discriminator, batch)

    sample = gj.gan.batch_sampler(gj.data.ring().sample, noise_dim=LATENT, batch_size=BATCH)
    stacked = jax.jit(jax.vmap(sample))(jax.random.split(jax.random.key(seed + 1), n_batches))  # one compilation
    real, noise, key = np.asarray(stacked.real), np.asarray(stacked.noise), jax.random.key(seed)  # (the key is unused)
    batches = [gj.gan.GANBatch(jnp.asarray(real[i]), jnp.asarray(noise[i]), key) for i in range(n_batches)]
    return Problem(pair, pair.game(loss), value, pair.params, batches)


def cast(tree: Any, dtype: Any) -> Any:
    """Floating leaves of ``tree`` in ``dtype`` (PRNG keys and integers untouched)."""

    def leaf(a):  # through NumPy: no compilation per shape
        return jnp.asarray(np.asarray(a).astype(dtype)) if jnp.issubdtype(jnp.result_type(a), jnp.floating) else a

    return jax.tree.map(leaf, tree)


def layer_arrays(prob: Problem, params: gj.Players) -> list[np.ndarray]:
    """``[kernel, bias]`` of every affine layer, generator first: the order the peers' copies use."""
    modules = prob.pair.merge(params)
    return [np.asarray(a) for m in modules for layer in m.layers for a in (layer.kernel[...], layer.bias[...])]


def flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(a, np.float64)) for a in arrays])


def stack_batches(batches: list, n: int) -> Any:
    return jax.tree.map(lambda *a: jnp.stack(a), *[batches[t % len(batches)] for t in range(n)])


# ---------------------------------------------------------------------------------------------
# Runners: each advances one step per ``step()``; ``sync()`` waits for the device.


class Runner:
    name: str
    fixed_iterations: bool = False  # iterations forced by tol = 0 and not reported by the package

    def step(self) -> None: ...

    def run(self, n: int) -> None:
        for _ in range(n):
            self.step()

    def sync(self) -> None: ...

    def arrays(self) -> list[np.ndarray]: ...

    def solve_counts(self) -> tuple[int | None, int | None]:
        """(CG iterations, matrix products) of the last step, where known."""
        return None, None


class GamejaxStep(Runner):
    """``jax.jit(gj.make_step(game, tx))`` called once per step (or a ``lax.scan`` of ``n`` steps)."""

    def __init__(self, name: str, prob: Problem, tx: gj.GameTransformation, dtype: Any, scan: bool = False):
        self.name, self.prob, self.tx = name, prob, tx
        self.params = cast(prob.params, dtype)
        self.state = tx.init(self.params)
        self.batches = [cast(b, dtype) for b in prob.batches]
        self.t, self.scan = 0, scan
        step = gj.make_step(prob.game, tx)
        self._step = _jit(step)

        def scanned(params, state, batches):
            def body(carry, batch):
                p, s, _ = step(*carry, batch)
                return (p, s), None

            return jax.lax.scan(body, (params, state), batches)[0]

        self._scan = _jit(scanned)
        self._stacked: dict[int, Any] = {}
        self._evaluations = (None, None)

    def step(self) -> None:
        self.params, self.state, _ = self._step(self.params, self.state, self.batches[self.t % len(self.batches)])
        self.t += 1

    def run(self, n: int) -> None:
        if not self.scan:
            return super().run(n)
        if n not in self._stacked:  # the same batch sequence as n per-step calls from step 0
            self._stacked[n] = stack_batches(self.batches, n)
        self.params, self.state = self._scan(self.params, self.state, self._stacked[n])
        self.t += n

    def sync(self) -> None:
        jax.block_until_ready((self.params, self.state))

    def arrays(self) -> list[np.ndarray]:
        return layer_arrays(self.prob, self.params)

    def step_and_count(self) -> None:
        """One step, recording its solve's matrix products from the state's evaluation counter."""
        before = gj.reported_evaluations(self.state)
        self.step()
        if before is not None:
            self._evaluations = (float(before), float(gj.reported_evaluations(self.state)))

    def solve_counts(self) -> tuple[int | None, int | None]:
        if not hasattr(self.state, "iterations"):
            return None, None
        before, after = self._evaluations
        matvecs = None if before is None else round((after - before - 3) / 2)  # 3 + 2 per product (CGDState)
        return int(self.state.iterations), matvecs


class OptaxGDA(Runner):
    """Simultaneous GDA written by hand: ``jax.grad`` of the loss, ``optax.adam`` on both players."""

    def __init__(self, prob: Problem, dtype: Any, scan: bool = False):
        self.name = "hand-written Optax GDA" + (" (lax.scan)" if scan else "")
        self.prob, self.scan, self.t = prob, scan, 0
        adam = optax.adam(**ADAM)
        x, y = cast(prob.params, dtype)
        self.carry = (x, y, adam.init(x), adam.init(y))
        self.batches = [cast(b, dtype) for b in prob.batches]

        def step(carry, batch):
            x, y, sx, sy = carry
            gx, gy = jax.grad(prob.value, argnums=(0, 1))(x, y, batch)
            ux, sx = adam.update(gx, sx, x)
            uy, sy = adam.update(jax.tree.map(jnp.negative, gy), sy, y)  # the discriminator ascends f
            return optax.apply_updates(x, ux), optax.apply_updates(y, uy), sx, sy

        self._step = _jit(step)
        self._scan = _jit(lambda carry, batches: jax.lax.scan(lambda c, b: (step(c, b), None), carry, batches)[0])
        self._stacked: dict[int, Any] = {}

    def step(self) -> None:
        self.carry = self._step(self.carry, self.batches[self.t % len(self.batches)])
        self.t += 1

    def run(self, n: int) -> None:
        if not self.scan:
            return super().run(n)
        if n not in self._stacked:
            self._stacked[n] = stack_batches(self.batches, n)
        self.carry = self._scan(self.carry, self._stacked[n])
        self.t += n

    def sync(self) -> None:
        jax.block_until_ready(self.carry)

    def arrays(self) -> list[np.ndarray]:
        return layer_arrays(self.prob, gj.Players(*self.carry[:2]))


class JaxCGD(Runner):
    """jax-cgd's ACGD update (``jax_cgd.acgd.step_func``) with its CG solver, jitted per step."""

    def __init__(self, prob: Problem, dtype: Any, *, lr: float, beta2: float, eps: float, tol: float, maxiter: int):
        self.name, self.prob, self.t = "jax-cgd ACGD", prob, 0
        self.fixed_iterations, self.maxiter = tol == 0, maxiter
        acgd = importlib.import_module("jax_cgd.acgd")
        utils = importlib.import_module("jax_cgd.utils")
        solvers = importlib.import_module("jax_cgd.solvers")
        params = cast(prob.params, dtype)
        x, x_meta = utils.pytree2array(params.x)  # what jax_cgd.ACGD.__init__ does with the pytrees
        y, y_meta = utils.pytree2array(params.y)
        self.x_meta, self.y_meta, self.utils = x_meta, y_meta, utils
        solver = solvers.CG(tol=tol, atol=0.0, max_iter=maxiter)  # one per runner: it keeps Python state

        def step(x, y, vx, vy, timestep, batch):
            def f(xa, ya):
                return prob.value(utils.array2pytree(xa, x_meta), utils.array2pytree(ya, y_meta), batch)

            return acgd.step_func(x, y, vx, vy, timestep, eta=lr, beta=beta2, eps=eps, solver=solver, f=f)

        self._step = _jit(step)
        self.carry = (x, y, jnp.zeros_like(x), jnp.zeros_like(y), jnp.zeros([], jnp.int32))
        self.batches = [cast(b, dtype) for b in prob.batches]
        self.package_iter_num = None

    def step(self) -> None:
        *self.carry, iter_num = self._step(*self.carry, self.batches[self.t % len(self.batches)])
        self.package_iter_num = iter_num
        self.t += 1

    def sync(self) -> None:
        jax.block_until_ready(self.carry)

    def arrays(self) -> list[np.ndarray]:
        x, y = self.carry[:2]
        params = gj.Players(self.utils.array2pytree(x, self.x_meta), self.utils.array2pytree(y, self.y_meta))
        return layer_arrays(self.prob, params)

    def solve_counts(self) -> tuple[int | None, int | None]:
        if not self.fixed_iterations:  # jax.scipy's CG does not say how many iterations it ran
            return None, None
        # jax.scipy's CG also forms A·x0 with x0 = 0, which XLA folds away (a dot with zeros): k products.
        return self.maxiter, self.maxiter


class CGDsACGD(Runner):
    """cgds's ``ACGD`` (eager PyTorch), its CG capped at ``maxiter`` iterations."""

    def __init__(self, prob: Problem, dtype: Any, *, lr: float, beta2: float, eps: float, tol: float, maxiter: int):
        import torch

        self.torch, self.name, self.t, self.maxiter = torch, "cgds ACGD", 0, maxiter
        self.module = importlib.import_module("CGDs.acgd")
        self.dtype = torch.float64 if jnp.dtype(dtype) == jnp.float64 else torch.float32
        arrays = layer_arrays(prob, cast(prob.params, dtype))
        tensors = [torch.tensor(a, dtype=self.dtype, requires_grad=True) for a in arrays]
        n_generator = 2 * len(prob.pair.merge().x.layers)
        self.generator, self.discriminator = tensors[:n_generator], tensors[n_generator:]
        self.optimizer = self.module.ACGD(
            max_params=self.discriminator,
            min_params=self.generator,
            lr_max=lr,
            lr_min=lr,
            eps=eps,
            beta=beta2,
            tol=tol**2,  # cgds compares squared norms: ‖r‖² < tol·‖b‖²
            atol=0.0,
        )
        self.batches = [
            (torch.tensor(np.asarray(b.real), dtype=self.dtype), torch.tensor(np.asarray(b.noise), dtype=self.dtype))
            for b in prob.batches
        ]
        self.iterations: list[int] = []

    @staticmethod
    def _mlp(torch, layers: list, h):
        for i in range(0, len(layers), 2):
            h = torch.addmm(layers[i + 1], h, layers[i])  # h @ kernel + bias, NNX's layout
            if i < len(layers) - 2:
                h = torch.relu(h)
        return h

    def loss(self, real, noise):
        torch = self.torch
        log_sigmoid = torch.nn.functional.logsigmoid
        fake = self._mlp(torch, self.generator, noise)
        d_real, d_fake = self._mlp(torch, self.discriminator, real), self._mlp(torch, self.discriminator, fake)
        return log_sigmoid(d_real).mean() + log_sigmoid(-d_fake).mean()  # gj.gan.saturating()

    @contextlib.contextmanager
    def _capped(self):
        """Pass ``nsteps=maxiter`` to cgds's CG, record its iterations; default dtype = the run's."""
        original = self.module.general_conjugate_gradient
        default_dtype = self.torch.get_default_dtype()

        def capped(*args, **kwargs):
            solution, iterations = original(*args, **{**kwargs, "nsteps": self.maxiter})
            self.iterations.append(iterations)
            return solution, iterations

        self.module.general_conjugate_gradient = capped
        self.torch.set_default_dtype(self.dtype)  # cgds allocates its first CG iterate with the default dtype
        try:
            yield
        finally:
            self.module.general_conjugate_gradient = original
            self.torch.set_default_dtype(default_dtype)

    def step(self) -> None:
        with self._capped():
            self.optimizer.step(self.loss(*self.batches[self.t % len(self.batches)]))
        self.t += 1

    def arrays(self) -> list[np.ndarray]:
        return [p.detach().numpy() for p in self.generator + self.discriminator]

    def solve_counts(self) -> tuple[int | None, int | None]:
        if not self.iterations:
            return None, None
        warm = self.t > 1  # from step 2 on cgds warm-starts, which costs one product
        return self.iterations[-1], self.iterations[-1] + int(warm)


# ---------------------------------------------------------------------------------------------
# Peers


def find_peers(requested: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``({peer: version}, {peer: why skipped})``."""
    found, skipped = {}, {}
    for name in requested:
        spec = PEERS[name]
        missing = [m for m in [spec["module"], *spec["needs"]] if importlib.util.find_spec(m) is None]
        if missing:
            what = name if spec["module"] in missing else f"{name}'s dependency {', '.join(missing)}"
            skipped[name] = f"skipped: {what} not installed ({spec['install']})"
            continue
        try:
            importlib.import_module(spec["module"])
        except Exception as error:  # a broken install is skipped too, with its error
            skipped[name] = f"skipped: {name} does not import ({type(error).__name__}: {error})"
            continue
        found[name] = importlib.metadata.version(name)
    for message in skipped.values():
        print(message, flush=True)
    return found, skipped


def acgd_runners(
    prob: Problem, peers: dict, dtype: Any, *, lr: float, beta2: float, eps: float, tol: float, maxiter: int
) -> dict[str, Runner]:
    tx = gj.acgd(lr, beta2=beta2, eps=eps, tol=tol, maxiter=maxiter)
    runners: dict[str, Runner] = {"gamejax": GamejaxStep("gamejax acgd", prob, tx, dtype)}
    kwargs = {"lr": lr, "beta2": beta2, "eps": eps, "tol": tol, "maxiter": maxiter}
    if "jax-cgd" in peers:
        runners["jax-cgd"] = JaxCGD(prob, dtype, **kwargs)
    if "cgds" in peers:
        runners["cgds"] = CGDsACGD(prob, dtype, **kwargs)
    return runners


# ---------------------------------------------------------------------------------------------
# Timing (float32)


def time_runners(runners: dict[str, tuple[Runner, int]], rounds: int) -> dict[str, list[float]]:
    """Seconds per step of each ``(runner, steps)``: ``rounds`` interleaved rounds, every other one in reverse order."""
    for runner, steps in runners.values():  # compile and warm up (a scan compiles for exactly `steps`)
        runner.run(steps if getattr(runner, "scan", False) else 2)
        runner.sync()
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    for i in range(rounds):
        for name in list(runners) if i % 2 == 0 else list(runners)[::-1]:
            runner, steps = runners[name]
            start = time.perf_counter()
            runner.run(steps)
            runner.sync()
            seconds[name].append((time.perf_counter() - start) / steps)
    return seconds


def paired_ratio(seconds: dict[str, list[float]], numerator: str, denominator: str) -> float:
    """Median over rounds of the per-round ratio (both timed in the same round, under the same load)."""
    return float(np.median(np.array(seconds[numerator]) / np.array(seconds[denominator])))


def timing(
    width: int, peers: dict, *, iterations: int, steps: int, rounds: int, n_batches: int, depth: int, scans: bool
) -> dict:
    prob = problem(width, n_batches, depth)
    f32 = jnp.float32
    acgd = acgd_runners(prob, peers, f32, lr=LR, beta2=BETA2, eps=EPS, tol=0.0, maxiter=iterations)
    tx = gj.acgd(LR, beta2=BETA2, eps=EPS, tol=0.0, maxiter=iterations)
    if scans:
        acgd["gamejax (lax.scan)"] = GamejaxStep("gamejax acgd (lax.scan)", prob, tx, f32, scan=True)
        cold = gj.acgd(LR, beta2=BETA2, eps=EPS, tol=0.0, maxiter=iterations, warm_start=False)
        acgd["gamejax (cold)"] = GamejaxStep("gamejax acgd (warm_start=False)", prob, cold, f32)
    gda_tx = gj.gda(optax.adam(**ADAM))
    first_order: dict[str, Runner] = {
        "optax": OptaxGDA(prob, f32),
        "gamejax": GamejaxStep("gamejax gda", prob, gda_tx, f32),
    }
    if scans:
        first_order["optax (lax.scan)"] = OptaxGDA(prob, f32, scan=True)
        first_order["gamejax (lax.scan)"] = GamejaxStep("gamejax gda (lax.scan)", prob, gda_tx, f32, scan=True)
    runners = {f"acgd/{k}": (r, steps) for k, r in acgd.items()}
    runners |= {f"gda/{k}": (r, GDA_STEPS_FACTOR * steps) for k, r in first_order.items()}  # cheap steps: more of them
    seconds = time_runners(runners, rounds)
    counts = {}  # the last step's solve, counted (one more step each; timing is over)
    for key, (runner, _) in runners.items():
        if isinstance(runner, GamejaxStep) and not runner.scan:
            runner.step_and_count()
        elif key.startswith("acgd/") and not isinstance(runner, GamejaxStep):
            runner.step()
        counts[key] = runner.solve_counts()
    rows = []
    for key, (runner, steps_per_round) in runners.items():
        its, matvecs = counts[key]
        row = {
            "key": key,
            "name": runner.name,
            "ms_per_step": 1e3 * statistics.median(seconds[key]),
            "ms_spread": [1e3 * min(seconds[key]), 1e3 * max(seconds[key])],
            "steps_per_round": steps_per_round,
            "cg_iterations": its,
            "matvecs": matvecs,
            "iterations_forced_not_reported": runner.fixed_iterations,
            "dtypes": sorted({str(a.dtype) for a in runner.arrays()}),
            "finite": bool(np.isfinite(flat(runner.arrays())).all()),
        }
        if isinstance(runner, JaxCGD):  # what the package itself reports: a trace-time count, not iterations
            row["package_iter_num"] = int(runner.package_iter_num)
        if key in ("acgd/jax-cgd", "acgd/cgds"):
            row["gamejax_speedup"] = paired_ratio(seconds, key, "acgd/gamejax")
            if "acgd/gamejax (cold)" in seconds:  # the same number of products as jax-cgd
                row["gamejax_cold_speedup"] = paired_ratio(seconds, key, "acgd/gamejax (cold)")
        rows.append(row)
    gda_ratio = {"per_step_call": paired_ratio(seconds, "gda/gamejax", "gda/optax")}
    if scans:
        gda_ratio["lax_scan"] = paired_ratio(seconds, "gda/gamejax (lax.scan)", "gda/optax (lax.scan)")
    n_params = int(sum(np.size(a) for a in jax.tree.leaves(prob.params)))
    return {"width": width, "parameters": n_params, "rows": rows, "gda_over_optax": gda_ratio}


# ---------------------------------------------------------------------------------------------
# Trajectories (float64)


def distances(ours: np.ndarray, theirs: np.ndarray, start: np.ndarray) -> dict:
    gap = float(np.linalg.norm(theirs - ours))
    return {
        "relative_to_displacement": gap / float(np.linalg.norm(ours - start)),
        "relative_to_norm": gap / float(np.linalg.norm(ours)),
    }


def trajectory_settings(iterations: int) -> list[dict]:
    converged = {"tol": CONVERGED_TOL, "maxiter": CONVERGED_MAXITER}
    return [
        {"setting": f"same update: lr {PAPER_LR:g}, beta2 0, CG to 1e-10", "lr": PAPER_LR, "beta2": 0.0, **converged},
        {
            "setting": f"paper's lr {PAPER_LR:g}, beta2 {BETA2}, CG to 1e-10",
            "lr": PAPER_LR,
            "beta2": BETA2,
            **converged,
        },
        {
            "setting": f"timed solves: lr {LR:g}, beta2 0, {iterations} CG its",
            "lr": LR,
            "beta2": 0.0,
            "tol": 0.0,
            "maxiter": iterations,
        },
    ]


def trajectories(width: int, peers: dict, *, iterations: int, steps: int, n_batches: int, depth: int) -> list[dict]:
    """Each peer's distance to gamejax after every step, float64, in the three settings."""
    prob = problem(width, n_batches, depth)
    start = flat(layer_arrays(prob, prob.params))
    rows = []
    for setting in trajectory_settings(iterations):
        options = {k: setting[k] for k in ("lr", "beta2", "tol", "maxiter")}
        runners = acgd_runners(prob, peers, jnp.float64, eps=EPS, **options)
        if setting["tol"] == 0 and "jax-cgd" in peers:  # jax-cgd's compiled step solves from zero: gamejax likewise
            lr, solver = options["lr"], {k: options[k] for k in ("beta2", "tol", "maxiter")}
            tx = gj.acgd(lr, eps=EPS, warm_start=False, **solver)
            runners["gamejax (cold start)"] = GamejaxStep("gamejax acgd (warm_start=False)", prob, tx, jnp.float64)
        reference = {p: "gamejax (cold start)" if p == "jax-cgd" and setting["tol"] == 0 else "gamejax" for p in peers}
        iterations_seen: dict[str, list] = {name: [] for name in runners}
        gaps: dict[str, list[dict]] = {peer: [] for peer in peers}
        for _ in range(steps):
            for name, runner in runners.items():
                runner.step_and_count() if isinstance(runner, GamejaxStep) else runner.step()
                iterations_seen[name].append(runner.solve_counts()[0])
            finals = {name: flat(runner.arrays()) for name, runner in runners.items()}
            for peer in peers:
                gaps[peer].append(distances(finals[reference[peer]], finals[peer], start))
        for peer in peers:
            rows.append(
                {
                    **setting,
                    "peer": peer,
                    "gamejax": runners[reference[peer]].name,
                    "steps": steps,
                    "after_one_step": gaps[peer][0]["relative_to_displacement"],
                    "relative_to_displacement": gaps[peer][-1]["relative_to_displacement"],
                    "relative_to_norm": gaps[peer][-1]["relative_to_norm"],
                    "per_step": [g["relative_to_displacement"] for g in gaps[peer]],
                    "iterations_gamejax": iterations_seen[reference[peer]],
                    "iterations_peer": iterations_seen[peer],
                    "all_finite": bool(np.isfinite(finals[peer]).all() and np.isfinite(finals[reference[peer]]).all()),
                }
            )
    return rows


def gda_trajectory(width: int, *, steps: int, n_batches: int, depth: int) -> dict:
    """gamejax's gda against the hand-written Optax loop, float64: the same iterates."""
    prob = problem(width, n_batches, depth)
    ours = GamejaxStep("gamejax gda", prob, gj.gda(optax.adam(**ADAM)), jnp.float64)
    theirs = OptaxGDA(prob, jnp.float64)
    ours.run(steps)
    theirs.run(steps)
    start = flat(layer_arrays(prob, prob.params))
    return {"steps": steps, **distances(flat(ours.arrays()), flat(theirs.arrays()), start)}


# ---------------------------------------------------------------------------------------------
# Output


def table(result: dict) -> str:
    lines = [
        f"width {result['width']} ({result['parameters']} parameters), float32",
        f"{'implementation':<34} {'ms/step':>9} {'CG its':>7} {'matvecs':>8} {'gamejax faster by (cold)':>25}",
    ]
    for row in result["rows"]:
        its = (
            "-"
            if row["cg_iterations"] is None
            else f"{row['cg_iterations']}{'*' if row['iterations_forced_not_reported'] else ''}"
        )
        matvecs = "-" if row["matvecs"] is None else str(row["matvecs"])
        speedup = f"{row['gamejax_speedup']:.2f}x" if "gamejax_speedup" in row else ""
        if "gamejax_cold_speedup" in row:
            speedup += f" ({row['gamejax_cold_speedup']:.2f}x)"
        lines.append(f"{row['name']:<34} {row['ms_per_step']:>9.3f} {its:>7} {matvecs:>8} {speedup:>25}")
    lines.append("* forced by tol = 0 (the package reports no count); matvecs: products with the CG matrix")
    ratio = result["gda_over_optax"]
    lines.append(f"gamejax gda / hand-written Optax GDA: {_ratios(ratio)}")
    return "\n".join(lines)


def _ratios(ratio: dict) -> str:
    return ", ".join(f"{v:.3f} ({'per-step calls' if k == 'per_step_call' else 'lax.scan'})" for k, v in ratio.items())


def trajectory_table(rows: list[dict]) -> str:
    lines = [
        "distance to gamejax relative to gamejax's displacement ‖θ − θ0‖ (and to ‖θ‖ after the last step)",
        f"{'setting':<42} {'peer':<8} {'vs':<32} {'1 step':>9} {'last step':>10} {'/ ‖θ‖':>9}",
    ]
    for row in rows:
        lines.append(
            f"{row['setting']:<42} {row['peer']:<8} {row['gamejax']:<32} {row['after_one_step']:>9.2e} "
            f"{row['relative_to_displacement']:>10.2e} {row['relative_to_norm']:>9.2e}"
        )
    return "\n".join(lines)


def plot(results: list[dict]):
    fig, axes = figure(ncols=2, size=(6.0, 4.0))
    for ax, prefix, title in ((axes[0, 0], "acgd/", "ACGD per step"), (axes[0, 1], "gda/", "GDA (Adam) per step")):
        names = [row["name"] for row in results[0]["rows"] if row["key"].startswith(prefix)]
        x = np.arange(len(names))
        bar = 0.8 / len(results)
        for i, result in enumerate(results):
            ms = [row["ms_per_step"] for row in result["rows"] if row["key"].startswith(prefix)]
            ax.bar(x + i * bar, ms, bar, label=f"width {result['width']}")
        ax.set_xticks(x + bar * (len(results) - 1) / 2, names, rotation=30, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("ms per step (log)")
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,256", help="comma-separated hidden widths")
    parser.add_argument("--iterations", type=int, default=10, help="CG iterations per step, the same for all")
    parser.add_argument("--steps", type=int, default=10, help="steps per timed round")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved timing rounds (medians are reported)")
    parser.add_argument("--trajectory-steps", type=int, default=10, help="steps of the float64 trajectory check")
    parser.add_argument("--trajectory-width", type=int, default=64, help="width of the float64 trajectory check")
    parser.add_argument("--batches", type=int, default=4, help="fixed batches, cycled")
    parser.add_argument("--peers", default="jax-cgd,cgds", help="peers to run, if installed")
    parser.add_argument("--torch-threads", type=int, default=1, help="PyTorch intra-op threads for cgds (see above)")
    parser.add_argument("--quick", action="store_true", help="a small, fast run (CI)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results"), help="output folder")
    args = parser.parse_args(argv)
    global _compiler_options
    _compiler_options = FAST_COMPILE if args.quick else None
    depth = QUICK_DEPTH if args.quick else DEPTH
    if args.quick:
        args.widths, args.iterations, args.steps, args.rounds = "16", 3, 3, 2
        args.trajectory_steps, args.trajectory_width, args.batches = 2, 16, 2
    requested = [p for p in args.peers.split(",") if p]
    unknown = sorted(set(requested) - set(PEERS))
    if unknown:
        parser.error(f"unknown peers {unknown}; known: {sorted(PEERS)}")
    peers, skipped = find_peers(requested)
    if "cgds" in peers:
        _set_torch_threads(args.torch_threads)
    load = {"before": os.getloadavg()}
    results = []
    for width in (int(w) for w in args.widths.split(",")):
        with jax.enable_x64(False):  # JAX's default, as users run it (jax-cgd's step mixes in float64 under x64)
            result = timing(
                width,
                peers,
                iterations=args.iterations,
                steps=args.steps,
                rounds=args.rounds,
                n_batches=args.batches,
                depth=depth,
                scans=not args.quick,
            )
        print(table(result), end="\n\n", flush=True)
        results.append(result)
    tw, ts = args.trajectory_width, args.trajectory_steps
    with jax.enable_x64(True):
        traj = (
            trajectories(tw, peers, iterations=args.iterations, steps=ts, n_batches=args.batches, depth=depth)
            if peers
            else []
        )
        gda_traj = gda_trajectory(tw, steps=ts, n_batches=args.batches, depth=depth)
    if traj:
        print(f"trajectory distances after {ts} steps, float64, width {tw}:\n{trajectory_table(traj)}\n")
    print(
        f"gamejax gda vs hand-written Optax GDA after {ts} steps, float64: "
        f"{gda_traj['relative_to_displacement']:.2e} of the displacement\n"
    )

    claims = []
    for result in results:
        rows = {row["key"]: row for row in result["rows"]}
        peer_rows = [rows[f"acgd/{p}"] for p in peers if f"acgd/{p}" in rows]
        if peer_rows:
            fastest = min(peer_rows, key=lambda r: r["gamejax_speedup"])
            speedup = fastest["gamejax_speedup"]
            claims.append(
                claim(
                    f"width {result['width']}: gamejax's ACGD at least {SPEEDUP_TARGET}x faster per step than the "
                    f"fastest peer at {args.iterations} CG iterations",
                    speedup >= SPEEDUP_TARGET,
                    f"{speedup:.2f}x faster than {fastest['name']} (median of per-round ratios; medians "
                    f"{rows['acgd/gamejax']['ms_per_step']:.3f} vs {fastest['ms_per_step']:.3f} ms)",
                    required=False,
                )
            )
        ratio = result["gda_over_optax"]
        claims.append(
            claim(
                f"width {result['width']}: gamejax's gda costs no more than hand-written Optax GDA "
                f"(within {GDA_TOLERANCE - 1:.0%} timing noise)",
                max(ratio.values()) <= GDA_TOLERANCE,
                f"ratio {_ratios(ratio)}",
                required=False,
            )
        )
    claims.append(
        claim(
            "gamejax's gda and the hand-written Optax loop compute the same iterates (float64)",
            gda_traj["relative_to_displacement"] < 1e-8,
            f"distance {gda_traj['relative_to_displacement']:.2e} of the displacement after {ts} steps",
        )
    )
    for row in traj:
        if row["setting"].startswith("same update"):
            claims.append(
                claim(
                    f"{row['peer']} and gamejax compute the same ACGD trajectory when the updates coincide "
                    f"(lr {PAPER_LR:g}, beta2 = 0, converged CG): same game, data and initial point",
                    row["relative_to_displacement"] < 1e-6,
                    f"distance {row['relative_to_displacement']:.2e} of the displacement after {row['steps']} steps",
                )
            )
    load["after"] = os.getloadavg()
    record = {
        "targets": TARGETS,
        "peers": peers,
        "skipped": skipped,
        "settings": {
            "latent": LATENT,
            "batch": BATCH,
            "depth": depth,
            "lr_timed": LR,
            "lr_paper": PAPER_LR,
            "beta2": BETA2,
            "eps": EPS,
            "adam": ADAM,
            "cg_iterations": args.iterations,
            "steps_per_round": args.steps,
            "gda_steps_per_round": GDA_STEPS_FACTOR * args.steps,
            "rounds": args.rounds,
            "fixed_batches": args.batches,
            "trajectory_steps": ts,
            "trajectory_width": tw,
        },
        "torch_threads": args.torch_threads if "cgds" in peers else None,
        "load_average_1_5_15min": load,
        "results": results,
        "trajectories": traj,
        "gda_trajectory": gda_traj,
    }
    return report(NAME, TARGETS, record, claims, plot(results), args)


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


if __name__ == "__main__":
    main()
