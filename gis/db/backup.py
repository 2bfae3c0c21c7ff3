"""Backup and restore with PostgreSQL's own tools (pg_dump custom format, pg_restore).

A restore runs in one transaction (``--single-transaction``): it either replaces the
database's content completely or changes nothing. Extension objects (PostGIS, pgRouting) are
left out of the restore list: they belong to the server set-up, need a superuser, and are
already in any database the set-up made; so is PostGIS's ``spatial_ref_sys``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from gis.errors import GisError

log = logging.getLogger(__name__)


def _conn_args(database_url: str) -> tuple[list[str], dict[str, str]]:
    """pg_* command-line arguments and environment for a SQLAlchemy URL."""
    url = make_url(database_url)
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return [*args, "--dbname", str(url.database)], env


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise GisError(f"{name} is not installed (Debian package postgresql-client-15)")
    return path


def backup(database_url: str, out: Path) -> Path:
    """Dump the whole database in pg_dump's custom format to ``out`` (written atomically)."""
    args, env = _conn_args(database_url)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".part")
    cmd = [_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(tmp), *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise GisError(f"pg_dump failed: {done.stderr.strip()}")
    tmp.replace(out)
    log.info(
        "backup of %s written to %s (%d bytes)",
        make_url(database_url).database,
        out,
        out.stat().st_size,
    )
    return out


def restore(database_url: str, dump: Path) -> None:
    """Replace the database's content with a dump, in one transaction."""
    dump = Path(dump)
    if not dump.is_file():
        raise GisError(f"no such backup file: {dump}")
    args, env = _conn_args(database_url)
    listing = subprocess.run(
        [_tool("pg_restore"), "--list", str(dump)], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise GisError(f"{dump} is not a pg_dump custom-format backup: {listing.stderr.strip()}")
    keep = [
        line
        for line in listing.stdout.splitlines()
        if not (
            " EXTENSION " in line
            or "spatial_ref_sys" in line  # PostGIS's own table, owned by the extension
            or line.rstrip().endswith(" SCHEMA - public postgres")
        )
    ]
    list_file = dump.with_suffix(".restore-list")
    list_file.write_text("\n".join(keep) + "\n")
    try:
        cmd = [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--use-list",
            str(list_file),
            *args,
            str(dump),
        ]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    finally:
        list_file.unlink(missing_ok=True)
    if done.returncode != 0:
        raise GisError(f"pg_restore failed, nothing was changed: {done.stderr.strip()}")
    log.info("restored %s into %s", dump, make_url(database_url).database)
