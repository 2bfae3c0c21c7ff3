"""`wangge grids …` planning commands: automatic split, micro-grid partition, history."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import text

from api.cli.app import console, grids_app


def _grid_id(session: object, code: str) -> tuple[int, int]:
    rec = session.execute(  # type: ignore[attr-defined]
        text("SELECT id, version FROM grids WHERE code = :code"), {"code": code}
    ).one_or_none()
    if rec is None:
        console.print(f"[red]no grid with code {code}[/red]")
        raise typer.Exit(2)
    return int(rec[0]), int(rec[1])


def _report(title: str, households: list[int], imbalance: float, seconds: float) -> None:
    table = Table(title=title)
    table.add_column("part")
    table.add_column("households", justify="right")
    for i, hh in enumerate(households, start=1):
        table.add_row(str(i), str(hh))
    console.print(table)
    console.print(f"imbalance {imbalance:.1%}, {seconds:.2f} s")


@grids_app.command("autosplit")
def autosplit(
    code: Annotated[str, typer.Argument(help="code of the grid to split")],
    parts: Annotated[int, typer.Argument(min=2, max=50, help="number of parts")],
    reason: Annotated[str, typer.Option(help="kept in the grid history")] = "auto-split (CLI)",
    dry_run: Annotated[bool, typer.Option(help="compute and report, store nothing")] = False,
) -> None:
    """Split a grid into PARTS contiguous parts with balanced households (自动划分)."""
    from gis.db.queries.planning import auto_split_grid
    from gis.db.session import transaction
    from gis.errors import GisError

    t0 = time.perf_counter()
    try:
        with transaction() as session:
            gid, version = _grid_id(session, code)
            res = auto_split_grid(session, gid, parts, version=version, who="cli", why=reason)
            if dry_run:
                session.rollback()
    except GisError as exc:
        console.print(f"[red]refused: {exc}[/red]")
        raise typer.Exit(1) from None
    assert res.partition is not None
    p = res.partition
    _report(f"{code} split into {parts}", p.households, p.imbalance, time.perf_counter() - t0)


@grids_app.command("autopartition")
def autopartition(
    code: Annotated[str, typer.Argument(help="code of a 三级 grid, or a community")],
    reason: Annotated[str, typer.Option(help="kept in the grid history")] = "auto-partition (CLI)",
    dry_run: Annotated[bool, typer.Option(help="compute and report, store nothing")] = False,
) -> None:
    """Re-partition a 三级 grid (or every 三级 grid of a community) into micro grids (微网格)
    of 30–80 households; prints households per part, imbalance and the time taken."""
    from gis.db.queries.planning import auto_partition_grid
    from gis.db.session import transaction
    from gis.errors import GisError

    t0 = time.perf_counter()
    all_hh: list[int] = []
    worst = 0.0
    try:
        with transaction() as session:
            gid, version = _grid_id(session, code)
            level = session.execute(
                text("SELECT level FROM grids WHERE id = :id"), {"id": gid}
            ).scalar_one()
            targets = (
                [(gid, version)]
                if level == "grid"
                else [
                    (int(r[0]), int(r[1]))
                    for r in session.execute(
                        text("SELECT id, version FROM grids WHERE parent_id = :id ORDER BY code"),
                        {"id": gid},
                    )
                ]
            )
            for tid, tv in targets:
                res = auto_partition_grid(session, tid, version=tv, who="cli", why=reason)
                assert res.partition is not None
                all_hh.extend(res.partition.households)
                worst = max(worst, res.partition.imbalance)
            if dry_run:
                session.rollback()
    except GisError as exc:
        console.print(f"[red]refused: {exc}[/red]")
        raise typer.Exit(1) from None
    _report(
        f"{code}: {len(targets)} 三级 grids → {len(all_hh)} micro grids",
        all_hh,
        worst,
        time.perf_counter() - t0,
    )
