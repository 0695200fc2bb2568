"""Changepoint pieces against brute force, scipy and closed forms."""

import numpy as np
import pytest
from scipy import stats

from pipeline.stats.changepoints import segment_history
from pipeline.stats.segmentation import binomial_cost, dispersion, pelt
from pipeline.stats.significance import paired_difference


def optimal_partition(s, m, penalty, min_size):
    """O(T^2) dynamic programme: the exact optimum PELT must reproduce."""
    n = len(s)
    best = [-penalty] + [np.inf] * n
    last = [0] * (n + 1)
    for t in range(1, n + 1):
        for tau in range(0, t - min_size + 1):
            if np.isfinite(best[tau]):
                value = best[tau] + binomial_cost(s[tau:t].sum(), m[tau:t].sum()) + penalty
                if value < best[t]:
                    best[t], last[t] = value, tau
    bounds, t = [], n
    while t > 0:
        t = last[t]
        if t > 0:
            bounds.append(t)
    return sorted(bounds)


def test_binomial_cost_is_minus_twice_the_maximised_likelihood():
    s, m = 37, 90
    loglik = stats.binom.logpmf(s, m, s / m) - np.log(stats.binom.pmf(s, m, 0.5) / 0.5**m)
    assert binomial_cost(s, m) == pytest.approx(-2 * loglik, rel=1e-9)
    assert binomial_cost(0, 10) == 0.0 and binomial_cost(10, 10) == 0.0


def test_pelt_matches_exhaustive_search():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(3, 28))
        m = rng.integers(5, 60, n).astype(float)
        p = np.where(np.arange(n) < n // 2, 0.3, rng.uniform(0.1, 0.9))
        s = rng.binomial(m.astype(int), p).astype(float)
        penalty, min_size = rng.uniform(1, 15), int(rng.integers(1, 4))
        assert pelt(s, m, penalty, min_size) == optimal_partition(s, m, penalty, min_size)


def test_pelt_finds_a_clear_step_and_nothing_in_noise():
    rng = np.random.default_rng(5)
    m = np.full(120, 100.0)
    flat = rng.binomial(100, 0.45, 120).astype(float)
    assert pelt(flat, m, 3 * np.log(120)) == []
    step = np.concatenate([rng.binomial(100, 0.4, 70), rng.binomial(100, 0.55, 50)]).astype(float)
    (bound,) = pelt(step, m, 3 * np.log(120))
    assert abs(bound - 70) <= 3


def test_dispersion_is_one_for_binomial_and_grows_with_day_noise():
    rng = np.random.default_rng(7)
    m = np.full(400, 100.0)
    assert dispersion(rng.binomial(100, 0.4, 400).astype(float), m) == pytest.approx(1.0, abs=0.35)
    p = np.clip(0.4 + rng.normal(0, 0.07, 400), 0, 1)
    assert dispersion(rng.binomial(100, p).astype(float), m) > 2.0


def test_paired_difference_matches_scipy():
    rng = np.random.default_rng(11)
    before = rng.uniform(0, 1, 40)
    after = np.clip(before - 0.1 + rng.normal(0, 0.1, 40), 0, 1)
    result = paired_difference(before, after)
    reference = stats.ttest_rel(after, before)
    interval = reference.confidence_interval(0.95)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))
    assert result.difference == pytest.approx(float(np.mean(after - before)))


def test_segment_history_describes_each_boundary():
    rng = np.random.default_rng(13)
    days, tasks = 60, 30
    skill = rng.uniform(0.1, 0.9, tasks)
    p = np.where(np.arange(days)[:, None] < 40, skill, np.clip(skill - 0.25, 0, 1))
    s = rng.binomial(3, p).astype(float)
    m = np.full((days, tasks), 3.0)
    dates = [f"2026-01-{d:02d}" if d <= 31 else f"2026-02-{d - 31:02d}" for d in range(1, days + 1)]
    (change,) = segment_history(
        "x", dates, [f"t{j}" for j in range(tasks)], s, m, releases=[(dates[41], "v1", "v2")]
    )
    assert abs(dates.index(change.date) - 40) <= 2
    assert change.after_rate < change.before_rate and change.p_value < 1e-4
    assert change.ci_low < change.difference < change.ci_high < 0
    assert change.version_change == "v1 -> v2"
    assert len(change.flipped_down) > 0


# The cost protocol and the batched search ---------------------------------------------------


class SquaredError:
    """A least-squares cost in ruptures' shape: the search takes any cost."""

    min_size = 1

    def fit(self, signal):
        self.x = np.asarray(signal, dtype=float)
        return self

    def error(self, start, end):
        part = self.x[start:end]
        return float(((part - part.mean()) ** 2).sum())


def test_pelt_takes_any_cost_and_finds_the_exhaustive_optimum():
    from pipeline.stats.segmentation import Pelt

    rng = np.random.default_rng(17)
    for _ in range(40):
        n = int(rng.integers(4, 12))
        x = np.where(np.arange(n) < rng.integers(1, n), 0.0, rng.normal(0, 3)) + rng.normal(0, 1, n)
        penalty = float(rng.uniform(1, 10))
        found = Pelt(SquaredError()).fit(x).predict(penalty)
        best, bounds = np.inf, None
        for mask in range(1 << (n - 1)):  # every set of boundaries
            cut = [i + 1 for i in range(n - 1) if mask >> i & 1]
            edges = [0, *cut, n]
            total = sum(SquaredError().fit(x).error(a, b) for a, b in zip(edges, edges[1:], strict=False))
            total += penalty * len(cut)
            if total < best - 1e-9:
                best, bounds = total, cut
        assert found == bounds


def test_binomial_cost_class_matches_the_function_and_batches():
    from pipeline.stats.segmentation import BinomialCost

    rng = np.random.default_rng(19)
    m = rng.integers(5, 40, (3, 30)).astype(float)
    s = rng.binomial(m.astype(int), 0.4).astype(float)
    batched = BinomialCost(np.array([1.0, 2.0, 1.5])).fit(np.stack([s, m], axis=-1))
    for i, scale in enumerate((1.0, 2.0, 1.5)):
        single = BinomialCost(scale).fit(np.column_stack([s[i], m[i]]))
        assert single.error(4, 19) == pytest.approx(binomial_cost(s[i, 4:19].sum(), m[i, 4:19].sum()) / scale)
        np.testing.assert_allclose(batched.errors(np.arange(10), 20)[i], single.errors(np.arange(10), 20))


def test_pelt_many_series_at_once_equals_each_alone():
    from pipeline.stats.changepoints import boundaries, boundaries_many

    rng = np.random.default_rng(23)
    series, days, tasks = 25, 160, 20
    lengths = rng.integers(6, days + 1, series)
    s, m = np.zeros((series, days, tasks), int), np.zeros((series, days, tasks), int)
    for i, n in enumerate(lengths):
        step = np.where(np.arange(n) < rng.integers(1, n), 0.45, rng.uniform(0.1, 0.9))[:, None]
        m[i, :n] = 3
        s[i, :n] = rng.binomial(3, np.clip(step + rng.normal(0, 0.05, (n, 1)), 0, 1) * np.ones((n, tasks)))
    together = boundaries_many(s.sum(axis=2), m.sum(axis=2), lengths)
    alone = [boundaries(s[i, :n].astype(float), m[i, :n].astype(float)) for i, n in enumerate(lengths)]
    assert together == alone
    assert sum(map(len, together)) > 5
