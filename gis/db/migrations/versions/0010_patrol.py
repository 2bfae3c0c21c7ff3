"""Patrol tracks: uploads, cleaned points, per-grid effort, key households and their visits.

Key households' personal data (names, phones, rooms) sit in their own table,
``key_household_people``, so that it can be guarded, audited and purged separately.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "track_uploads",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("filename", sa.Text, nullable=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("crs", sa.String(16), nullable=False),
        sa.Column("staff_id", sa.Integer, nullable=True),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), server_default=sa.func.now(),
                  nullable=False),
        sa.Column("n_points", sa.Integer, nullable=False),
        sa.Column("report", postgresql.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_track_uploads"),
        sa.UniqueConstraint("content_hash", name="uq_track_uploads_content_hash"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"],
                                name="fk_track_uploads_staff_id_staff", ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name="fk_track_uploads_user_id_users", ondelete="SET NULL"),
    )  # fmt: skip
    op.add_column("patrol_tracks", sa.Column("upload_id", sa.Integer, nullable=True))
    op.create_foreign_key(
        "fk_patrol_tracks_upload_id_track_uploads", "patrol_tracks", "track_uploads",
        ["upload_id"], ["id"], ondelete="CASCADE",
    )  # fmt: skip
    op.add_column("patrol_tracks", sa.Column("name", sa.Text, nullable=True))
    op.add_column("patrol_tracks", sa.Column("work_date", sa.Date, nullable=True))
    op.add_column("patrol_tracks", sa.Column("n_kept", sa.Integer, server_default="0",
                                             nullable=False))  # fmt: skip
    op.add_column("patrol_tracks", sa.Column("distance_m", sa.Float, server_default="0",
                                             nullable=False))  # fmt: skip
    op.add_column("patrol_tracks", sa.Column("dropped", postgresql.JSONB, nullable=True))
    op.create_index("ix_patrol_tracks_work_date", "patrol_tracks", ["work_date"])
    op.create_index("ix_patrol_tracks_upload_id", "patrol_tracks", ["upload_id"])

    op.add_column("track_points", sa.Column("flag", sa.SmallInteger, server_default="0",
                                            nullable=False))  # fmt: skip
    op.add_column("track_points", sa.Column("cseg", sa.Integer, nullable=True))
    op.add_column("track_points", sa.Column("grid_id", sa.Integer, nullable=True))

    op.create_table(
        "track_effort",
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("grid_id", sa.Integer, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("distance_m", sa.Float, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("track_id", "grid_id", name="pk_track_effort"),
        sa.ForeignKeyConstraint(["track_id"], ["patrol_tracks.id"],
                                name="fk_track_effort_track_id_patrol_tracks", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"],
                                name="fk_track_effort_grid_id_grids", ondelete="CASCADE"),
    )  # fmt: skip
    op.create_index("ix_track_effort_grid_id", "track_effort", ["grid_id"])

    op.create_table(
        "track_waypoints",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("upload_id", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("t", sa.DateTime(timezone=True), nullable=True),
        sa.Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_track_waypoints"),
        sa.ForeignKeyConstraint(["upload_id"], ["track_uploads.id"],
                                name="fk_track_waypoints_upload_id_track_uploads",
                                ondelete="CASCADE"),
        sa.CheckConstraint("ST_SRID(geom) = 4326", name="ck_track_waypoints_geom_srid"),
    )  # fmt: skip

    op.create_table(
        "key_households",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("building_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("grid_id", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_key_households"),
        sa.ForeignKeyConstraint(["building_id"], ["buildings.id"],
                                name="fk_key_households_building_id_buildings",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["grid_id"], ["grids.id"],
                                name="fk_key_households_grid_id_grids", ondelete="SET NULL"),
    )  # fmt: skip
    op.create_index("ix_key_households_grid_id", "key_households", ["grid_id"])
    op.create_table(
        "key_household_people",
        sa.Column("household_id", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("unit", sa.Text, nullable=True),
        sa.Column("room", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("household_id", name="pk_key_household_people"),
        sa.ForeignKeyConstraint(["household_id"], ["key_households.id"],
                                name="fk_key_household_people_household_id_key_households",
                                ondelete="CASCADE"),
    )  # fmt: skip
    op.create_table(
        "household_visits",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("household_id", sa.Integer, nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("staff_id", sa.Integer, nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Float, nullable=False),
        sa.Column("min_distance_m", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_household_visits"),
        sa.UniqueConstraint("track_id", "household_id", "started_at",
                            name="uq_household_visits_track_id"),
        sa.ForeignKeyConstraint(["household_id"], ["key_households.id"],
                                name="fk_household_visits_household_id_key_households",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["track_id"], ["patrol_tracks.id"],
                                name="fk_household_visits_track_id_patrol_tracks",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"],
                                name="fk_household_visits_staff_id_staff", ondelete="SET NULL"),
    )  # fmt: skip
    op.create_index("ix_household_visits_household_id", "household_visits", ["household_id"])


def downgrade() -> None:
    op.drop_table("household_visits")
    op.drop_table("key_household_people")
    op.drop_table("key_households")
    op.drop_table("track_waypoints")
    op.drop_table("track_effort")
    for col in ("grid_id", "cseg", "flag"):
        op.drop_column("track_points", col)
    op.drop_index("ix_patrol_tracks_upload_id", "patrol_tracks")
    op.drop_index("ix_patrol_tracks_work_date", "patrol_tracks")
    op.drop_constraint("fk_patrol_tracks_upload_id_track_uploads", "patrol_tracks")
    for col in ("dropped", "distance_m", "n_kept", "work_date", "name", "upload_id"):
        op.drop_column("patrol_tracks", col)
    op.drop_table("track_uploads")
