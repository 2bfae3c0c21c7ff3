"""Service stations: walking isochrones, household coverage and new-station siting."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

import geopandas as gpd
import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.schemas.stations import (
    CoveragePublic,
    CoverageRow,
    SitingRequest,
    SitingResultPublic,
    StationPublic,
    UncoveredBuilding,
)
from api.security import allow
from gis.access import ROLES
from gis.db.config import get_settings
from gis.db.queries.network import (
    all_isochrones,
    district_coverage,
    district_siting,
    fingerprint,
    isochrone_params,
    isochrones_of,
    stations_frame,
)
from gis.errors import EmptyInputError
from maps.basemaps import base_map
from maps.service import build_service_page

# Everyone signed in reads the service circles; proposing new sites is planning work.
router = APIRouter(tags=["stations"], dependencies=[allow(*ROLES)])

BANDS = (5, 10, 15)


@router.get("/stations", summary="Service stations")
def list_stations(session: SessionDep) -> list[StationPublic]:
    """Every station with kind, name, address and WGS84 position."""
    st = stations_frame(session)
    return [
        StationPublic(
            id=int(r.station_id),
            kind=r.kind,
            name=r.name,
            address=r.address,
            lon=float(r.geometry.x),
            lat=float(r.geometry.y),
        )
        for r in st.itertuples()
    ]


@router.get("/stations/{station_id}/isochrones", summary="A station's 5/10/15-minute isochrones")
def station_isochrones(
    session: SessionDep,
    station_id: int,
    geometry: Annotated[
        Literal["polygon", "lines"],
        Query(description="polygon, or the reached streets with partial edges cut"),
    ] = "polygon",
) -> dict[str, Any]:
    """Stored isochrones as GeoJSON; ``stale`` is true when the network or stations changed
    since they were computed (run ``wangge isochrones build``)."""
    iso = isochrones_of(session, station_id, geometry=geometry)
    current = fingerprint(session, isochrone_params(BANDS))
    fc = json.loads(iso.drop(columns=["computed_at"]).to_json(drop_id=True))
    fc["station_id"] = station_id
    fc["stale"] = bool(len(iso)) and bool((iso["fingerprint"] != current).any())
    fc["computed"] = bool(len(iso))
    return fc


@router.get("/coverage", summary="Households within 5/10/15 minutes, by street and straight line")
def get_coverage(
    session: SessionDep,
    speed_kmh: Annotated[float, Query(gt=0, le=10, description="walking speed")] = 4.5,
    scope: Annotated[str | None, Query(pattern="^(overall|kind|grid)$")] = None,
) -> CoveragePublic:
    """Coverage per band overall, per station kind and per community, and the buildings
    outside the 15-minute circle."""
    cov = district_coverage(session, speed_kmh=speed_kmh)
    s = cov.summary if scope is None else cov.summary[cov.summary["scope"] == scope]
    out = cov.outside(max(BANDS))
    pts = out.representative_point()
    return CoveragePublic(
        speed_kmh=speed_kmh,
        rows=[CoverageRow(**r) for r in s.to_dict(orient="records")],
        outside=[
            UncoveredBuilding(
                building_id=int(b),
                households=int(h),
                walk_m=None if not math.isfinite(w) else float(w),
                lon=p.x,
                lat=p.y,
            )
            for b, h, w, p in zip(
                out["building_id"], out["households"], out["walk_m"], pts, strict=True
            )
        ],
    )


@router.post(
    "/siting",
    summary="Suggest k new station sites (maximal covering location)",
    dependencies=[allow("admin", "planner")],
)
def post_siting(session: SessionDep, body: SitingRequest) -> SitingResultPublic:
    """Sites among street nodes or buildings that maximise newly covered households."""
    out = district_siting(
        session,
        body.k,
        minutes=body.minutes,
        speed_kmh=body.speed_kmh,
        candidates=body.candidates,
        max_candidates=body.max_candidates,
    )
    return SitingResultPublic(**out)  # type: ignore[arg-type]


@router.get("/maps/service", response_class=HTMLResponse, summary="Service-circle map page")
def service_page(
    session: SessionDep,
    base: Annotated[str, Query(description="none, osm, tianditu, amap or tencent")] = "none",
) -> HTMLResponse:
    """Stations by kind, 5/10/15-minute isochrones, coverage shares, uncovered buildings."""
    base_layer = base_map(base, tianditu_key=get_settings().tianditu_key)
    stations = stations_frame(session)
    try:
        cov = district_coverage(session)
        summary, outside = cov.summary, cov.outside(15)
    except EmptyInputError:  # no network loaded yet: stations only
        summary, outside = pd.DataFrame(), gpd.GeoDataFrame(geometry=[], crs=4326)
    return HTMLResponse(
        build_service_page(stations, all_isochrones(session), summary, outside, base=base_layer)
    )
