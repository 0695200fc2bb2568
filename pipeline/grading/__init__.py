"""Grading, SWE-bench's and SWE-Bench-Pro's way: patch safety and the apply rules (`patches`),
undoing a patch's edits to the test runner (`tamper`, reading config files with `runner_config`),
test runners (`runners`) and the results channel pytest reports through (`channel`,
`channel_supervisor`), the outcome rule as a pure function (`outcomes`), the artifact folders
that are also the cache (`artifacts`), the grader that ties them (`grader`, many at once in
`batch`), the daily controls' rule (`controls`) and both harnesses' report formats (`reports`)."""

from pipeline.grading.artifacts import GRADER_VERSION, Verdict
from pipeline.grading.grader import Grader
from pipeline.grading.outcomes import COUNTED_SQL, GRADED, Outcome
from pipeline.grading.patches import run_git

__all__ = ["COUNTED_SQL", "GRADED", "GRADER_VERSION", "Grader", "Outcome", "Verdict", "run_git"]
