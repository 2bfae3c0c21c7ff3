"""The patrol page in real Chromium over the fixture district: a day's tracks, each micro
grid's patrol status, uncovered streets and key households' visits, offline, no personal data
for the default view; the day picker reloads the page for another day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.queries import dashboards as q
from gis.db.queries.tracks import daily_status
from maps.patrol import LAYERS
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]


def test_patrol_page_in_chromium(live_server: str, page, session: Session) -> None:
    pg, log = page
    day = q.latest_patrol_day(session)
    assert day is not None
    status = daily_status(session, day, level="micro")
    n_tracks = session.execute(
        text("SELECT count(*) FROM patrol_tracks WHERE work_date = :d AND geom IS NOT NULL"),
        {"d": day},
    ).scalar()
    n_buildings = session.execute(
        text("SELECT count(DISTINCT building_id) FROM key_households")
    ).scalar()
    names = [n for (n,) in session.execute(text("SELECT name FROM key_household_people")) if n]
    assert n_tracks and n_buildings and names

    resp = pg.goto(f"{live_server}/maps/patrol", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector(".leaflet-overlay-pane path.leaflet-interactive")
    control = pg.inner_text(".leaflet-control-layers")
    for name in LAYERS:
        assert name in control
    legend = pg.inner_text("#wangge-legend")
    assert f"巡查地图 {day.isoformat()}" in legend
    patrolled = int(status["patrolled"].sum())
    assert f"已巡查（≥10分钟）（{patrolled} 个微网格）" in legend
    assert "未覆盖街道" in legend and "重点户走访" in legend and "不含个人信息" in legend
    assert "底图：无底图（离线）" in legend
    # every layer drawn: micro grids + tracks (one path each) + buildings + uncovered streets
    paths = pg.locator(".leaflet-overlay-pane path.leaflet-interactive").count()
    assert paths >= len(status) + n_tracks + n_buildings
    # a grid's tooltip names its status in Chinese
    pg.locator(".leaflet-overlay-pane path.leaflet-interactive").first.hover(force=True)
    tip = pg.locator(".leaflet-tooltip").first.inner_text(timeout=3000)
    assert "状态" in tip or "网格员" in tip or "重点户" in tip
    body = pg.content()
    assert not any(n in body for n in names)  # no personal data for the default view
    shot = screenshot(pg, "patrol")
    assert shot.stat().st_size > 20_000

    # the day picker: the previous day
    earlier = (day - timedelta(days=1)).isoformat()
    pg.fill('#wangge-filters input[name="date"]', earlier)
    with pg.expect_navigation(wait_until="networkidle"):
        pg.click("#wangge-filters button")
    assert f"date={earlier}" in pg.url
    assert f"巡查地图 {earlier}" in pg.inner_text("#wangge-legend")
    assert log.problems() == {}
