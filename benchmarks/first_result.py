"""Time to first result: ``gj.fit`` against a hand-written ``jax.jit(lax.scan(step))``, in fresh processes.

A user iterating in a notebook waits for compilation: this measures, for the README's Flax GAN
(``ema(lookahead(extragradient(adam)))`` on the 8-Gaussians ring, MLPs of width 64, batch 128),
the wall time from the call to a ready result, in a fresh Python process per measurement (so
every compilation and every first use of an eager operation is paid), alternating the two
programs and taking the median of ``--repeats`` processes each.

- ``hand-written``: ``tx.init`` eagerly, then one ``jax.jit`` of a ``lax.scan`` over the steps of
  ``gj.make_step(game, tx)``, sampling each batch inside the scan, returning the final params.
- ``gj.fit``: ``gj.fit(game, tx, params, steps=..., sample=..., key=...)`` with its defaults
  (metrics recorded every ``steps // 100`` steps).

The claim (issue 11): ``gj.fit`` takes at most 1.3× the hand-written time to its first result.
Run: ``python benchmarks/first_result.py [--quick] [--out DIR]``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap

import _common

SETUP = """
import time, jax, optax, gamejax as gj
from flax import nnx
ring = gj.data.ring()
pair = gj.flax.split(gj.flax.MLP((16, 64, 64, 2), rngs=nnx.Rngs(0)), gj.flax.MLP((2, 64, 64, 1), rngs=nnx.Rngs(1)))
game = pair.game(gj.gan.non_saturating())
tx = gj.ema(0.999)(gj.lookahead(k=5, alpha=0.5)(gj.extragradient(optax.adam(1e-3, b1=0.5))))
sample = gj.gan.batch_sampler(ring.sample, noise_dim=16, batch_size=128)
key = jax.random.key(0)
STEPS = {steps}
"""

HAND_WRITTEN = """
start = time.perf_counter()
step = gj.make_step(game, tx)

@jax.jit
def train(params, state, key):
    def body(carry, t):
        params, state = carry
        params, state, _ = step(params, state, sample(jax.random.fold_in(key, t)))
        return (params, state), None
    return jax.lax.scan(body, (params, state), jax.numpy.arange(STEPS))[0]

params, state = train(pair.params, tx.init(pair.params), key)
jax.block_until_ready(params)
print(time.perf_counter() - start)
"""

FIT = """
start = time.perf_counter()
result = gj.fit(game, tx, pair.params, steps=STEPS, sample=sample, key=key)
jax.block_until_ready(result.params)
print(time.perf_counter() - start)
"""


def measure(program: str, steps: int) -> float:
    code = textwrap.dedent(SETUP.format(steps=steps)) + textwrap.dedent(program)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=600)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    args = _common.arguments(__doc__.splitlines()[0], argv, "benchmarks/results/first_result")
    steps, repeats = (50, 1) if args.quick else (200, 5)
    times: dict[str, list[float]] = {"hand-written": [], "gj.fit": []}
    for _ in range(repeats):  # alternate, so that machine load hits both alike
        times["hand-written"].append(measure(HAND_WRITTEN, steps))
        times["gj.fit"].append(measure(FIT, steps))
    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = median["gj.fit"] / median["hand-written"]
    print(f"time to first result, {steps} steps, median of {repeats} fresh processes:")
    for name, value in median.items():
        print(f"  {name:13s} {value:6.2f} s")
    print(f"  ratio         {ratio:6.2f}")
    claims = [
        _common.claim(
            "gj.fit reaches its first result within 1.3x a hand-written jax.jit(lax.scan(step))",
            ratio <= 1.3,
            f"{median['gj.fit']:.2f} s vs {median['hand-written']:.2f} s ({ratio:.2f}x), {steps} steps",
            required=not args.quick,
        )
    ]
    fig, axes = _common.figure(size=(5.5, 3.5))
    ax = axes[0, 0]
    for i, (name, values) in enumerate(times.items()):
        ax.scatter([i] * len(values), values, color="0.6", s=12)
        ax.bar(i, median[name], width=0.5, alpha=0.7)
    ax.set_xticks(range(len(times)), list(times))
    ax.set_ylabel("seconds to first result (fresh process)")
    ax.set_title(f"README Flax GAN, {steps} steps: {ratio:.2f}x")
    record = {"steps": steps, "repeats": repeats, "times": times, "median": median, "ratio": ratio}
    return _common.report("first_result", "gamejax issue 11: time to first result", record, claims, fig, args)


if __name__ == "__main__":
    main()
