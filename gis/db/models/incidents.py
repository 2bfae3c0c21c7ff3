"""Incidents, their place in the closed loop (闭环), the audit of every step, and photos."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from gis.db.models.base import INCIDENT_STATUSES, LOCATION_STATUSES, Base, _geom_checks, _in
from gis.incidents import HANDLING_LEVELS, SOURCES, Colour

ASSIGNEE_KINDS = ("worker", "community", "street", "department")
EVENT_KINDS = ("transition", "escalation", "recolour")
_TS = DateTime(timezone=True)


class Incident(Base):
    """A reported incident with its point, its grid chain and its place in the closed loop."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ext_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    category: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    reporter: Mapped[str | None] = mapped_column(Text)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    status: Mapped[str] = mapped_column(String(16), default="reported")
    location_status: Mapped[str] = mapped_column(String(16), default="needs_location")
    micro_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    dedicated_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    location_source: Mapped[str | None] = mapped_column(String(16))
    address_score: Mapped[float | None] = mapped_column(Float)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id", ondelete="SET NULL"))
    category_code: Mapped[str | None] = mapped_column(String(8))
    severity: Mapped[int] = mapped_column(SmallInteger, server_default="1")
    initial_level: Mapped[str | None] = mapped_column(String(16))
    handling_level: Mapped[str | None] = mapped_column(String(16))
    assignee_kind: Mapped[str | None] = mapped_column(String(16))
    assignee_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", ondelete="SET NULL")
    )
    assignee_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    assignee_name: Mapped[str | None] = mapped_column(Text)
    colour: Mapped[str] = mapped_column(String(8), server_default="blue")
    accepted_at: Mapped[datetime | None] = mapped_column(_TS)
    dispatched_at: Mapped[datetime | None] = mapped_column(_TS)
    started_at: Mapped[datetime | None] = mapped_column(_TS)
    resolved_at: Mapped[datetime | None] = mapped_column(_TS)
    evaluated_at: Mapped[datetime | None] = mapped_column(_TS)
    closed_at: Mapped[datetime | None] = mapped_column(_TS)
    reopened_at: Mapped[datetime | None] = mapped_column(_TS)
    satisfaction: Mapped[int | None] = mapped_column(SmallInteger)
    evaluation_comment: Mapped[str | None] = mapped_column(Text)
    duplicate_of: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL")
    )
    media_url: Mapped[str | None] = mapped_column(Text)
    reporter_key: Mapped[str | None] = mapped_column(String(64))
    reopen_count: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    updated_at: Mapped[datetime] = mapped_column(_TS, server_default=func.now())
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("status", INCIDENT_STATUSES), name="status"),
        CheckConstraint("severity BETWEEN 1 AND 4", name="severity"),
        CheckConstraint(
            f"(handling_level IS NULL OR {_in('handling_level', HANDLING_LEVELS)}) AND "
            f"(initial_level IS NULL OR {_in('initial_level', HANDLING_LEVELS)})",
            name="handling_level",
        ),
        CheckConstraint(
            f"assignee_kind IS NULL OR {_in('assignee_kind', ASSIGNEE_KINDS)}",
            name="assignee_kind",
        ),
        CheckConstraint(_in("colour", tuple(c.value for c in Colour)), name="colour"),
        CheckConstraint(
            "satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="satisfaction"
        ),
        CheckConstraint(_in("source", SOURCES), name="source"),
        CheckConstraint(
            "(status = 'duplicate') = (duplicate_of IS NOT NULL)", name="duplicate_has_original"
        ),
        Index("ix_incidents_status", "status"),
        Index("ix_incidents_category_code", "category_code"),
        Index("ix_incidents_assignee_staff_id", "assignee_staff_id"),
        Index("ix_incidents_reporter_key", "reporter_key"),
        CheckConstraint(_in("location_status", LOCATION_STATUSES), name="location_status"),
        CheckConstraint(
            "(geom IS NULL) = (location_status = 'needs_location')", name="located_has_point"
        ),
        CheckConstraint(
            "location_source IS NULL OR location_source IN ('point', 'address', 'manual')",
            name="location_source",
        ),
        *_geom_checks("POINT", nullable=True),
        Index("ix_incidents_geom", "geom", postgresql_using="gist"),
        Index("ix_incidents_micro_grid_id", "micro_grid_id"),
        # every grid column: deleting a grid checks these foreign keys (migration 0013)
        Index("ix_incidents_grid_id", "grid_id"),
        Index("ix_incidents_community_id", "community_id"),
        Index("ix_incidents_street_id", "street_id"),
        Index("ix_incidents_dedicated_grid_id", "dedicated_grid_id"),
        Index("ix_incidents_assignee_grid_id", "assignee_grid_id"),
        Index("ix_incidents_reported_at", "reported_at"),
        Index("ix_incidents_location_status", "location_status"),
    )


class IncidentEvent(Base):
    """One audited step of an incident: a transition, an escalation or a colour change (who,
    when, from what to what, and why)."""

    __tablename__ = "incident_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(_TS)
    actor: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    handling_level: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict | None] = mapped_column(JSON)

    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="kind"),
        Index("ix_incident_events_incident_id_at", "incident_id", "at"),
    )


class IncidentPhoto(Base):
    """A photo of an incident; the bytes live on disk under their SHA-256, not in the database."""

    __tablename__ = "incident_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=func.now())

    __table_args__ = (
        UniqueConstraint("incident_id", "sha256"),
        CheckConstraint("size_bytes > 0", name="size"),
    )
