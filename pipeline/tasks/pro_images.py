"""Build a SWE-Bench-Pro task image offline, as its two Dockerfiles describe, named as Pro names it.

Pro grades each task in `jefzda/sweap-images:<dockerhub_tag>`, built from a base and an instance
Dockerfile. With no container registry, the image is rebuilt here from a fixture folder
(`rows.jsonl`, `dockerfiles/{base,instance}_dockerfile/<id>/Dockerfile`, `<name>.bundle` and
`<name>.shallow` for the repository `<owner>/<name>`):

- `FROM python:3.11-slim` is replaced by its debootstrapped equivalent (sandbox/python_image.py).
- `RUN git clone <the row's repository> <dest>` is replaced by a fetch from the git bundle, with
  its shallow boundary, so /app is a shallow clone holding the commits the row needs.
- Every other instruction runs as written, in order, through the step runner
  (sandbox/dockerfile.py): root, the default network, apt and PyPI.

The host's CA bundle is lent to RUN steps (read-only under /mnt, never committed), because TLS
to PyPI may be intercepted on the build machine's network. The image is labelled with a digest of
its inputs and reused while an image with that label exists; steps are cached like Docker's.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.sandbox import SandboxUnavailable
from pipeline.sandbox.daemon import DockerDaemon
from pipeline.sandbox.dockerfile import (
    BUILD_MOUNT,
    STEP_LABEL,
    BuildLog,
    DockerfileError,
    Instruction,
    Stage,
    StepRunner,
    from_of,
    host_ca_bundle,
    parse_dockerfile,
)
from pipeline.sandbox.python_image import BUILDER_VERSION, SLIM_BASE, build_os_image, os_digest

PRO_REPOSITORY = "jefzda/sweap-images"

INPUTS_LABEL = "candlebench.pro.inputs"

INSTANCE_LABEL = "candlebench.pro.instance"

_CLONE = re.compile(r"^\s*git\s+clone\s+(\S+)(?:\s+(\S+))?\s*$")


class ProImageError(DockerfileError):
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
        missing = [
            k
            for k in ("instance_id", "repo", "base_commit")
            if not isinstance(row, dict) or not isinstance(row.get(k), str) or not row.get(k)
        ]
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
        paths = {
            "base Dockerfile": folder / "dockerfiles" / "base_dockerfile" / iid / "Dockerfile",
            "instance Dockerfile": folder / "dockerfiles" / "instance_dockerfile" / iid / "Dockerfile",
            "git bundle": folder / f"{name}.bundle",
            "shallow file": folder / f"{name}.shallow",
        }
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


def inputs_digest(fixture: Fixture) -> str:
    """sha256 of everything the task image is built from: Dockerfiles, bundle, shallow, builder."""
    parts = {
        "builder": BUILDER_VERSION,
        "os": os_digest(),
        "instance_id": fixture.instance_id,
        "repo": fixture.row["repo"],
        "base": _sha256(fixture.base_dockerfile),
        "instance": _sha256(fixture.instance_dockerfile),
        "bundle": _sha256(fixture.bundle),
        "shallow": _sha256(fixture.shallow),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _clone_replacement(instruction: Instruction, fixture: Fixture) -> tuple[str, str] | None:
    """The offline script for a RUN that clones the row's repository, else None."""
    match = _CLONE.match(instruction.value) if instruction.keyword == "RUN" else None
    if not match:
        return None
    url, dest = match.group(1), match.group(2)
    repo = fixture.row["repo"]
    if url.lower().removesuffix(".git").removesuffix("/") != f"https://github.com/{repo}".lower():
        raise ProImageError(
            f"line {instruction.line}: clones {url}, not the row's repository {repo}; "
            f"only {fixture.bundle.name} is available offline"
        )
    dest = dest or posixpath.basename(url.removesuffix(".git"))
    bundle, shallow = f"{BUILD_MOUNT}/{fixture.bundle.name}", f"{BUILD_MOUNT}/{fixture.shallow.name}"
    script = "\n".join(
        [
            "set -e",
            f"git init -q {shlex.quote(dest)}",
            f"cp {shallow} {shlex.quote(dest)}/.git/shallow",
            f"git -C {shlex.quote(dest)} remote add origin {shlex.quote(url)}",
            f"git -C {shlex.quote(dest)} fetch -q {bundle} 'refs/heads/*:refs/remotes/origin/*'",
        ]
    )
    return script, f"the clone is filled from {fixture.bundle.name} + {fixture.shallow.name}"


def _context(scratch: Path, fixture: Fixture) -> tuple[Path, list[str]]:
    """The folder lent to RUN steps (bundle, shallow file, host CA) and the env naming the CA."""
    context = scratch / "context"
    context.mkdir()
    for path in (fixture.bundle, fixture.shallow):
        shutil.copy(path, context / path.name)
    env = []
    if (ca := host_ca_bundle()) is not None:
        shutil.copy(ca, context / "host-ca.crt")
        ca_path = f"{BUILD_MOUNT}/host-ca.crt"
        env = [f"PIP_CERT={ca_path}", f"SSL_CERT_FILE={ca_path}", f"REQUESTS_CA_BUNDLE={ca_path}"]
    context.chmod(0o755)
    return context, env


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
        raise ProImageError(
            f"{image}: check failed (exit {check.exit_code}; /app at {head or '?'}, "
            f"expected {fixture.row['base_commit']}):\n{check.output.strip()[-2000:]}"
        )


def _present(daemon: DockerDaemon, tag: str, digest: str) -> str | None:
    """An image built from these inputs: the tagged one if it is (images made on top of it inherit
    its labels, so the tag is asked first), else one labelled so, e.g. after the tag was moved."""
    tagged = daemon.image_id(tag)
    if tagged and (daemon.image_config(tagged).get("Labels") or {}).get(INPUTS_LABEL) == digest:
        return tagged
    found = daemon.images_labelled({INPUTS_LABEL: digest, STEP_LABEL: digest})
    return found[0] if found else None


def build_pro_image(
    fixture: Fixture,
    daemon: DockerDaemon | None = None,
    mirror: str | None = None,
    log: Callable[[str], None] = print,
    force: bool = False,
) -> BuiltImage:
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
    if (start := from_of(base, str(fixture.base_dockerfile))) != SLIM_BASE:
        raise ProImageError(f"{fixture.base_dockerfile}: FROM {start}; this builder makes only {SLIM_BASE}")
    from_of(instance, str(fixture.instance_dockerfile))  # FROM the base Dockerfile's image, by construction
    previous = daemon.image_id(tag)
    with tempfile.TemporaryDirectory(prefix="cb-pro-build-", dir="/var/tmp") as scratch:
        context, build_env = _context(Path(scratch), fixture)
        output = BuildLog(Path(tempfile.gettempdir()) / f"cb-pro-build-{fixture.instance_id[:60]}.log")
        output.path.write_bytes(b"")
        log(f"building {tag} (inputs {digest[:12]}; step output in {output.path})")
        runner = StepRunner(
            daemon,
            context,
            build_env,
            log,
            output,
            replace=lambda step: _clone_replacement(step, fixture),
            replaced_inputs=digest,
            use_cache=not force,
        )
        stage = Stage.of(daemon, build_os_image(daemon, mirror, log, force=force))
        stage = runner.run_dockerfile("base", base, stage)
        stage.cmd_set = False  # a new Dockerfile: its own CMD bookkeeping
        stage = runner.run_dockerfile("instance", instance, stage)
        final = stage.config({INPUTS_LABEL: digest, INSTANCE_LABEL: fixture.instance_id, STEP_LABEL: digest})
        _, image = daemon.commit_step(stage.image, [], final, {}, 60, output.add)
        runner.check_config(image, final)
    _verify(daemon, image, fixture)
    daemon.tag_image(image, tag)
    if previous and previous != image:
        daemon.remove_image(previous, force=False)  # the replaced build, unless still in use
    seconds = time.monotonic() - started
    size = daemon.image_size(tag)
    log(f"built {tag} ({image[7:19]}, {size / 1e6:.0f} MB) in {seconds:.0f}s")
    return BuiltImage(tag, image, False, seconds, size)
