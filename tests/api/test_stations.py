"""GET /stations, GET /stations/{id}/isochrones, GET /coverage, POST /siting on the fixture."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.queries.network import build_isochrones, load_demo_network

pytestmark = pytest.mark.db


def test_stations_listed(client, session: Session) -> None:
    n = session.execute(text("SELECT count(*) FROM stations")).scalar_one()
    body = client.get("/stations").json()
    assert len(body) == n > 0
    assert {"id", "kind", "name", "lon", "lat"} <= body[0].keys()


def test_isochrones_of_a_station(client, session: Session) -> None:
    load_demo_network(session)
    build_isochrones(session)
    sid = session.execute(text("SELECT min(id) FROM stations")).scalar_one()
    body = client.get(f"/stations/{sid}/isochrones").json()
    assert body["type"] == "FeatureCollection" and body["stale"] is False
    assert [f["properties"]["minutes"] for f in body["features"]] == [5, 10, 15]
    assert body["features"][0]["geometry"]["type"] == "MultiPolygon"
    lines = client.get(f"/stations/{sid}/isochrones", params={"geometry": "lines"}).json()
    assert [f["geometry"]["type"] for f in lines["features"]] == ["MultiLineString"] * 3
    assert client.get(f"/stations/{sid}/isochrones?geometry=x").status_code == 422
    session.execute(text("UPDATE network_edges SET length_m = length_m + 1 WHERE id = 1"))
    assert client.get(f"/stations/{sid}/isochrones").json()["stale"] is True


def test_unknown_station_is_404(client) -> None:
    resp = client.get("/stations/999999/isochrones")
    assert resp.status_code == 404 and "999999" in resp.json()["detail"]


def test_coverage_without_network_is_a_clear_error(client, session: Session) -> None:
    session.execute(text("DELETE FROM network_edges"))
    session.execute(text("DELETE FROM network_nodes"))
    resp = client.get("/coverage")
    assert resp.status_code == 422 and "network load" in resp.json()["detail"]


def test_coverage_rows_and_outside(client, session: Session) -> None:
    load_demo_network(session)
    body = client.get("/coverage").json()
    total = session.execute(text("SELECT sum(households) FROM buildings")).scalar_one()
    overall = {r["minutes"]: r for r in body["rows"] if r["scope"] == "overall"}
    assert set(overall) == {5, 10, 15}
    assert overall[15]["households_total"] == total
    outside_hh = sum(b["households"] for b in body["outside"])
    assert outside_hh == total - overall[15]["households"]
    assert all(
        r["households_difference"] == r["households_straight"] - r["households"]
        for r in body["rows"]
    )
    kinds = client.get("/coverage", params={"scope": "kind"}).json()["rows"]
    assert kinds and all(r["scope"] == "kind" for r in kinds)


def test_siting_adds_coverage(client, session: Session) -> None:
    load_demo_network(session)
    resp = client.post("/siting", json={"k": 2, "minutes": 5, "max_candidates": 100})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert len(body["sites"]) == 2 and body["optimal"]
    assert body["covered_after"] == body["covered_before"] + body["newly_covered"]
    assert body["newly_covered"] > 0


@pytest.mark.parametrize("body", [{"k": 0}, {"k": 3, "minutes": -1}, {"k": 2, "candidates": "x"}])
def test_siting_rejects_bad_input(client, body: dict) -> None:
    assert client.post("/siting", json=body).status_code == 422
