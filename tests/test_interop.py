"""SWE-Bench-Pro and SWE-bench interoperability: predictions, reports, Pro-style runs, `grade`.

The Pro-style task is a demo task given a run_script.sh and a parser.py in SWE-Bench-Pro's shape;
the image-based one runs in a locally made `jefzda/sweap-images:<tag>` (the demo image plus the
demo repository at /app). No internet is used. Sandbox-backed tests skip with a printed reason
when the backend is missing, except under CI=true, where they fail.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import textwrap
import uuid
from pathlib import Path

import pytest

from pipeline.cli import main as cli
from pipeline.grading import Grader
from pipeline.grading.reports import instance_report, run_report
from pipeline.sandbox import DEMO_IMAGE, Limits, SandboxUnavailable
from pipeline.sandbox.bubblewrap import BubblewrapSandbox
from pipeline.sandbox.docker import DockerSandbox
from pipeline.tasks import Task, TaskFormatError
from pipeline.tasks.pro import PRO_IMAGE, ProRunner, run_parser
from pipeline.tasks.rows import Prediction, load_rows, read_predictions, write_predictions

TASK = "demo__textkit-001"

RUN_SCRIPT = """\
#!/bin/bash
set -e
cd /app
run_selected_tests() {
  python -m pytest -v -p no:cacheprovider -o addopts='' "$@"
}
if [ $# -eq 0 ]; then
  run_selected_tests tests
  exit $?
fi
IFS=',' read -r -a TEST_FILES <<< "$1"
run_selected_tests "${TEST_FILES[@]}"
"""

PARSER = """\
import dataclasses
import json
import re
import sys
from enum import Enum
from pathlib import Path
from typing import List


class TestStatus(Enum):
    PASSED = 1
    FAILED = 2
    SKIPPED = 3
    ERROR = 4


@dataclasses.dataclass
class TestResult:
    name: str
    status: TestStatus


def parse_test_output(stdout_content: str, stderr_content: str) -> List[TestResult]:
    line = re.compile(r"^(\\S+::\\S+)\\s+(PASSED|FAILED|SKIPPED|ERROR)\\b")
    found = [line.match(text.strip()) for text in stdout_content.splitlines()]
    return [TestResult(m.group(1), TestStatus[m.group(2)]) for m in found if m]


def main(stdout_path, stderr_path, output_path):
    results = parse_test_output(Path(stdout_path).read_text(), Path(stderr_path).read_text())
    tests = [{"name": r.name, "status": r.status.name} for r in results]
    Path(output_path).write_text(json.dumps({"tests": tests}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
"""


def _unavailable(reason: str) -> None:
    print(reason)
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this backend is expected here)", pytrace=False)
    pytest.skip(reason)


def open_backend(name: str):
    try:
        return DockerSandbox() if name == "docker" else BubblewrapSandbox()
    except SandboxUnavailable as err:
        _unavailable(f"{name} sandbox unavailable: {err}")


@pytest.fixture(scope="module")
def task(suite) -> Task:
    return next(t for t in suite.tasks() if t.instance_id == TASK)


def pro_suite(folder: Path, tasks: list[Task]) -> Path:
    """Rows file plus run_scripts/<id>/{run_script.sh,parser.py}, as SWE-Bench-Pro ships them."""
    folder.mkdir(parents=True, exist_ok=True)
    for task in tasks:
        scripts = folder / "run_scripts" / task.instance_id
        scripts.mkdir(parents=True, exist_ok=True)
        (scripts / "run_script.sh").write_text(RUN_SCRIPT)
        (scripts / "parser.py").write_text(PARSER)
    rows = folder / "tasks.jsonl"
    rows.write_text("".join(json.dumps(t.as_row()) + "\n" for t in tasks))
    return rows


def test_predictions_in_all_three_shapes_and_back(tmp_path):
    rows = [
        {"instance_id": "a", "model_name_or_path": "m/1", "model_patch": "diff --git a/x b/x\n"},
        {"instance_id": "b", "model_name_or_path": "m/1", "model_patch": None},
    ]
    (tmp_path / "p.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "list.json").write_text(json.dumps(rows))
    (tmp_path / "keyed.json").write_text(json.dumps({r["instance_id"]: r for r in rows}))
    expected = [Prediction("a", "m/1", "diff --git a/x b/x\n"), Prediction("b", "m/1", None)]
    for name in ("p.jsonl", "list.json", "keyed.json"):
        assert read_predictions(tmp_path / name) == expected
    for name, keyed in (("out.jsonl", False), ("out.json", False), ("outk.json", True)):
        write_predictions(tmp_path / name, expected, keyed=keyed)
        assert read_predictions(tmp_path / name) == expected
    assert isinstance(json.loads((tmp_path / "outk.json").read_text()), dict)
    # SWE-Bench-Pro's own patches file: {instance_id, patch, prefix}
    (tmp_path / "pro.json").write_text(json.dumps([{"instance_id": "a", "patch": "p", "prefix": "run1"}]))
    assert read_predictions(tmp_path / "pro.json") == [Prediction("a", "run1", "p")]


def test_bad_predictions_files_fail_clearly(tmp_path):
    (tmp_path / "dup.jsonl").write_text('{"instance_id": "a", "model_patch": ""}\n' * 2)
    with pytest.raises(TaskFormatError, match="more than one prediction"):
        read_predictions(tmp_path / "dup.jsonl")
    (tmp_path / "noid.json").write_text(json.dumps([{"model_patch": ""}]))
    with pytest.raises(TaskFormatError, match="instance_id"):
        read_predictions(tmp_path / "noid.json")


def test_pro_list_fields_are_parsed_without_eval(task, tmp_path):
    row = task.as_row() | {"fail_to_pass": "[__import__('os').system('touch /tmp/cb-pwned')]"}
    (tmp_path / "rows.json").write_text(json.dumps([row]))
    with pytest.raises(TaskFormatError, match="not a Python list literal"):
        load_rows(tmp_path / "rows.json")
    assert not Path("/tmp/cb-pwned").exists()


def test_run_parser_reads_the_pro_output_format(tmp_path):
    (tmp_path / "parser.py").write_text(PARSER)
    stdout = "tests/t.py::a PASSED [ 50%]\ntests/t.py::b FAILED [100%]\ntests/t.py::b PASSED\n"
    assert run_parser(tmp_path / "parser.py", stdout, "") == {
        "tests/t.py::a": "PASSED",
        "tests/t.py::b": "FAILED",
    }
    (tmp_path / "broken.py").write_text("raise SystemExit(3)\n")
    with pytest.raises(RuntimeError, match="exited 3"):
        run_parser(tmp_path / "broken.py", stdout, "")


def test_reports_follow_swe_bench(task, tmp_path):
    grader = Grader(lambda t, d: None, _NoSandbox(), tmp_path)
    tests = {n: "PASSED" for n in task.f2p + task.p2p}
    resolved = grader._verdict(
        task,
        "k1",
        "resolved",
        apply_step="git_apply",
        tests=tests,
        f2p_passed=len(task.f2p),
        p2p_passed=len(task.p2p),
        exit_code=0,
    )
    report = instance_report(task, resolved, task.patch)[task.instance_id]
    assert report["resolved"] and report["patch_successfully_applied"] and not report["patch_is_None"]
    assert report["tests_status"]["FAIL_TO_PASS"] == {"success": task.f2p, "failure": []}
    predictions = [
        Prediction(task.instance_id, "m", task.patch),
        Prediction("x-empty", "m", None),
        Prediction("x-failed", "m", "junk"),
    ]
    others = [Task.from_row(task.as_row() | {"instance_id": i}) for i in ("x-empty", "x-failed", "x-none")]
    verdicts = {
        task.instance_id: resolved,
        "x-empty": grader._verdict(others[0], "k2", "empty_patch"),
        "x-failed": grader._verdict(others[1], "k3", "patch_failed"),
    }
    run = run_report([task, *others], predictions, verdicts)
    assert run["schema_version"] == 2 and run["total_instances"] == 4
    assert run["resolved_ids"] == [task.instance_id] and run["completed_ids"] == [task.instance_id]
    assert run["empty_patch_ids"] == ["x-empty"] and run["error_ids"] == ["x-failed"]
    assert run["incomplete_ids"] == ["x-none"] and run["unresolved_ids"] == []
    assert run["submitted_ids"] == sorted(p.instance_id for p in predictions)


class _NoSandbox:
    name = "none"
    trusted_only = True

    def fingerprint(self, image=None):
        return "none"


@pytest.mark.parametrize("backend", ["bubblewrap", "docker"])
def test_pro_style_task_runs_like_the_pro_harness(suite, task, tmp_path, backend):
    sandbox = open_backend(backend)
    pro_suite(tmp_path / "pro", [task])
    grader = Grader(
        suite.checkout,
        sandbox,
        tmp_path / "artifacts",
        Limits(timeout_s=60),
        runner=ProRunner(tmp_path / "pro" / "run_scripts"),
    )
    gold = grader.grade(task, task.patch, trusted=False)
    assert gold.outcome == "resolved", (gold.reason, gold.tests)
    assert set(gold.tests) >= set(task.f2p + task.p2p)  # names as parser.py wrote them
    folder = Path(gold.artifact_dir)
    assert "run_script.sh" in (folder / "eval.sh").read_text()
    assert " PASSED" in (folder / "output.log").read_text()  # `pytest -v` lines, not the -rA summary
    empty = grader.grade(task, "", trusted=False, run_empty=True)
    assert empty.outcome == "unresolved" and empty.f2p_passed == 0 and empty.p2p_passed == empty.p2p_total


def test_grade_cli_writes_both_report_formats(suite, tmp_path, monkeypatch, capsys):
    open_backend("bubblewrap")
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    tasks = {t.instance_id: t for t in suite.tasks()}
    chosen = [
        tasks[i]
        for i in ("demo__textkit-001", "demo__textkit-002", "demo__calcexpr-001", "demo__iniconf-001")
    ]
    rows = pro_suite(tmp_path / "pro", chosen)
    predictions = [
        Prediction("demo__textkit-001", "org/model-x", chosen[0].patch),  # resolves
        Prediction("demo__textkit-002", "org/model-x", ""),  # empty
        Prediction(
            "demo__calcexpr-001",
            "org/model-x",
            "diff --git a/nope b/nope\n--- a/nope\n+++ b/nope\n@@ -1 +1 @@\n-a\n+b\n",
        ),  # does not apply
    ]
    write_predictions(tmp_path / "preds.jsonl", predictions)
    out = tmp_path / "out"
    code = cli(
        [
            "grade",
            "--tasks",
            str(rows),
            "--predictions",
            str(tmp_path / "preds.jsonl"),
            "--sandbox",
            "bubblewrap",
            "--out",
            str(out),
            "--run-id",
            "r1",
            "--timeout",
            "60",
        ]
    )
    assert code == 0, capsys.readouterr()
    assert json.loads((out / "eval_results.json").read_text()) == {
        "demo__calcexpr-001": False,
        "demo__textkit-001": True,
        "demo__textkit-002": False,
    }
    assert json.loads((out / "infra_errors.json").read_text()) == {}
    report = json.loads((out / "org__model-x.r1.json").read_text())
    assert report["resolved_ids"] == ["demo__textkit-001"]
    assert report["empty_patch_ids"] == ["demo__textkit-002"]
    assert report["error_ids"] == ["demo__calcexpr-001"]
    assert report["incomplete_ids"] == ["demo__iniconf-001"]
    assert report["completed_ids"] == ["demo__textkit-001"] and report["schema_version"] == 2
    logs = out / "logs" / "run_evaluation" / "r1" / "org__model-x"
    per_instance = json.loads((logs / "demo__textkit-001" / "report.json").read_text())
    assert per_instance["demo__textkit-001"]["resolved"] is True
    assert {p.name for p in (logs / "demo__textkit-001").iterdir()} >= {
        "report.json",
        "patch.diff",
        "eval.sh",
        "test_output.txt",
        "verdict.json",
    }
    assert not (logs / "demo__calcexpr-001" / "report.json").exists()  # as SWE-bench: errors get none


def test_grade_cli_on_the_demo_suite_and_its_refusals(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    from pipeline.tasks.demo import DemoSuite

    gold = next(t for t in DemoSuite(tmp_path / "home" / "repos").tasks() if t.instance_id == TASK)
    write_predictions(tmp_path / "p.json", [Prediction(TASK, "gold", gold.patch)], keyed=True)
    base = [
        "grade",
        "--tasks",
        "demo",
        "--predictions",
        str(tmp_path / "p.json"),
        "--out",
        str(tmp_path / "out"),
    ]
    assert cli([*base, "--sandbox", "process"]) == 2
    assert "untrusted" in capsys.readouterr().err
    assert cli([*base, "--sandbox", "process", "--memory-mb", "32"]) == 2
    assert "--memory-mb must be at least 64" in capsys.readouterr().err
    assert cli([*base, "--sandbox", "process", "--allow-untrusted-patches-without-sandbox"]) == 0
    assert json.loads((tmp_path / "out" / "eval_results.json").read_text()) == {TASK: True}
    assert json.loads((tmp_path / "out" / "gold.candlebench.json").read_text())["total_instances"] == 36


def test_grade_cli_exit_status_tells_scripts_the_truth(tmp_path, monkeypatch, capsys):
    """No prediction for a task of the suite: exit 2 naming them. An evaluation that was a harness
    error (its number missing): exit 1 with one line on stderr, the reports still written."""
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    base = [
        "grade",
        "--tasks",
        "demo",
        "--predictions",
        str(tmp_path / "p.jsonl"),
        "--out",
        str(tmp_path / "out"),
        "--sandbox",
        "process",
        "--allow-untrusted-patches-without-sandbox",
    ]
    write_predictions(tmp_path / "p.jsonl", [Prediction("no-such-task", "m", "")])
    assert cli(base) == 2
    err = capsys.readouterr().err.strip()
    assert "no prediction names a task" in err and "'no-such-task'" in err and len(err.splitlines()) == 1
    (tmp_path / "p.jsonl").write_text("")
    assert cli(base) == 2
    assert "no predictions" in capsys.readouterr().err

    def broken(self, pairs, **_options):
        return [self.not_run(task, "harness_error", "the sandbox died") for task, _ in pairs]

    monkeypatch.setattr(Grader, "grade_many", broken)
    write_predictions(tmp_path / "p.jsonl", [Prediction(TASK, "m", "")])
    assert cli(base) == 1
    err = capsys.readouterr().err.strip()
    assert "1 of 1 evaluations failed in the harness (first: the sandbox died)" in err
    assert (tmp_path / "out" / "eval_results.json").exists()


@pytest.fixture
def sweap_image(suite, task):
    """A local `jefzda/sweap-images:<tag>`: the demo image with the demo repository at /app."""
    sandbox = open_backend("docker")
    client = sandbox.daemon.client
    tag = f"cb-test-{uuid.uuid4().hex[:12]}"
    repo = suite.repo_path(task.repo.split("/", 1)[1])
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.add(repo, arcname="app", filter=lambda info: _owned_by(info, 0))  # root, as in Pro images
        marker = tarfile.TarInfo("etc/sweap-marker")  # tells this image from the demo image
        marker.size = len(b"task image\n")
        tar.addfile(marker, io.BytesIO(b"task image\n"))
    container = client.containers.create(DEMO_IMAGE, ["true"])
    try:
        container.put_archive("/", archive.getvalue())
        container.commit(repository=PRO_IMAGE.split(":")[0], tag=tag)
    finally:
        container.remove(force=True)
    yield sandbox, tag
    sandbox.daemon.remove_image(PRO_IMAGE.format(tag=tag))


def _owned_by(info: tarfile.TarInfo, uid: int) -> tarfile.TarInfo:
    info.uid = info.gid = uid
    return info


def test_pro_task_in_its_published_image(task, tmp_path, monkeypatch, sweap_image, capsys):
    """Repository from the image's /app, tests in that image; a missing image says how to load it."""
    _, tag = sweap_image
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    in_image = Task.from_row(task.as_row() | {"repo": "example/textkit", "dockerhub_tag": tag})
    missing = Task.from_row(
        task.as_row()
        | {
            "instance_id": "gone",
            "repo": "example/textkit",
            "dockerhub_tag": f"cb-missing-{uuid.uuid4().hex[:8]}",
        }
    )
    rows = pro_suite(tmp_path / "pro", [in_image, missing])
    write_predictions(
        tmp_path / "p.jsonl",
        [Prediction(in_image.instance_id, "m", task.patch), Prediction("gone", "m", task.patch)],
    )
    out = tmp_path / "out"
    assert (
        cli(
            [
                "grade",
                "--tasks",
                str(rows),
                "--predictions",
                str(tmp_path / "p.jsonl"),
                "--sandbox",
                "bubblewrap",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert "run in their SWE-Bench-Pro image, which needs Docker" in capsys.readouterr().err
    assert (
        cli(
            [
                "grade",
                "--tasks",
                str(rows),
                "--predictions",
                str(tmp_path / "p.jsonl"),
                "--sandbox",
                "docker",
                "--out",
                str(out),
                "--timeout",
                "120",
                "--memory-mb",
                "1024",
                "--tmp-mb",
                "64",
            ]
        )
        == 1
    )  # reports written, one evaluation missing: scripts must know
    assert "1 of 2 evaluations failed in the harness" in capsys.readouterr().err
    assert json.loads((out / "eval_results.json").read_text()) == {in_image.instance_id: True}
    errors = json.loads((out / "infra_errors.json").read_text())
    assert list(errors) == ["gone"]
    assert "jefzda/sweap-images:cb-missing-" in errors["gone"] and "docker load -i" in errors["gone"]
    eval_sh = next((out / "logs").rglob("eval.sh")).read_text()
    assert f"jefzda/sweap-images:{tag}" in eval_sh
    assert "timeout_s=120.0, memory_mb=1024" in eval_sh and "tmp_mb=64" in eval_sh


def test_run_script_gets_comma_separated_files(task, tmp_path):
    plan = ProRunner(tmp_path).fallback  # no scripts: the pytest runner takes over
    assert plan.name == "pytest"
    pro_suite(tmp_path, [task])
    runner = ProRunner(tmp_path / "run_scripts")
    workspace = tmp_path / "ws"
    workspace.mkdir()
    command = runner.plan(task, workspace).command
    assert ",".join(task.test_files) in command and (workspace / "run_script.sh").exists()
    assert textwrap.dedent(RUN_SCRIPT) == (workspace / "run_script.sh").read_text()


@pytest.mark.parametrize("backend", ["bubblewrap", "docker"])
def test_a_rows_suite_is_tracked_by_the_daily_pipeline(suite, task, tmp_path, monkeypatch, request, backend):
    """`suite: <rows file>` in tracking.yaml: catalog, sample, controls, attempts and grading of
    SWE-Bench-Pro rows (run_script.sh at /app, parser.py outside) in real Dagster runs; with
    docker, every task's repository and tests come from its (locally made) Pro image."""
    import dagster as dg
    import yaml

    from pipeline.definitions import defs
    from pipeline.orchestration.history import QUIET
    from pipeline.preflight import preflight
    from pipeline.store.warehouse import Warehouse

    tasks = sorted((t for t in suite.tasks() if t.repo == task.repo), key=lambda t: t.instance_id)[:3]
    if backend == "docker":
        _, tag = request.getfixturevalue("sweap_image")
        tasks = [Task.from_row(t.as_row() | {"repo": "example/textkit", "dockerhub_tag": tag}) for t in tasks]
    else:
        open_backend(backend)
    pro_suite(tmp_path / "pro", tasks)
    (tmp_path / "scenario.yaml").write_text(
        yaml.safe_dump(
            {
                "seed": 1,
                "start_date": "2026-11-01",
                "subjects": {"sim-pro": [{"day": 1, "version": "v1", "pass_rate": 1.0}]},
            }
        )
    )
    config = {
        "suite": "pro/tasks.jsonl",
        "sample": {"size": 3, "seed": 1},
        "trials": 1,
        "sandbox": backend,
        "subjects": [{"name": "sim-pro", "adapter": "simulated", "scenario": "scenario.yaml"}],
    }
    (tmp_path / "tracking.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("CANDLEBENCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CANDLEBENCH_CONFIG", str(tmp_path / "tracking.yaml"))
    day, key = "2026-11-20", dg.MultiPartitionKey({"date": "2026-11-20", "subject": "sim-pro"})

    def run(instance, name, partition=None, ok=True):
        result = defs.resolve_job_def(name).execute_in_process(
            instance=instance, partition_key=partition, run_config=QUIET, raise_on_error=False
        )
        assert result.success is ok, name
        return result

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("subject", ["sim-pro"])
        run(instance, "catalog_job")
        run(instance, "daily_job", day)
        run(instance, "evaluation_job", key)
        if backend == "docker":  # the same rows with a sandbox that cannot run their images
            ready = {c.what: (c.status, c.detail) for c in preflight()}
            assert ready["task images"] == ("ok", "all 1 present locally") and ready["sandbox"][0] == "ok"
            (tmp_path / "tracking.yaml").write_text(yaml.safe_dump(config | {"sandbox": "bubblewrap"}))
            refused = {c.what: (c.status, c.detail) for c in preflight()}
            assert refused["sandbox"][0] == "fail" and "which needs Docker" in refused["sandbox"][1]
            failed = run(instance, "evaluation_job", key, ok=False)
            (error,) = [e for e in failed.all_events if e.is_step_failure]
            assert "run in their SWE-Bench-Pro image, which needs Docker" in str(
                error.step_failure_data.error
            )
    lake = Warehouse(tmp_path / "home").lake
    catalog = lake.read_partition("tasks", suite="tasks")
    assert sorted(catalog["instance_id"].to_list()) == [t.instance_id for t in tasks]
    controls = lake.read_partition("controls", date=day)
    assert sorted(controls["control"].to_list()) == ["empty"] * 3 + ["gold"] * 3 and controls["ok"].all()
    graded = lake.read_partition("evaluations", subject="sim-pro", date=day)
    assert sorted(graded["outcome"].to_list()) == ["resolved"] * 3
    scripts = [(Path(folder) / "eval.sh").read_text() for folder in graded["artifact_dir"]]
    assert all("run_script.sh" in text and "runner swe-bench-pro" in text for text in scripts)
    if backend == "docker":
        assert all(f"jefzda/sweap-images:{tag}" in text for text in scripts)


def test_a_bash_loop_agent_works_in_the_task_image(task, tmp_path, monkeypatch, sweap_image):
    """On a rows suite, an openai-compatible agent with `sandbox: docker` runs its commands in the
    task's own image (its toolchain), on a work tree taken from that image's /app."""
    import datetime as dt

    import yaml
    from standins.openai_server import StandInServer

    from pipeline.config import load_config
    from pipeline.tracker import Tracker

    _, tag = sweap_image
    in_image = Task.from_row(task.as_row() | {"repo": "example/textkit", "dockerhub_tag": tag})
    pro_suite(tmp_path / "pro", [in_image])
    script = [
        "```bash\ncat /etc/sweap-marker && pwd && git status --short && echo ok\n```",
        f"```bash\ngit apply <<'EOF'\n{task.patch}EOF\n```",
        "```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```",
    ]
    with StandInServer(script) as server:
        (tmp_path / "tracking.yaml").write_text(
            yaml.safe_dump(
                {
                    "suite": "pro/tasks.jsonl",
                    "trials": 1,
                    "sandbox": "docker",
                    "prices": {"gpt-standin": {"input": 0, "output": 0}},
                    "subjects": [
                        {
                            "name": "oa",
                            "adapter": "openai-compatible",
                            "model": "gpt-standin",
                            "settings": {"base_url": server.url, "sandbox": "docker"},
                        }
                    ],
                }
            )
        )
        tracker = Tracker(tmp_path / "home", load_config(tmp_path / "tracking.yaml"))
        attempt = tracker.agent("oa").solve(in_image, dt.date(2026, 11, 20), 0)
    assert attempt.exit_class == "submitted", attempt.detail
    observations = [m["content"] for m in server.requests[-1]["body"]["messages"] if m["role"] == "user"]
    assert "<output>\ntask image\n/app\nok\n" in observations[1]
    verdict = tracker.grade([(in_image, attempt.patch)], trusted=False)[0]
    assert verdict.outcome == "resolved", verdict.reason
