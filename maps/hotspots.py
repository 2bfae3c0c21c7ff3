"""The hotspot page (热点分析): micro grids by Gi* class and emerging-hotspot pattern.

Hot classes are reds and cold classes blues, as in ArcGIS *Hot Spot Analysis*; the emerging
patterns are a second layer. A small form filters by category and period (query
parameters, so a link reproduces the view). Every asset is served locally.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element

from gis.hotspots import EMERGING_LABELS, GI_CLASSES, NO_DATA, summarise
from maps.assets import ASSET_BASE, local_map, render_offline
from maps.basemaps import BASE_NAMES, BaseMap, add_base_map, base_map, base_map_note, shift_frame
from maps.layers import fit_bounds

log = logging.getLogger(__name__)

DEFAULT_CENTER = (34.80, 113.55)
GI_LAYER = "Gi* 热点分析"
EMERGING_LAYER = "新兴热点"
CORE_LABEL = "热点核心（本网格事件数高于均值1个标准差）"
#: Gi* class -> fill colour (hot reds, cold blues, light grey not significant).
GI_COLOURS: dict[str, str] = {
    "热点99%": "#d62f27",
    "热点95%": "#ed7551",
    "热点90%": "#fab984",
    "不显著": "#f2f2f2",
    "冷点90%": "#abd9e9",
    "冷点95%": "#74add1",
    "冷点99%": "#4575b4",
    NO_DATA: "#bdbdbd",
}
#: Emerging pattern key -> colour; "none" is not drawn.
EMERGING_COLOURS: dict[str, str] = {
    "new_hot": "#67001f",
    "consecutive_hot": "#d6604d",
    "intensifying_hot": "#e31a1c",
    "persistent_hot": "#fd8d3c",
    "diminishing_hot": "#fed976",
    "sporadic_hot": "#c994c7",
    "oscillating_hot": "#8c6bb1",
    "historical_hot": "#bcbddc",
    "new_cold": "#053061",
    "consecutive_cold": "#2166ac",
    "intensifying_cold": "#4393c3",
    "persistent_cold": "#92c5de",
    "diminishing_cold": "#d1e5f0",
    "sporadic_cold": "#66c2a4",
    "oscillating_cold": "#238b45",
    "historical_cold": "#ccece6",
}
GI_COLUMNS = ("code", "name", "count", "gi_z", "gi_p", "gi_class", "gi_core", "geometry")
COORD_DECIMALS = 6


def _swatch(colour: str, *, border: str = "#666") -> str:
    return (
        '<span style="display:inline-block;width:16px;height:10px;margin-right:6px;'
        f'vertical-align:middle;background:{colour};border:1px solid {border}"></span>'
    )


def _props(frame: gpd.GeoDataFrame, columns: Sequence[str]) -> gpd.GeoDataFrame:
    """Escaped text (tooltips write innerHTML), rounded numbers and coordinates."""
    data: dict[str, list[object]] = {}
    for col in columns:
        values = frame[col].tolist()
        if pd.api.types.is_bool_dtype(frame[col]):
            data[col] = ["是" if v else "否" for v in values]
        elif pd.api.types.is_float_dtype(frame[col]):
            data[col] = [None if not np.isfinite(v) else round(float(v), 3) for v in values]
        elif pd.api.types.is_integer_dtype(frame[col]):
            data[col] = [int(v) for v in values]
        else:
            data[col] = [html.escape(str(v)) for v in values]
    geoms = shapely.transform(
        np.asarray(frame.geometry.values), lambda xy: np.round(xy, COORD_DECIMALS)
    )
    return gpd.GeoDataFrame(pd.DataFrame(data), geometry=geoms, crs=4326)


BASE_LABELS = {
    "none": "无（离线）",
    "osm": "OSM",
    "tianditu": "天地图",
    "amap": "高德",
    "tencent": "腾讯",
}


def _form(
    categories: Sequence[str],
    category: str | None,
    start: str,
    end: str,
    weeks: int,
    base: BaseMap | None = None,
) -> str:
    options = ['<option value="">全部类别</option>'] + [
        f'<option value="{html.escape(c)}"{" selected" if c == category else ""}>'
        f"{html.escape(c)}</option>"
        for c in categories
    ]
    field = "margin:2px 0;font:12px sans-serif"
    chosen = base.name if base is not None else "none"
    base_opts = "".join(
        f'<option value="{b}"{" selected" if b == chosen else ""}>{BASE_LABELS.get(b, b)}</option>'
        for b in BASE_NAMES
    )
    return (
        '<form id="wangge-filter" method="get" style="margin:4px 0 6px">'
        f'<label>事件类别 <select name="category" style="{field}">{"".join(options)}</select>'
        "</label><br>"
        f'<label>起 <input type="date" name="start" value="{html.escape(start)}" '
        f'style="{field}"></label> '
        f'<label>止 <input type="date" name="end" value="{html.escape(end)}" '
        f'style="{field}"></label><br>'
        f'<label>新兴热点周数 <input type="number" name="weeks" min="3" max="52" '
        f'value="{weeks}" style="width:48px;{field}"></label> '
        f'<label>底图 <select name="base" style="{field}">{base_opts}</select></label> '
        '<button type="submit" style="font:12px sans-serif">查询</button></form>'
    )


def _legend(
    title: str,
    subtitle: str,
    gi_counts: dict[str, int],
    n_core: int,
    emerging_counts: dict[str, int],
    emerging_title: str,
    form: str,
    note: str = "",
) -> str:
    rows = [f'<div style="font-weight:bold;margin-top:4px">{html.escape(GI_LAYER)}（置信度）</div>']
    for cls, n in gi_counts.items():
        rows.append(
            f'<div class="wangge-legend-row">{_swatch(GI_COLOURS[cls])}'
            f"{html.escape(cls)}（{n} 个微网格）</div>"
        )
    rows.append(
        f'<div class="wangge-legend-row">{_swatch("transparent", border="#000")}'
        f"{html.escape(CORE_LABEL)}：{n_core} 个</div>"
    )
    rows.append(f'<div style="font-weight:bold;margin-top:4px">{html.escape(emerging_title)}</div>')
    shown = {k: n for k, n in emerging_counts.items() if n}
    if not shown:
        rows.append('<div class="wangge-legend-row">无新兴热点或冷点</div>')
    for key, n in shown.items():
        rows.append(
            f'<div class="wangge-legend-row">{_swatch(EMERGING_COLOURS[key])}'
            f"{html.escape(EMERGING_LABELS[key])}（{n} 个）</div>"
        )
    if note:
        rows.append(f'<div class="wangge-legend-row" style="color:#666">{html.escape(note)}</div>')
    return (
        '<div id="wangge-legend" style="position:fixed;bottom:44px;left:10px;z-index:1000;'
        "max-height:calc(100vh - 140px);overflow:auto;background:rgba(255,255,255,.94);"
        "padding:8px 12px;"
        'border-radius:6px;font:13px/1.5 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f'<div style="font-size:15px;font-weight:bold">{html.escape(title)}</div>'
        f'<div style="color:#555">{html.escape(subtitle)}</div>'
        f"{form}{''.join(rows)}</div>"
    )


def build_hotspot_page(
    gi: gpd.GeoDataFrame,
    emerging: gpd.GeoDataFrame | None = None,
    *,
    title: str = "事件热点分析",
    category: str | None = None,
    categories: Sequence[str] = (),
    start: str = "",
    end: str = "",
    weeks: int = 8,
    base: BaseMap | None = None,
    asset_base: str = ASSET_BASE,
) -> str:
    """The full offline HTML page of the hotspot analysis.

    Parameters
    ----------
    gi
        Micro grids from :func:`gis.hotspots.gi_star` (EPSG:4326 or any CRS) with code,
        name, count, gi_z, gi_p, gi_class, gi_core.
    emerging
        Micro grids from :func:`gis.hotspots.emerging_hotspots` with code, name, pattern,
        pattern_label, hot_weeks, trend_z; ``attrs["weeks"]`` names the weeks. None: no
        emerging layer content (the layer is still listed, empty).
    category, categories
        The category shown (None: all) and the choices of the filter form.
    start, end
        The period shown, as ``YYYY-MM-DD`` (for the subtitle and the form).
    weeks
        Weeks of the emerging-hotspot analysis (for the form).
    base
        Base map (default none: offline); AMap/Tencent shift the grids into GCJ-02.

    Returns
    -------
    str
        The page with the layers 'Gi* 热点分析' and '新兴热点' in a layer control, the
        legend and the filter form.
    """
    missing = set(GI_COLUMNS) - set(gi.columns)
    if missing:
        raise ValueError(f"gi needs columns {GI_COLUMNS}; missing {sorted(missing)}")
    base = base or base_map("none")
    frame = shift_frame(gi, base)
    m = local_map(
        DEFAULT_CENTER,
        zoom_start=14,
        asset_base=asset_base,
        control_scale=True,
        zoom_snap=0.25,  # fit the district snugly, not at the next whole zoom level out
    )
    add_base_map(m, base)
    gi_group = folium.FeatureGroup(name=GI_LAYER, show=True)
    if len(frame):
        data = _props(frame, [c for c in GI_COLUMNS if c != "geometry"])
        folium.GeoJson(
            data.to_json(drop_id=True),
            style_function=lambda f: {
                "color": "#000" if f["properties"]["gi_core"] == "是" else "#888",
                "weight": 3 if f["properties"]["gi_core"] == "是" else 0.6,
                "fillColor": GI_COLOURS.get(f["properties"]["gi_class"], "#bdbdbd"),
                "fillOpacity": 0.75,
            },
            highlight_function=lambda _f: {"weight": 3, "color": "#f39c12"},
            tooltip=folium.GeoJsonTooltip(
                ["name", "code", "count", "gi_z", "gi_p", "gi_class", "gi_core"],
                aliases=["微网格", "编码", "事件数", "Gi* z值", "p值", "分类", "热点核心"],
            ),
        ).add_to(gi_group)
    gi_group.add_to(m)
    em_group = folium.FeatureGroup(name=EMERGING_LAYER, show=False)
    emerging_counts: dict[str, int] = {}
    emerging_title = "新兴热点"
    if emerging is not None and len(emerging):
        em = shift_frame(emerging, base)
        emerging_counts = summarise(em["pattern"].tolist(), list(EMERGING_COLOURS))
        bins = em.attrs.get("weeks") or []
        if bins:
            emerging_title = f"新兴热点（近{len(bins)}周：{bins[0]} 起）"
        part = em[em["pattern"] != "none"]
        if len(part):
            data = _props(
                part, ["name", "code", "pattern", "pattern_label", "hot_weeks", "trend_z"]
            )
            folium.GeoJson(
                data.to_json(drop_id=True),
                style_function=lambda f: {
                    "color": EMERGING_COLOURS.get(f["properties"]["pattern"], "#999"),
                    "weight": 4,
                    "dashArray": "8 4",
                    "fillColor": EMERGING_COLOURS.get(f["properties"]["pattern"], "#999"),
                    "fillOpacity": 0.35,
                },
                tooltip=folium.GeoJsonTooltip(
                    ["name", "code", "pattern_label", "hot_weeks", "trend_z"],
                    aliases=["微网格", "编码", "模式", "热点周数", "趋势z值"],
                ),
            ).add_to(em_group)
    em_group.add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    if len(frame):
        minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
        fit_bounds(m, [[miny, minx], [maxy, maxx]])
    gi_counts = summarise(frame["gi_class"].tolist(), GI_CLASSES)
    if (frame["gi_class"] == NO_DATA).any():
        gi_counts[NO_DATA] = int((frame["gi_class"] == NO_DATA).sum())
    period = f"{start or '最早'} 至 {end or '最新'}"
    subtitle = f"{category or '全部类别'}，{period}，共 {int(frame['count'].sum()):,} 件"
    legend = _legend(
        title,
        subtitle,
        gi_counts,
        int(frame["gi_core"].sum()),
        emerging_counts,
        emerging_title,
        _form(categories, category, start, end, weeks, base),
        base_map_note(base),
    )
    m.get_root().html.add_child(Element(legend), name="wangge_legend")
    m.get_root().title = html.escape(title)
    page = render_offline(m, asset_base=asset_base)
    log.info("hotspot page: %d grids, %d kB", len(frame), len(page) // 1024)
    return page
