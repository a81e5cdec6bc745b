"""Every documented error path of the public API raises a clear error.

Project rule: invalid hyperparameters raise ``ValueError`` naming the argument at construction;
mismatched pytrees, non-scalar losses and wrong shapes raise an error that says what was
expected. Hyperparameters are validated only when concrete, so traced values (``jax.vmap``
sweeps) pass.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gamejax as gj
from gamejax.cli import main

P = gj.Players
SGD = optax.sgd(0.1)


def _tree_sum(tree):
    return sum(jnp.sum(leaf) for leaf in jax.tree.leaves(tree))


def _tree_sq(tree):
    return sum(jnp.sum(leaf**2) for leaf in jax.tree.leaves(tree))


# A strongly monotone zero-sum game that accepts players of any structure and shape, so that
# state/params mismatches reach the transformation's own checks.
GAME = gj.zero_sum(
    lambda x, y: _tree_sum(x) * _tree_sum(y) + 0.5 * _tree_sq(x) - 0.5 * _tree_sq(y),
    name="any-structure quadratic",
)
# The same game with a batch (for PerEvaluation and fit's batches).
BATCH_GAME = gj.zero_sum(
    lambda x, y, batch: _tree_sum(x) * _tree_sum(y) + _tree_sum(batch) * _tree_sum(x),
    name="batched",
)
PARAMS = P(jnp.array([1.0, 2.0]), jnp.array([0.5, -1.0]))


def _players(x_shape=(2,), y_shape=(2,), dtype=jnp.float64):
    return P(jnp.ones(x_shape, dtype), jnp.ones(y_shape, dtype))


# --------------------------------------------------------------------------------------------
# Construction-time hyperparameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, -1, 1.5, True, 1.0, "2", None, jnp.array(2.0)])
def test_lookahead_rejects_bad_k(k):
    with pytest.raises(ValueError, match=r"^k must be an integer >= 1; got"):
        gj.lookahead(k, 0.5)


@pytest.mark.parametrize("alpha", [0, 0.0, 1.5, -0.1, float("nan"), float("inf")])
def test_lookahead_rejects_bad_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha \(player x\) must lie in \(0\.0, 1\.0\]"):
        gj.lookahead(2, alpha)


@pytest.mark.parametrize(
    ("alpha", "player"),
    [(P(0.5, 2.0), "y"), (P(0.0, 0.5), "x"), (P(0.5, float("nan")), "y")],
)
def test_lookahead_rejects_bad_per_player_alpha(alpha, player):
    with pytest.raises(ValueError, match=rf"alpha \(player {player}\) must lie in \(0\.0, 1\.0\]"):
        gj.lookahead(2, alpha)


@pytest.mark.parametrize("alpha", ["abc", None, True, [0.5, 0.7]])
def test_lookahead_rejects_non_numeric_alpha(alpha):
    with pytest.raises(ValueError, match=r"alpha \(player x\) must be a (real|single) number; got"):
        gj.lookahead(2, alpha)


def test_lookahead_rejects_numeric_string_alpha():
    with pytest.raises((TypeError, ValueError), match="alpha"):
        gj.lookahead(2, "0.5")


def test_lookahead_accepts_zero_d_numpy_int_k():
    gj.lookahead(np.array(2), 0.5)


@pytest.mark.parametrize("decay", [-0.1, 1.1, float("nan"), [0.9, 1.2]])
def test_ema_rejects_bad_decay(decay):
    with pytest.raises(ValueError, match=r"decay must lie in \[0\.0, 1\.0\]"):
        gj.ema(decay)


@pytest.mark.parametrize("decay", [None, "0.9", False])
def test_ema_rejects_a_decay_that_is_not_a_number(decay):
    with pytest.raises(ValueError, match=r"decay must be a real number; got"):
        gj.ema(decay)


@pytest.mark.parametrize("decay", [jnp.full((2, 2), 0.9), [[0.9]], np.full((1, 3), 0.5)])
def test_ema_rejects_decay_of_rank_two(decay):
    with pytest.raises(ValueError, match=r"decay must be a number or a non-empty 1-D sequence.*got shape"):
        gj.ema(decay)


def test_ema_rejects_empty_decays():
    with pytest.raises(ValueError, match="decay"):
        gj.ema([])


def test_ema_rejects_string_decay_naming_it():
    with pytest.raises((TypeError, ValueError), match="decay"):
        gj.ema("0.9")


@pytest.mark.parametrize(
    "make",
    [
        lambda: gj.ema(0.9, every=0),
        lambda: gj.ema(0.9, every=-2),
        lambda: gj.ema(0.9, every=1.5),
        lambda: gj.moving_average(every=0),
    ],
    ids=["ema-0", "ema-negative", "ema-float", "moving-average-0"],
)
def test_averaging_rejects_bad_every(make):
    with pytest.raises(ValueError, match=r"^every must be an integer >= 1; got"):
        make()


@pytest.mark.parametrize("start", [-1, 1.5, True])
def test_moving_average_rejects_bad_start(start):
    with pytest.raises(ValueError, match=r"^start must be an integer >= 0; got"):
        gj.moving_average(start=start)


@pytest.mark.parametrize("method", [gj.alternating, gj.alternating_lookahead])
@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"y_steps": 0}, r"^y_steps must be an integer >= 1; got 0"),
        ({"y_steps": -3}, r"^y_steps must be an integer >= 1; got -3"),
        ({"x_steps": 2.5}, r"^x_steps must be an integer >= 1; got 2\.5"),
        ({"x_steps": 0}, r"^x_steps must be an integer >= 1; got 0"),
        ({"first": "z"}, r"^first must be one of \('x', 'y'\); got 'z'"),
        ({"y_steps": np.int64(2)}, r"x_steps and y_steps must be Python ints"),
    ],
)
def test_alternating_rejects_bad_schedule(method, kwargs, pattern):
    extra = {"k": 2} if method is gj.alternating_lookahead else {}
    with pytest.raises(ValueError, match=pattern):
        method(SGD, **kwargs, **extra)


@pytest.mark.parametrize("on", ["foo", "gradient", None])
def test_optimistic_rejects_bad_on(on):
    with pytest.raises(ValueError, match=r"^on must be one of \('gradients', 'updates'\)"):
        gj.optimistic(SGD, on=on)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"k": P(2, 0)}, r"k \(player y\) must be an integer >= 1; got 0"),
        ({"k": P(1.5, 2)}, r"k \(player x\) must be an integer >= 1; got 1\.5"),
        ({"k": 0}, r"k \(player x\) must be an integer >= 1; got 0"),
        ({"k": 2, "alpha": P(0.5, 0.0)}, r"alpha \(player y\) must lie in \(0\.0, 1\.0\]"),
        ({"k": 2, "alpha": 1.5}, r"alpha \(player x\) must lie in \(0\.0, 1\.0\]"),
    ],
)
def test_alternating_lookahead_rejects_bad_k_and_alpha(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        gj.alternating_lookahead(SGD, **kwargs)


@pytest.mark.parametrize("n", [0, -1, 1.5])
def test_per_evaluation_rejects_bad_n(n):
    with pytest.raises(ValueError, match=r"^n must be an integer >= 1; got"):
        gj.per_evaluation(lambda key: jax.random.normal(key, (2,)), n)


def test_sbg_sampler_rejects_bad_sizes():
    with pytest.raises(ValueError, match=r"^batch_size must be an integer >= 1; got 0"):
        gj.games.sbg_sampler(0)
    with pytest.raises(ValueError, match=r"batch_size must be at most dim=100.*got 101"):
        gj.games.sbg_sampler(101, dim=100)
    with pytest.raises(ValueError, match=r"^dim must be an integer >= 1; got 0"):
        gj.games.sbg_sampler(1, dim=0)
    with pytest.raises(ValueError, match=r"^dim must be an integer >= 1; got 0"):
        gj.games.sbg(jax.random.key(0), dim=0)


def test_builtin_games_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"A must be a square matrix; got shape \(2, 3\)"):
        gj.games.affine_bilinear(jnp.ones((2, 3)), jnp.ones(2), jnp.ones(2))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\); got \(3,\)"):
        gj.games.affine_bilinear(jnp.eye(2), jnp.ones(3), jnp.ones(2))
    with pytest.raises(ValueError, match=r"c must have shape \(2,\); got \(1,\)"):
        gj.games.affine_bilinear(jnp.eye(2), jnp.ones(2), jnp.ones(1))
    with pytest.raises(ValueError, match=r"A must be a square matrix; got shape \(3,\)"):
        gj.games.quadratic(jnp.ones(3))


def test_sbg_rejects_a_batch_that_is_not_int_indices():
    game, init, _ = gj.games.sbg(jax.random.key(0), dim=4)
    with pytest.raises(ValueError, match=r"SB-G batch is a 1-D int array of sample indices"):
        game.field(init, jnp.zeros(2))


# --------------------------------------------------------------------------------------------
# Traced hyperparameters are not validated (vmap sweeps)
# --------------------------------------------------------------------------------------------


def _one_step(tx):
    state = tx.init(PARAMS)
    updates, state = tx.update(GAME, PARAMS, state)
    return gj.apply_updates(PARAMS, updates), state


def _assert_sweep_matches_loop(build, values):
    """``vmap`` over traced hyperparameter values gives the loop over concrete values.

    The values of each sweep are chosen so that they already differ after one step (k = 1
    backtracks at the first step, k = 2 does not; likewise for ``every`` and ``start``).
    """
    swept = jax.vmap(lambda v: _one_step(build(v)))(jnp.asarray(values))
    looped = [_one_step(build(v)) for v in values]
    stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *looped)
    assert jax.tree.structure(swept) == jax.tree.structure(stacked)
    for got, want in zip(jax.tree.leaves(swept), jax.tree.leaves(stacked), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


SWEEPS = {
    "lookahead-alpha": (lambda a: gj.lookahead(1, a)(gj.gda(SGD)), [0.3, 1.0]),
    "lookahead-per-player-alpha": (
        lambda a: gj.lookahead(1, P(a, 0.5))(gj.gda(SGD)),
        [0.3, 0.7],
    ),
    "lookahead-k": (lambda k: gj.lookahead(k, 0.5)(gj.gda(SGD)), [1, 2]),
    "ema-decay": (lambda d: gj.ema(d)(gj.gda(SGD)), [0.0, 0.9]),
    "ema-decay-vector": (lambda d: gj.ema(jnp.stack([d, d / 2]))(gj.gda(SGD)), [0.5, 0.9]),
    "ema-every": (lambda e: gj.ema(0.5, every=e)(gj.gda(SGD)), [1, 2]),
    "moving-average-start": (lambda s: gj.moving_average(start=s)(gj.gda(SGD)), [0, 1]),
    "moving-average-every": (lambda e: gj.moving_average(every=e)(gj.gda(SGD)), [1, 2]),
    "alternating-lookahead-k": (
        lambda k: gj.alternating_lookahead(SGD, k=k, alpha=0.5),
        [1, 2],
    ),
    "alternating-lookahead-per-player-k": (
        lambda k: gj.alternating_lookahead(SGD, k=P(k, 2), alpha=0.5),
        [1, 3],
    ),
    "alternating-lookahead-alpha": (
        lambda a: gj.alternating_lookahead(SGD, k=1, alpha=a),
        [0.3, 0.9],
    ),
}


@pytest.mark.parametrize("name", sorted(SWEEPS))
def test_traced_hyperparameters_are_not_rejected(name):
    build, values = SWEEPS[name]
    _assert_sweep_matches_loop(build, values)


def test_traced_decays_in_a_list_are_not_rejected():
    _assert_sweep_matches_loop(lambda d: gj.ema([d, 0.5])(gj.gda(SGD)), [0.5, 0.9])


def test_traced_alpha_under_jit_is_not_rejected():
    run = jax.jit(lambda a: _one_step(gj.lookahead(1, a)(gj.gda(SGD)))[0])
    got = run(0.3)
    want = _one_step(gj.lookahead(1, 0.3)(gj.gda(SGD)))[0]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Base optimizers and wrapped transformations
# --------------------------------------------------------------------------------------------

METHODS = {
    "gda": gj.gda,
    "alternating": gj.alternating,
    "extragradient": gj.extragradient,
    "optimistic": gj.optimistic,
    "alternating_lookahead": lambda base: gj.alternating_lookahead(base, k=2),
}


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize(
    ("base", "pattern"),
    [
        ((SGD, SGD), r"got tuple\. To give each player its own optimizer, pass gj\.Players"),
        ([SGD, SGD], r"got list\. To give each player its own optimizer, pass gj\.Players"),
        (
            {"x": SGD, "y": SGD},
            r"got dict\. To give each player its own optimizer, pass gj\.Players",
        ),
        ("sgd", r"^base must be an optax\.GradientTransformation .* or gj\.Players.*got str"),
        (None, r"^base must be an optax\.GradientTransformation .* or gj\.Players.*got NoneType"),
        (P(SGD, "sgd"), r"^base\.y must be an optax\.GradientTransformation.*got str"),
        (P(None, SGD), r"^base\.x must be an optax\.GradientTransformation.*got NoneType"),
    ],
    ids=["tuple", "list", "dict", "string", "none", "players-bad-y", "players-bad-x"],
)
def test_methods_reject_bad_base(method, base, pattern):
    with pytest.raises(TypeError, match=pattern):
        METHODS[method](base)


def test_method_rejects_a_game_transformation_as_base():
    pattern = r"base must be an Optax optimizer such as optax\.adam\(1e-3\); got a gj\.GameTransformation"
    with pytest.raises(TypeError, match=pattern):
        gj.gda(gj.gda(SGD))


LOOKAHEAD_WRAPS = r"lookahead\(k, alpha\) wraps a gj\.GameTransformation, e\.g\. .*; got "
EMA_WRAPS = r"ema\(\.\.\.\) wraps a gj\.GameTransformation, e\.g\. .*; got "
MA_WRAPS = r"moving_average\(\.\.\.\) wraps a gj\.GameTransformation, e\.g\. .*; got "


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: gj.lookahead(2, 0.5)(SGD), LOOKAHEAD_WRAPS + "GradientTransformation"),
        (lambda: gj.lookahead(2, 0.5)(None), LOOKAHEAD_WRAPS + "NoneType"),
        (lambda: gj.ema(0.9)(None), EMA_WRAPS + "NoneType"),
        (lambda: gj.ema(0.9)(SGD), EMA_WRAPS + "GradientTransformation"),
        (lambda: gj.moving_average()(SGD), MA_WRAPS + "GradientTransformation"),
        (lambda: gj.moving_average()(gj.gda), MA_WRAPS + "function"),
    ],
    ids=["lookahead-optax", "lookahead-none", "ema-none", "ema-optax", "ma-optax", "ma-function"],
)
def test_wrappers_reject_non_game_transformations(make, pattern):
    with pytest.raises(TypeError, match=pattern):
        make()


@pytest.mark.parametrize(
    ("make", "usage"),
    [(lambda inner: gj.lookahead(inner), "gj.lookahead(k, alpha)(inner)"), (gj.ema, "gj.ema(decay)(inner)")],
)
def test_a_forgotten_second_call_of_a_wrapper_says_how_to_call_it(make, usage):
    with pytest.raises(TypeError, match=r"^Wrappers are curried: write " + re.escape(usage)):
        make(gj.gda(SGD))


# --------------------------------------------------------------------------------------------
# Games
# --------------------------------------------------------------------------------------------


def test_zero_sum_vector_loss_fails_at_first_field_evaluation():
    game = gj.zero_sum(lambda x, y: x * y)  # constructing is fine: the check needs a call
    pattern = r"the zero-sum loss f must return a scalar; it returned an array of shape \(2,\)"
    with pytest.raises(ValueError, match=pattern):
        game.field(PARAMS)
    with pytest.raises(ValueError, match=pattern):
        jax.jit(game.field)(PARAMS)
    tx = gj.gda(SGD)
    with pytest.raises(ValueError, match=pattern):
        tx.update(game, PARAMS, tx.init(PARAMS))


@pytest.mark.parametrize("player", ["x", "y"])
def test_general_sum_vector_loss_names_the_loss(player):
    vector, scalar = (lambda x, y: x * y), (lambda x, y: jnp.sum(x * y))
    game = gj.general_sum(vector, scalar) if player == "x" else gj.general_sum(scalar, vector)
    with pytest.raises(ValueError, match=rf"loss_{player} must return a scalar; .*shape \(2,\)"):
        game.field(PARAMS)


@pytest.mark.parametrize("loss", [lambda x, y: jnp.int32(1), lambda x, y: jnp.sum(x * y) + 0j], ids=["int", "complex"])
def test_zero_sum_non_real_loss_is_rejected(loss):
    with pytest.raises(ValueError, match=r"must return a real floating-point scalar; got dtype"):
        gj.zero_sum(loss).field(PARAMS)


@pytest.mark.parametrize(
    "loss",
    [lambda x: x, lambda: 0.0, lambda x, *, y: 0.0],
    ids=["one-argument", "no-argument", "keyword-only-y"],
)
def test_loss_with_wrong_signature_is_rejected_at_construction(loss):
    expected = (
        r"must take the two players' params \(x, y\) and optionally a batch: "
        r"loss\(x, y\) or loss\(x, y, batch\); its signature is"
    )
    with pytest.raises(TypeError, match=rf"^the zero-sum loss f {expected}"):
        gj.zero_sum(loss)
    with pytest.raises(TypeError, match=rf"^loss_x {expected}"):
        gj.general_sum(loss, lambda x, y: 0.0)
    with pytest.raises(TypeError, match=rf"^loss_y {expected}"):
        gj.general_sum(lambda x, y: 0.0, loss)


def test_loss_requiring_four_arguments_is_rejected_at_construction():
    with pytest.raises(TypeError, match="signature"):
        gj.zero_sum(lambda x, y, batch, extra: 0.0)


def test_non_callable_loss_is_rejected():
    pattern = r"the zero-sum loss f must be a callable loss\(x, y\[, batch\]\); got float"
    with pytest.raises(TypeError, match=pattern):
        gj.zero_sum(3.0)
    with pytest.raises(TypeError, match=r"loss_y must be a callable .*got NoneType"):
        gj.general_sum(lambda x, y: 0.0, None)


NOT_PLAYERS = {
    "tuple": (jnp.ones(2), jnp.ones(2)),
    "dict": {"x": jnp.ones(2), "y": jnp.ones(2)},
    "list": [jnp.ones(2), jnp.ones(2)],
}
PLAYERS_PATTERN = r"^params must be gj\.Players\(x=\.\.\., y=\.\.\.\), one pytree per player; got "


@pytest.mark.parametrize("kind", sorted(NOT_PLAYERS))
@pytest.mark.parametrize(
    "game",
    [GAME, gj.general_sum(lambda x, y: jnp.sum(x * y), lambda x, y: jnp.sum(x + y))],
    ids=["zero-sum", "general-sum"],
)
def test_game_rejects_params_that_are_not_players(kind, game):
    with pytest.raises(TypeError, match=PLAYERS_PATTERN + kind):
        game.field(NOT_PLAYERS[kind])


@pytest.mark.parametrize("kind", sorted(NOT_PLAYERS))
@pytest.mark.parametrize(
    "build",
    [
        lambda: gj.gda(SGD),
        lambda: gj.optimistic(SGD),
        lambda: gj.lookahead(2, 0.5)(gj.gda(SGD)),
        lambda: gj.ema(0.9)(gj.alternating(SGD)),
        lambda: gj.alternating_lookahead(SGD, k=2),
    ],
    ids=["gda", "optimistic", "lookahead", "ema", "alternating_lookahead"],
)
def test_init_rejects_params_that_are_not_players(kind, build):
    with pytest.raises(TypeError, match=PLAYERS_PATTERN + kind):
        build().init(NOT_PLAYERS[kind])


def test_update_rejects_params_that_are_not_players():
    tx = gj.gda(SGD)
    with pytest.raises(TypeError, match=PLAYERS_PATTERN + "tuple"):
        tx.update(GAME, NOT_PLAYERS["tuple"], tx.init(PARAMS))


def test_hand_written_field_of_the_wrong_shape_is_rejected():
    bad = gj.Game(lambda params, batch: (P(jnp.ones(3), params.y), P(0.0, 0.0)))
    tx = gj.gda(SGD)
    pattern = r"the field for player x has shape \(3,\).*params\.x has shape \(2,\)"
    with pytest.raises(ValueError, match=pattern):
        tx.update(bad, PARAMS, tx.init(PARAMS))


# --------------------------------------------------------------------------------------------
# State / params mismatch
# --------------------------------------------------------------------------------------------

TRANSFORMATIONS = {
    "gda(adam)": lambda: gj.gda(optax.adam(0.1)),
    "lookahead(gda(sgd))": lambda: gj.lookahead(2, 0.5)(gj.gda(SGD)),
    "ema(gda(sgd))": lambda: gj.ema(0.9)(gj.gda(SGD)),
    "ema-decays(gda(sgd))": lambda: gj.ema([0.9, 0.99])(gj.gda(SGD)),
    "moving_average(gda(sgd))": lambda: gj.moving_average()(gj.gda(SGD)),
    "optimistic(sgd)": lambda: gj.optimistic(SGD),
    "optimistic(adam, updates)": lambda: gj.optimistic(optax.adam(0.1), on="updates"),
    "extragradient(adam)": lambda: gj.extragradient(optax.adam(0.1)),
    "alternating(adam)": lambda: gj.alternating(optax.adam(0.1)),
    "alternating_lookahead(adam)": lambda: gj.alternating_lookahead(optax.adam(0.1), k=2),
}
# Base optimizer states are only checked through Optax's own failure, which does not happen
# when the shapes broadcast.


def _update(tx, init_params, params):
    return tx.update(GAME, params, tx.init(init_params))


@pytest.mark.parametrize("name", sorted(TRANSFORMATIONS))
def test_update_rejects_params_of_another_structure(name):
    tx = TRANSFORMATIONS[name]()
    other = P({"a": jnp.ones(2)}, jnp.ones(2))
    with pytest.raises(ValueError, match="structure") as info:
        _update(tx, _players(), other)
    assert "tx.init" in str(info.value)


@pytest.mark.parametrize("name", sorted(TRANSFORMATIONS))
def test_update_rejects_params_of_another_shape(name):
    tx = TRANSFORMATIONS[name]()
    with pytest.raises(ValueError, match="shape") as info:
        _update(tx, _players(x_shape=(2,)), _players(x_shape=(3,)))
    assert "tx.init" in str(info.value)


@pytest.mark.parametrize("name", sorted(TRANSFORMATIONS))
def test_update_rejects_params_of_a_broadcastable_shape(name):
    tx = TRANSFORMATIONS[name]()
    with pytest.raises(ValueError, match="shape"):
        _update(tx, _players(x_shape=(1,)), _players(x_shape=(2,)))


@pytest.mark.parametrize(
    "name",
    [
        "lookahead(gda(sgd))",
        "ema(gda(sgd))",
        "ema-decays(gda(sgd))",
        "moving_average(gda(sgd))",
        "alternating_lookahead(adam)",
    ],
)
@pytest.mark.parametrize(("init_dtype", "dtype"), [(jnp.float32, jnp.float64), (jnp.float64, jnp.float32)])
def test_averaging_and_lookahead_states_reject_another_dtype(name, init_dtype, dtype):
    tx = TRANSFORMATIONS[name]()
    init = _players(dtype=init_dtype)
    params = _players(dtype=dtype)
    pattern = rf"dtype {jnp.dtype(dtype).name}, but .* dtype {jnp.dtype(init_dtype).name}"
    with pytest.raises(ValueError, match=pattern):
        _update(tx, init, params)


def test_nested_wrappers_check_the_outer_state():
    tx = gj.ema(0.9)(gj.lookahead(2, 0.5)(gj.gda(SGD)))
    pattern = r"params\.x has shape \(3,\).*the ema average \(leaf \.x\) has shape \(2,\)"
    with pytest.raises(ValueError, match=pattern):
        _update(tx, _players(), _players(x_shape=(3,)))


# --------------------------------------------------------------------------------------------
# apply_updates
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("updates", "pattern"),
    [
        (P({"a": jnp.ones(2)}, jnp.ones(2)), r"updates does not have the tree structure of params"),
        ((jnp.ones(2), jnp.ones(2)), r"updates does not have the tree structure of params"),
        (P(jnp.ones(2), None), r"updates does not have the tree structure of params"),
        (P(jnp.ones(3), jnp.ones(2)), r"updates\.x has shape \(3,\).*params\.x has shape \(2,\)"),
        (P(jnp.ones(2), jnp.ones(1)), r"updates\.y has shape \(1,\).*params\.y has shape \(2,\)"),
        (P(jnp.ones(2), jnp.ones(())), r"updates\.y has shape \(\).*params\.y has shape \(2,\)"),
    ],
    ids=["dict-x", "plain-tuple", "missing-y", "shape-x", "broadcast-y", "scalar-y"],
)
def test_apply_updates_rejects_mismatched_updates(updates, pattern):
    with pytest.raises(ValueError, match=pattern):
        gj.apply_updates(_players(), updates)


def test_apply_updates_rejects_params_that_are_not_players():
    with pytest.raises(TypeError, match=PLAYERS_PATTERN + "tuple"):
        gj.apply_updates(NOT_PLAYERS["tuple"], _players())


# --------------------------------------------------------------------------------------------
# PerEvaluation batches
# --------------------------------------------------------------------------------------------

PER_EVALUATION = {
    "gda": (lambda: gj.gda(SGD), "gda", 1),
    "optimistic": (lambda: gj.optimistic(SGD), "optimistic", 1),
    "extragradient": (lambda: gj.extragradient(SGD), "extragradient", 2),
    # a wrapper passes the batch on: the inner method names itself
    "lookahead(extragradient)": (
        lambda: gj.lookahead(2, 0.5)(gj.extragradient(SGD)),
        "extragradient",
        2,
    ),
    "alternating(y_steps=2)": (lambda: gj.alternating(SGD, y_steps=2), "alternating", 3),
    "alternating_lookahead": (
        lambda: gj.alternating_lookahead(SGD, k=2),
        "alternating_lookahead",
        2,
    ),
}


@pytest.mark.parametrize("name", sorted(PER_EVALUATION))
@pytest.mark.parametrize("offset", [-1, 1])
def test_per_evaluation_batches_need_one_slice_per_evaluation(name, offset):
    build, method, n = PER_EVALUATION[name]
    tx = build()
    wrong = n + offset
    if wrong < 1:
        wrong = n + 2
    batch = gj.PerEvaluation(jnp.zeros((wrong, 2)))
    pattern = (
        rf"^{method} evaluates the game {n} time\(s\) per step, so a PerEvaluation batch must "
        rf"have a leading axis of size {n} on every leaf; got leading sizes \['{wrong}'\]"
    )
    with pytest.raises(ValueError, match=pattern):
        tx.update(BATCH_GAME, PARAMS, tx.init(PARAMS), batch)
    # the right size works
    tx.update(BATCH_GAME, PARAMS, tx.init(PARAMS), gj.PerEvaluation(jnp.zeros((n, 2))))


def test_per_evaluation_batches_with_mixed_or_missing_leading_axes():
    tx = gj.extragradient(SGD)
    state = tx.init(PARAMS)
    mixed = gj.PerEvaluation((jnp.zeros((2, 2)), jnp.zeros((3, 2))))
    with pytest.raises(ValueError, match=r"size 2 on every leaf; got leading sizes \['2', '3'\]"):
        tx.update(BATCH_GAME, PARAMS, state, mixed)
    with pytest.raises(ValueError, match=r"size 2 on every leaf; got leading sizes \['None'\]"):
        tx.update(BATCH_GAME, PARAMS, state, gj.PerEvaluation(jnp.zeros(())))
    empty = r"^extragradient: PerEvaluation holds no arrays; expected 2"
    with pytest.raises(ValueError, match=empty):
        tx.update(BATCH_GAME, PARAMS, state, gj.PerEvaluation({}))


# --------------------------------------------------------------------------------------------
# averaged
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: gj.gda(SGD),
        lambda: gj.lookahead(2, 0.5)(gj.extragradient(SGD)),
        lambda: gj.optimistic(SGD),
    ],
    ids=["gda", "lookahead", "optimistic"],
)
def test_averaged_without_an_averaging_wrapper(build):
    state = build().init(PARAMS)
    pattern = r"holds no averaged params: wrap the transformation with gj\.ema"
    with pytest.raises(ValueError, match=pattern):
        gj.averaged(state)


def test_averaged_of_none_is_a_clear_error():
    with pytest.raises(ValueError, match=r"holds no averaged params"):
        gj.averaged(None)


@pytest.mark.parametrize(
    "build",
    [
        lambda: gj.lookahead(2, 0.5)(gj.ema(0.9)(gj.gda(SGD))),
        lambda: gj.lookahead(4, 0.5)(gj.lookahead(2, 0.5)(gj.moving_average()(gj.gda(SGD)))),
        lambda: gj.ema(0.9)(gj.lookahead(2, 0.5)(gj.gda(SGD))),
    ],
    ids=["ema-inside-lookahead", "ma-inside-nested-lookahead", "ema-outside"],
)
def test_averaged_finds_a_nested_average(build):
    tx = build()
    state = tx.init(PARAMS)
    for got, want in zip(gj.averaged(state), PARAMS, strict=True):
        np.testing.assert_array_equal(got, want)
    _, state = tx.update(GAME, PARAMS, state)
    assert jax.tree.structure(gj.averaged(state)) == jax.tree.structure(PARAMS)


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


def _sample(key):
    return jax.random.normal(key, (2,))


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"sample": _sample}, r"fit\(sample=\.\.\.\) needs key=, a jax\.random key"),
        (
            {"sample": _sample, "key": jax.random.key(0), "batches": jnp.zeros((3, 2))},
            r"fit takes either sample= or batches=, not both",
        ),
        ({"steps": -1}, r"^steps must be an integer >= 0; got -1"),
        ({"steps": 2.0}, r"^steps must be an integer >= 0; got 2\.0"),
        ({"log_every": 0}, r"^log_every must be an integer >= 1; got 0"),
        (
            {"batches": {"a": jnp.zeros((3, 2)), "b": jnp.zeros((4, 2))}},
            r"batches must be a non-empty pytree whose leaves all have the same non-zero leading "
            r"\(step\) axis; got leading sizes \['3', '4'\]",
        ),
        ({"batches": {}}, r"same non-zero leading \(step\) axis; got leading sizes \[\]"),
    ],
    ids=[
        "sample-without-key",
        "sample-and-batches",
        "negative-steps",
        "float-steps",
        "log-every-0",
        "batches-leading-sizes",
        "batches-empty",
    ],
)
def test_fit_rejects_bad_arguments(kwargs, pattern):
    kwargs = {"steps": 2, **kwargs}
    with pytest.raises(ValueError, match=pattern):
        gj.fit(BATCH_GAME, gj.gda(SGD), PARAMS, **kwargs)


def test_fit_rejects_batches_with_a_leaf_without_leading_axis():
    batches = {"a": jnp.zeros((3, 2)), "scale": jnp.array(1.0)}
    with pytest.raises(ValueError, match="leading"):
        gj.fit(BATCH_GAME, gj.gda(SGD), PARAMS, steps=2, batches=batches)


@pytest.mark.parametrize("kind", sorted(NOT_PLAYERS))
def test_fit_rejects_params_that_are_not_players(kind):
    with pytest.raises(TypeError, match=PLAYERS_PATTERN + kind):
        gj.fit(GAME, gj.gda(SGD), NOT_PLAYERS[kind], steps=2)


def test_fit_rejects_a_state_for_other_params():
    tx = gj.lookahead(2, 0.5)(gj.gda(SGD))
    state = tx.init(_players(x_shape=(3,)))
    pattern = r"^state does not match tx\.init\(params\): state\.slow\.x has shape \(3,\).*expected shape \(2,\)"
    with pytest.raises(ValueError, match=pattern):
        gj.fit(GAME, tx, PARAMS, steps=2, state=state)


def test_fit_rejects_a_per_evaluation_sampler_of_the_wrong_size():
    sample = gj.per_evaluation(_sample, 3)
    with pytest.raises(ValueError, match=r"^extragradient evaluates the game 2 time\(s\).*size 2"):
        gj.fit(BATCH_GAME, gj.extragradient(SGD), PARAMS, steps=2, sample=sample, key=jax.random.key(0))


def test_fit_rejects_a_vector_loss():
    with pytest.raises(ValueError, match=r"must return a scalar"):
        gj.fit(gj.zero_sum(lambda x, y: x * y), gj.gda(SGD), PARAMS, steps=2)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

METHOD_NAMES = ["gda", "alt-gda", "eg", "ogda", "adam", "extra-adam", "oadam", "alt-la-gda"]
GAME_NAMES = ["sbg", "bilinear", "quadratic", "qp1", "qp2"]


def _cli_error(capsys, argv) -> str:
    """Run the CLI, expect argparse's exit code 2, and return its one error line."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith("gamejax"), err
    return errors[0]


@pytest.mark.parametrize("spec", ["nope", "la-nope", "gda,nope", "xx-gda"])
def test_cli_rejects_unknown_method(capsys, spec):
    line = _cli_error(capsys, ["compare", "--methods", spec])
    bad = spec.split(",")[-1]
    assert re.search(rf"unknown method '{re.escape(bad)}'; accepted: ", line), line
    for name in METHOD_NAMES:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", line), (name, line)
    for prefix in ("la-", "nla-", "ema-"):
        assert prefix in line


def test_cli_rejects_unknown_game(capsys):
    line = _cli_error(capsys, ["compare", "--game", "nope"])
    assert "unknown game 'nope'; accepted: " in line
    for name in GAME_NAMES:
        assert re.search(rf"\b{name}\b", line), (name, line)


@pytest.mark.parametrize("passes", ["0", "-5"])
def test_cli_rejects_non_positive_passes(capsys, passes):
    line = _cli_error(capsys, ["compare", "--passes", passes])
    assert "--passes must be a positive integer" in line


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["compare", "--k", "0"], "k must be an integer >= 1; got 0"),
        (["compare", "--alpha", "0"], "alpha (player x) must lie in (0.0, 1.0]"),
        (["compare", "--methods", "ema-gda", "--ema-decay", "2"], "decay must lie in [0.0, 1.0]"),
        (["compare", "--passes", "ten"], "invalid int value: 'ten'"),
        ([], "the following arguments are required: command"),
    ],
    ids=["k", "alpha", "ema-decay", "passes-not-int", "no-command"],
)
def test_cli_rejects_bad_options(capsys, argv, expected):
    assert expected in _cli_error(capsys, argv)


def test_cli_rejects_an_empty_method_list(capsys, tmp_path):
    argv = ["compare", "--game", "bilinear", "--methods", ",", "--no-progress"]
    argv += ["--out", str(tmp_path)]
    line = _cli_error(capsys, argv)
    assert "method" in line


@pytest.mark.parametrize("method", [gj.gda, gj.extragradient, lambda base: gj.alternating(base, y_steps=2)])
def test_a_base_state_initialized_for_another_dtype_is_rejected(method):
    """Adam's moments would silently turn float64 and break a later lax.scan: the update says why."""
    tx = method(optax.adam(0.1))
    with pytest.raises(
        ValueError,
        match=r"base optimizer state of player [xy] after the update \(leaf .*\) has .* dtype float64.*float32",
    ):
        _update(tx, _players(dtype=jnp.float32), _players(dtype=jnp.float64))


# --------------------------------------------------------------------------------------------
# Second-order methods and field adjustments
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda: gj.lead(SGD, coupling=float("nan")), r"coupling \(player x\)"),
        (lambda: gj.lead(SGD, coupling=P(0.1, float("inf"))), r"coupling \(player y\)"),
        (lambda: gj.lead(SGD, coupling="0.3"), r"coupling \(player x\) must be a real number"),
        (lambda: gj.cgd(0.0), r"learning_rate \(player x\)"),
        (lambda: gj.cgd(P(0.1, -1.0)), r"learning_rate \(player y\)"),
        (lambda: gj.cgd(0.1, tol=-1e-3), r"^tol must lie in"),
        (lambda: gj.cgd(0.1, maxiter=0), r"^maxiter must be an integer >= 1"),
        (lambda: gj.acgd(1e-4, beta2=1.0), r"^beta2 must lie in \[0\.0, 1\.0\)"),
        (lambda: gj.acgd(1e-4, eps=0.0), r"^eps must lie in \(0\.0"),
        (lambda: gj.consensus(-1.0), r"gamma \(player x\) must lie in"),
        (lambda: gj.sga(P(1.0, float("nan"))), r"lam \(player y\) must lie in"),
    ],
)
def test_second_order_constructors_reject_bad_hyperparameters(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


@pytest.mark.parametrize(
    ("wrapper", "usage"), [(gj.consensus, "gj.consensus(gamma)(inner)"), (gj.sga, "gj.sga(lam)(inner)")]
)
def test_field_adjustments_are_curried(wrapper, usage):
    with pytest.raises(TypeError, match=re.escape(usage)):
        wrapper(gj.gda(SGD))
    with pytest.raises(TypeError, match="wraps a gj.GameTransformation"):
        wrapper(1.0)(SGD)


def test_lead_rejects_params_that_do_not_match_its_state():
    tx = gj.lead(SGD, coupling=0.5)
    with pytest.raises(ValueError, match="LEAD previous params"):
        _update(tx, _players(x_shape=(2,)), _players(x_shape=(3,)))


def test_acgd_rejects_params_that_do_not_match_its_state():
    tx = gj.acgd(1e-3)
    with pytest.raises(ValueError, match="ACGD second moments"):
        _update(tx, _players(x_shape=(2,)), _players(x_shape=(3,)))


def test_spectral_radius_refuses_a_non_differentiable_step():
    """Adam divides by √ν, and ν = 0 at a fixed point: say so instead of returning NaN."""
    game, _, optimum = gj.games.bilinear()
    with pytest.raises(ValueError, match="not differentiable"):
        gj.spectral_radius(game, gj.gda(optax.adam(0.1)), optimum)


def test_bfloat16_hyperparameters_are_numbers():
    half = jnp.array(0.5, jnp.bfloat16)
    gj.lookahead(2, half)
    gj.ema(jnp.array(0.9, jnp.bfloat16))
    gj.cgd(jnp.array(0.1, jnp.bfloat16))


def test_an_unrelated_base_optimizer_error_is_not_blamed_on_the_state():
    def branching():  # a base optimizer with Python control flow on a traced value
        def update(updates, state, params=None):
            if jnp.sum(updates) > 0:
                return updates, state
            return updates, state

        return optax.GradientTransformation(lambda params: optax.EmptyState(), update)

    tx = gj.gda(branching())
    with pytest.raises(jax.errors.TracerBoolConversionError):
        jax.jit(lambda p: tx.update(GAME, p, tx.init(p)))(_players())


def test_base_optimizers_that_need_extra_arguments_say_so():
    tx = gj.gda(optax.chain(optax.adam(0.1), optax.contrib.reduce_on_plateau()))
    with pytest.raises(TypeError, match=r"needs extra arguments to update \(e\.g\. value="):
        tx.update(GAME, _players(), tx.init(_players()))


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda v: gj.lead(SGD, coupling=1.0, alternating=v), "alternating"),
        (lambda v: gj.extragradient(SGD, extrapolation_updates_state=v), "extrapolation_updates_state"),
        (lambda v: gj.consensus(1.0, debias=v), "debias"),
        (lambda v: gj.sga(1.0, align=v), "align"),
        (lambda v: gj.cgd(0.1, warm_start=v), "warm_start"),
        (lambda v: gj.acgd(0.1, warm_start=v), "warm_start"),
    ],
)
def test_flags_must_be_booleans(build, name):
    # (lead's alternating defaults to None: unset, False for the paper's variant, as the authors' alternates)
    for bad in ("no", 1, [True]) if name == "alternating" else ("no", 1, None, [True]):
        with pytest.raises(ValueError, match=f"^{name} must be True or False"):
            build(bad)
    build(True), build(False)


def test_per_evaluation_takes_a_callable_and_a_python_or_array_int():
    with pytest.raises(TypeError, match="^sample must be a callable"):
        gj.per_evaluation(None, 2)
    sample = gj.per_evaluation(lambda key: jax.random.normal(key, (3,)), jnp.asarray(2))
    assert jax.jit(sample)(jax.random.key(0)).batches.shape == (2, 3)


def test_cg_tolerance_must_be_finite():
    with pytest.raises(ValueError, match=r"^tol must lie in \[0.0, inf\)"):
        gj.cgd(0.1, tol=float("inf"))


# One argument order everywhere (game, tx, params): a swapped call or an Optax optimizer where a
# method belongs names the argument and the fix, at every public entry point (issue 14).
_BILINEAR = gj.games.bilinear()
ENTRY_POINTS = {
    "fit": lambda game, tx, params: gj.fit(game, tx, params, steps=2),
    "make_step": lambda game, tx, params: gj.make_step(game, tx),
    "init_state": lambda game, tx, params: gj.init_state(game, tx, params),
    "passes_per_step": lambda game, tx, params: gj.passes_per_step(game, tx, params),
    "evaluations_per_step": lambda game, tx, params: gj.evaluations_per_step(game, tx, params),
    "step_jacobian": lambda game, tx, params: gj.step_jacobian(game, tx, params),
    "spectral_radius": lambda game, tx, params: gj.spectral_radius(game, tx, params),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_swapped_game_and_tx_name_the_argument(entry):
    game, init, optimum = _BILINEAR
    tx = gj.gda(optax.sgd(0.1))
    with pytest.raises(TypeError, match=rf"^{entry}: game must be a gj.Game .*got GameTransformation .*swapped"):
        ENTRY_POINTS[entry](tx, game, optimum)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_an_optax_optimizer_as_tx_says_to_wrap_it_in_a_method(entry):
    game, init, optimum = _BILINEAR
    with pytest.raises(TypeError, match=rf"^{entry}: tx must be a gj.GameTransformation; got GradientTransformation"
                       r".*Wrap the Optax optimizer in a method, e.g. gj.gda\(optax.adam\(1e-3\)\)"):  # fmt: skip
        ENTRY_POINTS[entry](game, optax.adam(1e-3), optimum)
