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
