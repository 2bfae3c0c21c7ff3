"""Pre-aggregated incident counts of the leadership dashboards (驾驶舱汇总表), kept up to date
by :func:`gis.db.queries.dashboards.refresh_rollup` (the SLA tick, and any page that finds
them stale): the pages read these small tables instead of scanning a million incidents.

* ``incident_rollup_kpis`` — per local day and status, grouped three ways (``kind``):
  per community, per category, per source; counts and the sums the KPI cards need;
* ``incident_rollup_grids`` — per local month, status and grid chain (all five levels);
* ``incident_rollup_heat`` — per local week or month and ~50 m cell (0.0005°);
* ``incident_rollup_state`` — when they were refreshed and up to which ``updated_at``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
)

from gis.db.models.base import Base
from gis.db.models.incidents import Incident

incident_rollup_kpis = Table(
    "incident_rollup_kpis",
    Base.metadata,
    Column("day", Date, nullable=False),
    Column("kind", String(10), nullable=False),
    Column("community_id", Integer),
    Column("category", String(32)),
    Column("source", String(32)),
    Column("status", String(16), nullable=False),
    Column("incidents", Integer, nullable=False),
    Column("on_time", Integer, nullable=False),
    Column("closed_in_grid", Integer, nullable=False),
    Column("satisfaction_sum", Integer, nullable=False),
    Column("evaluations", Integer, nullable=False),
    CheckConstraint("kind IN ('community', 'category', 'source')", name="kind"),
    Index("ix_incident_rollup_kpis_day", "day"),
)

incident_rollup_grids = Table(
    "incident_rollup_grids",
    Base.metadata,
    Column("month", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("micro_grid_id", Integer),
    Column("grid_id", Integer),
    Column("community_id", Integer),
    Column("street_id", Integer),
    Column("dedicated_grid_id", Integer),
    Column("incidents", Integer, nullable=False),
    Index("ix_incident_rollup_grids_month", "month"),
)

incident_rollup_heat = Table(
    "incident_rollup_heat",
    Base.metadata,
    Column("period", String(5), nullable=False),
    Column("start", Date, nullable=False),
    Column("gx", Integer, nullable=False),
    Column("gy", Integer, nullable=False),
    Column("weight", Integer, nullable=False),
    CheckConstraint("period IN ('week', 'month')", name="period"),
    Index("ix_incident_rollup_heat_period_start", "period", "start"),
)

incident_rollup_state = Table(
    "incident_rollup_state",
    Base.metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("refreshed_at", DateTime(timezone=True), nullable=False),
    Column("watermark", DateTime(timezone=True)),
    Column("incidents", BigInteger, nullable=False),
    Column("taxonomy", Text, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# what changed since the last refresh is found by updated_at
Index("ix_incidents_updated_at", Incident.__table__.c.updated_at)

__all__ = [
    "incident_rollup_grids",
    "incident_rollup_heat",
    "incident_rollup_kpis",
    "incident_rollup_state",
]
