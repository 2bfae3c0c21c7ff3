"""Wishes claimed and confirmed; the points ledger: rules, a double submit never pays twice,
append-only, concurrent redemptions never overspend; leaderboards."""

from __future__ import annotations

import csv
import io
import threading
import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from gis.db.queries.community import add_reward, add_volunteer, award, balance, redeem
from gis.volunteering import PointsError, PointsRules, check_wish_step

pytestmark = pytest.mark.db


def _inside(session: Session) -> tuple[float, float]:
    row = session.execute(
        text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM grids "
            "WHERE level = 'micro' ORDER BY code LIMIT 1"
        )
    ).one()
    return float(row[0]), float(row[1])


def test_points_rules() -> None:
    rules = PointsRules(per_hour=10, wish_bonus=5, rating_bonus={5: 3}, max_hours=8)
    assert rules.for_service(2.0, 5, wish=True) == 20 + 5 + 3
    assert rules.for_service(12.0, 3, wish=False) == 80  # capped at 8 hours
    with pytest.raises(ValueError, match="hours"):
        rules.for_service(0, 5, wish=True)
    with pytest.raises(ValueError, match="cannot become"):
        check_wish_step("confirmed", "claimed")


def test_wish_claimed_done_confirmed_pays_once(client, session: Session) -> None:
    lon, lat = _inside(session)
    vol = client.post(
        "/volunteers",
        json={"name": "张党员", "kind": "party_member", "lon": lon, "lat": lat, "skills": ["维修"]},
    ).json()["id"]
    headers = {"Idempotency-Key": "wish-abc-123"}
    body = {"category": "维修", "text": "独居老人家中水龙头漏水", "lon": lon, "lat": lat}
    wish = client.post("/wishes", json=body, headers=headers)
    assert wish.status_code == 201 and wish.json()["micro_code"] is not None
    again = client.post("/wishes", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == wish.json()["id"]
    wid = wish.json()["id"]

    def step(**kw):  # type: ignore[no-untyped-def]
        return client.post(f"/wishes/{wid}/steps", json=kw)

    assert step(to="done", hours=1).status_code == 422  # not claimed yet
    assert step(to="claimed", volunteer_id=vol).json()["volunteer_name"] == "张党员"
    assert step(to="done").status_code == 422  # hours are needed
    assert step(to="done", hours=1.5).json()["status"] == "done"
    confirmed = step(to="confirmed", rating=5).json()
    assert confirmed["points_paid"] == 15 + 5 + 3
    assert step(to="confirmed", rating=5).status_code == 422  # a second confirm is refused
    points = client.get(f"/volunteers/{vol}/points").json()
    assert points["balance"] == 23 and len(points["entries"]) == 1
    assert award(session, volunteer_id=vol, points=23, reason="x", key=f"wish:{wid}:confirmed") == 0
    assert balance(session, vol) == 23
    stats = {r["code"]: r for r in client.get("/wishes/stats").json()}
    mine = stats[confirmed["community_code"]]
    assert mine["confirmed"] == 1 and mine["volunteer_hours"] == 1.5
    assert mine["median_hours_to_claim"] is not None
    csv = client.get("/wishes/stats", params={"by": "micro", "format": "csv"})
    assert csv.headers["content-type"].startswith("text/csv") and "volunteer_hours" in csv.text
    board = client.get("/points/leaderboard", params={"by": "community"}).json()
    assert any(r["volunteer_id"] == vol and r["points"] == 23 and r["rank"] == 1 for r in board)


def test_ledger_is_append_only(session: Session) -> None:
    vol = add_volunteer(session, name="李志愿者", kind="volunteer")
    award(session, volunteer_id=vol, points=10, reason="服务", key="append-only-1")
    for sql in ("UPDATE points_ledger SET delta = 1000", "DELETE FROM points_ledger"):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(sql))
    assert balance(session, vol) == 10


def test_redeem_is_idempotent_and_checks_the_balance(client, session: Session) -> None:
    vol = add_volunteer(session, name="王志愿者", kind="volunteer")
    award(session, volunteer_id=vol, points=25, reason="服务", key="redeem-test-1")
    reward = client.post("/rewards", json={"name": "理发券", "kind": "service", "cost": 10,
                                           "stock": 5}).json()["id"]  # fmt: skip
    h = {"Idempotency-Key": "redeem-key-0001"}
    first = client.post(
        "/points/redeem", json={"volunteer_id": vol, "reward_id": reward}, headers=h
    )
    assert first.status_code == 200 and first.json()["balance"] == 15
    again = client.post(
        "/points/redeem", json={"volunteer_id": vol, "reward_id": reward}, headers=h
    )
    assert again.json()["entry_id"] == first.json()["entry_id"] and again.json()["balance"] == 15
    h2 = {"Idempotency-Key": "redeem-key-0002"}
    assert client.post("/points/redeem", json={"volunteer_id": vol, "reward_id": reward},
                       headers=h2).json()["balance"] == 5  # fmt: skip
    short = client.post("/points/redeem", json={"volunteer_id": vol, "reward_id": reward},
                        headers={"Idempotency-Key": "redeem-key-0003"})  # fmt: skip
    assert short.status_code == 422 and "balance is 5" in short.json()["detail"]
    stock = session.execute(text("SELECT stock FROM rewards WHERE id = :r"), {"r": reward})
    assert stock.scalar_one() == 3
    assert (
        client.post("/points/redeem", json={"volunteer_id": vol, "reward_id": reward}).status_code
        == 422
    )


def test_concurrent_redemptions_never_overspend(engine: Engine) -> None:
    """Twelve redemptions of 10 points race against a balance of 55: exactly five succeed,
    the ledger sums to the balance and the balance never goes negative."""
    tag = uuid.uuid4().hex[:10]
    with Session(engine) as s, s.begin():
        vol = add_volunteer(s, name=f"并发-{tag}", kind="volunteer")
        award(s, volunteer_id=vol, points=55, reason="服务", key=f"race-{tag}")
        reward = add_reward(s, name=f"券-{tag}", kind="goods", cost=10, stock=None)
    outcomes: list[str] = []
    barrier = threading.Barrier(12)

    def one(i: int) -> None:
        barrier.wait()
        try:
            with Session(engine) as s, s.begin():
                redeem(s, volunteer_id=vol, reward_id=reward, key=f"race-{tag}-{i}")
            outcomes.append("ok")
        except PointsError:
            outcomes.append("short")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert sorted(outcomes) == ["ok"] * 5 + ["short"] * 7
        with Session(engine) as s:
            assert balance(s, vol) == 5
            entries = s.execute(
                text("SELECT count(*), sum(delta) FROM points_ledger WHERE volunteer_id = :v"),
                {"v": vol},
            ).one()
        assert entries == (6, 5)
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE points_ledger DISABLE TRIGGER points_ledger_append_only")
            )
            conn.execute(text("DELETE FROM points_ledger WHERE volunteer_id = :v"), {"v": vol})
            conn.execute(text("ALTER TABLE points_ledger ENABLE TRIGGER points_ledger_append_only"))
            conn.execute(text("DELETE FROM rewards WHERE id = :r"), {"r": reward})
            conn.execute(text("DELETE FROM volunteers WHERE id = :v"), {"v": vol})


def test_matches_are_by_walking_distance_on_the_district_network(client, session: Session) -> None:
    from gis.db.queries.network import load_demo_network

    load_demo_network(session)
    lon, lat = _inside(session)
    one = {"name": "近", "kind": "volunteer", "lon": lon + 0.0005, "lat": lat, "skills": ["代购"]}
    near = client.post("/volunteers", json=one).json()["id"]
    two = {"name": "远", "kind": "party_member", "lon": lon + 0.004, "lat": lat}
    far = client.post("/volunteers", json=two).json()["id"]
    wish = client.post("/wishes", json={"category": "代购", "text": "帮忙买药",
                                        "lon": lon, "lat": lat}).json()  # fmt: skip
    got = client.get(f"/wishes/{wish['id']}/matches").json()
    ids = [m["volunteer_id"] for m in got]
    assert ids.index(near) < ids.index(far)
    for m in got:
        assert m["walk_m"] >= m["straight_m"] - 1.0  # a walk is never shorter than the line
    assert client.get("/wishes/999999/matches").status_code == 404


# ------------------------------------------------------------------- 资源清单, 项目清单, rules, map


def _token_for(session: Session, role: str, **kw) -> dict[str, str]:  # type: ignore[no-untyped-def]
    from api.security import create_token, hash_password
    from gis.db.queries.users import add_user

    uid = add_user(session, username=f"{role}-{uuid.uuid4().hex[:6]}",
                   password_hash=hash_password("x" * 10), role=role, **kw)  # fmt: skip
    return {"Authorization": f"Bearer {create_token(uid, role)}"}


def _communities(session: Session) -> list[tuple[int, str]]:
    return [
        (int(r[0]), str(r[1]))
        for r in session.execute(
            text("SELECT id, code FROM grids WHERE level = 'community' ORDER BY code")
        ).all()
    ]


def test_resource_list_of_volunteers_units_and_companies(client, session: Session) -> None:
    lon, lat = _inside(session)
    made = {}
    for name, kind, skills in [
        ("阳光物业", "resident_unit", ["维修", "保洁"]),
        ("顺达快修", "company", ["维修"]),
        ("钱党员", "party_member", ["陪诊"]),
        ("孙志愿者", "volunteer", ["代购"]),
    ]:
        body = {"name": name, "kind": kind, "skills": skills, "phone": "13900001111",
                "hours_per_week": 4, "lon": lon, "lat": lat}  # fmt: skip
        made[name] = client.post("/volunteers", json=body).json()["id"]
    companies = client.get("/volunteers", params={"kind": "company"}).json()
    assert {v["name"] for v in companies} == {"顺达快修"}
    assert companies[0]["home_micro_code"] is not None and companies[0]["community_code"]
    assert "phone" not in companies[0]  # personal data only on request
    fixers = {v["name"] for v in client.get("/volunteers", params={"skill": "维修"}).json()}
    assert fixers == {"阳光物业", "顺达快修"}
    units = client.get("/volunteers", params={"kind": "resident_unit", "personal": True}).json()
    assert units[0]["phone"] == "13900001111" and units[0]["hours_per_week"] == 4
    staff_id = session.execute(
        text("SELECT staff_id FROM staff_grids ORDER BY grid_id DESC LIMIT 1")
    ).scalar_one()
    patrol = _token_for(session, "patroller", staff_id=staff_id)
    assert client.get("/volunteers", params={"personal": True}, headers=patrol).status_code == 403
    mine = client.get("/volunteers", headers=patrol).json()
    scope = set(
        session.execute(
            text(
                "WITH RECURSIVE t AS (SELECT grid_id AS id FROM staff_grids WHERE staff_id = :s "
                "UNION SELECT g.id FROM grids g JOIN t ON g.parent_id = t.id) "
                "SELECT code FROM grids WHERE id IN (SELECT id FROM t)"
            ),
            {"s": staff_id},
        ).scalars()
    )
    assert all(v["home_micro_code"] in scope for v in mine)
    assert client.get("/volunteers", params={"kind": "robot"}).status_code == 422


def test_projects_list_and_steps(client, session: Session) -> None:
    (cid, code), (_other_id, other_code) = _communities(session)[:2]
    body = {"name": "老旧小区加装电梯", "community_code": code, "starts": "2026-03-01",
            "ends": "2026-10-31", "description": "3栋加装电梯"}  # fmt: skip
    made = client.post("/projects", json=body)
    assert made.status_code == 201 and made.json()["status"] == "planned"
    pid = made.json()["id"]
    assert made.json()["community_code"] == code
    assert client.post("/projects", json={**body, "community_code": "999"}).status_code == 404
    bad = client.post("/projects", json={**body, "ends": "2026-01-01"})
    assert bad.status_code == 422 and "before it starts" in bad.json()["detail"]
    other = client.post(
        "/projects", json={**body, "name": "口袋公园", "community_code": other_code}
    )
    codes = [p["community_code"] for p in client.get("/projects").json()]
    assert codes == sorted(codes) and {code, other_code} <= set(codes)
    assert (
        client.post(f"/projects/{pid}/steps", json={"to": "running"}).json()["status"] == "running"
    )
    assert client.post(f"/projects/{pid}/steps", json={"to": "done"}).json()["status"] == "done"
    again = client.post(f"/projects/{pid}/steps", json={"to": "running"})
    assert again.status_code == 422 and "cannot become running" in again.json()["detail"]
    assert client.post("/projects/999999/steps", json={"to": "done"}).status_code == 404
    running = client.get("/projects", params={"status": "done"}).json()
    assert [p["id"] for p in running] == [pid]
    # a community account sees and moves only its own community's projects
    mine = _token_for(session, "community", community_code=code)
    seen = {p["id"] for p in client.get("/projects", headers=mine).json()}
    assert pid in seen and other.json()["id"] not in seen
    step = client.post(
        f"/projects/{other.json()['id']}/steps", json={"to": "running"}, headers=mine
    )
    assert step.status_code == 404
    theirs = client.post("/projects", json={**body, "community_code": other_code}, headers=mine)
    assert theirs.status_code == 403
    assert cid


def test_points_rules_are_configured_by_the_office(client, session: Session) -> None:
    assert client.get("/points/rules").json() == {
        "per_hour": 10, "wish_bonus": 5, "rating_bonus": {"4": 1, "5": 3}, "max_hours": 8.0,
    }  # fmt: skip
    rules = {"per_hour": 20, "wish_bonus": 0, "rating_bonus": {"5": 10}, "max_hours": 4}
    assert client.put("/points/rules", json=rules).status_code == 200
    for bad in ({"per_hour": -1}, {"per_hour": 1.5}, {"bonus": 3}, {"rating_bonus": {"6": 1}},
                {"max_hours": 0}, {"max_hours": "8"}):  # fmt: skip
        r = client.put("/points/rules", json=bad)
        assert r.status_code == 422, bad
    assert client.get("/points/rules").json()["per_hour"] == 20  # the bad ones changed nothing
    lon, lat = _inside(session)
    vol = client.post("/volunteers", json={"name": "周党员", "kind": "party_member"}).json()["id"]
    wid = client.post("/wishes", json={"category": "陪诊", "text": "陪老人看病",
                                       "lon": lon, "lat": lat}).json()["id"]  # fmt: skip
    client.post(f"/wishes/{wid}/steps", json={"to": "claimed", "volunteer_id": vol})
    client.post(f"/wishes/{wid}/steps", json={"to": "done", "hours": 6})
    paid = client.post(f"/wishes/{wid}/steps", json={"to": "confirmed", "rating": 5}).json()
    assert paid["points_paid"] == 4 * 20 + 0 + 10  # hours capped at 4 by the new rules
    community = _token_for(session, "community", community_code=_communities(session)[0][1])
    assert client.put("/points/rules", json=rules, headers=community).status_code == 403


def test_leadership_view_by_grid_with_csv_and_map(client, session: Session) -> None:
    lon, lat = _inside(session)
    vol = client.post("/volunteers", json={"name": "吴志愿者", "kind": "volunteer"}).json()["id"]
    ids = [
        client.post(
            "/wishes",
            json={"category": c, "text": t, "lon": lon, "lat": lat, "wanted_by": "2026-12-31"},
        ).json()["id"]
        for c, t in (("代购", "买米"), ("维修", "修灯"), ("陪诊", "看牙"))
    ]
    client.post(f"/wishes/{ids[0]}/steps", json={"to": "claimed", "volunteer_id": vol})
    client.post(f"/wishes/{ids[0]}/steps", json={"to": "done", "hours": 2})
    micro = session.execute(
        text("SELECT g.code, p.code FROM grids g JOIN grids p ON p.id = g.parent_id "
             "WHERE g.id = wangge_locate(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 'micro')"),
        {"x": lon, "y": lat},
    ).one()  # fmt: skip
    by_grid = {r["code"]: r for r in client.get("/wishes/stats", params={"by": "grid"}).json()}
    mine = by_grid[micro[1]]  # the 三级 grid above the wishes' micro grid
    assert (mine["open"], mine["done"], mine["volunteer_hours"]) == (2, 1, 2.0)
    assert mine["median_hours_to_claim"] is not None and mine["median_hours_to_fulfil"] is not None
    street = client.get("/wishes/stats", params={"by": "street"}).json()
    assert len(street) == 1 and street[0]["open"] == 2
    sheet = client.get("/wishes/stats", params={"by": "grid", "format": "csv"})
    rows = list(csv.DictReader(io.StringIO(sheet.text)))
    assert {r["code"]: int(r["open"]) for r in rows}[micro[1]] == 2
    assert "median_hours_to_fulfil" in rows[0] and "volunteer_hours" in rows[0]
    page = client.get("/maps/community")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "待认领 2" in page.text and "买米" not in page.text  # no free text on the map
    assert f"#{ids[1]} 微心愿 · 维修 · 待认领" in page.text and micro[0] in page.text
    assert 'href="/wishes/stats?by=micro&amp;format=csv"' in page.text
    patrol = _token_for(session, "patroller", staff_id=session.execute(
        text("SELECT staff_id FROM staff_grids LIMIT 1")).scalar_one())  # fmt: skip
    assert client.get("/maps/community", headers=patrol).status_code == 403


def test_a_resident_posts_a_wish_and_confirms_it(client, session: Session) -> None:
    from api.security import create_token

    def resident(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {create_token(f'resident:{key}', 'resident')}"}

    alice, bob = resident("a" * 64), resident("b" * 64)
    building = session.execute(text("SELECT id FROM buildings ORDER BY id LIMIT 1")).scalar_one()
    body = {"category": "代购", "text": "腿脚不便，请帮忙买菜", "building_id": building}
    retry = {**alice, "Idempotency-Key": "wish-retry-1"}
    first = client.post("/resident/wishes", json=body, headers=retry)
    assert first.status_code == 201 and first.json()["micro_code"] is not None
    again = client.post("/resident/wishes", json=body, headers=retry)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    wid = first.json()["id"]
    assert first.json()["posted_by"] == "居民" and "resident_key" not in first.json()
    assert [w["id"] for w in client.get("/resident/wishes", headers=alice).json()] == [wid]
    assert client.get("/resident/wishes", headers=bob).json() == []
    assert client.post("/resident/wishes", json={**body, "building_id": None},
                       headers=alice).status_code == 422  # fmt: skip
    assert client.get("/wishes", headers=alice).status_code == 403  # not the office's list
    # a party member claims it (诺单) and does it; only the resident who posted it confirms
    vol = client.post("/volunteers", json={"name": "郑党员", "kind": "party_member"}).json()["id"]
    client.post(f"/wishes/{wid}/steps", json={"to": "claimed", "volunteer_id": vol})
    early = client.post(f"/resident/wishes/{wid}/confirm", json={"rating": 5}, headers=alice)
    assert early.status_code == 422  # not done yet
    client.post(f"/wishes/{wid}/steps", json={"to": "done", "hours": 1})
    other = client.post(f"/resident/wishes/{wid}/confirm", json={"rating": 1}, headers=bob)
    assert other.status_code == 404
    done = client.post(f"/resident/wishes/{wid}/confirm", json={"rating": 5}, headers=alice)
    assert done.status_code == 200 and done.json()["points_paid"] == 10 + 5 + 3
    twice = client.post(f"/resident/wishes/{wid}/confirm", json={"rating": 5}, headers=alice)
    assert twice.status_code == 422
    assert client.get(f"/volunteers/{vol}/points").json()["balance"] == 18
    assert client.get("/resident/wishes", headers=alice).json()[0]["status"] == "confirmed"
