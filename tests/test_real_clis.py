"""The real Claude Code and Codex, pinned, from the CLI cache, solving demo tasks against the scripted model.

Each CLI runs through its adapter (`build_agent`) in a scratch checkout on the host, against the
scripted model (pipeline.agents.scripted_model): it plays a task's script through the CLI's own tools, the
`git diff` is what the CLI wrote, and the grader decides whether it resolves the task. Cost,
tokens and turns come from the CLI's own output, the version from its `--version`, the sha256 from
the cached binary. Failure scripts check the exit classes. The behaviour read from each CLI's own
transcript (tool calls, shell commands, test runs, edits, files read before the first edit,
thinking) is checked against the steps the scripted model played.

The binaries come from the CLI cache (`candlebench agents install claude-code --version 2.1.328`,
`... codex --version 0.171.0`, into $CANDLEBENCH_CLIS or the checkout's .candlebench/clis; `.ci/run`
does it). Without them the tests skip, saying so; under CI=true a missing binary fails.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.agents import AgentWorld, build_agent, cli_cache
from pipeline.agents import scripted_model as sm
from pipeline.config import PROJECT_ROOT, load_config

CLAUDE_VERSION = "2.1.328"
CODEX_VERSION = "0.171.0"
# Where `candlebench agents install` put them: $CANDLEBENCH_CLIS, else the checkout's own home (the
# test session runs in a home of its own, see conftest.py, so the CLI cache is named apart from it).
CACHE = Path(os.environ.get("CANDLEBENCH_CLIS") or PROJECT_ROOT / ".candlebench" / "clis")
KEY = "sk-scripted-0123456789-SECRET"
DAY = dt.date(2026, 11, 20)
CLAUDE_MODEL = "claude-sonnet-4-5"  # the CLI prices it: $3 input, $15 output, $0.30 cache reads per M
CODEX_MODEL = "gpt-5.5"  # a model codex 0.171.0 knows: its requests offer the apply_patch tool
CODEX_PRICE = {"input": 1.25, "cached_input": 0.125, "output": 10.0}
TASKS = ["demo__calcexpr-001", "demo__calcexpr-009", "demo__textkit-008"]  # shipped; two files; 3 hunks


def pinned(cli: str, version: str) -> cli_cache.Installed:
    """The cached binary, or a skip (a failure under CI=true) that says how to get it."""
    entry = cli_cache.installed(cli, version, root=CACHE)
    if entry is None:
        reason = (
            f"{cli} {version} is not in the CLI cache {CACHE}: run "
            f"`candlebench agents install {cli} --version {version}` (needs the npm registry)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        print(reason)
        pytest.skip(reason)
    return entry


@pytest.fixture(scope="session")
def claude_cli() -> cli_cache.Installed:
    return pinned("claude-code", CLAUDE_VERSION)


@pytest.fixture(scope="session")
def codex_cli() -> cli_cache.Installed:
    return pinned("codex", CODEX_VERSION)


@pytest.fixture
def host(monkeypatch):
    """The cache the subjects' cli_version reads, the keys the CLIs get, the venv's python3 first."""
    monkeypatch.setenv("CANDLEBENCH_CLIS", str(CACHE))
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def subject(tmp_path: Path, entry: dict):
    path = tmp_path / "tracking.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "trials": 1,
                "prices": {CODEX_MODEL: CODEX_PRICE},
                "subjects": [{"retries": 2, "backoff_s": 0.01, **entry}],
            }
        )
    )
    return load_config(path).subjects[0]


def claude_subject(tmp_path: Path, url: str, **settings):
    return subject(
        tmp_path,
        {
            "name": "claude-real",
            "adapter": "claude-code",
            "model": CLAUDE_MODEL,
            "settings": {"cli_version": CLAUDE_VERSION, "base_url": url, **settings},
        },
    )


def codex_subject(tmp_path: Path, url: str, retries: int | None = None, **settings):
    """Codex on the scripted model: a custom provider, set key by key through `-c`."""
    provider = {
        "model_provider": "scripted",
        "model_providers.scripted.name": "scripted",
        "model_providers.scripted.base_url": f"{url}/v1",
        "model_providers.scripted.wire_api": "responses",
        "model_providers.scripted.env_key": "OPENAI_API_KEY",
    }
    if retries is not None:  # codex's own retries (5 by default, with back-off)
        provider |= {
            "model_providers.scripted.request_max_retries": retries,
            "model_providers.scripted.stream_max_retries": retries,
        }
    return subject(
        tmp_path,
        {
            "name": "codex-real",
            "adapter": "codex",
            "model": CODEX_MODEL,
            "settings": {"cli_version": CODEX_VERSION, "config": provider, **settings},
        },
    )


def attempt_of(spec, suite, task, tmp_path: Path):
    agent = build_agent(spec, AgentWorld(suite.checkout, tmp_path / "transcripts"))
    return agent.solve(task, DAY, 0, folder=tmp_path / "attempt")


def cli_events(transcript: Path) -> list[dict]:
    """The CLI's own JSONL, as the transcript keeps it (candlebench's notes start with '#')."""
    return [json.loads(line) for line in transcript.read_text().splitlines() if line.startswith("{")]


def by_id(suite, instance_id: str):
    return next(t for t in suite.tasks() if t.instance_id == instance_id)


def script_for(task) -> sm.Script:
    return sm.suite_scripts([task])[0]


SHELL_TOOLS = {"Bash", "exec_command", "shell", "shell_command"}  # the CLIs' shell tools


def assert_behaviour_is_what_was_played(attempt, played) -> None:
    """The counts read from the CLI's transcript against the steps the scripted model played."""
    calls = [e for e in played if e.tool]
    assert attempt.tool_calls == len(calls)
    assert attempt.shell_commands == sum(e.tool in SHELL_TOOLS for e in calls)
    assert attempt.test_runs == sum(e.action == "test" for e in played)
    assert attempt.edits == sum(e.action in ("edit", "write", "patch") for e in played)


# --- solving ----------------------------------------------------------------------------------


@pytest.mark.parametrize("instance_id", TASKS)
def test_real_claude_code_solves_a_demo_task(claude_cli, host, suite, grader, tmp_path, instance_id):
    task = by_id(suite, instance_id)
    script = script_for(task)
    with sm.ScriptedModel(script) as server:
        attempt = attempt_of(claude_subject(tmp_path, server.url), suite, task, tmp_path)
    assert attempt.exit_class == "submitted" and attempt.tries == 1, attempt.detail
    assert server.mismatches == []  # every step's expectation held: the tests ran and passed
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    played = server.played()
    used = server.usage()
    assert attempt.turns == len(played)
    assert attempt.input_tokens == used.input_tokens + used.cache_read + used.cache_write
    assert (attempt.cached_tokens, attempt.output_tokens) == (used.cache_read, used.output_tokens)
    priced = used.input_tokens * 3 + used.output_tokens * 15 + used.cache_read * 0.3 + used.cache_write * 3.75
    assert attempt.cost_usd == pytest.approx(priced / 1e6, abs=1e-6)  # recorded to 6 places
    assert attempt.agent_version == f"claude-code {CLAUDE_VERSION} / {CLAUDE_MODEL}"
    assert attempt.agent_sha256 == claude_cli.sha256
    tools = [e.tool for e in played]
    assert tools[0] == "Bash" and tools[-1] == "" and tools.index("Read") < tools.index("Edit")
    assert_behaviour_is_what_was_played(attempt, played)
    assert attempt.test_runs == 1 and attempt.files_read_before_first_edit >= 1
    assert {e.headers["x-api-key"] for e in server.exchanges if e.api} == {KEY}
    events = cli_events(Path(attempt.transcript))
    assert events[0]["type"] == "system" and events[0]["claude_code_version"] == CLAUDE_VERSION
    assert events[-1]["type"] == "result" and events[-1]["num_turns"] == attempt.turns
    assert KEY not in Path(attempt.transcript).read_text() and KEY not in json.dumps(attempt.record())


@pytest.mark.parametrize("instance_id", TASKS)
def test_real_codex_solves_a_demo_task(codex_cli, host, suite, grader, tmp_path, instance_id):
    task = by_id(suite, instance_id)
    with sm.ScriptedModel(script_for(task)) as server:
        attempt = attempt_of(codex_subject(tmp_path, server.url), suite, task, tmp_path)
    assert attempt.exit_class == "submitted" and attempt.tries == 1, attempt.detail
    assert server.mismatches == []
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    played, used = server.played(), server.usage()
    assert attempt.turns == len(played)
    assert attempt.input_tokens == used.input_tokens + used.cache_read + used.cache_write
    assert (attempt.cached_tokens, attempt.output_tokens) == (used.cache_read, used.output_tokens)
    fresh = attempt.input_tokens - attempt.cached_tokens
    priced = fresh * 1.25 + used.cache_read * 0.125 + used.output_tokens * 10
    assert attempt.cost_usd == pytest.approx(priced / 1e6, abs=1e-6)  # recorded to 6 places
    assert attempt.agent_version == f"codex {CODEX_VERSION} / {CODEX_MODEL}"
    assert attempt.agent_sha256 == codex_cli.sha256
    tools = [e.tool for e in played]
    assert tools[0] == "exec_command" and tools[-2:] == ["exec_command", ""] and "apply_patch" in tools
    assert_behaviour_is_what_was_played(attempt, played)
    assert attempt.test_runs == 1 and attempt.files_read_before_first_edit >= 1
    assert {e.headers["authorization"] for e in server.exchanges if e.api} == {f"Bearer {KEY}"}
    kinds = [e.get("type") for e in cli_events(Path(attempt.transcript))]
    assert kinds[0] == "thread.started" and kinds[-1] == "turn.completed"
    assert KEY not in Path(attempt.transcript).read_text() and KEY not in json.dumps(attempt.record())


def test_the_clis_hand_the_key_to_their_commands_and_it_is_redacted(
    claude_cli, codex_cli, host, suite, task_001, tmp_path
):
    """On the host both CLIs pass the API key to the commands they run (the agent container's
    relay will keep it out); whatever the agent does with it, the record never holds it."""
    for make, variable in ((claude_subject, "ANTHROPIC_API_KEY"), (codex_subject, "OPENAI_API_KEY")):
        script = sm.parse_script([{"shell": f"echo key=${{{variable}:-unset}} > leak.txt"}, {"finish": "ok"}])
        folder = tmp_path / variable
        folder.mkdir()
        with sm.ScriptedModel(script) as server:
            attempt = attempt_of(make(folder, server.url), suite, task_001, folder)
        assert attempt.exit_class == "submitted", attempt.detail
        assert "+key=[REDACTED]" in attempt.patch  # the command saw the key ...
        kept = "".join(p.read_text() for p in (folder / "attempt").glob("*.*") if p.is_file())
        for text in (kept, json.dumps(attempt.record())):  # ... and nothing candlebench keeps does
            assert KEY not in text


@pytest.fixture
def task_001(suite):
    return by_id(suite, "demo__calcexpr-001")


# --- failures ---------------------------------------------------------------------------------

LONG = [{"shell": "true", "repeat": 12}, {"finish": "never reached"}]
PRICEY = {"usage": {"input_tokens": 200_000, "output_tokens": 1000}, "steps": LONG}


@pytest.mark.parametrize(
    "name, script, settings, exit_class, tries",
    [
        (
            "rate limited twice, then fine",
            [{"error": 429, "times": 2}, {"shell": "true"}, {"finish": "ok"}],
            {},
            "submitted",
            1,
        ),  # the CLI's own retries absorb it
        ("overloaded", [{"error": 529, "retry": False}], {}, "api_error", 3),  # transient: retried twice
        ("server error", [{"error": 500, "retry": False}], {}, "api_error", 3),
        ("bad key", [{"error": 401}], {}, "api_error", 1),  # neither the CLI nor the adapter retries it
        ("turn limit", LONG, {"max_turns": 3}, "budget_exhausted", 1),
        ("budget limit", PRICEY, {"max_budget_usd": 0.5}, "budget_exhausted", 1),
        ("refusal", [{"refuse": "I can't help with that."}], {}, "agent_error", 1),
    ],
)
def test_real_claude_code_failures(
    claude_cli, host, suite, task_001, tmp_path, name, script, settings, exit_class, tries
):
    with sm.ScriptedModel(sm.parse_script(script, name)) as server:
        attempt = attempt_of(claude_subject(tmp_path, server.url, **settings), suite, task_001, tmp_path)
    assert (attempt.exit_class, attempt.tries) == (exit_class, tries), attempt.detail
    result = cli_events(Path(attempt.transcript))[-1]
    assert result["type"] == "result"
    if name == "rate limited twice, then fine":
        assert [e.status for e in server.exchanges if e.api][:3] == [429, 429, 200]
    if name == "overloaded":
        assert attempt.detail.startswith("HTTP 529") and attempt.cost_usd == 0
    if name == "turn limit":
        assert result["subtype"] == "error_max_turns" and len(server.played()) == 3
        assert attempt.turns == result["num_turns"] and attempt.patch == ""
    if name == "budget limit":
        assert result["subtype"] == "error_max_budget_usd" and attempt.cost_usd > 0.5
        assert attempt.cost_usd == pytest.approx(len(server.played()) * (200_000 * 3 + 1000 * 15) / 1e6)
    if name == "refusal":
        assert attempt.detail.startswith("refusal: ") and result["stop_reason"] == "refusal"


@pytest.mark.parametrize(
    "name, script, retries, settings, exit_class, tries",
    [
        (
            "unavailable twice, then fine",
            [{"error": 503, "times": 2}, {"shell": "true"}, {"finish": "ok"}],
            None,
            {},
            "submitted",
            1,
        ),
        ("rate limited", [{"error": 429}], None, {}, "api_error", 3),  # codex does not retry a bare 429
        ("server error", [{"error": 500}], 0, {}, "api_error", 3),
        ("stream broken", [{"error": 500, "in_stream": True}], 0, {}, "api_error", 3),
        ("turn limit", LONG, None, {"max_turns": 3}, "budget_exhausted", 1),
        # codex reports usage only when a turn completes: the budget is seen at the end of the turn
        ("budget limit", PRICEY, None, {"max_budget_usd": 0.5}, "budget_exhausted", 1),
        ("refusal", [{"refuse": "I can't help with that."}], 0, {}, "agent_error", 1),
    ],
)
def test_real_codex_failures(
    codex_cli, host, suite, task_001, tmp_path, name, script, retries, settings, exit_class, tries
):
    with sm.ScriptedModel(sm.parse_script(script, name)) as server:
        spec = codex_subject(tmp_path, server.url, retries, **settings)
        attempt = attempt_of(spec, suite, task_001, tmp_path)
    assert (attempt.exit_class, attempt.tries) == (exit_class, tries), attempt.detail
    if name == "unavailable twice, then fine":
        assert [e.status for e in server.exchanges][:3] == [503, 503, 200]
    if name == "rate limited":
        assert "429" in attempt.detail
    if name == "turn limit":
        assert attempt.turns == 4 and "max_turns 3" in attempt.detail  # stopped by the adapter
    if name == "budget limit":
        assert attempt.cost_usd >= 0.5 and "max_budget_usd 0.5" in attempt.detail
    if name == "refusal":
        assert attempt.detail.startswith("refusal: ") and "content_filter" in attempt.detail


# --- behaviour --------------------------------------------------------------------------------

# An agent that thinks, looks around, reads three files (one through the shell), greps the
# package (a recursive search reads no named file), edits, runs the tests twice, and reads one
# more file after its first edit.
BEHAVIOUR_STEPS = [
    {"think": "Where is the number pattern defined?", "shell": "git status --short && ls calcexpr"},
    {"shell": "grep -rn _NUMBER calcexpr/"},
    {"read": "calcexpr/tokens.py", "think": "The tokenizer is the place to look."},
    {"shell": "head -n 20 tests/test_tokens.py 2>/dev/null"},
    {"read": "calcexpr/errors.py"},
    {
        "think": "A digit must not be required before the dot.",
        "edit": {
            "path": "calcexpr/tokens.py",
            "old": '_NUMBER = re.compile(r"\\d+(?:\\.\\d*)?(?:[eE][+-]?\\d+)?")\n',
            "new": '_NUMBER = re.compile(r"(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][+-]?\\d+)?")\n',
        },
    },
    {"test": "python3 -m pytest -q tests/test_tokens.py", "expect": "passed"},
    {"read": "calcexpr/parser.py"},
    {"test": "cd . && python3 -m pytest -q tests", "expect": "passed"},
    {"finish": "Numbers may start with a dot now."},
]


CLIS = {"claude-code": ("claude_cli", claude_subject), "codex": ("codex_cli", codex_subject)}


@pytest.mark.parametrize("cli", list(CLIS))
def test_the_behaviour_read_from_a_real_transcript_is_what_the_script_played(
    request, host, suite, task_001, tmp_path, cli
):
    fixture, make = CLIS[cli]
    request.getfixturevalue(fixture)
    with sm.ScriptedModel(sm.parse_script(BEHAVIOUR_STEPS, "behaviour")) as server:
        attempt = attempt_of(make(tmp_path, server.url), suite, task_001, tmp_path)
    assert attempt.exit_class == "submitted" and server.mismatches == [], attempt.detail
    assert_behaviour_is_what_was_played(attempt, server.played())
    assert (attempt.tool_calls, attempt.test_runs, attempt.edits) == (len(BEHAVIOUR_STEPS) - 1, 2, 1)
    # tokens.py, tests/test_tokens.py and errors.py; parser.py is read after the edit
    assert attempt.files_read_before_first_edit == 3
    # Claude prints thinking blocks, codex reasoning summaries: every character the model thought
    assert attempt.thinking_chars == sum(len(step.get("think", "")) for step in BEHAVIOUR_STEPS)
    kinds = {e.get("type") for e in cli_events(Path(attempt.transcript))}
    assert kinds & {"assistant", "item.completed"}  # read from the CLI's own events


@pytest.mark.parametrize("cli", list(CLIS))
def test_a_retried_attempt_records_the_behaviour_of_its_last_run(
    request, host, suite, task_001, tmp_path, cli
):
    """Each run makes one call, then the API fails for good: the adapter retries from the base
    state, and the behaviour is the last run's, not the sum over the transcript's three runs."""
    fixture, make = CLIS[cli]
    request.getfixturevalue(fixture)
    script = sm.parse_script([{"shell": "ls"}, {"error": 529, "retry": False}], "fails after a call")
    with sm.ScriptedModel(script) as server:
        spec = make(tmp_path, server.url, 0) if cli == "codex" else make(tmp_path, server.url)
        attempt = attempt_of(spec, suite, task_001, tmp_path)
    assert (attempt.exit_class, attempt.tries) == ("api_error", 3), attempt.detail
    assert len([e for e in server.played() if e.tool]) == 3  # one call in each run
    assert (attempt.tool_calls, attempt.shell_commands, attempt.test_runs) == (1, 1, 0)
