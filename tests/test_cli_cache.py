"""The pinned CLI cache against a local npm registry: resolution, integrity, layout, concurrency, errors.

The registry here serves the two real package layouts (Claude Code's per-platform packages,
Codex's platform versions behind an `npm:` alias) with tiny stand-in binaries, so every path of
the cache runs without the network. tests/test_real_clis.py installs the real packages.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import io
import json
import subprocess
import sys
import tarfile
import threading
from collections import Counter
from pathlib import Path

import pytest

from pipeline.agents import cli_cache
from pipeline.cli import main

PLATFORM = cli_cache.host_platform()
TRIPLE = "x86_64-unknown-linux-musl"


def tarball(files: dict[str, str], links: dict[str, str] | None = None) -> bytes:
    """An npm tarball: every file under package/, executable."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def script(says: str) -> str:
    return f"#!/bin/sh\necho '{says}'\n"


class Registry:
    """A local npm registry: packuments by name, tarballs by path; counts every request."""

    def __init__(self) -> None:
        self.documents: dict[str, dict] = {}
        self.files: dict[str, bytes] = {}
        self.hits: Counter[str] = Counter()
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.replace("%2F", "/").replace("%2f", "/").lstrip("/")
                registry.hits[path] += 1
                if path in registry.documents:
                    body = json.dumps(registry.documents[path]).encode()
                elif path in registry.files:
                    body = registry.files[path]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def publish(
        self,
        name: str,
        version: str,
        manifest: dict,
        files: dict[str, str] | None = None,
        integrity_of: bytes | None = None,
        latest: bool = True,
    ) -> None:
        document = self.documents.setdefault(name, {"name": name, "dist-tags": {}, "versions": {}})
        if files is not None:
            data = tarball(files)
            path = f"tarballs/{name}-{version}.tgz"
            self.files[path] = data
            dist = {"tarball": self.url + path, "integrity": sri(integrity_of or data)}
            manifest = {**manifest, "dist": dist}
        document["versions"][version] = {"name": name, "version": version, **manifest}
        if latest:
            document["dist-tags"]["latest"] = version

    def claude(self, version: str, says: str | None = None, **options) -> None:
        """@anthropic-ai/claude-code@version and its platform package, as npm holds them."""
        platform_package = f"@anthropic-ai/claude-code-{PLATFORM}"
        self.publish(
            "@anthropic-ai/claude-code",
            version,
            {
                "optionalDependencies": {
                    platform_package: version,
                    "@anthropic-ai/claude-code-win32-x64": version,
                }
            },
        )
        self.publish(
            platform_package,
            version,
            {"os": ["linux"]},
            {"package/claude": script(says or f"{version} (Claude Code)"), "package/package.json": "{}"},
            **options,
        )

    def codex(self, version: str) -> None:
        """@openai/codex@version and its platform *version*, behind an npm: alias."""
        self.publish(
            "@openai/codex",
            version,
            {
                "optionalDependencies": {
                    f"@openai/codex-{PLATFORM}": f"npm:@openai/codex@{version}-{PLATFORM}"
                }
            },
        )
        self.publish(
            "@openai/codex",
            f"{version}-{PLATFORM}",
            {},
            {
                f"package/vendor/{TRIPLE}/codex-package.json": json.dumps({"entrypoint": "bin/codex"}),
                f"package/vendor/{TRIPLE}/bin/codex": script(f"codex-cli {version}"),
                f"package/vendor/{TRIPLE}/codex-path/rg": script("rg"),
            },
            latest=False,
        )

    def tarball_hits(self) -> int:
        return sum(n for path, n in self.hits.items() if path.startswith("tarballs/"))


@pytest.fixture
def registry(monkeypatch, tmp_path) -> Registry:
    """A local registry named in a user npmrc, and a fresh cache root."""
    served = Registry()
    npmrc = tmp_path / "npmrc"
    npmrc.write_text(f"fund=false\nregistry={served.url}\n")
    monkeypatch.setenv("NPM_CONFIG_USERCONFIG", str(npmrc))
    monkeypatch.delenv("npm_config_registry", raising=False)
    monkeypatch.setenv("CANDLEBENCH_CLIS", str(tmp_path / "clis"))
    yield served
    served.server.shutdown()


def test_install_verifies_unpacks_records_and_is_idempotent(registry, tmp_path):
    registry.claude("9.9.9")
    entry = cli_cache.install("claude-code", "9.9.9")
    folder = tmp_path / "clis" / "claude-code" / "9.9.9" / PLATFORM
    assert entry.binary == str(folder / "package" / "claude")
    assert entry.version_output == "9.9.9 (Claude Code)" and entry.platform == PLATFORM
    assert entry.package == f"@anthropic-ai/claude-code-{PLATFORM}@9.9.9"
    assert entry.sha256 == hashlib.sha256(Path(entry.binary).read_bytes()).hexdigest()
    assert entry.integrity.startswith("sha512-") and entry.registry == registry.url
    assert json.loads((folder / "install.json").read_text())["binary"] == "package/claude"
    assert not Path(entry.binary).stat().st_mode & 0o222
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".staging")] == []
    before = sum(registry.hits.values())
    assert cli_cache.install("claude-code", "9.9.9") == entry  # cached: no request at all
    assert sum(registry.hits.values()) == before
    assert cli_cache.installed("claude-code", "9.9.9") == entry
    assert cli_cache.cached() == [entry]
    entry.verify()
    Path(entry.binary).chmod(0o755)
    Path(entry.binary).write_text(script("tampered"))
    with pytest.raises(cli_cache.CliCacheError, match="changed since it was installed"):
        entry.verify()


def test_codex_platform_versions_behind_an_alias(registry):
    registry.codex("1.2.3")
    entry = cli_cache.install("codex", "1.2.3")
    assert entry.package == f"@openai/codex@1.2.3-{PLATFORM}"
    assert entry.binary.endswith(f"codex/1.2.3/{PLATFORM}/package/vendor/{TRIPLE}/bin/codex")
    assert entry.version_output == "codex-cli 1.2.3"
    assert (Path(entry.binary).parents[1] / "codex-path" / "rg").exists()  # its resources stay beside it


def test_latest_is_resolved_once_a_day_and_every_answer_kept(registry, tmp_path):
    registry.claude("9.9.9")
    day = dt.date(2026, 12, 1)
    assert cli_cache.install("claude-code", "latest", today=day).version == "9.9.9"
    registry.claude("9.9.10")  # a release later that day
    assert cli_cache.resolve("claude-code", "latest", today=day) == "9.9.9"
    assert cli_cache.install("claude-code", "latest", today=day).version == "9.9.9"
    assert cli_cache.resolve("claude-code", "latest", today=day + dt.timedelta(days=1)) == "9.9.10"
    assert cli_cache.latest_resolutions("claude-code") == {"2026-12-01": "9.9.9", "2026-12-02": "9.9.10"}
    assert cli_cache.resolve("claude-code", "2.1.328") == "2.1.328"  # a pinned version asks nobody


def test_integrity_is_checked_before_anything_is_unpacked(registry, tmp_path):
    registry.claude("9.9.9", integrity_of=b"what the registry promised")
    with pytest.raises(cli_cache.CliCacheError, match="integrity mismatch"):
        cli_cache.install("claude-code", "9.9.9")
    version_folder = tmp_path / "clis" / "claude-code" / "9.9.9"
    assert not (version_folder / PLATFORM).exists()
    assert not any(p.name.startswith(".staging") for p in version_folder.iterdir())
    assert cli_cache.cached() == []


def test_unsafe_tarballs_and_lying_binaries_are_refused(registry, tmp_path):
    platform_package = f"@anthropic-ai/claude-code-{PLATFORM}"
    registry.claude("9.9.9")
    evil = tarball({"package/claude": script("9.9.9")}, links={"package/escape": "/etc/passwd"})
    registry.files[f"tarballs/{platform_package}-9.9.9.tgz"] = evil
    registry.documents[platform_package]["versions"]["9.9.9"]["dist"]["integrity"] = sri(evil)
    with pytest.raises(cli_cache.CliCacheError, match="refused to unpack"):
        cli_cache.install("claude-code", "9.9.9")
    registry.claude("9.9.11", says="9.9.10 (Claude Code)")
    with pytest.raises(cli_cache.CliCacheError, match=r"--version says '9.9.10 \(Claude Code\)', expected"):
        cli_cache.install("claude-code", "9.9.11")
    with pytest.raises(cli_cache.CliCacheError, match="ships no sunos-x64 package \\(platforms: "):
        cli_cache.install("claude-code", "9.9.9", plat="sunos-x64")


def test_two_concurrent_installs_leave_one_complete_copy(registry, tmp_path):
    registry.claude("9.9.9")
    command = [sys.executable, "-m", "pipeline.cli", "agents", "install", "claude-code", "--version", "9.9.9"]
    runs = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1]
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert registry.tarball_hits() == 1  # the second waited for the first, then found its copy
    assert all(out.startswith(f"claude-code 9.9.9 ({PLATFORM}): ") for out, _ in outputs)
    assert len(cli_cache.cached()) == 1


def test_scoped_registry_and_environment_win_as_npm_reads_them(registry, tmp_path, monkeypatch):
    npmrc = tmp_path / "npmrc"
    npmrc.write_text("registry=http://127.0.0.1:9/\n@openai:registry=${SCOPED}\n")
    monkeypatch.setenv("SCOPED", "https://mirror.example/npm")
    assert cli_cache.registry_for("@openai/codex") == "https://mirror.example/npm/"
    assert cli_cache.registry_for("@anthropic-ai/claude-code") == "http://127.0.0.1:9/"
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", registry.url)
    assert cli_cache.registry_for("@anthropic-ai/claude-code") == registry.url


@pytest.mark.parametrize(
    "argv, message",
    [
        (["agents", "install", "cursor"], "unknown CLI 'cursor' (known: claude-code, codex)"),
        (
            ["agents", "install", "claude-code", "--version", "0.0.1"],
            "@anthropic-ai/claude-code has no version '0.0.1' on",
        ),
    ],
)
def test_agents_command_errors_are_one_line(registry, capsys, argv, message):
    registry.claude("9.9.9")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"candlebench agents install: {message}") and err.count("\n") == 1
    assert "Traceback" not in err


def test_agents_command_without_network_and_the_listing(registry, capsys, monkeypatch, tmp_path):
    registry.claude("9.9.9")
    assert main(["agents", "list"]) == 0
    assert capsys.readouterr().out.startswith("no CLIs cached under ")
    assert main(["agents", "install", "claude-code", "--version", "9.9.9"]) == 0
    out = capsys.readouterr().out
    assert "claude-code 9.9.9" in out and "9.9.9 (Claude Code); sha256 " in out
    (tmp_path / "npmrc").write_text("registry=http://127.0.0.1:9/\n")  # nothing listens there
    assert main(["agents", "install", "codex", "--version", "1.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("candlebench agents install: cannot reach the npm registry at http://127.0.0.1:9/")
    assert err.count("\n") == 1
    assert main(["agents", "install", "claude-code", "--version", "9.9.9"]) == 0  # cached: no network needed
    capsys.readouterr()
    assert main(["agents", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and listed[0].split()[:3] == ["claude-code", "9.9.9", PLATFORM]


def test_subjects_pin_a_cli_version_from_the_cache(registry, tmp_path, monkeypatch):
    """`settings.cli_version` runs the cached binary (installed at first use), as `check` reports it."""
    import yaml

    from pipeline.agents import AgentWorld, build_agent
    from pipeline.config import ConfigError, load_config
    from pipeline.preflight import preflight

    registry.claude("9.9.9")
    path = tmp_path / "tracking.yaml"

    def subject(settings: dict) -> None:
        path.write_text(
            yaml.safe_dump(
                {
                    "trials": 1,
                    "sandbox": "process",
                    "subjects": [
                        {"name": "cc", "adapter": "claude-code", "model": "m", "settings": settings}
                    ],
                }
            )
        )

    subject({"cli_version": "9.9.9"})
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    checks = [c for c in preflight(path) if c.what == "subject cc"]
    assert checks[0].status == "warn" and "not in the CLI cache: the first attempt" in checks[0].detail
    assert registry.tarball_hits() == 0  # preflight changes nothing
    agent = build_agent(
        load_config(path).subjects[0], AgentWorld(lambda task, dest: None, tmp_path / "transcripts")
    )
    assert agent.version() == "claude-code 9.9.9 / m"  # installed on first use
    entry = cli_cache.installed("claude-code", "9.9.9")
    assert agent.sha256() == entry.sha256 and registry.tarball_hits() == 1
    checks = [c for c in preflight(path) if c.what == "subject cc"]
    assert checks[0].status == "ok" and checks[0].detail.startswith(f"claude-code 9.9.9 cached ({PLATFORM}")
    assert ("ok", "claude-code, version claude-code 9.9.9 / m") in [(c.status, c.detail) for c in checks]
    subject({"cli_version": "9.9.9", "executable": "claude"})
    with pytest.raises(ConfigError, match="set 'settings.executable' or 'settings.cli_version', not both"):
        load_config(path)
    subject({"cli_version": "nine"})
    with pytest.raises(ConfigError, match="'settings.cli_version' must be a version such as 2.1.328"):
        load_config(path)
