"""The reports SWE-bench and SWE-Bench-Pro users read: per-instance report.json, the run report
(schema 2) with its id lists, eval_results.json and infra_errors.json, and the per-instance log
folders, all from candlebench's verdicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pipeline.grading.artifacts import OUTPUT_FILE, PATCH_FILE, SCRIPT_FILE, VERDICT_FILE, Verdict
from pipeline.grading.outcomes import PASSING, Outcome
from pipeline.tasks.model import Task
from pipeline.tasks.rows import Prediction


def instance_report(task: Task, verdict: Verdict, patch: str | None) -> dict:
    """SWE-bench's per-instance report.json."""

    def split(names: list[str]) -> dict[str, list[str]]:
        return {
            "success": [n for n in names if verdict.tests.get(n) in PASSING],
            "failure": [n for n in names if verdict.tests.get(n) not in PASSING],
        }

    return {
        task.instance_id: {
            "patch_is_None": patch is None,
            "patch_exists": bool(patch and patch.strip()),
            "patch_successfully_applied": verdict.apply_step not in ("", "none"),
            "resolved": verdict.resolved,
            "tests_status": {
                "FAIL_TO_PASS": split(task.f2p),
                "PASS_TO_PASS": split(task.p2p),
                "FAIL_TO_FAIL": {"success": [], "failure": []},
                "PASS_TO_FAIL": {"success": [], "failure": []},
            },
        }
    }


def run_report(tasks: list[Task], predictions: list[Prediction], verdicts: dict[str, Verdict]) -> dict:
    """SWE-bench's run report (schema 2): counts and id lists, with its meaning of each list.

    completed = graded to a verdict (resolved or unresolved); error = patch did not apply, timed
    out, or the harness failed (SWE-bench writes no report.json for those); empty patches are
    neither; incomplete = tasks without a prediction.
    """
    submitted = {p.instance_id for p in predictions}
    outcome = {iid: v.outcome for iid, v in verdicts.items()}
    ids = {
        "completed_ids": [i for i, o in outcome.items() if o in (Outcome.RESOLVED, Outcome.UNRESOLVED)],
        "incomplete_ids": [t.instance_id for t in tasks if t.instance_id not in submitted],
        "empty_patch_ids": [i for i, o in outcome.items() if o == Outcome.EMPTY_PATCH],
        "submitted_ids": list(submitted),
        "resolved_ids": [i for i, o in outcome.items() if o == Outcome.RESOLVED],
        "unresolved_ids": [i for i, o in outcome.items() if o == Outcome.UNRESOLVED],
        "error_ids": [
            i
            for i, o in outcome.items()
            if o in (Outcome.PATCH_FAILED, Outcome.TIMEOUT, Outcome.HARNESS_ERROR)
        ],
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
        "candlebench": {
            "outcomes": dict(sorted(outcome.items())),
            "reasons": {i: v.reason for i, v in sorted(verdicts.items()) if v.reason},
        },
    }
    return report


def eval_results(verdicts: dict[str, Verdict]) -> tuple[dict[str, bool], dict[str, str]]:
    """SWE-Bench-Pro's eval_results.json ({id: resolved}) and infra_errors.json (never scored)."""
    results = {i: v.resolved for i, v in sorted(verdicts.items()) if v.outcome != Outcome.HARNESS_ERROR}
    errors = {i: v.reason for i, v in sorted(verdicts.items()) if v.outcome == Outcome.HARNESS_ERROR}
    return results, errors


def _model_folder(model: str) -> str:
    return model.replace("/", "__")


def write_reports(
    out: Path, run_id: str, tasks: list[Task], predictions: list[Prediction], verdicts: dict[str, Verdict]
) -> dict[str, Path]:
    """Both harnesses' outputs under `out`; returns the main files written."""
    out.mkdir(parents=True, exist_ok=True)
    by_id = {t.instance_id: t for t in tasks}
    for prediction in predictions:
        verdict = verdicts.get(prediction.instance_id)
        if verdict is None:
            continue
        folder = (
            out
            / "logs"
            / "run_evaluation"
            / run_id
            / _model_folder(prediction.model_name_or_path)
            / prediction.instance_id
        )
        folder.mkdir(parents=True, exist_ok=True)
        artifacts = Path(verdict.artifact_dir)
        for source, target in (
            (PATCH_FILE, "patch.diff"),
            (SCRIPT_FILE, "eval.sh"),
            (OUTPUT_FILE, "test_output.txt"),
            (VERDICT_FILE, "verdict.json"),
        ):
            if (artifacts / source).exists():
                shutil.copyfile(artifacts / source, folder / target)
        if verdict.outcome in (Outcome.RESOLVED, Outcome.UNRESOLVED):
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
