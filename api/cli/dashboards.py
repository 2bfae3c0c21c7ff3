"""``wangge bench pages``: page size and time-to-ready of the dashboards at 10k–1M incidents."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from api.cli.app import bench_app, console

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@bench_app.command("pages")
def bench_pages(
    sizes: Annotated[
        str, typer.Option(help="incident counts, comma-separated")
    ] = "10000,100000,1000000",
    database_url: Annotated[
        str | None,
        typer.Option(help="database holding the district (default: the main one; only read)"),
    ] = None,
    out_dir: Annotated[Path, typer.Option(help="where to write the report")] = Path("var/bench"),
    repeats: Annotated[int, typer.Option(help="runs per page; the median is reported")] = 3,
) -> None:
    """Synthetic incidents in a temporary table over a real district; build every dashboard
    page and open it in headless Chromium (nothing is written to the database)."""
    from datetime import date

    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from api.routes.dashboards import (
        DashboardParams,
        briefing_page,
        clear_caches,
        incidents_page,
        overview_page,
        patrol_page_for,
    )
    from api.routes.hotspots import HotspotParams, hotspots_page
    from api.routes.stations import service_page
    from gis.access import Principal
    from gis.bench.pages import run_bench
    from gis.db.config import get_settings, get_taxonomy, normalise_url
    from maps.assets import STATIC_DIR

    counts = [int(s.replace("_", "")) for s in sizes.split(",") if s.strip()]
    url = normalise_url(database_url or get_settings().database_url)
    taxonomy = get_taxonomy()
    admin = Principal(0, "bench", "admin")

    def body(response: object) -> str:
        return bytes(response.body).decode("utf-8")  # type: ignore[attr-defined]

    def cold(build: Callable[[Session], str]) -> Callable[[Session], str]:
        def run(s: Session) -> str:
            clear_caches()  # time every page cold: no coverage or patrol layers kept
            return build(s)

        return run

    pages = {
        "overview": lambda s: overview_page(s, taxonomy, DashboardParams()),
        "incidents (month)": lambda s: incidents_page(s, taxonomy, DashboardParams()),
        "incidents (week)": lambda s: incidents_page(s, taxonomy, DashboardParams(period="week")),
        "hotspots": lambda s: body(hotspots_page(s, HotspotParams())),
        "service": lambda s: body(service_page(s)),
        "patrol": lambda s: patrol_page_for(s, admin, None, DashboardParams()),
        "briefing": lambda s: briefing_page(s, taxonomy, DashboardParams()),
    }
    pages = {name: cold(build) for name, build in pages.items()}
    engine = create_engine(url)
    with engine.connect() as conn:
        # one connection for everything: the temporary incidents table lives in it
        session = Session(bind=conn)
        name = conn.execute(text("SELECT current_database()")).scalar()
        conn.commit()
        result = run_bench(
            session,
            taxonomy,
            pages,
            static_dir=STATIC_DIR,
            sizes=counts,
            district=str(name),
            repeats=repeats,
        )
        session.close()
    engine.dispose()
    result["date"] = date.today().isoformat()
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
