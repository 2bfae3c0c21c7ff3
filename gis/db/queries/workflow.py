"""The incident closed loop in the database: audited transitions, routing, SLA tick, duplicates.

Every step runs in the caller's transaction, locks the incident row (``FOR UPDATE``) and
writes one ``incident_events`` row per change, so the audit trail and the incident can never
disagree. The rules themselves (which step is legal, who handles what, when to escalate) are
pure functions in :mod:`gis.incidents`; this module only reads and writes.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from gis.errors import GisError, NotFoundError, StaleVersionError
from gis.incidents import (
    AUTO_CLOSE_AFTER,
    DISSATISFIED_MAX,
    ESCALATION_STATUSES,
    LADDER,
    STAMPS,
    Status,
    escalated_level,
    initial_level,
    late_steps,
    next_status,
    sla_state,
)
from gis.taxonomy import Category, Taxonomy

log = logging.getLogger(__name__)

SYSTEM = "system"

_ROW = """
    SELECT id, status, version, severity, category, category_code, reported_at, reopened_at,
           micro_grid_id, grid_id, community_id, street_id, initial_level, handling_level,
           assignee_kind, assignee_staff_id, assignee_grid_id, assignee_name, colour,
           duplicate_of, satisfaction
    FROM incidents
"""


@dataclass(frozen=True)
class Assignee:
    """Who an incident is dispatched to: a grid worker (staff id), the community or street
    office (grid id), or a department (its name)."""

    kind: str
    staff_id: int | None = None
    grid_id: int | None = None
    name: str | None = None


def _lock(session: Session, incident_id: int) -> dict[str, Any]:
    row = (
        session.execute(text(_ROW + " WHERE id = :id FOR UPDATE"), {"id": incident_id})
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFoundError(f"incident {incident_id} does not exist")
    return dict(row)


def category_of(row: dict[str, Any], taxonomy: Taxonomy) -> Category:
    """The incident's category (by code, or by name for rows stored before the taxonomy)."""
    return taxonomy.get(row["category_code"] or row["category"])


def _clock_start(row: dict[str, Any]) -> datetime:
    """A reopened incident's deadlines count from its reopening."""
    if row["status"] == Status.REOPENED and row["reopened_at"] is not None:
        return row["reopened_at"]
    return row["reported_at"]


def route(session: Session, row: dict[str, Any], level: str, category: Category) -> Assignee:
    """The default handler at ``level`` (分级处置): the micro grid's grid worker (网格员), else
    the 三级 grid's leader (网格长), else the community; the community or street office; or
    the category's department."""
    if level == "grid":
        for grid_id in (row["micro_grid_id"], row["grid_id"]):
            if grid_id is None:
                continue
            staff = session.execute(
                text(
                    """
                    SELECT s.id, s.name FROM staff s JOIN staff_grids sg ON sg.staff_id = s.id
                    WHERE sg.grid_id = :g ORDER BY (s.role = '网格员') DESC, s.id LIMIT 1
                    """
                ),
                {"g": grid_id},
            ).one_or_none()
            if staff is not None:
                return Assignee("worker", staff_id=int(staff[0]), name=str(staff[1]))
        level = "community"
    if level == "department":
        return Assignee("department", name=category.department or "职能部门")
    grid_id = row["community_id"] if level == "community" else row["street_id"]
    if grid_id is None and level == "community":
        grid_id, level = row["street_id"], "street"
    name = None
    if grid_id is not None:
        name = session.execute(
            text("SELECT name FROM grids WHERE id = :g"), {"g": grid_id}
        ).scalar()
    return Assignee(level, grid_id=grid_id, name=name)


def _level_of(assignee: Assignee) -> str:
    return "grid" if assignee.kind == "worker" else assignee.kind


def _event(
    session: Session,
    incident_id: int,
    *,
    at: datetime,
    actor: str,
    kind: str,
    from_status: str | None,
    to_status: str | None,
    level: str | None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.execute(
        text(
            """
            INSERT INTO incident_events (incident_id, at, actor, kind, from_status, to_status,
                                         handling_level, note, data)
            VALUES (:i, :at, :actor, :kind, :f, :t, :lvl, :note, CAST(:data AS json))
            """
        ),
        {
            "i": incident_id,
            "at": at,
            "actor": actor,
            "kind": kind,
            "f": from_status,
            "t": to_status,
            "lvl": level,
            "note": note,
            "data": None if data is None else json.dumps(data, ensure_ascii=False),
        },
    )


def transition(
    session: Session,
    incident_id: int,
    target: str,
    *,
    actor: str,
    at: datetime,
    taxonomy: Taxonomy,
    note: str | None = None,
    expected_version: int | None = None,
    assignee: Assignee | None = None,
    satisfaction: int | None = None,
    comment: str | None = None,
    duplicate_of: int | None = None,
) -> list[str]:
    """Move an incident one step through the closed loop and audit it.

    Raises IllegalTransitionError (the API answers 409) for a step the state machine does
    not allow, StaleVersionError when ``expected_version`` is not the current one, and
    GisError when the step lacks what it needs (a rejection without a reason, an evaluation
    without a score, a duplicate without its original). An evaluation at or below
    :data:`~gis.incidents.DISSATISFIED_MAX` reopens the incident in the same transaction.
    Returns the statuses passed through (one, or two for a dissatisfied evaluation).
    """
    if at.tzinfo is None:
        raise GisError("the time of a transition must be timezone-aware")
    row = _lock(session, incident_id)
    if expected_version is not None and expected_version != row["version"]:
        raise StaleVersionError(
            f"incident {incident_id} is at version {row['version']}, not {expected_version}",
            current_version=int(row["version"]),
        )
    current = row["status"]
    new = next_status(current, target)
    category = category_of(row, taxonomy)
    sets: dict[str, Any] = {}
    data: dict[str, Any] = {}
    level = row["handling_level"]

    if new == Status.ACCEPTED and row["initial_level"] is None:
        level = initial_level(category.level, int(row["severity"]))
        sets.update(initial_level=level, handling_level=level)
    elif new == Status.DISPATCHED:
        if level is None:
            level = initial_level(category.level, int(row["severity"]))
            sets.update(initial_level=level)
        who = assignee or route(session, row, level, category)
        if who.kind not in ("worker", "community", "street", "department"):
            raise GisError(f"unknown assignee kind {who.kind!r}")
        if who.kind == "worker" and who.staff_id is None:
            raise GisError("dispatching to a grid worker needs the worker's staff id")
        level = _level_of(who)
        sets.update(
            handling_level=level,
            assignee_kind=who.kind,
            assignee_staff_id=who.staff_id,
            assignee_grid_id=who.grid_id,
            assignee_name=who.name,
        )
        data["assignee"] = {
            "kind": who.kind,
            "staff_id": who.staff_id,
            "grid_id": who.grid_id,
            "name": who.name,
        }
    elif new == Status.REJECTED and not (note and note.strip()):
        raise GisError("a rejection needs a reason in the note")
    elif new == Status.DUPLICATE:
        if duplicate_of is None or duplicate_of == incident_id:
            raise GisError("a duplicate needs the id of the original incident (duplicate_of)")
        original = session.execute(
            text("SELECT status FROM incidents WHERE id = :id"), {"id": duplicate_of}
        ).scalar_one_or_none()
        if original is None:
            raise NotFoundError(f"original incident {duplicate_of} does not exist")
        if original == Status.DUPLICATE:
            raise GisError(
                f"incident {duplicate_of} is itself a duplicate; merge into its original"
            )
        sets["duplicate_of"] = duplicate_of
        data["duplicate_of"] = duplicate_of
    elif new == Status.EVALUATED:
        if satisfaction is None or not 1 <= int(satisfaction) <= 5:
            raise GisError("an evaluation needs satisfaction 1..5")
        sets.update(satisfaction=int(satisfaction), evaluation_comment=comment)
        data["satisfaction"] = int(satisfaction)
    elif new == Status.REOPENED:
        sets.update(
            reopened_at=at, resolved_at=None, evaluated_at=None, reopen_count="reopen_count + 1"
        )

    stamp = STAMPS.get(new)
    passed = [str(new)]
    _apply(session, incident_id, new, at, sets, stamp)
    _event(
        session,
        incident_id,
        at=at,
        actor=actor,
        kind="transition",
        from_status=current,
        to_status=new,
        level=level,
        note=note if new != Status.EVALUATED else (comment or note),
        data=data or None,
    )
    if new == Status.EVALUATED and int(satisfaction or 0) <= DISSATISFIED_MAX:
        reopen = {
            "reopened_at": at,
            "resolved_at": None,
            "evaluated_at": None,
            "reopen_count": "reopen_count + 1",
        }
        _apply(session, incident_id, Status.REOPENED, at, reopen, None)
        _event(
            session,
            incident_id,
            at=at,
            actor=SYSTEM,
            kind="transition",
            from_status=Status.EVALUATED,
            to_status=Status.REOPENED,
            level=level,
            note=f"resident dissatisfied ({satisfaction}/5): reopened",
        )
        passed.append(str(Status.REOPENED))
    return passed


_EXPRESSIONS = {"reopen_count + 1"}


def _apply(
    session: Session,
    incident_id: int,
    status: Status,
    at: datetime,
    sets: dict[str, Any],
    stamp: str | None,
) -> None:
    """One UPDATE of the incident: status, version, the step's columns and its time stamp."""
    assignments = ["status = :status", "version = version + 1", "updated_at = :at"]
    params: dict[str, Any] = {"id": incident_id, "status": str(status), "at": at}
    for i, (col, value) in enumerate(sets.items()):
        if isinstance(value, str) and value in _EXPRESSIONS:
            assignments.append(f"{col} = {value}")
        else:
            assignments.append(f"{col} = :v{i}")
            params[f"v{i}"] = value
    if stamp is not None and stamp not in sets:
        # the first time a status is reached; a reopened incident is resolved again
        keep_first = stamp in ("accepted_at", "dispatched_at", "started_at")
        assignments.append(f"{stamp} = COALESCE({stamp}, :at)" if keep_first else f"{stamp} = :at")
    session.execute(text(f"UPDATE incidents SET {', '.join(assignments)} WHERE id = :id"), params)


def history(session: Session, incident_id: int) -> list[dict[str, Any]]:
    """The audit trail of one incident, oldest first."""
    if (
        session.execute(text("SELECT 1 FROM incidents WHERE id = :id"), {"id": incident_id}).first()
        is None
    ):
        raise NotFoundError(f"incident {incident_id} does not exist")
    rows = session.execute(
        text(
            """
            SELECT id, at, actor, kind, from_status, to_status, handling_level, note, data
            FROM incident_events WHERE incident_id = :id ORDER BY at, id
            """
        ),
        {"id": incident_id},
    ).mappings()
    return [dict(r) for r in rows]


_OPEN = ("reported", "accepted", "dispatched", "in_progress", "reopened")


def _open_rows(session: Session, *, for_update: bool) -> list[dict[str, Any]]:
    sql = _ROW + " WHERE status IN :open ORDER BY id"
    if for_update:
        sql += " FOR UPDATE SKIP LOCKED"
    stmt = text(sql).bindparams(bindparam("open", expanding=True))
    return [dict(r) for r in session.execute(stmt, {"open": list(_OPEN)}).mappings()]


def overdue(
    session: Session, now: datetime, taxonomy: Taxonomy, *, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Open incidents past their current deadline at ``now``, most overdue first."""
    out = []
    for row in _open_rows(session, for_update=False):
        cat = category_of(row, taxonomy)
        state = sla_state(
            row["status"], _clock_start(row), now, severity=row["severity"], deadlines=cat.deadlines
        )
        if state.overdue > timedelta(0):
            out.append(
                {
                    "id": row["id"],
                    "category": cat.name,
                    "category_code": cat.code,
                    "status": row["status"],
                    "stage": state.stage,
                    "deadline": state.deadline,
                    "overdue_minutes": round(state.overdue.total_seconds() / 60, 1),
                    "colour": str(state.colour),
                    "handling_level": row["handling_level"],
                    "assignee_name": row["assignee_name"],
                }
            )
    out.sort(key=lambda r: (-r["overdue_minutes"], r["id"]))
    return out[offset : offset + limit]


def sla_tick(session: Session, now: datetime, taxonomy: Taxonomy) -> dict[str, int]:
    """The scheduler job (``wangge sla tick``): re-colour open incidents, escalate overdue ones
    one rung per missed deadline (grid → community → street), close resolved incidents that
    no one evaluated within :data:`~gis.incidents.AUTO_CLOSE_AFTER`. Idempotent at a given
    ``now``: a second run changes nothing."""
    counts = {"checked": 0, "recoloured": 0, "escalated": 0, "closed": 0}
    for row in _open_rows(session, for_update=True):
        counts["checked"] += 1
        cat = category_of(row, taxonomy)
        state = sla_state(
            row["status"], _clock_start(row), now, severity=row["severity"], deadlines=cat.deadlines
        )
        sets: dict[str, Any] = {}
        if state.colour != row["colour"]:
            sets["colour"] = str(state.colour)
            _event(
                session,
                row["id"],
                at=now,
                actor=SYSTEM,
                kind="recolour",
                from_status=row["status"],
                to_status=row["status"],
                level=row["handling_level"],
                note=f"{row['colour']} → {state.colour} ({state.stage} deadline "
                f"{state.deadline:%Y-%m-%d %H:%M %Z})",
            )
            counts["recoloured"] += 1
        start = row["initial_level"]
        if row["status"] in ESCALATION_STATUSES and start is not None:
            target = escalated_level(start, late_steps(state))
            current = row["handling_level"] or start
            if _rank(target) > _rank(current):
                who = route(session, row, target, cat)
                sets.update(
                    handling_level=target,
                    assignee_kind=who.kind,
                    assignee_staff_id=who.staff_id,
                    assignee_grid_id=who.grid_id,
                    assignee_name=who.name,
                )
                _event(
                    session,
                    row["id"],
                    at=now,
                    actor=SYSTEM,
                    kind="escalation",
                    from_status=row["status"],
                    to_status=row["status"],
                    level=target,
                    note=f"{state.stage} deadline passed by "
                    f"{state.overdue.total_seconds() / 60:.0f} min: {current} → {target}",
                    data={"from_level": current, "to_level": target},
                )
                counts["escalated"] += 1
        if sets:
            cols = ", ".join(f"{k} = :{k}" for k in sets)
            session.execute(
                text(
                    f"UPDATE incidents SET {cols}, version = version + 1, updated_at = :now "
                    "WHERE id = :id"
                ),
                {**sets, "now": now, "id": row["id"]},
            )
    stale = session.execute(
        text(
            "SELECT id FROM incidents WHERE status = 'resolved' AND resolved_at < :cut ORDER BY id"
        ),
        {"cut": now - AUTO_CLOSE_AFTER},
    ).scalars()
    for incident_id in list(stale):
        transition(
            session,
            incident_id,
            Status.CLOSED,
            actor=SYSTEM,
            at=now,
            taxonomy=taxonomy,
            note=f"no evaluation within {AUTO_CLOSE_AFTER.total_seconds() / 3600:.0f} h: closed",
        )
        counts["closed"] += 1
    log.info("sla tick at %s: %s", now.isoformat(), counts)
    return counts


def _rank(level: str) -> int:
    """Ladder position; a department ranks between community and street for escalation."""
    return {"department": 1}.get(level, LADDER.index(level) if level in LADDER else 0)


def possible_duplicates(
    session: Session, incident_id: int, *, radius_m: float = 50.0, hours: float = 24.0
) -> list[dict[str, Any]]:
    """Reports of the same category within ``radius_m`` metres and ``hours`` hours of this
    one that are not closed as duplicates themselves: offered to the dispatcher as a merge."""
    rows = session.execute(
        text(
            """
            SELECT o.id, o.status, o.reported_at,
                   ST_Distance(o.geom::geography, i.geom::geography) AS distance_m,
                   abs(extract(epoch FROM o.reported_at - i.reported_at)) / 3600 AS hours_apart
            FROM incidents i JOIN incidents o
              ON o.id <> i.id
             AND o.category = i.category
             AND o.status NOT IN ('duplicate', 'rejected')
             AND o.reported_at BETWEEN i.reported_at - make_interval(secs => :h * 3600)
                                   AND i.reported_at + make_interval(secs => :h * 3600)
             AND ST_DWithin(o.geom::geography, i.geom::geography, :r)
            WHERE i.id = :id AND i.geom IS NOT NULL
            ORDER BY distance_m, o.id
            LIMIT 20
            """
        ),
        {"id": incident_id, "r": radius_m, "h": hours},
    ).mappings()
    return [
        {
            **dict(r),
            "distance_m": round(float(r["distance_m"]), 1),
            "hours_apart": round(float(r["hours_apart"]), 2),
        }
        for r in rows
    ]


def replay_inputs(session: Session) -> tuple[pd.DataFrame, dict[int, tuple[int, str]], dict]:
    """What the demo replay needs: demo incidents (``ext_id`` DEMO-…) never moved since their
    report (no audit event), the grid worker of each grid (网格员 before 网格长), and grid
    names. Reports that came in through the API are never replayed."""
    result = session.execute(
        text(
            """
            SELECT i.id, COALESCE(i.category_code, i.category) AS category_code, i.severity,
                   i.reported_at, i.micro_grid_id, i.grid_id, i.community_id, i.street_id
            FROM incidents i
            WHERE i.status = 'reported' AND i.ext_id LIKE 'DEMO-%'
              AND NOT EXISTS (SELECT 1 FROM incident_events e WHERE e.incident_id = i.id)
            """
        )
    )
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    workers: dict[int, tuple[int, str]] = {}
    for grid_id, staff_id, name in session.execute(
        text(
            """
            SELECT DISTINCT ON (sg.grid_id) sg.grid_id, s.id, s.name
            FROM staff_grids sg JOIN staff s ON s.id = sg.staff_id
            ORDER BY sg.grid_id, (s.role = '网格员') DESC, s.id
            """
        )
    ).all():
        workers[int(grid_id)] = (int(staff_id), str(name))
    names = {int(i): str(n) for i, n in session.execute(text("SELECT id, name FROM grids"))}
    return frame, workers, names


def store_replay(session: Session, events: pd.DataFrame, states: pd.DataFrame) -> None:
    """Write a replay in one transaction: COPY the audit events, then one UPDATE of every
    replayed incident from a staging table."""
    raw = session.connection().connection.driver_connection
    assert raw is not None
    states = states.copy()
    for col in ("assignee_staff_id", "assignee_grid_id", "satisfaction", "duplicate_of"):
        states[col] = pd.to_numeric(states[col]).astype("Int64")
    with raw.cursor() as cur:
        with cur.copy(
            "COPY incident_events (incident_id, at, actor, kind, from_status, to_status, "
            "handling_level, note) FROM STDIN"
        ) as copy:
            for rec in events.itertuples(index=False, name=None):
                copy.write_row(rec)
        cur.execute(
            """
            CREATE TEMP TABLE stage_states (
              id bigint, status text, initial_level text, handling_level text,
              assignee_kind text, assignee_staff_id int, assignee_grid_id int,
              assignee_name text, accepted_at timestamptz, dispatched_at timestamptz,
              started_at timestamptz, resolved_at timestamptz, evaluated_at timestamptz,
              closed_at timestamptz, reopened_at timestamptz, satisfaction smallint,
              duplicate_of bigint, reopen_count smallint, version int) ON COMMIT DROP
            """
        )
        cols = ", ".join(states.columns)
        with cur.copy(f"COPY stage_states ({cols}) FROM STDIN") as copy:
            for rec in (
                states.astype(object).where(states.notna(), None).itertuples(index=False, name=None)
            ):
                copy.write_row(rec)
    sets = ", ".join(f"{c} = s.{c}" for c in states.columns if c != "id")
    session.execute(
        text(
            f"UPDATE incidents i SET {sets}, updated_at = now() "
            "FROM stage_states s WHERE i.id = s.id"
        )
    )
    session.execute(text("DROP TABLE stage_states"))
