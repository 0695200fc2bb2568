"""npm's registry, read as npm reads it: the registry for a package, packuments, verified tarballs."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import tarfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from pipeline.agents.cli_cache.specs import CHUNK, DEFAULT_REGISTRY, PACKUMENT, TIMEOUT_S, CliCacheError, spec


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
    url = (
        (rc.get(f"{scope}:registry") if scope else None)
        or _npm_env("registry")
        or rc.get("registry")
        or DEFAULT_REGISTRY
    )
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
        raise CliCacheError(
            f"{package} has no version {version!r} on {registry_for(package)} (latest is {latest})"
        )
    return versions[version]


def platform_package(cli: str, version: str, plat: str) -> tuple[str, str]:
    """(name, version) of the platform package `cli@version` names for `plat`."""
    wrapper = spec(cli).package
    manifest = _manifest(packument(wrapper), wrapper, version)
    optional = manifest.get("optionalDependencies") or {}
    wanted = f"{wrapper}-{plat}"
    if wanted not in optional:
        shipped = sorted(name.removeprefix(f"{wrapper}-") for name in optional if name.startswith(wrapper))
        raise CliCacheError(
            f"{wrapper}@{version} ships no {plat} package (platforms: {', '.join(shipped) or 'none'})"
        )
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
        raise CliCacheError(
            f"{url}: integrity mismatch (expected {integrity[:30]}..., got "
            f"sha512-{base64.b64encode(digest.digest()).decode()[:22]}...)"
        )


def unpack(tarball: Path, dest: Path) -> None:
    """Unpack an npm tarball; the `data` filter refuses absolute paths, escaping links and devices."""
    if not hasattr(tarfile, "data_filter"):
        raise CliCacheError("this Python has no safe tar extraction (tarfile filters): use 3.11.4 or later")
    try:
        with tarfile.open(tarball, "r:gz") as archive:
            archive.extractall(dest, filter="data")
    except tarfile.TarError as err:
        raise CliCacheError(f"{tarball.name}: refused to unpack: {err}") from err
