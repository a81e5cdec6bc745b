"""The averaging 16-grid and lookahead sensitivity benchmarks run end to end in their --quick mode."""

from __future__ import annotations

import json
import math
import pathlib

import pytest
from benchmark_scripts import load


def run_quick(name: str, tmp_path: pathlib.Path) -> tuple[dict, dict]:
    record = load(name).main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert (tmp_path / f"{name}_quick.png").stat().st_size > 10_000
    assert saved["claims"] and saved["paper"] and saved["quick"]
    missed = [c for c in record["claims"] if c["required"] and not c["reproduced"]]
    assert not missed, missed
    assert any(c["required"] for c in saved["claims"])  # quick mode keeps a meaningful required check
    return record, saved


@pytest.mark.slow
def test_averaging_16grid_quick(tmp_path):
    _, saved = run_quick("averaging_16grid", tmp_path)
    averages = saved["averages"]
    assert averages[0] == "no average" and averages[-1] == "MA" and any(a.startswith("EMA") for a in averages)
    scale = saved["scale"]
    for method, row in saved["table"].items():
        assert set(row) == set(averages), method
        for mean, std in row.values():
            assert mean is not None and std is not None and 0 < mean < 10 and std >= 0
        curves = saved["w1_curves"][method]  # (measurements, averages, seeds)
        assert len(curves) * scale["measure_every"] == scale["steps"]
        assert len(curves[0]) == len(averages) and len(curves[0][0]) == scale["seeds"]
        assert all(v is not None and math.isfinite(v) for r in curves for a in r for v in a)
        assert set(saved["modes_covered"][method]) == set(averages)
    assert 0 < saved["w1_floor"] < saved["w1_initial"]


@pytest.mark.slow
def test_lookahead_sensitivity_quick(tmp_path):
    _, saved = run_quick("lookahead_sensitivity", tmp_path)
    ks, alphas, dense = saved["heat_ks"], saved["heat_alphas"], saved["dense_ks"]
    for result in saved["results"].values():
        heat = result["heat_final"]
        assert len(heat) == len(ks) and all(len(row) == len(alphas) for row in heat)
        assert all(v is not None and v > 0 for row in heat + result["heat_slow"] for v in row)
        assert len(result["dense_final"]) == len(result["dense_slow"]) == len(dense)
        assert result["finite"] and result["gda"] > 0
        # k = 1 makes every lookahead step a no-op interpolation of one step: the slow weights are the iterate.
        assert heat[ks.index(1)] == pytest.approx(result["heat_slow"][ks.index(1)])
