"""The `univence` command: run the stack, run one service, administer accounts, maintenance mode."""

from __future__ import annotations

import argparse
import sys

from univence.cli import accounts, maintenance, stack


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="univence", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stack.add_commands(commands)
    accounts.add_commands(commands)
    maintenance.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
