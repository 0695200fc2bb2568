"""Input for detection: graded trials checked row by row, counted per subject, day and task,
and laid out as stacked day x task matrices (one stream per subject, its own days)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

TRUE_WORDS = ("true", "t", "yes", "y", "1", "1.0")
FALSE_WORDS = ("false", "f", "no", "n", "0", "0.0")
TRIAL_COLUMNS = ("subject", "date", "task", "trial", "resolved")
COUNT_COLUMNS = ("subject", "date", "task", "successes", "trials")


class CountsError(ValueError):
    """Input that cannot be counted; the message names the file, the row and the field."""

    def __init__(self, source: str, row: int | None, field: str, problem: str) -> None:
        where = source if row is None else f"{source}, row {row} (line {row + 1})"
        super().__init__(f"{where}: field '{field}' {problem}")
        self.source, self.row, self.field = source, row, field


def _first_bad(frame: pl.DataFrame, bad: pl.Expr, field: str, source: str, problem) -> None:
    """Raise for the first row where `bad` holds; `problem(value)` words the complaint."""
    hits = frame.with_row_index("_row").filter(bad).head(1)
    if hits.height:
        row = hits.row(0, named=True)
        raise CountsError(source, int(row["_row"]) + 1, field, problem(row[field]))


def _shown(value) -> str:
    return "empty" if value is None or str(value).strip() == "" else repr(value)


def _text(name: str) -> pl.Expr:
    return pl.col(name).cast(pl.String).str.strip_chars()


def _flag(frame: pl.DataFrame, field: str, source: str) -> pl.Expr:
    """A true/false column from booleans or the usual words; anything else is refused."""
    if frame.schema[field] == pl.Boolean:
        _first_bad(frame, pl.col(field).is_null(), field, source,
                   lambda v: "is empty; expected true or false")
        return pl.col(field)
    word = _text(field).str.to_lowercase()
    _first_bad(frame, ~word.is_in(TRUE_WORDS + FALSE_WORDS) | word.is_null(), field, source,
               lambda v: f"is {_shown(v)}; expected true or false (1/0, yes/no)")
    return word.is_in(TRUE_WORDS)


def _day(frame: pl.DataFrame, field: str, source: str) -> pl.Expr:
    """An ISO calendar date (YYYY-MM-DD, a time after it allowed), as canonical text."""
    if frame.schema[field] in (pl.Date, pl.Datetime):
        _first_bad(frame, pl.col(field).is_null(), field, source, lambda v: "is empty; expected YYYY-MM-DD")
        return pl.col(field).cast(pl.Date).cast(pl.String)
    text = _text(field)
    parsed = text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    shaped = text.str.contains(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")
    _first_bad(frame, parsed.is_null() | ~shaped.fill_null(False), field, source,
               lambda v: f"is {_shown(v)}; expected a calendar date YYYY-MM-DD")
    return parsed.cast(pl.String)


def _name(frame: pl.DataFrame, field: str, source: str) -> pl.Expr:
    text = _text(field)
    _first_bad(frame, text.is_null() | (text == ""), field, source, lambda v: "is empty")
    return text


def _need(frame: pl.DataFrame, columns: tuple[str, ...], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CountsError(source, None, missing[0], f"is missing; the columns are {', '.join(columns)}")


def trial_counts(frame: pl.DataFrame, source: str = "trials") -> pl.DataFrame:
    """One row per graded trial (subject, date, task, trial, resolved) -> successes and trials
    per subject, day and task.

    Refuses, naming `source`, the row and the field: a missing column, an empty name, a date
    that is not a calendar date, a trial that is not a whole number >= 0, a `resolved` that is
    not true/false (1/0, yes/no), and a trial that appears twice.
    """
    _need(frame, TRIAL_COLUMNS, source)
    resolved = _flag(frame, "resolved", source)
    trial = pl.col("trial").cast(pl.Int64, strict=False) if frame.schema["trial"] != pl.String \
        else _text("trial").cast(pl.Int64, strict=False)
    _first_bad(frame, trial.is_null() | (trial < 0), "trial", source,
               lambda v: f"is {_shown(v)}; expected a whole number >= 0")
    rows = frame.select(
        _name(frame, "subject", source).alias("subject"), _day(frame, "date", source).alias("date"),
        _name(frame, "task", source).alias("task"), trial.alias("trial"), resolved.alias("resolved"),
    )
    keys = ["subject", "date", "task", "trial"]
    twice = rows.with_row_index("_row").filter(pl.struct(keys).is_duplicated())
    if twice.height:
        first, again = twice.row(0, named=True), None
        for row in twice.iter_rows(named=True):
            if row["_row"] != first["_row"] and all(row[k] == first[k] for k in keys):
                again = row
                break
        assert again is not None
        raise CountsError(source, int(again["_row"]) + 1, "trial",
                          f"repeats row {int(first['_row']) + 1}: subject {first['subject']!r}, "
                          f"date {first['date']}, task {first['task']!r}, trial {first['trial']} twice")
    return rows.group_by(["subject", "date", "task"]).agg(
        successes=pl.col("resolved").cast(pl.Int64).sum(), trials=pl.len().cast(pl.Int64))


def control_rows(frame: pl.DataFrame, source: str = "controls") -> pl.DataFrame:
    """Harness controls (date, task, ok), checked like trials."""
    _need(frame, ("date", "task", "ok"), source)
    return frame.select(_day(frame, "date", source).alias("date"), _name(frame, "task", source).alias("task"),
                        _flag(frame, "ok", source).alias("ok"))


@dataclass(frozen=True)
class Panels:
    """Every subject's history as day x task matrices over its own days and tasks.

    Subjects that share a task list are stacked into one group (streams x days x tasks, shorter
    histories padded at the end with zero trials), so each group is scored in one pass.
    """

    subjects: list[str]
    dates: dict[str, list[str]]
    tasks: dict[str, list[str]]
    groups: list[tuple[list[str], np.ndarray, np.ndarray]]  # (subjects, successes, trials)

    def matrices(self, subject: str) -> tuple[np.ndarray, np.ndarray]:
        """One subject's day x task successes and trials (views into its group)."""
        for names, s, m in self.groups:
            if subject in names:
                i, days = names.index(subject), len(self.dates[subject])
                return s[i, :days], m[i, :days]
        raise KeyError(subject)


def _codes(column: pl.Series) -> tuple[np.ndarray, list[str]]:
    """Codes into the sorted distinct values of a text column (an Enum's codes are used as they are)."""
    if isinstance(column.dtype, pl.Enum):
        labels = column.dtype.categories.to_list()
        codes = column.to_physical().to_numpy()
    else:
        column = column.cast(pl.String)
        labels = column.unique().drop_nulls().to_list()
        codes = column.cast(pl.Enum(labels)).to_physical().to_numpy()
    order = np.argsort(np.array(labels, dtype=object))
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    return rank[codes], [labels[i] for i in order]


def _day_numbers(column: pl.Series) -> np.ndarray:
    """Days since 1970-01-01 from a Date column or ISO date text."""
    if column.dtype != pl.Date:
        column = column.cast(pl.String).str.slice(0, 10).str.to_date("%Y-%m-%d")
    return column.to_physical().to_numpy().astype(np.int64)


def _positions(owner: np.ndarray, value: np.ndarray, width: int) -> tuple[np.ndarray, ...]:
    """Distinct (owner, value) pairs, sorted, and each row's rank among its owner's values."""
    key = owner * width + value
    pairs, where = np.unique(key, return_inverse=True)
    first = np.searchsorted(pairs // width, np.arange(owner.max() + 1))
    return pairs // width, pairs % width, where - first[owner]


def panels(counts: pl.DataFrame) -> Panels:
    """Stack counts (subject, date, task, successes, trials) into `Panels`.

    Subjects, days and tasks become codes (no per-subject filtering); repeated rows add up.
    """
    subject, names = _codes(counts["subject"])
    task, labels = _codes(counts["task"])
    day = _day_numbers(counts["date"])
    first_day = int(day.min()) if len(day) else 0
    day = day - first_day
    day_owner, day_value, day_at = _positions(subject, day, int(day.max()) + 1 if len(day) else 1)
    task_owner, task_value, _ = _positions(subject, task, max(len(labels), 1))
    epoch = np.datetime64("1970-01-01") + first_day
    dates, tasks = {}, {}
    for code, name in enumerate(names):
        lo, hi = np.searchsorted(day_owner, [code, code + 1])
        dates[name] = [str(d) for d in (epoch + day_value[lo:hi]).astype("datetime64[D]")]
        lo, hi = np.searchsorted(task_owner, [code, code + 1])
        tasks[name] = [labels[j] for j in task_value[lo:hi]]
    by_tasks: dict[tuple[str, ...], list[int]] = {}
    for code, name in enumerate(names):
        by_tasks.setdefault(tuple(tasks[name]), []).append(code)
    successes = counts["successes"].to_numpy()
    trials = counts["trials"].to_numpy()
    code_of = {label: j for j, label in enumerate(labels)}
    stream_of = np.full(len(names), -1)
    column_of = np.full(len(labels), -1)
    groups = []
    for task_list, codes in by_tasks.items():
        stream_of[:] = -1
        stream_of[codes] = np.arange(len(codes))
        column_of[:] = -1
        column_of[[code_of[t] for t in task_list]] = np.arange(len(task_list))
        rows = np.flatnonzero(stream_of[subject] >= 0)
        shape = (len(codes), max(len(dates[names[c]]) for c in codes), len(task_list))
        s, m = np.zeros(shape, dtype=np.int32), np.zeros(shape, dtype=np.int32)
        index = (stream_of[subject[rows]], day_at[rows], column_of[task[rows]])
        np.add.at(s, index, successes[rows].astype(np.int32))
        np.add.at(m, index, trials[rows].astype(np.int32))
        groups.append(([names[c] for c in codes], s, m))
    return Panels(names, dates, tasks, groups)
