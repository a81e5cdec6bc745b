"""The main job: `gamejax compare` (table, JSON, plot) and its method specs."""

from __future__ import annotations

import json
import re
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
    # GDA at η = 0.3 on x·y: ‖ω_t‖ = ‖ω_0‖(1 + η²)^(t/2) passes 10‖ω_0‖ at t = 54
    assert rows["gda"]["status"] == "diverged at step 54" and rows["gda"]["diverged_at"] == 54
    assert rows["la-gda"]["status"] == "converged" and rows["la-gda"]["passes_to_tol"] <= 600
    assert rows["eg"]["passes_per_step"] == 2 and rows["eg"]["steps"] == 300
    assert (tmp_path / "compare_bilinear.png").stat().st_size > 10_000


def test_a_diverged_run_is_reported_without_breaking_the_json(tmp_path):
    rows = compare.compare(
        "bilinear", ("gda",), passes=3000, tol=1e-6, options=compare.Options(lr=3.0), out=tmp_path, progress=False
    )
    # GDA at lr = 3 on x·y grows by sqrt(10) per step from |ω0| = sqrt(2): past 10|ω0| at t = 3, and a
    # coordinate overflows float64 near t = log(max / sqrt 2) / log(sqrt 10); the curve stops there.
    overflow = (np.log(np.finfo(np.float64).max) - np.log(np.sqrt(2))) / np.log(np.sqrt(10))
    assert abs(rows[0].nonfinite_at - overflow) < 2.5
    assert rows[0].diverged_at == 3 and rows[0].status == "diverged at step 3"
    record = strict_json(tmp_path / "compare_bilinear.json")["methods"][0]
    assert record["diverged_at"] == 3 and record["nonfinite_at"] == rows[0].nonfinite_at
    assert record["steps"] < rows[0].nonfinite_at


@pytest.mark.parametrize("lr", [0.3, 0.5, 1.0])
def test_json_diverged_at_is_the_closed_form_step(tmp_path, lr):
    """GDA on x·y: ‖ω_t‖² = (1 + η²)^t ‖ω_0‖², above 10‖ω_0‖ from t > 2 ln 10 / ln(1 + η²) on, never back."""
    expected = int(np.floor(2 * np.log(10) / np.log1p(lr**2))) + 1
    compare.compare("bilinear", ("gda", "eg"), passes=400, options=compare.Options(lr=lr), out=tmp_path, progress=False)
    rows = {row["method"]: row for row in strict_json(tmp_path / "compare_bilinear.json")["methods"]}
    assert rows["gda"]["diverged_at"] == expected and rows["gda"]["nonfinite_at"] is None
    assert rows["gda"]["status"] == f"diverged at step {expected}"
    assert rows["eg"]["diverged_at"] is None  # extragradient contracts on x·y for η < 1


def test_help_is_plain_text(capsys):
    for argv in (["--help"], ["compare", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert "usage: gamejax" in text and "compare" in text
        for markup in ("``", ":func:", ":class:", ":mod:", ".. ", "**"):
            assert markup not in text, (argv, markup)


def fake_rows(n):
    passes = list(range(0, 50, 5))
    return [
        compare.Row(f"m{i}", 1.0, 50, 1e-3, None, None, "not converged", passes, [1 / (1 + i + p) for p in passes])
        for i in range(n)
    ]


def test_every_method_has_its_own_line_style_and_the_legend_is_outside_the_axes():
    import matplotlib.pyplot as plt

    fig = compare.figure(fake_rows(24), "title")  # the 24 base methods
    try:
        ax = fig.axes[0]
        lines = ax.get_lines()
        colours = [matplotlib_colour(line.get_color()) for line in lines]
        styles = [(colour, line.get_linestyle()) for colour, line in zip(colours, lines, strict=True)]
        assert len(set(colours[:20])) == 20  # the default job's 17 methods never share a colour
        assert len(set(styles)) == 24
        assert ax.get_xlabel() == "passes (gradient-equivalents)"
        fig.canvas.draw()
        legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
        assert legend.x0 >= axes.x1  # right of the axes: it covers no curve
        assert legend.x1 <= fig.bbox.x1 and legend.y0 >= fig.bbox.y0  # and inside the figure
    finally:
        plt.close(fig)
    assert len({compare.line_style(i) for i in range(40)}) == 40


def matplotlib_colour(colour):
    import matplotlib.colors

    return matplotlib.colors.to_hex(colour)


def test_gj_plots_distances_labels_passes_as_gradient_equivalents():
    import matplotlib.pyplot as plt

    import gamejax as gj

    ax = gj.plots.distances({"a": {"passes": np.arange(3), "distance": np.ones(3)}})
    assert ax.get_xlabel() == "passes (gradient-equivalents)"
    plt.close(ax.figure)


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


# --------------------------------------------------------------------------------------------
# Per-game defaults, per-player step sizes, seeds and minibatches
# --------------------------------------------------------------------------------------------

# QP-1, L = −3x² + 4xy − y², by hand: x descends ∂L/∂x = −6x + 4y, y descends −∂L/∂y = −4x + 2y.
QP1_JACOBIAN = np.array([[-6.0, 4.0], [-4.0, 2.0]])


def test_qp1_needs_per_player_step_sizes_and_its_defaults_give_them():
    def radius(rates):
        return max(abs(np.linalg.eigvals(np.eye(2) - np.diag(rates) @ QP1_JACOBIAN)))

    assert radius([0.3, 0.3]) > 1  # the former shared default: GDA diverges
    lr = compare.default_options("qp1").lr
    assert radius(lr) < 1


def test_per_player_step_sizes_reach_the_methods(tmp_path):
    """GDA on QP-1 with --lr 0.05,0.5 follows ω_t = (I − diag(η) J)^t ω_0 exactly."""
    main(
        ["compare", "--game", "qp1", "--methods", "gda", "--lr", "0.05,0.5", "--passes", "40"]
        + ["--out", str(tmp_path), "--no-progress"]
    )
    record = strict_json(tmp_path / "compare_qp1.json")
    assert record["options"]["lr"] == [0.05, 0.5]
    row = record["methods"][0]
    M = np.eye(2) - np.diag([0.05, 0.5]) @ QP1_JACOBIAN
    expected = [np.linalg.norm(np.linalg.matrix_power(M, t) @ np.ones(2)) for t in range(len(row["distance"]))]
    np.testing.assert_allclose(row["distance"], expected, rtol=1e-10)


@pytest.mark.parametrize(
    ("game", "methods"),
    [
        ("qp1", ("gda", "alt-gda", "eg", "ogda", "la-gda", "la-eg", "lead", "co", "sga")),
        ("quadratic", ("eg", "ogda", "alt-gda", "la-gda", "lead", "co")),
    ],
)
def test_first_order_methods_converge_at_each_games_defaults(game, methods):
    rows = compare.compare(game, methods, passes=2000, progress=False)  # options: the game's defaults
    assert {row.method: row.status for row in rows} == dict.fromkeys(methods, "converged")


def test_the_quadratic_games_default_step_size_is_past_gdas_closed_form_bound():
    """At h = 0.1 GDA converges iff η < 2h/(h² + σ²) for every singular value σ of A: not at η = 0.3."""
    import jax

    A = np.asarray(jax.random.normal(jax.random.key(0), (10, 10))) / np.sqrt(10.0)
    sigma = np.linalg.svd(A, compute_uv=False).max()
    assert compare.default_options("quadratic").lr > 2 * 0.1 / (0.1**2 + sigma**2)
    rows = compare.compare("quadratic", ("gda",), passes=200, progress=False)
    assert rows[0].diverged_at is not None


def sbg_by_hand(seed, dim=100):
    """SB-G's data as the game draws it (lookahead paper §4.2): b_i, c_i ~ N(0, 1/d), start ~ N(0, 1/d)."""
    import jax

    kb, kc, kx, ky = jax.random.split(jax.random.key(seed), 4)
    scale = 1 / np.sqrt(dim)
    b, c = (scale * np.asarray(jax.random.normal(k, (dim, dim))) for k in (kb, kc))
    theta, phi = (scale * np.asarray(jax.random.normal(k, (dim,))) for k in (kx, ky))
    return b, c, theta, phi


def test_seed_and_batch_size_run_stochastic_sbg_as_written_by_hand(tmp_path):
    """GDA and EG on SB-G with minibatches of 10, against the sum-of-samples gradients by hand.

    ℓ_I(θ, φ) = Σ_{i∈I} θᵀb_i + θ_iφ_i + c_iᵀφ: ∇θ = Σ b_i + 1_I ⊙ φ, ∇φ = Σ c_i + 1_I ⊙ θ. Step t
    draws its indices from fold_in(fold_in(key(seed), 1), t) (gj.fit's convention), and EG's two
    evaluations draw independent ones (gj.per_evaluation).
    """
    import jax

    seed, size, eta = 3, 10, 0.3
    main(
        ["compare", "--game", "sbg", "--methods", "gda,eg", "--passes", "20", "--seed", str(seed)]
        + ["--batch-size", str(size), "--out", str(tmp_path), "--no-progress"]
    )
    record = strict_json(tmp_path / "compare_sbg.json")
    assert record["seed"] == seed and record["batch_size"] == size
    rows = {row["method"]: row for row in record["methods"]}
    b, c, theta0, phi0 = sbg_by_hand(seed)
    star = np.concatenate([-c.sum(0), -b.sum(0)])
    key = jax.random.fold_in(jax.random.key(seed), 1)

    def indices(k):
        return np.asarray(jax.random.permutation(k, 100))[:size]

    def field(theta, phi, index):
        mask = np.zeros(100)
        mask[index] = 1
        return b[index].sum(0) + mask * phi, -(c[index].sum(0) + mask * theta)

    for method, evaluations in (("gda", 1), ("eg", 2)):
        theta, phi = theta0.copy(), phi0.copy()
        distances = [np.linalg.norm(np.concatenate([theta, phi]) - star)]
        for t in range(len(rows[method]["distance"]) - 1):
            step_key = jax.random.fold_in(key, t)
            keys = [step_key] if evaluations == 1 else list(jax.random.split(step_key, 2))
            gx, gy = field(theta, phi, indices(keys[0]))
            if method == "eg":
                gx, gy = field(theta - eta * gx, phi - eta * gy, indices(keys[1]))
            theta, phi = theta - eta * gx, phi - eta * gy
            distances.append(np.linalg.norm(np.concatenate([theta, phi]) - star))
        np.testing.assert_allclose(rows[method]["distance"], distances, rtol=1e-10)
    assert rows["gda"]["steps"] == 20 and rows["eg"]["steps"] == 10


def test_another_seed_draws_another_sbg(tmp_path):
    first = compare.compare("sbg", ("gda",), passes=2, progress=False, seed=0)
    second = compare.compare("sbg", ("gda",), passes=2, progress=False, seed=1)
    _, _, theta, phi = sbg_by_hand(1)
    b, c = sbg_by_hand(1)[:2]
    start = np.linalg.norm(np.concatenate([theta + c.sum(0), phi + b.sum(0)]))
    np.testing.assert_allclose(second[0].distance[0], start, rtol=1e-12)
    assert first[0].distance[0] != second[0].distance[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "0.1,0.2,0.3"], "expected one step size or two"),
        (["--lr", "fast"], "expected a number or two numbers"),
        (["--lr", "-0.1"], r"lr must lie in \(0.0, inf\)"),
        (["--game", "qp1", "--batch-size", "5"], "--batch-size applies to --game sbg only"),
        (["--batch-size", "500"], "batch_size must be at most dim=100"),
        (["--seed", "-1"], "--seed must be a non-negative integer"),
        (["--lr", "0.1,0.2", "--methods", "lola"], "lola and sos take one lookahead"),
    ],
)
def test_bad_options_name_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", "--methods", "gda", *argv])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
