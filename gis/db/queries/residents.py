"""Residents' one-time codes and their own reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import GisError
from gis.residents import CodeError, CodePolicy, check_code, code_hash


def store_code(session: Session, *, key: str, code: str, now: datetime, policy: CodePolicy) -> None:
    """Keep a new code (hashed) unless the number asked for too many lately."""
    recent = session.execute(
        text("SELECT count(*) FROM resident_codes WHERE phone_key = :k AND created_at > :since"),
        {"k": key, "since": now - policy.send_window},
    ).scalar_one()
    if recent >= policy.max_sends:
        raise GisError(
            f"at most {policy.max_sends} codes per {policy.send_window.seconds // 60} minutes"
        )
    session.execute(
        text(
            "INSERT INTO resident_codes (phone_key, code_hash, expires_at, created_at) "
            "VALUES (:k, :h, :exp, :now)"
        ),
        {"k": key, "h": code_hash(code, key), "exp": now + policy.ttl, "now": now},
    )


def use_code(
    session: Session, *, key: str, code: str, now: datetime, policy: CodePolicy
) -> str | None:
    """Check the number's latest code; None when right (then it is spent), else the reason.
    A wrong try is counted in the caller's transaction, which must commit either way."""
    row = session.execute(
        text(
            "SELECT id, code_hash, expires_at, attempts FROM resident_codes "
            "WHERE phone_key = :k AND NOT used ORDER BY id DESC LIMIT 1 FOR UPDATE"
        ),
        {"k": key},
    ).one_or_none()
    if row is None:
        return "no code was sent to this number: ask for one"
    code_id, stored, expires, attempts = row
    try:
        check_code(code, stored_hash=stored, key=key, expires_at=expires, attempts=attempts,
                   now=now, policy=policy)  # fmt: skip
    except CodeError as exc:
        session.execute(
            text("UPDATE resident_codes SET attempts = attempts + 1 WHERE id = :i"), {"i": code_id}
        )
        return str(exc)
    session.execute(text("UPDATE resident_codes SET used = true WHERE id = :i"), {"i": code_id})
    return None


def own_reports(session: Session, key: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """A resident's reports, newest first, with the latest public note of each."""
    rows = session.execute(
        text(
            """
            SELECT i.id, i.category, i.description, i.status, i.reported_at, i.satisfaction,
                   i.evaluation_comment, i.address, g.name AS micro_name,
                   (SELECT e.note FROM incident_events e WHERE e.incident_id = i.id
                      AND e.kind = 'transition' AND e.note IS NOT NULL
                    ORDER BY e.at DESC, e.id DESC LIMIT 1) AS last_note
            FROM incidents i LEFT JOIN grids g ON g.id = i.micro_grid_id
            WHERE i.reporter_key = :k ORDER BY i.reported_at DESC, i.id DESC LIMIT :limit
            """
        ),
        {"k": key, "limit": limit},
    ).mappings()
    return [dict(r) for r in rows]


def owner_key(session: Session, incident_id: int) -> str | None:
    """The reporter key of an incident (None when it was not a resident's report)."""
    return session.execute(
        text("SELECT reporter_key FROM incidents WHERE id = :i"), {"i": incident_id}
    ).scalar_one_or_none()


def set_reporter_key(session: Session, incident_id: int, key: str) -> None:
    """Mark an incident as this resident's (only if nobody's yet)."""
    session.execute(
        text("UPDATE incidents SET reporter_key = :k WHERE id = :i AND reporter_key IS NULL"),
        {"k": key, "i": incident_id},
    )


def place_of_building(session: Session, building_id: int) -> dict[str, Any] | None:
    """What the report form shows for a building's QR code."""
    row = (
        session.execute(
            text(
                """
            SELECT b.id, b.address, ST_X(ST_PointOnSurface(b.geom)) AS lon,
                   ST_Y(ST_PointOnSurface(b.geom)) AS lat, g.code AS micro_code,
                   g.name AS micro_name
            FROM buildings b LEFT JOIN grids g ON g.id = b.micro_grid_id WHERE b.id = :b
            """
            ),
            {"b": building_id},
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None


def place_of_grid(session: Session, code: str) -> dict[str, Any] | None:
    """What the report form shows for a grid's QR code (a point inside the grid)."""
    row = (
        session.execute(
            text(
                """
            SELECT NULL::int AS id, g.name AS address, ST_X(ST_PointOnSurface(g.geom)) AS lon,
                   ST_Y(ST_PointOnSurface(g.geom)) AS lat, g.code AS micro_code,
                   g.name AS micro_name
            FROM grids g WHERE g.code = :c
            """
            ),
            {"c": code},
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None


def buildings_of_community(session: Session, code: str) -> list[dict[str, Any]]:
    """Every building in a community (for its QR sheet), by address."""
    rows = session.execute(
        text(
            """
            SELECT b.id, b.address, g.name AS micro_name FROM buildings b
            JOIN grids g ON g.id = b.micro_grid_id
            JOIN grids t ON t.id = g.parent_id
            JOIN grids c ON c.id = t.parent_id
            WHERE c.code = :c AND c.level = 'community' ORDER BY b.address, b.id
            """
        ),
        {"c": code},
    ).mappings()
    return [dict(r) for r in rows]
