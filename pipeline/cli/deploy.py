"""Deployment profiles' own commands (`candlebench deploy ...`): the project image the docker
profile's run containers start from, built locally with no registry."""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pipeline.cli.errors import UsageError
from pipeline.config import PROJECT_ROOT

IMAGE_REPOSITORY = "candlebench/project"
DEPS_REPOSITORY = "candlebench/project-deps"
BASE_IMAGE = "candlebench/python:3.11-slim-bookworm"  # pipeline/sandbox/python_image.py's OS_TAG
DIGEST_LABEL = "candlebench.project.inputs"
DOCKERFILE = PROJECT_ROOT / "deploy" / "docker" / "Dockerfile"
DEPS_DOCKERFILE = PROJECT_ROOT / "deploy" / "docker" / "deps.Dockerfile"
BUILD_DIR = PROJECT_ROOT / "deploy" / "docker" / ".build"  # the build contexts, git-ignored
SOURCES = ("pyproject.toml", "workspace.yaml", "pipeline", "assets", "sensors")  # what the image holds
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


class BuildError(UsageError):
    """Building the project image failed; the message says which step and why."""


def _files(root: Path) -> list[Path]:
    """The files the image copies from the checkout, in a fixed order."""
    found = []
    for name in SOURCES:
        path = root / name
        if path.is_file():
            found.append(path)
        else:
            found += [
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and "__pycache__" not in p.parts
                and p.suffix != ".pyc"
                and not any(part.endswith(".egg-info") for part in p.parts)
            ]
    return found


def _docker(*args: str, capture: bool = True) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["docker", *args], capture_output=capture, text=True, check=False)
    except FileNotFoundError:
        raise BuildError("the docker command is not installed (apt-get install docker.io)") from None


def base_image_id() -> str:
    found = _docker("image", "inspect", "--format", "{{.Id}}", BASE_IMAGE)
    if found.returncode != 0:
        raise BuildError(
            f"base image {BASE_IMAGE} is missing: build it with `candlebench build-pro-image` or "
            f"`.ci/docker.sh` (no registry is used); docker said: {found.stderr.strip()[:200]}"
        )
    return found.stdout.strip()


def _digest(head: str, paths: list[Path], root: Path) -> str:
    digest = hashlib.sha256(f"{head}\n".encode())
    for path in paths:
        digest.update(f"{path.relative_to(root)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def deps_tag(root: Path = PROJECT_ROOT, base_id: str | None = None) -> str:
    """The dependencies image's tag: the base image, its Dockerfile and pyproject.toml (where the
    dependencies are pinned). A code change leaves it alone."""
    digest = _digest(f"base {base_id or base_image_id()}", [DEPS_DOCKERFILE, root / "pyproject.toml"], root)
    return f"{DEPS_REPOSITORY}:{digest[:12]}"


def image_digest(root: Path = PROJECT_ROOT, base_id: str | None = None) -> str:
    """What the project image is made of: the dependencies image and every source file copied in.
    Equal inputs, equal tag: CI reuses the image."""
    return _digest(f"deps {deps_tag(root, base_id)}", [DOCKERFILE, *_files(root)], root)


def _build(tag: str, digest: str, dockerfile: Path, context: Path, *build_args: str) -> None:
    done = _docker(
        "build",
        "--network",
        "host",  # apt's Debian mirror as on the host (Docker's bridge network may be absent here)
        "--label",
        f"{DIGEST_LABEL}={digest}",
        "--tag",
        tag,
        "--file",
        str(dockerfile),
        *build_args,
        str(context),
    )
    if done.returncode != 0:
        tail = " ".join((done.stdout + done.stderr).strip().splitlines()[-6:])
        raise BuildError(f"docker build of {tag} failed (exit {done.returncode}): {tail[:600]}")


def _fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def _build_deps(root: Path, tag: str, log) -> None:
    """The dependencies image from wheels of every dependency: the host's pip reaches the package
    mirror, `docker build` runs with no index."""
    context = _fresh(BUILD_DIR / "deps")
    wheels = context / "wheels"
    log(f"wheels of the project's dependencies into {wheels} (pip wheel, the host's pip config)")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(root)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "Location" not in line]
        raise BuildError(f"pip wheel failed (exit {done.returncode}): {' '.join(errors[-5:])[:400]}")
    for own in wheels.glob("candlebench-*.whl"):  # the checkout is copied as source, not installed
        own.unlink()
    log(f"docker build {tag} (FROM {BASE_IMAGE})")
    _build(tag, tag.rsplit(":", 1)[1], DEPS_DOCKERFILE, context)
    shutil.rmtree(context, ignore_errors=True)


def _present(tag: str) -> bool:
    return _docker("image", "inspect", tag).returncode == 0


def build_image(root: Path = PROJECT_ROOT, force: bool = False, log=print) -> str:
    """Build `candlebench/project:<digest12>` unless an image of the same inputs exists (and the
    dependencies image under it likewise); its tag."""
    began = time.monotonic()
    deps = deps_tag(root)
    if force or not _present(deps):
        _build_deps(root, deps, log)
        log(f"built {deps} in {time.monotonic() - began:.0f} s")
    digest = image_digest(root)
    tag = f"{IMAGE_REPOSITORY}:{digest[:12]}"
    if not force and _present(tag):
        log(f"{tag} present (same inputs): reused")
        return tag
    context = _fresh(BUILD_DIR / "project")
    project = context / "project"
    project.mkdir()
    for name in SOURCES:
        source = root / name
        if source.is_file():
            shutil.copy2(source, project / name)
        else:
            shutil.copytree(source, project / name, ignore=SKIPPED)
    log(f"docker build {tag} (FROM {deps})")
    _build(tag, digest, DOCKERFILE, context, "--build-arg", f"DEPS={deps}")
    shutil.rmtree(context, ignore_errors=True)
    size = _docker("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip()
    log(f"built {tag} in {time.monotonic() - began:.0f} s, {int(size or 0) / 1e6:.0f} MB")
    return tag


def _build_image(args: argparse.Namespace) -> int:
    tag = build_image(force=args.force, log=lambda line: print(line, file=sys.stderr))
    print(f"export CANDLEBENCH_RUN_IMAGE={tag}")  # stdout: `eval "$(candlebench deploy build-image)"`
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    deploy = commands.add_parser("deploy", help="deployment profiles (deploy/): the docker profile's image")
    actions = deploy.add_subparsers(dest="action", required=True)
    build = actions.add_parser(
        "build-image",
        help="build the project image the docker profile's runs start in, candlebench/project:<digest>, "
        "offline (wheels from the host's pip); reused while its inputs are unchanged",
    )
    build.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    build.set_defaults(handler=_build_image)
