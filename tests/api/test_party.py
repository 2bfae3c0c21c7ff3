"""党员中心户: party members linked to 1–5 key households; their visits count towards the
weekly visit compliance alongside the grid workers' (from tracks); the report of key
households nobody visited, in JSON and CSV, scoped to the caller's grids."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from api.security import create_token, hash_password
from gis.crs import to_wgs84, wgs84_to_gcj02
from gis.db.queries.community import add_volunteer
from gis.db.queries.party import link_households
from gis.db.queries.users import add_user
from gis.party import (
    PartyLinkError,
    check_link_count,
    check_visit,
    combined_compliance,
    unvisited,
)

pytestmark = pytest.mark.db


def _party(client, name: str, kind: str = "party_member") -> int:  # type: ignore[no-untyped-def]
    r = client.post("/volunteers", json={"name": name, "kind": kind})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _households(session: Session, n: int, *, grid: bool = True) -> list[int]:
    """``n`` key households of the grid with the most of them (6 in the fixture)."""
    return list(
        session.execute(
            text(
                """
                SELECT id FROM key_households WHERE grid_id = (
                  SELECT grid_id FROM key_households GROUP BY grid_id
                  ORDER BY count(*) DESC, grid_id LIMIT 1)
                ORDER BY id LIMIT :n
                """
            ),
            {"n": n},
        ).scalars()
    )


def _worker_visit_week(session: Session) -> tuple[date, set[int]]:
    """A week with grid workers' visits in the fixture, and the households they visited."""
    rows = session.execute(
        text(
            "SELECT (started_at AT TIME ZONE 'Asia/Shanghai')::date, household_id "
            "FROM household_visits"
        )
    ).all()
    assert rows, "the fixture district has visits detected from its tracks"
    day = min(r[0] for r in rows)
    monday = day - timedelta(days=day.weekday())
    visited = {r[1] for r in rows if monday <= r[0] <= monday + timedelta(days=6)}
    return monday, visited


def _building_point(session: Session, household: int) -> tuple[float, float]:
    row = session.execute(
        text(
            "SELECT ST_X(ST_PointOnSurface(b.geom)), ST_Y(ST_PointOnSurface(b.geom)) "
            "FROM key_households k JOIN buildings b ON b.id = k.building_id WHERE k.id = :h"
        ),
        {"h": household},
    ).one()
    return float(row[0]), float(row[1])


# ------------------------------------------------------------------------------ pure rules


def test_link_count_and_visit_rules() -> None:
    check_link_count(0, 5)
    check_link_count(4, 1)
    with pytest.raises(PartyLinkError, match="at most 5"):
        check_link_count(3, 3)
    with pytest.raises(PartyLinkError, match="at least one"):
        check_link_count(2, 0)
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    check_visit(now - timedelta(hours=1), now, 25.0)
    with pytest.raises(ValueError, match="future"):
        check_visit(now + timedelta(hours=1), now, None)
    with pytest.raises(ValueError, match="within 300 m"):
        check_visit(now, now, 450.0)
    with pytest.raises(ValueError, match="time zone"):
        check_visit(datetime(2026, 12, 1, 9), now, None)


def test_combined_compliance_counts_workers_and_party_members() -> None:
    homes = pd.DataFrame(
        {
            "household_id": [1, 2, 3, 4],
            "kind": ["独居老人"] * 4,
            "grid_id": [10, 10, 11, 11],
            "grid_code": ["a", "a", "b", "b"],
            "party_member_id": [7, 7, None, 8],
            "party_member": ["王", "王", None, "李"],
        }
    )
    workers = pd.DataFrame({"household_id": [1, 3, 3]})
    party = pd.DataFrame({"household_id": [1, 2]})
    out = combined_compliance(homes, workers, party).set_index("household_id")
    assert out["worker_visits"].tolist() == [1, 0, 2, 0]
    assert out["party_visits"].tolist() == [1, 1, 0, 0]
    assert out["visited_by"].tolist() == ["both", "party", "worker", "nobody"]
    assert out["compliant"].tolist() == [True, True, True, False]
    assert unvisited(out.reset_index())["household_id"].tolist() == [4]
    empty = combined_compliance(homes, workers.iloc[:0], party.iloc[:0])
    assert unvisited(empty)["household_id"].tolist() == [1, 2, 3, 4]


# ------------------------------------------------------------------------------ links


def test_links_one_to_five_households_per_party_member(client, session: Session) -> None:
    homes = _households(session, 6)
    assert len(homes) == 6
    wang = _party(client, "王党员")
    li = _party(client, "李党员")
    plain = _party(client, "赵志愿者", kind="volunteer")

    r = client.post("/party/links", json={"volunteer_id": wang, "household_ids": homes[:3]})
    assert r.status_code == 201 and r.json()["households"] == homes[:3]
    # the same again adds nothing; two more make five
    again = client.post("/party/links", json={"volunteer_id": wang, "household_ids": homes[:3]})
    assert again.status_code == 201 and again.json()["added"] == []
    r = client.post("/party/links", json={"volunteer_id": wang, "household_ids": homes[3:5]})
    assert r.json()["households"] == homes[:5]
    # a sixth is refused, and nothing of the request is stored
    six = client.post("/party/links", json={"volunteer_id": wang, "household_ids": [homes[5]]})
    assert six.status_code == 422 and "at most 5" in six.json()["detail"]
    assert len(client.get("/party/links", params={"volunteer_id": wang}).json()) == 5
    # one household, one party member: 409 naming who has it
    taken = client.post("/party/links", json={"volunteer_id": li, "household_ids": homes[4:6]})
    assert taken.status_code == 409 and f"party member {wang}" in taken.json()["detail"]
    assert client.get("/party/links", params={"volunteer_id": li}).json() == []
    # only party members, only existing households
    r = client.post("/party/links", json={"volunteer_id": plain, "household_ids": [homes[5]]})
    assert r.status_code == 422 and "not a party member" in r.json()["detail"]
    r = client.post("/party/links", json={"volunteer_id": li, "household_ids": [99_999_999]})
    assert r.status_code == 404
    r = client.post("/party/links", json={"volunteer_id": 99_999_999, "household_ids": [homes[5]]})
    assert r.status_code == 404
    r = client.post("/party/links", json={"volunteer_id": li, "household_ids": []})
    assert r.status_code == 422
    # unlink, and the household can go to another party member
    assert client.delete(f"/party/links/{homes[4]}").json()["volunteer_id"] == wang
    assert client.delete(f"/party/links/{homes[4]}").status_code == 404
    r = client.post("/party/links", json={"volunteer_id": li, "household_ids": homes[4:6]})
    assert r.status_code == 201 and r.json()["households"] == homes[4:6]
    listed = client.get("/party/links").json()
    mine = {row["household_id"]: row["party_member"] for row in listed}
    assert {h: mine[h] for h in homes} == {**dict.fromkeys(homes[:4], "王党员"),
                                            **dict.fromkeys(homes[4:6], "李党员")}  # fmt: skip
    assert "name" not in listed[0] and "phone" not in listed[0]  # no personal data


def test_concurrent_links_never_pass_five(engine: Engine) -> None:
    """Two requests of three households each for one party member: one wins, one is refused
    (the party member's row is locked while counting)."""
    with Session(engine) as s, s.begin():
        vol = add_volunteer(s, name=f"并发党员{uuid.uuid4().hex[:6]}", kind="party_member")
        homes = list(
            s.execute(
                text(
                    "SELECT id FROM key_households WHERE id NOT IN "
                    "(SELECT household_id FROM party_links) ORDER BY id LIMIT 6"
                )
            ).scalars()
        )
    assert len(homes) == 6
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def one(part: list[int]) -> None:
        barrier.wait()
        try:
            with Session(engine) as s, s.begin():
                link_households(s, vol, part)
            outcomes.append("ok")
        except PartyLinkError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=one, args=(p,)) for p in (homes[:3], homes[3:])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    try:
        assert sorted(outcomes)[-1] == "ok" and "at most 5" in sorted(outcomes)[0]
        with engine.connect() as conn:
            n = conn.execute(
                text("SELECT count(*) FROM party_links WHERE volunteer_id = :v"), {"v": vol}
            ).scalar_one()
        assert n == 3
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM volunteers WHERE id = :v"), {"v": vol})


# ------------------------------------------------------------------------------ visits


def test_party_visits_count_towards_weekly_compliance(client, session: Session) -> None:
    monday, worker_visited = _worker_visit_week(session)
    every = list(session.execute(text("SELECT id FROM key_households ORDER BY id")).scalars())
    not_by_workers = [h for h in every if h not in worker_visited]
    home = not_by_workers[0]
    wang = _party(client, "走访党员")
    assert client.post(
        "/party/links", json={"volunteer_id": wang, "household_ids": [home]}
    ).is_success

    before = {r["household_id"]: r for r in client.get(
        "/party/compliance", params={"week": monday.isoformat()}).json()}  # fmt: skip
    assert set(before) == set(every)
    assert {h for h, r in before.items() if r["visited_by"] == "worker"} == worker_visited
    assert before[home]["visited_by"] == "nobody" and not before[home]["compliant"]
    assert before[home]["party_member"] == "走访党员"
    gone = client.get("/party/unvisited", params={"week": monday.isoformat()}).json()
    assert {r["household_id"] for r in gone} == set(not_by_workers)

    lon, lat = _building_point(session, home)
    when = datetime.combine(monday + timedelta(days=2), datetime.min.time()).replace(
        hour=10, tzinfo=UTC
    )
    body = {"household_id": home, "volunteer_id": wang, "visited_at": when.isoformat(),
            "lon": lon, "lat": lat, "note": "送药上门"}  # fmt: skip
    key = {"Idempotency-Key": f"visit-{uuid.uuid4()}"}
    first = client.post("/party/visits", json=body, headers=key)
    assert first.status_code == 201, first.text
    assert first.json()["distance_m"] < 1.0
    again = client.post("/party/visits", json=body, headers=key)  # a retry stores nothing
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    # a visit the week before does not count for this week
    earlier = {**body, "visited_at": (when - timedelta(days=7)).isoformat()}
    assert client.post("/party/visits", json=earlier).status_code == 201

    after = {r["household_id"]: r for r in client.get(
        "/party/compliance", params={"week": monday.isoformat()}).json()}  # fmt: skip
    assert after[home]["party_visits"] == 1 and after[home]["worker_visits"] == 0
    assert after[home]["visited_by"] == "party" and after[home]["compliant"]
    assert {h: r["visits"] for h, r in after.items() if h != home} == {
        h: r["visits"] for h, r in before.items() if h != home
    }
    gone_after = client.get("/party/unvisited", params={"week": monday.isoformat()}).json()
    assert {r["household_id"] for r in gone_after} == set(not_by_workers) - {home}
    sheet = client.get("/party/unvisited", params={"week": monday.isoformat(), "format": "csv"})
    assert sheet.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert {int(r["household_id"]) for r in rows} == set(not_by_workers) - {home}
    assert {r["visited_by"] for r in rows} == {"nobody"}
    assert all(r["week"] == monday.isoformat() for r in rows)
    stored = session.execute(
        text("SELECT count(*) FROM party_visits WHERE household_id = :h"), {"h": home}
    ).scalar_one()
    assert stored == 2


def test_bad_visits_are_refused_and_nothing_is_stored(client, session: Session) -> None:
    homes = _households(session, 2)
    wang = _party(client, "核查党员")
    client.post("/party/links", json={"volunteer_id": wang, "household_ids": [homes[0]]})
    lon, lat = _building_point(session, homes[0])
    now = datetime.now(UTC)
    ok = {"household_id": homes[0], "volunteer_id": wang, "visited_at": now.isoformat()}
    bad = [
        ({**ok, "household_id": homes[1]}, 422, "not linked"),
        ({**ok, "visited_at": (now + timedelta(days=1)).isoformat()}, 422, "future"),
        ({**ok, "visited_at": "2026-12-01T09:30:00"}, 422, "time zone"),
        ({**ok, "lon": lon + 0.01, "lat": lat}, 422, "within 300 m"),  # ~900 m east
        ({**ok, "lon": lon}, 422, "both lon and lat"),
        ({**ok, "lon": lat, "lat": lon}, 422, ""),  # swapped
        ({**ok, "household_id": 99_999_999}, 404, ""),
        ({**ok, "volunteer_id": 99_999_999}, 404, ""),
    ]
    for body, code, words in bad:
        r = client.post("/party/visits", json=body)
        assert r.status_code == code, (body, r.text)
        assert words in r.text
    n = session.execute(text("SELECT count(*) FROM party_visits")).scalar_one()
    assert n == 0
    # a position from a Chinese map app (GCJ-02) is converted once and stored in WGS84
    gx, gy = wgs84_to_gcj02([lon], [lat])
    r = client.post("/party/visits", json={**ok, "lon": float(gx[0]), "lat": float(gy[0]),
                                           "crs": "gcj02"})  # fmt: skip
    assert r.status_code == 201, r.text
    back = to_wgs84(gx, gy, "gcj02")
    assert abs(r.json()["lon"] - back[0][0]) < 1e-9 and r.json()["distance_m"] < 5


def test_scoped_roles_see_and_touch_only_their_grids(client, session: Session) -> None:
    staff_id, grid_id = session.execute(
        text(
            "SELECT sg.staff_id, sg.grid_id FROM staff_grids sg JOIN grids g ON g.id = sg.grid_id "
            "WHERE g.level = 'micro' AND EXISTS (SELECT 1 FROM key_households k "
            "WHERE k.grid_id = g.id) ORDER BY g.code LIMIT 1"
        )
    ).one()
    uid = add_user(session, username="party-patroller", password_hash=hash_password("x" * 10),
                   role="patroller", staff_id=staff_id)  # fmt: skip
    mine_all = set(
        session.execute(
            text(
                "WITH RECURSIVE t AS (SELECT grid_id AS id FROM staff_grids WHERE staff_id = :s "
                "UNION SELECT g.id FROM grids g JOIN t ON g.parent_id = t.id) "
                "SELECT k.id FROM key_households k JOIN t ON t.id = k.grid_id"
            ),
            {"s": staff_id},
        ).scalars()
    )
    other = session.execute(
        text("SELECT id FROM key_households WHERE NOT (id = ANY(:m)) ORDER BY id LIMIT 1"),
        {"m": list(mine_all)},
    ).scalar_one()
    patrol = {"Authorization": f"Bearer {create_token(uid, 'patroller')}"}
    wang = _party(client, "片区党员")
    mine = sorted(mine_all)[0]
    linked = client.post(
        "/party/links", json={"volunteer_id": wang, "household_ids": [mine, other]}
    )
    assert linked.is_success

    seen = client.get("/party/unvisited", headers=patrol).json()
    assert {r["household_id"] for r in seen} <= mine_all and seen
    assert {r["household_id"] for r in client.get("/party/links", headers=patrol).json()} == {mine}
    r = client.post("/party/links", json={"volunteer_id": wang, "household_ids": [mine]},
                    headers=patrol)  # fmt: skip
    assert r.status_code == 403  # linking is the office's job
    when = datetime.now(UTC).isoformat()
    visit = {"household_id": mine, "volunteer_id": wang, "visited_at": when}
    assert client.post("/party/visits", json=visit, headers=patrol).status_code == 201
    outside = client.post("/party/visits", json={**visit, "household_id": other}, headers=patrol)
    assert outside.status_code == 404
    leader = add_user(session, username="party-leader", password_hash=hash_password("x" * 10),
                      role="leader")  # fmt: skip
    lead = {"Authorization": f"Bearer {create_token(leader, 'leader')}"}
    assert client.get("/party/compliance", headers=lead).status_code == 200
    assert client.post("/party/visits", json=visit, headers=lead).status_code == 403
    assert grid_id
