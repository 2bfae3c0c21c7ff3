"""Patrol tracks, their uploads and timed GPS fixes, per-grid effort, key households and
their visits.

Key households' personal data live in :class:`KeyHouseholdPerson`, apart from the household
itself, so that only the roles allowed ever join it (and every read is audited).
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
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
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gis.db.models.base import Base, _geom_checks


class TrackUpload(Base):
    """One uploaded file, identified by the hash of its bytes (uploads are idempotent)."""

    __tablename__ = "track_uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    crs: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    n_points: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict] = mapped_column(JSONB)

    __table_args__ = (UniqueConstraint("content_hash"),)


class PatrolTrack(Base):
    """A patrol track (one GPX <trk>/<rte>, GeoJSON line or CSV file) of a grid worker; its
    ``geom`` is the cleaned line, split into segments at long gaps."""

    __tablename__ = "patrol_tracks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    source_name: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    n_points: Mapped[int] = mapped_column(Integer, default=0)
    geom = mapped_column(Geometry("MULTILINESTRING", srid=4326, spatial_index=False), nullable=True)
    upload_id: Mapped[int | None] = mapped_column(
        ForeignKey("track_uploads.id", ondelete="CASCADE")
    )
    name: Mapped[str | None] = mapped_column(Text)
    work_date: Mapped[date | None] = mapped_column(Date)
    n_kept: Mapped[int] = mapped_column(Integer, server_default="0")
    distance_m: Mapped[float] = mapped_column(Float, server_default="0")
    dropped: Mapped[dict | None] = mapped_column(JSONB)

    __table_args__ = (
        UniqueConstraint("content_hash"),
        *_geom_checks("MULTILINESTRING", nullable=True),
        Index("ix_patrol_tracks_geom", "geom", postgresql_using="gist"),
        Index("ix_patrol_tracks_staff_id", "staff_id"),
        Index("ix_patrol_tracks_work_date", "work_date"),
        Index("ix_patrol_tracks_upload_id", "upload_id"),
    )


class TrackPoint(Base):
    """One timed GPS fix as received; ``flag`` says whether cleaning kept it (0) or why not
    (see :data:`gis.tracks.FLAG_NAMES`), ``cseg`` its cleaned segment, ``grid_id`` its micro
    grid."""

    __tablename__ = "track_points"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("patrol_tracks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    segment: Mapped[int] = mapped_column(SmallInteger, default=0)
    t: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    flag: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    cseg: Mapped[int | None] = mapped_column(Integer)
    grid_id: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("track_id", "seq"),
        CheckConstraint("ST_SRID(geom) = 4326", name="geom_srid"),
        Index("ix_track_points_geom", "geom", postgresql_using="gist"),
    )


class TrackEffort(Base):
    """Patrol effort of one track in one grid (any level): distance, time inside, entries."""

    __tablename__ = "track_effort"

    track_id: Mapped[int] = mapped_column(
        ForeignKey("patrol_tracks.id", ondelete="CASCADE"), primary_key=True
    )
    grid_id: Mapped[int] = mapped_column(
        ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    level: Mapped[str] = mapped_column(String(16))
    distance_m: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    entries: Mapped[int] = mapped_column(Integer)


class TrackWaypoint(Base):
    """A GPX waypoint of an upload (a place the worker marked)."""

    __tablename__ = "track_waypoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("track_uploads.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(Text)
    t: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (CheckConstraint("ST_SRID(geom) = 4326", name="geom_srid"),)


class KeyHousehold(Base):
    """A key household (重点户: 独居老人, 残疾户, 大病户...) to be visited weekly; no personal
    data here."""

    __tablename__ = "key_households"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(Text)
    grid_id: Mapped[int | None] = mapped_column(
        ForeignKey("grids.id", ondelete="SET NULL"), index=True
    )


class KeyHouseholdPerson(Base):
    """The personal data of a key household: only allowed roles read it, each read audited."""

    __tablename__ = "key_household_people"

    household_id: Mapped[int] = mapped_column(
        ForeignKey("key_households.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    unit: Mapped[str | None] = mapped_column(Text)
    room: Mapped[str | None] = mapped_column(Text)


class HouseholdVisit(Base):
    """A visit (上门): a dwell of a worker's track near a key household's building."""

    __tablename__ = "household_visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("key_households.id", ondelete="CASCADE"), index=True
    )
    track_id: Mapped[int] = mapped_column(ForeignKey("patrol_tracks.id", ondelete="CASCADE"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    minutes: Mapped[float] = mapped_column(Float)
    min_distance_m: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint(
            "track_id", "household_id", "started_at", name="uq_household_visits_track_id"
        ),
    )
