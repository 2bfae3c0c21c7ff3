"""The service-circle page (服务圈): stations by kind, walking isochrones, uncovered buildings."""

from __future__ import annotations

import html
import logging

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Element

from maps.assets import ASSET_BASE, local_map, render_offline
from maps.basemaps import BaseMap, add_base_map, base_map, base_map_note, shift_frame
from maps.layers import fit_bounds

log = logging.getLogger(__name__)

DEFAULT_CENTER = (34.80, 113.55)
#: Band colours and Chinese names: 5分钟近邻互助圈, 10分钟生活服务圈, 15分钟便民圈.
BAND_STYLE: dict[int, tuple[str, str]] = {
    5: ("#1a9850", "5分钟近邻互助圈"),
    10: ("#fdae61", "10分钟生活服务圈"),
    15: ("#4575b4", "15分钟便民圈"),
}
KIND_COLOURS = ("#d73027", "#7b3294", "#008837", "#e66101", "#0571b0", "#636363")
OUTSIDE_COLOUR = "#b2182b"


def _kind_colours(kinds: list[str]) -> dict[str, str]:
    return {k: KIND_COLOURS[i % len(KIND_COLOURS)] for i, k in enumerate(sorted(set(kinds)))}


def _legend(
    title: str,
    kind_counts: dict[str, int],
    colours: dict[str, str],
    summary: pd.DataFrame,
    n_outside: int,
    note: str = "",
) -> str:
    rows = []
    overall = summary[summary["scope"] == "overall"].set_index("minutes") if len(summary) else None
    for minutes, (colour, label) in BAND_STYLE.items():
        share = ""
        if overall is not None and minutes in overall.index:
            r = overall.loc[minutes]
            share = f"：步行覆盖 {r['share']:.1%} 户（直线 {r['share_straight']:.1%}）"
        rows.append(
            f'<div class="wangge-legend-row"><span style="display:inline-block;width:18px;'
            f"height:10px;margin-right:6px;background:{colour};opacity:.5;border:1px solid "
            f'{colour}"></span>{html.escape(label)}{share}</div>'
        )
    for kind, n in kind_counts.items():
        rows.append(
            f'<div class="wangge-legend-row"><span style="display:inline-block;width:10px;'
            f'height:10px;border-radius:5px;margin-right:6px;background:{colours[kind]}">'
            f"</span>{html.escape(kind)}（{n} 个）</div>"
        )
    rows.append(
        f'<div class="wangge-legend-row"><span style="display:inline-block;width:10px;'
        f'height:10px;margin-right:6px;background:{OUTSIDE_COLOUR}"></span>'
        f"15分钟圈外楼栋（{n_outside:,} 栋）</div>"
    )
    if note:
        rows.append(f'<div class="wangge-legend-row" style="color:#666">{html.escape(note)}</div>')
    return (
        '<div id="wangge-legend" style="position:fixed;bottom:44px;left:10px;z-index:1000;'
        "background:rgba(255,255,255,.93);padding:8px 12px;border-radius:6px;"
        'font:13px/1.6 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f'<div style="font-size:15px;font-weight:bold;margin-bottom:2px">{html.escape(title)}'
        f"</div>{''.join(rows)}</div>"
    )


def build_service_page(
    stations: gpd.GeoDataFrame,
    isochrones: gpd.GeoDataFrame,
    summary: pd.DataFrame,
    outside: gpd.GeoDataFrame,
    *,
    title: str = "15分钟便民生活圈",
    base: BaseMap | None = None,
    asset_base: str = ASSET_BASE,
) -> str:
    """The full offline HTML page of the service circles.

    Parameters
    ----------
    stations
        Points (EPSG:4326) with station_id, kind, name.
    isochrones
        Polygons (EPSG:4326) with station_id, kind, name, minutes.
    summary
        Coverage rows (see :class:`gis.service_coverage.Coverage`); the overall shares go in
        the legend.
    outside
        Buildings (EPSG:4326) beyond the 15-minute circle, with building_id and households.
    base
        Base map (default none: offline); AMap/Tencent shift every overlay into GCJ-02.
    """
    for need, frame in (("station_id", stations), ("minutes", isochrones)):
        if len(frame) and need not in frame.columns:
            raise ValueError(f"missing column {need!r}")
    base = base or base_map("none")
    stations, isochrones, outside = (
        shift_frame(f, base) if len(f) else f for f in (stations, isochrones, outside)
    )
    m = local_map(DEFAULT_CENTER, zoom_start=14, asset_base=asset_base, control_scale=True)
    add_base_map(m, base)
    colours = _kind_colours(stations["kind"].tolist() if len(stations) else [])
    for minutes in sorted(BAND_STYLE, reverse=True):
        colour, label = BAND_STYLE[minutes]
        group = folium.FeatureGroup(name=label, show=True)
        part = isochrones[isochrones["minutes"] == minutes] if len(isochrones) else isochrones
        if len(part):
            folium.GeoJson(
                part[["station_id", "name", "minutes", "geometry"]].to_json(),
                style_function=lambda _f, c=colour: {
                    "color": c,
                    "weight": 1,
                    "fillColor": c,
                    "fillOpacity": 0.18,
                },
                tooltip=folium.GeoJsonTooltip(["name", "minutes"], aliases=["站点", "分钟"]),
            ).add_to(group)
        group.add_to(m)
    out_group = folium.FeatureGroup(name="15分钟圈外楼栋", show=True)
    if len(outside):
        folium.GeoJson(
            outside[["building_id", "households", "geometry"]].to_json(),
            style_function=lambda _f: {
                "color": OUTSIDE_COLOUR,
                "weight": 1,
                "fillColor": OUTSIDE_COLOUR,
                "fillOpacity": 0.7,
            },
            tooltip=folium.GeoJsonTooltip(["building_id", "households"], aliases=["楼栋", "户数"]),
        ).add_to(out_group)
    out_group.add_to(m)
    kind_counts: dict[str, int] = {}
    for kind in sorted(colours):
        group = folium.FeatureGroup(name=f"站点：{kind}", show=True)
        part = stations[stations["kind"] == kind]
        kind_counts[kind] = len(part)
        for r in part.itertuples():
            folium.CircleMarker(
                [r.geometry.y, r.geometry.x],
                radius=7,
                color="#fff",
                weight=2,
                fill=True,
                fill_color=colours[kind],
                fill_opacity=1.0,
                tooltip=html.escape(f"{r.name}（{kind}）"),
            ).add_to(group)
        group.add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    frames = [f for f in (isochrones, stations) if len(f)]
    if frames:
        b = pd.concat([f.geometry for f in frames]).total_bounds
        fit_bounds(m, [[float(b[1]), float(b[0])], [float(b[3]), float(b[2])]])
    m.get_root().html.add_child(
        Element(_legend(title, kind_counts, colours, summary, len(outside), base_map_note(base))),
        name="wangge_legend",
    )
    m.get_root().title = html.escape(title)
    page = render_offline(m, asset_base=asset_base)
    log.info(
        "service page: %d stations, %d isochrones, %d kB",
        len(stations),
        len(isochrones),
        len(page) // 1024,
    )
    return page
