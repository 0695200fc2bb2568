"""Reading and writing the row files users hand over: SWE-Bench-Pro task rows and SWE-bench
predictions. One record reader serves both (JSON Lines, a JSON list or object, Parquet, CSV), so
every bad line is named by its file and line the same way."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.tasks.model import PRO_FIELDS, Task, TaskFormatError

ROW_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
OPTIONAL_FIELDS = ("dockerhub_tag",)  # two public exports of the dataset lack it: Pro derives it


def records(path: Path) -> Iterator[tuple[object, str, str | None]]:
    """(record, where, key) for every record of a file; `key` is the id of a keyed JSON object."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    if path.suffix == ".parquet":
        import polars as pl

        for number, row in enumerate(pl.read_parquet(path).to_dicts(), start=1):
            yield row, f"{path}:{number}", None
    elif path.suffix == ".csv":
        with path.open(newline="") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):  # line 1 is the header
                yield row, f"{path}:{number}", None
    elif path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip():
                try:
                    yield json.loads(line), f"{path}:{number}", None
                except json.JSONDecodeError as err:
                    raise TaskFormatError(f"{path}:{number}: invalid JSON: {err}") from err
    elif path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise TaskFormatError(f"{path}: invalid JSON: {err}") from err
        if isinstance(data, list):
            yield from ((row, f"{path}[{i}]", None) for i, row in enumerate(data))
        elif isinstance(data, dict):
            yield from ((row, f"{path}[{key!r}]", key) for key, row in data.items())
        else:
            raise TaskFormatError(f"{path}: expected a JSON list or object of records")
    else:
        raise TaskFormatError(
            f"{path}: unknown format {path.suffix or '(no suffix)'!r}; expected one of "
            f"{', '.join(ROW_SUFFIXES)}"
        )


def load_rows(path: Path) -> list[Task]:
    """SWE-Bench-Pro rows (.jsonl, .json list, .parquet or .csv), checked field by field."""
    tasks = []
    for row, where, _ in records(path):
        if not isinstance(row, dict):
            raise TaskFormatError(f"{where}: a task row must be an object, got {row!r:.60}")
        tasks.append(Task.from_row({**dict.fromkeys(OPTIONAL_FIELDS, ""), **row}, where))
    ids = Counter(t.instance_id for t in tasks)
    if duplicates := sorted(i for i, n in ids.items() if n > 1):
        raise TaskFormatError(f"{path}: duplicate instance_id(s) {duplicates[:5]}")
    return tasks


@dataclass(frozen=True)
class Prediction:
    instance_id: str
    model_name_or_path: str
    model_patch: str | None


def _prediction(row: object, where: str, key: str | None = None) -> Prediction:
    if not isinstance(row, dict):
        raise TaskFormatError(f"{where}: a prediction must be a JSON object, got {row!r:.60}")
    instance_id = row.get("instance_id", key)
    if not isinstance(instance_id, str) or not instance_id:
        raise TaskFormatError(f"{where}: missing field 'instance_id'")
    patch = row["model_patch"] if "model_patch" in row else row.get("patch")
    if patch is not None and not isinstance(patch, str):
        raise TaskFormatError(f"{where} ({instance_id}): 'model_patch' must be a string or null")
    model = row.get("model_name_or_path") or row.get("prefix") or "unknown"
    return Prediction(instance_id, str(model), patch)


def read_predictions(path: Path, unique: bool = True) -> list[Prediction]:
    """SWE-bench predictions: .jsonl, a JSON list, or a JSON object keyed by instance_id (also
    SWE-Bench-Pro's {instance_id, patch, prefix}). `unique=False` admits several per task (a
    replayed day's trials)."""
    predictions = [_prediction(row, where, key) for row, where, key in records(path)]
    ids = Counter(p.instance_id for p in predictions)
    duplicates = sorted(i for i, n in ids.items() if n > 1)
    if unique and duplicates:
        raise TaskFormatError(f"{path}: more than one prediction for {duplicates[:5]}")
    return predictions


def write_predictions(path: Path, predictions: list[Prediction], keyed: bool = False) -> None:
    """Write predictions as .jsonl, or .json (a list, or an object keyed by id when `keyed`)."""
    path = Path(path)
    rows = [
        {
            "instance_id": p.instance_id,
            "model_name_or_path": p.model_name_or_path,
            "model_patch": p.model_patch,
        }
        for p in predictions
    ]
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif keyed:
        path.write_text(json.dumps({row["instance_id"]: row for row in rows}, indent=1))
    else:
        path.write_text(json.dumps(rows, indent=1))


assert set(OPTIONAL_FIELDS) <= set(PRO_FIELDS)
