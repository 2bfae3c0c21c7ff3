"""Incident queries: insert (geocoded by the database trigger), fetch, and heat aggregates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import NotFoundError

_INCIDENT_SELECT = """
    SELECT i.id, i.ext_id, i.category, i.source, i.description, i.address, i.reporter,
           i.reported_at, i.created_at, i.status, i.location_status, i.location_source,
           i.address_score, i.building_id,
           ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat,
           g4.code AS micro_code, g3.code AS grid_code, g2.code AS community_code,
           g1.code AS street_code, d.code AS dedicated_code
    FROM incidents i
    LEFT JOIN grids g4 ON g4.id = i.micro_grid_id
    LEFT JOIN grids g3 ON g3.id = i.grid_id
    LEFT JOIN grids g2 ON g2.id = i.community_id
    LEFT JOIN grids g1 ON g1.id = i.street_id
    LEFT JOIN grids d ON d.id = i.dedicated_grid_id
"""


def insert_incident(
    session: Session,
    *,
    category: str,
    source: str,
    reported_at: datetime,
    lon: float | None = None,
    lat: float | None = None,
    description: str | None = None,
    address: str | None = None,
    reporter: str | None = None,
    idempotency_key: str | None = None,
    location_source: str | None = None,
    address_score: float | None = None,
    building_id: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store one incident; the database trigger assigns its grid chain on insert.

    A point is WGS84 (convert at the edge first). With no point the incident goes to the
    needs-location queue. Returns ``(incident, created)``; a repeated ``idempotency_key``
    returns the stored incident with ``created=False`` and writes nothing.
    """
    params = {
        "category": category,
        "source": source,
        "reported_at": reported_at,
        "lon": lon,
        "lat": lat,
        "description": description,
        "address": address,
        "reporter": reporter,
        "key": idempotency_key,
        "location_source": location_source if lon is not None else None,
        "address_score": address_score,
        "building_id": building_id,
    }
    new_id = session.execute(
        text(
            """
            INSERT INTO incidents (category, source, reported_at, description, address,
                                   reporter, idempotency_key, status, location_status,
                                   location_source, address_score, building_id, geom)
            VALUES (:category, :source, :reported_at, :description, :address, :reporter, :key,
                    'reported', 'needs_location', :location_source, :address_score,
                    :building_id,
                    CASE WHEN CAST(:lon AS float8) IS NULL THEN NULL
                         ELSE ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) END)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id
            """
        ),
        params,
    ).scalar_one_or_none()
    if new_id is None:
        existing = session.execute(
            text("SELECT id FROM incidents WHERE idempotency_key = :key"), {"key": idempotency_key}
        ).scalar_one()
        return get_incident(session, existing), False
    return get_incident(session, new_id), True


def get_incident(session: Session, incident_id: int) -> dict[str, Any]:
    """One incident with its grid chain codes; raises NotFoundError if absent."""
    row = (
        session.execute(text(_INCIDENT_SELECT + " WHERE i.id = :id"), {"id": incident_id})
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFoundError(f"incident {incident_id} does not exist")
    return dict(row)


def needs_location(session: Session, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """The needs-location queue: reports with no point yet, oldest first."""
    rows = session.execute(
        text(
            _INCIDENT_SELECT
            + " WHERE i.location_status = 'needs_location' ORDER BY i.reported_at, i.id"
            " LIMIT :limit OFFSET :offset"
        ),
        {"limit": limit, "offset": offset},
    ).mappings()
    return [dict(r) for r in rows]


def set_location(
    session: Session,
    incident_id: int,
    *,
    lon: float,
    lat: float,
    source: str = "manual",
    building_id: int | None = None,
    address_score: float | None = None,
) -> dict[str, Any]:
    """Give an incident its point (a worker on the map, or an address match); the trigger
    re-derives the grid chain. Raises NotFoundError for an unknown incident."""
    updated = session.execute(
        text(
            """
            UPDATE incidents SET geom = ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),
                   location_source = :source, building_id = :building_id,
                   address_score = :score
            WHERE id = :id RETURNING id
            """
        ),
        {
            "lon": lon,
            "lat": lat,
            "source": source,
            "building_id": building_id,
            "score": address_score,
            "id": incident_id,
        },
    ).scalar_one_or_none()
    if updated is None:
        raise NotFoundError(f"incident {incident_id} does not exist")
    return get_incident(session, incident_id)


def heat_cells(session: Session, *, cell_deg: float = 0.0005) -> pd.DataFrame:
    """Incident counts snapped to a square cell grid (about 50 m at the default size).

    Pages get these aggregates, never the raw points: a year of a city's incidents is
    millions of rows, its heat cells a few thousand.
    """
    rows = session.execute(
        text(
            """
            SELECT (floor(ST_X(geom) / :c) + 0.5) * :c AS lon,
                   (floor(ST_Y(geom) / :c) + 0.5) * :c AS lat,
                   count(*) AS weight
            FROM incidents WHERE geom IS NOT NULL
            GROUP BY 1, 2
            """
        ),
        {"c": cell_deg},
    ).all()
    return pd.DataFrame(rows, columns=["lon", "lat", "weight"]).astype(
        {"lon": float, "lat": float, "weight": int}
    )


def counts_by_location_status(session: Session) -> dict[str, int]:
    """How many incidents are located, outside every grid, or waiting for a location."""
    rows = session.execute(text("SELECT location_status, count(*) FROM incidents GROUP BY 1")).all()
    return {str(k): int(v) for k, v in rows}
