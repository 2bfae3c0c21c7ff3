"""Incident schemas: what a reporter sends in, what the API sends back."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

Source = Literal["巡查", "热线", "12345", "公众号", "随手拍", "Open311"]
StatusName = Literal[
    "reported",
    "accepted",
    "dispatched",
    "in_progress",
    "resolved",
    "evaluated",
    "closed",
    "rejected",
    "duplicate",
    "reopened",
]


class IncidentCreate(BaseModel):
    """A new report: a point (any supported CRS) or an address text, or both."""

    category: str = Field(
        min_length=1, max_length=32, examples=["噪音扰民"], description="code or name"
    )
    source: Source = Field(examples=["巡查"])
    severity: int | None = Field(
        default=None, ge=1, le=4, description="1 minor .. 4 grave; default: the category's"
    )
    description: str | None = Field(default=None, max_length=4000)
    lon: float | None = Field(default=None, examples=[113.55])
    lat: float | None = Field(default=None, examples=[34.80])
    crs: str = Field(default="wgs84", description="wgs84, cgcs2000, gcj02 or bd09")
    address: str | None = Field(default=None, max_length=500)
    reporter: str | None = Field(default=None, max_length=200)
    reported_at: datetime | None = None
    media_url: str | None = Field(default=None, max_length=2000)

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
    category_code: str | None = None
    severity: int = 1
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
    colour: str = "blue"
    initial_level: str | None = None
    handling_level: str | None = None
    assignee_kind: str | None = None
    assignee_staff_id: int | None = None
    assignee_grid_id: int | None = None
    assignee_name: str | None = None
    accepted_at: datetime | None = None
    dispatched_at: datetime | None = None
    started_at: datetime | None = None
    resolved_at: datetime | None = None
    evaluated_at: datetime | None = None
    closed_at: datetime | None = None
    reopened_at: datetime | None = None
    satisfaction: int | None = None
    evaluation_comment: str | None = None
    duplicate_of: int | None = None
    media_url: str | None = None
    reopen_count: int = 0
    version: int = 1
    photos: list[str] = Field(default_factory=list, description="URLs of the stored photos")
    possible_duplicates: list[DuplicateCandidate] = Field(
        default_factory=list,
        description="same category within R metres and T hours: offered as a merge",
    )


class DuplicateCandidate(BaseModel):
    """An earlier or later report that may be the same matter."""

    id: int
    status: str
    reported_at: datetime
    distance_m: float
    hours_apart: float


class AssigneeIn(BaseModel):
    """Whom to dispatch to; omit it to route by the rules (grid worker first)."""

    kind: Literal["worker", "community", "street", "department"]
    staff_id: int | None = None
    grid_id: int | None = None
    name: str | None = Field(default=None, max_length=100)


class TransitionIn(BaseModel):
    """One step of the closed loop, by whom and why."""

    to: StatusName
    actor: str = Field(min_length=1, max_length=100, examples=["调度员 王芳"])
    note: str | None = Field(default=None, max_length=2000)
    expected_version: int | None = Field(
        default=None, ge=1, description="the version the client saw (409 if it changed)"
    )
    assignee: AssigneeIn | None = None
    satisfaction: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)
    duplicate_of: int | None = Field(default=None, ge=1)


class IncidentEventOut(BaseModel):
    """One audited step."""

    id: int
    at: datetime
    actor: str
    kind: Literal["transition", "escalation", "recolour"]
    from_status: str | None
    to_status: str | None
    handling_level: str | None
    note: str | None
    data: dict[str, Any] | None


class OverdueIncident(BaseModel):
    """An open incident past its current deadline."""

    id: int
    category: str
    category_code: str
    status: str
    stage: Literal["respond", "on_site", "resolve"]
    deadline: datetime
    overdue_minutes: float
    colour: Literal["blue", "yellow", "orange", "red"]
    handling_level: str | None
    assignee_name: str | None


class TickResult(BaseModel):
    """What one SLA tick did."""

    checked: int
    recoloured: int
    escalated: int
    closed: int


class CategoryOut(BaseModel):
    """A category of the taxonomy with its defaults."""

    code: str
    name: str
    class_code: str
    class_name: str
    severity: int
    level: str
    department: str | None
    description: str | None
    respond_minutes: float
    on_site_minutes: float
    resolve_same_day: bool
    resolve_minutes: float


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


class IncidentBatchItem(IncidentCreate):
    """One report of a batch, with its own idempotency key (a phone's offline queue)."""

    idempotency_key: str = Field(min_length=8, max_length=128)


class IncidentBatch(BaseModel):
    """Up to 1,000 reports stored all together or not at all."""

    reports: list[IncidentBatchItem] = Field(min_length=1, max_length=1000)


class BatchResult(BaseModel):
    """What happened to one report of a batch."""

    idempotency_key: str
    id: int
    created: bool
    location_status: str
