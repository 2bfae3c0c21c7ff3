"""GET /grids and GET /grids/locate against the fixture district."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy.orm import Session

from gis.crs import wgs84_to_gcj02
from gis.db.queries.grids import grids_frame
from tests.brute import brute_locate, sample_points

pytestmark = pytest.mark.db


def test_list_grids_by_level_is_geojson(client, session: Session) -> None:
    resp = client.get("/grids", params={"level": "micro"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["type"] == "FeatureCollection"
    n_micro = len(grids_frame(session, level="micro"))
    assert len(body["features"]) == n_micro > 0
    feature = body["features"][0]
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert feature["properties"]["level"] == "micro"
    assert {"code", "name", "parent_code", "households", "residents"} <= feature[
        "properties"
    ].keys()


def test_list_grids_by_parent_and_bbox(client, session: Session) -> None:
    grids = grids_frame(session, level="grid")
    parent = grids["code"].iloc[0]
    children = client.get("/grids", params={"parent": parent}).json()["features"]
    assert children and all(f["properties"]["parent_code"] == parent for f in children)
    assert all(f["properties"]["code"].startswith(parent) for f in children)
    micro = grids_frame(session, level="micro")
    x0, y0, x1, y1 = micro.geometry.iloc[0].bounds
    bbox = f"{x0},{y0},{(x0 + x1) / 2},{(y0 + y1) / 2}"
    hits = client.get("/grids", params={"level": "micro", "bbox": bbox}).json()["features"]
    codes = {f["properties"]["code"] for f in hits}
    assert micro["code"].iloc[0] in codes
    assert len(codes) < len(micro)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"bbox": "1,2,3"}, "four numbers"),
        ({"bbox": "113.6,34.7,113.5,34.9"}, "min < max"),
        ({"bbox": "34.7,113.5,34.9,113.6"}, "swapped"),
        ({"level": "province"}, "level"),
    ],
)
def test_list_grids_rejects_bad_filters(client, params: dict, match: str) -> None:
    resp = client.get("/grids", params=params)
    assert resp.status_code == 422
    assert match in resp.text


def test_locate_agrees_with_brute_force(client, session: Session) -> None:
    micro = grids_frame(session, level="micro")
    lon, lat = sample_points(micro, 300, seed=5)
    expected = brute_locate(micro, lon, lat)
    for x, y, code in zip(lon, lat, expected, strict=True):
        body = client.get("/grids/locate", params={"lon": x, "lat": y}).json()
        by_db = client.get("/grids/locate", params={"lon": x, "lat": y, "engine": "postgis"})
        assert by_db.json()["chain"] == body["chain"]
        if code is None:
            assert body["inside"] is False and body["chain"] is None
            assert body["detail"] == "outside every grid"
        else:
            chain = body["chain"]
            assert chain["micro"]["code"] == code
            assert code.startswith(chain["grid"]["code"])
            assert chain["grid"]["code"].startswith(chain["community"]["code"])
            assert chain["community"]["code"].startswith(chain["street"]["code"])


def test_locate_converts_gcj02_and_bd09_input(client, session: Session) -> None:
    micro = grids_frame(session, level="micro")
    centre = micro.geometry.iloc[3].representative_point()
    want = client.get("/grids/locate", params={"lon": centre.x, "lat": centre.y}).json()
    gx, gy = wgs84_to_gcj02(centre.x, centre.y)
    assert np.hypot(gx - centre.x, gy - centre.y) > 0.001  # a few hundred metres apart
    got = client.get(
        "/grids/locate", params={"lon": float(gx), "lat": float(gy), "crs": "gcj02"}
    ).json()
    assert got["chain"]["micro"]["code"] == want["chain"]["micro"]["code"]
    raw = client.get("/grids/locate", params={"lon": float(gx), "lat": float(gy)}).json()
    assert raw["chain"] is None or raw["chain"]["micro"]["code"] != micro["code"].iloc[3]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lon": 34.8, "lat": 113.55}, "swapped"),
        ({"lon": 113.55, "lat": 34.8, "crs": "EPSG:3857"}, "unknown input CRS"),
        ({"lon": "abc", "lat": 34.8}, "lon"),
    ],
)
def test_locate_rejects_bad_input(client, params: dict, match: str) -> None:
    resp = client.get("/grids/locate", params=params)
    assert resp.status_code == 422
    assert match in resp.text
