"""Schema: models match migrations, constraints refuse bad geometry, the district is sound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from geoalchemy2 import alembic_helpers
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gis.crs import metric_crs
from gis.db.models import Base

pytestmark = pytest.mark.db


def test_models_and_migrations_agree(session: Session) -> None:
    ctx = MigrationContext.configure(
        session.connection(), opts={"include_object": alembic_helpers.include_object}
    )
    diff = [
        d
        for d in compare_metadata(ctx, Base.metadata)
        if d[0] != "remove_table" or d[1].name != "spatial_ref_sys"
    ]
    assert diff == []


@pytest.mark.parametrize(
    ("wkt", "srid", "constraint"),
    [
        ("MULTIPOLYGON(((0 0,1 1,1 0,0 1,0 0)))", 4326, "ck_grids_geom_valid"),  # bow-tie
        ("MULTIPOLYGON(((0 0,1 0,1 1,0 1,0 0)))", 3857, "SRID"),  # typmod refuses first
        ("MULTIPOLYGON EMPTY", 4326, "ck_grids_geom_valid"),
    ],
)
def test_grid_constraints_refuse_bad_geometry(
    session: Session, wkt: str, srid: int, constraint: str
) -> None:
    with pytest.raises(DBAPIError, match=constraint):
        session.execute(
            text(
                "INSERT INTO grids (code, name, level, parent_id, households, residents, version,"
                " geom) SELECT 'X1', 'x', 'community', id, 0, 0, 1, ST_GeomFromText(:w, :s)"
                " FROM grids WHERE level = 'street'"
            ),
            {"w": wkt, "s": srid},
        )
        session.flush()


def test_load_matches_the_manifest(session: Session, fixture_district: Path) -> None:
    manifest = json.loads((fixture_district / "manifest.json").read_text())
    counts = manifest["counts"]
    rows = dict(session.execute(text("SELECT level, count(*) FROM grids GROUP BY level")).all())
    for level, key in [
        ("community", "communities"),
        ("grid", "grids"),
        ("micro", "micro_grids"),
        ("dedicated", "dedicated_grids"),
    ]:
        assert rows[level] == counts[key], level
    assert rows["street"] == 1
    n_inc = session.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    assert n_inc == counts["incidents"]
    n_pts = session.execute(text("SELECT count(*) FROM track_points")).scalar_one()
    assert n_pts == manifest["total_track_points"]


def test_every_incident_has_a_consistent_chain(session: Session) -> None:
    bad = session.execute(
        text(
            """
            SELECT count(*) FROM incidents i
            LEFT JOIN grids m ON m.id = i.micro_grid_id
            LEFT JOIN grids g ON g.id = m.parent_id
            LEFT JOIN grids c ON c.id = g.parent_id
            WHERE (i.location_status = 'located' AND (
                     m.level <> 'micro' OR i.grid_id IS DISTINCT FROM g.id
                     OR i.community_id IS DISTINCT FROM c.id
                     OR i.street_id IS DISTINCT FROM c.parent_id
                     OR NOT ST_Covers(m.geom, i.geom)))
               OR (i.location_status = 'outside' AND EXISTS (
                     SELECT 1 FROM grids x WHERE x.level = 'micro' AND ST_Covers(x.geom, i.geom)))
            """
        )
    ).scalar_one()
    assert bad == 0
    statuses = dict(
        session.execute(text("SELECT location_status, count(*) FROM incidents GROUP BY 1")).all()
    )
    assert statuses.get("located", 0) > 0.9 * sum(statuses.values())


@pytest.mark.parametrize("child_level", ["community", "grid", "micro"])
def test_children_tile_their_parent(session: Session, child_level: str) -> None:
    """Union of the children equals the parent (symmetric difference < 0.5 m² per parent) and
    siblings overlap by less than 0.01 m², measured in the metric CRS."""
    x, y = session.execute(
        text(
            "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(geom) c FROM grids "
            "WHERE level = 'street') s"
        )
    ).one()
    epsg = metric_crs(x, y).to_epsg()
    rows = session.execute(
        text(
            """
            SELECT p.code,
                   ST_Area(ST_SymDifference(ST_Transform(p.geom, :srid),
                                            ST_Transform(ST_Union(c.geom), :srid))) AS diff
            FROM grids c JOIN grids p ON p.id = c.parent_id
            WHERE c.level = :lvl GROUP BY p.id
            """
        ),
        {"srid": epsg, "lvl": child_level},
    ).all()
    assert rows, "no parents found"
    worst = max(r.diff for r in rows)
    assert worst < 0.5, f"parent {max(rows, key=lambda r: r.diff).code} differs by {worst} m²"
    overlap = session.execute(
        text(
            """
            SELECT coalesce(max(ST_Area(ST_Intersection(ST_Transform(a.geom, :srid),
                                                        ST_Transform(b.geom, :srid)))), 0)
            FROM grids a JOIN grids b
              ON a.parent_id = b.parent_id AND a.id < b.id AND a.geom && b.geom
            WHERE a.level = :lvl AND b.level = :lvl
            """
        ),
        {"srid": epsg, "lvl": child_level},
    ).scalar_one()
    assert overlap < 0.01
