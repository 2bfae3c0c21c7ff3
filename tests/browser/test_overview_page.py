"""The overview dashboard (领导驾驶舱总览) in real Chromium, served by the app over the
fixture district; its PDF/PNG export.

``live_server`` (tests/conftest.py) is the app under uvicorn on 127.0.0.1; it serves the page
at ``/maps/overview`` and the vendored assets at ``/static/vendor/...``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from gis.db.queries.network import build_isochrones, load_demo_network
from maps.style import LEVEL_LABEL
from tests.browser.conftest import SCREENSHOTS, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]

CARDS = (
    "事件总数",
    "处置率",
    "按时办结率",
    "群众满意度",
    "小事不出格",
    "巡查覆盖率",
    "服务圈覆盖率",
)


def _count_by_level(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT level, count(*) FROM grids GROUP BY level")).all()
    return {str(level): int(n) for level, n in rows}


@pytest.fixture(scope="module")
def circles(engine: Engine) -> Iterator[int]:
    """Walking network and isochrones committed for the live server; removed afterwards."""
    with Session(engine) as s, s.begin():
        load_demo_network(s)
        n = int(build_isochrones(s)["isochrones"])
    yield n
    with Session(engine) as s, s.begin():
        s.execute(text("DELETE FROM isochrones"))
        s.execute(text("DELETE FROM network_edges"))
        s.execute(text("DELETE FROM network_nodes"))
        s.execute(text("DELETE FROM wangge_meta WHERE key = 'network'"))


def test_overview_page_shows_layers_offline(
    live_server: str, page, session: Session, circles: int
) -> None:
    """Cards, the map with every layer and its legend, the small maps and the charts."""
    pg, log = page
    counts = _count_by_level(session)
    assert counts.get("micro", 0) > 0 and counts.get("community", 0) > 0
    n_stations = session.execute(text("SELECT count(*) FROM stations")).scalar()
    total = session.execute(text("SELECT count(*) FROM incidents")).scalar()
    resp = pg.goto(f"{live_server}/maps/overview", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector("#wg-map-slot .leaflet-container")
    pg.wait_for_selector("path.leaflet-interactive")

    cards = pg.inner_text("#wangge-cards")
    for label in CARDS:
        assert label in cards
    assert f"{total:,}" in cards and "微网格" in cards

    control = pg.inner_text(".leaflet-control-layers")
    for level in counts:
        assert LEVEL_LABEL[level] in control
    for name in ("事件热力图", "巡查状态", "15分钟服务圈", "服务站点"):
        assert name in control

    # one SVG path per grid, in the pane of its level; micro grids hidden at start
    for level, n in counts.items():
        paths = pg.locator(f".leaflet-wangge-{level}-pane svg path.leaflet-interactive")
        assert paths.count() == (0 if level == "micro" else n), level
    n_visible = sum(n for level, n in counts.items() if level != "micro")
    # grid outlines and one circle per station; patrol and service layers start hidden
    assert pg.locator("path.leaflet-interactive").count() == n_visible + n_stations
    assert pg.locator("canvas.leaflet-heatmap-layer").count() == 1

    overlays = pg.locator(".leaflet-control-layers-overlays label")
    overlays.filter(has_text="微网格").locator("input").check()
    assert (
        pg.locator(".leaflet-wangge-micro-pane path.leaflet-interactive").count()
        == (counts["micro"])
    )
    overlays.filter(has_text="巡查状态").locator("input").check()
    shown = n_visible + n_stations + 2 * counts["micro"]
    assert pg.locator("path.leaflet-interactive").count() == shown

    legend = pg.inner_text("#wangge-legend")
    assert "网格与事件热力" in legend and "事件热力图" in legend and "服务站点" in legend
    assert "底图：无底图（离线）" in legend
    # the legend lies inside the map, the map inside its panel
    box = pg.locator("#wg-map-slot").bounding_box()
    lbox = pg.locator("#wangge-legend").bounding_box()
    assert box and lbox and box["height"] > 500
    assert box["x"] <= lbox["x"] and lbox["y"] + lbox["height"] <= box["y"] + box["height"]
    # the small maps: micro grids by patrol status, buildings by walking band; the charts
    assert pg.locator("#wangge-patrol svg.wg-smallmap path").count() >= counts["micro"]
    assert pg.locator("svg.wg-smallmap").count() == 2
    assert pg.locator("svg.wg-chart").count() >= 3
    assert pg.locator("#wangge-table tbody tr").count() == counts["community"]
    assert "重点户走访" in pg.inner_text("#wangge-patrol")
    # the service circles: one dot per building on the small map, the card has a share
    n_buildings = session.execute(text("SELECT count(*) FROM buildings")).scalar()
    assert pg.locator("#wangge-service svg.wg-smallmap circle").count() == n_buildings
    assert "15 分钟步行可达户数" in cards
    overlays.filter(has_text="15分钟服务圈").locator("input").check()
    assert pg.locator("path.leaflet-interactive").count() == shown + circles // 3
    shot = screenshot(pg, "overview")
    assert shot.stat().st_size > 20_000
    assert log.problems() == {}


def test_overview_base_map_switch_reloads_with_amap(live_server: str, page) -> None:
    """The base-map menu reloads the page; AMap tiles are outside requests (blocked and
    recorded here), and the legend says the overlays were shifted into GCJ-02."""
    pg, log = page
    pg.goto(f"{live_server}/maps/overview", wait_until="networkidle")
    with pg.expect_navigation(wait_until="load"):
        pg.select_option('#wangge-base select[name="base"]', "amap")
    assert "base=amap" in pg.url
    pg.wait_for_selector("#wangge-legend")
    assert "高德地图（GCJ-02，叠加图层已转换）" in pg.inner_text("#wangge-legend")
    assert log.outside_requests and all("autonavi.com" in u for u in log.outside_requests)
    assert 'href="/maps/overview.pdf?base=amap"' in pg.content()


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


def test_overview_exports_pdf_and_png(live_server: str, auth_headers: dict[str, str]) -> None:
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    for fmt, magic, kind in (
        ("pdf", b"%PDF-", "application/pdf"),
        ("png", b"\x89PNG", "image/png"),
    ):
        with urlopen(Request(f"{live_server}/maps/overview.{fmt}", headers=auth_headers),
                     timeout=120) as r:  # fmt: skip
            body = r.read()
            assert r.status == 200 and r.headers["content-type"] == kind
            assert "attachment" in r.headers["content-disposition"]
        assert body.startswith(magic) and len(body) > 50_000
        (SCREENSHOTS / f"overview-export.{fmt}").write_bytes(body)
    with pytest.raises(HTTPError) as err:
        urlopen(f"{live_server}/maps/overview.pdf", timeout=60)
    assert err.value.code in (401, 403)
    err.value.close()
