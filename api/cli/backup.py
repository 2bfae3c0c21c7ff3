"""`wangge backup` / `wangge restore`: the database to a file and back (pg_dump format)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from api.cli.app import app, console
from gis.db.config import get_settings


@app.command()
def backup(
    out: Annotated[
        Path | None, typer.Argument(help="file (default var/backups/<time>.dump)")
    ] = None,
) -> None:
    """Dump the whole database (pg_dump custom format)."""
    from gis.db.backup import backup as run

    settings = get_settings()
    target = (
        out or Path(settings.var_dir) / "backups" / f"wangge-{datetime.now():%Y%m%d-%H%M%S}.dump"
    )
    path = run(settings.database_url, target)
    console.print(f"backup written to {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
def restore(
    dump: Annotated[Path, typer.Argument(help="a file written by `wangge backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
) -> None:
    """Replace the database's content with a backup, in one transaction."""
    from gis.db.backup import restore as run

    settings = get_settings()
    if not yes:
        typer.confirm(
            f"replace everything in {settings.database_url.rsplit('/', 1)[-1]}?", abort=True
        )
    run(settings.database_url, dump)
    console.print(f"restored {dump}")
