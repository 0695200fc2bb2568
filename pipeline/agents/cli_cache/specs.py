"""The CLIs the cache knows (their npm packages and binaries), the install record, the host platform."""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
        platform.machine().lower(), ""
    )
    if not system or not arch:
        raise CliCacheError(f"no npm platform for {platform.system()} {platform.machine()}")
    musl = system == "linux" and platform.libc_ver()[0] != "glibc" and any(Path("/lib").glob("ld-musl-*"))
    return f"{system}-{arch}{'-musl' if musl else ''}"


def install_dir(cli: str, version: str, plat: str, root: Path | None = None) -> Path:
    return (root or cli_cache_root()) / cli / version / plat


# --- the registry -----------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
