"""The bad-input table of the fault-injection suite (benchmarks/faults.py): every file and flag a
user hands over (tracking.yaml fields, scenario.yaml, rows and predictions files, detect CSVs,
dates, subjects, flags). Each case must exit != 0 with a last stderr line naming the input, no
traceback, and no stored row lost."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from fault_homes import (
    Result,
    Setup,
    candlebench,
    clean_up,
    dump,
    fresh_copy,
    has_traceback,
    rows_lost_or_wrong,
)

from pipeline.tasks.model import PRO_FIELDS

ATTEMPT = ("attempt", "--subject", "sim-codex", "--task", "demo__calcexpr-001", "--out", "try")
# The bad inputs of the quick subset (names start so).
QUICK = (
    "tracking.yaml: subject name sim[1]",
    "tracking.yaml: trials 0",
    "scenario.yaml: failure weights",
    "backfill --from not a date",
    "backfill --subject unknown",
    "query bad SQL",
    "detect CSV: resolved maybe",
    "detect CSV: date month 13",
    "predictions: not JSON",
    "predictions: unknown instance",
    "tracking.yaml: not YAML",
)


def grade_args(tasks: str) -> tuple[str, ...]:
    """`candlebench grade` of preds.jsonl against `tasks` in the process sandbox."""
    return (
        "grade",
        "--tasks",
        tasks,
        "--predictions",
        "preds.jsonl",
        "--sandbox",
        "process",
        "--allow-untrusted-patches-without-sandbox",
        "--out",
        "graded",
    )


@dataclass(frozen=True)
class BadInput:
    """A user hands over `file` with `content` (or a flag), runs `args`; the error must name `needle`."""

    name: str
    args: tuple[str, ...]
    needle: str
    file: str | None = None  # relative to the home
    content: str | None = None
    edit: tuple[str, str] | None = None  # replace old with new in `file`
    also: tuple[tuple[str, str], ...] = ()  # further files (name, content) handed over with it


def tracking_edits(day: str) -> list[tuple[str, tuple[str, str], str]]:
    """(what, (old, new) in tracking.yaml, the word the error must name)."""
    after = (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()
    out = [
        ("sample.size 0", ("size: 4", "size: 0"), "size"),
        ("sample.size -3", ("size: 4", "size: -3"), "size"),
        ("sample.size text", ("size: 4", "size: many"), "size"),
        ("sample.seed text", ("seed: 20260101", "seed: abc"), "seed"),
        ("sample.design unknown", ("design: panel", "design: random"), "design"),
        ("sample unknown field", ("design: panel", "design: panel\n  colour: red"), "colour"),
        ("trials 0", ("trials: 2", "trials: 0"), "trials"),
        ("trials -1", ("trials: 2", "trials: -1"), "trials"),
        ("trials 1.5", ("trials: 2", "trials: 1.5"), "trials"),
        ("trials list", ("trials: 2", "trials: [2]"), "trials"),
        ("sandbox unknown", ("sandbox: process", "sandbox: chroot"), "sandbox"),
        ("grading_workers 0", ("sandbox_workers: 2", "grading_workers: 0"), "grading_workers"),
        ("grading_workers text", ("sandbox_workers: 2", "grading_workers: two"), "grading_workers"),
        ("grading_timeout_s 0", ("grading_timeout_s: 120", "grading_timeout_s: 0"), "grading_timeout_s"),
        ("grading_timeout_s -5", ("grading_timeout_s: 120", "grading_timeout_s: -5"), "grading_timeout_s"),
        ("history_days 0", ("history_days: 95", "history_days: 0"), "history_days"),
        ("history_days text", ("history_days: 95", "history_days: lots"), "history_days"),
        ("start_date month 13", ("start_date: ", "start_date: 2026-13-01 #"), "start_date"),
        ("start_date text", ("start_date: ", "start_date: yesterday #"), "start_date"),
        ("start_date after the window", ("start_date: ", f"start_date: {after} #"), "start_date"),
        ("schedule.cron bad", ('cron: "0 6 * * *"', 'cron: "every day"'), "cron"),
        ("schedule.cron 6 fields", ('cron: "0 6 * * *"', 'cron: "0 0 6 * * *"'), "cron"),
        ("schedule.timezone unknown", ("timezone: UTC", "timezone: Mars/Olympus"), "timezone"),
        ("schedule unknown field", ("timezone: UTC", "timezone: UTC\n  jitter: 5"), "jitter"),
        ("unknown top-level field", ("trials: 2", "trials: 2\ntrails: 3"), "trails"),
        ("suite missing file", ("suite: demo", "suite: /nonexistent/rows.jsonl"), "suite"),
        ("subject adapter unknown", ("adapter: simulated", "adapter: gpt-magic"), "adapter"),
        ("subject scenario missing", ("scenario: scenario.yaml", "scenario: nowhere.yaml"), "scenario"),
        ("subject unknown field", ("adapter: simulated", "adapter: simulated\n    colour: blue"), "colour"),
        ("subject trials 0", ("adapter: simulated", "adapter: simulated\n    trials: 0"), "trials"),
        (
            "subject daily_cost_cap_usd -1",
            ("adapter: simulated", "adapter: simulated\n    daily_cost_cap_usd: -1"),
            "daily_cost_cap_usd",
        ),
        ("subject name duplicate", ("name: sim-codex", "name: sim-claude-code"), "unique"),
        ("subject name missing", ("- name: sim-codex", "- label: x"), "name"),
        ("prices not a mapping", ("trials: 2", "trials: 2\nprices: 5"), "prices"),
        ("prices negative", ("trials: 2", "trials: 2\nprices: {m: {input: -1, output: 1}}"), "prices"),
        ("alerts bad url", ("trials: 2", "trials: 2\nalerts: [{url: 'ftp://x', format: slack}]"), "url"),
        ("confirm_trials -1", ("trials: 2", "trials: 2\nconfirm_trials: -1"), "confirm_trials"),
        (
            "allow_untrusted... not a bool",
            ("trials: 2", "trials: 2\nallow_untrusted_patches_without_sandbox: maybe"),
            "allow_untrusted_patches_without_sandbox",
        ),
    ]
    for bad_name, shown in (
        ("sim[1]", "name"),
        ("sim*", "name"),
        ("sim?", "name"),
        ("a" * 300, "name"),
        ("'sim\\ncodex'", "name"),
        ("../escape", "name"),
        ("sim codex", "name"),
        ("''", "name"),
        ("-leading-dash", "name"),
        ("sim/codex", "name"),
    ):
        out.append((f"subject name {bad_name[:20]!s}", ("name: sim-codex", f"name: {bad_name}"), shown))
    return out


SCENARIO_EDITS = [
    ("pass_rate 1.5", ("pass_rate: 0.40}", "pass_rate: 1.5}"), "pass_rate"),
    ("pass_rate -0.1", ("pass_rate: 0.40}", "pass_rate: -0.1}"), "pass_rate"),
    ("pass_rate text", ("pass_rate: 0.40}", "pass_rate: high}"), "pass_rate"),
    ("phase day 0", ("{day: 1, version: opus-4.6", "{day: 0, version: opus-4.6"), "day"),
    ("phases out of order", ("{day: 51, version: opus-4.7", "{day: 1, version: opus-4.7"), "day"),
    ("phase missing version", ("version: opus-4.6, ", ""), "version"),
    ("noise -1", ("noise: 0.12", "noise: -1"), "noise"),
    ("noise text", ("noise: 0.12", "noise: loud"), "noise"),
    (
        "failure weights all zero",
        (
            "empty: 0.15\n  partial: 0.20\n  wrong_fix: 0.45\n  does_not_apply: 0.20",
            "empty: 0\n  partial: 0\n  wrong_fix: 0\n  does_not_apply: 0",
        ),
        "failure_modes",
    ),
    ("failure weight negative", ("empty: 0.15", "empty: -0.5"), "empty"),
    ("failure mode unknown", ("empty: 0.15", "exploded: 0.15"), "exploded"),
    (
        "difficulty level unknown",
        ("difficulty: {}", "difficulty: {demo__calcexpr-001: impossible}"),
        "difficulty",
    ),
    ("difficulty_levels text", ("easy: -1.4", "easy: simple"), "easy"),
    ("scenario start_date month 13", ("start_date: ", "start_date: 2026-13-40 #"), "start_date"),
    ("scenario subject without phases", ("  sim-codex:\n", "  sim-codex: []\n  unused:\n"), "sim-codex"),
    ("scenario seed text", ("seed: 7", "seed: lucky"), "seed"),
]


def bad_inputs(setup: Setup) -> list[BadInput]:
    day, first = setup.end.isoformat(), setup.start.isoformat()
    window = ("backfill", "--from", day, "--to", day)
    cases = [
        BadInput(f"tracking.yaml: {what}", window, needle, "tracking.yaml", edit=edit)
        for what, edit, needle in tracking_edits(day)
    ]
    cases += [
        BadInput(f"scenario.yaml: {what}", window, needle, "scenario.yaml", edit=edit)
        for what, edit, needle in SCENARIO_EDITS
    ]
    tracking = (setup.built / "tracking.yaml").read_text()
    cases.append(
        BadInput(
            "tracking.yaml: subjects missing",
            window,
            "subjects",
            "tracking.yaml",
            tracking[: tracking.index("\nsubjects:")] + "\n",
        )
    )
    cases += [
        BadInput(
            "tracking.yaml: not YAML", window, "tracking.yaml", "tracking.yaml", "subjects: [\n  - {name: x"
        ),
        BadInput("tracking.yaml: a list", window, "tracking.yaml", "tracking.yaml", "- 1\n- 2\n"),
        BadInput("tracking.yaml: empty", window, "tracking.yaml", "tracking.yaml", ""),
        BadInput("tracking.yaml: binary", window, "tracking.yaml", "tracking.yaml", "\x00\x01\x02\xff"),
        BadInput("scenario.yaml: not YAML", window, "scenario.yaml", "scenario.yaml", "subjects: {\n"),
        BadInput("scenario.yaml: empty", window, "scenario.yaml", "scenario.yaml", ""),
        BadInput("scenario.yaml: a string", window, "scenario.yaml", "scenario.yaml", "hello\n"),
        BadInput("CANDLEBENCH_CONFIG missing file", window, "tracking", None),
        # command-line dates, windows and subjects
        BadInput("backfill --from not a date", ("backfill", "--from", "yesterday", "--to", day), "--from"),
        BadInput("backfill --from month 13", ("backfill", "--from", "2026-13-01", "--to", day), "--from"),
        BadInput("backfill --to day 32", ("backfill", "--from", day, "--to", "2026-12-32"), "--to"),
        BadInput(
            "backfill --to before --from",
            ("backfill", "--from", day, "--to", first if first < day else "2000-01-01"),
            "before",
        ),
        BadInput(
            "backfill before start_date",
            ("backfill", "--from", "2001-01-01", "--to", "2001-01-02"),
            "start_date",
        ),
        BadInput(
            "backfill in the future", ("backfill", "--from", "2999-01-01", "--to", "2999-01-02"), "future"
        ),
        BadInput("backfill --subject unknown", (*window, "--subject", "nobody"), "nobody"),
        BadInput("backfill --subject glob", (*window, "--subject", "sim-*"), "sim-*"),
        BadInput("backfill --subject empty", (*window, "--subject", ""), "subject"),
        BadInput("backfill missing --to", ("backfill", "--from", day), "--to"),
        BadInput("backfill unknown flag", (*window, "--fast"), "--fast"),
        BadInput("demo --end not a date", ("demo", "--no-ui", "--end", "soon"), "--end"),
        BadInput("subjects retire configured", ("subjects", "retire", "sim-codex"), "sim-codex"),
        BadInput("subjects retire unknown", ("subjects", "retire", "nobody"), "nobody"),
        BadInput("subjects retire nothing", ("subjects", "retire"), "subject"),
        BadInput("subjects unknown action", ("subjects", "rename"), "rename"),
        # queries
        BadInput("query bad SQL", ("query", "SELEC * FROM candles"), "SELEC"),
        BadInput("query unknown table", ("query", "SELECT * FROM candels"), "candels"),
        BadInput("query unknown column", ("query", "SELECT colour FROM candles"), "colour"),
        BadInput("query a write", ("query", "DROP TABLE candles"), "DROP"),
        BadInput("query --limit text", ("query", "SELECT 1", "--limit", "ten"), "--limit"),
        BadInput("query --format unknown", ("query", "SELECT 1", "--format", "xml"), "--format"),
        # attempts
        BadInput(
            "attempt unknown subject",
            ("attempt", "--subject", "nobody", "--task", "demo__calcexpr-001", "--out", "try"),
            "nobody",
        ),
        BadInput(
            "attempt unknown task",
            ("attempt", "--subject", "sim-codex", "--task", "no-such-task", "--out", "try"),
            "no-such-task",
        ),
        BadInput("attempt --date bad", (*ATTEMPT, "--date", "2026-02-30"), "--date"),
        BadInput("attempt --trial text", (*ATTEMPT, "--trial", "x"), "--trial"),
        BadInput("attempt --config missing", (*ATTEMPT, "--config", "nowhere.yaml"), "nowhere.yaml"),
        BadInput("check --config missing", ("check", "--config", "nowhere.yaml"), "nowhere.yaml"),
    ]
    # detect CSVs
    good = "subject,date,task,trial,resolved\n" + "".join(
        f"s,2026-11-{d:02d},t{t},{k},{(d + t + k) % 2}\n"
        for d in range(1, 29)
        for t in range(5)
        for k in range(2)
    )
    detect = [
        ("resolved maybe", good.replace(",1\n", ",maybe\n", 1), "resolved"),
        ("resolved 2", good.replace(",1\n", ",2\n", 1), "resolved"),
        ("resolved empty", good.replace(",1\n", ",\n", 1), "resolved"),
        ("date month 13", good.replace("2026-11-05", "2026-13-05", 1), "date"),
        ("date text", good.replace("2026-11-05", "fifth", 1), "date"),
        ("trial negative", good.replace("s,2026-11-01,t0,0", "s,2026-11-01,t0,-1", 1), "trial"),
        ("trial text", good.replace("s,2026-11-01,t0,0", "s,2026-11-01,t0,first", 1), "trial"),
        ("duplicate trial", good + good.splitlines()[1] + "\n", "trial"),
        (
            "missing column",
            good.replace("subject,date,task,trial,resolved", "subject,date,task,trial,ok"),
            "resolved",
        ),
        ("empty file", "", "counts.csv"),
        ("header only", "subject,date,task,trial,resolved\n", "counts.csv"),
        ("ragged row", good + "s,2026-11-29,t1\n", "counts.csv"),
        ("empty subject", good.replace("s,2026-11-03,t0,0", ",2026-11-03,t0,0", 1), "subject"),
    ]
    cases += [
        BadInput(f"detect CSV: {what}", ("detect", "counts.csv"), needle, "counts.csv", text)
        for what, text, needle in detect
    ]
    cases += [
        BadInput("detect missing file", ("detect", "nowhere.csv"), "nowhere.csv"),
        BadInput(
            "detect a binary file", ("detect", "counts.csv"), "counts.csv", "counts.csv", "\x00\xff\xfe" * 50
        ),
        BadInput(
            "detect --recent 0", ("detect", "counts.csv", "--recent", "0"), "--recent", "counts.csv", good
        ),
        BadInput(
            "detect --baseline -1",
            ("detect", "counts.csv", "--baseline", "-1"),
            "--baseline",
            "counts.csv",
            good,
        ),
        BadInput("detect --recent text", ("detect", "counts.csv", "--recent", "week"), "--recent"),
        BadInput(
            "detect controls ok maybe",
            ("detect", "counts.csv", "--controls", "controls.csv"),
            "ok",
            "controls.csv",
            "date,task,ok\n2026-11-01,t0,maybe\n",
            also=(("counts.csv", good),),
        ),
        BadInput(
            "detect controls missing file",
            ("detect", "counts.csv", "--controls", "nowhere.csv"),
            "nowhere.csv",
            "counts.csv",
            good,
        ),
        BadInput(
            "detect controls missing column",
            ("detect", "counts.csv", "--controls", "controls.csv"),
            "ok",
            "controls.csv",
            "date,task\n2026-11-01,t0\n",
            also=(("counts.csv", good),),
        ),
    ]
    # predictions and rows files for `candlebench grade`
    one_prediction = '{"instance_id": "x", "model_patch": "", "model_name_or_path": "m"}\n'
    demo_prediction = '{"instance_id": "demo__calcexpr-001", "model_patch": "", "model_name_or_path": "m"}\n'
    grade = grade_args("demo")
    preds = [
        ("not JSON", "{not json\n", "preds.jsonl"),
        ("missing instance_id", '{"model_patch": "", "model_name_or_path": "m"}\n', "instance_id"),
        (
            "unknown instance",
            '{"instance_id": "nope", "model_patch": "", "model_name_or_path": "m"}\n',
            "nope",
        ),
        (
            "patch not a string",
            '{"instance_id": "demo__calcexpr-001", "model_patch": 5, "model_name_or_path": "m"}\n',
            "model_patch",
        ),
        ("empty file", "", "preds.jsonl"),
        ("a number", "5\n", "preds.jsonl"),
        (
            "duplicate instance",
            '{"instance_id": "demo__calcexpr-001", "model_patch": "", "model_name_or_path": "m"}\n' * 2,
            "demo__calcexpr-001",
        ),
    ]
    cases += [
        BadInput(f"predictions: {what}", grade, needle, "preds.jsonl", text) for what, text, needle in preds
    ]
    cases += [
        BadInput("grade predictions missing", grade, "preds.jsonl"),
        BadInput("grade --tasks missing rows file", grade_args("rows.jsonl"), "rows.jsonl"),
        BadInput(
            "grade --workers 0", (*grade, "--workers", "0"), "--workers", "preds.jsonl", demo_prediction
        ),
        BadInput(
            "grade --timeout -1", (*grade, "--timeout", "-1"), "--timeout", "preds.jsonl", demo_prediction
        ),
    ]
    rows_grade = grade_args("rows.jsonl")
    rows = [
        ("not JSON", "{oops\n", "rows.jsonl"),
        ("missing columns", '{"instance_id": "x", "repo": "r"}\n', "rows.jsonl"),
        ("list column not a list", json.dumps({c: "x" for c in PRO_FIELDS}) + "\n", "fail_to_pass"),
        ("empty file", "", "rows.jsonl"),
    ]
    cases += [
        BadInput(
            f"rows file: {what}",
            rows_grade,
            needle,
            "rows.jsonl",
            text,
            also=(("preds.jsonl", one_prediction),),
        )
        for what, text, needle in rows
    ]
    cases += [
        BadInput(f"tracking.yaml suite rows file: {what}", window, needle, "rows.jsonl", text)
        for what, text, needle in rows[:2]
    ]
    return cases


def bad_input(setup: Setup, case: BadInput) -> Result:
    result = Result(case.name, "bad input")
    home = fresh_copy(setup.built, setup.scratch, "bad")
    extra: dict[str, str] = {}
    try:
        if case.file:
            target = home / case.file
            if case.edit:
                old, new = case.edit
                text = target.read_text()
                if old not in text:
                    result.outcome, result.note = "not reached", f"{old!r} not in {case.file}"
                    return result
                target.write_text(text.replace(old, new, 1))
            else:
                target.write_text(case.content or "", errors="surrogateescape")
            if case.name.startswith("tracking.yaml suite rows file"):
                config = home / "tracking.yaml"
                config.write_text(config.read_text().replace("suite: demo", f"suite: {target}", 1))
        for name, text in case.also:
            (home / name).write_text(text)
        if case.name == "CANDLEBENCH_CONFIG missing file":
            extra["CANDLEBENCH_CONFIG"] = str(home / "missing-tracking.yaml")
        status, _, err = candlebench(home, list(case.args), timeout=300, **extra)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        if status is None:
            result.outcome, result.note = "hang", "not finished"
        elif has_traceback(err):
            result.outcome, result.note = "unclear", "traceback: " + (lines[-1] if lines else "")[:200]
        elif status == 0:
            result.outcome, result.note = "unclear", "accepted: exit 0"
        elif not lines or case.needle.lower() not in lines[-1].lower():
            result.outcome = "unclear"
            result.note = (
                f"exit {status}, error does not name {case.needle!r}: " + (lines[-1] if lines else "")[:200]
            )
        else:
            result.note = lines[-1][:160]
        bad, where = rows_lost_or_wrong(setup.reference, dump(home))
        if bad:
            result.outcome, result.lost, result.note = "lost", bad, where
        return result
    finally:
        clean_up(home)
