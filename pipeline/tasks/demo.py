"""The built-in `demo` suite: small Python projects shipped with candlebench, each with real bugs.

Layout: `suites/demo/projects/<project>/` is the project at its base state (all bugs present);
`suites/demo/tasks/<instance_id>/` holds task.yaml, gold.patch, test.patch and wrong.patch.
Each project becomes a real git repository with deterministic commits: the base, and for each
task a fix commit (base + gold + tests), so rows carry real `base_commit`s and a
`before_repo_set_cmd` that restores graded tests exactly as SWE-Bench-Pro's harness does.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from functools import cached_property
from pathlib import Path

import yaml

from pipeline.grading.runners import PytestRunner, TestRunner
from pipeline.sandbox import Sandbox
from pipeline.tasks.model import Task, TaskFormatError

SUITE_DIR = Path(__file__).resolve().parent.parent / "suites" / "demo"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "candlebench",
    "GIT_AUTHOR_EMAIL": "demo@candlebench.invalid",
    "GIT_COMMITTER_NAME": "candlebench",
    "GIT_COMMITTER_EMAIL": "demo@candlebench.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+0000",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+0000",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}
_REQUIRED = (
    "problem_statement",
    "requirements",
    "interface",
    "difficulty",
    "fail_to_pass",
    "pass_to_pass",
    "issue_categories",
    "issue_specificity",
)


def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["git", *args], cwd=repo, input=stdin, text=True, capture_output=True, env=_GIT_ENV, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def _suite_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class DemoSuite:
    """TaskSource for the shipped demo projects; repositories are built under `cache`."""

    name = "demo"
    runner: TestRunner = PytestRunner()
    apply_rule = "lenient"  # SWE-bench's fallback chain

    def __init__(self, cache: Path, root: Path = SUITE_DIR) -> None:
        self.root = Path(root)
        self.cache = Path(cache)

    def image(self, task: Task) -> str | None:
        del task  # the demo's tests run in the sandbox's own environment
        return None

    def bind(self, sandbox: Sandbox, tasks: list[Task]) -> None:
        """Every backend runs the demo's pytest suites."""
        del sandbox, tasks

    @cached_property
    def _meta(self) -> dict[str, dict]:
        meta = {}
        for folder in sorted((self.root / "tasks").iterdir()):
            if not (folder / "task.yaml").exists():
                continue
            spec = yaml.safe_load((folder / "task.yaml").read_text())
            missing = [k for k in _REQUIRED if k not in spec]
            if missing:
                raise TaskFormatError(f"{folder}/task.yaml: missing {', '.join(missing)}")
            spec["gold"] = (folder / "gold.patch").read_text()
            spec["tests"] = (folder / "test.patch").read_text()
            wrong = folder / "wrong.patch"
            spec["wrong"] = wrong.read_text() if wrong.exists() else ""
            spec["project"] = folder.name.split("__", 1)[1].rsplit("-", 1)[0]
            meta[folder.name] = spec
        return meta

    def projects(self) -> list[str]:
        return sorted({spec["project"] for spec in self._meta.values()})

    def repo_path(self, project: str) -> Path:
        return self.cache / project

    def difficulty(self, instance_id: str) -> str:
        return self._meta[instance_id]["difficulty"]

    def wrong_patch(self, instance_id: str) -> str:
        return self._meta[instance_id]["wrong"]

    @cached_property
    def _commits(self) -> dict[str, tuple[str, str]]:
        """instance_id -> (base commit, fix commit); builds the repositories when stale."""
        commits = {}
        for project in self.projects():
            commits.update(self._build(project))
        return commits

    def _build(self, project: str) -> dict[str, tuple[str, str]]:
        repo = self.repo_path(project)
        stamp = repo / ".git" / "candlebench-suite"
        tasks = {i: m for i, m in self._meta.items() if m["project"] == project}
        digest = _suite_digest(self.root / "projects" / project) + "".join(
            _suite_digest(self.root / "tasks" / i) for i in sorted(tasks)
        )
        if stamp.exists() and stamp.read_text() == digest:
            refs = dict(reversed(line.split()) for line in _git(repo, "show-ref", "--tags").splitlines())
            base = refs["refs/tags/base"]
            return {i: (base, refs[f"refs/tags/fix/{i}"]) for i in tasks}
        self.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache, prefix=f".{project}-") as scratch:
            work = Path(scratch) / project
            shutil.copytree(self.root / "projects" / project, work, ignore=_IGNORED)
            _git(work, "init", "-q", "-b", "main")
            _git(work, "add", "-A")
            _git(work, "commit", "-q", "-m", f"{project}: base")
            _git(work, "tag", "base")
            for instance_id, spec in sorted(tasks.items()):
                _git(work, "checkout", "-q", "--detach", "base")
                for name in ("gold", "tests"):
                    _git(work, "apply", "--index", "-", stdin=spec[name])
                _git(work, "commit", "-q", "-m", f"fix {instance_id}")
                _git(work, "tag", f"fix/{instance_id}")
            _git(work, "checkout", "-q", "main")
            (work / ".git" / "candlebench-suite").write_text(digest)
            if repo.exists():
                shutil.rmtree(repo)
            work.rename(repo)
        return self._build(project)

    def tasks(self) -> list[Task]:
        rows = []
        for instance_id, spec in self._meta.items():
            base, fix = self._commits[instance_id]
            f2p, p2p = list(spec["fail_to_pass"]), list(spec["pass_to_pass"])
            test_files = sorted({node.split("::")[0] for node in f2p + p2p})
            new_tests = sorted({node.split("::")[0] for node in f2p})
            rows.append(
                Task(
                    repo=f"candlebench-demo/{spec['project']}",
                    instance_id=instance_id,
                    base_commit=base,
                    patch=spec["gold"],
                    test_patch=spec["tests"],
                    problem_statement=spec["problem_statement"],
                    requirements=spec["requirements"],
                    interface=spec["interface"],
                    repo_language="python",
                    fail_to_pass=repr(f2p),
                    pass_to_pass=repr(p2p),
                    issue_specificity=repr(list(spec["issue_specificity"])),
                    issue_categories=repr(list(spec["issue_categories"])),
                    before_repo_set_cmd="\n".join(
                        [
                            f"git reset --hard {base}",
                            "git clean -fd",
                            f"git checkout {base}",
                            f"git checkout {fix} -- {' '.join(new_tests)}",
                        ]
                    ),
                    selected_test_files_to_run=repr(test_files),
                    dockerhub_tag="",
                )
            )
        return rows

    def checkout(self, task: Task, dest: Path) -> None:
        project = task.repo.split("/", 1)[1]
        self._commits  # noqa: B018 - builds the repositories on first use
        source = self.repo_path(project)
        done = subprocess.run(
            ["git", "clone", "-q", "--shared", "--no-checkout", str(source), str(dest)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"clone of {source} failed: {done.stderr.strip()}")
        _git(dest, "checkout", "-q", "--detach", task.base_commit)
