"""Getting numbers out: SQL over the warehouse, and the detector on any CSV of graded trials."""

from __future__ import annotations

import argparse
import json
import sys

from pipeline.cli.errors import UsageError


def _query(args: argparse.Namespace) -> int:
    import duckdb
    import polars as pl

    from pipeline.config import home
    from pipeline.store.warehouse import Warehouse, WarehouseBusy

    warehouse = Warehouse(home())
    if not warehouse.db_path.exists():
        raise UsageError(
            f"no warehouse at {warehouse.db_path}: run `candlebench demo` or `candlebench "
            "backfill` first, or point CANDLEBENCH_HOME at an existing home"
        )
    try:
        frame = warehouse.query(args.sql)
    except WarehouseBusy as err:  # only before the first aggregation ever finished
        print(f"candlebench query: {err}", file=sys.stderr)
        return 1
    except duckdb.Error as err:
        raise UsageError(f"query {args.sql!r}: {str(err).strip().splitlines()[0]}") from None
    if args.format == "csv":  # CSV has no lists or structs: those cells are written as JSON text
        nested = [name for name, kind in frame.schema.items() if kind.is_nested()]
        frame = frame.with_columns(
            pl.Series(name, [json.dumps(v, default=str) for v in frame[name].to_list()]) for name in nested
        )
        sys.stdout.write(frame.write_csv())
    elif args.format == "json":
        sys.stdout.write(frame.write_json() + "\n")
    else:
        with pl.Config(
            tbl_rows=args.limit,
            tbl_cols=-1,
            tbl_width_chars=10_000,
            fmt_str_lengths=10_000,
            fmt_table_cell_list_len=100,
        ):
            print(frame)
    return 0


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
        if counts.height == 0:
            raise ValueError(
                f"{args.file}: no rows (one row per graded trial: subject, date, task, trial, resolved)"
            )
        controls = control_rows(_read_csv(args.controls), args.controls) if args.controls else None
        report = detect_counts(counts, controls, recent=args.recent, baseline=args.baseline, source=args.file)
    except ValueError as err:  # CountsError included: file, row and field named
        print(f"candlebench detect: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    return 0


def _days(value: str) -> int:
    """A number of days for a flag: a whole number from 1 (argparse names the flag on error)."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of days (a whole number from 1)")
    return int(value)


def _compact(args: argparse.Namespace) -> int:
    import datetime as dt

    from pipeline import clock
    from pipeline.config import home
    from pipeline.store.objects import ObjectLake
    from pipeline.store.tables import TABLES
    from pipeline.store.warehouse import Warehouse

    lake = Warehouse(home()).lake
    if not isinstance(lake, ObjectLake):
        print(f"{lake.root}: a local lake is not compacted (set CANDLEBENCH_LAKE=s3://... for one that is)")
        return 0
    closed = clock.today() - dt.timedelta(days=args.closed_days)
    for table in (name for name, t in TABLES.items() if "date" in t.keys):
        months = sorted({f.split("date=")[1][:7] for f in lake.files(table) if "date=" in f})
        for month in (m for m in months if _last_day(m) < closed):
            if covered := lake.compact(table, month):
                print(f"{table} {month}: {covered} partitions in one object")
    print(f"vacuum: {lake.vacuum()} superseded versions deleted")
    return 0


def _last_day(month: str):
    import datetime as dt

    year, number = (int(x) for x in month.split("-"))
    return dt.date(year + number // 12, number % 12 + 1, 1) - dt.timedelta(days=1)


def register(commands: argparse._SubParsersAction) -> None:
    query = commands.add_parser("query", help="run a read-only SQL query on the warehouse")
    query.add_argument("sql")
    query.add_argument("--limit", type=int, default=50, help="rows to print as a table")
    query.add_argument(
        "--format",
        choices=("table", "csv", "json"),
        default="table",
        help="table (full strings), csv or json (every row) on stdout",
    )
    query.set_defaults(handler=_query)
    detect = commands.add_parser(
        "detect", help="changepoints, alarms, verdicts and harness suspects from a CSV of daily counts"
    )
    detect.add_argument("file", help="CSV: subject, date, task, trial, resolved (one row per trial)")
    detect.add_argument("--controls", help="CSV of harness controls: date, task, ok")
    detect.add_argument("--recent", type=_days, default=7, help="days in the verdict's window")
    detect.add_argument("--baseline", type=_days, default=28, help="days in the verdict's baseline")
    detect.set_defaults(handler=_detect)
    compact = commands.add_parser(
        "compact",
        help="on an object-storage lake: merge each closed month's partitions into one object per "
        "table (atomically; a day re-written later still wins), then delete superseded versions",
    )
    compact.add_argument(
        "--closed-days", type=_days, default=7, help="a month is closed this many days after its last day"
    )
    compact.set_defaults(handler=_compact)
