"""What a window of history needs: its days, its subjects, and the `date x subject` partitions to
run; the rest are kept. Checked against the tracking config before any work starts."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from pipeline import clock
from pipeline.config import TrackingConfig, home
from pipeline.store.warehouse import Warehouse


class HistoryError(ValueError):
    """A window or subject the config cannot build; raised before any work starts."""


@dataclass(frozen=True)
class Plan:
    """What a window needs: its days, its subjects, and the partitions to run (the rest are kept)."""

    start: dt.date
    end: dt.date
    subjects: list[str]
    partitions: list[dg.MultiPartitionKey]
    kept: int
    regrade_only: bool

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def window_tags(self) -> dict[str, str]:
        return {
            ASSET_PARTITION_RANGE_START_TAG: self.start.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: self.end.isoformat(),
        }


def plan_history(
    instance: dg.DagsterInstance,
    config: TrackingConfig,
    end: dt.date,
    days: int,
    subjects: list[str] | None = None,
    regrade_only: bool = False,
    redo: bool = False,
) -> Plan:
    """Check the window and subjects against the config, then list the partitions to run: those
    not graded yet, and those whose evaluations do not grade exactly their stored attempts (the
    ledger makes running them again free: recorded attempts are not paid twice)."""
    start = end - dt.timedelta(days=days - 1)
    if days < 1:
        raise HistoryError(f"the window is empty: it ends on {end}, before it starts")
    if start < config.start_date:
        raise HistoryError(
            f"{start} is before start_date {config.start_date} in {config.path}: "
            "set start_date earlier to track older days"
        )
    today = clock.today(config.timezone)
    if end > today:
        raise HistoryError(f"{end} is in the future (today is {today} in {config.timezone})")
    configured = [s.name for s in config.subjects]
    unknown = [s for s in subjects or [] if s not in configured]
    if unknown:
        raise HistoryError(
            f"subject {unknown[0]!r} is not in {config.path} (configured: {', '.join(configured)})"
        )
    subjects = list(dict.fromkeys(subjects or configured))
    done = set() if redo else instance.get_materialized_partitions(dg.AssetKey("patch_evaluations"))
    attempted = instance.get_materialized_partitions(dg.AssetKey("agent_attempts"))
    lake = Warehouse(home()).lake
    partitions, kept = [], 0
    for offset in range(days):
        day = (start + dt.timedelta(days=offset)).isoformat()
        for name in subjects:
            key = dg.MultiPartitionKey({"date": day, "subject": name})
            if regrade_only:
                if str(key) in attempted:
                    partitions.append(key)
            elif str(key) in done and lake.graded_consistently(subject=name, date=day):
                kept += 1  # a stale one (evaluations of attempts no longer stored) runs again
            else:
                partitions.append(key)
    return Plan(start, end, subjects, partitions, kept, regrade_only)
