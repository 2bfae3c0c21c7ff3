"""How an incident got its location (point, address match, or a worker on the map).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("location_source", sa.String(16), nullable=True))
    op.add_column("incidents", sa.Column("address_score", sa.Float, nullable=True))
    op.add_column("incidents", sa.Column("building_id", sa.Integer, nullable=True))
    op.create_foreign_key(
        "fk_incidents_building_id_buildings",
        "incidents",
        "buildings",
        ["building_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_check_constraint(
        "ck_incidents_location_source",
        "incidents",
        "location_source IS NULL OR location_source IN ('point', 'address', 'manual')",
    )
    op.execute("UPDATE incidents SET location_source = 'point' WHERE geom IS NOT NULL")


def downgrade() -> None:
    op.drop_constraint("ck_incidents_location_source", "incidents", type_="check")
    op.drop_constraint("fk_incidents_building_id_buildings", "incidents", type_="foreignkey")
    op.drop_column("incidents", "building_id")
    op.drop_column("incidents", "address_score")
    op.drop_column("incidents", "location_source")
