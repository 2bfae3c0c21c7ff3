"""The service-circle page in real Chromium over the fixture district with isochrones built."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from gis.db.queries.network import build_isochrones, load_demo_network
from maps.service import BAND_STYLE
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]


@pytest.fixture(scope="module")
def built(engine: Engine) -> Iterator[int]:
    """Network and isochrones committed for the live server; removed afterwards."""
    with Session(engine) as s, s.begin():
        load_demo_network(s)
        n = int(build_isochrones(s)["isochrones"])
    yield n
    with Session(engine) as s, s.begin():
        s.execute(text("DELETE FROM isochrones"))
        s.execute(text("DELETE FROM network_edges"))
        s.execute(text("DELETE FROM network_nodes"))
        s.execute(text("DELETE FROM wangge_meta WHERE key = 'network'"))


def test_service_page_shows_circles_offline(live_server: str, page, built: int) -> None:
    pg, log = page
    resp = pg.goto(f"{live_server}/maps/service", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector("path.leaflet-interactive")
    control = pg.inner_text(".leaflet-control-layers")
    for _, label in BAND_STYLE.values():
        assert label in control
    assert "站点：" in control and "15分钟圈外楼栋" in control
    legend = pg.inner_text("#wangge-legend")
    assert "步行覆盖" in legend and "直线" in legend
    # one polygon per isochrone plus one circle marker per station at least
    assert pg.locator("path.leaflet-interactive").count() >= built
    shot = screenshot(pg, "service")
    assert shot.stat().st_size > 20_000
    assert log.problems() == {}
