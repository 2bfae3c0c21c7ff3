"""OGC API - Features: read by real clients (OWSLib, GDAL's OAPIF driver through pyogrio)
against the running app; Part 4 create / replace / delete through the planning machinery."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pyogrio
import pytest
import requests
import shapely
from shapely.geometry import shape
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gis.grids import LEVELS


def _db_codes(engine: Engine, level: str, bbox: tuple | None = None) -> list[str]:
    sql = "SELECT code FROM grids WHERE level = :level"
    params: dict[str, Any] = {"level": level}
    if bbox:
        sql += " AND ST_Intersects(geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))"
        params.update(dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True)))
    with engine.connect() as conn:
        return list(conn.execute(text(sql + " ORDER BY code"), params).scalars())


@pytest.fixture
def features(live_server: str, auth_headers: dict[str, str]) -> Any:
    from owslib.ogcapi.features import Features

    return Features(live_server + "/ogc/", headers=dict(auth_headers))


def test_owslib_landing_conformance_and_collections(features: Any) -> None:
    rels = {link["rel"] for link in features.links}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conf = features.conformance()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conf
    assert sorted(features.feature_collections()) == sorted(LEVELS)
    micro = features.collection("micro")
    (bbox,) = micro["extent"]["spatial"]["bbox"]
    assert 113 < bbox[0] < bbox[2] < 115 and 34 < bbox[1] < bbox[3] < 35
    api = features.api()  # the service-desc link: the app's OpenAPI document
    assert "/ogc/collections/{collection_id}/items" in api["paths"]


def test_owslib_pages_through_every_item_in_code_order(features: Any, engine: Engine) -> None:
    want = _db_codes(engine, "micro")
    codes: list[str] = []
    offset, pages = 0, 0
    while True:
        page = features.collection_items("micro", limit=4, offset=offset)
        assert page["type"] == "FeatureCollection"
        assert page["numberMatched"] == len(want)
        assert page["numberReturned"] == len(page["features"]) <= 4
        codes += [f["id"] for f in page["features"]]
        pages += 1
        nxt = [link for link in page["links"] if link["rel"] == "next"]
        if not nxt:
            break
        assert f"offset={offset + 4}" in nxt[0]["href"] and "limit=4" in nxt[0]["href"]
        offset += 4
    assert codes == want and pages == -(-len(want) // 4)


def test_owslib_bbox_and_single_item(features: Any, engine: Engine) -> None:
    first = _db_codes(engine, "micro")[0]
    item = features.collection_item("micro", first)
    assert item["id"] == first and item["properties"]["level"] == "micro"
    geom = shape(item["geometry"])
    x0, y0, x1, y1 = geom.bounds
    box = (x0 + (x1 - x0) * 0.4, y0 + (y1 - y0) * 0.4, x0 + (x1 - x0) * 0.6, y0 + (y1 - y0) * 0.6)
    got = features.collection_items("micro", bbox=list(box), limit=1000)
    ids = sorted(f["id"] for f in got["features"])
    assert first in ids and ids == _db_codes(engine, "micro", box)
    with engine.connect() as conn:
        stored = shapely.from_wkb(
            bytes(
                conn.execute(
                    text("SELECT ST_AsBinary(geom) FROM grids WHERE code = :c"), {"c": first}
                ).scalar_one()
            )
        )
    assert geom.symmetric_difference(stored).area < 1e-14


_GDAL_CLIENT = """
import json, sys
import pyogrio
url, token = sys.argv[1], sys.argv[2]
pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token})
layers = sorted(name for name, _ in pyogrio.list_layers(url))
micro = pyogrio.read_dataframe(url, layer="micro")
grid = pyogrio.read_dataframe(url, layer="grid")
print(json.dumps({"layers": layers, "micro": sorted(micro["code"]), "grid": sorted(grid["code"]),
                  "crs": micro.crs.to_string(), "households": int(micro["households"].sum())}))
"""


def test_gdal_oapif_driver_reads_the_layers(
    live_server: str, admin_token: str, engine: Engine
) -> None:
    """GDAL's OAPIF driver (the one QGIS and ogr2ogr use) in its own process, as a client
    would be (in this process pyogrio would hold the GIL the server thread needs). The token
    goes with GDAL_HTTP_AUTH=BEARER (GDAL >= 3.9): the driver's own Accept header replaces
    GDAL_HTTP_HEADERS."""
    assert "OAPIF" in pyogrio.list_drivers()
    out = subprocess.run(
        [sys.executable, "-c", _GDAL_CLIENT, f"OAPIF:{live_server}/ogc", admin_token],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["layers"] == sorted(LEVELS)
    assert got["micro"] == _db_codes(engine, "micro")
    assert got["grid"] == _db_codes(engine, "grid")
    assert got["crs"] in ("OGC:CRS84", "EPSG:4326") and got["households"] > 0


def test_reads_need_sign_in_and_bad_requests_are_400(live_server: str) -> None:
    assert requests.get(f"{live_server}/ogc/collections").status_code == 401


def test_errors(client: Any) -> None:
    assert client.get("/ogc/collections/roads/items").status_code == 404
    assert client.get("/ogc/collections/micro/items/0000").status_code == 404
    assert client.get("/ogc/collections/micro/items", params={"bbox": "1,2,3"}).status_code == 400
    assert client.get("/ogc/collections/micro/items", params={"bbox": "a,b,c,d"}).status_code == 400
    bad = client.get("/ogc/collections/micro/items", params={"colour": "red"})
    assert bad.status_code == 400 and "colour" in bad.json()["detail"]
    big = client.get("/ogc/collections/micro/items", params={"limit": 5000})
    assert big.status_code == 200 and "limit=1000" in big.json()["links"][0]["href"]
    r = client.get("/ogc/collections/street/items")
    assert r.headers["content-type"].startswith("application/geo+json")


# --- Part 4 -------------------------------------------------------------------------------


def _item(client: Any, level: str, code: str) -> Any:
    return client.get(f"/ogc/collections/{level}/items/{code}")


def _sibling_pair(session: Session) -> tuple[str, str]:
    rec = session.execute(
        text(
            """
            SELECT a.code, b.code FROM grids a JOIN grids b
              ON a.parent_id = b.parent_id AND a.id < b.id AND a.level = 'micro'
             AND b.level = 'micro'
             AND ST_Length(ST_Intersection(ST_Boundary(a.geom), ST_Boundary(b.geom))) > 0.0005
            ORDER BY a.code, b.code LIMIT 1
            """
        )
    ).one()
    return str(rec[0]), str(rec[1])


def test_part4_replace_with_if_match(client: Any, session: Session) -> None:
    ca, cb = _sibling_pair(session)
    a, b = _item(client, "micro", ca), _item(client, "micro", cb)
    etag = a.headers["etag"]
    assert etag == f'"{a.json()["properties"]["version"]}"'
    grown = shape(a.json()["geometry"]).union(
        shape(b.json()["geometry"]).intersection(shape(a.json()["geometry"]).buffer(0.0001))
    )
    grown = shapely.geometry.polygon.orient(shapely.get_parts(grown)[0], 1.0)
    body = {"type": "Feature", "geometry": shapely.geometry.mapping(grown), "properties": {}}
    url = f"/ogc/collections/micro/items/{ca}"
    assert client.put(url, json=body).status_code == 428  # no version given
    assert client.put(url, json=body, headers={"If-Match": '"999"'}).status_code == 412
    hh = a.json()["properties"]["households"] + b.json()["properties"]["households"]
    r = client.put(
        url, json=body, headers={"If-Match": etag, "Content-Type": "application/geo+json"}
    )
    assert r.status_code == 204, r.text
    a2, b2 = _item(client, "micro", ca).json(), _item(client, "micro", cb).json()
    assert a2["properties"]["version"] == a.json()["properties"]["version"] + 1
    assert shape(a2["geometry"]).area > shape(a.json()["geometry"]).area
    assert shape(b2["geometry"]).area < shape(b.json()["geometry"]).area  # b gave the strip
    assert a2["properties"]["households"] + b2["properties"]["households"] == hh


def test_part4_create_and_delete(client: Any, session: Session) -> None:
    ca, cb = _sibling_pair(session)
    a = _item(client, "micro", ca).json()
    parent = a["properties"]["parent"]
    poly = shape(a["geometry"])
    c = poly.representative_point()
    drawn = shapely.geometry.box(c.x - 0.0002, c.y - 0.0002, c.x + 0.0002, c.y + 0.0002)
    body = {
        "type": "Feature",
        "geometry": shapely.geometry.mapping(drawn),
        "properties": {"parent": parent, "name": "新微网格", "reason": "OGC test"},
    }
    wrong = client.post("/ogc/collections/grid/items", json=body)
    assert wrong.status_code == 422 and "micro" in wrong.json()["detail"]
    r = client.post("/ogc/collections/micro/items", json=body)
    assert r.status_code == 201, r.text
    path = r.headers["location"].split("://", 1)[1].split("/", 1)[1]
    new = client.get("/" + path)
    assert new.status_code == 200 and new.json()["properties"]["name"] == "新微网格"
    new_code = new.json()["id"]
    assert new_code.startswith(parent) and new_code not in (ca, cb)
    assert (
        _item(client, "micro", ca).json()["properties"]["version"] == a["properties"]["version"] + 1
    )
    # delete it again: merged into the sibling it was cut out of (the longest shared edge)
    gone = client.delete(f"/ogc/collections/micro/items/{new_code}")
    assert gone.status_code == 204, gone.text
    assert client.get("/" + path).status_code == 404
    back = shape(_item(client, "micro", ca).json()["geometry"])
    assert back.symmetric_difference(poly).area < 1e-12


def test_part4_is_for_planners_only(client: Any, session: Session) -> None:
    from api.security import create_token, hash_password
    from gis.db.queries.users import add_user

    uid = add_user(
        session, username="h3-dispatcher", password_hash=hash_password("x" * 12), role="dispatcher"
    )
    ca, _ = _sibling_pair(session)
    headers = {"Authorization": f"Bearer {create_token(uid, 'dispatcher')}"}
    assert client.get(f"/ogc/collections/micro/items/{ca}", headers=headers).status_code == 200
    r = client.delete(f"/ogc/collections/micro/items/{ca}", headers=headers)
    assert r.status_code == 403
