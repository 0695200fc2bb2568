"""What every grading leaves behind, and the cache that doubles as the audit trail.

Each grading has one folder, named by its grade key (task, base commit, patch bytes, environment
fingerprint, runner, grader version): the patch, the script that reproduces it, the raw output
and the verdict. A verdict found there is reused (marked cached), except a harness error.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipeline.grading.outcomes import Outcome
from pipeline.tasks.model import Task

GRADER_VERSION = "3"
PATCH_FILE, SCRIPT_FILE, VERDICT_FILE = "patch.diff", "eval.sh", "verdict.json"
OUTPUT_FILE, STDOUT_FILE, STDERR_FILE = "output.log", "stdout.log", "stderr.log"


@dataclass
class Verdict:
    instance_id: str
    outcome: str
    resolved: bool
    apply_step: str  # which apply rule took the patch ("" when none did, "none" for no patch)
    f2p_passed: int
    f2p_total: int
    p2p_passed: int
    p2p_total: int
    exit_code: int | None
    duration_s: float
    reason: str
    grade_key: str
    grader_version: str
    env_fingerprint: str
    artifact_dir: str
    cached: bool = False
    tests: dict[str, str] = field(default_factory=dict)
    apply_rule: str = ""  # the rule the grade used: "git_apply" (Pro's) or "lenient" (SWE-bench's chain)
    tampered: bool = False  # the patch touched the test runner's files (restored) or forged the run
    tampered_paths: list[str] = field(default_factory=list)
    image_digest: str = ""  # the id of the image the tests ran in ("" on the host's toolchain)
    dataset_revision: str = ""  # digest of the task row graded against
    run_scripts_revision: str = ""  # digest of the runner's scripts (Pro's run_script.sh + parser.py)


def grade_key(task: Task, patch: str, fingerprint: str) -> str:
    text = "\0".join(
        [
            task.instance_id,
            task.base_commit,
            hashlib.sha256(patch.encode()).hexdigest(),
            fingerprint,
            GRADER_VERSION,
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest()


class ArtifactStore:
    """The folder per grade key, under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def folder(self, key: str) -> Path:
        return self.root / key[:2] / key

    def cached(self, key: str) -> Verdict | None:
        path = self.folder(key) / VERDICT_FILE
        if not path.exists():
            return None
        verdict = Verdict(**json.loads(path.read_text()))
        if verdict.outcome == Outcome.HARNESS_ERROR:
            return None  # the harness's failures are never reused: a re-grade must retry them
        verdict.cached = True
        return verdict

    def write_output(self, key: str, output: str, stdout: str, stderr: str) -> None:
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / OUTPUT_FILE).write_text(output)
        if stderr:
            (folder / STDOUT_FILE).write_text(stdout)
            (folder / STDERR_FILE).write_text(stderr)

    def store(self, key: str, patch: str, verdict: Verdict, script: str) -> None:
        """Patch, script and verdict; the verdict last and atomically (its presence means done)."""
        folder = self.folder(key)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PATCH_FILE).write_text(patch)
        if script:
            (folder / SCRIPT_FILE).write_text(script)
        tmp = folder / f"{VERDICT_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        tmp.write_text(json.dumps(asdict(verdict), indent=1, sort_keys=True))
        tmp.replace(folder / VERDICT_FILE)
