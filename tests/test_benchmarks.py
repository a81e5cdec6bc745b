"""The benchmarks run end to end in their --quick mode (their numbers are checked in benchmarks/, not here)."""

from __future__ import annotations

import json

import pytest
from benchmark_scripts import load

REPRODUCTIONS = ["lookahead_fig3", "lookahead_fig4", "lookahead_qp", "lead_fig3", "lead_fig1", "averaging_ema"]


@pytest.mark.slow
def test_step_cost_quick(tmp_path):
    record = load("step_cost").main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "step_cost_quick.json").read_text())
    assert (tmp_path / "step_cost_quick.png").stat().st_size > 10_000
    assert saved["results"][0]["width"] == record["results"][0]["width"] == 32
    rows = {row["method"]: row for row in saved["results"][0]["methods"]}
    assert {"plain Optax GDA (Adam)", "GDA (Adam)", "Extra-Adam", "LEAD-Adam", "consensus (Adam)"} <= set(rows)
    for row in rows.values():
        assert row["ms_per_step"] > 0 and row["papers_accounting"] >= 1 and row["predicted_from_units"] > 0
    # The evaluation counts are the documented ones; a tolerance-based CG reports its iterations.
    assert rows["Extra-Adam"]["counts"] == {"field": 2}
    assert rows["ACGD (10 CG its)"]["counts"] == {"field": 1, "jvp": 22}
    tol_based = rows["ACGD (tol 1e-4)"]["counts"]
    assert tol_based["jvp"] == 2 + 2 * tol_based["cg_iterations"]


@pytest.mark.slow
@pytest.mark.parametrize("name", REPRODUCTIONS)
def test_reproduction_quick_mode_reproduces_the_papers_claims(name, tmp_path):
    record = load(name).main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert (tmp_path / f"{name}_quick.png").stat().st_size > 10_000
    assert saved["claims"] and saved["paper"]
    missed = [c for c in record["claims"] if c["required"] and not c["reproduced"]]
    assert not missed, missed
