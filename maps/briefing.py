"""The leadership briefing page (工作简报 / 领导驾驶舱总览): KPI cards, a small map of the
communities, trend and breakdown charts, a community table, and its PDF/PNG export.

Cards: incidents, 处置率 (handled / valid), on-time rate (按时办结率), satisfaction (满意度),
in-grid closure share (小事不出格), patrol coverage (巡查覆盖率: micro grids patrolled at least
10 minutes on the latest day with tracks, the rule of gis.patrol) and service coverage
(服务圈覆盖率: households within 15 minutes on foot along the streets, gis.service_coverage).
Charts are inline SVG drawn here: no chart library, nothing to fetch, and they print.
The export opens the page in headless Chromium (Debian's /usr/bin/chromium through
Playwright) with every request answered from ``maps/static`` or refused, so it works offline.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from branca.element import Element

from maps.assets import ASSET_BASE, STATIC_DIR, local_map, render_offline
from maps.basemaps import BaseMap, add_base_map, base_map, base_map_note, shift_frame
from maps.incidents import ZERO_COLOUR, class_breaks, colour_of, round_geoms
from maps.layers import fit_bounds
from maps.style import level_label

log = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
EXPORT_HOST = "http://127.0.0.1"  # the address the export serves the page under, in-process
EXPORT_FORMATS = ("pdf", "png")


class ExportError(RuntimeError):
    """The page could not be printed (no Chromium, or it did not render in time)."""


def _pct(v: Any) -> str:
    return "—" if v is None or pd.isna(v) else f"{float(v):.1%}"


def kpi_cards(
    total: Mapping[str, Any], patrol: Mapping[str, int], service: Mapping[str, Any]
) -> list[tuple[str, str, str]]:
    """(label, value, note) of each card, from the district row of ``kpi_summary``."""
    sat = total.get("satisfaction")
    sat_txt = "—" if sat is None or pd.isna(sat) else f"{float(sat):.2f}"
    grids = int(patrol.get("grids", 0))
    households = int(service.get("households", 0))
    minutes = service.get("minutes")
    return [
        (
            "事件总数",
            f"{int(total.get('incidents', 0)):,}",
            f"有效 {int(total.get('valid', 0)):,} 件",
        ),
        ("处置率", _pct(total.get("handled_rate")), f"已处置 {int(total.get('handled', 0)):,} 件"),
        (
            "按时办结率",
            _pct(total.get("on_time_rate")),
            f"按时 {int(total.get('on_time', 0)):,} 件",
        ),
        ("群众满意度", f"{sat_txt} / 5", f"评价 {int(total.get('evaluations', 0)):,} 次"),
        (
            "小事不出格",
            _pct(total.get("in_grid_share")),
            f"网格内办结 {int(total.get('closed_in_grid', 0)):,} 件",
        ),
        (
            "巡查覆盖率",
            _pct(patrol["patrolled"] / grids if grids else None),
            f"{patrol.get('unit', '三级网格')} {int(patrol.get('patrolled', 0))}/{grids}"
            + (f"（{str(patrol['day'])[5:]}）" if patrol.get("day") else ""),
        ),
        (
            "服务圈覆盖率",
            _pct(service["covered"] / households if households and minutes else None),
            f"{minutes} 分钟步行可达户数" if minutes else "尚未计算服务圈",
        ),
    ]


def _svg_text(x: float, y: float, text: str, *, size: int = 11, anchor: str = "middle") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">'
        f"{html.escape(text)}</text>"
    )


def column_chart_svg(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    colours: Sequence[str] = ("#2c7bb6", "#fdae61"),
    width: int = 560,
    height: int = 220,
    max_labels: int = 12,
) -> str:
    """Grouped column chart (one group per label, one column per series) with a key; at most
    about ``max_labels`` axis labels (every label stays in the columns' tooltips)."""
    n = len(labels)
    top = max([max(v, default=0) for v in series.values()] + [1])
    pad_l, pad_b, pad_t = 40, 34, 22
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    group_w = plot_w / max(n, 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = [
        f'<svg class="wg-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for k in range(5):  # horizontal guides with values
        v = top * k / 4
        y = pad_t + plot_h - plot_h * k / 4
        parts.append(
            f'<line x1="{pad_l}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
        )
        parts.append(_svg_text(pad_l - 4, y + 4, f"{v:,.0f}", size=10, anchor="end"))
    for s, (name, values) in enumerate(series.items()):
        colour = colours[s % len(colours)]
        for i, v in enumerate(values):
            h = plot_h * float(v) / top
            x = pad_l + i * group_w + group_w * 0.1 + s * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{pad_t + plot_h - h:.1f}" width="{bar_w:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{html.escape(labels[i])} '
                f"{html.escape(name)} {float(v):,.0f}</title></rect>"
            )
        kx = pad_l + 10 + s * 110
        parts.append(f'<rect x="{kx}" y="4" width="12" height="10" fill="{colour}"/>')
        parts.append(_svg_text(kx + 16, 13, name, anchor="start"))
    step = max(1, int(np.ceil(n / max(max_labels, 1))))
    for i in range(0, n, step):
        x = pad_l + i * group_w + group_w / 2
        parts.append(_svg_text(x, height - pad_b + 14, labels[i], size=10))
    parts.append("</svg>")
    return "".join(parts)


def bar_chart_svg(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    colour: str = "#d7191c",
    width: int = 360,
    bar_h: int = 18,
) -> str:
    """Horizontal bar chart, largest first as given, with the value at each bar's end."""
    top = max([*values, 1])
    label_w, height = 92, bar_h * len(labels) + 8
    plot_w = width - label_w - 56
    parts = [
        f'<svg class="wg-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        y = 4 + i * bar_h
        w = plot_w * float(v) / top
        parts.append(_svg_text(label_w - 6, y + bar_h * 0.7, label, anchor="end"))
        parts.append(
            f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{bar_h - 5}" '
            f'fill="{colour}"/>'
        )
        parts.append(
            _svg_text(label_w + w + 4, y + bar_h * 0.7, f"{float(v):,.0f}", anchor="start")
        )
    parts.append("</svg>")
    return "".join(parts)


def _axis_label(start: str, period: str, first: bool) -> str:
    """Short chart label of a period: 11月 (with the year at January and first), or 3/2."""
    d = date.fromisoformat(start)
    if period != "month":
        return f"{d.month}/{d.day}"
    return f"{d.year % 100}年{d.month}月" if first or d.month == 1 else f"{d.month}月"


def _community_table(kpis: pd.DataFrame, limit: int = 12) -> str:
    rows = kpis[kpis["community_id"].notna()].sort_values("incidents", ascending=False)
    body = []
    for r in rows.head(limit).itertuples(index=False):
        sat = "—" if r.satisfaction is None or pd.isna(r.satisfaction) else f"{r.satisfaction:.2f}"
        body.append(
            f"<tr><td>{html.escape(str(r.name or '—'))}</td><td>{int(r.incidents):,}</td>"
            f"<td>{_pct(r.handled_rate)}</td><td>{_pct(r.on_time_rate)}</td><td>{sat}</td>"
            f"<td>{_pct(r.in_grid_share)}</td></tr>"
        )
    return (
        '<table id="wangge-table"><thead><tr><th>社区</th><th>事件</th><th>处置率</th>'
        "<th>按时办结率</th><th>满意度</th><th>小事不出格</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


_CSS = """
<style>
html,body{height:auto!important;min-height:100%;margin:0;background:#f4f5f7}
body{font:13px/1.5 "Noto Sans CJK SC","Microsoft YaHei",sans-serif;color:#222}
#wg-brief{width:1240px;margin:0 auto;padding:14px 18px}
#wg-brief h1{font-size:22px;margin:0 0 2px} .wg-sub{color:#666;margin-bottom:10px}
#wangge-cards{display:grid;grid-template-columns:repeat(7,1fr);gap:10px;margin-bottom:12px}
.wg-card{background:#fff;border-radius:6px;padding:8px 10px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
.wg-card .wg-k{color:#555;font-size:12px} .wg-card .wg-v{font-size:22px;font-weight:bold;
 color:#1f4e79} .wg-card .wg-n{color:#888;font-size:11px}
.wg-row{display:grid;grid-template-columns:560px 1fr;gap:12px;margin-bottom:12px}
.wg-panel{background:#fff;border-radius:6px;padding:8px 10px;box-shadow:0 1px 3px rgba(0,0,0,.15)}
.wg-panel h2{font-size:14px;margin:0 0 6px}
#wg-map-slot{height:400px;position:relative}
.wg-key{font-size:11px;color:#555} .wg-sw{display:inline-block;width:14px;height:10px;
 margin:0 3px 0 6px;vertical-align:middle;border:1px solid #999}
#wangge-table{border-collapse:collapse;width:100%;font-size:12px}
#wangge-table th,#wangge-table td{border-bottom:1px solid #e3e3e3;padding:3px 6px;text-align:right}
#wangge-table th:first-child,#wangge-table td:first-child{text-align:left}
.wg-export{float:right;font-size:12px} .wg-export a{margin-left:8px}
@media print{body{background:#fff} .wg-export{display:none} #wg-brief{padding:0}
 @page{size:A4 landscape;margin:8mm}}
</style>
"""


def build_briefing_page(
    kpis: pd.DataFrame,
    trend: pd.DataFrame,
    by_category: pd.DataFrame,
    by_source: pd.DataFrame,
    communities: gpd.GeoDataFrame,
    *,
    patrol: Mapping[str, int],
    service: Mapping[str, Any],
    period: str = "month",
    base: BaseMap | None = None,
    subtitle: str = "",
    export_links: bool = True,
    title: str = "网格化治理工作简报",
    asset_base: str = ASSET_BASE,
) -> str:
    """The full HTML briefing page.

    Parameters
    ----------
    kpis
        :func:`gis.db.queries.dashboards.kpi_summary`: the district row first, then one row
        per community (community_id, name, incidents, rates...).
    trend
        :func:`gis.db.queries.dashboards.period_counts` (period, incidents, handled).
    by_category, by_source
        :func:`gis.db.queries.dashboards.counts_by` (key, incidents).
    communities
        Community grids (code, name, level, households, geometry; EPSG:4326) and, for the map
        colours, ``grid_id`` matching ``kpis.community_id``.
    patrol, service
        :func:`~gis.db.queries.dashboards.patrol_coverage` and
        :func:`~gis.db.queries.dashboards.service_coverage`.
    base
        Base map of the small map (default none: offline); AMap/Tencent shift the overlay.

    Returns
    -------
    str
        The page: ``#wangge-cards`` (seven cards), the small map with its legend, the charts
        (``svg.wg-chart``) and the community table.
    """
    base = base or base_map("none")
    total = kpis.iloc[0].to_dict() if len(kpis) else {}
    cards = kpi_cards(total, patrol, service)

    m = local_map(
        (34.80, 113.55),
        zoom_start=13,
        asset_base=asset_base,
        width="100%",
        height="100%",
        zoom_snap=0.25,
        control_scale=True,
    )
    add_base_map(m, base)
    counts = dict(zip(kpis["community_id"], kpis["incidents"], strict=True)) if len(kpis) else {}
    frame = shift_frame(communities, base)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    n = [int(counts.get(g, 0)) for g in frame.get("grid_id", pd.Series(dtype=int))]
    breaks = class_breaks(n)
    layer = folium.FeatureGroup(name=f"{level_label('community')}·事件数")
    if len(frame):
        data = gpd.GeoDataFrame(
            {
                "name": [html.escape(str(v)) for v in frame["name"]],
                "n": n,
                "fill": [colour_of(v, breaks) for v in n],
            },
            geometry=round_geoms(frame.geometry.to_numpy()),
            crs=4326,
        )
        folium.GeoJson(
            data.to_json(drop_id=True),
            style_function=lambda f: {
                "color": "#c0392b",
                "weight": 2,
                "fillOpacity": 0.6,
                "fillColor": f["properties"]["fill"],
            },
            tooltip=folium.GeoJsonTooltip(fields=["name", "n"], aliases=["社区", "事件数"]),
        ).add_to(layer)
        minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
        fit_bounds(m, [[miny, minx], [maxy, maxx]])
    layer.add_to(m)
    folium.LayerControl(collapsed=True, position="topright").add_to(m)

    key = " ".join(
        f'<span class="wg-sw" style="background:{colour_of(b, breaks)}"></span>≤{b:,.0f}'
        for b in breaks
    )
    key = (
        f'<span class="wg-sw" style="background:{ZERO_COLOUR}"></span>0 {key}' if key else "无事件"
    )
    # short axis labels (26年1月, 2月, ... or 3/2 for weeks); full labels in the bar titles
    trend_labels = [_axis_label(p, period, i == 0) for i, p in enumerate(trend["period"])]
    trend_svg = column_chart_svg(
        trend_labels,
        {"上报": trend["incidents"].tolist(), "已处置": trend["handled"].tolist()},
    )
    cat = by_category.head(8)
    cat_svg = bar_chart_svg([str(k) for k in cat["key"]], cat["incidents"].tolist())
    src_svg = bar_chart_svg(
        [str(k) for k in by_source["key"]], by_source["incidents"].tolist(), colour="#2c7bb6"
    )
    exports = (
        '<span class="wg-export">导出：<a href="/maps/briefing.pdf">PDF</a>'
        '<a href="/maps/briefing.png">PNG</a></span>'
        if export_links
        else ""
    )
    cards_html = "".join(
        f'<div class="wg-card"><div class="wg-k">{html.escape(k)}</div>'
        f'<div class="wg-v">{html.escape(v)}</div><div class="wg-n">{html.escape(note)}</div></div>'
        for k, v, note in cards
    )
    body = (
        f'<div id="wg-brief">{exports}<h1>{html.escape(title)}</h1>'
        f'<div class="wg-sub">{html.escape(subtitle)}</div>'
        f'<div id="wangge-cards">{cards_html}</div>'
        '<div class="wg-row"><div class="wg-panel"><h2>各社区事件分布</h2>'
        '<div id="wg-map-slot"></div>'
        f'<div id="wangge-legend" class="wg-key">社区事件数（分位数五档）：{key}'
        f"<br>{html.escape(base_map_note(base))}</div></div>"
        f'<div class="wg-panel"><h2>事件趋势（按{"月" if period == "month" else "周"}）</h2>'
        f"{trend_svg}</div></div>"
        '<div class="wg-row"><div class="wg-panel"><h2>主要事件类别</h2>'
        f"{cat_svg}<h2>事件来源</h2>{src_svg}</div>"
        f'<div class="wg-panel"><h2>社区考核指标</h2>{_community_table(kpis)}</div></div></div>'
    )
    root = m.get_root()
    root.header.add_child(Element(_CSS), name="wangge_css")
    root.html.add_child(Element(body), name="wangge_brief")
    # The map's div is rendered after the page body: move it into its slot before the map
    # script (which comes later in the same script block) creates the Leaflet map.
    root.script.add_child(
        Element(
            f"document.getElementById('wg-map-slot').appendChild("
            f"document.getElementById('{m.get_name()}'));"
        ),
        name="wangge_slot",
    )
    root.title = html.escape(title)
    page = render_offline(m, asset_base=asset_base)
    log.info("briefing page: %d communities, %d kB", len(frame), len(page) // 1024)
    return page


def _static_file(path: str, static_dir: Path) -> Path | None:
    rel = path.removeprefix("/static/")
    if rel == path:
        return None
    target = (static_dir / rel).resolve()
    if not target.is_relative_to(static_dir.resolve()) or not target.is_file():
        return None
    return target


_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def export_page(
    page: str,
    fmt: str = "pdf",
    *,
    static_dir: Path = STATIC_DIR,
    allow_outside: bool = False,
    timeout_s: float = 30.0,
) -> bytes:
    """Print ``page`` to PDF (A4 landscape) or a full-page PNG in headless Chromium.

    The page is served in-process under :data:`EXPORT_HOST`; ``/static/...`` comes from
    ``static_dir``, anything else is refused unless ``allow_outside`` (tile base maps).

    Raises
    ------
    ValueError
        For a format other than pdf or png.
    ExportError
        When Chromium or Playwright is missing, or the page does not render in time.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use pdf or png")
    if not CHROMIUM.exists():
        raise ExportError(f"{CHROMIUM} is missing: install Debian's chromium to export pages")
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import Route, sync_playwright
    except ImportError as exc:
        raise ExportError("the playwright package is missing: pip install playwright") from exc

    url = f"{EXPORT_HOST}/export"
    body = page.encode("utf-8")

    def on_route(route: Route) -> None:
        req_url = route.request.url
        parsed = urlparse(req_url)
        if req_url == url:
            route.fulfill(status=200, content_type="text/html; charset=utf-8", body=body)
            return
        if f"{parsed.scheme}://{parsed.netloc}" == EXPORT_HOST:
            found = _static_file(parsed.path, static_dir)
            if found is None:
                route.fulfill(status=404, body=b"")
            else:
                kind = _TYPES.get(found.suffix, "application/octet-stream")
                route.fulfill(status=200, content_type=kind, body=found.read_bytes())
            return
        if allow_outside and not req_url.startswith("data:"):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
                ctx.route("**/*", on_route)
                pg = ctx.new_page()
                pg.goto(url, wait_until="networkidle", timeout=timeout_s * 1000)
                pg.wait_for_selector(".leaflet-container", timeout=timeout_s * 1000)
                if fmt == "png":
                    return pg.screenshot(full_page=True, type="png")
                pg.emulate_media(media="print")
                return pg.pdf(format="A4", landscape=True, print_background=True, scale=0.72)
            finally:
                browser.close()
    except PlaywrightError as exc:
        raise ExportError(f"the page could not be exported: {exc}") from exc
