"""The grid overview page (网格总览): grid outlines per level and the incident heatmap."""

from __future__ import annotations

import html
import logging

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Element

from maps.assets import ASSET_BASE, local_map, render_offline
from maps.layers import add_panes, grid_outline_layer, heat_layer
from maps.style import HEAT_GRADIENT, HEAT_LABEL, LEVEL_ORDER, LEVEL_STYLE, LEVELS, level_label

log = logging.getLogger(__name__)

GRID_COLUMNS = ("code", "name", "level", "households", "geometry")
# Where the map opens when there is no grid to fit (郑州高新区, the demo district).
DEFAULT_CENTER = (34.80, 113.55)


def _legend(title: str, counts: dict[str, int], n_cells: int, n_incidents: int) -> str:
    """The fixed title and legend box, in Chinese."""
    rows = []
    for level, n in counts.items():
        style = LEVEL_STYLE.get(level, {})
        dash = "dashed" if style.get("dashArray") else "solid"
        rows.append(
            '<div class="wangge-legend-row"><span style="display:inline-block;width:22px;'
            f"margin-right:6px;vertical-align:middle;border-top:3px {dash} "
            f'{style.get("color", "#333")}"></span>{html.escape(level_label(level))}'
            f"（{n:,} 个）</div>"
        )
    stops = ",".join(HEAT_GRADIENT[k] for k in sorted(HEAT_GRADIENT))
    rows.append(
        '<div class="wangge-legend-row"><span style="display:inline-block;width:22px;height:8px;'
        f'margin-right:6px;vertical-align:middle;background:linear-gradient(90deg,{stops})">'
        f"</span>{HEAT_LABEL}：共 {n_incidents:,} 件事件（{n_cells:,} 个聚合点）</div>"
    )
    return (
        '<div id="wangge-legend" style="position:fixed;bottom:44px;left:10px;z-index:1000;'
        "background:rgba(255,255,255,.93);padding:8px 12px;border-radius:6px;"
        'font:13px/1.6 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f'<div style="font-size:15px;font-weight:bold;margin-bottom:2px">{html.escape(title)}'
        f"</div>{''.join(rows)}</div>"
    )


def build_overview(
    grids: gpd.GeoDataFrame,
    heat: pd.DataFrame,
    *,
    title: str = "网格总览",
    asset_base: str = ASSET_BASE,
) -> str:
    """The full HTML page of the grid overview, with every asset served from ``asset_base``.

    Parameters
    ----------
    grids
        Columns code, name, level ('street', 'community', 'grid', 'micro', 'dedicated'),
        parent_code, households, residents, geometry (EPSG:4326 MultiPolygons); the page uses
        code, name, level, households and geometry.
    heat
        Aggregated incident cells: lon, lat, weight (see :func:`maps.layers.heat_layer`).
    title
        Page title and heading of the legend box.
    asset_base
        URL prefix of the vendored JS/CSS (the app serves ``maps/static`` at ``/static``).

    Returns
    -------
    str
        The page: one layer per grid level present (named in Chinese), the incident heat
        layer (事件热力图), a layer control and the legend, fitted to the grids' bounds.
    """
    missing = set(GRID_COLUMNS) - set(grids.columns)
    if missing:
        msg = f"grids need columns {GRID_COLUMNS}; missing {sorted(missing)}"
        raise ValueError(msg)
    frame = grids if grids.crs is None else grids.to_crs(4326)
    frame = frame[~frame.geometry.is_empty & frame.geometry.notna()]
    # SVG paths (prefer_canvas=False): crisp outlines, and each grid is an element to test
    m = local_map(
        DEFAULT_CENTER,
        zoom_start=13,
        asset_base=asset_base,
        control_scale=True,
        zoom_snap=0.25,  # fit the district snugly, not at the next whole zoom level out
    )
    levels = [*LEVEL_ORDER, *sorted(set(frame["level"]) - set(LEVEL_ORDER))]
    counts = {lv: int((frame["level"] == lv).sum()) for lv in levels}
    counts = {lv: n for lv, n in counts.items() if n}
    panes = add_panes(m, list(counts))
    for level in counts:
        grid_outline_layer(frame, level, pane=panes[level]).add_to(m)
    heat_layer(heat, asset_base=asset_base).add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    if len(frame):
        minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
        m.fit_bounds([[miny, minx], [maxy, maxx]])
    elif len(heat):
        m.fit_bounds(
            [
                [float(heat["lat"].min()), float(heat["lon"].min())],
                [float(heat["lat"].max()), float(heat["lon"].max())],
            ]
        )
    n_incidents = round(float(heat["weight"].sum())) if len(heat) else 0
    # legend from the street office down to micro grids, then dedicated grids
    top_down = sorted(counts, key=lambda lv: LEVELS.index(lv) if lv in LEVELS else len(LEVELS))
    legend_counts = {lv: counts[lv] for lv in top_down}
    m.get_root().html.add_child(
        Element(_legend(title, legend_counts, len(heat), n_incidents)), name="wangge_legend"
    )
    m.get_root().title = html.escape(title)
    page = render_offline(m, asset_base=asset_base)
    log.info(
        "overview page: %d grids in %d levels, %d heat cells, %d kB",
        len(frame),
        len(counts),
        len(heat),
        len(page) // 1024,
    )
    return page
