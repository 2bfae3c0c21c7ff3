"""Incident workflow: taxonomy codes, severity, tiered handling, SLA colour, audit, photos.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gis.incidents import HANDLING_LEVELS, SOURCES, Colour

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _in(values: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


LEVELS = _in(HANDLING_LEVELS)
ASSIGNEES = _in(("worker", "community", "street", "department"))
COLOURS = _in([c.value for c in Colour])
EVENT_KINDS = _in(("transition", "escalation", "recolour"))


def upgrade() -> None:
    add = op.add_column
    add("incidents", sa.Column("category_code", sa.String(8), nullable=True))
    add("incidents", sa.Column("severity", sa.SmallInteger, server_default="1", nullable=False))
    add("incidents", sa.Column("initial_level", sa.String(16), nullable=True))
    add("incidents", sa.Column("handling_level", sa.String(16), nullable=True))
    add("incidents", sa.Column("assignee_kind", sa.String(16), nullable=True))
    add("incidents", sa.Column("assignee_staff_id", sa.Integer, nullable=True))
    add("incidents", sa.Column("assignee_grid_id", sa.Integer, nullable=True))
    add("incidents", sa.Column("assignee_name", sa.Text, nullable=True))
    add("incidents", sa.Column("colour", sa.String(8), server_default="blue", nullable=False))
    for col in (
        "accepted_at",
        "dispatched_at",
        "started_at",
        "resolved_at",
        "evaluated_at",
        "closed_at",
        "reopened_at",
    ):
        add("incidents", sa.Column(col, TS, nullable=True))
    add("incidents", sa.Column("satisfaction", sa.SmallInteger, nullable=True))
    add("incidents", sa.Column("evaluation_comment", sa.Text, nullable=True))
    add("incidents", sa.Column("duplicate_of", sa.BigInteger, nullable=True))
    add("incidents", sa.Column("media_url", sa.Text, nullable=True))
    add("incidents", sa.Column("reopen_count", sa.SmallInteger, server_default="0", nullable=False))
    add("incidents", sa.Column("version", sa.Integer, server_default="1", nullable=False))
    add("incidents", sa.Column("updated_at", TS, server_default=sa.func.now(), nullable=False))

    op.create_foreign_key(
        "fk_incidents_assignee_staff_id_staff",
        "incidents",
        "staff",
        ["assignee_staff_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_foreign_key(
        "fk_incidents_assignee_grid_id_grids", "incidents", "grids", ["assignee_grid_id"], ["id"]
    )
    op.create_foreign_key(
        "fk_incidents_duplicate_of_incidents",
        "incidents",
        "incidents",
        ["duplicate_of"],
        ["id"],
        ondelete="SET NULL",
    )
    check = op.create_check_constraint
    check("ck_incidents_severity", "incidents", "severity BETWEEN 1 AND 4")
    check(
        "ck_incidents_handling_level",
        "incidents",
        f"(handling_level IS NULL OR handling_level IN ({LEVELS})) AND "
        f"(initial_level IS NULL OR initial_level IN ({LEVELS}))",
    )
    check(
        "ck_incidents_assignee_kind",
        "incidents",
        f"assignee_kind IS NULL OR assignee_kind IN ({ASSIGNEES})",
    )
    check("ck_incidents_colour", "incidents", f"colour IN ({COLOURS})")
    check(
        "ck_incidents_satisfaction",
        "incidents",
        "satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5",
    )
    check("ck_incidents_source", "incidents", f"source IN ({_in(SOURCES)})")
    check(
        "ck_incidents_duplicate_has_original",
        "incidents",
        "(status = 'duplicate') = (duplicate_of IS NOT NULL)",
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_index("ix_incidents_category_code", "incidents", ["category_code"])
    op.create_index("ix_incidents_assignee_staff_id", "incidents", ["assignee_staff_id"])

    op.create_table(
        "incident_events",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("incident_id", sa.BigInteger, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16), nullable=True),
        sa.Column("to_status", sa.String(16), nullable=True),
        sa.Column("handling_level", sa.String(16), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("data", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incident_events"),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_incident_events_incident_id_incidents",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(f"kind IN ({EVENT_KINDS})", name="ck_incident_events_kind"),
    )
    op.create_index("ix_incident_events_incident_id_at", "incident_events", ["incident_id", "at"])

    op.create_table(
        "incident_photos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("incident_id", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("created_at", TS, server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_incident_photos"),
        sa.UniqueConstraint("incident_id", "sha256", name="uq_incident_photos_incident_id_sha256"),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name="fk_incident_photos_incident_id_incidents",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("size_bytes > 0", name="ck_incident_photos_size"),
    )

    # Category codes and default severities of incidents stored before the taxonomy.
    from gis.taxonomy import default_taxonomy

    rows = ", ".join(f"('{c.name}', '{c.code}', {c.severity})" for c in default_taxonomy())
    op.execute(
        f"""
        UPDATE incidents i SET category_code = t.code, severity = t.severity
        FROM (VALUES {rows}) AS t(name, code, severity) WHERE i.category = t.name
        """
    )


def downgrade() -> None:
    op.drop_table("incident_photos")
    op.drop_table("incident_events")
    for name in ("status", "category_code", "assignee_staff_id"):
        op.drop_index(f"ix_incidents_{name}", "incidents")
    for name in (
        "severity",
        "handling_level",
        "assignee_kind",
        "colour",
        "satisfaction",
        "source",
        "duplicate_has_original",
    ):
        op.drop_constraint(f"ck_incidents_{name}", "incidents", type_="check")
    for name in (
        "assignee_staff_id_staff",
        "assignee_grid_id_grids",
        "duplicate_of_incidents",
    ):
        op.drop_constraint(f"fk_incidents_{name}", "incidents", type_="foreignkey")
    for col in (
        "category_code",
        "severity",
        "initial_level",
        "handling_level",
        "assignee_kind",
        "assignee_staff_id",
        "assignee_grid_id",
        "assignee_name",
        "colour",
        "accepted_at",
        "dispatched_at",
        "started_at",
        "resolved_at",
        "evaluated_at",
        "closed_at",
        "reopened_at",
        "satisfaction",
        "evaluation_comment",
        "duplicate_of",
        "media_url",
        "reopen_count",
        "version",
        "updated_at",
    ):
        op.drop_column("incidents", col)
