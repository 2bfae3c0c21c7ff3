"""Grids: GeoJSON listing with filters, and locating a point in the hierarchy."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import shapely
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from api.deps import SessionDep
from api.indexes import grid_locator
from api.schemas.grids import (
    AutoPartitionRequest,
    AutoSplitRequest,
    CommunityPartitionRequest,
    CommunityPartitionResponse,
    CreateGridRequest,
    EditResponse,
    GeoJSONGeometry,
    GridPartitionOutcome,
    GridVersionOut,
    LocateResult,
    MergeRequest,
    ReparentRequest,
    ReshapeRequest,
    RollbackRequest,
    SplitRequest,
)
from api.security import allow
from gis.access import ROLES
from gis.crs import check_lonlat, parse_input_crs, to_wgs84
from gis.db.queries import planning
from gis.db.queries.grids import grids_frame, locate_chain
from gis.errors import InvalidGeometryError
from gis.grids import check_hierarchy
from maps.planner import build_planner

router = APIRouter(prefix="/grids", tags=["grids"])
PLANNERS = ("admin", "planner")
MAX_VERTICES = 10_000  # a drawn grid has hundreds; more is a mistake or an attack
"""Roles that may change the grid network (网格规划)."""
page_router = APIRouter(tags=["pages"])

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


@router.get(
    "",
    summary="Grids as GeoJSON, filtered by level, parent and bbox",
    dependencies=[allow(*ROLES)],
)
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


@router.get(
    "/check",
    summary="Validate the grid hierarchy: gaps, overlaps, slivers, codes",
    dependencies=[allow(*ROLES)],
)
def check(session: SessionDep) -> dict[str, Any]:
    """A GeoJSON FeatureCollection with one feature per problem (empty when all is well)."""
    report = check_hierarchy(grids_frame(session))
    return json.loads(report.to_json(drop_id=True))


@router.get(
    "/locate",
    response_model=LocateResult,
    summary="The grid chain of a point",
    dependencies=[allow(*ROLES)],
)
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


def _geometry(g: GeoJSONGeometry, crs: str) -> BaseGeometry:
    """A GeoJSON geometry in WGS84, converted from ``crs`` at the edge and range-checked."""
    parse_input_crs(crs)
    try:
        geom = shape(g.model_dump())
    except (ValueError, TypeError, AttributeError, IndexError, ShapelyError) as exc:
        raise InvalidGeometryError(f"geometry is not valid GeoJSON: {exc}") from None
    if geom.is_empty:
        raise InvalidGeometryError("geometry is empty")
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        for part in getattr(geom, "geoms", [geom]):
            if not part.exterior.is_ccw or any(ring.is_ccw for ring in part.interiors):
                raise InvalidGeometryError(
                    "wrong winding: GeoJSON (RFC 7946) wants exterior rings counter-clockwise "
                    "and holes clockwise"
                )
    xy = shapely.get_coordinates(geom)
    if len(xy) > MAX_VERTICES:
        raise InvalidGeometryError(
            f"geometry has {len(xy):,} vertices; at most {MAX_VERTICES:,} are accepted"
        )
    if not np.isfinite(xy).all():
        raise InvalidGeometryError("geometry has non-finite coordinates")
    x, y = to_wgs84(xy[:, 0], xy[:, 1], crs)
    check_lonlat(x, y)
    return shapely.set_coordinates(geom, np.column_stack([x, y]))


def _answer(res: planning.EditResult) -> EditResponse:
    p = res.partition
    return EditResponse(
        operation=res.operation,
        changed=res.changed,
        created=res.created,
        deleted=res.deleted,
        households=p.households if p else None,
        imbalance=round(p.imbalance, 4) if p else None,
        street_cuts=p.street_cuts if p else None,
    )


@router.post(
    "",
    response_model=EditResponse,
    status_code=201,
    dependencies=[allow(*PLANNERS)],
    summary="Draw a new child grid",
)
def create(session: SessionDep, body: CreateGridRequest) -> EditResponse:
    """A new grid inside its parent, clipped to it; covered siblings give up that area.

    422 with the reason when the edit breaks the hierarchy rules.
    """
    geom = _geometry(body.geometry, body.crs)
    return _answer(
        planning.create_grid(
            session, body.parent_id, geom, name=body.name, who=body.edited_by, why=body.reason
        )
    )


@router.post(
    "/{grid_id}/reshape",
    response_model=EditResponse,
    dependencies=[allow(*PLANNERS)],
    summary="Reshape a grid",
)
def reshape(session: SessionDep, grid_id: int, body: ReshapeRequest) -> EditResponse:
    """New outline; neighbours give and take the difference. 409 with ``current_version``
    when ``version`` is stale; 422 with the reason when refused."""
    geom = _geometry(body.geometry, body.crs)
    return _answer(
        planning.reshape_grid(
            session, grid_id, geom, version=body.version, who=body.edited_by, why=body.reason
        )
    )


@router.post(
    "/{grid_id}/split",
    response_model=EditResponse,
    dependencies=[allow(*PLANNERS)],
    summary="Split a grid by a line",
)
def split(session: SessionDep, grid_id: int, body: SplitRequest) -> EditResponse:
    """The grid keeps the largest part; the others become new sibling grids."""
    line = _geometry(body.line, body.crs)
    return _answer(
        planning.split_grid(
            session, grid_id, line, version=body.version, who=body.edited_by, why=body.reason
        )
    )


@router.post(
    "/{grid_id}/merge",
    response_model=EditResponse,
    dependencies=[allow(*PLANNERS)],
    summary="Merge an adjacent sibling",
)
def merge(session: SessionDep, grid_id: int, body: MergeRequest) -> EditResponse:
    """The other grid is deleted (its history kept); its children move to this grid."""
    return _answer(
        planning.merge_grids(
            session,
            grid_id,
            body.other_id,
            version=body.version,
            other_version=body.other_version,
            who=body.edited_by,
            why=body.reason,
        )
    )


@router.post(
    "/{grid_id}/reparent",
    response_model=EditResponse,
    dependencies=[allow(*PLANNERS)],
    summary="Move to a new parent",
)
def reparent(session: SessionDep, grid_id: int, body: ReparentRequest) -> EditResponse:
    """The grid gets a new code under the new parent; both parents' outlines follow."""
    return _answer(
        planning.reparent_grid(
            session,
            grid_id,
            body.new_parent_id,
            version=body.version,
            who=body.edited_by,
            why=body.reason,
        )
    )


@router.get(
    "/{grid_id}/history",
    response_model=list[GridVersionOut],
    dependencies=[allow(*ROLES)],
    summary="Grid versions",
)
def history(session: SessionDep, grid_id: int) -> list[dict[str, Any]]:
    """Every version of the grid, oldest first, with who, why, validity and geometries."""
    return planning.history(session, grid_id)


@router.post(
    "/{grid_id}/rollback",
    response_model=EditResponse,
    dependencies=[allow(*PLANNERS)],
    summary="Roll back a grid",
)
def rollback(session: SessionDep, grid_id: int, body: RollbackRequest) -> EditResponse:
    """Restore the outline of ``to_version`` as a new version; history is kept."""
    return _answer(
        planning.rollback_grid(
            session,
            grid_id,
            body.to_version,
            version=body.version,
            who=body.edited_by,
            why=body.reason,
        )
    )


@router.post(
    "/{grid_id}/auto-split",
    response_model=EditResponse,
    dependencies=[allow(*PLANNERS)],
    summary="Auto-split a grid",
)
def auto_split(session: SessionDep, grid_id: int, body: AutoSplitRequest) -> EditResponse:
    """Contiguous parts with balanced households, cuts along streets where possible and never
    through a building; answers households per part and the imbalance."""
    return _answer(
        planning.auto_split_grid(
            session, grid_id, body.parts, version=body.version, who=body.edited_by, why=body.reason
        )
    )


@router.post(
    "/{grid_id}/auto-partition",
    response_model=EditResponse,
    dependencies=[allow(*PLANNERS)],
    summary="Auto-partition a 三级 grid",
)
def auto_partition(session: SessionDep, grid_id: int, body: AutoPartitionRequest) -> EditResponse:
    """Replace the micro grids (微网格) of a 三级 grid by new ones of 30–80 households (or
    ``min_households``–``max_households``); 422 with the reason when no partition exists."""
    return _answer(
        planning.auto_partition_grid(
            session,
            grid_id,
            version=body.version,
            who=body.edited_by,
            why=body.reason,
            min_hh=body.min_households,
            max_hh=body.max_households,
        )
    )


@router.post(
    "/{community_id}/auto-partition-grids",
    response_model=CommunityPartitionResponse,
    dependencies=[allow(*PLANNERS)],
    summary="Auto-partition every 三级 grid of a community",
)
def auto_partition_community(
    session: SessionDep, community_id: int, body: CommunityPartitionRequest
) -> CommunityPartitionResponse:
    """Each 三级 grid of the community on its own, all-or-nothing per grid: the answer lists
    every grid as done (its new micro grids and households) or refused with the reason."""
    outcomes = planning.auto_partition_children(
        session,
        community_id,
        who=body.edited_by,
        why=body.reason,
        min_hh=body.min_households,
        max_hh=body.max_households,
    )
    grids = [
        GridPartitionOutcome(
            grid_id=o.grid_id,
            code=o.code,
            done=o.done,
            created=o.result.created if o.result else [],
            households=o.result.partition.households if o.result and o.result.partition else None,
            imbalance=round(o.result.partition.imbalance, 4)
            if o.result and o.result.partition
            else None,
            method=o.method,
            reason=o.reason,
        )
        for o in outcomes
    ]
    done = sum(g.done for g in grids)
    return CommunityPartitionResponse(
        community_id=community_id, done=done, refused=len(grids) - done, grids=grids
    )


@page_router.get(
    "/maps/planner",
    response_class=HTMLResponse,
    dependencies=[allow(*PLANNERS)],
    summary="Grid planner page",
)
def planner_page(session: SessionDep) -> HTMLResponse:
    """The planner: grids by level with household counts, draw, reshape, split, merge."""
    return HTMLResponse(build_planner(grids_frame(session)))
