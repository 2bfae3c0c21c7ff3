"""Station schemas: stations, coverage rows and new-station siting (GeoJSON is a plain dict)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class StationPublic(BaseModel):
    """A service station (服务站) with its WGS84 position."""

    id: int
    kind: str
    name: str
    address: str | None
    lon: float
    lat: float


class CoverageRow(BaseModel):
    """Households and residents within one band for one scope (overall, kind or grid)."""

    scope: Literal["overall", "kind", "grid"]
    key: str
    minutes: float
    households_total: int
    households: int
    residents: int
    households_straight: int
    residents_straight: int
    households_difference: int = Field(description="straight-line minus street households")
    share: float
    share_straight: float


class UncoveredBuilding(BaseModel):
    """A building farther than the largest band from every station."""

    building_id: int
    households: int
    walk_m: float | None
    lon: float
    lat: float


class CoveragePublic(BaseModel):
    """Coverage by street and straight line, and the buildings outside the 15-minute circle."""

    speed_kmh: float
    rows: list[CoverageRow]
    outside: list[UncoveredBuilding]


class SitingRequest(BaseModel):
    """Ask for ``k`` new station sites maximising newly covered households."""

    k: int = Field(ge=1, le=20)
    minutes: float = Field(default=15, gt=0, le=30)
    speed_kmh: float = Field(default=4.5, gt=0, le=10)
    candidates: Literal["nodes", "buildings"] = "nodes"
    max_candidates: int = Field(default=400, ge=1, le=2000)


class Site(BaseModel):
    """One suggested site: the candidate id (node or building) and its WGS84 position."""

    candidate: int
    lon: float
    lat: float


class SitingResultPublic(BaseModel):
    """Suggested sites with households covered before and after."""

    k: int
    minutes: float
    candidates: str
    n_candidates: int
    households_total: int
    covered_before: int
    covered_after: int
    newly_covered: int
    optimal: bool
    sites: list[Site]
