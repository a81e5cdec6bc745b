"""Lookahead paper, Table 3 (MNIST) at CPU scale: its DCGAN (Table 5) on 28×28 digits, four optimizers, FD over steps.

The generator and discriminator of the paper's Table 5 (``gj.flax.DCGANGenerator`` /
``DCGANDiscriminator``: transposed convolutions with BatchNorm and ReLU, convolutions with BatchNorm
and LeakyReLU 0.2) on ``gj.data.digits("train", size=28)`` — scikit-learn's 1,437 bundled 8×8 training
digits upsampled bilinearly to 28×28, a stand-in for MNIST, which cannot be downloaded here —
trained with the non-saturating loss (the paper's eqs. 13–14) by

- AltGAN (``gj.alternating(adam)``, update ratio 1) and LA-AltGAN (``gj.lookahead(k, 0.5)`` of it),
- ExtraGrad (``gj.extragradient(adam)``, Extra-Adam) and LA-ExtraGrad (``gj.lookahead(k, 0.5)`` of it),

at the paper's Table 8 settings: Adam with learning rate 10⁻³ for both players, β₁ = 0.05,
β₂ = 0.999, batch 50, update ratio 1, lookahead α = 0.5. Scaled down for the project's loaded 2-core
CPU (the JSON's ``setup`` records every choice):

- **width**: the networks have ``width = 8`` instead of Table 5's 64 (hidden channels 64/32/16 in
  the generator, 8/16/32 in the discriminator; 115,168 + 10,752 parameters instead of
  3,215,104 + 659,456); the noise stays 128-dimensional. Width 4 (47,344 + 2,816) did not learn
  digits in 1,000 steps (FD ≈ 250–480, texture-like samples); width 16 costs 6× more per step;
- **steps**: 800 iterations (an iteration updates both players, §5) instead of 100K; lookahead's
  k = 8 keeps the paper's k / T = 1,000 / 100K = 1% (k = 1000 would exceed this run), and the EMA's
  β = 0.9875 keeps the paper's horizon 1/(1 − β) at 10% of the run (β = 0.9999 over 100K);
- **seeds**: 3 instead of 5.

Every method runs the same number of iterations (the paper's comparison), so ExtraGrad and
LA-ExtraGrad spend two gradient evaluations per player per step, the others one. AltGAN and
LA-AltGAN (and ExtraGrad and LA-ExtraGrad) are one compiled program, called with lookahead's α and
each seed: α = 1 makes the lookahead backtrack the identity, i.e. the plain method with the same
seeds, initial params and batches (paired runs). (Vmapping the runs instead makes grouped
convolutions, slower than sequential runs on this CPU.)

The metric is the Fréchet distance in the feature space of the digits classifier
(``gj.metrics.digits_classifier``, 128 penultimate-layer features), against the 360 held-out test
digits, of the generated images mapped back to 8×8 by the least-squares inverse of the bilinear
upsampling (real digits go there and back exactly; resizing them down would blur them to FD ≈ 50)
— the paper computes FID with its own MNIST classifier, so the numbers are not comparable with its
Table 3. Recorded inside the compiled run every 100 steps for the iterate and its EMA (1,000
samples, the features' mean and covariance; the distance on the host), and at the end on 2,000
samples. Generators sample in training mode: BatchNorm normalizes with the statistics of the sampled
batch, so the EMA generator does not mix averaged params with the iterate's running statistics. The
floor: the 1,437 real training digits score ≈ 3.3 (the JSON's ``real_floor``).

About 20 minutes on the project's 2-core CPU. ``--quick`` (CI) trains AltGAN and LA-AltGAN only,
2 seeds at width 4 for 30 steps (one compiled program, ≈ 30 s), and checks only that training runs
and the generators improve.

    python benchmarks/conv_gan.py [--quick] [--out benchmarks/results/conv_gan]
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _common import arguments, claim, figure, report
from digits_gan import frechet_from_moments
from flax import nnx

import gamejax as gj
from gamejax.flax import DCGANDiscriminator, DCGANGenerator

PAPER = (
    "Lookahead-minmax paper (Chavdarova et al. 2021), Table 3 (MNIST, DCGAN of Table 5, Table 8's settings): "
    "Lookahead-minmax improves the FID of its base method's iterates (LA-AltGAN .053 vs AltGAN .094, LA-ExtraGrad .053 "
    "vs ExtraGrad .094), the EMA of the iterates improves every method (to .029–.032), and on MNIST ExtraGrad and "
    "AltGAN score the same."
)
NAME = "conv_gan"
NOISE, BATCH, SIDE = 128, 50, 28
LR, B1, B2 = 1e-3, 0.05, 0.999  # Table 8 (MNIST)
ALPHA = 0.5
ALL = ("AltGAN", "LA-AltGAN", "ExtraGrad", "LA-ExtraGrad")
CONFIG = {
    False: dict(
        width=8, steps=800, k=8, ema=0.9875, seeds=3, records=8, curve_samples=1000, final_samples=2000, methods=ALL
    ),
    # One compiled program (the AltGAN family), tiny networks: compiling dominates.
    True: dict(
        width=2, steps=30, k=5, ema=0.9, seeds=2, records=1, curve_samples=200, final_samples=200, methods=ALL[:2]
    ),
}
METHODS = {  # name -> (family, lookahead α); a family is one compiled program vmapped over α
    "AltGAN": ("alt", 1.0),
    "LA-AltGAN": ("alt", ALPHA),
    "ExtraGrad": ("eg", 1.0),
    "LA-ExtraGrad": ("eg", ALPHA),
}
PASSES_PER_STEP = {"alt": 2, "eg": 4}  # gradient evaluations of both players' losses per step


def pair_of(seed: int, width: int) -> gj.flax.ModulePair:
    rngs = nnx.Rngs(seed)
    return gj.flax.split(DCGANGenerator(NOISE, width=width, rngs=rngs), DCGANDiscriminator(width=width, rngs=rngs))


def family_tx(family: str, alpha: jax.Array, cfg: dict) -> gj.GameTransformation:
    adam = optax.adam(LR, b1=B1, b2=B2)
    base = gj.alternating(adam, y_steps=1) if family == "alt" else gj.extragradient(adam)
    return gj.ema(cfg["ema"])(gj.lookahead(cfg["k"], alpha)(base))


def _left_inverse_of_upsampling() -> np.ndarray:
    """``P`` (8 × 28), the least-squares inverse of the 1-D bilinear upsampling ``U`` (28 × 8) of digits: ``PU = I``."""
    upsampling = np.asarray(jax.image.resize(jnp.eye(8), (SIDE, 8), "linear"), np.float64)  # column j: e_j upsampled
    return np.linalg.pinv(upsampling)


DOWN = _left_inverse_of_upsampling()


def to_8x8(images: jax.Array) -> jax.Array:
    """``(n, 28, 28, 1)`` images as the digits classifier's flattened 8×8: the 8×8 image whose upsampling is nearest.

    ``P x Pᵀ`` per image, with ``P`` the least-squares inverse of ``digits(size=28)``'s separable
    bilinear upsampling: it returns the real digits exactly (to rounding), where resizing them back
    (bilinear, with or without antialiasing) blurs them far from the test digits in the classifier's
    feature space.
    """
    down = jnp.asarray(DOWN, images.dtype)
    return jnp.reshape(jnp.einsum("ij,njkc,lk->nilc", down, images, down), (images.shape[0], 64))


def generate(pair: gj.flax.ModulePair, params: gj.Players, model_state: gj.Players, noise: jax.Array) -> jax.Array:
    """Samples in training mode: BatchNorm on the sampled batch's statistics (the copies' updates are dropped)."""
    generator, _ = pair.merge(params, model_state)
    return generator(noise)


def feature_moments(classifier, images: jax.Array) -> dict:
    """Mean and covariance (ddof = 1) of the classifier features of ``images`` (see digits_gan.feature_moments)."""
    features = classifier.features(to_8x8(images))
    mean = jnp.mean(features, axis=0, keepdims=True)
    centered = features - mean
    return {"mean": mean[0], "cov": centered.T @ centered / (features.shape[0] - 1)}


def evaluated(params: gj.Players, state) -> gj.Players:
    """The iterate and its EMA, stacked along a leading axis (0: iterate, 1: EMA)."""
    return jax.tree.map(lambda a, b: jnp.stack([a, b]), params, gj.averaged(state))


def train_family(family: str, alphas: list[float], cfg: dict, data: dict) -> dict:
    """Train one family for each (α, seed); return the final params (iterate, EMA), model states and curves.

    Leaves are stacked ``(α, seed, ...)``.
    """
    pair, classifier = data["pair"], data["classifier"]
    game = pair.game(gj.gan.non_saturating())
    log_every = cfg["steps"] // cfg["records"]

    def one(alpha, params, model_state, key, noise):
        tx = family_tx(family, alpha, cfg)

        def metrics(p, state):
            both = evaluated(p, state)
            return jax.vmap(lambda q: feature_moments(classifier, generate(pair, q, state.model_state, noise)))(both)

        result = gj.fit(
            game,
            tx,
            params,
            steps=cfg["steps"],
            sample=data["sample"],
            key=key,
            metrics=metrics,
            log_every=log_every,
            model_state=model_state,
        )
        return evaluated(result.params, result.state), result.state.model_state, result.metrics

    # One compiled program per family, called for each (α, seed): vmapping convolutions over runs with
    # different kernels makes grouped convolutions, slower on this CPU than running them one by one.
    run = jax.jit(one)
    start = time.perf_counter()
    outputs = [
        [
            run(
                jnp.float32(alpha),
                *jax.tree.map(lambda a, s=s: a[s], (data["params0"], data["state0"], data["keys"])),
                data["curve_noise"],
            )
            for s in range(data["keys"].shape[0])
        ]
        for alpha in alphas
    ]
    final, model_state, history = jax.tree.map(
        lambda *a: jnp.stack(a), *[jax.tree.map(lambda *b: jnp.stack(b), *o) for o in outputs]
    )
    jax.block_until_ready(final)
    return {"final": final, "model_state": model_state, "history": history, "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> dict:
    args = arguments(__doc__.splitlines()[0], argv, f"benchmarks/results/{NAME}")
    cfg = CONFIG[args.quick]
    begin = time.perf_counter()
    images = gj.data.digits("train", size=SIDE).images
    classifier = gj.metrics.digits_classifier()
    reference = np.asarray(classifier.features(gj.data.digits("test").images), np.float64)
    ref_mean, ref_cov = reference.mean(axis=0), np.cov(reference, rowvar=False)
    real = np.asarray(classifier.features(to_8x8(images)), np.float64)
    real_floor = float(frechet_from_moments(real.mean(0), np.cov(real, rowvar=False), ref_mean, ref_cov))
    seeds = list(range(cfg["seeds"]))
    noise_key, final_key, train_key = jax.random.split(jax.random.key(2021), 3)
    pairs = [pair_of(s, cfg["width"]) for s in seeds]
    data = {
        "pair": pairs[0],
        "classifier": classifier,
        "sample": gj.gan.batch_sampler(gj.data.sampler(images), NOISE, BATCH),
        "params0": jax.tree.map(lambda *a: jnp.stack(a), *[p.params for p in pairs]),
        "state0": jax.tree.map(lambda *a: jnp.stack(a), *[p.model_state for p in pairs]),
        "keys": jax.random.split(train_key, len(seeds)),
        "curve_noise": jax.random.normal(noise_key, (cfg["curve_samples"], NOISE), jnp.float32),
    }
    final_noise = jax.random.normal(final_key, (cfg["final_samples"], NOISE), jnp.float32)

    @jax.jit
    def final_moments(params, model_state):
        """(seed, evaluated) moments of ``final_samples`` images, and the first 36 images of each."""

        def per_seed(p2, ms):
            def per_evaluated(p):
                fake = generate(data["pair"], p, ms, final_noise)
                return feature_moments(classifier, fake), fake[:36]

            return jax.vmap(per_evaluated)(p2)

        return jax.vmap(per_seed)(params, model_state)

    families: dict[str, list[str]] = {}
    for name in cfg["methods"]:
        families.setdefault(METHODS[name][0], []).append(name)

    results, curves, samples, timing = {}, {}, {}, {}
    for family, names in families.items():
        out = train_family(family, [METHODS[n][1] for n in names], cfg, data)
        evaluation = time.perf_counter()
        history = jax.tree.map(np.asarray, out["history"])
        for v, name in enumerate(names):
            params = jax.tree.map(lambda a, v=v: a[v], out["final"])
            model_state = jax.tree.map(lambda a, v=v: a[v], out["model_state"])
            moments, fakes = jax.tree.map(np.asarray, final_moments(params, model_state))
            frechet = frechet_from_moments(moments["mean"], moments["cov"], ref_mean, ref_cov)  # (seed, evaluated)
            fd_curve = frechet_from_moments(history["mean"][v], history["cov"][v], ref_mean, ref_cov)
            curves[name] = {"step": history["step"][v, 0], "frechet": fd_curve}  # (seed, record, evaluated)
            samples[name] = fakes[0]  # seed 0: (evaluated, 36, 28, 28, 1)
            results[name] = {
                "family": family,
                "lookahead": None if METHODS[name][1] == 1.0 else {"k": cfg["k"], "alpha": ALPHA},
                "passes": float(history["passes"][v, 0, -1]),
                "frechet": frechet,
                "finite": bool(np.all(history["finite"][v])) and bool(np.all(np.isfinite(frechet))),
            }
        timing[family] = {"train": out["seconds"], "evaluate": time.perf_counter() - evaluation}
        print(f"{family} ({', '.join(names)}): trained in {out['seconds']:.1f} s (compiling included)", flush=True)
    seconds = time.perf_counter() - begin

    def mean_std(name: str, which: int) -> tuple[float, float]:
        values = results[name]["frechet"][:, which]
        return float(np.mean(values)), float(np.std(values))

    table = {name: {"no_avg": mean_std(name, 0), "ema": mean_std(name, 1)} for name in cfg["methods"]}
    print(f"\n{'method':<14}{'passes':>8}  {'FD no avg':>16}  {'FD EMA':>16}   (real-data floor {real_floor:.2f})")
    for name, row in table.items():
        cells = "  ".join(f"{row[c][0]:8.2f} ± {row[c][1]:5.2f}" for c in ("no_avg", "ema"))
        print(f"{name:<14}{results[name]['passes']:8.0f}  {cells}")

    claims = make_claims(results, table, curves, args.quick)
    fig = plot(samples, curves, table, real_floor, cfg)
    gen_params = sum(x.size for x in jax.tree.leaves(data["pair"].params.x))
    disc_params = sum(x.size for x in jax.tree.leaves(data["pair"].params.y))
    record = {
        "setup": {
            "data": f"sklearn 8x8 digits, train split (1437 images), upsampled bilinearly to {SIDE}x{SIDE}, [-1, 1]",
            "generator": f"DCGAN of Table 5, width {cfg['width']} (paper 64), noise {NOISE}: {gen_params} params",
            "discriminator": f"DCGAN of Table 5, width {cfg['width']} (paper 64): {disc_params} params",
            "loss": "non-saturating (paper eqs. 13-14)",
            "batch_size": BATCH,
            "adam": {"learning_rate": LR, "b1": B1, "b2": B2},
            "update_ratio": 1,
            "lookahead": {"k": cfg["k"], "alpha": ALPHA, "paper_k": 1000, "why": "k/T = 1% as the paper's 1000/100K"},
            "ema": {
                "beta": cfg["ema"],
                "paper_beta": 0.9999,
                "why": "horizon 1/(1-beta) = 10% of the run, as the paper's",
            },
            "budget": "equal iterations for every method (the paper's comparison); passes per method recorded",
            "metric": "Frechet distance, digits-classifier features of 8x8-downsampled samples vs the 360 test digits",
            "sampling": "generators in training mode (BatchNorm on the sampled batch's statistics)",
            "scaled_down": "width 8 instead of 64, 800 steps instead of 100K, 3 seeds instead of 5 (CPU budget)",
            **cfg,
        },
        "real_floor": real_floor,
        "table": table,
        "results": results,
        "curves": curves,
        "seconds": {"total": seconds, **timing},
    }
    return report(NAME, PAPER, record, claims, fig, args)


def make_claims(results: dict, table: dict, curves: dict, quick: bool) -> list[dict]:
    """Table 3's claims on this run; a claim whose methods a quick run does not train is marked untested."""
    short = "quick run: too short to test"
    ran = list(table)
    n_seeds = results[ran[0]]["frechet"].shape[0]

    def cell(name, column="no_avg"):
        return f"{name} {table[name][column][0]:.2f} ± {table[name][column][1]:.2f}"

    def paired(name, base):
        return int(np.sum(results[name]["frechet"][:, 0] < results[base]["frechet"][:, 0]))

    def checked(text, names, reproduced, detail):
        if quick or not set(names) <= set(ran):
            return claim(text, False, short, required=False)
        return claim(
            text,
            reproduced,
            detail if reproduced else f"{detail} — not reproduced at this CPU scale",
            required=reproduced,
        )

    claims = []
    for la, base in (("LA-AltGAN", "AltGAN"), ("LA-ExtraGrad", "ExtraGrad")):
        # Lower on average *and* on most paired seeds: a mean moved by one seed is not a reproduction.
        ok = (
            {la, base} <= set(ran)
            and table[la]["no_avg"][0] < table[base]["no_avg"][0]
            and 2 * paired(la, base) > n_seeds
        )
        detail = (
            f"FD, no avg: {cell(la)} vs {cell(base)}; lower on {paired(la, base)}/{n_seeds} paired seeds"
            if {la, base} <= set(ran)
            else ""
        )
        claims.append(
            checked(f"Lookahead improves its base method's iterates: {la} < {base} in FD", (la, base), ok, detail)
        )
    improved = [n for n in ran if table[n]["ema"][0] < table[n]["no_avg"][0]]
    detail = f"EMA lowers the FD of {len(improved)}/{len(ran)} ({', '.join(improved) or 'none'}): " + "; ".join(
        f"{n} {table[n]['no_avg'][0]:.2f} → {table[n]['ema'][0]:.2f}" for n in ran
    )
    claims.append(
        checked("EMA of the iterates improves the FD of all four methods", ALL, len(improved) == len(ALL), detail)
    )
    if {"ExtraGrad", "AltGAN"} <= set(ran):
        (eg, eg_std), (alt, alt_std) = table["ExtraGrad"]["no_avg"], table["AltGAN"]["no_avg"]
        same = abs(eg - alt) <= max(eg_std, alt_std)
        detail = f"{cell('ExtraGrad')} vs {cell('AltGAN')}: the means differ by {abs(eg - alt):.2f}"
    else:
        same, detail = False, ""
    claims.append(
        checked(
            "ExtraGrad and AltGAN reach the same FD on MNIST (within one standard deviation)",
            ("ExtraGrad", "AltGAN"),
            same,
            detail,
        )
    )
    finite = all(r["finite"] for r in results.values())
    first = {n: float(np.mean(curves[n]["frechet"][:, 0, 0])) for n in ran}
    claims.append(
        claim(
            "every run stays finite and every method's generator improves on its initialization (FD drops)",
            finite and all(table[n]["no_avg"][0] < first[n] for n in ran),
            "; ".join(f"{n}: FD {first[n]:.0f} → {table[n]['no_avg'][0]:.1f}" for n in ran),
        )
    )
    return claims


def plot(samples: dict, curves: dict, table: dict, real_floor: float, cfg: dict):
    names = list(table)
    ncols = max(len(names), 2)
    fig, axes = figure(ncols=ncols, nrows=3, size=(2.6, 2.7))
    grid = 6
    for col, name in enumerate(names):
        for row, (which, label) in enumerate(((0, "no avg"), (1, f"EMA {cfg['ema']}"))):
            ax = axes[row][col]
            tiles = samples[name][which][: grid * grid, :, :, 0]
            side = tiles.shape[1]
            mosaic = -np.ones((grid * (side + 1) - 1, grid * (side + 1) - 1))
            for i in range(grid):
                for j in range(grid):
                    mosaic[i * (side + 1) : i * (side + 1) + side, j * (side + 1) : j * (side + 1) + side] = tiles[
                        i * grid + j
                    ]
            ax.imshow(mosaic, cmap="gray_r", vmin=-1, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            column = "no_avg" if which == 0 else "ema"
            ax.set_title(f"{name}, {label}\nmean FD {table[name][column][0]:.1f} (seed 0 shown)", fontsize=8)
    gs = axes[2][0].get_gridspec()
    for ax in axes[2]:
        ax.remove()
    half = (ncols + 1) // 2
    for spot, (which, label) in zip(
        (slice(0, half), slice(half, ncols)), ((0, "iterates"), (1, f"EMA {cfg['ema']}")), strict=True
    ):
        ax = fig.add_subplot(gs[2, spot])
        for name in names:
            fd = curves[name]["frechet"][:, :, which]
            style = "-" if name.startswith("LA-") else "--"
            color = f"C{ALL.index(name)}"
            ax.plot(curves[name]["step"], np.median(fd, axis=0), style, marker=".", ms=3, color=color, label=name)
            ax.fill_between(curves[name]["step"], fd.min(axis=0), fd.max(axis=0), color=color, alpha=0.12)
        ax.axhline(real_floor, color="k", lw=0.8, ls=":", label="real digits")
        ax.set_yscale("log")
        ax.set(xlabel="step", ylabel="FD (median, range over seeds)", title=f"FD during training: {label}")
        ax.grid(alpha=0.3)
        if which == 0:
            ax.legend(fontsize=7)
    return fig


if __name__ == "__main__":
    main()
