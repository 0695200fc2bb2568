"""The `candlebench` command line: one module per group of commands, each registering its own."""

from __future__ import annotations

import argparse
import sys

from pipeline.cli import agents, data, deploy, grade, history
from pipeline.cli.errors import UsageError
from pipeline.store.lake import free_bytes, is_disk_full

GROUPS = (history, data, grade, agents, deploy)


def main(argv: list[str] | None = None) -> int:
    from pipeline.config import ConfigError
    from pipeline.orchestration.plan import HistoryError
    from pipeline.sandbox import SandboxUnavailable
    from pipeline.tasks import TaskFormatError

    parser = argparse.ArgumentParser(
        prog="candlebench",
        description="Daily candles and honest changepoints for AI coding agents, graded in sandboxes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(commands)
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (UsageError, ConfigError, HistoryError, TaskFormatError) as err:  # bad input: named, one line
        print(f"candlebench {args.command}: {one_line(err)}", file=sys.stderr)
        return 2
    except SandboxUnavailable as err:  # no Docker daemon, or it went away: the machine's, one line
        print(f"candlebench {args.command}: {one_line(err)}", file=sys.stderr)
        return 1
    except Exception as err:
        from pipeline.config import home

        if not is_disk_full(err, home()):
            raise
        print(f"candlebench {args.command}: {disk_full_message(err)}", file=sys.stderr)
        return 1


def one_line(err: BaseException) -> str:
    """An error as the one line a user reads (and a script greps)."""
    return " ".join(str(err).split())


def disk_full_message(err: BaseException) -> str:
    """What a full disk met anywhere (our lake, DuckDB, Dagster's SQLite) says: which disk, how full."""
    from pipeline.config import home

    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return (
        f"disk full: {free_bytes(home())} bytes free under {home()} ({first[:200]}); "
        "partitions already stored are unchanged: free some space and run the same command again"
    )


if __name__ == "__main__":
    sys.exit(main())
