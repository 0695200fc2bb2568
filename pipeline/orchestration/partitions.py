"""Partitions: `date` for sampling, controls and candles; `date x subject` for attempts and grading.

Date partitions start at the tracking config's `start_date` and end today (in the schedule's
time zone), so the UI shows the tracked history, not empty years before it.
"""

import dagster as dg

from pipeline.config import location_settings

SETTINGS = location_settings()  # never raises: a broken config keeps the location loaded

date = dg.DailyPartitionsDefinition(
    start_date=SETTINGS.start_date.isoformat(), end_offset=1, timezone=SETTINGS.timezone
)  # today included
subject = dg.DynamicPartitionsDefinition(name="subject")
date_by_subject = dg.MultiPartitionsDefinition({"date": date, "subject": subject})


def keys_of(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(date, subject) of a `date x subject` partition."""
    key = context.partition_key.keys_by_dimension
    return key["date"], key["subject"]


def date_key(day: str, name: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day, "subject": name})
