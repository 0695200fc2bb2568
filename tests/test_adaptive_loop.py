"""The daily loop's statistics wired into Dagster: a warning buys the next day extra trials, an
alarm's fresh trials are judged by `stats.confirmation`'s calibrated rule (confirmed, cleared, or
held and decided by the next day), and the decisions go back into the detector.

A home holds one subject's real lake rows (40 days of 20 tasks x 3 trials, drawn from fixed
per-task rates); the detector runs over the warehouse as the changepoints asset runs it; the
sensor, the schedule and the decision job run on a real instance.
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import numpy as np
import polars as pl
import pytest

from pipeline.orchestration.resources import TrackerResource
from pipeline.stats import confirmation
from pipeline.stats.design import DEFAULT_DESIGN
from pipeline.store.warehouse import Warehouse

SUBJECT, TASKS, START = "sim-codex", 20, dt.date(2026, 10, 1)


class LoopWorld:
    """One subject's graded trials in a real lake, the detector over them, and the loop's ticks."""

    def __init__(self, tmp_path, monkeypatch, days: int = 40, seed: int = 7) -> None:
        monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
        self.warehouse = Warehouse(tmp_path)
        self.lake = self.warehouse.lake
        self.rng = np.random.default_rng(seed)
        self.rates = self.rng.uniform(0.3, 0.8, TASKS)
        self.tasks = [f"task-{j:02d}" for j in range(TASKS)]
        for index in range(days):
            self.add_trials(self.day(index), range(3))
        self.cursor = None

    @staticmethod
    def day(index: int) -> str:
        return (START + dt.timedelta(days=index)).isoformat()

    def add_trials(self, day: str, trials: range, shift: float = 0.0) -> None:
        """More trials of `day` at the per-task rates moved by `shift`, attempted and graded."""
        rows = [
            {
                "subject": SUBJECT,
                "date": dt.date.fromisoformat(day),
                "trial": t,
                "instance_id": task,
                "attempt_id": f"{SUBJECT}:{day}:{t}:{task}",
                "agent_version": "v1",
                "resolved": bool(self.rng.random() < np.clip(rate + shift, 0, 1)),
            }
            for t in trials
            for task, rate in zip(self.tasks, self.rates, strict=True)
        ]
        frame = pl.DataFrame(rows).with_columns(
            outcome=pl.when("resolved").then(pl.lit("resolved")).otherwise(pl.lit("unresolved"))
        )
        for table in ("attempts", "evaluations"):
            path = self.lake.partition_path(table, subject=SUBJECT, date=day)
            path.parent.mkdir(parents=True, exist_ok=True)
            kept = pl.read_parquet(path) if path.exists() else None
            (frame if kept is None else pl.concat([kept, frame])).write_parquet(path)
        controls = self.lake.partition_path("controls", date=day)
        controls.parent.mkdir(parents=True, exist_ok=True)
        pl.DataFrame(
            {"date": [dt.date.fromisoformat(day)] * TASKS, "instance_id": self.tasks, "ok": [True] * TASKS}
        ).write_parquet(controls)

    def graded(self, instance, day: str) -> None:
        key = dg.MultiPartitionKey({"date": day, "subject": SUBJECT})
        instance.report_runless_asset_event(dg.AssetMaterialization("patch_evaluations", partition=key))

    def detect(self, instance) -> dict[str, pl.DataFrame]:
        """What the candles and changepoints assets leave in the warehouse."""
        from pipeline.stats.warehouse import detect

        with self.warehouse.connect() as connection:
            tables = detect(connection)
            tables["candles"] = connection.sql("SELECT DISTINCT subject, date FROM evaluations").pl()
            for name, frame in tables.items():
                connection.register(f"new_{name}", frame)
                connection.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM new_{name}")
                connection.unregister(f"new_{name}")
        instance.report_runless_asset_event(dg.AssetMaterialization("changepoints"))
        return tables

    def tick(self, instance) -> dg.SensorResult:
        from sensors.confirmation import confirmation_sensor

        context = dg.build_sensor_context(
            instance=instance, cursor=self.cursor, resources={"tracker": TrackerResource()}
        )
        result = confirmation_sensor(context)
        self.cursor = result.cursor
        return result

    def decide(self, instance, request: dg.RunRequest) -> dict:
        """Run the requested decision as the daemon would, and read what it wrote."""
        from pipeline.definitions import defs
        from pipeline.orchestration.history import QUIET

        assert request.job_name == "decision_job"
        instance.add_dynamic_partitions("subject", [SUBJECT])
        defs.resolve_job_def("decision_job").execute_in_process(
            instance=instance, partition_key=request.partition_key, tags=request.tags, run_config=QUIET
        )
        day = request.partition_key.keys_by_dimension["date"]
        return self.lake.read_partition("decisions", subject=SUBJECT, date=day).row(0, named=True)

    def alarm_on_last_day(self, instance, shift: float) -> tuple[str, dg.RunRequest]:
        """Day 40 at `shift`: the detector alarms, the sensor asks for fresh trials."""
        day = self.day(40)
        self.add_trials(day, range(3), shift)
        self.graded(instance, day)
        alarms = self.detect(instance)["alarms"]
        assert alarms.filter(pl.col("date") == day)["direction"].to_list() == ["down"]
        (request,) = self.tick(instance).run_requests
        assert request.run_key == f"confirm:{SUBJECT}|{day}" and request.job_name == "evaluation_job"
        assert request.tags["candlebench/extra_trials"] == str(confirmation.RULE.trials)
        assert self.tick(instance).run_requests == []  # once per subject and day
        return day, request

    def fresh_trials(self, instance, day: str, shift: float) -> dg.RunRequest:
        """The alarm's fresh trials graded, the detector re-run: the sensor asks for the decision."""
        self.add_trials(day, range(3, 3 + confirmation.RULE.trials), shift)
        self.graded(instance, day)
        assert self.tick(instance).run_requests == []  # the detector has not run since
        self.detect(instance)
        (request,) = self.tick(instance).run_requests
        assert request.run_key == f"decide:{SUBJECT}|{day}"
        assert request.tags["candlebench/fresh_from"] == "3"
        return request


def expected_decision(world: LoopWorld, day: str) -> tuple[str, float]:
    """The rule applied by hand to the lake's arrays: what the asset must have decided."""
    frame = pl.read_parquet(world.lake.partition_path("evaluations", subject=SUBJECT, date=day))
    days = [world.day(i) for i in range(41)]
    s, m = np.zeros((41, TASKS), int), np.zeros((41, TASKS), int)
    fs, fm = np.zeros(TASKS, int), np.zeros(TASKS, int)
    for t, d in enumerate(days):
        rows = pl.read_parquet(world.lake.partition_path("evaluations", subject=SUBJECT, date=d))
        for row in rows.iter_rows(named=True):
            j = world.tasks.index(row["instance_id"])
            if d == day and row["trial"] >= 3:
                fs[j] += row["resolved"]
                fm[j] += 1
            else:
                s[t, j] += row["resolved"]
                m[t, j] += 1
    del frame
    z, _ = confirmation.fresh_evidence(s, m, 40, fs, fm, DEFAULT_DESIGN)
    return confirmation.decision(-1, z, True, confirmation.RULE), z


@pytest.mark.parametrize(("fresh_shift", "expected"), [(-0.4, "confirmed"), (0.1, "cleared")])
def test_alarm_decisions_applies_the_calibrated_rule(tmp_path, monkeypatch, fresh_shift, expected):
    world = LoopWorld(tmp_path, monkeypatch)
    with dg.instance_for_test() as instance:
        day, _ = world.alarm_on_last_day(instance, shift=-0.4)
        decided = world.decide(instance, world.fresh_trials(instance, day, fresh_shift))
        by_hand, z = expected_decision(world, day)
        assert decided["decision"] == by_hand == expected
        assert decided["evidence_z"] == pytest.approx(z)
        assert decided["alarm_date"] == day and decided["extra_trials"] == confirmation.RULE.trials
        # the one subject of this world moved alone: a confirmed shift says so, a cleared one nothing
        assert decided["attribution"] == ("subject" if expected == "confirmed" else None)
        if expected == "confirmed":
            assert decided["attribution_reason"].startswith("no other subject moved down")
        assert world.tick(instance).run_requests == []  # decided once
        (record,) = instance.fetch_materializations(dg.AssetKey("alarm_decisions"), limit=1).records
        assert record.asset_materialization.metadata["decision"].value == expected
        if expected == "cleared":  # fed back: the cleared alarm resets the sums, the baseline kept
            monitor = world.detect(instance)["monitor"].filter(pl.col("date") == day).row(0, named=True)
            assert monitor["statistic_after"] == 0.0 and monitor["extra_trials"] == 0


def test_a_held_alarm_takes_the_warning_trials_and_is_decided_by_the_next_day(tmp_path, monkeypatch):
    from sensors.schedules import daily_evaluations

    world = LoopWorld(tmp_path, monkeypatch)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", [SUBJECT])
        day, _ = world.alarm_on_last_day(instance, shift=-0.4)
        # fresh trials a little below the baseline: pointing the alarm's way, but not by 2.5
        decided = world.decide(instance, world.fresh_trials(instance, day, -0.03))
        assert decided["decision"] == "held", decided
        assert 0 <= -decided["evidence_z"] < confirmation.RULE.threshold
        world.detect(instance)  # the held decision is fed back: the monitor warns for tomorrow
        monitor = world.warehouse.query(f"SELECT * FROM monitor WHERE date = '{day}'").row(0, named=True)
        assert monitor["warning"] and monitor["extra_trials"] == DEFAULT_DESIGN.warning_trials
        # The next day's schedule tick takes the warning's extra trials for this subject only.
        when = dt.datetime.combine(dt.date.fromisoformat(world.day(41)), dt.time(6), dt.UTC)
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, resources={"tracker": TrackerResource()}
        )
        requests = {r.partition_key.keys_by_dimension["subject"]: r for r in daily_evaluations(context)}
        assert requests[SUBJECT].tags["candlebench/warning_trials"] == str(DEFAULT_DESIGN.warning_trials)
        assert "held" in requests[SUBJECT].tags["candlebench/warning_reason"]
        # That day runs 3 + 9 trials at the dropped rate; its own z decides the held alarm.
        nxt = world.day(41)
        world.add_trials(nxt, range(3 + DEFAULT_DESIGN.warning_trials), -0.4)
        world.graded(instance, nxt)
        assert world.tick(instance).run_requests == []  # graded, not yet detected
        world.detect(instance)
        (request,) = world.tick(instance).run_requests  # no fresh trials for the next day: a decision
        assert request.run_key == f"decide-next:{SUBJECT}|{day}"
        assert request.tags["candlebench/held_alarm"] == day
        final = world.decide(instance, request)
        assert final["decision"] == "confirmed" and final["alarm_date"] == day
        assert -final["evidence_z"] >= confirmation.RULE.next_threshold
        assert world.tick(instance).run_requests == []
        state = json.loads(world.cursor)
        assert f"{SUBJECT}|{nxt}" not in state  # the next day's own alarm bought no fresh trials


def _schedule_tags(tmp_path, monkeypatch, rows: list[tuple[str, str, int]] | None) -> dict[str, dict]:
    """The daily schedule's tags per subject on 2026-11-27 over a monitor of `rows` (None: no
    warehouse at all)."""
    import duckdb

    from sensors.schedules import daily_evaluations

    tmp_path.mkdir(exist_ok=True)
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    if rows is not None:
        with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
            connection.execute("CREATE TABLE monitor (subject VARCHAR, date VARCHAR, extra_trials INTEGER)")
            connection.executemany("INSERT INTO monitor VALUES (?, ?, ?)", rows)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["sim-claude-code", "sim-codex"])
        when = dt.datetime(2026, 11, 27, 6, tzinfo=dt.UTC)
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=when, resources={"tracker": TrackerResource()}
        )
        return {r.partition_key.keys_by_dimension["subject"]: r.tags for r in daily_evaluations(context)}


def _history(subject: str, days: int, last_extra: int) -> list[tuple[str, str, int]]:
    """`days` monitor rows ending 2026-11-26 (its `extra_trials` last_extra), and today's."""
    end = dt.date(2026, 11, 26)
    rows = [(subject, str(end - dt.timedelta(days=n)), last_extra if n == 0 else 9) for n in range(days)]
    return rows + [(subject, "2026-11-27", 0)]


def test_the_schedule_takes_the_monitors_extra_trials(tmp_path, monkeypatch):
    """The latest monitor row before the day decides: a warning buys extra trials, none buys none."""
    days = DEFAULT_DESIGN.onboarding_days  # past onboarding
    tags = _schedule_tags(
        tmp_path, monkeypatch, _history("sim-codex", days, 9) + _history("sim-claude-code", days, 0)
    )
    assert tags["sim-codex"]["candlebench/warning_trials"] == "9"  # 11-26's row, not today's
    assert "warning line" in tags["sim-codex"]["candlebench/warning_reason"]
    assert "candlebench/warning_trials" not in tags["sim-claude-code"]


def test_a_new_subject_takes_the_onboarding_trials(tmp_path, monkeypatch):
    """Fewer days of history than `onboarding_days`: the onboarding trials, added to a warning's."""
    extra, days = DEFAULT_DESIGN.onboarding_trials, DEFAULT_DESIGN.onboarding_days
    assert extra > 0 and days > 0
    tags = _schedule_tags(tmp_path / "young", monkeypatch, _history("sim-codex", days - 1, 9))
    assert tags["sim-codex"]["candlebench/warning_trials"] == str(9 + extra)
    reason = tags["sim-codex"]["candlebench/warning_reason"]
    assert "warning line" in reason and f"onboarding: {days - 1} of its first {days} days" in reason
    assert tags["sim-claude-code"]["candlebench/warning_trials"] == str(extra)  # no row: day one
    fresh = _schedule_tags(tmp_path / "new", monkeypatch, None)  # no warehouse yet
    assert {s: t["candlebench/warning_trials"] for s, t in fresh.items()} == {
        "sim-claude-code": str(extra),
        "sim-codex": str(extra),
    }


def test_a_requested_day_is_decided_after_a_newer_day_arrives(tmp_path, monkeypatch):
    world = LoopWorld(tmp_path, monkeypatch)
    with dg.instance_for_test() as instance:
        day, _ = world.alarm_on_last_day(instance, shift=-0.4)
        # The next day is graded and detected before the alarm's fresh trials are.
        nxt = world.day(41)
        world.add_trials(nxt, range(3), -0.4)
        world.graded(instance, nxt)
        world.detect(instance)
        assert world.tick(instance).run_requests == []  # the earlier alarm is not decided yet
        request = world.fresh_trials(instance, day, -0.4)
        assert world.decide(instance, request)["decision"] == "confirmed"
        assert f"{SUBJECT}|{nxt}" not in json.loads(world.cursor)


def test_the_report_shows_a_held_alarms_final_decision():
    from pipeline.report.tables import final_decisions

    decisions = pl.DataFrame(
        {
            "subject": ["a", "a", "b"],
            "date": ["2026-11-20", "2026-11-21", "2026-11-20"],
            "decision": ["held", "confirmed", "cleared"],
            "alarm_date": ["2026-11-20", "2026-11-20", None],
            "decided_at": [
                dt.datetime(2026, 11, 20, 9),
                dt.datetime(2026, 11, 21, 9),
                dt.datetime(2026, 11, 20, 9),
            ],
        }
    )
    assert final_decisions(decisions) == {
        ("a", "2026-11-20"): "confirmed on 2026-11-21",
        ("b", "2026-11-20"): "cleared",
    }
    assert final_decisions(decisions.drop("alarm_date", "decided_at").head(1)) == {
        ("a", "2026-11-20"): "held"
    }
