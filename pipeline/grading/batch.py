"""Grading many patches at once: identical pairs once, and a sandbox that goes away stops the lot."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

from pipeline.grading.artifacts import Verdict
from pipeline.sandbox import SandboxLost
from pipeline.tasks.model import Task


def grade_batch(
    grade: Callable[..., Verdict], items: Iterable[tuple[Task, str]], workers: int, **options
) -> list[Verdict]:
    """`grade(task, patch, **options)` for every pair, `workers` at a time, in the pairs' order.

    A sandbox that goes away (its Docker daemon died) ends the batch: the gradings it cut short
    are recorded `harness_error` in their folders (never reused), those not started are not, and
    `SandboxLost` says how many of each; a batch never returns verdicts for only part of its pairs.
    """
    items = list(items)
    unique: dict[tuple[str, str], tuple[Task, str]] = {}
    for task, patch in items:
        unique.setdefault((task.instance_id, patch), (task, patch))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {k: pool.submit(grade, t, p, **options) for k, (t, p) in unique.items()}
        try:
            done = {k: f.result() for k, f in futures.items()}
        except SandboxLost as lost:
            pool.shutdown(wait=True, cancel_futures=True)
            raise _lost(lost, list(futures.values())) from lost
    return [done[(task.instance_id, patch)] for task, patch in items]


def _lost(lost: SandboxLost, futures: list[Future]) -> SandboxLost:
    cut = sum(not f.cancelled() and isinstance(f.exception(), SandboxLost) for f in futures)
    waiting = sum(f.cancelled() for f in futures)
    return SandboxLost(
        f"{lost} while grading: {cut} of {len(futures)} gradings lost (recorded harness_error, "
        f"never reused), {waiting} not started; restart it and run the same command again"
    )
