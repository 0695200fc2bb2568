"""The one clock: what "now" and "today" are for the tracker.

Everything reads time through here (and through `time.time()`, which Dagster's own clock uses
too), so a day is the same day for the schedule, the assets and the sensors, in the schedule's
time zone rather than the machine's.
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
