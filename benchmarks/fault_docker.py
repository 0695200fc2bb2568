"""A Docker daemon that dies mid-evaluation, for the fault-injection suite (benchmarks/faults.py).

The suite starts a daemon of its own (`PrivateDocker`: its own containerd, data and exec roots,
pid file and socket, no bridge, no iptables; sandbox containers run with network none), loads
the sandbox image into it from the shared daemon, and grades a seeded partition there with
`sandbox: docker` (`DOCKER_HOST` pointed at it). A clean run of that grading is the reference.
Each fault then kills -9 the private dockerd (and, in one, its containerd too: the shims and
their containers are left, as a real crash leaves them) while a sandbox container of ours runs,
and checks:

- the run fails with one line saying the Docker daemon went away, no traceback;
- every lake partition is the old one or the reference's, never half (no stored row changed);
- the gradings cut short are recorded harness_error in their artifact folders, no verdict differs
  from the reference's but as harness_error (never a patch's failure);
- after a restart of the private daemon the same command re-grades them (the harness errors are
  not reused), reaps the orphan containers, and every table equals the reference row by row;
- the shared daemon saw no container of ours (its containers and events before and after).

The private daemon is stopped, its leftovers killed and unmounted, and its folder removed in
every path (`PrivateDocker.remove`, also at exit).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from fault_homes import (
    BOUND_S,
    CANDLEBENCH,
    Result,
    Setup,
    clean_up,
    dump,
    environment,
    fresh_copy,
    has_traceback,
    lake_partitions,
    rows_lost_or_wrong,
    wait_for,
)

from pipeline.sandbox.base import DEMO_IMAGE
from pipeline.sandbox.daemon import CONTAINER_LABEL, OWNER_LABEL

SUBJECT = "sim-codex"
CONTAINERD_CONFIG = """version = 2
root = "{root}/containerd-root"
state = "{root}/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{root}/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
"""


def usable() -> str:
    """Why a private daemon cannot run here ("" when it can)."""
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    missing = [b for b in ("dockerd", "containerd", "docker") if shutil.which(b) is None]
    return f"not installed: {', '.join(missing)}" if missing else ""


class PrivateDocker:
    """A dockerd of the suite's own, never the shared one: its own containerd, data root, exec
    root, pid file, socket and cgroup parent, no bridge and no iptables. `kill` is the crash;
    `start` again is the restart; `remove` undoes everything, also at exit."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cbd-", dir="/tmp"))  # a unix socket path is <= 107 bytes
        self.host = f"unix://{self.root}/docker.sock"
        self.dockerd: subprocess.Popen | None = None
        self.containerd: subprocess.Popen | None = None
        (self.root / "containerd.toml").write_text(CONTAINERD_CONFIG.format(root=self.root))
        (self.root / "daemon.json").write_text("{}\n")  # never the machine's /etc/docker/daemon.json
        (self.root / "owner").write_text(_process_id(os.getpid()))  # for `sweep` if we are killed
        atexit.register(self.remove)

    def _spawn(self, argv: list[str], log: str) -> subprocess.Popen:
        with (self.root / log).open("ab") as out:
            return subprocess.Popen(
                argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True
            )

    def start(self, timeout: float = 180) -> None:
        """containerd (unless it still runs) and dockerd, then wait until the daemon answers."""
        if self.containerd is None or self.containerd.poll() is not None:
            self.containerd = self._spawn(
                ["containerd", "--config", str(self.root / "containerd.toml")], "containerd.log"
            )
            if not wait_for(lambda: (self.root / "containerd.sock").exists(), self.containerd, timeout):
                raise RuntimeError(f"the private containerd did not start: {self.log('containerd.log')}")
        driver = "vfs" if _fs_type(self.root) == "overlay" else "overlay2"  # no overlay on overlay
        self.dockerd = self._spawn(
            [
                "dockerd",
                f"--config-file={self.root / 'daemon.json'}",
                f"--data-root={self.root / 'data'}",
                f"--exec-root={self.root / 'exec'}",
                f"--pidfile={self.root / 'docker.pid'}",
                f"--host={self.host}",
                f"--containerd={self.root / 'containerd.sock'}",
                f"--cgroup-parent=/{self.root.name}",
                f"--storage-driver={driver}",
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
            ],
            "dockerd.log",
        )
        if not wait_for(self.answers, self.dockerd, timeout):
            raise RuntimeError(f"the private dockerd did not answer: {self.log('dockerd.log')}")

    def answers(self) -> bool:
        try:
            return bool(self.client(timeout=5).ping())
        except Exception:
            return False

    def log(self, name: str) -> str:
        return " | ".join((self.root / name).read_text(errors="replace").strip().splitlines()[-5:])

    def client(self, timeout: float = 60):
        import docker

        return docker.DockerClient(base_url=self.host, timeout=timeout)

    def load(self, tarball: Path) -> None:
        with tarball.open("rb") as image:
            self.client(timeout=600).images.load(image.read())

    def kill(self, containerd: bool = False) -> None:
        """The crash: SIGKILL to dockerd (and containerd); the shims and their containers live on."""
        for process in (self.dockerd, self.containerd if containerd else None):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    def sandbox_containers(self) -> list[dict]:
        """Our sandbox containers on this daemon: id, state, owner (one call: no inspect races)."""
        found = self.client().api.containers(all=True, filters={"label": CONTAINER_LABEL})
        return [{"id": c["Id"], "state": c["State"], "owner": c["Labels"].get(OWNER_LABEL)} for c in found]

    def remove_containers(self) -> None:
        api = self.client().api
        for container in api.containers(all=True):
            with contextlib.suppress(Exception):
                api.remove_container(container["Id"], force=True, v=True)

    def remove(self) -> None:
        """Stop it (containers first), then kill, unmount and delete whatever a crash left."""
        if not self.root.exists():
            return
        if self.dockerd is not None and self.dockerd.poll() is None:
            with contextlib.suppress(Exception):
                self.remove_containers()
            _stop(self.dockerd, 60)
        if self.containerd is not None:
            _stop(self.containerd, 30)
        tear_down(self.root)


def sweep() -> list[str]:
    """Tear down the private daemons of suites that died without doing it (kill -9)."""
    swept = []
    for owner in Path("/tmp").glob("cbd-*/owner"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(owner.read_text().split()[0])
            if _process_id(pid) != owner.read_text():
                tear_down(owner.parent)
                swept.append(str(owner.parent))
    return swept


def tear_down(root: Path) -> None:
    """Kill what is left of the private daemon under `root`: its dockerd and containerd, their
    shims, the processes in its cgroups; unmount what it mounted; delete it all."""
    for pid in _leftovers(root):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    mounts = [m for m in _mounts() if m == str(root) or m.startswith(f"{root}/")]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    for top in Path("/sys/fs/cgroup").glob(f"*/{root.name}"):
        for folder, _, _ in sorted(os.walk(top), key=lambda walked: -len(walked[0])):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
    shutil.rmtree(root, ignore_errors=True)


def _leftovers(root: Path) -> list[int]:
    """Processes in the daemon's cgroups, and those naming its folder (dockerd, containerd, shims)."""
    pids = set()
    for procs in Path("/sys/fs/cgroup").glob(f"*/{root.name}/**/cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids |= {int(p) for p in procs.read_text().split()}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if f"{root}/" in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.add(int(entry.name))
    return sorted(pids - {os.getpid()})


def _process_id(pid: int) -> str:
    """A pid with its start time (tells a live process from a reused pid); "" when gone."""
    try:
        return f"{pid} {Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[19]}"
    except (OSError, IndexError):
        return ""


def _stop(process: subprocess.Popen, grace: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _mounts() -> list[str]:
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4].encode().decode("unicode_escape") for line in lines]


def _fs_type(path: Path) -> str:
    best = ("", "")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point, kind = fields[4], fields[fields.index("-") + 1]
        if str(path).startswith(point.rstrip("/") + "/") and len(point) >= len(best[0]):
            best = (point, kind)
    return best[1]


class SharedDaemon:
    """What the shared daemon holds of ours: containers made by our processes (by the owner label)
    in its container list and in its events since `since`. Read only."""

    def __init__(self) -> None:
        import docker

        self.client = docker.from_env(timeout=60)  # the suite's own environment: the shared daemon
        self.since = int(time.time())

    def ours(self, pids: set[int]) -> list[str]:
        mine = {f"{socket.gethostname()}:{pid}:" for pid in pids}

        def of_ours(labels: dict) -> bool:
            return any(labels.get(OWNER_LABEL, "").startswith(m) for m in mine)

        listed = self.client.api.containers(all=True)  # one call: others' containers come and go
        found = [c["Id"][:12] for c in listed if of_ours(c.get("Labels") or {})]
        events = self.client.events(
            since=self.since, until=int(time.time()) + 1, decode=True, filters={"type": "container"}
        )
        found += [e["id"][:12] for e in events if of_ours(e.get("Actor", {}).get("Attributes", {}))]
        return sorted(set(found))


class DockerFaults:
    """The private daemon, the seeded home and the docker reference the daemon faults share; one
    fault at a time (each kills the daemon)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.lock = threading.Lock()
        self.daemon: PrivateDocker | None = None
        self.base = setup.scratch / "docker-base"  # the built history, `sandbox: docker`
        self.graded = setup.scratch / "docker-reference"  # and the partition graded there, cleanly
        self.reference: dict = {}
        self.failed = ""

    @property
    def command(self) -> list[str]:
        day = self.setup.end.isoformat()
        return ["backfill", "--from", day, "--to", day, "--subject", SUBJECT, "--regrade"]

    def prepare(self) -> str:
        """Start the daemon and build the docker reference once; why not ("" when ready)."""
        if self.daemon is not None or self.failed:
            return self.failed
        self.failed = usable()
        if self.failed:
            return self.failed
        tarball = self.setup.scratch / "sandbox-image.tar"
        saved = subprocess.run(
            ["docker", "save", "-o", str(tarball), DEMO_IMAGE], capture_output=True, text=True
        )
        if saved.returncode != 0:
            self.failed = (
                f"{DEMO_IMAGE} is not on the shared daemon (candlebench build-image): {saved.stderr}"
            )
            return self.failed
        sweep()
        self.daemon = PrivateDocker()
        try:
            self.daemon.start()
            self.daemon.load(tarball)
        except Exception as err:  # a daemon that cannot start here is a fault not reached, said why
            self.daemon.remove()
            self.daemon, self.failed = None, f"the private daemon did not start: {err}"[:400]
            return self.failed
        tarball.unlink()
        shutil.copytree(self.setup.built, self.base, symlinks=True)
        config = self.base / "tracking.yaml"
        config.write_text(config.read_text().replace("sandbox: process", "sandbox: docker", 1))
        shutil.copytree(self.base, self.graded, symlinks=True)
        process = self.run(self.graded)
        out, err = process.communicate(timeout=BOUND_S)
        if process.returncode != 0 or self.daemon.sandbox_containers():
            said = (out + err)[-600:]
            raise RuntimeError(f"the docker reference run failed ({process.returncode}): {said}")
        self.reference = dump(self.graded)
        return ""

    def run(self, home: Path, log: Path | None = None) -> subprocess.Popen:
        """The grading command on `home` against the private daemon (output to `log`, or piped)."""
        assert self.daemon is not None
        out = log.open("w") if log else subprocess.PIPE
        return subprocess.Popen(
            CANDLEBENCH + self.command,
            cwd=home,
            env=environment(home, DOCKER_HOST=self.daemon.host, PYTHONUNBUFFERED="1"),
            stdout=out,
            stderr=subprocess.STDOUT if log else subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def close(self) -> None:
        if self.daemon is not None:
            self.daemon.remove()


def verdicts(home: Path) -> dict[str, dict]:
    """Grade key -> the verdict stored in its artifact folder."""
    found = {}
    for path in (home / "artifacts").glob("*/*/verdict.json"):
        with contextlib.suppress(OSError, ValueError):
            found[path.parent.name] = json.loads(path.read_text())
    return found


def daemon_dies(faults: DockerFaults, during: str, containerd: bool = False) -> Result:
    """kill -9 the private dockerd (and its containerd) while a sandbox container of ours runs
    `during` "harness controls" or "patch evaluations"; restart it; run the same command again."""
    what = "dockerd and its containerd" if containerd else "dockerd"
    result = Result(f"{what} killed -9 while a container runs ({during})", "docker")
    with faults.lock:
        began = time.monotonic()
        if why := faults.prepare():
            result.outcome, result.note = "not reached", why
            return result
        prepared = time.monotonic()
        daemon = faults.daemon
        assert daemon is not None
        if not daemon.answers():  # an earlier fault may have left it dead, or with containers
            daemon.start()
        daemon.remove_containers()
        shared = SharedDaemon()
        home = fresh_copy(faults.base, faults.setup.scratch, f"docker-{during[:8]}-{containerd}")
        before, log = lake_partitions(home), home.parent / "run.log"
        pids: set[int] = set()
        try:
            process = faults.run(home, log)
            pids.add(process.pid)
            stage = "[3/5]" if during == "patch evaluations" else "[2/5]"

            def running() -> bool:
                said = log.read_text(errors="replace")
                early = during == "harness controls" and "[3/5]" in said
                return (
                    not early
                    and stage in said
                    and any(c["state"] == "running" for c in daemon.sandbox_containers())
                )

            reached = wait_for(running, process)
            in_flight = [c["id"][:12] for c in daemon.sandbox_containers() if c["state"] == "running"]
            if reached:
                daemon.kill(containerd)
            try:
                status = process.wait(timeout=BOUND_S)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                result.outcome, result.note = "hang", "the run did not end after its daemon died"
                return result
            said = log.read_text(errors="replace")
            if not reached:
                result.outcome, result.note = "not reached", f"no container ran {during} (exit {status})"
                return result
            check_failure(result, status, said)
            check_partitions(result, before, lake_partitions(home), lake_partitions(faults.graded))
            cut = check_verdicts(result, verdicts(home), verdicts(faults.graded))
            daemon.start()
            orphans = daemon.sandbox_containers()
            recovery = faults.run(home)
            pids.add(recovery.pid)
            try:
                out, err = recovery.communicate(timeout=BOUND_S)
            except subprocess.TimeoutExpired:
                os.killpg(recovery.pid, signal.SIGKILL)
                result.outcome, result.note = "hang", "the re-run after the restart did not finish"
                return result
            if has_traceback(err) or recovery.returncode != 0:
                result.outcome = "unclear" if has_traceback(err) else "lost"
                result.note = f"re-run exit {recovery.returncode}: {(err or out).strip()[-200:]}"
            again = verdicts(home)
            reused = [k for k in cut if again.get(k, {}).get("outcome", "harness_error") == "harness_error"]
            if reused and result.outcome == "survived":
                result.outcome, result.note = "lost", f"{len(reused)} harness errors not re-graded"
            left = daemon.sandbox_containers()
            if left and result.outcome == "survived":
                result.outcome, result.note = "lost", f"orphans not reaped: {[c['id'][:12] for c in left]}"
            bad, where = rows_lost_or_wrong(faults.reference, dump(home))
            if bad:
                result.outcome, result.lost, result.note = "lost", bad, where
            if touched := shared.ours(pids):
                result.outcome, result.note = "lost", f"the shared daemon ran containers of ours: {touched}"
            if result.outcome == "survived":
                result.note = (
                    f"{len(in_flight)} in flight, {len(cut)} recorded harness_error and re-graded, "
                    f"{len(orphans)} orphans reaped; {time.monotonic() - prepared:.0f} s after "
                    f"{prepared - began:.0f} s of setup; " + result.note
                )
            return result
        finally:
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGKILL)
            clean_up(home)


def check_failure(result: Result, status: int, said: str) -> None:
    """The run must fail, without a traceback, with a line saying the Docker daemon went away."""
    line = next((s.strip() for s in said.splitlines() if "Docker daemon" in s and "went away" in s), "")
    if has_traceback(said):
        result.outcome, result.note = "unclear", "a traceback when the daemon died"
    elif status == 0 or not line:
        last = (said.strip().splitlines() or [""])[-1]
        result.outcome = "unclear"
        result.note = f"exit {status}, no line says the daemon went away: {last[:160]}"
    else:
        result.note = line[:200]


def check_partitions(result: Result, before: dict, after: dict, reference: dict) -> None:
    """Each lake partition is the old one or the reference's: never half, never another."""
    wrong = [
        p for p in sorted(set(before) | set(after)) if after.get(p) not in (before.get(p), reference.get(p))
    ]
    if wrong:
        result.outcome, result.lost = "lost", sum(max(sum(after.get(p, {}).values()), 1) for p in wrong)
        result.note = f"partitions neither old nor new: {wrong[:3]}"


def check_verdicts(result: Result, got: dict, reference: dict) -> list[str]:
    """The gradings the daemon took: recorded harness_error; every other verdict the reference's.
    Returns the keys recorded harness_error."""
    cut = [k for k, v in got.items() if v["outcome"] == "harness_error" and "went away" in v["reason"]]
    differ = [
        k
        for k, v in got.items()
        if k in reference and v["outcome"] not in ("harness_error", reference[k]["outcome"])
    ]
    if differ:
        result.outcome, result.lost = "lost", len(differ)
        result.note = f"{len(differ)} verdicts neither the reference's nor harness_error: {differ[:2]}"
    elif not cut and result.outcome == "survived":
        result.outcome, result.note = "lost", "no grading recorded harness_error though one was in flight"
    return cut
