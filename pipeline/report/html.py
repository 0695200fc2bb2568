"""The self-contained HTML report, its charts and the CSV/Parquet exports."""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.config import TrackingConfig
from pipeline.report.charts import candle_chart, overview_chart, render
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
    "Dashed rules: changepoints (before → after, paired p-value). Triangles: releases.</p>"
)
UI_CHARTS = 12  # candlestick charts embedded in the Dagster UI's metadata; the report has all
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
    latest_day: str  # the newest day with a candle


def changepoint_markdown(changes: pl.DataFrame) -> str:
    if not changes.height:
        return "No changepoints."
    lines = [
        f"| {r['subject']} | {r['date']} | {_pct(r['before_rate'])} | {_pct(r['after_rate'])} | "
        f"{_pct(r['difference'], True)} [{_pct(r['ci_low'], True)}, {_pct(r['ci_high'], True)}] | "
        f"{r['p_value']:.2g} | {r['version_change'] or 'none'} |"
        for r in changes.iter_rows(named=True)
    ]
    return "\n".join(["| subject | date | before | after | change [95% CI] | paired p | release nearby |",
                      "|---|---|---|---|---|---|---|", *lines])


def verdict_markdown(verdicts: pl.DataFrame, latest: dict[str, float] | None = None) -> str:
    latest = latest or {}
    lines = [
        f"| {r['subject']} | {_pct(latest[r['subject']]) if r['subject'] in latest else '-'} | "
        f"**{r['verdict']}** | {_pct(r['difference'], True)} [{_pct(r['ci_low'], True)}, "
        f"{_pct(r['ci_high'], True)}] | {r['q_value']:.2g} | ±{_pct(r['mde'])} |"
        for r in verdicts.iter_rows(named=True)
    ]
    return "\n".join(["| subject | latest rate | verdict | last 7 days vs 28 before [95% CI] | q (BH) | "
                      "min. detectable |", "|---|---|---|---|---|---|", *lines])


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _link(target: str, report_dir: Path, label: str) -> str:
    return f"<a href='{html.escape(os.path.relpath(target, report_dir))}'>{label}</a>"


def _drill_down(change: dict, until: str | None, outcomes: pl.DataFrame, out: Path) -> str:
    """The tasks that flipped at a changepoint, each with its latest patch and raw log in the
    segment it opened (up to the next changepoint, so a later shift's outcomes never show here)."""
    items = []
    segment = outcomes.filter(
        (pl.col("subject") == change["subject"]) & (pl.col("date").cast(pl.String) >= change["date"])
        & ((pl.col("date").cast(pl.String) < until) if until else pl.lit(True)))
    for direction, names in (("passing → failing", change["flipped_down"]),
                             ("failing → passing", change["flipped_up"])):
        for name in names:
            after = segment.filter(pl.col("instance_id") == name).sort("date", descending=True).head(1)
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


def _verdict_table(verdicts: pl.DataFrame, latest: dict[str, float]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(r['subject'])}</td><td>{_pct(latest.get(r['subject']))}</td>"
        f"<td class={'neg' if r['verdict'] == 'degraded' else 'pos' if r['verdict'] == 'improved' else ''}>"
        f"<b>{r['verdict']}</b></td><td>{_pct(r['difference'], True)} [{_pct(r['ci_low'], True)}, "
        f"{_pct(r['ci_high'], True)}]</td><td>{r['p_value']:.2g}</td><td>{r['q_value']:.2g}</td>"
        f"<td>±{_pct(r['mde'])}</td><td>{r['window_start']}..{r['window_end']} vs "
        f"{r['baseline_start']}..{r['baseline_end']}</td></tr>"
        for r in verdicts.iter_rows(named=True)
    )
    return ("<table><tr><th>subject</th><th>latest rate</th><th>verdict</th><th>change [95% CI]</th>"
            "<th>paired p</th><th>q (BH)</th><th>min. detectable effect</th><th>window vs baseline</th>"
            f"</tr>{rows}</table><p>A verdict compares the last 7 days with the 28 before, task by task. "
            "<i>stable</i> means the interval lies within the minimum detectable effect; "
            "<i>inconclusive</i> means neither a shift nor stability is shown.</p>")


def _optional(connection, sql: str) -> pl.DataFrame:
    """A table that exists only once something wrote it (decisions, missing subjects)."""
    import duckdb

    try:
        return connection.sql(sql).pl()
    except duckdb.CatalogException:
        return pl.DataFrame({"subject": [], "date": []}, schema={"subject": pl.String, "date": pl.String})


def _alarm_table(alarms: pl.DataFrame, decisions: pl.DataFrame) -> str:
    """Every online alarm of a subject, with the confirmation's decision where one was made."""
    if not alarms.height:
        return "<p>No online alarm in this history.</p>"
    decided = {(r["subject"], r["date"]): r["decision"] for r in decisions.iter_rows(named=True)} \
        if "decision" in decisions.columns else {}
    rows = "".join(
        f"<tr><td>{r['date']}</td><td>{'drop' if r['direction'] == 'down' else 'rise'}</td>"
        f"<td>{html.escape(r['rule'])}</td><td>{r['z']:+.1f}</td><td>{_pct(r['difference'], True)}</td>"
        f"<td>{decided.get((r['subject'], str(r['date'])), 'not confirmed yet')}</td></tr>"
        for r in alarms.iter_rows(named=True))
    return ("<table><tr><th>alarm</th><th>direction</th><th>rule</th><th>z</th><th>day vs baseline</th>"
            f"<th>confirmation</th></tr>{rows}</table>")


def _missing_note(missing: pl.DataFrame) -> str:
    if not missing.height:
        return ""
    names = ", ".join(html.escape(s) for s in missing["subject"].to_list())
    return (f"<p class=neg><b>Missing on {missing['date'][0]}</b>: {names} (no graded attempt: a failed "
            "or skipped run; see the Dagster UI). The others' candles are complete.</p>")


def _suspect_list(suspects: pl.DataFrame) -> str:
    if not suspects.height:
        return "<p>No harness-suspect day: controls held and no day moved most subjects at once.</p>"
    items = "".join(f"<li>{r['date']}: down {', '.join(r['subjects_down']) or '-'}; up "
                    f"{', '.join(r['subjects_up']) or '-'}; control failures "
                    f"{_pct(r['control_failure_share'])}</li>" for r in suspects.iter_rows(named=True))
    return f"<p><b>Harness-suspect days</b> (left out of every subject's analysis):</p><ul>{items}</ul>"


def write_report(warehouse: Warehouse, config: TrackingConfig) -> Report:
    """Charts (PNG and SVG), exports and index.html under the warehouse's report folder."""
    out = warehouse.reports
    (out / "exports").mkdir(parents=True, exist_ok=True)
    with warehouse.connect(read_only=True) as connection:
        candles = connection.sql("SELECT * FROM candles ORDER BY subject, date").pl()
        weekly = connection.sql("SELECT * FROM candles_weekly ORDER BY subject, week").pl()
        changes = connection.sql("SELECT * FROM changepoints ORDER BY subject, date").pl()
        releases = connection.sql("SELECT * FROM releases ORDER BY subject, first_seen").pl()
        verdicts = connection.sql("SELECT * FROM verdicts ORDER BY subject").pl()
        monitor = connection.sql("SELECT * FROM monitor ORDER BY subject, date").pl()
        suspects = connection.sql("SELECT * FROM harness_suspects ORDER BY date").pl()
        alarms = connection.sql("SELECT * FROM alarms ORDER BY subject, date").pl()
        decisions = _optional(connection, "SELECT subject, date::VARCHAR AS date, decision FROM decisions")
        missing = _optional(connection, "SELECT date::VARCHAR AS date, subject FROM missing_subjects "
                            "WHERE date = (SELECT max(date) FROM candles) ORDER BY subject")
        outcomes = connection.sql(OUTCOMES_SQL).pl()
    candles.write_csv(out / "exports" / "candles.csv")
    candles.write_parquet(out / "exports" / "candles.parquet")
    outcomes.write_csv(out / "exports" / "outcomes.csv")
    outcomes.write_parquet(out / "exports" / "outcomes.parquet")

    overview = overview_chart(candles, changes)
    png, svg = render(overview)
    overview_png = out / "overview.png"
    overview_png.write_bytes(png)
    overview_png.with_suffix(".svg").write_text(svg)
    thumbnail = base64.b64encode(render(overview, scale=0.8, svg=False)[0]).decode()  # for the Dagster UI
    labels = {s.name: s.label for s in config.subjects}
    pngs, sections, latest_rate, thumbnails = [overview_png], [], {}, {}
    for subject in sorted(candles["subject"].unique().to_list()):
        mine = candles.filter(pl.col("subject") == subject)
        cps = changes.filter(pl.col("subject") == subject)
        title = f"{subject} — {labels.get(subject, '')}".strip(" —")
        daily = candle_chart(mine, cps, releases.filter(pl.col("subject") == subject), title,
                             monitor=monitor.filter(pl.col("subject") == subject),
                             alarms=alarms.filter(pl.col("subject") == subject))
        daily_png, daily_svg = render(daily)
        weekly_png, weekly_svg = render(candle_chart(
            weekly.filter(pl.col("subject") == subject), cps.clear(), releases.clear(),
            f"{subject}: weekly candles", period="week"))
        for suffix, png, svg_text in (("", daily_png, daily_svg), ("-weekly", weekly_png, weekly_svg)):
            path = out / f"{subject}{suffix}.png"
            path.write_bytes(png)
            path.with_suffix(".svg").write_text(svg_text)
            pngs.append(path)
        rows = []
        boundaries = cps["date"].to_list()
        for index, change in enumerate(cps.iter_rows(named=True)):
            until = boundaries[index + 1] if index + 1 < len(boundaries) else None
            tone = "neg" if change["difference"] < 0 else "pos"
            rows.append(
                f"<tr><td>{change['date']}</td><td>{_pct(change['before_rate'])}</td>"
                f"<td>{_pct(change['after_rate'])}</td><td class={tone}>"
                f"{_pct(change['difference'], True)} [{_pct(change['ci_low'], True)}, "
                f"{_pct(change['ci_high'], True)}]</td><td>{change['p_value']:.2g}</td>"
                f"<td>{html.escape(change['version_change'] or 'none')}</td></tr>"
                f"<tr><td colspan=6><details><summary>{len(change['flipped_down'])} tasks flipped "
                f"down, {len(change['flipped_up'])} up</summary>{_drill_down(change, until, outcomes, out)}"
                "</details></td></tr>"
            )
        table = "".join(rows) or "<tr><td colspan=6>No changepoint in this history.</td></tr>"
        sections.append(
            f"<section><h2>{html.escape(title)}</h2>{daily_svg}"
            "<table><tr><th>changepoint</th><th>before</th><th>after</th><th>change [95% CI]</th>"
            f"<th>paired p</th><th>release nearby</th></tr>{table}</table>"
            f"{_alarm_table(alarms.filter(pl.col('subject') == subject), decisions)}"
            f"<details><summary>Weekly candles</summary>{weekly_svg}</details></section>"
        )
        if len(thumbnails) < UI_CHARTS:
            thumbnails[subject] = base64.b64encode(render(daily, scale=0.6, svg=False)[0]).decode()
        latest_rate[subject] = mine["rate"][-1]
    index = out / "index.html"
    exports = " · ".join(_link(str(out / "exports" / n), out, n) for n in
                         ("candles.csv", "candles.parquet", "outcomes.csv", "outcomes.parquet"))
    index.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>candlebench report</title>"
        f"<style>{STYLE}</style></head><body><h1>candlebench</h1>{LEGEND}{svg}"
        f"<h2>Verdicts</h2>{_verdict_table(verdicts, latest_rate)}{_missing_note(missing)}"
        f"{_suspect_list(suspects)}"
        f"<p>Exports: {exports}</p>{''.join(sections)}</body></html>"
    )
    table = verdict_markdown(verdicts, latest_rate)
    charts = "\n\n".join(f"**{name}**\n\n![{name}](data:image/png;base64,{data})"
                         for name, data in thumbnails.items())
    markdown = f"![overview](data:image/png;base64,{thumbnail})\n\n{table}\n\n{charts}"
    latest = str(candles["date"].max()) if candles.height else "none"
    return Report(index=index, pngs=pngs, markdown=markdown, overview_png=overview_png, latest_day=latest)
