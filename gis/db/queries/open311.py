"""Queries behind the Open311 GeoReport v2 endpoints: find requests, their latest notes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from gis.db.queries.incidents import INCIDENT_SELECT


def find_requests(
    session: Session,
    *,
    ids: list[int] | None = None,
    codes: list[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    closed: bool | None = None,
    closed_statuses: Sequence[str] = ("closed", "rejected", "duplicate"),
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Incidents by id list, service (category) codes, report time window and open/closed."""
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    binds = []
    if ids is not None:
        where.append("i.id IN :ids")
        params["ids"] = ids or [-1]
        binds.append(bindparam("ids", expanding=True))
    if codes:
        where.append("i.category_code IN :codes")
        params["codes"] = codes
        binds.append(bindparam("codes", expanding=True))
    if start is not None:
        where.append("i.reported_at >= :start")
        params["start"] = start
    if end is not None:
        where.append("i.reported_at <= :end")
        params["end"] = end
    if closed is not None:
        where.append(("" if closed else "NOT ") + "(i.status IN :closed_statuses)")
        params["closed_statuses"] = list(closed_statuses)
        binds.append(bindparam("closed_statuses", expanding=True))
    sql = (
        INCIDENT_SELECT
        + " WHERE "
        + " AND ".join(where)
        + " ORDER BY i.reported_at DESC, i.id DESC LIMIT :limit"
    )
    rows = session.execute(text(sql).bindparams(*binds), params).mappings()
    return [dict(r) for r in rows]


def last_notes(session: Session, incident_ids: list[int]) -> dict[int, str]:
    """The note of each incident's latest audited step that has one."""
    if not incident_ids:
        return {}
    rows = session.execute(
        text(
            """
            SELECT DISTINCT ON (incident_id) incident_id, note FROM incident_events
            WHERE incident_id IN :ids AND note IS NOT NULL AND kind = 'transition'
            ORDER BY incident_id, at DESC, id DESC
            """
        ).bindparams(bindparam("ids", expanding=True)),
        {"ids": incident_ids},
    ).all()
    return {int(i): str(n) for i, n in rows}
