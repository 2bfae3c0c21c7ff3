"""Household coverage of the service circles (服务圈覆盖): per band, per station kind, per grid.

A building is reached by walking from its door to the nearest street (straight offset to the
nearest edge, 入户距离), then along the streets to a station. The same counts with
straight-line circles (radius = band distance) are given beside them, to show what the
street network takes away.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from gis.crs import WGS84
from gis.errors import EmptyInputError, GisError
from gis.isochrones import BANDS_MIN, node_distances
from gis.network import WALK_SPEED_KMH, WalkNetwork, attach_points, band_metres, snap_points


@dataclass(frozen=True)
class Access:
    """How each demand point joins the network: edge, metres along it, straight offset."""

    edge: npt.NDArray[np.int64]
    along_m: npt.NDArray[np.float64]
    offset_m: npt.NDArray[np.float64]


def access_points(net: WalkNetwork, points_metric: npt.NDArray[np.object_]) -> Access:
    """Snap metric points (building doors, approximated by a point inside) to the network."""
    e, t, off = snap_points(net, points_metric)
    return Access(edge=e, along_m=t, offset_m=off)


def walk_to_points(
    net: WalkNetwork, dist: npt.NDArray[np.float64], access: Access
) -> npt.NDArray[np.float64]:
    """Walking metres from each source row of ``dist`` to each access point.

    ``offset + min(d(u) + along, d(v) + L - along)`` for the point's edge ``(u, v, L)``.
    Returns shape ``(n_sources, n_points)``.
    """
    e = access.edge
    du = dist[:, net.source[e]]
    dv = dist[:, net.target[e]]
    via = np.minimum(du + access.along_m, dv + (net.length_m[e] - access.along_m))
    return via + access.offset_m


def _band_of(dist_m: npt.NDArray[np.float64], budgets: list[float], bands: tuple[float, ...]):
    out = np.full(dist_m.shape, np.nan)
    for minutes, budget in sorted(zip(bands, budgets, strict=True), reverse=True):
        out[dist_m <= budget] = minutes
    return out


@dataclass(frozen=True)
class Coverage:
    """Coverage result.

    ``buildings``: one row per building (walk_m, straight_m, band, straight_band, nearest
    station, geometry in WGS84). ``summary``: households and residents per scope
    (overall / kind / grid) and band, by street and by straight line, and the difference.
    """

    buildings: gpd.GeoDataFrame
    summary: pd.DataFrame

    def outside(self, minutes: float = 15) -> gpd.GeoDataFrame:
        """Buildings farther than ``minutes`` of walking from every station."""
        b = self.buildings
        return b[~(b["band"] <= minutes)]


def _check(stations: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame) -> None:
    if len(stations) == 0:
        raise EmptyInputError("no stations")
    if len(buildings) == 0:
        raise EmptyInputError("no buildings")
    for col in ("station_id", "kind"):
        if col not in stations.columns:
            raise GisError(f"stations need a {col!r} column")
    for col in ("building_id", "households", "residents", "grid"):
        if col not in buildings.columns:
            raise GisError(f"buildings need a {col!r} column")


def coverage(
    net: WalkNetwork,
    stations: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    bands_min: tuple[float, ...] = BANDS_MIN,
    speed_kmh: float = WALK_SPEED_KMH,
) -> Coverage:
    """Households and residents within each band of the stations, by street and straight line.

    Parameters
    ----------
    net
        Walking network (metric CRS).
    stations
        Points with ``station_id`` and ``kind`` (any CRS).
    buildings
        Polygons or points with ``building_id``, ``households``, ``residents``, ``grid``.
    """
    _check(stations, buildings)
    budgets = [band_metres(m, speed_kmh=speed_kmh) for m in bands_min]
    st_pts = stations.to_crs(net.crs).geometry.to_numpy()
    b_metric = buildings.to_crs(net.crs)
    b_pts = shapely.point_on_surface(b_metric.geometry.to_numpy())
    attached, st_nodes = attach_points(net, st_pts)
    access = access_points(attached, b_pts)
    d = node_distances(attached, st_nodes, limit_m=max(budgets) + 1e-6)
    walk = walk_to_points(attached, d, access)  # (stations, buildings)
    straight = shapely.distance(st_pts[:, None], b_pts[None, :])
    kinds = stations["kind"].to_numpy()
    nearest = np.argmin(walk, axis=0)
    out = gpd.GeoDataFrame(
        {
            "building_id": buildings["building_id"].to_numpy(),
            "households": buildings["households"].to_numpy(),
            "residents": buildings["residents"].to_numpy(),
            "grid": buildings["grid"].to_numpy(),
            "walk_m": walk.min(axis=0),
            "straight_m": straight.min(axis=0),
            "station_id": np.where(
                np.isfinite(walk.min(axis=0)), stations["station_id"].to_numpy()[nearest], -1
            ),
        },
        geometry=buildings.to_crs(WGS84).geometry.to_numpy(),
        crs=WGS84,
    )
    out["band"] = _band_of(out["walk_m"].to_numpy(), budgets, bands_min)
    out["straight_band"] = _band_of(out["straight_m"].to_numpy(), budgets, bands_min)
    rows: list[dict[str, object]] = []

    def add(scope: str, key: str, mask: npt.NDArray[np.bool_], w: npt.NDArray, s: npt.NDArray):
        hh = out["households"].to_numpy()[mask]
        rs = out["residents"].to_numpy()[mask]
        for minutes, budget in zip(bands_min, budgets, strict=True):
            inw, ins = w[mask] <= budget, s[mask] <= budget
            rows.append(
                {
                    "scope": scope,
                    "key": key,
                    "minutes": minutes,
                    "households_total": int(hh.sum()),
                    "households": int(hh[inw].sum()),
                    "residents": int(rs[inw].sum()),
                    "households_straight": int(hh[ins].sum()),
                    "residents_straight": int(rs[ins].sum()),
                    "share": float(hh[inw].sum() / hh.sum()) if hh.sum() else 0.0,
                    "share_straight": float(hh[ins].sum() / hh.sum()) if hh.sum() else 0.0,
                }
            )

    all_mask = np.ones(len(out), dtype=bool)
    walk_min, straight_min = out["walk_m"].to_numpy(), out["straight_m"].to_numpy()
    add("overall", "all", all_mask, walk_min, straight_min)
    for kind in sorted(set(kinds.tolist())):
        sel = kinds == kind
        add("kind", str(kind), all_mask, walk[sel].min(axis=0), straight[sel].min(axis=0))
    grids = out["grid"].astype("string").fillna("").to_numpy()
    for g in sorted(set(grids.tolist())):
        add("grid", g, grids == g, walk_min, straight_min)
    summary = pd.DataFrame(rows)
    summary["households_difference"] = summary["households_straight"] - summary["households"]
    return Coverage(buildings=out, summary=summary)
