"""Partitions: `date` for sampling, controls and candles; `date x subject` for attempts and grading."""

import dagster as dg

HISTORY_START = "2025-01-01"

date = dg.DailyPartitionsDefinition(start_date=HISTORY_START, end_offset=1)  # today included
subject = dg.DynamicPartitionsDefinition(name="subject")
date_by_subject = dg.MultiPartitionsDefinition({"date": date, "subject": subject})


def keys_of(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """(date, subject) of a `date x subject` partition."""
    key = context.partition_key.keys_by_dimension
    return key["date"], key["subject"]


def date_key(day: str, name: str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": day, "subject": name})
