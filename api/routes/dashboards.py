"""Leadership dashboard pages: the overview (领导驾驶舱), the incident situation map, the
patrol map and the briefing, with the PDF/PNG export of the overview and the briefing."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from api.deps import SessionDep, TaxonomyDep
from api.security import PrincipalDep, allow
from gis.access import PERSONAL_DATA_ROLES, ROLES, Principal
from gis.db.config import get_settings
from gis.db.queries import dashboards as q
from gis.db.queries import network as nq
from gis.db.queries import tracks as tq
from gis.db.queries.grids import grids_frame
from gis.db.queries.users import audit
from gis.errors import EmptyInputError
from gis.incidents import SOURCES, Status
from gis.patrol import PATROL_MIN_MINUTES
from gis.taxonomy import Taxonomy
from maps.basemaps import BASE_NAMES, BaseMap, base_map
from maps.briefing import ExportError, build_briefing_page, export_page
from maps.incidents import MAX_HEAT_POINTS, RECENT_PER_GRID, build_incidents_page
from maps.overview import OverviewPanel, build_overview
from maps.patrol import patrol_page_html

log = logging.getLogger(__name__)

router = APIRouter(tags=["pages"])

HEAT_CELL_DEG = 0.0005  # about 50 m; the page coarsens further when the cells are too many
Period = Literal["week", "month"]


def _clean(values: list[str] | None) -> tuple[str, ...]:
    """Query values without the empty strings the filter form sends for 全部."""
    return tuple(v for v in (values or []) if v.strip())


@dataclass
class DashboardParams:
    """Query parameters shared by the dashboard pages."""

    category: Annotated[list[str] | None, Query(description="category name or code")] = None
    source: Annotated[list[str] | None, Query(description=f"any of {', '.join(SOURCES)}")] = None
    status: Annotated[list[str] | None, Query(description="workflow status")] = None
    start: Annotated[datetime | None, Query(description="reported at or after")] = None
    end: Annotated[datetime | None, Query(description="reported before")] = None
    period: Annotated[Period, Query(description="time-slider step")] = "month"
    base: Annotated[str, Query(description=f"base map: {', '.join(BASE_NAMES)}")] = "none"

    def incident_filter(self) -> q.IncidentFilter:
        return q.IncidentFilter(
            categories=_clean(self.category),
            sources=_clean(self.source),
            statuses=_clean(self.status),
            start=self.start.astimezone(UTC) if self.start else None,
            end=self.end.astimezone(UTC) if self.end else None,
        )

    def base_map(self) -> BaseMap:
        return base_map(self.base, tianditu_key=get_settings().tianditu_key)


ParamsDep = Annotated[DashboardParams, Depends()]


def heat_cell_for(grids: gpd.GeoDataFrame, n: int, period: str) -> float:
    """The heat cell to aggregate to in the database: :data:`HEAT_CELL_DEG`, doubled while
    the rows could exceed twice the page's cap (at most one row per incident, and at most
    one per cell of the district's box per period); the page trims the rest itself."""
    if not len(grids):
        return HEAT_CELL_DEG
    minx, miny, maxx, maxy = (float(v) for v in grids.total_bounds)
    periods = 53 if period == "week" else 12
    cell = HEAT_CELL_DEG
    while min(n, periods * ((maxx - minx) / cell + 1) * ((maxy - miny) / cell + 1)) > (
        2 * MAX_HEAT_POINTS
    ):
        cell *= 2
    return cell


def incidents_page(session: Session, taxonomy: Taxonomy, params: DashboardParams) -> str:
    """Aggregate in the database, then build the page (also used by the benchmark)."""
    flt = params.incident_filter()
    base = params.base_map()
    as_of = q.ensure_rollup(session, taxonomy)  # counts and heat from the rollup
    grids = grids_frame(session)
    counts = q.grid_counts(session, flt, rollup=True)
    n = int(counts.loc[counts["level"] == "street", "incidents"].sum())
    cell = heat_cell_for(grids, n, params.period)
    return build_incidents_page(
        grids,
        counts,
        q.period_heat(session, flt, period=params.period, cell_deg=cell, rollup=True),
        q.recent_incidents(session, flt, per_grid=RECENT_PER_GRID),
        cell_deg=cell,
        period=params.period,
        base=base,
        filters={"category": flt.categories, "source": flt.sources, "status": flt.statuses},
        choices={
            "category": [c.name for c in taxonomy],
            "source": list(SOURCES),
            "status": [s.value for s in Status],
        },
        bases=BASE_NAMES,
        as_of=q.as_of_label(as_of),
    )


def briefing_page(
    session: Session, taxonomy: Taxonomy, params: DashboardParams, *, export_links: bool = True
) -> str:
    """Aggregate the KPIs in the database, then build the briefing page."""
    flt = params.incident_filter()
    communities = grids_frame(session, level="community").rename(columns={"id": "grid_id"})
    parts = []
    if flt.active:
        parts.append(
            "筛选："
            + "；".join("、".join(v) for v in (flt.categories, flt.sources, flt.statuses) if v)
        )
    parts.append(f"生成于 {datetime.now(ZoneInfo(q.LOCAL_TZ_NAME)).strftime('%Y-%m-%d %H:%M')}")
    parts.append(q.as_of_label(q.ensure_rollup(session, taxonomy)))
    summary = q.dashboard_summary(session, taxonomy, flt, period=params.period, rollup=True)
    return build_briefing_page(
        summary["kpis"],
        summary["trend"],
        summary["by_category"],
        summary["by_source"],
        communities,
        patrol=patrol_summary(session, flt)[0],
        service=service_summary(session)[0],
        period=params.period,
        base=params.base_map(),
        subtitle=" · ".join(parts),
        export_links=export_links,
    )


def _status(minutes: float) -> str:
    """A micro grid's patrol status of a day (gis.patrol's rule: ≥ 10 minutes inside)."""
    if minutes >= PATROL_MIN_MINUTES:
        return "patrolled"
    return "short" if minutes > 0 else "none"


def patrol_summary(
    session: Session, flt: q.IncidentFilter | None = None
) -> tuple[dict[str, Any], gpd.GeoDataFrame, pd.DataFrame]:
    """The patrol card (micro grids patrolled on the latest day with tracks, key-household
    visits of that week), the micro grids with their status, and the week's daily counts."""
    day = q.latest_patrol_day(session, before=flt.end if flt else None)
    micro = grids_frame(session, level="micro")
    if day is None:
        frame = micro.assign(status="none", minutes=0.0)[["code", "name", "status", "minutes",
                                                          "geometry"]]  # fmt: skip
        card = {"day": None, "grids": len(micro), "patrolled": 0, "unit": "微网格"}
        return card, frame, pd.DataFrame(columns=["day", "patrolled", "grids"])
    status = tq.daily_status(session, day, level="micro")
    frame = micro[["code", "name", "geometry"]].merge(
        status[["code", "minutes"]], on="code", how="left"
    )
    frame["minutes"] = frame["minutes"].fillna(0.0).astype(float)
    frame["status"] = [_status(v) for v in frame["minutes"]]
    visits = tq.household_compliance(session, day)
    card = {
        "day": day.isoformat(),
        "grids": len(frame),
        "patrolled": int((frame["status"] == "patrolled").sum()),
        "unit": "微网格",
        "visits_due": len(visits),
        "visits_made": int(visits["compliant"].sum()) if len(visits) else 0,
    }
    return card, frame, q.patrol_days(session, day, min_minutes=PATROL_MIN_MINUTES)


_COVERAGE: dict[tuple[Any, ...], Any] = {}
_CACHE_LOCK = threading.Lock()  # requests run in a thread pool


def service_summary(
    session: Session,
) -> tuple[dict[str, Any], pd.DataFrame | None, gpd.GeoDataFrame | None]:
    """The service card (households within 15 minutes on foot along the streets, from
    gis.service_coverage), the shares per band, and the buildings with their band.

    Without a walking network: the stored isochrones' count, or nothing computed yet. The
    answer is kept while the stored isochrones' fingerprint (network, stations, method) and
    the buildings stay the same."""
    key = (tuple(sorted(nq.stored_fingerprints(session))), q.buildings_stamp(session))
    with _CACHE_LOCK:
        if key in _COVERAGE:
            return _COVERAGE[key]
    try:
        cov = nq.district_coverage(session)
    except EmptyInputError as exc:
        log.info("no service coverage on the overview: %s", exc)
        return dict(q.service_coverage(session)), None, None
    overall = cov.summary[cov.summary["scope"] == "overall"].sort_values("minutes")
    top = overall.iloc[-1]
    card = {
        "minutes": int(top["minutes"]),
        "households": int(top["households_total"]),
        "covered": int(top["households"]),
        "covered_straight": int(top["households_straight"]),
    }
    value = card, overall[["minutes", "share", "share_straight"]], cov.buildings
    if key[0]:  # isochrones stored: the network and stations are those they were built on
        with _CACHE_LOCK:
            _COVERAGE.clear()
            _COVERAGE[key] = value
    return value


def _subtitle(flt: q.IncidentFilter, as_of: datetime | None = None) -> str:
    parts = []
    if flt.active:
        parts.append(
            "筛选："
            + "；".join("、".join(v) for v in (flt.categories, flt.sources, flt.statuses) if v)
        )
    parts.append(f"生成于 {datetime.now(ZoneInfo(q.LOCAL_TZ_NAME)).strftime('%Y-%m-%d %H:%M')}")
    if as_of is not None:
        parts.append(q.as_of_label(as_of))
    return " · ".join(parts)


def overview_page(
    session: Session,
    taxonomy: Taxonomy,
    params: DashboardParams,
    *,
    export_links: bool = True,
    query: str = "",
) -> str:
    """Aggregate everything in the database, then build the overview (also the benchmark's)."""
    flt = params.incident_filter()
    patrol, patrol_grids, days = patrol_summary(session, flt)
    service, bands, buildings = service_summary(session)
    isochrones = nq.all_isochrones(session)
    if len(isochrones):
        isochrones = isochrones[isochrones["minutes"] == isochrones["minutes"].max()]
    # the cards, the charts and the table from the rollup (or one scan of the incidents
    # for a filter it cannot answer); the heat apart
    as_of = q.ensure_rollup(session, taxonomy)
    summary = q.dashboard_summary(session, taxonomy, flt, period=params.period, rollup=True)
    heat = (
        q.heat_total(session, cell_deg=HEAT_CELL_DEG)
        if not flt.active
        else q.period_heat(session, flt, period="month", cell_deg=HEAT_CELL_DEG, rollup=True)
        .groupby(["gx", "gy"], as_index=False)["weight"]
        .sum()
        .assign(
            lon=lambda f: (f["gx"] + 0.5) * HEAT_CELL_DEG,
            lat=lambda f: (f["gy"] + 0.5) * HEAT_CELL_DEG,
        )
    )
    panel = OverviewPanel(
        kpis=summary["kpis"],
        trend=summary["trend"],
        by_category=summary["by_category"],
        patrol=patrol,
        service=service,
        patrol_grids=patrol_grids,
        patrol_days=days,
        service_bands=bands,
        buildings=buildings,
        isochrones=isochrones,
        stations=nq.stations_frame(session),
        communities=grids_frame(session, level="community"),
        period=params.period,
        subtitle=_subtitle(flt, as_of),
        export_links=export_links,
        export_query=query,
        bases=BASE_NAMES,
    )
    return build_overview(
        grids_frame(session),
        heat,
        title="网格化治理总览",
        panel=panel,
        base=params.base_map(),
    )


# what the PDF/PNG export routes answer (documented once for both pages)
EXPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}, "image/png": {}}},
    503: {"description": "no Chromium on the server"},
}


@router.get(
    "/maps/overview",
    response_class=HTMLResponse,
    summary="Overview: KPI cards, grid map with heat, patrol and service circles, small maps",
    dependencies=[allow(*ROLES)],
)
def overview(
    request: Request, session: SessionDep, taxonomy: TaxonomyDep, params: ParamsDep
) -> HTMLResponse:
    """Counts, 处置率, on-time rate, satisfaction, in-grid closure, patrol and service coverage;
    the grids with the incident heat, the day's patrol status and the 15-minute circles."""
    return HTMLResponse(overview_page(session, taxonomy, params, query=str(request.url.query)))


@router.get(
    "/maps/overview.{fmt}",
    summary="The overview page printed to PDF (A4 landscape) or PNG",
    dependencies=[allow(*ROLES)],
    responses=EXPORT_RESPONSES,
)
def overview_export(
    fmt: Literal["pdf", "png"], session: SessionDep, taxonomy: TaxonomyDep, params: ParamsDep
) -> Response:
    """Rendered in headless Chromium on the server, offline; returned as a download."""
    page = overview_page(session, taxonomy, params, export_links=False)
    return _export(page, fmt, params, "overview")


def _export(page: str, fmt: str, params: DashboardParams, name: str) -> Response:
    try:
        data = export_page(page, fmt, allow_outside=not params.base_map().offline)
    except ExportError as exc:
        return Response(str(exc), status_code=503, media_type="text/plain; charset=utf-8")
    kind = "application/pdf" if fmt == "pdf" else "image/png"
    stamp = datetime.now(UTC).astimezone().strftime("%Y%m%d")
    return Response(
        data,
        media_type=kind,
        headers={"Content-Disposition": f'attachment; filename="{name}-{stamp}.{fmt}"'},
    )


_DAY_LAYERS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_DAY_LAYERS_MAX = 8


def clear_caches() -> None:
    """Forget the kept patrol layers and service coverage (the benchmark times cold pages)."""
    with _CACHE_LOCK:
        _DAY_LAYERS.clear()
        _COVERAGE.clear()


def patrol_layers(session: Session, day: date, scope: list[int] | None) -> Any:
    """:func:`gis.db.queries.tracks.patrol_day_layers`, kept for the same day, scope and
    stored tracks and roads (the uncovered streets take about a second to compute; a past
    day's answer only changes when tracks or roads do)."""
    stamp = tuple(q.patrol_day_stamp(session, day))
    key = (day, tuple(scope) if scope is not None else None, stamp)
    with _CACHE_LOCK:
        if key in _DAY_LAYERS:
            _DAY_LAYERS.move_to_end(key)
            return _DAY_LAYERS[key]
    value = tq.patrol_day_layers(session, day, scope)
    with _CACHE_LOCK:
        _DAY_LAYERS[key] = value
        while len(_DAY_LAYERS) > _DAY_LAYERS_MAX:
            _DAY_LAYERS.popitem(last=False)
    return value


def patrol_page_for(
    session: Session,
    who: Principal,
    day: date | None,
    params: DashboardParams,
    *,
    personal: bool = False,
    request: Request | None = None,
) -> str:
    """The patrol page of ``day`` (default: the latest day with tracks) as ``who`` may see it:
    a scoped role sees its grids only, personal data only on request and for the roles
    allowed (each such read audited)."""
    if personal and who.role not in PERSONAL_DATA_ROLES:
        raise HTTPException(403, f"role {who.role!r} may not read key households' personal data")
    scope = None if who.grid_ids is None else sorted(who.grid_ids)
    day = day or q.latest_patrol_day(session) or datetime.now(tq.LOCAL_TZ).date()
    grids, tracks, uncovered, share = patrol_layers(session, day, scope)
    homes = tq.key_households_frame(session, grid_ids=scope, personal=personal)
    visits = tq.household_compliance(session, day)[["household_id", "visits"]]
    homes = homes.merge(visits, on="household_id", how="left")
    homes["visits"] = homes["visits"].fillna(0).astype(int)
    homes = homes.rename_geometry("geometry")
    cols = ["household_id", "building_id", "kind", "visits", "address", "geometry"]
    if personal:
        homes["people"] = [
            f"{n or '—'}（{u or '—'}单元{r or '—'}室）"
            for n, u, r in zip(homes["name"], homes["unit"], homes["room"], strict=True)
        ]
        cols.append("people")
        if request is not None:
            audit(
                session,
                action="read_personal",
                user_id=who.user_id or None,
                username=who.username,
                method=request.method,
                path=request.url.path,
                detail={
                    "page": "patrol",
                    "households": [int(h) for h in homes["household_id"][:1000]],
                    "count": len(homes),
                },
            )
    return patrol_page_html(
        day,
        grids,
        tracks,
        uncovered,
        street_share=share,
        households=homes[cols],
        base=params.base_map(),
        bases=BASE_NAMES,
    )


@router.get(
    "/maps/patrol",
    response_class=HTMLResponse,
    summary="Patrol map of a day: tracks, grid status, uncovered streets, key-household visits",
    dependencies=[allow(*ROLES)],
)
def patrol_map(
    request: Request,
    session: SessionDep,
    who: PrincipalDep,
    params: ParamsDep,
    day: Annotated[date | None, Query(alias="date", description="the day (local)")] = None,
    personal: Annotated[
        bool, Query(description="names of key households (admin, patroller, community)")
    ] = False,
) -> HTMLResponse:
    """Tracks of the day, each micro grid's patrol status, streets no track came within 20 m
    of, and key households' buildings by this week's visits (巡查地图); a grid worker sees
    their own grids."""
    return HTMLResponse(
        patrol_page_for(session, who, day, params, personal=personal, request=request)
    )


@router.get(
    "/maps/incidents",
    response_class=HTMLResponse,
    summary="Incident situation map: time-slider heatmap, choropleths per grid level",
    dependencies=[allow(*ROLES)],
)
def incidents_map(session: SessionDep, taxonomy: TaxonomyDep, params: ParamsDep) -> HTMLResponse:
    """Heatmap per week or month, counts and incidents per 1,000 households per grid level,
    grid popups with the latest incidents; filter by category, source and status."""
    return HTMLResponse(incidents_page(session, taxonomy, params))


@router.get(
    "/maps/briefing",
    response_class=HTMLResponse,
    summary="Briefing page: KPI cards, small map, charts",
    dependencies=[allow(*ROLES)],
)
def briefing(session: SessionDep, taxonomy: TaxonomyDep, params: ParamsDep) -> HTMLResponse:
    """Counts, 处置率, on-time rate, satisfaction, in-grid closure, patrol and service coverage."""
    return HTMLResponse(briefing_page(session, taxonomy, params))


@router.get(
    "/maps/briefing.{fmt}",
    summary="The briefing page printed to PDF (A4 landscape) or PNG",
    dependencies=[allow(*ROLES)],
    responses=EXPORT_RESPONSES,
)
def briefing_export(
    fmt: Literal["pdf", "png"], session: SessionDep, taxonomy: TaxonomyDep, params: ParamsDep
) -> Response:
    """Rendered in headless Chromium on the server, offline; returned as a download."""
    page = briefing_page(session, taxonomy, params, export_links=False)
    return _export(page, fmt, params, "briefing")
