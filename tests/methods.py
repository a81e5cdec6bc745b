"""Every method and wrapper of gamejax, for the common test suite (as Optax's alias_test).

A new method is not done until it is listed here and passes tests/test_common.py. Each
entry builds the transformation from a (possibly traced) learning rate and states how many
game evaluations one step costs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import optax

import gamejax as gj


class Method(NamedTuple):
    build: Callable[[float], gj.GameTransformation]
    evaluations: int
    sgd_based: bool = True  # converges to high accuracy on a monotone game with a small constant step
    rtol: float = 1e-12  # for equivalence checks; Optax schedules compute in float32
    passes: float | None = None  # cost per step in gradient-equivalents, if not `evaluations`
    variable_cost: bool = False  # the method reports what each step cost (a gj.PassCount in its state)
    anchored: bool = False  # pulled towards its start with weight ~1/k: its distance shrinks like 1/k


METHODS: dict[str, Method] = {
    "gda": Method(lambda lr: gj.gda(optax.sgd(lr)), 1),
    "gda-adam": Method(lambda lr: gj.gda(optax.adam(lr)), 1, sgd_based=False),
    "gda-player-pair": Method(lambda lr: gj.gda(gj.Players(optax.sgd(lr), optax.sgd(2 * lr, momentum=0.5))), 1),
    "gda-chain-clip-schedule": Method(
        lambda lr: gj.gda(
            optax.chain(optax.clip_by_global_norm(10.0), optax.sgd(optax.linear_schedule(lr, lr / 2, 50)))
        ),
        1,
        rtol=1e-6,
    ),
    "alternating": Method(lambda lr: gj.alternating(optax.sgd(lr), y_steps=2), 3),
    "alternating-x-first": Method(lambda lr: gj.alternating(optax.sgd(lr), x_steps=2, first="x"), 3),
    "extragradient": Method(lambda lr: gj.extragradient(optax.sgd(lr)), 2),
    "extra-adam": Method(lambda lr: gj.extragradient(optax.adam(lr)), 2, sgd_based=False),
    "extra-adam-frozen-extrapolation": Method(
        lambda lr: gj.extragradient(optax.adam(lr), extrapolation_updates_state=False), 2, sgd_based=False
    ),
    "anchored-extragradient": Method(lambda lr: gj.anchored_extragradient(lr), 2, anchored=True),
    "anchored-extragradient-varying-per-player": Method(
        lambda lr: gj.anchored_extragradient(gj.Players(lr, 0.8 * lr), variant="varying", lipschitz=2.0),
        2,
        anchored=True,
    ),
    "fast-extragradient-comonotone": Method(lambda lr: gj.fast_extragradient(lr, rho=-lr / 4), 2, anchored=True),
    "past-extragradient": Method(lambda lr: gj.past_extragradient(optax.sgd(lr)), 1),
    "past-extra-adam": Method(lambda lr: gj.past_extragradient(optax.adam(lr)), 1, sgd_based=False),
    "ogda": Method(lambda lr: gj.optimistic(optax.sgd(lr)), 1),
    "optimistic-adam": Method(lambda lr: gj.optimistic(optax.adam(lr), on="updates"), 1, sgd_based=False),
    "lookahead-gda": Method(lambda lr: gj.lookahead(3, 0.5)(gj.gda(optax.sgd(lr))), 1),
    "lookahead-extra-adam-per-player-alpha": Method(
        lambda lr: gj.lookahead(4, gj.Players(0.5, 0.3))(gj.extragradient(optax.adam(lr))), 2, sgd_based=False
    ),
    "nested-lookahead": Method(lambda lr: gj.lookahead(6, 0.5)(gj.lookahead(2, 0.5)(gj.alternating(optax.sgd(lr)))), 2),
    "alternating-lookahead": Method(
        lambda lr: gj.alternating_lookahead(optax.sgd(lr), k=gj.Players(2, 3), alpha=0.5, y_steps=2), 3
    ),
    "ema-several-decays": Method(lambda lr: gj.ema([0.9, 0.99])(gj.gda(optax.sgd(lr))), 1),
    "ema-slow": Method(lambda lr: gj.ema(0.9, every=3)(gj.lookahead(3, 0.5)(gj.optimistic(optax.sgd(lr)))), 1),
    "moving-average": Method(lambda lr: gj.moving_average(start=2)(gj.extragradient(optax.sgd(lr))), 2),
    "lead": Method(lambda lr: gj.lead(optax.sgd(lr, momentum=0.3), coupling=gj.Players(0.5, 1.0)), 2),
    "lead-adam-alternating": Method(
        lambda lr: gj.lead(optax.adam(lr), coupling=gj.Players(0.0, 0.3), alternating=True), 2, sgd_based=False
    ),
    "lead-authors": Method(
        lambda lr: gj.lead(optax.sgd(lr, momentum=0.3), coupling=gj.Players(0.5, 1.0), variant="authors"), 2
    ),
    "cgd": Method(lambda lr: gj.cgd(lr, tol=1e-10, maxiter=30), 1, variable_cost=True),
    "cgd-per-player-schedule": Method(
        lambda lr: gj.cgd(gj.Players(lr, optax.linear_schedule(lr, 2 * lr, 20)), tol=1e-10, maxiter=30),
        1,
        rtol=1e-6,
        variable_cost=True,
    ),
    "acgd": Method(lambda lr: gj.acgd(lr, tol=1e-10, maxiter=30), 1, sgd_based=False, variable_cost=True),
    "cgd-bicgstab": Method(lambda lr: gj.cgd(lr, tol=1e-10, maxiter=30, solver="bicgstab"), 1, variable_cost=True),
    "follow-the-ridge-per-player": Method(
        lambda lr: gj.follow_the_ridge(gj.Players(optax.sgd(lr), optax.sgd(2 * lr)), tol=1e-10, maxiter=30),
        1,
        variable_cost=True,
    ),
    "consensus-gda": Method(lambda lr: gj.consensus(0.5)(gj.gda(optax.sgd(lr))), 1, passes=3),
    "consensus-extragradient": Method(
        lambda lr: gj.consensus(gj.Players(0.5, 0.2))(gj.extragradient(optax.sgd(lr))), 2, passes=6
    ),
    "sga-gda": Method(lambda lr: gj.sga(1.0)(gj.gda(optax.sgd(lr))), 1, passes=3),
    "hamiltonian-gda": Method(lambda lr: gj.hamiltonian()(gj.gda(optax.sgd(lr))), 1, passes=3),
    "lola": Method(lambda lr: gj.lola(optax.sgd(lr), lookahead=lr), 1, passes=7),  # general-sum: 7, zero-sum: 3
    "sos-per-player": Method(
        lambda lr: gj.sos(gj.Players(optax.sgd(lr), optax.sgd(2 * lr)), lookahead=lr, b=0.5), 1, passes=7
    ),
    "sga-aligned-optimistic": Method(lambda lr: gj.sga(0.5, align=True)(gj.optimistic(optax.sgd(lr))), 1, passes=3),
    "lookahead-lead": Method(lambda lr: gj.lookahead(4, 0.5)(gj.lead(optax.sgd(lr), coupling=1.0)), 2),
    "ema-cgd": Method(lambda lr: gj.ema(0.9)(gj.cgd(lr, tol=1e-10, maxiter=30)), 1, variable_cost=True),
    "unroll-y": Method(lambda lr: gj.unrolled(optax.sgd(lr), unroll=optax.sgd(lr), steps=2), 4),
    "unroll-xy-adam-unrolling": Method(  # Adam's unrolled prediction stays ~lr away at the equilibrium
        lambda lr: gj.unrolled(optax.sgd(lr), unroll=optax.adam(lr), steps=2, players="xy"), 6, sgd_based=False
    ),
    "complex-momentum": Method(lambda lr: gj.gda(gj.complex_momentum(lr, 0.5 * np.exp(1j * np.pi / 8))), 1),
    "svre": Method(
        lambda lr: gj.svre(lr, full_batch=None, dataset_size=10, snapshot_cost=1.0, restart_probability=0.2),
        5,
        variable_cost=True,
    ),
}
