"""The closed loop through the API with a fake clock: transitions and their audit, routing,
escalation timeline, SLA colours, duplicates, photos, KPIs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.deps import get_clock
from gis.db.config import get_settings
from gis.db.queries.grids import grids_frame
from gis.incidents import TRANSITIONS, Status

pytestmark = pytest.mark.db

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Beijing, a Monday
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(client) -> Iterator[FakeClock]:
    fake = FakeClock(T0)
    client.app.dependency_overrides[get_clock] = lambda: fake
    yield fake
    client.app.dependency_overrides.pop(get_clock, None)


@pytest.fixture
def media_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("WANGGE_VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield tmp_path / "media" / "photos"
    get_settings.cache_clear()


def _point(session: Session, i: int = 0) -> tuple[float, float, str]:
    """A point inside a micro grid that has a grid worker, and the micro grid's code."""
    row = session.execute(
        text(
            """
            SELECT ST_X(ST_PointOnSurface(g.geom)), ST_Y(ST_PointOnSurface(g.geom)), g.code
            FROM grids g JOIN staff_grids sg ON sg.grid_id = g.id
            JOIN staff s ON s.id = sg.staff_id AND s.role = '网格员'
            WHERE g.level = 'micro' ORDER BY g.code OFFSET :i LIMIT 1
            """
        ),
        {"i": i},
    ).one()
    return float(row[0]), float(row[1]), str(row[2])


def _report(client, session: Session, category: str = "噪音扰民", i: int = 0, **extra) -> dict:
    lon, lat, _ = _point(session, i)
    resp = client.post(
        "/incidents",
        json={"category": category, "source": "热线", "lon": lon, "lat": lat, **extra},
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def _step(client, incident_id: int, to: str, expect: int = 200, **body) -> dict:
    resp = client.post(
        f"/incidents/{incident_id}/transitions", json={"to": to, "actor": "调度员", **body}
    )
    assert resp.status_code == expect, resp.text
    return resp.json()


def test_happy_path_is_audited_and_routed_to_the_micro_grid_worker(
    client, session: Session, clock: FakeClock
) -> None:
    inc = _report(client, session)
    assert inc["category_code"] == "2002" and inc["severity"] == 1 and inc["version"] == 1
    clock.advance(minutes=2)
    _step(client, inc["id"], "accepted")
    clock.advance(minutes=3)
    dispatched = _step(client, inc["id"], "dispatched")
    worker = session.execute(
        text(
            "SELECT s.id FROM staff s JOIN staff_grids sg ON sg.staff_id = s.id "
            "JOIN grids g ON g.id = sg.grid_id WHERE g.code = :c AND s.role = '网格员' "
            "ORDER BY s.id LIMIT 1"
        ),
        {"c": inc["micro_code"]},
    ).scalar_one()
    assert dispatched["assignee_kind"] == "worker"
    assert dispatched["assignee_staff_id"] == worker
    assert dispatched["handling_level"] == dispatched["initial_level"] == "grid"
    for to, minutes in (("in_progress", 20), ("resolved", 90)):
        clock.advance(minutes=minutes)
        _step(client, inc["id"], to, note=f"{to} by the worker")
    clock.advance(hours=2)
    _step(client, inc["id"], "evaluated", satisfaction=5, comment="很满意")
    clock.advance(minutes=1)
    closed = _step(client, inc["id"], "closed")
    assert closed["status"] == "closed" and closed["satisfaction"] == 5
    assert closed["version"] == 7  # created at 1, one per step
    assert closed["accepted_at"] == (T0 + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    events = client.get(f"/incidents/{inc['id']}/history").json()
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        ("reported", "accepted"),
        ("accepted", "dispatched"),
        ("dispatched", "in_progress"),
        ("in_progress", "resolved"),
        ("resolved", "evaluated"),
        ("evaluated", "closed"),
    ]
    assert all(e["actor"] == "调度员" and e["kind"] == "transition" for e in events)
    assert events[1]["data"]["assignee"]["staff_id"] == worker
    assert events[4]["note"] == "很满意"


def _walk_to(client, session: Session, clock: FakeClock, target: Status, i: int) -> int:
    """An incident brought to ``target`` through legal steps only."""
    paths = {
        Status.REPORTED: [],
        Status.ACCEPTED: ["accepted"],
        Status.DISPATCHED: ["accepted", "dispatched"],
        Status.IN_PROGRESS: ["accepted", "dispatched", "in_progress"],
        Status.RESOLVED: ["accepted", "dispatched", "in_progress", "resolved"],
        Status.EVALUATED: ["accepted", "dispatched", "in_progress", "resolved", "evaluated"],
        Status.CLOSED: ["accepted", "dispatched", "in_progress", "resolved", "closed"],
        Status.REJECTED: ["rejected"],
        Status.REOPENED: ["accepted", "dispatched", "in_progress", "resolved", "reopened"],
    }
    inc = _report(client, session, i=i)
    for to in paths[target]:
        clock.advance(minutes=1)
        extra = {"satisfaction": 4} if to == "evaluated" else {}
        _step(client, inc["id"], to, note="理由", **extra)
    return int(inc["id"])


@pytest.mark.parametrize(
    "state", [s for s in Status if s != Status.DUPLICATE], ids=lambda s: s.value
)
def test_every_illegal_step_from_every_state_gets_409(
    client, session: Session, clock: FakeClock, state: Status
) -> None:
    incident_id = _walk_to(client, session, clock, state, i=3)
    version = client.get(f"/incidents/{incident_id}").json()["version"]
    for target in Status:
        if target in TRANSITIONS[state]:
            continue
        resp = client.post(
            f"/incidents/{incident_id}/transitions",
            json={"to": target.value, "actor": "x", "duplicate_of": 1, "satisfaction": 3},
        )
        assert resp.status_code == 409, (state, target, resp.text)
        assert "cannot go from" in resp.json()["detail"]
    after = client.get(f"/incidents/{incident_id}").json()
    assert after["status"] == state and after["version"] == version


def test_dissatisfied_evaluation_reopens_and_the_loop_runs_again(
    client, session: Session, clock: FakeClock
) -> None:
    incident_id = _walk_to(client, session, clock, Status.RESOLVED, i=1)
    clock.advance(hours=1)
    body = _step(client, incident_id, "evaluated", satisfaction=2, comment="没修好")
    assert body["status"] == "reopened" and body["reopen_count"] == 1
    assert body["resolved_at"] is None and body["satisfaction"] == 2
    for to in ("dispatched", "in_progress", "resolved"):
        clock.advance(minutes=10)
        _step(client, incident_id, to)
    _step(client, incident_id, "evaluated", satisfaction=4)
    final = _step(client, incident_id, "closed")
    assert final["satisfaction"] == 4 and final["reopen_count"] == 1
    kinds = [
        (e["from_status"], e["to_status"], e["actor"])
        for e in client.get(f"/incidents/{incident_id}/history").json()
    ]
    assert ("evaluated", "reopened", "system") in kinds


def test_steps_that_lack_what_they_need_are_refused_and_change_nothing(
    client, session: Session, clock: FakeClock
) -> None:
    inc = _report(client, session)
    _step(client, inc["id"], "rejected", expect=422)  # a rejection needs a reason
    _step(client, inc["id"], "duplicate", expect=422)  # and a duplicate its original
    _step(client, inc["id"], "duplicate", expect=404, duplicate_of=10**9)
    assert client.get(f"/incidents/{inc['id']}").json()["status"] == "reported"
    assert client.get(f"/incidents/{inc['id']}/history").json() == []
    rejected = _step(client, inc["id"], "rejected", note="不属于本辖区")
    assert rejected["status"] == "rejected" and rejected["closed_at"] is not None
    _step(client, 10**9, "accepted", expect=404)


def test_stale_version_gets_409_with_the_current_version(
    client, session: Session, clock: FakeClock
) -> None:
    inc = _report(client, session)
    _step(client, inc["id"], "accepted", expected_version=1)
    resp = client.post(
        f"/incidents/{inc['id']}/transitions",
        json={"to": "dispatched", "actor": "b", "expected_version": 1},
    )
    assert resp.status_code == 409
    assert resp.json()["current_version"] == 2
    assert client.get(f"/incidents/{inc['id']}").json()["status"] == "accepted"


def test_explicit_dispatch_to_a_department_sets_the_level(
    client, session: Session, clock: FakeClock
) -> None:
    inc = _report(client, session, category="0601")  # 市政设施: a department matter
    accepted = _step(client, inc["id"], "accepted")
    assert accepted["initial_level"] == "department"
    routed = _step(client, inc["id"], "dispatched")
    assert (routed["assignee_kind"], routed["assignee_name"]) == ("department", "市政")
    other = _report(client, session, i=2)
    _step(client, other["id"], "accepted")
    to_comm = _step(
        client,
        other["id"],
        "dispatched",
        assignee={"kind": "community", "grid_id": 1, "name": "某社区"},
    )
    assert to_comm["handling_level"] == "community"


def test_severity_raises_the_first_handling_level(
    client, session: Session, clock: FakeClock
) -> None:
    grave = _report(client, session, category="噪音扰民", severity=4)
    assert grave["severity"] == 4
    body = _step(client, grave["id"], "accepted")
    assert body["initial_level"] == "street"
    body = _step(client, grave["id"], "dispatched")
    assert body["assignee_kind"] == "street" and body["assignee_grid_id"] is not None


def test_escalation_timeline_with_a_fake_clock(client, session: Session, clock: FakeClock) -> None:
    """噪音扰民, severity 1: on site due 30 min after the report. Passing it escalates
    grid → community and turns yellow; passing it by another 30 min escalates to the street
    office and turns orange; the tick is idempotent."""
    session.execute(text("DELETE FROM incidents"))  # the fixture's old reports: all overdue
    inc = _report(client, session)
    clock.advance(minutes=2)
    _step(client, inc["id"], "accepted")
    clock.advance(minutes=1)
    _step(client, inc["id"], "dispatched")

    def tick() -> dict:
        resp = client.post("/incidents/sla-tick")
        assert resp.status_code == 200
        return resp.json()

    clock.now = T0 + timedelta(minutes=29)
    tick()
    state = client.get(f"/incidents/{inc['id']}").json()
    assert (state["colour"], state["handling_level"]) == ("blue", "grid")
    assert inc["id"] not in [o["id"] for o in client.get("/incidents/overdue").json()]

    clock.now = T0 + timedelta(minutes=45)
    assert tick()["escalated"] >= 1
    state = client.get(f"/incidents/{inc['id']}").json()
    assert (state["colour"], state["handling_level"]) == ("yellow", "community")
    assert state["assignee_kind"] == "community"
    assert state["assignee_grid_id"] is not None
    over = {o["id"]: o for o in client.get("/incidents/overdue").json()}
    assert over[inc["id"]]["stage"] == "on_site"
    assert over[inc["id"]]["overdue_minutes"] == pytest.approx(15.0)

    clock.now = T0 + timedelta(minutes=61)
    tick()
    state = client.get(f"/incidents/{inc['id']}").json()
    assert (state["colour"], state["handling_level"]) == ("orange", "street")
    version = state["version"]
    again = tick()
    assert again["escalated"] == 0 and again["recoloured"] == 0
    assert client.get(f"/incidents/{inc['id']}").json()["version"] == version

    events = client.get(f"/incidents/{inc['id']}/history").json()
    escalations = [e for e in events if e["kind"] == "escalation"]
    assert [(e["data"]["from_level"], e["data"]["to_level"]) for e in escalations] == [
        ("grid", "community"),
        ("community", "street"),
    ]
    assert all(e["actor"] == "system" for e in escalations)
    # on site now: the resolve stage counts to local midnight, so the colour drops back
    _step(client, inc["id"], "in_progress")
    tick()
    assert client.get(f"/incidents/{inc['id']}").json()["colour"] == "blue"


def test_unevaluated_resolved_incident_is_closed_after_72_hours(
    client, session: Session, clock: FakeClock
) -> None:
    incident_id = _walk_to(client, session, clock, Status.RESOLVED, i=4)
    clock.advance(hours=71)
    client.post("/incidents/sla-tick")
    assert client.get(f"/incidents/{incident_id}").json()["status"] == "resolved"
    clock.advance(hours=2)
    assert client.post("/incidents/sla-tick").json()["closed"] >= 1
    closed = client.get(f"/incidents/{incident_id}").json()
    assert closed["status"] == "closed" and closed["satisfaction"] is None


def test_nearby_report_of_the_same_category_is_offered_as_a_merge(
    client, session: Session, clock: FakeClock
) -> None:
    first = _report(client, session, category="管道滴漏")
    lon, lat = first["lon"] + 0.0002, first["lat"]  # about 18 m east
    clock.advance(hours=3)
    second = client.post(
        "/incidents",
        json={"category": "管道滴漏", "source": "公众号", "lon": lon, "lat": lat},
    ).json()
    offered = {d["id"]: d for d in second["possible_duplicates"]}
    assert first["id"] in offered
    assert 10 < offered[first["id"]]["distance_m"] < 25
    other_kind = client.post(
        "/incidents", json={"category": "乱停车", "source": "公众号", "lon": lon, "lat": lat}
    ).json()
    assert first["id"] not in {d["id"] for d in other_kind["possible_duplicates"]}
    merged = _step(client, second["id"], "duplicate", duplicate_of=first["id"])
    assert merged["status"] == "duplicate" and merged["duplicate_of"] == first["id"]
    third = _report(client, session, category="管道滴漏")
    _step(client, third["id"], "duplicate", expect=422, duplicate_of=second["id"])


def test_form_intake_with_photos_is_checked_and_idempotent(
    client, session: Session, clock: FakeClock, media_dir: Path
) -> None:
    lon, lat, _ = _point(session)
    form = {"category": "电梯故障", "source": "随手拍", "lon": str(lon), "lat": str(lat)}
    files = [("photos", ("a.png", PNG, "image/png"))]
    headers = {"Idempotency-Key": "form-1"}
    first = client.post("/incidents/form", data=form, files=files, headers=headers)
    assert first.status_code == 201, first.text
    sha = hashlib.sha256(PNG).hexdigest()
    assert first.json()["photos"] == [f"/media/photos/{sha}"]
    again = client.post("/incidents/form", data=form, files=files, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert again.json()["photos"] == [f"/media/photos/{sha}"]
    stored = list(media_dir.rglob("*.png"))
    assert len(stored) == 1 and stored[0].read_bytes() == PNG
    got = client.get(f"/media/photos/{sha}")
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["content-type"] == "image/png"

    fake = [("photos", ("evil.jpg", b"<script>alert(1)</script>", "image/jpeg"))]
    bad = client.post("/incidents/form", data=form, files=fake)
    assert bad.status_code == 422 and "evil.jpg" in bad.json()["detail"]
    assert "not a photo" in bad.json()["detail"]
    assert client.get("/media/photos/" + "0" * 64).status_code == 404
    assert client.get("/media/photos/..%2f..%2fetc%2fpasswd").status_code in (404, 422)


def test_oversized_photo_is_refused(
    client, session: Session, media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANGGE_MAX_PHOTO_MB", "1")
    get_settings.cache_clear()
    lon, lat, _ = _point(session)
    big = PNG + b"\x00" * 1_100_000
    resp = client.post(
        "/incidents/form",
        data={"category": "电梯故障", "source": "随手拍", "lon": str(lon), "lat": str(lat)},
        files=[("photos", ("big.png", big, "image/png"))],
    )
    assert resp.status_code == 422 and "larger than 1 MB" in resp.json()["detail"]
    assert not media_dir.exists() or not list(media_dir.rglob("*.png"))


def test_unknown_category_names_the_known_ones(client, session: Session) -> None:
    lon, lat, _ = _point(session)
    resp = client.post(
        "/incidents", json={"category": "外星人", "source": "热线", "lon": lon, "lat": lat}
    )
    assert resp.status_code == 422
    assert "外星人" in resp.json()["detail"] and "2002 噪音扰民" in resp.json()["detail"]
    cats = client.get("/incidents/categories").json()
    assert {c["name"] for c in cats} >= {"矛盾纠纷", "噪音扰民", "管道滴漏", "电梯故障", "乱停车"}
    assert {c["class_name"] for c in cats} >= {"市容环境", "宣传广告", "施工管理", "突发事件"}


def test_kpis_count_what_the_workflow_did(client, session: Session, clock: FakeClock) -> None:
    session.execute(text("DELETE FROM incidents"))
    done = _walk_to(client, session, clock, Status.CLOSED, i=0)
    _walk_to(client, session, clock, Status.REJECTED, i=0)
    _walk_to(client, session, clock, Status.DISPATCHED, i=0)
    micro = grids_frame(session, level="micro")
    assert len(micro) > 0
    rows = client.get("/kpis", params={"by": "micro"}).json()
    assert len(rows) == 1
    row = rows[0]
    assert row["incidents"] == 3 and row["valid"] == 2 and row["handled"] == 1
    assert row["handled_rate"] == 0.5
    assert row["on_time"] == 1 and row["on_time_rate"] == 1.0
    assert row["closed"] == 1 and row["in_grid_share"] == 1.0
    assert row["median_response_min"] == 1.0
    closed = client.get(f"/incidents/{done}").json()
    assert row["micro_code"] == closed["micro_code"]
    csv = client.get("/kpis", params={"by": ["community", "category"], "format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    header = csv.text.splitlines()[0].split(",")
    assert header[:4] == ["community_code", "community_name", "category_code", "category"]
    assert "handled_rate" in header
    assert client.get("/kpis", params={"by": "planet"}).status_code == 422
