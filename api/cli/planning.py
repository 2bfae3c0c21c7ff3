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
    min_households: Annotated[
        int, typer.Option("--min", min=1, help="households per micro grid, at least")
    ] = 30,
    max_households: Annotated[
        int, typer.Option("--max", min=1, help="households per micro grid, at most")
    ] = 80,
    dry_run: Annotated[bool, typer.Option(help="compute and report, store nothing")] = False,
) -> None:
    """Re-partition a 三级 grid (or every 三级 grid of a community) into micro grids (微网格)
    of 30–80 households. Each 三级 grid is one audited transaction on its own: a grid that
    cannot be partitioned is reported with the reason and the others go on. Prints one row
    per 三级 grid (micro grids made, households per part, method, seconds); exit code 1 when
    any grid was refused."""
    from gis.db.queries.planning import auto_partition_grid
    from gis.db.session import transaction
    from gis.errors import GisError

    t0 = time.perf_counter()
    with transaction() as session:
        gid, _ = _grid_id(session, code)
        level = session.execute(
            text("SELECT level FROM grids WHERE id = :id"), {"id": gid}
        ).scalar_one()
        if level not in ("grid", "community"):
            console.print(f"[red]{code} is a {level} grid: give a 三级 grid or a community[/red]")
            raise typer.Exit(2)
        targets = (
            [(code, gid)]
            if level == "grid"
            else [
                (str(r[0]), int(r[1]))
                for r in session.execute(
                    text(
                        "SELECT code, id FROM grids WHERE parent_id = :id AND level = 'grid' "
                        "ORDER BY code"
                    ),
                    {"id": gid},
                )
            ]
        )
    table = Table(
        title=f"{code}: micro grids of {min_households}–{max_households} households"
        + (" (dry run)" if dry_run else "")
    )
    for col in ("三级 grid", "result", "micro grids", "households", "method", "seconds"):
        table.add_column(
            col,
            justify="right" if col in ("micro grids", "seconds") else "left",
            no_wrap=col == "三级 grid",
        )
    refused = 0
    for tcode, tid in targets:
        t1 = time.perf_counter()
        try:
            with transaction() as session:  # one audited transaction per 三级 grid
                tver = session.execute(
                    text("SELECT version FROM grids WHERE id = :id"), {"id": tid}
                ).scalar_one()
                res = auto_partition_grid(
                    session,
                    tid,
                    version=tver,
                    who="cli",
                    why=reason,
                    min_hh=min_households,
                    max_hh=max_households,
                )
                if dry_run:
                    session.rollback()
        except GisError as exc:
            refused += 1
            table.add_row(
                tcode, "[red]refused[/red]", "", str(exc), "", f"{time.perf_counter() - t1:.1f}"
            )
            continue
        assert res.partition is not None
        hh = res.partition.households
        method = "building graph" if res.partition.notes else "straight cuts"
        table.add_row(
            tcode,
            "done",
            str(len(hh)),
            f"{min(hh)}–{max(hh)}: {' '.join(map(str, hh))}",
            method,
            f"{time.perf_counter() - t1:.1f}",
        )
    console.print(table)
    console.print(
        f"{len(targets) - refused} of {len(targets)} 三级 grids partitioned, {refused} refused, "
        f"{time.perf_counter() - t0:.1f} s"
    )
    if refused:
        raise typer.Exit(1)
