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


@pytest.mark.parametrize("subject, message", [
    ("- {name: a, adapter: nope}", "subject a: field 'adapter' must be one of"),
    ("- {adapter: simulated}", "subject #1: field 'name'"),
    ("- {name: a, adapter: simulated, scenario: missing.yaml}", "subject a: field 'scenario'"),
    ("- {name: a, adapter: simulated}", "subject a: missing field 'scenario'"),
])
def test_invalid_subject_names_subject_and_field(tmp_path, subject, message):
    path = write(tmp_path, f"trials: 3\nsubjects:\n  {subject}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_wrong_type_is_named(tmp_path):
    path = write(tmp_path, "trials: three\nsubjects: []\n")
    with pytest.raises(ConfigError, match="'trials' must be int"):
        load_config(path)


@pytest.mark.parametrize("line, message", [
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
])
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
    config = load_config(write(tmp_path, "trials: 1\nsuite: pro/tasks.jsonl\nrun_scripts: pro/run_scripts\n"
                                         "grading_memory_mb: 4096\nsubjects: []\n"))
    assert config.run_scripts == tmp_path / "pro" / "run_scripts" and config.grading_memory_mb == 4096
    with pytest.raises(ConfigError, match="'run_scripts': .* is not a folder"):
        load_config(write(tmp_path, "trials: 1\nsuite: pro/tasks.jsonl\nrun_scripts: nope\nsubjects: []\n"))
