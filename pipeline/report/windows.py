"""What each chart of the report covers: the daily charts a recent window, the weekly chart
all history in closed weeks (so a new day redraws the daily charts only)."""

from __future__ import annotations

import datetime as dt

import polars as pl

# The daily charts (and the overview) show the last DAILY_DAYS days: past about 200 days single
# candles blur into texture, and a chart of all history would be redrawn, whole, every day. The
# weekly chart shows all of it, closed weeks only, so it is redrawn once a week.
DAILY_DAYS = 180


def window_start(candles: pl.DataFrame) -> str:
    """The first day the daily charts show: DAILY_DAYS back from the newest candle."""
    if not candles.height:
        return ""
    newest = candles["date"].cast(pl.Date).max()
    return str(newest - dt.timedelta(days=DAILY_DAYS - 1))


def since(frame: pl.DataFrame, start: str, column: str = "date") -> pl.DataFrame:
    """Rows of `frame` on or after ISO day `start` (dates held as dates or as strings)."""
    if not frame.height or column not in frame.columns:
        return frame
    return frame.filter(pl.col(column).cast(pl.String) >= start)


def closed_weeks(weekly: pl.DataFrame, candles: pl.DataFrame) -> pl.DataFrame:
    """Weekly candles of weeks that ended by the newest day (the current one is in the daily chart)."""
    if not weekly.height or not candles.height:
        return weekly
    newest = candles["date"].cast(pl.Date).max()
    return weekly.filter(pl.col("week").cast(pl.Date) + dt.timedelta(days=6) <= newest)
