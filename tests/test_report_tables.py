"""The report's tables render what detection writes on every history, a young one included."""

from __future__ import annotations

import polars as pl

from pipeline.report.tables import verdict_markdown, verdict_table

# What stats writes for a subject with three days of history: no window can be tested yet.
YOUNG = {
    "subject": "sim-codex",
    "verdict": "inconclusive",
    "difference": None,
    "ci_low": None,
    "ci_high": None,
    "p_value": None,
    "q_value": None,
    "mde": None,
    "n_tasks": 0,
    "method": "too little history",
    "window_start": None,
    "window_end": None,
    "baseline_start": None,
    "baseline_end": None,
    "latest_date": "2026-12-01",
}


def test_a_young_history_renders_dashes_not_a_crash():
    verdicts = pl.DataFrame(
        [YOUNG],
        schema_overrides={
            "p_value": pl.Float64,
            "q_value": pl.Float64,
            "difference": pl.Float64,
            "mde": pl.Float64,
        },
    )
    markdown = verdict_markdown(verdicts, {"sim-codex": 0.4})
    assert "| sim-codex | 40.0% | **inconclusive** | - [-, -] | - | ±- |" in markdown
    html = verdict_table(verdicts, {"sim-codex": 0.4})
    assert "<b>inconclusive</b>" in html and "<td>-</td><td>-</td>" in html


def test_tested_windows_keep_their_figures():
    row = {
        **YOUNG,
        "verdict": "degraded",
        "difference": -0.08,
        "ci_low": -0.12,
        "ci_high": -0.04,
        "p_value": 0.00123,
        "q_value": 0.0049,
        "mde": 0.05,
    }
    markdown = verdict_markdown(pl.DataFrame([row]))
    assert "**degraded** | -8.0% [-12.0%, -4.0%] | 0.0049 | ±5.0% |" in markdown
    assert "<td>0.0012</td><td>0.0049</td>" in verdict_table(pl.DataFrame([row]), {})


CHANGE = {
    "subject": "opus-latest",
    "date": "2026-01-31",
    "before_rate": 0.55,
    "after_rate": 0.30,
    "difference": -0.25,
    "ci_low": -0.3,
    "ci_high": -0.2,
    "p_value": 1e-9,
    "n_tasks": 36,
    "flipped_down": ["t1"],
    "flipped_up": [],
    "version_change": "claude-code 2.1.300 / opus-4.6 -> claude-code 2.1.310 / opus-4.6",
    "release_kind": "cli",
    "attribution": "agent harness",
    "attribution_reason": "only the claude-code latest lane moved down; opus-frozen did not",
}


def test_changepoints_show_what_the_release_changed_and_the_attribution(tmp_path):
    from pipeline.report.html import causes
    from pipeline.report.tables import changepoint_markdown, changepoint_table

    changes = pl.DataFrame([CHANGE])
    markdown = changepoint_markdown(changes)
    assert "| CLI release: claude-code 2.1.300 / opus-4.6 -> claude-code 2.1.310 / opus-4.6 |" in markdown
    assert "| agent harness: only the claude-code latest lane moved down; opus-frozen did not |" in markdown
    outcomes = pl.DataFrame(schema={"subject": pl.String, "date": pl.String, "instance_id": pl.String})
    html = changepoint_table(changes, outcomes, tmp_path)
    assert "<th>attributed to</th>" in html and "<b>agent harness</b>" in html
    verdicts = pl.DataFrame(
        [{**YOUNG, "subject": "opus-latest", "verdict": "degraded", "baseline_start": "2026-01-10"}]
    )
    found = causes({"verdicts": verdicts, "changepoints": changes})
    assert found == {"opus-latest": "2026-01-31: agent harness: " + CHANGE["attribution_reason"]}
    assert "2026-01-31: agent harness" in verdict_table(verdicts, {}, found)
    old = pl.DataFrame(
        [{k: v for k, v in CHANGE.items() if not k.startswith(("attribution", "release_kind"))}]
    )
    assert changepoint_markdown(old).endswith(
        "opus-4.6 -> claude-code 2.1.310 / opus-4.6 | - |"
    )  # older tables
