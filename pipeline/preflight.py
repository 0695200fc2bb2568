"""Preflight: will tomorrow's scheduled run work? Config, suite, sandbox, images, agents, keys.

Every check runs the code the pipeline itself runs (the tracker builds the suite, the grader
and the agents), so a pass here means the same objects will build at 06:00. Nothing is graded
and no agent is asked anything: the only processes started are the agents' `--version`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipeline import clock
from pipeline.agents import claude_code, cli_cache, codex
from pipeline.config import ConfigError, Subject, TrackingConfig, home, load_config, profiles

# The adapters hand the agent a scratch HOME, so a `claude login` / `codex login` on this machine
# is not seen: one of these variables must be set.
LOGIN_KEYS = {"claude-code": claude_code.KEYS, "codex": codex.KEYS}
PAID = ("claude-code", "codex", "openai-compatible", "command")


@dataclass(frozen=True)
class Check:
    status: str  # "ok", "warn" or "fail"
    what: str
    detail: str


def _guarded(what: str, probe: Callable[[], Check]) -> Check:
    try:
        return probe()
    except Exception as err:  # any failure to build is what the user must see, named
        return Check("fail", what, f"{type(err).__name__}: {err}")


def preflight(config_file: Path | None = None) -> list[Check]:
    """Every check, in the order a run meets them; stops after the config if it does not load."""
    from pipeline.tracker import Tracker

    try:
        config = load_config(config_file)
    except ConfigError as err:
        return [Check("fail", "config", str(err))]
    checks = [Check("ok", "config", f"{config.path} (digest {config.digest})")]
    root = home()
    checks.append(_guarded("home", lambda: _writable(root)))
    checks.append(_profile())
    tracker = Tracker(root, config)
    checks.append(
        _guarded(
            "suite",
            lambda: Check(
                "ok",
                "suite",
                f"{config.suite}: {len(tracker.tasks)} tasks, "
                f"{len(tracker.sample(tracker.today()))} sampled per day",
            ),
        )
    )
    if checks[-1].status == "fail":
        return checks
    checks.append(_guarded("sandbox", lambda: _sandbox(tracker)))
    checks += _images(tracker)
    for subject in config.subjects:
        checks += _subject(tracker, subject)
    checks.append(Check("ok", "schedule", f"cron {config.cron!r} in {config.timezone}"))
    checks.append(_alerts(config))
    return checks


def _profile() -> Check:
    """The deployment profile the runs would use, and whether its server answers."""
    try:
        return Check("ok", "profile", profiles.check(profiles.profile()))
    except ConfigError as err:
        return Check("fail", "profile", str(err))


def _writable(root: Path) -> Check:
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=root, prefix=".preflight-"):
        pass
    return Check("ok", "home", str(root))


def _sandbox(tracker) -> Check:
    sandbox = tracker.grader.sandbox  # the grader the pipeline would use, its refusals included
    config = tracker.config
    untrusted = [s.name for s in config.subjects if not tracker.trusted(s.name)]
    isolated = sandbox.capabilities.isolates
    if not isolated and untrusted and not config.allow_untrusted_patches_without_sandbox:
        return Check(
            "fail",
            "sandbox",
            f"{sandbox.name} (sandbox: {config.sandbox}) runs patches on the "
            f"host, and {', '.join(untrusted)} write untrusted ones: their grading would be "
            "refused. Install Docker (then `candlebench build-image`) or bubblewrap",
        )
    status, note = "ok", ""
    if not isolated:
        status, note = (
            ("warn", "; untrusted patches run UNSANDBOXED, as the config allows")
            if untrusted
            else ("ok", "; trusted patches only, and every subject is simulated")
        )
    return Check(
        status,
        "sandbox",
        f"{sandbox.name} (sandbox: {config.sandbox}), environment {sandbox.fingerprint()}{note}",
    )


def _images(tracker) -> list[Check]:
    suite = tracker.suite
    images = sorted({image for t in tracker.tasks.values() if (image := suite.image(t))})
    daemon = getattr(tracker.sandbox, "daemon", None)  # only a sandbox that runs task images has one
    if not images or daemon is None:
        return []
    missing = [tag for tag in images if daemon.image_id(tag) is None]
    if not missing:
        return [Check("ok", "task images", f"all {len(images)} present locally")]
    return [
        Check(
            "warn",
            "task images",
            f"{len(missing)} of {len(images)} not present locally (e.g. "
            f"{missing[0]}): pulled at first use if a registry answers, else `docker load -i`",
        )
    ]


def _subject(tracker, subject: Subject) -> list[Check]:
    what = f"subject {subject.name}"
    if subject.adapter == "simulated":
        return [
            _guarded(what, lambda: Check("ok", what, f"simulated, {tracker.agent(subject.name).version()}"))
        ]
    checks = []
    settings = subject.settings
    executable = settings.get("executable") or (
        shlex.split(settings["template"])[0] if subject.adapter == "command" else None
    )
    if settings.get("cli_version"):  # not cached: its --version would install it, so it is not run
        checks.append(_pinned(what, subject.adapter, settings["cli_version"]))
    elif executable and not shutil.which(executable):
        checks.append(Check("fail", what, f"{subject.adapter}: {executable!r} is not on PATH"))
    if not checks or checks[-1].status == "ok":
        checks.append(
            _guarded(
                what,
                lambda: Check(
                    "ok", what, f"{subject.adapter}, version {tracker.agent(subject.name).version()}"
                ),
            )
        )
    if subject.adapter in ("claude-code", "codex"):
        checks.append(
            _guarded(what, lambda: _runtime(what, subject.adapter, tracker.agent(subject.name).runtime))
        )
    if (keys := LOGIN_KEYS.get(subject.adapter)) and not any(os.environ.get(k) for k in keys):
        checks.append(Check("fail", what, f"none of {', '.join(keys)} is set"))
    named = [settings["api_key_env"]] if settings.get("api_key_env") else list(settings.get("env") or [])
    if unset := [name for name in named if not os.environ.get(name)]:
        status = "fail" if subject.adapter == "openai-compatible" else "warn"
        checks.append(Check(status, what, f"environment variable(s) {', '.join(unset)} not set"))
    if subject.adapter == "openai-compatible":
        checks.append(_endpoint(what, settings["base_url"]))
    if subject.adapter in PAID and subject.daily_cost_cap_usd is None:
        checks.append(Check("warn", what, "no daily_cost_cap_usd: a bad day can cost without limit"))
    return checks


def _runtime(what: str, adapter: str, runtime) -> Check:
    """Where the CLI will run: the task's container (faithful), or the host (a warning)."""
    oauth_only = not os.environ.get("ANTHROPIC_API_KEY") and os.environ.get("CLAUDE_CODE_OAUTH_TOKEN")
    if runtime.name == "container" and adapter == "claude-code" and oauth_only:
        return Check("fail", what, "CLAUDE_CODE_OAUTH_TOKEN works with settings.runtime: host only")
    if runtime.name == "container":
        return Check("ok", what, "runtime container: the task's image, network none, the model API relayed")
    return Check(
        "warn",
        what,
        "runtime host: the CLI runs on this machine with its toolchain, not the task image's "
        "(less faithful; a pinned cli_version runs in the task's container when grading uses Docker)",
    )


def _pinned(what: str, cli: str, version: str) -> Check:
    """A subject's pinned CLI: in the cache (which binary), or to be fetched at the first attempt."""
    concrete = (
        version if version != "latest" else cli_cache.latest_resolutions(cli).get(clock.today().isoformat())
    )
    entry = cli_cache.installed(cli, concrete) if concrete else None
    if entry is None:
        return Check(
            "warn",
            what,
            f"{cli} {version} is not in the CLI cache: the first attempt fetches it "
            f"from npm (or run `candlebench agents install {cli} --version {version}`)",
        )
    return Check(
        "ok",
        what,
        f"{cli} {entry.version} cached ({entry.platform}, sha256 {entry.sha256[:12]}): {entry.binary}",
    )


def _endpoint(what: str, base_url: str) -> Check:
    url = base_url.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(url, timeout=5):
            return Check("ok", what, f"{url} answers")
    except urllib.error.HTTPError as err:  # it answered: 401/404 still means a server is there
        return Check("ok", what, f"{url} answers (HTTP {err.code})")
    except (urllib.error.URLError, OSError) as err:
        return Check("warn", what, f"{url} does not answer now ({getattr(err, 'reason', err)})")


def _alerts(config: TrackingConfig) -> Check:
    if not config.alerts:
        return Check("warn", "alerts", "no alert targets: confirmed shifts show only in the UI and report")
    # only the host: a webhook's path and query are its secret
    return Check("ok", "alerts", ", ".join(f"{t.format} -> {urlsplit(t.url).netloc}" for t in config.alerts))


def report(checks: list[Check]) -> str:
    width = max(len(c.what) for c in checks)
    return "\n".join(f"{c.status.upper():<4}  {c.what:<{width}}  {c.detail}" for c in checks)
