"""Command line: ``gamejax compare`` runs game optimizers side by side on a built-in game."""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

import jax


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    from gamejax._src.gan import compare

    parser = argparse.ArgumentParser(prog="gamejax", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    cmp = commands.add_parser(
        "compare",
        help="compare methods on a built-in game: table, JSON and a convergence plot",
        description="Run game optimizers for a fixed number of game evaluations (passes) and "
        "report their distance to the equilibrium.",
    )
    defaults = compare.Options()
    cmp.add_argument(
        "--game", default="sbg", help=f"one of: {', '.join(sorted(compare.GAMES))} (default sbg, full batch)"
    )
    cmp.add_argument(
        "--methods",
        default=",".join(compare.DEFAULT_METHODS),
        help=f"comma-separated specs from {', '.join(compare.method_names())}, "
        "each optionally prefixed by la- (lookahead), nla- (nested lookahead), ema- (report the EMA iterate)",
    )
    cmp.add_argument("--passes", type=int, default=2000, help="budget of game evaluations per method (default 2000)")
    cmp.add_argument("--tol", type=float, default=1e-6, help="distance that counts as converged (default 1e-6)")
    cmp.add_argument("--lr", type=float, default=defaults.lr, help="SGD step size η (default 0.3)")
    cmp.add_argument("--adam-lr", type=float, default=defaults.adam_lr, help="Adam step size (default 0.01)")
    cmp.add_argument("--k", type=int, default=defaults.k, help="lookahead k (default 6)")
    cmp.add_argument("--k-slow", type=int, default=defaults.k_slow, help="nested lookahead's outer k (default 60)")
    cmp.add_argument("--alpha", type=float, default=defaults.alpha, help="lookahead α (default 0.5)")
    cmp.add_argument("--ema-decay", type=float, default=defaults.ema_decay, help="EMA decay β (default 0.99)")
    cmp.add_argument("--lead-alpha", type=float, default=defaults.lead_alpha, help="LEAD coupling α (default 0.5)")
    cmp.add_argument("--gamma", type=float, default=defaults.gamma, help="consensus γ (default 1.0)")
    cmp.add_argument("--lam", type=float, default=defaults.lam, help="SGA λ (default 1.0)")
    cmp.add_argument("--unroll-steps", type=int, default=defaults.unroll_steps, help="unrolling steps (default 6)")
    cmp.add_argument(
        "--out",
        type=pathlib.Path,
        default=pathlib.Path("results/compare"),
        help="output folder (default results/compare)",
    )
    cmp.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser, cmp


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gamejax`` console script.

    Enables float64 (``jax_enable_x64``) for the process: the built-in games are small and the
    table reports distances down to 1e-6 and below.
    """
    jax.config.update("jax_enable_x64", True)  # small games, distances down to 1e-6 and below
    from gamejax._src.gan import compare

    parser, cmp = _parser()
    args = parser.parse_args(argv)
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    options = compare.Options(
        **{
            field.name: getattr(args, field.name)
            for field in dataclasses.fields(compare.Options)
            if field.name != "adam_b1"
        }
    )
    if args.passes < 1:
        cmp.error("--passes must be a positive integer")
    if not methods:
        cmp.error("--methods names no method; e.g. --methods gda,la-gda")
    try:
        if args.game not in compare.GAMES:
            raise ValueError(f"unknown game {args.game!r}; accepted: {', '.join(sorted(compare.GAMES))}")
        for spec in methods:
            compare.build_method(spec, options)
    except (TypeError, ValueError) as err:
        cmp.error(str(err))
    rows = compare.compare(
        args.game, methods, args.passes, args.tol, options, out=args.out, progress=not args.no_progress
    )
    print(f"\n{args.game}: {args.passes} passes per method, converged = distance <= {args.tol:g}\n")
    print(compare.format_table(rows, args.tol))
    print(f"\nwrote {args.out / f'compare_{args.game}.png'} and {args.out / f'compare_{args.game}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
