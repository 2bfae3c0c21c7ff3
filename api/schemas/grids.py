"""Grid schemas: the locate answer and planning edits (GeoJSON collections are plain dicts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class GridRef(BaseModel):
    """A grid named in a chain."""

    id: int
    code: str
    name: str


class GridChain(BaseModel):
    """A point's grids from micro grid (微网格) up to the street office, plus a dedicated grid."""

    micro: GridRef
    grid: GridRef
    community: GridRef
    street: GridRef
    dedicated: GridRef | None = None


class LocateResult(BaseModel):
    """Where a point lies: inside with its chain, or explicitly outside every grid."""

    lon: float
    lat: float
    crs: str
    inside: bool
    chain: GridChain | None
    detail: str


class GeoJSONGeometry(BaseModel):
    """A GeoJSON geometry in WGS84 (EPSG:4326), or in ``crs`` when the request names one."""

    type: str
    coordinates: list[Any]


class EditBase(BaseModel):
    """Who edits and why: both are kept in the grid history (网格版本)."""

    reason: str = Field(min_length=1, max_length=500, description="why the grid changes")
    edited_by: str = Field(default="planner", min_length=1, max_length=100)
    crs: str = Field(default="wgs84", description="wgs84, cgcs2000, gcj02 or bd09")


class CreateGridRequest(EditBase):
    """A new child grid drawn inside ``parent_id``; it takes its area from covered siblings."""

    parent_id: int
    geometry: GeoJSONGeometry
    name: str = Field(default="", max_length=100)


class ReshapeRequest(EditBase):
    """A new outline for a grid, based on ``version`` (optimistic locking)."""

    version: int = Field(ge=1)
    geometry: GeoJSONGeometry


class SplitRequest(EditBase):
    """Split a grid with a line crossing it from edge to edge."""

    version: int = Field(ge=1)
    line: GeoJSONGeometry


class MergeRequest(EditBase):
    """Merge the adjacent sibling ``other_id`` into this grid."""

    version: int = Field(ge=1)
    other_id: int
    other_version: int = Field(ge=1)


class ReparentRequest(EditBase):
    """Move this grid to a neighbouring parent of the right level."""

    version: int = Field(ge=1)
    new_parent_id: int


class RollbackRequest(EditBase):
    """Restore the outline the grid had at ``to_version`` as a new version."""

    version: int = Field(ge=1)
    to_version: int = Field(ge=1)


class AutoSplitRequest(EditBase):
    """Split into ``parts`` contiguous parts with balanced households."""

    version: int = Field(ge=1)
    parts: int = Field(ge=2, le=50)


class AutoPartitionRequest(EditBase):
    """Re-partition a 三级 grid into micro grids (微网格) of 30–80 households."""

    version: int = Field(ge=1)
    min_households: int = Field(default=30, ge=1, le=10_000)
    max_households: int = Field(default=80, ge=1, le=10_000)


class CommunityPartitionRequest(EditBase):
    """Re-partition every 三级 grid of a community, each on its own (all-or-nothing per grid)."""

    min_households: int = Field(default=30, ge=1, le=10_000)
    max_households: int = Field(default=80, ge=1, le=10_000)


class GridPartitionOutcome(BaseModel):
    """One 三级 grid of a community auto-partition: done with its new micro grids, or refused."""

    grid_id: int
    code: str
    done: bool
    created: list[int] = []
    households: list[int] | None = None
    imbalance: float | None = None
    method: str | None = None
    reason: str | None = None


class CommunityPartitionResponse(BaseModel):
    """Per 三级 grid outcome of a community auto-partition."""

    community_id: int
    done: int
    refused: int
    grids: list[GridPartitionOutcome]


class EditResponse(BaseModel):
    """What an edit changed, with households per part and imbalance for automatic splits."""

    operation: str
    changed: list[int]
    created: list[int]
    deleted: list[int]
    households: list[int] | None = None
    imbalance: float | None = None
    street_cuts: int | None = None


class GridVersionOut(BaseModel):
    """One version of a grid in its history; ``valid_from`` None means "since the start"."""

    id: int
    grid_id: int | None
    code: str
    level: str
    parent_code: str | None
    name: str
    version: int
    households: int
    valid_from: datetime | None
    valid_to: datetime | None
    operation: str
    edited_by: str
    reason: str
    edited_at: datetime
    geom_before: dict[str, Any] | None
    geom_after: dict[str, Any] | None
