"""党员中心户: linking party members to key households, recording their visits, and the weekly
visit compliance of grid workers and party members together (rules in ``gis/party.py``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.queries.tracks import visits_frame, week_bounds
from gis.errors import NotFoundError
from gis.party import (
    PartyLinkConflict,
    PartyVisitError,
    check_link_count,
    check_party_member,
    check_visit,
    combined_compliance,
)


def _party_member(session: Session, volunteer_id: int, *, lock: bool = False) -> dict[str, Any]:
    row = (
        session.execute(
            text(
                "SELECT id, name, kind FROM volunteers WHERE id = :v"
                + (" FOR UPDATE" if lock else "")
            ),
            {"v": volunteer_id},
        )
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFoundError(f"volunteer {volunteer_id} does not exist")
    check_party_member(row["kind"], row["name"])
    return dict(row)


def household_grids(session: Session, household_ids: list[int]) -> dict[int, int | None]:
    """The micro grid of each existing key household (missing ids are left out)."""
    rows = session.execute(
        text("SELECT id, grid_id FROM key_households WHERE id = ANY(:ids)"),
        {"ids": list(household_ids)},
    ).all()
    return {int(r[0]): r[1] for r in rows}


def link_households(
    session: Session, volunteer_id: int, household_ids: list[int], *, by: str | None = None
) -> list[int]:
    """Link key households to a party member (1–5 in all). A household linked to another
    party member is a conflict; one already linked to this one is left as it is. The party
    member's row is locked so that two concurrent requests cannot pass six households."""
    _party_member(session, volunteer_id, lock=True)
    wanted = sorted(set(household_ids))
    found = household_grids(session, wanted)
    missing = [h for h in wanted if h not in found]
    if missing:
        raise NotFoundError(f"no key households {missing}")
    linked = dict(
        session.execute(
            text("SELECT household_id, volunteer_id FROM party_links WHERE household_id = ANY(:h)"),
            {"h": wanted},
        ).all()
    )
    taken = {h: v for h, v in linked.items() if v != volunteer_id}
    if taken:
        detail = ", ".join(f"{h} (party member {v})" for h, v in sorted(taken.items()))
        raise PartyLinkConflict(f"key households already looked after: {detail}")
    new = [h for h in wanted if h not in linked]
    current = session.execute(
        text("SELECT count(*) FROM party_links WHERE volunteer_id = :v"), {"v": volunteer_id}
    ).scalar_one()
    if new:
        check_link_count(int(current), len(new))
        session.execute(
            text(
                "INSERT INTO party_links (household_id, volunteer_id, linked_by) "
                "SELECT h, :v, :by FROM unnest(CAST(:h AS int[])) AS h"
            ),
            {"v": volunteer_id, "h": new, "by": by},
        )
    return new


def unlink_household(session: Session, household_id: int) -> int:
    """Remove a household's link; returns the party member it had. 404 if none."""
    volunteer = session.execute(
        text("DELETE FROM party_links WHERE household_id = :h RETURNING volunteer_id"),
        {"h": household_id},
    ).scalar_one_or_none()
    if volunteer is None:
        raise NotFoundError(f"key household {household_id} is not linked to a party member")
    return int(volunteer)


def links(
    session: Session, *, volunteer_id: int | None = None, grid_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """Links with the household's kind and grid and the party member's name (no personal
    data of the household)."""
    rows = session.execute(
        text(
            """
            SELECT l.household_id, k.kind, k.grid_id, g.code AS grid_code,
                   l.volunteer_id AS party_member_id, v.name AS party_member, l.linked_at
            FROM party_links l JOIN key_households k ON k.id = l.household_id
            JOIN volunteers v ON v.id = l.volunteer_id LEFT JOIN grids g ON g.id = k.grid_id
            WHERE (CAST(:v AS int) IS NULL OR l.volunteer_id = :v)
              AND (CAST(:g AS int[]) IS NULL OR k.grid_id = ANY(:g))
            ORDER BY l.volunteer_id, l.household_id
            """
        ),
        {"v": volunteer_id, "g": grid_ids},
    ).mappings()
    return [dict(r) for r in rows]


def record_visit(
    session: Session,
    *,
    household_id: int,
    volunteer_id: int,
    visited_at: datetime,
    now: datetime,
    lon: float | None = None,
    lat: float | None = None,
    note: str | None = None,
    idempotency_key: str | None = None,
    by: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store a party member's visit to a household linked to them; returns (visit, created).
    The same idempotency key again returns the stored visit and stores nothing."""
    if idempotency_key:
        old = _visit_by_key(session, idempotency_key)
        if old is not None:
            return old, False
    _party_member(session, volunteer_id)
    linked = session.execute(
        text("SELECT volunteer_id FROM party_links WHERE household_id = :h"), {"h": household_id}
    ).scalar_one_or_none()
    if not household_grids(session, [household_id]):
        raise NotFoundError(f"key household {household_id} does not exist")
    if linked != volunteer_id:
        raise PartyVisitError(
            f"key household {household_id} is not linked to party member {volunteer_id}"
        )
    distance = None
    if lon is not None and lat is not None:
        distance = float(
            session.execute(
                text(
                    """
                    SELECT ST_Distance(b.geom::geography,
                                       ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography)
                    FROM key_households k JOIN buildings b ON b.id = k.building_id
                    WHERE k.id = :h
                    """
                ),
                {"x": lon, "y": lat, "h": household_id},
            ).scalar_one()
        )
    check_visit(visited_at, now, distance)
    row = (
        session.execute(
            text(
                """
                INSERT INTO party_visits (household_id, volunteer_id, visited_at, note,
                                          distance_m, idempotency_key, recorded_by, geom)
                VALUES (:h, :v, :t, :note, :d, :key, :by,
                        CASE WHEN CAST(:x AS float8) IS NULL THEN NULL
                             ELSE ST_SetSRID(ST_MakePoint(:x, :y), 4326) END)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING id
                """
            ),
            {
                "h": household_id,
                "v": volunteer_id,
                "t": visited_at,
                "note": note,
                "d": distance,
                "key": idempotency_key,
                "by": by,
                "x": lon,
                "y": lat,
            },
        )
        .scalars()
        .one_or_none()
    )
    if row is None:  # a concurrent request with the same key won
        old = _visit_by_key(session, idempotency_key or "")
        if old is None:
            raise PartyVisitError("the visit could not be stored; send it again")
        return old, False
    return _visit(session, int(row)), True


_VISIT = """
    SELECT id, household_id, volunteer_id, visited_at, note, distance_m, idempotency_key,
           ST_X(geom) AS lon, ST_Y(geom) AS lat, created_at
    FROM party_visits
"""


def _visit(session: Session, visit_id: int) -> dict[str, Any]:
    return dict(session.execute(text(_VISIT + "WHERE id = :i"), {"i": visit_id}).mappings().one())


def _visit_by_key(session: Session, key: str) -> dict[str, Any] | None:
    row = session.execute(text(_VISIT + "WHERE idempotency_key = :k"), {"k": key}).mappings()
    found = row.one_or_none()
    return None if found is None else dict(found)


def party_visits_frame(session: Session, start: date, end: date) -> pd.DataFrame:
    """Party members' visits made on days start..end (China time)."""
    return pd.read_sql(
        text(
            """
            SELECT household_id, volunteer_id, visited_at FROM party_visits
            WHERE (visited_at AT TIME ZONE 'Asia/Shanghai')::date BETWEEN :a AND :b
            ORDER BY visited_at
            """
        ),
        session.connection(),
        params={"a": start, "b": end},
    )


def visit_compliance_combined(session: Session, week_of: date) -> pd.DataFrame:
    """Every key household's visits in the week of ``week_of`` (Monday..Sunday, China time)
    by grid workers (from their tracks) and by party members, and whether it is compliant."""
    start, end = week_bounds(week_of)
    homes = pd.read_sql(
        text(
            """
            SELECT k.id AS household_id, k.kind, k.grid_id, g.code AS grid_code,
                   l.volunteer_id AS party_member_id, v.name AS party_member
            FROM key_households k LEFT JOIN grids g ON g.id = k.grid_id
            LEFT JOIN party_links l ON l.household_id = k.id
            LEFT JOIN volunteers v ON v.id = l.volunteer_id
            ORDER BY k.id
            """
        ),
        session.connection(),
    )
    homes["party_member_id"] = homes["party_member_id"].astype("Int64")
    out = combined_compliance(
        homes, visits_frame(session, start, end), party_visits_frame(session, start, end)
    )
    out.insert(1, "week", start.isoformat())
    return out
