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
    """Zero-sum and general-sum GANs, gamejax against hand-written JAX: the same iterates and the same XLA FLOPs.

    FLOP counts of compiled programs are deterministic, so their ratios are asserted (timings are
    not): every loop-free gamejax step compiles to the FLOPs of the same method written by hand.
    """
    record = load("step_cost").main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "step_cost_quick.json").read_text())
    assert (tmp_path / "step_cost_quick.png").stat().st_size > 10_000
    assert [(r["width"], r["loss"], r["zero_sum"]) for r in saved["results"]] == [
        (32, "saturating", True),
        (32, "non-saturating", False),
    ]
    assert [r["loss"] for r in record["results"]] == ["saturating", "non-saturating"]
    for result in saved["results"]:
        rows = {row["method"]: row for row in result["methods"]}
        acgd = "ACGD (α 1e-2, 10 its)"
        assert set(rows) == {"GDA (Adam)", "Extra-Adam", "LEAD-Adam", "consensus (Adam)", acgd}
        assert result["gradient_flops"] > 0
        for row in rows.values():
            assert row["ms_per_step"] > 0 and row["hand_written"]["ms_per_step"] > 0 and row["papers_accounting"] >= 1
            # The hand-written step computes what gamejax's computes (float32; ACGD's solvers round differently).
            assert row["difference_to_hand_written"] <= 1e-3, (row["method"], row["difference_to_hand_written"])
            if row["flops_exact"]:
                assert abs(row["flops_over_hand_written"] - 1) <= 0.005, (row["method"], row["flops_over_hand_written"])
        # FLOPs in gradients: the evaluation counts of the papers, up to the optimizer's own arithmetic.
        assert 1.0 <= rows["GDA (Adam)"]["flops_per_gradient"] <= 1.05
        assert 2.0 <= rows["Extra-Adam"]["flops_per_gradient"] <= 2.1
        # XLA counts a while loop's body once, so ACGD's FLOPs are those of its static program
        # (gamejax's holds the final true residual's matrix-vector product beside jax.scipy's).
        assert not rows[acgd]["flops_exact"] and 0.8 < rows[acgd]["flops_over_hand_written"] < 1.3
        # The evaluation counts are the documented ones: 10 iterations of CG (zero-sum) or GMRES
        # (general-sum), one matrix-vector product each, the warm start's and one true residual; 2 jvps each.
        assert rows[acgd]["counts"]["matvecs"] == 12 and rows[acgd]["counts"]["jvp"] == 2 + 2 * 12
        assert rows["Extra-Adam"]["counts"] == {"field": 2}


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
    assert [(game["loss"], game["zero_sum"]) for game in cost["games"]] == [
        ("saturating", True),
        ("non-saturating", False),
    ]
    for game in cost["games"]:
        assert positive(game["gradient_ms"]) and positive(game["gradient_flops"])
        rows = {row["method"]: row for row in game["methods"]}
        assert set(rows) == {"adam", "hand-written GDA (Adam)"} and rows["hand-written GDA (Adam)"]["reference"]
        for row in rows.values():
            keys = ("ms_per_step", "gradients_per_step", "measured_over_evaluations", "flops_per_gradient")
            assert all(positive(row[k]) for k in keys), row
            assert row["evaluations_per_step"] >= 1 and row["finite"]
        # gamejax's GDA with Adam compiles to the FLOPs of the same step written by hand (deterministic).
        assert abs(rows["adam"]["hand_written"]["flops_ratio"] - 1) <= 0.005, rows["adam"]["hand_written"]
        assert positive(rows["adam"]["hand_written"]["time_ratio"])
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


@pytest.mark.slow
def test_cgd_solvers_quick(tmp_path):
    """GMRES against BiCGSTAB on CGD's general-sum systems: every solve reported, the products counted as documented."""
    record = load("cgd_solvers").main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "cgd_solvers_quick.json").read_text())
    assert (tmp_path / "cgd_solvers_quick.png").stat().st_size > 10_000
    size = saved["size"]
    solvers = {"BiCGSTAB", "GMRES(20)"}
    assert len(saved["systems"]) == len(size["methods"]) * len(size["points"]) * len(size["tolerances"]) * 2
    for row in saved["systems"]:
        assert row["solver"] in solvers and row["converged"] == (row["residual"] <= row["tol"])
        # Cold solves: GMRES one product per iteration plus one true residual per restart cycle,
        # BiCGSTAB two per iteration plus one per cycle of at most 10 iterations.
        k = row["iterations"]
        if row["solver"] == "GMRES(20)":
            assert row["matvecs"] == k + max(1, -(-k // 20))
        else:
            assert 2 * k + 1 <= row["matvecs"] <= 3 * k + 1
    assert {row["solver"] for row in saved["training"]} == solvers
    for row in saved["training"]:
        assert row["finite"] and row["largest_residual"] <= 1e-4 and row["ms_per_step"] > 0
        assert row["passes_per_step"] == pytest.approx(3 + 2 * row["matvecs_per_step"], rel=1e-5)
    assert record["claims"] and all(c["reproduced"] for c in record["claims"] if c["required"])


GPU_SCRIPT_ISOLATION = """
import importlib.abc, runpy, sys
BLOCKED = {"matplotlib", "sklearn", "tqdm", "PIL", "pytest", "hypothesis"}

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not available on the GPU machine")

sys.meta_path.insert(0, Blocker())
sys.argv = ["gpu.py", "--quick", "--out", sys.argv[1]]
runpy.run_path(SCRIPT, run_name="__main__")
"""


@pytest.mark.slow
def test_gpu_script_quick_runs_without_extra_packages(tmp_path):
    """benchmarks/gpu.py --quick in a fresh process (no x64) that cannot import matplotlib, sklearn, tqdm or Pillow.

    The GPU machine has JAX, Flax, Optax and chex only, and imports gamejax from the checkout.
    Every CI item must succeed; the FLOPs of gamejax's GDA equal the hand-written step's on the MLPs.
    """
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    script = GPU_SCRIPT_ISOLATION.replace("SCRIPT", repr(str(root / "benchmarks" / "gpu.py")))
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    saved = json.loads((tmp_path / "gpu_quick.json").read_text())
    markdown = (tmp_path / "gpu_quick.md").read_text()
    assert saved["gamejax_file"].startswith(str(root / "gamejax")) and saved["machine"]["x64"] is False
    items = {section: {item["item"]: item for item in items} for section, items in saved["sections"].items()}
    assert set(items) == {"sweep", "conv_throughput", "step_cost"}
    failed = [(s, i["item"], i.get("error")) for s in items for i in items[s].values() if i["status"] != "ok"]
    assert not failed, failed
    assert set(items["step_cost"]) == {"MLP, saturating", "MLP, non-saturating", "DCGAN, non-saturating"}
    sweep = items["sweep"]["x·y (scan)"]
    assert sweep["seeds"] == 64 and sweep["speedup"] > 0 and sweep["max_result_difference"] < 1e-4
    throughput = items["conv_throughput"]["DCGAN"]
    assert all(v > 0 for v in throughput["steps_per_s"].values()) and len(throughput["steps_per_s"]) == 5
    for label in ("MLP, saturating", "MLP, non-saturating"):
        (row,) = items["step_cost"][label]["methods"]
        assert row["method"] == "GDA (Adam)" and abs(row["hand_written"]["flops_ratio"] - 1) <= 0.005
    (row,) = items["step_cost"]["DCGAN, non-saturating"]["methods"]
    assert row["hand_written"]["flops_ratio"] > 0 and row["flops_per_gradient"] > 0
    for heading in ("**Sweep**", "**Conv GAN throughput**", "**Step cost**"):
        assert heading in markdown


@pytest.mark.slow
def test_conv_gan_quick(tmp_path):
    """conv_gan.py --quick: the DCGAN trains (FD drops, finite), outputs are complete, AltGAN / LA-AltGAN paired."""
    import numpy as np

    import gamejax as gj

    module = load("conv_gan")
    record = module.main(["--quick", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "conv_gan_quick.json").read_text())
    assert (tmp_path / "conv_gan_quick.png").stat().st_size > 10_000
    assert saved["claims"] and saved["paper"] and saved["quick"]
    missed = [c for c in record["claims"] if c["required"] and not c["reproduced"]]
    assert not missed, missed
    assert any(c["required"] for c in saved["claims"])
    cfg = module.CONFIG[True]
    for name in cfg["methods"]:
        result = saved["results"][name]
        frechet = np.asarray(result["frechet"])
        assert frechet.shape == (cfg["seeds"], 2) and np.all(frechet >= 0) and result["finite"]  # iterate, EMA
        assert result["passes"] == 2 * cfg["steps"]  # alternating: one gradient per player per step
        curve = saved["curves"][name]
        assert curve["step"] == [0, cfg["steps"]]
        assert np.asarray(curve["frechet"]).shape == (cfg["seeds"], cfg["records"] + 1, 2)
    # Paired runs: the same initial generators, far from the data.
    initial = np.asarray(saved["curves"]["AltGAN"]["frechet"])[:, 0, 0]
    assert np.all(initial > 300)
    np.testing.assert_allclose(initial, np.asarray(saved["curves"]["LA-AltGAN"]["frechet"])[:, 0, 0], rtol=1e-6)
    # The metric's 28 → 8 map inverts digits(size=28)'s upsampling: real digits come back unchanged.
    back = module.to_8x8(gj.data.digits("test", size=28).images)
    np.testing.assert_allclose(back, gj.data.digits("test").images, atol=1e-5)
    assert saved["real_floor"] < 10
