"""The FastAPI application: grids, incidents and the dashboard pages."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles

from api import security
from api.errors import add_exception_handlers, document_errors
from api.limits import BodySizeLimit, RateLimit
from api.routes import (
    community,
    dashboards,
    docs,
    exchange,
    field,
    geocode,
    grids,
    hotspots,
    incidents,
    ogc,
    open311,
    pages,
    party,
    residents,
    stations,
    tracks,
)
from gis.db.config import get_settings
from maps.assets import STATIC_DIR


def create_app() -> FastAPI:
    """Build the app; no database connection is made until the first request."""
    app = FastAPI(
        title="Wangge 网格",
        version="0.1.0",
        description="Community grid governance (网格化基层治理): grids, geocoding, incidents.",
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(security.default_deny)],
    )
    add_exception_handlers(app)
    # No CORS middleware: other origins get no Access-Control-Allow-Origin (closed).
    app.add_middleware(RateLimit, per_minute=lambda: get_settings().rate_per_minute)
    app.add_middleware(BodySizeLimit, max_bytes=lambda: get_settings().max_upload_mb * 1_000_000)
    document_errors(app)
    app.include_router(security.router)
    app.include_router(exchange.router)  # before grids: /grids/export is not /grids/{id}
    app.include_router(grids.router)
    app.include_router(grids.page_router)  # /maps/planner
    app.include_router(incidents.router)
    app.include_router(incidents.media_router)
    app.include_router(incidents.kpi_router)
    app.include_router(geocode.router)
    app.include_router(tracks.router)
    app.include_router(stations.router)
    app.include_router(open311.router)
    app.include_router(community.router)
    app.include_router(residents.router)
    app.include_router(field.router)
    app.include_router(party.router)
    app.include_router(ogc.router)
    app.include_router(pages.router)
    app.include_router(dashboards.router)
    app.include_router(hotspots.router)
    app.include_router(docs.router)
    STATIC_DIR.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
