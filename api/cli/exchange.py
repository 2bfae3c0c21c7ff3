"""`wangge grids export|import|fuse`: grid layers to and from files, 多网融合 crosswalks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.app import console, grids_app

FORMAT_BY_SUFFIX = {".geojson": "geojson", ".json": "geojson", ".gpkg": "gpkg", ".zip": "shp"}
FORMAT_BY_SUFFIX[".kml"] = "kml"


@grids_app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help=".geojson, .gpkg, .zip (Shapefile) or .kml")],
    level: Annotated[str, typer.Option(help="street, community, grid, micro or dedicated")],
    crs: Annotated[str, typer.Option(help="wgs84, cgcs2000, gcj02 or bd09")] = "wgs84",
    fmt: Annotated[
        str | None, typer.Option("--format", help="geojson, gpkg, shp or kml (default: suffix)")
    ] = None,
) -> None:
    """Write the grids of one level to a file (code, name, level, parent, households...)."""
    from gis.db.queries.grids import grids_frame
    from gis.db.session import transaction
    from gis.errors import GisError
    from gis.exchange import write_layer

    fmt = fmt or FORMAT_BY_SUFFIX.get(out.suffix.lower())
    if fmt is None:
        console.print(f"[red]cannot tell the format of {out}; pass --format[/red]")
        raise typer.Exit(2)
    with transaction() as session:
        frame = grids_frame(session, level=level)
    if frame.empty:
        console.print(f"[red]there are no {level} grids[/red]")
        raise typer.Exit(1)
    try:
        data = write_layer(frame, fmt, crs=crs, layer=f"wangge_{level}")
    except GisError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    out.write_bytes(data)
    console.print(f"{len(frame)} {level} grids → {out} ({fmt}, {crs}, {len(data):,} bytes)")


@grids_app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the layer file")],
    crs: Annotated[str, typer.Option(help="the file's CRS: wgs84, cgcs2000, gcj02 or bd09")],
    repair: Annotated[bool, typer.Option(help="repair invalid geometry (make_valid)")] = False,
    dry_run: Annotated[bool, typer.Option(help="check and report, store nothing")] = False,
    reason: Annotated[str, typer.Option(help="kept in the grid history")] = "layer import (CLI)",
    who: Annotated[str, typer.Option(help="recorded as the editor")] = "cli",
) -> None:
    """Import a grid layer: new codes are created, changed outlines become new versions,
    all or nothing; a file breaking the hierarchy is refused with the list of problems."""
    from gis.db.queries.exchange import import_grids
    from gis.db.session import transaction
    from gis.errors import GisError
    from gis.exchange import LayerRejectedError, read_layer

    try:
        layer = read_layer(path.read_bytes(), path.name, crs=crs, repair=repair)
        with transaction() as session:
            report = import_grids(
                session,
                layer.frame,
                who=who,
                why=f"import of {path.name}: {reason}",
                repaired=layer.repaired,
            )
            if dry_run:
                session.rollback()
    except LayerRejectedError as exc:
        console.print(f"[red]refused: {exc}[/red]")
        table = Table(title="problems")
        for col in ("kind", "grids", "area_m2", "location", "detail"):
            table.add_column(col)
        for p in exc.problems:
            table.add_row(
                str(p.get("kind", "geometry")),
                str(p.get("grids", p.get("code", ""))),
                f"{float(p['area_m2']):.1f}" if "area_m2" in p else "",  # type: ignore[arg-type]
                json.dumps(p.get("location")),
                str(p.get("detail", p.get("reason", ""))),
            )
        console.print(table)
        raise typer.Exit(1) from None
    except GisError as exc:
        console.print(f"[red]refused: {exc}[/red]")
        raise typer.Exit(1) from None
    verb = "would be" if dry_run else "were"
    console.print(
        f"{len(report.created)} grids {verb} created, {len(report.replaced)} replaced "
        f"(new version), {len(report.unchanged)} unchanged, {len(report.repaired)} repaired"
    )


@grids_app.command("fuse")
def fuse(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="foreign layer")],
    crs: Annotated[str, typer.Option(help="the file's CRS: wgs84, cgcs2000, gcj02 or bd09")],
    level: Annotated[str, typer.Option(help="our level to compare with")] = "grid",
    out: Annotated[
        Path | None, typer.Option(help="folder for pairs/theirs/ours/changes CSV files")
    ] = None,
    sliver_width_m: Annotated[float, typer.Option(help="slivers are thinner than this")] = 5.0,
    sliver_share: Annotated[float, typer.Option(help="or below this share of both")] = 0.05,
) -> None:
    """多网融合: crosswalk another department's grid layer with ours (nothing is stored)."""
    from gis.db.queries.exchange import buildings_frame
    from gis.db.queries.grids import grids_frame
    from gis.db.session import transaction
    from gis.errors import GisError
    from gis.exchange import read_features
    from gis.fusion import FusionThresholds, crosswalk

    try:
        foreign = read_features(path.read_bytes(), path.name, crs=crs, require_code=False).frame
        with transaction() as session:
            ours = grids_frame(session, level=level)
            buildings = buildings_frame(session)
        cw = crosswalk(
            ours,
            foreign,
            buildings,
            thresholds=FusionThresholds(sliver_width_m=sliver_width_m, sliver_share=sliver_share),
        )
    except GisError as exc:
        console.print(f"[red]refused: {exc}[/red]")
        raise typer.Exit(1) from None
    table = Table(title=f"{path.name} vs our {level} grids: proposed changes")
    for col in ("code", "action", "into", "members", "moved m²", "households"):
        table.add_column(col)
    for r in cw.changes.itertuples(index=False):
        table.add_row(
            r.code,
            r.action,
            r.into or "",
            r.members,
            f"{r.area_moved_m2:,.0f}",
            f"{r.households_before}→{r.households_after}",
        )
    console.print(table)
    console.print(
        f"{len(cw.pairs)} overlapping pairs, {len(cw.slivers)} slivers, {len(cw.fused)} fused grids"
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name in ("pairs", "theirs", "ours", "changes"):
            getattr(cw, name).to_csv(out / f"{name}.csv", index=False, encoding="utf-8-sig")
        console.print(f"CSV tables in {out}")
