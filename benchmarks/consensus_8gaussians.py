"""Numerics of GANs, §5 / Figs. 2–3: SimGA against consensus optimization on the 8-Gaussians ring.

The paper's setup: 8 modes on the unit circle with standard deviation 0.01 (``gj.data.ring(std=0.01)``);
generator and critic fully connected with 4 hidden layers of 16 units and ReLU; a 16-dimensional
Gaussian prior; RMSProp with learning rate 1e-4 for 20 000 steps; γ = 10. "The utility functions as
in [10]" (Goodfellow et al.) are read as the non-saturating GAN, the variant [10] recommends in
practice and the one Mescheder's released toy-experiment notebook trains (``divergence =
'standard'``); the notebook's batch size, 512, is used too. SimGA is
``gj.gda(optax.rmsprop(1e-4))`` and consensus optimization
``gj.consensus(10.0)(gj.gda(optax.rmsprop(1e-4)))``. Three seeds run at once (``jax.vmap`` over
initial params and keys); training runs in segments whose ends are the snapshots of Fig. 2 (every
5000 steps). At each snapshot the Wasserstein-1 distance of 1024 samples to 1024 data points is
computed on the host (two samples of the data are 0.07 apart); every 250 steps the high-quality
fraction (within 3σ = 0.03 of a mode), the modes covered (≥ 20 % of a mode's share of samples
within 3σ) and the share of samples nearest to each mode are recorded. "Jumping around the modes" is
measured as the total-variation distance between consecutive records of those shares, "balanced" by
the mode KL (``gj.metrics.mode_metrics``).

Fig. 3's spectra: the eigenvalues of the Jacobian ``J`` of the game's field ``v`` and of
``J + γJᵀJ``, the Jacobian of the consensus field ``w = v + γ∇½‖v‖²`` without the term
``Σ vᵢ∇²vᵢ`` that vanishes at a stationary point (Mescheder's notebook computes Fig. 3 the same
way), at the start and at the end of consensus training and at the end of SimGA (seed 0, one
512-sample batch; the nets have 2003 parameters). gamejax's field is a descent direction
(``ω' = −v(ω)``), so stability means eigenvalues with *positive* real part: the paper's "to the
left" (it uses the ascent field of the utilities) is "to the right" here. Eigenvalues below 10⁻³ of
the largest modulus (the many flat directions of ReLU nets) are left out of the shares.
``--quick`` (CI's smoke run): 2 × 300 steps, batch 128, 2 seeds, no spectra, XLA's cheap compilation.

    python benchmarks/consensus_8gaussians.py [--quick] [--out benchmarks/results/consensus_8gaussians]
"""

from __future__ import annotations

import time

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
from _common import arguments, claim, figure, report
from _gan import generate, mlp_pair, plot_samples, seed_params

import gamejax as gj

PAPER = (
    "Numerics of GANs (Mescheder et al. 2017), §5 / Figs. 2–3: on a ring of 8 Gaussians (std 0.01) with 4×16 ReLU "
    "MLPs and RMSProp (lr 1e-4), simultaneous gradient ascent (SimGA) jumps around the modes and fails to converge "
    "within 20 000 steps, while consensus optimization (γ = 10) converges smoothly to the target distribution; the "
    "Jacobian of the field has eigenvalues near the imaginary axis, which the consensus field moves away from it."
)
NAME = "consensus_8gaussians"
LR, GAMMA = 1e-4, 10.0
NOISE_DIM, WIDTH, DEPTH, BATCH = 16, 16, 4, 512
N_EVAL = 2048
N_W1 = 1024
LIMIT = 1.6
QUICK_BATCH = 128  # --quick: a smoke run, smaller batches and XLA's cheap compilation
FAST_COMPILE = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _pair(seed: int) -> gj.flax.ModulePair:
    return mlp_pair(seed, noise_dim=NOISE_DIM, data_dim=2, width=WIDTH, depth=DEPTH)


def _shares(samples: jax.Array, centers: jax.Array) -> jax.Array:
    """The fraction of samples whose nearest mode is each centre, ``(m,)``."""
    squared = jnp.sum((samples[:, None, :] - centers[None, :, :]) ** 2, axis=-1)
    nearest = jnp.argmin(squared, axis=1)
    return jnp.mean(jax.nn.one_hot(nearest, centers.shape[0], dtype=jnp.float32), axis=0)


def _spectrum_summary(eigenvalues: np.ndarray) -> dict:
    """Real parts and the share of eigenvalues near the imaginary axis (|Re λ| < 0.1 |Im λ|)."""
    lam = np.asarray(eigenvalues)
    scale = np.abs(lam).max()
    significant = lam[np.abs(lam) > 1e-3 * scale]  # the (many) zero directions of the ReLU nets excluded
    near_axis = np.abs(significant.real) < 0.1 * np.abs(significant.imag)
    return {
        "count": int(lam.size),
        "significant": int(significant.size),
        "min_real": float(lam.real.min()),
        "max_real": float(lam.real.max()),
        "max_abs_imag": float(np.abs(lam.imag).max()),
        "near_imaginary_axis": float(near_axis.mean()) if significant.size else 0.0,
        "negative_real": float(np.mean(significant.real < -1e-6 * scale)) if significant.size else 0.0,
    }


def main(argv: list[str] | None = None) -> dict:
    args = arguments(__doc__.splitlines()[0], argv, f"benchmarks/results/{NAME}")
    quick = args.quick
    segment, n_segments = (300, 2) if quick else (5000, 4)
    batch_size = QUICK_BATCH if quick else BATCH
    log_every = 50 if quick else 250
    seeds = [0, 1] if quick else [0, 1, 2]
    steps = segment * n_segments
    ring = gj.data.ring(std=0.01)
    centers = jnp.asarray(ring.centers)
    pair = _pair(0)
    game = pair.game(gj.gan.non_saturating())
    sample = gj.gan.batch_sampler(ring.sample, NOISE_DIM, batch_size)
    noise = jax.random.normal(jax.random.key(9), (N_EVAL, NOISE_DIM), jnp.float32)

    def metrics(params, state):
        samples = generate(pair, params, noise)
        return {**gj.metrics.mode_metrics(samples, centers, ring.std), "shares": _shares(samples, centers)}

    methods = {
        "SimGA": gj.gda(optax.rmsprop(LR)),
        "consensus": gj.consensus(GAMMA)(gj.gda(optax.rmsprop(LR))),
    }
    init = seed_params(_pair, seeds)
    keys = jax.random.split(jax.random.key(1), len(seeds))
    n_w1 = N_W1 // 4 if quick else N_W1
    real = np.asarray(ring.sample(jax.random.key(123), n_w1))
    w1_floor = gj.metrics.wasserstein1(real, np.asarray(ring.sample(jax.random.key(124), n_w1)))
    generate_all = jax.jit(jax.vmap(lambda p: generate(pair, p, noise)))

    runs, seconds = {}, {"start": time.perf_counter()}
    for name, tx in methods.items():

        def run_segment(params, state, key, start, tx=tx):
            r = gj.fit(
                game, tx, params, state=state, steps=segment, sample=sample, key=key,
                metrics=metrics, log_every=log_every, initial_step=start,
            )  # fmt: skip
            return r.params, r.state, r.metrics

        run_segment = jax.jit(
            jax.vmap(run_segment, in_axes=(0, 0, 0, None)), compiler_options=FAST_COMPILE if quick else None
        )
        params, state = init, jax.vmap(tx.init)(init)
        snapshots, logs = [init], []
        start = time.perf_counter()
        for k in range(n_segments):
            params, state, log = run_segment(params, state, keys, jnp.asarray(k * segment, jnp.int32))
            if k:  # every segment re-records its first step: keep one record per step
                log = jax.tree.map(lambda a: a[:, 1:], log)
            logs.append(log)
            snapshots.append(params)
        jax.block_until_ready(params)
        seconds[name] = time.perf_counter() - start
        history = jax.tree.map(lambda *a: np.concatenate(a, axis=1), *logs)
        samples = [np.asarray(generate_all(s)) for s in snapshots]
        w1 = np.array([[gj.metrics.wasserstein1(s[i, :n_w1], real) for i in range(len(seeds))] for s in samples])
        runs[name] = {"history": history, "samples": samples, "w1": w1, "final": params}
        print(
            f"{name}: {seconds[name]:.1f} s, W1 at snapshots (mean over seeds) {np.round(w1.mean(axis=1), 3)}",
            flush=True,
        )

    # Fig. 3: spectra of v' and w' at consensus's start and end (seed 0), and of v' at SimGA's end, on
    # one batch of the training size; skipped in quick mode (five dense 2003 × 2003 eigenproblems).
    spectra, summaries = {}, {}
    if not quick:
        eig_batch = gj.gan.batch_sampler(ring.sample, NOISE_DIM, BATCH)(jax.random.key(77))
        start = time.perf_counter()
        for label, name, p in (
            ("at init", "consensus", init),
            ("after consensus", "consensus", None),
            ("after SimGA", "SimGA", None),
        ):
            p = jax.tree.map(lambda a: a[0], runs[name]["final"] if p is None else p)
            jac = gj.derivatives.field_jacobian(game, p, eig_batch, chunk_size=64)  # one jacfwd: many GB
            spectra[f"v' {label}"] = np.asarray(jnp.linalg.eigvals(jac))
            if name == "consensus":
                spectra[f"w' {label}"] = np.asarray(jnp.linalg.eigvals(jac + GAMMA * jac.T @ jac))
        seconds["spectra"] = time.perf_counter() - start
        summaries = {k: _spectrum_summary(v) for k, v in spectra.items()}

    # ---- numbers for the claims
    steps_axis = np.asarray(runs["SimGA"]["history"]["step"][0])
    second_half = steps_axis >= steps // 2

    def stats(name):
        h = runs[name]["history"]
        shares = np.asarray(h["shares"])  # (seeds, records, modes)
        jumps = 0.5 * np.abs(np.diff(shares, axis=1)).sum(axis=-1)  # TV between consecutive records
        hq = np.asarray(h["high_quality"])
        modes = np.asarray(h["modes_covered"])
        kl = np.asarray(h["mode_kl"])
        return {
            "final_modes": modes[:, -1],
            "final_high_quality": hq[:, -1],
            "final_mode_kl": kl[:, -1],
            "final_w1": runs[name]["w1"][-1],
            "w1_snapshots_mean": runs[name]["w1"].mean(axis=1),
            "w1_decreases_at_every_snapshot": np.all(np.diff(runs[name]["w1"], axis=0) < 0, axis=0),
            "jump_tv_mean": jumps.mean(axis=1),
            "second_half_jump_tv_mean": jumps[:, second_half[1:]].mean(axis=1),
            "second_half_mode_kl_max": kl[:, second_half].max(axis=1),
            "second_half_modes_min": modes[:, second_half].min(axis=1),
        }

    simga, con = stats("SimGA"), stats("consensus")

    def fmt(a, f="{:.2f}"):
        return "[" + ", ".join(f.format(v) for v in np.ravel(a)) + "]"

    simga_fails = bool(np.all(simga["final_w1"] > 2 * con["final_w1"]))
    simga_jumps = bool(np.mean(simga["second_half_jump_tv_mean"]) > 2 * np.mean(con["second_half_jump_tv_mean"]))
    con_smooth = bool(np.all(con["w1_decreases_at_every_snapshot"]) and np.all(con["second_half_mode_kl_max"] < 0.05))
    con_all_modes = bool(np.all(con["final_modes"] == 8) and np.all(con["final_high_quality"] > 0.5))
    if quick:
        spectrum_moves, spectrum_detail = False, "spectra not computed"
    else:
        v_end, w_end = summaries["v' after consensus"], summaries["w' after consensus"]
        spectrum_moves = bool(
            v_end["near_imaginary_axis"] > 2 * w_end["near_imaginary_axis"] and w_end["min_real"] > v_end["min_real"]
        )
        spectrum_detail = (
            f"share of significant eigenvalues with |Re| < 0.1|Im|: v' {v_end['near_imaginary_axis']:.2f}, "
            f"w' {w_end['near_imaginary_axis']:.2f}; smallest real part v' {v_end['min_real']:.3g}, "
            f"w' {w_end['min_real']:.3g}"
        )
    too_short = "quick run: too short to test"
    claims = [
        claim(
            "everything is finite and consensus improves on its initialization (W1 decreases)",
            bool(
                all(np.all(np.isfinite(runs[n]["w1"])) for n in runs)
                and np.mean(con["final_w1"]) < np.mean(runs["consensus"]["w1"][0])
            ),
            f"consensus W1 {np.mean(runs['consensus']['w1'][0]):.3f} → {np.mean(con['final_w1']):.3f}",
        ),
        claim(
            f"SimGA fails to converge: at step {steps} its W1 to the data is more than twice consensus's (every seed)",
            simga_fails,
            f"W1 SimGA {fmt(simga['final_w1'], '{:.3f}')} vs consensus {fmt(con['final_w1'], '{:.3f}')} "
            f"(two samples of the data: {w1_floor:.3f}); W1 at the snapshots (mean) SimGA "
            f"{fmt(simga['w1_snapshots_mean'], '{:.3f}')}; SimGA modes covered {fmt(simga['final_modes'], '{:d}')}",
            required=not quick,
        ),
        claim(
            "SimGA jumps around the modes: the nearest-mode shares of its samples move between records (every "
            f"{log_every} steps, second half) more than twice as much as consensus's",
            simga_jumps,
            f"mean total-variation change between records, second half: SimGA "
            f"{fmt(simga['second_half_jump_tv_mean'], '{:.4f}')} vs consensus "
            f"{fmt(con['second_half_jump_tv_mean'], '{:.4f}')}; whole run: SimGA {fmt(simga['jump_tv_mean'], '{:.4f}')}"
            f" vs consensus {fmt(con['jump_tv_mean'], '{:.4f}')}"
            + (
                ""
                if simga_jumps
                else "; SimGA oscillates between modes in its first few thousand steps only, then drifts slowly to "
                "an unbalanced distribution that loses modes"
            ),
            required=False,
        ),
        claim(
            "consensus converges smoothly to the target: W1 decreases at every snapshot and the mass per mode stays "
            "balanced (mode KL < 0.05 at every record of the second half; every seed)",
            con_smooth,
            f"W1 at the snapshots (mean) {fmt(con['w1_snapshots_mean'], '{:.3f}')}; largest mode KL over the second "
            f"half {fmt(con['second_half_mode_kl_max'], '{:.3f}')} (SimGA at the end: "
            f"{fmt(simga['final_mode_kl'], '{:.2f}')})",
            required=not quick,
        ),
        claim(
            f"consensus reaches all 8 modes with a high-quality fraction (within 3σ = 0.03) above 0.5 by step {steps}"
            " (every seed)",
            con_all_modes,
            f"modes covered {fmt(con['final_modes'], '{:d}')}, high-quality fraction "
            f"{fmt(con['final_high_quality'])} and still rising"
            + ("" if con_all_modes else "; a mode counts with ≥ 20 % of its share of samples within 0.03"),
            required=False,
        ),
        claim(
            "Fig. 3: after training v' has eigenvalues near the imaginary axis; the consensus field's w' moves them "
            "away from it (to positive real parts in gamejax's descent convention)",
            spectrum_moves,
            spectrum_detail,
            required=not quick,
        ),
    ]
    if quick:
        for c in claims[1:]:
            if not c["reproduced"]:
                c["detail"] = f"{too_short} ({c['detail']})"

    # ---- figure: rows SimGA / consensus: snapshots; then curves and spectra
    snap_steps = [k * segment for k in range(n_segments + 1)]
    fig, axes = figure(ncols=n_segments + 2, nrows=3, size=(2.9, 2.9))
    for row, name in enumerate(methods):
        for col, s in enumerate(runs[name]["samples"]):
            plot_samples(
                axes[row][col], s[0], np.asarray(centers),
                f"{name}, step {snap_steps[col]}\nW1 {runs[name]['w1'][col, 0]:.3f}", LIMIT,
            )  # fmt: skip
        ax = axes[row][n_segments + 1]
        shares = np.asarray(runs[name]["history"]["shares"][0])
        ax.stackplot(steps_axis, shares.T, lw=0)
        ax.set(xlabel="step", ylabel="share per mode (seed 0)", ylim=(0, 1), title=f"{name}: mass per mode")
        ax.title.set_fontsize(9)
    target = np.asarray(ring.sample(jax.random.key(5), N_EVAL))
    plot_samples(axes[2][0], target, np.asarray(centers), "target", LIMIT)
    curves = [("high_quality", "high-quality fraction", (-0.02, 1.02)), ("modes_covered", "modes covered", (-0.3, 8.3))]
    for ax, (key, label, ylim) in zip((axes[2][1], axes[2][2]), curves, strict=True):
        for name, color in zip(methods, ("tab:red", "tab:blue"), strict=True):
            ax.plot(steps_axis, np.asarray(runs[name]["history"][key]).T, color=color, lw=0.8, alpha=0.7)
            ax.plot([], [], color=color, label=name)
        ax.set(xlabel="step", ylabel=label, ylim=ylim)
        ax.legend(fontsize=7)
    panels = [("v' at init", "w' at init"), ("v' after consensus", "w' after consensus"), ("v' after SimGA",)]
    for col, keys in enumerate(panels if spectra else [], start=3):
        ax = axes[2][col]
        for key, color in zip(keys, ("tab:gray", "tab:blue"), strict=False):
            lam = spectra[key]
            ax.scatter(lam.real, lam.imag, s=4, alpha=0.6, color=color, label=key)
        ax.axvline(0, color="k", lw=0.5)
        ax.set(xlabel="Re λ (symlog)", ylabel="Im λ", xscale="symlog", title="eigenvalues (seed 0)")
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    for col in range(3 + (len(panels) if spectra else 0), n_segments + 2):
        axes[2][col].axis("off")

    record = {
        "setup": {
            "data": "ring(n_modes=8, radius=1, std=0.01)",
            "networks": f"generator {NOISE_DIM}→{WIDTH}×{DEPTH}→2, critic 2→{WIDTH}×{DEPTH}→1, ReLU (the paper's)",
            "loss": "non-saturating (Goodfellow et al.'s practical variant; Mescheder's notebook 'standard')",
            "optimizer": f"optax.rmsprop({LR})",
            "gamma": GAMMA,
            "batch_size": batch_size,
            "steps": steps,
            "snapshot_steps": snap_steps,
            "seeds": seeds,
            "log_every": log_every,
            "eval_samples": N_EVAL,
            "w1_samples": n_w1,
            "w1_floor_real_vs_real": w1_floor,
        },
        "seconds": seconds,
        "results": {"SimGA": simga, "consensus": con},
        "histories": {
            name: {
                k: np.asarray(runs[name]["history"][k])
                for k in ("step", "high_quality", "modes_covered", "mode_kl", "shares")
            }
            for name in methods
        },
        "w1_snapshots": {name: runs[name]["w1"] for name in methods},
        "spectra": summaries,
    }
    seconds["total"] = time.perf_counter() - seconds.pop("start")
    return report(NAME, PAPER, record, claims, fig, args)


if __name__ == "__main__":
    main()
