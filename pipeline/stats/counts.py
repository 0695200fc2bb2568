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
        _first_bad(
            frame, pl.col(field).is_null(), field, source, lambda v: "is empty; expected true or false"
        )
        return pl.col(field)
    word = _text(field).str.to_lowercase()
    _first_bad(
        frame,
        ~word.is_in(TRUE_WORDS + FALSE_WORDS) | word.is_null(),
        field,
        source,
        lambda v: f"is {_shown(v)}; expected true or false (1/0, yes/no)",
    )
    return word.is_in(TRUE_WORDS)


def _day(frame: pl.DataFrame, field: str, source: str) -> pl.Expr:
    """An ISO calendar date (YYYY-MM-DD, a time after it allowed), as canonical text."""
    if frame.schema[field] in (pl.Date, pl.Datetime):
        _first_bad(frame, pl.col(field).is_null(), field, source, lambda v: "is empty; expected YYYY-MM-DD")
        return pl.col(field).cast(pl.Date).cast(pl.String)
    text = _text(field)
    parsed = text.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
    shaped = text.str.contains(r"^\d{4}-\d{2}-\d{2}([T ].*)?$")
    _first_bad(
        frame,
        parsed.is_null() | ~shaped.fill_null(False),
        field,
        source,
        lambda v: f"is {_shown(v)}; expected a calendar date YYYY-MM-DD",
    )
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
    trial = (
        pl.col("trial").cast(pl.Int64, strict=False)
        if frame.schema["trial"] != pl.String
        else _text("trial").cast(pl.Int64, strict=False)
    )
    _first_bad(
        frame,
        trial.is_null() | (trial < 0),
        "trial",
        source,
        lambda v: f"is {_shown(v)}; expected a whole number >= 0",
    )
    rows = frame.select(
        _name(frame, "subject", source).alias("subject"),
        _day(frame, "date", source).alias("date"),
        _name(frame, "task", source).alias("task"),
        trial.alias("trial"),
        resolved.alias("resolved"),
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
        raise CountsError(
            source,
            int(again["_row"]) + 1,
            "trial",
            f"repeats row {int(first['_row']) + 1}: subject {first['subject']!r}, "
            f"date {first['date']}, task {first['task']!r}, trial {first['trial']} twice",
        )
    return rows.group_by(["subject", "date", "task"]).agg(
        successes=pl.col("resolved").cast(pl.Int64).sum(), trials=pl.len().cast(pl.Int64)
    )


def control_rows(frame: pl.DataFrame, source: str = "controls") -> pl.DataFrame:
    """Harness controls (date, task, ok), checked like trials."""
    _need(frame, ("date", "task", "ok"), source)
    return frame.select(
        _day(frame, "date", source).alias("date"),
        _name(frame, "task", source).alias("task"),
        _flag(frame, "ok", source).alias("ok"),
    )


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


CHUNK = 1 << 21  # rows handled at a time: memory stays a few arrays of this length


def _names(column: pl.Series, labels: list[str] | None) -> tuple[list[str], np.ndarray | None]:
    """Sorted distinct names of a column and, for codes (Enum or integers into `labels`), the
    rank of each code among them."""
    if labels is None and not isinstance(column.dtype, pl.Enum):
        return sorted(column.cast(pl.String).unique().drop_nulls().to_list()), None
    names = list(labels) if labels is not None else column.dtype.categories.to_list()
    order = np.argsort(np.array(names, dtype=object))
    rank = np.empty(len(names), dtype=np.int32)
    rank[order] = np.arange(len(names), dtype=np.int32)
    return [names[i] for i in order], rank


def _codes(column: pl.Series, names: list[str], rank: np.ndarray | None) -> np.ndarray:
    """Each row's position in `names` (int32)."""
    if rank is None:
        return column.cast(pl.String).cast(pl.Enum(names)).to_physical().to_numpy().astype(np.int32)
    codes = column.to_physical().to_numpy() if isinstance(column.dtype, pl.Enum) else column.to_numpy()
    return rank[codes]


def _day_numbers(column: pl.Series) -> np.ndarray:
    """Days since 1970-01-01 (int32) from a Date column or ISO date text."""
    if column.dtype != pl.Date:
        column = column.cast(pl.String).str.slice(0, 10).str.to_date("%Y-%m-%d")
    return column.to_physical().to_numpy().astype(np.int32, copy=False)


def panels(counts: pl.DataFrame, labels: dict[str, list[str]] | None = None) -> Panels:
    """Stack counts (subject, date, task, successes, trials) into `Panels`.

    Subject and task may be text, Enums, or integer codes into `labels[column]`. Each subject's
    days and tasks come from small presence tables (subjects x days, subjects x tasks), so no
    per-subject filtering and no sort; rows are read in chunks; repeated rows add up.
    """
    labels = labels or {}
    names, subject_rank = _names(counts["subject"], labels.get("subject"))
    tasks_all, task_rank = _names(counts["task"], labels.get("task"))
    days = (
        counts["date"]
        if counts["date"].dtype == pl.Date
        else counts["date"].cast(pl.String).str.slice(0, 10).str.to_date("%Y-%m-%d")
    )
    first_day = int(days.min().toordinal() - 719163) if len(days) else 0
    span = int(days.max().toordinal() - 719163) - first_day + 1 if len(days) else 1

    def chunks():
        for part in counts.iter_slices(CHUNK):
            yield (
                _codes(part["subject"], names, subject_rank),
                _day_numbers(part["date"]) - first_day,
                _codes(part["task"], tasks_all, task_rank),
                part,
            )

    on_day = np.zeros((len(names), span), dtype=bool)
    has_task = np.zeros((len(names), len(tasks_all)), dtype=bool)
    for subject, day, task, _ in chunks():
        on_day[subject, day] = True
        has_task[subject, task] = True
    rank = np.cumsum(on_day, axis=1, dtype=np.int32) - 1
    epoch = np.datetime64("1970-01-01") + first_day
    dates = {
        name: [str(d) for d in (epoch + np.flatnonzero(on_day[i])).astype("datetime64[D]")]
        for i, name in enumerate(names)
    }
    tasks = {name: [tasks_all[j] for j in np.flatnonzero(has_task[i])] for i, name in enumerate(names)}
    by_tasks: dict[bytes, list[int]] = {}
    for code in range(len(names)):
        by_tasks.setdefault(has_task[code].tobytes(), []).append(code)
    groups, stream_of, column_of, group_of = [], np.zeros(len(names), np.int64), [], np.zeros(len(names), int)
    for g, codes in enumerate(by_tasks.values()):
        stream_of[codes], group_of[codes] = np.arange(len(codes)), g
        column_of.append(np.cumsum(has_task[codes[0]], dtype=np.int64) - 1)
        shape = (len(codes), max(len(dates[names[c]]) for c in codes), int(has_task[codes[0]].sum()))
        groups.append(([names[c] for c in codes], np.zeros(shape, np.int32), np.zeros(shape, np.int32)))
    for subject, day, task, part in chunks():
        for g, (_, s, m) in enumerate(groups):
            rows = slice(None) if len(groups) == 1 else np.flatnonzero(group_of[subject] == g)
            flat = (stream_of[subject[rows]] * s.shape[1] + rank[subject[rows], day[rows]]) * s.shape[2]
            flat += column_of[g][task[rows]]
            np.add.at(s.reshape(-1), flat, part["successes"].to_numpy()[rows].astype(np.int32))
            np.add.at(m.reshape(-1), flat, part["trials"].to_numpy()[rows].astype(np.int32))
    return Panels(names, dates, tasks, groups)
