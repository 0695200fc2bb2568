"""The day's sample: a fixed panel, stratified by repository, reproducible from a seed."""

from __future__ import annotations

import hashlib
from collections import defaultdict

from pipeline.tasks.model import Task


def panel(tasks: list[Task], size: int, seed: int) -> list[Task]:
    """The same `size` tasks every day, taken round-robin across repositories.

    A fixed panel lets every day be compared task by task with every other day, which is
    several times more powerful than comparing pooled rates of re-drawn samples.
    """
    by_repo: dict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        by_repo[task.repo].append(task)
    for repo in by_repo:
        by_repo[repo].sort(key=lambda t: hashlib.sha256(f"{seed}|{t.instance_id}".encode()).hexdigest())
    chosen: list[Task] = []
    queues = [by_repo[repo] for repo in sorted(by_repo)]
    while len(chosen) < min(size, len(tasks)):
        for queue in queues:
            if queue and len(chosen) < size:
                chosen.append(queue.pop(0))
    return sorted(chosen, key=lambda t: t.instance_id)
