"""The ``robust-score`` command."""

import argparse


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="robust-score",
        description="Score-driven samplers under a possibly wrong score, and trap diagnostics.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="the paper's trap and memorisation results, in a table")
    args = parser.parse_args(argv)
    if args.command == "demo":
        from robust_score.demo import main as demo

        demo()


if __name__ == "__main__":
    main()
