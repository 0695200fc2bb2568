"""The `docker` sandbox against a real daemon: grading, timeouts, no network, read-only root,
stdin, read-only graded files, the output cap, orphan reaping and missing images.

Skipped when no Docker daemon is reachable or the image is missing, except under CI=true,
where Docker is installed (.ci/docker.sh) and a skip would hide a broken sandbox: then they fail.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
import uuid

import pytest
from needs import unavailable  # tests/ is on sys.path

from pipeline.grading import Grader
from pipeline.sandbox import DEMO_IMAGE, ImageUnavailable, Limits
from pipeline.sandbox.daemon import _OWNER, CONTAINER_LABEL, DEADLINE_LABEL, OWNER_LABEL
from pipeline.sandbox.docker import DockerSandbox
from pipeline.tasks.demo import DemoSuite


@pytest.fixture(scope="module")
def client():
    try:
        import docker

        found = docker.from_env(timeout=30)
        found.ping()
    except Exception as err:  # docker raises several unrelated types here
        unavailable(f"Docker daemon not reachable: {err}")
    try:
        found.images.get(DEMO_IMAGE)
    except docker.errors.ImageNotFound:
        unavailable(f"image missing: run candlebench build-image ({DEMO_IMAGE})")
    return found


@pytest.fixture(scope="module")
def sandbox(client) -> DockerSandbox:
    return DockerSandbox()


def _containers_running(client, marker: str) -> list:
    """Sandbox containers whose command carries `marker` (other graders may run alongside)."""
    found = client.containers.list(all=True, filters={"label": CONTAINER_LABEL})
    return [c for c in found if marker in " ".join(c.attrs["Config"]["Cmd"] or [])]


def test_grades_a_demo_task(sandbox, tmp_path):
    suite = DemoSuite(tmp_path / "repos")
    task = next(t for t in suite.tasks() if t.instance_id == "demo__textkit-001")
    grader = Grader(suite.checkout, sandbox, tmp_path / "artifacts")

    gold = grader.grade(task, task.patch, trusted=False)
    assert gold.outcome == "resolved", (gold.reason, gold.tests)
    assert gold.f2p_passed == gold.f2p_total > 0 and gold.p2p_passed == gold.p2p_total

    empty = grader.grade(task, "", trusted=False, run_empty=True)
    assert not empty.resolved and empty.outcome == "unresolved", empty.reason
    assert empty.tests, "pytest produced no results: the harness, not the patch, failed"
    assert empty.f2p_passed < empty.f2p_total


def test_timeout_kills_and_removes_the_container(sandbox, client, tmp_path):
    marker = f"cb-timeout-{uuid.uuid4().hex}"
    started = time.monotonic()
    result = sandbox.run(tmp_path, f"echo started; sleep 60 # {marker}", Limits(timeout_s=3))
    elapsed = time.monotonic() - started
    assert result.timed_out and result.exit_code is None
    assert elapsed < 3 + 5, f"took {elapsed:.1f}s"
    assert "started" in result.output
    assert _containers_running(client, marker) == []


def test_no_network_inside(sandbox, tmp_path):
    """Only `lo` exists, and a listener on the host is unreachable on any of its addresses."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("0.0.0.0", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    threading.Thread(target=lambda: listener.accept(), daemon=True).start()
    targets = ["127.0.0.1", "172.17.0.1"]
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outbound address
        targets.append(probe.getsockname()[0])  # the host's own address
    script = "\n".join(
        [
            "import os, socket",
            "print('IFACES', sorted(os.listdir('/sys/class/net')))",
            f"for host in {targets!r}:",
            "    try:",
            f"        socket.create_connection((host, {port}), timeout=3).close()",
            "        print('CONNECTED', host)",
            "    except OSError as err:",
            "        print('BLOCKED', host, err)",
        ]
    )
    (tmp_path / "net.py").write_text(script)
    try:
        result = sandbox.run(tmp_path, "python net.py", Limits(timeout_s=60))
    finally:
        listener.close()
    assert result.exit_code == 0, result.output
    assert "IFACES ['lo']" in result.output
    assert "CONNECTED" not in result.output
    assert result.output.count("BLOCKED") == len(targets)


def test_root_file_system_is_read_only(sandbox, tmp_path):
    script = "; ".join(
        f"(echo x > {path} && echo WROTE {path} || echo DENIED {path})"
        for path in (
            "/etc/cb-probe",
            "/usr/cb-probe",
            "/cb-probe",
            "/var/tmp/cb-probe",
            "/tmp/cb-probe",
            "/app/cb-probe",
        )
    )
    result = sandbox.run(tmp_path, script, Limits(timeout_s=60))
    for path in ("/etc/cb-probe", "/usr/cb-probe", "/cb-probe", "/var/tmp/cb-probe"):
        assert f"DENIED {path}" in result.output, result.output
    assert "WROTE /tmp/cb-probe" in result.output, result.output
    assert "WROTE /app/cb-probe" in result.output, result.output
    assert (tmp_path / "cb-probe").read_text() == "x\n"


def _labelled(client, owner: str, deadline: float):
    return client.containers.create(
        DEMO_IMAGE,
        ["sleep", "60"],
        labels={CONTAINER_LABEL: "1", OWNER_LABEL: owner, DEADLINE_LABEL: str(int(deadline))},
    )


def test_orphans_are_reaped_at_start_up(sandbox, client):
    """A killed run's containers go when the next sandbox starts; a live run's stay."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    orphan = _labelled(client, f"{socket.gethostname()}:{gone.pid}:0", time.time() + 3600)
    overdue = _labelled(client, _OWNER, time.time() - 10)
    live = _labelled(client, _OWNER, time.time() + 3600)
    try:
        DockerSandbox()
        left = {c.id for c in client.containers.list(all=True, filters={"label": CONTAINER_LABEL})}
        assert orphan.id not in left and overdue.id not in left
        assert live.id in left
    finally:
        for container in (orphan, overdue, live):
            with contextlib.suppress(Exception):
                container.remove(force=True)


def test_a_missing_task_image_says_how_to_load_it(sandbox):
    tag = f"jefzda/sweap-images:cb-absent-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ImageUnavailable) as raised:
        sandbox.daemon.ensure_image(tag)
    assert tag in str(raised.value) and "docker load -i" in str(raised.value)
    assert sandbox.resolve(None)[0] == DEMO_IMAGE  # the image present locally is used as is


def test_stdin_user_and_read_only_graded_files(sandbox, tmp_path):
    (tmp_path / "graded.py").write_text("original\n")
    (tmp_path / "free.py").write_text("free\n")
    script = "; ".join(
        [
            "read line; echo got $line",
            "id -u",
            "echo x > graded.py || echo GRADED-RO",
            "rm graded.py || echo GRADED-STAYS",
            "echo y > free.py && echo FREE-RW",
            "cat /proc/self/status | grep -E '^CapEff'",
        ]
    )
    result = sandbox.run(tmp_path, script, Limits(timeout_s=60), readonly=["graded.py"], stdin=b"n0nce\n")
    assert "got n0nce" in result.output and "\n1000\n" in result.output, result.output
    assert "GRADED-RO" in result.output and "GRADED-STAYS" in result.output
    assert "FREE-RW" in result.output and "CapEff:\t0000000000000000" in result.output
    assert (tmp_path / "graded.py").read_text() == "original\n"


def test_output_cap_stops_the_container(sandbox, client, tmp_path):
    marker = f"cb-flood-{uuid.uuid4().hex}"
    started = time.monotonic()
    result = sandbox.run(tmp_path, f"yes {marker}", Limits(timeout_s=30, output_bytes=1 << 20))
    assert result.truncated and result.exit_code is None and not result.timed_out
    assert len(result.output.encode()) <= 1 << 20
    assert time.monotonic() - started < 10
    assert _containers_running(client, marker) == []
