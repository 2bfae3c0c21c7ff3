"""The overview page (领导驾驶舱总览): KPI cards, the grid map, small maps and charts.

:func:`build_overview` draws the grid outlines per level with the incident heatmap. Given an
:class:`OverviewPanel` it becomes the leadership overview: seven KPI cards (counts, 处置率,
按时办结率, 满意度, 小事不出格, 巡查覆盖率, 服务圈覆盖率), the map (with the day's patrol status
and the 15-minute service circles as extra layers), two small maps drawn as inline SVG
(micro grids by patrol status, buildings by walking band: no tiles, they print), charts and
the community table, with links to its PDF/PNG export.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element

from maps.assets import ASSET_BASE, local_map, render_offline
from maps.basemaps import BaseMap, add_base_map, base_map, base_map_note, shift_frame, shift_points
from maps.layers import COORD_DECIMALS, add_panes, fit_bounds, grid_outline_layer, heat_layer
from maps.style import HEAT_GRADIENT, HEAT_LABEL, LEVEL_ORDER, LEVEL_STYLE, LEVELS, level_label

log = logging.getLogger(__name__)

GRID_COLUMNS = ("code", "name", "level", "households", "geometry")
# Where the map opens when there is no grid to fit (郑州高新区, the demo district).
DEFAULT_CENTER = (34.80, 113.55)
#: Patrol status of a micro grid on a day (the rule of gis.patrol: ≥ 10 minutes inside).
PATROL_STYLE: dict[str, tuple[str, str]] = {
    "patrolled": ("#1a9850", "已巡查（≥10分钟）"),
    "short": ("#fee08b", "巡查不足"),
    "none": ("#d73027", "未巡查"),
}
#: Walking band of a building (minutes) -> colour and label; None: beyond every band.
BAND_STYLE: dict[int | None, tuple[str, str]] = {
    5: ("#1a9850", "5分钟内"),
    10: ("#91cf60", "10分钟内"),
    15: ("#fee08b", "15分钟内"),
    None: ("#d73027", "15分钟圈外"),
}
PATROL_LAYER = "巡查状态"
SERVICE_LAYER = "15分钟服务圈"
STATION_LAYER = "服务站点"
SIMPLIFY_DEG = 0.00003  # about 3 m: isochrone outlines on a district map


@dataclass
class OverviewPanel:
    """What the leadership overview shows around the map (all aggregated on the server).

    kpis
        :func:`gis.db.queries.dashboards.kpi_summary` (district row first, then communities).
    trend, by_category
        :func:`~gis.db.queries.dashboards.period_counts` and ``counts_by(.., "category")``.
    patrol
        ``day`` (ISO date or None), ``grids`` (micro grids), ``patrolled`` (≥ 10 minutes
        inside that day), ``visits_due`` / ``visits_made`` (key households this week).
    patrol_grids
        Micro grids (EPSG:4326) with ``status`` (patrolled / short / none) for the day.
    patrol_days
        Per day of the week up to the day: ``day``, ``patrolled`` (micro grids).
    service
        ``minutes`` (band, None when not computed), ``households``, ``covered`` (on foot),
        ``covered_straight`` (straight line).
    service_bands
        Per band: ``minutes``, ``share`` (on foot), ``share_straight``.
    buildings
        Buildings (EPSG:4326 points or polygons) with ``band`` (5/10/15 or NaN: outside).
    isochrones, stations
        The largest band's isochrones (polygons) and the stations (points, ``name``,
        ``kind``), EPSG:4326.
    communities
        Community grids (EPSG:4326; ``name``) for the outlines of the small maps.
    """

    kpis: pd.DataFrame
    trend: pd.DataFrame
    by_category: pd.DataFrame
    patrol: Mapping[str, Any]
    service: Mapping[str, Any]
    patrol_grids: gpd.GeoDataFrame | None = None
    patrol_days: pd.DataFrame | None = None
    service_bands: pd.DataFrame | None = None
    buildings: gpd.GeoDataFrame | None = None
    isochrones: gpd.GeoDataFrame | None = None
    stations: gpd.GeoDataFrame | None = None
    communities: gpd.GeoDataFrame | None = None
    period: str = "month"
    subtitle: str = ""
    export_links: bool = True
    export_query: str = ""  # the page's query string, repeated on the export links
    bases: Sequence[str] = field(default_factory=lambda: ("none", "osm", "tianditu", "amap"))


def _legend(
    title: str,
    counts: dict[str, int],
    n_cells: int,
    n_incidents: int,
    *,
    extra: Sequence[str] = (),
    embedded: bool = False,
) -> str:
    """The title and legend box, in Chinese (fixed on the page, or inside the map slot)."""
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
    rows.extend(extra)
    where = (
        "position:absolute;bottom:22px;left:8px;z-index:1000;font:12px/1.5 sans-serif"
        if embedded
        else "position:fixed;bottom:44px;left:10px;z-index:1000;font:13px/1.6 sans-serif"
    )
    return (
        f'<div id="wangge-legend" style="{where};'
        "background:rgba(255,255,255,.93);padding:8px 12px;border-radius:6px;"
        'box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f'<div style="font-size:15px;font-weight:bold;margin-bottom:2px">{html.escape(title)}'
        f"</div>{''.join(rows)}</div>"
    )


def _swatch_row(colour: str, label: str, *, line: bool = False, dot: bool = False) -> str:
    shape = (
        f"height:3px;margin:0 6px 3px 0;background:{colour}"
        if line
        else f"width:10px;height:10px;border-radius:5px;margin-right:6px;background:{colour}"
        if dot
        else f"height:10px;margin-right:6px;background:{colour};opacity:.7;border:1px solid #666"
    )
    width = "" if dot else "width:18px;"
    return (
        f'<div class="wangge-legend-row"><span style="display:inline-block;{width}'
        f'vertical-align:middle;{shape}"></span>{label}</div>'
    )


def _rounded(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda xy: np.round(xy, COORD_DECIMALS))


def _patrol_layer(frame: gpd.GeoDataFrame, day: str | None) -> folium.FeatureGroup:
    """Micro grids filled by their patrol status of ``day`` (starts hidden)."""
    group = folium.FeatureGroup(name=f"{PATROL_LAYER}（{day or '无轨迹'}）", show=False)
    if not len(frame):
        return group
    data = gpd.GeoDataFrame(
        {
            "name": [html.escape(str(v)) for v in frame["name"]],
            "status": [PATROL_STYLE[s][1] for s in frame["status"]],
            "fill": [PATROL_STYLE[s][0] for s in frame["status"]],
            "minutes": [round(float(v), 1) for v in frame["minutes"]],
        },
        geometry=_rounded(frame.geometry.to_numpy()),
        crs=4326,
    )
    folium.GeoJson(
        data.to_json(drop_id=True),
        style_function=lambda f: {
            "color": "#666",
            "weight": 0.6,
            "fillColor": f["properties"]["fill"],
            "fillOpacity": 0.45,
        },
        tooltip=folium.GeoJsonTooltip(
            ["name", "status", "minutes"], aliases=["微网格", "巡查状态", "巡查分钟"]
        ),
    ).add_to(group)
    return group


def _service_layers(
    isochrones: gpd.GeoDataFrame | None, stations: gpd.GeoDataFrame | None, minutes: Any
) -> list[folium.FeatureGroup]:
    """The largest band's isochrones (hidden at start) and the stations."""
    circles = folium.FeatureGroup(name=SERVICE_LAYER, show=False)
    if isochrones is not None and len(isochrones):
        geoms = shapely.simplify(isochrones.geometry.to_numpy(), SIMPLIFY_DEG)
        data = gpd.GeoDataFrame(
            {"name": [html.escape(str(v)) for v in isochrones["name"]]},
            geometry=_rounded(geoms),
            crs=4326,
        )
        folium.GeoJson(
            data.to_json(drop_id=True),
            style_function=lambda _f: {
                "color": "#4575b4",
                "weight": 1,
                "fillColor": "#4575b4",
                "fillOpacity": 0.12,
            },
            tooltip=folium.GeoJsonTooltip(["name"], aliases=[f"{minutes}分钟步行圈·站点"]),
        ).add_to(circles)
    points = folium.FeatureGroup(name=STATION_LAYER, show=True)
    if stations is not None and len(stations):
        for r in stations.itertuples():
            folium.CircleMarker(
                [round(r.geometry.y, COORD_DECIMALS), round(r.geometry.x, COORD_DECIMALS)],
                radius=5,
                color="#fff",
                weight=1.5,
                fill=True,
                fill_color="#2c3e50",
                fill_opacity=1.0,
                tooltip=html.escape(f"{r.name}（{r.kind}）"),
            ).add_to(points)
    return [circles, points]


def build_overview(
    grids: gpd.GeoDataFrame,
    heat: pd.DataFrame,
    *,
    title: str = "网格总览",
    panel: OverviewPanel | None = None,
    base: BaseMap | None = None,
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
    panel
        The leadership overview around the map (cards, small maps, charts, table); None
        gives the map alone, full screen.
    base
        Base map (default none: offline); AMap/Tencent shift every overlay into GCJ-02.
    asset_base
        URL prefix of the vendored JS/CSS (the app serves ``maps/static`` at ``/static``).

    Returns
    -------
    str
        The page: one layer per grid level present (named in Chinese), the incident heat
        layer (事件热力图), with a panel the patrol-status, service-circle and station layers,
        a layer control and the legend, fitted to the grids' bounds.
    """
    missing = set(GRID_COLUMNS) - set(grids.columns)
    if missing:
        msg = f"grids need columns {GRID_COLUMNS}; missing {sorted(missing)}"
        raise ValueError(msg)
    base = base or base_map("none")
    frame = shift_frame(grids, base)
    frame = frame[~frame.geometry.is_empty & frame.geometry.notna()]
    if base.shifts and len(heat):
        lon, lat = shift_points(heat["lon"], heat["lat"], base)
        heat = heat.assign(lon=lon, lat=lat)
    # SVG paths (prefer_canvas=False): crisp outlines, and each grid is an element to test
    extra: dict[str, Any] = {"width": "100%", "height": "100%"} if panel is not None else {}
    m = local_map(
        DEFAULT_CENTER,
        zoom_start=13,
        asset_base=asset_base,
        control_scale=True,
        zoom_snap=0.25,  # fit the district snugly, not at the next whole zoom level out
        **extra,
    )
    add_base_map(m, base)
    levels = [*LEVEL_ORDER, *sorted(set(frame["level"]) - set(LEVEL_ORDER))]
    counts = {lv: int((frame["level"] == lv).sum()) for lv in levels}
    counts = {lv: n for lv, n in counts.items() if n}
    panes = add_panes(m, list(counts))
    for level in counts:
        grid_outline_layer(frame, level, pane=panes[level]).add_to(m)
    heat_layer(heat, asset_base=asset_base).add_to(m)
    legend_extra: list[str] = []
    if panel is not None:
        pg = panel.patrol_grids
        if pg is not None and len(pg):
            _patrol_layer(shift_frame(pg, base), panel.patrol.get("day")).add_to(m)
        iso = shift_frame(panel.isochrones, base) if panel.isochrones is not None else None
        st = shift_frame(panel.stations, base) if panel.stations is not None else None
        for layer in _service_layers(iso, st, panel.service.get("minutes")):
            layer.add_to(m)
        legend_extra = [
            _swatch_row(
                "#2c3e50", f"{STATION_LAYER}（{0 if st is None else len(st)} 个）", dot=True
            ),
            _swatch_row("#4575b4", f"{SERVICE_LAYER}（图层控制中打开）"),
            _swatch_row(PATROL_STYLE["patrolled"][0], f"{PATROL_LAYER}（图层控制中打开）"),
            f'<div class="wangge-legend-row" style="color:#666">{html.escape(base_map_note(base))}'
            "</div>",
        ]
    elif not base.offline:
        legend_extra = [f'<div class="wangge-legend-row">{html.escape(base_map_note(base))}</div>']
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    if len(frame):
        minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
        fit_bounds(m, [[miny, minx], [maxy, maxx]])
    elif len(heat):
        fit_bounds(
            m,
            [
                [float(heat["lat"].min()), float(heat["lon"].min())],
                [float(heat["lat"].max()), float(heat["lon"].max())],
            ],
        )
    n_incidents = round(float(heat["weight"].sum())) if len(heat) else 0
    # legend from the street office down to micro grids, then dedicated grids
    top_down = sorted(counts, key=lambda lv: LEVELS.index(lv) if lv in LEVELS else len(LEVELS))
    legend_counts = {lv: counts[lv] for lv in top_down}
    legend = _legend(
        "网格与事件热力" if panel is not None else title,
        legend_counts,
        len(heat),
        n_incidents,
        extra=legend_extra,
        embedded=panel is not None,
    )
    root = m.get_root()
    if panel is None:
        root.html.add_child(Element(legend), name="wangge_legend")
    else:
        _add_panel(m, panel, title=title, legend=legend, base=base)
    root.title = html.escape(title)
    page = render_offline(m, asset_base=asset_base)
    log.info(
        "overview page: %d grids in %d levels, %d heat cells, %d kB",
        len(frame),
        len(counts),
        len(heat),
        len(page) // 1024,
    )
    return page


# ------------------------------------------------------------------------- the panel


def svg_small_map(
    layers: Sequence[tuple[np.ndarray, Sequence[str], Mapping[str, Any]]],
    *,
    bounds: tuple[float, float, float, float],
    width: int = 380,
    height: int = 300,
    css_class: str = "wg-smallmap",
) -> str:
    """A static map as inline SVG: each layer is (WGS84 geometries, fill colours, style).

    Longitude is scaled by cos(latitude) so the map is not stretched; polygons become
    paths, points small circles (style ``r``). Prints crisply and needs no tiles.
    """
    minx, miny, maxx, maxy = bounds
    lat0 = np.radians((miny + maxy) / 2)
    kx = np.cos(lat0)
    span_x, span_y = max((maxx - minx) * kx, 1e-9), max(maxy - miny, 1e-9)
    pad = 6
    scale = min((width - 2 * pad) / span_x, (height - 2 * pad) / span_y)
    ox = pad + ((width - 2 * pad) - span_x * scale) / 2
    oy = pad + ((height - 2 * pad) - span_y * scale) / 2

    def xy(coords: np.ndarray) -> np.ndarray:
        x = ox + (coords[:, 0] - minx) * kx * scale
        y = oy + (maxy - coords[:, 1]) * scale
        return np.round(np.column_stack([x, y]), 1)

    parts = [
        f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for geoms, fills, style in layers:
        stroke = style.get("stroke", "#666")
        sw = style.get("stroke_width", 0.5)
        opacity = style.get("fill_opacity", 0.8)
        r = style.get("r", 1.6)
        geoms = np.asarray(geoms, dtype=object)
        fills = np.asarray(fills, dtype=object)
        is_point = shapely.get_type_id(geoms) == 0  # Point (a missing geometry gives -1)
        if is_point.any():  # all points of the layer at once
            pts = xy(shapely.get_coordinates(geoms[is_point]))
            parts.extend(
                f'<circle cx="{px:g}" cy="{py:g}" r="{r}" fill="{f}"/>'
                for (px, py), f in zip(pts, fills[is_point], strict=True)
            )
        for geom, fill in zip(geoms[~is_point], fills[~is_point], strict=True):
            if geom is None or geom.is_empty:
                continue
            d = []
            for poly in shapely.get_parts(geom):
                rings = [poly.exterior, *poly.interiors] if poly.geom_type == "Polygon" else [poly]
                for ring in rings:
                    pts = xy(np.asarray(ring.coords))
                    d.append("M" + "L".join(f"{a:g},{b:g}" for a, b in pts))
                    if poly.geom_type == "Polygon":
                        d[-1] += "Z"
            parts.append(
                f'<path d="{"".join(d)}" fill="{fill}" fill-opacity="{opacity}" '
                f'fill-rule="evenodd" stroke="{stroke}" stroke-width="{sw}"/>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _pct(num: float, den: float) -> str:
    return f"{num / den:.1%}" if den else "—"


def _key(items: Sequence[tuple[str, str]]) -> str:
    return " ".join(
        f'<span class="wg-sw" style="background:{c}"></span>{html.escape(t)}' for c, t in items
    )


def _patrol_panel(panel: OverviewPanel, bounds: tuple[float, float, float, float]) -> str:
    from maps.briefing import column_chart_svg

    pg = panel.patrol_grids
    day = panel.patrol.get("day")
    layers = []
    counts: dict[str, int] = {}
    if pg is not None and len(pg):
        layers.append((pg.geometry.to_numpy(), [PATROL_STYLE[s][0] for s in pg["status"]], {}))
        counts = pg["status"].value_counts().to_dict()
    if panel.communities is not None and len(panel.communities):
        n = len(panel.communities)
        layers.append(
            (
                panel.communities.geometry.to_numpy(),
                ["none"] * n,
                {"stroke": "#333", "stroke_width": 1.2},
            )
        )
    small = svg_small_map(layers, bounds=bounds) if layers else "<p>暂无巡查轨迹</p>"
    key = _key(
        [(PATROL_STYLE[k][0], f"{PATROL_STYLE[k][1]} {counts.get(k, 0)}") for k in PATROL_STYLE]
    )
    days = panel.patrol_days
    chart = ""
    if days is not None and len(days):
        labels = [str(d)[5:] for d in days["day"]]
        chart = column_chart_svg(
            labels, {"已巡查微网格": days["patrolled"].tolist()}, width=380, height=150
        )
    due, made = int(panel.patrol.get("visits_due", 0)), int(panel.patrol.get("visits_made", 0))
    visits = f"本周重点户走访：{made:,}/{due:,} 户（{_pct(made, due)}），不含个人信息"
    return (
        '<div class="wg-panel" id="wangge-patrol">'
        f"<h2>巡查覆盖（{html.escape(str(day or '无轨迹'))}）</h2>{small}"
        f'<div class="wg-key">{key}</div>'
        f'<div class="wg-key">{html.escape(visits)}</div>{chart}</div>'
    )


def _service_panel(panel: OverviewPanel, bounds: tuple[float, float, float, float]) -> str:
    from maps.briefing import column_chart_svg

    b = panel.buildings
    layers = []
    counts: dict[Any, int] = {}
    if panel.isochrones is not None and len(panel.isochrones):
        iso = shapely.simplify(panel.isochrones.geometry.to_numpy(), SIMPLIFY_DEG * 3)
        layers.append((iso, ["#4575b4"] * len(iso), {"stroke": "none", "fill_opacity": 0.08}))
    if b is not None and len(b):
        bands = [None if pd.isna(v) else int(v) for v in b["band"]]
        counts = pd.Series([str(v) for v in bands]).value_counts().to_dict()
        pts = shapely.point_on_surface(b.geometry.to_numpy())
        layers.append((pts, [BAND_STYLE.get(v, BAND_STYLE[None])[0] for v in bands], {"r": 1.4}))
    if panel.communities is not None and len(panel.communities):
        n = len(panel.communities)
        layers.append(
            (
                panel.communities.geometry.to_numpy(),
                ["none"] * n,
                {"stroke": "#333", "stroke_width": 1.2},
            )
        )
    small = svg_small_map(layers, bounds=bounds) if layers else "<p>尚未计算服务圈</p>"
    key = _key([(c, f"{t} {counts.get(str(k), 0):,} 栋") for k, (c, t) in BAND_STYLE.items()])
    sb = panel.service_bands
    chart = ""
    if sb is not None and len(sb):
        chart = column_chart_svg(
            [f"{int(v)}分钟" for v in sb["minutes"]],
            {
                "步行覆盖%": [round(100 * float(v), 1) for v in sb["share"]],
                "直线覆盖%": [round(100 * float(v), 1) for v in sb["share_straight"]],
            },
            colours=("#1a9850", "#bbbbbb"),
            width=380,
            height=150,
        )
    return (
        '<div class="wg-panel" id="wangge-service"><h2>服务圈覆盖（按步行时间）</h2>'
        f'{small}<div class="wg-key">{key}</div>{chart}</div>'
    )


_CSS = """
<style>
html,body{height:auto!important;min-height:100%;margin:0;background:#f4f5f7}
body{font:13px/1.5 "Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#222}
#wg-over{width:1240px;margin:0 auto;padding:12px 18px}
#wg-over h1{font-size:22px;margin:0 0 2px} .wg-sub{color:#666;margin-bottom:8px}
#wangge-cards{display:grid;grid-template-columns:repeat(7,1fr);gap:10px;margin-bottom:12px}
.wg-card{background:#fff;border-radius:6px;padding:8px 10px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
.wg-card .wg-k{color:#555;font-size:12px} .wg-card .wg-v{font-size:22px;font-weight:bold;
 color:#1f4e79} .wg-card .wg-n{color:#888;font-size:11px}
.wg-row{display:grid;gap:12px;margin-bottom:12px}
.wg-main{grid-template-columns:800px 1fr} .wg-three{grid-template-columns:repeat(3,1fr)}
.wg-panel{background:#fff;border-radius:6px;padding:8px 10px;box-shadow:0 1px 3px rgba(0,0,0,.15);
 min-width:0;overflow:hidden}
.wg-panel h2{font-size:14px;margin:0 0 6px}
#wg-map-slot{height:560px;position:relative}
#wg-map-slot .leaflet-control-layers{font-size:12px;line-height:1.3}
#wg-map-slot .leaflet-control-layers label{margin:0}
.wg-key{font-size:11px;color:#555} .wg-sw{display:inline-block;width:12px;height:10px;
 margin:0 3px 0 6px;vertical-align:middle;border:1px solid #999}
#wangge-table{border-collapse:collapse;width:100%;font-size:12px}
#wangge-table th,#wangge-table td{border-bottom:1px solid #e3e3e3;padding:3px 6px;text-align:right}
#wangge-table th:first-child,#wangge-table td:first-child{text-align:left}
.wg-tools{float:right;font-size:12px} .wg-tools a{margin-left:8px}
.wg-tools select{font-size:12px}
@media print{body{background:#fff} .wg-tools{display:none} #wg-over{padding:0}
 @page{size:A4 landscape;margin:8mm}}
</style>
"""


def _tools(panel: OverviewPanel, base: BaseMap) -> str:
    """Base-map switch (a GET form) and the export links."""
    labels = {
        "none": "无（离线）",
        "osm": "OSM",
        "tianditu": "天地图",
        "amap": "高德",
        "tencent": "腾讯",
    }
    opts = "".join(
        f'<option value="{b}"{" selected" if b == base.name else ""}>{labels.get(b, b)}</option>'
        for b in panel.bases
    )
    links = ""
    if panel.export_links:
        q = html.escape(f"?{panel.export_query}" if panel.export_query else "")
        links = (
            f'导出：<a href="/maps/overview.pdf{q}">PDF</a><a href="/maps/overview.png{q}">PNG</a>'
        )
    return (
        f'<span class="wg-tools"><form id="wangge-base" method="get" style="display:inline">'
        f'底图 <select name="base" onchange="this.form.submit()">{opts}</select></form> '
        f"{links}</span>"
    )


def _add_panel(
    m: folium.Map, panel: OverviewPanel, *, title: str, legend: str, base: BaseMap
) -> None:
    """Put the cards, the map (moved into its slot), small maps, charts and table on the page."""
    from maps.briefing import (
        _axis_label,
        _community_table,
        bar_chart_svg,
        column_chart_svg,
        kpi_cards,
    )

    kpis = panel.kpis
    total = kpis.iloc[0].to_dict() if len(kpis) else {}
    cards = kpi_cards(total, panel.patrol, panel.service)
    cards_html = "".join(
        f'<div class="wg-card"><div class="wg-k">{html.escape(k)}</div>'
        f'<div class="wg-v">{html.escape(v)}</div><div class="wg-n">{html.escape(n)}</div></div>'
        for k, v, n in cards
    )
    trend = panel.trend
    trend_svg = column_chart_svg(
        [_axis_label(p, panel.period, i == 0) for i, p in enumerate(trend["period"])],
        {"上报": trend["incidents"].tolist(), "已处置": trend["handled"].tolist()},
        width=370,
        height=200,
        max_labels=6,
    )
    cat = panel.by_category.head(8)
    cat_svg = bar_chart_svg([str(k) for k in cat["key"]], cat["incidents"].tolist(), width=370)
    geoms = [
        f.geometry for f in (panel.communities, panel.patrol_grids) if f is not None and len(f)
    ]
    if geoms:
        bounds = tuple(float(v) for v in pd.concat(geoms).total_bounds)
    else:
        bounds = (
            DEFAULT_CENTER[1] - 0.01,
            DEFAULT_CENTER[0] - 0.01,
            DEFAULT_CENTER[1] + 0.01,
            DEFAULT_CENTER[0] + 0.01,
        )
    body = (
        f'<div id="wg-over">{_tools(panel, base)}<h1>{html.escape(title)}</h1>'
        f'<div class="wg-sub">{html.escape(panel.subtitle)}</div>'
        f'<div id="wangge-cards">{cards_html}</div>'
        '<div class="wg-row wg-main"><div class="wg-panel"><div id="wg-map-slot">'
        f"{legend}</div></div>"
        f'<div class="wg-panel"><h2>事件趋势（按{"月" if panel.period == "month" else "周"}）</h2>'
        f"{trend_svg}<h2>主要事件类别</h2>{cat_svg}</div></div>"
        '<div class="wg-row wg-three">'
        f"{_patrol_panel(panel, bounds)}{_service_panel(panel, bounds)}"
        f'<div class="wg-panel"><h2>社区考核指标</h2>{_community_table(kpis)}</div></div></div>'
    )
    root = m.get_root()
    root.header.add_child(Element(_CSS), name="wangge_css")
    root.html.add_child(Element(body), name="wangge_overview")
    # the map's div is rendered after the page body: move it into its slot before the map
    # script (later in the same script block) creates the Leaflet map
    root.script.add_child(
        Element(
            "document.getElementById('wg-map-slot').prepend("
            f"document.getElementById('{m.get_name()}'));"
        ),
        name="wangge_slot",
    )
