"""Incident schemas: what a reporter sends in, what the API sends back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, model_validator

Source = Literal["巡查", "热线", "12345", "公众号", "随手拍", "Open311"]


class IncidentCreate(BaseModel):
    """A new report: a point (any supported CRS) or an address text, or both."""

    category: str = Field(min_length=1, max_length=32, examples=["噪音扰民"])
    source: Source = Field(examples=["巡查"])
    description: str | None = Field(default=None, max_length=4000)
    lon: float | None = Field(default=None, examples=[113.55])
    lat: float | None = Field(default=None, examples=[34.80])
    crs: str = Field(default="wgs84", description="wgs84, cgcs2000, gcj02 or bd09")
    address: str | None = Field(default=None, max_length=500)
    reporter: str | None = Field(default=None, max_length=200)
    reported_at: datetime | None = None

    @model_validator(mode="after")
    def _point_or_address(self) -> IncidentCreate:
        if (self.lon is None) != (self.lat is None):
            raise ValueError("give both lon and lat, or neither")
        if self.lon is None and not (self.address and self.address.strip()):
            raise ValueError("give a point (lon, lat) or an address")
        return self


class IncidentPublic(BaseModel):
    """A stored incident with its grid chain (codes) and location status."""

    id: int
    ext_id: str | None
    category: str
    source: str
    description: str | None
    address: str | None
    reported_at: datetime
    status: str
    location_status: Literal["located", "outside", "needs_location"]
    location_source: Literal["point", "address", "manual"] | None = None
    address_score: float | None = None
    building_id: int | None = None
    lon: float | None
    lat: float | None
    micro_code: str | None
    grid_code: str | None
    community_code: str | None
    street_code: str | None
    dedicated_code: str | None


class AddressCandidate(BaseModel):
    """One gazetteer guess for a report's address."""

    building_id: int | None
    score: float
    level: Literal["building", "compound", "road"]
    matched: dict[str, str]
    lon: float | None
    lat: float | None
    micro_code: str | None


class QueuedIncident(BaseModel):
    """An incident in the needs-location queue with ranked candidates."""

    incident: IncidentPublic
    candidates: list[AddressCandidate]


class LocationFix(BaseModel):
    """A worker's fix: a point (any supported CRS) or a building from the candidates."""

    lon: float | None = None
    lat: float | None = None
    crs: str = "wgs84"
    building_id: int | None = None

    @model_validator(mode="after")
    def _one_of(self) -> LocationFix:
        has_point = self.lon is not None and self.lat is not None
        if has_point == (self.building_id is not None):
            raise ValueError("give either a point (lon, lat) or a building_id")
        return self
