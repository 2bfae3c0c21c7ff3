"""`wangge` commands for the walking network, isochrones and their benchmark."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.app import app, bench_app, console

network_app = typer.Typer(help="Walking network (pgRouting topology).", no_args_is_help=True)
app.add_typer(network_app, name="network")
isochrones_app = typer.Typer(help="Service-circle isochrones.", no_args_is_help=True)
app.add_typer(isochrones_app, name="isochrones")


def _read_lines(path: Path):  # -> tuple[GeoDataFrame, GeoDataFrame | None, GeoDataFrame | None]
    import geopandas as gpd

    from gis.errors import FileFormatError
    from gis.network import read_osm_lines

    name = path.name.lower()
    if name.endswith((".osm", ".osm.pbf", ".pbf", ".osm.xml")):
        return read_osm_lines(str(path))
    if name.endswith((".geojson", ".json", ".gpkg")):
        gdf = gpd.read_file(path)
        if "kind" not in gdf.columns and "highway" in gdf.columns:
            gdf = gdf.rename(columns={"highway": "kind"})
        return gdf, None, None
    raise FileFormatError(f"{path}: expected .osm, .osm.pbf, .geojson or .gpkg")


@network_app.command("load")
def network_load(
    osm: Annotated[
        Path | None,
        typer.Option(help="OSM .osm/.osm.pbf or GeoJSON lines; default: the roads table"),
    ] = None,
) -> None:
    """Build the walking network (noded, metres) and store it in the pgRouting tables."""
    from gis.db.queries.network import load_demo_network, save_network
    from gis.db.session import transaction
    from gis.network import build_network

    t0 = time.perf_counter()
    with transaction() as session:
        if osm is None:
            report = load_demo_network(session)
            source = "roads table"
        else:
            lines, compounds, gates = _read_lines(osm)
            net, report = build_network(lines, compounds=compounds, gates=gates)
            source = str(osm)
            save_network(session, net, report, source=source)
    _print_report(source, report.as_dict(), time.perf_counter() - t0)


def _print_report(source: str, rep: dict, seconds: float) -> None:
    table = Table(title=f"walking network from {source} ({seconds:.1f} s)")
    table.add_column("item")
    table.add_column("count", justify="right")
    for key in ("lines_in", "edges", "nodes", "length_km", "walls_cut", "gates"):
        table.add_row(key, str(rep[key]))
    for kind, n in sorted(rep["kinds"].items()):
        table.add_row(f"kept: {kind}", str(n))
    for why, n in sorted(rep["skipped"].items()):
        table.add_row(f"[yellow]skipped: {why}[/]", str(n))
    console.print(table)


@isochrones_app.command("build")
def isochrones_build(
    speed_kmh: Annotated[float, typer.Option(help="walking speed, km/h")] = 4.5,
    buffer_m: Annotated[float, typer.Option(help="buffer around reached streets, m")] = 40.0,
    force: Annotated[bool, typer.Option(help="recompute even if current")] = False,
) -> None:
    """Compute 5/10/15-minute isochrones for every station (skipped when already current)."""
    from gis.db.queries.network import build_isochrones
    from gis.db.session import transaction

    t0 = time.perf_counter()
    with transaction() as session:
        out = build_isochrones(session, speed_kmh=speed_kmh, buffer_m=buffer_m, force=force)
    verb = "computed" if out["computed"] else "already current, kept"
    console.print(
        f"{out['isochrones']} isochrones {verb} "
        f"(fingerprint {str(out['fingerprint'])[:12]}, {time.perf_counter() - t0:.1f} s)"
    )


@isochrones_app.command("coverage")
def isochrones_coverage(
    speed_kmh: Annotated[float, typer.Option(help="walking speed, km/h")] = 4.5,
) -> None:
    """Households within 5/10/15 minutes, by street and by straight line."""
    from gis.db.queries.network import district_coverage
    from gis.db.session import transaction

    with transaction() as session:
        cov = district_coverage(session, speed_kmh=speed_kmh)
    s = cov.summary
    table = Table(title="coverage (households)")
    for col in ("scope", "key", "minutes", "households", "households_straight", "share"):
        table.add_column(col)
    for r in s[s["scope"] != "grid"].itertuples():
        table.add_row(
            r.scope,
            r.key,
            str(r.minutes),
            str(r.households),
            str(r.households_straight),
            f"{r.share:.1%}",
        )
    console.print(table)
    console.print(f"{len(cov.outside())} buildings outside the 15-minute circle")


@bench_app.command("isochrones")
def bench_isochrones(
    edges: Annotated[int, typer.Option(help="edges of the generated network")] = 200_000,
    out_dir: Annotated[Path, typer.Option(help="where to write the report")] = Path("var/bench"),
    pgr_sources: Annotated[
        int, typer.Option(help="stations timed in the pgRouting loop on the big network")
    ] = 20,
) -> None:
    """Project vs pgr_drivingDistance loop vs networkx, on the demo and a generated network."""
    from gis.bench.isochrones import run_bench
    from gis.db.session import transaction

    with transaction() as session:
        result = run_bench(session, edges=edges, pgr_sources=pgr_sources)
        session.rollback()  # the bench tables are scratch
    table = Table(title="wangge bench isochrones")
    for col in ("dataset", "method", "sources", "seconds", "sources/s", "vs project", "agree"):
        table.add_column(col)
    for r in result["rows"]:
        table.add_row(
            r["dataset"],
            r["method"],
            str(r["sources"]),
            f"{r['seconds']:.3f}",
            f"{r['per_s']:.1f}",
            r["ratio"],
            "yes" if r["agree"] else "NO",
        )
    console.print(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "isochrones.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    (out_dir / "isochrones.md").write_text(result["markdown"])
    console.print(f"wrote {out_dir / 'isochrones.md'} and .json")
