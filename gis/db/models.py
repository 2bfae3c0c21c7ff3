"""GeoAlchemy2 models: grids, buildings, roads, stations, staff, incidents, patrol tracks.

Every geometry is stored in EPSG:4326 with a GiST index and CHECK constraints for validity
and SRID; the migrations in ``gis/db/migrations`` create exactly these tables.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gis.grids import LEVELS
from gis.incidents import Status

GRID_LEVELS = LEVELS
INCIDENT_STATUSES = tuple(status.value for status in Status)
LOCATION_STATUSES = ("located", "outside", "needs_location")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def _geom_checks(geom_type: str, nullable: bool = False) -> tuple[CheckConstraint, ...]:
    guard = "geom IS NULL OR " if nullable else ""
    return (
        CheckConstraint(f"{guard}ST_SRID(geom) = 4326", name="geom_srid"),
        CheckConstraint(f"{guard}(ST_IsValid(geom) AND NOT ST_IsEmpty(geom))", name="geom_valid"),
        CheckConstraint(f"{guard}GeometryType(geom) = '{geom_type}'", name="geom_type"),
    )


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations get stable names."""

    metadata = MetaData(naming_convention=NAMING)


class Meta(Base):
    """Key-value facts about the database (e.g. which demo district is loaded)."""

    __tablename__ = "wangge_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Grid(Base):
    """A grid at any level: street office (街道/办事处), community (社区), 三级 grid, micro grid
    (微网格) or dedicated grid (专属网格)."""

    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="RESTRICT"))
    kind: Mapped[str | None] = mapped_column(String(32))
    households: Mapped[int] = mapped_column(Integer, default=0)
    residents: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        CheckConstraint(_in("level", GRID_LEVELS), name="level"),
        CheckConstraint("(level = 'street') = (parent_id IS NULL)", name="parent_unless_street"),
        CheckConstraint("households >= 0 AND residents >= 0", name="counts"),
        CheckConstraint("version >= 1", name="version"),
        *_geom_checks("MULTIPOLYGON"),
        Index("ix_grids_geom", "geom", postgresql_using="gist"),
        Index("ix_grids_level_code", "level", "code"),
        Index("ix_grids_parent_id", "parent_id"),
    )


class Road(Base):
    """A noded road segment with its name and kind (arterial, street, alley, footway, motorway)."""

    __tablename__ = "roads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    geom = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        *_geom_checks("LINESTRING"),
        Index("ix_roads_geom", "geom", postgresql_using="gist"),
    )


class Building(Base):
    """A building with its Chinese address and household counts; it lies in one micro grid."""

    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(Text)
    road_name: Mapped[str | None] = mapped_column(Text)
    house_number: Mapped[int | None] = mapped_column(Integer)
    compound_name: Mapped[str | None] = mapped_column(Text)
    building_no: Mapped[int | None] = mapped_column(Integer)
    units: Mapped[int] = mapped_column(SmallInteger, default=1)
    floors: Mapped[int] = mapped_column(SmallInteger, default=1)
    households: Mapped[int] = mapped_column(Integer, default=0)
    residents: Mapped[int] = mapped_column(Integer, default=0)
    micro_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        CheckConstraint("households >= 0 AND residents >= 0", name="counts"),
        *_geom_checks("POLYGON"),
        Index("ix_buildings_geom", "geom", postgresql_using="gist"),
        Index("ix_buildings_micro_grid_id", "micro_grid_id"),
    )


class Station(Base):
    """A service station (党群服务中心, 便民服务站, 养老服务站, 网格服务站, 卫生服务站)."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        *_geom_checks("POINT"),
        Index("ix_stations_geom", "geom", postgresql_using="gist"),
    )


staff_grids = Table(
    "staff_grids",
    Base.metadata,
    Column("staff_id", ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
    Column("grid_id", ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True),
)


class Staff(Base):
    """A grid leader (网格长) or grid worker (网格员) and the grids assigned to them."""

    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str | None] = mapped_column(String(32))


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
