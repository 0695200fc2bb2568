"""The attribution rule on small synthetic worlds: each lane, the order between them, the window,
and a shift that moved alone."""

from __future__ import annotations

import pytest

from pipeline.stats.attribution import NEAR_DAYS, Evidence, Lane, Move, Release, Suspect, attribute

LANES = {
    "opus-latest": Lane("anthropic", "opus", "claude-code", "latest"),
    "opus-frozen": Lane("anthropic", "opus", "claude-code", "frozen", "2.1.300"),
    "sonnet-latest": Lane("anthropic", "sonnet", "claude-code", "latest"),
    "gpt-latest": Lane("openai", "gpt", "codex", "latest"),
    "gpt-frozen": Lane("openai", "gpt", "codex", "frozen", "0.17.0"),
}
SEEN = dict.fromkeys(LANES, ("2026-01-01", "2026-03-31"))
CLI_RELEASE = Release("opus-latest", "2026-02-10", "cli", "claude-code 2.1.300", "claude-code 2.1.310")


def down(subject: str, day: str, source: str = "changepoint") -> Move:
    return Move(subject, day, -1, source)


def world(*moves: Move, suspects=(), releases=(), observed=None, lanes=None) -> Evidence:
    return Evidence(lanes or LANES, moves, suspects, releases, SEEN if observed is None else observed)


def test_only_the_latest_lane_moved_is_the_agent_harness_naming_the_release():
    shift = down("opus-latest", "2026-02-10")
    found = attribute(shift, world(shift, releases=[CLI_RELEASE]))
    assert found.label == "agent harness"
    assert "opus-frozen" in found.reason and "claude-code 2.1.300" in found.reason
    assert "CLI release claude-code 2.1.300 -> claude-code 2.1.310 on 2026-02-10" in found.reason
    # no release nearby: still the harness (the frozen lane did not move), and it says so
    assert "no claude-code release" in attribute(shift, world(shift)).reason


def test_both_lanes_moved_is_the_model():
    confirmed = down("opus-latest", "2026-02-13", "confirmed")  # its onset: its own changepoint
    moves = (confirmed, down("opus-latest", "2026-02-10"), down("opus-frozen", "2026-02-11"))
    found = attribute(confirmed, world(*moves))
    assert found.label == "model"
    assert "opus-frozen (changepoint 2026-02-11)" in found.reason and "silent" in found.reason
    change = Release("opus-frozen", "2026-02-11", "model", "opus-4.6", "opus-4.7")
    mine = Release("opus-latest", "2026-02-11", "model", "opus-4.6", "opus-4.7")
    assert (
        "model change opus-4.6 -> opus-4.7"
        in attribute(confirmed, world(*moves, releases=[change, mine])).reason
    )
    # the frozen lane's own shift says the same
    assert attribute(moves[2], world(*moves)).label == "model"


def test_failed_controls_are_the_evaluation_harness_whatever_the_lanes_say():
    moves = (down("opus-latest", "2026-02-10"), down("opus-frozen", "2026-02-10"))
    bad = Suspect("2026-02-09", True, 0.4)
    found = attribute(moves[0], world(*moves, suspects=[bad], releases=[CLI_RELEASE]))
    assert found.label == "evaluation harness"
    assert "controls failed on 40% of tasks on 2026-02-09" in found.reason
    # a suspect day flagged only because subjects moved together is no controls failure
    assert attribute(moves[0], world(*moves, suspects=[Suspect("2026-02-09", False)])).label == "model"


def test_every_vendor_moving_together_is_the_evaluation_harness():
    moves = tuple(down(name, "2026-02-10") for name in LANES)
    found = attribute(moves[0], world(*moves))
    assert found.label == "evaluation harness" and "2 vendors" in found.reason


def test_several_models_of_one_vendor_moving_is_the_provider():
    moves = (
        down("opus-latest", "2026-02-10"),
        down("opus-frozen", "2026-02-11"),
        down("sonnet-latest", "2026-02-09"),
    )
    found = attribute(moves[0], world(*moves))
    assert found.label == "provider" and "anthropic's models opus, sonnet" in found.reason


def test_a_cli_release_moving_every_latest_lane_is_the_agent_harness_not_the_provider():
    moves = (down("opus-latest", "2026-02-10"), down("sonnet-latest", "2026-02-10"))
    found = attribute(moves[1], world(*moves))  # sonnet has no frozen lane; opus's says it
    assert found.label == "agent harness" and "opus-frozen" in found.reason


def test_a_lane_that_moved_alone_is_the_subject():
    frozen = down("gpt-frozen", "2026-02-10")  # its latest lane did not move: no release explains it
    found = attribute(frozen, world(frozen))
    assert found.label == "subject" and "gpt-latest" in found.reason and "did not" in found.reason
    solo = Move("mine", "2026-02-10", 1, "confirmed")
    found = attribute(solo, world(solo, lanes={"mine": Lane()}, observed={}))
    assert found.label == "subject"
    assert found.reason == f"no other subject moved up within {NEAR_DAYS} days; no release nearby"
    other = Move("theirs", "2026-02-11", 1, "changepoint")  # vendors unknown: no proof of two vendors
    found = attribute(solo, world(solo, other, lanes={"mine": Lane(), "theirs": Lane()}, observed={}))
    assert found.label == "subject" and "theirs (changepoint 2026-02-11) did" in found.reason


def test_without_another_lane_the_subjects_own_release_decides():
    shift = down("opus-latest", "2026-02-10")
    gone = {**SEEN, "opus-frozen": ("2026-01-01", "2026-02-01")}  # not observed then: cannot speak
    found = attribute(shift, world(shift, releases=[CLI_RELEASE], observed=gone))
    assert found.label == "agent harness" and "no other lane of opus" in found.reason
    model = Release("opus-latest", "2026-02-09", "model", "opus-4.6", "opus-4.7")
    assert attribute(shift, world(shift, releases=[model], observed=gone)).label == "model"
    both = attribute(shift, world(shift, releases=[CLI_RELEASE, model], observed=gone))
    assert both.label == "subject" and "CLI and model together" in both.reason


@pytest.mark.parametrize(
    ("other", "label"),
    [
        (down("opus-frozen", "2026-02-13"), "model"),  # 3 days apart: the same event
        (down("opus-frozen", "2026-02-14"), "agent harness"),  # 4 days: another one
        (Move("opus-frozen", "2026-02-10", 1, "changepoint"), "agent harness"),  # the other way
        (down("opus-frozen", "2026-02-16", "alarm"), "agent harness"),  # an alarm without an onset near
    ],
)
def test_the_window_and_the_direction(other, label):
    shift = down("opus-latest", "2026-02-10")
    assert attribute(shift, world(shift, other)).label == label


def test_an_alarms_onset_is_its_own_changepoint():
    shift = down("opus-latest", "2026-02-10")
    late = (down("opus-frozen", "2026-02-16", "alarm"), down("opus-frozen", "2026-02-12"))
    assert attribute(shift, world(shift, *late)).label == "model"


def test_a_lane_without_an_alarm_yet_moved_when_its_own_z_scores_say_so():
    """On the day the first lane's alert is confirmed the other lane often has no alarm yet."""
    confirmed = down("opus-latest", "2026-02-12", "confirmed")
    moves = (confirmed, down("opus-latest", "2026-02-10"))
    days = ("2026-02-10", "2026-02-11", "2026-02-12")

    def scored(*z: float) -> Evidence:
        return Evidence(LANES, moves, (), (), SEEN, {"opus-frozen": dict(zip(days, z, strict=True))})

    found = attribute(confirmed, scored(-1.5, -1.6, -1.4))
    assert found.label == "model" and "opus-frozen (z -2.6 over 3 days)" in found.reason
    assert attribute(confirmed, scored(-0.4, 0.3, -0.9)).label == "agent harness"
    assert attribute(confirmed, scored(1.5, 1.6, 1.4)).label == "agent harness"  # the other way


def test_the_provider_needs_another_model_moved_on_every_lane():
    lanes = {**LANES, "sonnet-frozen": Lane("anthropic", "sonnet", "claude-code", "frozen", "2.1.300")}
    seen = dict.fromkeys(lanes, ("2026-01-01", "2026-03-31"))
    moves = (
        down("opus-latest", "2026-02-10"),
        down("opus-frozen", "2026-02-11"),
        down("sonnet-latest", "2026-02-09"),
    )
    assert attribute(moves[0], Evidence(lanes, moves, observed=seen)).label == "model"  # sonnet: its CLI
    moves += (down("sonnet-frozen", "2026-02-10"),)
    assert attribute(moves[0], Evidence(lanes, moves, observed=seen)).label == "provider"
