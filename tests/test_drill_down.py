"""The report's drill-down from a changepoint to the flipped tasks' artifacts shows tampering."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipeline.report.tables import drill_down


def test_a_tampered_verdict_is_named_in_the_drill_down(tmp_path):
    outcomes = pl.DataFrame(
        {
            "subject": ["s", "s"],
            "date": [dt.date(2026, 11, 2), dt.date(2026, 11, 2)],
            "instance_id": ["a", "b"],
            "outcome": ["unresolved", "resolved"],
            "artifact_dir": [str(tmp_path / "a"), str(tmp_path / "b")],
            "tampered": [True, False],
        }
    )
    change = {"subject": "s", "date": "2026-11-01", "flipped_down": ["a"], "flipped_up": ["b"]}
    html = drill_down(change, None, outcomes, tmp_path)
    assert html.count("tampered with the test runner") == 1
    assert "a (passing → failing) — latest: unresolved (the patch tampered" in html
    older = outcomes.drop("tampered")  # partitions written before the column existed
    assert "tampered" not in drill_down(change, None, older, tmp_path)
