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

    dagster_home = prepare_dagster_home()
    print(f"Dagster UI on http://localhost:{args.port} (DAGSTER_HOME={dagster_home})")
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
               "-h", args.host, "-p", str(args.port)]
    # Started from DAGSTER_HOME, where our dagster.yaml is linked, so Dagster sees one config.
    # `dagster dev` warns that `dg dev` supersedes it; that needs the dg CLI, which we do not ship.
    quiet = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                   "ignore:Function `dev_command` is superseded"]))
    return subprocess.call(command, cwd=dagster_home, env={**os.environ, "PYTHONWARNINGS": quiet})


def _backfill(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipeline.history import build_history, prepare_dagster_home

    start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    if end < start:
        raise SystemExit(f"--to {end} is before --from {start}")
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        timings = build_history(end, (end - start).days + 1, instance, subjects=args.subject,
                                regrade_only=args.regrade, redo=args.redo)
    print(f"{timings.runs} Dagster runs in {sum(timings.stages.values()):.0f}s")
    return 0


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


def _attempt(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from pipeline.adapters import try_task
    from pipeline.config import ConfigError

    try:
        config = Path(args.config) if args.config else None
        day = dt.date.fromisoformat(args.date) if args.date else None
        attempt = try_task(args.subject, args.task, Path(args.out), config, day, args.trial)
    except (ConfigError, KeyError, FileExistsError) as err:
        print(f"candlebench attempt: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    print(json.dumps(attempt.record(), indent=2))
    return 0


def _check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.preflight import preflight, report

    checks = preflight(Path(args.config) if args.config else None)
    print(report(checks))
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    print(f"{failed} failed, {warned} warning(s): "
          + ("the scheduled run would fail or refuse work" if failed else "ready for the scheduled run"))
    return 1 if failed else 0


def _read_csv(path: str):
    """A CSV as text columns; unreadable files raise ValueError naming the file."""
    import polars as pl

    try:
        return pl.read_csv(path, infer_schema_length=0)
    except (OSError, pl.exceptions.PolarsError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(first if path in first else f"{path}: {first}") from err


def _detect(args: argparse.Namespace) -> int:
    import json

    from pipeline.stats.counts import control_rows
    from pipeline.stats.tables import detect_counts

    try:
        counts = _read_csv(args.file)
        controls = control_rows(_read_csv(args.controls), args.controls) if args.controls else None
        report = detect_counts(counts, controls, recent=args.recent, baseline=args.baseline, source=args.file)
    except ValueError as err:  # CountsError included: file, row and field named
        print(f"candlebench detect: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
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
    attempt = commands.add_parser(
        "attempt", help="run one attempt outside Dagster; keep its workspace, transcript and patch"
    )
    attempt.add_argument("--subject", required=True, help="a subject of the tracking config")
    attempt.add_argument("--task", required=True, help="the task's instance_id")
    attempt.add_argument("--out", required=True, help="folder for workspace/, transcript.log, patch.diff, "
                         "attempt.json")
    attempt.add_argument("--config", help="tracking config (default: $CANDLEBENCH_CONFIG, else the home's)")
    attempt.add_argument("--date", help="the day recorded (default: today; replay reads that day's file)")
    attempt.add_argument("--trial", type=int, default=0)
    check = commands.add_parser(
        "check", help="preflight: config, suite, sandbox, images, agents and keys, as the daily run "
        "would build them; exit 1 when something would fail")
    check.add_argument("--config", help="tracking config (default: $CANDLEBENCH_CONFIG, else the home's)")
    backfill = commands.add_parser(
        "backfill", help="run a historical window through Dagster (one run per date x subject, "
        "batched aggregates); no daemon needed")
    backfill.add_argument("--from", dest="start", required=True, help="first day (YYYY-MM-DD)")
    backfill.add_argument("--to", dest="end", required=True, help="last day (YYYY-MM-DD)")
    backfill.add_argument("--subject", action="append", help="only these subjects (repeatable)")
    backfill.add_argument("--regrade", action="store_true",
                          help="re-grade stored attempts only; never ask the agents again")
    backfill.add_argument("--redo", action="store_true",
                          help="re-run partitions already graded (e.g. replayed subjects)")
    detect = commands.add_parser(
        "detect", help="changepoints, alarms, verdicts and harness suspects from a CSV of daily counts")
    detect.add_argument("file", help="CSV: subject, date, task, trial, resolved (one row per trial)")
    detect.add_argument("--controls", help="CSV of harness controls: date, task, ok")
    detect.add_argument("--recent", type=int, default=7, help="days in the verdict's window")
    detect.add_argument("--baseline", type=int, default=28, help="days in the verdict's baseline")
    from pipeline.interop import add_grade_arguments, grade_command

    grade = commands.add_parser(
        "grade", help="grade a predictions file in a sandbox, without Dagster; writes SWE-bench and "
        "SWE-Bench-Pro reports")
    add_grade_arguments(grade)
    args = parser.parse_args(argv)
    handlers = {"attempt": _attempt, "demo": _demo, "ui": _ui, "query": _query, "build-image": _build_image,
                "backfill": _backfill, "detect": _detect, "grade": grade_command, "check": _check}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
