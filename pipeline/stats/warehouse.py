"""Detection over the warehouse: the graded trials as per-task counts (read in batches of
subjects, as integer codes, so memory stays bounded), the releases the attempts recorded, and
the stats package's tables ready for DuckDB."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from pipeline.grading.outcomes import COUNTED_SQL
from pipeline.stats.attribution import Lane
from pipeline.stats.design import DEFAULT_DESIGN, MonitorDesign
from pipeline.stats.releases import cli_versions, version_changes

COUNTS_SQL = f"""
WITH subjects AS (SELECT unnest($subjects) AS subject, unnest(range(len($subjects)))::INTEGER AS code),
     tasks AS (SELECT unnest($tasks) AS instance_id, unnest(range(len($tasks)))::INTEGER AS code)
SELECT s.code AS subject, e.date, t.code AS task,
       count(*) FILTER (WHERE e.resolved)::SMALLINT AS successes, count(*)::SMALLINT AS trials
FROM evaluations e
JOIN subjects s ON s.subject = e.subject
JOIN tasks t ON t.instance_id = e.instance_id
LEFT JOIN (SELECT DISTINCT date, instance_id FROM controls WHERE NOT ok) b
       ON b.date = e.date AND b.instance_id = e.instance_id
WHERE b.instance_id IS NULL AND e.{COUNTED_SQL}
  AND e.subject BETWEEN $first AND $last
GROUP BY ALL
"""
DETECT_MEMORY = "256MB"  # DuckDB's buffer pool while detect() reads the lake; spills beyond it
NAMES_SQL = "SELECT {column} AS name, count(*) AS rows FROM evaluations WHERE {column} NOTNULL GROUP BY ALL"
CONTROLS_SQL = "SELECT date::VARCHAR AS date, instance_id AS task, ok FROM controls"
DECISIONS_SQL = "SELECT subject, date::VARCHAR AS date, decision FROM decisions"
RELEASES_SQL = """
SELECT subject, agent_version, min(date)::VARCHAR AS first_seen
FROM attempts GROUP BY ALL ORDER BY subject, first_seen
"""
RAN_SQL = "SELECT subject, date::VARCHAR AS date, agent_version FROM attempts GROUP BY ALL"


def releases(connection) -> pl.DataFrame:
    """Version changes per subject, from the versions its attempts recorded: one row per kind
    (`cli` when the CLI part changed, `model` when the model part did)."""
    return version_changes(connection.sql(RELEASES_SQL).pl())


def graded_counts(connection, batch_trials: int = 4_000_000) -> tuple[pl.DataFrame, dict]:
    """Successes and trials per subject, date and task, subjects and tasks as integer codes into
    the returned name lists. Aggregated a batch of subjects at a time (about `batch_trials`
    graded trials each) and fetched as integers, so memory stays bounded at any warehouse size."""
    seen = {
        c: connection.sql(NAMES_SQL.format(column=c)).pl().sort("name") for c in ("subject", "instance_id")
    }
    subjects, tasks = seen["subject"]["name"].to_list(), seen["instance_id"]["name"].to_list()
    parts, batch, size = [], [], 0
    for name, rows in seen["subject"].iter_rows():
        batch.append(name)
        size += rows
        if size >= batch_trials or name == subjects[-1]:
            params = {"subjects": subjects, "tasks": tasks, "first": batch[0], "last": batch[-1]}
            reader = connection.sql(COUNTS_SQL, params=params).to_arrow_reader(1 << 20)
            parts += [pl.from_arrow(b) for b in reader]
            batch, size = [], 0
    schema = {
        "subject": pl.Int32,
        "date": pl.Date,
        "task": pl.Int32,
        "successes": pl.Int16,
        "trials": pl.Int16,
    }
    counts = pl.concat(parts, rechunk=False) if parts else pl.DataFrame(schema=schema)
    return counts, {"subject": subjects, "task": tasks}


def decisions_of(connection) -> dict[str, dict[str, int]]:
    """The confirmations' decisions so far (subject -> date -> code); none before the first."""
    import duckdb

    from pipeline.stats.daily import known_decisions

    try:
        return known_decisions(connection.sql(DECISIONS_SQL).pl())
    except duckdb.CatalogException:  # no decision written yet: the lake has no such table
        return {}


def detect(
    connection,
    design: MonitorDesign = DEFAULT_DESIGN,
    lanes: Mapping[str, Lane] | None = None,
    registry: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[str, pl.DataFrame]:
    """Changepoints, online alarms, verdicts and harness-suspect days over every subject's history.

    One table each, ready for DuckDB: `changepoints` (each attributed to the model, the agent or
    evaluation harness, the provider or the subject alone, from `lanes`: subject -> its lane),
    `alarms`, `monitor` (the daily CUSUM path, with each day's warning and the extra trials the
    next day should take), `verdicts`, `harness_suspects`, the `releases` they were read against
    (CLI releases and model changes apart) and `cli_versions` (per subject and day, the CLI that
    ran and, for a latest lane, the registry's answer that day from `registry`). The
    confirmations' decisions feed back into the monitor: a cleared alarm resets the sums and
    keeps the baseline, a held one keeps both.
    """
    from pipeline.stats.evidence import attributed_changepoints, evidence_of, read_decisions
    from pipeline.stats.tables import detection_tables  # scipy loads only when detection runs

    lanes = lanes or {}
    known = releases(connection)
    by_subject = {
        name: list(
            dict.fromkeys(
                (r["first_seen"], r["old_version"], r["new_version"]) for r in group.iter_rows(named=True)
            )
        )
        for (name,), group in known.group_by(["subject"], maintain_order=True)
    }
    controls = connection.sql(CONTROLS_SQL).pl()
    ((limit,),) = connection.sql("SELECT current_setting('memory_limit')").fetchall()
    connection.execute(f"SET memory_limit = '{DETECT_MEMORY}'")  # a cache of the whole lake is no help here
    try:
        counts, labels = graded_counts(connection)
        ran = connection.sql(RAN_SQL).pl()  # the versions each subject ran each day
    finally:
        connection.execute(f"SET memory_limit = '{limit}'")
    groups = {name: "/".join(lane.pair) for name, lane in lanes.items() if lane.pair}
    tables = detection_tables(
        counts,
        controls,
        releases=by_subject,
        design=design,
        decisions=decisions_of(connection),
        labels=labels,
        groups=groups,
    )
    tables["releases"] = known
    evidence = evidence_of(tables, lanes, read_decisions(connection))
    tables["changepoints"] = attributed_changepoints(tables["changepoints"], evidence)
    tables["cli_versions"] = cli_versions(ran, lanes, registry)
    return tables
