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
