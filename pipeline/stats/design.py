"""The online detector's settings, in one place; benchmarks/calibration.py shows what they deliver.

`MonitorDesign()`'s field defaults are the detector as first calibrated (one noise model, 0.49
false alarms a year there, about 4x that with autocorrelated day effects): the benchmarks'
`current`. `DESIGN` is the one calibrated over the grid of worlds, and what the pipeline runs;
`pipeline.stats.confirmation.RULE` is the confirmation rule calibrated with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class MonitorDesign:
    """Online detector settings."""

    k: float = 0.75  # CUSUM reference value in z units: best against shifts near 2k = 1.5 SE
    # Decision interval. With iid N(0, 1) days the Markov chain gives ARL 2548 days a side (0.29
    # false alarms a year); the lagged baseline makes neighbouring z's share its error, which
    # the calibration simulation shows costs ~1.7x: ~0.45-0.49 a year, ARL ~1500 days a side.
    h: float = 4.2
    c: float = 4.0  # one-day rule: alarm when |z| > c
    clip: float | None = None  # the CUSUM adds z clipped to +-clip (None: c); keep clip - k < h
    burn_in: int = 14  # days of own history before the first z-score
    restart_burn_in: int = 7  # days of new history after an alarm before scoring resumes
    window: int = 365  # most days in the baseline
    variance_window: int = 56  # latest baseline days whose residuals estimate tau^2
    lag: int = 5  # the newest days stay out of the baseline, so a fresh shift cannot leak in
    dependence_lags: int = 0  # lags of day-to-day autocovariance added to the CUSUM's variance
    dependence_window: int = 0  # days of scored history they are estimated from (0: the variance window)
    horizon: int = 1  # the CUSUM's variance counts the baseline's error once per day of such a sum
    tau_margin: float = 0.0  # ... and this many standard errors of the tau^2 estimate
    warning: float = math.inf  # warning line: above it, the next day takes `warning_trials` more
    warning_trials: int = 0  # extra trials per task on the day after a warning
    # A subject's first `onboarding_days` days take `onboarding_trials` more trials per task: the
    # baseline every later day is judged against (and its day-to-day variance) is known sooner.
    onboarding_days: int = 0
    onboarding_trials: int = 0


# Robust to the grid of worlds: the CUSUM's variance widened for day-to-day dependence (own
# history), for the baseline error every day of a sum shares, and for the tau^2 estimate's
# error; a one-day rule at 5 (single bad days are common when day effects are heavy-tailed)
# with sums clipped at 3.5 so one day alone never trips them; a warning line at 1.5 that buys 9
# more trials per task the next day (about 4% of stable days); a subject's first 30 days at twice
# the trials (a one-time cost, +19% over its first year), without which a shift in its first
# months is found late: the variance widening is widest while the baseline is young. The denser
# early days cost false alarms later (their baseline is weighted towards them), which h = 3.55
# (3.4 without onboarding) buys back.
DESIGN = MonitorDesign(
    h=3.55,
    c=5.0,
    clip=3.5,
    dependence_lags=7,
    dependence_window=365,
    horizon=8,
    tau_margin=1.0,
    warning=1.5,
    warning_trials=9,
    onboarding_days=30,
    onboarding_trials=3,
)
DEFAULT_DESIGN = DESIGN
