"""Days to blame on the harness rather than the models: most subjects moved the same way at
once, or the gold/empty controls failed on many tasks."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from pipeline.stats.significance import benjamini_hochberg


def harness_suspects(
    z: np.ndarray,
    share: float = 2 / 3,
    min_subjects: int = 2,
    alpha: float = 0.05,
    control_failures: np.ndarray | None = None,
    control_threshold: float = 0.2,
) -> np.ndarray:
    """Days (rows of a day x subject z matrix) to blame on the harness rather than the models.

    Flagged when at least `share` of the subjects scored that day (and `min_subjects`) moved
    the same way, significant after Benjamini-Hochberg across subjects, or when more than
    `control_threshold` of the tasks' gold/empty controls failed.
    """
    z = np.asarray(z, dtype=float)
    p = 2 * stats.norm.sf(np.abs(z))
    flagged = np.zeros(z.shape[0], dtype=bool)
    for day in range(z.shape[0]):
        seen = np.isfinite(z[day])
        if seen.sum() < min_subjects:
            continue
        significant = benjamini_hochberg(p[day, seen]) < alpha
        needed = max(min_subjects, math.ceil(share * seen.sum() - 1e-9))
        moved = max(np.sum(significant & (z[day, seen] < 0)), np.sum(significant & (z[day, seen] > 0)))
        flagged[day] = moved >= needed
    if control_failures is not None:
        flagged |= np.nan_to_num(np.asarray(control_failures, dtype=float)) > control_threshold
    return flagged
