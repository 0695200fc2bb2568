"""Replayed predictions: history a user already has, imported and backfilled as a subject.

Predictions use SWE-bench's format: `.jsonl`, a JSON list, or a JSON object keyed by instance
id, each `{"instance_id", "model_name_or_path", "model_patch"}`. `predictions` names one file
(the same predictions on every date) or a folder with one entry per date: `2026-11-21.jsonl`,
`2026-11-21.json` or a folder `2026-11-21/` of prediction files. Several predictions for one
task on one date are its trials, in file order; a trial without one is recorded as skipped,
a task without any as an `agent_error` with an empty patch. The version is the predictions'
`model_name_or_path`.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path

from pipeline import clock
from pipeline.agents.exits import ExitClass
from pipeline.agents.model import Attempt, skipped
from pipeline.config import ConfigError, Setting, Subject
from pipeline.tasks.model import Task
from pipeline.tasks.rows import Prediction, read_predictions

_DATED = re.compile(r"(\d{4}-\d{2}-\d{2})(?:\.jsonl?)?")


class ReplayAgent:
    name = "replay"
    SETTINGS = {"predictions": Setting(str, required=True)}
    needs_model = needs_price = False
    trusted_patches = False
    paid_work = False  # it reads saved predictions

    @classmethod
    def check_settings(cls, values: dict, raw: dict, at: str, base: Path) -> dict:
        source = (base / values["predictions"]).resolve()
        if not source.exists():
            raise ConfigError(f"{at}: field 'settings.predictions': {source} does not exist")
        return {**values, "predictions": str(source)}

    @classmethod
    def build(cls, spec: Subject, world) -> ReplayAgent:
        return cls(spec.name, Path(spec.settings["predictions"]))

    def __init__(self, subject: str, predictions: Path) -> None:
        self.subject = subject
        self.source = Path(predictions)

    def dates(self) -> dict[dt.date, Path]:
        """Date -> file or folder, for a folder of dated entries."""
        if self.source.is_file():
            return {}
        found = {}
        for entry in self.source.iterdir():
            match = _DATED.fullmatch(entry.name)
            if match and (entry.is_dir() or entry.suffix in (".json", ".jsonl")):
                found[dt.date.fromisoformat(match.group(1))] = entry
        return found

    def source_for(self, day: dt.date) -> Path | None:
        return self.source if self.source.is_file() else self.dates().get(day)

    def predictions(self, day: dt.date) -> dict[str, list[Prediction]]:
        source = self.source_for(day)
        if source is None:
            raise FileNotFoundError(
                f"replay subject {self.subject}: no predictions for {day} in {self.source}"
            )
        return _load(source, source.stat().st_mtime_ns)

    def version(self, on: dt.date | None = None) -> str:
        if self.source.is_file():
            day = on or clock.today()
        else:
            known = sorted(d for d in self.dates() if on is None or d <= on)
            if not known:
                return "no predictions yet"
            day = known[-1]
        names = {row.model_name_or_path for rows in self.predictions(day).values() for row in rows}
        return ",".join(sorted(names)) or "empty"

    def solve(self, task: Task, day: dt.date, trial: int, folder: Path | None = None) -> Attempt:
        rows = self.predictions(day).get(task.instance_id, [])
        source = str(self.source_for(day))
        if trial >= len(rows) and rows:
            return skipped(
                self.subject,
                task,
                day,
                trial,
                self.version(day),
                f"{len(rows)} prediction(s) recorded for this task, no trial {trial}",
            )
        row = rows[trial] if rows else None
        patch = (row.model_patch if row else "") or ""
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            (Path(folder) / "patch.diff").write_text(patch)
        return Attempt(
            subject=self.subject,
            instance_id=task.instance_id,
            date=day,
            trial=trial,
            started_at=dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=trial),
            patch=patch,
            cost_usd=0.0,
            input_tokens=0,
            output_tokens=0,
            cached_tokens=0,
            turns=0,
            duration_s=0.0,
            exit_class=ExitClass.SUBMITTED if rows else ExitClass.AGENT_ERROR,
            agent_version=row.model_name_or_path if row else self.version(day),
            transcript=source,
            failure_mode="",
            detail="" if rows else f"no prediction for {task.instance_id} in {source}",
        )


@lru_cache(maxsize=64)
def _load(source: Path, mtime_ns: int) -> dict[str, list[Prediction]]:
    del mtime_ns  # part of the cache key: an edited file is read again
    files = [source]
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix in (".json", ".jsonl"))
    by_task: dict[str, list[Prediction]] = {}
    for path in files:
        for row in read_predictions(path, unique=False):
            by_task.setdefault(row.instance_id, []).append(row)
    return by_task
