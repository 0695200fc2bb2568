"""Every adapter end to end on a demo task, with stand-ins for the paid CLIs and the chat API.

The stand-ins (`tests/standins/`) accept the documented flags, edit the workspace for real and
print the documented formats; the tests check the patch (graded), cost, tokens, turns, exit
class, version, transcript, retries, budgets, the daily cost cap and that keys never leak.
Last, a claude-code subject runs through a real Dagster materialization.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
from pathlib import Path

import pytest
import yaml

from pipeline.agents import AgentWorld, build_agent, solve_all
from pipeline.agents.command import number
from pipeline.agents.process import backoff, classify_failure
from pipeline.config import ConfigError, Subject, load_config

STANDINS = Path(__file__).parent / "standins"
PASS = ["STANDIN_MODE", "STANDIN_PLAN", "STANDIN_LOG", "STANDIN_FAILURES", "STANDIN_ERROR"]
TASK = "demo__calcexpr-001"
DAY = dt.date(2026, 11, 20)
KEY = "sk-standin-0123456789-SECRET"
PRICES = {"gpt-standin": {"input": 1.25, "cached_input": 0.125, "output": 10.0}}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture(scope="session")
def plan(suite, tmp_path_factory) -> Path:
    """What the CLI stand-ins apply: each task's gold patch, found by the prompt they are given."""
    path = tmp_path_factory.mktemp("plan") / "plan.json"
    path.write_text(json.dumps({sha(t.prompt()): t.patch for t in suite.tasks()}))
    return path


@pytest.fixture
def calls(monkeypatch, plan, tmp_path) -> Path:
    """Stand-ins first on PATH; returns the log of their invocations."""
    monkeypatch.setenv("PATH", f"{STANDINS}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_PLAN", str(plan))
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "calls.jsonl"))
    for name in ("STANDIN_MODE", "STANDIN_FAILURES", "STANDIN_ERROR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "calls.jsonl"


@pytest.fixture
def task(suite):
    return next(t for t in suite.tasks() if t.instance_id == TASK)


def subject(tmp_path: Path, entry: dict, **top) -> Subject:
    path = tmp_path / "tracking.yaml"
    path.write_text(yaml.safe_dump({"trials": 1, "prices": PRICES, "subjects": [entry], **top}))
    return load_config(path).subjects[0]


def claude(tmp_path: Path, **settings) -> Subject:
    return subject(
        tmp_path,
        {
            "name": "cc",
            "adapter": "claude-code",
            "model": "sonnet",
            "backoff_s": 0.01,
            "retries": 2,
            "settings": {"env": PASS, **settings},
        },
    )


def codex(tmp_path: Path, **settings) -> Subject:
    return subject(
        tmp_path,
        {
            "name": "cx",
            "adapter": "codex",
            "model": "gpt-standin",
            "backoff_s": 0.01,
            "retries": 2,
            "settings": {"env": PASS, **settings},
        },
    )


def invocations(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()]


@functools.cache
def _docker_ready() -> bool:
    """Docker and the sandbox image are here (asked once: a busy daemon answers slowly)."""
    try:
        from pipeline.sandbox.docker import DockerSandbox

        DockerSandbox().fingerprint()  # the demo image is resolved on first need
        return True
    except Exception:  # no daemon, no image, no docker package: grade elsewhere
        return False


def solve(spec: Subject, suite, task, tmp_path: Path, folder: Path | None = None):
    return build_agent(spec, AgentWorld(suite.checkout, tmp_path / "transcripts")).solve(
        task, DAY, 0, folder=folder
    )


# --- claude-code ------------------------------------------------------------------------------


def test_claude_code_solves_for_real(suite, grader, task, calls, tmp_path):
    spec = claude(tmp_path, max_turns=7, max_budget_usd=1.5, allowed_tools=["Bash", "Edit"])
    attempt = solve(spec, suite, task, tmp_path)
    assert attempt.exit_class == "submitted" and attempt.tries == 1
    assert '+_NUMBER = re.compile(r"(?:\\d+(?:\\.\\d*)?|\\.\\d+)' in attempt.patch
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    assert attempt.cost_usd == pytest.approx(0.1234)
    assert (attempt.input_tokens, attempt.cached_tokens, attempt.output_tokens) == (6500, 5000, 800)
    assert attempt.turns == 6 and attempt.agent_version == "claude-code 2.1.0 / sonnet"
    transcript = Path(attempt.transcript)
    assert transcript.is_relative_to(tmp_path / "transcripts" / "subject=cc" / f"date={DAY}")
    assert '"total_cost_usd": 0.1234' in transcript.read_text()
    [call] = invocations(calls)
    argv = call["argv"]
    assert argv[:2] == ["-p", task.prompt()]
    for flag, value in [
        ("--output-format", "stream-json"),
        ("--model", "sonnet"),
        ("--max-turns", "7"),
        ("--max-budget-usd", "1.5"),
        ("--permission-mode", "bypassPermissions"),
        ("--allowedTools", "Bash,Edit"),
    ]:
        assert argv[argv.index(flag) + 1] == value
    assert "--no-session-persistence" in argv and "--verbose" in argv
    assert call["env"]["HOME"] != os.environ.get("HOME") and call["env"]["DISABLE_AUTOUPDATER"] == "1"
    assert call["env"]["IS_SANDBOX"] == ("1" if os.geteuid() == 0 else None)
    assert "PYTEST_CURRENT_TEST" not in call["env_names"]  # only named variables reach the agent


@pytest.mark.parametrize(
    "mode, settings, exit_class, tries",
    [
        ("max_turns", {"max_turns": 3}, "budget_exhausted", 1),
        ("max_budget", {"max_budget_usd": 0.5}, "budget_exhausted", 1),
        ("crash", {}, "agent_error", 1),
        ("auth_error", {}, "api_error", 1),
        ("api_error", {}, "api_error", 3),  # transient: retried twice, then recorded
    ],
)
def test_claude_code_failures(suite, task, calls, tmp_path, monkeypatch, mode, settings, exit_class, tries):
    monkeypatch.setenv("STANDIN_MODE", mode)
    attempt = solve(claude(tmp_path, **settings), suite, task, tmp_path)
    assert (attempt.exit_class, attempt.tries) == (exit_class, tries)
    assert len(invocations(calls)) == tries
    if mode == "max_turns":
        assert "+++ b/WIP.md" in attempt.patch and attempt.turns == 3  # new files are in the patch
    if mode == "max_budget":
        assert attempt.cost_usd == pytest.approx(0.51)
    if mode == "api_error":
        assert attempt.cost_usd == pytest.approx(0.03) and "overloaded" in attempt.detail


def test_claude_code_retries_from_a_clean_workspace(suite, grader, task, calls, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "max_turns")  # leaves WIP.md behind ...
    monkeypatch.setenv("STANDIN_FAILURES", "1")  # ... once; then solves
    spec = subject(
        tmp_path,
        {
            "name": "cc",
            "adapter": "claude-code",
            "model": "sonnet",
            "backoff_s": 0.01,
            "settings": {"env": PASS},
        },
    )
    attempt = solve(spec, suite, task, tmp_path)
    assert attempt.exit_class == "budget_exhausted" and attempt.tries == 1  # not an API error: no retry
    monkeypatch.setenv("STANDIN_MODE", "api_error")
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "calls2.jsonl"))
    attempt = solve(spec, suite, task, tmp_path)
    assert attempt.exit_class == "submitted" and attempt.tries == 2
    assert attempt.cost_usd == pytest.approx(0.01 + 0.1234) and attempt.turns == 7
    assert "WIP.md" not in attempt.patch
    assert grader.grade(task, attempt.patch, trusted=True).resolved
    assert "retry 1 of 3" in Path(attempt.transcript).read_text()


def test_a_retry_keeps_ignored_dependencies(suite, task, tmp_path):
    """Reset for a retry drops the agent's files but keeps ignored ones (a Pro /app's node_modules)."""
    from pipeline.agents.workspace import Workspace

    def checkout(task, dest):
        suite.checkout(task, dest)
        (dest / "node_modules" / "left-pad").mkdir(parents=True)
        (dest / "node_modules" / "left-pad" / "index.js").write_text("module.exports = 1;\n")
        with (dest / ".git" / "info" / "exclude").open("a") as exclude:
            exclude.write("node_modules/\n")

    workspace = Workspace.create(tmp_path / "attempt", task, checkout)
    (workspace.path / "WIP.md").write_text("half done\n")
    (workspace.path / "calcexpr" / "tokens.py").write_text("broken\n")
    workspace.reset()
    assert (workspace.path / "node_modules" / "left-pad" / "index.js").exists()
    assert not (workspace.path / "WIP.md").exists() and workspace.diff() == ""


def test_claude_code_timeout(suite, task, calls, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "hang")
    spec = subject(
        tmp_path,
        {
            "name": "cc",
            "adapter": "claude-code",
            "model": "sonnet",
            "timeout_s": 1,
            "settings": {"env": PASS},
        },
    )
    attempt = solve(spec, suite, task, tmp_path)
    assert attempt.exit_class == "timeout" and 1 <= attempt.duration_s < 10


def test_keys_are_never_logged_or_stored(suite, task, calls, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_MODE", "leak")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    attempt = solve(claude(tmp_path), suite, task, tmp_path, folder=tmp_path / "kept")
    transcript = Path(attempt.transcript).read_text()
    assert "debug: using key [REDACTED]" in transcript  # the agent had the key and printed it
    assert "key=[REDACTED]" in attempt.patch  # and wrote it into the repository
    kept = "".join(p.read_text() for p in (tmp_path / "kept").glob("*.*") if p.is_file())
    for text in (transcript, json.dumps(attempt.record()), kept):
        assert KEY not in text


# --- codex ------------------------------------------------------------------------------------


def test_codex_solves_for_real(suite, grader, task, calls, tmp_path):
    spec = codex(tmp_path, config={"model_reasoning_effort": "high"})
    attempt = solve(spec, suite, task, tmp_path, folder=tmp_path / "kept")
    assert attempt.exit_class == "submitted"
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    assert (attempt.input_tokens, attempt.cached_tokens, attempt.output_tokens) == (20000, 15000, 1500)
    assert attempt.cost_usd == pytest.approx((5000 * 1.25 + 15000 * 0.125 + 1500 * 10.0) / 1e6)
    assert attempt.turns == 3  # command, file change, message; reasoning is not a turn
    assert attempt.agent_version == "codex 0.63.0 / gpt-standin"
    assert (tmp_path / "kept" / "last_message.txt").read_text() == "Fixed it.\n"
    assert '"type": "turn.completed"' in Path(attempt.transcript).read_text()
    [call] = invocations(calls)
    argv = call["argv"]
    assert argv[:2] == ["exec", "--json"] and argv[-1] == task.prompt()
    for flag, value in [
        ("-m", "gpt-standin"),
        ("-s", "workspace-write"),
        ("-C", str(tmp_path / "kept" / "workspace")),
        ("-c", 'model_reasoning_effort="high"'),
    ]:
        assert argv[argv.index(flag) + 1] == value
    assert "--skip-git-repo-check" in argv and "--ephemeral" in argv
    assert call["env"]["CODEX_HOME"].startswith(str(tmp_path / "kept" / "home"))


@pytest.mark.parametrize(
    "mode, error, settings, exit_class, tries",
    [
        ("fail", None, {}, "api_error", 3),
        ("fail", "unexpected status 401 Unauthorized: invalid api key", {}, "api_error", 1),
        ("fail", "sandbox denied the command", {}, "agent_error", 1),
        ("loop", None, {"max_turns": 4}, "budget_exhausted", 1),
    ],
)
def test_codex_failures(suite, task, calls, tmp_path, monkeypatch, mode, error, settings, exit_class, tries):
    monkeypatch.setenv("STANDIN_MODE", mode)
    if error:
        monkeypatch.setenv("STANDIN_ERROR", error)
    attempt = solve(codex(tmp_path, **settings), suite, task, tmp_path)
    assert (attempt.exit_class, attempt.tries) == (exit_class, tries)
    if mode == "loop":
        assert attempt.turns == 5 and "max_turns 4" in attempt.detail


# --- openai-compatible ------------------------------------------------------------------------


def bash(command: str) -> str:
    return f"THOUGHT: next step.\n\n```bash\n{command}\n```\n"


def openai(tmp_path: Path, url: str, **settings) -> Subject:
    return subject(
        tmp_path,
        {
            "name": "oa",
            "adapter": "openai-compatible",
            "model": "gpt-standin",
            "retries": 2,
            "backoff_s": 0.01,
            "settings": {"base_url": url, "api_key_env": "STANDIN_OPENAI_KEY", **settings},
        },
    )


def test_openai_compatible_bash_loop(suite, grader, task, tmp_path, monkeypatch):
    from standins.openai_server import StandInServer

    monkeypatch.setenv("STANDIN_OPENAI_KEY", KEY)
    script = [
        bash("cat calcexpr/tokens.py"),
        "Let me think without a command first.",
        bash(f"git apply <<'EOF'\n{task.patch}EOF"),
        bash(
            "python -c \"open('NOTES.md', 'w').write('leading dots\\n')\" "
            '&& echo "key=${STANDIN_OPENAI_KEY:-unset}"'
        ),
        bash("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"),
    ]
    with StandInServer(script, key=KEY, failures=[429, 503]) as server:
        attempt = solve(openai(tmp_path, server.url), suite, task, tmp_path)
    assert attempt.exit_class == "submitted", attempt.detail
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    assert "+++ b/NOTES.md" in attempt.patch and "+leading dots" in attempt.patch
    assert server.statuses == [429, 503, 200, 200, 200, 200, 200]  # two transient failures, retried
    assert attempt.turns == 5
    assert attempt.input_tokens == sum(1000 + 100 * n for n in range(5))
    assert (attempt.output_tokens, attempt.cached_tokens) == (250, 3200)
    fresh = attempt.input_tokens - 3200
    assert attempt.cost_usd == pytest.approx((fresh * 1.25 + 3200 * 0.125 + 250 * 10.0) / 1e6)
    assert attempt.agent_version == "bash-loop/1 / gpt-standin"
    # behaviour from the loop's transcript: cat (a read), git apply (the edit), the python one-liner
    # (neither, to the heuristics); the submission is no command; the loop shows no thinking apart
    behaviour = (attempt.tool_calls, attempt.shell_commands, attempt.test_runs, attempt.edits)
    assert behaviour == (3, 3, 0, 1)
    assert (attempt.files_read_before_first_edit, attempt.thinking_chars) == (1, None)
    messages = server.requests[-1]["body"]["messages"]
    assert "_NUMBER = re.compile" in messages[3]["content"]  # `cat` ran in the workspace
    assert "exactly one ```bash code block" in messages[5]["content"]
    assert "key=unset" in messages[9]["content"]  # commands never see the key
    assert server.requests[-1]["headers"]["authorization"] == f"Bearer {KEY}"
    transcript = Path(attempt.transcript).read_text()
    assert KEY not in transcript and KEY not in json.dumps(attempt.record())


def test_openai_compatible_limits_and_errors(suite, task, tmp_path, monkeypatch):
    from standins.openai_server import StandInServer

    monkeypatch.setenv("STANDIN_OPENAI_KEY", KEY)
    with StandInServer([bash("sleep 5"), bash("ls")]) as server:
        spec = openai(tmp_path, server.url, max_turns=3, command_timeout_s=0.3)
        attempt = solve(spec, suite, task, tmp_path)
    assert attempt.exit_class == "budget_exhausted" and attempt.turns == 3
    assert "<returncode>timeout</returncode>" in server.requests[1]["body"]["messages"][3]["content"]
    with StandInServer([bash("ls")], failures=[500] * 5) as server:
        attempt = solve(openai(tmp_path, server.url), suite, task, tmp_path)
    assert attempt.exit_class == "api_error" and server.statuses == [500, 500, 500]
    assert "HTTP 500" in attempt.detail
    with StandInServer([bash("ls")], key="another key") as server:
        attempt = solve(openai(tmp_path, server.url), suite, task, tmp_path)
    assert attempt.exit_class == "api_error" and server.statuses == [401]  # not transient: no retry
    with StandInServer([bash("ls")]) as server:
        attempt = solve(openai(tmp_path, server.url, max_budget_usd=0.002), suite, task, tmp_path)
    assert attempt.exit_class == "budget_exhausted" and attempt.cost_usd >= 0.002


def test_openai_compatible_commands_in_docker(suite, grader, task, tmp_path):
    """With `sandbox: docker` every command runs in a fresh container: the workspace, no network."""
    from standins.openai_server import StandInServer

    if not _docker_ready():
        pytest.skip("no Docker daemon or sandbox image")
    script = [
        bash("id -u && git status --short && echo done"),
        bash(f"git apply <<'EOF'\n{task.patch}EOF"),
        bash("python -c 'import urllib.request as u; u.urlopen(\"http://1.1.1.1\", timeout=3)'"),
        bash("git config core.fsmonitor 'touch /tmp/pwned'; echo config-exit=$?"),
        bash("echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"),
    ]
    with StandInServer(script) as server:
        attempt = solve(
            subject(
                tmp_path,
                {
                    "name": "oa",
                    "adapter": "openai-compatible",
                    "model": "gpt-standin",
                    "settings": {"base_url": server.url, "sandbox": "docker"},
                },
            ),
            suite,
            task,
            tmp_path,
        )
    assert attempt.exit_class == "submitted", attempt.detail
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    observations = [m["content"] for m in server.requests[-1]["body"]["messages"] if m["role"] == "user"]
    assert "<output>\n1000\ndone\n" in observations[1]  # not root; git works on the self-contained tree
    assert "Network is unreachable" in observations[3]
    # .git is read-only in the sandbox: the host's later `git add`/`git diff` meet no agent config
    assert "config-exit=" in observations[4] and "config-exit=0" not in observations[4]


# --- command ----------------------------------------------------------------------------------


def test_command_adapter(suite, grader, task, tmp_path, monkeypatch):
    (tmp_path / "fix.patch").write_text(task.patch)
    monkeypatch.setenv("STANDIN_PATCH", str(tmp_path / "fix.patch"))
    template = (
        'bash -c \'grep -q "leading dot" "$0" && git apply "$STANDIN_PATCH" && '
        'echo "model=$1" && echo "Tokens: 2.1k sent, 345 received. Cost: \\$0.05 session." '
        "&& echo turns=4' {prompt_file} {model}"
    )
    spec = subject(
        tmp_path,
        {
            "name": "cmd",
            "adapter": "command",
            "model": "local-model",
            "settings": {
                "template": template,
                "env": ["STANDIN_PATCH"],
                "cost_regex": r"Cost: \$([\d.]+) session",
                "input_tokens_regex": r"Tokens: ([\d.]+k?) sent",
                "output_tokens_regex": r"([\d.]+k?) received",
                "turns_regex": r"turns=(\d+)",
            },
        },
    )
    attempt = solve(spec, suite, task, tmp_path)
    assert attempt.exit_class == "submitted", attempt.detail
    assert grader.grade(task, attempt.patch, trusted=True).outcome == "resolved"
    assert (attempt.cost_usd, attempt.input_tokens, attempt.output_tokens) == (0.05, 2100, 345)
    assert attempt.turns == 4
    assert attempt.agent_version == "bash / local-model"
    assert "model=local-model" in Path(attempt.transcript).read_text()
    failing = subject(
        tmp_path,
        {
            "name": "cmd",
            "adapter": "command",
            "settings": {
                "template": "bash -c 'echo \"Error: 503 Service Unavailable\" >&2; exit 1' {prompt}"
            },
            "retries": 0,
        },
    )
    attempt = solve(failing, suite, task, tmp_path)
    assert attempt.exit_class == "api_error" and attempt.patch == ""
    assert number("1,234") == 1234 and number("1.5M") == 1_500_000
    background = subject(
        tmp_path,
        {
            "name": "cmd",
            "adapter": "command",
            "timeout_s": 20,
            "settings": {"template": "bash -c 'sleep 30 & echo started; test -n \"$0\"' {prompt}"},
        },
    )
    attempt = solve(background, suite, task, tmp_path)  # what it left running is killed, not waited for
    assert attempt.exit_class == "submitted" and attempt.duration_s < 10


# --- replay -----------------------------------------------------------------------------------


def test_replay_reads_every_predictions_layout(suite, task, tmp_path):
    folder = tmp_path / "preds"
    (folder / "2026-11-21").mkdir(parents=True)
    row = {"instance_id": TASK, "model_name_or_path": "agent-v1", "model_patch": task.patch}
    (folder / "2026-11-19.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({**row, "model_patch": ""}))
    (folder / "2026-11-20.json").write_text(json.dumps({TASK: {**row, "model_name_or_path": "agent-v2"}}))
    (folder / "2026-11-21" / "all_preds.json").write_text(
        json.dumps([{**row, "model_name_or_path": "agent-v3"}])
    )
    spec = subject(tmp_path, {"name": "rp", "adapter": "replay", "settings": {"predictions": "preds"}})
    agent = build_agent(spec, AgentWorld(suite.checkout, tmp_path / "transcripts"))
    assert [agent.version(dt.date(2026, 11, d)) for d in (18, 19, 20, 21, 25)] == [
        "no predictions yet",
        "agent-v1",
        "agent-v2",
        "agent-v3",
        "agent-v3",
    ]
    first, second, third = (agent.solve(task, dt.date(2026, 11, 19), trial) for trial in range(3))
    assert first.patch == task.patch and first.exit_class == "submitted" and first.agent_version == "agent-v1"
    assert second.patch == "" and second.exit_class == "submitted"  # an empty prediction is still one
    assert third.exit_class == "skipped"  # no third prediction recorded that day
    other = next(t for t in suite.tasks() if t.instance_id != TASK)
    missing = agent.solve(other, dt.date(2026, 11, 20), 0)
    assert missing.exit_class == "agent_error" and missing.patch == "" and "no prediction" in missing.detail
    with pytest.raises(FileNotFoundError, match="no predictions for 2026-11-22"):
        agent.solve(task, dt.date(2026, 11, 22), 0)
    single = subject(
        tmp_path, {"name": "rp", "adapter": "replay", "settings": {"predictions": "preds/2026-11-20.json"}}
    )
    agent = build_agent(single, AgentWorld(suite.checkout, tmp_path / "transcripts"))
    assert agent.solve(task, dt.date(2025, 1, 1), 0).agent_version == "agent-v2"


# --- budgets, config, shared pieces -----------------------------------------------------------


def test_daily_cost_cap_skips_the_rest(suite, task, calls, tmp_path):
    spec = claude(tmp_path)
    agent = build_agent(spec, AgentWorld(suite.checkout, tmp_path / "transcripts"))
    tasks = suite.tasks()[:2]
    plan = [(t, trial) for trial in range(2) for t in tasks]
    attempts = solve_all(agent, plan, DAY, daily_cost_cap_usd=0.2)
    assert [a.exit_class for a in attempts] == ["submitted", "submitted", "skipped", "skipped"]
    assert attempts[2].patch == "" and attempts[2].cost_usd == 0 and "cost cap $0.2" in attempts[2].detail
    assert attempts[2].agent_version == "claude-code 2.1.0 / sonnet"
    assert len(invocations(calls)) == 2


def test_retry_backoff_and_failure_classes():
    assert [backoff(n, 2.0) for n in (1, 2, 3, 4)] == [2, 4, 8, 16] and backoff(20, 2.0) == 300
    assert classify_failure("API Error: 529 overloaded") == ("api_error", True)
    assert classify_failure("HTTP 429: rate limit exceeded") == ("api_error", True)
    assert classify_failure("Invalid API key · Please run /login") == ("api_error", False)
    assert classify_failure("TypeError: x is undefined") == ("agent_error", False)


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"name": "a", "adapter": "claude-code"}, "subject a: missing field 'model'"),
        (
            {"name": "a", "adapter": "claude-code", "model": "m", "settings": {"max_turn": 3}},
            "subject a: field 'settings.max_turn' is not a claude-code setting",
        ),
        (
            {"name": "a", "adapter": "claude-code", "model": "m", "settings": {"permission_mode": "yolo"}},
            "subject a: field 'settings.permission_mode' must be one of",
        ),
        (
            {"name": "a", "adapter": "claude-code", "model": "m", "settings": {"max_turns": "ten"}},
            "subject a: field 'settings.max_turns' must be int",
        ),
        ({"name": "a", "adapter": "codex", "model": "unpriced"}, "subject a: field 'price': no price"),
        (
            {"name": "a", "adapter": "openai-compatible", "model": "gpt-standin"},
            "subject a: missing field 'settings.base_url'",
        ),
        (
            {"name": "a", "adapter": "command", "settings": {"template": "agent --go"}},
            "subject a: field 'settings.template' must pass the task",
        ),
        (
            {"name": "a", "adapter": "command", "settings": {"template": "a {prompt}", "cost_regex": "("}},
            "subject a: field 'settings.cost_regex' is not a valid regex",
        ),
        (
            {"name": "a", "adapter": "replay", "settings": {"predictions": "nowhere"}},
            "subject a: field 'settings.predictions'",
        ),
        (
            {"name": "a", "adapter": "simulated", "scenario": "scenario.yaml", "trials": 0},
            "subject a: field 'trials' must be at least 1",
        ),
        (
            {"name": "a", "adapter": "simulated", "scenario": "scenario.yaml", "daily_cost_cap": 5},
            "subject a: unknown field 'daily_cost_cap'",
        ),
        (
            {"name": "a", "adapter": "codex", "model": "m", "price": {"input": 1}},
            "subject a: field 'price': missing field 'output'",
        ),
        (
            {"name": "a", "adapter": "claude-code", "model": "m", "settings": {"env": ["NOT-A-NAME"]}},
            "subject a: field 'settings.env'",
        ),
        (
            {"name": "claude-code/opus", "adapter": "simulated", "scenario": "scenario.yaml"},
            "subject claude-code/opus: field 'name' 'claude-code/opus' must be 1-64 letters",
        ),  # hive paths read it back as "claude-code"
    ],
)
def test_invalid_subject_fails_at_load_naming_subject_and_field(tmp_path, entry, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("$", r"\$")):
        subject(tmp_path, entry)


def test_subject_fields_and_defaults(tmp_path):
    spec = subject(
        tmp_path,
        {
            "name": "cx",
            "adapter": "codex",
            "model": "gpt-standin",
            "trials": 5,
            "timeout_s": 600,
            "daily_cost_cap_usd": 20,
            "concurrency": 2,
        },
        trials=3,
    )
    assert (spec.trials, spec.timeout_s, spec.daily_cost_cap_usd, spec.concurrency) == (5, 600.0, 20.0, 2)
    assert spec.price.cost(1_000_000, 1_000_000, 0) == pytest.approx(11.25)
    assert spec.settings["sandbox"] == "workspace-write" and spec.settings["max_turns"] is None
    assert (
        subject(
            tmp_path, {"name": "sim-codex", "adapter": "simulated", "scenario": "scenario.yaml"}, trials=3
        ).trials
        == 3
    )


# --- through Dagster --------------------------------------------------------------------------


def test_claude_code_through_dagster(calls, tmp_path, monkeypatch):
    """A claude-code subject, with a daily cost cap, through a real materialization."""
    import dagster as dg

    from assets.grading import agent_attempts
    from pipeline.definitions import defs
    from pipeline.orchestration.resources import TrackerResource
    from pipeline.store.warehouse import Warehouse

    docker = _docker_ready()
    home = tmp_path / "home"
    config = tmp_path / "tracking.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "suite": "demo",
                "sample": {"size": 2, "seed": 1},
                "trials": 1,
                "sandbox": "docker" if docker else "process",
                "subjects": [
                    {
                        "name": "claude-standin",
                        "adapter": "claude-code",
                        "model": "sonnet",
                        "trials": 2,
                        "daily_cost_cap_usd": 0.3,
                        "settings": {"env": PASS},
                    }
                ],
            }
        )
    )
    monkeypatch.setenv("CANDLEBENCH_HOME", str(home))
    monkeypatch.setenv("CANDLEBENCH_CONFIG", str(config))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["claude-standin"])
        key = dg.MultiPartitionKey({"date": DAY.isoformat(), "subject": "claude-standin"})
        if docker:  # untrusted patches are graded only in Docker
            job = defs.resolve_job_def("evaluation_job")
            result = job.execute_in_process(instance=instance, partition_key=key)
        else:
            result = dg.materialize(
                [agent_attempts],
                instance=instance,
                partition_key=key,
                resources={"tracker": TrackerResource()},
            )
    assert result.success
    warehouse = Warehouse(home)
    attempts = warehouse.lake.read_partition("attempts", subject="claude-standin", date=DAY.isoformat())
    rows = attempts.sort("trial", "instance_id").to_dicts()
    assert [r["exit_class"] for r in rows].count("skipped") == 1 and len(rows) == 4  # 0.37 > cap 0.3
    ran = [r for r in rows if r["exit_class"] == "submitted"]
    assert len(ran) == 3
    for row in ran:
        assert row["cost_usd"] == pytest.approx(0.1234) and row["turns"] == 6
        assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (6500, 800, 5000)
        assert row["agent_version"] == "claude-code 2.1.0 / sonnet" and Path(row["transcript"]).exists()
        assert row["patch"].startswith("diff --git")
        # the stand-in prints no tool call: behaviour read, and nothing in it (not unknown)
        assert (row["tool_calls"], row["test_runs"], row["thinking_chars"]) == (0, 0, 0)
    assert [r["tool_calls"] for r in rows if r["exit_class"] == "skipped"] == [None]  # not launched
    if docker:
        evaluations = warehouse.lake.read_partition(
            "evaluations", subject="claude-standin", date=DAY.isoformat()
        )
        graded = dict(zip(evaluations["attempt_id"], evaluations["outcome"], strict=True))
        assert all(graded[r["attempt_id"]] == "resolved" for r in ran)
        (skip,) = evaluations.filter(evaluations["outcome"] == "skipped").to_dicts()
        assert skip["reason"].startswith("not launched: daily cost cap $0.3 reached")
