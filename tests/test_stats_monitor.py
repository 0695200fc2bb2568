"""The online monitor's newer pieces: the statistic before a reset, warnings and extra trials,
the variance widening, confirmation decisions, and the old numbers kept."""

import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipeline.stats.confirmation import RULE, ConfirmationRule, decide, decide_next, decision, fresh_evidence
from pipeline.stats.cusum import cusum, time_above
from pipeline.stats.design import DESIGN, MonitorDesign
from pipeline.stats.monitor import CLEARED, HELD, OnlineMonitor, extra_trials_due, monitor
from pipeline.stats.scores import daily_z
from pipeline.stats.tables import detect_counts, detection_tables
from tests.test_detection import counts_frame, panel

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_statistic_is_kept_as_computed_on_the_alarm_day():
    z = np.array([2.0, 2.0, 0.0, -6.0, -1.0])
    path = cusum(z, k=0.5, h=2.8, c=3.0)
    assert path.alarm.tolist() == [0, 1, 0, -1, -1]
    assert path.statistic[1] == pytest.approx(3.0) and path.upper[1] == 0.0  # crossed, then reset
    assert path.statistic[3] == pytest.approx(2.5)  # a one-day alarm: no reset, the sum as it is
    assert path.statistic[4] == pytest.approx(3.0) and path.lower[4] == 0.0


def test_monitor_table_crosses_the_threshold_exactly_at_cusum_alarms():
    rng = np.random.default_rng(5)
    drop = np.where(np.arange(120) >= 70, 0.13, 0.0)
    s, m = panel(rng, 120, 50, drop=drop)
    day, task = np.meshgrid(np.arange(120), np.arange(50), indexing="ij")
    counts = pl.DataFrame(
        {
            "day": day.ravel(),
            "task": [f"t{j:02d}" for j in task.ravel()],
            "successes": s.ravel().astype(int),
            "trials": m.ravel().astype(int),
        }
    )
    counts = counts.with_columns(
        subject=pl.lit("a"), date=pl.date(2026, 1, 1) + pl.duration(days=pl.col("day"))
    )
    tables = detection_tables(counts)
    watch = tables["monitor"].join(tables["alarms"], on=["subject", "date"], how="left")
    cusum_days = watch.filter(pl.col("rule") == "cusum")
    assert cusum_days.height and (cusum_days["statistic"] > cusum_days["threshold"]).all()
    assert (cusum_days["statistic_after"] == 0).all()
    quiet = watch.filter(pl.col("rule").is_null() & pl.col("statistic").is_not_null())
    assert (quiet["statistic"] <= quiet["threshold"]).all()


def test_warning_line_and_extra_trials():
    design = MonitorDesign(warning=1.5, warning_trials=5)
    np.testing.assert_array_equal(extra_trials_due(np.array([0.0, 1.5, 1.6, 9.0]), design), [0, 0, 5, 5])
    assert extra_trials_due(100.0, MonitorDesign()) == 0  # no warning line: never more trials
    rng = np.random.default_rng(7)
    s, m = panel(rng, 90, 50, drop=np.where(np.arange(90) >= 60, 0.08, 0.0))
    run = monitor(s, m, design)
    after = np.maximum(run.path.upper, run.path.lower)
    np.testing.assert_array_equal(run.warning, after > 1.5)
    np.testing.assert_array_equal(run.extra_trials, np.where(after > 1.5, 5, 0))
    assert run.warning[60:].any()


def test_extra_trials_feed_the_same_statistic():
    rng = np.random.default_rng(11)
    s, m = panel(rng, 40, 30)
    extra_s, extra_m = rng.binomial(5, 0.5, 30), np.full(30, 5)
    together_s, together_m = s.copy(), m.copy()
    together_s[35] += extra_s
    together_m[35] += extra_m
    batch = monitor(together_s, together_m, DESIGN)
    online = OnlineMonitor(s.astype(int).copy(), m.astype(int).copy(), DESIGN)
    for t in range(40):
        online.evaluate(t)
        if t == 35:  # the day's trials first, then more of them, scored again before the day closes
            online.observe(t, extra_s, extra_m)
            online.evaluate(t)
        online.commit(t)
    result = online.result()
    np.testing.assert_allclose(result.scores.z, batch.scores.z, rtol=1e-13, equal_nan=True)
    np.testing.assert_array_equal(result.path.alarm, batch.path.alarm)


def test_widened_variance_is_the_plain_one_when_switched_off_and_larger_otherwise():
    rng = np.random.default_rng(13)
    s, m = panel(rng, 120, 50)
    plain = daily_z(s, m, MonitorDesign())
    np.testing.assert_array_equal(plain.z_cusum, plain.z)
    wide = daily_z(s, m, DESIGN)
    seen = np.isfinite(wide.z)
    assert np.all(np.abs(wide.z_cusum[seen]) <= np.abs(wide.z[seen]) + 1e-12)
    assert np.nanmean(np.abs(wide.z_cusum)) < np.nanmean(np.abs(wide.z))


def test_dependence_is_estimated_from_the_subjects_own_history():
    rng = np.random.default_rng(17)
    days, tasks, streams = 300, 50, 60
    rate = np.clip(rng.beta(0.45, 0.55, tasks), 0.02, 0.98)
    shocks = rng.normal(0, 1, (streams, days))
    ar = np.empty_like(shocks)
    ar[:, 0] = shocks[:, 0]
    for t in range(1, days):
        ar[:, t] = 0.8 * ar[:, t - 1] + 0.6 * shocks[:, t]
    design = MonitorDesign(dependence_lags=7, dependence_window=365)
    found = {}
    for name, level in (("independent", shocks), ("ar1", ar)):
        m = np.full((streams, days, tasks), 3)
        s = rng.binomial(m, np.clip(rate + 0.015 * level[:, :, None], 0, 1))
        found[name] = np.nanmean(daily_z(s, m, design).dependence[:, 150:])
    # Bartlett weights over 7 lags of an AR(1) with phi 0.8 and sd 1.5 points: about 3.8 tau^2.
    assert found["ar1"] == pytest.approx(3.84 * 0.015**2, rel=0.35)
    assert found["independent"] < 0.25 * found["ar1"]


def test_time_above_the_warning_line_matches_simulation():
    rng = np.random.default_rng(19)
    path = cusum(rng.normal(size=(400, 3000)), k=0.75, h=4.2, c=math.inf)
    simulated = np.mean(path.upper > 1.5)
    assert simulated == pytest.approx(time_above(0.75, 4.2, 1.5), rel=0.05)


def test_confirmation_decisions():
    rule = ConfirmationRule(trials=8, threshold=2.5, survive=False, hold=True, floor=0.0, next_threshold=0.75)
    np.testing.assert_array_equal(
        decide(
            np.array([-1, -1, -1, -1, 1, 0]),
            np.array([-3.0, -1.0, 0.5, np.nan, 3.0, -9.0]),
            np.ones(6, bool),
            rule,
        ),
        [1, 2, -1, -1, 1, -1],
    )
    np.testing.assert_array_equal(
        decide_next(np.array([-1, -1, 1]), np.array([-0.8, -0.2, 2.0]), rule), [1, -1, 1]
    )
    strict = ConfirmationRule(threshold=1.0)  # survive: the alarm must still stand
    assert decision(-1, -2.0, False, strict) == "cleared" and decision(-1, -2.0, True, strict) == "confirmed"
    assert decision(-1, -1.0, True, rule) == "held"
    assert decision(-1, float("nan"), True, rule, next_z=-1.0) == "confirmed"


def test_fresh_evidence_scores_only_the_fresh_trials_against_that_days_baseline():
    rng = np.random.default_rng(23)
    drop = np.where(np.arange(60) >= 50, 0.2, 0.0)
    s, m = panel(rng, 60, 50, drop=drop)
    fresh_m = np.full(50, 8)
    fresh_s = rng.binomial(fresh_m, np.clip(s[50] / 3, 0, 1))
    z, direction = fresh_evidence(s, m, 50, fresh_s, fresh_m, DESIGN)  # the shift's first day
    assert z < -2.5 and direction in (-1, 0)
    calm, _ = fresh_evidence(s, m, 40, rng.binomial(fresh_m, s[:40].sum(0) / m[:40].sum(0)), fresh_m, DESIGN)
    assert abs(calm) < 3


def test_held_and_cleared_alarms_keep_the_baseline():
    rng = np.random.default_rng(29)
    s, m = panel(rng, 90, 50, drop=np.where(np.arange(90) >= 60, 0.13, 0.0))
    first = monitor(s, m, DESIGN)
    day = int(np.flatnonzero(first.path.alarm)[0])
    for value in (CLEARED, HELD):
        decisions = np.zeros(90, int)
        decisions[day] = value
        again = monitor(s, m, DESIGN, decisions)
        assert np.isfinite(again.scores.z[day + 1])  # no restart: scoring goes on the next day
        assert again.cleared[day] == (value == CLEARED)
        if value == HELD:
            assert again.warning[day] and again.path.statistic[day + 1] > DESIGN.h
    assert np.isnan(first.scores.z[day + 1])  # a confirmed alarm restarts the baseline


def test_detection_of_all_subjects_at_once_equals_each_alone():
    frame = counts_frame(seed=3, days=70).filter(pl.col("date") != "2026-03-31")  # no shared bad day
    together = detect_counts(frame, with_monitor=True)["subjects"]
    for name in ("a", "b"):
        alone = detect_counts(frame.filter(pl.col("subject") == name), with_monitor=True)["subjects"][name]
        assert alone["monitor"] == together[name]["monitor"] and alone["alarms"] == together[name]["alarms"]
        assert alone["changepoints"] == together[name]["changepoints"]


def test_the_old_detectors_z_scores_alarms_and_changepoints_are_kept():
    sys.path.insert(0, str(BENCHMARKS))
    import legacy

    try:
        old = legacy.load()
    except legacy.LegacyUnavailable as err:
        pytest.skip(str(err))
    frame = counts_frame()
    third = counts_frame(seed=9, days=50).filter((pl.col("subject") == "b") & (pl.col("task") != "t03"))
    frame = pl.concat([frame, third.with_columns(subject=pl.lit("c"))])
    before = old.detect_counts(frame, with_monitor=True)
    after = detect_counts(frame, design=MonitorDesign(), with_monitor=True)
    assert before["harness_suspect_days"] == after["harness_suspect_days"]
    for name, was in before["subjects"].items():
        now = after["subjects"][name]
        for key in ("z", "cusum_up", "cusum_down"):
            x = np.array([np.nan if r[key] is None else r[key] for r in was["monitor"]])
            y = np.array([np.nan if r[key] is None else r[key] for r in now["monitor"]])
            np.testing.assert_allclose(y, x, rtol=1e-12, atol=1e-14, equal_nan=True)
        assert [(a["date"], a["direction"], a["rule"]) for a in was["alarms"]] == [
            (a["date"], a["direction"], a["rule"]) for a in now["alarms"]
        ]
        kept = [
            {k: cp[k] for k in old_cp}
            for cp, old_cp in zip(now["changepoints"], was["changepoints"], strict=True)
        ]
        assert was["changepoints"] == kept and was["verdict"] == now["verdict"]  # columns added since: new


def test_calibrated_rule_and_design_fit_together():
    assert DESIGN.clip - DESIGN.k < DESIGN.h  # one day alone never trips the CUSUM
    assert DESIGN.warning < DESIGN.h and DESIGN.warning_trials > 0
    assert RULE.hold and RULE.threshold > RULE.next_threshold
    assert replace(DESIGN, warning=math.inf).warning_trials == DESIGN.warning_trials
