"""Pre-aggregated incident counts for the leadership dashboards (驾驶舱汇总表) and an index on
``incidents.updated_at`` to find what changed since the last refresh.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "incident_rollup_kpis",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("community_id", sa.Integer, nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("source", sa.String(32), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("incidents", sa.Integer, nullable=False),
        sa.Column("on_time", sa.Integer, nullable=False),
        sa.Column("closed_in_grid", sa.Integer, nullable=False),
        sa.Column("satisfaction_sum", sa.Integer, nullable=False),
        sa.Column("evaluations", sa.Integer, nullable=False),
        sa.CheckConstraint("kind IN ('community', 'category', 'source')",
                           name="ck_incident_rollup_kpis_kind"),
    )  # fmt: skip
    op.create_index("ix_incident_rollup_kpis_day", "incident_rollup_kpis", ["day"])
    op.create_table(
        "incident_rollup_grids",
        sa.Column("month", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("micro_grid_id", sa.Integer, nullable=True),
        sa.Column("grid_id", sa.Integer, nullable=True),
        sa.Column("community_id", sa.Integer, nullable=True),
        sa.Column("street_id", sa.Integer, nullable=True),
        sa.Column("dedicated_grid_id", sa.Integer, nullable=True),
        sa.Column("incidents", sa.Integer, nullable=False),
    )
    op.create_index("ix_incident_rollup_grids_month", "incident_rollup_grids", ["month"])
    op.create_table(
        "incident_rollup_heat",
        sa.Column("period", sa.String(5), nullable=False),
        sa.Column("start", sa.Date, nullable=False),
        sa.Column("gx", sa.Integer, nullable=False),
        sa.Column("gy", sa.Integer, nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.CheckConstraint("period IN ('week', 'month')", name="ck_incident_rollup_heat_period"),
    )
    op.create_index(
        "ix_incident_rollup_heat_period_start", "incident_rollup_heat", ["period", "start"]
    )
    op.create_table(
        "incident_rollup_state",
        sa.Column("id", sa.SmallInteger, nullable=False),
        sa.Column("refreshed_at", TS, nullable=False),
        sa.Column("watermark", TS, nullable=True),
        sa.Column("incidents", sa.BigInteger, nullable=False),
        sa.Column("taxonomy", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incident_rollup_state"),
        sa.CheckConstraint("id = 1", name="ck_incident_rollup_state_single_row"),
    )
    op.create_index("ix_incidents_updated_at", "incidents", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_incidents_updated_at", "incidents")
    op.drop_table("incident_rollup_state")
    op.drop_table("incident_rollup_heat")
    op.drop_index("ix_incident_rollup_grids_month", "incident_rollup_grids")
    op.drop_table("incident_rollup_grids")
    op.drop_index("ix_incident_rollup_kpis_day", "incident_rollup_kpis")
    op.drop_table("incident_rollup_kpis")
