"""The per-incident frame that :mod:`gis.kpis` aggregates: one row per incident with its grid
chain (codes and names), handler, timestamps and resolve deadline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.kpis import resolve_deadlines
from gis.taxonomy import Taxonomy

_SQL = """
    SELECT i.id, i.category, i.category_code, i.source, i.status, i.severity,
           i.reported_at, i.accepted_at, i.resolved_at, i.closed_at, i.satisfaction,
           i.initial_level, i.handling_level, i.reopen_count,
           g1.code AS street_code, g1.name AS street_name,
           g2.code AS community_code, g2.name AS community_name,
           g3.code AS grid_code, g3.name AS grid_name,
           g4.code AS micro_code, g4.name AS micro_name,
           CASE WHEN i.assignee_kind = 'worker' THEN i.assignee_staff_id END AS worker_id,
           CASE WHEN i.assignee_kind = 'worker' THEN s.name END AS worker_name
    FROM incidents i
    LEFT JOIN grids g1 ON g1.id = i.street_id
    LEFT JOIN grids g2 ON g2.id = i.community_id
    LEFT JOIN grids g3 ON g3.id = i.grid_id
    LEFT JOIN grids g4 ON g4.id = i.micro_grid_id
    LEFT JOIN staff s ON s.id = i.assignee_staff_id
"""


def kpi_frame(
    session: Session,
    taxonomy: Taxonomy,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Incidents reported in ``[start, end)`` (all when omitted), with ``resolve_by``."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if start is not None:
        where.append("i.reported_at >= :start")
        params["start"] = start
    if end is not None:
        where.append("i.reported_at < :end")
        params["end"] = end
    sql = _SQL + (" WHERE " + " AND ".join(where) if where else "")
    result = session.execute(text(sql), params)
    frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    for col in ("reported_at", "accepted_at", "resolved_at", "closed_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    codes = frame["category_code"].fillna(frame["category"].map(_codes(taxonomy)))
    frame["category_code"] = codes
    frame["resolve_by"] = resolve_deadlines(frame["reported_at"], codes, taxonomy)
    return frame


def _codes(taxonomy: Taxonomy) -> dict[str, Any]:
    return {c.name: c.code for c in taxonomy}
