"""Candles, changepoints and the report: DuckDB aggregates over the lake."""

import datetime as dt

import dagster as dg
import polars as pl

from assets.grading import harness_controls, patch_evaluations
from pipeline.alerts import Notifier, alerts_from
from pipeline.candles import refresh_candles
from pipeline.partitions import date
from pipeline.report import changepoint_markdown, verdict_markdown, write_report
from pipeline.resources import TrackerResource
from pipeline.tracker import detect


@dg.asset(
    group_name="aggregates",
    kinds={"duckdb"},
    owners=["team:evals"],
    partitions_def=date,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[patch_evaluations, harness_controls],
    pool="warehouse",
    automation_condition=dg.AutomationCondition.eager(),
    description="Per subject and day: open/high/low/close of per-trial pass rates, the pooled rate "
    "with a task-clustered 95% interval, volume, skips, harness errors and cost. Weekly and "
    "monthly roll-ups are views.",
)
def candles(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    window = context.partition_key_range
    start, end = dt.date.fromisoformat(window.start), dt.date.fromisoformat(window.end)
    with engine.warehouse.connect() as connection:
        written = refresh_candles(connection, start, end, context.run.run_id)
        latest = connection.execute(
            "SELECT subject, rate FROM candles WHERE date = ? ORDER BY subject", [end]
        ).fetchall()
    return dg.MaterializeResult(metadata={
        "rows": written,
        "days": (end - start).days + 1,
        **{f"pass_rate/{subject}": float(rate or 0.0) for subject, rate in latest},
    })


@dg.asset(
    group_name="aggregates",
    kinds={"duckdb"},
    owners=["team:evals"],
    deps=[candles],
    pool="warehouse",
    automation_condition=dg.AutomationCondition.eager(),
    description="Offline segmentation of every subject's history (binomial PELT corrected for "
    "overdispersion) with before/after rates, paired p-values, flipped tasks and nearby releases; "
    "online CUSUM and one-day alarms; a verdict per subject for the latest week with its minimum "
    "detectable effect (Benjamini-Hochberg across subjects); and harness-suspect days.",
)
def changepoints(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    with engine.warehouse.connect() as connection:
        tables = detect(connection)
        for name, frame in tables.items():
            connection.register(f"new_{name}", frame)
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM new_{name}")
            connection.unregister(f"new_{name}")
    found, verdicts = tables["changepoints"], tables["verdicts"]
    notifier = Notifier(list(engine.config.alerts), engine.home / "alerts-sent.log")
    sent, failed = notifier.send(alerts_from(tables))
    for problem in failed:
        context.log.warning(f"alert not delivered: {problem}")
    return dg.MaterializeResult(metadata={
        "changepoints": found.height,
        "harness_suspect_days": tables["harness_suspects"].height,
        "alerts_sent": len(sent),
        "changepoint_table": dg.MetadataValue.md(changepoint_markdown(found)),
        "verdicts": dg.MetadataValue.md(verdict_markdown(verdicts)),
        **{f"verdict/{r['subject']}": r["verdict"] for r in verdicts.iter_rows(named=True)},
    })


@dg.asset_check(asset=changepoints, description="Warns when a subject's latest week is significantly "
                "worse than its baseline (verdict `degraded`), or when a day is a harness suspect.")
def no_confirmed_regression(tracker: TrackerResource) -> dg.AssetCheckResult:
    verdicts = tracker.open().warehouse.query("SELECT subject, difference, q_value, verdict FROM verdicts")
    degraded = verdicts.filter(pl.col("verdict") == "degraded")
    return dg.AssetCheckResult(
        passed=degraded.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=", ".join(f"{r['subject']} {r['difference']:+.1%} (q={r['q_value']:.2g})"
                              for r in degraded.iter_rows(named=True)) or "no subject degraded",
        metadata={"degraded": degraded.height, "subjects": verdicts.height},
    )


@dg.asset(
    group_name="aggregates",
    kinds={"html"},
    owners=["team:evals"],
    deps=[changepoints],
    automation_condition=dg.AutomationCondition.eager(),
    description="Candlestick charts (PNG and HTML) per subject with changepoints and releases "
    "marked, and a self-contained HTML report.",
)
def tracker_report(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    report = write_report(engine.warehouse, engine.config)
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.path(str(report.index)),
        "charts": len(report.pngs),
        "overview": dg.MetadataValue.md(report.markdown),
    })
