"""Structural checks of the overview page: layers, legend, bounds, and no outside URL."""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from maps.assets import FILES, LOCAL, STATIC_DIR, install_assets
from maps.layers import MAX_HEAT_ROWS, aggregate_cells
from maps.overview import build_overview


@pytest.fixture(scope="module")
def grids(fixture_district: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(fixture_district / "district.gpkg", layer="grids")


def test_page_has_a_layer_per_level_heat_and_legend(grids: gpd.GeoDataFrame) -> None:
    heat = pd.DataFrame({"lon": [113.55, 113.551], "lat": [34.80, 34.801], "weight": [5, 2]})
    page = build_overview(grids, heat, title="测试总览")
    for label in ("街道/办事处", "社区", "三级网格", "微网格", "专属网格", "事件热力图"):
        assert f'"{label}"' in page or f">{label}<" in page or label in page
    assert page.count("L.geoJson(") == 5
    assert "L.heatLayer(" in page and "测试总览" in page and "共 7 件事件" in page
    minx, miny, maxx, maxy = grids.total_bounds
    assert f"[{miny}, {minx}], [{maxy}, {maxx}]" in page


def test_page_references_only_local_assets_that_are_installed(
    grids: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    page = build_overview(grids, pd.DataFrame(columns=["lon", "lat", "weight"]))
    assert re.findall(r"https?://", page) == []
    installed = install_assets(Path("node_modules"), tmp_path / "vendor")
    assert installed
    for ref in re.findall(r'(?:src|href)="/static/vendor/([^"]+)"', page):
        target = (tmp_path / "vendor" / ref).resolve()
        if ref.startswith("../"):
            target = STATIC_DIR / ref[3:]
        assert target.exists(), ref


def test_every_folium_asset_has_a_local_copy() -> None:
    mapped = {p for p in LOCAL.values() if p and not p.startswith("../")}
    assert mapped <= set(FILES)


def test_heat_is_aggregated_above_the_cap() -> None:
    n = MAX_HEAT_ROWS + 10
    pts = pd.DataFrame({"lon": 113.55 + (pd.RangeIndex(n) % 100) * 1e-5, "lat": 34.8, "weight": 1})
    cells = aggregate_cells(pts)
    assert len(cells) < 10 and cells["weight"].sum() == n
