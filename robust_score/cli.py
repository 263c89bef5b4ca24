"""The ``robust-score`` command. Its subcommands run the paper's applications
(:mod:`robust_score.paper`), imported only when one runs: the library does not load them, and
``--help`` and ``--version`` answer without importing JAX (well under a second)."""

import argparse
import sys

from robust_score import __version__

# Wall times measured on a 2-core CPU (they scale with the cores JAX can use).
DEMO_TIME = "about 1 min"
REPRODUCE_TIME = "about 4-6 min"
REPRODUCE_QUICK_TIME = "about 1.5 min"

_REPRODUCE_HELP = (
    "The paper's constructions (Thm 1 trap, Thm 7 memorization) and its learned-score "
    "experiments, run with every sampler: writes a Markdown table, a CSV and PNG figures to "
    f"--out. The full run takes {REPRODUCE_TIME} on 2 CPU cores, --quick "
    f"{REPRODUCE_QUICK_TIME}. docs/reproduction.md sets the full run against the paper's claims."
)


def build_parser() -> argparse.ArgumentParser:
    """The command's parser (every option with its help and default); nothing heavy here."""
    parser = argparse.ArgumentParser(
        prog="robust-score",
        description=(
            "Score-driven samplers under a possibly wrong score, and diagnostics that tell "
            "when Langevin is trapped (Cao, Chen, Sridharan & Wu, ICML 2026). The library is "
            "used from Python (import robust_score as rs); this command runs the paper's "
            "applications."
        ),
        epilog=(
            f"commands: demo ({DEMO_TIME}), reproduce ({REPRODUCE_TIME}; --quick "
            f"{REPRODUCE_QUICK_TIME}), on 2 CPU cores. 'robust-score COMMAND --help' lists a "
            "command's options."
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="print the version"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "demo",
        help=f"the paper's trap and memorization results, every sampler, as a table ({DEMO_TIME})",
        description=(
            "One wrong-but-accurate-on-average score (Thm 1 trap, Thm 7 memorization) in every "
            f"sampler, printed as a table ({DEMO_TIME} on 2 CPU cores). No options."
        ),
    )
    reproduce = commands.add_parser(
        "reproduce",
        help=f"the paper's experiments -> table, CSV, PNGs ({REPRODUCE_TIME}; --quick "
        f"{REPRODUCE_QUICK_TIME})",
        description=_REPRODUCE_HELP,
    )
    reproduce.add_argument(
        "--quick",
        action="store_true",
        help=f"small sizes, for a first look: {REPRODUCE_QUICK_TIME} instead of {REPRODUCE_TIME} "
        "(default: off, the full run)",
    )
    reproduce.add_argument(
        "--out",
        default="reproduce-out",
        metavar="DIR",
        help="folder for the table, CSV and figures, created if needed (default: %(default)s)",
    )
    reproduce.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of every random draw: a seed gives the same results each time "
        "(default: %(default)s)",
    )
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.command == "demo":
        from robust_score.paper.demo import main as demo

        demo()
    elif args.command == "reproduce":
        from robust_score.paper.reproduce import main as reproduce

        reproduce(
            ["--out", args.out, "--seed", str(args.seed)] + (["--quick"] if args.quick else [])
        )


if __name__ == "__main__":
    main()
