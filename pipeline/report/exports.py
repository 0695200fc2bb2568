"""The report's exports, written incrementally: the candles, and the outcomes one Parquet
file per date (`exports/outcomes/<date>.parquet`), rewritten only for dates whose lake
partitions changed (a digest of the partitions' files per date in `exports/outcomes.json`);
and the drill-down's rows, read from those files with one group-by."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from pipeline.store import Warehouse

OUTCOMES_DIR = "outcomes"  # under exports/: one Parquet file per date
OUTCOMES_MANIFEST = "outcomes.json"  # date -> digest of the lake files its export was built from
EXPORTS = ("candles.csv", "candles.parquet", f"{OUTCOMES_DIR}/")  # linked from the report
OUTCOME_COLUMNS = {  # column -> its table (e: evaluations, a: attempts) and type when absent
    "date": ("e", "DATE"),
    "subject": ("e", "VARCHAR"),
    "trial": ("e", "BIGINT"),
    "instance_id": ("e", "VARCHAR"),
    "outcome": ("e", "VARCHAR"),
    "resolved": ("e", "BOOLEAN"),
    "apply_step": ("e", "VARCHAR"),
    "cached": ("e", "BOOLEAN"),
    "tampered": ("e", "BOOLEAN"),
    "artifact_dir": ("e", "VARCHAR"),
    "grader_version": ("e", "VARCHAR"),
    "env_fingerprint": ("e", "VARCHAR"),
    "sandbox": ("e", "VARCHAR"),
    "agent_version": ("a", "VARCHAR"),
    "cost_usd": ("a", "DOUBLE"),
    "input_tokens": ("a", "BIGINT"),
    "output_tokens": ("a", "BIGINT"),
    "turns": ("a", "BIGINT"),
    "duration_s": ("a", "DOUBLE"),
    "exit_class": ("a", "VARCHAR"),
}
EXPORT_BATCH = 64  # dates exported per query: bounded memory on a first report of years


def replace_file(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a reader of the report never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_bytes(data)
    os.replace(scratch, path)


def export_candles(candles: pl.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, write in (("csv", candles.write_csv), ("parquet", candles.write_parquet)):
        scratch = folder / f".candles.{suffix}.{os.getpid()}.tmp"
        write(scratch)
        os.replace(scratch, folder / f"candles.{suffix}")


def lake_files_by_date(root: Path, table: str) -> dict[str, list[tuple[str, os.stat_result]]]:
    """date -> the partition files (path, stat) of a (subject, date)-partitioned lake table."""
    found: dict[str, list[tuple[str, os.stat_result]]] = {}
    top = root / table
    if not top.is_dir():
        return found
    for subject in os.scandir(top):
        if not (subject.is_dir() and subject.name.startswith("subject=")):
            continue
        for day in os.scandir(subject.path):
            if day.is_dir() and day.name.startswith("date="):
                part = Path(day.path) / "part.parquet"
                try:
                    stat = part.stat()
                except FileNotFoundError:
                    continue
                found.setdefault(day.name.removeprefix("date="), []).append((str(part), stat))
    return found


def _digest(files: list) -> str:
    text = "|".join(f"{path}:{stat.st_size}:{stat.st_mtime_ns}" for path, stat in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def export_outcomes(warehouse: Warehouse, exports: Path) -> int:
    """Write `exports/outcomes/<date>.parquet` (every graded attempt of that date with its
    attempt's version, cost and tokens) for each date whose evaluations or attempts changed
    since the last export, and remove the export of a date no longer in the lake. Returns how
    many dates were written."""
    if not isinstance(warehouse.lake.root, Path):  # an object-storage lake: not exported yet
        return 0
    folder = exports / OUTCOMES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    manifest = exports / OUTCOMES_MANIFEST
    known = json.loads(manifest.read_text()) if manifest.exists() else {}
    evaluations = lake_files_by_date(warehouse.lake.root, "evaluations")
    attempts = lake_files_by_date(warehouse.lake.root, "attempts")
    current = {day: _digest(files + attempts.get(day, [])) for day, files in evaluations.items()}
    stale = sorted(
        d for d, digest in current.items() if known.get(d) != digest or not (folder / f"{d}.parquet").exists()
    )
    for gone in set(known) - set(current):
        (folder / f"{gone}.parquet").unlink(missing_ok=True)
    with duckdb.connect() as connection:
        for batch in _batches(stale, EXPORT_BATCH):
            frame = _outcomes(
                connection,
                [p for d in batch for p, _ in evaluations[d]],
                [p for d in batch for p, _ in attempts.get(d, [])],
            )
            for (day,), rows in frame.partition_by("date", as_dict=True, maintain_order=True).items():
                _write_parquet(rows, folder / f"{day}.parquet")
            for day in batch:  # graded nothing that joins an attempt: an empty export, still current
                if not (folder / f"{day}.parquet").exists():
                    _write_parquet(frame.clear(), folder / f"{day}.parquet")
    replace_file(manifest, json.dumps(current, indent=0, sort_keys=True).encode())
    return len(stale)


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _write_parquet(frame: pl.DataFrame, path: Path) -> None:
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.write_parquet(scratch)
    os.replace(scratch, path)


def _outcomes(connection, evaluation_files: list[str], attempt_files: list[str]) -> pl.DataFrame:
    """The outcomes of these partition files: a column older partitions lack is null."""

    def source(files: list[str]) -> str:
        quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        return f"read_parquet([{quoted}], union_by_name = true, hive_partitioning = false)"

    evaluations = source(evaluation_files)
    have = {"e": set(connection.sql(f"SELECT * FROM {evaluations} LIMIT 0").columns), "a": set()}
    joined = f"{evaluations} e"
    if attempt_files:
        attempts = source(attempt_files)
        have["a"] = set(connection.sql(f"SELECT * FROM {attempts} LIMIT 0").columns)
        joined += f" LEFT JOIN {attempts} a USING (attempt_id)" if "attempt_id" in have["a"] else ""
    columns = ", ".join(
        f"{side}.{name}" if name in have[side] else f"NULL::{kind} AS {name}"
        for name, (side, kind) in OUTCOME_COLUMNS.items()
    )
    return connection.sql(
        f"SELECT {columns} FROM {joined} ORDER BY e.subject, e.date, e.trial, e.instance_id"
    ).pl()


def flipped_latest(folder: Path, changes: pl.DataFrame) -> pl.DataFrame:
    """For each changepoint and each task that flipped at it, that task's latest graded attempt
    in the segment the changepoint opened (up to the next changepoint): one group-by over the
    per-date outcome exports."""
    empty = pl.DataFrame(
        schema={
            "subject": pl.String,
            "change": pl.String,
            "instance_id": pl.String,
            "date": pl.Date,
            "outcome": pl.String,
            "artifact_dir": pl.String,
            "tampered": pl.Boolean,
        }
    )
    if not changes.height or not any(folder.glob("*.parquet")):
        return empty
    flips = (
        changes.select(
            "subject",
            pl.col("date").cast(pl.String).alias("change"),
            pl.col("date").cast(pl.String).shift(-1).over("subject", order_by="date").alias("until"),
            pl.concat_list("flipped_down", "flipped_up").alias("instance_id"),
        )
        .explode("instance_id")
        .drop_nulls("instance_id")
        .unique()
    )
    if not flips.height:
        return empty
    first = flips["change"].min()
    files = sorted(str(p) for p in folder.glob("*.parquet") if p.stem >= first)
    if not files:
        return empty
    quoted = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    with duckdb.connect() as connection:
        connection.register("flips", flips)
        return connection.sql(
            f"""
            SELECT f.subject, f.change, f.instance_id,
                   max(o.date) AS date,
                   arg_max(o.outcome, (o.date, o.trial)) AS outcome,
                   arg_max(o.artifact_dir, (o.date, o.trial)) AS artifact_dir,
                   arg_max(o.tampered, (o.date, o.trial)) AS tampered
            FROM read_parquet([{quoted}], union_by_name = true) o
            JOIN flips f ON o.subject = f.subject AND o.instance_id = f.instance_id
             AND o.date::VARCHAR >= f.change AND (f.until IS NULL OR o.date::VARCHAR < f.until)
            GROUP BY ALL
            """
        ).pl()
