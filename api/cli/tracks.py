"""`wangge tracks import` and `wangge bench tracks`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.app import _progress, _Stages, app, bench_app, console

tracks_app = typer.Typer(help="Patrol tracks: import, compliance.", no_args_is_help=True)
app.add_typer(tracks_app, name="tracks")

SUFFIXES = (".gpx", ".geojson", ".json", ".csv", ".gz")


@tracks_app.command("import")
def tracks_import(
    folder: Annotated[Path, typer.Argument(help="a folder of GPX/GeoJSON/CSV files (or one file)")],
    crs: Annotated[str, typer.Option(help="wgs84 or gcj02")] = "wgs84",
    staff_id: Annotated[
        int | None, typer.Option(help="whose tracks (default: the number in worker_<id>.*)")
    ] = None,
) -> None:
    """Import track files with a progress bar; files already imported are skipped (same
    bytes). All files go in one transaction: a malformed file stops the import with the
    file and place named, and nothing is stored."""
    from gis.db.queries.tracks import TrackSource, store_uploads
    from gis.db.session import transaction
    from gis.errors import GisError

    paths = (
        [folder]
        if folder.is_file()
        else sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES)
    )
    if not paths:
        raise typer.BadParameter(f"no track files in {folder}")

    def staff_of(p: Path) -> int | None:
        if staff_id is not None:
            return staff_id
        digits = p.name.split(".", 1)[0].rsplit("_", 1)[-1]
        return int(digits) if digits.isdigit() else None

    sources = [TrackSource(p.name, p.read_bytes(), staff_of(p)) for p in paths]
    try:
        with _progress() as progress, transaction() as session:
            reports = store_uploads(session, sources, crs=crs, progress=_Stages(progress))
    except GisError as exc:
        console.print(f"[red]nothing imported: {exc}")
        raise typer.Exit(1) from exc
    new = [r for r in reports if not r.get("duplicate")]
    n_tracks = sum(len(r.get("tracks", [])) for r in new)
    n_points = sum(int(r.get("points", 0)) for r in new)
    dropped: dict[str, int] = {}
    for r in new:
        for t in r.get("tracks", []):
            for k, v in t.get("dropped", {}).items():
                dropped[k] = dropped.get(k, 0) + int(v)
    console.print(
        f"imported {len(new)} files ({len(reports) - len(new)} already there): "
        f"{n_tracks} tracks, {n_points:,} fixes; dropped {dropped or 'none'}"
    )
    for r in new:
        for w in r.get("warnings", []):
            console.print(f"[yellow]{r['file']}: {w}")


@bench_app.command("tracks")
def bench_tracks(
    workers: Annotated[int, typer.Option(help="grid workers (one GPX day each)")] = 600,
    processes: Annotated[int | None, typer.Option(help="default: one per core")] = None,
    data_dir: Annotated[Path, typer.Option(help="where the GPX files go")] = Path(
        "var/bench/tracks"
    ),
    out_dir: Annotated[Path, typer.Option(help="where to write the report")] = Path("var/bench"),
) -> None:
    """GPX → clean → grids → per-grid stats for a day of 600 workers, against gpxpy."""
    from gis.bench.tracks import run_bench
    from gis.db.session import transaction

    with transaction() as session:
        result = run_bench(session, data_dir, workers=workers, processes=processes)
        session.rollback()
    table = Table(title="wangge bench tracks")
    for col in ("step", "method", "points", "seconds", "points/s", "vs wangge"):
        table.add_column(col)
    for r in result["rows"]:
        table.add_row(
            r["step"],
            r["method"],
            f"{r['points']:,}",
            f"{r['seconds']:.2f}",
            f"{r['per_s']:,.0f}",
            r["ratio"],
        )
    console.print(table)
    console.print(f"checks: {result['checks']}")
    goal = "met" if result["goal_met"] else "NOT met"
    console.print(f"goal ≥ 1,000,000 points/s end to end: {goal}")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tracks.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    (out_dir / "tracks.md").write_text(result["markdown"])
    console.print(f"wrote {out_dir / 'tracks.md'} and .json")
