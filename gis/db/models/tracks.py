"""Patrol tracks and their timed GPS fixes."""

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
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from gis.db.models.base import Base, _geom_checks


class PatrolTrack(Base):
    """A patrol track uploaded by a grid worker; identified by the hash of its content."""

    __tablename__ = "patrol_tracks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    source_name: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    n_points: Mapped[int] = mapped_column(Integer, default=0)
    geom = mapped_column(Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=True)

    __table_args__ = (
        UniqueConstraint("content_hash"),
        *_geom_checks("MULTILINESTRING", nullable=True),
        Index("ix_patrol_tracks_geom", "geom", postgresql_using="gist"),
        Index("ix_patrol_tracks_staff_id", "staff_id"),
    )


class TrackPoint(Base):
    """One timed GPS fix of a patrol track (raw, as received)."""

    __tablename__ = "track_points"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("patrol_tracks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    segment: Mapped[int] = mapped_column(SmallInteger, default=0)
    t: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        UniqueConstraint("track_id", "seq"),
        CheckConstraint("ST_SRID(geom) = 4326", name="geom_srid"),
        Index("ix_track_points_geom", "geom", postgresql_using="gist"),
    )
