"""benchmarks/digits_gan.py runs end to end in --quick mode (its full-run numbers are in benchmarks/results/)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from benchmark_scripts import load


@pytest.mark.slow
def test_digits_gan_quick(tmp_path):
    module = load("digits_gan")
    record = module.main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "digits_gan_quick.json").read_text())
    assert (tmp_path / "digits_gan_quick.png").stat().st_size > 10_000
    assert saved["claims"] and saved["paper"] and saved["quick"]
    missed = [c for c in record["claims"] if c["required"] and not c["reproduced"]]
    assert not missed, missed
    assert any(c["required"] for c in saved["claims"])  # the quick run keeps a checked claim

    cfg = module.CONFIG[True]
    n_evaluated = 1 + len(module.DECAYS)  # the iterate and each EMA
    assert list(saved["table"]) == list(cfg["methods"])
    for name in cfg["methods"]:
        result = saved["results"][name]
        frechet = np.asarray(result["frechet"])
        assert frechet.shape == (cfg["seeds"], n_evaluated)
        assert np.all(np.isfinite(frechet)) and np.all(frechet >= 0) and result["finite"]
        inception = np.asarray(result["inception_score"])
        assert np.all((inception >= 1) & (inception <= 10))
        # One step of alternating updates is one gradient per player: two passes.
        assert result["passes"] == 2 * cfg["steps"]
        curve = saved["curves"][name]
        assert curve["step"] == [0, cfg["steps"]]
        assert np.asarray(curve["frechet"]).shape == (cfg["seeds"], cfg["records"] + 1, n_evaluated)
    # The curves start at the random generators (far from the data), the same for AltGAN and LA-AltGAN (paired seeds).
    initial = np.asarray(saved["curves"]["AltGAN"]["frechet"])[:, 0, 0]
    assert np.all(initial > 300)
    assert np.allclose(initial, np.asarray(saved["curves"]["LA-AltGAN"]["frechet"])[:, 0, 0])


def test_frechet_from_moments_matches_gamejax_metrics():
    """The host-side distance of the training curves agrees with gj.metrics.frechet_distance on the features."""
    import gamejax as gj

    module = load("digits_gan")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 16)) @ rng.normal(size=(16, 16)) + 0.5
    b = rng.normal(size=(300, 16))
    expected = float(gj.metrics.frechet_distance(a, b))
    moments = [(x.mean(axis=0), np.cov(x, rowvar=False)) for x in (a, b)]
    assert module.frechet_from_moments(*moments[0], *moments[1]) == pytest.approx(expected, rel=1e-6)
