"""Community service lists: volunteers (资源清单), needs and small wishes (需求清单/微心愿)
claimed by party members and volunteers (诺单) and confirmed by residents (评单), and the
volunteer points ledger (志愿积分) with rewards and leaderboards."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Literal

import geopandas as gpd
import pandas as pd
import shapely
from fastapi import APIRouter, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, Field

from api.deps import ClockDep, SessionDep
from api.security import PrincipalDep, allow
from gis.access import RESIDENT, ROLES, Principal
from gis.crs import check_lonlat, to_wgs84
from gis.db.queries.buildings import building_point
from gis.db.queries.community import (
    add_project,
    add_reward,
    add_volunteer,
    add_wish,
    balance,
    get_project,
    get_wish,
    helpers_frame,
    leaderboard,
    ledger,
    list_projects,
    list_volunteers,
    list_wishes,
    micro_grids_frame,
    open_wishes_frame,
    points_rules,
    project_step,
    redeem,
    resident_wishes,
    set_points_rules,
    wish_owner,
    wish_place,
    wish_stats,
    wish_step,
)
from gis.db.queries.network import load_network
from gis.db.queries.users import audit
from gis.matching import match_helpers
from gis.volunteering import rules_from_dict, rules_to_dict
from maps.community import STAT_COLUMNS, build_needs_page

router = APIRouter(tags=["community"])
OFFICE = ("admin", "dispatcher", "community")
FIELD = ("admin", "dispatcher", "community", "patroller")


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
        rules=points_rules(session),
        volunteer_id=body.volunteer_id,
        hours=body.hours,
        rating=body.rating,
    )
    return {**row, "points_paid": paid}


@router.get("/wishes/stats", dependencies=[allow("admin", "leader", "dispatcher", "community")],
            summary="Open needs, time to claim and fulfil, volunteer hours")  # fmt: skip
def get_wish_stats(
    session: SessionDep,
    by: Literal["street", "community", "grid", "micro"] = "community",
    format_: Annotated[Literal["json", "csv"], Query(alias="format")] = "json",
) -> Any:
    """The leadership view of the service lists, per community or micro grid."""
    rows = wish_stats(session, by=by)
    if format_ == "csv":
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


# ---------------------------------------------------------------------------------- 资源清单

OFFICE_READERS = ("admin", "dispatcher", "community")


@router.get("/volunteers", dependencies=[allow(*ROLES)],
            summary="The resource list (资源清单)")  # fmt: skip
def get_volunteers(
    request: Request,
    session: SessionDep,
    who: PrincipalDep,
    kind: Literal["volunteer", "party_member", "resident_unit", "company"] | None = None,
    skill: Annotated[str | None, Query(max_length=40)] = None,
    personal: Annotated[bool, Query(description="phone numbers (office roles)")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[dict[str, Any]]:
    """Skills, hours per week and home grid of each helper; a grid worker or community
    account sees those living in their grids. Phone numbers only with ``personal`` for
    the office roles."""
    if personal and who.role not in OFFICE_READERS:
        raise HTTPException(403, f"role {who.role!r} may not read volunteers' phone numbers")
    grid_ids = None if who.grid_ids is None else sorted(who.grid_ids)
    rows = list_volunteers(
        session, kind=kind, skill=skill, grid_ids=grid_ids, personal=personal, limit=limit,
        offset=offset,
    )  # fmt: skip
    if personal:  # phone numbers are personal data: every read is audited
        ids = [r["id"] for r in rows]
        audit(
            session, action="read_personal", user_id=who.user_id or None,
            username=who.username, method=request.method, path=request.url.path,
            detail={"volunteers": ids[:1000], "count": len(ids)},
        )  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------- 项目清单


class ProjectIn(BaseModel):
    """A community project (项目清单): name, community (code), dates."""

    name: str = Field(min_length=1, max_length=200)
    community_code: str = Field(pattern="^[0-9]{1,20}$")
    description: str | None = Field(default=None, max_length=4000)
    starts: date | None = None
    ends: date | None = None


class ProjectStep(BaseModel):
    """planned → running → done."""

    to: Literal["running", "done"]


def _community_scope(who: Principal, community_id: int | None) -> None:
    if not who.in_scope(community_id):
        raise HTTPException(404, "no such project")


@router.post("/projects", status_code=201, dependencies=[allow(*OFFICE)],
             summary="Add a community project (项目清单)")  # fmt: skip
def post_project(body: ProjectIn, session: SessionDep, who: PrincipalDep) -> dict[str, Any]:
    """A new project, planned; a community account adds only its own community's."""
    row = add_project(
        session, name=body.name, community_code=body.community_code,
        description=body.description, starts=body.starts, ends=body.ends,
    )  # fmt: skip
    if not who.in_scope(row["community_id"]):
        raise HTTPException(403, "a community account adds projects of its own community only")
    return row


@router.get("/projects", dependencies=[allow(*ROLES)], summary="Community projects")
def get_projects(
    session: SessionDep,
    who: PrincipalDep,
    status_: Annotated[Literal["planned", "running", "done"] | None, Query(alias="status")] = None,
) -> list[dict[str, Any]]:
    """Every project (a scoped role: those of its communities), by community and start."""
    scope = None if who.grid_ids is None else sorted(who.grid_ids)
    return list_projects(session, status=status_, community_ids=scope)


@router.post("/projects/{project_id}/steps", dependencies=[allow(*OFFICE)],
             summary="Start or finish a project")  # fmt: skip
def post_project_step(
    project_id: int, body: ProjectStep, session: SessionDep, who: PrincipalDep
) -> dict[str, Any]:
    """planned → running → done (or planned → done); anything else is a 422."""
    _community_scope(who, get_project(session, project_id)["community_id"])
    return project_step(session, project_id, body.to)


# ---------------------------------------------------------------------------------- rules


@router.get("/points/rules", dependencies=[allow(*ROLES)], summary="The points rules in force")
def get_points_rules(session: SessionDep) -> dict[str, Any]:
    """Points per confirmed service hour, bonus per completed wish, bonus by rating, the cap
    on the hours one service counts."""
    return rules_to_dict(points_rules(session))


@router.put("/points/rules", dependencies=[allow("admin")],
            summary="Set the points rules (the office's configuration)")  # fmt: skip
def put_points_rules(body: dict[str, Any], session: SessionDep) -> dict[str, Any]:
    """Applies to services confirmed from now on; the ledger keeps what was paid."""
    rules = rules_from_dict(body)
    set_points_rules(session, rules)
    return rules_to_dict(rules)


# ---------------------------------------------------------------------------------- map


@router.get("/maps/community", response_class=HTMLResponse,
            dependencies=[allow("admin", "leader", "dispatcher", "community")],
            summary="Leadership view: open needs by grid, time to claim and fulfil")  # fmt: skip
def community_page(session: SessionDep, who: PrincipalDep) -> HTMLResponse:
    """Micro grids coloured by open needs, each need a dot, the medians and volunteer hours
    per grid in the tooltips, the totals, and the CSV export linked. A community account
    sees its own community."""
    scope = None if who.grid_ids is None else sorted(who.grid_ids)
    grids = micro_grids_frame(session, scope)
    columns = ["code", "name", *STAT_COLUMNS]
    stats = pd.DataFrame(wish_stats(session, by="micro", grid_ids=scope), columns=columns)
    overall = wish_stats(session, by="street", grid_ids=scope)
    totals: dict[str, float] = dict.fromkeys(STAT_COLUMNS, 0.0)
    if overall:
        totals = {c: overall[0][c] for c in STAT_COLUMNS}
        totals["volunteer_hours"] = float(totals["volunteer_hours"] or 0)
    page = build_needs_page(grids, stats.drop(columns="name"), open_wishes_frame(session, scope),
                            totals)  # fmt: skip
    return HTMLResponse(page)


# ---------------------------------------------------------------------------------- residents


class ResidentWishIn(BaseModel):
    """A resident's own need or small wish, at their building (from the QR code) or a point."""

    kind: Literal["need", "wish"] = "wish"
    category: str = Field(min_length=1, max_length=32, examples=["代购", "陪诊", "维修"])
    text: str = Field(min_length=1, max_length=1000)
    building_id: int | None = Field(default=None, ge=1)
    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    wanted_by: date | None = None


class ResidentConfirm(BaseModel):
    """The resident confirms the help they got (评单), 1–5."""

    rating: int = Field(ge=1, le=5)


@router.post("/resident/wishes", status_code=201, summary="A resident posts a need or wish")
def post_resident_wish(
    body: ResidentWishIn,
    who: Annotated[Principal, allow(RESIDENT)],
    session: SessionDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=100)] = None,
) -> dict[str, Any]:
    """Signed in with the one-time code; the wish is placed at the building of the QR code
    (or a point) and remembered as theirs. A retry with the same key returns the first."""
    if body.building_id is not None:
        lon, lat = building_point(session, body.building_id)
    elif body.lon is not None and body.lat is not None:
        lon, lat = _point(body.lon, body.lat, body.crs)
    else:
        raise HTTPException(422, "give the building (building_id) or a point (lon, lat)")
    key = who.subject or ""
    row, created = add_wish(
        session, kind=body.kind, category=body.category, text_=body.text, lon=lon, lat=lat,
        posted_by="居民", wanted_by=body.wanted_by, resident_key=key,
        idempotency_key=f"resident:{key[:16]}:{idempotency_key}" if idempotency_key else None,
    )  # fmt: skip
    if not created:
        response.status_code = status.HTTP_200_OK
    return row


@router.get("/resident/wishes", summary="A resident's own needs and wishes")
def get_resident_wishes(
    who: Annotated[Principal, allow(RESIDENT)], session: SessionDep
) -> list[dict[str, Any]]:
    """Only the wishes posted with this phone number, with who claimed them."""
    return resident_wishes(session, who.subject or "")


@router.post("/resident/wishes/{wish_id}/confirm", summary="The resident confirms (评单)")
def post_resident_confirm(
    wish_id: int,
    body: ResidentConfirm,
    who: Annotated[Principal, allow(RESIDENT)],
    session: SessionDep,
    clock: ClockDep,
) -> dict[str, Any]:
    """Confirm a done wish of one's own with a rating: the volunteer is paid by the office's
    rules, once. Someone else's wish is a 404."""
    if not who.subject or wish_owner(session, wish_id) != who.subject:
        raise HTTPException(404, f"wish {wish_id} does not exist")
    row, paid = wish_step(
        session, wish_id, "confirmed", now=clock(), rules=points_rules(session),
        rating=body.rating,
    )  # fmt: skip
    return {**row, "points_paid": paid}
