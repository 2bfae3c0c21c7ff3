"""The leadership view of the service lists in real Chromium: micro grids coloured by open
needs, a dot per open need with its waiting time, the totals and the CSV export link; no
console error, no request leaving the machine."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from sqlalchemy import Engine, text

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]


def test_leadership_map_of_open_needs(
    live_server: str, engine: Engine, page, auth_headers: dict[str, str]
) -> None:
    pg, log = page
    with engine.connect() as conn:
        lon, lat = conn.execute(
            text(
                "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
                "FROM grids WHERE level = 'micro' ORDER BY code DESC LIMIT 1"
            )
        ).one()
    made = []
    try:
        for category in ("代购", "维修"):
            r = httpx.post(
                f"{live_server}/wishes",
                json={"category": category, "text": "测试", "lon": lon, "lat": lat},
                headers=auth_headers,
                timeout=20,
            )
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
        resp = pg.goto(f"{live_server}/maps/community", wait_until="networkidle")
        assert resp is not None and resp.status == 200
        pg.wait_for_selector("#wangge-legend")
        assert "待认领 2" in pg.inner_text("#wangge-totals")
        # the grid layer and the two dots are drawn (SVG paths in the overlay pane)
        n_paths = pg.locator(".leaflet-overlay-pane path").count()
        with engine.connect() as conn:
            n_micro = conn.execute(
                text("SELECT count(*) FROM grids WHERE level = 'micro'")
            ).scalar_one()
        assert n_paths >= n_micro + 2
        csv = pg.get_attribute("#wangge-csv", "href")
        assert csv == "/wishes/stats?by=micro&format=csv"
        sheet = httpx.get(f"{live_server}{csv}", headers=auth_headers, timeout=20)
        assert sheet.status_code == 200 and "median_hours_to_claim" in sheet.text
        screenshot(pg, "community-needs")
        assert log.problems() == {}
    finally:
        with engine.begin() as conn:  # the live server committed: leave the database as found
            conn.execute(text("DELETE FROM wishes WHERE id = ANY(:i)"), {"i": made})
