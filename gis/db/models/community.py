"""Community service lists: volunteers (资源清单), needs and small wishes (需求清单/微心愿),
projects (项目清单), the append-only volunteer points ledger (志愿积分) and the rewards."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    JSON,
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
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from gis.db.models.base import Base, _geom_checks, _in
from gis.volunteering import REWARD_KINDS, VOLUNTEER_KINDS, WISH_KINDS, WISH_STATUSES

_TS = DateTime(timezone=True)


class Volunteer(Base):
    """A volunteer, party member (党员), resident unit or company that offers help."""

    __tablename__ = "volunteers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32))
    skills: Mapped[list | None] = mapped_column(JSON)
    hours_per_week: Mapped[float | None] = mapped_column(Float)
    home_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=func.now())
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)

    __table_args__ = (
        CheckConstraint(_in("kind", VOLUNTEER_KINDS), name="kind"),
        *_geom_checks("POINT", nullable=True),
        Index("ix_volunteers_geom", "geom", postgresql_using="gist"),
    )


class Wish(Base):
    """A resident's need or small wish (微心愿), posted by them or by a worker for them."""

    __tablename__ = "wishes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    category: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    posted_by: Mapped[str | None] = mapped_column(Text)
    wanted_by: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    micro_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    volunteer_id: Mapped[int | None] = mapped_column(
        ForeignKey("volunteers.id", ondelete="SET NULL")
    )
    claimed_at: Mapped[datetime | None] = mapped_column(_TS)
    done_at: Mapped[datetime | None] = mapped_column(_TS)
    confirmed_at: Mapped[datetime | None] = mapped_column(_TS)
    hours: Mapped[float | None] = mapped_column(Float)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=func.now())
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    # the keyed hash of the phone of a resident who posted it themselves (migration 0011)
    resident_key: Mapped[str | None] = mapped_column(String(64), index=True)

    __table_args__ = (
        CheckConstraint(_in("kind", WISH_KINDS), name="kind"),
        CheckConstraint(_in("status", WISH_STATUSES), name="status"),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating"),
        CheckConstraint("hours IS NULL OR (hours > 0 AND hours <= 24)", name="hours"),
        *_geom_checks("POINT", nullable=True),
        Index("ix_wishes_geom", "geom", postgresql_using="gist"),
        Index("ix_wishes_status", "status"),
    )


class Project(Base):
    """A community project (项目清单)."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="planned")
    starts: Mapped[date | None] = mapped_column(Date)
    ends: Mapped[date | None] = mapped_column(Date)

    __table_args__ = (CheckConstraint("status IN ('planned', 'running', 'done')", name="status"),)


class Reward(Base):
    """A reward in the catalogue: a service (服务型) or goods (物质型), its cost and stock."""

    __tablename__ = "rewards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(8))
    cost: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(_in("kind", REWARD_KINDS), name="kind"),
        CheckConstraint("cost > 0", name="cost"),
        CheckConstraint("stock IS NULL OR stock >= 0", name="stock"),
    )


class PointsEntry(Base):
    """One entry of the append-only points ledger; a balance is the sum of its entries."""

    __tablename__ = "points_ledger"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="RESTRICT"))
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    ref_kind: Mapped[str | None] = mapped_column(String(16))
    ref_id: Mapped[int | None] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=func.now())

    __table_args__ = (
        CheckConstraint("delta <> 0", name="delta"),
        Index("ix_points_ledger_volunteer_id", "volunteer_id"),
    )
