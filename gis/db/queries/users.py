"""Users, their grid scope, and the audit log."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.access import ROLES, SCOPED_ROLES, Principal
from gis.errors import GisError, NotFoundError


def add_user(
    session: Session,
    *,
    username: str,
    password_hash: str,
    role: str,
    staff_id: int | None = None,
    community_code: str | None = None,
) -> int:
    """Create a user; a patroller names their staff record, a community account its
    community (by code). Raises GisError for a taken name or a missing link."""
    if role not in ROLES:
        raise GisError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if role == "patroller" and staff_id is None:
        raise GisError("a patroller account needs the staff id of the grid worker")
    community_id = None
    if role == "community":
        if not community_code:
            raise GisError("a community account needs the community's code")
        community_id = session.execute(
            text("SELECT id FROM grids WHERE code = :c AND level = 'community'"),
            {"c": community_code},
        ).scalar_one_or_none()
        if community_id is None:
            raise NotFoundError(f"no community with code {community_code}")
    if session.execute(text("SELECT 1 FROM users WHERE username = :u"), {"u": username}).first():
        raise GisError(f"user name {username!r} is taken")
    return int(
        session.execute(
            text(
                """
                INSERT INTO users (username, password_hash, role, staff_id, community_id)
                VALUES (:u, :h, :r, :s, :c) RETURNING id
                """
            ),
            {"u": username, "h": password_hash, "r": role, "s": staff_id, "c": community_id},
        ).scalar_one()
    )


def get_user_by_name(session: Session, username: str) -> dict[str, Any] | None:
    """The user row (with its password hash) or None."""
    row = (
        session.execute(
            text("SELECT id, username, password_hash, role, active FROM users WHERE username = :u"),
            {"u": username},
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row else None


_SCOPE = """
    WITH RECURSIVE roots AS (
        SELECT sg.grid_id AS id FROM users u JOIN staff_grids sg ON sg.staff_id = u.staff_id
        WHERE u.id = :uid AND u.role = 'patroller'
        UNION
        SELECT u.community_id FROM users u
        WHERE u.id = :uid AND u.role = 'community' AND u.community_id IS NOT NULL
    ), tree AS (
        SELECT id FROM roots
        UNION
        SELECT g.id FROM grids g JOIN tree t ON g.parent_id = t.id
    )
    SELECT id FROM tree
"""


def load_principal(session: Session, user_id: int) -> Principal | None:
    """An active user with, for scoped roles, every grid id they may touch."""
    row = session.execute(
        text("SELECT id, username, role FROM users WHERE id = :id AND active"), {"id": user_id}
    ).one_or_none()
    if row is None:
        return None
    grids = None
    if row[2] in SCOPED_ROLES:
        grids = frozenset(int(g) for g in session.execute(text(_SCOPE), {"uid": user_id}).scalars())
    return Principal(int(row[0]), str(row[1]), str(row[2]), grids)


def audit(
    session: Session,
    *,
    action: str,
    user_id: int | None = None,
    username: str | None = None,
    method: str | None = None,
    path: str | None = None,
    status: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the audit log (in the caller's transaction)."""
    session.execute(
        text(
            """
            INSERT INTO audit_log (user_id, username, action, method, path, status, detail)
            VALUES (:uid, :name, :action, :method, :path, :status, CAST(:detail AS json))
            """
        ),
        {
            "uid": user_id,
            "name": username,
            "action": action,
            "method": method,
            "path": path,
            "status": status,
            "detail": None if detail is None else json.dumps(detail, ensure_ascii=False),
        },
    )
