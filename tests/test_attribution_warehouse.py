"""Attribution through the warehouse: a simulated world with a frozen and a latest lane of one
model (plus a second model of the vendor and another vendor's, stable), the simulated agents'
attempts in a real lake, and the detector over it as the changepoints asset runs it.

A CLI release (claude-code 2.1.300 -> 2.1.310, day 31) moves only the latest lane: its
changepoint is the agent harness, naming the release. A model change (opus-4.6 -> opus-4.7, day
51) moves both lanes: both changepoints are the model. A silent drop of anthropic's two models
(day 71) is the provider. On day 91 the gold/empty controls fail on 42% of the tasks (the
grader's doing, so the test writes it into the controls) and the latest lane jumps: the
evaluation harness. Other vendors' subjects stay flat. Grading is left out (the simulated
agent's own draw says resolved or not; grading is tested elsewhere).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from pipeline.config import load_config
from pipeline.config.lanes import lanes_of
from pipeline.stats.evidence import shift_attribution
from pipeline.store.rows import attempts_frame
from pipeline.tracker import Tracker

START, DAYS = dt.date(2026, 1, 1), 105
OLD, NEW = "claude-code 2.1.300", "claude-code 2.1.310"
BROKEN_DAY = 91  # the grader broke: the gold/empty controls fail on 15 of the 36 tasks
SCENARIO = f"""\
seed: 11
start_date: {START}
noise: 0.05
difficulty_levels: {{easy: -1.0, medium: 0.0, hard: 1.0}}
subjects:
  opus-latest:
    - {{day: 1, version: "{OLD} / opus-4.6", pass_rate: 0.55}}
    - {{day: 31, version: "{NEW} / opus-4.6", pass_rate: 0.30}}
    - {{day: 51, version: "{NEW} / opus-4.7", pass_rate: 0.55}}
    - {{day: 71, version: "{NEW} / opus-4.7", pass_rate: 0.35}}
    - {{day: {BROKEN_DAY}, version: "{NEW} / opus-4.7", pass_rate: 0.60}}
  opus-frozen:
    - {{day: 1, version: "{OLD} / opus-4.6", pass_rate: 0.55}}
    - {{day: 51, version: "{OLD} / opus-4.7", pass_rate: 0.80}}
    - {{day: 71, version: "{OLD} / opus-4.7", pass_rate: 0.60}}
  sonnet-latest:
    - {{day: 1, version: "{OLD} / sonnet-4.5", pass_rate: 0.45}}
    - {{day: 31, version: "{NEW} / sonnet-4.5", pass_rate: 0.45}}
    - {{day: 71, version: "{NEW} / sonnet-4.5", pass_rate: 0.25}}
  gpt-latest:
    - {{day: 1, version: "codex 0.17.0 / gpt-5", pass_rate: 0.50}}
  qwen-local:
    - {{day: 1, version: "bash-loop/1 / qwen3", pass_rate: 0.40}}
  gemini-cli:
    - {{day: 1, version: "gemini 0.9.0 / gemini-3", pass_rate: 0.50}}
"""
TRACKING = f"""\
trials: 3
sandbox: process
start_date: {START}
subjects:
  - {{name: opus-latest, adapter: simulated, scenario: scenario.yaml, model: opus,
     settings: {{cli: claude-code, cli_version: latest}}}}
  - {{name: opus-frozen, adapter: simulated, scenario: scenario.yaml, model: opus,
     settings: {{cli: claude-code, cli_version: 2.1.300}}}}
  - {{name: sonnet-latest, adapter: simulated, scenario: scenario.yaml, model: sonnet,
     settings: {{cli: claude-code}}}}
  - {{name: gpt-latest, adapter: simulated, scenario: scenario.yaml, model: gpt-5,
     settings: {{cli: codex, cli_version: latest}}}}
  - {{name: qwen-local, adapter: simulated, scenario: scenario.yaml, model: qwen3,
     settings: {{vendor: 127.0.0.1, cli: bash-loop}}}}
  - {{name: gemini-cli, adapter: simulated, scenario: scenario.yaml, model: gemini-3,
     settings: {{vendor: google, cli: gemini}}}}
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("lanes")
    (home / "scenario.yaml").write_text(SCENARIO)
    (home / "tracking.yaml").write_text(TRACKING)
    config = load_config(home / "tracking.yaml")
    tracker = Tracker(home, config)
    tasks = tracker.sample(START)
    for spec in config.subjects:
        agent = tracker.agent(spec.name)
        for offset in range(DAYS):
            day = START + dt.timedelta(days=offset)
            attempts = [agent.solve(task, day, trial) for task in tasks for trial in range(3)]
            frame = attempts_frame(attempts, "run", config.digest, config.sample_seed)
            tracker.lake.write_partition("attempts", frame, subject=spec.name, date=day)
            graded = frame.select(
                "attempt_id",
                "subject",
                "date",
                "trial",
                "instance_id",
                resolved=pl.Series([a.failure_mode == "solved" for a in attempts]),
            ).with_columns(
                outcome=pl.when("resolved").then(pl.lit("resolved")).otherwise(pl.lit("unresolved"))
            )
            path = tracker.lake.partition_path("evaluations", subject=spec.name, date=day)
            path.parent.mkdir(parents=True, exist_ok=True)
            graded.write_parquet(path)
    for offset in range(DAYS):
        day = START + dt.timedelta(days=offset)
        path = tracker.lake.partition_path("controls", date=day)
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = [t.instance_id for t in tasks]
        ok = [offset + 1 != BROKEN_DAY or j % 5 >= 2 for j in range(len(ids))]
        pl.DataFrame({"date": [day] * len(ids), "instance_id": ids, "ok": ok}).write_parquet(path)
    from pipeline.stats.warehouse import detect

    registry = {"claude-code": {str(START + dt.timedelta(days=30)): "2.1.310"}}
    with tracker.warehouse.writer() as connection:
        tables = detect(connection, lanes=lanes_of(config.subjects), registry=registry)
        for name, frame in tables.items():
            connection.register(f"new_{name}", frame)
            connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM new_{name}")
            connection.unregister(f"new_{name}")
    return tracker, tables


def day(number: int) -> dt.date:
    return START + dt.timedelta(days=number - 1)


def near(row: dict, number: int) -> bool:
    return abs((dt.date.fromisoformat(row["date"]) - day(number)).days) <= 3


def test_a_cli_release_that_moved_only_the_latest_lane_is_the_agent_harness(world):
    _, tables = world
    changes = tables["changepoints"].to_dicts()
    (release,) = [c for c in changes if c["subject"] == "opus-latest" and near(c, 31)]
    assert release["difference"] < 0 and release["release_kind"] == "cli"
    assert release["attribution"] == "agent harness", release
    assert f"CLI release {OLD} -> {NEW}" in release["attribution_reason"]
    assert "opus-frozen" in release["attribution_reason"]
    assert not [c for c in changes if c["subject"] == "opus-frozen" and near(c, 31)]


def test_a_model_change_that_moved_both_lanes_is_the_model(world):
    _, tables = world
    changes = tables["changepoints"].to_dicts()
    both = [c for c in changes if c["subject"].startswith("opus-") and near(c, 51)]
    assert sorted(c["subject"] for c in both) == ["opus-frozen", "opus-latest"], changes
    for change in both:
        assert change["difference"] > 0 and change["release_kind"] == "model"
        assert change["attribution"] == "model", change
        assert "model change opus-4.6 -> opus-4.7" in change["attribution_reason"]
    # two lanes of one model are no harness problem: the controls' day is the only suspect
    assert tables["harness_suspects"]["date"].to_list() == [str(day(BROKEN_DAY))]


def test_a_vendor_wide_move_is_the_provider(world):
    _, tables = world
    changes = tables["changepoints"].to_dicts()
    anthropic = [
        c for c in changes if c["subject"] in ("opus-latest", "opus-frozen", "sonnet-latest") and near(c, 71)
    ]
    assert sorted(c["subject"] for c in anthropic) == ["opus-frozen", "opus-latest", "sonnet-latest"], changes
    for change in anthropic:
        assert change["difference"] < 0 and change["release_kind"] == ""
        assert change["attribution"] == "provider", change
        assert "anthropic's models opus, sonnet moved down together" in change["attribution_reason"]
    assert not [c for c in changes if c["subject"] in ("gpt-latest", "qwen-local", "gemini-cli")]


def test_a_move_beside_failed_controls_is_the_evaluation_harness(world):
    _, tables = world
    changes = tables["changepoints"].to_dicts()
    (jump,) = [c for c in changes if c["subject"] == "opus-latest" and near(c, BROKEN_DAY)]
    assert jump["difference"] > 0 and jump["attribution"] == "evaluation harness", jump
    assert f"controls failed on 42% of tasks on {day(BROKEN_DAY)}" in jump["attribution_reason"]  # 15 of 36


def test_releases_keep_cli_releases_apart_from_model_changes(world):
    _, tables = world
    rows = tables["releases"].filter(pl.col("subject") == "opus-latest").sort("first_seen").to_dicts()
    assert [(r["kind"], r["old"], r["new"], r["first_seen"]) for r in rows] == [
        ("cli", OLD, NEW, str(day(31))),
        ("model", "opus-4.6", "opus-4.7", str(day(51))),
    ]
    versions = tables["cli_versions"]
    latest = versions.filter((pl.col("subject") == "opus-latest") & (pl.col("date") == str(day(31)))).row(
        0, named=True
    )
    assert latest == {
        "subject": "opus-latest",
        "date": str(day(31)),
        "cli": "claude-code",
        "lane": "latest",
        "version": "2.1.310",
        "registry_version": "2.1.310",
    }
    frozen = versions.filter(pl.col("subject") == "opus-frozen")
    assert set(frozen["version"]) == {"2.1.300"} and set(frozen["lane"]) == {"frozen"}
    assert frozen["registry_version"].null_count() == frozen.height  # a frozen lane asks no registry


def test_a_confirmed_shift_is_attributed_from_the_warehouse(world):
    tracker, tables = world
    alarms = tables["alarms"].filter(pl.col("subject") == "opus-latest").to_dicts()
    first, *_ = [
        a
        for a in alarms
        if a["direction"] == "down" and 0 <= (dt.date.fromisoformat(a["date"]) - day(31)).days <= 7
    ]
    lanes = lanes_of(tracker.config.subjects)
    with tracker.warehouse.connect(read_only=True) as connection:
        found = shift_attribution(connection, lanes, "opus-latest", first["date"], "down")
    assert found.label == "agent harness" and NEW in found.reason
