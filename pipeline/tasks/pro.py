"""SWE-Bench-Pro rows as a suite, graded the way Pro's harness grades them.

A task with `run_scripts/<instance_id>/{run_script.sh,parser.py}` runs as its harness runs it:
repository at /app, `bash run_script.sh <selected files, comma-separated>`, then
`python parser.py stdout.log stderr.log output.json` (here outside the sandbox) giving
`{"tests": [{"name", "status"}]}`. Its image is `jefzda/sweap-images:<dockerhub_tag>` (the tag
derived as Pro derives it when a row has none), and the repository comes out of its /app.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from pipeline.grading.outcomes import FAILING
from pipeline.grading.runners import MARK, PytestRunner, TestPlan, TestRunner
from pipeline.sandbox import RunResult, Sandbox, SandboxUnavailable
from pipeline.sandbox.daemon import DockerDaemon
from pipeline.tasks.checkout_cache import AppCache, OverlayCheckout
from pipeline.tasks.model import Task
from pipeline.tasks.pro_images import PRO_REPOSITORY, dockerhub_tag
from pipeline.tasks.rows import load_rows

PRO_IMAGE = PRO_REPOSITORY + ":{tag}"
DEMO_REPO_PREFIX = "candlebench-demo/"


def pro_image(task: Task, template: str = PRO_IMAGE) -> str | None:
    """The task's SWE-Bench-Pro image: the row's `dockerhub_tag`, else the tag Pro derives from
    `instance_id` and `repo`; None for rows that are not Pro's (the demo suite's)."""
    if task.dockerhub_tag.strip():
        return template.format(tag=task.dockerhub_tag.strip())
    if task.instance_id.startswith("instance_") and task.repo.count("/") == 1:
        return template.format(tag=dockerhub_tag(task.instance_id, task.repo))
    return None


def run_parser(parser: Path, stdout: str, stderr: str, timeout_s: float = 120) -> dict[str, str]:
    """Run a task's parser.py on the logs, outside the sandbox; status per test (failures stick)."""
    with tempfile.TemporaryDirectory(prefix="cb-parse-") as scratch:
        folder = Path(scratch)
        (folder / "stdout.log").write_text(stdout)
        (folder / "stderr.log").write_text(stderr)
        done = subprocess.run(
            [sys.executable, str(parser.resolve()), "stdout.log", "stderr.log", "output.json"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        output = folder / "output.json"
        if done.returncode != 0 or not output.exists():
            raise RuntimeError(f"parser.py exited {done.returncode}: {done.stderr.strip()[-300:]}")
        data = json.loads(output.read_text())
    statuses: dict[str, str] = {}
    for item in data.get("tests", []):
        name, status = str(item["name"]), str(item["status"]).rsplit(".", 1)[-1].upper()
        if statuses.get(name) not in FAILING:
            statuses[name] = status
    return statuses


class ProRunner:
    """SWE-Bench-Pro's way for tasks that ship run_scripts/<id>/; `fallback` for the others."""

    name = "swe-bench-pro"

    def __init__(self, run_scripts: Path, fallback: TestRunner | None = None) -> None:
        self.run_scripts = Path(run_scripts)
        self.fallback = fallback or PytestRunner()

    def scripts(self, task: Task) -> Path | None:
        folder = self.run_scripts / task.instance_id
        ok = (folder / "run_script.sh").is_file() and (folder / "parser.py").is_file()
        return folder if ok else None

    def fingerprint(self, task: Task) -> str:
        folder = self.scripts(task)
        if folder is None:
            return self.fallback.fingerprint(task)
        digest = hashlib.sha256()
        for name in ("run_script.sh", "parser.py"):
            digest.update((folder / name).read_bytes())
        return digest.hexdigest()[:12]

    def plan(self, task: Task, workspace: Path) -> TestPlan:
        folder = self.scripts(task)
        if folder is None:
            return self.fallback.plan(task, workspace)
        shutil.copy(folder / "run_script.sh", workspace / "run_script.sh")
        marker = f"{MARK} start"
        files = ",".join(task.test_files)
        # The marker comes from our own line, before any code of the patch can run.
        command = "\n".join(
            [f'echo "{marker}"', "cd /app", f'bash "$CB_WORKSPACE/run_script.sh" {shlex.quote(files)}']
        )

        def parse(run: RunResult) -> tuple[bool, dict[str, str]]:
            lines = run.stdout.splitlines(keepends=True)
            started = bool(lines) and lines[0].strip() == marker
            stdout = "".join(lines[1:] if started else lines)
            return started, run_parser(folder / "parser.py", stdout, run.stderr)

        return TestPlan(command, {}, parse)


class RowSuite:
    """TaskSource for a file of SWE-Bench-Pro rows, graded the way Pro's harness grades them.

    Repositories come out of each task's image (/app, exported once per image id, then an overlay
    work tree per evaluation: `checkout_cache`), and from the demo suite for rows of its
    repositories; patches apply with plain `git apply`, as Pro's harness applies them; tests run
    through `run_scripts/<id>/` when the task has them (by default the folder next to the rows
    file), otherwise through pytest.
    """

    apply_rule = "git_apply"

    def __init__(
        self, rows: Path, cache: Path, run_scripts: Path | None = None, daemon: DockerDaemon | None = None
    ) -> None:
        from pipeline.tasks.demo import DemoSuite

        self.rows = Path(rows)
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", self.rows.stem) or "rows"
        self.run_scripts = Path(run_scripts) if run_scripts else self.rows.parent / "run_scripts"
        self.runner = ProRunner(self.run_scripts)
        self.demo = DemoSuite(Path(cache) / "repos")
        self._cache = Path(cache) / "checkouts"
        self.daemon = daemon  # copies /app out of images; opened on first need when None
        self._images: OverlayCheckout | None = None
        self._guard = threading.Lock()

    def tasks(self) -> list[Task]:
        return load_rows(self.rows)

    def difficulty(self, instance_id: str) -> str:
        del instance_id  # Pro rows carry no difficulty label
        return ""

    def wrong_patch(self, instance_id: str) -> str:
        del instance_id  # the simulated agent's wrong fixes exist for the demo suite only
        return ""

    def image(self, task: Task) -> str | None:
        return pro_image(task)

    def release(self, dest: Path) -> None:
        """Undo a checkout once its evaluation is over (an overlay work tree is unmounted)."""
        if self._images is not None:
            self._images.release(dest)

    def needs_image(self, tasks: list[Task]) -> list[str]:
        return [t.instance_id for t in tasks if pro_image(t)]

    def bind(self, sandbox: Sandbox, tasks: list[Task]) -> None:
        """Refuse a sandbox that cannot run these tasks, and share its Docker gateway for checkouts.

        Tasks with an image need a sandbox that runs task images; tasks with run scripts need /app.
        """
        can = sandbox.capabilities
        if (needs := self.needs_image(tasks)) and not can.task_images:
            raise SandboxUnavailable(
                f"tasks such as {needs[0]} run in their SWE-Bench-Pro image, which "
                f"needs Docker; the {sandbox.name!r} sandbox was chosen"
            )
        if not can.app_mount and (at_app := [t.instance_id for t in tasks if self.runner.scripts(t)]):
            raise SandboxUnavailable(
                f"tasks such as {at_app[0]} run their run_script.sh at /app, which "
                f"needs the docker or bubblewrap sandbox, not {sandbox.name!r}"
            )
        self.daemon = getattr(sandbox, "daemon", None) or self.daemon

    def checkout(self, task: Task, dest: Path) -> None:
        if pro_image(task):
            with self._guard:
                if self._images is None:
                    self.daemon = self.daemon or DockerDaemon()
                    self._images = OverlayCheckout(AppCache(self.daemon, self._cache), pro_image)
            self._images(task, dest)
        elif task.repo.startswith(DEMO_REPO_PREFIX):
            self.demo.checkout(task, dest)
        else:
            raise RuntimeError(
                f"{task.instance_id}: no way to get {task.repo}: the row names no "
                "dockerhub_tag (its SWE-Bench-Pro image holds the repository at /app)"
            )
