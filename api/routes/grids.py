"""Grids: GeoJSON listing with filters, and locating a point in the hierarchy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query

from api.deps import SessionDep
from api.indexes import grid_locator
from api.schemas.grids import LocateResult
from gis.crs import check_lonlat, to_wgs84
from gis.db.queries.grids import grids_frame, locate_chain
from gis.grids import check_hierarchy

router = APIRouter(prefix="/grids", tags=["grids"])

Level = Literal["street", "community", "grid", "micro", "dedicated"]
MAX_BBOX_DEG2 = 4.0


@dataclass
class BBoxQuery:
    """``bbox=min_lon,min_lat,max_lon,max_lat`` (WGS84), checked for order and range."""

    bbox: Annotated[
        str | None,
        Query(
            description="min_lon,min_lat,max_lon,max_lat in WGS84",
            examples=["113.5,34.7,113.6,34.9"],
        ),
    ] = None

    def parsed(self) -> tuple[float, float, float, float] | None:
        if self.bbox is None:
            return None
        try:
            x0, y0, x1, y1 = (float(v) for v in self.bbox.split(","))
        except ValueError:
            raise HTTPException(
                422, "bbox must be four numbers: min_lon,min_lat,max_lon,max_lat"
            ) from None
        check_lonlat([x0, x1], [y0, y1])
        if x0 >= x1 or y0 >= y1:
            raise HTTPException(422, "bbox must be min_lon,min_lat,max_lon,max_lat with min < max")
        if (x1 - x0) * (y1 - y0) > MAX_BBOX_DEG2:
            raise HTTPException(422, f"bbox covers more than {MAX_BBOX_DEG2} square degrees")
        return x0, y0, x1, y1


@router.get("", summary="Grids as GeoJSON, filtered by level, parent and bbox")
def list_grids(
    session: SessionDep,
    level: Level | None = None,
    parent: Annotated[str | None, Query(max_length=32, description="parent grid code")] = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 10_000,
) -> dict[str, Any]:
    """A GeoJSON FeatureCollection (EPSG:4326) of the matching grids, ordered by code."""
    frame = grids_frame(
        session, level=level, parent_code=parent, bbox=BBoxQuery(bbox).parsed(), limit=limit
    )
    frame = frame.drop(columns=["id"]).set_index(frame["id"])
    return json.loads(frame.to_json(drop_id=False, to_wgs84=False))


@router.get("/check", summary="Validate the grid hierarchy: gaps, overlaps, slivers, codes")
def check(session: SessionDep) -> dict[str, Any]:
    """A GeoJSON FeatureCollection with one feature per problem (empty when all is well)."""
    report = check_hierarchy(grids_frame(session))
    return json.loads(report.to_json(drop_id=True))


@router.get("/locate", response_model=LocateResult, summary="The grid chain of a point")
def locate(
    session: SessionDep,
    lon: Annotated[float, Query(description="longitude in the given CRS")],
    lat: Annotated[float, Query(description="latitude in the given CRS")],
    crs: Annotated[str, Query(description="wgs84, cgcs2000, gcj02 or bd09")] = "wgs84",
    engine: Annotated[
        Literal["memory", "postgis"],
        Query(description="in-memory index (default) or the PostGIS function; same answers"),
    ] = "memory",
) -> LocateResult:
    """Micro grid (微网格) → 三级 → community → street office of a point, or "outside".

    Boundary rule: a point on a shared edge or vertex belongs to the covering grid with the
    smallest code.
    """
    x, y = to_wgs84([lon], [lat], crs)
    if engine == "postgis":
        chain = locate_chain(session, float(x[0]), float(y[0]))
    else:
        chain = grid_locator.get(session).chain(float(x[0]), float(y[0]))
    if chain is None:
        return LocateResult(
            lon=lon, lat=lat, crs=crs, inside=False, chain=None, detail="outside every grid"
        )
    return LocateResult(lon=lon, lat=lat, crs=crs, inside=True, chain=chain, detail="inside")
