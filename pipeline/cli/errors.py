"""What every command shares: bad input is one line on stderr and exit status 2."""

from __future__ import annotations

import datetime as dt


class UsageError(Exception):
    """Bad input on the command line: printed as one line, exit status 2."""


def parse_day(value: str, flag: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not a date (YYYY-MM-DD)") from None
