"""The grid overview page (网格总览): grid outlines per level and the incident heatmap."""

from __future__ import annotations

import html

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Element

from maps.assets import ASSET_BASE, local_map
from maps.layers import grid_outline_layer, heat_layer
from maps.style import LEVEL_LABEL, LEVEL_ORDER, LEVEL_STYLE


def _legend(title: str, levels: list[str], n_heat: int, total: int) -> str:
    rows = "".join(
        f'<div><span style="display:inline-block;width:18px;border-top:3px solid '
        f'{LEVEL_STYLE[lv]["color"]};margin-right:6px"></span>{LEVEL_LABEL[lv]}</div>'
        for lv in levels
    )
    return (
        '<div id="wangge-legend" style="position:fixed;top:12px;left:60px;z-index:1000;'
        "background:rgba(255,255,255,.92);padding:8px 12px;border-radius:6px;"
        'font:13px sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f"<b>{html.escape(title)}</b>{rows}"
        f"<div>事件热力图：{n_heat:,} 个网格单元，共 {total:,} 件事件</div></div>"
    )


def build_overview(
    grids: gpd.GeoDataFrame,
    heat: pd.DataFrame,
    *,
    title: str = "网格总览",
    asset_base: str = ASSET_BASE,
) -> str:
    """The full HTML page, with every asset served from ``asset_base`` (no CDN).

    Parameters
    ----------
    grids
        Columns code, name, level, households and geometry (EPSG:4326).
    heat
        Aggregated incident cells: lon, lat, weight.
    """
    frame = grids.to_crs(4326)
    m = local_map(asset_base=asset_base, control_scale=True, prefer_canvas=False)
    levels = [lv for lv in LEVEL_ORDER if (frame["level"] == lv).any()]
    for level in levels:
        grid_outline_layer(frame, level).add_to(m)
    heat_layer(heat, asset_base=asset_base).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    if len(frame):
        minx, miny, maxx, maxy = frame.total_bounds
        m.fit_bounds([[miny, minx], [maxy, maxx]])
    total = int(heat["weight"].sum()) if len(heat) else 0
    m.get_root().html.add_child(Element(_legend(title, levels, len(heat), total)))
    m.get_root().title = title
    return m.get_root().render()
