"""Statistics over arrays, no Dagster: what candlebench says about a subject's pass rate.

- `scores`: daily paired z-scores against a self-started, lagged per-task baseline.
- `cusum`, `monitor`, `design`: the online detector (two-sided CUSUM, one-day rule, warning
  line that buys extra trials, baseline restart) and its run lengths.
- `confirmation`: the rule that confirms or clears an alarm from its extra trials.
- `segmentation`, `changepoints`: offline PELT over a cost protocol, boundaries described.
- `significance`, `windows`: paired tests, McNemar, BH, MDE; window tests and verdicts.
- `harness`: days to blame on the harness.
- `counts`, `detect`, `tables`: checked input, the whole-warehouse pass, the tables it fills.
"""
