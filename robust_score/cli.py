"""The ``robust-score`` command. Its subcommands run the paper's applications
(:mod:`robust_score.paper`), imported only when one runs: the library does not load them."""

import argparse
import sys


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "reproduce":  # it parses its own options (--quick, --out, --seed)
        from robust_score.paper.reproduce import main as reproduce

        reproduce(argv[1:])
        return
    parser = argparse.ArgumentParser(
        prog="robust-score",
        description="Score-driven samplers under a possibly wrong score, and trap diagnostics.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="the paper's trap and memorization results, in a table")
    commands.add_parser(
        "reproduce", help="the paper's experiments -> table, CSV, PNGs (--quick, --out DIR)"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        from robust_score.paper.demo import main as demo

        demo()


if __name__ == "__main__":
    main()
