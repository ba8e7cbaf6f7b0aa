"""`univence maintenance on|off|status`: the edge answers 503 maintenance_mode while the flag file exists.

The flag is the edge's `maintenance_file` setting, by default `maintenance` in the data folder
(univence.home), so the command acts on the flag the running edge reads from whatever directory it
is run in."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_commands(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("maintenance", help="switch the edge's maintenance mode")
    parser.add_argument("state", choices=["on", "off", "status"])
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from edge.config import EdgeSettings

    flag = Path(EdgeSettings().maintenance_file)
    if args.state == "on":
        flag.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flag.write_text("maintenance\n")
    elif args.state == "off":
        flag.unlink(missing_ok=True)
    print(f"maintenance is {'on' if flag.exists() else 'off'} ({flag})")
    return 0
