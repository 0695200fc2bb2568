"""Behaviour beside the candles: the attempts' behaviour columns, their daily means per subject in
the warehouse (`behaviour`, refreshed with the candles), and the strips under each subject's
candlestick chart, on a small history written straight into a lake."""

from __future__ import annotations

import datetime as dt
import html
import random
import struct
import zlib
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest

from pipeline.agents.model import Attempt
from pipeline.report import write_report
from pipeline.report.charts import BEHAVIOUR as BEHAVIOUR_TITLES
from pipeline.stats.warehouse import detect
from pipeline.store.candles import refresh_candles
from pipeline.store.rows import attempt_id, attempts_frame
from pipeline.store.tables import BEHAVIOUR, CONTROLS_TABLE, EVALUATIONS
from pipeline.store.warehouse import Warehouse

START = dt.date(2026, 11, 1)
DAYS = 24
TASKS = [f"demo__t-{i:03d}" for i in range(6)]
TRIALS = 2
REAL, SIMULATED = "claude-real", "sim-codex"


def attempt(subject: str, day: dt.date, trial: int, task: str, behaviour: dict | None) -> Attempt:
    return Attempt(
        subject=subject,
        instance_id=task,
        date=day,
        trial=trial,
        started_at=dt.datetime.combine(day, dt.time(1, trial)),
        patch="diff --git a/x b/x\n",
        cost_usd=0.1,
        input_tokens=1000,
        output_tokens=100,
        cached_tokens=0,
        turns=5,
        duration_s=3.0,
        exit_class="submitted",
        agent_version="v1",
        transcript="",
        failure_mode="",
        **(behaviour or {}),
    )


def behaviour_of(day: int, rng: random.Random) -> dict:
    """An agent that, from day 12 on, stops reading before it edits and tests less."""
    careless = day >= 12
    return {
        "tool_calls": rng.randint(4, 7) if careless else rng.randint(9, 14),
        "shell_commands": rng.randint(2, 4),
        "test_runs": rng.randint(0, 1) if careless else rng.randint(1, 3),
        "edits": rng.randint(1, 3),
        "files_read_before_first_edit": rng.randint(0, 1) if careless else rng.randint(2, 4),
        "thinking_chars": rng.randint(200, 900),
    }


def write_controls(warehouse: Warehouse, day: dt.date) -> None:
    """The day's gold and empty controls, all holding."""
    warehouse.lake.write_rows(
        "controls",
        [
            CONTROLS_TABLE.row(
                date=day,
                instance_id=task,
                control=control,
                outcome="resolved" if control == "gold" else "empty_patch",
                ok=True,
                cached=False,
                artifact_dir="",
                grader_version="g",
                env_fingerprint="e",
                run_id="run",
                config_hash="config",
            )
            for task in TASKS
            for control in ("gold", "empty")
        ],
        date=day,
    )


def write_day(
    warehouse: Warehouse, subject: str, day: dt.date, attempts: list[Attempt], old: bool = False
) -> None:
    frame = attempts_frame(attempts, "run", "config", 1)
    if old:  # a partition written before the behaviour columns existed
        frame = frame.drop([c.name for c in BEHAVIOUR])
    warehouse.lake.write_partition("attempts", frame, subject=subject, date=day)
    write_controls(warehouse, day)
    rows = []
    for a in attempts:
        resolved = zlib.crc32(f"{a.subject}{a.instance_id}{a.trial}{a.date}".encode()) % 2 == 0
        rows.append(
            EVALUATIONS.row(
                attempt_id=attempt_id(a.subject, a.date, a.trial, a.instance_id),
                date=day,
                subject=subject,
                trial=a.trial,
                instance_id=a.instance_id,
                outcome="resolved" if resolved else "unresolved",
                resolved=resolved,
                apply_step="git apply",
                f2p_passed=int(resolved),
                f2p_total=1,
                p2p_passed=1,
                p2p_total=1,
                grade_key="k",
                cached=False,
                artifact_dir="",
                grader_version="g",
                env_fingerprint="e",
                sandbox="process",
                run_id="run",
                config_hash="config",
            )
        )
    warehouse.lake.write_rows("evaluations", rows, subject=subject, date=day)


def build(home: Path, behaviour: bool = True) -> Warehouse:
    """Two subjects over DAYS days: a real one whose transcripts were read (unless `behaviour` is
    off) with a gap of days without any, and a simulated one with none."""
    warehouse, rng = Warehouse(home), random.Random(7)
    for n in range(DAYS):
        day = START + dt.timedelta(days=n)
        read = behaviour and not 5 <= n <= 7  # days 5-7: nothing read (say, an older adapter)
        real = [
            attempt(REAL, day, trial, task, behaviour_of(n, rng) if read else None)
            for task in TASKS
            for trial in range(TRIALS)
        ]
        write_day(warehouse, REAL, day, real, old=n < 2)
        write_day(
            warehouse,
            SIMULATED,
            day,
            [attempt(SIMULATED, day, t, task, None) for task in TASKS for t in (0, 1)],
        )
    with warehouse.writer() as connection:
        refresh_candles(connection, START, START + dt.timedelta(days=DAYS - 1), "run", [REAL, SIMULATED])
        for name, frame in detect(connection).items():
            connection.register(f"new_{name}", frame)
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM new_{name}")
            connection.unregister(f"new_{name}")
    return warehouse


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Warehouse:
    return build(tmp_path_factory.mktemp("behaviour"))


def test_the_warehouse_keeps_each_days_mean_behaviour_per_subject(history):
    rows = history.query("SELECT * FROM behaviour ORDER BY subject, date")
    assert rows["subject"].unique().to_list() == [REAL]  # the simulated subject has none: no rows
    days = {d - START for d in rows["date"].to_list()}
    gap = {dt.timedelta(days=n) for n in (0, 1, 5, 6, 7)}  # old partitions and days nothing was read
    assert days == {dt.timedelta(days=n) for n in range(DAYS)} - gap
    assert set(rows["attempts"].to_list()) == {len(TASKS) * TRIALS}
    raw = history.query(
        "SELECT avg(tool_calls) AS calls, avg(files_read_before_first_edit) AS read, "
        "avg((test_runs > 0)::INT) AS tested FROM attempts WHERE subject = $1 AND date = $2",
        [REAL, START + dt.timedelta(days=3)],
    )
    day3 = rows.filter(pl.col("date") == START + dt.timedelta(days=3))
    assert day3["tool_calls"][0] == pytest.approx(raw["calls"][0])
    assert day3["files_read_before_first_edit"][0] == pytest.approx(raw["read"][0])
    assert day3["tested_share"][0] == pytest.approx(raw["tested"][0])
    early, late = (
        rows.filter(pl.col("date") < START + dt.timedelta(days=12)),
        rows.filter(pl.col("date") >= START + dt.timedelta(days=12)),
    )
    assert early["tool_calls"].min() > late["tool_calls"].max()


def test_skipped_attempts_and_api_errors_say_nothing_about_behaviour(tmp_path):
    warehouse = Warehouse(tmp_path)
    day = START
    counts = {"tool_calls": 10, "shell_commands": 4, "test_runs": 2, "edits": 1}
    attempts = [
        attempt(
            REAL, day, 0, TASKS[0], {**counts, "files_read_before_first_edit": 3, "thinking_chars": None}
        ),
        attempt(REAL, day, 0, TASKS[1], {**counts, "files_read_before_first_edit": 1, "thinking_chars": 400}),
        replace(attempt(REAL, day, 0, TASKS[2], {**counts, "tool_calls": 0}), exit_class="api_error"),
        replace(attempt(REAL, day, 0, TASKS[3], None), exit_class="skipped"),
    ]
    write_day(warehouse, REAL, day, attempts)
    with warehouse.writer() as connection:
        refresh_candles(connection, day, day, "run", [REAL])
    (row,) = warehouse.query("SELECT * FROM behaviour").to_dicts()
    assert (row["attempts"], row["tool_calls"], row["files_read_before_first_edit"]) == (2, 10.0, 2.0)
    assert (row["thinking_chars"], row["thinking_attempts"]) == (400.0, 1)  # over those that show it


def test_a_lake_written_before_the_behaviour_columns_still_makes_candles(tmp_path):
    warehouse = Warehouse(tmp_path)
    write_day(warehouse, REAL, START, [attempt(REAL, START, 0, t, None) for t in TASKS], old=True)
    with warehouse.writer() as connection:
        assert refresh_candles(connection, START, START, "run", [REAL]) == 1
    assert warehouse.query("SELECT count(*) AS n FROM behaviour")["n"][0] == 0


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


def test_the_report_charts_behaviour_beside_the_candles_and_renders_without_any(history, tmp_path):
    config = SimpleNamespace(subjects=[])
    page = write_report(history, config).index.read_text()
    sections = dict((section.split("</h2>")[0], section) for section in page.split("<section><h2>")[1:])
    assert set(sections) == {REAL, SIMULATED}
    for title in BEHAVIOUR_TITLES.values():
        assert html.escape(title) in sections[REAL]
        assert html.escape(title) not in sections[SIMULATED]  # no transcripts read: no strips at all
    real, simulated = (png_size(history.reports / f"{name}.png") for name in (REAL, SIMULATED))
    assert real[0] == simulated[0] and real[1] > simulated[1] + 300  # four strips under the candles

    bare = build(tmp_path / "bare", behaviour=False)
    assert bare.query("SELECT count(*) AS n FROM behaviour")["n"][0] == 0
    plain = write_report(bare, config).index.read_text()
    assert not any(html.escape(title) in plain for title in BEHAVIOUR_TITLES.values())
    assert png_size(bare.reports / f"{REAL}.png") == png_size(bare.reports / f"{SIMULATED}.png")


def test_the_candles_metadata_carries_behaviour_only_for_subjects_that_have_it(history):
    from assets.aggregates import DAY_SQL, day_metadata

    day = START + dt.timedelta(days=3)
    rows = history.query(DAY_SQL.replace("$start", "$1").replace("$end", "$2"), [day, day]).to_dicts()
    metadata = day_metadata(rows, [])
    means = history.query("SELECT * FROM behaviour WHERE subject = $1 AND date = $2", [REAL, day])
    for name in ("tool_calls", "test_runs", "files_read_before_first_edit"):
        assert metadata[f"{name}/{REAL}"] == pytest.approx(means[name][0], abs=1e-3)
    simulated = {key.split("/")[0] for key in metadata if key.endswith(f"/{SIMULATED}")}
    assert simulated == {"pass_rate", "graded"}  # no behaviour: no entries, not zeros


def test_a_strip_is_drawn_for_each_measure_with_values_and_thinking_only_when_shown():
    import altair as alt

    from pipeline.report.charts import behaviour_panels

    days = pl.DataFrame({"date": [START + dt.timedelta(days=n) for n in range(4)]})
    rows = pl.DataFrame(
        {
            "date": [START, START + dt.timedelta(days=2)],
            "attempts": [3, 3],
            "tool_calls": [8.0, 5.0],
            "test_runs": [1.0, 0.0],  # zero tests is behaviour: drawn
            "files_read_before_first_edit": [None, None],  # nothing to draw
            "thinking_chars": [0.0, 0.0],  # a model that does not think: not drawn
        }
    )
    panels = behaviour_panels(days, rows, alt.Axis())
    assert [p.title.text for p in panels] == [BEHAVIOUR_TITLES["tool_calls"], BEHAVIOUR_TITLES["test_runs"]]
    thinking = rows.with_columns(thinking_chars=pl.Series([0.0, 120.0]))
    assert len(behaviour_panels(days, thinking, alt.Axis())) == 3
