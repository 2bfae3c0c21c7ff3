"""Leadership dashboard pages: the incident situation map and the briefing with its export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from api.deps import SessionDep, TaxonomyDep
from api.security import allow
from gis.access import ROLES
from gis.db.config import get_settings
from gis.db.queries import dashboards as q
from gis.db.queries.grids import grids_frame
from gis.incidents import SOURCES, Status
from gis.taxonomy import Taxonomy
from maps.basemaps import BASE_NAMES, BaseMap, base_map
from maps.briefing import ExportError, build_briefing_page, export_page
from maps.incidents import build_incidents_page

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


def incidents_page(session: Session, taxonomy: Taxonomy, params: DashboardParams) -> str:
    """Aggregate in the database, then build the page (also used by the benchmark)."""
    flt = params.incident_filter()
    base = params.base_map()
    return build_incidents_page(
        grids_frame(session),
        q.grid_counts(session, flt),
        q.period_heat(session, flt, period=params.period, cell_deg=HEAT_CELL_DEG),
        q.recent_incidents(session, flt),
        cell_deg=HEAT_CELL_DEG,
        period=params.period,
        base=base,
        filters={"category": flt.categories, "source": flt.sources, "status": flt.statuses},
        choices={
            "category": [c.name for c in taxonomy],
            "source": list(SOURCES),
            "status": [s.value for s in Status],
        },
        bases=BASE_NAMES,
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
    parts.append(f"生成于 {datetime.now(UTC).astimezone().strftime('%Y-%m-%d %H:%M')}")
    return build_briefing_page(
        q.kpi_summary(session, taxonomy, flt),
        q.period_counts(session, flt, period=params.period),
        q.counts_by(session, "category", flt),
        q.counts_by(session, "source", flt),
        communities,
        patrol=q.patrol_coverage(session, start=flt.start, end=flt.end),
        service=q.service_coverage(session),
        period=params.period,
        base=params.base_map(),
        subtitle=" · ".join(parts),
        export_links=export_links,
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
    responses={
        200: {"content": {"application/pdf": {}, "image/png": {}}},
        503: {"description": "no Chromium on the server"},
    },
)
def briefing_export(
    fmt: Literal["pdf", "png"], session: SessionDep, taxonomy: TaxonomyDep, params: ParamsDep
) -> Response:
    """Rendered in headless Chromium on the server, offline; returned as a download."""
    page = briefing_page(session, taxonomy, params, export_links=False)
    try:
        data = export_page(page, fmt, allow_outside=not params.base_map().offline)
    except ExportError as exc:
        return Response(str(exc), status_code=503, media_type="text/plain; charset=utf-8")
    kind = "application/pdf" if fmt == "pdf" else "image/png"
    stamp = datetime.now(UTC).astimezone().strftime("%Y%m%d")
    return Response(
        data,
        media_type=kind,
        headers={"Content-Disposition": f'attachment; filename="briefing-{stamp}.{fmt}"'},
    )
