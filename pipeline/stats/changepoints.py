"""Each subject's history segmented offline, and every boundary described: effect, interval,
paired p-value, the tasks that flipped, and a release nearby."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.stats.releases import release_kind
from pipeline.stats.segmentation import BinomialCost, Pelt, dispersion, dispersions, pelt_many, penalty_for
from pipeline.stats.significance import paired_counts


@dataclass(frozen=True)
class Changepoint:
    subject: str
    date: str  # first day of the new segment
    before_rate: float
    after_rate: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_tasks: int
    flipped_down: tuple[str, ...]  # passed in most trials before, fail in most after
    flipped_up: tuple[str, ...]
    version_change: str  # "old -> new" when a release falls within `near` days, else ""
    release_kind: str = ""  # what that release changed: "cli", "model" or "cli+model"


def dt_date(text: str) -> dt.date:
    return dt.date.fromisoformat(str(text)[:10])


def boundaries(successes: np.ndarray, trials: np.ndarray, min_size: int = 3) -> list[int]:
    """Day indices where a new segment starts: PELT, binomial cost over daily totals / dispersion."""
    daily_s, daily_m = successes.sum(axis=1), trials.sum(axis=1)
    cost = BinomialCost(dispersion(daily_s, daily_m), min_size)
    return Pelt(cost).fit(np.column_stack([daily_s, daily_m])).predict(penalty_for(len(daily_s)))


def boundaries_many(
    daily_s: np.ndarray, daily_m: np.ndarray, lengths: np.ndarray, min_size: int = 3
) -> list[list[int]]:
    """`boundaries` of many series at once from their daily totals (series x days; series i
    uses its first lengths[i] days)."""
    cost = BinomialCost(dispersions(daily_s, daily_m, lengths), min_size)
    cost.fit(np.stack([daily_s, daily_m], axis=-1))
    return pelt_many(cost, lengths, np.array([penalty_for(n) for n in lengths]))


def segment_history(
    subject: str,
    dates: list[str],
    tasks: list[str],
    successes: np.ndarray,
    trials: np.ndarray,
    releases: Sequence[tuple[str, str, str]] = (),
    window: int = 28,
    near: int = 3,
    min_size: int = 3,
    bounds: list[int] | None = None,
) -> list[Changepoint]:
    """Segment one subject's history (unless `bounds` are given) and describe each boundary.

    `successes` and `trials` are day x task matrices. Each boundary is tested task by task
    on up to `window` days either side (bounded by the neighbouring boundaries).
    """
    bounds = boundaries(successes, trials, min_size) if bounds is None else bounds
    edges = [0, *bounds, len(dates)]
    found = []
    for k, b in enumerate(bounds):
        lo, hi = max(edges[k], b - window), min(edges[k + 2], b + window)
        s_before, m_before = successes[lo:b].sum(axis=0), trials[lo:b].sum(axis=0)
        s_after, m_after = successes[b:hi].sum(axis=0), trials[b:hi].sum(axis=0)
        shared = (m_before > 0) & (m_after > 0)
        rate_before = s_before[shared] / m_before[shared]
        rate_after = s_after[shared] / m_after[shared]
        test = paired_counts(s_before, m_before, s_after, m_after)
        names = [t for t, keep in zip(tasks, shared, strict=True) if keep]
        day = dt_date(dates[b])
        close = list(
            dict.fromkeys(
                (old, new) for when, old, new in releases if abs((dt_date(when) - day).days) <= near
            )
        )
        kinds = {k for old, new in close for k in release_kind(old, new).split("+") if k}
        found.append(
            Changepoint(
                subject=subject,
                date=dates[b],
                before_rate=float(s_before.sum() / m_before.sum()),
                after_rate=float(s_after.sum() / m_after.sum()),
                difference=test.difference,
                ci_low=test.ci_low,
                ci_high=test.ci_high,
                p_value=test.p_value,
                n_tasks=test.n_tasks,
                flipped_down=tuple(
                    n for n, x, y in zip(names, rate_before, rate_after, strict=True) if x > 0.5 and y < 0.5
                ),
                flipped_up=tuple(
                    n for n, x, y in zip(names, rate_before, rate_after, strict=True) if x < 0.5 and y > 0.5
                ),
                version_change="; ".join(f"{old} -> {new}" for old, new in close),
                release_kind="+".join(k for k in ("cli", "model") if k in kinds),
            )
        )
    return found
