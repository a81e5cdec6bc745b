"""The 8-Gaussians reproductions (LEAD App. H, Numerics of GANs §5) run end to end in their --quick mode."""

from __future__ import annotations

import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from benchmark_scripts import load

import gamejax as gj


def check_outputs(name: str, record: dict, tmp_path: pathlib.Path) -> dict:
    saved = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert (tmp_path / f"{name}_quick.png").stat().st_size > 10_000
    assert saved["claims"] and saved["paper"] and saved["quick"]
    missed = [c for c in record["claims"] if c["required"] and not c["reproduced"]]
    assert not missed, missed
    assert any(c["required"] for c in record["claims"])  # at least one claim is checked at the quick size
    for c in record["claims"]:
        assert c["reproduced"] or not c["required"]
    return saved


@pytest.mark.slow
def test_lead_8gaussians_quick(tmp_path):
    record = load("lead_8gaussians").main(["--quick", "--out", str(tmp_path)])
    saved = check_outputs("lead_8gaussians", record, tmp_path)
    methods = ["Adam", "LEAD-Adam α=0.6 (authors' α)", "LEAD-Adam α=50 (tuned)", "LEAD-Adam α=0.6 (authors' variant)"]
    expected = {f"{m} / {loss}" for m in methods for loss in ("saturating", "non-saturating")}
    assert set(saved["results"]) == expected == set(saved["histories"])
    seeds, steps = saved["setup"]["seeds"], saved["setup"]["steps"]
    records = steps // saved["setup"]["log_every"] + 1
    assert saved["history_steps"] == list(range(0, steps + 1, saved["setup"]["log_every"]))
    for result in saved["results"].values():
        assert len(result["final_modes_covered"]) == len(seeds)
        assert all(0 <= m <= 8 for m in result["final_modes_covered"])
    for history in saved["histories"].values():
        assert np.shape(history["modes_covered"]) == (len(seeds), records)
        assert np.all(np.isfinite(history["high_quality"]))


@pytest.mark.slow
def test_consensus_8gaussians_quick(tmp_path):
    record = load("consensus_8gaussians").main(["--quick", "--out", str(tmp_path)])
    saved = check_outputs("consensus_8gaussians", record, tmp_path)
    setup = saved["setup"]
    assert set(saved["results"]) == {"SimGA", "consensus"}
    for name in ("SimGA", "consensus"):
        w1 = np.asarray(saved["w1_snapshots"][name])
        assert w1.shape == (len(setup["snapshot_steps"]), len(setup["seeds"]))
        assert np.all(np.isfinite(w1)) and np.all(w1 > 0)
        history = saved["histories"][name]
        assert history["step"][0] == list(range(0, setup["steps"] + 1, setup["log_every"]))  # one record per step


def test_lead_mixed_loss_is_the_saturating_and_the_non_saturating_gan():
    """The traced-weight loss of lead_8gaussians has the library losses' fields at w = 1 and w = 0."""
    module = load("lead_8gaussians")
    from _gan import mlp_pair

    pair = mlp_pair(0, noise_dim=4, data_dim=2, width=8, depth=1)
    sample = gj.gan.batch_sampler(gj.data.ring().sample, 4, 16)
    batch = sample(jax.random.key(0))
    for w, reference in ((1.0, gj.gan.saturating()), (0.0, gj.gan.non_saturating())):
        mixed = pair.game(module.mixed_loss(jnp.float32(w))).field(pair.params, batch)
        expected = pair.game(reference).field(pair.params, batch)
        for a, b in zip(jax.tree.leaves(mixed), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
