"""The attribution's evidence, read from the detector's tables: moves, harness-suspect days,
releases and which days each subject was observed; and the attribution of every changepoint and
of a confirmed shift (`pipeline.stats.attribution` holds the rule)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import polars as pl

from pipeline.stats.attribution import (
    SIGNIFICANT,
    Attribution,
    Evidence,
    Lane,
    Move,
    Release,
    Suspect,
    attribute,
)
from pipeline.stats.harness import CONTROL_THRESHOLD

DIRECTION = {"up": 1, "down": -1}
EVIDENCE_SQL = {  # what the changepoints asset leaves in the warehouse
    "changepoints": "SELECT subject, date::VARCHAR AS date, difference, p_value FROM changepoints",
    "alarms": "SELECT subject, date::VARCHAR AS date, direction FROM alarms",
    "harness_suspects": "SELECT * FROM harness_suspects",
    "monitor": "SELECT subject, date::VARCHAR AS date, z FROM monitor",
    "releases": "SELECT * FROM releases",
}
DECISIONS_SQL = "SELECT * EXCLUDE (date), date::VARCHAR AS date FROM decisions"


EPOCH = dt.date(1970, 1, 1).toordinal()


class DailyScores(Mapping):
    """One subject's z-score by day (YYYY-MM-DD -> z), kept as an array: a long history of many
    subjects stays a few floats per day, not a Python object each."""

    def __init__(self, days: np.ndarray, z: np.ndarray) -> None:
        self.start = int(days.min())
        self.values = np.full(int(days.max()) - self.start + 1, np.nan)
        self.values[days - self.start] = np.asarray(z, dtype=float)

    @property
    def span(self) -> tuple[str, str]:
        return dt.date.fromordinal(self.start).isoformat(), dt.date.fromordinal(
            self.start + len(self.values) - 1
        ).isoformat()

    def __getitem__(self, day: str) -> float:
        i = dt.date.fromisoformat(day).toordinal() - self.start
        if not 0 <= i < len(self.values) or not np.isfinite(self.values[i]):
            raise KeyError(day)
        return float(self.values[i])

    def __iter__(self):
        return (
            dt.date.fromordinal(self.start + int(i)).isoformat()
            for i in np.flatnonzero(np.isfinite(self.values))
        )

    def __len__(self) -> int:
        return int(np.isfinite(self.values).sum())


def _final(decisions: pl.DataFrame | None) -> dict[tuple[str, str], tuple[str, int]]:
    """(subject, alarm day) -> (its latest decision, direction)."""
    if decisions is None or not decisions.height:
        return {}
    rows = decisions.sort("decided_at") if "decided_at" in decisions.columns else decisions
    found = {}
    for r in rows.iter_rows(named=True):
        day = str(r.get("alarm_date") or r["date"])[:10]
        found[(r["subject"], day)] = (r["decision"], DIRECTION[r["direction"]])
    return found


def evidence_of(
    tables: Mapping[str, pl.DataFrame], lanes: Mapping[str, Lane], decisions: pl.DataFrame | None = None
) -> Evidence:
    """Evidence from `changepoints`, `alarms`, `harness_suspects`, `monitor` and `releases` frames
    and the `decisions` rows so far: confirmed shifts, alarms not cleared, significant
    changepoints and the subjects that moved on a suspect day are moves; the monitor's days and
    z-scores say who was observed when, and how each lane moved day by day."""
    decided = _final(decisions)
    moves = [
        Move(r["subject"], str(r["date"])[:10], 1 if r["difference"] > 0 else -1, "changepoint")
        for r in tables["changepoints"].iter_rows(named=True)
        if r["p_value"] is not None and r["p_value"] < SIGNIFICANT and r["difference"]
    ]
    moves += [
        Move(r["subject"], str(r["date"])[:10], DIRECTION[r["direction"]], "alarm")
        for r in tables["alarms"].iter_rows(named=True)
        if decided.get((r["subject"], str(r["date"])[:10]), ("",))[0] != "cleared"
    ]
    moves += [
        Move(name, day, way, "confirmed")
        for (name, day), (what, way) in decided.items()
        if what == "confirmed"
    ]
    suspects = []
    for r in tables["harness_suspects"].iter_rows(named=True):
        share = r.get("control_failure_share")
        suspects.append(Suspect(str(r["date"])[:10], share is not None and share > CONTROL_THRESHOLD, share))
        for key, way in (("subjects_down", -1), ("subjects_up", 1)):
            moves += [Move(name, str(r["date"])[:10], way, "suspect day") for name in r.get(key) or []]
    releases = [
        Release(r["subject"], str(r["first_seen"])[:10], r["kind"], r["old"], r["new"])
        for r in tables["releases"].iter_rows(named=True)
        if r.get("kind")
    ]
    monitor = tables["monitor"].select(
        "subject", day=pl.col("date").cast(pl.String).str.slice(0, 10).str.to_date().cast(pl.Int32), z="z"
    )
    observed, scores = {}, {}
    for (name,), days in monitor.group_by(["subject"]):
        found = DailyScores(days["day"].to_numpy() + EPOCH, days["z"].to_numpy())
        observed[name] = found.span
        scores[name] = found
    return Evidence(lanes, tuple(moves), tuple(suspects), tuple(releases), observed, scores)


def attributed_changepoints(changepoints: pl.DataFrame, evidence: Evidence) -> pl.DataFrame:
    """The changepoints with `attribution` and `attribution_reason` columns."""
    found = [
        attribute(
            Move(r["subject"], str(r["date"])[:10], 1 if (r["difference"] or 0) > 0 else -1, "changepoint"),
            evidence,
        )
        for r in changepoints.iter_rows(named=True)
    ]
    return changepoints.with_columns(
        pl.Series("attribution", [a.label for a in found], dtype=pl.String),
        pl.Series("attribution_reason", [a.reason for a in found], dtype=pl.String),
    )


def shift_attribution(
    connection,
    lanes: Mapping[str, Lane],
    subject: str,
    day: str,
    direction: str,
    decisions: pl.DataFrame | None = None,
) -> Attribution:
    """The attribution of `subject`'s confirmed `direction` shift of `day`, over the warehouse the
    changepoints asset last wrote and the decisions so far."""
    tables = {name: connection.sql(sql).pl() for name, sql in EVIDENCE_SQL.items()}
    if "kind" not in tables["releases"].columns:  # a warehouse written before releases had kinds
        tables["releases"] = tables["releases"].with_columns(kind=pl.lit(None, pl.String))
    return attribute(
        Move(subject, day, DIRECTION[direction], "confirmed"), evidence_of(tables, lanes, decisions)
    )


def read_decisions(connection) -> pl.DataFrame | None:
    """The lake's decisions, or None before the first was written."""
    import duckdb

    try:
        return connection.sql(DECISIONS_SQL).pl()
    except duckdb.CatalogException:
        return None
