"""POST /incidents: stored and geocoded on insert, idempotent, bad input refused."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import wgs84_to_bd09
from gis.db.queries.grids import grids_frame
from tests.brute import brute_locate

pytestmark = pytest.mark.db


def _count(session: Session) -> int:
    return session.execute(text("SELECT count(*) FROM incidents")).scalar_one()


def test_post_incident_is_geocoded_on_insert(client, session: Session) -> None:
    micro = grids_frame(session, level="micro")
    pt = micro.geometry.iloc[2].representative_point()
    before = _count(session)
    resp = client.post(
        "/incidents",
        json={
            "category": "噪音扰民",
            "source": "巡查",
            "lon": pt.x,
            "lat": pt.y,
            "description": "楼上装修噪音",
        },
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["location_status"] == "located"
    assert body["micro_code"] == brute_locate(micro, [pt.x], [pt.y])[0]
    assert body["micro_code"].startswith(body["grid_code"])
    assert body["grid_code"].startswith(body["community_code"])
    assert _count(session) == before + 1
    again = client.get(f"/incidents/{body['id']}").json()
    assert again["micro_code"] == body["micro_code"]


def test_post_incident_in_bd09_is_converted_at_the_edge(client, session: Session) -> None:
    micro = grids_frame(session, level="micro")
    pt = micro.geometry.iloc[5].representative_point()
    bx, by = wgs84_to_bd09(pt.x, pt.y)
    body = client.post(
        "/incidents",
        json={
            "category": "管道滴漏",
            "source": "公众号",
            "lon": float(bx),
            "lat": float(by),
            "crs": "bd09",
        },
    ).json()
    assert body["micro_code"] == micro["code"].iloc[5]
    assert body["lon"] == pytest.approx(pt.x, abs=1e-7)


def test_outside_and_address_only_reports_are_kept(client) -> None:
    outside = client.post(
        "/incidents", json={"category": "乱停车", "source": "热线", "lon": 113.0, "lat": 34.0}
    ).json()
    assert outside["location_status"] == "outside"
    assert outside["micro_code"] is None and outside["id"] > 0
    queued = client.post(
        "/incidents",
        json={"category": "电梯故障", "source": "12345", "address": "石佛路12号 某小区3号楼"},
    ).json()
    assert queued["location_status"] == "needs_location"
    assert queued["lon"] is None and queued["address"].startswith("石佛路")


def test_idempotency_key_makes_retries_safe(client, session: Session) -> None:
    payload = {"category": "环境卫生", "source": "随手拍", "lon": 113.0, "lat": 34.0}
    headers = {"Idempotency-Key": "phone-42-report-7"}
    first = client.post("/incidents", json=payload, headers=headers)
    n = _count(session)
    second = client.post("/incidents", json=payload, headers=headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert _count(session) == n


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ({"lon": 113.55}, "both lon and lat"),
        ({}, "point (lon, lat) or an address"),
        ({"lon": 34.8, "lat": 113.55}, "swapped"),
        ({"lon": 113.55, "lat": 34.8, "crs": "webmercator"}, "unknown input CRS"),
        ({"lon": 113.55, "lat": 34.8, "source": "微博"}, "source"),
        ({"lon": 113.55, "lat": 34.8, "category": ""}, "category"),
    ],
)
def test_bad_reports_are_refused_and_nothing_is_stored(
    client, session: Session, payload: dict, match: str
) -> None:
    body = {"category": "噪音扰民", "source": "巡查", **payload}
    before = _count(session)
    resp = client.post("/incidents", json=body)
    assert resp.status_code == 422
    assert match in resp.text
    assert "Traceback" not in resp.text
    assert _count(session) == before


def test_unknown_incident_is_404(client) -> None:
    resp = client.get("/incidents/987654321")
    assert resp.status_code == 404
    assert "does not exist" in resp.json()["detail"]
