"""The hotspot page in real Chromium over the fixture district, filtered to its planted
hotspot: Gi* layer, emerging layer, Chinese legend, filter form, nothing from outside."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import geopandas as gpd
import pytest

from maps.hotspots import EMERGING_LAYER, GI_COLOURS, GI_LAYER
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]


def test_hotspots_page_shows_classes_offline(
    live_server: str, page, fixture_district: Path
) -> None:
    pg, log = page
    h = gpd.read_file(fixture_district / "district.gpkg", layer="hotspots").iloc[0]
    start = date.fromisoformat(h["start"][:10])
    query = {
        "category": h["category"],
        "start": start.isoformat(),
        "end": (start + timedelta(days=30)).isoformat(),  # a month into the hotspot
    }
    resp = pg.goto(f"{live_server}/maps/hotspots?{urlencode(query)}", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.wait_for_selector("path.leaflet-interactive")

    control = pg.inner_text(".leaflet-control-layers")
    assert GI_LAYER in control and EMERGING_LAYER in control
    # one path per micro grid; the emerging layer starts hidden
    assert pg.locator("path.leaflet-interactive").count() == 20
    hot_fill = [GI_COLOURS[c] for c in ("热点99%", "热点95%", "热点90%")]
    n_hot = sum(pg.locator(f'path.leaflet-interactive[fill="{c}"]').count() for c in hot_fill)
    assert n_hot >= 1
    assert pg.locator('path.leaflet-interactive[stroke-width="3"]').count() == 1  # the core

    legend = pg.inner_text("#wangge-legend")
    for text in (
        "事件热点分析",
        h["category"],
        "热点99%",
        "不显著",
        "冷点99%",
        "热点核心",
        "新兴热点",
    ):
        assert text in legend, text

    shot = screenshot(pg, "hotspots")
    assert shot.stat().st_size > 20_000
    overlays = pg.locator(".leaflet-control-layers-overlays label")
    overlays.filter(has_text=EMERGING_LAYER).locator("input").check()
    assert pg.locator("path.leaflet-interactive").count() > 20
    assert "零星热点" in legend or "新增热点" in legend or "连续热点" in legend
    screenshot(pg, "hotspots_emerging")

    # the filter form reloads the page for all categories, keeping the period
    pg.select_option("#wangge-filter select[name=category]", "")
    with pg.expect_navigation(wait_until="networkidle"):
        pg.click("#wangge-filter button[type=submit]")
    sent = parse_qs(urlparse(pg.url).query, keep_blank_values=True)
    assert sent["category"] == [""] and sent["start"] == [query["start"]]
    assert "全部类别" in pg.inner_text("#wangge-legend")
    assert pg.locator("path.leaflet-interactive").count() >= 20
    assert log.problems() == {}
