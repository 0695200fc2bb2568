"""What the stand-in agents do, driven by environment variables the test hands them.

STANDIN_MODE     what to do (each stand-in documents its modes; default `solve`)
STANDIN_PLAN     a JSON file: sha256 of the prompt -> the patch that solves it
STANDIN_LOG      a JSONL file: every invocation's argv, cwd and a few variables are appended
STANDIN_FAILURES fail this many invocations first (counted in STANDIN_LOG), then `solve`
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path


def record(argv: list[str]) -> int:
    """Log this invocation; return how many invocations came before it."""
    log = os.environ.get("STANDIN_LOG")
    if not log:
        return 0
    path = Path(log)
    before = len(path.read_text().splitlines()) if path.exists() else 0
    seen = {k: os.environ.get(k) for k in ("HOME", "IS_SANDBOX", "CODEX_HOME", "DISABLE_AUTOUPDATER")}
    with path.open("a") as handle:
        handle.write(
            json.dumps({"argv": argv, "cwd": os.getcwd(), "env": seen, "env_names": sorted(os.environ)})
            + "\n"
        )
    return before


def mode(previous_calls: int) -> str:
    wanted = os.environ.get("STANDIN_MODE", "solve")
    failures = int(os.environ.get("STANDIN_FAILURES", "0"))
    if failures and previous_calls >= failures:
        return "solve"
    return wanted


def solve(prompt: str) -> None:
    """Apply the patch the plan holds for this prompt to the working directory."""
    plan = json.loads(Path(os.environ["STANDIN_PLAN"]).read_text())
    patch = plan[hashlib.sha256(prompt.encode()).hexdigest()]
    done = subprocess.run(["git", "apply", "-"], input=patch, text=True, capture_output=True)
    if done.returncode != 0:
        sys.stderr.write(f"stand-in could not apply its patch: {done.stderr}\n")
        sys.exit(3)
