"""The self-contained HTML report, its charts and the CSV/Parquet exports."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.charts import candle_chart, overview_chart, render
from pipeline.config import TrackingConfig
from pipeline.warehouse import Warehouse

STYLE = (
    "body{font-family:sans-serif;margin:2em auto;max-width:1000px;color:#222}"
    "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:13px}th{background:#f4f4f4}details{margin:.4em 0}.neg{color:#b2182b}.pos{color:#1a7837}"
    "svg{max-width:100%;height:auto}"
)
LEGEND = (
    "<p>Candle body: pass rate of the day's first trial (open) to its last (close); wick: the "
    "range over the day's trials, which grows with the number of trials and is <b>not</b> a "
    "confidence interval. Blue band: the 95% interval of the pooled rate, clustered by task. "
    "Dashed rules: changepoints (before → after, paired p-value). Triangles: releases.</p>"
)
OUTCOMES_SQL = """
SELECT e.date, e.subject, e.trial, e.instance_id, e.outcome, e.resolved, e.apply_step, e.cached,
       e.artifact_dir, e.grader_version, e.env_fingerprint, e.sandbox, a.agent_version,
       a.cost_usd, a.input_tokens, a.output_tokens, a.turns, a.duration_s, a.exit_class
FROM evaluations e JOIN attempts a USING (attempt_id)
ORDER BY e.subject, e.date, e.trial, e.instance_id
"""


@dataclass(frozen=True)
class Report:
    index: Path
    pngs: list[Path]
    markdown: str
    overview_png: Path


def _pct(value: float, signed: bool = False) -> str:
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _link(target: str, report_dir: Path, label: str) -> str:
    return f"<a href='{html.escape(os.path.relpath(target, report_dir))}'>{label}</a>"


def _drill_down(change: dict, outcomes: pl.DataFrame, out: Path) -> str:
    """The tasks that flipped at a changepoint, each with its latest patch and raw log after it."""
    items = []
    for direction, names in (("passing → failing", change["flipped_down"]),
                             ("failing → passing", change["flipped_up"])):
        for name in names:
            after = outcomes.filter(
                (pl.col("subject") == change["subject"]) & (pl.col("instance_id") == name)
                & (pl.col("date").cast(pl.String) >= change["date"])
            ).sort("date", descending=True).head(1)
            links = ""
            if after.height:
                folder = after["artifact_dir"][0]
                links = (f" — latest: {after['outcome'][0]}, "
                         f"{_link(f'{folder}/patch.diff', out, 'patch')}, "
                         f"{_link(f'{folder}/output.log', out, 'log')}, "
                         f"{_link(f'{folder}/verdict.json', out, 'verdict')}")
            items.append(f"<li>{html.escape(name)} ({direction}){links}</li>")
    if not items:
        return "<p>No task flipped its majority outcome.</p>"
    return f"<ul>{''.join(items)}</ul>"


def write_report(warehouse: Warehouse, config: TrackingConfig) -> Report:
    """Charts (PNG and SVG), exports and index.html under the warehouse's report folder."""
    out = warehouse.reports
    (out / "exports").mkdir(parents=True, exist_ok=True)
    with warehouse.connect(read_only=True) as connection:
        candles = connection.sql("SELECT * FROM candles ORDER BY subject, date").pl()
        weekly = connection.sql("SELECT * FROM candles_weekly ORDER BY subject, week").pl()
        changes = connection.sql("SELECT * FROM changepoints ORDER BY subject, date").pl()
        releases = connection.sql("SELECT * FROM releases ORDER BY subject, first_seen").pl()
        outcomes = connection.sql(OUTCOMES_SQL).pl()
    candles.write_csv(out / "exports" / "candles.csv")
    candles.write_parquet(out / "exports" / "candles.parquet")
    outcomes.write_csv(out / "exports" / "outcomes.csv")
    outcomes.write_parquet(out / "exports" / "outcomes.parquet")

    overview = overview_chart(candles, changes)
    png, svg = render(overview)
    overview_png = out / "overview.png"
    overview_png.write_bytes(png)
    thumbnail = base64.b64encode(render(overview, scale=0.8)[0]).decode()  # for the Dagster UI
    labels = {s.name: s.label for s in config.subjects}
    pngs, sections, md_rows = [overview_png], [], []
    for subject in sorted(candles["subject"].unique().to_list()):
        mine = candles.filter(pl.col("subject") == subject)
        cps = changes.filter(pl.col("subject") == subject)
        title = f"{subject} — {labels.get(subject, '')}".strip(" —")
        daily_png, daily_svg = render(candle_chart(
            mine, cps, releases.filter(pl.col("subject") == subject), title))
        weekly_png, weekly_svg = render(candle_chart(
            weekly.filter(pl.col("subject") == subject), cps.clear(), releases.clear(),
            f"{subject}: weekly candles", period="week"))
        for suffix, data in (("", daily_png), ("-weekly", weekly_png)):
            path = out / f"{subject}{suffix}.png"
            path.write_bytes(data)
            pngs.append(path)
        rows = []
        for change in cps.iter_rows(named=True):
            tone = "neg" if change["difference"] < 0 else "pos"
            rows.append(
                f"<tr><td>{change['date']}</td><td>{_pct(change['before_rate'])}</td>"
                f"<td>{_pct(change['after_rate'])}</td><td class={tone}>"
                f"{_pct(change['difference'], True)} [{_pct(change['ci_low'], True)}, "
                f"{_pct(change['ci_high'], True)}]</td><td>{change['p_value']:.2g}</td>"
                f"<td>{html.escape(change['version_change'] or 'none')}</td></tr>"
                f"<tr><td colspan=6><details><summary>{len(change['flipped_down'])} tasks flipped "
                f"down, {len(change['flipped_up'])} up</summary>{_drill_down(change, outcomes, out)}"
                "</details></td></tr>"
            )
        table = "".join(rows) or "<tr><td colspan=6>No changepoint in this history.</td></tr>"
        sections.append(
            f"<section><h2>{html.escape(title)}</h2>{daily_svg}"
            "<table><tr><th>changepoint</th><th>before</th><th>after</th><th>change [95% CI]</th>"
            f"<th>paired p</th><th>release nearby</th></tr>{table}</table>"
            f"<details><summary>Weekly candles</summary>{weekly_svg}</details></section>"
        )
        latest = mine.row(-1, named=True)
        last_change = cps.row(-1, named=True) if cps.height else None
        md_rows.append(
            f"| {subject} | {latest['date']} | {_pct(latest['rate'])} | "
            + (f"{last_change['date']}: {_pct(last_change['before_rate'])} → "
               f"{_pct(last_change['after_rate'])} (p={last_change['p_value']:.1g}) |"
               if last_change else "none |")
        )
    index = out / "index.html"
    exports = " · ".join(_link(str(out / "exports" / n), out, n) for n in
                         ("candles.csv", "candles.parquet", "outcomes.csv", "outcomes.parquet"))
    index.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>candlebench report</title>"
        f"<style>{STYLE}</style></head><body><h1>candlebench</h1>{LEGEND}{svg}"
        f"<p>Exports: {exports}</p>{''.join(sections)}</body></html>"
    )
    markdown = "\n".join([
        f"![overview](data:image/png;base64,{thumbnail})",
        "", "| subject | latest day | pass rate | latest changepoint |", "|---|---|---|---|", *md_rows,
    ])
    return Report(index=index, pngs=pngs, markdown=markdown, overview_png=overview_png)
