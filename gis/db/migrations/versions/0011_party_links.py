"""党员中心户 links between party members and key households, and party members' visits;
wishes posted by residents themselves remember whose they are (``wishes.resident_key``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "party_links",
        sa.Column("household_id", sa.Integer, nullable=False),
        sa.Column("volunteer_id", sa.Integer, nullable=False),
        sa.Column("linked_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("linked_by", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("household_id", name="pk_party_links"),
        sa.ForeignKeyConstraint(["household_id"], ["key_households.id"],
                                name="fk_party_links_household_id_key_households",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["volunteer_id"], ["volunteers.id"],
                                name="fk_party_links_volunteer_id_volunteers", ondelete="CASCADE"),
    )  # fmt: skip
    op.create_index("ix_party_links_volunteer_id", "party_links", ["volunteer_id"])
    op.create_table(
        "party_visits",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("household_id", sa.Integer, nullable=False),
        sa.Column("volunteer_id", sa.Integer, nullable=False),
        sa.Column("visited_at", TS, nullable=False),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("distance_m", sa.Float, nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("recorded_by", sa.Text, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_party_visits"),
        sa.UniqueConstraint("idempotency_key", name="uq_party_visits_idempotency_key"),
        sa.ForeignKeyConstraint(["household_id"], ["key_households.id"],
                                name="fk_party_visits_household_id_key_households",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["volunteer_id"], ["volunteers.id"],
                                name="fk_party_visits_volunteer_id_volunteers", ondelete="CASCADE"),
        sa.CheckConstraint("geom IS NULL OR ST_SRID(geom) = 4326",
                           name="ck_party_visits_geom_srid"),
        sa.CheckConstraint("geom IS NULL OR (ST_IsValid(geom) AND NOT ST_IsEmpty(geom))",
                           name="ck_party_visits_geom_valid"),
        sa.CheckConstraint("geom IS NULL OR GeometryType(geom) = 'POINT'",
                           name="ck_party_visits_geom_type"),
    )  # fmt: skip
    op.create_index("ix_party_visits_household_id", "party_visits", ["household_id"])
    op.create_index("ix_party_visits_visited_at", "party_visits", ["visited_at"])
    op.create_index("ix_party_visits_geom", "party_visits", ["geom"], postgresql_using="gist")
    op.add_column("wishes", sa.Column("resident_key", sa.String(64), nullable=True))
    op.create_index("ix_wishes_resident_key", "wishes", ["resident_key"])


def downgrade() -> None:
    op.drop_index("ix_wishes_resident_key", "wishes")
    op.drop_column("wishes", "resident_key")
    op.drop_table("party_visits")
    op.drop_table("party_links")
