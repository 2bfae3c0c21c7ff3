"""Grid versions and the audit of planning edits.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects.postgresql import TSTZRANGE

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OPS = ("load", "create", "reshape", "split", "merge", "reparent", "rollback", "delete", "recount")


def upgrade() -> None:
    op.create_table(
        "grid_versions",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("grid_id", sa.Integer, nullable=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_code", sa.String(32), nullable=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("households", sa.Integer, nullable=False),
        sa.Column("valid", TSTZRANGE, nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("edited_by", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column(
            "edited_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "geom_before", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True
        ),
        sa.Column(
            "geom_after", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True
        ),
        sa.CheckConstraint(
            "operation IN (" + ", ".join(f"'{o}'" for o in _OPS) + ")",
            name="ck_grid_versions_operation",
        ),
        sa.CheckConstraint("version >= 1", name="ck_grid_versions_version"),
        sa.CheckConstraint(
            "(operation = 'delete') = (geom_after IS NULL)",
            name="ck_grid_versions_after_unless_delete",
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name="fk_grid_versions_grid_id_grids", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_grid_versions"),
    )
    op.create_index("ix_grid_versions_code_version", "grid_versions", ["code", "version"])
    op.create_index("ix_grid_versions_grid_id", "grid_versions", ["grid_id"])
    op.create_index("ix_grid_versions_valid", "grid_versions", ["valid"], postgresql_using="gist")
    op.create_index(
        "ix_grid_versions_geom_after", "grid_versions", ["geom_after"], postgresql_using="gist"
    )


def downgrade() -> None:
    op.drop_table("grid_versions")
