"""The patroller's page on a phone, in real Chromium: sign in, start a patrol with emulated
geolocation, lose the network, record positions and a 随手记 report with a photo, reload
offline (the service worker serves the app shell and Leaflet: the map shows my grids and the
recorded line), come back online, and the server holds every recorded point and the report
exactly once, also after the queue is sent twice."""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text

from tests.browser.conftest import PageLog, is_local, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PASSWORD = "patrol-pass-2026"
STEP_MS = 4500  # between two fixes
PHONE = {  # an iPhone-sized phone
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
}


def _walk(conn: Any, grid_id: int, n: int = 8, step_m: float = 5.0) -> list[tuple[float, float]]:
    """``n`` positions a walker passes ``step_m`` apart, all inside the grid (a direction
    from a point on its surface that stays inside)."""
    lon0, lat0 = conn.execute(
        text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grids "
             "WHERE id = :g) s"), {"g": grid_id}
    ).one()  # fmt: skip
    dlat = step_m / 111_320.0
    dlon = dlat / math.cos(math.radians(lat0))
    for ux, uy in ((1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)):
        walk = [(lon0 + i * ux * dlon, lat0 + i * uy * dlat) for i in range(n)]
        inside = conn.execute(
            text(
                "SELECT bool_and(ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(x, y), 4326))) "
                "FROM grids g, unnest(CAST(:xs AS float8[]), CAST(:ys AS float8[])) AS u(x, y) "
                "WHERE g.id = :g"
            ),
            {"g": grid_id, "xs": [w[0] for w in walk], "ys": [w[1] for w in walk]},
        ).scalar_one()
        if inside:
            return walk
    raise AssertionError(f"no straight walk of {n} steps inside grid {grid_id}")


@pytest.fixture
def patroller(engine: Engine) -> Iterator[dict[str, Any]]:
    """A grid worker's account (committed: the live server must see it), assigned to a
    fixture micro grid with key households, and eight positions inside that grid."""
    from api.security import hash_password

    name = f"field-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        staff_id, grid_id, code = conn.execute(
            text(
                """
                SELECT sg.staff_id, g.id, g.code FROM staff_grids sg
                JOIN grids g ON g.id = sg.grid_id JOIN staff s ON s.id = sg.staff_id
                WHERE g.level = 'micro' AND s.role = '网格员'
                ORDER BY (SELECT count(*) FROM key_households k WHERE k.grid_id = g.id) DESC,
                         g.code
                LIMIT 1
                """
            )
        ).one()
        user_id = conn.execute(
            text(
                "INSERT INTO users (username, password_hash, role, staff_id) "
                "VALUES (:u, :h, 'patroller', :s) RETURNING id"
            ),
            {"u": name, "h": hash_password(PASSWORD), "s": staff_id},
        ).scalar_one()
        points = _walk(conn, grid_id)
    yield {
        "username": name,
        "user_id": user_id,
        "staff_id": staff_id,
        "grid_id": grid_id,
        "code": code,
        "points": [(float(x), float(y)) for x, y in points],
    }
    with engine.begin() as conn:  # the live server committed: leave the database as found
        conn.execute(text("DELETE FROM track_uploads WHERE user_id = :u"), {"u": user_id})
        conn.execute(text("DELETE FROM incidents WHERE description LIKE :d"), {"d": f"%{name}%"})
        conn.execute(text("DELETE FROM users WHERE id = :u"), {"u": user_id})


@pytest.fixture
def phone(browser, live_server: str) -> Iterator[tuple[Any, Any, PageLog]]:
    """A phone-sized, touch, zh-CN context with geolocation allowed; records console errors,
    page errors, failed and outside requests like the shared ``page`` fixture."""
    context = browser.new_context(
        **PHONE, permissions=["geolocation"], geolocation={"latitude": 0.0, "longitude": 0.0}
    )
    record = PageLog()

    def on_route(route: Any) -> None:
        if is_local(route.request.url):
            route.continue_()
        else:
            record.outside_requests.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", on_route)
    pg = context.new_page()
    pg.on("console", lambda m: m.type == "error" and record.console_errors.append(m.text))
    pg.on("pageerror", lambda exc: record.page_errors.append(str(exc)))
    pg.on("response", lambda r: r.status >= 400 and record.bad_responses.append(
        f"{r.status} {r.url}"))  # fmt: skip
    pg.on("requestfailed", lambda r: record.failed_requests.append(r.url))
    try:
        yield context, pg, record
    finally:
        context.close()


def _go(context: Any, pg: Any, lon: float, lat: float, expect: int) -> None:
    """Walk on for a few seconds, move the phone, and wait until the page has recorded
    ``expect`` fixes (the whole patrol lasts well over the 30 s of a grid entry)."""
    pg.wait_for_timeout(STEP_MS)
    context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 5})
    pg.wait_for_function(
        "n => Number(document.getElementById('points-count').textContent) >= n",
        arg=expect,
        timeout=15000,
    )


def _queue(pg: Any) -> dict[str, int]:
    return pg.evaluate("window.wanggeField.queue()")


SNAPSHOT = """async () => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open('wangge-field');
    r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  const read = (name) => new Promise((ok, no) => {
    const r = db.transaction(name).objectStore(name).getAll();
    r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  window.__copies = {chunks: await read('chunks'), reports: await read('reports')};
  db.close();
  return {chunks: window.__copies.chunks.map(c => c.csv),
          reports: window.__copies.reports.map(r => r.key)};
}"""

REQUEUE = """async () => {
  const db = await new Promise((ok, no) => { const r = indexedDB.open('wangge-field');
    r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
  await new Promise((ok, no) => {
    const t = db.transaction(['chunks', 'reports'], 'readwrite');
    for (const c of window.__copies.chunks) t.objectStore('chunks').put(c);
    for (const r of window.__copies.reports) t.objectStore('reports').put(r);
    t.oncomplete = ok; t.onerror = () => no(t.error); });
  db.close();
}"""


def _stored(engine: Engine, who: dict[str, Any], marker: str) -> dict[str, Any]:
    with engine.connect() as conn:
        points = conn.execute(
            text(
                """
                SELECT ST_X(tp.geom), ST_Y(tp.geom), tp.t FROM track_points tp
                JOIN patrol_tracks p ON p.id = tp.track_id
                JOIN track_uploads u ON u.id = p.upload_id
                WHERE u.user_id = :u AND u.crs = 'wgs84' ORDER BY tp.t
                """
            ),
            {"u": who["user_id"]},
        ).all()
        reports = conn.execute(
            text(
                """
                SELECT i.id, i.source, ST_X(i.geom), ST_Y(i.geom), i.micro_grid_id,
                       (SELECT count(*) FROM incident_photos ph WHERE ph.incident_id = i.id)
                FROM incidents i WHERE i.description LIKE :d
                """
            ),
            {"d": f"%{marker}%"},
        ).all()
    return {"points": points, "reports": reports}


def _party_visit(live_server: str, headers: dict[str, str], household: int) -> int:
    """A party member linked to ``household`` visits it now; returns the volunteer id."""
    r = httpx.post(f"{live_server}/volunteers", json={"name": "测试党员", "kind": "party_member"},
                   headers=headers, timeout=20)  # fmt: skip
    vol = int(r.json()["id"])
    link = {"volunteer_id": vol, "household_ids": [household]}
    assert httpx.post(f"{live_server}/party/links", json=link, headers=headers,
                      timeout=20).status_code == 201  # fmt: skip
    visit = {"household_id": household, "volunteer_id": vol,
             "visited_at": datetime.now(UTC).isoformat()}  # fmt: skip
    r = httpx.post(f"{live_server}/party/visits", json=visit, headers=headers, timeout=20)
    assert r.status_code == 201, r.text
    return vol


MAP_BOXES = """() => {
  const box = (el) => { const r = el.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom]; };
  return {grids: [...document.querySelectorAll('#map path.wg-grid')].map(box),
          track: [...document.querySelectorAll('#map path.wg-track')].map(box),
          d: [...document.querySelectorAll('#map path.wg-track')].map(p => p.getAttribute('d'))};
}"""


def _check_map(pg: Any, grids: int, recorded: int) -> None:
    """The map draws every grid of the worker's scope and the recorded line as Leaflet SVG
    paths, the line on screen inside the grids' outlines (no shifted coordinates)."""
    assert pg.evaluate("typeof L === 'object' && typeof L.map === 'function'")
    assert pg.evaluate("window.wanggeField.trackLength()") == recorded
    boxes = pg.evaluate(MAP_BOXES)
    assert len(boxes["grids"]) == grids
    [line] = boxes["track"]
    assert re.fullmatch(r"M[-\d.]+ [-\d.]+(L[-\d.]+ [-\d.]+)+", boxes["d"][0])
    x0, y0, x1, y1 = line
    assert x1 - x0 + y1 - y0 > 10  # a visible line, not a dot
    gx0 = min(b[0] for b in boxes["grids"])
    gy0 = min(b[1] for b in boxes["grids"])
    gx1 = max(b[2] for b in boxes["grids"])
    gy1 = max(b[3] for b in boxes["grids"])
    assert gx0 - 1 <= x0 and x1 <= gx1 + 1 and gy0 - 1 <= y0 and y1 <= gy1 + 1, (line, boxes)


def test_patrol_and_quick_report_offline_arrive_exactly_once(
    live_server: str,
    engine: Engine,
    phone,
    patroller: dict[str, Any],
    tmp_path: Path,
    auth_headers: dict[str, str],
) -> None:
    context, pg, log = phone
    pts = patroller["points"]
    assert len(pts) == 8
    with engine.connect() as conn:  # the key households of the worker's grids
        mine = set(
            conn.execute(
                text(
                    "WITH RECURSIVE t AS (SELECT grid_id AS id FROM staff_grids "
                    "WHERE staff_id = :s UNION SELECT g.id FROM grids g JOIN t "
                    "ON g.parent_id = t.id) SELECT k.id FROM key_households k "
                    "JOIN t ON t.id = k.grid_id"
                ),
                {"s": patroller["staff_id"]},
            ).scalars()
        )
        patroller["scope"] = conn.execute(  # the grids the page's map must draw
            text(
                "WITH RECURSIVE t AS (SELECT grid_id AS id FROM staff_grids "
                "WHERE staff_id = :s UNION SELECT g.id FROM grids g JOIN t "
                "ON g.parent_id = t.id) SELECT count(*) FROM t"
            ),
            {"s": patroller["staff_id"]},
        ).scalar_one()
    assert len(mine) >= 2
    visited = min(mine)  # a party member's visit this week: no longer due
    volunteer = _party_visit(live_server, auth_headers, visited)
    try:
        _walk_through(live_server, engine, context, pg, log, patroller, tmp_path, mine - {visited})
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM volunteers WHERE id = :v"), {"v": volunteer})


def _walk_through(
    live_server: str,
    engine: Engine,
    context: Any,
    pg: Any,
    log: PageLog,
    patroller: dict[str, Any],
    tmp_path: Path,
    due_ids: set[int],
) -> None:
    pts = patroller["points"]
    context.set_geolocation({"latitude": pts[0][1], "longitude": pts[0][0], "accuracy": 5})

    # the PWA: manifest and service worker from this origin, scope /field/
    man = httpx.get(f"{live_server}/field/manifest.webmanifest", timeout=20)
    assert man.status_code == 200 and "manifest+json" in man.headers["content-type"]
    manifest = man.json()
    assert manifest["scope"] == manifest["start_url"] == "/field/"
    assert manifest["display"] == "standalone"
    for icon in manifest["icons"]:
        png = httpx.get(f"{live_server}{icon['src']}", timeout=20)
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert httpx.get(f"{live_server}/field/sw.js", timeout=20).status_code == 200

    # sign in through the form (HttpOnly cookie), back to the page
    pg.goto(f"{live_server}/field/", wait_until="networkidle")
    pg.wait_for_selector("#signin:not(.hidden)")
    pg.click("#signin-link")
    pg.fill("#u", patroller["username"])
    pg.fill("#p", PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_url(f"{live_server}/field/")
    pg.wait_for_selector("body[data-ready='1']")
    assert patroller["username"] in pg.inner_text("#who")
    assert patroller["code"] in pg.inner_text("#grids")
    # due: the worker's households nobody visited this week (the fixture's tracks are older)
    shown = {int(x) for x in re.findall(r"重点户 #(\d+)", pg.inner_text("#due"))}
    assert shown == due_ids
    assert pg.evaluate("document.cookie") == ""  # the token is HttpOnly
    pg.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15000)
    assert pg.evaluate("navigator.serviceWorker.controller.scriptURL").endswith("/field/sw.js")

    # patrol: two fixes online, three offline, a report, a reload offline, two more fixes
    pg.click("#start")
    pg.wait_for_selector("#stop:not([disabled])")
    _go(context, pg, *pts[0], expect=1)
    _go(context, pg, *pts[1], expect=2)
    context.set_offline(True)
    pg.wait_for_function("!navigator.onLine")
    assert pg.inner_text("#net") == "离线"
    for i in (2, 3, 4):
        _go(context, pg, *pts[i], expect=i + 1)

    marker = f"井盖缺失 {patroller['username']}"
    pg.select_option("#category", index=0)
    pg.fill("#text", marker)
    photo = tmp_path / "manhole.png"
    photo.write_bytes(PNG)
    pg.set_input_files("#photo", str(photo))
    pg.click("#submit")
    pg.wait_for_function("document.getElementById('note-msg').textContent.includes('已保存')")
    report_at = pts[4]
    assert _queue(pg)["reports"] == 1

    pg.reload(wait_until="load")  # offline: the service worker serves the shell
    pg.wait_for_selector("body[data-ready='1']")
    assert "巡查中" in pg.inner_text("#patrol-status")  # the patrol survived the reload
    assert patroller["code"] in pg.inner_text("#grids")  # the last copy, from IndexedDB
    recorded = int(pg.inner_text("#points-count"))
    for i in (5, 6, 7):
        recorded += 1
        _go(context, pg, *pts[i], expect=recorded)
    pg.click("#stop")
    pg.wait_for_function("document.getElementById('stop').disabled")
    recorded = int(pg.inner_text("#points-count"))
    assert _queue(pg) == {"points": 0, "chunks": 1, "reports": 1}
    assert _stored(engine, patroller, marker) == {"points": [], "reports": []}  # truly offline
    copies = pg.evaluate(SNAPSHOT)
    rows = copies["chunks"][0].strip().split("\n")
    assert rows[0] == "lon,lat,time,accuracy" and len(rows) == recorded + 1
    _check_map(pg, patroller["scope"], recorded)  # Leaflet came from the service worker
    screenshot(pg, "field-offline")

    # back online: the queue empties by itself
    context.set_offline(False)
    pg.wait_for_function(
        "document.getElementById('q-chunks').textContent === '0' &&"
        " document.getElementById('q-reports').textContent === '0'",
        timeout=30000,
    )
    first = _stored(engine, patroller, marker)

    # a forced double flush of the same queue (a lost answer, a double tap): nothing twice
    pg.evaluate(REQUEUE)
    assert _queue(pg) == {"points": 0, "chunks": 1, "reports": 1}
    pg.evaluate("Promise.all([window.wanggeField.flush(), window.wanggeField.flush()])")
    pg.wait_for_function("window.wanggeField.queue().then(q => q.chunks + q.reports === 0)")
    again = _stored(engine, patroller, marker)
    assert again == first

    points = first["points"]
    assert len(points) == recorded  # every recorded fix, once
    assert len({(x, y, t) for x, y, t in points}) == recorded
    # stored exactly as the page sent them (WGS84, never converted: GCJ-02 would move them
    # by hundreds of metres), and those are the emulated positions (Chromium keeps 7 decimals)
    sent = sorted((float(r.split(",")[0]), float(r.split(",")[1])) for r in rows[1:])
    got = sorted((x, y) for x, y, _t in points)
    assert (
        max(max(abs(a[0] - b[0]), abs(a[1] - b[1])) for a, b in zip(got, sent, strict=True)) < 1e-6
    )
    assert {(round(x, 6), round(y, 6)) for x, y, _t in points} == {
        (round(x, 6), round(y, 6)) for x, y in pts
    }
    [(incident, source, lon, lat, micro, photos)] = first["reports"]
    assert source == "巡查" and photos == 1 and micro == patroller["grid_id"]
    assert abs(lon - report_at[0]) < 1e-6 and abs(lat - report_at[1]) < 1e-6
    assert str(incident) in pg.inner_text("#sent")
    pg.wait_for_function("document.getElementById('net').textContent === '在线'")
    screenshot(pg, "field-synced")
    assert log.problems() == {}, json.dumps(log.problems(), ensure_ascii=False)
