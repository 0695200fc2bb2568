"""The pinned CLI cache: the vendors' agent CLIs, fetched once from npm, verified, kept read-only.

Both CLIs ship their native binary in a per-platform npm package, named by the wrapper
package's `optionalDependencies` for that version:

- `claude-code`: `@anthropic-ai/claude-code@V` lists `@anthropic-ai/claude-code-linux-x64: V`
  (also `-linux-x64-musl`, `-linux-arm64[-musl]`, `-darwin-*`, `-win32-*`), whose tarball holds
  `package/claude`, a native ELF.
- `codex`: `@openai/codex@V` lists `@openai/codex-linux-x64: "npm:@openai/codex@V-linux-x64"`, an
  alias to a platform *version* of the same package, whose tarball holds
  `package/vendor/<target triple>/` (`codex-package.json` names the entrypoint, `bin/codex`, a
  static musl binary, beside its `codex-resources/` and `codex-path/`).

Only the platform tarball is fetched: the wrapper is a Node launcher we do not need. Its bytes are
checked against the registry's `dist.integrity` (sha512 SRI) before anything is unpacked. An
install lands in `<root>/<cli>/<version>/<platform>/` (`package/` plus `install.json`: the
tarball, its integrity, the binary's path, sha256 and `--version` output). It is staged in a
scratch folder and renamed into place, under a file lock, so two concurrent installs leave one
complete copy. `latest` is resolved once per UTC day and the answer kept in
`<root>/<cli>/latest.json`, a day -> version map, so every day's resolution stays on record.

The registry is npm's own (`npm_config_registry`, else `registry=` or `@scope:registry=` in
~/.npmrc, else registry.npmjs.org), read with urllib: no Node or npm is needed on the machine,
and the integrity check is ours, done before unpacking.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline import clock
from pipeline.config import cli_cache_root

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
PACKUMENT = "application/vnd.npm.install-v1+json"  # the abbreviated document npm itself reads
CHUNK = 1 << 20
TIMEOUT_S = 60


class CliCacheError(RuntimeError):
    """A CLI could not be resolved, fetched, verified or run; the message says which and why."""


def _claude_binary(package: Path) -> Path:
    return package / "claude"


def _codex_binary(package: Path) -> Path:
    """The entrypoint `codex-package.json` names, else the conventional `bin/codex`."""
    for manifest in sorted(package.glob("vendor/*/codex-package.json")):
        entry = json.loads(manifest.read_text()).get("entrypoint") or "bin/codex"
        return manifest.parent / entry
    found = sorted(package.glob("vendor/*/bin/codex"))
    if not found:
        raise CliCacheError(f"{package}: no vendor/<target>/bin/codex in the codex package")
    return found[0]


@dataclass(frozen=True)
class CliSpec:
    name: str
    package: str  # the wrapper package, whose optionalDependencies name the platform packages
    binary: Callable[[Path], Path]  # where the executable is inside the unpacked `package/`


CLIS = {
    "claude-code": CliSpec("claude-code", "@anthropic-ai/claude-code", _claude_binary),
    "codex": CliSpec("codex", "@openai/codex", _codex_binary),
}


@dataclass(frozen=True)
class Installed:
    """One cached CLI: what was fetched, where its binary is, and what it says it is."""

    cli: str
    version: str
    platform: str
    package: str  # the platform package, e.g. @anthropic-ai/claude-code-linux-x64@2.1.328
    tarball: str
    integrity: str
    registry: str
    binary: str  # absolute path of the executable
    sha256: str
    version_output: str  # its `--version`, e.g. "2.1.328 (Claude Code)"
    installed_at: str

    def verify(self) -> None:
        """Fail unless the binary on disk is still the one installed."""
        if not Path(self.binary).is_file():
            raise CliCacheError(f"{self.cli} {self.version}: {self.binary} is missing from the cache")
        if file_sha256(Path(self.binary)) != self.sha256:
            raise CliCacheError(f"{self.cli} {self.version}: {self.binary} changed since it was installed")


# --- where things are -------------------------------------------------------------------------

def spec(cli: str) -> CliSpec:
    if cli not in CLIS:
        raise CliCacheError(f"unknown CLI {cli!r} (known: {', '.join(CLIS)})")
    return CLIS[cli]


def host_platform() -> str:
    """npm's platform key for this machine: linux-x64, linux-x64-musl, linux-arm64, darwin-arm64..."""
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "")
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), "")
    if not system or not arch:
        raise CliCacheError(f"no npm platform for {platform.system()} {platform.machine()}")
    musl = system == "linux" and platform.libc_ver()[0] != "glibc" and any(Path("/lib").glob("ld-musl-*"))
    return f"{system}-{arch}{'-musl' if musl else ''}"


def install_dir(cli: str, version: str, plat: str, root: Path | None = None) -> Path:
    return (root or cli_cache_root()) / cli / version / plat


# --- the registry -----------------------------------------------------------------------------

def _npm_env(key: str) -> str:
    """An `npm_config_<key>` variable, in either case, as npm reads them."""
    wanted = f"npm_config_{key}"
    return next((value for name, value in os.environ.items() if name.lower() == wanted and value), "")


def _npmrc() -> dict[str, str]:
    """key=value pairs of the user's npmrc, `${VAR}` expanded, as npm reads them."""
    path = Path(_npm_env("userconfig") or Path.home() / ".npmrc")
    values = {}
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            values[key] = re.sub(r"\$\{(\w+)\}", lambda m: os.environ.get(m.group(1), ""), value)
    return values


def registry_for(package: str) -> str:
    """The registry npm would use for `package`: the scope's, else the default, else npmjs.org."""
    rc = _npmrc()
    scope = package.split("/")[0] if package.startswith("@") else ""
    url = (rc.get(f"{scope}:registry") if scope else None) or _npm_env("registry") \
        or rc.get("registry") or DEFAULT_REGISTRY
    return url if url.endswith("/") else url + "/"


def _open(url: str, accept: str = "application/json"):
    request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "candlebench"})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise CliCacheError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise CliCacheError(f"cannot reach the npm registry at {url}: {reason}") from err


def packument(package: str) -> dict:
    """The package's abbreviated registry document: dist-tags and every version's manifest."""
    url = registry_for(package) + urllib.parse.quote(package, safe="@")
    with _open(url, PACKUMENT) as response:
        try:
            return json.load(response)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CliCacheError(f"{url}: not a registry document: {err}") from err


def _manifest(document: dict, package: str, version: str) -> dict:
    versions = document.get("versions") or {}
    if version not in versions:
        latest = (document.get("dist-tags") or {}).get("latest", "?")
        raise CliCacheError(f"{package} has no version {version!r} on {registry_for(package)} "
                            f"(latest is {latest})")
    return versions[version]


def platform_package(cli: str, version: str, plat: str) -> tuple[str, str]:
    """(name, version) of the platform package `cli@version` names for `plat`."""
    wrapper = spec(cli).package
    manifest = _manifest(packument(wrapper), wrapper, version)
    optional = manifest.get("optionalDependencies") or {}
    wanted = f"{wrapper}-{plat}"
    if wanted not in optional:
        shipped = sorted(name.removeprefix(f"{wrapper}-") for name in optional if name.startswith(wrapper))
        raise CliCacheError(f"{wrapper}@{version} ships no {plat} package (platforms: "
                            f"{', '.join(shipped) or 'none'})")
    target = optional[wanted]
    if target.startswith("npm:"):  # an alias: npm:<name>@<version>
        name, _, aliased = target[4:].rpartition("@")
        return name, aliased
    return wanted, target


# --- fetching and verifying -------------------------------------------------------------------

def _sri(integrity: str) -> bytes:
    """The sha512 digest an SRI string names (npm may list several hashes; sha512 is the one used)."""
    for token in integrity.split():
        algorithm, _, value = token.partition("-")
        if algorithm == "sha512":
            return base64.b64decode(value)
    raise CliCacheError(f"no sha512 in the registry's integrity {integrity!r}")


def download(url: str, integrity: str, dest: Path) -> None:
    """Stream `url` to `dest`, failing unless its sha512 is the one the registry publishes."""
    expected = _sri(integrity)
    digest = hashlib.sha512()
    with _open(url, "application/octet-stream") as response, dest.open("wb") as out:
        while chunk := response.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.digest() != expected:
        dest.unlink(missing_ok=True)
        raise CliCacheError(f"{url}: integrity mismatch (expected {integrity[:30]}..., got "
                            f"sha512-{base64.b64encode(digest.digest()).decode()[:22]}...)")


def unpack(tarball: Path, dest: Path) -> None:
    """Unpack an npm tarball; the `data` filter refuses absolute paths, escaping links and devices."""
    if not hasattr(tarfile, "data_filter"):
        raise CliCacheError("this Python has no safe tar extraction (tarfile filters): use 3.11.4 or later")
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            archive.extractall(dest, filter="data")
    except tarfile.TarError as err:
        raise CliCacheError(f"{tarball.name}: refused to unpack: {err}") from err


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def version_output(binary: Path) -> str:
    """What `binary --version` prints, run with a scratch HOME and nothing of the host's environment."""
    with tempfile.TemporaryDirectory(prefix="cb-version-") as scratch:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": scratch, "TMPDIR": scratch,
               "LANG": "C.UTF-8", "DISABLE_AUTOUPDATER": "1", "CODEX_HOME": scratch}
        try:
            done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, env=env,
                                  timeout=TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
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


def install(cli: str, version: str = "latest", plat: str | None = None, root: Path | None = None,
            today: dt.date | None = None) -> Installed:
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
            cli=cli, version=version, platform=plat, package=f"{name}@{package_version}",
            tarball=dist["tarball"], integrity=dist["integrity"], registry=registry_for(name),
            binary=str(binary.relative_to(staging)), sha256=file_sha256(binary), version_output=said,
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
