"""The step function and the scan driver: sampling, stacked batches, logging, vmap, progress."""

from __future__ import annotations

import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import dense_quadratic, flat, run_steps

import gamejax as gj

DIM = 12


@pytest.fixture(scope="module")
def sbg():
    return gj.games.sbg(jax.random.key(0), dim=DIM)


def test_fit_samples_step_t_from_fold_in_key_t(sbg):
    game, init, optimum = sbg
    tx = gj.lookahead(5, 0.5)(gj.gda(optax.sgd(0.1)))
    sample, key = gj.games.sbg_sampler(4, DIM), jax.random.key(1)
    result = gj.fit(game, tx, init, steps=23, sample=sample, key=key, log_every=5)
    expected = run_steps(game, tx, init, batches=[sample(jax.random.fold_in(key, t)) for t in range(23)])[:2]
    chex.assert_trees_all_close((result.params, result.state), expected, rtol=1e-12)


def test_trajectory_does_not_depend_on_logging_or_chunking(sbg):
    game, init, _ = sbg
    tx = gj.extragradient(optax.sgd(0.1))
    common = dict(steps=60, sample=gj.per_evaluation(gj.games.sbg_sampler(4, DIM), 2), key=jax.random.key(2))
    a = gj.fit(game, tx, init, log_every=1, progress=False, **common)
    b = gj.fit(game, tx, init, log_every=7, progress=True, **common)
    chex.assert_trees_all_close(a.params, b.params, rtol=1e-12)
    np.testing.assert_array_equal(a.metrics["step"][::7], b.metrics["step"][:-1])


def test_stacked_batches_are_cycled(sbg):
    game, init, _ = sbg
    tx = gj.optimistic(optax.sgd(0.1))
    batches = jnp.stack([jnp.arange(3), jnp.arange(3, 6), jnp.arange(6, 9)])
    result = gj.fit(game, tx, init, steps=8, batches=batches)
    expected = run_steps(game, tx, init, batches=[batches[t % 3] for t in range(8)])[:2]
    chex.assert_trees_all_close((result.params, result.state), expected, rtol=1e-12)


def test_metrics_are_logged_at_start_every_log_every_and_end(sbg):
    game, init, optimum = sbg
    tx = gj.extragradient(optax.sgd(0.1))

    def extra(params, state):
        return {"x_norm": optax.tree.norm(params.x)}

    result = gj.fit(game, tx, init, steps=10, log_every=3, equilibrium=optimum, metrics=extra)
    m = result.metrics
    np.testing.assert_array_equal(m["step"], [0, 3, 6, 9, 10])
    np.testing.assert_array_equal(m["passes"], 2 * m["step"])
    assert set(m) == {"step", "passes", "loss_x", "loss_y", "field_norm", "finite", "distance", "x_norm"}
    assert all(v.shape == (5,) for v in m.values())
    # the records are those of the iterates at those steps
    trajectory = [init, *run_steps(game, tx, init, 10, observe=lambda p: p)[2]]
    for i, t in enumerate((0, 3, 6, 9)):
        params = trajectory[t]
        np.testing.assert_allclose(m["distance"][i], np.linalg.norm(flat(params) - flat(optimum)), rtol=1e-12)
        field, losses = game.field_and_losses(params)
        np.testing.assert_allclose(m["field_norm"][i], np.linalg.norm(flat(field)), rtol=1e-12)
        np.testing.assert_allclose(m["loss_x"][i], losses.x, rtol=1e-12)
        np.testing.assert_allclose(m["x_norm"][i], np.linalg.norm(params.x), rtol=1e-12)
    params = trajectory[10]
    np.testing.assert_allclose(m["distance"][-1], np.linalg.norm(flat(params) - flat(optimum)), rtol=1e-12)
    assert bool(np.all(m["finite"]))


def test_metrics_use_eval_batch_when_given(sbg):
    game, init, _ = sbg
    full = jnp.arange(DIM)
    result = gj.fit(
        game,
        gj.gda(optax.sgd(0.01)),
        init,
        steps=4,
        log_every=4,
        sample=gj.games.sbg_sampler(2, DIM),
        key=jax.random.key(0),
        eval_batch=full,
    )
    np.testing.assert_allclose(result.metrics["loss_x"][-1], game.losses(result.params, None).x, rtol=1e-12)


def test_divergence_stops_the_run_at_the_last_finite_point():
    # GDA on x·y grows by sqrt(1 + lr²) per step: at lr = 50, |ω_t| = sqrt(2)·(sqrt(2501))^t
    # overflows float64 (1.8e308) after t = floor((log(1.8e308) - log(sqrt 2)) / log(sqrt 2501)) steps.
    game, init, _ = gj.games.bilinear()
    result = gj.fit(game, gj.gda(optax.sgd(50.0)), init, steps=400, log_every=100)
    last_finite = int(np.floor((np.log(np.finfo(np.float64).max) - np.log(np.sqrt(2))) / np.log(np.sqrt(2501))))
    assert int(result.diverged_at) in (last_finite + 1, last_finite + 2)  # the norm or a coordinate overflows
    assert bool(result.metrics["finite"][-1]) and all(np.isfinite(np.asarray(result.params)))
    # Closed form of the last finite iterate: GDA's matrix is sqrt(2501)·R(atan 50) on (x, y) = (1, 1).
    t = int(result.diverged_at) - 1
    angle = t * np.arctan(50.0) + np.pi / 4
    for value, trig in ((result.params.x, np.cos(angle)), (result.params.y, np.sin(angle))):
        expected = np.sign(trig) * np.exp(t * np.log(np.sqrt(2501.0)) + np.log(np.sqrt(2) * abs(trig)))
        np.testing.assert_allclose(float(value), expected, rtol=1e-9)


def test_fit_under_vmap_over_seeds_equals_a_loop_of_fits():
    problem = dense_quadratic(jax.random.key(4), zero_sum=True)
    tx = gj.lookahead(3, 0.5)(gj.optimistic(optax.sgd(0.1)))

    def train(key):
        init = jax.tree.map(lambda a: a + jax.random.normal(key, a.shape), problem.init)
        return gj.fit(problem.game, tx, init, steps=12, log_every=4, equilibrium=problem.equilibrium)

    keys = jax.random.split(jax.random.key(5), 3)
    batched = jax.vmap(train)(keys)
    for i, key in enumerate(keys):
        chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: a[i], batched), train(key), rtol=1e-12)


def test_fit_continues_from_a_given_state():
    problem = dense_quadratic(jax.random.key(6), zero_sum=True)
    tx = gj.ema(0.9)(gj.lookahead(4, 0.5)(gj.extragradient(optax.adam(0.01))))
    whole = gj.fit(problem.game, tx, problem.init, steps=10)
    first = gj.fit(problem.game, tx, problem.init, steps=6)
    rest = gj.fit(problem.game, tx, first.params, steps=4, state=first.state)
    chex.assert_trees_all_close((rest.params, rest.state), (whole.params, whole.state), rtol=1e-12)


def test_make_step_reports_the_update_norm_on_request():
    game, init, _ = gj.games.bilinear()
    step = gj.make_step(game, gj.gda(optax.sgd(0.5)), update_norm=True)
    new, _, metrics = step(init, gj.gda(optax.sgd(0.5)).init(init))
    np.testing.assert_allclose(metrics["update_norm"], np.linalg.norm(flat(new) - flat(init)), rtol=1e-12)
    assert gj.make_step(game, gj.gda(optax.sgd(0.5)))(init, gj.gda(optax.sgd(0.5)).init(init))[2] == {}


def test_evaluations_per_step_of_compositions():
    game, init, _ = gj.games.bilinear()
    sgd = optax.sgd(0.1)
    assert gj.evaluations_per_step(game, gj.alternating(sgd, y_steps=5), init) == 6
    assert gj.evaluations_per_step(game, gj.lookahead(2, 0.5)(gj.lookahead(3, 0.5)(gj.extragradient(sgd))), init) == 2
    assert gj.evaluations_per_step(game, gj.ema([0.9, 0.99])(gj.optimistic(sgd)), init) == 1


def test_per_evaluation_sampler_feeds_alternating_one_batch_per_player_step(sbg):
    game, init, _ = sbg
    tx = gj.alternating(optax.sgd(0.1), y_steps=3)
    sample = gj.per_evaluation(gj.games.sbg_sampler(2, DIM), 4)
    key = jax.random.key(8)
    result = gj.fit(game, tx, init, steps=5, sample=sample, key=key)
    # Reference: y steps use slices 0..2, x uses slice 3, each at the current params.
    x, y = init
    for t in range(5):
        batches = sample(jax.random.fold_in(key, t)).batches
        for i in range(3):
            y = y - 0.1 * game.field(gj.Players(x, y), batches[i]).y
        x = x - 0.1 * game.field(gj.Players(x, y), batches[3]).x
    chex.assert_trees_all_close(result.params, gj.Players(x, y), rtol=1e-12)


def test_progress_falls_back_to_stderr_without_tqdm(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # makes `from tqdm.auto import tqdm` fail
    game, init, _ = gj.games.bilinear()
    gj.fit(game, gj.gda(optax.sgd(0.1)), init, steps=40, log_every=2, progress=True, label="demo")
    err = capsys.readouterr().err
    assert "demo: 40/40 steps" in err


def test_a_second_fit_with_the_same_objects_does_not_recompile_nor_retrace(sbg, monkeypatch):
    from gamejax._src.training import program as training

    game, init, _ = sbg
    tx = gj.extragradient(optax.sgd(0.05))
    sample = gj.games.sbg_sampler(4, DIM)
    first = gj.fit(game, tx, init, steps=12, log_every=4, sample=sample, key=jax.random.key(0))
    compiled = training._run_intervals._cache_size()
    monkeypatch.setattr(training, "counting_evaluations", lambda *a: pytest.fail("traced a step again"))
    second = gj.fit(
        game, tx, first.params, state=first.state, steps=12, log_every=4, sample=sample, key=jax.random.key(0)
    )
    assert training._run_intervals._cache_size() == compiled
    assert not np.allclose(flat(second.params), flat(first.params))


def test_a_continued_run_equals_an_uninterrupted_one(sbg):
    game, init, optimum = sbg
    tx = gj.ema(0.9)(gj.lookahead(4, 0.5)(gj.optimistic(optax.adam(0.01))))
    common = dict(sample=gj.games.sbg_sampler(3, DIM), key=jax.random.key(3), log_every=2, equilibrium=optimum)
    whole = gj.fit(game, tx, init, steps=14, **common)
    first = gj.fit(game, tx, init, steps=8, **common)
    rest = gj.fit(game, tx, first.params, state=first.state, initial_step=first.step, steps=6, **common)
    chex.assert_trees_all_close((rest.params, rest.state), (whole.params, whole.state), rtol=1e-12)
    assert int(rest.step) == int(whole.step) == 14
    np.testing.assert_array_equal(rest.metrics["step"], whole.metrics["step"][4:])
    np.testing.assert_allclose(rest.metrics["distance"], whole.metrics["distance"][4:], rtol=1e-12)


def test_fit_vmaps_over_a_hyperparameter_captured_by_the_transformation():
    game, init, optimum = gj.games.bilinear()

    def final_distance(lr, alpha):
        tx = gj.lookahead(6, alpha)(gj.gda(optax.sgd(lr)))
        return gj.fit(game, tx, init, steps=60, log_every=30, equilibrium=optimum).metrics["distance"][-1]

    lrs, alphas = jnp.array([0.1, 0.3, 0.5]), jnp.array([0.5, 0.4, 0.3])
    swept = jax.vmap(final_distance)(lrs, alphas)
    looped = [final_distance(float(lr), float(a)) for lr, a in zip(lrs, alphas, strict=True)]
    np.testing.assert_allclose(swept, looped, rtol=1e-12)


FIRST_CALL = """
import logging, jax, optax, gamejax as gj
compiled = []
class Record(logging.Handler):
    def emit(self, record):
        if record.getMessage().startswith("Compiling "):
            compiled.append(record.getMessage().split()[1])
logging.getLogger("jax").addHandler(Record())
logging.getLogger("jax").setLevel(logging.DEBUG)
jax.config.update("jax_log_compiles", True)
game, init, optimum = gj.games.bilinear()
tx = gj.ema(0.9)(gj.lookahead(5, 0.5)(gj.extragradient(optax.adam(1e-2))))
state = tx.init(init)  # what a hand-written loop also computes eagerly
before = len(compiled)
result = gj.fit(game, tx, init, state=state, steps=100, equilibrium=optimum)
jax.block_until_ready(result.params)
print(compiled[before:])
"""


def test_the_first_fit_compiles_its_program_and_nothing_else():
    """Issue 11: no eager JAX computation outside the compiled program that a user's loop would not have."""
    out = subprocess.run([sys.executable, "-c", FIRST_CALL], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "['jit(run_intervals)']", out.stdout
