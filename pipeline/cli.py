"""The `candlebench` command line."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import threading
import time


class UsageError(Exception):
    """Bad input on the command line: printed as one line, exit status 2."""


def _demo(args: argparse.Namespace) -> int:
    from pipeline.config import home
    from pipeline.history import build_demo

    started = time.monotonic()
    today = dt.date.fromisoformat(args.end) if args.end else None
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
    from pipeline.history import prepare_dagster_home

    dagster_home = prepare_dagster_home()
    print(f"Dagster UI on http://localhost:{args.port} (DAGSTER_HOME={dagster_home})")
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"),
               "-h", args.host, "-p", str(args.port)]
    # Started from DAGSTER_HOME, where our dagster.yaml is linked, so Dagster sees one config.
    # `dagster dev` warns that `dg dev` supersedes it; that needs the dg CLI, which we do not ship.
    quiet = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                   "ignore:Function `dev_command` is superseded"]))
    return subprocess.call(command, cwd=dagster_home, env={**os.environ, "PYTHONWARNINGS": quiet})


def _day(value: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not a date (YYYY-MM-DD)") from None


def _backfill(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipeline.history import build_history, prepare_dagster_home, queue_history

    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    if end < start:
        raise UsageError(f"--to {end} is before --from {start}")
    days = (end - start).days + 1
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        if args.queue:
            backfill_id, plan = queue_history(instance, end, days, args.subject, args.regrade, args.redo)
            print(f"queued backfill {backfill_id}: {plan.days} days, {len(plan.partitions)} partitions to "
                  f"run ({plan.kept} kept); the daemon runs it (`candlebench ui`), progress under "
                  "Overview -> Backfills")
            return 0
        timings = build_history(end, days, instance, subjects=args.subject, regrade_only=args.regrade,
                                redo=args.redo)
    print(f"{timings.runs} Dagster runs in {sum(timings.stages.values()):.0f}s"
          + (f", {len(timings.failures)} failed" if timings.failures else ""))
    return 1 if timings.failures else 0


def _query(args: argparse.Namespace) -> int:
    import polars as pl

    from pipeline.config import home
    from pipeline.warehouse import Warehouse

    warehouse = Warehouse(home())
    if not warehouse.db_path.exists():
        raise UsageError(f"no warehouse at {warehouse.db_path}: run `candlebench demo` or `candlebench "
                         "backfill` first, or point CANDLEBENCH_HOME at an existing home")
    frame = warehouse.query(args.sql)
    if args.format == "csv":
        sys.stdout.write(frame.write_csv())
    elif args.format == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        with pl.Config(tbl_rows=args.limit, tbl_cols=-1, tbl_width_chars=10_000, fmt_str_lengths=10_000,
                       fmt_table_cell_list_len=100):
            print(frame)
    return 0


def _subjects(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipeline.config import load_config
    from pipeline.history import prepare_dagster_home

    configured = [s.name for s in load_config().subjects]
    prepare_dagster_home()
    with dg.DagsterInstance.get() as instance:
        partitions = list(instance.get_dynamic_partitions("subject"))
        if args.action == "list":
            for name in sorted(set(configured) | set(partitions)):
                state = ("tracked" if name in configured else "no longer configured: retire it") \
                    if name in partitions else "configured, partition added at the next sensor tick"
                print(f"{name:<32} {state}")
            return 0
        for name in args.names:
            if name in configured:
                raise UsageError(f"subject {name!r} is still in the tracking config: remove it there "
                                 "first, or the subjects sensor adds its partition back")
            if name not in partitions:
                known = ", ".join(partitions) or "none"
                raise UsageError(f"subject {name!r} has no partition (known: {known})")
        for name in args.names:
            instance.delete_dynamic_partition("subject", name)
            print(f"retired {name}: its partition is gone from Dagster; its rows stay in the lake")
    return 0


def _build_image(args: argparse.Namespace) -> int:
    from pipeline.images import build_demo_image

    image = build_demo_image(tag=args.tag, mirror=args.mirror, force=args.force)
    print(image)
    return 0


def _build_pro_image(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.pro_images import ProImageError, build_pro_image, load_fixtures

    try:
        for fixture in load_fixtures(Path(args.fixture), args.instance):
            built = build_pro_image(fixture, mirror=args.mirror, force=args.force)
            print(f"{built.tag} {built.image_id} ({'reused' if built.reused else 'built'} in "
                  f"{built.seconds:.0f}s, {built.size_bytes / 1e6:.0f} MB)")
    except (ProImageError, OSError) as err:
        print(f"candlebench build-pro-image: {err}", file=sys.stderr)
        return 2
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


def _agents(args: argparse.Namespace) -> int:
    from pipeline import cli_cache

    try:
        if args.agents_command == "install":
            started = time.monotonic()
            entry = cli_cache.install(args.cli, args.version)
            print(f"{entry.cli} {entry.version} ({entry.platform}): {entry.binary}")
            print(f"  {entry.version_output}; sha256 {entry.sha256}; from {entry.package} "
                  f"({time.monotonic() - started:.1f}s)")
            return 0
        entries = cli_cache.cached()
    except cli_cache.CliCacheError as err:
        print(f"candlebench agents {args.agents_command}: {err}", file=sys.stderr)
        return 2
    if not entries:
        print(f"no CLIs cached under {cli_cache.cli_cache_root()}")
    for entry in entries:
        print(f"{entry.cli:<12} {entry.version:<10} {entry.platform:<15} {entry.sha256[:12]}  "
              f"{entry.version_output}  {entry.binary}")
    return 0


def _scripted_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline import scripted_model as sm
    from pipeline.config import ConfigError, home, load_config
    from pipeline.tracker import Tracker

    try:
        if args.script:
            scripts = [sm.load_script(Path(path)) for path in args.script]
        else:
            tasks = Tracker(home(), load_config(Path(args.config) if args.config else None)).tasks
            scripts = sm.suite_scripts(tasks.values())
        server = sm.ScriptedModel(scripts, port=args.port)
    except (ConfigError, sm.ScriptError, OSError) as err:
        print(f"candlebench scripted-model: {err}", file=sys.stderr)
        return 2
    with server:
        print(f"scripted model on {server.url}, {len(scripts)} script(s); any API key is accepted")
        print(f"  claude-code: settings.base_url: {server.url}")
        print(f"  codex: settings.config: model_provider: scripted, model_providers.scripted.base_url: "
              f"{server.url}/v1, model_providers.scripted.wire_api: responses, "
              "model_providers.scripted.env_key: OPENAI_API_KEY (model gpt-5.5 has apply_patch)")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print(f"stopped after {len(server.exchanges)} request(s)")
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
    query.add_argument("--limit", type=int, default=50, help="rows to print as a table")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table",
                       help="table (full strings), csv or json (every row) on stdout")
    build = commands.add_parser(
        "build-image", help="build the Docker sandbox image locally (debootstrap, no registry)"
    )
    build.add_argument("--tag", default=DEMO_IMAGE, help="image tag (default: %(default)s)")
    build.add_argument("--mirror", help="Debian mirror (default: the one apt uses here)")
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    pro = commands.add_parser(
        "build-pro-image", help="build a SWE-Bench-Pro task's image offline from its Dockerfiles and git "
        "bundle, tagged jefzda/sweap-images:<dockerhub_tag>; reused while its inputs are unchanged")
    pro.add_argument("fixture", help="folder with rows.jsonl, dockerfiles/, <repo>.bundle and <repo>.shallow")
    pro.add_argument("--instance", help="only this instance_id (default: every row)")
    pro.add_argument("--mirror", help="Debian mirror (default: the one apt uses here)")
    pro.add_argument("--force", action="store_true", help="rebuild every step even if the image exists")
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
    backfill.add_argument("--queue", action="store_true",
                          help="queue the same work as one asset backfill for the daemon (`candlebench "
                          "ui`) instead of running it here; shown under Overview -> Backfills")
    subjects = commands.add_parser("subjects", help="the subjects Dagster knows: list, or retire one "
                                   "removed from the tracking config")
    subjects.add_argument("action", choices=("list", "retire"))
    subjects.add_argument("names", nargs="*", help="subjects to retire")
    detect = commands.add_parser(
        "detect", help="changepoints, alarms, verdicts and harness suspects from a CSV of daily counts")
    detect.add_argument("file", help="CSV: subject, date, task, trial, resolved (one row per trial)")
    detect.add_argument("--controls", help="CSV of harness controls: date, task, ok")
    detect.add_argument("--recent", type=int, default=7, help="days in the verdict's window")
    detect.add_argument("--baseline", type=int, default=28, help="days in the verdict's baseline")
    agents = commands.add_parser("agents", help="the pinned agent CLIs (Claude Code, Codex) cached from npm")
    agent_commands = agents.add_subparsers(dest="agents_command", required=True)
    install = agent_commands.add_parser(
        "install", help="fetch a CLI's platform package from npm, verify it, cache it (idempotent)")
    install.add_argument("cli", help="claude-code or codex")
    install.add_argument("--version", default="latest",
                         help="a published version, or latest (resolved once per day; default)")
    agent_commands.add_parser("list", help="what is cached: CLI, version, platform, sha256, binary")
    scripted = commands.add_parser(
        "scripted-model", help="serve the Anthropic Messages and OpenAI Responses APIs from scripts, "
        "so the real CLIs run with no key (default: a gold-patch play of every task of the suite)")
    scripted.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    scripted.add_argument("--script", action="append", help="a script file (YAML/JSON), repeatable")
    scripted.add_argument("--config", help="tracking config whose suite is played (default: as `check`)")
    from pipeline.interop import add_grade_arguments, grade_command

    grade = commands.add_parser(
        "grade", help="grade a predictions file in a sandbox, without Dagster; writes SWE-bench and "
        "SWE-Bench-Pro reports")
    add_grade_arguments(grade)
    args = parser.parse_args(argv)
    if args.command == "subjects" and args.action == "retire" and not args.names:
        parser.error("subjects retire: name at least one subject")
    handlers = {"attempt": _attempt, "demo": _demo, "ui": _ui, "query": _query, "build-image": _build_image,
                "build-pro-image": _build_pro_image,
                "backfill": _backfill, "detect": _detect, "grade": grade_command, "check": _check,
                "subjects": _subjects, "agents": _agents, "scripted-model": _scripted_model}
    from pipeline.config import ConfigError
    from pipeline.history import HistoryError

    try:
        return handlers[args.command](args)
    except (UsageError, ConfigError, HistoryError) as err:
        print(f"candlebench {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
