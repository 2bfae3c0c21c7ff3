"""The leadership dashboards in real Chromium, served by the app over the fixture district:
layers and legend present, no console error, nothing fetched from outside 127.0.0.1."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from maps.style import LEVEL_LABEL
from tests.browser.conftest import SCREENSHOTS, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]


def _levels(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT level, count(*) FROM grids GROUP BY level")).all()
    return {str(level): int(n) for level, n in rows}


def test_incidents_page_in_chromium(live_server: str, page, session: Session) -> None:
    pg, log = page
    counts = _levels(session)
    resp = pg.goto(f"{live_server}/maps/incidents?period=month", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector(".leaflet-container")
    pg.wait_for_selector(".leaflet-overlay-pane path.leaflet-interactive")

    control = pg.inner_text(".leaflet-control-layers")
    assert "事件热力图" in control
    for level in counts:
        assert f"{LEVEL_LABEL[level]}·事件分布" in control
    # the 三级网格 choropleth is on at start: one filled path per grid
    assert pg.locator("path.leaflet-interactive").count() == counts["grid"]
    # heatmap.js canvas and the time slider with one step per month
    assert pg.locator(".leaflet-overlay-pane canvas").count() >= 1
    slider = pg.inner_text(".leaflet-control-timecontrol.timecontrol-date")
    assert "年" in slider and "月" in slider
    pg.locator(".leaflet-control-timecontrol.timecontrol-forward").click()
    assert pg.inner_text(".leaflet-control-timecontrol.timecontrol-date") != slider

    legend = pg.inner_text("#wangge-legend")
    assert "事件态势图" in legend and "事件数" in legend and "底图：无底图（离线）" in legend
    # switch the colouring to incidents per 1,000 households: fills and legend follow
    before = pg.locator("path.leaflet-interactive").first.get_attribute("fill")
    pg.locator('input[name="wg-metric"][value="rate"]').check()
    assert pg.locator("body[data-metric=rate]").count() == 1
    assert "每千户事件数" in pg.inner_text("#wangge-legend")
    fills = {
        pg.locator("path.leaflet-interactive").nth(i).get_attribute("fill")
        for i in range(counts["grid"])
    }
    assert before and fills and len(fills) > 1

    # a click on a grid opens its popup with its numbers and latest incidents
    pg.locator("path.leaflet-interactive").first.click(force=True)
    pg.wait_for_selector(".leaflet-popup-content .wg-pop")
    # the popup fades in (leaflet-fade-anim): shoot it when it is fully drawn
    pg.wait_for_function(
        "getComputedStyle(document.querySelector('.leaflet-popup')).opacity === '1'"
    )
    popup = pg.inner_text(".leaflet-popup-content")
    assert "事件" in popup and "每千户" in popup and ("最近事件" in popup or "最近无事件" in popup)
    shot = screenshot(pg, "dashboard-incidents")
    assert shot.stat().st_size > 20_000
    assert log.problems() == {}


def test_incidents_page_filters_in_chromium(live_server: str, page, session: Session) -> None:
    pg, log = page
    n = session.execute(text("SELECT count(*) FROM incidents WHERE source = '热线'")).scalar()
    assert n
    pg.goto(f"{live_server}/maps/incidents?source=热线&period=week", wait_until="networkidle")
    pg.wait_for_selector("#wangge-legend")
    legend = pg.inner_text("#wangge-legend")
    assert f"共 {n:,} 件事件" in legend and "来源：热线" in legend and "按周" in legend
    assert pg.locator('#wangge-filters select[name="source"]').input_value() == "热线"
    # the filter form reloads the page with the chosen status
    pg.select_option('#wangge-filters select[name="status"]', "reported")
    with pg.expect_navigation(wait_until="networkidle"):
        pg.click("#wangge-filters button")
    assert "status=reported" in pg.url and "状态：已上报" in pg.inner_text("#wangge-legend")
    assert log.problems() == {}


def test_briefing_page_in_chromium(live_server: str, page, session: Session) -> None:
    pg, log = page
    n_comm = _levels(session)["community"]
    resp = pg.goto(f"{live_server}/maps/briefing", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector("#wg-map-slot .leaflet-container")
    cards = pg.locator("#wangge-cards .wg-card")
    assert cards.count() == 7
    text_ = pg.inner_text("#wangge-cards")
    for label in ("事件总数", "处置率", "按时办结率", "群众满意度", "小事不出格", "巡查覆盖率"):
        assert label in text_
    total = session.execute(text("SELECT count(*) FROM incidents")).scalar()
    assert f"{total:,}" in text_
    assert pg.locator("#wg-map-slot path.leaflet-interactive").count() == n_comm
    assert "社区·事件数" in pg.inner_text(".leaflet-control-layers", timeout=2000) or (
        pg.locator(".leaflet-control-layers").count() == 1
    )
    assert "社区事件数" in pg.inner_text("#wangge-legend")
    assert pg.locator("svg.wg-chart").count() == 3
    assert pg.locator("svg.wg-chart rect").count() > 10
    assert pg.locator("#wangge-table tbody tr").count() == n_comm
    box = pg.locator("#wg-map-slot .leaflet-container").bounding_box()
    assert box is not None and box["height"] > 300
    shot = screenshot(pg, "dashboard-briefing")
    assert shot.stat().st_size > 20_000
    assert log.problems() == {}


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    from urllib.error import HTTPError
    from urllib.request import Request, urlopen

    try:
        with urlopen(Request(url, headers=headers), timeout=90) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except HTTPError as exc:
        return exc.code, {}, exc.read()


def test_briefing_exports_pdf_and_png(live_server: str, auth_headers: dict[str, str]) -> None:
    for fmt, magic, kind in (
        ("pdf", b"%PDF-", "application/pdf"),
        ("png", b"\x89PNG", "image/png"),
    ):
        status, headers, body = _get(f"{live_server}/maps/briefing.{fmt}", auth_headers)
        assert status == 200, body[:300]
        assert headers["content-type"] == kind
        assert body.startswith(magic) and len(body) > 20_000
        assert "attachment" in headers["content-disposition"]
        (SCREENSHOTS / f"dashboard-briefing-export.{fmt}").write_bytes(body)
    assert _get(f"{live_server}/maps/briefing.pdf", {})[0] in (401, 403)
