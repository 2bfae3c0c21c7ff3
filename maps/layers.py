"""Map layers built from GeoDataFrames: grid outlines per level and an incident heat layer."""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Iterable

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from folium import plugins

from maps.assets import ASSET_BASE, localise
from maps.style import (
    HEAT_GRADIENT,
    HEAT_LABEL,
    HIDDEN_AT_START,
    LEVEL_ORDER,
    LEVEL_STYLE,
    level_label,
)

log = logging.getLogger(__name__)

MAX_HEAT_ROWS = 50_000  # above this heat_layer aggregates the points itself
HEAT_CELL_M = 25.0  # edge of the guard's aggregation cells, metres
COORD_DECIMALS = 6  # about 0.1 m: enough for a screen, half the bytes of full precision
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQUATOR = 111_320.0

GRID_TOOLTIP: tuple[tuple[str, str], ...] = (
    ("name", "名称"),
    ("code", "编码"),
    ("households", "户数"),
)


def _to_wgs84(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The frame in EPSG:4326 (a frame without a CRS is taken to be in it already)."""
    return frame if frame.crs is None else frame.to_crs(4326)


def _round_coords(geoms: gpd.GeoSeries) -> np.ndarray:
    return shapely.transform(np.asarray(geoms.values), lambda xy: np.round(xy, COORD_DECIMALS))


def _as_int_or_none(values: pd.Series) -> list[int | None]:
    return [None if pd.isna(v) else int(v) for v in values]


def fit_bounds(m: folium.Map, bounds: list[list[float]]) -> None:
    """Fit ``m`` to ``[[south, west], [north, east]]`` at once, without the zoom animation.

    The map opens at a default zoom and then fits the data; animated, a jump of three or four
    zoom levels scales Leaflet's SVG and canvas layers by 2**3.75 (≈ 13×) during the
    animation, and Chromium keeps rastering them at that scale afterwards: the tiles exceed
    its raster budget and large parts of the filled shapes are never drawn (seen in headless
    screenshots, GPU on or off, and reproduced by panning). ``animate: false`` avoids it.
    """
    fb = folium.map.FitBounds(bounds)
    fb.options["animate"] = False
    m.add_child(fb)


def level_pane(level: str) -> str:
    """Name of the Leaflet pane that holds the outlines of one level (see :func:`add_panes`)."""
    return f"wangge-{level}"


def add_panes(m: folium.Map, levels: Iterable[str] = LEVEL_ORDER) -> dict[str, str]:
    """Create one map pane per level, stacked in ``levels`` order (first at the bottom).

    Layers in their own panes keep that order when they are switched off and on again in the
    layer control (in one shared pane the last one switched on would cover the others).
    Panes sit just above Leaflet's overlay pane (z-index 400), where the heat canvas goes.

    Returns
    -------
    dict
        Level -> pane name, to pass to :func:`grid_outline_layer`.
    """
    panes = {}
    for i, level in enumerate(levels):
        panes[level] = level_pane(level)
        folium.map.CustomPane(panes[level], z_index=410 + i, pointer_events=True).add_to(m)
    return panes


def grid_outline_layer(
    grids: gpd.GeoDataFrame, level: str, *, pane: str | None = None
) -> folium.FeatureGroup:
    """Outlines of the grids of one level, with a tooltip of name, code and households.

    Parameters
    ----------
    grids
        Columns code, name, level, households and geometry (EPSG:4326, or no CRS); rows of
        other levels are ignored.
    level
        'street', 'community', 'grid', 'micro' or 'dedicated'.
    pane
        Map pane to draw in (made by :func:`add_panes`); default Leaflet's overlay pane.

    Returns
    -------
    folium.FeatureGroup
        Named in Chinese (e.g. 微网格) for the layer control; micro grids start hidden.
    """
    layer = folium.FeatureGroup(name=level_label(level), show=level not in HIDDEN_AT_START)
    part = grids.loc[grids["level"] == level, ["code", "name", "households", "geometry"]]
    if part.empty:
        return layer
    part = _to_wgs84(part)
    # The tooltip writes the values into innerHTML: escape them here.
    props = pd.DataFrame(
        {
            "code": [html.escape(str(v)) for v in part["code"]],
            "name": [html.escape(str(v)) for v in part["name"]],
            "households": _as_int_or_none(part["households"]),
        }
    )
    data = gpd.GeoDataFrame(props, geometry=_round_coords(part.geometry), crs=4326)
    style = dict(LEVEL_STYLE.get(level, {}))
    highlight = {"weight": float(style.get("weight", 1)) + 2, "color": "#f39c12"}  # type: ignore[arg-type]
    folium.GeoJson(
        data.to_json(drop_id=True),
        name=level_label(level),
        control=False,
        style_function=lambda _f, s=style: dict(s),
        highlight_function=lambda _f, h=highlight: dict(h),
        tooltip=folium.GeoJsonTooltip(
            fields=[f for f, _ in GRID_TOOLTIP], aliases=[a for _, a in GRID_TOOLTIP]
        ),
        **({"pane": pane} if pane else {}),
    ).add_to(layer)
    return layer


def aggregate_cells(points: pd.DataFrame, cell_m: float = HEAT_CELL_M) -> pd.DataFrame:
    """Sum weights on a square cell grid of about ``cell_m`` metres (cell centres).

    The cell is ``cell_m`` converted to degrees at the points' mean latitude, so it is square
    on the ground near the data (a district or a city), not across a continent.

    Returns
    -------
    pandas.DataFrame
        Columns lon, lat, weight; one row per non-empty cell.
    """
    lat0 = float(points["lat"].mean()) if len(points) else 0.0
    dlat = cell_m / _M_PER_DEG_LAT
    dlon = cell_m / (_M_PER_DEG_LON_EQUATOR * max(math.cos(math.radians(lat0)), 1e-6))
    frame = pd.DataFrame(
        {
            "gx": np.floor(points["lon"].to_numpy(float) / dlon),
            "gy": np.floor(points["lat"].to_numpy(float) / dlat),
            "weight": points["weight"].to_numpy(float),
        }
    )
    agg = frame.groupby(["gx", "gy"], sort=True, as_index=False)["weight"].sum()
    return pd.DataFrame(
        {
            "lon": (agg["gx"].to_numpy() + 0.5) * dlon,
            "lat": (agg["gy"].to_numpy() + 0.5) * dlat,
            "weight": agg["weight"].to_numpy(),
        }
    )


def _cap_rows(points: pd.DataFrame) -> pd.DataFrame:
    """Aggregate to 25 m cells, then coarser, until at most MAX_HEAT_ROWS rows are left."""
    cell_m = HEAT_CELL_M
    cells = aggregate_cells(points, cell_m)
    while len(cells) > MAX_HEAT_ROWS:
        cell_m *= 2
        cells = aggregate_cells(points, cell_m)
    log.warning(
        "heat_layer got %d rows (cap %d): aggregated to %d cells of %.0f m; "
        "pass aggregated cells instead",
        len(points),
        MAX_HEAT_ROWS,
        len(cells),
        cell_m,
    )
    return cells


def heat_layer(points: pd.DataFrame, *, asset_base: str = ASSET_BASE) -> folium.FeatureGroup:
    """Incident heatmap (事件热力图) from aggregated cells.

    Parameters
    ----------
    points
        Columns lon, lat (WGS84) and weight. Pass **aggregated cells** (e.g. incident counts
        per 50 m cell from the database), never raw incidents: a year of a city's incidents is
        millions of points that no page can carry. As a guard, more than 50,000 rows are
        aggregated here to cells of about 25 m (coarser if still too many).
    asset_base
        URL prefix under which the leaflet.heat plugin is served.

    Returns
    -------
    folium.FeatureGroup
        Holding one ``plugins.HeatMap``; weights are scaled to 0..1 by the largest.
    """
    missing = {"lon", "lat", "weight"} - set(points.columns)
    if missing:
        msg = f"heat points need columns lon, lat, weight; missing {sorted(missing)}"
        raise ValueError(msg)
    pts = points[["lon", "lat", "weight"]].dropna()
    pts = pts[pts["weight"] > 0]
    if len(pts) > MAX_HEAT_ROWS:
        pts = _cap_rows(pts)
    layer = folium.FeatureGroup(name=HEAT_LABEL)
    top = float(pts["weight"].max()) if len(pts) else 1.0
    # folium wants [lat, lon]: the one place in maps/ where the order flips.
    data = np.c_[
        pts["lat"].to_numpy(float).round(COORD_DECIMALS),
        pts["lon"].to_numpy(float).round(COORD_DECIMALS),
        (pts["weight"].to_numpy(float) / top).round(4),
    ].tolist()
    heat = plugins.HeatMap(
        data,
        name=HEAT_LABEL,
        control=False,
        radius=14,
        blur=18,
        min_opacity=0.3,
        # leaflet.heat dims every point by 2**(zoom - max_zoom) below max_zoom; the cells are
        # already aggregated, so show them at full weight at every zoom.
        max_zoom=0,
        gradient=HEAT_GRADIENT,
    )
    localise(heat, asset_base)
    heat.add_to(layer)
    return layer
