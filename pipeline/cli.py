"""The `candlebench` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time


def _demo(args: argparse.Namespace) -> int:
    from pipeline.history import build_demo

    started = time.monotonic()
    today = dt.date.fromisoformat(args.end) if args.end else dt.date.today()
    timings = build_demo(today)
    print(f"history built in {time.monotonic() - started:.0f}s ({timings.runs} Dagster runs)")
    from pipeline.config import home

    print(f"report: {home() / 'report' / 'index.html'}")
    print(f"warehouse: {home() / 'warehouse.duckdb'}")
    if args.no_ui:
        return 0
    return _ui(args)


def _ui(args: argparse.Namespace) -> int:
    from pipeline.history import REPO_ROOT, prepare_dagster_home

    prepare_dagster_home()
    print(f"Dagster UI on http://localhost:{args.port} (DAGSTER_HOME={os.environ['DAGSTER_HOME']})")
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
               "-h", args.host, "-p", str(args.port)]
    return subprocess.call(command, cwd=REPO_ROOT)


def _query(args: argparse.Namespace) -> int:
    import polars as pl

    from pipeline.config import home
    from pipeline.warehouse import Warehouse

    frame = Warehouse(home()).query(args.sql)
    with pl.Config(tbl_rows=args.limit, tbl_cols=-1, tbl_width_chars=200):
        print(frame)
    return 0


def _build_image(args: argparse.Namespace) -> int:
    from pipeline.images import build_demo_image

    image = build_demo_image(tag=args.tag, mirror=args.mirror, force=args.force)
    print(image)
    return 0


def main(argv: list[str] | None = None) -> int:
    from pipeline.sandbox import DEMO_IMAGE

    parser = argparse.ArgumentParser(prog="candlebench", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="build the demo history through Dagster, then start the UI")
    demo.add_argument("--end", help="last day of the history (default: today)")
    demo.add_argument("--no-ui", action="store_true", help="stop after building the history")
    ui = commands.add_parser("ui", help="start the Dagster UI and daemon on this home")
    for command in (demo, ui):
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=3000)
    query = commands.add_parser("query", help="run a read-only SQL query on the warehouse")
    query.add_argument("sql")
    query.add_argument("--limit", type=int, default=50, help="rows to print")
    build = commands.add_parser(
        "build-image", help="build the Docker sandbox image locally (debootstrap, no registry)"
    )
    build.add_argument("--tag", default=DEMO_IMAGE, help="image tag (default: %(default)s)")
    build.add_argument("--mirror", help="Debian mirror (default: the one apt uses here)")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    args = parser.parse_args(argv)
    handlers = {"demo": _demo, "ui": _ui, "query": _query, "build-image": _build_image}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
