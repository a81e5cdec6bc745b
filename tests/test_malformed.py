"""Malformed input anywhere in the public API: the documented error or guard, never a silent wrong result.

Property-based (hypothesis). Every public constructor that takes a hyperparameter is fed values
drawn from outside its documented domain (negative, zero where the interval is open, NaN, ±inf,
booleans, strings, sequences, non-integral or NumPy numbers where a Python int fixes a shape,
``k < 1``, ``alpha`` outside ``(0, 1]``) and must raise ``ValueError`` whose message starts with
the argument's name (``"alpha (player y)"`` for a per-player value); values drawn from inside the
domain must be accepted, so each property can fail both ways. Traced values are never validated
(``jax.vmap`` sweeps; test_errors.py checks that such sweeps equal loops over concrete values).

The step-level properties feed ``jax.jit(gj.make_step(game, tx))`` and ``gj.fit`` params that are
not ``Players``, players of shapes a game cannot take, non-scalar losses, stacked batches whose
leaves disagree on the step axis and ``PerEvaluation`` batches of the wrong size. The last
section covers the state check of the step, ``gj.skip_nonfinite`` and ``FitResult.diverged_at``
(NaN/Inf injected into params and batches).

Keep it fast: hypothesis examples reuse compiled functions (``fit`` and ``jax.jit`` cache on the
transformation object, so transformations are built once at module level) and most error paths
raise while tracing, before anything is compiled.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from hypothesis import example, given, settings
from hypothesis import strategies as st
from methods import METHODS

import gamejax as gj

P = gj.Players
SGD = optax.sgd(0.1)
NAN, INF = float("nan"), float("inf")
KEY = jax.random.key(0)
FEW = settings(max_examples=12, deadline=None)
SOME = settings(max_examples=25, deadline=None)


def _tree_sum(tree):
    return sum((jnp.sum(leaf) for leaf in jax.tree.leaves(tree)), jnp.zeros(()))


def _tree_sq(tree):
    return sum((jnp.sum(leaf**2) for leaf in jax.tree.leaves(tree)), jnp.zeros(()))


# A strongly monotone zero-sum game that takes players of any structure and shape, so that
# malformed params reach the transformation's own checks instead of failing in the loss.
GAME = gj.zero_sum(lambda x, y: _tree_sum(x) * _tree_sum(y) + 0.5 * _tree_sq(x) - 0.5 * _tree_sq(y), name="any")
# The same game with a batch that shifts x's gradient: a NaN/Inf batch poisons x's update.
BATCH_GAME = gj.zero_sum(
    lambda x, y, b: _tree_sum(x) * _tree_sum(y) + 0.5 * _tree_sq(x) - 0.5 * _tree_sq(y) + _tree_sum(b) * _tree_sum(x),
    name="any, batched",
)
PARAMS = P(jnp.array([1.0, 2.0]), jnp.array([0.5, -1.0]))
SVRE = {"full_batch": None, "dataset_size": 10, "snapshot_cost": 1.0}
CENTERS = jnp.array([[-1.0, 0.0], [1.0, 0.0]])
SAMPLES = jnp.array([[-1.0, 0.1], [1.0, 0.0], [0.9, -0.1], [3.0, 3.0]])
BILINEAR = gj.games.bilinear()


def _real_sample(key, n):
    return jax.random.normal(key, (n, 2))


def _assert_names(error: Exception, label: str) -> None:
    """The message starts with the argument's name (``"x_steps and y_steps must"`` names both)."""
    message = str(error)
    assert re.match(rf"^([\w.]+ and )?{re.escape(label)}(?![\w])", message), (label, message)


# --------------------------------------------------------------------------------------------
# What running a constructed object means (to trace it with a traced hyperparameter)
# --------------------------------------------------------------------------------------------


def _gan_field(loss: gj.gan.GANLoss) -> Any:
    game = gj.gan.game(loss, lambda w, z: z @ w, lambda v, x: x @ v)
    batch = gj.gan.GANBatch(jnp.ones((4, 2)), jnp.ones((4, 3)), KEY)
    return game.field(P(jnp.ones((3, 2)), jnp.ones(2)), batch)


def _exercise(built: Any) -> Any:
    """Use what a constructor returned: one step of a transformation, a sample, a field, ..."""
    if isinstance(built, gj.games.GameProblem):
        return built.game.field(built.init)
    if isinstance(built, gj.gan.GANLoss):
        return _gan_field(built)
    if isinstance(built, gj.data.Mixture):
        return built.sample(KEY, 4)
    if isinstance(built, optax.GradientTransformation):
        built = gj.gda(built)
    elif callable(built):  # a wrapper: lookahead(k, alpha), ema(decay), consensus(gamma), ...
        built = built(gj.gda(SGD))
    if isinstance(built, gj.GameTransformation):
        updates, state = built.update(GAME, PARAMS, built.init(PARAMS))
        return gj.apply_updates(PARAMS, updates), state
    return built  # already computed (metrics)


def _nothing(built: Any) -> None:
    del built


# --------------------------------------------------------------------------------------------
# Hyperparameter domains
# --------------------------------------------------------------------------------------------


def _float32(value: float) -> np.float32:
    with np.errstate(over="ignore"):  # 1e300 becomes inf, still out of every bounded domain
        return np.float32(value)


FLOAT_WRAPPERS = (float, np.float64, _float32, jnp.asarray)
INT_WRAPPERS = (int, np.int64, np.int32, jnp.asarray)


@dataclasses.dataclass(frozen=True)
class Real:
    """A real hyperparameter whose documented domain is an interval."""

    build: Callable[[Any], Any]
    name: str
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = True
    high_open: bool = True
    per_player: bool = False  # one value or gj.Players(x, y)
    sequence: bool = False  # a 1-D sequence of values is valid too (several EMA decays)
    traced: bool = True  # documented to accept traced values
    wrappers: tuple = FLOAT_WRAPPERS  # the kinds of concrete numbers accepted
    valid: tuple[float, float] | None = None  # a narrower range valid values are drawn from
    use: Callable[[Any], Any] | None = None  # how to use what build returns (a sampler: draw a batch)

    def contains(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return bool(above and below)  # NaN: False


@dataclasses.dataclass(frozen=True)
class Integer:
    """An integer hyperparameter ``>= minimum`` (and ``<= maximum`` where a bound exists)."""

    build: Callable[[Any], Any]
    name: str
    minimum: int = 1
    maximum: int | None = None  # above it the constructor raises (e.g. batch_size > dim)
    span: int = 6  # valid draws lie in [minimum, minimum + span] (keeps valid builds cheap)
    numpy: bool = True  # NumPy and 0-d JAX integers are accepted (False: a Python int fixes a shape)
    per_player: bool = False
    traced: bool = False
    use: Callable[[Any], Any] | None = None
    wrappers: tuple | None = None  # the kinds of valid integers drawn (default: by `numpy`)


def _draw_key(sample: Callable) -> Any:
    return sample(KEY)


OPEN, CLOSED = True, False
POSITIVE = {"low": 0.0, "low_open": OPEN}
NON_NEGATIVE = {"low": 0.0, "low_open": CLOSED}

REALS: dict[str, Real] = {
    "lookahead.alpha": Real(lambda v: gj.lookahead(2, v), "alpha", 0.0, 1.0, OPEN, CLOSED, per_player=True),
    "alternating_lookahead.alpha": Real(
        lambda v: gj.alternating_lookahead(SGD, k=2, alpha=v), "alpha", 0.0, 1.0, OPEN, CLOSED, per_player=True
    ),
    "ema.decay": Real(gj.ema, "decay", 0.0, 1.0, CLOSED, CLOSED, sequence=True),
    "lead.coupling": Real(lambda v: gj.lead(SGD, coupling=v), "coupling", per_player=True),
    "cgd.learning_rate": Real(gj.cgd, "learning_rate", **POSITIVE, per_player=True),
    "cgd.tol": Real(lambda v: gj.cgd(0.1, tol=v), "tol", **NON_NEGATIVE),
    "acgd.learning_rate": Real(gj.acgd, "learning_rate", **POSITIVE, per_player=True),
    "acgd.beta2": Real(lambda v: gj.acgd(beta2=v), "beta2", 0.0, 1.0, CLOSED, OPEN),
    "acgd.eps": Real(lambda v: gj.acgd(eps=v), "eps", **POSITIVE),
    "consensus.gamma": Real(gj.consensus, "gamma", **NON_NEGATIVE, per_player=True),
    "sga.lam": Real(gj.sga, "lam", **NON_NEGATIVE, per_player=True),
    "sga.eps": Real(lambda v: gj.sga(1.0, align=True, eps=v), "eps", **NON_NEGATIVE),
    "anchored_extragradient.learning_rate": Real(
        gj.anchored_extragradient, "learning_rate", **POSITIVE, per_player=True
    ),
    "anchored_extragradient.lipschitz": Real(
        lambda v: gj.anchored_extragradient(1e-7, variant="varying", lipschitz=v), "lipschitz", **POSITIVE
    ),
    "fast_extragradient.learning_rate": Real(gj.fast_extragradient, "learning_rate", **POSITIVE, per_player=True),
    "fast_extragradient.rho": Real(lambda v: gj.fast_extragradient(1.0, rho=v), "rho", -0.5, math.inf, OPEN, OPEN),
    "follow_the_ridge.damping": Real(lambda v: gj.follow_the_ridge(SGD, damping=v), "damping", **NON_NEGATIVE),
    "follow_the_ridge.tol": Real(lambda v: gj.follow_the_ridge(SGD, tol=v), "tol", **NON_NEGATIVE),
    "lola.lookahead": Real(lambda v: gj.lola(SGD, lookahead=v), "lookahead", **NON_NEGATIVE),
    "sos.lookahead": Real(lambda v: gj.sos(SGD, lookahead=v), "lookahead", **NON_NEGATIVE),
    "sos.a": Real(lambda v: gj.sos(SGD, lookahead=0.1, a=v), "a", 0.0, 1.0, OPEN, OPEN),
    "sos.b": Real(lambda v: gj.sos(SGD, lookahead=0.1, b=v), "b", 0.0, 1.0, OPEN, OPEN),
    "svre.learning_rate": Real(lambda v: gj.svre(v, **SVRE), "learning_rate", **POSITIVE, per_player=True),
    "svre.snapshot_cost": Real(lambda v: gj.svre(0.1, **{**SVRE, "snapshot_cost": v}), "snapshot_cost", **NON_NEGATIVE),
    "svre.minibatch_scale": Real(lambda v: gj.svre(0.1, **SVRE, minibatch_scale=v), "minibatch_scale", **POSITIVE),
    "svre.restart_probability": Real(
        lambda v: gj.svre(0.1, **SVRE, restart_probability=v), "restart_probability", 0.0, 1.0, CLOSED, CLOSED
    ),
    "complex_momentum.learning_rate": Real(lambda v: gj.complex_momentum(v, 0.5), "learning_rate", **POSITIVE),
    "gan.gradient_penalty.weight": Real(
        lambda v: gj.gan.gradient_penalty(gj.gan.wgan(), v, at="fake"), "weight", **NON_NEGATIVE
    ),
    "gan.gradient_penalty.center": Real(
        lambda v: gj.gan.gradient_penalty(gj.gan.wgan(), 1.0, center=v, at="fake"), "center", **NON_NEGATIVE
    ),
    "gan.zero_gp.weight": Real(lambda v: gj.gan.zero_gp(gj.gan.hinge(), v), "weight", **NON_NEGATIVE),
    "gan.wgan_gp.weight": Real(gj.gan.wgan_gp, "weight", **NON_NEGATIVE),
    "games.quadratic.h": Real(lambda v: gj.games.quadratic(jnp.eye(2), h=v), "h"),
    "data.ring.radius": Real(lambda v: gj.data.ring(radius=v), "radius", **POSITIVE),
    "data.ring.std": Real(lambda v: gj.data.ring(std=v), "std", **POSITIVE),
    "data.grid.spacing": Real(lambda v: gj.data.grid(spacing=v), "spacing", **POSITIVE),
    "data.grid.std": Real(lambda v: gj.data.grid(std=v), "std", **POSITIVE),
    "data.Mixture.std": Real(lambda v: gj.data.Mixture(CENTERS, v).sample(KEY, 4), "Mixture.std", **NON_NEGATIVE),
    "data.digits.test_fraction": Real(
        lambda v: gj.data.digits("test", test_fraction=v),
        "test_fraction",
        0.0,
        1.0,
        OPEN,
        OPEN,
        traced=False,
        wrappers=(float, np.float64),
        valid=(0.01, 0.99),  # each split must hold an image of every class
    ),
    "metrics.mode_metrics.std": Real(lambda v: gj.metrics.mode_metrics(SAMPLES, CENTERS, v), "std", **POSITIVE),
    "metrics.mode_metrics.threshold": Real(
        lambda v: gj.metrics.mode_metrics(SAMPLES, CENTERS, 0.1, threshold=v), "threshold", **POSITIVE
    ),
    "metrics.mode_metrics.min_fraction": Real(
        lambda v: gj.metrics.mode_metrics(SAMPLES, CENTERS, 0.1, min_fraction=v), "min_fraction", **NON_NEGATIVE
    ),
}

INTEGERS: dict[str, Integer] = {
    "lookahead.k": Integer(lambda k: gj.lookahead(k, 0.5), "k", traced=True),
    "alternating_lookahead.k": Integer(lambda k: gj.alternating_lookahead(SGD, k=k), "k", per_player=True, traced=True),
    "alternating.x_steps": Integer(lambda n: gj.alternating(SGD, x_steps=n), "x_steps", numpy=False),
    "alternating.y_steps": Integer(lambda n: gj.alternating(SGD, y_steps=n), "y_steps", numpy=False),
    "alternating_lookahead.y_steps": Integer(
        lambda n: gj.alternating_lookahead(SGD, k=2, y_steps=n), "y_steps", numpy=False
    ),
    "ema.every": Integer(lambda n: gj.ema(0.9, every=n), "every", traced=True),
    "moving_average.start": Integer(lambda n: gj.moving_average(start=n), "start", minimum=0, traced=True),
    "moving_average.every": Integer(lambda n: gj.moving_average(every=n), "every", traced=True),
    "per_evaluation.n": Integer(
        lambda n: gj.per_evaluation(lambda key: jax.random.normal(key, (2,)), n),
        "n",
        use=_draw_key,
    ),
    "cgd.maxiter": Integer(lambda n: gj.cgd(0.1, maxiter=n), "maxiter"),
    "acgd.maxiter": Integer(lambda n: gj.acgd(maxiter=n), "maxiter"),
    "follow_the_ridge.maxiter": Integer(lambda n: gj.follow_the_ridge(SGD, maxiter=n), "maxiter"),
    "svre.dataset_size": Integer(lambda n: gj.svre(0.1, **{**SVRE, "dataset_size": n}), "dataset_size"),
    "unrolled.steps": Integer(lambda n: gj.unrolled(SGD, unroll=SGD, steps=n), "steps", numpy=False),
    "games.sbg.dim": Integer(lambda n: gj.games.sbg(KEY, dim=n), "dim"),
    "games.sbg_sampler.batch_size": Integer(
        lambda n: gj.games.sbg_sampler(n, dim=5), "batch_size", maximum=5, span=4, use=_draw_key
    ),
    "games.sbg_sampler.dim": Integer(lambda n: gj.games.sbg_sampler(1, dim=n), "dim", use=_draw_key),
    "gan.batch_sampler.noise_dim": Integer(
        lambda n: gj.gan.batch_sampler(_real_sample, n, 4), "noise_dim", use=_draw_key
    ),
    "gan.batch_sampler.batch_size": Integer(
        lambda n: gj.gan.batch_sampler(_real_sample, 2, n), "batch_size", use=_draw_key
    ),
    "data.ring.n_modes": Integer(lambda n: gj.data.ring(n_modes=n), "n_modes", numpy=False),
    "data.grid.rows": Integer(lambda n: gj.data.grid(rows=n), "rows", numpy=False),
    "data.grid.cols": Integer(lambda n: gj.data.grid(cols=n), "cols", numpy=False),
    "data.digits.seed": Integer(lambda n: gj.data.digits("test", seed=n), "seed", minimum=0, span=2),
    "step_jacobian.steps": Integer(
        lambda n: gj.step_jacobian(BILINEAR[0], gj.gda(SGD), BILINEAR[1], steps=n), "steps", span=2
    ),
    "step_jacobian.warmup": Integer(
        lambda n: gj.step_jacobian(BILINEAR[0], gj.gda(SGD), BILINEAR[1], warmup=n), "warmup", minimum=0, span=2
    ),
}

# Values that are not a real number, whatever the domain (a per-player spec gets them per player).
NOT_NUMBERS = ["0.5", "", None, True, False, np.True_, 0.5 + 0.5j, {"v": 0.5}, [[0.5]], jnp.ones((2, 2)), object()]
NOT_ONE_NUMBER = [[0.5], (0.5,), [], [0.5, 0.5], jnp.full(2, 0.5), P(0.5, 0.5)]  # fine where sequences are


def _wrapped_floats(values: st.SearchStrategy, wrappers: tuple) -> st.SearchStrategy:
    return st.tuples(values, st.sampled_from(wrappers)).map(lambda pair: pair[1](pair[0]))


def _valid_float(spec: Real) -> st.SearchStrategy:
    low, high = spec.valid or (max(spec.low, -1e6), min(spec.high, 1e6))
    values = st.floats(
        low, high, exclude_min=spec.low_open and low == spec.low, exclude_max=spec.high_open and high == spec.high
    )
    # np.float32 rounds: keep what is still inside the domain after wrapping.
    return _wrapped_floats(values, spec.wrappers).filter(lambda v: spec.contains(float(v)))


def _invalid_float(spec: Real) -> st.SearchStrategy:
    parts = [st.just(v) for v in (NAN, INF, -INF) if not spec.contains(v)]
    if spec.low > -math.inf:
        parts.append(st.floats(max_value=spec.low, exclude_max=not spec.low_open, allow_nan=False))
    if spec.high < math.inf:
        parts.append(st.floats(min_value=spec.high, exclude_min=not spec.high_open, allow_nan=False))
    return _wrapped_floats(st.one_of(parts), FLOAT_WRAPPERS).filter(lambda v: not spec.contains(float(v)))


@st.composite
def valid_real(draw, spec: Real) -> Any:
    one = _valid_float(spec)
    if spec.sequence and draw(st.booleans()):
        return draw(st.lists(one, min_size=1, max_size=3))
    if spec.per_player and draw(st.booleans()):
        return P(draw(one), draw(one))
    return draw(one)


@st.composite
def invalid_real(draw, spec: Real) -> tuple[Any, str]:
    """An invalid value and the label its error must start with."""
    bad = [_invalid_float(spec), st.sampled_from(NOT_NUMBERS)]
    if not spec.sequence:
        bad.append(st.sampled_from(NOT_ONE_NUMBER))
    if spec.sequence:  # a sequence with one bad entry
        bad.append(
            st.tuples(st.lists(_valid_float(spec), max_size=2), _invalid_float(spec)).map(lambda t: [*t[0], t[1]])
        )
    value = draw(st.one_of(bad))
    if not spec.per_player:
        return value, spec.name
    where = draw(st.sampled_from(["both", "x", "y"]))
    if where == "both":
        if isinstance(value, P):  # a Players of two valid numbers is a valid per-player value
            value = P(value, 0.5)
            where = "x"
        return value, f"{spec.name} (player x)"
    other = draw(_valid_float(spec))
    return (P(value, other) if where == "x" else P(other, value)), f"{spec.name} (player {where})"


def _int_wrappers(spec: Integer) -> tuple:
    return spec.wrappers or (INT_WRAPPERS if spec.numpy else (int,))


@st.composite
def valid_integer(draw, spec: Integer) -> Any:
    top = spec.minimum + spec.span if spec.maximum is None else spec.maximum
    one = _wrapped_floats(st.integers(spec.minimum, top), _int_wrappers(spec))
    if spec.per_player and draw(st.booleans()):
        return P(draw(one), draw(one))
    return draw(one)


@st.composite
def invalid_integer(draw, spec: Integer) -> tuple[Any, str]:
    too_small = _wrapped_floats(st.integers(-(10**6), spec.minimum - 1), INT_WRAPPERS)
    valid = st.integers(spec.minimum, spec.minimum + 3)
    integral_floats = _wrapped_floats(valid.map(float), FLOAT_WRAPPERS)  # 2.0 is not an int
    fractions = st.floats(allow_nan=True).filter(lambda v: not float(v).is_integer())
    bad = [too_small, integral_floats, fractions, st.sampled_from([INF, -INF, "2", None, True, False, [2], (2,)])]
    if not spec.numpy:  # a shape: NumPy and JAX integers are refused too
        bad.append(_wrapped_floats(valid, (np.int64, np.int32, jnp.asarray)))
    if spec.maximum is not None:
        bad.append(st.integers(spec.maximum + 1, spec.maximum + 1000))
    if not spec.per_player:
        bad.append(st.just(P(2, 2)))
    value = draw(st.one_of(bad))
    if not spec.per_player:
        return value, spec.name
    where = draw(st.sampled_from(["both", "x", "y"]))
    if where == "both":
        return value, f"{spec.name} (player x)"
    other = draw(valid)
    return (P(value, other) if where == "x" else P(other, value)), f"{spec.name} (player {where})"


SPECS = {**{f"real:{k}": v for k, v in REALS.items()}, **{f"int:{k}": v for k, v in INTEGERS.items()}}


def _invalid(spec):
    return invalid_real(spec) if isinstance(spec, Real) else invalid_integer(spec)


def _valid(spec):
    return valid_real(spec) if isinstance(spec, Real) else valid_integer(spec)


# --------------------------------------------------------------------------------------------
# Constructors: invalid values raise ValueError naming the argument, valid ones are accepted
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
@FEW
@given(data=st.data())
def test_invalid_hyperparameters_are_rejected_naming_the_argument(name, data):
    spec = SPECS[name]
    value, label = data.draw(_invalid(spec), label="value")
    with pytest.raises(ValueError) as info:
        spec.build(value)
    _assert_names(info.value, label)


@pytest.mark.parametrize("name", sorted(SPECS))
@FEW
@given(data=st.data())
def test_valid_hyperparameters_are_accepted(name, data):
    """Constructing (and drawing from a sampler) raises nothing; traced abstractly, nothing compiles.

    A whole step with every method is run by test_common.py, and with traced values below.
    """
    spec = SPECS[name]
    value = data.draw(_valid(spec), label="value")
    jax.eval_shape(lambda: (spec.use or _nothing)(spec.build(value)))


CHOICES = {
    "alternating.first": (lambda v: gj.alternating(SGD, first=v), "first", ("x", "y")),
    "optimistic.on": (lambda v: gj.optimistic(SGD, on=v), "on", ("gradients", "updates")),
    "unrolled.players": (lambda v: gj.unrolled(SGD, unroll=SGD, steps=1, players=v), "players", ("y", "xy")),
    "ema.init": (lambda v: gj.ema(0.9, init=v), "init", ("params", "first")),
    "gan.gradient_penalty.at": (
        lambda v: gj.gan.gradient_penalty(gj.gan.wgan(), 1.0, at=v),
        "at",
        ("real", "fake", "interpolates"),
    ),
    "data.digits.split": (lambda v: gj.data.digits(v), "split", ("train", "test", "all")),
}


@SOME
@given(
    name=st.sampled_from(sorted(CHOICES)),
    value=st.one_of(st.text(max_size=6), st.sampled_from([None, 0, 1.0, True, ("x",), "X", " y", "Y"])),
    valid=st.booleans(),
)
def test_choices_accept_exactly_the_documented_strings(name, value, valid):
    build, argument, choices = CHOICES[name]
    if valid:
        build(choices[len(str(value)) % len(choices)])
        return
    if isinstance(value, str) and value in choices:
        return
    with pytest.raises(ValueError) as info:
        build(value)
    _assert_names(info.value, argument)


# complex_momentum's beta is a complex number with |beta| < 1, the only complex hyperparameter.
_phases = st.floats(-math.pi, math.pi)


@FEW
@given(
    magnitude=st.floats(1.0 + 1e-9, 1e6),
    phase=_phases,
    other=st.sampled_from([NAN, complex(NAN, 0.0), INF, "0.5", None, True, False, [0.5], jnp.full(2, 0.5)]),
    use_other=st.booleans(),
)
def test_complex_momentum_rejects_beta_outside_the_unit_disc(magnitude, phase, other, use_other):
    beta = other if use_other else magnitude * np.exp(1j * phase)
    with pytest.raises(ValueError) as info:
        gj.complex_momentum(0.1, beta)
    _assert_names(info.value, "beta")


@FEW
@given(magnitude=st.floats(0.0, 0.999), phase=_phases, wrap=st.sampled_from([complex, np.complex64, jnp.asarray]))
def test_complex_momentum_accepts_beta_inside_the_unit_disc(magnitude, phase, wrap):
    beta = wrap(magnitude * np.exp(1j * phase))
    params, state = jax.eval_shape(lambda: _exercise(gj.complex_momentum(0.1, beta)))
    chex.assert_trees_all_equal_shapes_and_dtypes(params, PARAMS)  # real params, complex buffer
    assert all(jnp.issubdtype(leaf.dtype, jnp.complexfloating) for leaf in jax.tree.leaves(state))


@FEW
@given(
    sizes=st.lists(st.integers(1, 4), min_size=2, max_size=4),
    bad=st.sampled_from([0, -1, 2.5, 3.0, True, "3", None, np.float64(2.0)]),
    where=st.integers(0, 3),
    valid=st.booleans(),
)
def test_mlp_sizes_are_integers_of_at_least_one(sizes, bad, where, valid):
    if valid:
        out = jax.eval_shape(lambda: gj.flax.MLP(sizes, rngs=nnx.Rngs(0))(jnp.ones((3, sizes[0]))))
        assert out.shape == (3, sizes[-1])
        return
    sizes[where % len(sizes)] = bad
    with pytest.raises(ValueError) as info:
        gj.flax.MLP(sizes, rngs=nnx.Rngs(0))
    _assert_names(info.value, "sizes")


# --------------------------------------------------------------------------------------------
# Traced hyperparameters are not validated
# --------------------------------------------------------------------------------------------

TRACEABLE = sorted(name for name, spec in SPECS.items() if spec.traced)


@SOME
@given(name=st.sampled_from(TRACEABLE), value=st.floats(), integer=st.integers(-3, 5))
def test_traced_hyperparameters_are_never_rejected(name, value, integer):
    """Any traced value, even NaN or k = 0, passes construction and one whole step (vmap sweeps)."""
    spec = SPECS[name]
    traced = jnp.asarray(integer) if isinstance(spec, Integer) else jnp.asarray(value)
    jax.eval_shape(lambda v: (spec.use or _exercise)(spec.build(v)), traced)


# --------------------------------------------------------------------------------------------
# Games, data and metrics given non-finite or ill-shaped arrays
# --------------------------------------------------------------------------------------------

non_finite = st.sampled_from([NAN, INF, -INF])


@FEW
@given(
    entries=st.lists(st.integers(-3, 3), min_size=4, max_size=4),
    b=st.lists(st.integers(-3, 3), min_size=2, max_size=2),
    c=st.lists(st.integers(-3, 3), min_size=2, max_size=2),
)
def test_affine_bilinear_needs_an_invertible_matrix(entries, b, c):
    """Integer entries: the determinant is exact, so singular means singular."""
    A = np.array(entries, float).reshape(2, 2)
    if round(np.linalg.det(A)) == 0:
        with pytest.raises(ValueError, match=r"^A must be invertible"):
            gj.games.affine_bilinear(A, b, c)
        return
    game, init, equilibrium = gj.games.affine_bilinear(A, b, c)
    np.testing.assert_allclose(A @ equilibrium.y + np.array(b), 0.0, atol=1e-12)
    np.testing.assert_allclose(A.T @ equilibrium.x + np.array(c), 0.0, atol=1e-12)
    chex.assert_trees_all_close(game.field(equilibrium), P(jnp.zeros(2), jnp.zeros(2)), atol=1e-12)


@FEW
@given(argument=st.sampled_from(["A", "b", "c"]), index=st.integers(0, 3), value=non_finite)
def test_game_constructors_reject_non_finite_arrays(argument, index, value):
    arrays = {"A": np.eye(2), "b": np.ones(2), "c": np.ones(2)}
    flat = arrays[argument].reshape(-1)
    flat[index % flat.size] = value
    with pytest.raises(ValueError) as info:
        gj.games.affine_bilinear(**arrays)
    _assert_names(info.value, argument)
    if argument == "A":
        with pytest.raises(ValueError) as info:
            gj.games.quadratic(arrays["A"])
        _assert_names(info.value, "A")


init_shapes = st.sampled_from([(), (1,), (2,), (3,), (2, 1)])


@FEW
@given(x_shape=init_shapes, y_shape=init_shapes, kind=st.sampled_from(["players", "tuple", "dict"]))
def test_game_constructors_check_the_initial_point(x_shape, y_shape, kind):
    init = P(jnp.zeros(x_shape), jnp.zeros(y_shape))
    if kind != "players":
        init = tuple(init) if kind == "tuple" else init._asdict()
        with pytest.raises(TypeError, match=r"^init must be gj\.Players"):
            gj.games.quadratic(jnp.eye(2), init=init)
        return
    if x_shape == y_shape == (2,):
        problem = gj.games.affine_bilinear(jnp.eye(2), jnp.ones(2), jnp.ones(2), init=init)
        assert problem.init is init
        return
    for make in (gj.games.quadratic, lambda A, init: gj.games.affine_bilinear(A, jnp.ones(2), jnp.ones(2), init)):
        with pytest.raises(ValueError, match=r"^init\.[xy] has shape"):
            make(jnp.eye(2), init=init)


@FEW
@given(which=st.sampled_from(["a", "b"]), index=st.integers(0, 5), value=non_finite)
def test_wasserstein_refuses_non_finite_points(which, index, value):
    a, b = np.zeros((3, 2)), np.ones((3, 2))
    (a if which == "a" else b).reshape(-1)[index] = value
    with pytest.raises(ValueError, match=rf"^{which} must be finite; it holds 1 NaN/inf values"):
        gj.metrics.wasserstein1(a, b)


@FEW
@given(shape=st.sampled_from([(), (0,), (0, 2), (2,), (2, 2, 1)]))
def test_mixture_and_sampler_reject_arrays_without_rows(shape):
    if len(shape) != 2 or shape[0] == 0:
        with pytest.raises(ValueError, match=r"^Mixture\.centers must have shape \(m, d\)"):
            gj.data.Mixture(jnp.zeros(shape), 0.1).sample(KEY, 3)
    if len(shape) == 0 or shape[0] == 0:
        with pytest.raises(ValueError, match=r"^data must be an array with at least one row"):
            gj.data.sampler(jnp.zeros(shape))
    else:
        assert jax.eval_shape(lambda: gj.data.sampler(jnp.zeros(shape))(KEY, 3)).shape == (3, *shape[1:])


# --------------------------------------------------------------------------------------------
# Games and losses
# --------------------------------------------------------------------------------------------

NOT_CALLABLE = [None, 3.0, "loss", jnp.ones(2), P(None, None), {"f": None}]


@FEW
@given(value=st.sampled_from(NOT_CALLABLE), which=st.sampled_from(["zero_sum", "loss_x", "loss_y"]))
def test_games_need_callable_losses(value, which):
    def loss(x, y):
        return jnp.sum(x * y)

    with pytest.raises(TypeError, match=r"must be a callable loss\(x, y\[, batch\]\); got"):
        if which == "zero_sum":
            gj.zero_sum(value)
        else:
            gj.general_sum(value, loss) if which == "loss_x" else gj.general_sum(loss, value)


loss_shapes = st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple)


@FEW
@given(shape=loss_shapes, which=st.sampled_from(["zero-sum", "x", "y"]), through=st.sampled_from(["step", "fit"]))
def test_non_scalar_losses_are_rejected_by_the_step_and_fit(shape, which, through):
    def vector(x, y):
        return jnp.ones(shape) * _tree_sum(x) * _tree_sum(y)

    def scalar(x, y):
        return _tree_sum(x) * _tree_sum(y)

    if which == "zero-sum":
        game, name = gj.zero_sum(vector), "the zero-sum loss f"
    else:
        game = gj.general_sum(vector, scalar) if which == "x" else gj.general_sum(scalar, vector)
        name = f"loss_{which}"
    tx = gj.gda(SGD)
    pattern = rf"^{name} must return a scalar; it returned an array of shape {re.escape(str(shape))}"
    with pytest.raises(ValueError, match=pattern):
        if through == "step":
            jax.jit(gj.make_step(game, tx))(PARAMS, tx.init(PARAMS))
        else:
            gj.fit(game, tx, PARAMS, steps=1)


@FEW
@given(dtype=st.sampled_from([jnp.int32, jnp.int64, jnp.bool_, jnp.complex64]))
def test_non_real_losses_are_rejected_by_the_step(dtype):
    game = gj.zero_sum(lambda x, y: (_tree_sum(x) * _tree_sum(y)).astype(dtype))
    tx = gj.gda(SGD)
    with pytest.raises(ValueError, match=r"must return a real floating-point scalar; got dtype"):
        jax.jit(gj.make_step(game, tx))(PARAMS, tx.init(PARAMS))


# --------------------------------------------------------------------------------------------
# The step: params that are not Players, players a game cannot take, PerEvaluation sizes
# --------------------------------------------------------------------------------------------

PLAYERS_PATTERN = r"^params must be gj\.Players\(x=\.\.\., y=\.\.\.\), one pytree per player; got "
NOT_PLAYERS = {
    "tuple": lambda p: tuple(p),
    "list": lambda p: list(p),
    "dict": lambda p: p._asdict(),
    "array": lambda p: jnp.stack(p),
    "nested": lambda p: P(p, p)._asdict(),
}


@SOME
@given(method=st.sampled_from(sorted(METHODS)), kind=st.sampled_from(sorted(NOT_PLAYERS)))
def test_the_step_and_init_reject_params_that_are_not_players(method, kind):
    tx = METHODS[method].build(0.1)
    bad = NOT_PLAYERS[kind](PARAMS)
    with pytest.raises(TypeError, match=PLAYERS_PATTERN):
        tx.init(bad)
    with pytest.raises((TypeError, ValueError)) as info:
        jax.jit(gj.make_step(GAME, tx))(bad, tx.init(PARAMS))
    message = str(info.value)
    assert re.match(PLAYERS_PATTERN, message) or "params does not have the tree structure" in message, message
    with pytest.raises(TypeError, match=PLAYERS_PATTERN):
        gj.fit(GAME, tx, bad, steps=1)


BILINEAR_STEP = jax.jit(gj.make_step(BILINEAR.game, gj.gda(SGD)))


@FEW
@given(x_shape=init_shapes, y_shape=init_shapes)
def test_players_of_shapes_a_scalar_game_cannot_take_are_rejected(x_shape, y_shape):
    """x·y of non-scalar players is not a scalar loss; only () and () is a step, the exact one."""
    tx = gj.gda(SGD)
    params = P(jnp.full(x_shape, 2.0), jnp.full(y_shape, 3.0))
    if x_shape == y_shape == ():
        new, _, _ = BILINEAR_STEP(params, tx.init(params))
        chex.assert_trees_all_close(new, P(2.0 - 0.1 * 3.0, 3.0 + 0.1 * 2.0), rtol=1e-12)
        return
    with pytest.raises((ValueError, TypeError), match=r"must return a scalar|broadcast|incompatible shapes"):
        BILINEAR_STEP(params, tx.init(params))


PER_EVALUATION = {
    "gda": gj.gda(SGD),
    "extragradient": gj.extragradient(SGD),
    "alternating(y_steps=2)": gj.alternating(SGD, y_steps=2),
    "lookahead(extragradient)": gj.lookahead(2, 0.5)(gj.extragradient(SGD)),
    "lead": gj.lead(SGD, coupling=0.5),
    "unrolled(steps=2)": gj.unrolled(SGD, unroll=SGD, steps=2),
    "consensus(gda)": gj.consensus(0.5)(gj.gda(SGD)),
}
_PER_EVALUATION_STEPS = {name: jax.jit(gj.make_step(BATCH_GAME, tx)) for name, tx in PER_EVALUATION.items()}


@functools.cache
def _evaluations(name: str) -> int:
    return gj.evaluations_per_step(BATCH_GAME, PER_EVALUATION[name], PARAMS)


@SOME
@given(name=st.sampled_from(sorted(PER_EVALUATION)), size=st.integers(1, 6), trailing=st.sampled_from([(), (2,)]))
def test_per_evaluation_batches_need_one_slice_per_evaluation(name, size, trailing):
    tx, n = PER_EVALUATION[name], _evaluations(name)
    batch = gj.PerEvaluation(jnp.zeros((size, *trailing)))
    step = _PER_EVALUATION_STEPS[name]
    if size == n:
        params, _, _ = jax.eval_shape(step, PARAMS, tx.init(PARAMS), batch)  # traced: nothing compiles
        chex.assert_trees_all_equal_shapes_and_dtypes(params, PARAMS)
        return
    with pytest.raises(ValueError, match=rf"evaluates the game {n} time\(s\) per step.*size {n} on every leaf"):
        step(PARAMS, tx.init(PARAMS), batch)


# --------------------------------------------------------------------------------------------
# fit's stacked batches
# --------------------------------------------------------------------------------------------

FIT_TX = gj.gda(SGD)
VALID_BATCHES = {"a": jnp.arange(6.0).reshape(3, 2), "b": jnp.array([1.0, -2.0, 0.5])}


@st.composite
def stacked_batches(draw):
    """A dict of 1–3 leaves, each with a drawn leading size (0 = empty, None = a 0-d leaf)."""
    sizes = draw(st.lists(st.sampled_from([None, 0, 1, 2, 3]), min_size=0, max_size=3))
    return {f"leaf{i}": jnp.zeros(()) if s is None else jnp.zeros((s, 2)) for i, s in enumerate(sizes)}


@SOME
@given(batches=st.one_of(stacked_batches(), st.just(VALID_BATCHES)))
def test_fit_batches_need_one_shared_non_zero_step_axis(batches):
    steps = 5  # fixed: fit compiles once per step count
    sizes = {leaf.shape[0] if leaf.ndim else None for leaf in jax.tree.leaves(batches)}
    if len(sizes) == 1 and None not in sizes and 0 not in sizes:
        if batches is not VALID_BATCHES:  # another valid layout (compiles again): covered below
            return
        result = gj.fit(BATCH_GAME, FIT_TX, PARAMS, steps=steps, batches=batches, log_every=steps)
        params, state = PARAMS, FIT_TX.init(PARAMS)
        for t in range(steps):  # step t uses slice t % 3, as documented
            updates, state = FIT_TX.update(BATCH_GAME, params, state, jax.tree.map(lambda a, t=t: a[t % 3], batches))
            params = gj.apply_updates(params, updates)
        chex.assert_trees_all_close(result.params, params, rtol=1e-12)
        return
    pattern = r"^batches must be a non-empty pytree whose leaves all have the same non-zero leading \(step\) axis"
    with pytest.raises(ValueError, match=pattern):
        gj.fit(BATCH_GAME, FIT_TX, PARAMS, steps=steps, batches=batches)


# --------------------------------------------------------------------------------------------
# The step's state check, gj.skip_nonfinite and FitResult.diverged_at
# --------------------------------------------------------------------------------------------

# Transformations whose state depends on the params in different ways (none, per leaf, per
# player, counters only), built once so that jit reuses its traces across examples.
STATEFUL = {
    name: METHODS[name].build(0.1)
    for name in ["gda", "gda-adam", "ogda", "lookahead-gda", "ema-several-decays", "lead", "cgd", "svre", "unroll-y"]
}
_STATEFUL_STEPS = {name: jax.jit(gj.make_step(GAME, tx)) for name, tx in STATEFUL.items()}


def _other_params(kind: str, shape: tuple, dtype) -> P:
    """Params a state may have been built from instead of PARAMS."""
    x, y = PARAMS
    if kind == "x-shape":
        return P(jnp.ones(shape), y)
    if kind == "y-shape":
        return P(x, jnp.ones(shape))
    if kind == "dtype":
        return jax.tree.map(lambda a: a.astype(dtype), PARAMS)
    if kind == "extra-leaf":
        return P((x, jnp.ones(1)), y)
    if kind == "dict-x":
        return P({"w": x}, y)
    return PARAMS


def _first_difference(state: Any, expected: Any) -> str | None:
    """The key path of the first leaf of ``expected`` whose shape or dtype differs in ``state``."""
    for (path, want), got in zip(
        jax.tree_util.tree_flatten_with_path(expected)[0], jax.tree.leaves(state), strict=True
    ):
        if (jnp.shape(got), jnp.asarray(got).dtype) != (want.shape, want.dtype):
            return jax.tree_util.keystr(path)
    return None


@SOME
@given(
    method=st.sampled_from(sorted(STATEFUL)),
    kind=st.sampled_from(["same", "x-shape", "y-shape", "dtype", "extra-leaf", "dict-x", "other-method"]),
    shape=st.sampled_from([(), (1,), (3,), (2, 1)]),
    dtype=st.sampled_from([jnp.float32, jnp.float64]),
    params_dtype=st.sampled_from([jnp.float64, jnp.float32]),
    other_method=st.sampled_from(sorted(STATEFUL)),
)
def test_the_step_rejects_a_state_that_does_not_match_tx_init(method, kind, shape, dtype, params_dtype, other_method):
    """(a) A state for other params or another stack: a ValueError naming the first mismatch."""
    tx = STATEFUL[method]
    params = jax.tree.map(lambda a: a.astype(params_dtype), PARAMS)
    if kind == "other-method":
        state = STATEFUL[other_method].init(params)
    else:
        state = tx.init(_other_params(kind, shape, dtype))
    expected = jax.eval_shape(tx.init, params)
    step = _STATEFUL_STEPS[method]
    same_structure = jax.tree.structure(state) == jax.tree.structure(expected)
    if same_structure and _first_difference(state, expected) is None:
        jax.eval_shape(step, params, state)  # traces the jitted step: its checks pass
        return
    with pytest.raises(ValueError, match=r"^state does not match tx\.init\(params\)") as info:
        jax.eval_shape(step, params, state)
    if same_structure:
        path = _first_difference(state, expected)
        assert path in str(info.value), (path, str(info.value))


@FEW
@given(value=st.one_of(st.integers(-5, 0), st.sampled_from([1.0, 2.5, NAN, True, "2", None, np.float64(3.0)])))
def test_skip_nonfinite_max_consecutive_is_an_integer_of_at_least_one(value):
    with pytest.raises(ValueError, match=r"^max_consecutive must be an integer >= 1; got"):
        gj.skip_nonfinite(max_consecutive=value)


@FEW
@given(value=_wrapped_floats(st.integers(1, 50), INT_WRAPPERS))
def test_skip_nonfinite_accepts_a_positive_integer(value):
    tx = gj.skip_nonfinite(max_consecutive=value)(gj.gda(SGD))
    assert isinstance(tx, gj.GameTransformation)
    assert isinstance(tx.init(PARAMS), gj.SkipNonFiniteState)


STEPS = 8
INNER = {"gda-adam": gj.gda(optax.adam(0.05)), "lookahead-extragradient": gj.lookahead(2, 0.5)(gj.extragradient(SGD))}
_INNER_STEPS = {name: jax.jit(gj.make_step(BATCH_GAME, tx)) for name, tx in INNER.items()}


@functools.cache
def _guarded(inner: str, max_consecutive: int | None) -> gj.GameTransformation:
    """Built once per configuration, so that fit's compiled program is reused across examples."""
    if max_consecutive is None:
        return INNER[inner]
    return gj.skip_nonfinite(max_consecutive=max_consecutive)(INNER[inner])


@functools.cache
def _jitted_step(tx: gj.GameTransformation) -> Callable:
    return jax.jit(gj.make_step(BATCH_GAME, tx))


def _reference(inner: str, batches: np.ndarray, poisoned: set, max_consecutive: int | None):
    """A plain loop that does not apply the poisoned steps, written without the guard.

    Returns (params, inner state, diverged_at, consecutive, skipped, gave_up): without a guard
    the run stops at the first poisoned step (its 1-based number is diverged_at); with one,
    poisoned steps are skipped until ``max_consecutive`` come in a row, where it gives up.
    """
    step, tx = _INNER_STEPS[inner], INNER[inner]
    params, state = PARAMS, tx.init(PARAMS)
    consecutive = skipped = 0
    for t in range(STEPS):
        if t not in poisoned:
            params, state, _ = step(params, state, batches[t])
            consecutive = 0
            continue
        if max_consecutive is None:
            return params, state, t + 1, consecutive, skipped, False
        consecutive, skipped = consecutive + 1, skipped + 1
        if consecutive >= max_consecutive:
            return params, state, t + 1, consecutive, skipped, True
    return params, state, -1, consecutive, skipped, False


@st.composite
def poisoned_batches(draw):
    """Finite stacked batches with NaN/±Inf injected into the steps a drawn mask marks."""
    batches = np.asarray(draw(st.lists(st.floats(-1, 1), min_size=2 * STEPS, max_size=2 * STEPS))).reshape(STEPS, 2)
    mask = draw(st.lists(st.booleans(), min_size=STEPS, max_size=STEPS))
    poisoned = {t for t, bad in enumerate(mask) if bad}
    for t in poisoned:
        batches[t, draw(st.integers(0, 1))] = draw(non_finite)
    return batches, poisoned


def _poison(steps: set) -> tuple[np.ndarray, set]:
    batches = np.tile([0.25, -0.5], (STEPS, 1))
    batches[sorted(steps), 0] = NAN
    return batches, steps


# Unguarded; guarded Adam that gives up after 2 in a row; a guarded lookahead stack (skips keep
# its step counter, as the reference's unapplied steps do). One compiled fit each.
GUARDS = [("gda-adam", None), ("gda-adam", 2), ("lookahead-extragradient", 3)]


@pytest.mark.parametrize("config", GUARDS, ids=lambda c: f"{c[0]}-{c[1]}")
@settings(max_examples=8, deadline=None)  # each example is a whole fit (compiled once per config)
@given(poison=poisoned_batches())
@example(poison=_poison({2}))  # a skip between finite steps
@example(poison=_poison({1, 2, 5}))  # two in a row, then another
def test_fit_on_poisoned_batches_skips_or_stops_at_the_first_non_finite_step(config, poison):
    """(b), (c): the guarded run is the run without the poisoned steps; unguarded, fit stops at the first."""
    inner, max_consecutive = config
    batches, poisoned = poison
    tx = _guarded(inner, max_consecutive)
    result = gj.fit(BATCH_GAME, tx, PARAMS, steps=STEPS, batches=jnp.asarray(batches), log_every=STEPS)
    params, state, diverged_at, consecutive, skipped, gave_up = _reference(inner, batches, poisoned, max_consecutive)
    assert result.diverged_at.dtype == jnp.int32
    assert int(result.diverged_at) == diverged_at, (int(result.diverged_at), diverged_at, sorted(poisoned))
    chex.assert_tree_all_finite(result.params)
    chex.assert_trees_all_close(result.params, params, rtol=1e-10, atol=1e-12)
    if max_consecutive is None:
        return
    guard = result.state
    assert isinstance(guard, gj.SkipNonFiniteState)
    assert bool(guard.gave_up) == gave_up
    if not gave_up:
        assert (int(guard.consecutive), int(guard.skipped)) == (consecutive, skipped)
        assert guard.consecutive.dtype == guard.skipped.dtype == jnp.int32
        chex.assert_trees_all_close(guard.inner, state, rtol=1e-10, atol=1e-12)


@FEW
@given(player=st.sampled_from(["x", "y"]), index=st.integers(0, 1), value=non_finite)
def test_a_guarded_step_leaves_non_finite_params_unchanged_then_gives_up(player, index, value):
    """(b) NaN/Inf in the params: zero updates, the inner state kept, and after N in a row, gave_up."""
    tx = _guarded("gda-adam", 3)
    step = _jitted_step(tx)
    leaf = getattr(PARAMS, player).at[index].set(value)
    params = PARAMS._replace(**{player: leaf})
    state = tx.init(params)
    for n in range(1, 4):
        new, state, _ = step(params, state, jnp.zeros(2))
        jax.tree.map(np.testing.assert_array_equal, new, params)  # NaN in place, nothing else moved
        jax.tree.map(np.testing.assert_array_equal, state.inner, tx.init(params).inner)
        assert (int(state.consecutive), int(state.skipped), bool(state.gave_up)) == (n, n, n == 3)


@FEW
@given(player=st.sampled_from(["x", "y"]), index=st.integers(0, 1), value=non_finite)
def test_fit_rejects_non_finite_initial_params(player, index, value):
    params = PARAMS._replace(**{player: getattr(PARAMS, player).at[index].set(value)})
    with pytest.raises(ValueError, match="params"):
        gj.fit(BATCH_GAME, INNER["gda-adam"], params, steps=2, batches=jnp.zeros((2, 2)))
