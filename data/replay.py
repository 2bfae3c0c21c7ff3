"""Replay the demo year of incidents through the closed loop (闭环), deterministically.

Each report is accepted, dispatched by the routing rules, worked on, resolved, evaluated by
the resident and closed, with the delays, rejections, duplicates, escalations and reopenings
a street office sees. Every step is checked by the real state machine
(:func:`gis.incidents.next_status`) and escalations follow the real SLA rules
(:func:`gis.incidents.escalated_level` on the category's deadlines), so the KPIs computed on
the result exercise the same code as live data. Pure: frames in, frames out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from gis.incidents import (
    AUTO_CLOSE_AFTER,
    DISSATISFIED_MAX,
    Status,
    escalated_level,
    initial_level,
    next_status,
)
from gis.taxonomy import Taxonomy

log = logging.getLogger(__name__)

DISPATCHER = "调度员"
RESIDENT = "居民"
SYSTEM = "system"
EVENT_COLUMNS = [
    "incident_id",
    "at",
    "actor",
    "kind",
    "from_status",
    "to_status",
    "handling_level",
    "note",
]
STATE_COLUMNS = [
    "id",
    "status",
    "initial_level",
    "handling_level",
    "assignee_kind",
    "assignee_staff_id",
    "assignee_grid_id",
    "assignee_name",
    "accepted_at",
    "dispatched_at",
    "started_at",
    "resolved_at",
    "evaluated_at",
    "closed_at",
    "reopened_at",
    "satisfaction",
    "duplicate_of",
    "reopen_count",
    "version",
]


@dataclass(frozen=True)
class Handlers:
    """Who works at each level: grid workers by grid id, grid names by id."""

    worker_by_grid: dict[int, tuple[int, str]]
    grid_names: dict[int, str]


def _minutes(rng: np.random.Generator, median: float, sigma: float, n: int) -> np.ndarray:
    return rng.lognormal(np.log(median), sigma, n)


def replay(
    incidents: pd.DataFrame,
    taxonomy: Taxonomy,
    handlers: Handlers,
    *,
    until: datetime,
    seed: int = 20261123,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the loop for ``incidents`` (columns id, category_code, severity, reported_at,
    micro_grid_id, grid_id, community_id, street_id) up to ``until``.

    Returns ``(events, states)``: the audited steps and each incident's final columns.
    Steps later than ``until`` do not happen yet, so recent incidents stay open.
    """
    n = len(incidents)
    rng = np.random.default_rng(seed)
    inc = incidents.sort_values(["reported_at", "id"]).reset_index(drop=True)
    reported = pd.to_datetime(inc["reported_at"], utc=True)
    # duplicates: an earlier open report of the same category in the same micro grid, < 6 h
    keyed = inc.assign(t=reported).sort_values(["micro_grid_id", "category_code", "t"])
    prev_id = keyed.groupby(["micro_grid_id", "category_code"])["id"].shift()
    prev_t = keyed.groupby(["micro_grid_id", "category_code"])["t"].shift()
    close = (keyed["t"] - prev_t) < pd.Timedelta(hours=6)
    dup_of = pd.Series(np.where(close, prev_id, np.nan), index=keyed.index).reindex(inc.index)

    u = rng.random((n, 6))
    accept = _minutes(rng, 3.0, 0.7, n)
    dispatch = _minutes(rng, 2.0, 0.6, n)
    arrive = _minutes(rng, 12.0, 0.5, n)
    work = _minutes(rng, 110.0, 0.9, n)
    evaluate_after = _minutes(rng, 300.0, 1.2, n)
    scores = rng.choice([5, 4, 3, 2, 1], size=n, p=[0.62, 0.24, 0.07, 0.04, 0.03])
    rescores = rng.choice([5, 4, 3], size=n, p=[0.5, 0.4, 0.1])

    events: list[tuple] = []
    states: list[tuple] = []
    rows = inc.to_dict("records")
    times = [ts.to_pydatetime() for ts in reported]
    dup_list = dup_of.tolist()
    root: dict[int, int] = {}  # a duplicate's original, never itself a duplicate
    for i in range(n):
        row = rows[i]
        iid = int(row["id"])
        cat = taxonomy.get(str(row["category_code"]))
        t_rep = times[i]
        life = _Life(iid, events, until)
        state = life.state
        t = t_rep + timedelta(minutes=float(accept[i]))
        if not np.isnan(dup_list[i]) and u[i, 0] < 0.6:
            original = root.get(int(dup_list[i]), int(dup_list[i]))
            if life.go(Status.DUPLICATE, t, DISPATCHER, "与附近同类事件重复，已合并"):
                state.update(duplicate_of=original, closed_at=t)
                root[iid] = original
            states.append(life.row())
            continue
        if u[i, 1] < 0.025:
            if life.go(Status.REJECTED, t, DISPATCHER, "不属于本辖区管理范围"):
                state["closed_at"] = t
            states.append(life.row())
            continue
        level = initial_level(cat.level, int(row["severity"]))
        state["initial_level"] = state["handling_level"] = level
        if not life.go(Status.ACCEPTED, t, DISPATCHER):
            state["initial_level"] = state["handling_level"] = None
            states.append(life.row())
            continue
        state["accepted_at"] = t
        t = t + timedelta(minutes=float(dispatch[i]))
        _assign(state, row, level, cat.department, handlers)
        if not life.go(Status.DISPATCHED, t, DISPATCHER, f"派单至{state['assignee_name']}"):
            states.append(life.row())
            continue
        state["dispatched_at"] = t
        # on site: late arrivals pass the on-site deadline and escalate like the SLA tick does
        slow = 1.0 if u[i, 2] > 0.1 else 3.5
        t_site = t + timedelta(minutes=float(arrive[i]) * slow)
        deadline = t_rep + cat.deadlines.on_site
        window = cat.deadlines.on_site
        for k, due in ((1, deadline), (2, deadline + window)):
            when = max(due, t)  # the tick escalates what is still waiting for someone on site
            if t_site > when and when <= until:
                target = escalated_level(level, k)
                if target != state["handling_level"]:
                    before = state["handling_level"]
                    _assign(state, row, target, cat.department, handlers)
                    life.add(
                        when,
                        SYSTEM,
                        "escalation",
                        state["status"],
                        state["status"],
                        target,
                        f"on_site deadline passed: {before} → {target}",
                    )
                    life.version += 1
        worker = state["assignee_name"] or DISPATCHER
        if not life.go(Status.IN_PROGRESS, t_site, worker, "已到场处置"):
            states.append(life.row())
            continue
        state["started_at"] = t_site
        dept_factor = 6.0 if state["assignee_kind"] == "department" else 1.0
        t_done = t_site + timedelta(minutes=float(work[i]) * dept_factor)
        if not life.go(Status.RESOLVED, t_done, worker, "已处置完毕"):
            states.append(life.row())
            continue
        state["resolved_at"] = t_done
        evaluates = u[i, 3] < 0.72
        t_eval = t_done + timedelta(minutes=float(evaluate_after[i]))
        if (
            evaluates
            and t_eval - t_done < AUTO_CLOSE_AFTER
            and life.go(Status.EVALUATED, t_eval, RESIDENT, f"满意度 {scores[i]}")
        ):
            state.update(evaluated_at=t_eval, satisfaction=int(scores[i]))
            if scores[i] <= DISSATISFIED_MAX:
                life.go(Status.REOPENED, t_eval, SYSTEM, "群众不满意，重新处置")
                state.update(
                    reopened_at=t_eval,
                    resolved_at=None,
                    evaluated_at=None,
                    reopen_count=1,
                )
                t2 = t_eval + timedelta(minutes=float(dispatch[i]) + 10)
                if life.go(Status.DISPATCHED, t2, DISPATCHER, "重新派单"):
                    t3 = t2 + timedelta(minutes=float(arrive[i]))
                    if life.go(Status.IN_PROGRESS, t3, worker):
                        t4 = t3 + timedelta(minutes=float(work[i]))
                        if life.go(Status.RESOLVED, t4, worker, "二次处置完毕"):
                            state["resolved_at"] = t4
                            t5 = t4 + timedelta(hours=6)
                            if life.go(Status.EVALUATED, t5, RESIDENT, f"满意度 {rescores[i]}"):
                                state.update(evaluated_at=t5, satisfaction=int(rescores[i]))
                                if life.go(Status.CLOSED, t5 + timedelta(minutes=30), DISPATCHER):
                                    state["closed_at"] = t5 + timedelta(minutes=30)
            elif life.go(Status.CLOSED, t_eval + timedelta(minutes=30), DISPATCHER, "结案"):
                state["closed_at"] = t_eval + timedelta(minutes=30)
        elif not evaluates or t_eval - t_done >= AUTO_CLOSE_AFTER:
            t_close = t_done + AUTO_CLOSE_AFTER
            if life.go(Status.CLOSED, t_close, SYSTEM, "72小时未评价，自动结案"):
                state["closed_at"] = t_close
        states.append(life.row())

    ev = pd.DataFrame(events, columns=EVENT_COLUMNS)
    st = pd.DataFrame(states, columns=STATE_COLUMNS)
    log.info("replayed %d incidents: %d events", n, len(ev))
    return ev, st


class _Life:
    """One incident's path: its state, audited steps (none after ``until``) and version."""

    def __init__(self, incident_id: int, sink: list[tuple], until: datetime) -> None:
        self.incident_id = incident_id
        self.sink = sink
        self.until = until
        self.version = 1
        self.state: dict = dict.fromkeys(STATE_COLUMNS)
        self.state.update(id=incident_id, status=Status.REPORTED.value, reopen_count=0)

    def add(
        self,
        at: datetime,
        actor: str,
        kind: str,
        from_status: str | None,
        to_status: str | None,
        level: str | None,
        note: str | None,
    ) -> None:
        if at <= self.until:
            self.sink.append(
                (self.incident_id, at, actor, kind, from_status, to_status, level, note)
            )

    def go(self, target: Status, at: datetime, actor: str, note: str | None = None) -> bool:
        """Take one step through the real state machine, unless it lies after ``until``."""
        if at > self.until:
            return False
        prev = self.state["status"]
        self.state["status"] = next_status(prev, target).value
        self.add(at, actor, "transition", prev, target.value, self.state["handling_level"], note)
        self.version += 1
        return True

    def row(self) -> tuple:
        self.state["version"] = self.version
        return tuple(self.state[c] for c in STATE_COLUMNS)


def _assign(state: dict, row: dict, level: str, department: str | None, handlers: Handlers) -> None:
    """The routing rules of :func:`gis.db.queries.workflow.route`, on in-memory tables."""
    state["handling_level"] = level
    state["assignee_staff_id"] = state["assignee_grid_id"] = None
    if level == "grid":
        for gid in (row["micro_grid_id"], row["grid_id"]):
            if pd.notna(gid) and int(gid) in handlers.worker_by_grid:
                staff_id, name = handlers.worker_by_grid[int(gid)]
                state.update(assignee_kind="worker", assignee_staff_id=staff_id, assignee_name=name)
                return
        level = "community"
    if level == "department":
        state.update(assignee_kind="department", assignee_name=department or "职能部门")
        return
    gid = row["community_id"] if level == "community" else row["street_id"]
    if pd.isna(gid):
        gid, level = row["street_id"], "street"
    gid = None if pd.isna(gid) else int(gid)
    state.update(
        assignee_kind=level,
        assignee_grid_id=gid,
        assignee_name=handlers.grid_names.get(gid) if gid is not None else None,
    )
