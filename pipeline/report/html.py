"""The HTML report, its chart files and its exports, written incrementally.

`index.html` references the charts' PNG files instead of inlining them; a chart is redrawn only
when its Vega-Lite spec (its data included) differs from the one its PNG was drawn from (a
digest per chart in `charts.json`). Outcomes are exported one Parquet file per date
(`exports/outcomes/<date>.parquet`), rewritten only for dates whose lake partitions changed (a
digest of the partitions' files per date in `exports/outcomes.json`). The drill-down from a
changepoint to its flipped tasks reads those files once, with one group-by.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipeline.config import TrackingConfig
from pipeline.report.charts import behaviour_shown, candle_chart, forget_data, overview_chart, render, spec
from pipeline.report.tables import (
    alarm_table,
    cause,
    changepoint_table,
    link,
    missing_note,
    suspect_list,
    verdict_markdown,
    verdict_table,
)
from pipeline.store import Warehouse

STYLE = (
    "body{font-family:sans-serif;margin:2em auto;max-width:1000px;color:#222}"
    "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:13px}th{background:#f4f4f4}details{margin:.4em 0}.neg{color:#b2182b}.pos{color:#1a7837}"
    "img{max-width:100%;height:auto}"
)
LEGEND = (
    "<p>Candle body: pass rate of the day's first trial (open) to its last (close); wick: the "
    "range over the day's trials, which grows with the number of trials and is <b>not</b> a "
    "confidence interval. Blue line: the pooled rate (its 7-day mean past 200 days); blue band: "
    "its 95% interval, clustered by task. Bottom panel: the online CUSUM against its alarm level. "
    "Dashed rules: changepoints (before → after, paired p-value). Triangles: releases. Green "
    "strips, for agents whose transcripts are read: tool calls, test runs and files read before "
    "the first edit per attempt (and thinking characters, where the CLI shows them), the day's "
    "mean; behaviour often moves before the pass rate does.</p>"
)
UI_CHARTS = 12  # candlestick charts embedded in the Dagster UI's metadata; the report has all
CHART_SCALE, THUMB_SCALE = 2, 0.6
RENDER_WORKERS = 4  # processes drawing changed charts, at most (and at most one per CPU)
CHARTS_PER_WORKER = 4  # fewer changed charts than this per worker are drawn in the run's process
CHARTS_MANIFEST = "charts.json"  # chart file -> digest of the spec it was drawn from
OUTCOMES_DIR = "outcomes"  # under exports/: one Parquet file per date
OUTCOMES_MANIFEST = "outcomes.json"  # date -> digest of the lake files its export was built from
EXPORTS = ("candles.csv", "candles.parquet", f"{OUTCOMES_DIR}/")
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


TABLE_SQL = {
    "candles": "SELECT * FROM candles ORDER BY subject, date",
    "weekly": "SELECT * FROM candles_weekly ORDER BY subject, week",
    "changepoints": "SELECT * FROM changepoints ORDER BY subject, date",
    "releases": "SELECT * FROM releases ORDER BY subject, first_seen",
    "verdicts": "SELECT * FROM verdicts ORDER BY subject",
    "monitor": "SELECT * FROM monitor ORDER BY subject, date",
    "suspects": "SELECT * FROM harness_suspects ORDER BY date",
    "alarms": "SELECT * FROM alarms ORDER BY subject, date",
}


@dataclass(frozen=True)
class Report:
    index: Path
    pngs: list[Path]
    markdown: str
    overview_png: Path
    latest_day: str  # the newest day with a candle
    redrawn: int = 0  # charts drawn by this run (the others were unchanged)
    exported_dates: int = 0  # outcome exports rewritten by this run


def _optional(connection, sql: str) -> pl.DataFrame:
    """A table that exists only once something wrote it (decisions, missing subjects)."""
    try:
        return connection.sql(sql).pl()
    except duckdb.CatalogException:
        return pl.DataFrame({"subject": [], "date": []}, schema={"subject": pl.String, "date": pl.String})


class Charts:
    """PNG files under the report folder, redrawn only when their spec changed; what must be
    drawn is drawn together at `flush`, over worker processes when there is much of it."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.manifest = out / CHARTS_MANIFEST
        self.digests: dict[str, str] = json.loads(self.manifest.read_text()) if self.manifest.exists() else {}
        self.queue: list[tuple[str, str, dict[Path, float]]] = []  # name, spec, file -> scale

    @property
    def redrawn(self) -> int:
        return len(self.queue)

    def draw(self, name: str, chart, thumbnail: tuple[str, float] | None = None) -> Path:
        """The chart's PNG file `name` (and a smaller copy, `thumbnail`: its name and scale)."""
        files = {self.out / name: CHART_SCALE}
        if thumbnail:
            files[self.out / thumbnail[0]] = thumbnail[1]
        text = spec(chart)
        digest = hashlib.sha256(f"{sorted(files.values())}|{text}".encode()).hexdigest()
        if self.digests.get(name) != digest or not all(path.exists() for path in files):
            self.queue.append((name, text, files))
            self.digests[name] = digest
        return self.out / name

    def flush(self) -> None:
        """Draw what changed, then record the digests of what is drawn."""
        jobs = [(text, tuple(files.values())) for _, text, files in self.queue]
        workers = min(os.cpu_count() or 1, RENDER_WORKERS, len(jobs) // CHARTS_PER_WORKER)
        if workers > 1:
            context = multiprocessing.get_context("spawn")  # polars and DuckDB threads: never fork
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                drawn = list(pool.map(_render, jobs))
        else:
            drawn = [_render(job) for job in jobs]
        for (_, _, files), pngs in zip(self.queue, drawn, strict=True):
            for path, png in zip(files, pngs, strict=True):
                _replace(path, png)
        forget_data()
        _replace(self.manifest, json.dumps(self.digests, indent=0, sort_keys=True).encode())


def _render(job: tuple[str, tuple[float, ...]]) -> list[bytes]:
    return render(job[0], job[1])


def _replace(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a reader of the report never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_bytes(data)
    os.replace(scratch, path)


def write_report(warehouse: Warehouse, config: TrackingConfig) -> Report:
    """Charts (PNG), exports and index.html under the warehouse's report folder; what did not
    change since the last report is left as it is."""
    out = warehouse.reports
    out.mkdir(parents=True, exist_ok=True)
    _drop_old_files(out)
    tables = _read(warehouse)
    exports = out / "exports"
    _export_candles(tables["candles"], exports)
    exported = export_outcomes(warehouse, exports)
    latest = flipped_latest(exports / OUTCOMES_DIR, tables["changepoints"])
    candles = tables["candles"]
    charts = Charts(out)
    overview = overview_chart(candles, tables["changepoints"])
    overview_png = charts.draw("overview.png", overview, thumbnail=("thumbs/overview.png", 0.8))  # for the UI
    thumbnail = out / "thumbs" / "overview.png"
    labels = {s.name: s.label for s in config.subjects}
    pngs, sections, latest_rate, thumbnails = [overview_png], [], {}, {}
    by_subject = _split(tables)
    for subject in sorted(candles["subject"].unique().to_list()):
        mine = by_subject(subject)
        thumb = f"thumbs/{subject}.png" if len(thumbnails) < UI_CHARTS else None
        section, paths = _subject_section(
            subject, labels.get(subject, ""), mine, tables, latest, out, charts, thumb
        )
        sections.append(section)
        pngs += paths
        if thumb:
            thumbnails[subject] = out / thumb
        latest_rate[subject] = mine("candles")["rate"][-1]
    charts.flush()
    index = out / "index.html"
    links = " · ".join(link(str(exports / n), out, n) for n in EXPORTS)
    _replace(
        index,
        (
            "<!doctype html><html><head><meta charset='utf-8'><title>candlebench report</title>"
            f"<style>{STYLE}</style></head><body><h1>candlebench</h1>{LEGEND}"
            f"{_img(overview_png, out, 'All subjects')}"
            f"<h2>Verdicts</h2>{verdict_table(tables['verdicts'], latest_rate, causes(tables))}"
            f"{missing_note(tables['missing'])}"
            f"{suspect_list(tables['suspects'])}<p>Exports: {links} (one Parquet file of graded "
            f"attempts per date)</p>{''.join(sections)}</body></html>"
        ).encode(),
    )
    encoded = {name: base64.b64encode(path.read_bytes()).decode() for name, path in thumbnails.items()}
    markdown = (
        f"![overview](data:image/png;base64,{base64.b64encode(thumbnail.read_bytes()).decode()})\n\n"
        f"{verdict_markdown(tables['verdicts'], latest_rate)}\n\n"
        + "\n\n".join(
            f"**{name}**\n\n![{name}](data:image/png;base64,{data})" for name, data in encoded.items()
        )
    )
    newest = str(candles["date"].max()) if candles.height else "none"
    return Report(
        index=index,
        pngs=pngs,
        markdown=markdown,
        overview_png=overview_png,
        latest_day=newest,
        redrawn=charts.redrawn,
        exported_dates=exported,
    )


def _img(path: Path, out: Path, alt: str) -> str:
    return f"<img src='{html.escape(os.path.relpath(path, out))}' alt='{html.escape(alt)}'>"


def _drop_old_files(out: Path) -> None:
    """What earlier versions wrote and this one no longer does: SVG twins of the charts and the
    monolithic outcomes export."""
    for old in (*out.glob("*.svg"), out / "exports" / "outcomes.csv", out / "exports" / "outcomes.parquet"):
        old.unlink(missing_ok=True)


def causes(tables: dict[str, pl.DataFrame]) -> dict[str, str]:
    """subject -> the attribution of its latest changepoint inside its verdict's windows."""
    found = {}
    starts = dict(tables["verdicts"].select("subject", "baseline_start").iter_rows())
    for change in tables["changepoints"].sort("date").iter_rows(named=True):
        start = starts.get(change["subject"])
        if start and str(change["date"]) >= str(start) and change.get("attribution"):
            found[change["subject"]] = f"{change['date']}: {cause(change)}"
    return found


def _read(warehouse: Warehouse) -> dict[str, pl.DataFrame]:
    with warehouse.reader() as connection:
        tables = {name: connection.sql(sql).pl() for name, sql in TABLE_SQL.items()}
        tables["decisions"] = _optional(
            connection, "SELECT * EXCLUDE (date), date::VARCHAR AS date FROM decisions"
        )
        tables["behaviour"] = _optional(connection, "SELECT * FROM behaviour ORDER BY subject, date")
        tables["missing"] = _optional(
            connection,
            "SELECT date::VARCHAR AS date, subject FROM missing_subjects "
            "WHERE date = (SELECT max(date) FROM candles) ORDER BY subject",
        )
    return tables


def _split(tables: dict[str, pl.DataFrame]):
    """subject -> (table name -> that subject's rows), each table partitioned once (not one
    filter per subject and table)."""
    parts = {
        name: {key[0]: rows for key, rows in frame.partition_by("subject", as_dict=True).items()}
        for name, frame in tables.items()
        if name in ("candles", "weekly", "changepoints", "releases", "monitor", "alarms", "behaviour")
        and "subject" in frame.columns
    }

    def of(subject: str):
        return lambda name: parts[name].get(subject, tables[name].clear())

    return of


def _export_candles(candles: pl.DataFrame, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, write in (("csv", candles.write_csv), ("parquet", candles.write_parquet)):
        scratch = folder / f".candles.{suffix}.{os.getpid()}.tmp"
        write(scratch)
        os.replace(scratch, folder / f"candles.{suffix}")


# --- outcomes, per date --------------------------------------------------------------------


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
    _replace(manifest, json.dumps(current, indent=0, sort_keys=True).encode())
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


# --- a subject's section -------------------------------------------------------------------


def _subject_section(
    subject: str,
    label: str,
    mine,
    tables: dict[str, pl.DataFrame],
    latest: pl.DataFrame,
    out: Path,
    charts: Charts,
    thumbnail: str | None,
):
    """A subject's section of the report and its chart files (its daily chart's thumbnail for
    the Dagster UI too, when `thumbnail` names one)."""
    title = f"{subject} — {label}".strip(" —")
    changes = mine("changepoints")
    behaviour = mine("behaviour")
    daily = candle_chart(
        mine("candles"),
        changes,
        mine("releases").unique(["first_seen", "new_version"], maintain_order=True),  # a CLI and a model row
        title,
        monitor=mine("monitor"),
        alarms=mine("alarms"),
        behaviour=behaviour,
    )
    weekly = candle_chart(
        mine("weekly"), changes.clear(), mine("releases").clear(), f"{subject}: weekly candles", period="week"
    )
    paths = [
        charts.draw(f"{subject}.png", daily, thumbnail=(thumbnail, THUMB_SCALE) if thumbnail else None),
        charts.draw(f"{subject}-weekly.png", weekly),
    ]
    strips = behaviour_shown(mine("candles").select("date"), behaviour)
    caption = (
        f"<p><small>Under the candles: {' · '.join(html.escape(s) for s in strips)}.</small></p>"
        if strips
        else ""
    )
    section = (
        f"<section><h2>{html.escape(title)}</h2>{_img(paths[0], out, title)}{caption}"
        f"{changepoint_table(changes, latest.filter(pl.col('subject') == subject), out)}"
        f"{alarm_table(mine('alarms'), tables['decisions'])}"
        f"<details><summary>Weekly candles</summary>{_img(paths[1], out, f'{subject}: weekly candles')}"
        "</details></section>"
    )
    return section, paths
