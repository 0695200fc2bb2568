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
               lambda v: f"is {v!r}; expected true or false (1/0, yes/no)")
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
               lambda v: f"is {v!r}; expected a calendar date YYYY-MM-DD")
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
               lambda v: f"is {v!r}; expected a whole number >= 0")
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


def panels(counts: pl.DataFrame) -> Panels:
    """Stack counts (subject, date, task, successes, trials) into `Panels`."""
    frame = counts.select(pl.col("subject").cast(pl.String), pl.col("date").cast(pl.String),
                          pl.col("task").cast(pl.String), pl.col("successes").cast(pl.Float64),
                          pl.col("trials").cast(pl.Float64))
    frame = frame.group_by(["subject", "date", "task"]).agg(pl.col("successes").sum(), pl.col("trials").sum())
    frame = frame.sort(["subject", "date", "task"]).with_columns(
        day=pl.col("date").rank("dense").over("subject").cast(pl.Int64) - 1,
        column=pl.col("task").rank("dense").over("subject").cast(pl.Int64) - 1,
    )
    dates = {name: group.to_list() for name, group in _by_subject(frame.unique(["subject", "date"]), "date")}
    tasks = {name: group.to_list() for name, group in _by_subject(frame.unique(["subject", "task"]), "task")}
    subjects = sorted(dates)
    by_tasks: dict[tuple[str, ...], list[str]] = {}
    for name in subjects:
        by_tasks.setdefault(tuple(tasks[name]), []).append(name)
    groups = []
    for task_list, names in by_tasks.items():
        position = pl.DataFrame({"subject": names, "stream": list(range(len(names)))})
        rows = frame.join(position, on="subject", how="inner")
        shape = (len(names), max(len(dates[n]) for n in names), len(task_list))
        s, m = np.zeros(shape), np.zeros(shape)
        index = (rows["stream"].to_numpy(), rows["day"].to_numpy(), rows["column"].to_numpy())
        s[index], m[index] = rows["successes"].to_numpy(), rows["trials"].to_numpy()
        groups.append((names, s, m))
    return Panels(subjects, dates, tasks, groups)


def _by_subject(frame: pl.DataFrame, column: str):
    ordered = frame.select("subject", column).sort(["subject", column])
    for (name,), group in ordered.group_by(["subject"], maintain_order=True):
        yield name, group[column]
