"""Grid edit endpoints: status codes, stale versions, refusals, history, rollback, auto-split."""

from __future__ import annotations

from typing import Any

import pytest
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.polygon import orient
from sqlalchemy import text
from sqlalchemy.orm import Session


def _pair(session: Session) -> tuple[int, int]:
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


def _feature(client: Any, gid: int, level: str = "micro") -> dict[str, Any]:
    fc = client.get("/grids", params={"level": level}).json()
    return next(f for f in fc["features"] if int(f["id"]) == gid)


def _line_through(geom: dict[str, Any]) -> dict[str, Any]:
    x0, y0, x1, y1 = shape(geom).bounds
    cx = (x0 + x1) / 2
    return {"type": "LineString", "coordinates": [[cx, y0 - 0.001], [cx, y1 + 0.001]]}


def test_split_then_stale_version_gives_409_with_current_version(
    client: Any, session: Session
) -> None:
    gid, _ = _pair(session)
    f = _feature(client, gid)
    v = f["properties"]["version"]
    body = {"version": v, "line": _line_through(f["geometry"]), "reason": "too many households"}
    r = client.post(f"/grids/{gid}/split", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["changed"] == [gid] and len(out["created"]) == 1
    a = _feature(client, gid)["properties"]["households"]
    b = _feature(client, out["created"][0])["properties"]["households"]
    assert a + b == f["properties"]["households"]
    stale = client.post(f"/grids/{gid}/split", json=body)
    assert stale.status_code == 409
    assert stale.json()["current_version"] == v + 1
    hist = client.get(f"/grids/{gid}/history").json()
    assert [h["operation"] for h in hist] == ["load", "split"]
    assert hist[1]["reason"] == "too many households" and hist[0]["valid_from"] is None


def test_refused_edit_is_422_with_reason_and_nothing_changes(client: Any, session: Session) -> None:
    gid, _ = _pair(session)
    f = _feature(client, gid)
    x0, y0, _, _ = shape(f["geometry"]).bounds
    short = {"type": "LineString", "coordinates": [[x0 - 0.001, y0 - 0.001], [x0, y0 - 0.0005]]}
    r = client.post(
        f"/grids/{gid}/split",
        json={"version": f["properties"]["version"], "line": short, "reason": "x"},
    )
    assert r.status_code == 422
    assert "edge to edge" in r.json()["detail"]
    assert _feature(client, gid)["properties"]["version"] == f["properties"]["version"]


def test_bad_geometry_and_missing_grid(client: Any, session: Session) -> None:
    gid, _ = _pair(session)
    bow = {
        "type": "Polygon",
        "coordinates": [[[113, 34], [113.01, 34.01], [113.01, 34], [113, 34.01], [113, 34]]],
    }
    r = client.post(f"/grids/{gid}/reshape", json={"version": 1, "geometry": bow, "reason": "x"})
    assert r.status_code == 422 and "invalid" in r.json()["detail"]
    r = client.post(
        "/grids/999999/split", json={"version": 1, "line": _line_through(bow), "reason": "x"}
    )
    assert r.status_code == 404


def test_merge_rollback_and_auto_split(client: Any, session: Session) -> None:
    a, b = _pair(session)
    fa, fb = _feature(client, a), _feature(client, b)
    r = client.post(
        f"/grids/{a}/merge",
        json={
            "version": fa["properties"]["version"],
            "other_id": b,
            "other_version": fb["properties"]["version"],
            "reason": "merge small grids",
        },
    )
    assert r.status_code == 200, r.text
    merged = _feature(client, a)
    total = fa["properties"]["households"] + fb["properties"]["households"]
    assert merged["properties"]["households"] == total
    r = client.post(
        f"/grids/{a}/auto-split",
        json={"version": merged["properties"]["version"], "parts": 2, "reason": "rebalance"},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert sum(out["households"]) == total and len(out["created"]) == 1
    mean = total / 2
    assert out["imbalance"] == pytest.approx(
        max(abs(h - mean) for h in out["households"]) / mean, abs=1e-4
    )
    parts = [shape(_feature(client, i)["geometry"]) for i in [a, *out["created"]]]
    before = shapely.union(shape(fa["geometry"]), shape(fb["geometry"]))
    assert shapely.union_all(parts).area == pytest.approx(before.area, rel=1e-6)
    # roll back the auto-split: the other part is swallowed again
    v = _feature(client, a)["properties"]["version"]
    r = client.post(
        f"/grids/{a}/rollback", json={"version": v, "to_version": v - 1, "reason": "undo"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["deleted"] == out["created"]
    assert _feature(client, a)["properties"]["households"] == total


def test_create_takes_area_from_siblings(client: Any, session: Session) -> None:
    gid, other = _pair(session)
    f = _feature(client, gid)
    parent = session.execute(
        text("SELECT parent_id FROM grids WHERE id = :id"), {"id": gid}
    ).scalar()
    inner = orient(shape(f["geometry"]).buffer(-0.0003))  # RFC 7946 winding
    r = client.post(
        "/grids", json={"parent_id": parent, "geometry": mapping(inner), "reason": "new block"}
    )
    assert r.status_code == 201, r.text
    new_id = r.json()["created"][0]
    assert gid in r.json()["changed"]
    new = _feature(client, new_id)
    assert new["properties"]["code"].startswith(f["properties"]["code"][:14])
    assert abs(shape(new["geometry"]).area - inner.area) < 1e-12
    assert (
        new["properties"]["households"] + _feature(client, gid)["properties"]["households"]
        == f["properties"]["households"]
    )
    assert other != new_id
