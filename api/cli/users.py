"""`wangge users`: accounts and roles (the first admin is made here)."""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer

from api.cli.app import app, console

users_app = typer.Typer(help="Users and roles.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@users_app.command("add")
def add(
    username: str,
    role: Annotated[
        str, typer.Option(help="admin, planner, patroller, leader, dispatcher, community")
    ],
    staff_id: Annotated[int | None, typer.Option(help="the grid worker (patroller)")] = None,
    community: Annotated[str | None, typer.Option(help="community code (community)")] = None,
) -> None:
    """Create a user; the password is read from WANGGE_NEW_PASSWORD or asked for twice."""
    from api.security import hash_password
    from gis.db.queries.users import add_user
    from gis.db.session import transaction

    password = os.environ.get("WANGGE_NEW_PASSWORD")
    if not password:
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            raise typer.BadParameter("the two passwords differ")
    try:
        digest = hash_password(password)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    with transaction() as session:
        user_id = add_user(
            session,
            username=username,
            password_hash=digest,
            role=role,
            staff_id=staff_id,
            community_code=community,
        )
    console.print(f"user {username} ({role}) created with id {user_id}")


def ensure_demo_users() -> tuple[list[tuple[str, str]], str] | None:
    """On a database with no users: one account per role for trying the demo, sharing one
    password (``WANGGE_DEMO_PASSWORD``, else generated once and kept in
    ``var/demo-password.txt``, mode 600). Returns (accounts, password file), or None."""
    import secrets
    from pathlib import Path

    from sqlalchemy import text

    from api.security import hash_password
    from gis.db.config import get_settings
    from gis.db.queries.users import add_user
    from gis.db.session import transaction

    with transaction() as session:
        if session.execute(text("SELECT count(*) FROM users")).scalar_one():
            return None
        pw_file = Path(get_settings().var_dir) / "demo-password.txt"
        password = os.environ.get("WANGGE_DEMO_PASSWORD")
        if not password:
            if pw_file.exists():
                password = pw_file.read_text().strip()
            else:
                password = secrets.token_urlsafe(12)
                pw_file.parent.mkdir(parents=True, exist_ok=True)
                pw_file.write_text(password + "\n")
                pw_file.chmod(0o600)
        digest = hash_password(password)
        worker = session.execute(
            text("SELECT id FROM staff WHERE role = '网格员' ORDER BY id LIMIT 1")
        ).scalar_one_or_none()
        community = session.execute(
            text("SELECT code FROM grids WHERE level = 'community' ORDER BY code LIMIT 1")
        ).scalar_one_or_none()
        accounts = [("admin", "admin"), ("leader", "leader"), ("dispatcher", "dispatcher"),
                    ("planner", "planner")]  # fmt: skip
        for name, role in accounts:
            add_user(session, username=name, password_hash=digest, role=role)
        if worker is not None:
            add_user(session, username="patroller", password_hash=digest, role="patroller",
                     staff_id=int(worker))  # fmt: skip
            accounts.append(("patroller", "patroller"))
        if community is not None:
            add_user(session, username="community", password_hash=digest, role="community",
                     community_code=str(community))  # fmt: skip
            accounts.append(("community", "community"))
    return accounts, str(pw_file)
