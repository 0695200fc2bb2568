"""The `candlebench` command line: one module per group of commands, each registering its own."""

from __future__ import annotations

import argparse
import sys

from pipeline.cli import agents, data, grade, history
from pipeline.cli.errors import UsageError

GROUPS = (history, data, grade, agents)


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import ConfigError
    from pipeline.orchestration.history import HistoryError

    parser = argparse.ArgumentParser(
        prog="candlebench", description="Daily candles and honest changepoints for AI coding agents, "
        "graded in sandboxes.")
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(commands)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, ConfigError, HistoryError) as err:
        print(f"candlebench {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
