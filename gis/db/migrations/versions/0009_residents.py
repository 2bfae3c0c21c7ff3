"""Residents' one-time codes, and the keyed hash of the reporter's number on incidents.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resident_codes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("phone_key", sa.String(64), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.SmallInteger, server_default="0", nullable=False),
        sa.Column("used", sa.Boolean, server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_resident_codes"),
    )  # fmt: skip
    op.create_index("ix_resident_codes_phone_key", "resident_codes", ["phone_key"])
    op.add_column("incidents", sa.Column("reporter_key", sa.String(64), nullable=True))
    op.create_index("ix_incidents_reporter_key", "incidents", ["reporter_key"])


def downgrade() -> None:
    op.drop_index("ix_incidents_reporter_key", "incidents")
    op.drop_column("incidents", "reporter_key")
    op.drop_table("resident_codes")
