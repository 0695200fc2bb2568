"""The self-contained HTML report, its charts and the CSV/Parquet exports."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.config import TrackingConfig
from pipeline.report.charts import candle_chart, overview_chart, render
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
    "svg{max-width:100%;height:auto}"
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
EXPORTS = ("candles.csv", "candles.parquet", "outcomes.csv", "outcomes.parquet")
OUTCOMES_SQL = """
SELECT e.date, e.subject, e.trial, e.instance_id, e.outcome, e.resolved, e.apply_step, e.cached,
       e.tampered, e.artifact_dir, e.grader_version, e.env_fingerprint, e.sandbox, a.agent_version,
       a.cost_usd, a.input_tokens, a.output_tokens, a.turns, a.duration_s, a.exit_class
FROM evaluations e JOIN attempts a USING (attempt_id)
ORDER BY e.subject, e.date, e.trial, e.instance_id
"""


TABLE_SQL = {
    "candles": "SELECT * FROM candles ORDER BY subject, date",
    "weekly": "SELECT * FROM candles_weekly ORDER BY subject, week",
    "changepoints": "SELECT * FROM changepoints ORDER BY subject, date",
    "releases": "SELECT * FROM releases ORDER BY subject, first_seen",
    "verdicts": "SELECT * FROM verdicts ORDER BY subject",
    "monitor": "SELECT * FROM monitor ORDER BY subject, date",
    "suspects": "SELECT * FROM harness_suspects ORDER BY date",
    "alarms": "SELECT * FROM alarms ORDER BY subject, date",
    "outcomes": OUTCOMES_SQL,
}


@dataclass(frozen=True)
class Report:
    index: Path
    pngs: list[Path]
    markdown: str
    overview_png: Path
    latest_day: str  # the newest day with a candle


def _optional(connection, sql: str) -> pl.DataFrame:
    """A table that exists only once something wrote it (decisions, missing subjects)."""
    import duckdb

    try:
        return connection.sql(sql).pl()
    except duckdb.CatalogException:
        return pl.DataFrame({"subject": [], "date": []}, schema={"subject": pl.String, "date": pl.String})


def write_report(warehouse: Warehouse, config: TrackingConfig) -> Report:
    """Charts (PNG and SVG), exports and index.html under the warehouse's report folder."""
    out = warehouse.reports
    tables = _read(warehouse)
    _export(tables, out / "exports")
    candles = tables["candles"]
    overview = overview_chart(candles, tables["changepoints"])
    png, svg = render(overview)
    overview_png = out / "overview.png"
    overview_png.write_bytes(png)
    overview_png.with_suffix(".svg").write_text(svg)
    thumbnail = base64.b64encode(render(overview, scale=0.8, svg=False)[0]).decode()  # for the Dagster UI
    labels = {s.name: s.label for s in config.subjects}
    pngs, sections, latest_rate, thumbnails = [overview_png], [], {}, {}
    for subject in sorted(candles["subject"].unique().to_list()):
        section, paths, daily = _subject_section(subject, labels.get(subject, ""), tables, out)
        sections.append(section)
        pngs += paths
        if len(thumbnails) < UI_CHARTS:
            thumbnails[subject] = base64.b64encode(render(daily, scale=0.6, svg=False)[0]).decode()
        latest_rate[subject] = candles.filter(pl.col("subject") == subject)["rate"][-1]
    index = out / "index.html"
    exports = " · ".join(link(str(out / "exports" / n), out, n) for n in EXPORTS)
    index.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>candlebench report</title>"
        f"<style>{STYLE}</style></head><body><h1>candlebench</h1>{LEGEND}{svg}"
        f"<h2>Verdicts</h2>{verdict_table(tables['verdicts'], latest_rate, causes(tables))}"
        f"{missing_note(tables['missing'])}"
        f"{suspect_list(tables['suspects'])}<p>Exports: {exports}</p>{''.join(sections)}</body></html>"
    )
    charts = "\n\n".join(
        f"**{name}**\n\n![{name}](data:image/png;base64,{data})" for name, data in thumbnails.items()
    )
    markdown = (
        f"![overview](data:image/png;base64,{thumbnail})\n\n"
        f"{verdict_markdown(tables['verdicts'], latest_rate)}\n\n{charts}"
    )
    latest = str(candles["date"].max()) if candles.height else "none"
    return Report(index=index, pngs=pngs, markdown=markdown, overview_png=overview_png, latest_day=latest)


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


def _export(tables: dict[str, pl.DataFrame], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("candles", "outcomes"):
        tables[name].write_csv(folder / f"{name}.csv")
        tables[name].write_parquet(folder / f"{name}.parquet")


def _subject_section(subject: str, label: str, tables: dict[str, pl.DataFrame], out: Path):
    """A subject's section of the report, its chart files, and its daily chart (for the UI)."""

    def mine(name: str) -> pl.DataFrame:
        return tables[name].filter(pl.col("subject") == subject)

    title = f"{subject} — {label}".strip(" —")
    changes = mine("changepoints")
    daily = candle_chart(
        mine("candles"),
        changes,
        mine("releases").unique(["first_seen", "new_version"], maintain_order=True),  # a CLI and a model row
        title,
        monitor=mine("monitor"),
        alarms=mine("alarms"),
        behaviour=mine("behaviour"),
    )
    daily_png, daily_svg = render(daily)
    weekly_png, weekly_svg = render(
        candle_chart(
            mine("weekly"),
            changes.clear(),
            mine("releases").clear(),
            f"{subject}: weekly candles",
            period="week",
        )
    )
    paths = []
    for suffix, png, svg_text in (("", daily_png, daily_svg), ("-weekly", weekly_png, weekly_svg)):
        path = out / f"{subject}{suffix}.png"
        path.write_bytes(png)
        path.with_suffix(".svg").write_text(svg_text)
        paths.append(path)
    section = (
        f"<section><h2>{html.escape(title)}</h2>{daily_svg}"
        f"{changepoint_table(changes, tables['outcomes'], out)}"
        f"{alarm_table(mine('alarms'), tables['decisions'])}"
        f"<details><summary>Weekly candles</summary>{weekly_svg}</details></section>"
    )
    return section, paths, daily
