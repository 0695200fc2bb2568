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
