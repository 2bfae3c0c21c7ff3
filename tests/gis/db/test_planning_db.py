"""Planning edits stored in PostGIS: transactions, optimistic locking, history, rollback."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import shapely
from shapely.geometry import LineString
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.queries import planning as q
from gis.errors import StaleVersionError
from gis.planning import EditRefusedError

WHO = "tester"


def _micro_pair(session: Session) -> tuple[int, int]:
    """Two adjacent micro grids with the same parent."""
    rec = session.execute(
        text(
            """
            SELECT a.id, b.id FROM grids a JOIN grids b
              ON a.parent_id = b.parent_id AND a.id < b.id AND a.level = 'micro'
             AND b.level = 'micro'
             AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) > 0.0002
            ORDER BY a.code, b.code LIMIT 1
            """
        )
    ).one()
    return int(rec[0]), int(rec[1])


def _grid(session: Session, gid: int) -> dict:
    return dict(
        session.execute(
            text(
                "SELECT id, code, version, households, parent_id, ST_AsBinary(geom) AS wkb "
                "FROM grids WHERE id = :id"
            ),
            {"id": gid},
        )
        .mappings()
        .one()
    )


def _sum_buildings(session: Session, gid: int) -> int:
    return int(
        session.execute(
            text(
                "SELECT COALESCE(sum(b.households), 0) FROM buildings b, grids g WHERE g.id = :id "
                "AND ST_Intersects(g.geom, ST_PointOnSurface(b.geom))"
            ),
            {"id": gid},
        ).scalar_one()
    )


def _cross_line(geom: shapely.Geometry) -> LineString:
    """A north-south line through the middle of a geometry, reaching past its edges."""
    x0, y0, x1, y1 = geom.bounds
    cx = (x0 + x1) / 2
    return LineString([(cx, y0 - 0.001), (cx, y1 + 0.001)])


def test_loaded_grids_have_version_one_rows(session: Session) -> None:
    missing = session.execute(
        text(
            "SELECT count(*) FROM grids g WHERE NOT EXISTS (SELECT 1 FROM grid_versions v "
            "WHERE v.grid_id = g.id AND v.version = g.version AND upper_inf(v.valid))"
        )
    ).scalar_one()
    total = session.execute(text("SELECT count(*) FROM grids")).scalar_one()
    assert total > 0 and missing == 0


def test_split_conserves_area_and_households_and_records_history(session: Session) -> None:
    gid, _ = _micro_pair(session)
    before = _grid(session, gid)
    geom = shapely.from_wkb(bytes(before["wkb"]))
    hh_before = before["households"]
    res = q.split_grid(
        session, gid, _cross_line(geom), version=before["version"], who=WHO, why="too big"
    )
    assert len(res.created) == 1
    after = _grid(session, gid)
    new = _grid(session, res.created[0])
    assert after["version"] == before["version"] + 1
    assert new["code"].startswith(after["code"][:14]) and new["parent_id"] == after["parent_id"]
    union_area = shapely.union(
        shapely.from_wkb(bytes(after["wkb"])), shapely.from_wkb(bytes(new["wkb"]))
    ).area
    assert union_area == pytest.approx(geom.area, rel=1e-6)
    assert after["households"] + new["households"] == hh_before
    assert after["households"] == _sum_buildings(session, gid)
    hist = q.history(session, gid)
    assert [h["version"] for h in hist] == [1, 2]
    assert hist[0]["valid_to"] is not None and hist[1]["valid_to"] is None
    assert hist[1]["operation"] == "split" and hist[1]["edited_by"] == WHO
    assert hist[1]["reason"] == "too big"


def test_stale_version_is_refused_with_current_version(session: Session) -> None:
    gid, _ = _micro_pair(session)
    g = _grid(session, gid)
    line = _cross_line(shapely.from_wkb(bytes(g["wkb"])))
    q.split_grid(session, gid, line, version=g["version"], who=WHO, why="first")
    with pytest.raises(StaleVersionError) as err:
        q.split_grid(session, gid, line, version=g["version"], who=WHO, why="second")
    assert err.value.current_version == g["version"] + 1


def test_merge_conserves_households_and_keeps_history(session: Session) -> None:
    a, b = _micro_pair(session)
    ga, gb = _grid(session, a), _grid(session, b)
    res = q.merge_grids(
        session, a, b, version=ga["version"], other_version=gb["version"], who=WHO, why="small"
    )
    assert res.deleted == [b]
    merged = _grid(session, a)
    assert merged["households"] == ga["households"] + gb["households"]
    gone = session.execute(text("SELECT count(*) FROM grids WHERE id = :id"), {"id": b})
    assert gone.scalar() == 0
    ops = session.execute(
        text("SELECT operation FROM grid_versions WHERE code = :c ORDER BY id"), {"c": gb["code"]}
    ).scalars()
    assert list(ops) == ["load", "delete"]
    # nothing refers to the deleted grid any more
    left = session.execute(
        text("SELECT count(*) FROM incidents WHERE micro_grid_id = :id"), {"id": b}
    ).scalar()
    assert left == 0


def test_rollback_undoes_a_split(session: Session) -> None:
    gid, _ = _micro_pair(session)
    g = _grid(session, gid)
    geom = shapely.from_wkb(bytes(g["wkb"]))
    res = q.split_grid(session, gid, _cross_line(geom), version=g["version"], who=WHO, why="x")
    back = q.rollback_grid(session, gid, 1, version=g["version"] + 1, who=WHO, why="undo")
    assert back.deleted == res.created
    now = _grid(session, gid)
    assert shapely.from_wkb(bytes(now["wkb"])).symmetric_difference(geom).area < 1e-12
    assert now["households"] == g["households"] and now["version"] == g["version"] + 2
    hist = q.history(session, gid)
    assert [h["operation"] for h in hist] == ["load", "split", "rollback"]


def test_merge_of_non_adjacent_grids_is_refused(session: Session) -> None:
    rec = session.execute(
        text(
            """
            SELECT a.id, a.version, b.id, b.version FROM grids a JOIN grids b
              ON a.parent_id = b.parent_id AND a.id < b.id AND a.level = 'micro'
             AND b.level = 'micro' AND NOT ST_Intersects(a.geom, b.geom)
            LIMIT 1
            """
        )
    ).one()
    with pytest.raises(EditRefusedError, match="share an edge"):
        q.merge_grids(
            session, rec[0], rec[2], version=rec[1], other_version=rec[3], who=WHO, why="x"
        )


def test_split_of_a_grid_through_its_children_is_refused(session: Session) -> None:
    rec = session.execute(
        text(
            "SELECT id, version, ST_AsBinary(geom) FROM grids WHERE level = 'grid' "
            "ORDER BY code LIMIT 1"
        )
    ).one()
    geom = shapely.from_wkb(bytes(rec[2]))
    # a line just off the middle will almost surely cut through some micro grid
    x0, y0, x1, y1 = geom.bounds
    line = LineString([(x0 + (x1 - x0) * 0.437, y0 - 0.001), (x0 + (x1 - x0) * 0.437, y1 + 0.001)])
    with pytest.raises(EditRefusedError, match="child grid"):
        q.split_grid(session, rec[0], line, version=rec[1], who=WHO, why="x")
    # nothing half-written: the version is unchanged
    assert _grid(session, rec[0])["version"] == rec[1]


def test_reshape_moves_area_between_neighbours(session: Session) -> None:
    a, b = _micro_pair(session)
    ga, gb = _grid(session, a), _grid(session, b)
    geom_a = shapely.from_wkb(bytes(ga["wkb"]))
    geom_b = shapely.from_wkb(bytes(gb["wkb"]))
    grown = shapely.union(geom_a, shapely.buffer(geom_a, 0.0001)).intersection(
        shapely.union(geom_a, geom_b)
    )
    q.reshape_grid(session, a, grown, version=ga["version"], who=WHO, why="grow")
    na, nb = _grid(session, a), _grid(session, b)
    area_a = shapely.from_wkb(bytes(na["wkb"])).area
    area_b = shapely.from_wkb(bytes(nb["wkb"])).area
    assert area_a > geom_a.area and area_b < geom_b.area
    assert area_a + area_b == pytest.approx(geom_a.area + geom_b.area, rel=1e-6)
    assert na["households"] + nb["households"] == ga["households"] + gb["households"]
    assert nb["version"] == gb["version"] + 1


def test_auto_split_balances_and_auto_partition_fits_range(session: Session) -> None:
    gid, _ = _micro_pair(session)
    g = _grid(session, gid)
    if g["households"] < 20:
        pytest.fail("fixture micro grid too small to split")
    res = q.auto_split_grid(session, gid, 2, version=g["version"], who=WHO, why="balance")
    assert res.partition is not None and len(res.partition.parts) == 2
    hh = [_grid(session, i)["households"] for i in [gid, *res.created]]
    assert sum(hh) == g["households"] and sorted(hh) == sorted(res.partition.households)
    # a 三级 grid re-partitioned into micro grids of 30-80 households
    rec = session.execute(
        text("SELECT id, version, households FROM grids WHERE level = 'grid' ORDER BY code LIMIT 1")
    ).one()
    res = q.auto_partition_grid(session, rec[0], version=rec[1], who=WHO, why="re-plan")
    kids = session.execute(
        text("SELECT households FROM grids WHERE parent_id = :id"), {"id": rec[0]}
    ).scalars()
    kids = list(kids)
    assert len(kids) == len(res.created) and sum(kids) == rec[2]
    assert all(30 <= k <= 80 for k in kids)


def test_version_in_force_at_an_incidents_time(session: Session) -> None:
    gid, _ = _micro_pair(session)
    g = _grid(session, gid)
    geom = shapely.from_wkb(bytes(g["wkb"]))
    p = geom.representative_point()
    past = datetime(2020, 1, 1, tzinfo=UTC)
    assert q.version_at(session, p.x, p.y, past)["version"] == 1
    q.split_grid(session, gid, _cross_line(geom), version=g["version"], who=WHO, why="x")
    now = session.execute(text("SELECT clock_timestamp()")).scalar_one()
    old = q.version_at(session, p.x, p.y, past)
    new = q.version_at(session, p.x, p.y, now)
    assert old["code"] == g["code"] and old["version"] == 1
    assert new is not None and (new["code"], new["version"]) != (g["code"], 1)
    incident = session.execute(
        text("SELECT id FROM incidents WHERE geom IS NOT NULL ORDER BY id LIMIT 1")
    ).scalar_one()
    found = q.incident_grid_versions(session, [incident])
    assert found[incident]["version"] >= 1


def test_reparent_moves_a_micro_grid_and_the_parents_boundary(session: Session) -> None:
    rec = session.execute(
        text(
            """
            SELECT m.id, m.version, m.parent_id, n.id AS new_parent, m.households
            FROM grids m JOIN grids p ON p.id = m.parent_id
            JOIN grids n ON n.parent_id = p.parent_id AND n.level = 'grid' AND n.id <> p.id
            WHERE m.level = 'micro'
              AND ST_Length(ST_Intersection(ST_Boundary(m.geom), ST_Buffer(n.geom, 0.000001)))
                  > 0.0002
            ORDER BY m.code, n.code LIMIT 1
            """
        )
    ).one()
    old_before = _grid(session, rec.parent_id)
    new_before = _grid(session, rec.new_parent)
    q.reparent_grid(session, rec.id, rec.new_parent, version=rec.version, who=WHO, why="move")
    moved = _grid(session, rec.id)
    old_after, new_after = _grid(session, rec.parent_id), _grid(session, rec.new_parent)
    assert moved["parent_id"] == rec.new_parent
    assert moved["code"].startswith(new_after["code"])
    assert old_after["households"] == old_before["households"] - rec.households
    assert new_after["households"] == new_before["households"] + rec.households
    area = shapely.from_wkb(bytes(moved["wkb"])).area
    assert shapely.from_wkb(bytes(new_after["wkb"])).area == pytest.approx(
        shapely.from_wkb(bytes(new_before["wkb"])).area + area, rel=1e-4
    )


def _grid_id(session: Session, code: str) -> int:
    return int(
        session.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": code}).scalar_one()
    )


def test_community_auto_partition_reports_each_grid_and_refuses_one_alone(
    session: Session,
) -> None:
    # micro grids of 40-60 households: grid …0101 holds a building of 69 households (never
    # cut, so refused, naming it); grid …0102 has no straight-cut partition, only the
    # building-graph one
    cid = _grid_id(session, "410171003001")
    g1, g2 = _grid_id(session, "41017100300101"), _grid_id(session, "41017100300102")
    big = session.execute(
        text(
            "SELECT b.id FROM buildings b JOIN grids g ON g.id = :g "
            "WHERE ST_Intersects(g.geom, ST_PointOnSurface(b.geom)) AND b.households > 60"
        ),
        {"g": g1},
    ).scalar_one()
    kids_before = session.execute(
        text("SELECT id, version FROM grids WHERE parent_id = :g ORDER BY id"), {"g": g1}
    ).all()
    hh2 = _grid(session, g2)["households"]
    out = {
        o.code: o
        for o in q.auto_partition_children(
            session, cid, who=WHO, why="re-plan", min_hh=40, max_hh=60
        )
    }
    assert set(out) == {"41017100300101", "41017100300102"}
    refused, done = out["41017100300101"], out["41017100300102"]
    assert not refused.done and refused.result is None
    assert f"building {big} (" in refused.reason and "maximum of 60" in refused.reason
    # the refused grid is untouched: same micro grids, same versions
    assert (
        session.execute(
            text("SELECT id, version FROM grids WHERE parent_id = :g ORDER BY id"), {"g": g1}
        ).all()
        == kids_before
    )
    assert done.done and done.method == "building graph"
    kids = session.execute(
        text("SELECT id, households FROM grids WHERE parent_id = :g ORDER BY id"), {"g": g2}
    ).all()
    assert sorted(k[0] for k in kids) == sorted(done.result.created)
    assert all(40 <= k[1] <= 60 for k in kids) and sum(k[1] for k in kids) == hh2
    assert sorted(k[1] for k in kids) == sorted(done.result.partition.households)
    # the stored micro grids tile their 三级 grid: no gap, overlap or sliver in the family
    assert q._family_problems(session, g2) == set()
    # audited: one create per new micro grid, one delete per old one
    ops = session.execute(
        text(
            "SELECT operation, count(*) FROM grid_versions WHERE reason LIKE '%re-plan' "
            "GROUP BY operation"
        )
    ).all()
    assert dict(ops) == {"create": len(done.result.created), "delete": len(done.result.deleted)}
    # every building of the grid is counted in exactly one new micro grid
    n_b = session.execute(
        text(
            "SELECT count(*) FROM buildings b JOIN grids g ON g.id = :g "
            "WHERE ST_Intersects(g.geom, ST_PointOnSurface(b.geom))"
        ),
        {"g": g2},
    ).scalar_one()
    assert (
        session.execute(
            text("SELECT count(*) FROM buildings WHERE micro_grid_id = ANY(:ids)"),
            {"ids": done.result.created},
        ).scalar_one()
        == n_b
    )


def test_auto_partition_of_a_grid_refused_with_the_reason_and_nothing_changed(
    session: Session,
) -> None:
    g1 = _grid_id(session, "41017100300101")
    v = _grid(session, g1)["version"]
    n_versions = session.execute(text("SELECT count(*) FROM grid_versions")).scalar_one()
    with pytest.raises(EditRefusedError, match="households"):
        with session.begin_nested():
            q.auto_partition_grid(session, g1, version=v, who=WHO, why="x", min_hh=40, max_hh=60)
    assert session.execute(text("SELECT count(*) FROM grid_versions")).scalar_one() == n_versions
    with pytest.raises(EditRefusedError, match="三级 grids, not on a community"):
        q.auto_partition_grid(
            session, _grid_id(session, "410171003001"), version=1, who=WHO, why="x"
        )
