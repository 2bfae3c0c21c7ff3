"""Core commands: database, demo district, serving, geocoding, grid checks, geocode bench."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.app import _progress, _Stages, app, bench_app, console, db_app, grids_app
from gis.db.config import get_settings


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Run the Alembic migrations up to REVISION (default: head)."""
    from gis.db.migrate import upgrade

    upgrade(revision=revision)
    console.print(f"database migrated to [bold]{revision}[/]")


@db_app.command("load")
def db_load(
    data_dir: Annotated[Path, typer.Argument(help="folder written by `wangge generate`")],
    tracks: bool = True,
) -> None:
    """Replace the district in the database with the files in DATA_DIR (one transaction)."""
    from gis.db.load import load_district
    from gis.db.session import transaction

    t0 = time.perf_counter()
    with _progress() as progress, transaction() as session:
        counts = load_district(session, data_dir, progress=_Stages(progress), tracks=tracks)
    _print_counts("loaded", counts, time.perf_counter() - t0)


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(help="where to write the district files")],
    preset: Annotated[str, typer.Option(help="demo (full) or fixture (tiny, for tests)")] = "demo",
    seed: int = 20261122,
) -> None:
    """Generate the deterministic demo district (grids, roads, buildings, incidents, tracks)."""
    from data.generate import generate_district

    t0 = time.perf_counter()
    with _progress() as progress:
        manifest = generate_district(out_dir, preset=preset, seed=seed, progress=_Stages(progress))  # type: ignore[arg-type]
    counts = {k: v for k, v in manifest.get("counts", {}).items() if isinstance(v, int)}
    _print_counts("generated", counts, time.perf_counter() - t0)


@app.command()
def demo(
    data_dir: Annotated[Path | None, typer.Option(help="district folder")] = None,
    reload: Annotated[bool, typer.Option(help="reload even if this district is loaded")] = False,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="serve after loading")] = True,
    host: str | None = None,
    port: int | None = None,
) -> None:
    """The main job: generate (if needed) and load the demo district, then serve on :8000.

    Run twice, it keeps the data: a district already loaded from the same files is not
    reloaded, so incidents reported through the API stay.
    """
    from gis.db.load import load_district, loaded_district, manifest_digest
    from gis.db.session import transaction

    settings = get_settings()
    folder = data_dir or settings.data_dir
    if not (folder / "manifest.json").exists():
        console.print(f"generating the demo district into {folder}")
        generate(folder, preset="demo", seed=20261122)
    digest = manifest_digest(folder)
    with transaction() as session:
        current = loaded_district(session)
    if reload or current is None or current.get("digest") != digest:
        t0 = time.perf_counter()
        with _progress() as progress, transaction() as session:
            counts = load_district(session, folder, progress=_Stages(progress))
        _print_counts("loaded into PostGIS", counts, time.perf_counter() - t0)
    else:
        console.print(f"demo district already loaded ({current.get('incidents')} incidents); kept")
    _print_located_summary()
    from gis.db.queries.network import build_isochrones, load_demo_network, network_info

    with transaction() as session:
        if network_info(session) is None:
            report = load_demo_network(session)
            console.print(f"walking network built from the roads: {report}")
        built = build_isochrones(session)
    if built["computed"]:
        console.print(f"service circles: {built['isochrones']} isochrones computed")
    from api.cli.users import ensure_demo_users

    made = ensure_demo_users()
    if made:
        accounts, pw_file = made
        names = ", ".join(name for name, _ in accounts)
        console.print(f"demo accounts {names}: the password is in {pw_file}")
    from api.cli.incidents import run_replay

    replayed = run_replay()
    if replayed["incidents"]:
        console.print(
            f"replayed {replayed['incidents']:,} demo incidents through the closed loop "
            f"({replayed['events']:,} audited steps) in {replayed['total_s']:.1f} s"
        )
    if serve_:
        serve(host=host, port=port)


def _print_located_summary() -> None:
    from gis.db.queries.incidents import counts_by_location_status
    from gis.db.session import transaction

    with transaction() as session:
        counts = counts_by_location_status(session)
    _print_counts("incidents by location", counts, None)


@app.command()
def serve(host: str | None = None, port: int | None = None) -> None:
    """Serve the API and the dashboards (default http://127.0.0.1:8000)."""
    import uvicorn

    settings = get_settings()
    h = host or settings.host
    p = port or settings.port
    console.print(f"serving on [bold]http://{h}:{p}[/]  (map: /maps/overview, API docs: /docs)")
    if settings.sla_tick_seconds > 0:
        from api.cli.incidents import start_sla_ticker

        start_sla_ticker(settings.sla_tick_seconds)
    uvicorn.run("api.main:create_app", factory=True, host=h, port=p, log_level="info")


@app.command()
def geocode(
    in_path: Annotated[Path, typer.Argument(help="points: .csv, .geojson or .parquet")],
    out_path: Annotated[Path, typer.Argument(help="output: .csv, .geojson or .parquet")],
    crs: Annotated[str, typer.Option(help="input CRS: wgs84, cgcs2000, gcj02, bd09")] = "wgs84",
    chunk_rows: Annotated[int, typer.Option(help="rows per chunk (bounds memory)")] = 1_000_000,
    grids: Annotated[
        Path | None, typer.Option(help="grid file instead of the database (e.g. district.gpkg)")
    ] = None,
) -> None:
    """Assign every point of IN to its grid chain and write OUT, streaming in chunks."""
    import geopandas as gpd

    from gis.geocode import GridIndex
    from gis.io import geocode_file

    if grids is not None:
        frame = (
            gpd.read_file(grids, layer="grids") if grids.suffix == ".gpkg" else gpd.read_file(grids)
        )
    else:
        from gis.db.queries.grids import grids_frame
        from gis.db.session import transaction

        with transaction() as session:
            frame = grids_frame(session)
    index = GridIndex.from_grids(frame)
    t0 = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("geocode", total=None)
        summary = geocode_file(
            in_path,
            out_path,
            index,
            crs=crs,
            chunk_rows=chunk_rows,
            progress=lambda n: progress.update(task, advance=n),
        )
    seconds = time.perf_counter() - t0
    _print_counts("geocoded", {k: v for k, v in summary.items() if isinstance(v, int)}, seconds)


@bench_app.command("geocode")
def bench_geocode(
    sizes: Annotated[str, typer.Option(help="point counts, comma-separated")] = "1000000,10000000",
    postgis_max: Annotated[int, typer.Option(help="largest size run on PostGIS")] = 1_000_000,
    city_micro: Annotated[
        int, typer.Option(help="micro grids in the scaled city (0: skip)")
    ] = 100_000,
    out: Annotated[Path, typer.Option(help="results folder")] = Path("var/bench"),
    addresses: Annotated[int, typer.Option(help="perturbed demo addresses to evaluate")] = 2000,
) -> None:
    """GridIndex vs geopandas.sjoin vs a PostGIS GiST join on the demo grids and a scaled city
    (identical assignments checked), plus address-matching precision/recall on the demo."""
    import json

    import numpy as np

    from gis.address import Gazetteer, evaluate, perturb_address
    from gis.bench.geocode import run_geocode_bench, write_results
    from gis.db.queries.buildings import buildings_frame
    from gis.db.queries.grids import grids_frame
    from gis.db.session import transaction

    with transaction() as session:
        grids = grids_frame(session)
        buildings = buildings_frame(session)
    rows, info = run_geocode_bench(
        demo_grids=grids,
        database_url=get_settings().database_url,
        sizes=[int(s) for s in sizes.split(",")],
        postgis_max_points=postgis_max,
        city_micro=city_micro,
        progress=lambda msg: console.print(msg),
    )
    md, js = write_results(rows, out, info=info)
    table = Table(title="geocoding: points → micro grid (one core)")
    for col in ("dataset", "method", "points", "points/s", "vs GridIndex", "agree"):
        table.add_column(col, justify="right")
    for r in rows:
        ran = r.agree is not None
        table.add_row(
            r.dataset,
            r.method,
            f"{r.n_points:,}",
            f"{r.points_per_s:,.0f}" if ran else r.note,
            f"{r.ratio:.1f}×" if ran else "-",
            ("yes" if r.agree else "NO") if ran else "-",
        )
    console.print(table)
    rng = np.random.default_rng(7)
    gaz = Gazetteer.from_buildings(buildings)
    pick = rng.choice(len(buildings), size=addresses, replace=True)
    labelled = [
        (perturb_address(buildings["address"].iloc[i], rng), int(buildings["building_id"].iloc[i]))
        for i in pick
    ]
    t0 = time.perf_counter()
    result = evaluate(gaz, labelled)
    per_ms = (time.perf_counter() - t0) / max(result.n, 1) * 1e3
    summary = {
        "n": result.n,
        "resolved": result.resolved,
        "correct": result.correct,
        "precision": round(result.precision, 4),
        "recall": round(result.recall, 4),
        "ms_per_address": round(per_ms, 3),
        "buildings": len(buildings),
    }
    (out / "address.json").write_text(json.dumps(summary, indent=1))
    console.print(f"address matching on {result.n} perturbed demo addresses: {summary}")
    console.print(f"results written to {md}, {js} and {out / 'address.json'}")


@grids_app.command("check")
def grids_check(
    source: Annotated[
        Path | None, typer.Argument(help="a grid file (GeoPackage/GeoJSON); default: the database")
    ] = None,
    layer: str | None = None,
    out: Annotated[Path | None, typer.Option(help="write the report (.csv or .geojson)")] = None,
) -> None:
    """Validate the hierarchy: gaps, overlaps, slivers, spills, codes; exit 1 on problems."""
    import geopandas as gpd

    from gis.grids import check_hierarchy

    if source is None:
        from gis.db.queries.grids import grids_frame
        from gis.db.session import transaction

        with transaction() as session:
            grids = grids_frame(session)
    else:
        grids = gpd.read_file(source, layer=layer)
    report = check_hierarchy(grids)
    table = Table(title=f"grid check: {len(grids)} grids, {len(report)} problems")
    for col in ("kind", "level", "grids", "area_m2", "detail"):
        table.add_column(col)
    for row in report.head(50).itertuples():
        table.add_row(row.kind, row.level, row.grids, f"{row.area_m2:,.2f}", row.detail)
    console.print(table)
    if out is not None:
        if out.suffix == ".csv":
            report.assign(wkt=report.geometry.to_wkt()).drop(columns="geometry").to_csv(
                out, index=False
            )
        else:
            report.to_file(out)
        console.print(f"report written to {out}")
    if len(report):
        raise typer.Exit(1)


def _print_counts(title: str, counts: dict[str, int], seconds: float | None) -> None:
    table = Table(title=title + (f" in {seconds:.1f} s" if seconds is not None else ""))
    table.add_column("what")
    table.add_column("rows", justify="right")
    for key, value in counts.items():
        table.add_row(key, f"{value:,}")
    console.print(table)


if __name__ == "__main__":
    app()
