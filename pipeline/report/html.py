"""The HTML report and its chart files, written incrementally.

`index.html` references the charts' PNG files instead of inlining them; a chart is redrawn only
when its Vega-Lite spec (its data included) differs from the one its PNG was drawn from (a
digest per chart in `charts.json`). The exports (`exports`) are incremental too.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from pipeline.config import TrackingConfig
from pipeline.report.charts import behaviour_shown, candle_chart, forget_data, overview_chart, render, spec
from pipeline.report.exports import (
    EXPORTS,
    OUTCOMES_DIR,
    export_candles,
    export_outcomes,
    flipped_latest,
    replace_file,
)
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
from pipeline.report.windows import closed_weeks, since, window_start
from pipeline.store import Warehouse

STYLE = (
    "body{font-family:sans-serif;margin:2em auto;max-width:1000px;color:#222}"
    "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:13px}th{background:#f4f4f4}details{margin:.4em 0}.neg{color:#b2182b}.pos{color:#1a7837}"
    "img{max-width:100%;height:auto}"
)
LEGEND = (
    "<p>Daily charts show the last 180 days; the weekly chart under each holds all history "
    "(closed weeks). Candle body: pass rate of the day's first trial (open) to its last (close); wick: the "
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
                replace_file(path, png)
        forget_data()
        replace_file(self.manifest, json.dumps(self.digests, indent=0, sort_keys=True).encode())


def _render(job: tuple[str, tuple[float, ...]]) -> list[bytes]:
    return render(job[0], job[1])


def write_report(warehouse: Warehouse, config: TrackingConfig) -> Report:
    """Charts (PNG), exports and index.html under the warehouse's report folder; what did not
    change since the last report is left as it is."""
    out = warehouse.reports
    out.mkdir(parents=True, exist_ok=True)
    _drop_old_files(out)
    tables = _read(warehouse)
    exports = out / "exports"
    export_candles(tables["candles"], exports)
    exported = export_outcomes(warehouse, exports)
    latest = flipped_latest(exports / OUTCOMES_DIR, tables["changepoints"])
    candles = tables["candles"]
    charts = Charts(out)
    start = window_start(candles)
    overview = overview_chart(since(candles, start), since(tables["changepoints"], start))
    overview_png = charts.draw("overview.png", overview, thumbnail=("thumbs/overview.png", 0.8))  # for the UI
    thumbnail = out / "thumbs" / "overview.png"
    labels = {s.name: s.label for s in config.subjects}
    pngs, sections, latest_rate, thumbnails = [overview_png], [], {}, {}
    by_subject = _split(tables)
    for subject in sorted(candles["subject"].unique().to_list()):
        mine = by_subject(subject)
        thumb = f"thumbs/{subject}.png" if len(thumbnails) < UI_CHARTS else None
        section, paths = _subject_section(
            subject, labels.get(subject, ""), mine, tables, latest, out, charts, thumb, start
        )
        sections.append(section)
        pngs += paths
        if thumb:
            thumbnails[subject] = out / thumb
        latest_rate[subject] = mine("candles")["rate"][-1]
    charts.flush()
    index = out / "index.html"
    links = " · ".join(link(str(exports / n), out, n) for n in EXPORTS)
    replace_file(
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
    start: str,
):
    """A subject's section of the report and its chart files (its daily chart's thumbnail for
    the Dagster UI too, when `thumbnail` names one); the daily chart from day `start` on."""
    title = f"{subject} — {label}".strip(" —")
    changes = mine("changepoints")
    behaviour = since(mine("behaviour"), start)
    # a release is a CLI row and a model row: one marker
    releases = mine("releases").unique(["first_seen", "new_version"], maintain_order=True)
    daily = candle_chart(
        since(mine("candles"), start),
        since(changes, start),
        since(releases, start, "first_seen"),
        title,
        monitor=since(mine("monitor"), start),
        alarms=since(mine("alarms"), start),
        behaviour=behaviour,
    )
    weekly = candle_chart(
        closed_weeks(mine("weekly"), mine("candles")),
        changes,
        releases.clear(),
        f"{subject}: weekly candles, all history (closed weeks)",
        period="week",
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
