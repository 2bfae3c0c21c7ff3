"""The home page; the dashboard pages themselves are in :mod:`api.routes.dashboards`."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

from api.security import public

router = APIRouter(tags=["pages"])


@router.get("/", include_in_schema=False, dependencies=[public()])
def home() -> RedirectResponse:
    """The overview map is the home page."""
    return RedirectResponse("/maps/overview")
