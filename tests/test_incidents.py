"""The incident replay (benchmarks/incidents.py) through the product's daily loop: each incident is
found by a confirmed alert and attributed by the pipeline's own rule to the lane it came from, and
nothing else is alerted."""

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
    rows = {r["incident"]: r for r in incidents.attribute_incidents(result)}
    seed, drop = rows["codex release 0.18 (+11)"], rows["silent gpt drop (-13)"]
    assert seed["delay_days"] <= 2 and seed["attributed"].startswith("agent harness: only the codex latest")
    assert "CLI release codex 0.17 -> codex 0.18" in seed["attributed"]
    assert drop["delay_days"] <= 3 and drop["attributed_later"].startswith("model: both lanes of gpt")
    effort = rows["default-effort change (5 weeks)"]
    assert effort["delay_days"] <= 7
    assert effort["attributed"].startswith("agent harness: only the claude-code latest lane moved down")
    assert "CLI release claude-code 2.1 -> claude-code 2.2" in effort["attributed"]
    cache = rows["cache bug (2 weeks)"]
    assert cache["delay_days"] <= 7 and cache["attributed_later"].startswith("model: both lanes of opus")
    prompt = rows["prompt change (4 days)"]
    assert prompt["delay_days"] <= 4 and prompt["attributed"].startswith("evaluation harness")
    for row in rows.values():  # the alert, hindsight and the changepoints table all name a lane
        for key in ("attributed", "attributed_later"):
            assert row[key].split(":")[0] in incidents.LABELS, row
    assert incidents.stray(result) == []  # no confirmed alert outside the incidents
    from pipeline.stats.design import DEFAULT_DESIGN as D

    ordinary = 3 + D.onboarding_trials * D.onboarding_days / 200  # 200 days, the first 30 onboarding
    assert result["trials_per_day"] < ordinary * 1.3  # warning and fresh trials: a modest share
