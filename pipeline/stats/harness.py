"""Days to blame on the harness rather than the models: most subjects moved the same way at
once, or the gold/empty controls failed on many tasks."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from pipeline.stats.significance import benjamini_hochberg

CONTROL_THRESHOLD = 0.2  # a day whose gold/empty controls failed on more than this share of tasks


def harness_suspects(
    z: np.ndarray,
    share: float = 2 / 3,
    min_subjects: int = 2,
    alpha: float = 0.05,
    control_failures: np.ndarray | None = None,
    control_threshold: float = CONTROL_THRESHOLD,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Days (rows of a day x subject z matrix) to blame on the harness rather than the models.

    Flagged when at least `share` of the subjects scored that day (and `min_subjects`) moved
    the same way, significant after Benjamini-Hochberg across subjects, or when more than
    `control_threshold` of the tasks' gold/empty controls failed. `groups` (one label per
    subject column) counts the lanes of one model as one: a model change moves every lane of it,
    which is no sign of the harness; a group moved when most of its subjects seen that day did.
    """
    z = np.asarray(z, dtype=float)
    p = 2 * stats.norm.sf(np.abs(z))
    labels = (
        np.arange(z.shape[1]) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    )
    flagged = np.zeros(z.shape[0], dtype=bool)
    for day in range(z.shape[0]):
        seen = np.isfinite(z[day])
        present = np.bincount(labels[seen], minlength=labels.max(initial=0) + 1)
        units = int((present > 0).sum())
        if units < min_subjects:
            continue
        significant = benjamini_hochberg(p[day, seen]) < alpha
        needed = max(min_subjects, math.ceil(share * units - 1e-9))
        moved = 0
        for sign in (-1, 1):
            hits = np.bincount(
                labels[seen], weights=significant & (sign * z[day, seen] > 0), minlength=len(present)
            )
            moved = max(moved, int(np.sum(2 * hits > present)))
        flagged[day] = moved >= needed
    if control_failures is not None:
        flagged |= np.nan_to_num(np.asarray(control_failures, dtype=float)) > control_threshold
    return flagged
