"""The patrol page (巡查地图): a day's cleaned tracks, each micro grid coloured by its patrol
status, and the streets no track came within 20 m of."""

from __future__ import annotations

import html
import logging
from datetime import date

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element

from maps.assets import ASSET_BASE, local_map, render_offline
from maps.layers import COORD_DECIMALS

log = logging.getLogger(__name__)

DEFAULT_CENTER = (34.80, 113.55)
#: Grid status colours: patrolled (已巡查), touched only briefly (巡查不足), not entered (未巡查).
STATUS_STYLE: dict[str, tuple[str, str]] = {
    "patrolled": ("#1a9850", "已巡查（≥10分钟）"),
    "short": ("#fee08b", "巡查不足"),
    "none": ("#d73027", "未巡查"),
}
TRACK_COLOUR = "#2c7fb8"
UNCOVERED_COLOUR = "#7b3294"


def _status(minutes: float, patrolled: bool) -> str:
    if patrolled:
        return "patrolled"
    return "short" if minutes > 0 else "none"


def _legend(day: date, counts: dict[str, int], n_tracks: int, share: float | None) -> str:
    rows = []
    for key, (colour, label) in STATUS_STYLE.items():
        rows.append(
            f'<div class="wangge-legend-row"><span style="display:inline-block;width:18px;'
            f"height:10px;margin-right:6px;background:{colour};opacity:.6;border:1px solid "
            f'{colour}"></span>{html.escape(label)}（{counts.get(key, 0)} 个微网格）</div>'
        )
    rows.append(
        f'<div class="wangge-legend-row"><span style="display:inline-block;width:18px;'
        f'height:3px;margin:0 6px 3px 0;background:{TRACK_COLOUR}"></span>'
        f"巡查轨迹（{n_tracks} 条）</div>"
    )
    cover = f"，街道覆盖 {share:.1%}" if share is not None else ""
    rows.append(
        f'<div class="wangge-legend-row"><span style="display:inline-block;width:18px;'
        f'height:3px;margin:0 6px 3px 0;background:{UNCOVERED_COLOUR}"></span>'
        f"未覆盖街道（20米内无轨迹{cover}）</div>"
    )
    title = f"巡查地图 {day.isoformat()}"
    return (
        '<div id="wangge-legend" style="position:fixed;bottom:44px;left:10px;z-index:1000;'
        "background:rgba(255,255,255,.93);padding:8px 12px;border-radius:6px;"
        'font:13px/1.6 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f'<div style="font-size:15px;font-weight:bold;margin-bottom:2px">{html.escape(title)}'
        f"</div>{''.join(rows)}</div>"
    )


def _rounded(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Coordinates to ~0.1 m: the page stays small (a district's day of tracks is ~1 MB)."""
    if not len(frame):
        return frame
    out = frame.copy()
    out.geometry = shapely.transform(
        out.geometry.to_numpy(), lambda xy: np.round(xy, COORD_DECIMALS)
    )
    return out


def patrol_page_html(
    day: date,
    grids: gpd.GeoDataFrame,
    tracks: gpd.GeoDataFrame,
    uncovered: gpd.GeoDataFrame,
    *,
    street_share: float | None = None,
    asset_base: str = ASSET_BASE,
) -> str:
    """The full offline HTML page.

    Parameters
    ----------
    grids
        Micro grids (EPSG:4326) with code, name, minutes, distance_m, workers, patrolled.
    tracks
        Cleaned tracks of the day (EPSG:4326 lines) with id, staff_name, distance_m.
    uncovered
        Uncovered street parts (EPSG:4326 lines) with length_m.
    """
    m = local_map(DEFAULT_CENTER, zoom_start=14, asset_base=asset_base, control_scale=True)
    grids, tracks, uncovered = (_rounded(f) for f in (grids, tracks, uncovered))
    counts: dict[str, int] = {}
    if len(grids):
        g = grids.copy()
        g["status"] = [
            _status(float(a), bool(b)) for a, b in zip(g["minutes"], g["patrolled"], strict=True)
        ]
        counts = g["status"].value_counts().to_dict()
        g["minutes"] = g["minutes"].astype(float).round(1)
        g["distance_m"] = g["distance_m"].astype(float).round(0)
        group = folium.FeatureGroup(name="微网格巡查状态", show=True)
        folium.GeoJson(
            g[["code", "name", "minutes", "distance_m", "workers", "status", "geometry"]].to_json(),
            style_function=lambda f: {
                "color": "#555",
                "weight": 1,
                "fillColor": STATUS_STYLE[f["properties"]["status"]][0],
                "fillOpacity": 0.35,
            },
            tooltip=folium.GeoJsonTooltip(
                ["name", "minutes", "distance_m", "workers"],
                aliases=["网格", "巡查分钟", "巡查距离(米)", "网格员"],
            ),
        ).add_to(group)
        group.add_to(m)
    t_group = folium.FeatureGroup(name="巡查轨迹", show=True)
    if len(tracks):
        folium.GeoJson(
            tracks[["id", "staff_name", "distance_m", "geometry"]].to_json(),
            style_function=lambda _f: {"color": TRACK_COLOUR, "weight": 2, "opacity": 0.8},
            tooltip=folium.GeoJsonTooltip(
                ["staff_name", "distance_m"], aliases=["网格员", "距离(米)"]
            ),
        ).add_to(t_group)
    t_group.add_to(m)
    u_group = folium.FeatureGroup(name="未覆盖街道", show=True)
    if len(uncovered):
        folium.GeoJson(
            uncovered[["length_m", "geometry"]].to_json(),
            style_function=lambda _f: {"color": UNCOVERED_COLOUR, "weight": 3, "opacity": 0.9},
            tooltip=folium.GeoJsonTooltip(["length_m"], aliases=["未覆盖长度(米)"]),
        ).add_to(u_group)
    u_group.add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    frames = [f for f in (grids, tracks) if len(f)]
    if frames:
        b = pd.concat([f.geometry for f in frames]).total_bounds
        m.fit_bounds([[float(b[1]), float(b[0])], [float(b[3]), float(b[2])]])
    m.get_root().html.add_child(
        Element(_legend(day, counts, len(tracks), street_share)), name="wangge_legend"
    )
    m.get_root().title = f"巡查地图 {day.isoformat()}"
    page = render_offline(m, asset_base=asset_base)
    log.info("patrol page %s: %d tracks, %d kB", day, len(tracks), len(page) // 1024)
    return page
