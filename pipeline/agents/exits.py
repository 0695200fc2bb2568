"""How an attempt ended, as every adapter reports it: one closed set."""

from enum import StrEnum


class ExitClass(StrEnum):
    SUBMITTED = "submitted"  # the agent finished and its patch is graded
    BUDGET_EXHAUSTED = "budget_exhausted"  # a turn or cost limit stopped it
    TIMEOUT = "timeout"  # killed at the attempt's time limit
    AGENT_ERROR = "agent_error"  # the agent failed (a crash, a refusal)
    API_ERROR = "api_error"  # the model API failed (after the retries for transient errors)
    SKIPPED = "skipped"  # never launched: the daily cost cap, no replayed trial
