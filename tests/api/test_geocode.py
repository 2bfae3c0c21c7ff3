"""POST /geocode, the needs-location queue, and the in-memory index following grid edits."""

from __future__ import annotations

import io

import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from api.indexes import grid_locator
from gis.db.queries.buildings import buildings_frame
from gis.db.queries.grids import grids_frame
from tests.brute import brute_locate, sample_points

pytestmark = pytest.mark.db


def test_geocode_upload_returns_the_chain_of_every_row(client, session: Session) -> None:
    micro = grids_frame(session, level="micro")
    lon, lat = sample_points(micro, 400, seed=3)
    csv = pd.DataFrame({"id": range(len(lon)), "lon": lon, "lat": lat}).to_csv(index=False)
    csv += "400,abc,34.8\n"  # a bad row is reported, not fatal
    resp = client.post(
        "/geocode", files={"file": ("points.csv", csv.encode(), "text/csv")}, data={"crs": "wgs84"}
    )
    assert resp.status_code == 200, resp.text
    assert "points-geocoded.csv" in resp.headers["content-disposition"]
    out = pd.read_csv(io.BytesIO(resp.content), dtype={"micro_code": str})
    assert len(out) == 401
    expected = brute_locate(micro, lon, lat)
    got = [None if pd.isna(c) else c for c in out["micro_code"].iloc[:400]]
    assert got == expected
    assert "abc" in str(out["error"].iloc[400])


@pytest.mark.parametrize(
    ("name", "status", "match"), [("points.exe", 415, "unsupported file type")]
)
def test_geocode_upload_refuses_other_files(client, name: str, status: int, match: str) -> None:
    resp = client.post("/geocode", files={"file": (name, b"MZ...", "application/octet-stream")})
    assert resp.status_code == status and match in resp.text


def test_address_reports_resolve_or_queue_and_a_worker_fixes_them(client, session: Session) -> None:
    buildings = buildings_frame(session)
    row = buildings.iloc[4]
    variant = row["address"].replace(" ", "").replace("号楼", "栋")
    found = client.post(
        "/incidents", json={"category": "电梯故障", "source": "12345", "address": variant}
    ).json()
    assert found["location_status"] == "located" and found["location_source"] == "address"
    assert found["building_id"] == row["building_id"]
    assert found["micro_code"] == row["micro_code"]

    queued = client.post(
        "/incidents",
        json={"category": "噪音扰民", "source": "热线", "address": f"{row['road_name']}"},
    ).json()
    assert queued["location_status"] == "needs_location"
    queue = client.get("/incidents/needs-location", params={"limit": 500}).json()
    entry = next(q for q in queue if q["incident"]["id"] == queued["id"])
    assert entry["candidates"] and entry["candidates"][0]["level"] == "road"

    fixed = client.post(
        f"/incidents/{queued['id']}/location", json={"building_id": int(row["building_id"])}
    ).json()
    assert fixed["location_status"] == "located" and fixed["location_source"] == "manual"
    assert fixed["micro_code"] == row["micro_code"]
    assert all(
        q["incident"]["id"] != queued["id"]
        for q in client.get("/incidents/needs-location", params={"limit": 500}).json()
    )
    bad = client.post(f"/incidents/{queued['id']}/location", json={"lon": 1.0})
    assert bad.status_code == 422


def test_in_memory_index_follows_a_grid_edit(client, session: Session) -> None:
    micro = grids_frame(session, level="micro")
    a = micro.iloc[0]
    inside = a.geometry.representative_point()
    before = client.get("/grids/locate", params={"lon": inside.x, "lat": inside.y}).json()
    assert before["chain"]["micro"]["code"] == a["code"]
    # Move grid a's shape far away (a planner's edit bumps the version): the next request
    # must see it, from the in-memory index as from PostGIS.
    session.execute(
        text(
            "UPDATE grids SET geom = ST_Multi(ST_Translate(geom, 1.0, 0)), version = version + 1 "
            "WHERE code = :c"
        ),
        {"c": a["code"]},
    )
    after = client.get("/grids/locate", params={"lon": inside.x, "lat": inside.y}).json()
    via_db = client.get(
        "/grids/locate", params={"lon": inside.x, "lat": inside.y, "engine": "postgis"}
    ).json()
    assert after["inside"] is False and via_db["inside"] is False
    grid_locator.clear()
