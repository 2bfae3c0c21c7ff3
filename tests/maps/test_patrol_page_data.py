"""The patrol page writes each layer's geometries once, straight from shapely's GeoJSON text:
the data in the page must be exactly the frames' features (properties with quotes and
placeholder-like text included), and the map is fitted before any layer is drawn."""

from __future__ import annotations

import json
import re
from datetime import date

import geopandas as gpd
import numpy as np
import shapely

from maps.patrol import patrol_page_html


def _layers(page: str) -> list[dict]:
    """Every FeatureCollection the page adds to a GeoJSON layer, in page order."""
    out = []
    for m in re.finditer(r"geo_json_\w+_add\(", page):
        obj, _ = json.JSONDecoder().raw_decode(page[m.end() :])
        out.append(obj)
    return out


def test_layer_data_are_the_frames_features() -> None:
    x0, y0 = 113.55, 34.80
    cell = shapely.box(x0, y0, x0 + 0.002, y0 + 0.002)
    grids = gpd.GeoDataFrame(
        {"code": ["a", "b"], "name": ["一", "二"], "minutes": [12.0, 0.0],
         "distance_m": [800.0, 0.0], "workers": [1, 0], "patrolled": [True, False]},
        geometry=[cell, shapely.affinity.translate(cell, 0.002)],
        crs=4326,
    )  # fmt: skip
    tricky = '"geometry": {"coordinates": 0, "type": "@"}'  # looks like the placeholder
    tracks = gpd.GeoDataFrame(
        {"id": [1, 2], "staff_name": ['王"五', tricky], "distance_m": [420.0, 80.0]},
        geometry=[
            shapely.MultiLineString([[(x0, y0), (x0 + 0.001, y0 + 0.001), (x0 + 0.003, y0)]]),
            shapely.MultiLineString([[(x0 + 0.001, y0), (x0 + 0.001, y0 + 0.002)]]),
        ],
        crs=4326,
    )
    uncovered = gpd.GeoDataFrame(
        {"length_m": [55.5]}, geometry=[shapely.LineString([(x0, y0), (x0, y0 + 0.0005)])], crs=4326
    )
    page = patrol_page_html(date(2026, 10, 27), grids, tracks, uncovered)
    grid_fc, track_fc, unc_fc = _layers(page)
    rounded = shapely.transform(tracks.geometry.to_numpy(), lambda xy: np.round(xy, 5))
    assert [f["geometry"] for f in track_fc["features"]] == [
        json.loads(shapely.to_geojson(g)) for g in rounded
    ]
    # the property that mimics a placeholder stays text; the quote survives (HTML-escaped)
    assert [f["properties"]["staff_name"] for f in track_fc["features"]] == [
        "王&quot;五",
        tricky.replace('"', "&quot;"),
    ]
    assert [f["properties"]["distance_m"] for f in track_fc["features"]] == [420.0, 80.0]
    assert [f["properties"]["code"] for f in grid_fc["features"]] == ["a", "b"]
    assert [f["geometry"]["type"] for f in grid_fc["features"]] == ["Polygon", "Polygon"]
    assert unc_fc["features"][0]["properties"] == {"length_m": 55.5}
    assert unc_fc["features"][0]["geometry"]["coordinates"] == [[x0, y0], [x0, y0 + 0.0005]]
    # fitted before the first layer is added (Leaflet projects the tracks once)
    assert page.index(".fitBounds(") < page.index("geo_json_")
