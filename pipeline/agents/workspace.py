"""An attempt's workspace: the task's repository at its base state (from the suite's checkout),
a private HOME and TMPDIR, the prompt file; its patch is `git diff` against the base, taken with
a git that trusts nothing in the work tree."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.grading.patches import run_git
from pipeline.tasks.model import Task

Checkout = Callable[[Task, Path], None]

JUNK = (
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".cache/",
    ".bash_history",
    ".python_history",
    ".lesshst",
    ".viminfo",
)


@dataclass(frozen=True)
class Workspace:
    root: Path  # the attempt's folder
    path: Path  # the repository the agent edits
    home: Path  # the agent's private HOME
    base: str  # the commit the patch is taken against

    @classmethod
    def create(cls, root: Path, task: Task, checkout: Checkout, self_contained: bool = False) -> Workspace:
        """Check the task out under `root`; `self_contained` copies in the objects a clone borrows."""
        path, home = root / "workspace", root / "home"
        if path.exists():
            raise FileExistsError(f"{path} already exists: give every attempt a new folder")
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        checkout(task, path)
        if self_contained and (path / ".git" / "objects" / "info" / "alternates").exists():
            run_git(path, "repack", "-a", "-d", "-q")
            (path / ".git" / "objects" / "info" / "alternates").unlink()
        info = path / ".git" / "info"
        info.mkdir(parents=True, exist_ok=True)
        with (info / "exclude").open("a") as exclude:
            exclude.write("\n".join(JUNK) + "\n")
        (root / "prompt.md").write_text(task.prompt())
        base = run_git(path, "rev-parse", "HEAD").stdout.strip() or task.base_commit
        return cls(root=root, path=path, home=home, base=base)

    @property
    def prompt_file(self) -> Path:
        return self.root / "prompt.md"

    def diff(self) -> str:
        """Everything the agent changed, new files included, committed or not."""
        run_git(self.path, "add", "-A", ".")
        done = run_git(
            self.path, "diff", "--cached", "--no-color", "--no-ext-diff", "--no-textconv", self.base, "--"
        )
        if done.returncode != 0:
            raise RuntimeError(f"git diff in {self.path} failed: {done.stderr.strip()}")
        return done.stdout

    def reset(self) -> None:
        """Back to the base state, for a retry. Ignored files stay: a SWE-Bench-Pro /app carries its
        installed dependencies (node_modules, build output) as ignored files, and they never enter
        the patch."""
        run_git(self.path, "reset", "-q", "--hard", self.base)
        run_git(self.path, "clean", "-qfd")
