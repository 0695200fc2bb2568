"""Daily candles in DuckDB SQL, with weekly and monthly roll-ups.

The high-low range of a candle spans the per-trial pass rates of one day: it grows with the
number of trials and is not a confidence interval. The interval is `ci_low`..`ci_high`, the
95% interval of the pooled rate, clustered by task.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

from pipeline import faults
from pipeline.agents.exits import ExitClass
from pipeline.grading.outcomes import COUNTED_SQL

CANDLES_SQL = (Path(__file__).parent / "candles.sql").read_text().format(counted=COUNTED_SQL)
ROLLUP_SQL = (Path(__file__).parent / "rollups.sql").read_text()
ROLLUPS_SQL = "\n".join(
    ROLLUP_SQL.format(period=period, view=view) for period, view in (("week", "weekly"), ("month", "monthly"))
)
CANDLES_TABLE = """
CREATE TABLE IF NOT EXISTS candles (
    date DATE, subject VARCHAR, open DOUBLE, high DOUBLE, low DOUBLE, close DOUBLE,
    rate DOUBLE, ci_low DOUBLE, ci_high DOUBLE, n_tasks BIGINT, trials BIGINT, volume BIGINT,
    resolved BIGINT, harness_errors BIGINT, skipped BIGINT, excluded_tasks BIGINT,
    cost_usd DOUBLE, agent_version VARCHAR, run_id VARCHAR, computed_at TIMESTAMP,
    PRIMARY KEY (date, subject)
)
"""
BEHAVIOUR_SQL = (
    (Path(__file__).parent / "behaviour.sql")
    .read_text()
    .format(not_behaviour=f"'{ExitClass.SKIPPED}', '{ExitClass.API_ERROR}'")
)
BEHAVIOUR_TABLE = """
CREATE TABLE IF NOT EXISTS behaviour (
    date DATE, subject VARCHAR, attempts BIGINT, tool_calls DOUBLE, shell_commands DOUBLE,
    test_runs DOUBLE, edits DOUBLE, files_read_before_first_edit DOUBLE, thinking_chars DOUBLE,
    thinking_attempts BIGINT, tested_share DOUBLE, run_id VARCHAR, computed_at TIMESTAMP,
    PRIMARY KEY (date, subject)
)
"""
# Configured subjects with no graded day: a failed run, a subject added later, a skipped day.
MISSING_TABLE = """
CREATE TABLE IF NOT EXISTS missing_subjects (date DATE, subject VARCHAR, run_id VARCHAR,
                                             PRIMARY KEY (date, subject))
"""
MISSING_SQL = """
INSERT INTO missing_subjects
SELECT d.date::DATE, s.subject, $run_id
FROM range($start::TIMESTAMP, $end::TIMESTAMP + INTERVAL 1 DAY, INTERVAL 1 DAY) d(date)
CROSS JOIN (SELECT unnest($subjects::VARCHAR[]) AS subject) s
ANTI JOIN candles c ON c.date = d.date::DATE AND c.subject = s.subject
"""


def refresh_candles(
    connection: duckdb.DuckDBPyConnection,
    start: dt.date,
    end: dt.date,
    run_id: str,
    subjects: list[str] | tuple[str, ...] = (),
) -> int:
    """Recompute the candles of [start, end], and the behaviour beside them, in one transaction;
    returns the candle rows written.

    `subjects` are the configured ones: those without a candle on a day are recorded in
    `missing_subjects` for that day.
    """
    connection.execute(CANDLES_TABLE)
    connection.execute(MISSING_TABLE)
    connection.execute(BEHAVIOUR_TABLE)
    read = "tool_calls" in connection.sql("SELECT * FROM attempts LIMIT 0").columns  # older lakes lack it
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute("DELETE FROM candles WHERE date BETWEEN ? AND ?", [start, end])
        connection.execute("DELETE FROM missing_subjects WHERE date BETWEEN ? AND ?", [start, end])
        before = connection.execute("SELECT count(*) FROM candles").fetchone()[0]
        connection.execute(
            f"INSERT INTO candles SELECT *, $run_id, now() FROM ({CANDLES_SQL})",
            {"start": start, "end": end, "run_id": run_id},
        )
        written = connection.execute("SELECT count(*) FROM candles").fetchone()[0] - before
        connection.execute(
            MISSING_SQL, {"start": start, "end": end, "run_id": run_id, "subjects": list(subjects)}
        )
        connection.execute(ROLLUPS_SQL)
        connection.execute("DELETE FROM behaviour WHERE date BETWEEN ? AND ?", [start, end])
        if read:
            connection.execute(
                f"INSERT INTO behaviour SELECT *, $run_id, now() FROM ({BEHAVIOUR_SQL})",
                {"start": start, "end": end, "run_id": run_id},
            )
        faults.point("candles_transaction")
        connection.execute("COMMIT")
    except Exception:
        connection.execute("ROLLBACK")
        raise
    return written
