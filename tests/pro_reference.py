"""SWE-Bench-Pro's own harness for one patch, as its `swe_bench_pro_eval.py` runs it: the test oracle.

Pro writes `patch.diff` (binary hunks stripped), `run_script.sh`, `parser.py` and an entry script
into /workspace of a fresh container of the task image, and runs `bash /workspace/entryscript.sh`
as the image's user (root, writable root file system). The entry script exports the ENV lines
of both Dockerfiles, resets /app to the base commit, `git apply -v`s the patch (no fallback and
no `set -e`: when the apply fails, the tests run on the unpatched tree), runs the last line of
`before_repo_set_cmd`, the run script with the selected test files joined by `,` (stdout and
stderr to files), then the parser. A patch resolves the row iff F2P ∪ P2P ⊆ {PASSED}; no
`output.json` means not resolved. Written from that description, not copied; the network is
off, as with Pro's `--block_network` (these tests need none).
"""

from __future__ import annotations

import ast
import json
import re
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.sandbox.daemon import DockerDaemon


def strip_binary_hunks(patch: str) -> str:
    """Pro's rule: drop each `diff --git` section holding a binary marker line, and blank ones."""
    sections = re.split(r"(?=^diff --git )", patch, flags=re.MULTILINE)
    binary = re.compile(r"^(Binary files .* differ|GIT binary patch)$", re.MULTILINE)
    return "".join(s for s in sections if s.strip() and not binary.search(s))


def env_exports(dockerfiles: list[str]) -> list[str]:
    """Pro's rule: every line starting with ENV, in both Dockerfiles, becomes an `export` line."""
    exports = []
    for text in dockerfiles:
        for line in text.split("\n"):
            line = line.strip()
            if line.startswith("ENV"):
                exports.append(line.replace("ENV", "export", 1))
    return exports


def entry_script(row: Mapping[str, str], dockerfiles: list[str]) -> str:
    """The entry script Pro writes for `row`."""
    restore = row["before_repo_set_cmd"].strip().split("\n")[-1]
    selected = ",".join(ast.literal_eval(row["selected_test_files_to_run"]))  # Pro uses eval
    base = row["base_commit"]
    return "\n".join(
        [
            "",
            *env_exports(dockerfiles),
            "# apply patch",
            "cd /app",
            f"git reset --hard {base}",
            f"git checkout {base}",
            "git apply -v /workspace/patch.diff",
            restore,
            "# run test and save stdout and stderr to separate files",
            f"bash /workspace/run_script.sh {selected} > /workspace/stdout.log 2> /workspace/stderr.log",
            "# run parsing script",
            "python /workspace/parser.py /workspace/stdout.log /workspace/stderr.log /workspace/output.json",
            "",
        ]
    )


@dataclass
class ProResult:
    """What Pro's harness concludes about one patch, with the raw material it concluded from."""

    resolved: bool
    statuses: dict[str, str]  # test name -> PASSED | FAILED | SKIPPED | ERROR; empty without output.json
    seconds: float  # wall time of the evaluation: container created to results read
    exit_code: int | None  # the entry script's (Pro only prints it)
    entry_output: str  # the entry script's own stdout and stderr (git apply -v and friends)
    stdout_log: str = ""
    stderr_log: str = ""
    output_found: bool = False
    timed_out: bool = False
    passed: set[str] = field(default_factory=set)


def _dockerfiles(folder: Path, instance_id: str) -> list[str]:
    return [
        (folder / kind / instance_id / "Dockerfile").read_text()
        for kind in ("base_dockerfile", "instance_dockerfile")
    ]


def run_pro_harness(
    image: str,
    row: Mapping[str, str],
    run_scripts: Path,
    patch: str,
    *,
    dockerfiles: Path | None = None,
    daemon: DockerDaemon | None = None,
    network: bool = False,
    timeout_s: float = 3600,
) -> ProResult:
    """Grade `patch` on `row` in a fresh container of `image`, exactly as Pro's entry script does."""
    run_scripts = Path(run_scripts)
    dockerfiles = Path(dockerfiles) if dockerfiles else run_scripts.parent / "dockerfiles"
    daemon = daemon or DockerDaemon()
    iid = row["instance_id"]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cb-pro-ref-", ignore_cleanup_errors=True) as scratch:
        workspace = Path(scratch)
        files = {
            "patch.diff": strip_binary_hunks(patch),
            "run_script.sh": (run_scripts / iid / "run_script.sh").read_text(),
            "parser.py": (run_scripts / iid / "parser.py").read_text(),
            "entryscript.sh": entry_script(row, _dockerfiles(dockerfiles, iid)),
        }
        for name, text in files.items():
            (workspace / name).write_text(text)
        workspace.chmod(0o777)
        run = daemon.run_container(
            image,
            ["-c", "bash /workspace/entryscript.sh"],
            entrypoint=["/bin/bash"],
            mounts={str(workspace): "/workspace"},
            network=network,
            timeout_s=timeout_s,
        )
        output = workspace / "output.json"
        found = output.is_file()
        tests = json.loads(output.read_text())["tests"] if found else []
        logs = {
            name: (workspace / name).read_text(errors="replace") if (workspace / name).is_file() else ""
            for name in ("stdout.log", "stderr.log")
        }
    statuses = {str(t["name"]): str(t["status"]) for t in tests}
    passed = {name for name, status in statuses.items() if status == "PASSED"}
    graded = set(ast.literal_eval(row["fail_to_pass"])) | set(ast.literal_eval(row["pass_to_pass"]))
    return ProResult(
        resolved=found and graded <= passed,
        statuses=statuses,
        seconds=time.monotonic() - started,
        exit_code=run.exit_code,
        entry_output=run.output,
        stdout_log=logs["stdout.log"],
        stderr_log=logs["stderr.log"],
        output_found=found,
        timed_out=run.timed_out,
        passed=passed,
    )
