"""Open311 GeoReport v2: recorded requests shaped like the spec's examples, round trips."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

pytestmark = pytest.mark.db

SPEC_REQUEST_KEYS = {
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
}


def _inside(session: Session) -> tuple[float, float]:
    row = session.execute(
        text(
            "SELECT ST_Y(ST_PointOnSurface(geom)), ST_X(ST_PointOnSurface(geom)) FROM grids "
            "WHERE level = 'micro' ORDER BY code LIMIT 1"
        )
    ).one()
    return float(row[0]), float(row[1])


def _recorded_post(lat: float, long: float) -> str:
    """The spec's POST example (GeoReport v2, "POST Service Request"), form-encoded, with
    our service code and a place in the fixture district; attribute[] is sent and ignored."""
    return urlencode(
        [
            ("api_key", "xyz"),
            ("service_code", "2003"),
            ("lat", f"{lat:.8f}"),
            ("long", f"{long:.8f}"),
            ("address_string", "1234 5th street"),
            ("email", "smith@domain.com"),
            ("device_id", "tt222111"),
            ("account_id", "123456"),
            ("first_name", "john"),
            ("last_name", "smith"),
            ("phone", "111111111"),
            ("description", "A large sinkhole is destroying the street"),
            ("media_url", "http://farm3.static.flickr.com/2002/2212426634_5ed477a060.jpg"),
            ("attribute[WHISETN]", "123"),
            ("attribute[WHISETN]", "124"),
        ]
    )


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def test_services_list_has_the_spec_fields(client) -> None:
    services = client.get("/open311/v2/services.json").json()
    assert len(services) >= 15
    first = services[0]
    assert set(first) == {
        "service_code",
        "service_name",
        "description",
        "metadata",
        "type",
        "keywords",
        "group",
    }
    by_code = {s["service_code"]: s for s in services}
    assert by_code["2003"]["service_name"] == "管道滴漏"
    assert by_code["2003"]["group"] == "社区治理"
    assert client.get("/open311/v2/services/2003.json").status_code == 404


def test_post_then_get_round_trip(client, session: Session) -> None:
    lat, long = _inside(session)
    resp = client.post("/open311/v2/requests.json", content=_recorded_post(lat, long), headers=FORM)
    assert resp.status_code == 201, resp.text
    [ack] = resp.json()
    assert set(ack) == {"service_request_id", "service_notice", "account_id"}
    assert ack["account_id"] == "123456"
    rid = ack["service_request_id"]

    [one] = client.get(f"/open311/v2/requests/{rid}.json").json()
    assert set(one) == SPEC_REQUEST_KEYS
    assert one["service_request_id"] == rid
    assert one["status"] == "open"
    assert one["service_code"] == "2003" and one["service_name"] == "管道滴漏"
    assert one["lat"] == pytest.approx(lat) and one["long"] == pytest.approx(long)
    assert one["media_url"].endswith("2212426634_5ed477a060.jpg")
    assert one["description"] == "A large sinkhole is destroying the street"
    assert one["requested_datetime"].endswith("Z") and one["expected_datetime"]

    stored = client.get(f"/incidents/{rid}").json()
    assert stored["source"] == "Open311" and stored["micro_code"] is not None
    reporter = session.execute(
        text("SELECT reporter FROM incidents WHERE id = :i"), {"i": int(rid)}
    ).scalar_one()
    assert reporter == "smith john, 111111111, smith@domain.com"
    assert "reporter" not in stored  # personal data is not echoed back

    # closing it through the workflow shows as closed, with the last note
    for to in ("accepted", "dispatched", "in_progress", "resolved", "closed"):
        r = client.post(
            f"/incidents/{rid}/transitions", json={"to": to, "actor": "调度员", "note": f"{to}"}
        )
        assert r.status_code == 200, r.text
    [closed] = client.get(f"/open311/v2/requests/{rid}.json").json()
    assert closed["status"] == "closed" and closed["status_notes"] == "closed"

    found = client.get(
        "/open311/v2/requests.json", params={"service_request_id": f"{rid},999999999"}
    ).json()
    assert [r["service_request_id"] for r in found] == [rid]


def test_recorded_search_by_dates_status_and_service(client, session: Session) -> None:
    """The spec's GET example: ?start_date=...&end_date=...&status=open."""
    lat, long = _inside(session)
    ids = []
    for when in ("2010-05-30T08:00:00Z", "2010-06-10T08:00:00Z", "2010-07-01T08:00:00Z"):
        r = client.post(
            "/incidents",
            json={
                "category": "噪音扰民",
                "source": "Open311",
                "lat": lat,
                "lon": long,
                "reported_at": when,
            },
        )
        ids.append(str(r.json()["id"]))
    client.post(
        f"/incidents/{ids[1]}/transitions", json={"to": "rejected", "actor": "a", "note": "重复"}
    )
    query = "start_date=2010-05-24T00:00:00Z&end_date=2010-06-24T00:00:00Z&status=open"
    found = client.get(f"/open311/v2/requests.json?{query}").json()
    assert [r["service_request_id"] for r in found] == [ids[0]]
    closed = client.get(
        "/open311/v2/requests.json?start_date=2010-05-24T00:00:00Z"
        "&end_date=2010-07-24T00:00:00Z&status=closed&service_code=2002"
    ).json()
    assert [r["service_request_id"] for r in closed] == [ids[1]]
    assert closed[0]["status_notes"] == "重复"


@pytest.mark.parametrize(
    ("form", "expect"),
    [
        ({"lat": "34.8", "long": "113.5"}, "service_code is required"),
        ({"service_code": "2003"}, "a location is required"),
        ({"service_code": "2003", "lat": "34.8"}, "both lat and long"),
        ({"service_code": "9999", "lat": "34.8", "long": "113.5"}, "unknown category"),
        ({"service_code": "2003", "lat": "north", "long": "113.5"}, "must be numbers"),
        ({"service_code": "2003", "lat": "113.5", "long": "34.8"}, "swapped"),
    ],
)
def test_bad_requests_get_open311_errors(client, session: Session, form: dict, expect: str) -> None:
    before = session.execute(text("SELECT count(*) FROM incidents")).scalar_one()
    resp = client.post("/open311/v2/requests.json", data=form)
    assert resp.status_code == 400, resp.text
    [err] = resp.json()
    assert err["code"] == 400 and expect in err["description"]
    assert session.execute(text("SELECT count(*) FROM incidents")).scalar_one() == before


def test_unknown_request_is_404_in_open311_shape(client) -> None:
    for rid in ("999999999", "abc"):
        resp = client.get(f"/open311/v2/requests/{rid}.json")
        assert resp.status_code == 404
        assert resp.json()[0]["code"] == 404
    bad = client.get("/open311/v2/requests.json", params={"status": "pending"})
    assert bad.status_code == 400 and "open or closed" in bad.json()[0]["description"]
