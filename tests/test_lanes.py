"""Each subject's lane from its config: vendor, model, CLI, frozen or latest; and the overrides,
refused in one line naming the subject and the field when they are wrong."""

from __future__ import annotations

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.config.lanes import lanes_of
from pipeline.stats.attribution import Lane

SUBJECTS = """\
trials: 3
prices: {gpt-5-codex: {input: 1.25, output: 10.0}, qwen: {input: 0, output: 0}}
subjects:
  - {name: cc-latest, adapter: claude-code, model: sonnet, settings: {cli_version: latest}}
  - {name: cc-frozen, adapter: claude-code, model: sonnet, settings: {cli_version: 2.1.300}}
  - {name: cc-path, adapter: claude-code, model: sonnet}
  - {name: codex, adapter: codex, model: gpt-5-codex}
  - {name: local, adapter: openai-compatible, model: qwen, settings: {base_url: "http://10.0.0.7:8000/v1"}}
  - {name: aider, adapter: command, model: sonnet, vendor: anthropic, lane: frozen,
     settings: {template: "/opt/aider/bin/aider --model {model} --message {prompt}"}}
  - {name: sim-frozen, adapter: simulated, scenario: scenario.yaml, model: opus,
     settings: {cli: claude-code, cli_version: 2.1.300}}
  - {name: sim-other, adapter: simulated, scenario: scenario.yaml, settings: {vendor: acme}}
"""


def write(tmp_path, text: str):
    path = tmp_path / "tracking.yaml"
    path.write_text(text)
    return path


def test_lanes_are_derived_from_the_adapter_and_the_pin(tmp_path):
    (tmp_path / "scenario.yaml").write_text(
        "subjects:\n"
        + "".join(f"  {n}: [{{day: 1, version: v1, pass_rate: 0.4}}]\n" for n in ("sim-frozen", "sim-other"))
    )
    lanes = lanes_of(load_config(write(tmp_path, SUBJECTS)).subjects)
    assert lanes == {
        "cc-latest": Lane("anthropic", "sonnet", "claude-code", "latest"),
        "cc-frozen": Lane("anthropic", "sonnet", "claude-code", "frozen", "2.1.300"),
        "cc-path": Lane("anthropic", "sonnet", "claude-code", "latest"),  # PATH's CLI follows installs
        "codex": Lane("openai", "gpt-5-codex", "codex", "latest"),
        "local": Lane("10.0.0.7", "qwen", "bash-loop", "latest"),
        "aider": Lane("anthropic", "sonnet", "aider", "frozen"),  # the overrides
        "sim-frozen": Lane("anthropic", "opus", "claude-code", "frozen", "2.1.300"),
        "sim-other": Lane("acme", "", "simulated", "latest"),
    }
    assert lanes["cc-latest"].pair == lanes["cc-frozen"].pair == ("anthropic", "sonnet")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("vendor: 'open ai'", "subject a: field 'vendor' must be a name such as anthropic"),
        ("vendor: 3", "subject a: field 'vendor' must be str"),
        ("lane: pinned", r"subject a: field 'lane' must be one of \('frozen', 'latest'\), got 'pinned'"),
        ("settings: {cli_version: v2}", "subject a: field 'settings.cli_version' must be a version"),
        (
            "settings: {cli_version: 2.1.300}, lane: latest",
            "subject a: field 'lane' is latest, but .* pins 2.1.300",
        ),
        (
            "settings: {cli_version: latest}, lane: frozen",
            "subject a: field 'lane' is frozen, but .* follows latest",
        ),
        ("settings: {cli: claude-code, vendor: {}}", "subject a: field 'settings.vendor' must be str"),
    ],
)
def test_a_bad_lane_field_is_named(tmp_path, entry, message):
    path = write(
        tmp_path,
        f"trials: 3\nsubjects:\n  - {{name: a, adapter: simulated, scenario: scenario.yaml, {entry}}}\n",
    )
    with pytest.raises(ConfigError, match=message) as raised:
        load_config(path)
    assert "\n" not in str(raised.value)


def test_a_vendor_cli_refuses_a_contradicting_lane(tmp_path):
    path = write(
        tmp_path,
        "trials: 3\nsubjects:\n  - {name: cc, adapter: claude-code, model: sonnet, lane: frozen, "
        "settings: {cli_version: latest}}\n",
    )
    with pytest.raises(ConfigError, match="subject cc: field 'lane' is frozen"):
        load_config(path)
