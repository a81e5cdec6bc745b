"""Command line: ``gamejax compare`` runs game optimizers side by side on a built-in game."""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys

import jax

# The --help text: plain words, since argparse prints it as written (the module docstring is reST).
DESCRIPTION = "gamejax: composable optimizers for two-player differentiable games."
COMPARE_DESCRIPTION = (
    "Run game optimizers on a built-in game for the same budget of passes (gradient-equivalents) "
    "and report their distance to the equilibrium: a table on stdout, compare_<game>.json and "
    "compare_<game>.png in --out. Step sizes and the other hyperparameters default to the game's own."
)


def _rate(text: str) -> float | tuple[float, float]:
    """``0.3`` (both players) or ``0.05,0.5`` (x's, y's)."""
    parts = [part.strip() for part in text.split(",")]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or two numbers x,y; got {text!r}") from None
    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise argparse.ArgumentTypeError(f"expected one step size or two (x's,y's); got {len(values)} in {text!r}")


def _by_game(field: str) -> str:
    """The defaults of an option, game by game, for its help text."""
    from gamejax._src.gan import compare

    def show(value) -> str:
        return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"

    groups: dict[str, list[str]] = {}
    for game in sorted(compare.GAMES):
        groups.setdefault(show(getattr(compare.default_options(game), field)), []).append(game)
    if len(groups) == 1:
        return f"default {next(iter(groups))}"
    return "default " + "; ".join(f"{value} on {', '.join(games)}" for value, games in groups.items())


def _parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    from gamejax._src.gan import compare

    parser = argparse.ArgumentParser(prog="gamejax", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    cmp = commands.add_parser(
        "compare",
        help="compare methods on a built-in game: table, JSON and a convergence plot",
        description=COMPARE_DESCRIPTION,
    )
    cmp.add_argument(
        "--game", default="sbg", help=f"one of: {', '.join(sorted(compare.GAMES))} (default sbg, full batch)"
    )
    cmp.add_argument(
        "--methods",
        default=",".join(compare.DEFAULT_METHODS),
        help=f"comma-separated specs from {', '.join(compare.method_names())}, "
        "each optionally prefixed by la- (lookahead), nla- (nested lookahead), ema- (report the EMA iterate)",
    )
    cmp.add_argument(
        "--passes", type=int, default=2000, help="budget of passes (gradient-equivalents) per method (default 2000)"
    )
    cmp.add_argument("--tol", type=float, default=1e-6, help="distance that counts as converged (default 1e-6)")
    cmp.add_argument(
        "--seed", type=int, default=0, help="draws the game (SB-G, quadratic) and the minibatches (default 0)"
    )
    cmp.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="sbg only: run it stochastic with minibatches of this many samples, one per field evaluation "
        "(default: the full batch)",
    )
    rates = "one number for both players or two, x's and y's (e.g. 0.05,0.5)"
    cmp.add_argument("--lr", type=_rate, default=None, help=f"SGD step size η: {rates}; {_by_game('lr')}")
    cmp.add_argument("--adam-lr", type=_rate, default=None, help=f"Adam step size: {rates}; {_by_game('adam_lr')}")
    options = {
        "k": (int, "lookahead k"),
        "k_slow": (int, "nested lookahead's outer k, a multiple of k"),
        "alpha": (float, "lookahead α"),
        "ema_decay": (float, "EMA decay β"),
        "lead_alpha": (float, "LEAD coupling α (coupling α/η)"),
        "gamma": (float, "consensus γ"),
        "lam": (float, "SGA λ"),
        "unroll_steps": (int, "unrolling steps"),
    }
    for field, (kind, what) in options.items():
        cmp.add_argument(f"--{field.replace('_', '-')}", type=kind, default=None, help=f"{what}; {_by_game(field)}")
    cmp.add_argument(
        "--lookahead",
        type=float,
        default=None,
        help="LOLA's and SOS's lookahead α (default: η, which must then be one number; 0.05 on qp1)",
    )
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
    if args.passes < 1:
        cmp.error("--passes must be a positive integer")
    if args.seed < 0:
        cmp.error(f"--seed must be a non-negative integer; got {args.seed}")
    if not methods:
        cmp.error("--methods names no method; e.g. --methods gda,la-gda")
    try:
        compare.check_game(args.game)
        given = {
            field.name: getattr(args, field.name)
            for field in dataclasses.fields(compare.Options)
            if getattr(args, field.name, None) is not None
        }
        options = dataclasses.replace(compare.default_options(args.game), **given)
        if args.batch_size is not None:
            if args.game != "sbg":
                raise ValueError(f"--batch-size applies to --game sbg only; {args.game} has no data to sample")
            compare.games_lib.sbg_sampler(args.batch_size)  # checks 1 <= batch size <= 100
        for spec in methods:
            compare.build_method(spec, options)
    except (TypeError, ValueError) as err:
        cmp.error(str(err))
    rows = compare.compare(
        args.game,
        methods,
        args.passes,
        args.tol,
        options,
        out=args.out,
        progress=not args.no_progress,
        seed=args.seed,
        batch_size=args.batch_size,
    )
    batches = "full batch" if args.batch_size is None else f"minibatches of {args.batch_size}"
    print(
        f"\n{args.game} ({batches}, seed {args.seed}): {args.passes} passes per method, "
        f"converged = distance <= {args.tol:g}\n"
    )
    print(compare.format_table(rows, args.tol))
    print(f"\nwrote {args.out / f'compare_{args.game}.png'} and {args.out / f'compare_{args.game}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
