"""Walking network (步行路网) from road lines: kinds, noding, lengths in metres, compound gates.

The network is plain arrays (node coordinates, edge ends, lengths, geometries) in a metric
CRS so that the isochrone code, the database loader and the benchmark share one structure.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyproj
import shapely
import shapely.ops
from shapely.geometry import LineString, Point

from gis.crs import WGS84, metric_crs_for
from gis.errors import EmptyInputError, GisError, InvalidGeometryError

log = logging.getLogger(__name__)

#: Road kinds a pedestrian may use (demo kinds and OSM ``highway`` values).
WALKABLE_KINDS: frozenset[str] = frozenset(
    {
        "arterial",
        "street",
        "alley",
        "footway",
        "primary",
        "primary_link",
        "secondary",
        "secondary_link",
        "tertiary",
        "tertiary_link",
        "unclassified",
        "residential",
        "living_street",
        "service",
        "pedestrian",
        "path",
        "steps",
        "track",
        "cycleway",
        "corridor",
        "road",
    }
)
#: Kinds a pedestrian may not use (listed in the load report as skipped).
EXCLUDED_KINDS: frozenset[str] = frozenset(
    {"motorway", "motorway_link", "trunk", "trunk_link", "construction", "proposed", "raceway"}
)
#: Default walking speed (km/h) used to turn minutes into metres.
WALK_SPEED_KMH = 4.5


class NetworkError(GisError):
    """The road lines cannot form a walking network."""


def band_metres(minutes: float, *, speed_kmh: float = WALK_SPEED_KMH) -> float:
    """Distance walked in ``minutes`` at ``speed_kmh`` (metres)."""
    if speed_kmh <= 0 or minutes <= 0:
        msg = f"minutes and speed must be positive, got {minutes} min at {speed_kmh} km/h"
        raise GisError(msg)
    return minutes * speed_kmh * 1000.0 / 60.0


@dataclass(frozen=True)
class LoadReport:
    """What was loaded and what was skipped, with reasons."""

    lines_in: int
    edges: int
    nodes: int
    length_km: float
    kinds: dict[str, int]
    skipped: dict[str, int] = field(default_factory=dict)
    walls_cut: int = 0
    gates: int = 0

    def as_dict(self) -> dict[str, object]:
        """Plain JSON-able dict."""
        return {
            "lines_in": self.lines_in,
            "edges": self.edges,
            "nodes": self.nodes,
            "length_km": round(self.length_km, 3),
            "kinds": dict(self.kinds),
            "skipped": dict(self.skipped),
            "walls_cut": self.walls_cut,
            "gates": self.gates,
        }


@dataclass(frozen=True)
class WalkNetwork:
    """An undirected walking network in a metric CRS.

    ``geoms[i]`` runs from node ``source[i]`` to node ``target[i]``; ``length_m[i]`` is its
    length in metres. ``nodes`` is an ``(n, 2)`` array of metric x, y.
    """

    crs: pyproj.CRS
    nodes: npt.NDArray[np.float64]
    source: npt.NDArray[np.int64]
    target: npt.NDArray[np.int64]
    length_m: npt.NDArray[np.float64]
    geoms: npt.NDArray[np.object_]
    kind: npt.NDArray[np.object_]
    name: npt.NDArray[np.object_]

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.nodes.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return int(self.source.shape[0])

    def edges_frame(self) -> gpd.GeoDataFrame:
        """Edges as a GeoDataFrame in WGS84 (source, target, length_m, kind, name)."""
        gdf = gpd.GeoDataFrame(
            {
                "source": self.source,
                "target": self.target,
                "length_m": self.length_m,
                "kind": self.kind,
                "name": self.name,
            },
            geometry=list(self.geoms),
            crs=self.crs,
        )
        return gdf.to_crs(WGS84)

    def nodes_frame(self) -> gpd.GeoDataFrame:
        """Nodes as a GeoDataFrame in WGS84, index = node id."""
        gdf = gpd.GeoDataFrame(
            geometry=shapely.points(self.nodes), crs=self.crs, index=np.arange(self.n_nodes)
        )
        return gdf.to_crs(WGS84)


def _check_lines(lines: gpd.GeoDataFrame) -> None:
    if lines.crs is None:
        raise InvalidGeometryError("road lines have no CRS; declare it (e.g. EPSG:4326)")
    if len(lines) == 0:
        raise EmptyInputError("no road lines given")


def build_network(
    lines: gpd.GeoDataFrame,
    *,
    kind_column: str = "kind",
    name_column: str | None = "name",
    walkable: frozenset[str] = WALKABLE_KINDS,
    excluded: frozenset[str] = EXCLUDED_KINDS,
    tolerance_m: float = 0.01,
    crs: pyproj.CRS | None = None,
    compounds: gpd.GeoDataFrame | None = None,
    gates: gpd.GeoDataFrame | None = None,
    gate_tolerance_m: float = 3.0,
) -> tuple[WalkNetwork, LoadReport]:
    """Build a noded walking network from road lines.

    Lines are split at every vertex they share with another line (within ``tolerance_m``)
    and at their ends, the OSM convention: two lines that merely cross without a shared
    vertex are a bridge or tunnel and do not connect. Kinds in ``excluded`` (motorways) and
    kinds not in ``walkable`` are skipped and counted in the report.

    Gated compounds (封闭小区): when ``compounds`` (polygons) are given, an edge crossing a
    compound's boundary is removed unless the crossing lies within ``gate_tolerance_m`` of a
    point in ``gates``; the wall cuts the way except at its gates.

    Parameters
    ----------
    lines
        LineStrings / MultiLineStrings with a CRS, a ``kind_column`` and optionally a name.
    crs
        Metric CRS to work in; chosen from the data's centre when ``None``.

    Returns
    -------
    (WalkNetwork, LoadReport)
    """
    _check_lines(lines)
    if kind_column not in lines.columns:
        raise NetworkError(f"road lines have no {kind_column!r} column")
    metric = crs if crs is not None else metric_crs_for(lines)
    gdf = lines.to_crs(metric).explode(index_parts=False, ignore_index=True)
    skipped: Counter[str] = Counter()
    kinds = gdf[kind_column].astype("string").fillna("").to_numpy(dtype=object)
    geoms = gdf.geometry.to_numpy()
    is_line = np.array([g is not None and g.geom_type == "LineString" for g in geoms])
    skipped["not a line"] += int((~is_line).sum())
    excl = np.array([k in excluded for k in kinds])
    unknown = np.array([(k not in walkable) and (k not in excluded) for k in kinds])
    for k in kinds[is_line & excl]:
        skipped[f"excluded kind: {k}"] += 1
    for k in kinds[is_line & unknown]:
        skipped[f"not walkable: {k or '(none)'}"] += 1
    keep = is_line & ~excl & ~unknown
    names = (
        gdf[name_column].astype("string").fillna("").to_numpy(dtype=object)
        if name_column and name_column in gdf.columns
        else np.full(len(gdf), "", dtype=object)
    )
    geoms, kinds, names = geoms[keep], kinds[keep], names[keep]
    short = shapely.length(geoms) <= tolerance_m
    skipped["shorter than tolerance"] += int(short.sum())
    geoms, kinds, names = geoms[~short], kinds[~short], names[~short]
    if len(geoms) == 0:
        raise EmptyInputError("no walkable road lines left after filtering")

    seg_geoms, seg_src, keys_a, keys_b = _split_at_shared_vertices(geoms, tolerance_m)
    walls_cut = 0
    n_gates = 0
    if compounds is not None and len(compounds):
        gate_pts = gates.to_crs(metric).geometry.to_numpy() if gates is not None else np.array([])
        n_gates = len(gate_pts)
        walled = _wall_crossings(
            seg_geoms, compounds.to_crs(metric).geometry.to_numpy(), gate_pts, gate_tolerance_m
        )
        walls_cut = int(walled.sum())
        seg_geoms, seg_src = seg_geoms[~walled], seg_src[~walled]
        keys_a, keys_b = keys_a[~walled], keys_b[~walled]
    all_keys = np.concatenate([keys_a, keys_b])
    uniq, inv = np.unique(all_keys, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    n = len(seg_geoms)
    source, target = inv[:n].astype(np.int64), inv[n:].astype(np.int64)
    loops = source == target
    skipped["closed loop edge"] += int(loops.sum())
    seg_geoms, seg_src = seg_geoms[~loops], seg_src[~loops]
    source, target = source[~loops], target[~loops]
    # Renumber nodes densely (loops and walls may have orphaned some).
    used, dense = np.unique(np.concatenate([source, target]), return_inverse=True)
    source, target = dense[: len(source)], dense[len(source) :]
    node_xy = uniq[used].astype(np.float64) * tolerance_m
    # Exact node positions: the first endpoint of an edge that touches the node.
    first = shapely.get_coordinates(shapely.get_point(seg_geoms, 0))
    last = shapely.get_coordinates(shapely.get_point(seg_geoms, -1))
    node_xy[source] = first
    node_xy[target] = last
    length = shapely.length(seg_geoms).astype(np.float64)
    net = WalkNetwork(
        crs=metric,
        nodes=node_xy,
        source=source.astype(np.int64),
        target=target.astype(np.int64),
        length_m=length,
        geoms=seg_geoms,
        kind=kinds[seg_src],
        name=names[seg_src],
    )
    report = LoadReport(
        lines_in=len(lines),
        edges=net.n_edges,
        nodes=net.n_nodes,
        length_km=float(length.sum()) / 1000.0,
        kinds=dict(Counter(net.kind.tolist())),
        skipped={k: v for k, v in skipped.items() if v},
        walls_cut=walls_cut,
        gates=n_gates,
    )
    log.info("walking network: %s", report.as_dict())
    return net, report


def _split_at_shared_vertices(
    geoms: npt.NDArray[np.object_], tolerance_m: float
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.int64], npt.NDArray, npt.NDArray]:
    """Cut each line at its ends and at vertices shared with another line."""
    coords, line_of = shapely.get_coordinates(geoms, return_index=True)
    keys = np.round(coords / tolerance_m).astype(np.int64)
    uniq, vid = np.unique(keys, axis=0, return_inverse=True)
    vid = vid.reshape(-1)
    pairs = np.unique(np.stack([vid, line_of], axis=1), axis=0)
    lines_per_vertex = np.bincount(pairs[:, 0], minlength=len(uniq))
    starts = np.r_[0, np.flatnonzero(np.diff(line_of)) + 1]
    ends = np.r_[starts[1:], len(line_of)]
    out_geoms: list[LineString] = []
    out_src: list[int] = []
    out_a: list[int] = []
    out_b: list[int] = []
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        li = int(line_of[s])
        cut = lines_per_vertex[vid[s:e]] >= 2
        cut[0] = cut[-1] = True
        idx = np.flatnonzero(cut)
        for a, b in zip(idx[:-1].tolist(), idx[1:].tolist(), strict=True):
            piece = coords[s + a : s + b + 1]
            if vid[s + a] == vid[s + b] and b - a < 2:
                continue
            out_geoms.append(LineString(piece))
            out_src.append(li)
            out_a.append(int(vid[s + a]))
            out_b.append(int(vid[s + b]))
    return (
        np.array(out_geoms, dtype=object),
        np.array(out_src, dtype=np.int64),
        uniq[np.array(out_a, dtype=np.int64)],
        uniq[np.array(out_b, dtype=np.int64)],
    )


def _wall_crossings(
    edges: npt.NDArray[np.object_],
    compounds: npt.NDArray[np.object_],
    gates: npt.NDArray[np.object_],
    gate_tolerance_m: float,
) -> npt.NDArray[np.bool_]:
    """True for edges that cross a compound wall away from every gate."""
    walls = shapely.boundary(compounds)
    tree = shapely.STRtree(walls)
    gate_tree = shapely.STRtree(gates) if len(gates) else None
    hit_edge, hit_wall = tree.query(edges, predicate="intersects")
    out = np.zeros(len(edges), dtype=bool)
    for ei, wi in zip(hit_edge.tolist(), hit_wall.tolist(), strict=True):
        if out[ei]:
            continue
        crossing = shapely.intersection(edges[ei], walls[wi])
        pts = shapely.get_parts(shapely.points(shapely.get_coordinates(crossing)))
        for p in pts:
            near = (
                gate_tree.query(p, predicate="dwithin", distance=gate_tolerance_m)
                if gate_tree is not None
                else []
            )
            if len(near) == 0:
                out[ei] = True
                break
    return out


def snap_points(
    net: WalkNetwork, points: npt.NDArray[np.object_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Nearest edge of each metric point, the distance along it from its source, and the
    straight offset from the point to the edge (metres)."""
    if net.n_edges == 0:
        raise EmptyInputError("the network has no edges")
    tree = shapely.STRtree(net.geoms)
    pts = np.asarray(points, dtype=object)
    idx = tree.nearest(pts)
    along = shapely.line_locate_point(net.geoms[idx], pts)
    offset = shapely.distance(net.geoms[idx], pts)
    return idx.astype(np.int64), along.astype(np.float64), offset.astype(np.float64)


def attach_points(
    net: WalkNetwork, points: npt.NDArray[np.object_], *, kind: str = "connector"
) -> tuple[WalkNetwork, npt.NDArray[np.int64]]:
    """Add each metric point as a node joined to the nearest edge by a straight connector.

    The nearest edge is split at the foot of the perpendicular, so distances from the point
    are exact along the street. Returns the new network and the node id of every point.
    """
    nodes = [net.nodes]
    src, tgt = list(net.source), list(net.target)
    geoms, kinds, names = list(net.geoms), list(net.kind), list(net.name)
    n = net.n_nodes
    ids = np.empty(len(points), dtype=np.int64)
    for i, p in enumerate(points):
        if not isinstance(p, Point) or p.is_empty:
            raise InvalidGeometryError(f"point {i} is not a point: {p!r}")
        cur = np.array(geoms, dtype=object)
        tree = shapely.STRtree(cur)
        e = int(tree.nearest(p))
        line: LineString = geoms[e]
        t = float(line.line_locate_point(p))
        foot = line.interpolate(t)
        if t <= 1e-9:
            foot_id = src[e]
        elif t >= line.length - 1e-9:
            foot_id = tgt[e]
        else:
            foot_id = n
            n += 1
            nodes.append(np.array([[foot.x, foot.y]]))
            a = shapely.ops.substring(line, 0.0, t)
            b = shapely.ops.substring(line, t, line.length)
            u, v = src[e], tgt[e]
            geoms[e], tgt[e] = a, foot_id
            src.append(foot_id)
            tgt.append(v)
            geoms.append(b)
            kinds.append(kinds[e])
            names.append(names[e])
            del u
        off = p.distance(foot)
        if off <= 1e-9:
            ids[i] = foot_id
            continue
        ids[i] = n
        nodes.append(np.array([[p.x, p.y]]))
        src.append(foot_id)
        tgt.append(n)
        geoms.append(LineString([(foot.x, foot.y), (p.x, p.y)]))
        kinds.append(kind)
        names.append("")
        n += 1
    g = np.array(geoms, dtype=object)
    return (
        WalkNetwork(
            crs=net.crs,
            nodes=np.vstack(nodes),
            source=np.array(src, dtype=np.int64),
            target=np.array(tgt, dtype=np.int64),
            length_m=shapely.length(g).astype(np.float64),
            geoms=g,
            kind=np.array(kinds, dtype=object),
            name=np.array(names, dtype=object),
        ),
        ids,
    )


def network_from_arrays(
    crs: pyproj.CRS,
    nodes: npt.NDArray[np.float64],
    source: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    geoms: npt.NDArray[np.object_] | None = None,
    kind: npt.ArrayLike | None = None,
    name: npt.ArrayLike | None = None,
) -> WalkNetwork:
    """A network from node coordinates and edge ends (straight edges unless ``geoms``)."""
    s = np.asarray(source, dtype=np.int64)
    t = np.asarray(target, dtype=np.int64)
    if s.shape != t.shape:
        raise NetworkError("source and target differ in length")
    if len(s) and (min(s.min(), t.min()) < 0 or max(s.max(), t.max()) >= len(nodes)):
        raise NetworkError("edge refers to a node that does not exist")
    if geoms is None:
        geoms = shapely.linestrings(np.stack([nodes[s], nodes[t]], axis=1))
    m = len(s)
    return WalkNetwork(
        crs=crs,
        nodes=np.asarray(nodes, dtype=np.float64),
        source=s,
        target=t,
        length_m=shapely.length(geoms).astype(np.float64),
        geoms=np.asarray(geoms, dtype=object),
        kind=np.asarray(kind if kind is not None else ["street"] * m, dtype=object),
        name=np.asarray(name if name is not None else [""] * m, dtype=object),
    )


def read_osm_lines(path: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Highway ways, gated compounds and gates from an OSM ``.osm`` / ``.osm.pbf`` file.

    Uses pyosmium with node locations. Compounds are ``landuse=residential`` areas that have
    at least one ``barrier=gate`` node (or ``entrance``) on their outline: a mapped gate is
    the sign of a wall; a compound without one is treated as open.

    Returns (lines with kind and name, compounds, gates), all in WGS84.
    """
    import osmium

    lines: list[dict[str, object]] = []
    rings: list[tuple[str, list[int], list[tuple[float, float]]]] = []
    gate_nodes: dict[int, tuple[float, float]] = {}

    class _Handler(osmium.SimpleHandler):  # type: ignore[misc]
        def node(self, n: osmium.osm.Node) -> None:
            if n.tags.get("barrier") in ("gate", "entrance") or "entrance" in n.tags:
                gate_nodes[n.id] = (n.location.lon, n.location.lat)

        def way(self, w: osmium.osm.Way) -> None:
            try:
                coords = [(nd.lon, nd.lat) for nd in w.nodes]
            except osmium.InvalidLocationError:
                coords = [(nd.lon, nd.lat) for nd in w.nodes if nd.location.valid()]
            hw = w.tags.get("highway")
            if hw is not None and len(coords) >= 2:
                lines.append({"kind": hw, "name": w.tags.get("name", ""), "geometry": coords})
            elif w.tags.get("landuse") == "residential" and len(coords) >= 4 and w.is_closed():
                rings.append((w.tags.get("name", ""), [nd.ref for nd in w.nodes], coords))

    try:
        _Handler().apply_file(str(path), locations=True)
    except RuntimeError as exc:
        raise NetworkError(f"cannot read OSM file {path}: {exc}") from exc
    if not lines:
        raise EmptyInputError(f"no highway ways in {path}")
    roads = gpd.GeoDataFrame(
        {"kind": [x["kind"] for x in lines], "name": [x["name"] for x in lines]},
        geometry=[LineString(x["geometry"]) for x in lines],  # type: ignore[arg-type]
        crs=WGS84,
    )
    gated = [(nm, c) for nm, refs, c in rings if any(r in gate_nodes for r in refs)]
    compounds = gpd.GeoDataFrame(
        {"name": [g[0] for g in gated]},
        geometry=[shapely.Polygon(g[1]) for g in gated],
        crs=WGS84,
    )
    gates = gpd.GeoDataFrame(geometry=shapely.points(list(gate_nodes.values())), crs=WGS84)
    return roads, compounds, gates
