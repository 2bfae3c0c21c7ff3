"""Incidents and their place in the closed loop."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from gis.db.models.base import INCIDENT_STATUSES, LOCATION_STATUSES, Base, _geom_checks, _in


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
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("status", INCIDENT_STATUSES), name="status"),
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
        Index("ix_incidents_reported_at", "reported_at"),
        Index("ix_incidents_location_status", "location_status"),
    )
