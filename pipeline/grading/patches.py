"""Patches on the host: safety checks, the apply rules, restoring the graded tests, and a git
that trusts nothing in the work tree. Untrusted patches are applied here as data (git apply
never runs their code); their code runs only in the sandbox."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import subprocess
from pathlib import Path

from pipeline.tasks.model import Task

# Host-side git never runs hooks or an fsmonitor a work tree's config might name, and reads no
# system or user config (the work tree may be owned by the sandbox's uid: any owner is accepted).
SAFE_GIT = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "safe.directory=*")

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "LC_ALL": "C"}


def is_empty(patch: str) -> bool:
    return patch.strip() == ""


def run_git(workdir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """git in a work tree whose config we do not trust: no hooks, no fsmonitor, any owner."""
    return subprocess.run(
        ["git", *SAFE_GIT, *args],
        cwd=workdir,
        input=stdin,
        text=True,
        capture_output=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), **GIT_ENV},
    )


_BINARY_LINE = re.compile(r"^(Binary files .* differ|GIT binary patch)$", re.MULTILINE)


def strip_binary_hunks(patch: str) -> str:
    """Pro's rule: drop each `diff --git` section holding a whole binary-marker line, and blank ones.

    A text hunk that merely contains "Binary files" or "GIT binary patch" inside a line is kept.
    """
    sections = re.split(r"(?m)^(?=diff --git )", patch)
    return "".join(s for s in sections if s.strip() and not _BINARY_LINE.search(s))


_PATH_LINE = re.compile(r"(?m)^(?:diff --git |--- |\+\+\+ |rename from |rename to |copy from |copy to )(.*)$")


def unsafe_paths(patch: str) -> list[str]:
    """Paths a patch names that leave the work tree or touch its .git: never applied on the host."""
    bad = []
    for match in _PATH_LINE.finditer(patch):
        for word in match.group(1).split("\t")[0].split():
            word = word.strip('"')
            if word in ("/dev/null", "a/", "b/") or not word:
                continue
            stripped = word[2:] if word[:2] in ("a/", "b/") else word  # what -p1 leaves
            parts = word.split("/")
            if (
                word.startswith("/")
                or stripped.startswith("/")
                or ".." in parts
                or any(p.lower() == ".git" for p in parts)
            ):
                bad.append(word)
    return sorted(set(bad))


APPLY_RULES = ("git_apply", "lenient")  # Pro's plain `git apply`; SWE-bench's fallback chain


def apply_patch(workdir: Path, patch: str, rule: str = "lenient") -> str:
    """Apply by `rule`; return the step that took the patch, or '' when none did.

    `git_apply` is Pro's: `git apply -v`, nothing else. `lenient` is SWE-bench's chain: git
    apply, then a three-way apply, then patch --fuzz.
    """
    if rule not in APPLY_RULES:
        raise ValueError(f"unknown apply rule {rule!r}; expected one of {', '.join(APPLY_RULES)}")
    patch = strip_binary_hunks(patch)
    if unsafe_paths(patch):
        return ""
    if not patch.endswith("\n"):
        patch += "\n"
    steps = [
        ("git_apply", lambda: run_git(workdir, "apply", "--verbose", "--whitespace=nowarn", stdin=patch)),
        (
            "git_apply_3way",
            lambda: run_git(workdir, "apply", "--verbose", "--3way", "--whitespace=nowarn", stdin=patch),
        ),
        (
            "patch_fuzz",
            lambda: subprocess.run(
                ["patch", "--batch", "--fuzz=5", "-p1", "--no-backup-if-mismatch"],
                cwd=workdir,
                input=patch,
                text=True,
                capture_output=True,
                check=False,
            ),
        ),
    ]
    for step, apply in steps[:1] if rule == "git_apply" else steps:
        if apply().returncode == 0:
            return step
        run_git(workdir, "reset", "-q", "--hard")
        run_git(workdir, "clean", "-qfd")
    return ""


def restore_command(task: Task) -> list[str]:
    """The last line of before_repo_set_cmd, the one SWE-Bench-Pro's harness runs after the patch."""
    lines = [line for line in task.before_repo_set_cmd.strip().splitlines() if line.strip()]
    if not lines:
        return []
    last = shlex.split(lines[-1])
    if last[:2] != ["git", "checkout"]:
        raise ValueError(f"{task.instance_id}: unexpected restore command {lines[-1]!r}")
    return last


def graded_paths(task: Task) -> list[str]:
    """The test files the restore command checks out of the fix: read-only while tests run."""
    last = restore_command(task)
    return last[last.index("--") + 1 :] if "--" in last else []


def restore_tests(workdir: Path, task: Task) -> list[str]:
    """Check the graded test files out of the fix (after the patch); return their paths."""
    last = restore_command(task)
    if last:
        done = run_git(workdir, *last[1:])
        if done.returncode != 0:
            raise RuntimeError(f"restoring graded tests failed: {done.stderr.strip()}")
    return graded_paths(task)


def digest_tree(workdir: Path, paths: list[str]) -> dict[str, str]:
    """Content hash of each graded path (not following symlinks), to notice edits during the run."""
    found = {}
    root = workdir.resolve()
    for rel in paths:
        path = workdir / rel
        if not path.resolve().is_relative_to(root):
            found[rel] = "outside"
            continue
        files = [path] if not path.is_dir() or path.is_symlink() else sorted(path.rglob("*"))
        digest = hashlib.sha256()
        for item in files:
            if item.is_symlink():
                digest.update(f"link {item} {os.readlink(item)}".encode())
            elif item.is_file():
                digest.update(f"file {item}".encode())
                with item.open("rb") as handle:
                    digest.update(hashlib.file_digest(handle, "sha256").digest())
            elif not item.exists():
                digest.update(f"missing {item}".encode())
        found[rel] = digest.hexdigest()
    return found
