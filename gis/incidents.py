"""Incident closed loop (闭环): the workflow state machine and SLA colour warnings (分色预警).

上报 reported → 受理 accepted → 派单 dispatched → 处置 in_progress → 反馈 resolved →
评价 evaluated → 结案 closed; also rejected / duplicate, and reopened when the resident is
dissatisfied. Tiered handling (分级处置, "小事不出格、大事不出网"): a matter starts at the level its
category and severity call for and climbs grid → community → street as its deadlines pass.
Pure: the current time is always an argument, so tests can move the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from gis.errors import GisError

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


# Where reports come from: 巡查 patrol, 热线 hotline, 12345 city hotline, 公众号 WeChat,
# 随手拍 public snapshot, Open311 clients.
SOURCES = ("巡查", "热线", "12345", "公众号", "随手拍", "Open311")


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


# When a status is first reached, this column of the incident gets the time.
STAMPS: dict[Status, str] = {
    Status.ACCEPTED: "accepted_at",
    Status.DISPATCHED: "dispatched_at",
    Status.IN_PROGRESS: "started_at",
    Status.RESOLVED: "resolved_at",
    Status.EVALUATED: "evaluated_at",
    Status.CLOSED: "closed_at",
    Status.REJECTED: "closed_at",
    Status.DUPLICATE: "closed_at",
}
# Satisfaction (1–5) at or below this reopens the incident (群众评单 "不满意").
DISSATISFIED_MAX = 2
# A resolved incident the resident does not evaluate within this time is closed by the tick.
AUTO_CLOSE_AFTER = timedelta(hours=72)

# Handling levels (分级处置), lowest first; a department (职能部门) sits beside the ladder.
HANDLING_LEVELS = ("grid", "community", "street", "department")
LADDER = ("grid", "community", "street")
ESCALATION_STATUSES = frozenset(
    {Status.ACCEPTED, Status.DISPATCHED, Status.IN_PROGRESS, Status.REOPENED}
)


def initial_level(category_level: str, severity: int) -> str:
    """Where a matter is handled first: its category's level, raised by severity.

    Severity 3 goes at least to the community, severity 4 to the street office; a
    department matter stays with the department whatever its severity.
    """
    if category_level not in HANDLING_LEVELS:
        raise GisError(f"unknown handling level {category_level!r}")
    if category_level == "department":
        return "department"
    need = 0 if severity <= 2 else (1 if severity == 3 else 2)
    return LADDER[max(LADDER.index(category_level), need)]


def escalated_level(start: str, late_steps: int) -> str:
    """The level after ``late_steps`` missed deadlines: one rung up per step, at most the
    street office; a department's overdue matter goes to the street office."""
    if late_steps <= 0:
        return start
    if start == "department":
        return "street"
    return LADDER[min(len(LADDER) - 1, LADDER.index(start) + late_steps)]


def late_steps(state: SlaState) -> int:
    """0 when on time, 1 when the current deadline is passed, 2 when passed by its length again."""
    if state.deadline is None or state.overdue <= timedelta(0):
        return 0
    window = state.window
    return 1 if state.overdue <= window else 2


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
    window: timedelta = timedelta(0)


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
    again; finished incidents are blue. For a reopened incident pass the time it was
    reopened as ``reported_at``: its clock starts again.
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
    return SlaState(deadline, stage, max(late, timedelta(0)), _ORDER[min(3, base + steps)], window)
