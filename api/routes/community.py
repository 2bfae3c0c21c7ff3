"""Community service lists: volunteers (资源清单), needs and small wishes (需求清单/微心愿)
claimed by party members and volunteers (诺单) and confirmed by residents (评单), and the
volunteer points ledger (志愿积分) with rewards and leaderboards."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

import geopandas as gpd
import shapely
from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from api.deps import ClockDep, SessionDep
from api.security import allow
from gis.access import ROLES
from gis.crs import check_lonlat, to_wgs84
from gis.db.queries.community import (
    add_reward,
    add_volunteer,
    add_wish,
    balance,
    get_wish,
    helpers_frame,
    leaderboard,
    ledger,
    list_wishes,
    redeem,
    wish_place,
    wish_stats,
    wish_step,
)
from gis.db.queries.network import load_network
from gis.matching import match_helpers
from gis.volunteering import PointsRules

router = APIRouter(tags=["community"])
OFFICE = ("admin", "dispatcher", "community")
FIELD = ("admin", "dispatcher", "community", "patroller")
RULES = PointsRules()


class VolunteerIn(BaseModel):
    """A volunteer, party member, resident unit or company offering help."""

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["volunteer", "party_member", "resident_unit", "company"]
    phone: str | None = Field(default=None, max_length=32)
    skills: list[Annotated[str, Field(max_length=40)]] = Field(default_factory=list, max_length=20)
    hours_per_week: float | None = Field(default=None, ge=0, le=80)
    lon: float | None = None
    lat: float | None = None


class WishIn(BaseModel):
    """A need (需求) or small wish (微心愿) at a place, wanted by a date."""

    kind: Literal["need", "wish"] = "wish"
    category: str = Field(min_length=1, max_length=32, examples=["代购", "陪诊", "维修"])
    text: str = Field(min_length=1, max_length=1000)
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    address: str | None = Field(default=None, max_length=500)
    posted_by: str | None = Field(default=None, max_length=100)
    wanted_by: date | None = None


class WishStep(BaseModel):
    """Claim (volunteer_id), done (hours), confirm (rating), give back (open) or cancel."""

    to: Literal["claimed", "open", "done", "confirmed", "cancelled"]
    volunteer_id: int | None = Field(default=None, ge=1)
    hours: float | None = Field(default=None, gt=0, le=24)
    rating: int | None = Field(default=None, ge=1, le=5)


class RewardIn(BaseModel):
    """A reward: a service (服务型) or goods (物质型), its cost, and stock (none: unlimited)."""

    name: str = Field(min_length=1, max_length=100)
    kind: Literal["service", "goods"]
    cost: int = Field(gt=0, le=100_000)
    stock: int | None = Field(default=None, ge=0)


class RedeemIn(BaseModel):
    """Spend a volunteer's points on a reward."""

    volunteer_id: int = Field(ge=1)
    reward_id: int = Field(ge=1)


def _point(lon: float | None, lat: float | None, crs: str = "wgs84") -> tuple[Any, Any]:
    if lon is None or lat is None:
        return None, None
    x, y = to_wgs84([lon], [lat], crs)
    check_lonlat(x, y, require_china=True)
    return float(x[0]), float(y[0])


@router.post("/volunteers", status_code=201, dependencies=[allow(*OFFICE)],
             summary="Register a volunteer or party member (资源清单)")  # fmt: skip
def post_volunteer(body: VolunteerIn, session: SessionDep) -> dict[str, int]:
    """Their home point puts them in a micro grid, for matching and leaderboards."""
    lon, lat = _point(body.lon, body.lat)
    vid = add_volunteer(
        session,
        name=body.name,
        kind=body.kind,
        lon=lon,
        lat=lat,
        phone=body.phone,
        skills=body.skills,
        hours_per_week=body.hours_per_week,
    )
    return {"id": vid}


@router.post("/wishes", status_code=201, dependencies=[allow(*FIELD)],
             summary="Post a need or small wish (需求清单/微心愿)")  # fmt: skip
def post_wish(
    body: WishIn,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> dict[str, Any]:
    """By a resident's grid worker or community on their behalf; a retry with the same
    Idempotency-Key returns the first (200)."""
    lon, lat = _point(body.lon, body.lat, body.crs)
    row, created = add_wish(
        session,
        kind=body.kind,
        category=body.category,
        text_=body.text,
        lon=lon,
        lat=lat,
        address=body.address,
        posted_by=body.posted_by,
        wanted_by=body.wanted_by,
        idempotency_key=idempotency_key,
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return row


@router.get("/wishes", dependencies=[allow(*ROLES)], summary="Needs and wishes")
def get_wishes(
    session: SessionDep,
    status_: Annotated[
        Literal["open", "claimed", "done", "confirmed", "cancelled"] | None,
        Query(alias="status"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Oldest first, so the longest-waiting wish is claimed first."""
    return list_wishes(session, status=status_, limit=limit, offset=offset)


@router.post("/wishes/{wish_id}/steps", dependencies=[allow(*FIELD)],
             summary="Claim (诺单), finish, confirm (评单) or cancel a wish")  # fmt: skip
def post_wish_step(
    wish_id: int, body: WishStep, session: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    """A resident's confirmation pays the volunteer by the office's rules, exactly once."""
    row, paid = wish_step(
        session,
        wish_id,
        body.to,
        now=clock(),
        rules=RULES,
        volunteer_id=body.volunteer_id,
        hours=body.hours,
        rating=body.rating,
    )
    return {**row, "points_paid": paid}


@router.get("/wishes/stats", dependencies=[allow("admin", "leader", "dispatcher", "community")],
            summary="Open needs, time to claim and fulfil, volunteer hours")  # fmt: skip
def get_wish_stats(
    session: SessionDep,
    by: Literal["community", "micro"] = "community",
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """The leadership view of the service lists, per community or micro grid."""
    rows = wish_stats(session, by=by)
    if format_ == "csv":
        import pandas as pd

        return PlainTextResponse(
            pd.DataFrame(rows).to_csv(index=False),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="wishes.csv"'},
        )
    return rows


@router.get("/wishes/{wish_id}/matches", dependencies=[allow(*FIELD)],
            summary="Nearest suitable helpers on foot, same grid first")  # fmt: skip
def get_matches(
    wish_id: int,
    session: SessionDep,
    k: Annotated[int, Query(ge=1, le=20)] = 5,
    max_walk_m: Annotated[float, Query(gt=0, le=20_000)] = 3000.0,
) -> list[dict[str, Any]]:
    """Walking metres on the street network (and the straight line, for comparison)."""
    lon, lat, grid_id, category = wish_place(session, wish_id)
    net = load_network(session)
    helpers = helpers_frame(session).to_crs(net.crs)
    point = gpd.GeoSeries([shapely.Point(lon, lat)], crs="EPSG:4326").to_crs(net.crs).iloc[0]
    found = match_helpers(net, point, grid_id, category, helpers, k=k, max_walk_m=max_walk_m)
    return [asdict(m) for m in found]


@router.get("/wishes/{wish_id}", dependencies=[allow(*ROLES)], summary="One wish")
def read_wish(wish_id: int, session: SessionDep) -> dict[str, Any]:
    """A wish with its volunteer and grid."""
    return get_wish(session, wish_id)


@router.get("/volunteers/{volunteer_id}/points", dependencies=[allow(*ROLES)],
            summary="A volunteer's balance and ledger")  # fmt: skip
def read_points(volunteer_id: int, session: SessionDep) -> dict[str, Any]:
    """The balance is the sum of the entries shown; nothing else."""
    return {"balance": balance(session, volunteer_id), "entries": ledger(session, volunteer_id)}


@router.post("/rewards", status_code=201, dependencies=[allow("admin", "community")],
             summary="Add a reward to the catalogue")  # fmt: skip
def post_reward(body: RewardIn, session: SessionDep) -> dict[str, int]:
    """Services (服务型) and goods (物质型) volunteers can exchange points for."""
    return {"id": add_reward(session, name=body.name, kind=body.kind, cost=body.cost,
                             stock=body.stock)}  # fmt: skip


@router.post("/points/redeem", dependencies=[allow(*OFFICE)],
             summary="Exchange points for a reward (积分兑换)")  # fmt: skip
def post_redeem(
    body: RedeemIn,
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str, Header(min_length=8, max_length=128)],
) -> dict[str, Any]:
    """The Idempotency-Key is required: a double submit charges once (200 the second time)."""
    result, created = redeem(
        session, volunteer_id=body.volunteer_id, reward_id=body.reward_id,
        key=f"redeem:{idempotency_key}",
    )  # fmt: skip
    if not created:
        response.status_code = status.HTTP_200_OK
    return result


@router.get("/points/leaderboard", dependencies=[allow(*ROLES)],
            summary="Volunteer points per community or grid")  # fmt: skip
def get_leaderboard(
    session: SessionDep,
    by: Literal["community", "grid"] = "community",
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> list[dict[str, Any]]:
    """The top volunteers of each community (or 三级 grid) by points."""
    return leaderboard(session, by=by, limit=limit)
