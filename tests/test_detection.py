"""Online detection pieces against scipy, closed forms, published tables and simulation."""

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pipeline.stats.cusum import cusum, cusum_arl, false_alarms_per_year, siegmund_arl
from pipeline.stats.design import MonitorDesign
from pipeline.stats.harness import harness_suspects
from pipeline.stats.monitor import monitor
from pipeline.stats.scores import daily_z
from pipeline.stats.significance import (
    benjamini_hochberg,
    mcnemar_exact,
    minimum_detectable_effect,
    paired_counts,
)
from pipeline.stats.tables import detect_counts
from pipeline.stats.windows import VERDICTS, classify, compare_windows, day_variance, latest_verdict

REPO = Path(__file__).resolve().parents[1]


def panel(rng, days, tasks, trials=3, tau=0.01, drop=None, icc=0.5, mean=0.45):
    """Fixed-panel counts: Beta task rates with the given ICC, a day-level shift, optional drops."""
    spread = 1 / icc - 1
    rate = np.clip(rng.beta(mean * spread, (1 - mean) * spread, tasks), 0.02, 0.98)
    level = rng.normal(0, tau, days)[:, None] - (0 if drop is None else np.asarray(drop)[:, None])
    p = np.clip(rate[None, :] + level, 0, 1)
    m = np.full((days, tasks), float(trials))
    return rng.binomial(trials, p).astype(float), m


# CUSUM run lengths ------------------------------------------------------------------------


def test_markov_chain_arl_matches_the_published_two_sided_table():
    # Tabular two-sided CUSUM, k = 1/2: in-control ARL 168 (h = 4) and 465 (h = 5)
    # (Montgomery, Introduction to Statistical Quality Control, table of CUSUM ARLs).
    for h, published in ((4.0, 168.0), (5.0, 465.0)):
        two_sided = cusum_arl(0.5, h) / 2  # symmetric sides: 1/ARL = 1/ARL+ + 1/ARL-
        assert two_sided == pytest.approx(published, rel=0.01)


def test_markov_chain_arl_agrees_with_siegmund():
    for k, h, shift in ((0.5, 4.0, 0.0), (0.5, 5.0, 1.0), (0.75, 4.2, 0.0), (0.75, 4.2, 1.5)):
        assert cusum_arl(k, h, shift) == pytest.approx(siegmund_arl(k, h, shift), rel=0.03)


def one_sided_run_lengths(rng, k, h, c, shift, streams, horizon):
    """First alarm of the upper CUSUM with the one-day rule z > c, by brute force."""
    z = rng.normal(shift, 1.0, (streams, horizon))
    total, first = np.zeros(streams), np.full(streams, np.inf)
    for t in range(horizon):
        total = np.maximum(0.0, total + z[:, t] - k)
        alarm = ((total > h) | (z[:, t] > c)) & ~np.isfinite(first)
        first[alarm] = t + 1
        total[alarm] = 0.0
    assert np.isfinite(first).all()
    return first


@pytest.mark.parametrize(
    "k, h, c, shift",
    [(0.5, 3.0, math.inf, 0.0), (0.75, 2.5, 2.5, 0.0), (0.75, 4.2, 4.0, 1.5), (0.5, 3.0, 3.0, 0.25)],
)
def test_markov_chain_arl_matches_monte_carlo(k, h, c, shift):
    rng = np.random.default_rng(17)
    runs = one_sided_run_lengths(rng, k, h, c, shift, 20_000, 2_000)
    expected = cusum_arl(k, h, shift, c)
    assert runs.mean() == pytest.approx(expected, rel=4 * runs.std() / math.sqrt(len(runs)) / expected + 0.01)


def test_two_sided_cusum_false_alarm_rate_matches_the_chain():
    rng = np.random.default_rng(19)
    design = MonitorDesign(k=0.5, h=3.0, c=3.0)
    path = cusum(rng.normal(size=(2_000, 1_000)), design.k, design.h, design.c)
    per_year = np.count_nonzero(path.alarm) / path.alarm.size * 365
    assert per_year == pytest.approx(false_alarms_per_year(design), rel=0.05)


def test_default_design_budget():
    design = MonitorDesign()
    assert false_alarms_per_year(design) < 0.5  # nominal; the simulation shows the realised rate
    assert design.c - design.k < design.h  # one extreme day alone cannot trip the CUSUM


def test_cusum_resets_skips_missing_days_and_keeps_sums_on_one_day_alarms():
    z = np.array([2.0, np.nan, 2.0, 0.0, 0.0, -6.0, -1.0])
    path = cusum(z, k=0.5, h=2.8, c=3.0)
    assert path.upper[:3].tolist() == [1.5, 1.5, 0.0]  # a missing day changes nothing
    assert path.alarm.tolist() == [0, 0, 1, 0, 0, -1, -1]
    assert path.one_day.tolist() == [False] * 5 + [True, False]
    assert path.lower[5] == pytest.approx(2.5)  # -6 counts as -c = -3; one-day alarms do not reset
    assert path.lower[6] == 0.0  # 2.5 + 1 - 0.5 > h: a CUSUM alarm, which resets


# Daily z-scores ---------------------------------------------------------------------------


def test_daily_z_variance_matches_simulation():
    rng = np.random.default_rng(23)
    streams, days, tasks, tau = 600, 70, 40, 0.012
    rate = np.clip(rng.beta(0.45, 0.55, tasks), 0.02, 0.98)
    level = rng.normal(0, tau, (streams, days, 1))
    m = np.full((streams, days, tasks), 3.0)
    m[rng.random(m.shape) < 0.05] = 0  # missing task-days
    s = rng.binomial(m.astype(int), np.clip(rate + level, 0, 1)).astype(float)
    scores = daily_z(s, m, MonitorDesign(window=365))
    late = slice(40, days)
    # The stated variance of a day's difference is what the difference really varies by.
    assert np.nanvar(scores.difference[:, late]) == pytest.approx(
        np.nanmean(scores.variance[:, late]), rel=0.08
    )
    assert np.nanvar(scores.z[:, late]) == pytest.approx(1.0, abs=0.06)
    assert abs(np.nanmean(scores.z[:, late])) < 0.03
    assert np.isnan(scores.z[:, :14]).all()  # burn-in


def test_daily_z_ignores_tau_when_there_is_none_and_sees_a_shift():
    rng = np.random.default_rng(29)
    drop = np.where(np.arange(80) >= 60, 0.15, 0.0)
    s, m = panel(rng, 80, 50, tau=0.0, drop=drop)
    scores = daily_z(s, m)
    assert np.nanmedian(scores.tau2) < 2e-4
    assert np.nanmean(scores.z[60:66]) < -3  # the lag keeps the shift out of the baseline


def test_one_broken_day_stays_out_of_the_baseline():
    rng = np.random.default_rng(31)
    s, m = panel(rng, 60, 50)
    s[30] = 0.0  # the harness failed every task that day
    scores = daily_z(s, m)
    assert scores.z[30] < -4
    assert np.nanmax(scores.tau2[31:]) < 4e-4  # not inflated by the broken day


def test_monitor_alarms_once_per_shift_and_restarts():
    rng = np.random.default_rng(37)
    drop = np.where(np.arange(120) >= 60, 0.13, 0.0)
    s, m = panel(rng, 120, 50, drop=drop)
    run = monitor(s, m)
    alarms = np.flatnonzero(run.path.alarm)
    assert alarms.size and 60 <= alarms[0] <= 61 and run.path.alarm[alarms[0]] == -1
    assert np.count_nonzero(run.path.alarm[62:]) <= 1  # the new level becomes the baseline
    assert np.isnan(run.scores.z[alarms[-1] + 1])  # scoring pauses while the new baseline forms


def test_monitor_handles_several_streams_like_one():
    rng = np.random.default_rng(41)
    s, m = panel(rng, 50, 20)
    batch = monitor(np.stack([s, s]), np.stack([m, m]))
    single = monitor(s, m)
    np.testing.assert_array_equal(batch.path.alarm[1], single.path.alarm)
    np.testing.assert_allclose(batch.scores.z[0], single.scores.z, equal_nan=True)


# Paired tests, BH, MDE, verdicts ------------------------------------------------------------


def test_mcnemar_matches_binomtest_and_the_closed_form():
    rng = np.random.default_rng(43)
    before = rng.random(60) < 0.6
    after = np.where(rng.random(60) < 0.25, ~before, before)
    lost, gained, p = mcnemar_exact(before, after)
    assert (lost, gained) == (int(np.sum(before & ~after)), int(np.sum(~before & after)))
    assert p == pytest.approx(stats.binomtest(gained, lost + gained, 0.5).pvalue)
    n, low = lost + gained, min(lost, gained)
    assert p == pytest.approx(min(1.0, 2 * stats.binom.cdf(low, n, 0.5)))
    result = paired_counts(before.astype(float), np.ones(60), after.astype(float), np.ones(60))
    assert result.method == "McNemar exact" and result.p_value == pytest.approx(p)


def test_paired_counts_uses_the_shared_tasks_and_day_level_variance():
    rng = np.random.default_rng(47)
    mb, ma = rng.integers(0, 10, 40).astype(float), rng.integers(0, 10, 40).astype(float)
    sb, sa = rng.binomial(mb.astype(int), 0.5).astype(float), rng.binomial(ma.astype(int), 0.4).astype(float)
    shared = (mb > 0) & (ma > 0)
    plain = paired_counts(sb, mb, sa, ma)
    reference = stats.ttest_rel(sa[shared] / ma[shared], sb[shared] / mb[shared])
    assert plain.n_tasks == shared.sum() and plain.p_value == pytest.approx(reference.pvalue)
    wider = paired_counts(sb, mb, sa, ma, extra_variance=1e-3)
    assert wider.se == pytest.approx(math.sqrt(plain.se**2 + 1e-3))
    assert wider.p_value > plain.p_value


def test_benjamini_hochberg_matches_scipy_and_the_step_up_rule():
    rng = np.random.default_rng(53)
    p = np.concatenate([rng.uniform(0, 0.01, 5), rng.uniform(0, 1, 25)])
    q = benjamini_hochberg(p)
    np.testing.assert_allclose(q, stats.false_discovery_control(p, method="bh"))
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    step_up = np.minimum.accumulate(ranked[::-1])[::-1]
    np.testing.assert_allclose(q[order], np.minimum(step_up, 1))
    with_gap = benjamini_hochberg(np.array([0.01, np.nan, 0.04]))
    assert np.isnan(with_gap[1]) and with_gap[[0, 2]] == pytest.approx([0.02, 0.04])


def test_minimum_detectable_effect_matches_the_normal_formula_and_has_its_power():
    assert minimum_detectable_effect(0.01, 10**6) == pytest.approx(
        (stats.norm.isf(0.025) + stats.norm.ppf(0.8)) * 0.01, rel=1e-3
    )
    se, df = 0.02, 9
    effect = minimum_detectable_effect(se, df)
    rng = np.random.default_rng(59)
    t = stats.nct.rvs(df, effect / se, size=200_000, random_state=rng)
    assert np.mean(np.abs(t) > stats.t.isf(0.025, df)) == pytest.approx(0.8, abs=0.01)


def test_classify_on_constructed_results():
    assert classify(-0.08, 0.02, 40, 1e-4, 0.05)[0] == "degraded"
    assert classify(0.08, 0.02, 40, 1e-4, 0.05)[0] == "improved"
    label, equivalence = classify(0.002, 0.01, 40, 0.8, 0.03)
    assert label == "stable" and equivalence < 0.05  # 90% interval inside +-3 points
    assert classify(0.02, 0.02, 40, 0.32, 0.03)[0] == "inconclusive"  # neither moved nor tight
    assert classify(0.0, math.nan, 0, 1.0, 0.03)[0] == "inconclusive"


def test_latest_verdict_on_constructed_panels():
    rng = np.random.default_rng(61)
    drop = np.where(np.arange(60) >= 53, 0.15, 0.0)
    worse = latest_verdict(*panel(rng, 60, 50, drop=drop, tau=0.005))
    assert worse.verdict == "degraded" and worse.ci_high < 0 and worse.window == (53, 60)
    flat = latest_verdict(*panel(rng, 60, 200, trials=10, tau=0.0, icc=0.8), margin=0.03)
    assert flat.verdict == "stable" and flat.margin == 0.03
    assert flat.mde < worse.mde  # more tasks and trials: a finer design
    short = latest_verdict(*panel(rng, 8, 10))
    assert short.verdict == "inconclusive" and short.method == "too little history"


def test_compare_windows_on_single_trials_uses_mcnemar():
    rng = np.random.default_rng(67)
    s, m = panel(rng, 2, 80, trials=1)
    result = compare_windows(s, m, (1, 2), (0, 1))
    assert result.test.method == "McNemar exact"
    assert result.test.p_value == pytest.approx(mcnemar_exact(s[0] > 0, s[1] > 0)[2])


def test_day_level_variance_is_recovered_by_the_method_of_moments():
    rng = np.random.default_rng(71)
    estimates = [day_variance(*panel(rng, 60, 50, tau=0.02)) for _ in range(60)]
    assert np.mean(estimates) == pytest.approx(0.02**2, rel=0.15)
    s, m = zip(*[panel(rng, 120, 50, tau=0.02) for _ in range(40)], strict=True)
    assert np.nanmean(daily_z(np.stack(s), np.stack(m)).tau2[:, 60:]) == pytest.approx(0.02**2, rel=0.15)


# Harness suspects ------------------------------------------------------------------------------


def test_harness_suspects():
    z = np.array(
        [
            [-6.0, -5.0, -7.0],  # all three dropped together: the harness
            [-6.0, 0.1, 0.3],  # one subject moved: its own business
            [-6.0, 5.0, np.nan],  # opposite directions: not a common cause
            [-6.0, -5.0, 0.2],  # two of three, same way: at least 2/3
            [-6.0, np.nan, np.nan],  # only one subject scored that day
            [0.1, 0.2, -0.1],
        ]
    )
    assert harness_suspects(z).tolist() == [True, False, False, True, False, False]
    assert harness_suspects(z, share=0.9).tolist() == [True, False, False, False, False, False]
    controls = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])
    assert harness_suspects(z, control_failures=controls)[5]


def test_the_lanes_of_one_model_count_once_in_the_harness_rule():
    z = np.array(
        [
            [-6.0, -5.0, 0.1],  # both lanes of one model dropped: a model change, not the harness
            [-6.0, -5.0, -7.0],  # and the other model too: the harness
            [-6.0, 0.2, -7.0],  # one lane of the model (not most of it) and the other model
            [-6.0, -5.0, np.nan],  # only one model scored that day (two subjects: flagged without groups)
        ]
    )
    lanes = np.array(["opus", "opus", "gpt"])
    assert harness_suspects(z).tolist() == [True, True, True, True]
    assert harness_suspects(z, groups=lanes).tolist() == [False, True, False, False]
    assert harness_suspects(z, groups=np.array(["a", "b", "c"])).tolist() == harness_suspects(z).tolist()


# detect_counts and the command line ------------------------------------------------------------


def counts_frame(seed=73, days=80, tasks=30, step_day=50):
    """Two subjects; `a` drops 25 points on step_day; both fail most tasks on day 30."""
    rng = np.random.default_rng(seed)
    start = dt.date(2026, 3, 1)
    rows = []
    for name in ("a", "b"):
        skill = rng.uniform(0.2, 0.9, tasks)
        for d in range(days):
            p = skill - (0.25 if name == "a" and d >= step_day else 0.0)
            p = p * 0.2 if d == 30 else p
            outcome = rng.random((tasks, 3)) < np.clip(p, 0, 1)[:, None]
            day = (start + dt.timedelta(days=d)).isoformat()
            rows += [
                (name, day, f"t{j:02d}", trial, bool(outcome[j, trial]))
                for j in range(tasks)
                for trial in range(3)
            ]
    return pl.DataFrame(rows, schema=["subject", "date", "task", "trial", "resolved"], orient="row")


def check_report(report, step_date="2026-04-20", broken_date="2026-03-31"):
    a, b = report["subjects"]["a"], report["subjects"]["b"]
    (change,) = a["changepoints"]
    assert abs((dt.date.fromisoformat(change["date"]) - dt.date.fromisoformat(step_date)).days) <= 2
    assert change["difference"] < 0 and change["ci_high"] < 0 and change["p_value"] < 1e-6
    assert change["after_rate"] < change["before_rate"]
    first = a["alarms"][0]
    assert (
        first["direction"] == "down"
        and 0 <= (dt.date.fromisoformat(first["date"]) - dt.date.fromisoformat(step_date)).days <= 2
    )
    assert b["changepoints"] == [] and b["alarms"] == []
    assert [d["date"] for d in report["harness_suspect_days"]] == [broken_date]
    assert a["excluded_days"] == [broken_date]
    for subject in (a, b):
        assert subject["verdict"]["verdict"] in VERDICTS
        assert subject["mde"] > 0


def test_detect_counts_finds_the_step_and_the_harness_day():
    report = detect_counts(counts_frame())
    check_report(report)
    json.dumps(report)  # JSON-able as it is


def test_detect_counts_verdict_sees_a_recent_drop():
    report = detect_counts(counts_frame(step_day=75))
    verdict = report["subjects"]["a"]["verdict"]
    assert verdict["verdict"] == "degraded" and verdict["q_value"] < 0.05
    assert verdict["window"] == ["2026-05-13", "2026-05-19"]


def test_detect_command_prints_the_same_json(tmp_path):
    path = tmp_path / "counts.csv"
    counts_frame().write_csv(path)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "detect", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    check_report(json.loads(done.stdout))
