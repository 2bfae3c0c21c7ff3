"""The leadership view of the service lists (需求清单/微心愿): open needs on the map by micro
grid, time to claim and to fulfil, volunteer hours per grid, with the CSV export linked."""

from __future__ import annotations

import html
import logging

import folium
import geopandas as gpd
import pandas as pd
from branca.element import Element

from maps.assets import ASSET_BASE, local_map, render_offline

log = logging.getLogger(__name__)

DEFAULT_CENTER = (34.80, 113.55)
# open needs per micro grid → fill colour (none, 1, 2–3, 4 and more)
OPEN_STEPS: tuple[tuple[int, str, str], ...] = (
    (0, "#f7f7f7", "无待认领"),
    (1, "#fdd49e", "1 件"),
    (2, "#fc8d59", "2–3 件"),
    (4, "#b30000", "4 件以上"),
)
STATUS_COLOURS = {"open": "#b30000", "claimed": "#e08214"}
STATUS_LABELS = {"open": "待认领", "claimed": "已认领"}
KIND_LABELS = {"need": "需求", "wish": "微心愿"}
STAT_COLUMNS = (
    "open",
    "claimed",
    "done",
    "confirmed",
    "median_hours_to_claim",
    "median_hours_to_fulfil",
    "volunteer_hours",
)

ALIASES = ("网格", "编码", "待认领", "已认领", "已完成", "已确认", "认领用时中位数(时)",
           "办结用时中位数(时)", "志愿服务(时)")  # fmt: skip


def open_colour(n: int) -> str:
    """Fill colour of a micro grid with ``n`` open needs."""
    colour = OPEN_STEPS[0][1]
    for low, fill, _label in OPEN_STEPS:
        if n >= low:
            colour = fill
    return colour


def _legend(totals: dict[str, float], csv_url: str) -> str:
    rows = [
        f'<div><span style="display:inline-block;width:16px;height:10px;margin-right:6px;'
        f'background:{fill};border:1px solid #999"></span>{html.escape(label)}</div>'
        for _low, fill, label in OPEN_STEPS
    ]
    rows += [
        f'<div><span style="display:inline-block;width:10px;height:10px;border-radius:5px;'
        f'margin-right:6px;background:{c}"></span>{STATUS_LABELS[s]}</div>'
        for s, c in STATUS_COLOURS.items()
    ]

    def hours(v: float | None) -> str:
        return "—" if v is None or pd.isna(v) else f"{v:.1f} 小时"

    return (
        '<div id="wangge-legend" style="position:fixed;bottom:50px;left:10px;z-index:1000;'
        "background:rgba(255,255,255,.94);padding:8px 12px;border-radius:6px;"
        'font:13px/1.6 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        '<div style="font-size:15px;font-weight:bold">需求清单 · 领导视图</div>'
        f'<div id="wangge-totals">待认领 {int(totals["open"])} · 已认领 {int(totals["claimed"])}'
        f" · 已完成 {int(totals['done'])} · 已确认 {int(totals['confirmed'])}<br>"
        f"认领用时中位数 {hours(totals['median_hours_to_claim'])} · "
        f"办结用时中位数 {hours(totals['median_hours_to_fulfil'])}<br>"
        f"志愿服务 {totals['volunteer_hours']:.1f} 小时</div>"
        f"{''.join(rows)}"
        f'<div><a id="wangge-csv" href="{html.escape(csv_url)}">导出 CSV（按微网格）</a></div>'
        "</div>"
    )


def build_needs_page(
    grids: gpd.GeoDataFrame,
    stats: pd.DataFrame,
    wishes: gpd.GeoDataFrame,
    totals: dict[str, float],
    *,
    csv_url: str = "/wishes/stats?by=micro&format=csv",
    asset_base: str = ASSET_BASE,
) -> str:
    """The offline HTML page.

    ``grids``: micro grids (EPSG:4326) with code and name; ``stats``: one row per micro grid
    code with the columns of :data:`STAT_COLUMNS` (``GET /wishes/stats?by=micro``);
    ``wishes``: open and claimed needs (points) with id, kind, category, status, wanted_by,
    hours_waiting; ``totals``: the same statistics over everything shown.
    """
    m = local_map(DEFAULT_CENTER, zoom_start=14, asset_base=asset_base, control_scale=True)
    frame = grids.merge(stats, on="code", how="left", suffixes=("", "_stat"))
    for col in ("open", "claimed", "done", "confirmed", "volunteer_hours"):
        frame[col] = frame[col].fillna(0)
    frame["fill"] = [open_colour(int(n)) for n in frame["open"]]
    for col in ("median_hours_to_claim", "median_hours_to_fulfil"):
        frame[col] = frame[col].astype(float).round(1).astype(object)
        frame.loc[frame[col].isna(), col] = "—"
    layer = folium.FeatureGroup(name="微网格：待认领需求", show=True)
    if len(frame):
        cols = ["code", "name", *STAT_COLUMNS, "fill", "geometry"]
        folium.GeoJson(
            frame[cols].to_json(),
            style_function=lambda f: {
                "color": "#666",
                "weight": 1,
                "fillColor": f["properties"]["fill"],
                "fillOpacity": 0.6,
            },
            tooltip=folium.GeoJsonTooltip(
                ["name", "code", *STAT_COLUMNS],
                aliases=list(ALIASES),
            ),
        ).add_to(layer)
    layer.add_to(m)
    points = folium.FeatureGroup(name="待办需求与微心愿", show=True)
    for r in wishes.itertuples():
        colour = STATUS_COLOURS.get(r.status, "#555")
        label = (
            f"#{r.id} {KIND_LABELS.get(r.kind, r.kind)} · {r.category} · "
            f"{STATUS_LABELS.get(r.status, r.status)} · 已等待 {r.hours_waiting:g} 小时"
            + (f" · 期望 {r.wanted_by} 前" if r.wanted_by else "")
        )
        folium.CircleMarker(
            [r.geometry.y, r.geometry.x],
            radius=6,
            color="#fff",
            weight=1.5,
            fill=True,
            fill_color=colour,
            fill_opacity=1.0,
            tooltip=html.escape(label),
        ).add_to(points)
    points.add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    if len(grids):
        b = grids.total_bounds
        m.fit_bounds([[float(b[1]), float(b[0])], [float(b[3]), float(b[2])]])
    m.get_root().html.add_child(Element(_legend(totals, csv_url)), name="wangge_legend")
    m.get_root().title = "需求清单 · 领导视图"
    page = render_offline(m, asset_base=asset_base)
    log.info("needs page: %d grids, %d open wishes, %d kB", len(grids), len(wishes),
             len(page) // 1024)  # fmt: skip
    return page
