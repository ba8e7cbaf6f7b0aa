"""The `univence` command: run the stack, run one service, administer accounts, maintenance mode."""

from __future__ import annotations

import univence.transport  # noqa: F401  (first: gRPC's transport, before anything imports grpc)

# isort: split
import argparse
import os
import sys

from univence import version
from univence.cli import accounts, maintenance, stack


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="univence", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stack.add_commands(commands)
    accounts.add_commands(commands)
    maintenance.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args) or 0)
    except BrokenPipeError:
        # The reader went away (`univence accounts list-users | head`): not an error worth a traceback.
        # Python's documented recipe: point stdout at devnull so the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer


if __name__ == "__main__":
    sys.exit(main())
