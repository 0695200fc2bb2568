import pytest

from pipeline.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "tracking.yaml"
    path.write_text(text)
    return path


def test_default_config_loads():
    config = load_config()
    assert [s.name for s in config.subjects] == ["sim-claude-code", "sim-codex"]
    assert config.trials == 3 and config.sandbox in {"auto", "docker", "process"}


@pytest.mark.parametrize(
    "subject, message",
    [
        ("- {name: a, adapter: nope}", "subject a: field 'adapter' must be one of"),
        ("- {adapter: simulated}", "subject #1: field 'name'"),
        ("- {name: a, adapter: simulated, scenario: missing.yaml}", "subject a: field 'scenario'"),
        ("- {name: a, adapter: simulated}", "subject a: missing field 'scenario'"),
    ],
)
def test_invalid_subject_names_subject_and_field(tmp_path, subject, message):
    path = write(tmp_path, f"trials: 3\nsubjects:\n  {subject}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, "trials: three\nsubjects: []\n")
    with pytest.raises(ConfigError, match="'trials' must be int"):
        load_config(path)


@pytest.mark.parametrize(
    "line, message",
    [
        ("grading_timout_s: 60", r"unknown field 'grading_timout_s' \(did you mean 'grading_timeout_s'\?\)"),
        ("grading_workers: abc", "'grading_workers' must be int, got 'abc'"),
        ("grading_workers: 0", "'grading_workers' must be at least 1"),
        ("confirm_trials: -1", "'confirm_trials' must be at least 1"),
        ("history_days: 0", "'history_days' must be at least 1"),
        ("sample: {size: 0}", "sample: field 'size' must be at least 1"),
        ("sample: {design: rotating}", "'sample.design' must be 'panel'"),
        ("sample: {sise: 3}", "unknown field 'sample.sise'"),
        ("schedule: {cron: 'every day'}", "'schedule.cron' must be a 5-field cron string"),
        ("schedule: {cron: '0 6 * * * *'}", "'schedule.cron' must be a 5-field cron string"),
        ("schedule: {timezone: Mars/Olympus}", "unknown time zone 'Mars/Olympus'"),
        ("allow_untrusted_patches_without_sandbox: 'yes'", "must be true or false, got 'yes'"),
        ("suite: tasks.csv", "field 'suite' must be 'demo' or an existing SWE-Bench-Pro rows file"),
        ("suite: missing.jsonl", "field 'suite' must be 'demo' or an existing SWE-Bench-Pro rows file"),
        ("run_scripts: scripts", "'run_scripts' belongs to a rows suite"),
    ],
)
def test_invalid_top_level_fields_are_named(tmp_path, line, message):
    (tmp_path / "tasks.csv").write_text("instance_id\n")
    path = write(tmp_path, f"trials: 3\n{line}\nsubjects: []\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_rows_suite_resolves_next_to_the_config(tmp_path):
    (tmp_path / "pro" / "run_scripts").mkdir(parents=True)
    (tmp_path / "pro" / "tasks.jsonl").write_text("")
    config = load_config(write(tmp_path, "trials: 1\nsuite: pro/tasks.jsonl\nsubjects: []\n"))
    assert config.suite == str(tmp_path / "pro" / "tasks.jsonl") and config.run_scripts is None
    assert config.grading_timeout_s == 1800  # Pro tests run for minutes; the demo's default is 120
    config = load_config(
        write(
            tmp_path,
            "trials: 1\nsuite: pro/tasks.jsonl\nrun_scripts: pro/run_scripts\n"
            "grading_memory_mb: 4096\nsubjects: []\n",
        )
    )
    assert config.run_scripts == tmp_path / "pro" / "run_scripts" and config.grading_memory_mb == 4096
    with pytest.raises(ConfigError, match="'run_scripts': .* is not a folder"):
        load_config(write(tmp_path, "trials: 1\nsuite: pro/tasks.jsonl\nrun_scripts: nope\nsubjects: []\n"))


GOOD_PHASES = "subjects:\n  a:\n    - {day: 1, version: v1, pass_rate: 0.4}\n"


@pytest.mark.parametrize(
    "scenario, message",
    [
        (
            "failure_modes: {empty: 0, wrong_fix: 0}\n" + GOOD_PHASES,
            "weights must be >= 0 with a positive sum",
        ),
        ("failure_modes: {empty: -1, wrong_fix: 2}\n" + GOOD_PHASES, "weights must be >= 0"),
        ("failure_modes: {typo_mode: 1}\n" + GOOD_PHASES, "failure_modes must map some of empty, partial"),
        (
            "subjects:\n  a:\n    - {day: 1, version: v1, pass_rate: 1.4}\n",
            "phase 1: pass_rate must be between 0 and 1",
        ),
        (
            "subjects:\n  a:\n    - {day: 0, version: v1, pass_rate: 0.4}\n",
            "phase 1: day must be a whole number",
        ),
        ("subjects:\n  b:\n    - {day: 1, version: v1, pass_rate: 0.4}\n", "no phases for subject 'a'"),
        ("noise: -0.1\n" + GOOD_PHASES, "noise must be a number >= 0"),
        ("start_date: 2026-13-01\n" + GOOD_PHASES, "a date is not a calendar date .month must be in 1..12."),
        ("start_date: 'soon'\n" + GOOD_PHASES, "start_date 'soon' is not a date"),
        ("subjects: [unclosed\n", "scenario .*scenario.yaml: while parsing"),
    ],
)
def test_a_scenario_is_checked_when_the_config_loads(tmp_path, scenario, message):
    (tmp_path / "scenario.yaml").write_text(scenario)
    path = write(
        tmp_path, "trials: 3\nsubjects:\n  - {name: a, adapter: simulated, scenario: scenario.yaml}\n"
    )
    with pytest.raises(ConfigError, match=f"subject a: field 'scenario': .*{message}"):
        load_config(path)


def test_check_says_not_ready_for_a_broken_scenario(tmp_path, monkeypatch, capsys):
    from pipeline.cli import main

    (tmp_path / "scenario.yaml").write_text("failure_modes: {empty: 0}\n" + GOOD_PHASES)
    path = write(
        tmp_path, "trials: 3\nsubjects:\n  - {name: a, adapter: simulated, scenario: scenario.yaml}\n"
    )
    monkeypatch.setenv("CANDLEBENCH_CONFIG", str(path))
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    assert main(["check"]) == 1  # not ready
    out = capsys.readouterr()
    assert "failure_modes weights must be >= 0 with a positive sum" in out.out + out.err
    assert "Traceback" not in out.out + out.err


def test_the_confirmation_trials_default_to_the_calibrated_rules():
    from pipeline.config import TrackingConfig
    from pipeline.stats.confirmation import RULE

    assert TrackingConfig.confirm_trials == RULE.trials
