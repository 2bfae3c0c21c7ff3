"""Base maps (底图) of the dashboard pages: none (offline), OpenStreetMap, Tianditu, AMap, Tencent.

The default is ``none``: a plain background, nothing fetched from outside (government
intranets are offline). OpenStreetMap and Tianditu (天地图, CGCS2000 ≈ WGS84) tiles line up
with the stored WGS84 geometries. AMap (高德) and Tencent (腾讯) tiles are drawn in GCJ-02
(the "Mars" datum), so with one of them every overlay is shifted into GCJ-02 here
(:func:`shift_frame`, :func:`shift_points`), or it would sit 300–600 m off the streets.
Tianditu needs a key (``WANGGE_TIANDITU_KEY``), passed in by the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.crs import wgs84_to_gcj02
from gis.errors import GisError

log = logging.getLogger(__name__)

BASE_NAMES: tuple[str, ...] = ("none", "osm", "tianditu", "amap", "tencent")
DEFAULT_BASE = "none"

_TIANDITU = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
    "&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)


@dataclass(frozen=True)
class TileSpec:
    """One tile layer: Leaflet URL template, attribution, subdomains."""

    url: str
    attribution: str
    subdomains: str = "abc"
    max_zoom: int = 18


@dataclass(frozen=True)
class BaseMap:
    """A base-map choice: its name, Chinese label, datum ('wgs84' or 'gcj02') and tiles."""

    name: str
    label: str
    datum: str
    tiles: tuple[TileSpec, ...] = ()

    @property
    def shifts(self) -> bool:
        """True when overlays must be moved into GCJ-02 to sit on these tiles."""
        return self.datum == "gcj02"

    @property
    def offline(self) -> bool:
        """True when the page fetches no tile at all."""
        return not self.tiles


class BaseMapError(GisError):
    """An unknown base map, or Tianditu asked for without a key."""


def base_map(name: str | None = None, *, tianditu_key: str | None = None) -> BaseMap:
    """The base map called ``name`` (one of :data:`BASE_NAMES`; default ``none``).

    Raises
    ------
    BaseMapError
        For an unknown name, or for ``tianditu`` without a key.
    """
    key = (name or DEFAULT_BASE).strip().lower()
    if key == "none":
        return BaseMap("none", "无底图（离线）", "wgs84")
    if key == "osm":
        return BaseMap(
            "osm",
            "OpenStreetMap",
            "wgs84",
            (
                TileSpec(
                    "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "&copy; OpenStreetMap contributors",
                    subdomains="abc",
                    max_zoom=19,
                ),
            ),
        )
    if key == "tianditu":
        if not tianditu_key:
            msg = "the Tianditu base map needs a key: set WANGGE_TIANDITU_KEY"
            raise BaseMapError(msg)
        attribution = "&copy; 天地图 国家地理信息公共服务平台"
        return BaseMap(
            "tianditu",
            "天地图",
            "wgs84",
            tuple(
                TileSpec(
                    _TIANDITU.format(layer=layer, key=quote(tianditu_key, safe="")),
                    attribution,
                    subdomains="01234567",
                )
                for layer in ("vec", "cva")  # vector map, then its Chinese labels
            ),
        )
    if key == "amap":
        return BaseMap(
            "amap",
            "高德地图",
            "gcj02",
            (
                TileSpec(
                    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
                    "&style=8&x={x}&y={y}&z={z}",
                    "&copy; 高德地图 AutoNavi",
                    subdomains="1234",
                ),
            ),
        )
    if key == "tencent":
        return BaseMap(
            "tencent",
            "腾讯地图",
            "gcj02",
            (
                TileSpec(
                    "https://rt{s}.map.gtimg.com/tile?z={z}&x={x}&y={-y}&type=vector&styleid=0",
                    "&copy; 腾讯地图 Tencent",
                    subdomains="0123",
                ),
            ),
        )
    msg = f"unknown base map {name!r}; use one of {', '.join(BASE_NAMES)}"
    raise BaseMapError(msg)


def add_base_map(m: folium.Map, base: BaseMap) -> None:
    """Add the tile layers of ``base`` to ``m`` (nothing for ``none``)."""
    for i, spec in enumerate(base.tiles):
        folium.TileLayer(
            tiles=spec.url,
            attr=spec.attribution,
            name=base.label if i == 0 else f"{base.label}（注记）",
            subdomains=spec.subdomains,
            max_zoom=spec.max_zoom,
            overlay=i > 0,
            control=False,
        ).add_to(m)


def shift_points(
    lon: np.ndarray | pd.Series, lat: np.ndarray | pd.Series, base: BaseMap
) -> tuple[np.ndarray, np.ndarray]:
    """Overlay point coordinates (WGS84) as drawn on ``base``: GCJ-02 for AMap/Tencent."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    if not base.shifts or not len(x):
        return x, y
    return wgs84_to_gcj02(x, y)


def _gcj_xy(xy: np.ndarray) -> np.ndarray:
    gx, gy = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
    return np.column_stack([gx, gy])


def shift_geoms(geoms: np.ndarray | gpd.GeoSeries, base: BaseMap) -> np.ndarray:
    """Geometries (WGS84) as drawn on ``base``: every vertex moved into GCJ-02 if it shifts."""
    arr = np.asarray(geoms.values if isinstance(geoms, gpd.GeoSeries) else geoms, dtype=object)
    if not base.shifts or not len(arr):
        return arr
    return shapely.transform(arr, _gcj_xy)


def shift_frame(frame: gpd.GeoDataFrame, base: BaseMap) -> gpd.GeoDataFrame:
    """A copy of ``frame`` (any CRS; EPSG:4326 out) with geometries placed for ``base``.

    For GCJ-02 base maps the result is no longer true EPSG:4326: it is for drawing only.
    """
    wgs = frame if frame.crs is None else frame.to_crs(4326)
    if not base.shifts:
        return wgs
    out = wgs.copy()
    out.geometry = gpd.GeoSeries(shift_geoms(wgs.geometry, base), index=wgs.index, crs=wgs.crs)
    return out


def base_map_note(base: BaseMap) -> str:
    """One line for a legend: which base map, and whether overlays were shifted."""
    if base.shifts:
        return f"底图：{base.label}（GCJ-02，叠加图层已转换）"
    return f"底图：{base.label}"
