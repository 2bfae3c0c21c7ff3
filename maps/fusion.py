"""The 多网融合 pages: the upload form and the crosswalk map (our grids, the other
department's grids, misaligned slivers and the proposed fused network, with the changes).

Both pages are offline: the form is plain HTML, the map a folium page whose assets are served
by the app (:func:`maps.assets.render_offline`).
"""

from __future__ import annotations

import html
import logging

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Element

from maps.assets import ASSET_BASE, local_map, outside_urls, render_offline
from maps.layers import COORD_DECIMALS
from maps.style import level_label

log = logging.getLogger(__name__)

DEFAULT_CENTER = (34.80, 113.55)
OURS_COLOUR = "#1f4e9c"
THEIRS_COLOUR = "#e67e22"
SLIVER_COLOUR = "#d62728"
FUSED_COLOUR = "#2ca02c"
MAX_TABLE_ROWS = 200
ACTION_LABEL = {"keep": "保留", "reshape": "调整边界", "absorb": "并入"}
DEPARTMENTS = ("综治", "城管", "公安", "卫健", "民政", "市场监管")

_FORM = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>多网融合 Grid fusion</title>
<style>
body{{font-family:"Noto Sans CJK SC",sans-serif;background:#f3f1ec;margin:0;padding:2em}}
form{{background:#fff;padding:1.5em 2em;border-radius:8px;box-shadow:0 2px 8px #0002;
max-width:34em}} label{{display:block;margin:.7em 0 .2em}}
input,select{{font-size:1em;padding:.3em}} button{{margin-top:1.2em;padding:.5em 1.5em;
font-size:1em;background:#1f4e9c;color:#fff;border:0;border-radius:4px}}
.hint{{color:#555;font-size:.9em}}
</style></head><body>
<form id="fusion-form" method="post" action="/maps/fusion" enctype="multipart/form-data">
<h1>多网融合 · 导入其他部门网格</h1>
<p class="hint">GeoJSON, GeoPackage, zipped Shapefile or KML; polygons, one per grid.</p>
<label for="department">部门 department</label>
<input id="department" name="department" list="departments" value="城管" maxlength="40">
<datalist id="departments">{departments}</datalist>
<label for="file">图层文件 layer file</label>
<input id="file" name="file" type="file" accept=".geojson,.json,.gpkg,.zip,.kml" required>
<label for="crs">坐标系 CRS of the file</label>
<select id="crs" name="crs"><option value="wgs84">WGS84</option>
<option value="cgcs2000">CGCS2000 (EPSG:4490)</option><option value="gcj02">GCJ-02 (高德/腾讯)
</option><option value="bd09">BD-09 (百度)</option></select>
<label for="level">对照我方层级 our level</label>
<select id="level" name="level">{levels}</select>
<label for="sliver_width_m">细碎阈值 sliver width (m)</label>
<input id="sliver_width_m" name="sliver_width_m" type="number" step="0.5" min="0" value="5">
<label for="sliver_share">错位阈值 sliver share</label>
<input id="sliver_share" name="sliver_share" type="number" step="0.01" min="0" max="0.5"
value="0.05">
<label><input type="checkbox" name="repair" value="true"> 修复无效几何 repair invalid geometry
(make_valid)</label>
<button type="submit">融合分析 Compute crosswalk</button>
</form></body></html>
"""


def fusion_form_page() -> str:
    """The upload form of the fusion page (no script, nothing from outside)."""
    levels = "".join(
        f'<option value="{lv}"{" selected" if lv == "grid" else ""}>{lv} {level_label(lv)}</option>'
        for lv in ("community", "grid", "micro")
    )
    departments = "".join(f'<option value="{d}">' for d in DEPARTMENTS)
    page = _FORM.format(levels=levels, departments=departments)
    if outside_urls(page):
        raise ValueError("fusion form links outside the app")
    return page


def _geojson(
    frame: gpd.GeoDataFrame, fields: list[str], aliases: list[str], style: dict, name: str
) -> folium.GeoJson:
    data = frame[[*fields, "geometry"]].copy()
    for f in fields:
        data[f] = [html.escape(str(v)) if v is not None else "" for v in data[f]]
    data = data.set_geometry(data.geometry.set_precision(10**-COORD_DECIMALS))
    return folium.GeoJson(
        data.to_json(drop_id=True),
        name=name,
        control=False,
        style_function=lambda _f, s=style: dict(s),
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases),
    )


def _table(changes: pd.DataFrame, department: str) -> str:
    rows = []
    for r in changes.head(MAX_TABLE_ROWS).itertuples(index=False):
        label = ACTION_LABEL.get(r.action, r.action)
        into = f" → {html.escape(str(r.into))}" if r.into else ""
        rows.append(
            f'<tr data-action="{html.escape(r.action)}"><td>{html.escape(str(r.code))}</td>'
            f"<td>{label}{into}</td><td>{html.escape(str(r.members))}</td>"
            f'<td class="n">{r.area_moved_m2:,.0f}</td>'
            f'<td class="n">{r.households_before}→{r.households_after}</td></tr>'
        )
    more = (
        f"<p>… {len(changes) - MAX_TABLE_ROWS} more rows in the CSV</p>"
        if len(changes) > MAX_TABLE_ROWS
        else ""
    )
    return (
        '<div id="fusion-changes" style="position:fixed;top:10px;right:10px;z-index:1000;'
        "max-height:45vh;overflow:auto;background:rgba(255,255,255,.95);padding:6px 10px;"
        'border-radius:6px;font:12px/1.4 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f"<b>{html.escape(department)}网格调整建议</b>"
        "<table><thead><tr><th>网格</th><th>建议</th><th>由我方网格组成</th><th>移动 m²</th>"
        f"<th>户数</th></tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"
        "<style>#fusion-changes td,#fusion-changes th{padding:1px 5px;text-align:left}"
        "#fusion-changes td.n{text-align:right}</style></div>"
    )


def _legend(title: str, department: str, summary: dict[str, object]) -> str:
    items = [
        (OURS_COLOUR, "solid", f"我方网格（{summary['ours']} 个）"),
        (THEIRS_COLOUR, "dashed", f"{department}网格（{summary['theirs']} 个）"),
        (SLIVER_COLOUR, "solid", f"边界错位/细碎（{summary['slivers']} 处）"),
        (FUSED_COLOUR, "solid", f"建议融合网格（{summary['fused']} 个）"),
    ]
    rows = "".join(
        f'<div class="wangge-legend-row"><span style="display:inline-block;width:22px;'
        f'margin-right:6px;vertical-align:middle;border-top:3px {dash} {c}"></span>'
        f"{html.escape(text)}</div>"
        for c, dash, text in items
    )
    stats = (
        f"<div>对照 {summary['pairs']} 对；对齐 {summary['aligned']}，错位 "
        f"{summary['misaligned']}，跨多格 {summary['spans']}</div>"
    )
    return (
        '<div id="wangge-legend" style="position:fixed;bottom:44px;left:10px;z-index:1000;'
        "background:rgba(255,255,255,.93);padding:8px 12px;border-radius:6px;"
        'font:13px/1.6 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f'<div style="font-size:15px;font-weight:bold;margin-bottom:2px">{html.escape(title)}'
        f"</div>{rows}{stats}</div>"
    )


def build_fusion_page(
    ours: gpd.GeoDataFrame,
    theirs: gpd.GeoDataFrame,
    slivers: gpd.GeoDataFrame,
    fused: gpd.GeoDataFrame,
    changes: pd.DataFrame,
    summary: dict[str, object],
    *,
    department: str = "外部门",
    title: str = "多网融合",
    asset_base: str = ASSET_BASE,
) -> str:
    """The crosswalk map page.

    Parameters
    ----------
    ours
        Our grids of the compared level (code, name, households, owner, geometry; EPSG:4326).
    theirs
        The foreign grids (code, name, households, home, status, geometry).
    slivers
        Sliver overlaps (their_code, our_code, overlap_m2, mean_width_m, geometry).
    fused
        The proposed fused foreign layer (code, name, members, households, geometry).
    changes
        The list of changes (see :class:`gis.fusion.Crosswalk`).
    summary
        Counts for the legend: ours, theirs, pairs, slivers, fused, aligned, misaligned, spans.
    """
    m = local_map(DEFAULT_CENTER, zoom_start=14, asset_base=asset_base, control_scale=True)
    dep = html.escape(department)
    layers = [
        (
            "我方网格",
            ours,
            ["code", "name", "households", "owner"],
            ["编码", "名称", "户数", f"归属{dep}网格"],
            {"color": OURS_COLOUR, "weight": 2, "fillOpacity": 0.04},
        ),
        (
            f"{dep}网格",
            theirs,
            ["code", "name", "households", "home", "status"],
            ["编码", "名称", "户数", "主归属我方网格", "状态"],
            {"color": THEIRS_COLOUR, "weight": 2, "dashArray": "6 4", "fill": False},
        ),
        (
            "边界错位/细碎",
            slivers,
            ["their_code", "our_code", "overlap_m2", "mean_width_m"],
            [f"{dep}网格", "我方网格", "面积 m²", "平均宽度 m"],
            {"color": SLIVER_COLOUR, "weight": 1, "fillColor": SLIVER_COLOUR, "fillOpacity": 0.7},
        ),
        (
            "建议融合网格",
            fused,
            ["code", "name", "members", "households"],
            ["编码", "名称", "由我方网格组成", "户数"],
            {"color": FUSED_COLOUR, "weight": 4, "fill": False},
        ),
    ]
    for name, frame, fields, aliases, style in layers:
        group = folium.FeatureGroup(name=name, show=name != "建议融合网格")
        if len(frame):
            _geojson(frame, fields, aliases, style, name).add_to(group)
        group.add_to(m)
    folium.LayerControl(collapsed=False, position="topleft").add_to(m)
    frames = [f for f in (ours, theirs) if len(f)]
    if frames:
        b = pd.concat([f.geometry for f in frames]).total_bounds
        m.fit_bounds([[float(b[1]), float(b[0])], [float(b[3]), float(b[2])]])
    root = m.get_root()
    root.html.add_child(Element(_legend(title, department, summary)), name="wangge_legend")
    root.html.add_child(Element(_table(changes, department)), name="fusion_changes")
    root.title = html.escape(f"{title} · {department}")
    page = render_offline(m, asset_base=asset_base)
    log.info(
        "fusion page: %d ours, %d theirs, %d slivers, %d kB",
        len(ours),
        len(theirs),
        len(slivers),
        len(page) // 1024,
    )
    return page
