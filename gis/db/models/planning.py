"""Grid versions (网格版本): one row per version of a grid, with its validity period and audit.

A planning edit closes the current row (``valid`` gets an upper bound) and opens a new one, so
"the grid version in force at time t" is ``valid @> t``: incidents and track points keep the
grid they were reported in without any column on their own tables.
"""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import TSTZRANGE, Range
from sqlalchemy.orm import Mapped, mapped_column

from gis.db.models.base import Base

EDIT_OPERATIONS = (
    "load",
    "create",
    "reshape",
    "split",
    "merge",
    "reparent",
    "rollback",
    "delete",
    "recount",
)


class GridVersion(Base):
    """One version of one grid: geometry before and after the edit, who, why and when."""

    __tablename__ = "grid_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    parent_code: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer)
    households: Mapped[int] = mapped_column(Integer, default=0)
    valid: Mapped[Range[datetime]] = mapped_column(TSTZRANGE)
    operation: Mapped[str] = mapped_column(String(16))
    edited_by: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    edited_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    geom_before = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True
    )
    geom_after = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True
    )

    __table_args__ = (
        CheckConstraint(
            "operation IN (" + ", ".join(f"'{o}'" for o in EDIT_OPERATIONS) + ")",
            name="operation",
        ),
        CheckConstraint("version >= 1", name="version"),
        CheckConstraint(
            "(operation = 'delete') = (geom_after IS NULL)", name="after_unless_delete"
        ),
        Index("ix_grid_versions_code_version", "code", "version"),
        Index("ix_grid_versions_grid_id", "grid_id"),
        Index("ix_grid_versions_valid", "valid", postgresql_using="gist"),
        Index("ix_grid_versions_geom_after", "geom_after", postgresql_using="gist"),
    )


__all__ = ["EDIT_OPERATIONS", "GridVersion"]
