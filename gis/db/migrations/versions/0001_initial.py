"""Initial schema: grids hierarchy, roads, buildings, stations, staff, incidents, patrol tracks.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

LEVELS = "'street', 'community', 'grid', 'micro', 'dedicated'"
STATUSES = (
    "'reported', 'accepted', 'dispatched', 'in_progress', 'resolved', 'evaluated', 'closed', "
    "'rejected', 'duplicate', 'reopened'"
)
LOCATION_STATUSES = "'located', 'outside', 'needs_location'"


def _geom(kind: str) -> Geometry:
    return Geometry(kind, srid=4326, spatial_index=False)


def _geom_checks(table: str, kind: str, nullable: bool = False) -> list[sa.CheckConstraint]:
    guard = "geom IS NULL OR " if nullable else ""
    return [
        sa.CheckConstraint(f"{guard}ST_SRID(geom) = 4326", name=f"ck_{table}_geom_srid"),
        sa.CheckConstraint(
            f"{guard}(ST_IsValid(geom) AND NOT ST_IsEmpty(geom))", name=f"ck_{table}_geom_valid"
        ),
        sa.CheckConstraint(f"{guard}GeometryType(geom) = '{kind}'", name=f"ck_{table}_geom_type"),
    ]


def _gist(table: str) -> None:
    op.create_index(f"ix_{table}_geom", table, ["geom"], postgresql_using="gist")


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")

    op.create_table(
        "wangge_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("key", name="pk_wangge_meta"),
    )

    op.create_table(
        "grids",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer, nullable=True),
        sa.Column("kind", sa.String(32), nullable=True),
        sa.Column("households", sa.Integer, nullable=False),
        sa.Column("residents", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_grids"),
        sa.UniqueConstraint("code", name="uq_grids_code"),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["grids.id"], name="fk_grids_parent_id_grids", ondelete="RESTRICT"
        ),
        sa.CheckConstraint(f"level IN ({LEVELS})", name="ck_grids_level"),
        sa.CheckConstraint(
            "(level = 'street') = (parent_id IS NULL)", name="ck_grids_parent_unless_street"
        ),
        sa.CheckConstraint("households >= 0 AND residents >= 0", name="ck_grids_counts"),
        sa.CheckConstraint("version >= 1", name="ck_grids_version"),
        *_geom_checks("grids", "MULTIPOLYGON"),
    )
    _gist("grids")
    op.create_index("ix_grids_level_code", "grids", ["level", "code"])
    op.create_index("ix_grids_parent_id", "grids", ["parent_id"])

    op.create_table(
        "roads",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("geom", _geom("LINESTRING"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_roads"),
        *_geom_checks("roads", "LINESTRING"),
    )
    _gist("roads")

    op.create_table(
        "buildings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("road_name", sa.Text, nullable=True),
        sa.Column("house_number", sa.Integer, nullable=True),
        sa.Column("compound_name", sa.Text, nullable=True),
        sa.Column("building_no", sa.Integer, nullable=True),
        sa.Column("units", sa.SmallInteger, nullable=False),
        sa.Column("floors", sa.SmallInteger, nullable=False),
        sa.Column("households", sa.Integer, nullable=False),
        sa.Column("residents", sa.Integer, nullable=False),
        sa.Column("micro_grid_id", sa.Integer, nullable=True),
        sa.Column("geom", _geom("POLYGON"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_buildings"),
        sa.ForeignKeyConstraint(
            ["micro_grid_id"],
            ["grids.id"],
            name="fk_buildings_micro_grid_id_grids",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint("households >= 0 AND residents >= 0", name="ck_buildings_counts"),
        *_geom_checks("buildings", "POLYGON"),
    )
    _gist("buildings")
    op.create_index("ix_buildings_micro_grid_id", "buildings", ["micro_grid_id"])

    op.create_table(
        "stations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("geom", _geom("POINT"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_stations"),
        *_geom_checks("stations", "POINT"),
    )
    _gist("stations")

    op.create_table(
        "staff",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
    )
    op.create_table(
        "staff_grids",
        sa.Column("staff_id", sa.Integer, nullable=False),
        sa.Column("grid_id", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("staff_id", "grid_id", name="pk_staff_grids"),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name="fk_staff_grids_staff_id_staff", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["grid_id"], ["grids.id"], name="fk_staff_grids_grid_id_grids", ondelete="CASCADE"
        ),
    )

    chain_fks = [
        sa.ForeignKeyConstraint([col], ["grids.id"], name=f"fk_incidents_{col}_grids")
        for col in ("micro_grid_id", "grid_id", "community_id", "street_id", "dedicated_grid_id")
    ]
    op.create_table(
        "incidents",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("ext_id", sa.String(64), nullable=True),
        sa.Column("idempotency_key", sa.String(128), nullable=True),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("address", sa.Text, nullable=True),
        sa.Column("reporter", sa.Text, nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("location_status", sa.String(16), nullable=False),
        sa.Column("micro_grid_id", sa.Integer, nullable=True),
        sa.Column("grid_id", sa.Integer, nullable=True),
        sa.Column("community_id", sa.Integer, nullable=True),
        sa.Column("street_id", sa.Integer, nullable=True),
        sa.Column("dedicated_grid_id", sa.Integer, nullable=True),
        sa.Column("geom", _geom("POINT"), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.UniqueConstraint("ext_id", name="uq_incidents_ext_id"),
        sa.UniqueConstraint("idempotency_key", name="uq_incidents_idempotency_key"),
        *chain_fks,
        sa.CheckConstraint(f"status IN ({STATUSES})", name="ck_incidents_status"),
        sa.CheckConstraint(
            f"location_status IN ({LOCATION_STATUSES})", name="ck_incidents_location_status"
        ),
        sa.CheckConstraint(
            "(geom IS NULL) = (location_status = 'needs_location')",
            name="ck_incidents_located_has_point",
        ),
        *_geom_checks("incidents", "POINT", nullable=True),
    )
    _gist("incidents")
    op.create_index("ix_incidents_micro_grid_id", "incidents", ["micro_grid_id"])
    op.create_index("ix_incidents_reported_at", "incidents", ["reported_at"])
    op.create_index("ix_incidents_location_status", "incidents", ["location_status"])

    op.create_table(
        "patrol_tracks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("staff_id", sa.Integer, nullable=True),
        sa.Column("source_name", sa.Text, nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("n_points", sa.Integer, nullable=False),
        sa.Column("geom", _geom("MULTILINESTRING"), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_patrol_tracks"),
        sa.UniqueConstraint("content_hash", name="uq_patrol_tracks_content_hash"),
        sa.ForeignKeyConstraint(
            ["staff_id"], ["staff.id"], name="fk_patrol_tracks_staff_id_staff", ondelete="SET NULL"
        ),
        *_geom_checks("patrol_tracks", "MULTILINESTRING", nullable=True),
    )
    _gist("patrol_tracks")
    op.create_index("ix_patrol_tracks_staff_id", "patrol_tracks", ["staff_id"])

    op.create_table(
        "track_points",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("segment", sa.SmallInteger, nullable=False),
        sa.Column("t", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accuracy_m", sa.Float, nullable=True),
        sa.Column("geom", _geom("POINT"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_track_points"),
        sa.UniqueConstraint("track_id", "seq", name="uq_track_points_track_id_seq"),
        sa.ForeignKeyConstraint(
            ["track_id"],
            ["patrol_tracks.id"],
            name="fk_track_points_track_id_patrol_tracks",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("ST_SRID(geom) = 4326", name="ck_track_points_geom_srid"),
    )
    _gist("track_points")

    # The PostGIS path of the grid locator. Boundary rule (same as gis.geocode): a grid holds a
    # point when it COVERS it (interior or boundary); of several grids of one level covering
    # it (a shared edge or vertex) the one with the smallest code wins.
    op.execute(
        """
        CREATE FUNCTION wangge_locate(p geometry, lvl text) RETURNS integer
        LANGUAGE sql STABLE PARALLEL SAFE AS $$
          SELECT g.id FROM grids g
          WHERE g.level = lvl AND ST_Covers(g.geom, p)
          ORDER BY g.code LIMIT 1
        $$
        """
    )
    op.execute(
        """
        CREATE FUNCTION wangge_incident_locate() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          NEW.micro_grid_id := NULL;
          NEW.grid_id := NULL;
          NEW.community_id := NULL;
          NEW.street_id := NULL;
          NEW.dedicated_grid_id := NULL;
          IF NEW.geom IS NULL THEN
            NEW.location_status := 'needs_location';
            RETURN NEW;
          END IF;
          NEW.micro_grid_id := wangge_locate(NEW.geom, 'micro');
          IF NEW.micro_grid_id IS NULL THEN
            NEW.location_status := 'outside';
          ELSE
            SELECT g3.id, g2.id, g1.id INTO NEW.grid_id, NEW.community_id, NEW.street_id
            FROM grids g4
            JOIN grids g3 ON g3.id = g4.parent_id
            JOIN grids g2 ON g2.id = g3.parent_id
            JOIN grids g1 ON g1.id = g2.parent_id
            WHERE g4.id = NEW.micro_grid_id;
            NEW.location_status := 'located';
          END IF;
          NEW.dedicated_grid_id := wangge_locate(NEW.geom, 'dedicated');
          RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER incidents_locate BEFORE INSERT OR UPDATE OF geom ON incidents
        FOR EACH ROW EXECUTE FUNCTION wangge_incident_locate()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS incidents_locate ON incidents")
    op.execute("DROP FUNCTION IF EXISTS wangge_incident_locate()")
    op.execute("DROP FUNCTION IF EXISTS wangge_locate(geometry, text)")
    for table in (
        "track_points",
        "patrol_tracks",
        "incidents",
        "staff_grids",
        "staff",
        "stations",
        "buildings",
        "roads",
        "grids",
        "wangge_meta",
    ):
        op.drop_table(table)
