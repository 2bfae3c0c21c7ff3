"""Coordinate reference systems: WGS84, CGCS2000, GCJ-02, BD-09, and the one metric CRS picker.

Geometries are stored in EPSG:4326 (WGS84) and measured in a metric CRS chosen by
:func:`metric_crs`: the CGCS2000 3-degree Gauss-Krüger zone (EPSG:4534-4554, central
meridian variants, no zone prefix) whose central meridian is nearest, or UTM outside China.

GCJ-02 (火星坐标, used by AMap and Tencent) and BD-09 (Baidu) are not real datums but
published obfuscation formulas, so pyproj cannot do them. The small PyPI packages that do
(eviltransform, coord-convert, coordtransform) work point by point in pure Python and invert
GCJ-02 with a one-step approximation (errors of 1-2 m). The functions here are vectorised
with numpy (millions of points per second) and invert by fixed-point iteration to below
1 mm, which is why they are written here rather than imported.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyproj

from gis.errors import CoordinateRangeError, CRSError

WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"

InputCRS = Literal["wgs84", "cgcs2000", "gcj02", "bd09"]
INPUT_CRS_NAMES: tuple[str, ...] = ("wgs84", "cgcs2000", "gcj02", "bd09")

_ALIASES: dict[str, InputCRS] = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "epsg:4326": "wgs84",
    "4326": "wgs84",
    "crs84": "wgs84",
    "ogc:crs84": "wgs84",
    "urn:ogc:def:crs:ogc:1.3:crs84": "wgs84",
    "cgcs2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "4490": "cgcs2000",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "amap": "gcj02",
    "tencent": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "baidu": "bd09",
}

# Rough bounding box of China used by every GCJ-02 implementation: outside it the
# obfuscation is not applied, so conversions must be the identity there.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)

_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
_BD_X_PI = np.pi * 3000.0 / 180.0

Array = npt.NDArray[np.float64]


def parse_input_crs(name: str) -> InputCRS:
    """Normalise a user-declared input CRS name ('EPSG:4326', 'gcj-02', 'baidu'...)."""
    key = str(name).strip().lower()
    try:
        return _ALIASES[key]
    except KeyError:
        allowed = ", ".join(INPUT_CRS_NAMES)
        msg = f"unknown input CRS {name!r}; use one of {allowed} (or EPSG:4326 / EPSG:4490)"
        raise CRSError(msg) from None


@lru_cache(maxsize=64)
def _gk_crs(central_meridian: int) -> pyproj.CRS:
    # EPSG:4534 is CGCS2000 / 3-degree Gauss-Kruger CM 75E; codes step by one per 3 degrees.
    return pyproj.CRS.from_epsg(4534 + (central_meridian - 75) // 3)


def metric_crs(lon: float, lat: float) -> pyproj.CRS:
    """Pick the metric CRS for work around ``(lon, lat)`` in degrees.

    Inside China's longitudes (75E-135E) this is the CGCS2000 3-degree Gauss-Krüger zone
    with the nearest central meridian; elsewhere the UTM zone that pyproj suggests.
    """
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise CoordinateRangeError(f"cannot pick a metric CRS for non-finite point ({lon}, {lat})")
    cm = int(round(lon / 3.0) * 3)
    if 75 <= cm <= 135 and -10.0 <= lat <= 60.0:
        return _gk_crs(cm)
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(lon, lat, lon, lat),
    )
    if not infos:
        raise CRSError(f"no metric CRS known for ({lon}, {lat})")
    return pyproj.CRS.from_epsg(int(infos[0].code))


def metric_crs_for(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> pyproj.CRS:
    """Metric CRS for a geographic layer, chosen at the centre of its bounds."""
    _require_crs(gdf)
    geo = gdf.to_crs(WGS84) if not gdf.crs.equals(pyproj.CRS(WGS84)) else gdf
    minx, miny, maxx, maxy = geo.total_bounds
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        raise CRSError("cannot pick a metric CRS for an empty layer")
    return metric_crs((minx + maxx) / 2.0, (miny + maxy) / 2.0)


def to_metric(gdf: gpd.GeoDataFrame, crs: pyproj.CRS | None = None) -> gpd.GeoDataFrame:
    """Reproject a layer to its metric CRS (or ``crs`` when given); refuses a layer with no CRS."""
    _require_crs(gdf)
    return gdf.to_crs(crs if crs is not None else metric_crs_for(gdf))


def _require_crs(gdf: gpd.GeoDataFrame | gpd.GeoSeries) -> None:
    if gdf.crs is None:
        raise CRSError("layer has no CRS; declare it (e.g. EPSG:4326) before measuring")


def in_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Mask of points inside the rough China box where GCJ-02 obfuscation applies."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    return (x >= _CHINA_LON[0]) & (x <= _CHINA_LON[1]) & (y >= _CHINA_LAT[0]) & (y <= _CHINA_LAT[1])


def check_lonlat(lon: npt.ArrayLike, lat: npt.ArrayLike, *, require_china: bool = False) -> None:
    """Raise :class:`CoordinateRangeError` naming the first bad coordinate pair.

    Detects non-finite values, out-of-range values, and the common lat/lon swap (a pair that
    is valid only when read the other way round, or that only lands in China swapped).
    """
    x = np.atleast_1d(np.asarray(lon, dtype=float))
    y = np.atleast_1d(np.asarray(lat, dtype=float))
    if x.shape != y.shape:
        raise CoordinateRangeError(f"lon and lat differ in length ({x.size} vs {y.size})")
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise CoordinateRangeError(f"coordinate #{i} is not finite: ({x[i]}, {y[i]})")
    out = (np.abs(x) > 180.0) | (np.abs(y) > 90.0)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        hint = " (lat/lon look swapped)" if abs(y[i]) <= 180 and abs(x[i]) <= 90 else ""
        raise CoordinateRangeError(
            f"coordinate #{i} ({x[i]}, {y[i]}) is out of range for (lon, lat){hint}"
        )
    if require_china:
        inside = in_china(x, y)
        if not inside.all():
            i = int(np.flatnonzero(~inside)[0])
            swapped = bool(in_china(y[i : i + 1], x[i : i + 1])[0])
            hint = "; lat/lon look swapped" if swapped else ""
            raise CoordinateRangeError(f"coordinate #{i} ({x[i]}, {y[i]}) lies outside China{hint}")


def _gcj_delta(lon: Array, lat: Array) -> tuple[Array, Array]:
    """Offset (dlon, dlat) in degrees that GCJ-02 adds to a WGS84 point."""
    x = lon - 105.0
    y = lat - 35.0
    sx = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sx + common
    dlat += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sx + common
    dlon += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _GCJ_EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_GCJ_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Array, Array]:
    """WGS84 → GCJ-02 (the published forward formula; identity outside China)."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    dx, dy = _gcj_delta(x, y)
    return x + dx, y + dy


def gcj02_to_wgs84(
    lon: npt.ArrayLike, lat: npt.ArrayLike, *, tol_deg: float = 1e-10, max_iter: int = 30
) -> tuple[Array, Array]:
    """GCJ-02 → WGS84 by fixed-point iteration of the forward formula (error < 1 mm)."""
    gx = np.asarray(lon, dtype=float)
    gy = np.asarray(lat, dtype=float)
    wx, wy = gx.copy(), gy.copy()
    for _ in range(max_iter):
        fx, fy = wgs84_to_gcj02(wx, wy)
        ex, ey = fx - gx, fy - gy
        wx = wx - ex
        wy = wy - ey
        if np.all(np.abs(ex) < tol_deg) and np.all(np.abs(ey) < tol_deg):
            break
    return wx, wy


def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Array, Array]:
    """GCJ-02 → BD-09 (Baidu's published forward formula)."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(
    lon: npt.ArrayLike, lat: npt.ArrayLike, *, tol_deg: float = 1e-10, max_iter: int = 30
) -> tuple[Array, Array]:
    """BD-09 → GCJ-02: the usual closed-form guess refined by fixed-point iteration."""
    bx = np.asarray(lon, dtype=float)
    by = np.asarray(lat, dtype=float)
    x = bx - 0.0065
    y = by - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    gx, gy = z * np.cos(theta), z * np.sin(theta)
    for _ in range(max_iter):
        fx, fy = gcj02_to_bd09(gx, gy)
        ex, ey = fx - bx, fy - by
        gx = gx - ex
        gy = gy - ey
        if np.all(np.abs(ex) < tol_deg) and np.all(np.abs(ey) < tol_deg):
            break
    return gx, gy


def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Array, Array]:
    """WGS84 → BD-09 (through GCJ-02)."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Array, Array]:
    """BD-09 → WGS84 (through GCJ-02)."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str) -> tuple[Array, Array]:
    """Convert input coordinates in a declared CRS to WGS84 (the edge conversion).

    CGCS2000 and WGS84 differ by centimetres in China, below GPS noise, so CGCS2000 is
    taken as-is (pyproj does the same null transformation between EPSG:4490 and 4326).
    """
    name = parse_input_crs(crs)
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    check_lonlat(x, y)
    if name in ("wgs84", "cgcs2000"):
        return x.astype(float, copy=True), y.astype(float, copy=True)
    if name == "gcj02":
        return gcj02_to_wgs84(x, y)
    return bd09_to_wgs84(x, y)


def from_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, crs: str) -> tuple[Array, Array]:
    """Convert WGS84 coordinates to a display CRS (e.g. GCJ-02 for AMap base tiles)."""
    name = parse_input_crs(crs)
    if name in ("wgs84", "cgcs2000"):
        return np.asarray(lon, dtype=float).copy(), np.asarray(lat, dtype=float).copy()
    if name == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    return wgs84_to_bd09(lon, lat)
