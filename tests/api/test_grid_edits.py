"""Grid edit endpoints: status codes, stale versions, refusals, history, rollback, auto-split."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import httpx2 as httpx
import pytest
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.polygon import orient
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.security import create_token, hash_password
from gis.db.queries.users import add_user


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


def _grids_state(conn: Any) -> list[tuple]:
    return conn.execute(
        text(
            "SELECT id, code, parent_id, version, households, residents, md5(ST_AsBinary(geom)) "
            "FROM grids ORDER BY id"
        )
    ).all()


@pytest.mark.db
def test_two_planners_split_the_same_grid_at_once_one_wins_the_other_gets_409(
    live_server: str, engine: Any
) -> None:
    """Real concurrency: two planner accounts send their edit of the same grid version to
    the live server at the same moment. The test holds the grid's row lock until both
    requests are waiting on it inside the database, then lets go: exactly one edit is
    applied, the other is refused with 409 and the current version, nothing is lost."""
    tag = uuid.uuid4().hex[:8]
    with engine.begin() as conn:
        gid, v, wkt = conn.execute(
            text(
                "SELECT g.id, g.version, ST_AsGeoJSON(g.geom) FROM grids g "
                "WHERE g.level = 'micro' AND g.parent_id IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM grids c WHERE c.parent_id = g.id) "
                "ORDER BY g.code DESC LIMIT 1"
            )
        ).one()
        before_state = _grids_state(conn)
        old_wkb = conn.execute(
            text("SELECT ST_AsEWKB(geom) FROM grids WHERE id = :g"), {"g": gid}
        ).scalar_one()
        max_version_row = conn.execute(
            text("SELECT coalesce(max(id), 0) FROM grid_versions")
        ).scalar_one()
        open_rows = set(
            conn.execute(text("SELECT id FROM grid_versions WHERE upper_inf(valid)")).scalars()
        )
    geom = json.loads(wkt)
    x0, y0, x1, y1 = shape(geom).bounds
    lines = {
        "ns": {"type": "LineString", "coordinates": [[(x0 + x1) / 2, y0 - 0.001],
                                                     [(x0 + x1) / 2, y1 + 0.001]]},
        "ew": {"type": "LineString", "coordinates": [[x0 - 0.001, (y0 + y1) / 2],
                                                     [x1 + 0.001, (y0 + y1) / 2]]},
    }  # fmt: skip
    names = {"ns": f"planner-a-{tag}", "ew": f"planner-b-{tag}"}
    with Session(engine) as s, s.begin():
        tokens = {
            k: create_token(
                add_user(s, username=n, password_hash=hash_password("x" * 12), role="planner"),
                "planner",
            )
            for k, n in names.items()
        }
    answers: dict[str, httpx.Response] = {}

    def edit(k: str) -> None:
        answers[k] = httpx.post(
            f"{live_server}/grids/{gid}/split",
            json={"version": v, "line": lines[k], "reason": f"concurrent {k}",
                  "edited_by": names[k]},
            headers={"Authorization": f"Bearer {tokens[k]}"},
            timeout=60,
        )  # fmt: skip

    holder = engine.connect()
    try:
        hold = holder.begin()
        holder.execute(text("SELECT 1 FROM grids WHERE id = :g FOR UPDATE"), {"g": gid})
        threads = [threading.Thread(target=edit, args=(k,)) for k in lines]
        for t in threads:
            t.start()
        waiting = 0
        deadline = time.monotonic() + 30
        while waiting < 2 and time.monotonic() < deadline:
            with engine.connect() as watcher:
                waiting = watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND wait_event_type = 'Lock' AND query ILIKE '%FOR UPDATE%'"
                    )
                ).scalar_one()
            time.sleep(0.02)
        assert waiting == 2, "both edits must be waiting on the grid at the same time"
        hold.rollback()  # let go: both edits race for the grid now
        for t in threads:
            t.join(timeout=60)

        codes = sorted(a.status_code for a in answers.values())
        assert codes == [200, 409], {k: a.text for k, a in answers.items()}
        winner = next(k for k, a in answers.items() if a.status_code == 200)
        loser = next(k for k in answers if k != winner)
        refused = answers[loser].json()
        assert refused["current_version"] == v + 1 and "version" in refused["detail"]
        created = answers[winner].json()["created"]
        assert len(created) == 1
        with engine.connect() as conn:
            now_v, now_geom = conn.execute(
                text("SELECT version, ST_AsGeoJSON(geom) FROM grids WHERE id = :g"), {"g": gid}
            ).one()
            history = conn.execute(
                text(
                    "SELECT operation, edited_by FROM grid_versions WHERE grid_id = :g "
                    "AND id > :m ORDER BY id"
                ),
                {"g": gid, "m": max_version_row},
            ).all()
            new_grids = conn.execute(
                text("SELECT count(*) FROM grids WHERE parent_id = (SELECT parent_id FROM grids"
                     " WHERE id = :g) AND id <> ALL(:old)"),
                {"g": gid, "old": [r[0] for r in before_state]},
            ).scalar_one()  # fmt: skip
        assert now_v == v + 1  # one edit applied, not two
        assert [h for h in history if h[0] == "split"] == [("split", names[winner])]
        assert new_grids == 1
        # no lost update: the grid is the winner's part, and the two parts make the old grid
        kept = shape(json.loads(now_geom))
        other = next(
            f for f in httpx.get(
                f"{live_server}/grids", params={"level": "micro"},
                headers={"Authorization": f"Bearer {tokens[winner]}"}, timeout=60,
            ).json()["features"] if int(f["id"]) == created[0]
        )  # fmt: skip
        assert shapely.union(kept, shape(other["geometry"])).area == pytest.approx(
            shape(geom).area, rel=1e-6
        )
        # the loser reloads and edits on top of the winner's version (here: undoes the
        # split): accepted, and the district is whole again
        again = httpx.post(
            f"{live_server}/grids/{gid}/rollback",
            json={"version": v + 1, "to_version": v, "reason": f"undo {tag}"},
            headers={"Authorization": f"Bearer {tokens[loser]}"},
            timeout=60,
        )
        assert again.status_code == 200, again.text
        assert again.json()["deleted"] == created
    finally:
        holder.close()
        with engine.begin() as conn:  # put the fixture district back exactly as it was
            conn.execute(text("DELETE FROM grid_versions WHERE id > :m"), {"m": max_version_row})
            conn.execute(
                text("UPDATE grid_versions SET valid = tstzrange(lower(valid), NULL) "
                     "WHERE id = ANY(:ids) AND NOT upper_inf(valid)"),
                {"ids": list(open_rows)},
            )  # fmt: skip
            conn.execute(
                text("UPDATE grids SET version = :v, geom = ST_GeomFromEWKB(:w) WHERE id = :g"),
                {"v": v, "w": old_wkb, "g": gid},
            )
            conn.execute(text("DELETE FROM audit_log WHERE username = ANY(:n)"),
                         {"n": list(names.values())})  # fmt: skip
            conn.execute(
                text("DELETE FROM users WHERE username = ANY(:n)"), {"n": list(names.values())}
            )
            assert _grids_state(conn) == before_state
