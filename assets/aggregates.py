"""Candles, changepoints and the report: DuckDB aggregates over the lake."""

import datetime as dt

import dagster as dg
import polars as pl

from assets.grading import harness_controls, patch_evaluations
from pipeline import clock, faults
from pipeline.orchestration.partitions import date
from pipeline.orchestration.resources import TrackerResource
from pipeline.report import changepoint_markdown, verdict_markdown, write_report
from pipeline.report.alerts import Notifier, suspect_alerts
from pipeline.stats.warehouse import detect
from pipeline.store.candles import refresh_candles

DAY_SQL = """
SELECT c.date::VARCHAR AS date, c.subject, c.rate, c.volume, c.harness_errors, c.excluded_tasks,
       b.tool_calls, b.test_runs, b.files_read_before_first_edit
FROM candles c LEFT JOIN behaviour b USING (date, subject)
WHERE c.date BETWEEN $start AND $end ORDER BY 1, 2
"""
BEHAVIOUR_METADATA = ("tool_calls", "test_runs", "files_read_before_first_edit")  # means per attempt
MISSING_DAY_SQL = """
SELECT date::VARCHAR AS date, list(subject ORDER BY subject) AS subjects FROM missing_subjects
WHERE date BETWEEN $start AND $end GROUP BY ALL
"""


def day_metadata(rows: list[dict], missing: list[str]) -> dict:
    """One day's own numbers: each subject's pooled pass rate and volume, and who is missing."""
    metadata: dict = {f"pass_rate/{r['subject']}": float(r["rate"] or 0.0) for r in rows}
    metadata |= {f"graded/{r['subject']}": int(r["volume"] or 0) for r in rows}
    metadata |= {  # only subjects whose transcripts were read: none is not zero
        f"{name}/{r['subject']}": round(float(r[name]), 3)
        for r in rows
        for name in BEHAVIOUR_METADATA
        if r.get(name) is not None
    }
    metadata["missing_subjects"] = ", ".join(missing) or "none"
    return metadata


@dg.asset(
    group_name="aggregates",
    kinds={"duckdb"},
    owners=["team:evals"],
    partitions_def=date,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[patch_evaluations, harness_controls],
    pool="warehouse",
    description="Per subject and day: open/high/low/close of per-trial pass rates, the pooled rate "
    "with a task-clustered 95% interval, volume, skips, harness errors and cost. Weekly and "
    "monthly roll-ups are views. Configured subjects without results that day are recorded in "
    "`missing_subjects`, never waited for. Beside them, `behaviour`: each subject's daily mean "
    "per attempt of what its transcripts show (tool calls, shell commands, test runs, edits, "
    "files read before the first edit, thinking), for agents whose transcripts are read.",
)
def candles(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    window = context.partition_key_range
    start, end = dt.date.fromisoformat(window.start), dt.date.fromisoformat(window.end)
    subjects = [s.name for s in engine.config.subjects]
    days = [(start + dt.timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]
    with engine.warehouse.writer(dates=days) as connection:  # reads only the window's files
        written = refresh_candles(connection, start, end, context.run.run_id, subjects)
        faults.point("candles_written")
        params = {"start": start, "end": end}
        rows = connection.sql(DAY_SQL, params=params).pl()
        missing = dict(connection.execute(MISSING_DAY_SQL, params).fetchall())
    by_day = {day: group.to_dicts() for (day,), group in rows.group_by(["date"], maintain_order=True)}
    if start == end:  # the daily path: this partition's own numbers
        return dg.MaterializeResult(
            metadata={
                "rows": written,
                **day_metadata(by_day.get(window.start, []), missing.get(window.start, [])),
            }
        )
    # A range run gives every partition the same materialization metadata (a Dagster limit), so
    # each day's own numbers go into an observation of that partition instead.
    for offset in range((end - start).days + 1):
        day = (start + dt.timedelta(days=offset)).isoformat()
        context.log_event(
            dg.AssetObservation(
                asset_key=context.asset_key,
                partition=day,
                metadata=day_metadata(by_day.get(day, []), missing.get(day, [])),
            )
        )
    return dg.MaterializeResult(
        metadata={
            "rows": written,
            "days": (end - start).days + 1,
            "range": f"{window.start}..{window.end} (each day's numbers: its observation)",
            "days_with_missing_subjects": len(missing),
        }
    )


@dg.asset(
    group_name="aggregates",
    kinds={"duckdb"},
    owners=["team:evals"],
    deps=[candles],
    pool="warehouse",
    description="Offline segmentation of every subject's history (binomial PELT corrected for "
    "overdispersion) with before/after rates, paired p-values, flipped tasks, nearby releases (CLI "
    "releases apart from model changes) and an attribution (model, agent harness, evaluation harness, "
    "provider, or the subject alone); "
    "online CUSUM and one-day alarms; a verdict per subject for the latest week with its minimum "
    "detectable effect (Benjamini-Hochberg across subjects); and harness-suspect days.",
)
def changepoints(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    with engine.warehouse.writer() as connection:
        tables = detect(connection, lanes=engine.lanes, registry=engine.registry_answers())
        for name, frame in tables.items():
            connection.register(f"new_{name}", frame)
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM new_{name}")
            connection.unregister(f"new_{name}")
            faults.point("changepoints_tables")
    found, verdicts = tables["changepoints"], tables["verdicts"]
    notifier = Notifier(list(engine.config.alerts), engine.home / "alerts-sent.log")
    suspects = tables["harness_suspects"].to_dicts()
    sent, failed = notifier.send(suspect_alerts(suspects, clock.today(engine.config.timezone)))
    for problem in failed:
        context.log.warning(f"alert not delivered: {problem}")
    return dg.MaterializeResult(
        metadata={
            "latest_day": max(verdicts["latest_date"].drop_nulls().to_list(), default="none"),
            "changepoints": found.height,
            "harness_suspect_days": tables["harness_suspects"].height,
            **{
                f"attributed/{label}": count
                for label, count in found["attribution"].value_counts().sort("attribution").iter_rows()
            },
            "alerts_sent": len(sent),
            "changepoint_table": dg.MetadataValue.md(changepoint_markdown(found)),
            "verdicts": dg.MetadataValue.md(verdict_markdown(verdicts)),
            **{f"verdict/{r['subject']}": r["verdict"] for r in verdicts.iter_rows(named=True)},
        }
    )


@dg.asset_check(
    asset=changepoints,
    description="Warns when a subject's latest week is significantly "
    "worse than its baseline (verdict `degraded`), or when a day is a harness suspect.",
)
def no_confirmed_regression(tracker: TrackerResource) -> dg.AssetCheckResult:
    verdicts = tracker.open().warehouse.query("SELECT subject, difference, q_value, verdict FROM verdicts")
    degraded = verdicts.filter(pl.col("verdict") == "degraded")
    return dg.AssetCheckResult(
        passed=degraded.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=", ".join(
            f"{r['subject']} {r['difference']:+.1%} (q={r['q_value']:.2g})"
            for r in degraded.iter_rows(named=True)
        )
        or "no subject degraded",
        metadata={"degraded": degraded.height, "subjects": verdicts.height},
    )


@dg.asset(
    group_name="aggregates",
    kinds={"html"},
    owners=["team:evals"],
    deps=[changepoints],
    description="Candlestick charts (PNG) per subject with changepoints and releases "
    "marked, an HTML report referencing them, and one outcomes export per date; a chart is "
    "redrawn and a date exported again only when its inputs changed.",
)
def tracker_report(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    report = write_report(engine.warehouse, engine.config)
    return dg.MaterializeResult(
        metadata={
            "latest_day": report.latest_day,
            "report": dg.MetadataValue.path(str(report.index)),
            "charts": len(report.pngs),
            "charts_redrawn": report.redrawn,
            "outcome_dates_exported": report.exported_dates,
            "overview": dg.MetadataValue.md(report.markdown),
        }
    )
