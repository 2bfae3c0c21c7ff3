"""Road network for service circles (pgRouting topology, isochrones)."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from gis.db.models.base import Base, _geom_checks

__all__ = ["Isochrone", "NetworkEdge", "NetworkNode"]


class NetworkNode(Base):
    """A node of the walking network (步行路网节点): a street end or junction."""

    __tablename__ = "network_nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        *_geom_checks("POINT"),
        Index("ix_network_nodes_geom", "geom", postgresql_using="gist"),
    )


class NetworkEdge(Base):
    """A walkable edge in pgRouting form: source, target, cost = reverse_cost = metres."""

    __tablename__ = "network_edges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[int] = mapped_column(Integer)
    target: Mapped[int] = mapped_column(Integer)
    cost: Mapped[float] = mapped_column(Float)
    reverse_cost: Mapped[float] = mapped_column(Float)
    length_m: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(24))
    name: Mapped[str | None] = mapped_column(Text)
    geom = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        CheckConstraint("length_m >= 0 AND cost >= 0", name="length"),
        *_geom_checks("LINESTRING"),
        Index("ix_network_edges_geom", "geom", postgresql_using="gist"),
        Index("ix_network_edges_source", "source"),
        Index("ix_network_edges_target", "target"),
    )


class Isochrone(Base):
    """A station's walking isochrone for one band, with the fingerprint of the network and
    stations it was computed from (recomputed only when that fingerprint changes)."""

    __tablename__ = "isochrones"

    station_id: Mapped[int] = mapped_column(
        ForeignKey("stations.id", ondelete="CASCADE"), primary_key=True
    )
    minutes: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    budget_m: Mapped[float] = mapped_column(Float)
    street_m: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    lines = mapped_column(Geometry("MULTILINESTRING", srid=4326, spatial_index=False))
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False)

    __table_args__ = (
        CheckConstraint("minutes > 0", name="minutes"),
        *_geom_checks("MULTIPOLYGON"),
        Index("ix_isochrones_geom", "geom", postgresql_using="gist"),
    )
