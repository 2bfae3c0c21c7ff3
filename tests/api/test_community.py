"""Wishes claimed and confirmed; the points ledger: rules, a double submit never pays twice,
append-only, concurrent redemptions never overspend; leaderboards."""

from __future__ import annotations

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
