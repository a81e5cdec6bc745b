"""The main job: `gamejax compare` (table, JSON, plot) and its method specs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from gamejax._src.gan import compare
from gamejax.cli import main


def strict_json(path):
    """JSON as a strict parser reads it (NaN and Infinity are not JSON)."""

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=reject)


def test_compare_prints_a_table_and_writes_valid_json_and_a_plot(tmp_path, capsys):
    main(
        [
            "compare",
            "--game",
            "bilinear",
            "--methods",
            "gda,la-gda,eg,ema-ogda,nla-eg",
            "--passes",
            "600",
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert "la-gda" in out and "steps to 1e-06" in out
    record = strict_json(tmp_path / "compare_bilinear.json")
    rows = {row["method"]: row for row in record["methods"]}
    assert rows["gda"]["status"] == "diverged"
    assert rows["la-gda"]["status"] == "converged" and rows["la-gda"]["passes_to_tol"] <= 600
    assert rows["eg"]["passes_per_step"] == 2 and rows["eg"]["steps"] == 300
    assert (tmp_path / "compare_bilinear.png").stat().st_size > 10_000


def test_a_diverged_run_is_reported_without_breaking_the_json(tmp_path):
    rows = compare.compare(
        "bilinear", ("gda",), passes=3000, tol=1e-6, options=compare.Options(lr=3.0), out=tmp_path, progress=False
    )
    # GDA at lr = 3 on x·y grows by sqrt(10) per step from |ω0| = sqrt(2): a coordinate overflows
    # float64 near t = log(max / sqrt 2) / log(sqrt 10); the run stops there and the table says so.
    overflow = (np.log(np.finfo(np.float64).max) - np.log(np.sqrt(2))) / np.log(np.sqrt(10))
    assert abs(rows[0].diverged_at - overflow) < 2.5
    assert rows[0].status == f"diverged at step {rows[0].diverged_at}"
    record = strict_json(tmp_path / "compare_bilinear.json")["methods"][0]
    assert record["diverged_at"] == rows[0].diverged_at and record["steps"] < rows[0].diverged_at


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("la-eg", "LookaheadState"),
        ("nla-gda", "LookaheadState"),
        ("ema-la-gda", "EmaState"),
        ("alt-la-gda", "AlternatingLookaheadState"),
    ],
)
def test_method_specs_compose_wrappers_outermost_first(spec, expected):
    import jax.numpy as jnp

    import gamejax as gj

    tx = compare.build_method(spec, compare.Options())
    state = tx.init(gj.Players(jnp.ones(2), jnp.ones(2)))
    assert type(state).__name__ == expected


def test_nested_lookahead_needs_k_slow_a_multiple_of_k():
    with pytest.raises(ValueError, match="k_slow to be a multiple of k"):
        compare.build_method("nla-gda", compare.Options(k=7, k_slow=60))


def test_the_console_entry_point_runs(tmp_path):
    command = [sys.executable, "-m", "gamejax", "compare", "--game", "qp2", "--methods", "gda,la-eg", "--passes", "60"]
    result = subprocess.run(
        [*command, "--no-progress", "--out", str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert "la-eg" in result.stdout and (tmp_path / "compare_qp2.json").exists()
