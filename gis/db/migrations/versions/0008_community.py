"""Community service lists, volunteers, the append-only points ledger and rewards.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

from gis.volunteering import REWARD_KINDS, VOLUNTEER_KINDS, WISH_KINDS, WISH_STATUSES

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _point() -> Geometry:
    return Geometry("POINT", srid=4326, spatial_index=False)


def _geom_checks(table: str) -> list[sa.CheckConstraint]:
    guard = "geom IS NULL OR "
    return [
        sa.CheckConstraint(f"{guard}ST_SRID(geom) = 4326", name=f"ck_{table}_geom_srid"),
        sa.CheckConstraint(
            f"{guard}(ST_IsValid(geom) AND NOT ST_IsEmpty(geom))", name=f"ck_{table}_geom_valid"
        ),
        sa.CheckConstraint(f"{guard}GeometryType(geom) = 'POINT'", name=f"ck_{table}_geom_type"),
    ]


def upgrade() -> None:
    op.create_table(
        "volunteers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("skills", sa.JSON, nullable=True),
        sa.Column("hours_per_week", sa.Float, nullable=True),
        sa.Column("home_grid_id", sa.Integer, nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("geom", _point(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_volunteers"),
        sa.ForeignKeyConstraint(
            ["home_grid_id"],
            ["grids.id"],
            name="fk_volunteers_home_grid_id_grids",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(f"kind IN ({_in(VOLUNTEER_KINDS)})", name="ck_volunteers_kind"),
        *_geom_checks("volunteers"),
    )
    op.create_index("ix_volunteers_geom", "volunteers", ["geom"], postgresql_using="gist")
    op.create_table(
        "wishes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("posted_by", sa.Text, nullable=True),
        sa.Column("wanted_by", sa.Date, nullable=True),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("micro_grid_id", sa.Integer, nullable=True),
        sa.Column("community_id", sa.Integer, nullable=True),
        sa.Column("volunteer_id", sa.Integer, nullable=True),
        sa.Column("claimed_at", TS, nullable=True),
        sa.Column("done_at", TS, nullable=True),
        sa.Column("confirmed_at", TS, nullable=True),
        sa.Column("hours", sa.Float, nullable=True),
        sa.Column("rating", sa.SmallInteger, nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.Column("geom", _point(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_wishes"),
        sa.UniqueConstraint("idempotency_key", name="uq_wishes_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["micro_grid_id"], ["grids.id"], name="fk_wishes_micro_grid_id_grids"
        ),
        sa.ForeignKeyConstraint(
            ["community_id"], ["grids.id"], name="fk_wishes_community_id_grids"
        ),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["volunteers.id"],
            name="fk_wishes_volunteer_id_volunteers",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(f"kind IN ({_in(WISH_KINDS)})", name="ck_wishes_kind"),
        sa.CheckConstraint(f"status IN ({_in(WISH_STATUSES)})", name="ck_wishes_status"),
        sa.CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="ck_wishes_rating"),
        sa.CheckConstraint("hours IS NULL OR (hours > 0 AND hours <= 24)", name="ck_wishes_hours"),
        *_geom_checks("wishes"),
    )
    op.create_index("ix_wishes_geom", "wishes", ["geom"], postgresql_using="gist")
    op.create_index("ix_wishes_status", "wishes", ["status"])
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("community_id", sa.Integer, nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), server_default="planned", nullable=False),
        sa.Column("starts", sa.Date, nullable=True),
        sa.Column("ends", sa.Date, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.ForeignKeyConstraint(
            ["community_id"], ["grids.id"], name="fk_projects_community_id_grids"
        ),
        sa.CheckConstraint("status IN ('planned', 'running', 'done')", name="ck_projects_status"),
    )
    op.create_table(
        "rewards",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("cost", sa.Integer, nullable=False),
        sa.Column("stock", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rewards"),
        sa.CheckConstraint(f"kind IN ({_in(REWARD_KINDS)})", name="ck_rewards_kind"),
        sa.CheckConstraint("cost > 0", name="ck_rewards_cost"),
        sa.CheckConstraint("stock IS NULL OR stock >= 0", name="ck_rewards_stock"),
    )
    op.create_table(
        "points_ledger",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("volunteer_id", sa.Integer, nullable=False),
        sa.Column("delta", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("ref_kind", sa.String(16), nullable=True),
        sa.Column("ref_id", sa.BigInteger, nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_points_ledger"),
        sa.UniqueConstraint("idempotency_key", name="uq_points_ledger_idempotency_key"),
        sa.ForeignKeyConstraint(
            ["volunteer_id"],
            ["volunteers.id"],
            name="fk_points_ledger_volunteer_id_volunteers",
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint("delta <> 0", name="ck_points_ledger_delta"),
    )
    op.create_index("ix_points_ledger_volunteer_id", "points_ledger", ["volunteer_id"])
    # Append-only: no entry is ever changed or removed; corrections are new entries.
    op.execute(
        """
        CREATE FUNCTION wangge_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'points_ledger is append-only: % refused', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
        END $$;
        CREATE TRIGGER points_ledger_append_only BEFORE UPDATE OR DELETE ON points_ledger
        FOR EACH ROW EXECUTE FUNCTION wangge_ledger_append_only();
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS points_ledger_append_only ON points_ledger")
    op.execute("DROP FUNCTION IF EXISTS wangge_ledger_append_only()")
    for table in ("points_ledger", "rewards", "projects", "wishes", "volunteers"):
        op.drop_table(table)
