"""Incident queries: insert (geocoded by the database trigger), fetch, and heat aggregates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import NotFoundError
from gis.media import StoredPhoto
from gis.taxonomy import Taxonomy

INCIDENT_SELECT = """
    SELECT i.id, i.ext_id, i.micro_grid_id, i.grid_id, i.community_id, i.street_id,
           i.category, i.source, i.description, i.address, i.reporter,
           i.reported_at, i.created_at, i.status, i.location_status, i.location_source,
           i.address_score, i.building_id, i.category_code, i.severity, i.colour,
           i.initial_level, i.handling_level, i.assignee_kind, i.assignee_staff_id,
           i.assignee_grid_id, i.assignee_name, i.accepted_at, i.dispatched_at, i.started_at,
           i.resolved_at, i.evaluated_at, i.closed_at, i.reopened_at, i.satisfaction,
           i.evaluation_comment, i.duplicate_of, i.media_url, i.reopen_count, i.version,
           i.updated_at,
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
    category_code: str | None = None,
    severity: int = 1,
    media_url: str | None = None,
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
        "code": category_code,
        "severity": severity,
        "media_url": media_url,
    }
    new_id = session.execute(
        text(
            """
            INSERT INTO incidents (category, source, reported_at, description, address,
                                   reporter, idempotency_key, status, location_status,
                                   location_source, address_score, building_id,
                                   category_code, severity, media_url, geom)
            VALUES (:category, :source, :reported_at, :description, :address, :reporter, :key,
                    'reported', 'needs_location', :location_source, :address_score,
                    :building_id, :code, :severity, :media_url,
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


def apply_taxonomy(session: Session, taxonomy: Taxonomy) -> int:
    """Give incidents stored by category name (bulk loads, older rows) their category code and
    default severity; returns how many rows changed."""
    rows = [{"n": c.name, "c": c.code, "s": c.severity} for c in taxonomy]
    session.execute(text("CREATE TEMP TABLE stage_taxonomy (n text, c text, s int) ON COMMIT DROP"))
    session.execute(text("INSERT INTO stage_taxonomy VALUES (:n, :c, :s)"), rows)
    changed = session.execute(
        text(
            """
            UPDATE incidents i SET category_code = t.c, severity = t.s
            FROM stage_taxonomy t WHERE i.category = t.n AND i.category_code IS NULL
            """
        )
    ).rowcount
    session.execute(text("DROP TABLE stage_taxonomy"))
    return int(changed or 0)


def get_incident(session: Session, incident_id: int) -> dict[str, Any]:
    """One incident with its grid chain codes; raises NotFoundError if absent."""
    row = (
        session.execute(text(INCIDENT_SELECT + " WHERE i.id = :id"), {"id": incident_id})
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
            INCIDENT_SELECT
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


def list_incidents(
    session: Session,
    *,
    status: str | None = None,
    category: str | None = None,
    source: str | None = None,
    grid_code: str | None = None,
    grid_ids: frozenset[int] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Incidents newest first, filtered; every filter is a bound parameter."""
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit, "offset": offset}
    if status:
        where.append("i.status = :status")
        params["status"] = status
    if category:
        where.append("(i.category = :category OR i.category_code = :category)")
        params["category"] = category
    if source:
        where.append("i.source = :source")
        params["source"] = source
    if grid_code:
        where.append(":grid IN (g4.code, g3.code, g2.code, g1.code) OR d.code = :grid")
        params["grid"] = grid_code
    if grid_ids is not None:  # a scoped caller: only incidents in their grids
        where.append(
            "i.micro_grid_id = ANY(:ids) OR i.grid_id = ANY(:ids) OR i.community_id = ANY(:ids)"
        )
        params["ids"] = sorted(grid_ids)
    sql = (
        INCIDENT_SELECT
        + " WHERE "
        + " AND ".join(f"({w})" for w in where)
        + " ORDER BY i.reported_at DESC, i.id DESC LIMIT :limit OFFSET :offset"
    )
    return [dict(r) for r in session.execute(text(sql), params).mappings()]


def add_photo(session: Session, incident_id: int, photo: StoredPhoto) -> bool:
    """Link a stored photo to an incident; False if it was linked already (a retry)."""
    added = session.execute(
        text(
            """
            INSERT INTO incident_photos (incident_id, sha256, content_type, size_bytes)
            VALUES (:i, :sha, :kind, :size)
            ON CONFLICT (incident_id, sha256) DO NOTHING RETURNING id
            """
        ),
        {
            "i": incident_id,
            "sha": photo.sha256,
            "kind": photo.content_type,
            "size": photo.size_bytes,
        },
    ).scalar_one_or_none()
    return added is not None


def photos_of(session: Session, incident_id: int) -> list[str]:
    """The SHA-256 of an incident's photos, in upload order."""
    return list(
        session.execute(
            text("SELECT sha256 FROM incident_photos WHERE incident_id = :i ORDER BY id"),
            {"i": incident_id},
        ).scalars()
    )
