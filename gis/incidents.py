"""Incident closed loop (闭环): the workflow state machine and SLA colour warnings (分色预警).

上报 reported → 受理 accepted → 派单 dispatched → 处置 in_progress → 反馈 resolved →
评价 evaluated → 结案 closed; also rejected / duplicate, and reopened when the resident is
dissatisfied. Pure: the current time is always an argument, so tests can move the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from gis.errors import GisError

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class Status(StrEnum):
    """Workflow states; the values are stored in the database."""

    REPORTED = "reported"
    ACCEPTED = "accepted"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    EVALUATED = "evaluated"
    CLOSED = "closed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    REOPENED = "reopened"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.REPORTED: frozenset({Status.ACCEPTED, Status.REJECTED, Status.DUPLICATE}),
    Status.ACCEPTED: frozenset({Status.DISPATCHED, Status.REJECTED, Status.DUPLICATE}),
    Status.DISPATCHED: frozenset({Status.IN_PROGRESS, Status.DISPATCHED}),  # re-dispatch
    Status.IN_PROGRESS: frozenset({Status.RESOLVED, Status.DISPATCHED}),  # escalate
    Status.RESOLVED: frozenset({Status.EVALUATED, Status.REOPENED, Status.CLOSED}),
    Status.EVALUATED: frozenset({Status.CLOSED, Status.REOPENED}),
    Status.REOPENED: frozenset({Status.DISPATCHED, Status.IN_PROGRESS}),
    Status.CLOSED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.DUPLICATE: frozenset(),
}
TERMINAL: frozenset[Status] = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)


class IllegalTransitionError(GisError):
    """A workflow step that the state machine does not allow from the current state."""

    def __init__(self, current: Status, target: Status) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final state)"
        super().__init__(f"cannot go from {current} to {target}; allowed: {allowed}")
        self.current = current
        self.target = target


def next_status(current: str, target: str) -> Status:
    """Check one transition and return the new status, or raise IllegalTransitionError."""
    try:
        cur, tgt = Status(current), Status(target)
    except ValueError as exc:
        raise GisError(f"unknown status: {exc}") from None
    if tgt not in TRANSITIONS[cur]:
        raise IllegalTransitionError(cur, tgt)
    return tgt


class Colour(StrEnum):
    """Warning colours, least to most urgent: 蓝 blue, 黄 yellow, 橙 orange, 红 red."""

    BLUE = "blue"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"


_ORDER = [Colour.BLUE, Colour.YELLOW, Colour.ORANGE, Colour.RED]


@dataclass(frozen=True)
class Deadlines:
    """Per-category service promises: respond (受理) in 5 min, on site in 30 min, resolved the
    same day ("今日事今日毕", i.e. by 24:00 local time of the reporting day)."""

    respond: timedelta = timedelta(minutes=5)
    on_site: timedelta = timedelta(minutes=30)
    resolve_same_day: bool = True
    resolve: timedelta = timedelta(hours=24)

    def resolve_by(self, reported_at: datetime) -> datetime:
        """When the matter must be resolved."""
        if not self.resolve_same_day:
            return reported_at + self.resolve
        local = reported_at.astimezone(LOCAL_TZ)
        midnight = datetime.combine(local.date() + timedelta(days=1), time(0), LOCAL_TZ)
        # A report late in the evening still gets at least the "resolve" window's half.
        return max(midnight, reported_at + self.resolve / 2)


@dataclass(frozen=True)
class SlaState:
    """Which deadline applies now, how late the incident is, and its colour."""

    deadline: datetime | None
    stage: str
    overdue: timedelta
    colour: Colour


def sla_state(
    status: str,
    reported_at: datetime,
    now: datetime,
    *,
    severity: int = 1,
    deadlines: Deadlines | None = None,
) -> SlaState:
    """The SLA position of an incident at ``now``.

    The colour starts from the severity (1 blue … 4 red) and rises one step when the
    current deadline is passed, a second step when it is passed by more than its own length
    again; finished incidents are blue.
    """
    if reported_at.tzinfo is None or now.tzinfo is None:
        raise GisError("reported_at and now must be timezone-aware")
    d = deadlines or Deadlines()
    st = Status(status)
    base = max(1, min(4, int(severity))) - 1
    if st in TERMINAL or st in (Status.RESOLVED, Status.EVALUATED):
        return SlaState(None, "done", timedelta(0), Colour.BLUE)
    if st == Status.REPORTED:
        stage, window = "respond", d.respond
        deadline = reported_at + window
    elif st in (Status.ACCEPTED, Status.DISPATCHED):
        stage, window = "on_site", d.on_site
        deadline = reported_at + window
    else:
        stage = "resolve"
        deadline = d.resolve_by(reported_at)
        window = deadline - reported_at
    late = now - deadline
    steps = 0 if late <= timedelta(0) else (1 if late <= window else 2)
    return SlaState(deadline, stage, max(late, timedelta(0)), _ORDER[min(3, base + steps)])
