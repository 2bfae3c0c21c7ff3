"""The patrol page (巡查地图): a chosen day's cleaned tracks, each micro grid coloured by its
patrol status, the streets no track came within 20 m of, and the key households' buildings
coloured by this week's visit compliance (重点户走访). Personal data (names, unit, room) only
when the caller passes them, i.e. for a role allowed to read them; the page is otherwise
anonymous (kind of household, visits made and due). Base map switchable, overlays shifted
into GCJ-02 for AMap/Tencent."""

from __future__ import annotations

import html
import logging
import re
from datetime import date
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element

from maps.assets import ASSET_BASE, local_map, render_offline
from maps.basemaps import BaseMap, add_base_map, base_map, base_map_note, shift_frame
from maps.layers import fit_bounds

log = logging.getLogger(__name__)

DEFAULT_CENTER = (34.80, 113.55)
COORD_DECIMALS = 5  # about 1 m
#: Grid status colours: patrolled (已巡查), touched only briefly (巡查不足), not entered (未巡查).
STATUS_STYLE: dict[str, tuple[str, str]] = {
    "patrolled": ("#1a9850", "已巡查（≥10分钟）"),
    "short": ("#fee08b", "巡查不足"),
    "none": ("#d73027", "未巡查"),
}
TRACK_COLOUR = "#2c7fb8"
UNCOVERED_COLOUR = "#7b3294"
#: Key-household buildings: every household visited this week, some, none.
VISIT_STYLE: dict[str, tuple[str, str]] = {
    "all": ("#1a9850", "本周全部走访"),
    "some": ("#fdae61", "部分走访"),
    "none": ("#d73027", "本周未走访"),
}
LAYERS = ("微网格巡查状态", "巡查轨迹", "未覆盖街道", "重点户走访")
BASE_LABELS = {
    "none": "无（离线）",
    "osm": "OSM",
    "tianditu": "天地图",
    "amap": "高德",
    "tencent": "腾讯",
}


def _status(minutes: float, patrolled: bool) -> str:
    if patrolled:
        return "patrolled"
    return "short" if minutes > 0 else "none"


def _legend(
    day: date,
    counts: dict[str, int],
    n_tracks: int,
    share: float | None,
    visits: tuple[int, int, dict[str, int]] | None,
    base: BaseMap,
    personal: bool,
) -> str:
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
    if visits is not None:
        made, due, by_building = visits
        share_txt = f"{made / due:.1%}" if due else "—"
        rows.append(
            '<div class="wangge-legend-row" style="margin-top:3px">'
            f"<b>重点户走访（本周，每户至少1次）</b>：{made:,}/{due:,} 户，{share_txt}</div>"
        )
        for key, (colour, label) in VISIT_STYLE.items():
            rows.append(
                f'<div class="wangge-legend-row"><span style="display:inline-block;width:18px;'
                f'height:10px;margin-right:6px;background:{colour};border:1px solid #333">'
                f"</span>{html.escape(label)}（{by_building.get(key, 0)} 栋）</div>"
            )
        note = "含个人信息（已记入审计日志）" if personal else "不含个人信息"
        rows.append(f'<div class="wangge-legend-row" style="color:#666">{note}</div>')
    rows.append(
        f'<div class="wangge-legend-row" style="color:#666">{html.escape(base_map_note(base))}'
        "</div>"
    )
    title = f"巡查地图 {day.isoformat()}"
    return (
        '<div id="wangge-legend" style="position:fixed;bottom:44px;left:10px;z-index:1000;'
        "background:rgba(255,255,255,.93);padding:8px 12px;border-radius:6px;"
        'font:13px/1.6 sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f'<div style="font-size:15px;font-weight:bold;margin-bottom:2px">{html.escape(title)}'
        f"</div>{''.join(rows)}</div>"
    )


def _form(day: date, base: BaseMap, bases: tuple[str, ...]) -> str:
    """A GET form: the day to show and the base map."""
    opts = "".join(
        f'<option value="{b}"{" selected" if b == base.name else ""}>'
        f"{BASE_LABELS.get(b, b)}</option>"
        for b in bases
    )
    return (
        '<form id="wangge-filters" method="get" style="position:fixed;top:10px;left:54px;'
        "z-index:1000;background:rgba(255,255,255,.94);padding:6px 10px;border-radius:6px;"
        'font:12px sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3)">'
        f'<label>日期 <input type="date" name="date" value="{day.isoformat()}"></label> '
        f'<label>底图 <select name="base">{opts}</select></label> '
        '<button type="submit">查询</button></form>'
    )


def visit_buildings(households: pd.DataFrame) -> gpd.GeoDataFrame:
    """Key households of the week grouped by building: households, visited, kinds, status.

    ``households`` has building_id, kind, visits (this week), geometry (the building) and,
    only when personal data are allowed, ``people`` (a label per household).
    """
    if households.empty:
        return gpd.GeoDataFrame(
            {"building_id": [], "households": [], "visited": [], "kinds": [], "status": []},
            geometry=[],
            crs=4326,
        )
    h = households.assign(visited=(households["visits"] > 0).astype(int))
    agg = h.groupby("building_id", sort=True).agg(
        households=("kind", "size"), visited=("visited", "sum"), address=("address", "first")
    )
    per_kind = h.groupby(["building_id", "kind"], sort=True).size()
    kinds: dict[object, list[str]] = {}
    for (b, k), n in per_kind.items():
        kinds.setdefault(b, []).append(f"{k}{n}")
    agg["kinds"] = ["、".join(kinds[b]) for b in agg.index]
    first = h.drop_duplicates("building_id").set_index("building_id")
    agg["geometry"] = first.loc[agg.index, "geometry"].to_numpy()
    if "people" in h.columns:
        agg["people"] = h.groupby("building_id", sort=True)["people"].agg("；".join)
    agg["status"] = np.where(
        agg["visited"] >= agg["households"], "all", np.where(agg["visited"] > 0, "some", "none")
    )
    return gpd.GeoDataFrame(agg.reset_index(), geometry="geometry", crs=4326)


def _rounded(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Coordinates to ~1 m (the tracks come simplified to ~5 m): a demo day of 557 tracks
    is about 2 MB."""
    if not len(frame):
        return frame
    out = frame.copy()
    out.geometry = shapely.transform(
        out.geometry.to_numpy(), lambda xy: np.round(xy, COORD_DECIMALS)
    )
    return out


class _RawScript(Element):
    """Script text put into the page as it is (no template: the geometry is 2 MB)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: object) -> str:
        return self._text


class _FrameGeoJson(folium.GeoJson):
    """A ``folium.GeoJson`` of a GeoDataFrame whose geometries are written once, by
    shapely's vectorised GeoJSON writer, straight into the page script.

    folium keeps the data as a dict and writes it with ``json.dumps``: building that dict
    from the geometries' GeoJSON text (``json.loads`` per feature) and writing it again
    took 0.6 s for a demo day's 557 tracks. Here folium gets the properties (for the
    style map and the tooltip) and a placeholder per geometry, which the text replaces
    after rendering. Properties without ids, NaN as null, as ``GeoDataFrame.to_json``.
    """

    _GEOMETRY = re.compile(r'"geometry": \{"coordinates": (\d+), "type": "@"\}')

    def __init__(self, frame: gpd.GeoDataFrame, **kwargs: Any) -> None:
        attrs = pd.DataFrame(frame.drop(columns=frame.geometry.name))
        attrs = attrs.astype(object).where(attrs.notna(), None)  # NaN -> null, as to_json
        props = attrs.to_dict(orient="records")
        self._geometries = shapely.to_geojson(frame.geometry.to_numpy())
        data = {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "properties": p, "geometry": {"type": "@", "coordinates": i}}
                for i, p in enumerate(props)
            ],
        }
        super().__init__(data, **kwargs)

    def render(self, **kwargs: Any) -> None:
        super().render(**kwargs)
        scripts = self.get_root().script._children  # type: ignore[attr-defined]
        text = scripts[self.get_name()]._template_str
        geoms = self._geometries
        # inside the script a property's own quotes are escaped (\"), so only the real
        # geometry keys match
        scripts[self.get_name()] = _RawScript(
            self._GEOMETRY.sub(lambda m: f'"geometry": {geoms[int(m.group(1))]}', text)
        )


def patrol_page_html(
    day: date,
    grids: gpd.GeoDataFrame,
    tracks: gpd.GeoDataFrame,
    uncovered: gpd.GeoDataFrame,
    *,
    street_share: float | None = None,
    households: pd.DataFrame | None = None,
    base: BaseMap | None = None,
    bases: tuple[str, ...] = ("none", "osm", "tianditu", "amap", "tencent"),
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
    households
        Key households with building_id, kind, visits (this week), address, geometry (the
        building, EPSG:4326) and, only for a role allowed personal data, ``people``. None:
        no visit layer.
    base
        Base map (default none: offline); AMap/Tencent shift every overlay into GCJ-02.
    """
    base = base or base_map("none")
    m = local_map(
        DEFAULT_CENTER, zoom_start=14, asset_base=asset_base, control_scale=True, zoom_snap=0.25
    )
    add_base_map(m, base)
    grids, tracks, uncovered = (_rounded(shift_frame(f, base)) for f in (grids, tracks, uncovered))
    frames = [f for f in (grids, tracks) if len(f)]
    if frames:
        # fitted before any layer is added: Leaflet then projects the day's 93,000 track
        # vertices once, not at the default view and again after the fit (0.3 s in Chromium)
        bb = pd.concat([f.geometry for f in frames]).total_bounds
        fit_bounds(m, [[float(bb[1]), float(bb[0])], [float(bb[3]), float(bb[2])]])
    counts: dict[str, int] = {}
    if len(grids):
        g = grids.copy()
        g["status"] = [
            _status(float(a), bool(b)) for a, b in zip(g["minutes"], g["patrolled"], strict=True)
        ]
        counts = g["status"].value_counts().to_dict()
        g["minutes"] = g["minutes"].astype(float).round(1)
        g["distance_m"] = g["distance_m"].astype(float).round(0)
        g["name"] = [html.escape(str(v)) for v in g["name"]]
        g["label"] = [STATUS_STYLE[v][1] for v in g["status"]]
        group = folium.FeatureGroup(name=LAYERS[0], show=True)
        _FrameGeoJson(
            g[["code", "name", "minutes", "distance_m", "workers", "status", "label", "geometry"]],
            style_function=lambda f: {
                "color": "#555",
                "weight": 1,
                "fillColor": STATUS_STYLE[f["properties"]["status"]][0],
                "fillOpacity": 0.35,
            },
            tooltip=folium.GeoJsonTooltip(
                ["name", "label", "minutes", "distance_m", "workers"],
                aliases=["网格", "状态", "巡查分钟", "巡查距离(米)", "网格员人数"],
            ),
        ).add_to(group)
        group.add_to(m)
    t_group = folium.FeatureGroup(name=LAYERS[1], show=True)
    if len(tracks):
        t = tracks[["id", "staff_name", "distance_m", "geometry"]].copy()
        t["staff_name"] = [html.escape(str(v)) for v in t["staff_name"]]
        _FrameGeoJson(
            t,
            style_function=lambda _f: {"color": TRACK_COLOUR, "weight": 2, "opacity": 0.8},
            tooltip=folium.GeoJsonTooltip(
                ["staff_name", "distance_m"], aliases=["网格员", "距离(米)"]
            ),
        ).add_to(t_group)
    t_group.add_to(m)
    u_group = folium.FeatureGroup(name=LAYERS[2], show=True)
    if len(uncovered):
        _FrameGeoJson(
            uncovered[["length_m", "geometry"]],
            style_function=lambda _f: {"color": UNCOVERED_COLOUR, "weight": 3, "opacity": 0.9},
            tooltip=folium.GeoJsonTooltip(["length_m"], aliases=["未覆盖长度(米)"]),
        ).add_to(u_group)
    u_group.add_to(m)
    visits = None
    personal = households is not None and "people" in households.columns
    if households is not None:
        v_group = folium.FeatureGroup(name=LAYERS[3], show=True)
        b = visit_buildings(households)
        if len(b):
            b = _rounded(shift_frame(b, base))
            cols = ["building_id", "households", "visited", "kinds", "status", "address"]
            fields, aliases = (
                ["kinds", "visited", "households", "address"],
                [
                    "重点户",
                    "本周已走访(户)",
                    "应走访(户)",
                    "楼栋",
                ],
            )
            if personal:
                cols.append("people")
                fields.append("people")
                aliases.append("户主（个人信息）")
            data = b[[*cols, "geometry"]].copy()
            for c in ("kinds", "address", *(["people"] if personal else [])):
                data[c] = [html.escape(str(v)) for v in data[c]]
            _FrameGeoJson(
                data,
                style_function=lambda f: {
                    "color": "#333",
                    "weight": 1,
                    "fillColor": VISIT_STYLE[f["properties"]["status"]][0],
                    "fillOpacity": 0.85,
                },
                tooltip=folium.GeoJsonTooltip(fields, aliases=aliases),
            ).add_to(v_group)
        v_group.add_to(m)
        by_building = b["status"].value_counts().to_dict() if len(b) else {}
        made = int((households["visits"] > 0).sum())
        visits = (made, len(households), by_building)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    root = m.get_root()
    root.html.add_child(
        Element(_legend(day, counts, len(tracks), street_share, visits, base, personal)),
        name="wangge_legend",
    )
    root.html.add_child(Element(_form(day, base, bases)), name="wangge_form")
    root.title = f"巡查地图 {day.isoformat()}"
    page = render_offline(m, asset_base=asset_base)
    log.info("patrol page %s: %d tracks, %d kB", day, len(tracks), len(page) // 1024)
    return page
