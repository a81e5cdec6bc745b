"""Non-finite guards, divergence reporting and checkpoint/resume of gj.fit."""

from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from problems import run_steps

import gamejax as gj
from gamejax._src.training import checkpoint
from gamejax._src.training import program as training

P = gj.Players
DIM, BATCH = 3, 4


def _loss(x, y, batch):
    """A strongly monotone zero-sum game on data rows ``a``: mean (a·x)(a·y) + |x|²/2 − |y|²/2."""
    return jnp.mean((batch @ x) * (batch @ y)) + 0.5 * jnp.sum(x**2) - 0.5 * jnp.sum(y**2)


GAME = gj.zero_sum(_loss, name="data quadratic")
INIT = P(jnp.arange(1.0, DIM + 1.0), -jnp.ones(DIM))


def _batches(n: int, poisoned: tuple[int, ...] = ()) -> jax.Array:
    stacked = jax.random.normal(jax.random.key(1), (n, BATCH, DIM))
    for t in poisoned:
        stacked = stacked.at[t, 0, 0].set(jnp.nan)
    return stacked


def _loop_skipping(tx, stacked, skipped):
    """Reference: a Python loop of plain steps that leaves the poisoned steps out entirely."""
    params, state, _ = run_steps(
        GAME, tx, INIT, batches=[stacked[t] for t in range(stacked.shape[0]) if t not in skipped]
    )
    return params, state


# --------------------------------------------------------------------------------------------
# skip_nonfinite and divergence
# --------------------------------------------------------------------------------------------


def test_skip_nonfinite_leaves_out_poisoned_steps_exactly():
    inner = gj.lookahead(3, 0.5)(gj.extragradient(optax.adam(0.05)))
    poisoned = (2, 3, 7)
    stacked = _batches(12, poisoned)
    result = gj.fit(GAME, gj.skip_nonfinite(3)(inner), INIT, steps=12, batches=stacked, log_every=4)
    params, inner_state = _loop_skipping(inner, stacked, poisoned)
    assert int(result.diverged_at) == -1
    np.testing.assert_array_equal(np.asarray(result.state.skipped), len(poisoned))
    np.testing.assert_array_equal(np.asarray(result.state.consecutive), 0)
    assert not bool(result.state.gave_up)
    jax.tree.map(np.testing.assert_allclose, (result.params, result.state.inner), (params, inner_state))


def test_skip_nonfinite_gives_up_after_max_consecutive_and_fit_reports_it():
    stacked = _batches(10, poisoned=(4, 5, 6))
    tx = gj.skip_nonfinite(max_consecutive=3)(gj.gda(optax.sgd(0.1)))
    with pytest.warns(gj.DivergenceWarning, match=r"^gj.fit \(fit\): the run gave up \(gj.skip_nonfinite\) at step 7"):
        result = gj.fit(GAME, tx, INIT, steps=10, batches=stacked, log_every=1, eval_batch=stacked[0])
    assert int(result.diverged_at) == 7  # the third poisoned step in a row is step 7 (1-based)
    assert bool(result.state.gave_up) and int(result.state.skipped) == 3
    params, _ = _loop_skipping(gj.gda(optax.sgd(0.1)), stacked[:4], ())
    jax.tree.map(np.testing.assert_allclose, result.params, params)
    # The run stopped: every record after the divergence repeats the frozen point.
    loss = np.asarray(result.metrics["loss_x"])
    assert np.all(loss[4:] == loss[4]) and np.all(np.isfinite(loss)) and loss[3] != loss[4]


def test_without_guard_a_poisoned_batch_ends_the_run_at_that_step():
    stacked = _batches(8, poisoned=(5,))
    with pytest.warns(gj.DivergenceWarning, match=r"^gj.fit \(demo\): the run diverged at step 6: .*last finite"):
        result = gj.fit(GAME, gj.optimistic(optax.sgd(0.1)), INIT, steps=8, batches=stacked, log_every=2, label="demo")
    assert int(result.diverged_at) == 6
    params, _ = _loop_skipping(gj.optimistic(optax.sgd(0.1)), stacked[:5], ())
    jax.tree.map(np.testing.assert_allclose, result.params, params)


def test_divergence_is_per_member_under_vmap():
    lrs = jnp.array([0.1, 60.0])  # the second GDA explodes on x·y, the first does not

    def run(lr):
        game, init, _ = gj.games.bilinear()
        return gj.fit(game, gj.gda(optax.sgd(lr)), init, steps=300, log_every=100).diverged_at

    with warnings.catch_warnings():
        warnings.simplefilter("error", gj.DivergenceWarning)  # no warning from inside vmap (no concrete status)
        diverged = jax.vmap(run)(lrs)
    assert int(diverged[0]) == -1 and int(diverged[1]) > 0


def _gda_on_bilinear_closed_form(init, lr, t):
    """GDA on ``x·y``: ``ω_{t+1} = (I − lr·A) ω_t`` with ``A = [[0, I], [−I, 0]]`` (float64 NumPy)."""
    n = init.x.size
    a = np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])
    omega = np.linalg.matrix_power(np.eye(2 * n) - lr * a, t) @ np.concatenate([init.x, init.y]).astype(np.float64)
    return omega[:n], omega[n:]


BILINEAR = gj.zero_sum(lambda x, y: x @ y, name="x·y")


def test_diverge_above_stops_at_the_first_record_over_the_threshold():
    """GDA on x·y grows ‖v_t‖ = ‖ω_t‖ = ‖ω_0‖ (1 + lr²)^{t/2} with finite params: the run stops at the
    first record above the threshold, which the closed form gives, frozen at that point."""
    init, lr, every, threshold = P(jnp.array([1.0, 0.5]), jnp.array([-0.5, 2.0])), 0.3, 10, 1e3
    norm0 = float(np.linalg.norm(np.concatenate([init.x, init.y])))
    first_over = next(t for t in range(0, 400, every) if norm0 * (1 + lr**2) ** (t / 2) > threshold)
    with pytest.warns(
        gj.DivergenceWarning, match=rf"diverged at step {first_over}: its field norm exceeded diverge_above=1000 "
    ):
        result = gj.fit(BILINEAR, gj.gda(optax.sgd(lr)), init, steps=400, log_every=every, diverge_above=threshold)
    assert int(result.status) == training.Status.EXCEEDED and int(result.diverged_at) == first_over
    x, y = _gda_on_bilinear_closed_form(init, lr, first_over)
    np.testing.assert_allclose(result.params.x, x, rtol=1e-4)
    np.testing.assert_allclose(result.params.y, y, rtol=1e-4)
    frozen = np.asarray(result.metrics["step"]) >= first_over
    np.testing.assert_allclose(result.metrics["field_norm"][frozen], np.linalg.norm(np.concatenate([x, y])), rtol=1e-4)


def test_a_finite_run_whose_field_norm_explodes_warns():
    init, lr = P(jnp.array([1.0]), jnp.array([1.0])), 0.3
    with pytest.warns(gj.DivergenceWarning, match=r"the field norm grew from 1.41 to .* Pass diverge_above="):
        grown = gj.fit(BILINEAR, gj.gda(optax.sgd(lr)), init, steps=400, log_every=100)  # ×1.09^200 ≈ 3e7
    assert int(grown.status) == training.Status.FINITE
    with warnings.catch_warnings():
        warnings.simplefilter("error", gj.DivergenceWarning)  # ×1.09^100 ≈ 5.5e3: not reported
        gj.fit(BILINEAR, gj.gda(optax.sgd(lr)), init, steps=200, log_every=100)


def test_diverge_above_is_per_member_under_vmap_and_checked():
    def run(lr):
        return gj.fit(BILINEAR, gj.gda(optax.sgd(lr)), P(jnp.ones(1), jnp.ones(1)), steps=300, diverge_above=10.0)

    result = jax.vmap(run)(jnp.array([0.01, 0.3]))
    np.testing.assert_array_equal(result.status, [training.Status.FINITE, training.Status.EXCEEDED])
    with pytest.raises(ValueError, match=r"^diverge_above must lie in \(0.0, inf\]"):
        run_bad = gj.fit(BILINEAR, gj.gda(optax.sgd(0.1)), P(jnp.ones(1), jnp.ones(1)), steps=1, diverge_above=-1.0)
        del run_bad
    with pytest.raises(TypeError, match="^diverge_above must be a concrete number"):
        jax.jit(
            lambda c: gj.fit(BILINEAR, gj.gda(optax.sgd(0.1)), P(jnp.ones(1), jnp.ones(1)), steps=1, diverge_above=c)
        )(1.0)


def test_fit_rejects_non_finite_initial_params():
    with pytest.raises(ValueError, match="^params must be finite"):
        gj.fit(GAME, gj.gda(optax.sgd(0.1)), P(INIT.x.at[0].set(jnp.inf), INIT.y), steps=1, batches=_batches(1))


def test_skip_nonfinite_rejects_bad_max_consecutive():
    with pytest.raises(ValueError, match="^max_consecutive must be an integer >= 1"):
        gj.skip_nonfinite(0)
    with pytest.raises(TypeError, match="curried"):
        gj.skip_nonfinite(gj.gda(optax.sgd(0.1)))


def test_step_rejects_a_state_built_for_other_params():
    tx = gj.extragradient(optax.adam(0.1))
    step = gj.make_step(GAME, tx)
    with pytest.raises(ValueError, match=r"^state does not match tx.init\(params\): state.*shape \(2,\)"):
        step(INIT, tx.init(P(jnp.ones(2), jnp.ones(DIM))), _batches(1)[0])
    with pytest.raises(ValueError, match=r"^state does not match tx.init\(params\): .*dtype float32"):
        step(INIT, tx.init(jax.tree.map(lambda a: a.astype(jnp.float32), INIT)), _batches(1)[0])


# --------------------------------------------------------------------------------------------
# Checkpoint and resume
# --------------------------------------------------------------------------------------------

STEPS, EVERY = 40, 10


def _sample(key):
    return jax.random.normal(key, (BATCH, DIM))


def _stochastic_run(directory, tx, **kwargs):
    return gj.fit(
        GAME,
        tx,
        INIT,
        steps=STEPS,
        sample=_sample,
        key=jax.random.key(3),
        log_every=5,
        checkpoint_dir=directory,
        checkpoint_every=EVERY,
        **kwargs,
    )


TX = gj.ema(0.9)(gj.lookahead(4, 0.5)(gj.extragradient(optax.adam(0.05))))


def _assert_identical(a, b):
    jax.tree.map(np.testing.assert_array_equal, (a.params, a.state, a.metrics), (b.params, b.state, b.metrics))
    assert int(a.step) == int(b.step) == STEPS


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, monkeypatch):
    reference = _stochastic_run(tmp_path / "uninterrupted", TX)
    real, calls = training._run_intervals, []

    def interrupt_after_two_chunks(*args):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(training, "_run_intervals", interrupt_after_two_chunks)
    with pytest.raises(KeyboardInterrupt):
        _stochastic_run(tmp_path / "interrupted", TX)
    assert sorted(os.listdir(tmp_path / "interrupted")) == ["ckpt_0000000010.npz", "ckpt_0000000020.npz"]
    monkeypatch.setattr(training, "_run_intervals", real)
    _assert_identical(_stochastic_run(tmp_path / "interrupted", TX), reference)


def test_finished_run_is_returned_from_its_checkpoint_without_computing(tmp_path, monkeypatch):
    first = _stochastic_run(tmp_path, TX)
    monkeypatch.setattr(training, "_run_intervals", lambda *a: pytest.fail("recomputed a finished run"))
    _assert_identical(_stochastic_run(tmp_path, TX), first)


def test_resume_into_another_stack_names_the_mismatch(tmp_path):
    _stochastic_run(tmp_path, TX)
    other = gj.ema(0.9)(gj.lookahead(4, 0.5)(gj.extragradient(optax.sgd(0.05))))
    with pytest.raises(
        ValueError,
        match=r"(?s)does not match this run's state.*only in the checkpoint: state.inner.inner.base.x\[0\].count",
    ):
        _stochastic_run(tmp_path, other)


def test_resume_checks_log_every_and_key(tmp_path):
    _stochastic_run(tmp_path, TX)
    with pytest.raises(ValueError, match="log_every=5"):
        gj.fit(GAME, TX, INIT, steps=STEPS, sample=_sample,
               key=jax.random.key(3), log_every=2, checkpoint_dir=tmp_path, checkpoint_every=EVERY)  # fmt: skip
    with pytest.raises(ValueError, match="another PRNG key"):
        gj.fit(GAME, TX, INIT, steps=STEPS, sample=_sample,
               key=jax.random.key(4), log_every=5, checkpoint_dir=tmp_path, checkpoint_every=EVERY)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"checkpoint_every": 0}, "^checkpoint_every must be an integer >= 1"),
        ({"checkpoint_every": 7, "log_every": 2}, "^checkpoint_every must be a multiple of log_every"),
    ],
)
def test_checkpoint_arguments_are_validated(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gj.fit(GAME, TX, INIT, steps=10, batches=_batches(2), checkpoint_dir=tmp_path, **kwargs)
    with pytest.raises(ValueError, match="checkpoint_every was given without checkpoint_dir"):
        gj.fit(GAME, TX, INIT, steps=10, batches=_batches(2), checkpoint_every=5)


def test_checkpoint_round_trips_bfloat16_keys_and_ints_and_keeps_the_newest(tmp_path):
    tree = {"w": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3) / 3, "k": jax.random.key(7), "n": jnp.int32(4)}
    for step in (1, 2, 3):
        checkpoint.save(tmp_path, step, {"tree": tree}, {"note": step}, keep=2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt_0000000002.npz", "ckpt_0000000003.npz"]  # no temporary left
    trees, meta = checkpoint.restore(checkpoint.latest(tmp_path), {"tree": tree})
    assert meta == {"note": 3}
    assert trees["tree"]["w"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(trees["tree"]["w"], np.float32), np.asarray(tree["w"], np.float32))
    np.testing.assert_array_equal(jax.random.key_data(trees["tree"]["k"]), jax.random.key_data(tree["k"]))
    with pytest.raises(ValueError, match=r"\['w'\]: shape \(2, 3\) bfloat16 in the checkpoint.*float32"):
        checkpoint.restore(checkpoint.latest(tmp_path), {"tree": {**tree, "w": tree["w"].astype(jnp.float32)}})


def test_a_run_that_diverged_in_an_earlier_call_stays_frozen_without_replays(monkeypatch):
    """With several compiled calls (checkpoints or a progress bar), later calls keep the frozen point."""
    stacked = _batches(12, poisoned=(2,))
    calls = []
    real = training._run_intervals

    def counting(driver, *args):
        calls.append(driver.checked)
        return real(driver, *args)

    monkeypatch.setattr(training, "_run_intervals", counting)
    result = gj.fit(GAME, gj.gda(optax.sgd(0.1)), INIT, steps=12, batches=stacked, log_every=2, progress=True)
    assert int(result.diverged_at) == 3
    assert calls.count(True) == 1  # one replay, in the call where the run diverged
    params, _ = _loop_skipping(gj.gda(optax.sgd(0.1)), stacked[:2], ())
    jax.tree.map(np.testing.assert_allclose, result.params, params)


# Checkpoints know their run (issue 14): another run into the same directory is refused, fit says
# when it resumes, more steps extend a run, and checkpointing does not change what is recorded.


def test_another_learning_rate_into_the_same_checkpoint_dir_is_refused_naming_the_difference(tmp_path):
    _stochastic_run(tmp_path, TX)
    other = gj.ema(0.9)(gj.lookahead(4, 0.5)(gj.extragradient(optax.adam(0.07))))
    with pytest.raises(ValueError, match=r"(?s)holds another run.*first at line \d+:.*0\.05.*this run: .*0\.07"):
        _stochastic_run(tmp_path, other)
    with pytest.raises(ValueError, match="holds another run"):  # another alpha: a Python number baked into the step
        _stochastic_run(tmp_path, gj.ema(0.9)(gj.lookahead(4, 0.6)(gj.extragradient(optax.adam(0.05)))))


def test_fit_says_when_it_resumes_or_returns_a_finished_run(tmp_path, monkeypatch, capsys):
    real, calls = training._run_intervals, []

    def interrupt_after_one_chunk(*args):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(training, "_run_intervals", interrupt_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):
        _stochastic_run(tmp_path, TX)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(training, "_run_intervals", real)
    _stochastic_run(tmp_path, TX)
    assert f"gj.fit (fit): resuming from step {EVERY} of {STEPS}" in capsys.readouterr().err
    _stochastic_run(tmp_path, TX)
    assert "gj.fit (fit): returning the finished run" in capsys.readouterr().err


def test_more_steps_extend_a_checkpointed_run_and_checkpoints_do_not_change_the_records(tmp_path):
    def run(directory, steps):
        return gj.fit(GAME, TX, INIT, steps=steps, sample=_sample, key=jax.random.key(3), checkpoint_dir=directory)

    def plain(steps):
        return gj.fit(GAME, TX, INIT, steps=steps, sample=_sample, key=jax.random.key(3))

    first = run(tmp_path / "a", 200)  # default log_every: 2, as without checkpoints
    jax.tree.map(np.testing.assert_array_equal, first.metrics, plain(200).metrics)
    extended = run(tmp_path / "a", 300)  # the default for 300 steps would be 3: the checkpoint's 2 is kept
    assert int(extended.step) == 300
    np.testing.assert_array_equal(extended.metrics["step"], np.arange(0, 301, 2))
    reference = gj.fit(GAME, TX, INIT, steps=300, sample=_sample, key=jax.random.key(3), log_every=2)
    jax.tree.map(
        np.testing.assert_array_equal, (extended.params, extended.metrics), (reference.params, reference.metrics)
    )
