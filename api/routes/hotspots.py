"""Incident hotspots (热点分析): Gi* classes and emerging hotspots per micro grid, as JSON and
as a map page."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from api.deps import SessionDep
from api.security import allow
from gis.access import ROLES
from gis.db.config import get_settings
from gis.db.queries.hotspots import (
    incident_categories,
    latest_report,
    micro_counts,
    week_start,
    weekly_counts,
)
from gis.errors import GisError
from gis.hotspots import EMERGING_LABELS, GI_CLASSES, emerging_hotspots, gi_star, summarise
from gis.incidents import LOCAL_TZ
from maps.basemaps import base_map
from maps.hotspots import build_hotspot_page

log = logging.getLogger(__name__)

# Everyone signed in reads the hotspots (leadership dashboards, grid staff).
router = APIRouter(tags=["hotspots"], dependencies=[allow(*ROLES)])

FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


@dataclass
class HotspotParams:
    """Query parameters shared by the JSON and the page."""

    category: Annotated[
        str | None, Query(max_length=32, description="incident category, e.g. 噪音扰民")
    ] = None
    start: Annotated[date | None, Query(description="first day (local), inclusive")] = None
    end: Annotated[date | None, Query(description="last day (local), inclusive")] = None
    weeks: Annotated[int, Query(ge=3, le=52, description="weeks of emerging hotspots")] = 8
    weights: Annotated[
        Literal["queen", "distance"], Query(description="neighbours: contiguity or band")
    ] = "queen"

    def __post_init__(self) -> None:
        if self.category == "":
            self.category = None
        for day in (self.start, self.end):
            if day is not None and not FIRST_DAY <= day <= LAST_DAY:
                raise GisError(f"dates must lie between {FIRST_DAY} and {LAST_DAY}, got {day}")
        if self.start and self.end and self.start > self.end:
            raise GisError(f"start {self.start} is after end {self.end}")


ParamsDep = Annotated[HotspotParams, Depends()]


def _local(day: date) -> datetime:
    return datetime.combine(day, time.min, LOCAL_TZ)


def _analyse(
    session: Session, q: HotspotParams
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None]:
    """Gi* over the period, and emerging hotspots over the weeks ending at ``end`` (default:
    the week of the latest incident, so a historical data set still shows its last weeks)."""
    counts = micro_counts(
        session,
        category=q.category,
        start=_local(q.start) if q.start else None,
        end=_local(q.end + timedelta(days=1)) if q.end else None,
    )
    gi = gi_star(counts, weights=q.weights)
    last = _local(q.end) if q.end else latest_report(session, category=q.category)
    if last is None:
        return gi, None
    monday = week_start(last)
    weekly = weekly_counts(session, last_week=monday, weeks=q.weeks, category=q.category)
    emerging = emerging_hotspots(
        counts[["code", "name", "geometry"]],
        weekly,
        weeks=q.weeks,
        last_week=pd.Timestamp(monday),
        weights=q.weights,
    )
    return gi, emerging


@router.get("/hotspots", summary="Gi* hotspots and emerging hotspots per micro grid")
def get_hotspots(
    session: SessionDep,
    q: ParamsDep,
    geometry: Annotated[bool, Query(description="include the grid polygons")] = True,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection of micro grids with their count, Gi* z, two-sided p,
    class (热点99%/95%/90%, 不显著, 冷点90%/95%/99%), core flag, and emerging pattern over
    the last ``weeks`` weeks (新增/连续/加剧/持续/减弱/零星/震荡/历史, or 无明显模式)."""
    gi, emerging = _analyse(session, q)
    cols = ["grid_id", "code", "name", "count", "gi_z", "gi_p", "gi_class", "gi_level", "gi_core"]
    out = gi[[*cols, "geometry"]].copy()
    em_cols = ["pattern", "pattern_label", "hot_weeks", "cold_weeks", "trend_z", "trend_p"]
    if emerging is not None:
        out = out.join(emerging.set_index("code")[em_cols], on="code")
    else:
        for c in em_cols:
            out[c] = None
    if not geometry:
        out = out.set_geometry(gpd.GeoSeries([None] * len(out), crs=4326))
    fc = json.loads(out.to_json(drop_id=True, na="null"))
    fc["params"] = {
        "category": q.category,
        "start": q.start.isoformat() if q.start else None,
        "end": q.end.isoformat() if q.end else None,
        "weeks": q.weeks,
        "weights": q.weights,
    }
    fc["emerging_weeks"] = emerging.attrs["weeks"] if emerging is not None else []
    fc["summary"] = {
        "incidents": int(gi["count"].sum()),
        "gi_classes": summarise(gi["gi_class"].tolist(), GI_CLASSES),
        "core": int(gi["gi_core"].sum()),
        "emerging": (
            {
                EMERGING_LABELS[k]: n
                for k, n in summarise(emerging["pattern"].tolist(), list(EMERGING_LABELS)).items()
                if n
            }
            if emerging is not None
            else {}
        ),
    }
    return fc


@router.get("/maps/hotspots", response_class=HTMLResponse, summary="Hotspot map page")
def hotspots_page(
    session: SessionDep,
    q: ParamsDep,
    base: Annotated[str, Query(description="none, osm, tianditu, amap or tencent")] = "none",
) -> HTMLResponse:
    """Micro grids coloured by Gi* class, the emerging-hotspot layer, a Chinese legend and a
    filter form (category, period, weeks, base map)."""
    base_layer = base_map(base, tianditu_key=get_settings().tianditu_key)
    gi, emerging = _analyse(session, q)
    return HTMLResponse(
        build_hotspot_page(
            gi,
            emerging,
            title="事件热点分析",
            category=q.category,
            categories=incident_categories(session),
            start=q.start.isoformat() if q.start else "",
            end=q.end.isoformat() if q.end else "",
            weeks=q.weeks,
            base=base_layer,
        )
    )
