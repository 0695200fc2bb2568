"""Grading on a remote Docker host (`docker_host: tcp://...`): a second, private dockerd of this
test's own on loopback, with its own image store, stands in for another machine. Nothing is
bind-mounted there: work trees travel by the archive API into named volumes and back, the images
it lacks by `docker save | docker load` from this machine's daemon, and a real partition graded
there gets the verdicts the local daemon gives."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from needs import unavailable  # tests/ is on sys.path

from pipeline.sandbox import DEMO_IMAGE
from pipeline.sandbox.base import Limits
from pipeline.sandbox.remote import VOLUME_LABEL
from tests.test_fanout import DAY, _config  # one demo partition graded in Docker

WAIT_S = 120  # an upper bound on a loaded machine; the wait ends when the daemon answers


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def remote(docker_client):
    """A second dockerd on 127.0.0.1:<port>, empty, its own data and exec roots; stopped and
    deleted after the module."""
    import docker

    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        unavailable("a second dockerd needs root and dockerd", ".ci/docker.sh installs docker.io")
    name = uuid.uuid4().hex[:8]
    data, run = Path(f"/var/lib/candlebench-test-dockerd-{name}"), Path(f"/run/cbt-{name}")
    address = f"tcp://127.0.0.1:{_free_port()}"
    log = Path(f"/tmp/dockerd-remote-{name}.log")
    daemon = subprocess.Popen(
        ["dockerd", "--host", address, "--data-root", str(data), "--exec-root", str(run),
         "--pidfile", str(run / "docker.pid"), "--bridge", "none", "--iptables=false",
         "--ip-masq=false"],
        stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            client = docker.DockerClient(base_url=address, timeout=120)  # asks for its version
            break
        except Exception:  # not listening yet
            if daemon.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                pytest.fail(f"the second dockerd did not answer at {address}:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
    try:
        yield address, client
    finally:
        client.close()
        daemon.terminate()
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)
        log.unlink(missing_ok=True)


def test_a_run_copies_its_trees_in_and_back(remote, docker_client, tmp_path):
    from pipeline.sandbox.docker import DockerSandbox

    address, far = remote
    assert far.images.list(name=DEMO_IMAGE) == []  # the remote daemon starts without it
    sandbox = DockerSandbox(docker_host=address)
    assert sandbox.daemon.remote
    assert sandbox.image_id == far.images.get(DEMO_IMAGE).id  # sent by docker save | load
    work, workspace = tmp_path / "work", tmp_path / "workspace"
    (work / "pkg").mkdir(parents=True)
    (work / "pkg" / "keep.py").write_text("x = 1\n")
    (work / "drop.txt").write_text("removed by the run\n")
    (work / "graded.py").write_text("assert True\n")
    workspace.mkdir()
    (workspace / "plan.txt").write_text("from the workspace\n")
    result = sandbox.run(
        work,
        "cat pkg/keep.py /workspace/plan.txt && echo made > pkg/new.txt && rm drop.txt"
        " && ln -s /etc/passwd escape && (echo no > /workspace/plan.txt || echo workspace-readonly)",
        Limits(timeout_s=120),
        workspace=workspace,
        readonly=["graded.py"],
    )
    assert result.exit_code == 0, result.output
    assert "x = 1" in result.stdout and "from the workspace" in result.stdout
    assert "workspace-readonly" in result.stdout
    assert (work / "pkg" / "new.txt").read_text() == "made\n"  # copied back
    assert not (work / "drop.txt").exists()  # a deletion comes back too
    assert (work / "graded.py").read_text() == "assert True\n"
    assert not (work / "escape").exists()  # an absolute link is not extracted on the host
    assert (workspace / "plan.txt").read_text() == "from the workspace\n"
    # nothing left behind on the remote daemon
    assert far.volumes.list(filters={"label": VOLUME_LABEL}) == []
    assert far.containers.list(all=True, filters={"label": "candlebench.sandbox"}) == []


def _grade(tmp_path: Path, monkeypatch, **fields) -> tuple[list, float]:
    """One date x subject partition (attempts, then grading); its verdicts and start time."""
    from pipeline.definitions import defs
    from pipeline.store.warehouse import Warehouse

    tmp_path.mkdir()
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CANDLEBENCH_CONFIG", str(_config(tmp_path, sandbox_workers=2, **fields)))
    started = time.time()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["sim-claude-code"])
        key = dg.MultiPartitionKey({"date": DAY.isoformat(), "subject": "sim-claude-code"})
        result = defs.resolve_job_def("evaluation_job").execute_in_process(
            instance=instance, partition_key=key
        )
    assert result.success
    rows = Warehouse(tmp_path / "home").lake.read_partition(
        "evaluations", subject="sim-claude-code", date=DAY.isoformat()
    )
    return sorted((r["instance_id"], r["outcome"], r["reason"]) for r in rows.iter_rows(named=True)), started


def _events(client, started: float, kind: str) -> list[dict]:
    """Docker's own record of `kind` events since `started` (whole seconds, bounded exactly here)."""
    found = client.events(
        since=int(started) - 1, until=int(time.time()) + 1, decode=True, filters={"type": kind}
    )
    return [e for e in found if e["timeNano"] / 1e9 >= started]


def test_a_partition_graded_on_the_remote_host(remote, docker_client, tmp_path, monkeypatch):
    from pipeline.sandbox.daemon import _OWNER, OWNER_LABEL

    address, far = remote
    here, began = _grade(tmp_path / "local", monkeypatch)
    there, started = _grade(tmp_path / "remote", monkeypatch, docker_host=address)  # verdicts
    print(f"partition graded: local daemon {started - began:.1f} s, remote {time.time() - started:.1f} s")
    print(sorted({outcome for _, outcome, _ in here}))
    assert there == here and len(here) == 10  # the same verdicts, for the same reasons

    created = {
        e["id"]
        for e in _events(far, started, "container")
        if e["Action"] == "create" and e["Actor"]["Attributes"].get(OWNER_LABEL) == _OWNER
    }
    assert len(created) >= 4  # a container per distinct (task, patch) ran there
    mounted_app = {
        e["Actor"]["Attributes"].get("container")
        for e in _events(far, started, "volume")
        if e["Action"] == "mount" and e["Actor"]["Attributes"].get("destination") == "/app"
    }
    assert created <= mounted_app  # each one's /app a copied volume, not a path of this disk
    mine_here = [
        e
        for e in _events(docker_client, started, "container")
        if e["Action"] == "create" and e["Actor"]["Attributes"].get(OWNER_LABEL) == _OWNER
    ]
    assert mine_here == []  # none ran on this machine's daemon meanwhile
    assert far.volumes.list(filters={"label": VOLUME_LABEL}) == []


FIXTURE = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "swe-bench-pro"


def test_a_swe_bench_pro_instance_graded_on_the_remote_host(remote, docker_client, tmp_path):
    """The real Pro instance's gold patch on the remote daemon: its image sent there, its /app
    exported from there, the work tree copied in and back; all 36 graded tests pass, as they do
    on this machine's daemon (tests/test_pro_fixture.py)."""
    from pipeline.grading import Grader
    from pipeline.sandbox import Limits
    from pipeline.sandbox.docker import DockerSandbox
    from pipeline.tasks.pro import RowSuite, pro_image
    from pipeline.tasks.rows import load_rows

    if not (FIXTURE / "rows.jsonl").is_file():
        unavailable(f"SWE-Bench-Pro fixture not found at {FIXTURE}", "CI has ../shared beside the clone")
    (task,) = load_rows(FIXTURE / "rows.jsonl")
    try:
        docker_client.images.get(pro_image(task))
    except Exception:  # not built on this machine
        unavailable(f"image {pro_image(task)} missing: candlebench build-pro-image {FIXTURE}", ".ci/pro.sh")
    address, far = remote

    def grade(sandbox, home: Path):
        suite = RowSuite(FIXTURE / "rows.jsonl", home, daemon=sandbox.daemon)
        suite.bind(sandbox, [task])
        grader = Grader(
            suite.checkout, sandbox, home / "artifacts", Limits(timeout_s=1200), runner=suite.runner,
            image_of=suite.image, apply_rule=suite.apply_rule, release=suite.release,
        )  # fmt: skip
        began = time.monotonic()
        return grader.grade(task, task.patch, trusted=False, use_cache=False), time.monotonic() - began

    sandbox = DockerSandbox(docker_host=address)
    began = time.monotonic()
    sandbox.resolve(pro_image(task))  # docker save here | docker load there, once
    sent_s = time.monotonic() - began
    verdict, remote_s = grade(sandbox, tmp_path / "remote")
    here, local_s = grade(DockerSandbox(), tmp_path / "local")
    print(
        f"Pro gold: image sent in {sent_s:.1f} s; graded on the remote daemon in {remote_s:.1f} s "
        f"(its /app exported and copied in and back), on this machine's in {local_s:.1f} s"
    )
    assert here.outcome == "resolved" and here.tests == verdict.tests
    assert verdict.outcome == "resolved", verdict.reason
    assert len(verdict.tests) == 36 and set(verdict.tests.values()) == {"PASSED"}
    assert verdict.image_digest == far.images.get(pro_image(task)).id
    assert not verdict.tampered
    assert far.volumes.list(filters={"label": VOLUME_LABEL}) == []
