"""Detection input: bad rows refused with the file, row and field named; counts and panels."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.stats.counts import CountsError, control_rows, panels, trial_counts

REPO = Path(__file__).resolve().parents[1]
HEADER = "subject,date,task,trial,resolved\n"


def frame(text: str) -> pl.DataFrame:
    from io import StringIO

    return pl.read_csv(StringIO(HEADER + text), infer_schema_length=0)


@pytest.mark.parametrize(
    "rows, row, field, words",
    [
        ("a,2026-03-01,t1,0,true\na,2026-03-01,t1,1,maybe\n", 2, "resolved", "'maybe'"),
        ("a,2026-03-01,t1,0,2\n", 1, "resolved", "'2'"),
        ("a,2026-03-01,t1,0,\n", 1, "resolved", "empty"),
        ("a,2026-13-01,t1,0,true\n", 1, "date", "'2026-13-01'"),
        ("a,2026-02-30,t1,0,true\n", 1, "date", "'2026-02-30'"),
        ("a,2026-3-1,t1,0,true\n", 1, "date", "'2026-3-1'"),
        ("a,2026-03-01,t1,-1,true\n", 1, "trial", "'-1'"),
        ("a,2026-03-01,t1,1.5,true\n", 1, "trial", "'1.5'"),
        (",2026-03-01,t1,0,true\n", 1, "subject", "empty"),
        (
            "a,2026-03-01,t1,0,true\na,2026-03-02,t1,0,true\na,2026-03-01,t1,0,false\n",
            3,
            "trial",
            "repeats row 1",
        ),
    ],
)
def test_bad_rows_are_refused_naming_the_file_row_and_field(rows, row, field, words):
    with pytest.raises(CountsError) as caught:
        trial_counts(frame(rows), "counts.csv")
    message = str(caught.value)
    assert message.startswith(f"counts.csv, row {row} (line {row + 1}): field '{field}'")
    assert words in message and "\n" not in message
    assert (caught.value.row, caught.value.field) == (row, field)


def test_missing_columns_and_controls_are_named():
    with pytest.raises(CountsError, match="field 'trial' is missing"):
        trial_counts(
            pl.DataFrame({"subject": ["a"], "date": ["2026-03-01"], "task": ["t"], "resolved": ["1"]})
        )
    controls = pl.DataFrame(
        {"date": ["2026-03-01", "2026-03-02"], "task": ["t", "t"], "ok": ["yes", "perhaps"]}
    )
    with pytest.raises(CountsError, match=r"controls.csv, row 2 \(line 3\): field 'ok' is 'perhaps'"):
        control_rows(controls, "controls.csv")


def test_good_rows_are_counted_once_per_trial():
    counts = trial_counts(
        frame(
            "a,2026-03-01,t1,0,TRUE\na,2026-03-01,t1,1,no\na,2026-03-01T08:00,t2,0,1\nb,2026-03-02,t1,0,Yes\n"
        )
    ).sort(["subject", "task"])
    assert counts.rows() == [
        ("a", "2026-03-01", "t1", 1, 2),
        ("a", "2026-03-01", "t2", 1, 1),
        ("b", "2026-03-02", "t1", 1, 1),
    ]


def test_panels_stack_subjects_that_share_tasks_on_their_own_days():
    counts = pl.DataFrame(
        {
            "subject": ["b", "a", "a", "a", "c"],
            "date": ["2026-01-05", "2026-01-02", "2026-01-01", "2026-01-02", "2026-01-03"],
            "task": ["x", "y", "x", "x", "z"],
            "successes": [1, 2, 0, 1, 3],
            "trials": [3, 3, 3, 3, 3],
        }
    )
    found = panels(counts)
    assert found.subjects == ["a", "b", "c"]
    assert found.dates == {"a": ["2026-01-01", "2026-01-02"], "b": ["2026-01-05"], "c": ["2026-01-03"]}
    assert found.tasks == {"a": ["x", "y"], "b": ["x"], "c": ["z"]}
    s, m = found.matrices("a")
    np.testing.assert_array_equal(s, [[0, 0], [1, 2]])
    np.testing.assert_array_equal(m, [[3, 0], [3, 3]])


@pytest.mark.parametrize(
    "content, words",
    [
        (HEADER + "a,2026-03-01,t1,0,maybe\n", "row 1 (line 2): field 'resolved' is 'maybe'"),
        (HEADER + "a,2026-03-01,t1,0,true,extra\n", "bad.csv: "),
    ],
)
def test_detect_command_refuses_bad_input_in_one_line(tmp_path, content, words):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "detect", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("candlebench detect: ") and words in line and str(path) in line
