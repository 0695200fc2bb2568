"""The daily harness controls: the gold patch must resolve and the empty patch must not.

A task whose controls break on a day is left out of that day's candles; a day where many break
is a harness suspect, never a model's shift. A harness error on the empty patch is no evidence
that the empty patch fails, so it breaks the control too.
"""

from __future__ import annotations

from pipeline.grading.artifacts import Verdict
from pipeline.grading.outcomes import Outcome

CONTROLS = ("gold", "empty")


def control_holds(control: str, verdict: Verdict) -> bool:
    """Gold resolved; empty graded and not resolved."""
    if control == "gold":
        return verdict.resolved
    return not verdict.resolved and verdict.outcome != Outcome.HARNESS_ERROR
