"""What the patroller's page (网格员移动端) reads about its user: their staff record and the
grids they are responsible for (the roots of their scope, not every grid below)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session


def my_grids(session: Session, user_id: int) -> tuple[int | None, list[dict[str, Any]]]:
    """The user's staff id and the grids assigned to them (a patroller's grids, a community
    account's community), by code; empty for roles not tied to a grid."""
    staff_id = session.execute(
        text("SELECT staff_id FROM users WHERE id = :u"), {"u": user_id}
    ).scalar_one_or_none()
    rows = session.execute(
        text(
            """
            SELECT g.id, g.code, g.name, g.level FROM users u
            JOIN staff_grids sg ON sg.staff_id = u.staff_id JOIN grids g ON g.id = sg.grid_id
            WHERE u.id = :u AND u.role = 'patroller'
            UNION
            SELECT g.id, g.code, g.name, g.level FROM users u JOIN grids g ON g.id = u.community_id
            WHERE u.id = :u AND u.role = 'community'
            ORDER BY code
            """
        ),
        {"u": user_id},
    ).mappings()
    return staff_id, [dict(r) for r in rows]
