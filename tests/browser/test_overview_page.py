"""The overview dashboard in real Chromium, served by the app over the fixture district.

``live_server`` (tests/conftest.py) is the app under uvicorn on 127.0.0.1; it serves the page
at ``/maps/overview`` and the vendored assets at ``/static/vendor/...``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from maps.style import LEVEL_LABEL
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]


def _count_by_level(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT level, count(*) FROM grids GROUP BY level")).all()
    return {str(level): int(n) for level, n in rows}


def test_overview_page_shows_layers_offline(live_server: str, page, session: Session) -> None:
    pg, log = page
    counts = _count_by_level(session)
    assert counts.get("micro", 0) > 0 and counts.get("community", 0) > 0
    resp = pg.goto(f"{live_server}/maps/overview", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector(".leaflet-container")
    pg.wait_for_selector("path.leaflet-interactive")

    control = pg.inner_text(".leaflet-control-layers")
    for level in counts:
        assert LEVEL_LABEL[level] in control
    assert "事件热力图" in control

    # one SVG path per grid, in the pane of its level; micro grids hidden at start
    for level, n in counts.items():
        paths = pg.locator(f".leaflet-wangge-{level}-pane svg path.leaflet-interactive")
        assert paths.count() == (0 if level == "micro" else n), level
    n_visible = sum(n for level, n in counts.items() if level != "micro")
    assert pg.locator("path.leaflet-interactive").count() == n_visible
    assert pg.locator("canvas.leaflet-heatmap-layer").count() == 1

    overlays = pg.locator(".leaflet-control-layers-overlays label")
    overlays.filter(has_text="微网格").locator("input").check()
    assert (
        pg.locator(".leaflet-wangge-micro-pane path.leaflet-interactive").count()
        == (counts["micro"])
    )
    assert pg.locator("path.leaflet-interactive").count() == n_visible + counts["micro"]

    legend = pg.inner_text("#wangge-legend")
    assert "网格总览" in legend and "事件热力图" in legend
    shot = screenshot(pg, "overview")
    assert shot.stat().st_size > 20_000
    assert log.problems() == {}


def test_vendored_assets_are_served(live_server: str, page) -> None:
    """Every script and stylesheet of the page comes from /static/vendor with status 200."""
    pg, log = page
    seen: list[str] = []
    pg.on("response", lambda r: "/static/vendor/" in r.url and seen.append(f"{r.status} {r.url}"))
    pg.goto(f"{live_server}/maps/overview", wait_until="networkidle")
    assert len(seen) >= 11
    assert all(s.startswith("200 ") for s in seen), seen
    assert log.problems() == {}


def test_api_docs_page_is_offline_too(live_server: str, page) -> None:
    pg, log = page
    pg.goto(f"{live_server}/docs", wait_until="networkidle")
    pg.wait_for_selector(".swagger-ui .opblock")
    assert "/grids/locate" in pg.inner_text(".swagger-ui")
    screenshot(pg, "api-docs")
    assert log.problems() == {}
