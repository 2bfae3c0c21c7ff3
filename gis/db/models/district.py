"""The district: grids at every level, roads, buildings, service stations and staff."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from gis.db.models.base import GRID_LEVELS, Base, _geom_checks, _in


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
