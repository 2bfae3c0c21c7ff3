"""Dashboard pages built by ``maps/`` from the database, served as HTML."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SessionDep
from api.security import allow, public
from gis.access import ROLES
from gis.db.queries.grids import grids_frame
from gis.db.queries.incidents import heat_cells
from maps.overview import build_overview

router = APIRouter(tags=["pages"])


@router.get("/", include_in_schema=False, dependencies=[public()])
def home() -> RedirectResponse:
    """The overview map is the home page."""
    return RedirectResponse("/maps/overview")


@router.get(
    "/maps/overview",
    response_class=HTMLResponse,
    summary="Grid overview map page",
    dependencies=[allow(*ROLES)],
)
def overview(session: SessionDep) -> HTMLResponse:
    """Grid outlines per level and the incident heatmap (aggregated cells, not raw points)."""
    grids = grids_frame(session)
    heat = heat_cells(session)
    return HTMLResponse(build_overview(grids, heat, title="网格总览"))
