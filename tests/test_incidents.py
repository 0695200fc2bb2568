"""The incident replay (benchmarks/incidents.py) through the product's daily loop: each incident is
found by a confirmed alert and blamed on the lane it came from, and nothing else is alerted."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_the_replay_finds_each_incident_and_attributes_it_to_its_lane():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import incidents
    finally:
        sys.path.remove(str(BENCHMARKS))
    result = incidents.replay(20261202)
    rows = {r["incident"]: r for r in incidents.attribute(result)}
    seed, drop = rows["codex release 0.18 (+11)"], rows["silent gpt drop (-13)"]
    assert seed["delay_days"] <= 2 and "cli release codex 0.17 -> codex 0.18" in seed["attributed"]
    assert drop["delay_days"] <= 3 and drop["attributed"].startswith("model gpt")
    effort = rows["default-effort change (5 weeks)"]
    assert effort["delay_days"] <= 7
    assert effort["attributed"] == (
        "cli release claude-code 2.1 -> claude-code 2.2 (claude-code/opus, claude-code/sonnet)"
    )
    assert rows["cache bug (2 weeks)"]["delay_days"] <= 7  # found: on the CLI the effort change spared
    prompt = rows["prompt change (4 days)"]
    assert prompt["delay_days"] <= 4
    assert "harness" in prompt["attributed"]  # flagged days, or every lane at once
    assert incidents.stray(result) == []  # no confirmed alert outside the incidents
    assert result["trials_per_day"] < 3 * 1.3  # warning and fresh trials: a modest share
