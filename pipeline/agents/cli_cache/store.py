"""The cache on disk: installs staged and renamed into place under a lock, read-only; latest once a day."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from pipeline import clock
from pipeline.agents.cli_cache.npm import (
    _manifest,
    download,
    packument,
    platform_package,
    registry_for,
    unpack,
)
from pipeline.agents.cli_cache.specs import (
    TIMEOUT_S,
    CliCacheError,
    Installed,
    file_sha256,
    host_platform,
    install_dir,
    spec,
)
from pipeline.config import cli_cache_root


def version_output(binary: Path) -> str:
    """What `binary --version` prints, run with a scratch HOME and nothing of the host's environment."""
    with tempfile.TemporaryDirectory(prefix="cb-version-") as scratch:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": scratch,
            "TMPDIR": scratch,
            "LANG": "C.UTF-8",
            "DISABLE_AUTOUPDATER": "1",
            "CODEX_HOME": scratch,
        }
        try:
            done = subprocess.run(
                [str(binary), "--version"],
                capture_output=True,
                text=True,
                env=env,
                timeout=TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise CliCacheError(f"{binary} --version: {err}") from err
    text = done.stdout.strip() or done.stderr.strip()
    if done.returncode != 0 or not text:
        raise CliCacheError(f"{binary} --version failed (exit {done.returncode}): {text[-300:]}")
    return text.splitlines()[0].strip()


def _read_only(tree: Path) -> None:
    """Drop write permission from every file, so a mounted or shared cache is not edited in place."""
    for path in tree.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(path.stat().st_mode & ~0o222)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- the cache --------------------------------------------------------------------------------


def _load(folder: Path) -> Installed | None:
    record = folder / "install.json"
    if not record.is_file():
        return None
    values = json.loads(record.read_text())
    values["binary"] = str(folder / values["binary"])
    return Installed(**values)


def installed(cli: str, version: str, plat: str | None = None, root: Path | None = None) -> Installed | None:
    """The cached install of `cli` at a concrete version, or None; never touches the network."""
    spec(cli)
    return _load(install_dir(cli, version, plat or host_platform(), root))


def cached(root: Path | None = None) -> list[Installed]:
    """Everything in the cache, by CLI and version."""
    root = root or cli_cache_root()
    records = sorted(root.glob("*/*/*/install.json"))
    found = [_load(r.parent) for r in records if not any(p.startswith(".") for p in r.parts[-4:])]
    return [entry for entry in found if entry is not None]


def resolve(cli: str, version: str, today: dt.date | None = None, root: Path | None = None) -> str:
    """A concrete version: `latest` is asked of the registry once per day, and the answer kept."""
    wrapper = spec(cli).package
    if version != "latest":
        return version
    root = root or cli_cache_root()
    day = (today or clock.today()).isoformat()  # a UTC day: one answer per day wherever it is asked
    record = root / cli / "latest.json"
    with _locked(root / cli / ".latest.lock"):
        seen = json.loads(record.read_text()) if record.is_file() else {}
        if day not in seen:
            latest = (packument(wrapper).get("dist-tags") or {}).get("latest")
            if not latest:
                raise CliCacheError(f"{wrapper} has no 'latest' dist-tag on {registry_for(wrapper)}")
            seen[day] = latest
            _write_json(record, seen)
    return seen[day]


def latest_resolutions(cli: str, root: Path | None = None) -> dict[str, str]:
    """Every day's answer to `latest` so far: day -> version (the CLI's releases, as we met them)."""
    record = (root or cli_cache_root()) / spec(cli).name / "latest.json"
    return json.loads(record.read_text()) if record.is_file() else {}


def _write_json(path: Path, values: dict) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def install(
    cli: str,
    version: str = "latest",
    plat: str | None = None,
    root: Path | None = None,
    today: dt.date | None = None,
) -> Installed:
    """The cached CLI, fetched and verified first if it is not there yet. Safe to run concurrently."""
    root = root or cli_cache_root()
    concrete = resolve(cli, version, today, root)
    plat = plat or host_platform()
    final = install_dir(cli, concrete, plat, root)
    if (done := _load(final)) is not None:
        return done
    with _locked(final.parent / f".{plat}.lock"):
        if (done := _load(final)) is not None:  # another process finished it while we waited
            return done
        if final.exists():  # a folder without its record is not an install: replace it
            shutil.rmtree(final)
        return _fetch(cli, concrete, plat, final)


def _fetch(cli: str, version: str, plat: str, final: Path) -> Installed:
    name, package_version = platform_package(cli, version, plat)
    manifest = _manifest(packument(name), name, package_version)
    dist = manifest.get("dist") or {}
    if not dist.get("tarball") or not dist.get("integrity"):
        raise CliCacheError(f"{name}@{package_version}: the registry gives no tarball or integrity")
    staging = final.parent / f".staging-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        tarball = staging / "package.tgz"
        download(dist["tarball"], dist["integrity"], tarball)
        unpack(tarball, staging)
        tarball.unlink()
        binary = spec(cli).binary(staging / "package")
        if not binary.is_file():
            raise CliCacheError(f"{name}@{package_version}: no executable at {binary.relative_to(staging)}")
        said = version_output(binary)
        if version not in said:
            raise CliCacheError(f"{binary.name} --version says {said!r}, expected {version}")
        record = Installed(
            cli=cli,
            version=version,
            platform=plat,
            package=f"{name}@{package_version}",
            tarball=dist["tarball"],
            integrity=dist["integrity"],
            registry=registry_for(name),
            binary=str(binary.relative_to(staging)),
            sha256=file_sha256(binary),
            version_output=said,
            installed_at=clock.now().isoformat(timespec="seconds"),
        )
        (staging / "install.json").write_text(json.dumps(asdict(record), indent=2) + "\n")
        _read_only(staging)
        os.rename(staging, final)  # atomic: readers see no folder or a complete one
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    loaded = _load(final)
    if loaded is None:
        raise CliCacheError(f"{final}: the install vanished right after it was made")
    return loaded
