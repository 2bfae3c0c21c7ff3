"""The overview dashboard in real Chromium, served by the app over the fixture district."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]


def test_overview_page_shows_layers_offline(live_server: str, page, session: Session) -> None:
    pg, log = page
    resp = pg.goto(f"{live_server}/maps/overview", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector(".leaflet-container")
    pg.wait_for_selector("path.leaflet-interactive")
    control = pg.inner_text(".leaflet-control-layers")
    for label in ("社区", "三级网格", "微网格", "专属网格", "事件热力图"):
        assert label in control
    # visible outlines: street, communities, 三级 grids, dedicated grids (micro hidden at start)
    n_visible = session.execute(
        text("SELECT count(*) FROM grids WHERE level <> 'micro'")
    ).scalar_one()
    assert pg.locator("path.leaflet-interactive").count() == n_visible
    assert pg.locator("canvas.leaflet-heatmap-layer").count() == 1
    pg.locator(".leaflet-control-layers-overlays label", has_text="微网格").locator("input").check()
    n_micro = session.execute(text("SELECT count(*) FROM grids WHERE level = 'micro'")).scalar_one()
    assert pg.locator("path.leaflet-interactive").count() == n_visible + n_micro
    assert "网格总览" in pg.inner_text("#wangge-legend")
    shot = screenshot(pg, "overview")
    assert shot.stat().st_size > 20_000
    assert log.console_errors == [], log.console_errors
    assert log.page_errors == [], log.page_errors
    assert log.outside_requests == [], log.outside_requests
    assert log.failed_requests == [], log.failed_requests


def test_api_docs_page_is_offline_too(live_server: str, page) -> None:
    pg, log = page
    pg.goto(f"{live_server}/docs", wait_until="networkidle")
    pg.wait_for_selector(".swagger-ui .opblock")
    assert "/grids/locate" in pg.inner_text(".swagger-ui")
    screenshot(pg, "api-docs")
    assert log.outside_requests == [] and log.console_errors == [] and log.page_errors == []
