"""Brute-force reference answers for grid location (shapely covers + smallest code wins)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely


def brute_locate(grids: gpd.GeoDataFrame, lon: np.ndarray, lat: np.ndarray) -> list[str | None]:
    """Code of the grid covering each point; on shared edges the smallest code; else None."""
    ordered = grids.sort_values("code")
    geoms = ordered.geometry.values
    codes = ordered["code"].tolist()
    shapely.prepare(geoms)
    points = shapely.points(lon, lat)
    out: list[str | None] = []
    for pt in points:
        hit = shapely.covers(geoms, pt)
        out.append(codes[int(np.argmax(hit))] if hit.any() else None)
    return out


def sample_points(grids: gpd.GeoDataFrame, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points: 70% random over the bounds (+5% margin), 15% on grid vertices (shared
    corners and edges), 15% at midpoints of boundary segments."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = grids.total_bounds
    dx, dy = (x1 - x0) * 0.05, (y1 - y0) * 0.05
    n_vert = n_mid = int(n * 0.15)
    n_rand = n - n_vert - n_mid
    rx = rng.uniform(x0 - dx, x1 + dx, n_rand)
    ry = rng.uniform(y0 - dy, y1 + dy, n_rand)
    coords = shapely.get_coordinates(grids.boundary.values)
    pick = rng.integers(0, len(coords), n_vert)
    vx, vy = coords[pick, 0], coords[pick, 1]
    pick2 = rng.integers(0, len(coords) - 1, n_mid)
    mx = (coords[pick2, 0] + coords[pick2 + 1, 0]) / 2.0
    my = (coords[pick2, 1] + coords[pick2 + 1, 1]) / 2.0
    return np.concatenate([rx, vx, mx]), np.concatenate([ry, vy, my])
