"""The tracker runs by itself for three days: the Dagster daemon alone, with the days driven by
the test's clock (tests/clock/sitecustomize.py shifts every Dagster process to 06:00 of the
next day) instead of waited for.

An 18-day history is backfilled first. Then `sim-drop1`, `-2` and `-3` fall from 70% to 0% on
the daemon's first, second and third day, `sim-steady` holds 50%, and `replay-c` replays
predictions files, whose day-2 file never arrives. Each daemon day must produce, with nobody
touching it: the day's sample and controls, every subject's attempts and grading, the day's
candles with that day's own numbers, changepoints and the report, the alarm's extra trials, its
confirmation and the day's alert. Day 2's failed subject leaves the others' aggregates intact
and shows as missing. On day 3 sim-steady's version changes after the schedule ran: the version
sensor re-runs it once; then a re-grade queued with `candlebench backfill --queue` runs as one
asset backfill, and the window's candles follow in one run. Restarting the daemon on day 3
requests nothing new.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
TODAY = dt.date.today()
HISTORY = 18  # days of backfilled history, ending today: the detector's burn-in and more
DAYS = [TODAY + dt.timedelta(days=k) for k in (1, 2, 3)]
START = TODAY - dt.timedelta(days=HISTORY - 1)
DROPS = {f"sim-drop{k}": HISTORY + k for k in (1, 2, 3)}  # subject -> scenario day of its fall
WAIT_S = 900  # an upper bound on a loaded 2-core machine; every wait ends on its condition


class Hook(http.server.BaseHTTPRequestHandler):
    """The alert webhook: keeps every JSON body it is sent."""

    received: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server's name
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def scenario(steady_versions: list[tuple[int, str]]) -> dict:
    return {
        "seed": 11,
        "start_date": START.isoformat(),
        "noise": 0.05,
        "difficulty_levels": {"easy": -1.0, "medium": 0.0, "hard": 1.0},
        "failure_modes": {"empty": 0.5, "wrong_fix": 0.5},
        "subjects": {
            **{
                name: [
                    {"day": 1, "version": "drop-v1", "pass_rate": 0.7},
                    {"day": fall, "version": "drop-v1", "pass_rate": 0.0},
                ]
                for name, fall in DROPS.items()
            },
            "sim-steady": [{"day": day, "version": v, "pass_rate": 0.5} for day, v in steady_versions],
        },
    }


def write_home(home: Path, hook_url: str, tasks) -> None:
    (home / "scenario.yaml").write_text(yaml.safe_dump(scenario([(1, "steady-v1")])))
    predictions = home / "predictions"
    predictions.mkdir()
    lines = "".join(
        json.dumps({"instance_id": t.instance_id, "model_name_or_path": "replay-v1", "model_patch": t.patch})
        + "\n"
        for t in tasks
    )
    for offset in range(HISTORY + 3):
        day = START + dt.timedelta(days=offset)
        if day != DAYS[1]:  # day 2's export never arrives
            (predictions / f"{day}.jsonl").write_text(lines)
    (home / "tracking.yaml").write_text(
        yaml.safe_dump(
            {
                "suite": "demo",
                "start_date": START.isoformat(),
                "history_days": HISTORY,
                "sample": {"design": "panel", "size": 8, "seed": 3},
                "trials": 2,
                "confirm_trials": 2,
                "sandbox": "process",
                "allow_untrusted_patches_without_sandbox": True,
                "grading_workers": 2,
                "schedule": {"cron": "0 6 * * *", "timezone": "UTC"},
                "alerts": [{"url": hook_url, "format": "json"}],
                "subjects": [
                    *(
                        {
                            "name": name,
                            "adapter": "simulated",
                            "label": "SIMULATED",
                            "scenario": "scenario.yaml",
                        }
                        for name in (*DROPS, "sim-steady")
                    ),
                    {
                        "name": "replay-c",
                        "adapter": "replay",
                        "trials": 1,
                        "settings": {"predictions": "predictions"},
                    },
                ],
            }
        )
    )


def at(env: dict, when: dt.datetime) -> dict:
    """The environment of a process whose clock reads `when` now (see tests/clock)."""
    path = os.pathsep.join(filter(None, [str(ROOT / "tests" / "clock"), env.get("PYTHONPATH")]))
    return {
        **env,
        "CANDLEBENCH_TEST_CLOCK_OFFSET_S": f"{when.timestamp() - time.time():.3f}",
        "PYTHONPATH": path,
    }


class Daemon:
    """`dagster-daemon run` on the home, living at a given instant of the test's clock."""

    def __init__(self, env: dict, log: Path) -> None:
        self.env, self.log, self.process = env, log, None

    def start(self, when: dt.datetime) -> None:
        env = at(self.env, when)
        with self.log.open("a") as log:
            log.write(f"\n=== daemon at {when.isoformat()} ===\n")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dagster._daemon", "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=self.env["DAGSTER_HOME"],
            env=env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process is None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


def wait_for(predicate, what: str, daemon: Daemon, log: Path):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if daemon.process is not None and daemon.process.poll() is not None:
            raise AssertionError(f"the daemon exited while waiting for {what}:\n{log.read_text()[-3000:]}")
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}; daemon log tail:\n{log.read_text()[-3000:]}")


def materializations(instance, key: str, partition: str | None = None) -> list:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(key), asset_partitions=[partition] if partition else None
        ),
        limit=50,
    ).records
    return records


def metadata(record) -> dict:
    return {k: v.value for k, v in record.asset_materialization.metadata.items()}


def lake_rate(home: Path, subject: str, day: dt.date) -> float:
    frame = pl.read_parquet(home / f"lake/evaluations/subject={subject}/date={day}/part.parquet")
    graded = frame.filter(~pl.col("outcome").is_in(["harness_error", "skipped"]))
    return graded["resolved"].mean()


def settled(instance) -> bool:
    """No run is queued or running."""
    from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

    return not instance.get_runs(filters=dg.RunsFilter(statuses=NOT_FINISHED_STATUSES), limit=1)


def test_three_days_run_by_the_daemon_alone(tmp_path, suite):
    if not (ROOT / ".venv").exists() and os.environ.get("CI") != "true":
        pytest.skip("needs the project installed (.venv) to start the daemon")
    home, log = tmp_path / "home", tmp_path / "daemon.log"
    (home / "dagster").mkdir(parents=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received = []
    write_home(home, f"http://127.0.0.1:{server.server_port}/hook", suite.tasks())
    env = {k: v for k, v in os.environ.items() if k != "CANDLEBENCH_CONFIG"}
    env |= {
        "CANDLEBENCH_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "CANDLEBENCH_SENSOR_INTERVAL_S": "3",
        "PYTHONWARNINGS": "ignore",
    }
    backfill = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "backfill", "--from", str(START), "--to", str(TODAY)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-3000:]
    daemon = Daemon(env, log)
    os.environ["DAGSTER_HOME"], saved = str(home / "dagster"), os.environ.get("DAGSTER_HOME")
    try:
        with dg.DagsterInstance.get() as instance:
            # The daemon first sees the schedules today (a schedule never runs ticks older than its
            # first sight); each later start, at 06:00:05 of the next day, catches up that tick.
            daemon.start(dt.datetime.now(dt.UTC))
            wait_for(
                lambda: {"daily_controls", "daily_evaluations"} <= _scheduled(instance),
                "the daemon's first look at the schedules",
                daemon,
                log,
            )
            daemon.stop()
            for index, day in enumerate(DAYS):
                daemon.start(dt.datetime.combine(day, dt.time(6, 0, 5), dt.UTC))
                check_day(instance, home, day, index, daemon, log)
                if index == 2:
                    change_version_after_the_schedule(instance, home, day, daemon, log)
                    queue_a_regrade(instance, env, daemon, log)
                daemon.stop()
            assert_repeated_ticks_request_nothing(instance, daemon, log)
    finally:
        daemon.stop()
        server.shutdown()
        if saved is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved


def check_day(instance, home: Path, day: dt.date, index: int, daemon: Daemon, log: Path) -> None:
    key, dropped = day.isoformat(), f"sim-drop{index + 1}"
    decision_path = home / f"lake/decisions/subject={dropped}/date={key}/part.parquet"

    def candles_of_the_day():
        found = materializations(instance, "candles", key)
        return found and "pass_rate/sim-steady" in metadata(found[0]) and found

    wait_for(candles_of_the_day, f"the candles of {key}", daemon, log)

    def caught_up() -> bool:  # the day's last candles (after its extra trials) and the report after them
        candles, changepoints = (
            materializations(instance, "candles", key),
            materializations(instance, "changepoints"),
        )
        report = materializations(instance, "tracker_report")
        return bool(candles and changepoints and report) and (
            report[0].timestamp > changepoints[0].timestamp > candles[0].timestamp
        )

    wait_for(
        lambda: decision_path.exists() and settled(instance) and caught_up(),
        f"the confirmation decision on {dropped}'s {key} alarm, the aggregates after it, and quiet",
        daemon,
        log,
    )
    assert pl.read_parquet(decision_path)["decision"].to_list() == ["confirmed"]
    # The day's candles carry that day's own numbers, recomputed here from the lake.
    day_candles = metadata(materializations(instance, "candles", key)[0])
    for name in (*DROPS, "sim-steady"):
        assert day_candles[f"pass_rate/{name}"] == pytest.approx(lake_rate(home, name, day)), name
    assert day_candles[f"pass_rate/{dropped}"] == 0.0
    # The alarm's extra trials were graded: 2 ordinary + the onboarding's (a young subject) + 2 fresh.
    from pipeline.stats.design import DEFAULT_DESIGN

    attempts = pl.read_parquet(home / f"lake/attempts/subject={dropped}/date={key}/part.parquet")
    expected = 2 + DEFAULT_DESIGN.onboarding_trials + 2
    assert sorted(attempts["trial"].unique().to_list()) == list(range(expected))
    # Changepoints and the report ran after that day's last candles, and speak of that day.
    candles_at = materializations(instance, "candles", key)[0].timestamp
    changepoints = materializations(instance, "changepoints")[0]
    report = materializations(instance, "tracker_report")[0]
    assert changepoints.timestamp > candles_at and report.timestamp > changepoints.timestamp
    assert metadata(changepoints)["latest_day"] == key and metadata(report)["latest_day"] == key
    page = (home / "report" / "index.html").read_text()
    assert f"<td>{key}</td><td>drop</td>" in page  # the alarm table lists the day's alarm
    # The day's alert reached the webhook, once, and speaks of that day's drop.
    shifts = [
        a for a in Hook.received if a["kind"] == "shift" and a["date"] == key and a["subject"] == dropped
    ]
    assert len(shifts) == 1, Hook.received  # an earlier drop may alarm again: only this one matters here
    assert f"{dropped} dropped on {key}" in shifts[0]["summary"]
    assert not {a["subject"] for a in Hook.received if a["kind"] == "shift"} & {"sim-steady", "replay-c"}
    failed = {
        r.tags.get("dagster/partition")
        for r in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    }
    if index == 1:  # day 2: replay-c's predictions never arrived
        assert f"{key}|replay-c" in failed
        assert day_candles["missing_subjects"] == "replay-c"
        assert f"Missing on {key}</b>: replay-c" in page
    else:
        assert not {p for p in failed if p and p.startswith(key)}, failed
        assert day_candles["missing_subjects"] == "none"
        assert lake_rate(home, "replay-c", day) == 1.0  # gold patches, graded in the sandbox


def change_version_after_the_schedule(instance, home: Path, day: dt.date, daemon: Daemon, log: Path) -> None:
    """A release lands after the day's scheduled run: the version sensor re-runs the day, once."""
    number = (day - START).days + 1
    (home / "scenario.yaml").write_text(yaml.safe_dump(scenario([(1, "steady-v1"), (number, "steady-v2")])))
    path = home / f"lake/attempts/subject=sim-steady/date={day}/part.parquet"

    def rerun_done():
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"candlebench/trigger": "version"}))
        return runs and all(r.is_finished for r in runs) and settled(instance) and runs

    (rerun,) = wait_for(rerun_done, "the version sensor's re-run", daemon, log)
    assert rerun.status == dg.DagsterRunStatus.SUCCESS
    assert pl.read_parquet(path)["agent_version"].unique().to_list() == ["steady-v2"]
    ended = instance.get_run_record_by_id(rerun.run_id).end_time
    wait_for(
        lambda: (
            materializations(instance, "candles", day.isoformat())[0].timestamp > ended and settled(instance)
        ),
        "candles after the re-run",
        daemon,
        log,
    )


def queue_a_regrade(instance, env: dict, daemon: Daemon, log: Path) -> None:
    """`candlebench backfill --queue`: one asset backfill the daemon runs (a run per partition);
    then the window's candles in one run, however the backfill's runs were spread in time."""
    from dagster._core.execution.backfill import BulkActionStatus

    def candles_runs() -> set[str]:
        return {r.run_id for r in instance.get_runs(filters=dg.RunsFilter(job_name="candles_job"))}

    before = candles_runs()
    queued = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "backfill",
            "--from",
            str(DAYS[0]),
            "--to",
            str(DAYS[2]),
            "--subject",
            "sim-steady",
            "--regrade",
            "--queue",
        ],
        cwd=ROOT,
        env=at(env, dt.datetime.combine(DAYS[2], dt.time(8), dt.UTC)),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert queued.returncode == 0, queued.stderr[-3000:]
    backfill_id = queued.stdout.split("queued backfill ", 1)[1].split(":", 1)[0]

    def finished():
        backfill = instance.get_backfill(backfill_id)
        return backfill.status != BulkActionStatus.REQUESTED and settled(instance) and backfill

    backfill = wait_for(finished, "the queued backfill", daemon, log)
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
    runs = instance.get_runs(filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert len(runs) == 3, describe(instance, runs)  # a regrade per partition, no candles in it
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), describe(instance, runs)
    graded = max(instance.get_run_record_by_id(r.run_id).end_time for r in runs)

    def aggregated():  # the sensor waited for the whole backfill: the window's candles are one run,
        # then changepoints and the report follow them
        newest = [materializations(instance, "candles", day.isoformat())[0].timestamp for day in DAYS]
        reported = materializations(instance, "changepoints")
        return (
            settled(instance)
            and min(newest) > graded
            and bool(reported)
            and reported[0].timestamp > max(newest)
        )

    wait_for(aggregated, "the window's candles and report after the backfill", daemon, log)
    new = [instance.get_run_by_id(run_id) for run_id in candles_runs() - before]
    assert len(new) == 1, describe(instance, new)  # three days of candles, one run


def assert_repeated_ticks_request_nothing(instance, daemon: Daemon, log: Path) -> None:
    runs_before = len(instance.get_runs())
    ticks = {
        name: _tick_count(instance, name)
        for name in ("aggregation_sensor", "confirmation_sensor", "version_sensor")
    }
    last = dt.datetime.combine(DAYS[2], dt.time(9), dt.UTC)
    daemon.start(last)
    wait_for(
        lambda: all(_tick_count(instance, n) >= c + 2 for n, c in ticks.items()),
        "two more ticks of every sensor",
        daemon,
        log,
    )
    daemon.stop()
    assert len(instance.get_runs()) == runs_before
    keys = Counter(
        r.tags["dagster/run_key"]
        for r in instance.get_runs()
        if "dagster/run_key" in r.tags and "dagster/retry_number" not in r.tags
    )
    assert keys and max(keys.values()) == 1, keys


def _scheduled(instance) -> set[str]:
    """Schedules the daemon has taken up (it records when it first saw each)."""
    return {
        state.name
        for state in instance.all_instigator_state()
        if state.instigator_type.value == "SCHEDULE" and state.instigator_data.start_timestamp
    }


def describe(instance, runs) -> str:
    """Each run's job, partition, status and retry, and why a failed one failed: what a failing
    assertion on runs needs to say."""
    lines = []
    for run in runs:
        why = ""
        if run.status == dg.DagsterRunStatus.FAILURE:
            failures = [
                e for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.is_failure
            ]
            why = failures[0].dagster_event.message if failures else "no failure event"
        lines.append(
            f"{run.run_id[:8]} {run.status.value} {sorted(run.asset_selection or [])} "
            f"partition={run.tags.get('dagster/partition')} retry={run.tags.get('dagster/retry_number')} "
            f"{why[:300]}"
        )
    return "\n".join(lines)


def _tick_count(instance, name: str) -> int:
    for state in instance.all_instigator_state():
        if state.name == name:
            return len(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1000))
    return 0
