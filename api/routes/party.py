"""党员中心户: link party members to the key households they look after (1–5 each), record
their visits, and the weekly report of visits by grid workers and party members together,
with the key households that nobody visited (JSON or CSV)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from api.deps import ClockDep, SessionDep
from api.security import PrincipalDep, allow
from gis.access import ROLES, Principal
from gis.crs import check_lonlat, to_wgs84
from gis.db.queries.party import (
    household_grids,
    link_households,
    links,
    record_visit,
    unlink_household,
    visit_compliance_combined,
)
from gis.db.queries.tracks import LOCAL_TZ
from gis.party import MAX_HOUSEHOLDS, PartyLinkConflict, unvisited

router = APIRouter(prefix="/party", tags=["party"])
OFFICE = ("admin", "dispatcher", "community")  # who links households to party members
RECORDERS = ("admin", "dispatcher", "community", "patroller")  # who records a visit


class LinkIn(BaseModel):
    """Key households a party member (volunteer of kind party_member) looks after."""

    volunteer_id: int = Field(ge=1)
    household_ids: list[Annotated[int, Field(ge=1)]] = Field(
        min_length=1, max_length=MAX_HOUSEHOLDS
    )


class VisitIn(BaseModel):
    """A party member's visit to a household linked to them: when, optionally where."""

    household_id: int = Field(ge=1)
    volunteer_id: int = Field(ge=1)
    visited_at: datetime = Field(examples=["2026-12-01T09:30:00+08:00"])
    lon: float | None = None
    lat: float | None = None
    crs: str = Field(default="wgs84", description="wgs84 (phones' GPS), cgcs2000, gcj02, bd09")
    note: str | None = Field(default=None, max_length=1000)


def _scope(who: Principal) -> list[int] | None:
    return None if who.grid_ids is None else sorted(who.grid_ids)


def _check_scope(session: SessionDep, who: Principal, household_ids: list[int]) -> None:
    """A scoped role acts only on key households in its grids (404 otherwise, as if absent)."""
    if who.grid_ids is None:
        return
    grids = household_grids(session, household_ids)
    outside = [h for h in household_ids if h in grids and not who.in_scope(grids[h])]
    if outside:
        raise HTTPException(404, f"no key households {outside}")


@router.post("/links", status_code=201, dependencies=[allow(*OFFICE)],
             summary="Link key households to a party member (1–5 each)")  # fmt: skip
def post_links(body: LinkIn, session: SessionDep, who: PrincipalDep) -> dict[str, Any]:
    """Households already linked to this party member stay; one linked to another party
    member is a 409 (unlink it first); more than five in all is a 422."""
    _check_scope(session, who, body.household_ids)
    try:
        added = link_households(session, body.volunteer_id, body.household_ids, by=who.username)
    except PartyLinkConflict as exc:
        raise HTTPException(409, str(exc)) from None
    return {
        "volunteer_id": body.volunteer_id,
        "added": added,
        "households": [r["household_id"] for r in links(session, volunteer_id=body.volunteer_id)],
    }


@router.delete("/links/{household_id}", dependencies=[allow(*OFFICE)],
               summary="Unlink a key household from its party member")  # fmt: skip
def delete_link(household_id: int, session: SessionDep, who: PrincipalDep) -> dict[str, int]:
    """The household keeps its visits; only the link goes."""
    _check_scope(session, who, [household_id])
    return {"household_id": household_id, "volunteer_id": unlink_household(session, household_id)}


@router.get("/links", dependencies=[allow(*ROLES)], summary="Party members' key households")
def get_links(
    session: SessionDep,
    who: PrincipalDep,
    volunteer_id: Annotated[int | None, Query(ge=1)] = None,
) -> list[dict[str, Any]]:
    """Each link: household (kind, grid; no personal data) and party member."""
    return jsonable_encoder(links(session, volunteer_id=volunteer_id, grid_ids=_scope(who)))


@router.post("/visits", status_code=201, dependencies=[allow(*RECORDERS)],
             summary="Record a party member's visit to a key household")  # fmt: skip
def post_visit(
    body: VisitIn,
    session: SessionDep,
    who: PrincipalDep,
    response: Response,
    clock: ClockDep,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> dict[str, Any]:
    """The visit counts towards the week's compliance like a grid worker's. A position (any
    supported CRS, stored in WGS84) must be within 300 m of the household's building. Send
    an ``Idempotency-Key`` to make retries safe (the same key: 200 with the stored visit)."""
    _check_scope(session, who, [body.household_id])
    lon = lat = None
    if (body.lon is None) != (body.lat is None):
        raise HTTPException(422, "give both lon and lat, or neither")
    if body.lon is not None and body.lat is not None:
        x, y = to_wgs84([body.lon], [body.lat], body.crs)
        check_lonlat(x, y, require_china=True)
        lon, lat = float(x[0]), float(y[0])
    visit, created = record_visit(
        session,
        household_id=body.household_id,
        volunteer_id=body.volunteer_id,
        visited_at=body.visited_at,
        now=clock(),
        lon=lon,
        lat=lat,
        note=body.note,
        idempotency_key=idempotency_key,
        by=who.username,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return jsonable_encoder(visit)


def _report(frame: pd.DataFrame, who: Principal, format_: str, name: str) -> Any:
    if who.grid_ids is not None:
        frame = frame[frame["grid_id"].isin(who.grid_ids)]
    if format_ == "csv":
        return PlainTextResponse(
            frame.to_csv(index=False),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return json.loads(frame.to_json(orient="records", date_format="iso", force_ascii=False))


@router.get("/compliance", dependencies=[allow(*ROLES)],
            summary="Weekly key-household visits by grid workers and party members")  # fmt: skip
def get_compliance(
    session: SessionDep,
    who: PrincipalDep,
    clock: ClockDep,
    week: Annotated[date | None, Query(description="any day of the week")] = None,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """Per key household: worker visits, party visits, who visited, compliant (one a week)."""
    frame = visit_compliance_combined(session, week or clock().astimezone(LOCAL_TZ).date())
    return _report(frame, who, format_, "party-compliance")


@router.get("/unvisited", dependencies=[allow(*ROLES)],
            summary="Key households that nobody visited this week")  # fmt: skip
def get_unvisited(
    session: SessionDep,
    who: PrincipalDep,
    clock: ClockDep,
    week: Annotated[date | None, Query(description="any day of the week")] = None,
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """No grid worker's track passed by and no party member recorded a visit that week."""
    frame = unvisited(
        visit_compliance_combined(session, week or clock().astimezone(LOCAL_TZ).date())
    )
    return _report(frame, who, format_, "unvisited")
