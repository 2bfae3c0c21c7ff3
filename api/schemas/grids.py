"""Grid schemas: the locate answer (GeoJSON collections are returned as plain dicts)."""

from __future__ import annotations

from pydantic import BaseModel


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
