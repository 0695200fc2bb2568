"""The agent-side commands: one attempt outside Dagster, the preflight of the scheduled run, the
pinned CLI cache, and the scripted model endpoint for trying the real CLIs without a key."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import threading
import time
from pathlib import Path

from pipeline.agents import Attempt
from pipeline.cli.errors import UsageError, parse_day


def try_task(
    subject: str,
    instance_id: str,
    out: Path,
    config_file: Path | None = None,
    day: dt.date | None = None,
    trial: int = 0,
) -> Attempt:
    """One attempt outside Dagster; the workspace, transcript, patch and record stay in `out`."""
    from pipeline.config import home, load_config
    from pipeline.tracker import Tracker

    tracker = Tracker(home(), load_config(config_file))
    if instance_id not in tracker.tasks:
        known = ", ".join(sorted(tracker.tasks)[:5])
        raise KeyError(f"task {instance_id!r} is not in suite {tracker.config.suite!r} (e.g. {known})")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    attempt = tracker.agent(subject).solve(
        tracker.tasks[instance_id], day or tracker.today(), trial, folder=out
    )
    (out / "patch.diff").write_text(attempt.patch)
    (out / "attempt.json").write_text(json.dumps(attempt.record(), indent=2) + "\n")
    return attempt


def _attempt(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from pipeline.config import ConfigError

    day = parse_day(args.date, "--date") if args.date else None
    try:
        config = given_config(args.config)
        attempt = try_task(args.subject, args.task, Path(args.out), config, day, args.trial)
    except (ConfigError, KeyError, FileExistsError) as err:
        print(f"candlebench attempt: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    print(json.dumps(attempt.record(), indent=2))
    return 0


def given_config(value: str | None) -> Path | None:
    """A tracking config named by --config: it must exist (the defaults apply only when none is named)."""
    if value and not Path(value).is_file():
        raise UsageError(f"--config {value}: no such file")
    return Path(value) if value else None


def _check(args: argparse.Namespace) -> int:

    from pipeline.preflight import preflight, report

    checks = preflight(given_config(args.config))
    print(report(checks))
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    print(
        f"{failed} failed, {warned} warning(s): "
        + ("the scheduled run would fail or refuse work" if failed else "ready for the scheduled run")
    )
    return 1 if failed else 0


def _agents(args: argparse.Namespace) -> int:
    from pipeline.agents import cli_cache

    try:
        if args.agents_command == "install":
            started = time.monotonic()
            entry = cli_cache.install(args.cli, args.version)
            print(f"{entry.cli} {entry.version} ({entry.platform}): {entry.binary}")
            print(
                f"  {entry.version_output}; sha256 {entry.sha256}; from {entry.package} "
                f"({time.monotonic() - started:.1f}s)"
            )
            return 0
        entries = cli_cache.cached()
    except cli_cache.CliCacheError as err:
        print(f"candlebench agents {args.agents_command}: {err}", file=sys.stderr)
        return 2
    if not entries:
        print(f"no CLIs cached under {cli_cache.cli_cache_root()}")
    for entry in entries:
        print(
            f"{entry.cli:<12} {entry.version:<10} {entry.platform:<15} {entry.sha256[:12]}  "
            f"{entry.version_output}  {entry.binary}"
        )
    return 0


def _scripted_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipeline.agents import scripted_model as sm
    from pipeline.config import ConfigError, home, load_config
    from pipeline.tracker import Tracker

    try:
        if args.script:
            scripts = [sm.load_script(Path(path)) for path in args.script]
        else:
            tasks = Tracker(home(), load_config(Path(args.config) if args.config else None)).tasks
            scripts = sm.suite_scripts(tasks.values())
        server = sm.ScriptedModel(scripts, port=args.port)
    except (ConfigError, sm.ScriptError, OSError) as err:
        print(f"candlebench scripted-model: {err}", file=sys.stderr)
        return 2
    with server:
        print(f"scripted model on {server.url}, {len(scripts)} script(s); any API key is accepted")
        print(f"  claude-code: settings.base_url: {server.url}")
        print(
            f"  codex: settings.config: model_provider: scripted, model_providers.scripted.base_url: "
            f"{server.url}/v1, model_providers.scripted.wire_api: responses, "
            "model_providers.scripted.env_key: OPENAI_API_KEY (model gpt-5.5 has apply_patch)"
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print(f"stopped after {len(server.exchanges)} request(s)")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    attempt = commands.add_parser(
        "attempt", help="run one attempt outside Dagster; keep its workspace, transcript and patch"
    )
    attempt.add_argument("--subject", required=True, help="a subject of the tracking config")
    attempt.add_argument("--task", required=True, help="the task's instance_id")
    attempt.add_argument(
        "--out", required=True, help="folder for workspace/, transcript.log, patch.diff, attempt.json"
    )
    attempt.add_argument("--config", help="tracking config (default: $CANDLEBENCH_CONFIG, else the home's)")
    attempt.add_argument("--date", help="the day recorded (default: today; replay reads that day's file)")
    attempt.add_argument("--trial", type=int, default=0)
    attempt.set_defaults(handler=_attempt)
    check = commands.add_parser(
        "check",
        help="preflight: config, suite, sandbox, images, agents and keys, as the daily run "
        "would build them; exit 1 when something would fail",
    )
    check.add_argument("--config", help="tracking config (default: $CANDLEBENCH_CONFIG, else the home's)")
    check.set_defaults(handler=_check)
    agents = commands.add_parser("agents", help="the pinned agent CLIs (Claude Code, Codex) cached from npm")
    agent_commands = agents.add_subparsers(dest="agents_command", required=True)
    install = agent_commands.add_parser(
        "install", help="fetch a CLI's platform package from npm, verify it, cache it (idempotent)"
    )
    install.add_argument("cli", help="claude-code or codex")
    install.add_argument(
        "--version", default="latest", help="a published version, or latest (resolved once per day; default)"
    )
    agent_commands.add_parser("list", help="what is cached: CLI, version, platform, sha256, binary")
    agents.set_defaults(handler=_agents)
    scripted = commands.add_parser(
        "scripted-model",
        help="serve the Anthropic Messages and OpenAI Responses APIs from scripts, "
        "so the real CLIs run with no key (default: a gold-patch play of every task of the suite)",
    )
    scripted.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    scripted.add_argument("--script", action="append", help="a script file (YAML/JSON), repeatable")
    scripted.add_argument("--config", help="tracking config whose suite is played (default: as `check`)")
    scripted.set_defaults(handler=_scripted_model)
