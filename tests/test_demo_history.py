"""The whole demo, end to end: 95 days built through real Dagster runs, read back from DuckDB."""

import datetime as dt
import os
import struct
import subprocess
import sys
from pathlib import Path

import dagster as dg

from pipeline.store.warehouse import Warehouse
from tests.conftest import DEMO_END

ROOT = Path(__file__).resolve().parent.parent
START = DEMO_END - dt.timedelta(days=94)


def day(number: int) -> dt.date:
    return START + dt.timedelta(days=number - 1)


def read(home: Path, sql: str):
    with Warehouse(home).reader() as connection:  # the lake's tables are the reader's own views
        return connection.execute(sql).fetchall()


def test_every_day_has_a_candle_per_subject(demo_home):
    rows = read(
        demo_home,
        "SELECT subject, count(*), min(date), max(date), min(volume), "
        "sum(harness_errors) FROM candles GROUP BY ALL ORDER BY 1",
    )
    assert rows == [
        ("sim-claude-code", 95, START, DEMO_END, 108, 0),
        ("sim-codex", 95, START, DEMO_END, 108, 0),
    ]
    (bad,) = read(
        demo_home,
        "SELECT count(*) FROM candles WHERE NOT (low <= open AND open <= high "
        "AND low <= close AND close <= high AND ci_low <= rate AND rate <= ci_high)",
    )
    assert bad == (0,)


def test_changepoints_tell_the_demo_story(demo_home):
    rows = read(
        demo_home,
        "SELECT subject, date, before_rate, after_rate, p_value, version_change "
        "FROM changepoints ORDER BY subject, date",
    )
    claude = [r for r in rows if r[0] == "sim-claude-code"]
    assert [r for r in rows if r[0] == "sim-codex"] == []
    assert len(claude) == 2
    (_, rise, before, after, p, release), (_, drop, before2, after2, p2, release2) = claude
    assert abs((dt.date.fromisoformat(rise) - day(51)).days) <= 3
    assert after > before and p < 0.01 and release == "opus-4.6 -> opus-4.7"
    assert abs((dt.date.fromisoformat(drop) - day(89)).days) <= 3
    assert after2 < before2 and p2 < 0.01 and release2 == ""


def test_outcomes_keep_their_artifacts(demo_home):
    rows = read(
        demo_home,
        "SELECT outcome, count(*), any_value(artifact_dir) FROM evaluations "
        "WHERE outcome <> 'empty_patch' GROUP BY ALL",
    )
    outcomes = {outcome for outcome, _, _ in rows}
    assert {"resolved", "unresolved", "patch_failed"} <= outcomes
    for outcome, _, folder in rows:
        assert (Path(folder) / "verdict.json").exists(), outcome
    (controls,) = read(demo_home, "SELECT count(*) FILTER (WHERE NOT ok) FROM controls")
    assert controls == (0,)


def test_runs_are_real_dagster_runs(demo_home):
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) >= 2 * 95 + 3
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
        key = dg.AssetKey("patch_evaluations")
        assert len(instance.get_materialized_partitions(key)) == 190


def test_report_png_is_a_real_image(demo_home):
    png = demo_home / "report" / "sim-claude-code.png"
    header = png.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width >= 800 and height >= 300
    assert 20_000 < png.stat().st_size < 5_000_000
    html = (demo_home / "report" / "index.html").read_text()
    assert "<img src='sim-claude-code.png'" in html and "sim-codex" in html and "<svg" not in html
    assert "<script" not in html  # nothing fetched from a CDN: the charts are the files beside it
    exports = demo_home / "report" / "exports" / "outcomes"
    assert len(list(exports.glob("*.parquet"))) == 95 and not (exports.parent / "outcomes.csv").exists()


def test_materializing_a_partition_twice_leaves_the_same_rows(demo_home):
    partition = f"{DEMO_END}|sim-codex"
    command = [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "pipeline.definitions",
        "--select",
        "agent_attempts,patch_evaluations",
        "--partition",
        partition,
    ]
    env = dict(os.environ)
    sql = (
        "SELECT count(*), count(DISTINCT attempt_id), sum(resolved::INT) FROM evaluations "
        f"WHERE subject = 'sim-codex' AND date = '{DEMO_END}'"
    )
    before = read(demo_home, sql)
    for _ in range(2):
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert read(demo_home, sql) == before == [(108, 108, before[0][2])]


def test_verdicts_alarms_and_alerts_tell_the_same_story(demo_home):
    verdicts = dict(read(demo_home, "SELECT subject, verdict FROM verdicts"))
    assert verdicts["sim-claude-code"] == "degraded"
    assert verdicts["sim-codex"] in {"stable", "inconclusive"}
    alarms = read(demo_home, "SELECT date, direction FROM alarms WHERE subject = 'sim-claude-code'")
    assert any(
        direction == "down" and 0 <= (dt.date.fromisoformat(when) - day(89)).days <= 7
        for when, direction in alarms
    )
    assert read(demo_home, "SELECT count(*) FROM alarms WHERE subject = 'sim-codex'") == [(0,)]

    from pipeline.report.alerts import shift_alert, suspect_alerts
    from pipeline.store.warehouse import Warehouse

    with Warehouse(demo_home).connect(read_only=True) as connection:
        alarm = (
            connection.sql(
                "SELECT * FROM alarms WHERE subject = 'sim-claude-code' ORDER BY date DESC LIMIT 1"
            )
            .pl()
            .row(0, named=True)
        )
        verdict = connection.sql("SELECT * FROM verdicts WHERE subject = 'sim-claude-code'").pl()
        suspects = connection.sql("SELECT * FROM harness_suspects").pl().to_dicts()
    assert suspect_alerts(suspects, DEMO_END) == []  # the demo's harness never misbehaves
    # The alert a confirmed alarm sends names the day, the drop and the week's verdict.
    alert = shift_alert("sim-claude-code", alarm["date"], "down", alarm, verdict.row(0, named=True))
    assert alert.kind == "shift" and alert.date == alarm["date"]
    assert "dropped on" in alert.summary and "last 7 days degraded" in alert.summary
