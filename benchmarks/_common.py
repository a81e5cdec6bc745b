"""Shared plumbing of the benchmark scripts: arguments, claims, and JSON + PNG output."""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
from typing import Any

import jax
import numpy as np


def arguments(description: str, argv: list[str] | None, default_out: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a small, fast run (CI checks its claims)")
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(default_out), help="output folder")
    return parser.parse_args(argv)


def claim(text: str, reproduced: bool, detail: str, *, required: bool = True) -> dict:
    """One claim of the paper and whether this run reproduces it.

    ``required=False`` marks a claim this project checked and does not reproduce (the README
    says why); CI asserts only the required ones.
    """
    return {"claim": text, "reproduced": bool(reproduced), "detail": detail, "required": required}


def _plain(value: Any) -> Any:
    """JSON-ready values: arrays to lists, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.ndarray, jax.Array)):
        return _plain(np.asarray(value).tolist())
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    return value


def report(name: str, paper: str, record: dict, claims: list[dict], figure: Any, args: argparse.Namespace) -> dict:
    """Print the claims, write ``<name>[_quick].json`` and ``.png`` to ``args.out``, return the record."""
    print(f"\n{paper}")
    for c in claims:
        print(f"  [{'reproduced' if c['reproduced'] else 'NOT reproduced'}] {c['claim']} — {c['detail']}")
    full = {
        "benchmark": name,
        "paper": paper,
        "quick": args.quick,
        "jax": jax.__version__,
        "device": jax.devices()[0].device_kind,
        "platform": platform.platform(),
        "claims": claims,
        **record,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{name}_quick" if args.quick else name
    (args.out / f"{stem}.json").write_text(json.dumps(_plain(full), indent=1))
    figure.tight_layout()
    figure.savefig(args.out / f"{stem}.png", dpi=110)
    print(f"wrote {args.out / stem}.json and .png")
    return full


def figure(ncols: int = 1, nrows: int = 1, size: tuple[float, float] = (6.5, 4.5)) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    return fig, axes
