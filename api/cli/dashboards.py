"""``wangge bench pages``: page size and time-to-ready of the dashboards at 10k–1M incidents."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.app import bench_app, console

BENCH_DB = "wangge_bench_dash"


def _bench_url(url: str | None) -> str:
    """The scratch database URL: given, or the configured server with :data:`BENCH_DB`."""
    from sqlalchemy.engine import make_url

    from gis.db.config import get_settings, normalise_url

    if url:
        return normalise_url(url)
    base = make_url(normalise_url(get_settings().database_url))
    return base.set(database=BENCH_DB).render_as_string(hide_password=False)


def _prepare(url: str, district: Path | None) -> None:
    """Create (if needed), migrate and fill the scratch database with a district's grids."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError
    from sqlalchemy.orm import Session

    from gis.db.migrate import upgrade

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": target.database}
        ).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pgrouting"))
    except (OperationalError, ProgrammingError) as exc:
        msg = (
            f"cannot create the PostGIS extensions in {target.database} ({exc.orig}); as a "
            f"superuser run: psql -d {target.database} -c 'CREATE EXTENSION postgis; "
            "CREATE EXTENSION pgrouting'"
        )
        raise typer.BadParameter(msg) from exc
    upgrade(url)
    with Session(engine) as session, session.begin():
        n = session.execute(text("SELECT count(*) FROM grids")).scalar()
        if not n:
            from gis.db.load import load_district

            if district is None:
                from data.generate import generate_district

                tmp = Path(tempfile.mkdtemp(prefix="wangge-bench-"))
                generate_district(tmp, preset="fixture", seed=7)
                district = tmp
            console.print(f"loading the district from {district} into {target.database}")
            load_district(session, district, tracks=False)
    engine.dispose()


@bench_app.command("pages")
def bench_pages(
    sizes: Annotated[
        str, typer.Option(help="incident counts, comma-separated")
    ] = "10000,100000,1000000",
    database_url: Annotated[
        str | None, typer.Option(help=f"scratch database (default: {BENCH_DB} on the server)")
    ] = None,
    district: Annotated[
        Path | None,
        typer.Option(help="district files for an empty scratch database (default: fixture)"),
    ] = None,
    out_dir: Annotated[Path, typer.Option(help="where to write the report")] = Path("var/bench"),
) -> None:
    """Load synthetic incidents, build every dashboard page, open it in headless Chromium."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from api.routes.dashboards import DashboardParams, briefing_page, incidents_page
    from gis.bench.pages import run_bench
    from gis.db.config import get_taxonomy
    from gis.db.queries.grids import grids_frame
    from gis.db.queries.incidents import heat_cells
    from maps.assets import STATIC_DIR
    from maps.overview import build_overview

    counts = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    url = _bench_url(database_url)
    _prepare(url, district)
    taxonomy = get_taxonomy()
    pages = {
        "incidents (month)": lambda s: incidents_page(s, taxonomy, DashboardParams()),
        "incidents (week)": lambda s: incidents_page(s, taxonomy, DashboardParams(period="week")),
        "briefing": lambda s: briefing_page(s, taxonomy, DashboardParams()),
        "overview": lambda s: build_overview(grids_frame(s), heat_cells(s)),
    }
    engine = create_engine(url)
    with Session(engine) as session:
        result = run_bench(session, taxonomy, pages, static_dir=STATIC_DIR, sizes=counts)
    engine.dispose()
    table = Table(title="wangge bench pages (goal: < 5 MB, < 3 s)")
    for col in ("incidents", "page", "HTML MB", "server s", "browser s", "total s", "errors", "ok"):
        table.add_column(col, justify="left" if col == "page" else "right")
    for r in result["rows"]:
        table.add_row(
            f"{r['incidents']:,}",
            r["page"],
            f"{r['bytes'] / 1e6:.2f}",
            f"{r['server_s']:.2f}",
            f"{r['browser_s']:.2f}",
            f"{r['total_s']:.2f}",
            str(r["console_errors"]),
            "yes" if r["ok"] else "[red]NO[/]",
        )
    console.print(table)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "pages.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    (out_dir / "pages.md").write_text(result["markdown"])
    console.print(f"wrote {out_dir / 'pages.md'} and .json")
