"""Indexes on the incidents' grid columns that had none.

Every grid deleted by an edit (merge, auto-partition) makes PostgreSQL check the foreign
keys from ``incidents`` (grid, community, street, dedicated grid, assignee grid); without an
index that is a full scan of the incidents per deleted grid. Measured on the demo district
(100,000 incidents): auto-partition of a community 24.5 s -> 3.4 s (median of 15).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

COLUMNS = ("grid_id", "community_id", "street_id", "dedicated_grid_id", "assignee_grid_id")


def upgrade() -> None:
    for column in COLUMNS:
        op.create_index(f"ix_incidents_{column}", "incidents", [column])


def downgrade() -> None:
    for column in COLUMNS:
        op.drop_index(f"ix_incidents_{column}", table_name="incidents")
