"""The bad-input catalogue: each case gets a clear 4xx naming the problem, and nothing that
was stored changes. The README's table lists these cases."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

pytestmark = pytest.mark.db

OK_POINT = {"lon": 113.55, "lat": 34.80}  # inside the fixture district's bounding box
REPORT = {"category": "噪音扰民", "source": "热线", **OK_POINT}
GRID_EDIT = {"parent_id": 1, "reason": "bad input test"}
BIG_RING = [
    [
        113.5 + 0.01 * math.cos(2 * math.pi * i / 20_000),
        34.8 + 0.01 * math.sin(2 * math.pi * i / 20_000),
    ]
    for i in range(20_000)
]
BIG_RING.append(BIG_RING[0])  # fmt: skip


@dataclass(frozen=True)
class Case:
    """One bad request, the status range expected and a phrase the answer must contain."""

    name: str
    method: str
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    status: tuple[int, ...] = (422,)
    says: str = ""


def _raw(body: bytes | str, ctype: str = "application/json") -> dict[str, Any]:
    data = body.encode() if isinstance(body, str) else body
    return {"content": data, "headers": {"Content-Type": ctype}}


CASES = [
    # coordinates
    Case("NaN longitude", "POST", "/incidents",
         _raw('{"category": "噪音扰民", "source": "热线", "lon": NaN, "lat": 34.8}'),
         says="not finite"),
    Case("infinite latitude", "POST", "/incidents",
         _raw('{"category": "噪音扰民", "source": "热线", "lon": 113.5, "lat": Infinity}'),
         says="not finite"),
    Case("lat/lon swapped", "POST", "/incidents",
         {"json": {**REPORT, "lon": 34.8, "lat": 113.55}}, says="swapped"),
    Case("longitude out of range", "POST", "/incidents",
         {"json": {**REPORT, "lon": 213.5}}, says="out of range"),
    Case("point outside China", "POST", "/incidents",
         {"json": {**REPORT, "lon": 2.35, "lat": 48.85}}, says="outside China"),
    Case("metres declared as WGS84 (wrong CRS)", "POST", "/incidents",
         {"json": {**REPORT, "lon": 12641234.0, "lat": 4134567.0}}, says="out of range"),
    Case("unknown CRS", "POST", "/incidents",
         {"json": {**REPORT, "crs": "EPSG:999999"}}, says="unknown input CRS"),
    Case("BD-09 far outside China", "POST", "/incidents",
         {"json": {**REPORT, "crs": "bd09", "lon": -70.0, "lat": 40.0}}, says="outside China"),
    Case("only one of lon/lat", "POST", "/incidents",
         {"json": {"category": "噪音扰民", "source": "热线", "lon": 113.5}}, says="both lon"),
    Case("no point and no address", "POST", "/incidents",
         {"json": {"category": "噪音扰民", "source": "热线"}}, says="a point"),
    Case("locate: latitude 95", "GET", "/grids/locate", {"params": {"lon": 113.5, "lat": 95}},
         says="out of range"),
    Case("locate: text for a number", "GET", "/grids/locate",
         {"params": {"lon": "east", "lat": 34.8}}, says="lon"),
    # enums and vocabularies
    Case("unknown category", "POST", "/incidents", {"json": {**REPORT, "category": "外星人"}},
         says="unknown category"),
    Case("unknown source", "POST", "/incidents", {"json": {**REPORT, "source": "飞鸽传书"}},
         says="source"),
    Case("unknown status filter", "GET", "/incidents", {"params": {"status": "done"}},
         says="status"),
    Case("unknown grid level", "GET", "/grids", {"params": {"level": "province"}},
         says="level"),
    Case("unknown workflow step", "POST", "/incidents/1/transitions",
         {"json": {"to": "finished", "actor": "x"}}, says="to"),
    Case("satisfaction 6", "POST", "/incidents/1/transitions",
         {"json": {"to": "evaluated", "actor": "x", "satisfaction": 6}}, says="satisfaction"),
    Case("unknown KPI grouping", "GET", "/kpis", {"params": {"by": "planet"}},
         says="unknown grouping"),
    Case("Open311 unknown service", "POST", "/open311/v2/requests.json",
         {"data": {"service_code": "9999", "lat": "34.8", "long": "113.55"}},
         status=(400,), says="unknown category"),
    # injection and traversal
    Case("SQL injection in category", "POST", "/incidents",
         {"json": {**REPORT, "category": "噪音扰民'; DROP TABLE incidents; --"}},
         says="unknown category"),
    Case("SQL injection in status filter", "GET", "/incidents",
         {"params": {"status": "reported' OR '1'='1"}}, says="status"),
    Case("SQL injection in category filter", "GET", "/incidents",
         {"params": {"category": "x' OR 1=1 --"}}, says="unknown category"),
    Case("SQL injection in grid filter", "GET", "/incidents",
         {"params": {"grid": "1 OR 1=1"}}, says="grid"),
    Case("SQL injection in bbox", "GET", "/grids",
         {"params": {"bbox": "1,2,3,4);DROP TABLE grids;--"}}, says="bbox"),
    Case("SQL injection in KPI grouping", "GET", "/kpis",
         {"params": {"by": "community; DELETE FROM incidents"}}, says="unknown grouping"),
    Case("SQL injection in Open311 ids", "GET", "/open311/v2/requests.json",
         {"params": {"service_request_id": "1);DELETE FROM incidents;--"}},
         status=(400,), says="comma-separated"),
    Case("path traversal in photo URL", "GET", "/media/photos/..%2F..%2Fetc%2Fpasswd",
         status=(404, 422)),
    Case("path traversal in Open311 id", "GET", "/open311/v2/requests/..%2F..%2Fetc.json",
         status=(404,)),
    # shapes and sizes
    Case("bbox with three numbers", "GET", "/grids", {"params": {"bbox": "1,2,3"}},
         says="four numbers"),
    Case("bbox min > max", "GET", "/grids", {"params": {"bbox": "114,35,113,34"}},
         says="min < max"),
    Case("GeoJSON-style nesting 10,000 deep", "POST", "/incidents",
         _raw('{"category": ' + "[" * 10_000 + "]" * 10_000 + "}"), status=(400, 413, 422)),
    Case("description of 5,000 characters", "POST", "/incidents",
         {"json": {**REPORT, "description": "吵" * 5000}}, says="description"),
    Case("idempotency key of 500 characters", "POST", "/incidents",
         {"json": REPORT, "headers": {"Idempotency-Key": "k" * 500}}, says="idempotency"),
    Case("limit above the page cap", "GET", "/incidents", {"params": {"limit": 10**6}},
         says="limit"),
    Case("negative offset", "GET", "/incidents", {"params": {"offset": -1}}, says="offset"),
    Case("id beyond bigint", "GET", "/incidents/99999999999999999999999",
         status=(404, 422)),
    Case("id that is not a number", "GET", "/incidents/1%20OR%201=1", says="incident_id"),
    # encodings and formats
    Case("invalid UTF-8", "POST", "/incidents",
         _raw(b'{"category": "\xff\xfe", "source": "\xe7\x83", "lon": 113.5, "lat": 34.8}'),
         status=(400, 422)),
    Case("JSON sent as text/plain", "POST", "/incidents",
         _raw('{"category": "噪音扰民"}', "text/plain"), status=(415, 422)),
    Case("malformed JSON", "POST", "/incidents", _raw('{"category": "噪音扰民",'),
         says="JSON"),
    Case("bad date", "POST", "/incidents", {"json": {**REPORT, "reported_at": "yesterday"}},
         says="reported_at"),
    Case("a script as a photo", "POST", "/incidents/form",
         {"data": {"category": "噪音扰民", "source": "热线", "lon": "113.55", "lat": "34.8"},
          "files": [("photos", ("x.jpg", b"<script>alert(1)</script>", "image/jpeg"))]},
         says="not a photo"),
    # geometries of grid edits
    Case("self-intersecting polygon (bow-tie)", "POST", "/grids",
         {"json": {**GRID_EDIT, "geometry": {"type": "Polygon", "coordinates": [[[113.54, 34.79],
          [113.56, 34.81], [113.56, 34.79], [113.54, 34.81], [113.54, 34.79]]]}}},
         says="invalid"),
    Case("empty polygon", "POST", "/grids",
         {"json": {**GRID_EDIT, "geometry": {"type": "Polygon", "coordinates": []}}},
         says="empty"),
    Case("clockwise exterior ring (wrong winding)", "POST", "/grids",
         {"json": {**GRID_EDIT, "geometry": {"type": "Polygon", "coordinates": [[[113.54, 34.79],
          [113.54, 34.80], [113.55, 34.80], [113.55, 34.79], [113.54, 34.79]]]}}},
         says="winding"),
    Case("polygon with 20,001 vertices", "POST", "/grids",
         {"json": {**GRID_EDIT, "geometry": {"type": "Polygon", "coordinates": [BIG_RING]}}},
         says="vertices"),
    Case("unknown geometry type", "POST", "/grids",
         {"json": {**GRID_EDIT, "geometry": {"type": "Blob", "coordinates": [1, 2]}}},
         says="geometry"),
    Case("grid split by a line in metres", "POST", "/grids/1/split",
         {"json": {"version": 1, "reason": "x", "line": {"type": "LineString",
          "coordinates": [[12641234.0, 4134567.0], [12641300.0, 4134600.0]]}}},
         status=(404, 422), says=""),
    Case("Open311 latitude NaN", "POST", "/open311/v2/requests.json",
         {"data": {"service_code": "2002", "lat": "NaN", "long": "113.55"}},
         status=(400,), says="not finite"),
]  # fmt: skip


def _state(session: Session) -> tuple:
    return tuple(
        session.execute(
            text(
                "SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM incident_events),"
                " (SELECT count(*) FROM incident_photos), (SELECT count(*) FROM grids),"
                " (SELECT max(version) FROM incidents)"
            )
        ).one()
    )


def test_the_catalogue_has_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_bad_input_gets_a_clear_4xx_and_changes_nothing(
    client, session: Session, case: Case
) -> None:
    before = _state(session)
    resp = client.request(case.method, case.path, **case.kwargs)
    assert resp.status_code in case.status, (resp.status_code, resp.text[:300])
    assert resp.text and "Traceback" not in resp.text
    if case.says:
        assert case.says.lower() in resp.text.lower(), resp.text[:300]
    assert _state(session) == before


def test_a_two_gigabyte_upload_is_refused_before_a_byte_is_read() -> None:
    """Content-Length 2 GB: refused by the limit middleware with nothing received."""
    from api.main import create_app

    app = create_app()
    received: list[int] = []
    sent: list[dict] = []

    async def receive() -> dict:
        received.append(1)
        return {"type": "http.request", "body": b"x" * 65536, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/geocode",
        "raw_path": b"/geocode",
        "query_string": b"",
        "headers": [(b"content-length", str(2 * 1024**3).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413 and received == []
