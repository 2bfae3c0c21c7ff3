"""党员中心户 links (a party member looks after 1–5 key households) and the visits party
members record; both count towards the weekly key-household visit compliance."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import DateTime, Float, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from gis.db.models.base import Base, _geom_checks

_TS = DateTime(timezone=True)


class PartyLink(Base):
    """A key household looked after by one party-member household (a volunteer of kind
    ``party_member``); at most five per party member (checked when linking)."""

    __tablename__ = "party_links"

    household_id: Mapped[int] = mapped_column(
        ForeignKey("key_households.id", ondelete="CASCADE"), primary_key=True
    )
    volunteer_id: Mapped[int] = mapped_column(
        ForeignKey("volunteers.id", ondelete="CASCADE"), index=True
    )
    linked_at: Mapped[datetime] = mapped_column(_TS, server_default=func.now())
    linked_by: Mapped[str | None] = mapped_column(Text)


class PartyVisit(Base):
    """A visit (走访) of a party member to a key household: when, and optionally where."""

    __tablename__ = "party_visits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("key_households.id", ondelete="CASCADE"), index=True
    )
    volunteer_id: Mapped[int] = mapped_column(ForeignKey("volunteers.id", ondelete="CASCADE"))
    visited_at: Mapped[datetime] = mapped_column(_TS, index=True)
    note: Mapped[str | None] = mapped_column(Text)
    distance_m: Mapped[float | None] = mapped_column(Float)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    recorded_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(_TS, server_default=func.now())
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)

    __table_args__ = (
        *_geom_checks("POINT", nullable=True),
        Index("ix_party_visits_geom", "geom", postgresql_using="gist"),
    )
