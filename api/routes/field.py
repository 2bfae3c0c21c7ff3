"""The patroller's page (网格员移动端) as an installable PWA: the app shell, its script and
style, the web manifest, the icons and the service worker, all under ``/field/`` (the
service worker's scope), ``/field/me`` for who is signed in and ``/field/grids`` for the
outlines of their grids on the page's map.

The shell is public on purpose: it holds no data and must open from the service worker's
cache with no network; everything personal comes from the API, which checks the sign-in
(the HttpOnly cookie set by ``/auth/login``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from api.deps import SessionDep
from api.security import allow, current_principal, public
from gis.access import ROLES, Principal
from gis.db.queries.field import my_grids
from gis.db.queries.grids import grids_frame
from maps.field import (
    ICON_SIZES,
    SCOPE,
    app_script,
    app_style,
    field_page,
    icon_png,
    manifest,
    service_worker,
)

router = APIRouter(tags=["field"])
ROLE_LABELS = {
    "admin": "系统管理员",
    "planner": "规划员",
    "patroller": "网格员",
    "leader": "领导",
    "dispatcher": "调度员",
    "community": "社区账号",
}
# the shell must be re-checked when online (no stale page after an update); the service
# worker keeps the offline copy
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("/field", include_in_schema=False, dependencies=[public()])
def field_redirect() -> RedirectResponse:
    """``/field`` → ``/field/`` (the page must be inside the service worker's scope)."""
    return RedirectResponse(SCOPE, status_code=308)


@router.get("/field/", response_class=HTMLResponse, dependencies=[public()],
            summary="The patroller's page (installable, works offline)")  # fmt: skip
def field_shell() -> HTMLResponse:
    """The app shell; it signs in through ``/auth/login`` and reads the API."""
    return HTMLResponse(field_page(), headers=NO_CACHE)


@router.get("/field/app.js", include_in_schema=False, dependencies=[public()])
def field_script() -> Response:
    """The page's script (plain JavaScript, no library)."""
    return Response(app_script(), media_type="text/javascript; charset=utf-8", headers=NO_CACHE)


@router.get("/field/app.css", include_in_schema=False, dependencies=[public()])
def field_style() -> Response:
    """The page's style."""
    return Response(app_style(), media_type="text/css; charset=utf-8", headers=NO_CACHE)


@router.get("/field/sw.js", include_in_schema=False, dependencies=[public()])
def field_service_worker() -> Response:
    """The service worker, scope ``/field/``; never cached by HTTP so updates are seen."""
    return Response(
        service_worker(),
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "no-cache, no-store", "Service-Worker-Allowed": SCOPE},
    )


@router.get("/field/manifest.webmanifest", include_in_schema=False, dependencies=[public()])
def field_manifest() -> JSONResponse:
    """The web app manifest (name, scope, start URL, standalone display, icons)."""
    return JSONResponse(manifest(), media_type="application/manifest+json", headers=NO_CACHE)


@router.get("/field/icon-{size}.png", include_in_schema=False, dependencies=[public()])
def field_icon(size: Annotated[int, PathParam(ge=1, le=4096)]) -> Response:
    """The app icon in the sizes the manifest names."""
    if size not in ICON_SIZES:
        raise HTTPException(404, f"icons come in {', '.join(map(str, ICON_SIZES))} pixels")
    return Response(icon_png(size), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=86400"})  # fmt: skip


@router.get("/field/me", dependencies=[public()], summary="Who is signed in, and their grids")
def field_me(request: Request, session: SessionDep) -> dict[str, Any]:
    """``signed_in: false`` when nobody is (no 401: the page then offers the sign-in form);
    else the user name, role and the grids assigned to them."""
    auth = request.headers.get("authorization", "")
    bearer = auth[7:] if auth.lower().startswith("bearer ") else None
    try:
        who = current_principal(request, session, bearer)
    except HTTPException:
        return {"signed_in": False}
    staff_id, grids = my_grids(session, who.user_id) if who.user_id else (None, [])
    return {
        "signed_in": True,
        "username": who.username,
        "role": who.role,
        "role_label": ROLE_LABELS.get(who.role, who.role),
        "staff_id": staff_id,
        "grids": grids,
        "all_grids": who.grid_ids is None,
    }


@router.get("/field/grids", summary="My grids as GeoJSON, for the page's map")
def field_grids(who: Annotated[Principal, allow(*ROLES)], session: SessionDep) -> dict[str, Any]:
    """The grids in the signed-in account's scope (the assigned grids and every grid below
    them), EPSG:4326; an account not limited by grid gets the community outlines."""
    if who.grid_ids is None:
        frame = grids_frame(session, level="community")
    else:
        frame = grids_frame(session)
        frame = frame[frame["id"].isin(who.grid_ids)]
    frame = frame[["id", "code", "name", "level", "geometry"]].set_index("id")
    return json.loads(frame.to_json(drop_id=False))
