"""Track uploads through the API (single, batch, gzip, idempotent, malformed, truncated,
GCJ-02, size limit), the /patrol/* reports with their CSV export, and who may see key
households' personal data. The fixture district's patrols are loaded already."""

from __future__ import annotations

import csv
import gzip
import io
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from api.indexes import patrol_index
from api.security import create_token, hash_password
from gis.bench.load import Patroller, add_patrollers, gpx_walk, remove_patrollers
from gis.crs import wgs84_to_gcj02
from gis.db.queries.tracks import TrackSource, store_uploads
from gis.db.queries.users import add_user

DAY = "2026-10-26"
T0 = 1_792_972_800  # 2026-10-26T08:00:00+08:00


def _counts(session: Session) -> tuple[int, int, int]:
    return session.execute(
        text(
            "SELECT (SELECT count(*) FROM track_uploads), (SELECT count(*) FROM patrol_tracks), "
            "(SELECT count(*) FROM track_points)"
        )
    ).one()


def _worker(session: Session) -> tuple[int, int, tuple[float, float]]:
    """A grid worker, one of their micro grids, and a point inside it (lon, lat)."""
    sid, gid, lon, lat = session.execute(
        text(
            "SELECT s.id, g.id, ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)) "
            "FROM staff s JOIN staff_grids sg ON sg.staff_id = s.id JOIN grids g "
            "ON g.id = sg.grid_id WHERE s.role = '网格员' AND g.level = 'micro' "
            "ORDER BY s.id, g.id LIMIT 1"
        )
    ).one()
    return sid, gid, (lon, lat)


def _walk_csv(lon: float, lat: float, n: int = 60, *, t0: int = T0, crs: str = "wgs84") -> bytes:
    """A 10-minute walk east from (lon, lat), a fix every 10 s at about 1.2 m/s."""
    lons = lon + np.arange(n) * 1.3e-4  # ~12 m per fix at 34.8 N
    lats = np.full(n, lat)
    if crs == "gcj02":
        lons, lats = wgs84_to_gcj02(lons, lats)
    rows = "".join(
        f"{x:.8f},{y:.8f},{t0 + 10 * i}\n" for i, (x, y) in enumerate(zip(lons, lats, strict=True))
    )
    return ("lon,lat,time\n" + rows).encode()


def _gpx(fixture_district: Path) -> bytes:
    """A fixture worker's week, made a new file (other bytes) by its creator attribute."""
    data = (fixture_district / "tracks" / "worker_2.gpx").read_bytes()
    return data.replace(b'creator="wangge data.generate"', b'creator="phone app 2.1"', 1)


def _headers(session: Session, role: str, staff_id: int | None = None) -> dict[str, str]:
    user = add_user(
        session,
        username=f"t-{role}-{staff_id}",
        password_hash=hash_password("not-used-123"),
        role=role,
        staff_id=staff_id,
    )
    return {"Authorization": f"Bearer {create_token(user, role)}"}


# ---------------------------------------------------------------------------------- upload


def test_upload_one_gpx_file(client, session: Session, fixture_district: Path) -> None:
    sid, _gid, _p = _worker(session)
    before = _counts(session)
    r = client.post(
        "/tracks",
        files={"files": ("worker_2.gpx", _gpx(fixture_district), "application/gpx+xml")},
        data={"staff_id": str(sid)},
    )
    assert r.status_code == 201, r.text
    (report,) = r.json()["uploads"]
    assert report["format"] == "gpx" and report["duplicate"] is False
    assert len(report["tracks"]) == 2  # one <trk> per day
    assert sum(t["points"] for t in report["tracks"]) == report["points"]
    after = _counts(session)
    assert after[0] == before[0] + 1 and after[1] == before[1] + 2
    assert after[2] == before[2] + report["points"]
    first = report["tracks"][0]
    assert first["kept"] + sum(first["dropped"].values()) == first["points"]
    detail = client.get(f"/tracks/{first['id']}", params={"raw": "true"}).json()
    assert detail["staff_id"] == sid and detail["geometry"]["type"] == "MultiLineString"
    assert len(detail["points"]) == first["points"]
    assert {p["flag"] for p in detail["points"]} <= {"kept", "jitter", "jump", "speed"}
    assert sum(p["flag"] == "kept" for p in detail["points"]) == first["kept"]
    assert {e["level"] for e in detail["effort"]} >= {"micro", "grid", "community", "street"}
    listed = client.get("/tracks", params={"date": DAY, "staff_id": sid}).json()
    assert first["id"] in {t["id"] for t in listed}


def test_batch_with_csv_and_gzip(client, session: Session, fixture_district: Path) -> None:
    _sid, _gid, (lon, lat) = _worker(session)
    before = _counts(session)
    files = [
        ("files", ("walk.csv", _walk_csv(lon, lat), "text/csv")),
        ("files", ("week.gpx.gz", gzip.compress(_gpx(fixture_district)), "application/gzip")),
    ]
    r = client.post("/tracks", files=files)
    assert r.status_code == 201, r.text
    csv_report, gpx_report = r.json()["uploads"]
    assert csv_report["format"] == "csv" and csv_report["points"] == 60
    assert gpx_report["format"] == "gpx" and len(gpx_report["tracks"]) == 2
    assert csv_report["tracks"][0]["distance_m"] == pytest.approx(59 * 11.9, rel=0.05)
    assert _counts(session)[0] == before[0] + 2


def test_the_same_file_twice_is_the_same_track(
    client, session: Session, fixture_district: Path
) -> None:
    # the loader imported the fixture's files: uploading one again stores nothing
    original = (fixture_district / "tracks" / "worker_2.gpx").read_bytes()
    before = _counts(session)
    again = client.post("/tracks", files={"files": ("w.gpx", original, "application/gpx+xml")})
    assert again.status_code == 200, again.text
    (report,) = again.json()["uploads"]
    assert report["duplicate"] is True
    stored = session.execute(
        text(
            "SELECT p.id FROM patrol_tracks p JOIN track_uploads u ON u.id = p.upload_id "
            "WHERE u.filename = 'worker_2.gpx' ORDER BY p.id"
        )
    ).scalars()
    assert [t["id"] for t in report["tracks"]] == list(stored)
    packed = client.post(
        "/tracks", files={"files": ("w.gpx.gz", gzip.compress(original), "application/gzip")}
    )
    assert packed.status_code == 200 and packed.json()["uploads"][0]["duplicate"] is True
    assert _counts(session) == before
    # a new file, twice in one batch and then once more: stored once
    _sid, _gid, (lon, lat) = _worker(session)
    data = _walk_csv(lon, lat, t0=T0 + 3600)
    files = [("files", ("a.csv", data, "text/csv")), ("files", ("b.csv", data, "text/csv"))]
    first = client.post("/tracks", files=files)
    assert first.status_code == 201, first.text
    a, b = first.json()["uploads"]
    assert a["duplicate"] is False and b["duplicate"] is True
    assert b["file"] == "b.csv" and b["tracks"] == a["tracks"], b
    retry = client.post("/tracks", files={"files": ("c.csv", data, "text/csv")})
    assert retry.status_code == 200
    assert [t["id"] for t in retry.json()["uploads"][0]["tracks"]] == [t["id"] for t in a["tracks"]]
    assert _counts(session)[0] == before[0] + 1


@pytest.mark.parametrize(
    ("name", "bad", "where"),
    [
        (
            "bad.gpx",
            b'<gpx version="1.1"><trk><trkseg>\n<trkpt lat="34.8" lon="113.55"></trk></gpx>',
            "line 2, column",
        ),
        ("bad.csv", b"lon,lat,time\n113.55,34.8,2026-10-26T00:00:00Z\nabc,34.8,x\n", "line 3"),
        ("bad.geojson", b'{"type": "FeatureCollection", "features": [}', "line 1, column"),
        (
            "evil.gpx",
            b'<!DOCTYPE gpx [<!ENTITY e SYSTEM "file:///etc/passwd">]><gpx>&e;</gpx>',
            "DTD or entity",
        ),
    ],
)
def test_a_malformed_file_fails_the_batch_and_stores_nothing(
    client, session: Session, name: str, bad: bytes, where: str
) -> None:
    _sid, _gid, (lon, lat) = _worker(session)
    before = _counts(session)
    files = [
        ("files", ("good.csv", _walk_csv(lon, lat, t0=T0 + 7200), "text/csv")),
        ("files", (name, bad, "application/octet-stream")),
    ]
    r = client.post("/tracks", files=files)
    assert r.status_code == 422, r.text
    assert name in r.text and where in r.text
    assert _counts(session) == before


def test_truncated_upload_keeps_its_points_and_says_so(client, session: Session) -> None:
    _sid, _gid, (lon, lat) = _worker(session)
    lons = lon + np.arange(40) * 1.3e-4
    body = "".join(
        f'<trkpt lat="{lat:.7f}" lon="{x:.7f}"><time>2026-10-26T03:{i // 6:02d}:{i % 6 * 10:02d}Z'
        "</time></trkpt>\n"
        for i, x in enumerate(lons)
    )
    doc = f'<gpx version="1.1"><trk><trkseg>\n{body}</trkseg></trk></gpx>'.encode()
    cut = doc[: doc.index(b"03:05:00") + 3]  # inside the time of the 31st point
    r = client.post("/tracks", files={"files": ("cut.gpx", cut, "application/gpx+xml")})
    assert r.status_code == 201, r.text
    (report,) = r.json()["uploads"]
    assert report["points"] == 30
    assert "truncated" in report["truncated"] and "kept 30 complete points" in report["truncated"]
    assert report["warnings"] == [report["truncated"]]


def test_gcj02_upload_is_stored_in_wgs84(client, session: Session) -> None:
    _sid, _gid, (lon, lat) = _worker(session)
    data = _walk_csv(lon, lat, n=20, t0=T0 + 9000, crs="gcj02")
    r = client.post(
        "/tracks", files={"files": ("phone.csv", data, "text/csv")}, data={"crs": "gcj02"}
    )
    assert r.status_code == 201, r.text
    tid = r.json()["uploads"][0]["tracks"][0]["id"]
    xs, ys = zip(
        *session.execute(
            text(
                "SELECT ST_X(geom), ST_Y(geom) FROM track_points WHERE track_id = :i ORDER BY seq"
            ),
            {"i": tid},
        ).all(),
        strict=True,
    )
    assert np.abs(np.asarray(xs) - (lon + np.arange(20) * 1.3e-4)).max() < 2e-7
    assert np.abs(np.asarray(ys) - lat).max() < 2e-7
    refused = client.post(
        "/tracks", files={"files": ("p.csv", data, "text/csv")}, data={"crs": "bd09"}
    )
    assert refused.status_code == 422


def test_size_limits(client, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _counts(session)
    bomb = gzip.compress(b" " * (100 * 1024 * 1024 + 1), compresslevel=1)
    r = client.post("/tracks", files={"files": ("bomb.gpx.gz", bomb, "application/gzip")})
    assert r.status_code == 422 and "over the 104,857,600-byte limit" in r.text
    import api.routes.tracks as routes

    monkeypatch.setattr(routes, "MAX_FILE_BYTES", 1000)  # the raw upload, before gunzip
    _sid, _gid, (lon, lat) = _worker(session)
    big = client.post("/tracks", files={"files": ("big.csv", _walk_csv(lon, lat), "text/csv")})
    assert big.status_code == 413 and "big.csv" in big.text
    assert _counts(session) == before


def test_who_may_upload(client, session: Session) -> None:
    sid, _gid, (lon, lat) = _worker(session)
    other = session.execute(
        text("SELECT id FROM staff WHERE role = '网格员' AND id <> :s ORDER BY id LIMIT 1"),
        {"s": sid},
    ).scalar_one()
    data = _walk_csv(lon, lat, t0=T0 + 20000)
    leader = _headers(session, "leader")
    r = client.post("/tracks", files={"files": ("w.csv", data, "text/csv")}, headers=leader)
    assert r.status_code == 403
    patrol = _headers(session, "patroller", sid)
    foreign = client.post(
        "/tracks",
        files={"files": ("w.csv", data, "text/csv")},
        data={"staff_id": str(other)},
        headers=patrol,
    )
    assert foreign.status_code == 403
    own = client.post("/tracks", files={"files": ("w.csv", data, "text/csv")}, headers=patrol)
    assert own.status_code == 201, own.text
    tid = own.json()["uploads"][0]["tracks"][0]["id"]
    assert (
        session.execute(
            text("SELECT staff_id FROM patrol_tracks WHERE id = :i"), {"i": tid}
        ).scalar_one()
        == sid
    )


# ---------------------------------------------------------------------------------- reports


def test_daily_status_json_and_csv(client, session: Session) -> None:
    rows = client.get("/patrol/daily", params={"date": DAY}).json()
    n_micro = session.execute(text("SELECT count(*) FROM grids WHERE level = 'micro'")).scalar()
    assert len(rows) == n_micro
    assert any(r["patrolled"] for r in rows)
    expect = session.execute(
        text(
            "SELECT e.grid_id, sum(e.seconds) / 60.0 FROM track_effort e "
            "JOIN patrol_tracks p ON p.id = e.track_id WHERE p.work_date = :d "
            "AND e.level = 'micro' GROUP BY e.grid_id"
        ),
        {"d": DAY},
    ).all()
    by_grid = {r["grid_id"]: r for r in rows}
    for gid, minutes in expect:
        assert by_grid[gid]["minutes"] == pytest.approx(float(minutes))
        assert by_grid[gid]["patrolled"] == (float(minutes) >= 10.0)
    r = client.get("/patrol/daily", params={"date": DAY, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="patrol-daily.csv"' in r.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == n_micro
    assert set(table[0]) >= {"grid_id", "code", "minutes", "distance_m", "patrolled"}


def test_coverage_endpoint(client, session: Session) -> None:
    _sid, gid, _p = _worker(session)
    r = client.get("/patrol/coverage", params={"grid_id": gid, "start": DAY, "end": "2026-10-27"})
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["street_m"] > 0 and 0 < info["street_share"] <= 1
    assert info["covered_m"] == pytest.approx(info["street_share"] * info["street_m"], abs=0.5)
    assert 0 <= info["buildings_passed"] <= info["buildings"]
    if info["street_share"] < 1:
        assert info["uncovered"]["type"] == "MultiLineString"
    nobody = client.get("/patrol/coverage", params={"grid_id": gid, "start": "2026-01-05"})
    assert nobody.json()["street_share"] == 0 and nobody.json()["covered_m"] == 0
    assert nobody.json()["uncovered"] is not None
    bad = client.get("/patrol/coverage", params={"grid_id": gid, "start": DAY, "end": "2026-10-01"})
    assert bad.status_code == 422
    assert client.get("/patrol/coverage", params={"grid_id": 999999}).status_code == 404


def test_compliance_report_json_and_csv(client, session: Session) -> None:
    workers = client.get("/patrol/compliance", params={"week": DAY}).json()
    n_workers = session.execute(text("SELECT count(*) FROM staff WHERE role = '网格员'")).scalar()
    assert len(workers) == n_workers
    patrolled = session.execute(
        text(
            "SELECT staff_id, count(DISTINCT work_date) FROM patrol_tracks "
            "WHERE work_date BETWEEN '2026-10-26' AND '2026-11-01' GROUP BY staff_id"
        )
    ).all()
    by_staff = {w["staff_id"]: w for w in workers}
    for sid, days in patrolled:
        assert by_staff[sid]["days_patrolled"] == days
        assert by_staff[sid]["week"] == DAY
    assert all(w["visits_made"] <= w["visits_due"] for w in workers)
    assert sum(w["visits_made"] for w in workers) > 0
    grids = client.get("/patrol/compliance", params={"week": "2026-10-28", "by": "grid"}).json()
    visited = session.execute(
        text("SELECT count(DISTINCT household_id) FROM household_visits")
    ).scalar()
    assert sum(g["visits_made"] for g in grids) == visited
    r = client.get("/patrol/compliance", params={"week": DAY, "format": "csv"})
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert len(table) == n_workers
    assert set(table[0]) >= {"week", "staff_id", "days_patrolled", "visits_due", "visits_made"}


def test_key_household_personal_data_only_for_allowed_roles(client, session: Session) -> None:
    sid, gid, _p = _worker(session)
    plain = client.get("/patrol/visits", params={"week": DAY}).json()
    assert plain and not ({"name", "phone", "unit", "room"} & set(plain[0]))
    assert any(r["compliant"] for r in plain)
    audits = session.execute(
        text("SELECT count(*) FROM audit_log WHERE action = 'read_personal'")
    ).scalar()
    personal = client.get("/patrol/visits", params={"week": DAY, "personal": "true"}).json()
    assert all(r["name"] and r["phone"] for r in personal)
    assert (
        session.execute(
            text("SELECT count(*) FROM audit_log WHERE action = 'read_personal'")
        ).scalar()
        == audits + 1
    )
    csv_text = client.get(
        "/patrol/visits", params={"week": DAY, "format": "csv", "personal": "true"}
    ).text
    assert personal[0]["name"] in csv_text
    for role in ("leader", "planner", "dispatcher"):
        h = _headers(session, role)
        assert client.get("/patrol/visits", params={"week": DAY}, headers=h).status_code == 200
        refused = client.get("/patrol/visits", params={"week": DAY, "personal": "true"}, headers=h)
        assert refused.status_code == 403, role
        kh = client.get("/key-households", params={"personal": "true"}, headers=h)
        assert kh.status_code == 403, role
        listed = client.get("/key-households", headers=h).json()
        assert listed and "name" not in listed[0] and "phone" not in listed[0]
    # a grid worker sees their own grids' households, with names
    patrol = _headers(session, "patroller", sid)
    mine = client.get("/key-households", params={"personal": "true"}, headers=patrol).json()
    own_grids = set(
        session.execute(
            text("SELECT grid_id FROM staff_grids WHERE staff_id = :s"), {"s": sid}
        ).scalars()
    )
    assert all(r["grid_id"] in own_grids for r in mine)
    total = session.execute(text("SELECT count(*) FROM key_households")).scalar()
    assert len(mine) < total
    assert mine and all(r["name"] for r in mine)
    theirs = session.execute(
        text("SELECT id FROM grids WHERE level = 'micro' AND id <> ALL(:g) ORDER BY id LIMIT 1"),
        {"g": sorted(own_grids)},
    ).scalar_one()
    mine_cov = client.get("/patrol/coverage", params={"grid_id": gid}, headers=patrol)
    assert mine_cov.status_code == 200
    their_cov = client.get("/patrol/coverage", params={"grid_id": theirs}, headers=patrol)
    assert their_cov.status_code == 404
    daily = client.get("/patrol/daily", params={"date": DAY}, headers=patrol).json()
    assert daily and {r["grid_id"] for r in daily} <= own_grids


# ------------------------------------------------------------------ concurrency, live server


def _post_file(base: str, token: str, name: str, data: bytes, out: list[Any]) -> None:
    with httpx.Client(base_url=base, timeout=60, trust_env=False) as http:
        r = http.post(
            "/tracks",
            files={"files": (name, data, "application/gpx+xml")},
            headers={"Authorization": f"Bearer {token}"},
        )
    out.append((r.status_code, r.json()))


def _stored(engine: Engine, user_id: int) -> tuple[int, int, int]:
    with Session(engine) as s:
        return s.execute(
            text(
                "SELECT count(DISTINCT u.id), count(DISTINCT t.id), count(p.*) "
                "FROM track_uploads u LEFT JOIN patrol_tracks t ON t.upload_id = u.id "
                "LEFT JOIN track_points p ON p.track_id = t.id WHERE u.user_id = :u"
            ),
            {"u": user_id},
        ).one()


@pytest.fixture
def patroller(engine: Engine) -> Any:
    """A committed patroller account with its own grid (the live server sees it) and token;
    removed with its uploads afterwards."""
    prefix = f"tr-{uuid.uuid4().hex[:8]}"
    with Session(engine) as s, s.begin():
        (p,) = add_patrollers(s, 1, prefix=prefix, password_hash=hash_password("not-used-123"))
    yield p, create_token(p.user_id, "patroller")
    with Session(engine) as s, s.begin():
        remove_patrollers(s, prefix)


def test_the_same_file_sent_twice_at_the_same_moment_is_stored_once(
    live_server: str, engine: Engine, patroller: tuple[Patroller, str]
) -> None:
    p, token = patroller
    rounds, points = 4, 24
    for k in range(rounds):
        data = gpx_walk(p, points, worker=900 + k)
        start = threading.Barrier(2)
        answers: list[Any] = []

        def send(data: bytes = data, start: threading.Barrier = start, out: list = answers) -> None:
            start.wait()
            _post_file(live_server, token, "same.gpx", data, out)

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        # both answered with success, no "send again": one stored it, the other was told
        # it is the same file, with the first copy's report
        assert sorted(a[0] for a in answers) == [200, 201], answers
        (new,) = [a[1]["uploads"][0] for a in answers if a[0] == 201]
        (dup,) = [a[1]["uploads"][0] for a in answers if a[0] == 200]
        assert new["duplicate"] is False and dup["duplicate"] is True
        assert dup["upload_id"] == new["upload_id"] and dup["tracks"] == new["tracks"]
        assert new["tracks"][0]["points"] == points
    assert _stored(engine, p.user_id) == (rounds, rounds, rounds * points)


def test_two_batches_with_the_same_files_in_opposite_order_at_once(
    live_server: str, engine: Engine, patroller: tuple[Patroller, str]
) -> None:
    """Batches [A, B] and [B, A] sent at the same moment: no deadlock, no 409; each file
    stored once and both answers name the same upload for the same file."""
    p, token = patroller
    a, b = gpx_walk(p, 20, worker=960), gpx_walk(p, 20, worker=961)
    start = threading.Barrier(2)
    answers: list[Any] = []

    def send(order: list[tuple[str, bytes]]) -> None:
        files = [("files", (name, data, "application/gpx+xml")) for name, data in order]
        start.wait()
        with httpx.Client(base_url=live_server, timeout=60, trust_env=False) as http:
            r = http.post("/tracks", files=files, headers={"Authorization": f"Bearer {token}"})
        answers.append((r.status_code, r.json()))

    threads = [
        threading.Thread(target=send, args=([("a.gpx", a), ("b.gpx", b)],)),
        threading.Thread(target=send, args=([("b.gpx", b), ("a.gpx", a)],)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 2 and all(code in (200, 201) for code, _ in answers), answers
    upload_of: dict[str, set[int]] = {}
    new = 0
    for _code, body in answers:
        for r in body["uploads"]:
            upload_of.setdefault(r["file"], set()).add(r["upload_id"])  # same name, same bytes
            new += not r["duplicate"]
    assert new == 2  # each file new exactly once over both answers
    assert all(len(ids) == 1 for ids in upload_of.values()) and len(upload_of) == 2, upload_of
    assert _stored(engine, p.user_id) == (2, 2, 40)


@pytest.mark.parametrize("first_outcome", ["commit", "rollback"])
def test_an_upload_waits_for_a_concurrent_transaction_storing_the_same_file(
    live_server: str, engine: Engine, patroller: tuple[Patroller, str], first_outcome: str
) -> None:
    """The same file is being stored by another transaction, still open: the request waits
    for it, then answers as a duplicate with its report (commit) or stores the file itself
    (rollback). Never a 409."""
    p, token = patroller
    data = gpx_walk(p, 30, worker=950)
    answers: list[Any] = []
    with Session(engine) as first:
        first.begin()
        (report,) = store_uploads(
            first, [TrackSource("first.gpx", data, p.staff_id)], user_id=p.user_id
        )
        thread = threading.Thread(
            target=_post_file, args=(live_server, token, "again.gpx", data, answers)
        )
        thread.start()
        time.sleep(1.5)
        assert thread.is_alive() and not answers  # waiting on the open transaction
        if first_outcome == "commit":
            first.commit()
        else:
            first.rollback()
        thread.join(timeout=60)
    ((status_code, body),) = answers
    (answer,) = body["uploads"]
    if first_outcome == "commit":
        assert status_code == 200 and answer["duplicate"] is True, body
        assert answer["upload_id"] == report["upload_id"] and answer["file"] == "first.gpx"
        assert answer["tracks"] == report["tracks"]
    else:
        assert status_code == 201 and answer["duplicate"] is False, body
        assert answer["file"] == "again.gpx"
    assert _stored(engine, p.user_id) == (1, 1, 30)


def test_a_grid_edit_is_seen_by_the_next_upload(client, session: Session) -> None:
    """The grid index of POST /tracks is kept between requests, and rebuilt after a grid
    edit: fixes in the part split off are assigned to the new grid."""
    gid, x0, y0, x1, y1 = session.execute(
        text(
            "SELECT id, ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom) FROM grids "
            "WHERE level = 'micro' ORDER BY code LIMIT 1"
        )
    ).one()
    _sid, _g, (lon, lat) = _worker(session)
    first = client.post("/tracks", files={"files": ("a.csv", _walk_csv(lon, lat, 10), "text/csv")})
    assert first.status_code == 201, first.text
    before = patrol_index.get(session)
    assert patrol_index.get(session) is before  # kept while no grid changes
    version = session.execute(text("SELECT version FROM grids WHERE id = :i"), {"i": gid}).scalar()
    cx = (x0 + x1) / 2
    line = {"type": "LineString", "coordinates": [[cx, y0 - 0.001], [cx, y1 + 0.001]]}
    split = client.post(
        f"/grids/{gid}/split", json={"version": version, "line": line, "reason": "test"}
    )
    assert split.status_code == 200, split.text
    new_id = split.json()["created"][0]
    assert patrol_index.get(session) is not before
    # a walk starting inside the new grid: every fix gets the grid PostGIS puts it in
    nlon, nlat = session.execute(
        text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
             "WHERE id = :i) s"),
        {"i": new_id},
    ).one()  # fmt: skip
    walk = _walk_csv(nlon, nlat, 10, t0=T0 + 7200)
    second = client.post("/tracks", files={"files": ("b.csv", walk, "text/csv")})
    assert second.status_code == 201, second.text
    (tid,) = [t["id"] for t in second.json()["uploads"][0]["tracks"]]
    rows = session.execute(
        text(
            """
            SELECT p.grid_id, (SELECT g.id FROM grids g WHERE g.level = 'micro'
                               AND ST_Covers(g.geom, p.geom) ORDER BY g.id LIMIT 1) AS truth
            FROM track_points p WHERE p.track_id = :t ORDER BY p.seq
            """
        ),
        {"t": tid},
    ).all()
    assert rows[0].grid_id == new_id
    assert all(r.grid_id == r.truth for r in rows if r.truth is not None), rows
