"""Detection's outputs held to golden snapshots recorded from the code before the detection
rewrite of issue 16 (commit f334f05): every table of `detection_tables` on five synthetic lakes,
equal to the recorded Parquet exactly (floats to 1e-12).

Record again (only when a change of the numbers is intended and explained in the commit):

    python tests/test_detection_snapshot.py --record
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

if __name__ == "__main__":  # run as a script from anywhere: the repo on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.stats.design import DESIGN, MonitorDesign
from pipeline.stats.tables import detection_tables

SNAPSHOTS = Path(__file__).parent / "snapshots" / "detection"
# The design the snapshots were recorded with (its decision interval before issue 17's onboarding
# trials raised it to 3.55): the code is held to them, whatever the design is later calibrated to.
RECORDED = replace(DESIGN, h=3.4)
TABLES = ("changepoints", "alarms", "monitor", "verdicts", "harness_suspects")
START = np.datetime64("2025-01-01")


def _rows(rng, subject, days, tasks, drop_at=None, drop=0.0, trials=3, skip=(), shift=None):
    """Counts rows of one subject: Beta task rates, an optional level change from `drop_at`,
    `shift` (day -> change) for single days, days in `skip` missing."""
    rate = np.clip(rng.beta(2.0, 2.5, len(tasks)), 0.03, 0.97)
    rows = []
    for d in range(days):
        if d in skip:
            continue
        level = (-drop if drop_at is not None and d >= drop_at else 0.0) + (shift or {}).get(d, 0.0)
        p = np.clip(rate + level + rng.normal(0, 0.01), 0, 1)
        wins = rng.binomial(trials, p)
        day = str(START + d)
        rows += [(subject, day, t, int(w), trials) for t, w in zip(tasks, wins, strict=True)]
    return rows


def _frame(rows) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema=["subject", "date", "task", "successes", "trials"], orient="row"
    ).with_columns(pl.col("successes", "trials").cast(pl.Int64))


def scenarios() -> dict[str, dict]:
    """name -> detection_tables keyword arguments; fixed seeds, small enough to run in seconds."""
    tasks = [f"repo__task-{j:02d}" for j in range(24)]
    found = {}
    rng = np.random.default_rng(1601)
    found["stable"] = {"counts": _frame(sum((_rows(rng, f"agent-{i}", 150, tasks) for i in range(3)), []))}
    rng = np.random.default_rng(1602)
    found["drop"] = {
        "counts": _frame(
            _rows(rng, "agent-a", 160, tasks, drop_at=100, drop=0.25)
            + _rows(rng, "agent-b", 160, tasks)
            + _rows(rng, "agent-c", 160, tasks, drop_at=130, drop=-0.2)
        )
    }
    rng = np.random.default_rng(1603)
    found["release"] = {
        "counts": _frame(
            _rows(rng, "cli-x", 140, tasks, drop_at=90, drop=-0.3) + _rows(rng, "cli-y", 140, tasks)
        ),
        "releases": {"cli-x": [(str(START + 90), "1.0.0", "1.1.0")]},
        "design": MonitorDesign(),
    }
    rng = np.random.default_rng(1604)
    harness = {70: -0.35, 71: -0.35}
    counts = _frame(sum((_rows(rng, f"lane-{i}", 130, tasks, shift=harness) for i in range(4)), []))
    controls = pl.DataFrame(
        {
            "date": [str(START + d) for d in range(130) for _ in tasks],
            "task": [t for _ in range(130) for t in tasks],
            "ok": [not (d == 100 and j < 8) for d in range(130) for j in range(len(tasks))],
        }
    )
    found["harness_suspect"] = {
        "counts": counts,
        "controls": controls,
        "groups": {"lane-0": "m/one", "lane-1": "m/one", "lane-2": "m/two", "lane-3": "m/three"},
    }
    rng = np.random.default_rng(1605)
    rows = []
    for i in range(7):
        mine = tasks if i % 2 else tasks[: 16 + i]
        skip = set(rng.choice(200, size=12 + 3 * i, replace=False).tolist())
        length = 200 - 20 * (i % 3)
        drop_at = 120 + 10 * i if i in (1, 4, 6) else None
        rows += _rows(rng, f"s{i:02d}", length, mine, drop_at=drop_at, drop=0.2, skip=skip, trials=2 + i % 2)
    counts = _frame(rows)
    first_alarms = detection_tables(counts, design=RECORDED)["alarms"]
    decisions = {}
    for k, (subject, day) in enumerate(first_alarms.select("subject", "date").iter_rows()):
        decisions.setdefault(subject, {})[day] = (1, -1, 2)[k % 3]
    found["many_subjects_missing_days"] = {"counts": counts, "decisions": decisions}
    for kwargs in found.values():
        kwargs.setdefault("design", RECORDED)
    return found


def _compare(got: pl.DataFrame, want: pl.DataFrame, where: str) -> None:
    assert got.columns == want.columns, f"{where}: columns {got.columns} != {want.columns}"
    assert got.height == want.height, f"{where}: {got.height} rows, the snapshot has {want.height}"
    for column in got.columns:
        a, b = got[column], want[column]
        if a.dtype == pl.Float64:
            x, y = a.to_numpy(), b.to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), f"{where}.{column}: missing values differ"
            np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-12, err_msg=f"{where}.{column}")
        else:
            assert a.to_list() == b.to_list(), f"{where}.{column} differs"


def record() -> None:
    SNAPSHOTS.mkdir(parents=True, exist_ok=True)
    for name, kwargs in scenarios().items():
        for table, frame in detection_tables(**kwargs).items():
            frame.write_parquet(SNAPSHOTS / f"{name}.{table}.parquet")
            print(f"{name}.{table}: {frame.height} rows")


@pytest.fixture(scope="module")
def lakes() -> dict[str, dict]:
    return scenarios()


@pytest.mark.parametrize(
    "name", ["stable", "drop", "release", "harness_suspect", "many_subjects_missing_days"]
)
def test_detection_matches_snapshot(lakes, name):
    tables = detection_tables(**lakes[name])
    assert set(TABLES) <= set(tables)
    for table in TABLES:
        want = pl.read_parquet(SNAPSHOTS / f"{name}.{table}.parquet")
        _compare(tables[table], want, f"{name}.{table}")


def test_snapshots_cover_what_they_claim(lakes):
    """The scenarios exercise what they are named for: alarms on a drop, a suspect day when all
    lanes move, a control-failure day, missing days, restarts under known decisions."""
    read = {(n, t): pl.read_parquet(SNAPSHOTS / f"{n}.{t}.parquet") for n in lakes for t in TABLES}
    assert read["drop", "alarms"].filter(pl.col("subject") == "agent-a").height
    suspect_days = read["harness_suspect", "harness_suspects"]["date"].to_list()
    assert str(START + 70) in suspect_days and str(START + 100) in suspect_days
    monitor = read["many_subjects_missing_days", "monitor"]
    assert monitor.group_by("subject").len()["len"].n_unique() > 1  # histories of different lengths
    assert read["release", "changepoints"].height


if __name__ == "__main__":
    if sys.argv[1:] == ["--record"]:
        record()
    else:
        sys.exit("usage: python tests/test_detection_snapshot.py --record")
