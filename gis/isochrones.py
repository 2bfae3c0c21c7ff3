"""Walking isochrones (步行等时圈): reached streets, partial edges cut exactly, service polygons.

Method
------
1. Distances: one call of ``scipy.sparse.csgraph.dijkstra`` over the undirected edge graph
   with every station as a source row and ``limit`` = the largest band, so the work stops at
   15 minutes. Distances are metres along the streets.
2. Reached edges: for a budget ``B`` an edge ``(u, v, L)`` is walked ``a = B - d(u)`` metres
   from ``u`` and ``b = B - d(v)`` metres from ``v``; when ``a + b >= L`` it is fully reached,
   otherwise the pieces ``[0, a]`` and ``[L - b, L]`` are cut from its geometry at exactly
   those distances (``shapely.ops.substring``).
3. Polygon: the reached lines buffered by ``buffer_m`` (default 40 m, the depth of a
   street-front plot: a building whose door is on a reached street lies inside), unioned.
   Arcs use 4 segments per quarter circle and the outline is simplified by 1 m.
   A buffer is chosen over a concave hull because a hull bridges rivers, walls and gated
   compounds, the very barriers the network is there to respect; the buffer never does.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely
import shapely.ops
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra

from gis.crs import WGS84
from gis.errors import GisError
from gis.network import WALK_SPEED_KMH, WalkNetwork, band_metres

#: The three service circles (minutes): 5分钟近邻互助圈, 10分钟生活服务圈, 十五分钟便民圈.
BANDS_MIN: tuple[int, ...] = (5, 10, 15)
#: Buffer (metres) around reached streets that makes the isochrone polygon.
BUFFER_M = 40.0
#: Arc segments per quarter circle of the buffer, and the simplification tolerance (metres):
#: they keep a district's 60 polygons small enough for a web page without visible change.
QUAD_SEGS = 4
SIMPLIFY_M = 1.0


def graph_matrix(net: WalkNetwork) -> csr_matrix:
    """Upper-triangular sparse matrix of edge lengths, for ``dijkstra(directed=False)``.

    Parallel edges keep the shortest (a sparse matrix would sum duplicates); zero-length
    edges get 1e-9 m because an explicit zero would read as "no edge".
    """
    n = net.n_nodes
    lo = np.minimum(net.source, net.target)
    hi = np.maximum(net.source, net.target)
    keep = lo != hi
    lo, hi, w = lo[keep], hi[keep], net.length_m[keep]
    order = np.lexsort((w, hi, lo))
    lo, hi, w = lo[order], hi[order], w[order]
    key = lo * n + hi
    first = np.r_[True, key[1:] != key[:-1]]
    w = np.where(w[first] > 0, w[first], 1e-9)
    return coo_matrix((w, (lo[first], hi[first])), shape=(n, n)).tocsr()


def node_distances(
    net: WalkNetwork, sources: npt.ArrayLike, *, limit_m: float
) -> npt.NDArray[np.float64]:
    """Street distance (m) from each source node to every node, ``inf`` beyond ``limit_m``.

    Returns an array of shape ``(len(sources), n_nodes)``.
    """
    src = np.atleast_1d(np.asarray(sources, dtype=np.int64))
    if len(src) and (src.min() < 0 or src.max() >= net.n_nodes):
        raise GisError("source node outside the network")
    if limit_m <= 0:
        raise GisError(f"limit must be positive, got {limit_m} m")
    d = dijkstra(graph_matrix(net), directed=False, indices=src, limit=limit_m)
    return np.atleast_2d(d)


@dataclass(frozen=True)
class Isochrone:
    """One station's reach in one band: metric lines and polygon, and the reached nodes."""

    minutes: float
    budget_m: float
    lines: shapely.MultiLineString
    polygon: shapely.Geometry
    nodes: npt.NDArray[np.int64]
    street_m: float


def reached_lines(
    net: WalkNetwork, dist: npt.NDArray[np.float64], budget_m: float
) -> tuple[list[shapely.LineString], npt.NDArray[np.int64]]:
    """Street pieces within ``budget_m`` given node distances ``dist`` (one row).

    Fully reached edges are returned whole; partially reached ones are cut at exactly
    ``budget_m - d(node)`` metres from each reached end. Returns the pieces and the
    reached node ids (``d <= budget_m``).
    """
    du, dv, length = dist[net.source], dist[net.target], net.length_m
    a = np.where(np.isfinite(du), budget_m - du, -np.inf)
    b = np.where(np.isfinite(dv), budget_m - dv, -np.inf)
    touched = (a >= 0) | (b >= 0)
    full = touched & (np.maximum(a, 0) + np.maximum(b, 0) >= length)
    pieces: list[shapely.LineString] = list(net.geoms[full])
    for e in np.flatnonzero(touched & ~full).tolist():
        g = net.geoms[e]
        if a[e] > 0:
            pieces.append(shapely.ops.substring(g, 0.0, float(a[e])))
        if b[e] > 0:
            pieces.append(shapely.ops.substring(g, float(length[e] - b[e]), float(length[e])))
    nodes = np.flatnonzero(dist <= budget_m).astype(np.int64)
    return pieces, nodes


def isochrones(
    net: WalkNetwork,
    sources: npt.ArrayLike,
    *,
    bands_min: tuple[float, ...] = BANDS_MIN,
    speed_kmh: float = WALK_SPEED_KMH,
    buffer_m: float = BUFFER_M,
) -> list[list[Isochrone]]:
    """Isochrones for every source node and band: ``result[i][j]`` = source i, band j.

    One multi-source Dijkstra limited to the largest band; polygons are reached streets
    buffered by ``buffer_m`` (see the module docstring for why).
    """
    budgets = [band_metres(m, speed_kmh=speed_kmh) for m in bands_min]
    src = np.atleast_1d(np.asarray(sources, dtype=np.int64))
    if len(src) == 0:
        return []
    d = node_distances(net, src, limit_m=max(budgets) + 1e-6)
    out: list[list[Isochrone]] = []
    for i in range(len(src)):
        row: list[Isochrone] = []
        for minutes, budget in zip(bands_min, budgets, strict=True):
            pieces, nodes = reached_lines(net, d[i], budget)
            lines = shapely.MultiLineString([p for p in pieces if not p.is_empty])
            poly = (
                shapely.buffer(lines, buffer_m, quad_segs=QUAD_SEGS).simplify(SIMPLIFY_M)
                if buffer_m > 0
                else lines.convex_hull
            )
            row.append(
                Isochrone(
                    minutes=minutes,
                    budget_m=budget,
                    lines=lines,
                    polygon=poly,
                    nodes=nodes,
                    street_m=float(lines.length),
                )
            )
        out.append(row)
    return out


def isochrones_frame(
    net: WalkNetwork, station_ids: list[int], result: list[list[Isochrone]]
) -> gpd.GeoDataFrame:
    """Isochrones as a WGS84 GeoDataFrame: station_id, minutes, street_m, polygon, lines."""
    rows = [
        {
            "station_id": sid,
            "minutes": iso.minutes,
            "budget_m": iso.budget_m,
            "street_m": iso.street_m,
            "nodes": len(iso.nodes),
            "lines": iso.lines,
            "geometry": iso.polygon,
        }
        for sid, row in zip(station_ids, result, strict=True)
        for iso in row
    ]
    gdf = gpd.GeoDataFrame(rows, geometry="geometry", crs=net.crs)
    lines = gpd.GeoSeries(gdf["lines"], crs=net.crs).to_crs(WGS84)
    gdf = gdf.to_crs(WGS84)
    gdf["lines"] = lines.to_numpy()
    return gdf
