"""The report is incremental: a chart is redrawn only when what it shows changed, outcomes are
exported per date and only for dates whose partitions changed, and the drill-down's one
group-by finds what filtering every outcome row per flipped task found."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import duckdb
import polars as pl

from pipeline.report import html, windows, write_report
from pipeline.report.exports import flipped_latest
from pipeline.report.tables import drill_down
from pipeline.stats.warehouse import detect
from pipeline.store.candles import refresh_candles
from tests.test_behaviour import DAYS, REAL, SIMULATED, START, TASKS, TRIALS, attempt, build, write_day

CONFIG = SimpleNamespace(subjects=[])


def refresh(warehouse, day: dt.date) -> None:
    with warehouse.writer() as connection:
        refresh_candles(connection, day, day, "run", [REAL, SIMULATED])
        for name, frame in detect(connection).items():
            connection.register(f"new_{name}", frame)
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM new_{name}")
            connection.unregister(f"new_{name}")


def stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.png")}


def lake_outcomes(warehouse, day: dt.date) -> pl.DataFrame:
    with duckdb.connect() as connection:
        return connection.sql(
            f"SELECT e.subject, e.trial, e.instance_id, e.outcome, a.cost_usd, a.agent_version "
            f"FROM read_parquet('{warehouse.lake.glob('evaluations')}') e "
            f"JOIN read_parquet('{warehouse.lake.glob('attempts')}') a USING (attempt_id) "
            f"WHERE e.date = DATE '{day}' ORDER BY ALL"
        ).pl()


def test_an_unchanged_history_rewrites_nothing_and_a_new_day_only_its_own_exports(tmp_path, monkeypatch):
    warehouse = build(tmp_path / "home")
    out = warehouse.reports
    first = write_report(warehouse, CONFIG)
    # the overview, and each subject's daily and weekly chart
    assert first.exported_dates == DAYS and first.redrawn == 1 + 2 * 2  # thumbnails drawn with them
    assert not list(out.glob("*.svg")) and not (out / "exports" / "outcomes.csv").exists()
    page = first.index.read_text()
    assert f"<img src='{REAL}.png'" in page and f"<img src='{SIMULATED}-weekly.png'" in page
    assert "base64" not in page and len(page) < 200_000  # charts are files, not inlined
    exports = out / "exports" / "outcomes"
    assert sorted(p.stem for p in exports.glob("*.parquet")) == [
        str(START + dt.timedelta(days=n)) for n in range(DAYS)
    ]
    before = stamps(out)
    drawn = {name: (out / name).read_bytes() for name in before}

    # Drawn over worker processes (one chart each), the same files.
    monkeypatch.setattr(html, "CHARTS_PER_WORKER", 1)
    (out / "charts.json").unlink()
    for name in before:
        (out / name).unlink()
    assert write_report(warehouse, CONFIG).redrawn == first.redrawn
    assert {name: (out / name).read_bytes() for name in before} == drawn
    before = stamps(out)

    again = write_report(warehouse, CONFIG)
    assert (again.redrawn, again.exported_dates) == (0, 0)
    assert stamps(out) == before and again.index.read_text() == page

    new_day = START + dt.timedelta(days=DAYS)
    for subject, trials in ((REAL, TRIALS), (SIMULATED, 2)):
        rows = [attempt(subject, new_day, t, task, None) for task in TASKS for t in range(trials)]
        write_day(warehouse, subject, new_day, rows)
    refresh(warehouse, new_day)
    update = write_report(warehouse, CONFIG)
    assert update.exported_dates == 1 and update.latest_day == str(new_day)
    # the overview and both daily charts; the weekly ones wait for their week to close (a Sunday)
    assert new_day.weekday() != 6 and update.redrawn == 3
    assert stamps(out)[f"{REAL}.png"] != before[f"{REAL}.png"]  # its candles gained a day
    assert stamps(out)[f"{REAL}-weekly.png"] == before[f"{REAL}-weekly.png"]
    written = pl.read_parquet(exports / f"{new_day}.parquet")
    assert written["date"].unique().to_list() == [new_day]
    columns = ["subject", "trial", "instance_id", "outcome", "cost_usd", "agent_version"]
    assert written.select(columns).sort(columns).equals(lake_outcomes(warehouse, new_day))
    everything = pl.read_parquet(exports / "*.parquet")
    assert everything.height == warehouse.scan("SELECT count(*) AS n FROM evaluations")["n"][0]

    # A re-graded old partition re-exports that date alone.
    regraded = START + dt.timedelta(days=3)
    write_day(warehouse, SIMULATED, regraded, [attempt(SIMULATED, regraded, 0, TASKS[0], None)])
    refresh(warehouse, regraded)
    assert write_report(warehouse, CONFIG).exported_dates == 1
    assert pl.read_parquet(exports / f"{regraded}.parquet").filter(pl.col("subject") == SIMULATED).height == 1


def test_the_drill_down_from_one_group_by_matches_filtering_every_row(tmp_path):
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=n) for n in range(9)]
    outcomes = pl.DataFrame(
        [
            {
                "date": day,
                "subject": subject,
                "trial": trial,
                "instance_id": task,
                "outcome": "resolved" if (n + trial + len(task)) % 3 else "unresolved",
                "artifact_dir": f"/artifacts/{subject}/{day}/{trial}/{task}",
                "tampered": n == 8 and task == "b",  # its latest attempt
            }
            for n, day in enumerate(days)
            for subject in ("s", "t")
            for trial in range(2)
            for task in ("a", "b", "cc")
        ]
    )
    folder = tmp_path / "outcomes"
    folder.mkdir()
    for (day,), rows in outcomes.partition_by("date", as_dict=True).items():
        rows.write_parquet(folder / f"{day}.parquet")
    changes = pl.DataFrame(
        [
            {"subject": "s", "date": "2026-03-03", "flipped_down": ["a", "b"], "flipped_up": []},
            {"subject": "s", "date": "2026-03-06", "flipped_down": [], "flipped_up": ["b", "cc"]},
            {"subject": "t", "date": "2026-03-02", "flipped_down": ["cc"], "flipped_up": ["zz"]},
        ]
    )
    latest = flipped_latest(folder, changes)
    assert latest.height == 6 - 1  # one row per (changepoint, flipped task seen in its segment)
    last_trials = outcomes.filter(pl.col("trial") == 1)  # latest: the last trial of the latest day
    rows = changes.to_dicts()
    for index, change in enumerate(rows):
        later = [r["date"] for r in rows[index + 1 :] if r["subject"] == change["subject"]]
        until = later[0] if later else None
        expected = drill_down(change, until, last_trials, tmp_path)
        assert drill_down(change, until, latest, tmp_path) == expected
        assert "latest:" in expected
    assert "tampered with the test runner" in drill_down(rows[1], None, latest, tmp_path)


def test_daily_charts_show_their_window_and_weekly_ones_closed_weeks():
    days = pl.date_range(dt.date(2025, 1, 1), dt.date(2026, 11, 25), eager=True)  # a Wednesday last
    candles = pl.DataFrame({"subject": "s", "date": days, "rate": 0.5})
    start = windows.window_start(candles)
    assert start == str(dt.date(2026, 11, 25) - dt.timedelta(days=windows.DAILY_DAYS - 1))
    shown = windows.since(candles, start)
    assert shown.height == windows.DAILY_DAYS and str(shown["date"].min()) == start
    changes = pl.DataFrame({"date": ["2025-03-01", start, "2026-11-20"]})  # dates as strings
    assert windows.since(changes, start)["date"].to_list() == [start, "2026-11-20"]
    weeks = pl.DataFrame({"week": [dt.date(2026, 11, 9), dt.date(2026, 11, 16), dt.date(2026, 11, 23)]})
    assert windows.closed_weeks(weeks, candles)["week"].to_list() == [
        dt.date(2026, 11, 9),
        dt.date(2026, 11, 16),
    ]
    sunday = candles.filter(pl.col("date") <= dt.date(2026, 11, 22))
    closed = [dt.date(2026, 11, 9), dt.date(2026, 11, 16)]
    assert windows.closed_weeks(weeks, sunday)["week"].to_list() == closed
    closing = pl.DataFrame({"date": pl.date_range(dt.date(2026, 11, 1), dt.date(2026, 11, 29), eager=True)})
    assert windows.closed_weeks(weeks, closing).height == 3  # Sunday Nov 29 closes Nov 23's week
