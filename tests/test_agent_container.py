"""Agents in the task's own container: network none, the model API relayed, the key kept outside.

The isolation test runs a probe in place of a CLI (any self-contained executable is run the same
way): it looks for the key everywhere it can see and tries every address it might reach. The
end-to-end tests run the real, pinned `claude` and `codex` (from the CLI cache, as in
test_real_clis.py) in a fresh container of the task's image through a real Dagster
materialization of `evaluation_job`, against the scripted model on the host: on a demo task (the
demo image) and on the real SWE-Bench-Pro fixture task (its own image, built by .ci/pro.sh).

Skipped without Docker, root, the CLIs or the Pro image, with the reason printed; under CI=true,
where .ci/run provides all of them, a missing one fails.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import socket
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from needs import unavailable  # tests/ is on sys.path
from test_real_clis import CLAUDE_VERSION, CODEX_PRICE, CODEX_VERSION, KEY, host, pinned  # tests/ on sys.path

from pipeline.agents import scripted_model as sm
from pipeline.agents.relay import RELAY_PORT
from pipeline.agents.runtime import PLACEHOLDER, ContainerRuntime
from pipeline.agents.session import Session, Transcript
from pipeline.agents.workspace import Workspace

DAY = dt.date(2026, 11, 20)
FIXTURE = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "swe-bench-pro"
CLAUDE_MODEL, CODEX_MODEL = "claude-sonnet-4-5", "gpt-5.5"


@pytest.fixture(scope="module")
def docker():
    if os.geteuid() != 0:
        unavailable("agent containers need root (the relay joins the container's network namespace)")
    try:
        from pipeline.sandbox.docker import DockerSandbox

        sandbox = DockerSandbox()
        sandbox.fingerprint()
    except Exception as err:  # no daemon, no image
        unavailable(f"Docker or the sandbox image is not available: {err}")
    return sandbox


def _leftover_containers(sandbox) -> list[str]:
    from pipeline.sandbox.daemon import _OWNER, CONTAINER_LABEL, OWNER_LABEL

    found = sandbox.daemon.client.containers.list(all=True, filters={"label": CONTAINER_LABEL})
    return [c.id for c in found if c.labels.get(OWNER_LABEL) == _OWNER]


# --- isolation ----------------------------------------------------------------------------------

PROBE = r"""#!/usr/bin/env python3
import json, os, socket, sys, urllib.request
key, targets = sys.argv[1], json.loads(sys.argv[2])
seen = {"env": dict(os.environ), "pid1": open("/proc/1/environ", "rb").read().decode(errors="replace")}
found = []
for top in ("/cb", "/app", "/tmp"):
    for root, _, files in os.walk(top):
        for name in files:
            try:
                if key.encode() in open(os.path.join(root, name), "rb").read():
                    found.append(os.path.join(root, name))
            except OSError:
                pass
seen["files_with_key"] = found
reach = {}
for host, port in targets:
    try:
        socket.create_connection((host, port), timeout=3).close()
        reach[f"{host}:{port}"] = "connected"
    except OSError as err:
        reach[f"{host}:{port}"] = type(err).__name__
seen["reach"] = reach
try:
    socket.getaddrinfo("example.com", 443)
    seen["dns"] = "resolved"
except OSError as err:
    seen["dns"] = type(err).__name__
held = {"x-api-key": os.environ.get("ANTHROPIC_API_KEY", "")}
request = urllib.request.Request("http://127.0.0.1:%d/v1/echo" % PORT, data=b"{}", headers=held)
seen["relayed"] = json.loads(urllib.request.urlopen(request, timeout=10).read())
print(json.dumps(seen))
"""


class _Echo(http.server.BaseHTTPRequestHandler):
    """The upstream: answers each request with the headers it arrived with."""

    def do_POST(self):  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _host_addresses(sandbox) -> list[str]:
    """Addresses of this machine a container might try: its name's, Docker's bridge gateway."""
    found = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    for network in sandbox.daemon.client.networks.list():
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            if config.get("Gateway") and ":" not in config["Gateway"]:
                found.add(config["Gateway"])
    return sorted(found - {"127.0.0.1"})


def test_the_container_reaches_only_the_relay_and_never_sees_the_key(docker, suite, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up_port = upstream.server_address[1]
    probe = tmp_path / "cli" / "package" / "probe"
    probe.parent.mkdir(parents=True)
    probe.write_text(PROBE.replace("PORT", str(RELAY_PORT)))
    probe.chmod(0o755)
    task = next(t for t in suite.tasks() if t.instance_id == "demo__calcexpr-001")
    workspace = Workspace.create(tmp_path / "attempt", task, suite.checkout, self_contained=True)
    transcript = Transcript(tmp_path / "attempt" / "transcript.log", (KEY,))
    runtime = ContainerRuntime(docker)
    targets = [[a, p] for a in _host_addresses(docker) for p in (up_port, 22, 2375, 80)]
    targets += [["127.0.0.1", up_port], ["1.1.1.1", 443], ["8.8.8.8", 53], ["172.17.0.1", 2375]]
    lines: list[str] = []
    from pipeline.agents.runtime import Api

    try:
        finished = runtime.execute(
            Session("probe", workspace, transcript, 120.0, None, runtime),
            [str(probe), KEY, json.dumps(targets)],
            {"ANTHROPIC_BASE_URL": runtime.endpoint(f"http://127.0.0.1:{up_port}")},
            keys=("ANTHROPIC_API_KEY",),
            api=Api(f"http://127.0.0.1:{up_port}", {"x-api-key": KEY}),
            on_line=lambda line: lines.append(line) or "",
        )
    finally:
        transcript.close()
        upstream.shutdown()
    assert finished.exit_code == 0, finished.stderr
    seen = json.loads(lines[-1])
    print("from inside:", seen["reach"], "dns:", seen["dns"])
    # the CLI holds a placeholder; the relay sent the real key upstream
    assert seen["env"]["ANTHROPIC_API_KEY"] == PLACEHOLDER
    assert seen["relayed"]["x-api-key"] == KEY
    # the probe read its whole environment, PID 1's, and every file it can see: no key anywhere
    # (the relayed answer, which echoes the key back, is the only place it appears)
    assert KEY not in json.dumps(seen["env"]) and KEY not in seen["pid1"] and seen["files_with_key"] == []
    assert seen["dns"] != "resolved"
    assert seen["reach"] and all(outcome != "connected" for outcome in seen["reach"].values()), seen["reach"]
    assert KEY not in (tmp_path / "attempt" / "transcript.log").read_text()
    assert _leftover_containers(docker) == []


# --- the real CLIs, through Dagster -------------------------------------------------------------


keys = host  # test_real_clis' fixture: the CLI cache, the keys, the venv's python3 first


def _subject(cli: str, url: str) -> dict:
    if cli == "claude-code":
        settings = {"cli_version": CLAUDE_VERSION, "base_url": url, "runtime": "container"}
        return {"name": "claude-box", "adapter": cli, "model": CLAUDE_MODEL, "settings": settings}
    provider = {
        "model_provider": "scripted",
        "model_providers.scripted.name": "scripted",
        "model_providers.scripted.base_url": f"{url}/v1",
        "model_providers.scripted.wire_api": "responses",
        "model_providers.scripted.env_key": "OPENAI_API_KEY",
    }
    settings = {"cli_version": CODEX_VERSION, "config": provider, "runtime": "container"}
    return {"name": "codex-box", "adapter": cli, "model": CODEX_MODEL, "settings": settings}


def _tested(script: sm.Script) -> sm.Script:
    """The script, its test step required to report passing tests (a mismatch otherwise)."""
    steps = tuple(replace(s, expect=r"\bpassed\b") if s.action == "test" else s for s in script.steps)
    return replace(script, steps=steps)


def _materialize(tmp_path: Path, monkeypatch, config: dict, subject: str):
    import dagster as dg

    from pipeline.definitions import defs
    from pipeline.store.warehouse import Warehouse

    home, path = tmp_path / "home", tmp_path / "tracking.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("CANDLEBENCH_HOME", str(home))
    monkeypatch.setenv("CANDLEBENCH_CONFIG", str(path))
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", [subject])
        key = dg.MultiPartitionKey({"date": DAY.isoformat(), "subject": subject})
        job = defs.resolve_job_def("evaluation_job")
        result = job.execute_in_process(instance=instance, partition_key=key)
    assert result.success
    lake = Warehouse(home).lake
    (attempt,) = lake.read_partition("attempts", subject=subject, date=DAY.isoformat()).to_dicts()
    (evaluation,) = lake.read_partition("evaluations", subject=subject, date=DAY.isoformat()).to_dicts()
    return attempt, evaluation


def _check(cli: str, attempt: dict, evaluation: dict, server: sm.ScriptedModel, image: str) -> None:
    entry = pinned(cli, CLAUDE_VERSION if cli == "claude-code" else CODEX_VERSION)
    assert attempt["exit_class"] == "submitted" and attempt["tries"] == 1, attempt["detail"]
    assert server.mismatches == []  # every step's expectation held: the tests ran in the image and passed
    assert evaluation["outcome"] == "resolved", evaluation["reason"]
    played, used = server.played(), server.usage()
    assert attempt["turns"] == len(played)  # from the CLI's own output
    # behaviour read from the transcript the CLI wrote in its container (paths under /app)
    assert attempt["tool_calls"] == len([e for e in played if e.tool])
    assert attempt["test_runs"] == sum(e.action == "test" for e in played) >= 1
    assert attempt["edits"] == sum(e.action in ("edit", "write", "patch") for e in played) >= 1
    assert attempt["files_read_before_first_edit"] >= 1
    assert attempt["input_tokens"] == used.input_tokens + used.cache_read + used.cache_write
    assert (attempt["cached_tokens"], attempt["output_tokens"]) == (used.cache_read, used.output_tokens)
    model = CLAUDE_MODEL if cli == "claude-code" else CODEX_MODEL
    assert attempt["agent_version"] == f"{cli} {entry.version} / {model}"
    assert attempt["agent_sha256"] == entry.sha256
    transcript = Path(attempt["transcript"]).read_text()
    assert "runtime container" in transcript and f"container: image {image}" in transcript
    assert KEY not in transcript and KEY not in attempt["patch"]
    api = [e for e in server.exchanges if e.api]
    auth = {e.headers.get("x-api-key") or e.headers.get("authorization") for e in api}
    assert auth == ({KEY} if cli == "claude-code" else {f"Bearer {KEY}"})  # added by the relay
    assert not any(PLACEHOLDER in json.dumps(e.body) for e in api)


@pytest.mark.parametrize("cli", ["claude-code", "codex"])
def test_real_cli_solves_a_demo_task_in_its_container_through_dagster(
    cli, docker, keys, suite, tmp_path, monkeypatch
):
    pinned(cli, CLAUDE_VERSION if cli == "claude-code" else CODEX_VERSION)
    scripts = [_tested(s) for s in sm.suite_scripts(suite.tasks())]
    with sm.ScriptedModel(scripts) as server:
        config = {
            "suite": "demo",
            "sample": {"size": 1, "seed": 7},
            "trials": 1,
            "sandbox": "docker",
            "prices": {CODEX_MODEL: CODEX_PRICE},
            "subjects": [_subject(cli, server.url)],
        }
        attempt, evaluation = _materialize(tmp_path, monkeypatch, config, config["subjects"][0]["name"])
    _check(cli, attempt, evaluation, server, "candlebench/demo-python:1")
    assert _leftover_containers(docker) == []


@pytest.fixture(scope="module")
def pro_task(docker):
    from pipeline.tasks.pro_images import INPUTS_LABEL, inputs_digest, load_fixtures

    if not (FIXTURE / "rows.jsonl").is_file():
        unavailable(f"SWE-Bench-Pro fixture not found at {FIXTURE}")
    (fixture,) = load_fixtures(FIXTURE)
    present = docker.daemon.image_id(fixture.image) is not None
    labels = (docker.daemon.image_config(fixture.image).get("Labels") or {}) if present else {}
    if labels.get(INPUTS_LABEL) != inputs_digest(fixture):
        unavailable(f"image {fixture.image} is missing or stale: `candlebench build-pro-image {FIXTURE}`")
    from pipeline.tasks.rows import load_rows

    (task,) = load_rows(FIXTURE / "rows.jsonl")
    return task, fixture.image


@pytest.mark.parametrize("cli", ["claude-code", "codex"])
def test_real_cli_solves_the_pro_task_in_its_image_through_dagster(
    cli, docker, pro_task, keys, tmp_path, monkeypatch
):
    """The CLI reads, edits through its own tool and runs the task's tests with the image's toolchain."""
    pinned(cli, CLAUDE_VERSION if cli == "claude-code" else CODEX_VERSION)
    task, image = pro_task
    with sm.ScriptedModel(_tested(sm.script_for_task(task))) as server:
        config = {
            "suite": str(FIXTURE / "rows.jsonl"),
            "sample": {"size": 1, "seed": 1},
            "trials": 1,
            "sandbox": "docker",
            "grading_timeout_s": 1800,
            "prices": {CODEX_MODEL: CODEX_PRICE},
            "subjects": [{**_subject(cli, server.url), "timeout_s": 1200}],
        }
        attempt, evaluation = _materialize(tmp_path, monkeypatch, config, config["subjects"][0]["name"])
    _check(cli, attempt, evaluation, server, image)
    assert evaluation["image_digest"] == docker.daemon.image_id(image)
    assert _leftover_containers(docker) == []


# --- choosing and failing to start ---------------------------------------------------------------


def test_the_runtime_asked_for_is_given_or_refused_in_one_line():
    from pipeline.agents.process import AgentUnavailable
    from pipeline.agents.runtime import HOST, choose_runtime

    class Process:
        name = "process"

    assert choose_runtime("host", None, "s") is HOST
    assert choose_runtime("auto", lambda: Process(), "s") is HOST  # no Docker: the host, warned by check
    with pytest.raises(AgentUnavailable, match=r"^subject s: settings.runtime is container, but grading"):
        choose_runtime("container", lambda: Process(), "s")


def test_a_container_that_cannot_start_is_unavailable_not_an_agent_failure(suite, tmp_path):
    """A missing image raises AgentUnavailable before the CLI starts (the ledger then frees the
    attempt to run later), rather than recording a failure of the agent."""
    from pipeline.agents.process import AgentUnavailable
    from pipeline.sandbox.base import ImageUnavailable

    class NoImage:
        name = "docker"

        def resolve(self, image):
            raise ImageUnavailable(f"image {image} not found")

    task = suite.tasks()[0]
    workspace = Workspace.create(tmp_path / "a", task, suite.checkout)
    transcript = Transcript(tmp_path / "a" / "transcript.log", ())
    runtime = ContainerRuntime(NoImage())
    with pytest.raises(AgentUnavailable, match="cannot start: image missing/image not found"):
        runtime.execute(
            Session("p", workspace, transcript, 60.0, "missing/image", runtime),
            [sys.executable],
            {},
            keys=(),
            api=None,
        )
    transcript.close()
