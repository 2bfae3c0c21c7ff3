"""Walking network (pgRouting topology) and service-circle isochrones.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _geom(kind: str) -> Geometry:
    return Geometry(kind, srid=4326, spatial_index=False)


def _geom_checks(table: str, kind: str) -> list[sa.CheckConstraint]:
    return [
        sa.CheckConstraint("ST_SRID(geom) = 4326", name=f"ck_{table}_geom_srid"),
        sa.CheckConstraint(
            "(ST_IsValid(geom) AND NOT ST_IsEmpty(geom))", name=f"ck_{table}_geom_valid"
        ),
        sa.CheckConstraint(f"GeometryType(geom) = '{kind}'", name=f"ck_{table}_geom_type"),
    ]


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pgrouting")
    op.create_table(
        "network_nodes",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("geom", _geom("POINT"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_network_nodes"),
        *_geom_checks("network_nodes", "POINT"),
    )
    op.create_index("ix_network_nodes_geom", "network_nodes", ["geom"], postgresql_using="gist")
    op.create_table(
        "network_edges",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("source", sa.Integer, nullable=False),
        sa.Column("target", sa.Integer, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("reverse_cost", sa.Float, nullable=False),
        sa.Column("length_m", sa.Float, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("geom", _geom("LINESTRING"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_network_edges"),
        sa.CheckConstraint("length_m >= 0 AND cost >= 0", name="ck_network_edges_length"),
        *_geom_checks("network_edges", "LINESTRING"),
    )
    op.create_index("ix_network_edges_geom", "network_edges", ["geom"], postgresql_using="gist")
    op.create_index("ix_network_edges_source", "network_edges", ["source"])
    op.create_index("ix_network_edges_target", "network_edges", ["target"])
    op.create_table(
        "isochrones",
        sa.Column("station_id", sa.Integer, nullable=False),
        sa.Column("minutes", sa.SmallInteger, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("budget_m", sa.Float, nullable=False),
        sa.Column("street_m", sa.Float, nullable=False),
        sa.Column(
            "computed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("lines", _geom("MULTILINESTRING"), nullable=True),
        sa.Column("geom", _geom("MULTIPOLYGON"), nullable=False),
        sa.PrimaryKeyConstraint("station_id", "minutes", name="pk_isochrones"),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name="fk_isochrones_station_id_stations",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("minutes > 0", name="ck_isochrones_minutes"),
        *_geom_checks("isochrones", "MULTIPOLYGON"),
    )
    op.create_index("ix_isochrones_geom", "isochrones", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_table("isochrones")
    op.drop_table("network_edges")
    op.drop_table("network_nodes")
