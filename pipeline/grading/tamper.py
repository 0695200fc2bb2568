"""A patch must not change how the graded tests run: find its edits to the test runner and undo them.

The runner is configured or extended by files a patch can add or change (see `runner_config`):
conftest.py at any depth, pytest.ini/.pytest.ini/pytest.toml, the test sections of tox.ini,
setup.cfg and pyproject.toml, sitecustomize.py/usercustomize.py and .pth files, modules shadowing
pytest at the top of the repository, the package __init__.py files pytest imports with the graded
test modules, and plugin modules named by `-p` in addopts or by a conftest's `pytest_plugins`.

`patch_paths` and `runner_paths` decide from the patch text alone which paths are candidates;
`restore_runner_files` puts each back to the base commit's version in a work tree (deleting what
the patch added; for tox.ini, setup.cfg and pyproject.toml only their test section, and only when
the patch changed it) and reports what it undid. It runs after the patch is applied and before
the graded test files are checked out of the fix, so a conftest the task itself ships wins.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pipeline.grading.patches import GIT_ENV, SAFE_GIT
from pipeline.grading.runner_config import (
    CONFTEST,
    INI_SECTIONS,
    SECTIONED_CONFIGS,
    SHADOWING,
    STARTUP_FILES,
    WHOLE_CONFIGS,
    module_files,
    plugin_names,
    runner_section,
    splice_test_section,
)

_HEADER = re.compile(r"^(?:--- |\+\+\+ |\*\*\* |Index: |rename from |rename to |copy from |copy to )(.*)$")
_CONTEXT_RANGE = re.compile(r"^(?:\*\*\* \d+(?:,\d+)? \*\*\*\*|--- \d+(?:,\d+)? ----)$")
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")
_QUOTED = r'"(?P<q{0}>(?:[^"\\]|\\.)*)"|(?P<{0}>\S+)'
_GIT_HEADER = re.compile(rf"^diff --git (?:{_QUOTED.format('a')}) (?:{_QUOTED.format('b')})$")


@dataclass
class TamperReport:
    """What restore_runner_files undid: empty lists and tampered=False for an honest patch."""

    restored: list[str] = field(default_factory=list)  # put back to the base commit's version
    removed: list[str] = field(default_factory=list)  # added by the patch, deleted
    sections: list[str] = field(default_factory=list)  # only the test section put back: "tox.ini [pytest]"
    refused: list[str] = field(default_factory=list)  # behind a symlink out of the tree: left alone

    @property
    def tampered(self) -> bool:
        return bool(self.restored or self.removed or self.sections or self.refused)

    def reason(self) -> str:
        """One line for a verdict's reason, naming what the patch tried."""
        if not self.tampered:
            return ""
        parts = [*self.restored, *self.removed, *self.sections, *(f"{p} (refused)" for p in self.refused)]
        return f"the patch changed the test runner's files, restored for the run: {', '.join(parts[:8])}"


def _unquote(text: str) -> str:
    """Undo git's C-style quoting of a path ("a/\\303\\251.py")."""
    raw = text.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")
    return raw.decode("utf-8", "replace")


def _strip_prefix(word: str) -> str:
    word = word.split("\t")[0].strip()
    if word.startswith('"') and word.endswith('"') and len(word) > 1:
        word = _unquote(word[1:-1])
    return word[2:] if word[:2] in ("a/", "b/") else word


def patch_paths(patch: str) -> list[str]:
    """Every repository path a patch creates, changes, deletes, renames or copies (what -p1 leaves).

    Header lines of git, unified and context diffs count; lines inside a unified hunk never do,
    whatever they start with.
    """
    found: set[str] = set()
    old = new = 0  # lines left in the current unified hunk
    for line in patch.splitlines():
        if old > 0 or new > 0:
            tag = line[:1]
            if tag in (" ", "", "-", "+", "\\"):
                old -= tag in (" ", "", "-")
                new -= tag in (" ", "", "+")
                continue
            old = new = 0  # a malformed hunk ended early: read the line as a header
        if hunk := _HUNK.match(line):
            old, new = int(hunk.group(1) or 1), int(hunk.group(2) or 1)
            continue
        if match := _GIT_HEADER.match(line):
            for key in ("qa", "a", "qb", "b"):
                if word := match.group(key):
                    found.add(_strip_prefix(f'"{word}"' if key.startswith("q") else word))
            continue
        header = _HEADER.match(line)
        if header and not _CONTEXT_RANGE.match(line):
            found.add(_strip_prefix(header.group(1)))
    return sorted(p for p in found if p and p != "/dev/null" and not p.endswith("/"))


def _package_inits(graded_tests: Iterable[str]) -> set[str]:
    """__init__.py of every folder from the root down to each graded test file (pytest imports them)."""
    inits = set()
    for test in graded_tests:
        parts = PurePosixPath(test.split("::")[0]).parts[:-1]
        inits.add("__init__.py")
        for depth in range(1, len(parts) + 1):
            inits.add("/".join([*parts[:depth], "__init__.py"]))
    return inits


def runner_paths(
    paths: Iterable[str], graded_tests: Iterable[str] = (), extra_globs: Sequence[str] = ()
) -> list[str]:
    """The paths among `paths` (a patch's) that may configure or extend the test runner.

    Sectioned configs (tox.ini, setup.cfg, pyproject.toml) are candidates only: whether their
    test section changed is decided on their contents. `extra_globs` adds a suite's own runner
    files (e.g. `test/lib/ansible_test/**` for ansible-test).
    """
    inits = _package_inits(graded_tests)
    chosen = []
    for path in paths:
        pure = PurePosixPath(path)
        name, top = pure.name, pure.parts[0] if pure.parts else ""
        if (
            name == CONFTEST
            or name in WHOLE_CONFIGS
            or name in SECTIONED_CONFIGS
            or name in STARTUP_FILES
            or name.endswith(".pth")
            or top in SHADOWING
            or path in inits
            or any(fnmatch.fnmatchcase(path, g) for g in extra_globs)
        ):
            chosen.append(path)
    return sorted(set(chosen))


def _git(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *SAFE_GIT, *args],
        cwd=workdir,
        capture_output=True,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), **GIT_ENV},
    )


@dataclass(frozen=True)
class BaseEntry:
    """A path as the base commit has it: file mode and contents (None when absent)."""

    mode: str | None
    data: bytes | None


def base_entry(workdir: Path, base_commit: str, path: str) -> BaseEntry:
    """Mode and contents of `path` at `base_commit` (BaseEntry(None, None) when it does not exist)."""
    listed = _git(workdir, "ls-tree", "-z", base_commit, "--", path)
    if listed.returncode != 0:
        raise RuntimeError(f"git ls-tree {base_commit} {path}: {listed.stderr.decode().strip()}")
    for entry in listed.stdout.split(b"\0"):
        meta, _, name = entry.partition(b"\t")
        if name.decode() == path:
            mode, kind, sha = meta.decode().split()
            if kind != "blob":
                return BaseEntry(mode, None)
            blob = _git(workdir, "cat-file", "blob", sha)
            return BaseEntry(mode, blob.stdout)
    return BaseEntry(None, None)


def _inside(workdir: Path, path: str) -> bool:
    """True when `path`'s folder resolves inside the work tree (no symlinked folder leads out)."""
    root = workdir.resolve()
    return (workdir / path).parent.resolve().is_relative_to(root) and not PurePosixPath(path).is_absolute()


def _remove(target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()


def _write(target: Path, entry: BaseEntry) -> None:
    _remove(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if entry.mode == "120000":
        os.symlink(entry.data.decode(), target)
        return
    target.write_bytes(entry.data)
    target.chmod(0o755 if entry.mode == "100755" else 0o644)


def _prune_empty(workdir: Path, path: str) -> None:
    """Drop folders the deletion left empty (an added `_pytest/` would be a namespace package)."""
    folder = (workdir / path).parent
    root = workdir.resolve()
    while (
        folder.resolve() != root and folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir())
    ):
        folder.rmdir()
        folder = folder.parent


def _current(workdir: Path, path: str) -> str | None:
    target = workdir / path
    if target.is_symlink() or not target.is_file():
        return None
    return target.read_text(errors="replace")


def restore_runner_files(
    workdir: Path,
    base_commit: str,
    patch: str,
    graded_tests: Iterable[str] = (),
    extra_globs: Sequence[str] = (),
) -> TamperReport:
    """Put every runner file the patch touched back to `base_commit`'s version; report what was undone.

    Call after applying the patch and before checking the graded tests out of the fix. Paths
    behind a symlinked folder leading out of the tree are never written through: they are
    reported as refused, which marks the run tampered as well.
    """
    workdir = Path(workdir)
    changed = patch_paths(patch)
    candidates = set(runner_paths(changed, graded_tests, extra_globs))
    candidates |= set(_named_plugins(workdir, base_commit, changed)) & set(changed)
    report = TamperReport()
    for path in sorted(candidates):
        if not _inside(workdir, path):
            report.refused.append(path)
            continue
        entry = base_entry(workdir, base_commit, path)
        name = PurePosixPath(path).name
        target = workdir / path
        if name in SECTIONED_CONFIGS and PurePosixPath(path).parts[0] not in SHADOWING:
            _restore_section(workdir, path, entry, report)
            continue
        current = target.read_bytes() if target.is_file() and not target.is_symlink() else None
        if entry.mode is None:
            if target.is_symlink() or target.exists():
                _remove(target)
                _prune_empty(workdir, path)
                report.removed.append(path)
        elif entry.data is not None and (
            current != entry.data or target.is_symlink() != (entry.mode == "120000")
        ):
            _write(target, entry)
            report.restored.append(path)
    return report


def _restore_section(workdir: Path, path: str, entry: BaseEntry, report: TamperReport) -> None:
    name = PurePosixPath(path).name
    base = entry.data.decode(errors="replace") if entry.data is not None else None
    current = _current(workdir, path)
    if runner_section(current, name) == runner_section(base, name):
        return  # the patch changed something else in it (dependencies, metadata): kept
    target = workdir / path
    spliced = splice_test_section(current, base, name) if current is not None else None
    if spliced is not None and (spliced.strip() or base is not None):
        target.write_text(spliced)
        label = "[tool.pytest]" if name == "pyproject.toml" else f"[{INI_SECTIONS[name][0]}]"
        report.sections.append(f"{path} {label}")
    elif entry.mode is None:
        _remove(target)
        _prune_empty(workdir, path)
        report.removed.append(path)
    else:
        _write(target, entry)
        report.restored.append(path)


def _named_plugins(workdir: Path, base_commit: str, changed: Sequence[str]) -> list[str]:
    """Repository modules that a config or conftest names as a plugin, in base's or the patch's version."""
    sources = [p for p in changed if PurePosixPath(p).name in (CONFTEST, *WHOLE_CONFIGS, *SECTIONED_CONFIGS)]
    listed = _git(workdir, "ls-tree", "-r", "-z", "--name-only", base_commit)
    for rel in listed.stdout.decode(errors="replace").split("\0"):
        if PurePosixPath(rel).name in (CONFTEST, *WHOLE_CONFIGS, *SECTIONED_CONFIGS):
            sources.append(rel)
    modules = set()
    for rel in sorted(set(sources)):
        name = PurePosixPath(rel).name
        texts = [_current(workdir, rel)]
        if rel in changed:
            data = base_entry(workdir, base_commit, rel).data
            texts.append(data.decode(errors="replace") if data is not None else None)
        for text in texts:
            if text is not None:
                for plugin in plugin_names(text, name):
                    modules.update(module_files(plugin))
    return sorted(modules)
