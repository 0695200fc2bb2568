"""The one clock: what "now" and "today" are for the tracker.

Everything that asks what day it is reads it here, so a day is the same day for the schedule,
the assets and the sensors, in the schedule's time zone rather than the machine's. It reads
`time.time()`, as Dagster's clock does, so the two agree (the daemon tests shift both:
tests/clock/sitecustomize.py).
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo


def now(timezone: str = "UTC") -> dt.datetime:
    """The current time, aware, in `timezone`."""
    return dt.datetime.fromtimestamp(time.time(), zoneinfo.ZoneInfo(timezone))


def today(timezone: str = "UTC") -> dt.date:
    """Today's date in `timezone` (the tracking schedule's time zone)."""
    return now(timezone).date()
