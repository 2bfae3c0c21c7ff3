"""Workflow transitions (legal and illegal) and SLA colours on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gis.errors import GisError
from gis.incidents import (
    TERMINAL,
    TRANSITIONS,
    Colour,
    Deadlines,
    IllegalTransitionError,
    Status,
    next_status,
    sla_state,
)

HAPPY_PATH = [
    "reported",
    "accepted",
    "dispatched",
    "in_progress",
    "resolved",
    "evaluated",
    "closed",
]


def test_the_happy_path_walks_to_closed() -> None:
    state = HAPPY_PATH[0]
    for target in HAPPY_PATH[1:]:
        state = next_status(state, target)
    assert state is Status.CLOSED


def test_every_illegal_transition_is_refused_with_the_allowed_ones() -> None:
    refused = 0
    for current in Status:
        for target in Status:
            if target in TRANSITIONS[current]:
                assert next_status(current, target) is target
            else:
                with pytest.raises(IllegalTransitionError, match=f"cannot go from {current}"):
                    next_status(current, target)
                refused += 1
    assert refused > 70  # most pairs are illegal


def test_dissatisfied_resident_reopens_and_terminal_states_are_final() -> None:
    assert next_status("evaluated", "reopened") is Status.REOPENED
    assert next_status("reopened", "dispatched") is Status.DISPATCHED
    assert TERMINAL == {Status.CLOSED, Status.REJECTED, Status.DUPLICATE}
    with pytest.raises(IllegalTransitionError, match=r"none \(final state\)"):
        next_status("closed", "reopened")
    with pytest.raises(GisError, match="unknown status"):
        next_status("reported", "teleported")


T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing


@pytest.mark.parametrize(
    ("status", "minutes", "severity", "stage", "colour"),
    [
        ("reported", 4, 1, "respond", Colour.BLUE),
        ("reported", 6, 1, "respond", Colour.YELLOW),  # 1 min late
        ("reported", 11, 1, "respond", Colour.ORANGE),  # later than 2× the window
        ("reported", 11, 3, "respond", Colour.RED),
        ("dispatched", 29, 1, "on_site", Colour.BLUE),
        ("dispatched", 31, 2, "on_site", Colour.ORANGE),
        ("in_progress", 14 * 60, 1, "resolve", Colour.BLUE),  # 23:00 local, same day
        ("in_progress", 15 * 60 + 1, 1, "resolve", Colour.YELLOW),  # past midnight
        ("resolved", 10_000, 4, "done", Colour.BLUE),
    ],
)
def test_sla_colours_move_with_the_clock(
    status: str, minutes: int, severity: int, stage: str, colour: Colour
) -> None:
    state = sla_state(status, T0, T0 + timedelta(minutes=minutes), severity=severity)
    assert (state.stage, state.colour) == (stage, colour)


def test_same_day_deadline_is_local_midnight() -> None:
    deadline = Deadlines().resolve_by(T0)
    assert deadline == datetime(2026, 11, 2, 16, 0, tzinfo=UTC)  # 24:00 Beijing time


def test_naive_times_are_refused() -> None:
    with pytest.raises(GisError, match="timezone-aware"):
        sla_state("reported", datetime(2026, 1, 1), T0)
