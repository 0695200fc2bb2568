"""Grading that SWE-Bench-Pro and SWE-bench users recognise: their task runs, files and reports.

- SWE-Bench-Pro: a task with `run_scripts/<instance_id>/{run_script.sh,parser.py}` runs as its
  harness runs it: repository at /app, `bash run_script.sh <selected files, comma-separated>`,
  then `python parser.py stdout.log stderr.log output.json` (here outside the sandbox) giving
  `{"tests": [{"name", "status"}]}`; results go to `eval_results.json` ({instance_id: bool}).
  Its image is `jefzda/sweap-images:<dockerhub_tag>`, and the repository comes out of its /app.
- SWE-bench: predictions files (.jsonl, JSON list, or JSON object keyed by id, with
  instance_id, model_name_or_path, model_patch; SWE-Bench-Pro's {instance_id, patch, prefix}
  is read too), the run report `<model>.<run_id>.json` with its id lists, and a per-instance
  `report.json` under `logs/run_evaluation/<run_id>/<model>/<instance_id>/`.
- `RowSuite` makes a rows file a suite the daily pipeline tracks (`suite:` in tracking.yaml);
  `candlebench grade` ties the same pieces together without Dagster.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipeline.grading import (
    FAILING,
    MARK,
    PASSING,
    Grader,
    PytestRunner,
    TestPlan,
    TestRunner,
    Verdict,
    run_git,
)
from pipeline.sandbox import (
    DockerDaemon,
    DockerSandbox,
    Limits,
    RunResult,
    Sandbox,
    SandboxUnavailable,
    open_sandbox,
)
from pipeline.tasks import Task, TaskFormatError, load_rows

PRO_IMAGE = "jefzda/sweap-images:{tag}"
DEMO_REPO_PREFIX = "candlebench-demo/"


def pro_image(task: Task, template: str = PRO_IMAGE) -> str | None:
    """The task's published SWE-Bench-Pro image, or None when the row names none."""
    return template.format(tag=task.dockerhub_tag) if task.dockerhub_tag.strip() else None


def run_parser(parser: Path, stdout: str, stderr: str, timeout_s: float = 120) -> dict[str, str]:
    """Run a task's parser.py on the logs, outside the sandbox; status per test (failures stick)."""
    with tempfile.TemporaryDirectory(prefix="cb-parse-") as scratch:
        folder = Path(scratch)
        (folder / "stdout.log").write_text(stdout)
        (folder / "stderr.log").write_text(stderr)
        done = subprocess.run(
            [sys.executable, str(parser.resolve()), "stdout.log", "stderr.log", "output.json"],
            cwd=folder, capture_output=True, text=True, timeout=timeout_s, check=False,
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

    def __init__(self, run_scripts: Path, fallback: TestRunner | None = None,
                 image_template: str = PRO_IMAGE) -> None:
        self.run_scripts = Path(run_scripts)
        self.fallback = fallback or PytestRunner()
        self.image_template = image_template

    def scripts(self, task: Task) -> Path | None:
        folder = self.run_scripts / task.instance_id
        ok = (folder / "run_script.sh").is_file() and (folder / "parser.py").is_file()
        return folder if ok else None

    def image(self, task: Task) -> str | None:
        return pro_image(task, self.image_template)

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
        command = "\n".join([f'echo "{marker}"', "cd /app",
                             f'bash "$CB_WORKSPACE/run_script.sh" {shlex.quote(files)}'])

        def parse(run: RunResult) -> tuple[bool, dict[str, str]]:
            lines = run.stdout.splitlines(keepends=True)
            started = bool(lines) and lines[0].strip() == marker
            stdout = "".join(lines[1:] if started else lines)
            return started, run_parser(folder / "parser.py", stdout, run.stderr)

        return TestPlan(command, {}, parse)


class ImageCheckout:
    """Work trees for tasks whose repository lives in their SWE-Bench-Pro image, at /app.

    /app is copied out of the image once per image (untracked files such as node_modules
    included), then per evaluation copied and reset to the base commit as the Pro harness does
    (`git reset --hard <base>; git checkout <base>`).
    """

    def __init__(self, daemon: DockerDaemon, cache: Path, image_template: str = PRO_IMAGE) -> None:
        self.daemon = daemon
        self.cache = Path(cache)
        self.image_template = image_template
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def source(self, image: str) -> Path:
        with self._guard:
            lock = self._locks.setdefault(image, threading.Lock())
        folder = self.cache / hashlib.sha256(image.encode()).hexdigest()[:16]
        with lock:
            if not (folder / "app").is_dir():
                self.daemon.ensure_image(image)
                self.cache.mkdir(parents=True, exist_ok=True)
                scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=self.cache))
                try:
                    self.daemon.export_dir(image, "/app", scratch / "app")
                    (scratch / "image").write_text(image + "\n")
                    scratch.rename(folder)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
        return folder / "app"

    def __call__(self, task: Task, dest: Path) -> None:
        image = pro_image(task, self.image_template)
        if image is None:
            raise RuntimeError(f"{task.instance_id}: no dockerhub_tag, so no image to take /app from")
        source = self.source(image)
        done = subprocess.run(["cp", "-a", "--reflink=auto", f"{source}/.", str(dest)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"copying {image}:/app failed: {done.stderr.strip()}")
        for args in (("reset", "-q", "--hard", task.base_commit), ("checkout", "-q", task.base_commit)):
            step = run_git(dest, *args)
            if step.returncode != 0:
                raise RuntimeError(f"git {' '.join(args)} in {image}:/app: {step.stderr.strip()}")


class RowSuite:
    """TaskSource for a file of SWE-Bench-Pro rows, graded the way Pro's harness grades them.

    Repositories come out of each task's image (/app) when the row names a `dockerhub_tag`, and
    from the demo suite for rows of its repositories; tests run through `run_scripts/<id>/` when
    the task has them (by default the folder next to the rows file), otherwise through pytest.
    """

    wrong_patch = None  # the simulated agent's wrong fixes exist for the demo suite only

    def __init__(self, rows: Path, cache: Path, run_scripts: Path | None = None,
                 daemon: DockerDaemon | None = None) -> None:
        from pipeline.demo_suite import DemoSuite

        self.rows = Path(rows)
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", self.rows.stem) or "rows"
        self.run_scripts = Path(run_scripts) if run_scripts else self.rows.parent / "run_scripts"
        self.runner = ProRunner(self.run_scripts)
        self.demo = DemoSuite(Path(cache) / "repos")
        self._cache = Path(cache) / "images"
        self.daemon = daemon  # copies /app out of images; opened on first need when None
        self._images: ImageCheckout | None = None
        self._guard = threading.Lock()

    def tasks(self) -> list[Task]:
        return load_rows(self.rows)

    def difficulty(self, instance_id: str) -> str:
        del instance_id  # Pro rows carry no difficulty label
        return ""

    def needs_image(self, tasks: list[Task]) -> list[str]:
        return [t.instance_id for t in tasks if pro_image(t)]

    def bind(self, sandbox: Sandbox, tasks: list[Task]) -> None:
        """Check that `sandbox` can run these tasks, and share its Docker gateway for checkouts.

        Tasks with an image need Docker; tasks with run scripts need /app (docker or bubblewrap).
        """
        if (needs := self.needs_image(tasks)) and not isinstance(sandbox, DockerSandbox):
            raise SandboxUnavailable(f"tasks such as {needs[0]} run in their SWE-Bench-Pro image, which "
                                     f"needs Docker; the {sandbox.name!r} sandbox was chosen")
        if sandbox.name == "process" and (at_app := [t.instance_id for t in tasks if self.runner.scripts(t)]):
            raise SandboxUnavailable(f"tasks such as {at_app[0]} run their run_script.sh at /app, which "
                                     "needs the docker or bubblewrap sandbox, not 'process'")
        if isinstance(sandbox, DockerSandbox):
            self.daemon = sandbox.daemon

    def checkout(self, task: Task, dest: Path) -> None:
        if pro_image(task):
            with self._guard:
                if self._images is None:
                    self.daemon = self.daemon or DockerDaemon()
                    self._images = ImageCheckout(self.daemon, self._cache)
            self._images(task, dest)
        elif task.repo.startswith(DEMO_REPO_PREFIX):
            self.demo.checkout(task, dest)
        else:
            raise RuntimeError(f"{task.instance_id}: no way to get {task.repo}: the row names no "
                               "dockerhub_tag (its SWE-Bench-Pro image holds the repository at /app)")


@dataclass(frozen=True)
class Prediction:
    instance_id: str
    model_name_or_path: str
    model_patch: str | None


def _prediction(row: object, where: str, key: str | None = None) -> Prediction:
    if not isinstance(row, dict):
        raise TaskFormatError(f"{where}: a prediction must be a JSON object, got {row!r:.60}")
    instance_id = row.get("instance_id", key)
    if not isinstance(instance_id, str) or not instance_id:
        raise TaskFormatError(f"{where}: missing field 'instance_id'")
    patch = row["model_patch"] if "model_patch" in row else row.get("patch")
    if patch is not None and not isinstance(patch, str):
        raise TaskFormatError(f"{where} ({instance_id}): 'model_patch' must be a string or null")
    model = row.get("model_name_or_path") or row.get("prefix") or "unknown"
    return Prediction(instance_id, str(model), patch)


def read_predictions(path: Path, unique: bool = True) -> list[Prediction]:
    """SWE-bench predictions: .jsonl, a JSON list, or a JSON object keyed by instance_id.

    `unique=False` admits several predictions per task (a replayed day's trials).
    """
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((json.loads(line), f"{path}:{number}", None))
                except json.JSONDecodeError as err:
                    raise TaskFormatError(f"{path}:{number}: invalid JSON: {err}") from err
    else:
        data = json.loads(text)
        if isinstance(data, list):
            rows = [(row, f"{path}[{i}]", None) for i, row in enumerate(data)]
        elif isinstance(data, dict):
            rows = [(row, f"{path}[{key!r}]", key) for key, row in data.items()]
        else:
            raise TaskFormatError(f"{path}: expected a JSON list or object of predictions")
    predictions = [_prediction(row, where, key) for row, where, key in rows]
    ids = Counter(p.instance_id for p in predictions)
    duplicates = sorted(i for i, n in ids.items() if n > 1)
    if unique and duplicates:
        raise TaskFormatError(f"{path}: more than one prediction for {duplicates[:5]}")
    return predictions


def write_predictions(path: Path, predictions: list[Prediction], keyed: bool = False) -> None:
    """Write predictions as .jsonl, or .json (a list, or an object keyed by id when `keyed`)."""
    path = Path(path)
    rows = [{"instance_id": p.instance_id, "model_name_or_path": p.model_name_or_path,
             "model_patch": p.model_patch} for p in predictions]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif keyed:
        path.write_text(json.dumps({row["instance_id"]: row for row in rows}, indent=1))
    else:
        path.write_text(json.dumps(rows, indent=1))


def instance_report(task: Task, verdict: Verdict, patch: str | None) -> dict:
    """SWE-bench's per-instance report.json."""
    def split(names: list[str]) -> dict[str, list[str]]:
        return {"success": [n for n in names if verdict.tests.get(n) in PASSING],
                "failure": [n for n in names if verdict.tests.get(n) not in PASSING]}

    return {task.instance_id: {
        "patch_is_None": patch is None,
        "patch_exists": bool(patch and patch.strip()),
        "patch_successfully_applied": verdict.apply_step not in ("", "none"),
        "resolved": verdict.resolved,
        "tests_status": {
            "FAIL_TO_PASS": split(task.f2p), "PASS_TO_PASS": split(task.p2p),
            "FAIL_TO_FAIL": {"success": [], "failure": []},
            "PASS_TO_FAIL": {"success": [], "failure": []},
        },
    }}


def run_report(tasks: list[Task], predictions: list[Prediction], verdicts: dict[str, Verdict]) -> dict:
    """SWE-bench's run report (schema 2): counts and id lists, with its meaning of each list.

    completed = graded to a verdict (resolved or unresolved); error = patch did not apply, timed
    out, or the harness failed (SWE-bench writes no report.json for those); empty patches are
    neither; incomplete = tasks without a prediction.
    """
    submitted = {p.instance_id for p in predictions}
    outcome = {iid: v.outcome for iid, v in verdicts.items()}
    ids = {
        "completed_ids": [i for i, o in outcome.items() if o in ("resolved", "unresolved")],
        "incomplete_ids": [t.instance_id for t in tasks if t.instance_id not in submitted],
        "empty_patch_ids": [i for i, o in outcome.items() if o == "empty_patch"],
        "submitted_ids": list(submitted),
        "resolved_ids": [i for i, o in outcome.items() if o == "resolved"],
        "unresolved_ids": [i for i, o in outcome.items() if o == "unresolved"],
        "error_ids": [i for i, o in outcome.items()
                      if o in ("patch_failed", "timeout", "harness_error")],
    }
    ids = {name: sorted(values) for name, values in ids.items()}
    report = {
        "total_instances": len(tasks),
        "submitted_instances": len(submitted),
        "completed_instances": len(ids["completed_ids"]),
        "resolved_instances": len(ids["resolved_ids"]),
        "unresolved_instances": len(ids["unresolved_ids"]),
        "empty_patch_instances": len(ids["empty_patch_ids"]),
        "error_instances": len(ids["error_ids"]),
        **ids,
        "schema_version": 2,
        "candlebench": {"outcomes": dict(sorted(outcome.items())),
                        "reasons": {i: v.reason for i, v in sorted(verdicts.items()) if v.reason}},
    }
    return report


def eval_results(verdicts: dict[str, Verdict]) -> tuple[dict[str, bool], dict[str, str]]:
    """SWE-Bench-Pro's eval_results.json ({id: resolved}) and infra_errors.json (never scored)."""
    results = {i: v.resolved for i, v in sorted(verdicts.items()) if v.outcome != "harness_error"}
    errors = {i: v.reason for i, v in sorted(verdicts.items()) if v.outcome == "harness_error"}
    return results, errors


def _model_folder(model: str) -> str:
    return model.replace("/", "__")


def write_reports(out: Path, run_id: str, tasks: list[Task], predictions: list[Prediction],
                  verdicts: dict[str, Verdict]) -> dict[str, Path]:
    """Both harnesses' outputs under `out`; returns the main files written."""
    out.mkdir(parents=True, exist_ok=True)
    by_id = {t.instance_id: t for t in tasks}
    for prediction in predictions:
        verdict = verdicts.get(prediction.instance_id)
        if verdict is None:
            continue
        folder = (out / "logs" / "run_evaluation" / run_id / _model_folder(prediction.model_name_or_path)
                  / prediction.instance_id)
        folder.mkdir(parents=True, exist_ok=True)
        artifacts = Path(verdict.artifact_dir)
        for source, target in (("patch.diff", "patch.diff"), ("eval.sh", "eval.sh"),
                               ("output.log", "test_output.txt"), ("verdict.json", "verdict.json")):
            if (artifacts / source).exists():
                shutil.copyfile(artifacts / source, folder / target)
        if verdict.outcome in ("resolved", "unresolved"):
            report = instance_report(by_id[prediction.instance_id], verdict, prediction.model_patch)
            (folder / "report.json").write_text(json.dumps(report, indent=4))
    model = _model_folder(predictions[0].model_name_or_path) if predictions else "none"
    files = {
        "run_report": out / f"{model}.{run_id}.json",
        "eval_results": out / "eval_results.json",
        "infra_errors": out / "infra_errors.json",
    }
    files["run_report"].write_text(json.dumps(run_report(tasks, predictions, verdicts), indent=4))
    results, errors = eval_results(verdicts)
    files["eval_results"].write_text(json.dumps(results, indent=1))
    files["infra_errors"].write_text(json.dumps(errors, indent=1))
    return files


def add_grade_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", required=True,
                        help="SWE-Bench-Pro rows (.jsonl, .json, .parquet), or `demo` for the built-in suite")
    parser.add_argument("--predictions", required=True,
                        help="SWE-bench predictions (.jsonl, JSON list, or JSON object keyed by instance_id)")
    parser.add_argument("--sandbox", choices=("docker", "bubblewrap", "process"), default="docker")
    parser.add_argument("--out", required=True, help="folder for the reports and per-instance logs")
    parser.add_argument("--run-scripts", help="SWE-Bench-Pro run_scripts/ folder "
                        "(default: run_scripts/ next to the tasks file, when there is one)")
    parser.add_argument("--run-id", default="candlebench", help="names the SWE-bench run report")
    parser.add_argument("--workers", type=int, default=2, help="evaluations running at once")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per evaluation")
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb,
                        help="memory per evaluation, MiB; docker counts /tmp in it (default %(default)s)")
    parser.add_argument("--tmp-mb", type=int, default=Limits.tmp_mb,
                        help="size of the sandbox's private /tmp in MiB (default %(default)s)")
    parser.add_argument("--allow-untrusted-patches-without-sandbox", action="store_true",
                        help="let --sandbox process run these untrusted patches (only for patches you trust)")


def grade_command(args: argparse.Namespace) -> int:
    """`candlebench grade`: grade a predictions file without Dagster; write both report formats."""
    from pipeline.config import home
    from pipeline.demo_suite import DemoSuite

    def fail(message: str) -> int:
        print(f"candlebench grade: {message}", file=sys.stderr)
        return 2

    if args.memory_mb < 64 or args.tmp_mb < 1 or args.timeout <= 0 or args.workers < 1:
        return fail("--memory-mb must be at least 64, --tmp-mb and --workers at least 1, --timeout positive")
    demo = args.tasks == "demo"
    try:
        suite = DemoSuite(home() / "repos") if demo else RowSuite(
            Path(args.tasks), home(), Path(args.run_scripts) if args.run_scripts else None)
        tasks = suite.tasks()
        predictions = read_predictions(Path(args.predictions))
    except (OSError, ValueError) as err:
        return fail(str(err))
    by_id = {t.instance_id: t for t in tasks}
    unknown = [p.instance_id for p in predictions if p.instance_id not in by_id]
    if unknown:
        print(f"skipping {len(unknown)} prediction(s) for unknown tasks: {unknown[:5]}")
    predictions = [p for p in predictions if p.instance_id in by_id]
    if args.sandbox == "process" and not args.allow_untrusted_patches_without_sandbox:
        return fail("predictions are untrusted code; --sandbox process runs them unsandboxed. Use "
                    "docker or bubblewrap, or pass --allow-untrusted-patches-without-sandbox")
    try:
        sandbox = open_sandbox(args.sandbox)
        if not demo:
            suite.bind(sandbox, [by_id[p.instance_id] for p in predictions])
    except SandboxUnavailable as err:
        return fail(str(err))
    runner = None if demo else suite.runner

    out = Path(args.out)
    limits = Limits(timeout_s=args.timeout, memory_mb=args.memory_mb, tmp_mb=args.tmp_mb)
    grader = Grader(suite.checkout, sandbox, out / "artifacts", limits,
                    allow_untrusted_unsandboxed=args.allow_untrusted_patches_without_sandbox,
                    runner=runner)
    pairs = [(by_id[p.instance_id], p.model_patch or "") for p in predictions]
    print(f"grading {len(pairs)} prediction(s) in the {sandbox.name} sandbox, {args.workers} at a time")
    graded = grader.grade_many(pairs, workers=args.workers, trusted=False)
    verdicts = {p.instance_id: v for p, v in zip(predictions, graded, strict=True)}
    files = write_reports(out, args.run_id, tasks, predictions, verdicts)
    counts = Counter(v.outcome for v in verdicts.values())
    for verdict in sorted(verdicts.values(), key=lambda v: v.instance_id):
        print(f"  {verdict.instance_id:40} {verdict.outcome:13} {verdict.reason[:70]}")
    print(f"{counts['resolved']}/{len(verdicts)} resolved; "
          + ", ".join(f"{n} {o}" for o, n in sorted(counts.items())))
    for name, path in files.items():
        print(f"{name}: {path}")
    return 0
