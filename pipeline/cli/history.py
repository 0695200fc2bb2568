"""The Dagster-side commands: the demo, the UI, backfills and the subjects Dagster knows."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from pipeline.cli.errors import UsageError, parse_day


def _demo(args: argparse.Namespace) -> int:
    from pipeline.config import home
    from pipeline.orchestration.history import build_demo

    started = time.monotonic()
    today = parse_day(args.end, "--end") if args.end else None
    timings = build_demo(today)
    print(f"history built in {time.monotonic() - started:.0f}s ({timings.runs} Dagster runs)")
    print(f"report: {home() / 'report' / 'index.html'}")
    print(f"warehouse: {home() / 'warehouse.duckdb'}")
    if timings.failures:
        return 1
    if args.no_ui:
        return 0
    return _ui(args)


def _ui(args: argparse.Namespace) -> int:
    from pipeline.config import PROJECT_ROOT
    from pipeline.orchestration.history import prepare_dagster_home

    dagster_home = prepare_dagster_home()
    print(f"Dagster UI on http://localhost:{args.port} (DAGSTER_HOME={dagster_home})")
    command = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "-h",
        args.host,
        "-p",
        str(args.port),
    ]
    # Started from DAGSTER_HOME, where our dagster.yaml is linked, so Dagster sees one config.
    # `dagster dev` warns that `dg dev` supersedes it; that needs the dg CLI, which we do not ship.
    quiet = ",".join(
        filter(None, [os.environ.get("PYTHONWARNINGS"), "ignore:Function `dev_command` is superseded"])
    )
    return subprocess.call(command, cwd=dagster_home, env={**os.environ, "PYTHONWARNINGS": quiet})


def _backfill(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipeline.orchestration.history import build_history, prepare_dagster_home, queue_history

    start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    if end < start:
        raise UsageError(f"--to {end} is before --from {start}")
    days = (end - start).days + 1
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        if args.queue:
            backfill_id, plan = queue_history(instance, end, days, args.subject, args.regrade, args.redo)
            if backfill_id is None:
                print(
                    f"nothing to queue: all {plan.kept} partitions of {plan.start}..{plan.end} are "
                    "graded (--redo runs them again, --regrade re-grades them)"
                )
                return 0
            print(
                f"queued backfill {backfill_id}: {plan.days} days, {len(plan.partitions)} partitions to "
                f"run ({plan.kept} kept); the daemon runs it (`candlebench ui`), progress under "
                "Overview -> Backfills"
            )
            return 0
        timings = build_history(
            end, days, instance, subjects=args.subject, regrade_only=args.regrade, redo=args.redo
        )
    print(
        f"{timings.runs} Dagster runs in {sum(timings.stages.values()):.0f}s"
        + (f", {len(timings.failures)} failed" if timings.failures else "")
    )
    return 1 if timings.failures else 0


def _subjects(args: argparse.Namespace) -> int:
    import dagster as dg

    if args.action == "retire" and not args.names:
        raise UsageError("subjects retire: name at least one subject")

    from pipeline.config import load_config
    from pipeline.config.lanes import lanes_of
    from pipeline.orchestration.history import prepare_dagster_home

    subjects = load_config().subjects
    configured, lanes = [s.name for s in subjects], lanes_of(subjects)
    running = {s.name: _concurrency(s) for s in subjects}
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        partitions = list(instance.get_dynamic_partitions("subject"))
        if args.action == "list":
            for name in sorted(set(configured) | set(partitions)):
                state = (
                    ("tracked" if name in configured else "no longer configured: retire it")
                    if name in partitions
                    else "configured, partition added at the next sensor tick"
                )
                lane = _lane(lanes[name]) if name in lanes else ""
                print(f"{name:<32} {state}{lane}{running.get(name, '')}")
            return 0
        for name in args.names:
            if name in configured:
                raise UsageError(
                    f"subject {name!r} is still in the tracking config: remove it there "
                    "first, or the subjects sensor adds its partition back"
                )
            if name not in partitions:
                known = ", ".join(partitions) or "none"
                raise UsageError(f"subject {name!r} has no partition (known: {known})")
        for name in args.names:
            instance.delete_dynamic_partition("subject", name)
            print(f"retired {name}: its partition is gone from Dagster; its rows stay in the lake")
    return 0


def _concurrency(subject) -> str:
    """How many attempts run at once and why: `; 7 at once (sized: 5 min per attempt, ...)`."""
    if subject.concurrency_from != "budget":
        why = {"config": "set in the config", "instant": "an instant adapter"}[subject.concurrency_from]
        return f"; {subject.concurrency} at once ({why})"
    from pipeline.config.subjects import ATTEMPT_BUDGET_HOURS

    return (
        f"; {subject.concurrency} at once (sized: {subject.attempt_minutes:g} min per attempt, "
        f"the day's attempts within {ATTEMPT_BUDGET_HOURS:g} h)"
    )


def _lane(lane) -> str:
    """How attribution sees a subject: `; lane anthropic/sonnet on claude-code, frozen at 2.1.300`."""
    pinned = f"frozen at {lane.pin}" if lane.lane == "frozen" else lane.lane
    return f"; lane {lane.vendor or '?'}/{lane.model or '?'} on {lane.cli or '?'}, {pinned}"


def register(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="build the demo history through Dagster, then start the UI")
    demo.add_argument("--end", help="last day of the history (default: today)")
    demo.add_argument("--no-ui", action="store_true", help="stop after building the history")
    demo.set_defaults(handler=_demo)
    ui = commands.add_parser("ui", help="start the Dagster UI and daemon on this home")
    ui.set_defaults(handler=_ui)
    for command in (demo, ui):
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=3000)
    backfill = commands.add_parser(
        "backfill",
        help="run a historical window through Dagster (one run per date x subject, "
        "batched aggregates); no daemon needed",
    )
    backfill.add_argument("--from", dest="start", required=True, help="first day (YYYY-MM-DD)")
    backfill.add_argument("--to", dest="end", required=True, help="last day (YYYY-MM-DD)")
    backfill.add_argument("--subject", action="append", help="only these subjects (repeatable)")
    backfill.add_argument(
        "--regrade", action="store_true", help="re-grade stored attempts only; never ask the agents again"
    )
    backfill.add_argument(
        "--redo", action="store_true", help="re-run partitions already graded (e.g. replayed subjects)"
    )
    backfill.add_argument(
        "--queue",
        action="store_true",
        help="queue the same work as one asset backfill for the daemon (`candlebench "
        "ui`) instead of running it here; shown under Overview -> Backfills",
    )
    backfill.set_defaults(handler=_backfill)
    subjects = commands.add_parser(
        "subjects", help="the subjects Dagster knows: list, or retire one removed from the tracking config"
    )
    subjects.add_argument("action", choices=("list", "retire"))
    subjects.add_argument("names", nargs="*", help="subjects to retire")
    subjects.set_defaults(handler=_subjects)
