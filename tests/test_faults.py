"""The quick subset of the fault-injection suite (benchmarks/faults.py): kill -9 at named points
then a re-run, a reader beside a paused writer, a full disk, and bad inputs; every table compared
row by row with a clean seeded run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_faults_lose_nothing_hang_never_and_say_what_is_wrong(tmp_path):
    out = tmp_path / "faults.json"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CANDLEBENCH_HOME", "DAGSTER_HOME", "CANDLEBENCH_CONFIG")
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "faults.py"), "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert out.exists(), summary
    result = json.loads(out.read_text())
    assert result["faults_injected"] >= 10, summary
    # a tmpfs needs root: without it the full-disk fault is not reached, the rest must be
    unreached = [
        f
        for f in result["faults"]
        if f["outcome"] == "not reached" and not (f["kind"] == "disk" and os.geteuid() != 0)
    ]
    assert not unreached, unreached
    bad = [f for f in result["faults"] if f["outcome"] != "survived"]
    assert (result["rows_lost_or_wrong"], result["hangs"], result["unclear_errors"]) == (0, 0, 0), bad
    assert not bad, bad
    assert summary.startswith("faults injected "), summary


def test_a_full_disk_is_named_whoever_meets_it(tmp_path, monkeypatch, capsys):
    """Dagster's SQLite fails first on a full disk ("database or disk is full", or "disk I/O
    error" when the journal cannot grow): the CLI says disk full, where, and exits 1, no traceback."""
    import sqlite3

    import sqlalchemy.exc

    from pipeline import cli
    from pipeline.store import lake

    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))

    def full(_args):
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as err:
            raise sqlalchemy.exc.OperationalError("INSERT INTO runs", {}, err) from err

    monkeypatch.setattr(cli.history, "_backfill", full)
    assert cli.main(["backfill", "--from", "2026-11-01", "--to", "2026-11-02"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        len(err) == 1 and err[0].startswith("candlebench backfill: disk full: ") and str(tmp_path) in err[0]
    )

    io_error = sqlite3.OperationalError("disk I/O error")
    assert not lake.is_disk_full(io_error, tmp_path)  # plenty of room: a real I/O error stays one
    monkeypatch.setattr(lake, "free_bytes", lambda _where: 4096)
    assert lake.is_disk_full(io_error, tmp_path)


def test_a_yaml_error_is_one_line_naming_the_file_line_and_column(tmp_path):
    import pytest

    from pipeline.config import ConfigError, load_config

    config = tmp_path / "tracking.yaml"
    config.write_text("suite: demo\nsubjects: [\n  - {name: x\n")
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    message = str(raised.value)
    assert "\n" not in message and str(config) in message and "line " in message and "column " in message


def test_a_date_yaml_cannot_read_is_a_config_error_naming_the_file(tmp_path):
    import pytest

    from pipeline.config import ConfigError, load_config

    config = tmp_path / "tracking.yaml"
    config.write_text("suite: demo\nstart_date: 2026-13-01\n")
    with pytest.raises(ConfigError, match="start_date") as raised:
        load_config(config)
    assert str(config) in str(raised.value) and "month must be in 1..12" in str(raised.value)


def test_scenario_files_refuse_phases_out_of_order_a_text_seed_and_name_unknown_modes(tmp_path):
    import pytest

    from pipeline.agents.simulated import read_scenario

    path = tmp_path / "scenario.yaml"
    phases = "subjects:\n  s:\n    - {day: 1, version: a, pass_rate: 0.4}\n"
    for text, message in (
        (
            phases + "    - {day: 1, version: b, pass_rate: 0.5}\n",
            "must come after the previous phase's day 1",
        ),
        ("seed: lucky\n" + phases, "seed must be a whole number, got 'lucky'"),
        ("failure_modes: {exploded: 1}\n" + phases, "unknown: exploded"),
        ("start_date: 2026-13-40\n" + phases, "start_date"),
    ):
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_scenario(path, "s")
    path.write_text(phases + "    - {day: 9, version: b, pass_rate: 0.5}\n")
    assert len(read_scenario(path, "s")["subjects"]["s"]) == 2


def test_attempt_and_check_refuse_a_bad_date_or_a_missing_config_in_one_line(tmp_path, monkeypatch, capsys):
    from pipeline import cli

    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    attempt = [
        "attempt",
        "--subject",
        "sim-codex",
        "--task",
        "demo__calcexpr-001",
        "--out",
        str(tmp_path / "t"),
    ]
    for argv, named in (
        ([*attempt, "--date", "2026-02-30"], "--date '2026-02-30' is not a date"),
        ([*attempt, "--config", str(tmp_path / "nowhere.yaml")], "nowhere.yaml: no such file"),
        (["check", "--config", str(tmp_path / "nowhere.yaml")], "nowhere.yaml: no such file"),
    ):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0], err


def test_detect_refuses_a_counts_file_without_rows_and_windows_of_no_days(tmp_path, capsys):
    import pytest

    from pipeline import cli

    counts = tmp_path / "counts.csv"
    counts.write_text("subject,date,task,trial,resolved\n")
    assert cli.main(["detect", str(counts)]) == 2
    assert f"{counts}: no rows" in capsys.readouterr().err
    counts.write_text("subject,date,task,trial,resolved\ns,2026-11-01,t,0,1\n")
    for flag in ("--recent", "--baseline"):
        with pytest.raises(SystemExit) as raised:
            cli.main(["detect", str(counts), flag, "0"])
        assert raised.value.code == 2
        assert (
            f"argument {flag}: '0' is not a number of days"
            in capsys.readouterr().err.strip().splitlines()[-1]
        )


def test_a_broken_rows_file_named_by_the_config_is_one_line_not_a_traceback(tmp_path, monkeypatch, capsys):
    import datetime as dt

    from pipeline import cli
    from pipeline.config import pin_demo_config

    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("CANDLEBENCH_CONFIG", raising=False)
    today = dt.date.today()
    config = pin_demo_config(today, tmp_path)
    (tmp_path / "rows.jsonl").write_text("{oops\n")
    config.write_text(config.read_text().replace("suite: demo", f"suite: {tmp_path / 'rows.jsonl'}", 1))
    assert cli.main(["backfill", "--from", today.isoformat(), "--to", today.isoformat()]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1].startswith("candlebench backfill: ")
        and f"{tmp_path / 'rows.jsonl'}:1: invalid JSON" in err[-1]
    )
