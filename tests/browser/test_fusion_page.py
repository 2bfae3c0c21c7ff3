"""The 多网融合 page in real Chromium: upload another department's layer through the form,
get the crosswalk map with our grids, theirs, the slivers and the proposed changes."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from gis.crs import metric_crs_for
from gis.exchange import convert_geometries
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.db]


def _foreign_layer(engine: Engine, path: Path) -> int:
    """公安 grids: our 三级 grids of each community merged, shifted 4 m north-east, in BD-09."""
    with engine.connect() as conn:
        grids = gpd.read_postgis(
            text(
                "SELECT g.code, p.code AS parent, g.geom FROM grids g JOIN grids p "
                "ON p.id = g.parent_id WHERE g.level = 'grid' ORDER BY g.code"
            ),
            conn,
            geom_col="geom",
            crs=4326,
        )
    metric = grids.to_crs(metric_crs_for(grids))
    merged = metric.dissolve(by="parent").reset_index()
    merged = merged.set_geometry(merged.geometry.translate(4.0, 4.0))
    out = gpd.GeoDataFrame(
        {"code": [f"GA{i + 1:02d}" for i in range(len(merged))], "name": "公安责任区"},
        geometry=merged.to_crs(4326).geometry.values,
        crs=4326,
    )
    out["geometry"] = convert_geometries(out.geometry.values, "bd09", to="crs")
    out.to_file(path, driver="GeoJSON")
    return len(out)


def test_fusion_form_to_map(live_server: str, page, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pg, log = page
    n = _foreign_layer(engine, tmp_path / "gongan.geojson")
    resp = pg.goto(f"{live_server}/maps/fusion", wait_until="networkidle")
    assert resp is not None and resp.status == 200
    pg.fill("#department", "公安")
    pg.set_input_files("#file", str(tmp_path / "gongan.geojson"))
    pg.select_option("#crs", "bd09")
    pg.select_option("#level", "grid")
    with pg.expect_navigation(wait_until="networkidle"):
        pg.click("button[type=submit]")
    pg.wait_for_selector("path.leaflet-interactive")
    control = pg.inner_text(".leaflet-control-layers")
    for label in ("我方网格", "公安网格", "边界错位/细碎", "建议融合网格"):
        assert label in control
    legend = pg.inner_text("#wangge-legend")
    assert f"公安网格（{n} 个）" in legend
    rows = pg.locator("#fusion-changes tbody tr")
    assert rows.count() == n
    # each 公安 grid is one community's 三级 grids moved 4 m: kept, redrawn on our lines
    assert pg.locator('#fusion-changes tr[data-action="keep"]').count() == n
    with engine.connect() as conn:
        n_grids = conn.execute(text("SELECT count(*) FROM grids WHERE level='grid'")).scalar_one()
    # our grids + theirs + slivers + (hidden) fused: at least ours and theirs are drawn
    assert pg.locator("path.leaflet-interactive").count() >= n_grids + n
    # the slivers layer holds thin red pieces along the shifted community boundaries
    found = re.search(r"边界错位/细碎（(\d+) 处）", legend)
    assert found is not None and int(found.group(1)) >= 1
    red = pg.locator('path.leaflet-interactive[fill="#d62728"]').count()
    assert red == int(found.group(1))
    shot = screenshot(pg, "fusion")
    assert shot.stat().st_size > 20_000
    assert log.problems() == {}
