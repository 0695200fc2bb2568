"""Build a SWE-Bench-Pro task image offline, as its two Dockerfiles describe, named as Pro names it.

Pro grades each task in `jefzda/sweap-images:<dockerhub_tag>`, built from a base and an instance
Dockerfile. With no container registry, the image is rebuilt here from a fixture folder
(`rows.jsonl`, `dockerfiles/{base,instance}_dockerfile/<id>/Dockerfile`, `<name>.bundle` and
`<name>.shallow` for the repository `<owner>/<name>`):

- `FROM python:3.11-slim` is replaced by an equivalent debootstrapped from Debian bookworm
  (python3.11 as `python`/`python3`, `pip`, pip installs allowed), imported into Docker.
- `RUN git clone <the row's repository> <dest>` is replaced by a fetch from the git bundle, with
  its shallow boundary, so /app is a shallow clone holding the commits the row needs.
- Every other instruction runs as written, in order. Docker 20.10's builders (classic and
  BuildKit alike) reject the heredocs these Dockerfiles use, so a small step runner executes
  them: each RUN in a container of the previous step (root, default network, for apt and PyPI),
  committed with the image config built so far. It knows FROM, RUN, ENV, WORKDIR, ENTRYPOINT and
  CMD, the instructions Pro's Dockerfiles use, and refuses anything else.

The host's CA bundle is lent to RUN steps (read-only under /mnt, never committed), because TLS
to PyPI may be intercepted on the build machine's network. The image is labelled with a digest of
its inputs and reused while an image with that label exists; steps are cached like Docker's.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import shlex
import shutil
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.images import apt_mirror, unmount_under
from pipeline.sandbox import DockerDaemon, SandboxUnavailable

BUILDER_VERSION = "1"  # bump whenever a change here alters what gets built
PRO_REPOSITORY = "jefzda/sweap-images"
INPUTS_LABEL = "candlebench.pro.inputs"
INSTANCE_LABEL = "candlebench.pro.instance"
STEP_LABEL = "candlebench.build.step"
OS_LABEL = "candlebench.os.inputs"
SLIM_BASE = "python:3.11-slim"
OS_TAG = "candlebench/python:3.11-slim-bookworm"
OS_SUITE = "bookworm"
# What python:3.11-slim has on top of a minimal Debian: python, pip, CA certificates, tzdata.
OS_PACKAGES = ("python3", "python3-pip", "python-is-python3", "ca-certificates", "netbase", "tzdata")
OS_ENV = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
          "LANG": "C.UTF-8"}
OS_CMD = ["python3"]
OS_TRIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info")
BUILD_MOUNT = "/mnt"  # empty in every Debian image, so mounting over it commits nothing
STEP_TIMEOUT_S = 3600
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_CLONE = re.compile(r"^\s*git\s+clone\s+(\S+)(?:\s+(\S+))?\s*$")


class ProImageError(RuntimeError):
    """The image cannot be built from these inputs; the message says why and where."""


def dockerhub_tag(instance_id: str, repo: str) -> str:
    """The image tag Pro's harness uses when a row has no `dockerhub_tag` (its image_uri rule)."""
    owner, _, name = repo.lower().partition("/")
    if not owner or not name or "/" in name:
        raise ProImageError(f"repo {repo!r} is not <owner>/<name>")
    rest = instance_id.removeprefix("instance_")
    element = "element-hq" in repo.lower() and "element-web" in repo.lower()
    if instance_id == "instance_element-hq__element-web-ec0f940ef0e8e3b61078f145f34dc40d1938e6c5-vnan":
        name = "element-web"  # the one Pro image that keeps both the full name and -vnan
    else:
        if element:
            name = "element"
        rest = rest.removesuffix("-vnan")
    return f"{owner}.{name}-{rest}"[:128]


def pro_image_name(row: Mapping[str, str]) -> str:
    """`jefzda/sweap-images:<tag>`: the row's `dockerhub_tag`, else the tag Pro derives."""
    tag = row.get("dockerhub_tag") or dockerhub_tag(row["instance_id"], row["repo"])
    return f"{PRO_REPOSITORY}:{tag}"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    value: str  # for RUN with heredocs: the command line followed by the heredocs, as BuildKit runs it
    line: int  # where it starts in the Dockerfile, from 1


def _heredoc_bodies(lines: list[str], start: int, command: str) -> tuple[str, int]:
    """`command` with its heredoc bodies appended (BuildKit's shell form), and the next line index."""
    script, i = command, start
    for match in _HEREDOC.finditer(command):
        strip_tabs, name = match.group(1) == "-", match.group(3)
        body = []
        while i < len(lines) and (lines[i].lstrip("\t") if strip_tabs else lines[i]) != name:
            body.append(lines[i] + "\n")
            i += 1
        if i == len(lines):
            raise ProImageError(f"heredoc {name} opened on line {start} is never closed")
        script += "\n" + "".join(body) + name
        i += 1
    return script, i


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions of a Dockerfile: comments dropped, continuations joined, RUN heredocs kept."""
    lines, found, i = text.splitlines(), [], 0
    while i < len(lines):
        start, line = i + 1, lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        logical = line
        while logical.endswith("\\"):
            logical = logical[:-1]
            while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                i += 1  # Docker drops comment and blank lines inside a continuation
            if i < len(lines):
                logical += lines[i]
                i += 1
        keyword, _, value = logical.strip().partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "RUN" and not value.startswith("[") and _HEREDOC.search(value):
            value, i = _heredoc_bodies(lines, i, value)
        found.append(Instruction(keyword, value, start))
    return found


def parse_env(value: str) -> list[tuple[str, str]]:
    """(name, value) pairs of an ENV instruction, both forms; variable references are refused."""
    if "$" in value:
        raise ProImageError(f"ENV {value}: variable references are not supported by this builder")
    words = shlex.split(value)
    if words and "=" not in words[0]:  # legacy `ENV NAME value with spaces`
        name, _, rest = value.partition(" ")
        return [(name, rest.strip())]
    pairs = [word.partition("=") for word in words]
    if not pairs or any(not name or sep != "=" for name, sep, _ in pairs):
        raise ProImageError(f"ENV {value}: expected NAME=value pairs")
    return [(name, setting) for name, _, setting in pairs]


def command_form(value: str) -> list[str]:
    """argv of a RUN, CMD or ENTRYPOINT: the exec form as written, the shell form under /bin/sh -c."""
    if value.startswith("["):
        try:
            argv = json.loads(value)
        except json.JSONDecodeError as err:
            raise ProImageError(f"{value}: not a JSON array: {err}") from err
        if not isinstance(argv, list) or not all(isinstance(word, str) for word in argv):
            raise ProImageError(f"{value}: the exec form must be a list of strings")
        return argv
    return ["/bin/sh", "-c", value]


@dataclass
class Stage:
    """The image config a Dockerfile has built so far, on top of image `image`."""

    image: str
    env: dict[str, str]
    workdir: str
    entrypoint: list[str]
    cmd: list[str] | None
    labels: dict[str, str]
    cmd_set: bool = False  # CMD given in this Dockerfile: ENTRYPOINT then keeps it

    @classmethod
    def of(cls, daemon: DockerDaemon, image: str) -> Stage:
        config = daemon.image_config(image)
        env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
        return cls(image, env, config.get("WorkingDir") or "/", list(config.get("Entrypoint") or []),
                   config.get("Cmd"), dict(config.get("Labels") or {}))

    def config(self, labels: Mapping[str, str] | None = None) -> dict:
        """The config to commit: Docker's merge keeps nothing of the step container's own."""
        return {"Env": [f"{k}={v}" for k, v in self.env.items()], "WorkingDir": self.workdir,
                "Entrypoint": self.entrypoint, "Cmd": self.cmd, "Labels": {**self.labels, **(labels or {})},
                "User": ""}

    def apply(self, instruction: Instruction) -> None:
        """ENV, WORKDIR, ENTRYPOINT and CMD change only the config, as in Docker."""
        keyword, value = instruction.keyword, instruction.value
        if keyword == "ENV":
            self.env.update(parse_env(value))
        elif keyword == "WORKDIR":  # created by the next step's container, as Docker does
            if "$" in value:
                raise ProImageError(f"WORKDIR {value}: variable references are not supported")
            self.workdir = posixpath.normpath(posixpath.join(self.workdir, value))
        elif keyword == "ENTRYPOINT":
            self.entrypoint = command_form(value)
            if not self.cmd_set:
                self.cmd = None  # an inherited CMD does not survive a new ENTRYPOINT
        elif keyword == "CMD":
            self.cmd, self.cmd_set = command_form(value), True


@dataclass(frozen=True)
class Fixture:
    """One Pro task's build inputs, checked: its row, its two Dockerfiles, its git bundle."""

    folder: Path
    row: dict[str, str]
    base_dockerfile: Path
    instance_dockerfile: Path
    bundle: Path
    shallow: Path

    @property
    def instance_id(self) -> str:
        return self.row["instance_id"]

    @property
    def image(self) -> str:
        return pro_image_name(self.row)


def _read_rows(path: Path) -> list[dict[str, str]]:
    """The JSON Lines rows of `path`, each with at least instance_id, repo and base_commit."""
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ProImageError(f"{path}:{number}: not JSON: {err}") from err
        missing = [k for k in ("instance_id", "repo", "base_commit") if not isinstance(row, dict)
                   or not isinstance(row.get(k), str) or not row.get(k)]
        if missing:
            raise ProImageError(f"{path}:{number}: row lacks {', '.join(missing)}")
        rows.append(row)
    if not rows:
        raise ProImageError(f"{path}: no rows")
    return rows


def load_fixtures(folder: Path, instance_id: str | None = None) -> list[Fixture]:
    """The buildable tasks of a fixture folder (every row, or `instance_id`'s); errors name what lacks."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ProImageError(f"{folder}: no such folder")
    rows_file = folder / "rows.jsonl"
    if not rows_file.is_file():
        raise ProImageError(f"{folder}: no rows.jsonl")
    rows = _read_rows(rows_file)
    if instance_id is not None:
        rows = [row for row in rows if row["instance_id"] == instance_id]
        if not rows:
            raise ProImageError(f"{rows_file}: no row with instance_id {instance_id}")
    fixtures = []
    for row in rows:
        iid, name = row["instance_id"], row["repo"].rpartition("/")[2]
        paths = {"base Dockerfile": folder / "dockerfiles" / "base_dockerfile" / iid / "Dockerfile",
                 "instance Dockerfile": folder / "dockerfiles" / "instance_dockerfile" / iid / "Dockerfile",
                 "git bundle": folder / f"{name}.bundle", "shallow file": folder / f"{name}.shallow"}
        for what, path in paths.items():
            if not path.is_file():
                raise ProImageError(f"{iid}: its {what} is missing ({path})")
        fixtures.append(Fixture(folder, row, *paths.values()))
    return fixtures


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def os_digest() -> str:
    """What the python:3.11-slim equivalent is made of; its label, so a change rebuilds it."""
    recipe = {"builder": BUILDER_VERSION, "suite": OS_SUITE, "packages": OS_PACKAGES, "env": OS_ENV,
              "cmd": OS_CMD, "trim": OS_TRIM}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def inputs_digest(fixture: Fixture) -> str:
    """sha256 of everything the task image is built from: Dockerfiles, bundle, shallow, builder."""
    parts = {"builder": BUILDER_VERSION, "os": os_digest(), "instance_id": fixture.instance_id,
             "repo": fixture.row["repo"], "base": _sha256(fixture.base_dockerfile),
             "instance": _sha256(fixture.instance_dockerfile), "bundle": _sha256(fixture.bundle),
             "shallow": _sha256(fixture.shallow)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _sources(mirror: str) -> str:
    """apt sources as python:3.11-slim has them (bookworm, -updates, -security), on `mirror`."""
    stanza = "Types: deb\nURIs: {uri}\nSuites: {suites}\nComponents: main\n" \
             "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    text = stanza.format(uri=mirror, suites=f"{OS_SUITE} {OS_SUITE}-updates")
    if mirror.endswith("/debian"):
        text += "\n" + stanza.format(uri=f"{mirror}-security", suites=f"{OS_SUITE}-security")
    return text


def _prepare_os_root(root: Path, mirror: str) -> None:
    """Make the debootstrapped tree look like python:3.11-slim's: its apt sources, pip allowed."""
    for rel in OS_TRIM:
        target = root / rel
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir(parents=True)
    for rel in ("var/cache/apt/archives/partial", "var/lib/apt/lists/partial"):
        (root / rel).mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(_sources(mirror))
    for marker in (root / "usr/lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()  # python:3.11-slim's pip installs into the system Python; so does Pro's build
    for rel in ("etc/resolv.conf", "etc/hostname"):  # Docker provides its own; don't ship the host's
        (root / rel).unlink(missing_ok=True)
        (root / rel).touch()


def build_os_image(daemon: DockerDaemon, mirror: str | None, log: Callable[[str], None],
                   force: bool = False) -> str:
    """The python:3.11-slim equivalent (OS_TAG), built by debootstrap unless present; its id."""
    digest = os_digest()
    found = daemon.image_id(OS_TAG)
    if found and not force and (daemon.image_config(OS_TAG).get("Labels") or {}).get(OS_LABEL) == digest:
        log(f"{SLIM_BASE} equivalent present: {OS_TAG} ({found[7:19]})")
        return found
    if shutil.which("debootstrap") is None:
        raise ProImageError("debootstrap is not installed (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise ProImageError("debootstrap needs root; build the Pro image as root")
    mirror = mirror or apt_mirror()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cb-pro-os-", dir="/var/tmp") as scratch:
        root = Path(scratch) / "root"
        try:
            command = ["debootstrap", "--variant=minbase", f"--include={','.join(OS_PACKAGES)}",
                       "--components=main", OS_SUITE, str(root), mirror]
            log(f"{SLIM_BASE} equivalent: {' '.join(command)}")
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
                raise ProImageError(f"debootstrap failed (exit {done.returncode}):\n{tail}")
            _prepare_os_root(root, mirror)
            changes = [f"ENV {k}={v}" for k, v in OS_ENV.items()]
            changes += [f"CMD {json.dumps(OS_CMD)}", f"LABEL {OS_LABEL}={digest}"]
            tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(root), "-c", "."],
                                   stdout=subprocess.PIPE)
            try:
                built = daemon.import_rootfs(tar.stdout, OS_TAG, changes)
            finally:
                tar.stdout.close()
                tar.wait()
            if tar.returncode != 0:
                raise ProImageError(f"tar of the root file system failed (exit {tar.returncode})")
        finally:
            unmount_under(root)
    if found and found != built:
        daemon.remove_image(found, force=False)  # the replaced build, unless images still use it
    log(f"{SLIM_BASE} equivalent built: {OS_TAG} in {time.monotonic() - started:.0f}s")
    return built


def _clone_replacement(instruction: Instruction, fixture: Fixture) -> str | None:
    """The offline script for a RUN that clones the row's repository, else None."""
    match = _CLONE.match(instruction.value) if instruction.keyword == "RUN" else None
    if not match:
        return None
    url, dest = match.group(1), match.group(2)
    repo = fixture.row["repo"]
    if url.lower().removesuffix(".git").removesuffix("/") != f"https://github.com/{repo}".lower():
        raise ProImageError(f"line {instruction.line}: clones {url}, not the row's repository {repo}; "
                            f"only {fixture.bundle.name} is available offline")
    dest = dest or posixpath.basename(url.removesuffix(".git"))
    bundle, shallow = f"{BUILD_MOUNT}/{fixture.bundle.name}", f"{BUILD_MOUNT}/{fixture.shallow.name}"
    return "\n".join([
        "set -e", f"git init -q {shlex.quote(dest)}", f"cp {shallow} {shlex.quote(dest)}/.git/shallow",
        f"git -C {shlex.quote(dest)} remote add origin {shlex.quote(url)}",
        f"git -C {shlex.quote(dest)} fetch -q {bundle} 'refs/heads/*:refs/remotes/origin/*'",
    ])


@dataclass
class BuildLog:
    """Where each step's output goes: a file, and the last lines kept for an error message."""

    path: Path
    tail: list[str] = field(default_factory=list)

    def add(self, chunk: bytes) -> None:
        with self.path.open("ab") as handle:
            handle.write(chunk)
        self.tail = (self.tail + chunk.decode("utf-8", errors="replace").splitlines())[-40:]


@dataclass
class StepRunner:
    """Runs Dockerfile instructions through DockerDaemon, one committed image per RUN."""

    daemon: DockerDaemon
    fixture: Fixture
    context: Path  # mounted read-only at BUILD_MOUNT in every RUN step
    build_env: list[str]  # NAME=value for RUN processes only, never committed
    log: Callable[[str], None]
    output: BuildLog
    use_cache: bool = True

    def run_dockerfile(self, name: str, instructions: list[Instruction], stage: Stage) -> Stage:
        """Apply `instructions` after their FROM on `stage`; the stage holding the last image."""
        for number, instruction in enumerate(instructions[1:], 2):
            started = time.monotonic()
            shown = instruction.value.splitlines()[0][:90]
            self.log(f"[{name} {number}/{len(instructions)}] {instruction.keyword} {shown}")
            if instruction.keyword == "RUN":
                stage.image = self._run(instruction, stage)
                self.log(f"      {time.monotonic() - started:.0f}s")
            elif instruction.keyword in ("ENV", "WORKDIR", "ENTRYPOINT", "CMD"):
                stage.apply(instruction)
            else:
                raise ProImageError(f"{name} Dockerfile line {instruction.line}: {instruction.keyword} "
                                    "is not supported by this builder")
        return stage

    def _run(self, instruction: Instruction, stage: Stage) -> str:
        """One RUN step's committed image, from the step cache when the same step ran before."""
        script = _clone_replacement(instruction, self.fixture)
        if script is not None:
            source = f"{self.fixture.bundle.name} + {self.fixture.shallow.name}"
            self.log(f"      offline: the clone is filled from {source}")
            argv = ["/bin/sh", "-c", script]
        else:
            argv = command_form(instruction.value)
        config = stage.config()
        key = hashlib.sha256(json.dumps([stage.image, argv, config, inputs_digest(self.fixture)
                                         if script else ""]).encode()).hexdigest()
        if self.use_cache and (cached := self.daemon.images_labelled({STEP_LABEL: key})):
            self.log("      cached")
            return cached[0]
        config["Labels"][STEP_LABEL] = key
        exit_code, image = self.daemon.commit_step(
            stage.image, ["/usr/bin/env", *self.build_env, *argv], config,
            {str(self.context): BUILD_MOUNT}, STEP_TIMEOUT_S, self.output.add)
        if image is None:
            status = "timed out" if exit_code is None else f"exited {exit_code}"
            tail = "\n".join(self.output.tail[-25:])
            raise ProImageError(f"line {instruction.line} (RUN {instruction.value.splitlines()[0][:80]}) "
                                f"{status}; its last lines:\n{tail}\nfull log: {self.output.path}")
        self._check_config(image, config)
        return image

    def _check_config(self, image: str, expected: Mapping) -> None:
        """Docker's commit merges the step container's config in: make sure nothing leaked."""
        found = self.daemon.image_config(image)
        for key in ("Env", "Entrypoint", "Cmd", "WorkingDir", "Labels"):
            if (found.get(key) or None) != (expected.get(key) or None):
                raise ProImageError(f"committed image {image[7:19]} has {key}={found.get(key)!r}, "
                                    f"expected {expected.get(key)!r}")


def _host_ca_bundle() -> Path | None:
    """The CA bundle the host trusts, if it has one on file."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile, "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def _context(scratch: Path, fixture: Fixture) -> tuple[Path, list[str]]:
    """The folder lent to RUN steps (bundle, shallow file, host CA) and the env naming the CA."""
    context = scratch / "context"
    context.mkdir()
    for path in (fixture.bundle, fixture.shallow):
        shutil.copy(path, context / path.name)
    env = []
    if (ca := _host_ca_bundle()) is not None:
        shutil.copy(ca, context / "host-ca.crt")
        ca_path = f"{BUILD_MOUNT}/host-ca.crt"
        env = [f"PIP_CERT={ca_path}", f"SSL_CERT_FILE={ca_path}", f"REQUESTS_CA_BUNDLE={ca_path}"]
    context.chmod(0o755)
    return context, env


def _from_of(instructions: list[Instruction], where: str) -> str:
    """The image a Dockerfile starts FROM (its first instruction must be FROM)."""
    if not instructions or instructions[0].keyword != "FROM":
        raise ProImageError(f"{where}: the first instruction is not FROM")
    if any(i.keyword == "FROM" for i in instructions[1:]):
        raise ProImageError(f"{where}: multi-stage Dockerfiles are not supported by this builder")
    words = instructions[0].value.split()
    if not words or words[0].startswith("--"):
        raise ProImageError(f"{where}: FROM {instructions[0].value} is not supported by this builder")
    return words[0]


@dataclass(frozen=True)
class BuiltImage:
    tag: str
    image_id: str
    reused: bool
    seconds: float
    size_bytes: int


def _verify(daemon: DockerDaemon, image: str, fixture: Fixture) -> None:
    """The built image has /app at the row's base commit, and python and pip run."""
    script = "git -C /app rev-parse HEAD && python --version && pip --version"
    check = daemon.run_container(image, ["-c", script], entrypoint=["/bin/bash"], timeout_s=120)
    head = check.stdout.split()[0] if check.stdout.split() else ""
    if check.exit_code != 0 or head != fixture.row["base_commit"]:
        raise ProImageError(f"{image}: check failed (exit {check.exit_code}; /app at {head or '?'}, "
                            f"expected {fixture.row['base_commit']}):\n{check.output.strip()[-2000:]}")


def _present(daemon: DockerDaemon, tag: str, digest: str) -> str | None:
    """An image built from these inputs: the tagged one if it is (images made on top of it inherit
    its labels, so the tag is asked first), else one labelled so, e.g. after the tag was moved."""
    tagged = daemon.image_id(tag)
    if tagged and (daemon.image_config(tagged).get("Labels") or {}).get(INPUTS_LABEL) == digest:
        return tagged
    found = daemon.images_labelled({INPUTS_LABEL: digest, STEP_LABEL: digest})
    return found[0] if found else None


def build_pro_image(fixture: Fixture, daemon: DockerDaemon | None = None, mirror: str | None = None,
                    log: Callable[[str], None] = print, force: bool = False) -> BuiltImage:
    """Build (or reuse) the task's image from its Dockerfiles, tagged `jefzda/sweap-images:<tag>`."""
    started = time.monotonic()
    if daemon is None:
        try:
            daemon = DockerDaemon(timeout=900)  # importing a root file system takes a while
        except SandboxUnavailable as err:
            raise ProImageError(str(err)) from err
    digest, tag = inputs_digest(fixture), fixture.image
    if not force and (found := _present(daemon, tag, digest)):
        daemon.tag_image(found, tag)
        log(f"{tag} present with inputs {digest[:12]}: {found[7:19]}")
        return BuiltImage(tag, found, True, time.monotonic() - started, daemon.image_size(tag))
    base = parse_dockerfile(fixture.base_dockerfile.read_text())
    instance = parse_dockerfile(fixture.instance_dockerfile.read_text())
    if (start := _from_of(base, str(fixture.base_dockerfile))) != SLIM_BASE:
        raise ProImageError(f"{fixture.base_dockerfile}: FROM {start}; this builder makes only {SLIM_BASE}")
    _from_of(instance, str(fixture.instance_dockerfile))  # FROM the base Dockerfile's image, by construction
    previous = daemon.image_id(tag)
    with tempfile.TemporaryDirectory(prefix="cb-pro-build-", dir="/var/tmp") as scratch:
        context, build_env = _context(Path(scratch), fixture)
        output = BuildLog(Path(tempfile.gettempdir()) / f"cb-pro-build-{fixture.instance_id[:60]}.log")
        output.path.write_bytes(b"")
        log(f"building {tag} (inputs {digest[:12]}; step output in {output.path})")
        runner = StepRunner(daemon, fixture, context, build_env, log, output, use_cache=not force)
        stage = Stage.of(daemon, build_os_image(daemon, mirror, log, force=force))
        stage = runner.run_dockerfile("base", base, stage)
        stage.cmd_set = False  # a new Dockerfile: its own CMD bookkeeping
        stage = runner.run_dockerfile("instance", instance, stage)
        final = stage.config({INPUTS_LABEL: digest, INSTANCE_LABEL: fixture.instance_id, STEP_LABEL: digest})
        _, image = daemon.commit_step(stage.image, [], final, {}, 60, output.add)
        runner._check_config(image, final)
    _verify(daemon, image, fixture)
    daemon.tag_image(image, tag)
    if previous and previous != image:
        daemon.remove_image(previous, force=False)  # the replaced build, unless still in use
    seconds = time.monotonic() - started
    size = daemon.image_size(tag)
    log(f"built {tag} ({image[7:19]}, {size / 1e6:.0f} MB) in {seconds:.0f}s")
    return BuiltImage(tag, image, False, seconds, size)
