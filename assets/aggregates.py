"""Candles, changepoints and the report: DuckDB aggregates over the lake."""

import datetime as dt

import dagster as dg

from assets.grading import harness_controls, patch_evaluations
from pipeline.candles import refresh_candles
from pipeline.partitions import date
from pipeline.report import write_report
from pipeline.resources import TrackerResource
from pipeline.tracker import detect_changepoints, releases


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
    description="Offline segmentation of every subject's whole history (binomial PELT corrected for "
    "overdispersion), each boundary with before/after rates, a paired p-value, the tasks that "
    "flipped and any release near it.",
)
def changepoints(context: dg.AssetExecutionContext, tracker: TrackerResource) -> dg.MaterializeResult:
    engine = tracker.open()
    with engine.warehouse.connect() as connection:
        found = detect_changepoints(connection)
        for name, frame in (("changepoints", found), ("releases", releases(connection))):
            connection.register(f"new_{name}", frame)
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM new_{name}")
            connection.unregister(f"new_{name}")
    lines = [
        f"| {r['subject']} | {r['date']} | {r['before_rate']:.1%} | {r['after_rate']:.1%} | "
        f"{r['difference']:+.1%} [{r['ci_low']:+.1%}, {r['ci_high']:+.1%}] | {r['p_value']:.2g} | "
        f"{r['version_change'] or 'none'} |"
        for r in found.iter_rows(named=True)
    ]
    table = "\n".join([
        "| subject | date | before | after | change [95% CI] | paired p | release nearby |",
        "|---|---|---|---|---|---|---|", *lines,
    ])
    return dg.MaterializeResult(metadata={
        "changepoints": found.height,
        "table": dg.MetadataValue.md(table if lines else "No changepoints."),
    })


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
        "preview": dg.MetadataValue.md(report.markdown),
    })
