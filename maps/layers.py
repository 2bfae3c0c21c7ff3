"""Map layers built from GeoDataFrames: grid outlines per level and an incident heat layer."""

from __future__ import annotations

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium import plugins

from maps.assets import ASSET_BASE, localise
from maps.style import HEAT_GRADIENT, HEAT_LABEL, LEVEL_LABEL, LEVEL_STYLE

MAX_HEAT_ROWS = 50_000
HEAT_CELL_DEG = 0.00025  # about 25 m


def grid_outline_layer(grids: gpd.GeoDataFrame, level: str) -> folium.FeatureGroup:
    """Outlines of the grids of one level (EPSG:4326), with a tooltip of code, name and
    households."""
    layer = folium.FeatureGroup(name=LEVEL_LABEL.get(level, level), show=level != "micro")
    part = grids[grids["level"] == level][["code", "name", "households", "geometry"]]
    if len(part):
        style = LEVEL_STYLE.get(level, {})
        folium.GeoJson(
            part.to_crs(4326).to_json(),
            style_function=lambda _f, s=style: dict(s),
            tooltip=folium.GeoJsonTooltip(
                fields=["name", "code", "households"], aliases=["名称", "编码", "户数"]
            ),
        ).add_to(layer)
    return layer


def aggregate_cells(points: pd.DataFrame, cell_deg: float = HEAT_CELL_DEG) -> pd.DataFrame:
    """Sum weights on a square cell grid (cell centres): what a page can carry."""
    gx = np.floor(points["lon"].to_numpy() / cell_deg)
    gy = np.floor(points["lat"].to_numpy() / cell_deg)
    frame = pd.DataFrame({"gx": gx, "gy": gy, "weight": points["weight"].to_numpy()})
    agg = frame.groupby(["gx", "gy"], sort=True, as_index=False)["weight"].sum()
    return pd.DataFrame(
        {
            "lon": (agg["gx"] + 0.5) * cell_deg,
            "lat": (agg["gy"] + 0.5) * cell_deg,
            "weight": agg["weight"],
        }
    )


def heat_layer(points: pd.DataFrame, *, asset_base: str = ASSET_BASE) -> folium.FeatureGroup:
    """Incident heatmap from aggregated cells (columns lon, lat, weight; WGS84).

    Callers pass server-side aggregates, never raw incidents; above 50,000 rows the cells are
    aggregated again to about 25 m so that a page stays small.
    """
    if len(points) > MAX_HEAT_ROWS:
        points = aggregate_cells(points)
    layer = folium.FeatureGroup(name=HEAT_LABEL)
    top = float(points["weight"].max()) if len(points) else 1.0
    # folium wants [lat, lon]: the one place where the order flips.
    data = np.c_[points["lat"], points["lon"], points["weight"] / max(top, 1.0)].tolist()
    heat = plugins.HeatMap(data, radius=14, blur=18, min_opacity=0.25, gradient=HEAT_GRADIENT)
    localise(heat, asset_base)
    heat.add_to(layer)
    return layer
