"""Structural checks of the service-circle page: bands, station kinds, legend, offline."""

from __future__ import annotations

import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gis.crs import WGS84
from gis.isochrones import isochrones, isochrones_frame
from gis.network import attach_points, network_from_arrays
from gis.service_coverage import coverage
from maps.service import BAND_STYLE, build_service_page

ANY_URL = re.compile(r"""(src|href)=["']https?://""", re.IGNORECASE)
CRS = pyproj.CRS("EPSG:4547")


def _in_page(label: str, page: str) -> bool:
    """Layer names reach the page as JSON strings (escaped) or as HTML text."""
    return label in page or json.dumps(label)[1:-1] in page


def _scene():
    # A 1.2 km street with a side street; two stations; one building far away.
    x0, y0 = 500_000.0, 3_850_000.0  # about 114.0E, 34.8N
    nodes = np.array([[x0, y0], [x0 + 600, y0], [x0 + 1200, y0], [x0 + 600, y0 + 900]])
    net = network_from_arrays(CRS, nodes, [0, 1, 1], [1, 2, 3])
    st = gpd.GeoDataFrame(
        {"station_id": [1, 2], "kind": ["养老服务站", "便民服务站"], "name": ["甲站", "乙站"]},
        geometry=[shapely.Point(x0 + 100, y0 + 10), shapely.Point(x0 + 1100, y0 - 10)],
        crs=CRS,
    )
    bld = gpd.GeoDataFrame(
        {
            "building_id": [1, 2],
            "households": [30, 40],
            "residents": [80, 100],
            "grid": ["甲", "乙"],
        },
        geometry=[
            shapely.box(x0 + 300, y0 + 20, x0 + 320, y0 + 40),
            shapely.box(x0 + 620, y0 + 880, x0 + 640, y0 + 1500),
        ],
        crs=CRS,
    )
    att, ids = attach_points(net, st.geometry.to_numpy())
    iso = isochrones_frame(att, [1, 2], isochrones(att, ids))
    iso["name"] = iso["station_id"].map({1: "甲站", 2: "乙站"})
    iso["kind"] = iso["station_id"].map({1: "养老服务站", 2: "便民服务站"})
    cov = coverage(net, st, bld)
    return st.to_crs(WGS84), iso.drop(columns=["lines"]), cov


def test_page_has_bands_kinds_legend_and_no_outside_urls() -> None:
    st, iso, cov = _scene()
    outside = cov.outside(15)
    assert outside["building_id"].tolist() == [2]
    page = build_service_page(st, iso, cov.summary, outside)
    for label in [*(lb for _, lb in BAND_STYLE.values()), "站点：养老服务站", "站点：便民服务站"]:
        assert _in_page(label, page), label
    assert "Infinity" not in page
    assert "15分钟圈外楼栋（1 栋）" in page
    share = cov.summary.query("scope == 'overall' and minutes == 15")["share"].item()
    assert f"步行覆盖 {share:.1%}" in page
    assert not ANY_URL.search(page)


def test_empty_inputs_still_render() -> None:
    empty = gpd.GeoDataFrame(
        {"station_id": [], "kind": [], "name": [], "minutes": []}, geometry=[], crs=WGS84
    )
    page = build_service_page(empty, empty, pd.DataFrame(), empty)
    assert "15分钟便民圈" in page
