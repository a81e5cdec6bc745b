"""Averaging paper, §3.1: EMA on the bilinear game keeps a limit cycle of shrinking amplitude.

Alternating GDA on ``min_x max_y x·y`` rotates on a closed orbit (its step has determinant 1):
each coordinate is a sinusoid of ``θ = arccos(1 − η²/2)`` radians per step. The EMA of a
sinusoid is a sinusoid scaled by the filter's gain ``(1 − β)/|1 − β e^{−iθ}|``; the averaging
paper's continuous-time analysis (orbit ``(cos t, sin t)``, EMA discount ``β`` per unit time)
gives the amplitude ``a/√(1 + a²)`` with ``a = −ln β``, i.e. ``a = −ln(β)/θ`` per step here —
``≈ |ln β|`` for β near 1, the paper's "ln(β) cos(T)". Several decays are tracked in one run
(``gj.ema([...])``), and the uniform moving average is run for comparison.

    python benchmarks/averaging_ema.py [--quick] [--out benchmarks/results/averaging_ema]
"""

from __future__ import annotations

import jax
import numpy as np
import optax
from _common import arguments, claim, figure, report

import gamejax as gj

PAPER = (
    "Averaging paper (Yazıcı et al. 2019), §3.1: on the bilinear game EMA does not converge to the equilibrium but to "
    "a limit cycle around it whose amplitude vanishes as β → 1 (≈ |ln β| of the orbit's), while the uniform moving "
    "average converges."
)
ETA = 0.05


def main(argv: list[str] | None = None) -> dict:
    args = arguments(__doc__.splitlines()[0], argv, "benchmarks/results/averaging_ema")
    jax.config.update("jax_enable_x64", True)
    decays = np.array([0.9, 0.95, 0.99, 0.995]) if args.quick else np.array([0.9, 0.95, 0.99, 0.995, 0.999, 0.9995])
    theta = float(np.arccos(1 - ETA**2 / 2))
    period = int(np.ceil(2 * np.pi / theta))
    burn = int(12 / (1 - decays.max()))  # transients decay like β^t
    window = 4 * period
    game, init, _ = gj.games.bilinear()
    tx = gj.moving_average()(gj.ema(list(decays))(gj.alternating(optax.sgd(ETA))))

    def readout(params, state):
        return {"ema_x": gj.averaged(state.inner).x, "ma_x": gj.averaged(state).x, "x": params.x}

    warm = gj.fit(game, tx, init, steps=burn, log_every=burn, metrics=readout)
    tail = gj.fit(
        game, tx, warm.params, state=warm.state, initial_step=warm.step, steps=window, log_every=1, metrics=readout
    )
    x, ema_x, ma_x = (np.asarray(tail.metrics[k]) for k in ("x", "ema_x", "ma_x"))

    def amplitude(series):
        return (series.max(axis=0) - series.min(axis=0)) / 2

    gain = amplitude(ema_x) / amplitude(x)
    filter_gain = (1 - decays) / np.abs(1 - decays * np.exp(-1j * theta))
    a = -np.log(decays) / theta
    paper = a / np.sqrt(1 + a**2)
    ma_amplitude = float(amplitude(ma_x) / amplitude(x))

    near_one = decays >= 0.99
    claims = [
        claim(
            "EMA does not converge: a limit cycle remains for every β",
            bool(np.all(gain > 1e-4)),
            "relative amplitudes " + ", ".join(f"β={b}: {g:.4f}" for b, g in zip(decays, gain, strict=True)),
        ),
        claim(
            "its amplitude shrinks as β → 1", bool(np.all(np.diff(gain) < 0)), f"from {gain[0]:.4f} to {gain[-1]:.4f}"
        ),
        claim(
            "the amplitude is the EMA filter's gain on the orbit's sinusoid, (1 − β)/|1 − βe^(−iθ)|",
            float(np.max(np.abs(gain / filter_gain - 1))) < 0.01,
            f"largest relative error {np.max(np.abs(gain / filter_gain - 1)):.2e}",
        ),
        claim(
            "the paper's continuous-time amplitude a/√(1 + a²), a = −ln(β)/θ, matches for β near 1",
            float(np.max(np.abs(gain[near_one] / paper[near_one] - 1))) < 0.05,
            f"largest relative error for β ≥ 0.99: {np.max(np.abs(gain[near_one] / paper[near_one] - 1)):.3f}",
        ),
        claim(
            "the uniform moving average converges (its oscillation is far smaller than any EMA's)",
            ma_amplitude < gain.min() / 5,
            f"MA relative amplitude {ma_amplitude:.2e} after {burn + window} steps",
        ),
    ]

    fig, axes = figure(ncols=2, size=(5.5, 4.2))
    left, right = axes[0]
    steps = np.arange(len(x))
    left.plot(steps, x / amplitude(x), color="gray", lw=0.8, label="iterate x")
    for b, series in zip(decays, ema_x.T, strict=True):
        left.plot(steps, series / amplitude(x), lw=1.2, label=f"EMA β={b}")
    left.plot(steps, ma_x / amplitude(x), color="black", lw=1.5, label="MA")
    left.set(xlabel=f"step after {burn}", ylabel="x / orbit amplitude", title="alternating GDA on x·y")
    left.legend(fontsize=7)
    right.loglog(1 - decays, gain, "o", label="measured")
    right.loglog(1 - decays, filter_gain, "-", label="EMA filter gain")
    right.loglog(1 - decays, paper, "--", label="paper: a/√(1+a²)")
    right.set(xlabel="1 − β", ylabel="EMA amplitude / orbit amplitude", title="limit-cycle amplitude")
    right.legend(fontsize=8)
    record = {
        "eta": ETA,
        "theta": theta,
        "decays": decays,
        "relative_amplitude": gain,
        "filter_gain": filter_gain,
        "paper_continuous": paper,
        "moving_average_relative_amplitude": ma_amplitude,
    }
    return report("averaging_ema", PAPER, record, claims, fig, args)


if __name__ == "__main__":
    main()
