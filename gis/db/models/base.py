"""Declarative base, naming convention, shared geometry CHECKs and the meta table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    MetaData,
    String,
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
