"""The benchmarks run end to end in their --quick mode (their numbers are checked in benchmarks/, not here)."""

from __future__ import annotations

import importlib.util
import json

import pytest
from benchmark_scripts import load

REPRODUCTIONS = [
    "lookahead_fig3",
    "lookahead_fig4",
    "lookahead_qp",
    "lead_fig3",
    "lead_fig1",
    "averaging_ema",
    "beyond",
]


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


@pytest.mark.slow
def test_perf_quick(tmp_path):
    """The performance report's --quick run: every section present, every ratio positive and finite."""
    import math

    record = load("perf").main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "perf_quick.json").read_text())
    assert (tmp_path / "perf_quick.md").read_text().startswith("Machine:")
    assert saved["quick"] and saved["machine"]["cpu_count"] >= 1 and saved["machine"]["versions"]["jax"]

    def positive(value):
        return isinstance(value, (int, float)) and math.isfinite(value) and value > 0

    cost = saved["step_cost"]
    assert positive(cost["gradient_ms"]) and {"gda"} <= {row["method"] for row in cost["methods"]}
    for row in cost["methods"]:
        assert all(positive(row[k]) for k in ("ms_per_step", "gradients_per_step", "measured_over_evaluations"))
        assert row["evaluations_per_step"] >= 1 and row["finite"]
    for row in saved["drivers"]:
        keys = ("python_loop_steps_per_s", "fit_steps_per_s", "scan_steps_per_s", "fit_over_loop", "scan_over_loop")
        assert all(positive(row[k]) for k in keys), row
        assert all(d < 1e-4 for d in row["max_param_difference"].values()), row  # the same steps and batches
    for row in saved["sweeps"]:
        assert row["seeds"] == 64 and all(positive(row[k]) for k in ("sequential_s", "vmapped_s", "speedup"))
        assert row["max_result_difference"] < 1e-4  # vmap computes what the sequential runs compute
    assert positive(saved["compile"]["gradient_s"])
    for row in saved["compile"]["methods"]:
        assert all(positive(row[k]) for k in ("trace_s", "lower_s", "compile_s", "total_s", "over_gradient"))
    memory = saved["memory"]["methods"]
    assert set(memory) == {"extra-adam", "acgd"}
    for row in memory.values():
        assert row["peak_bytes"] >= row["argument_size_in_bytes"] > 0
    assert positive(saved["memory"]["acgd_over_extra_adam"]["peak_bytes"])
    assert [t["target"] for t in record["targets"]] == [t["target"] for t in saved["targets"]]
    assert all(positive(c["value"]) and isinstance(c["met"], bool) for t in saved["targets"] for c in t["cases"])


def test_peers_quick_runs_without_the_peers(tmp_path, capsys):
    """benchmarks/peers.py in CI's venv: jax-cgd and cgds are absent, skipped with a message; gamejax and Optax run."""
    record = load("peers").main(["--quick", "--peers", "jax-cgd,cgds", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "peers_quick.json").read_text())
    assert (tmp_path / "peers_quick.png").stat().st_size > 5_000
    printed = capsys.readouterr().out
    for peer, module in (("jax-cgd", "jax_cgd"), ("cgds", "CGDs")):
        if importlib.util.find_spec(module) is None:
            assert saved["skipped"][peer].startswith(f"skipped: {peer} not installed (pip install")
            assert saved["skipped"][peer] in printed
            assert peer not in saved["peers"]
    rows = {row["key"]: row for row in saved["results"][0]["rows"]}
    assert {"acgd/gamejax", "gda/gamejax", "gda/optax"} <= set(rows)
    # tol=0: exactly k iterations; matvecs = the warm start + k + the final true-residual check
    assert (
        rows["acgd/gamejax"]["cg_iterations"] == 3 and rows["acgd/gamejax"]["matvecs"] == 5
    )  # tol=0: warm start + k + the final true residual
    for row in rows.values():
        assert row["ms_per_step"] > 0 and row["dtypes"] == ["float32"]
    assert saved["results"][0]["gda_over_optax"]["per_step_call"] > 0
    assert saved["gda_trajectory"]["relative_to_displacement"] < 1e-8  # the same iterates as hand-written Optax
    assert record["claims"] and all(c["reproduced"] for c in record["claims"] if c["required"])


@pytest.mark.slow
def test_first_result_quick(tmp_path):
    """Both programs run in fresh processes and give positive times; the 1.3x claim is checked on full runs."""
    record = load("first_result").main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / "first_result_quick.png").stat().st_size > 10_000
    assert all(t > 0 for times in record["times"].values() for t in times)
    assert record["ratio"] == record["median"]["gj.fit"] / record["median"]["hand-written"]
