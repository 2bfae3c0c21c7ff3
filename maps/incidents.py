"""The incident situation page (事件态势图): a heatmap with a week/month time slider, a
choropleth per grid level of incident counts or of incidents per 1,000 households (每千户),
grid popups with their numbers and latest incidents, and category/source/status filters.

Everything arrives aggregated (see :mod:`gis.db.queries.dashboards`): the page carries grid
counts and heat cells, never raw incidents, and coarsens the heat cells itself until they
fit :data:`MAX_HEAT_POINTS`, so a million incidents still make a page of a few MB.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element
from folium import plugins

from maps.assets import ASSET_BASE, local_map, localise, render_offline
from maps.basemaps import BaseMap, add_base_map, base_map, base_map_note, shift_frame, shift_points
from maps.layers import fit_bounds
from maps.style import HEAT_GRADIENT, LEVELS, level_label

log = logging.getLogger(__name__)

MAX_HEAT_POINTS = 60_000  # over all time steps: about 1.5 MB of [lat, lon, weight] triples
RECENT_PER_GRID = 5
COORD_DECIMALS = 5  # about 1 m: plenty for 50 m cells and grid outlines on a screen
DEFAULT_CENTER = (34.80, 113.55)  # 郑州高新区, the demo district
# Five classes, light to dark (ColorBrewer YlOrRd); grids with no incident get ZERO_COLOUR.
RAMP: tuple[str, ...] = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
ZERO_COLOUR = "#f2f2f2"
METRICS: dict[str, str] = {"count": "事件数", "rate": "每千户事件数"}
STATUS_LABEL: dict[str, str] = {
    "reported": "已上报",
    "accepted": "已受理",
    "dispatched": "已派单",
    "in_progress": "处置中",
    "resolved": "已处置",
    "evaluated": "已评价",
    "closed": "已办结",
    "rejected": "不予受理",
    "duplicate": "重复",
    "reopened": "重新处置",
}
PERIOD_LABEL = {"week": "周", "month": "月"}
CHORO_LEVELS: tuple[str, ...] = ("street", "community", "grid", "micro", "dedicated")
SHOWN_LEVEL = "grid"  # the 三级网格 choropleth is on at start, the others in the control
COUNT_COLUMNS = ("code", "incidents", "handled", "open", "rate_per_1000")


def class_breaks(values: Sequence[float] | np.ndarray, k: int = len(RAMP)) -> list[float]:
    """Upper bounds of up to ``k`` quantile classes of the positive values (ascending,
    distinct; the last is the maximum). Empty when no value is positive."""
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    arr = arr[arr > 0]
    if not len(arr):
        return []
    qs = np.quantile(arr, np.linspace(0, 1, k + 1)[1:])
    return sorted({float(q) for q in qs})


def colour_of(value: float | None, breaks: Sequence[float]) -> str:
    """The ramp colour of ``value`` for ``breaks`` (:data:`ZERO_COLOUR` for 0 or None)."""
    if value is None or not value > 0 or not breaks:
        return ZERO_COLOUR
    i = int(np.searchsorted(np.asarray(breaks), value, side="left"))
    i = min(i, len(breaks) - 1)
    # spread the classes over the whole ramp when there are fewer than five
    return RAMP[round(i * (len(RAMP) - 1) / max(len(breaks) - 1, 1))]


def coarsen_heat(
    cells: pd.DataFrame, cell_deg: float, max_points: int = MAX_HEAT_POINTS
) -> tuple[pd.DataFrame, float]:
    """Merge heat cells 2×2 at a time until at most ``max_points`` (period, cell) rows remain.

    Parameters
    ----------
    cells
        Columns period, gx, gy, weight (integer cell indices at ``cell_deg``).
    cell_deg
        Cell size of ``gx``/``gy``, degrees.

    Returns
    -------
    (pandas.DataFrame, float)
        Columns period, lon, lat (cell centres, WGS84), weight; and the cell size used.
    """
    frame = cells[["period", "gx", "gy", "weight"]]
    factor = 1
    while len(frame) > max_points:
        factor *= 2
        frame = (
            cells.assign(gx=cells["gx"] // factor, gy=cells["gy"] // factor)
            .groupby(["period", "gx", "gy"], as_index=False, sort=True)["weight"]
            .sum()
        )
    size = cell_deg * factor
    out = pd.DataFrame(
        {
            "period": frame["period"].to_numpy(),
            "lon": (frame["gx"].to_numpy(float) + 0.5) * size,
            "lat": (frame["gy"].to_numpy(float) + 0.5) * size,
            "weight": frame["weight"].to_numpy(float),
        }
    )
    if factor > 1:
        log.info("heat cells coarsened %dx to %.5f deg: %d rows", factor, size, len(out))
    return out, size


def period_label(start: str, period: str) -> str:
    """Chinese label of a period given by its first day: 2026年3月, or 2026年第10周（3/2起）."""
    d = date.fromisoformat(start)
    if period == "month":
        return f"{d.year}年{d.month}月"
    iso = d.isocalendar()
    return f"{iso.year}年第{iso.week}周（{d.month}/{d.day}起）"


def round_geoms(geoms: np.ndarray) -> np.ndarray:
    """Geometries with coordinates rounded to :data:`COORD_DECIMALS` (smaller pages)."""
    return shapely.transform(geoms, lambda xy: np.round(xy, COORD_DECIMALS))


def _popup_html(row: Mapping[str, object], recent: Sequence[Mapping[str, Any]]) -> str:
    """The popup of one grid: its numbers, then its latest incidents (escaped; each with
    its local time already formatted as ``when``)."""
    rate = row.get("rate_per_1000")
    rate_txt = "—" if rate is None or pd.isna(rate) else f"{float(rate):.1f}"  # type: ignore[arg-type]
    n = int(row["incidents"])  # type: ignore[call-overload]
    handled = int(row["handled"])  # type: ignore[call-overload]
    share = f"{handled / n:.0%}" if n else "—"
    lines = [
        f'<div class="wg-pop"><b>{html.escape(str(row["name"]))}</b>'
        f'<span class="wg-code">{html.escape(str(row["code"]))}</span>',
        f"<div>{html.escape(level_label(str(row['level'])))} · "
        f"户数 {int(row['households']):,}</div>",  # type: ignore[call-overload]
        f"<div>事件 <b>{n:,}</b> 件 · 每千户 <b>{rate_txt}</b></div>",
        f"<div>已处置 {handled:,}（{share}） · 在办 {int(row['open']):,}</div>",  # type: ignore[call-overload]
    ]
    if len(recent):
        items = []
        for r in recent:
            status = STATUS_LABEL.get(str(r["status"]), str(r["status"]))
            address = r["address"]
            place = "" if address is None or pd.isna(address) else f" · {html.escape(str(address))}"
            items.append(
                f"<li>{r['when']} {html.escape(str(r['category']))}（"
                f"{html.escape(str(r['source']))}，{html.escape(status)}）{place}</li>"
            )
        lines.append(f"<div>最近事件：</div><ol>{''.join(items)}</ol>")
    else:
        lines.append("<div>最近无事件</div>")
    return "".join(lines) + "</div>"


def _recent_by_grid(recent: pd.DataFrame, column: str) -> dict[int, list[dict[str, Any]]]:
    """The newest :data:`RECENT_PER_GRID` incidents of each grid of a level, as records."""
    if recent.empty or column not in recent:
        return {}
    part = recent[recent[column].notna()]
    part = part.sort_values(["reported_at", "id"], ascending=False)
    top = part.groupby(column, sort=False).head(RECENT_PER_GRID)
    when = pd.to_datetime(top["reported_at"], utc=True).dt.tz_convert("Asia/Shanghai")
    top = top.assign(when=when.dt.strftime("%m-%d %H:%M"))
    out: dict[int, list[dict[str, Any]]] = {}
    cols = ["when", "category", "source", "status", "address"]
    for key, rec in zip(top[column], top[cols].to_dict(orient="records"), strict=True):
        out.setdefault(int(key), []).append(rec)
    return out


def choropleth_layer(
    frame: gpd.GeoDataFrame,
    level: str,
    recent: pd.DataFrame,
    *,
    level_column: str,
) -> tuple[folium.FeatureGroup, folium.GeoJson | None, dict[str, list[float]]]:
    """One level's grids coloured by incident count, with popups.

    ``frame`` holds the grids of the level with the counts (:data:`COUNT_COLUMNS`) and
    geometries already placed for the base map. Each feature carries both fill colours
    (``fc`` by count, ``fr`` by rate) so the page can switch the metric without a reload.

    Returns
    -------
    (FeatureGroup, GeoJson or None, breaks)
        The layer for the control (named e.g. 三级网格·事件分布), its GeoJson (None when the
        level has no grid), and the class breaks per metric.
    """
    shown = level == SHOWN_LEVEL
    group = folium.FeatureGroup(name=f"{level_label(level)}·事件分布", show=shown)
    breaks = {
        "count": class_breaks(frame["incidents"].to_numpy(float)),
        "rate": class_breaks([v for v in frame["rate_per_1000"] if v is not None]),
    }
    if frame.empty:
        return group, None, breaks
    by_grid = _recent_by_grid(recent, level_column)
    records = frame.drop(columns="geometry").to_dict(orient="records")
    props = pd.DataFrame(
        {
            "name": [html.escape(str(r["name"])) for r in records],
            "n": [int(r["incidents"]) for r in records],
            "r": [
                None if r["rate_per_1000"] is None else float(r["rate_per_1000"]) for r in records
            ],
            "fc": [colour_of(float(r["incidents"]), breaks["count"]) for r in records],
            "fr": [colour_of(r["rate_per_1000"], breaks["rate"]) for r in records],
            "popup": [_popup_html(r, by_grid.get(int(r["grid_id"]), [])) for r in records],
        }
    )
    data = gpd.GeoDataFrame(props, geometry=round_geoms(frame.geometry.to_numpy()), crs=4326)
    weight = {"street": 3, "community": 2.5, "grid": 1.5, "micro": 0.8, "dedicated": 2}
    style = {
        "color": "#555",
        "weight": weight.get(level, 1),
        "fillOpacity": 0.55,
        **({"dashArray": "6 4"} if level == "dedicated" else {}),
    }
    gj = folium.GeoJson(
        data.to_json(drop_id=True),
        name=f"{level_label(level)}·事件分布",
        control=False,
        style_function=lambda f, s=style: {**s, "fillColor": f["properties"]["fc"]},
        highlight_function=lambda _f: {"weight": 3, "color": "#1f4e79"},
        tooltip=folium.GeoJsonTooltip(fields=["name", "n"], aliases=["名称", "事件数"]),
        # keep the opened popup clear of the filter form and metric switch at the top left
        popup=folium.GeoJsonPopup(
            fields=["popup"],
            labels=False,
            class_name="wg-popup",
            auto_pan_padding_top_left=[60, 110],
        ),
        popup_keep_highlighted=True,
    )
    gj.add_to(group)
    return group, gj, breaks


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or float(v).is_integer() else f"{v:.1f}"


def _legend(
    title: str,
    breaks: dict[str, dict[str, list[float]]],
    *,
    total: int,
    period: str,
    n_steps: int,
    heat_cell_m: float,
    filters: Mapping[str, Sequence[str]],
    base: BaseMap,
    as_of: str = "",
) -> str:
    """Legend box: both metrics' class bounds per level (one shown at a time), heat ramp,
    active filters, base map, and how current the counts are."""
    blocks = []
    for metric, label in METRICS.items():
        rows = []
        for level, by_metric in breaks.items():
            b = by_metric[metric]
            if not b:
                bounds = "无事件"
            else:
                cells = []
                lo = 0.0
                for k, hi in enumerate(b):
                    colour = colour_of(hi, b)
                    cells.append(
                        f'<span class="wg-sw" style="background:{colour}"></span>'
                        f"{_fmt(lo) if k else '>0'}–{_fmt(hi)}"
                    )
                    lo = hi
                bounds = " ".join(cells)
            rows.append(f"<div><b>{html.escape(level_label(level))}</b>：{bounds}</div>")
        hidden = "" if metric == "count" else ' style="display:none"'
        blocks.append(
            f'<div class="wg-metric" data-metric="{metric}"{hidden}><div>{label}（分位数五档，'
            f'<span class="wg-sw" style="background:{ZERO_COLOUR}"></span>为无事件）</div>'
            f"{''.join(rows)}</div>"
        )
    stops = ",".join(HEAT_GRADIENT[k] for k in sorted(HEAT_GRADIENT))
    active = [
        f"{name}：{'、'.join(html.escape(STATUS_LABEL.get(v, v)) for v in vals)}"
        for name, vals in (
            ("类别", filters.get("category", ())),
            ("来源", filters.get("source", ())),
            ("状态", filters.get("status", ())),
        )
        if vals
    ]
    filt = "；".join(active) if active else "全部事件"
    return (
        '<div id="wangge-legend" class="wg-box" style="bottom:24px;right:10px;max-width:460px">'
        f'<div class="wg-title">{html.escape(title)}</div>'
        f"<div>共 <b>{total:,}</b> 件事件 · 筛选：{filt}"
        f"{' · ' + html.escape(as_of) if as_of else ''}</div>"
        f'<div><span class="wg-sw" style="width:44px;background:linear-gradient(90deg,{stops})">'
        f"</span>事件热力图（按{PERIOD_LABEL[period]}，{n_steps} 期，聚合格约 "
        f"{heat_cell_m:.0f} 米）</div>"
        f"{''.join(blocks)}"
        f'<div class="wg-note">{html.escape(base_map_note(base))}</div></div>'
    )


def _filter_form(
    choices: Mapping[str, Sequence[str]],
    filters: Mapping[str, Sequence[str]],
    *,
    period: str,
    base: BaseMap,
    bases: Sequence[str],
) -> str:
    """A GET form that reloads the page with new filters (类别、来源、状态、周期、底图)."""

    def select(name: str, label: str, options: Sequence[tuple[str, str]], chosen: set[str]) -> str:
        opts = "".join(
            f'<option value="{html.escape(v)}"{" selected" if v in chosen else ""}>'
            f"{html.escape(t)}</option>"
            for v, t in options
        )
        return f'<label>{label}<select name="{name}">{opts}</select></label>'

    def menu(key: str, label: str, names: Mapping[str, str] | None = None) -> str:
        opts = [("", "全部")] + [(v, (names or {}).get(v, v)) for v in choices.get(key, ())]
        return select(key, label, opts, set(filters.get(key, ())))

    base_labels = {"none": "无（离线）", "osm": "OSM", "tianditu": "天地图", "amap": "高德"}
    base_labels["tencent"] = "腾讯"
    return (
        '<form id="wangge-filters" class="wg-box" method="get" style="top:10px;left:54px">'
        + menu("category", "类别")
        + menu("source", "来源")
        + menu("status", "状态", STATUS_LABEL)
        + select("period", "周期", [("month", "按月"), ("week", "按周")], {period})
        + select("base", "底图", [(b, base_labels.get(b, b)) for b in bases], {base.name})
        + '<button type="submit">查询</button></form>'
    )


_CSS = """
<style>
.wg-box{position:fixed;z-index:1000;background:rgba(255,255,255,.94);padding:7px 11px;
 border-radius:6px;font:12px/1.6 "Noto Sans CJK SC","Microsoft YaHei",sans-serif;
 box-shadow:0 1px 4px rgba(0,0,0,.3)}
.wg-title{font-size:15px;font-weight:bold}
.wg-sw{display:inline-block;width:14px;height:10px;margin:0 3px 0 6px;
 vertical-align:middle;border:1px solid #999}
.wg-note{color:#666}
#wangge-filters label{margin-right:8px} #wangge-filters select{margin-left:3px;max-width:120px}
.wg-pop{font-size:12px;min-width:220px} .wg-code{color:#888;margin-left:6px}
.wg-pop ol{padding-left:18px;margin:2px 0}
#wangge-metric{top:56px;left:54px}
</style>
"""


def _metric_script(layers: Sequence[str]) -> str:
    """Switch every choropleth between count and rate colours, and the legend with it."""
    names = json.dumps(list(layers))
    return f"""
<div id="wangge-metric" class="wg-box">着色：
<label><input type="radio" name="wg-metric" value="count" checked>事件数</label>
<label><input type="radio" name="wg-metric" value="rate">每千户事件数</label></div>
<script>
document.addEventListener("DOMContentLoaded", function() {{
  var names = {names};
  document.querySelectorAll('input[name="wg-metric"]').forEach(function(input) {{
    input.addEventListener("change", function() {{
      var key = input.value === "rate" ? "fr" : "fc";
      names.forEach(function(n) {{
        var layer = window[n];
        if (layer) layer.setStyle(function(f) {{ return {{fillColor: f.properties[key]}}; }});
      }});
      document.querySelectorAll(".wg-metric").forEach(function(el) {{
        el.style.display = el.dataset.metric === input.value ? "" : "none";
      }});
      document.body.dataset.metric = input.value;
    }});
  }});
}});
</script>
"""


def build_incidents_page(
    grids: gpd.GeoDataFrame,
    counts: pd.DataFrame,
    heat: pd.DataFrame,
    recent: pd.DataFrame,
    *,
    cell_deg: float = 0.0005,
    period: str = "month",
    base: BaseMap | None = None,
    filters: Mapping[str, Sequence[str]] | None = None,
    choices: Mapping[str, Sequence[str]] | None = None,
    bases: Sequence[str] = ("none", "osm", "tianditu", "amap", "tencent"),
    title: str = "事件态势图",
    as_of: str = "",
    asset_base: str = ASSET_BASE,
) -> str:
    """The full HTML page of the incident dashboard (``as_of``: e.g. ``数据截至 14:05``,
    shown in the legend).

    Parameters
    ----------
    grids
        Grids with code, name, level, households and geometry (EPSG:4326).
    counts
        :func:`gis.db.queries.dashboards.grid_counts`: grid_id, code, incidents, handled,
        open, rate_per_1000 per grid.
    heat
        :func:`gis.db.queries.dashboards.period_heat` cells: period, gx, gy, weight.
    recent
        :func:`gis.db.queries.dashboards.recent_incidents` (newest first).
    cell_deg
        Cell size of ``heat``'s indices, degrees.
    period
        'week' or 'month': one time-slider step per period.
    base
        Base map (default none: offline). AMap/Tencent shift every overlay into GCJ-02.
    filters, choices
        Active filters and menu values per key category/source/status, for the legend and
        the filter form.

    Returns
    -------
    str
        The page: a time-slider heatmap (事件热力图), one choropleth layer per grid level,
        a layer control, the metric switch, the filter form and the legend.
    """
    base = base or base_map("none")
    filters = filters or {}
    missing = {"code", "name", "level", "households", "geometry"} - set(grids.columns)
    if missing:
        raise ValueError(f"grids need code, name, level, households, geometry; missing {missing}")
    missing = set(COUNT_COLUMNS) - set(counts.columns)
    if missing:
        raise ValueError(f"counts need columns {COUNT_COLUMNS}; missing {sorted(missing)}")
    frame = shift_frame(grids[["code", "name", "level", "households", "geometry"]], base)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    cols = ["grid_id", *COUNT_COLUMNS]
    frame = frame.merge(counts[cols], on="code", how="left")
    frame["incidents"] = frame["incidents"].fillna(0).astype(int)
    frame["handled"] = frame["handled"].fillna(0).astype(int)
    frame["open"] = frame["open"].fillna(0).astype(int)
    frame["grid_id"] = frame["grid_id"].fillna(-1).astype(int)
    frame["rate_per_1000"] = (
        frame["rate_per_1000"].astype(object).where(frame["rate_per_1000"].notna(), None)
    )

    m = local_map(
        DEFAULT_CENTER, zoom_start=13, asset_base=asset_base, control_scale=True, zoom_snap=0.25
    )
    add_base_map(m, base)

    # heat with the time slider: one frame per period, weights scaled to 0..1 by the largest
    cells, size = coarsen_heat(heat, cell_deg)
    periods = sorted(set(cells["period"]))
    total = int(heat["weight"].sum()) if len(heat) else 0
    if periods:
        lon, lat = shift_points(cells["lon"], cells["lat"], base)
        top = float(cells["weight"].max())
        weights = np.round(cells["weight"].to_numpy(float) / top, 3)
        data = []
        lat_r, lon_r = np.round(lat, COORD_DECIMALS), np.round(lon, COORD_DECIMALS)
        for p in periods:
            sel = (cells["period"] == p).to_numpy()
            data.append(np.c_[lat_r[sel], lon_r[sel], weights[sel]].tolist())
        heat_layer = plugins.HeatMapWithTime(
            data,
            index=[period_label(p, period) for p in periods],
            name="事件热力图",
            radius=18,
            min_opacity=0.2,
            max_opacity=0.75,
            gradient=HEAT_GRADIENT,
            position="bottomleft",
            auto_play=False,
            display_index=True,
        )
        localise(heat_layer, asset_base)
        heat_layer.add_to(m)

    breaks: dict[str, dict[str, list[float]]] = {}
    layer_names: list[str] = []
    levels = [lv for lv in CHORO_LEVELS if (frame["level"] == lv).any()]
    for level in levels:
        part = frame[frame["level"] == level]
        group, gj, level_breaks = choropleth_layer(
            part, level, recent, level_column=_level_column(level)
        )
        group.add_to(m)
        breaks[level] = level_breaks
        if gj is not None:
            layer_names.append(gj.get_name())
    folium.LayerControl(collapsed=False, position="topright").add_to(m)

    if len(frame):
        minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
        fit_bounds(m, [[miny, minx], [maxy, maxx]])
    top_down = {lv: breaks[lv] for lv in LEVELS if lv in breaks}
    root = m.get_root()
    root.header.add_child(Element(_CSS), name="wangge_css")
    lat0 = float(frame.total_bounds[1::2].mean()) if len(frame) else DEFAULT_CENTER[0]
    heat_m = size * 111_320.0 * math.cos(math.radians(lat0))
    root.html.add_child(
        Element(
            _legend(
                title,
                top_down,
                total=total,
                period=period,
                n_steps=len(periods),
                heat_cell_m=heat_m,
                filters=filters,
                base=base,
                as_of=as_of,
            )
        ),
        name="wangge_legend",
    )
    root.html.add_child(
        Element(_filter_form(choices or {}, filters, period=period, base=base, bases=bases)),
        name="wangge_filters",
    )
    root.html.add_child(Element(_metric_script(layer_names)), name="wangge_metric")
    root.title = html.escape(title)
    page = render_offline(m, asset_base=asset_base)
    log.info(
        "incidents page: %d grids, %d heat rows in %d periods, %d kB",
        len(frame),
        len(cells),
        len(periods),
        len(page) // 1024,
    )
    return page


def _level_column(level: str) -> str:
    return {
        "street": "street_id",
        "community": "community_id",
        "grid": "grid_id",
        "micro": "micro_grid_id",
        "dedicated": "dedicated_grid_id",
    }[level]
