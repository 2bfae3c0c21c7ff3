"""Automatic splitting of a grid into parts with balanced households (自动划分网格).

Recursive bisection with straight cuts in the metric CRS: each cut runs along x or y, is
placed only where it crosses no building (buildings are never cut), prefers positions that
run along a street, and balances households between the two sides in proportion to the
number of parts wanted on each. A cut whose side would fall into separate pieces is never
used, so every part is contiguous. Straight cuts keep the parts compact.

Why not spopt's max-p / SKATER: they regionalise fixed areal units (they need the polygons
already cut into blocks), while here the units are buildings inside one polygon and the
answer must be a tiling of that polygon, so the cut geometry is the real problem.

When no straight cuts give micro grids within the household bounds (buildings of very
different sizes, irregular blocks), :func:`auto_partition_micro` falls back to a partition of
the building graph (:func:`graph_partition`): each building gets the cell of the parent that
is nearer to it than to any other building (a Voronoi diagram of points sampled densely on
the footprints, clipped to the parent), cells sharing an edge are neighbours, and random
spanning trees of that graph are cut recursively (as in ReCom/SKATER) where both sides can
still be split into parts within the bounds. A subtree is connected, so every part is
contiguous; the parts are unions of whole cells, so they tile the parent and never cut a
building. Among the admissible cuts the most balanced, shortest and most street-following
one is tried first.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from gis.errors import EmptyInputError
from gis.planning import EditRefusedError, as_multipolygon, check_polygon

log = logging.getLogger(__name__)

MICRO_MIN_HH = 30
MICRO_MAX_HH = 80
MICRO_TARGET_HH = 55
STREET_BUFFER_M = 4.0
"""A cut runs "along a street" when at least half of it lies within this distance of a road."""
STREET_PREFERENCE = 0.03
"""How much imbalance (share of households) a cut along a street may add over the best cut."""
MAX_CANDIDATES = 40
MIN_PIECE_M2 = 0.01
CELL_SAMPLE_M = 1.0
"""Spacing of the points sampled on building outlines for their Voronoi cells."""
GRAPH_TREES = 12
"""Spanning trees tried per region before the graph partition gives up on it."""
GRAPH_BUDGET = 4000
"""Recursive splits tried in all before the graph partition gives up."""


@dataclass(frozen=True)
class Part:
    """One part: its geometry, its households and the indices of its buildings."""

    geometry: MultiPolygon
    households: int
    buildings: list[int]


@dataclass(frozen=True)
class Partition:
    """The parts, largest household count first, and how balanced they are."""

    parts: list[Part]
    street_cuts: int = 0
    cuts: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def households(self) -> list[int]:
        """Households per part."""
        return [p.households for p in self.parts]

    @property
    def imbalance(self) -> float:
        """Largest relative deviation of a part's households from the mean (0 = perfect)."""
        hh = np.asarray(self.households, dtype=float)
        mean = hh.mean() if len(hh) else 0.0
        return float(np.abs(hh - mean).max() / mean) if mean > 0 else 0.0


def auto_split(
    area: BaseGeometry,
    buildings: list[BaseGeometry],
    households: list[int],
    n: int,
    roads: list[BaseGeometry] | None = None,
) -> Partition:
    """Split ``area`` into ``n`` contiguous parts balancing the buildings' households.

    Parameters
    ----------
    area
        The grid polygon in a metric CRS.
    buildings, households
        Building footprints (metric CRS) inside ``area`` and their household counts; a
        building belongs to the part containing its representative point.
    n
        Number of parts, at least 2.
    roads
        Road lines (metric CRS); cuts along them are preferred when the balance allows.
    """
    poly = check_polygon(area)
    if n < 2:
        raise EditRefusedError("auto-split needs at least 2 parts")
    if len(buildings) != len(households):
        raise EmptyInputError("buildings and households differ in length")
    if len(buildings) < n:
        raise EditRefusedError(f"{len(buildings)} buildings cannot fill {n} parts")
    geoms = np.asarray(buildings, dtype=object)
    hh = np.asarray(households, dtype=float)
    bounds = shapely.bounds(geoms)
    pts = shapely.point_on_surface(geoms)
    xy = shapely.get_coordinates(pts)
    road_union = shapely.union_all(roads).buffer(STREET_BUFFER_M) if roads else None
    state = {"cuts": 0, "street": 0}
    pieces = _bisect(poly, np.arange(len(geoms)), n, xy, bounds, hh, road_union, state)
    parts = [
        Part(geometry=g, households=int(hh[idx].sum()), buildings=sorted(idx.tolist()))
        for g, idx in pieces
    ]
    parts.sort(key=lambda p: -p.households)
    return Partition(parts=parts, street_cuts=state["street"], cuts=state["cuts"])


def _bisect(
    poly: MultiPolygon,
    idx: np.ndarray,
    n: int,
    xy: np.ndarray,
    bounds: np.ndarray,
    hh: np.ndarray,
    roads: BaseGeometry | None,
    state: dict[str, int],
) -> list[tuple[MultiPolygon, np.ndarray]]:
    if n == 1:
        return [(poly, idx)]
    total = float(hh[idx].sum())
    best: tuple[float, MultiPolygon, MultiPolygon, np.ndarray, np.ndarray, bool, int] | None = None
    x0, y0, x1, y1 = poly.bounds
    axes = (0, 1) if (x1 - x0) >= (y1 - y0) else (1, 0)
    # an odd count may put the larger half on either side of the cut
    for axis, n1 in ((a, k) for a in axes for k in sorted({n // 2, n - n // 2})):
        target = total * n1 / n
        lo, hi = bounds[idx, axis], bounds[idx, axis + 2]
        cands = np.unique(np.concatenate([lo - 0.5, hi + 0.5]))
        cands = cands[(cands > (x0, y0)[axis]) & (cands < (x1, y1)[axis])]
        inside = (cands[:, None] > lo[None, :]) & (cands[:, None] < hi[None, :])
        cands = cands[~inside.any(axis=1)]
        if len(cands) == 0:
            continue
        left_hh = np.array([hh[idx][xy[idx, axis] < c].sum() for c in cands])
        n_left = np.array([(xy[idx, axis] < c).sum() for c in cands])
        ok = (n_left >= n1) & (len(idx) - n_left >= n - n1)
        cands, left_hh = cands[ok], left_hh[ok]
        if len(cands) == 0:
            continue
        err = np.abs(left_hh - target) / max(total, 1.0)
        order = np.argsort(err, kind="stable")[:MAX_CANDIDATES]
        for k in order:
            c = float(cands[k])
            if axis == 0:
                left_box = box(x0 - 1, y0 - 1, c, y1 + 1)
                cut = shapely.LineString([(c, y0 - 1), (c, y1 + 1)])
            else:
                left_box = box(x0 - 1, y0 - 1, x1 + 1, c)
                cut = shapely.LineString([(x0 - 1, c), (x1 + 1, c)])
            left = as_multipolygon(shapely.intersection(poly, left_box))
            right = as_multipolygon(shapely.difference(poly, left_box))
            if len(left.geoms) != 1 or len(right.geoms) != 1:
                continue
            along = False
            if roads is not None:
                inner = shapely.intersection(cut, poly)
                along = inner.length > 0 and (
                    shapely.intersection(inner, roads).length >= 0.5 * inner.length
                )
            score = float(err[k]) - (STREET_PREFERENCE if along else 0.0)
            if best is None or score < best[0]:
                mask = xy[idx, axis] < c
                best = (score, left, right, idx[mask], idx[~mask], along, n1)
    if best is None:
        raise EditRefusedError(
            "no straight cut divides this grid into contiguous parts without cutting a "
            "building; try fewer parts"
        )
    _, left, right, li, ri, along, n1 = best
    state["cuts"] += 1
    state["street"] += int(along)
    return _bisect(left, li, n1, xy, bounds, hh, roads, state) + _bisect(
        right, ri, n - n1, xy, bounds, hh, roads, state
    )


def micro_counts(
    total_households: int, min_hh: int = MICRO_MIN_HH, max_hh: int = MICRO_MAX_HH
) -> list[int]:
    """Part counts that could give micro grids (微网格) of ``min_hh``–``max_hh`` households,
    best (nearest the middle of the range) first."""
    lo = max(1, math.ceil(total_households / max_hh))
    hi = max(lo, total_households // min_hh)
    best = max(lo, min(hi, round(total_households / ((min_hh + max_hh) / 2))))
    return sorted(range(lo, hi + 1), key=lambda k: (abs(k - best), k))


def auto_partition_micro(
    area: BaseGeometry,
    buildings: list[BaseGeometry],
    households: list[int],
    roads: list[BaseGeometry] | None = None,
    *,
    min_hh: int = MICRO_MIN_HH,
    max_hh: int = MICRO_MAX_HH,
    max_tries: int = 12,
    names: list[str] | None = None,
) -> Partition:
    """Partition a 三级 grid into micro grids (微网格) of ``min_hh``–``max_hh`` households each.

    First straight cuts (compact, along streets) for part counts around the middle of the
    range; when none keeps every part within the bounds, the building-graph partition
    (:func:`graph_partition`). Refused with the reason when the grid has too few households,
    when a building alone holds more than ``max_hh`` (named from ``names``, else by index), or
    when no grouping of the buildings into contiguous parts within the bounds is found.
    """
    if not 1 <= min_hh <= max_hh:
        raise EditRefusedError(f"household bounds {min_hh}–{max_hh} are not a range")
    total = int(sum(households))
    if total < min_hh:
        raise EditRefusedError(f"{total} households are too few for a micro grid (min {min_hh})")
    big = [i for i, h in enumerate(households) if h > max_hh]
    if big:
        label = names or [f"#{i}" for i in range(len(households))]
        what = ", ".join(f"building {label[i]} ({households[i]} households)" for i in big[:5])
        raise EditRefusedError(
            f"buildings are never cut, and {what} alone exceed the maximum of {max_hh} "
            "households per micro grid"
        )
    tried: list[str] = []
    counts = micro_counts(total, min_hh, max_hh)[:max_tries]
    for n in counts:
        if n == 1:
            poly = check_polygon(area)
            part = Part(poly, total, list(range(len(buildings))))
            return Partition(parts=[part])
        try:
            result = auto_split(area, buildings, households, n, roads)
        except EditRefusedError as exc:
            tried.append(f"{n} parts: {exc}")
            continue
        hh = result.households
        if min(hh) >= min_hh and max(hh) <= max_hh:
            return result
        tried.append(f"{n} parts: households {min(hh)}–{max(hh)}")
    try:
        result = graph_partition(
            area, buildings, households, roads, min_hh=min_hh, max_hh=max_hh, counts=counts
        )
    except EditRefusedError as exc:
        tried.append(str(exc))
        raise EditRefusedError(
            f"no partition into micro grids of {min_hh}–{max_hh} households found (straight "
            "cuts: " + "; ".join(tried) + ")"
        ) from None
    log.info("straight cuts failed (%s); building-graph partition used", "; ".join(tried))
    return Partition(
        parts=result.parts,
        street_cuts=result.street_cuts,
        cuts=result.cuts,
        notes=[*result.notes, "straight cuts: " + "; ".join(tried)],
    )


def building_cells(
    area: BaseGeometry, buildings: list[BaseGeometry], roads: list[BaseGeometry] | None = None
) -> list[BaseGeometry]:
    """The cell of each building: the part of its street block nearer to it than to any other
    building of the block.

    ``area`` is cut into street blocks by the ``roads`` (dangling road ends are ignored), so
    cell edges follow the streets where they run between buildings; inside a block, a Voronoi
    diagram of points sampled every :data:`CELL_SAMPLE_M` on the footprints. Each cell is one
    polygon (a piece cut off by a concave outline, or a block without buildings, joins the
    neighbour it shares most edge with), and the cells tile ``area``.
    """
    poly = check_polygon(area)
    if len(buildings) == 1:
        return [poly.geoms[0] if len(poly.geoms) == 1 else poly]
    blocks = _street_blocks(poly, roads, buildings)
    spots = shapely.point_on_surface(np.asarray(buildings, dtype=object))
    home = np.full(len(buildings), -1)
    for j, blk in enumerate(blocks):
        home[(home < 0) & shapely.covers(blk, spots)] = j
    for i in np.flatnonzero(home < 0):  # a building counted here but standing outside
        home[i] = int(np.argmin(shapely.distance(np.asarray(blocks, dtype=object), spots[i])))
    raw: list[BaseGeometry] = [Polygon()] * len(buildings)
    orphans: list[Polygon] = []
    for j, blk in enumerate(blocks):
        members = np.flatnonzero(home == j)
        if len(members) == 0:
            orphans.append(blk)
        elif len(members) == 1:
            raw[members[0]] = blk
        else:
            for i, cell in zip(
                members, _voronoi_cells(blk, [buildings[i] for i in members]), strict=True
            ):
                raw[i] = cell
    main: list[BaseGeometry] = []
    for b, g in zip(buildings, raw, strict=True):
        pieces = _polygons(g)
        if not pieces:
            main.append(Polygon())
            continue
        keep = max(
            range(len(pieces)), key=lambda k: (pieces[k].intersection(b).area, pieces[k].area)
        )
        main.append(pieces[keep])
        orphans.extend(p for k, p in enumerate(pieces) if k != keep)
    return _clean_coverage(_absorb(main, orphans))


def _clean_coverage(cells: list[BaseGeometry]) -> list[BaseGeometry]:
    """The same cells rebuilt from the faces of their noded edges, so neighbours share their
    edges exactly and unions of neighbouring cells are one polygon."""
    lines = shapely.union_all([shapely.boundary(c) for c in cells if not c.is_empty])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    spots = shapely.point_on_surface(faces)
    geoms = np.asarray(cells, dtype=object)
    tree = shapely.STRtree(geoms)
    owner = np.full(len(faces), -1)
    f_idx, c_idx = tree.query(spots, predicate="intersects")
    owner[f_idx] = c_idx
    missing = np.flatnonzero(owner < 0)
    if len(missing):
        owner[missing] = tree.query_nearest(spots[missing], all_matches=False)[1]
    out = []
    for i, c in enumerate(cells):
        mine = faces[owner == i]
        if len(mine) == 0:
            out.append(c)
            continue
        u = _polygons(shapely.union_all(mine))
        out.append(u[0] if len(u) == 1 else shapely.multipolygons(u))
    return out


def _union(geoms: np.ndarray) -> BaseGeometry:
    """Union of cells that share edges (a coverage); GEOS's Voronoi cells are now and then
    invalid (nearly co-circular points), so they are repaired when the fast union fails."""
    try:
        out = shapely.coverage_union_all(geoms)
        if shapely.is_valid(out):
            return out
    except shapely.errors.GEOSException:
        pass
    return shapely.make_valid(shapely.union_all(shapely.make_valid(geoms)))


def _polygons(geom: BaseGeometry) -> list[Polygon]:
    """The polygons of any geometry, however nested."""
    out: list[Polygon] = []
    for p in shapely.get_parts(geom):
        if isinstance(p, Polygon):
            if p.area > 0:
                out.append(p)
        elif isinstance(p, MultiPolygon | shapely.GeometryCollection):
            out.extend(_polygons(p))
    return out


def _street_blocks(
    poly: MultiPolygon, roads: list[BaseGeometry] | None, buildings: list[BaseGeometry]
) -> list[Polygon]:
    """``poly`` cut by the road lines into blocks (pieces under 1 m² stay with a neighbour).

    A road line running through a building stops at it (it is mapped wrongly or is a passage),
    so blocks never cut a building."""
    if not roads:
        return _polygons(poly)
    foot = shapely.union_all(buildings).buffer(0.5)
    cut = [shapely.difference(shapely.intersection(r, poly), foot) for r in roads]
    lines = shapely.union_all([shapely.boundary(poly), *cut])
    faces = list(shapely.get_parts(shapely.polygonize(shapely.get_parts(lines))))
    blocks = [p for f in faces for p in _polygons(shapely.intersection(f, poly)) if p.area >= 1.0]
    if not blocks:
        return _polygons(poly)
    rest = _polygons(shapely.difference(poly, shapely.union_all(blocks)))
    return _clean_coverage(_absorb(blocks, rest)) if rest else blocks


def _voronoi_cells(area: BaseGeometry, buildings: list[BaseGeometry]) -> list[BaseGeometry]:
    """Voronoi cells of the buildings' outline points, merged per building, clipped to area."""
    xy_parts, labels = [], []
    for i, b in enumerate(buildings):
        rings = shapely.segmentize(shapely.boundary(b), CELL_SAMPLE_M)
        for ring in shapely.get_parts(rings):
            xy = shapely.get_coordinates(ring)[:-1]
            xy_parts.append(xy)
            labels.append(np.full(len(xy), i))
    xy = np.vstack(xy_parts)
    lab = np.concatenate(labels)
    _, first = np.unique(np.round(xy, 3), axis=0, return_index=True)
    first.sort()
    xy, lab = xy[first], lab[first]
    # a lattice of points is co-circular everywhere, where GEOS's Voronoi goes wrong: 0.1 mm
    # of fixed noise breaks the ties
    xy = xy + np.random.default_rng(0).uniform(-1e-4, 1e-4, xy.shape)
    frame = box(*area.bounds).buffer(10.0)
    vor = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=frame))
    bad = ~shapely.is_valid(vor)
    vor[bad] = shapely.make_valid(vor[bad])
    # each cell holds its own point: label the cells by the points they contain
    p_idx, c_idx = shapely.STRtree(vor).query(shapely.points(xy), predicate="intersects")
    cell_lab = np.full(len(vor), -1)
    cell_lab[c_idx] = lab[p_idx]
    lab = cell_lab
    return [shapely.intersection(_union(vor[lab == i]), area) for i in range(len(buildings))]


def _absorb(main: list[BaseGeometry], orphans: list[Polygon]) -> list[BaseGeometry]:
    """Join each orphan piece to the main piece it shares the longest edge with (the nearest
    when it touches none). The results may be collections of touching polygons: rebuild them
    with :func:`_clean_coverage`."""
    out = [list(_polygons(g)) for g in main]
    for _ in range(20):
        if not orphans:
            break
        merged = [shapely.multipolygons(ps) if ps else Polygon() for ps in out]
        tree = shapely.STRtree(merged)
        left = []
        for o in orphans:
            near = tree.query(o.buffer(0.01), predicate="intersects")
            edge = [
                (shapely.intersection(shapely.boundary(merged[k]), o.buffer(0.01)).length, k)
                for k in near
            ]
            edge = [e for e in edge if e[0] > 0.01]
            if edge:
                out[max(edge)[1]].append(o)
            else:
                left.append(o)
        if len(left) == len(orphans):
            for o in left:  # touches nothing but other orphans: the nearest piece takes it
                out[int(tree.query_nearest(o, all_matches=False)[0])].append(o)
            break
        orphans = left
    return [shapely.multipolygons(ps) if ps else Polygon() for ps in out]


class _FellApartError(Exception):
    """A union of neighbouring cells came out in pieces (cells touching only at corners)."""


@dataclass
class _Graph:
    """Buildings as nodes, cells sharing an edge as neighbours (shared length, on a street)."""

    hh: np.ndarray
    xy: np.ndarray
    area: np.ndarray
    ea: np.ndarray
    eb: np.ndarray
    length: np.ndarray
    street: np.ndarray


def _cell_graph(cells: list[Polygon], households: np.ndarray, roads: BaseGeometry | None) -> _Graph:
    geoms = np.asarray(cells, dtype=object)
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = shapely.intersection(shapely.boundary(geoms[a]), shapely.buffer(geoms[b], 0.01))
    length = shapely.length(shared)
    street = (
        shapely.length(shapely.intersection(shared, roads)) if roads is not None else 0 * length
    )
    ok = length > 0.05
    xy = shapely.get_coordinates(shapely.centroid(geoms))
    return _Graph(
        hh=households.astype(float),
        xy=xy,
        area=shapely.area(geoms),
        ea=a[ok],
        eb=b[ok],
        length=length[ok],
        street=np.minimum(street[ok], length[ok]),
    )


class _GraphSplitter:
    """Recursive cuts of random spanning trees into parts of ``lo``–``hi`` households."""

    def __init__(self, g: _Graph, lo: int, hi: int, seed: int) -> None:
        self.g, self.lo, self.hi = g, lo, hi
        self.rng = np.random.default_rng(seed)
        self.calls = 0
        self.failed: set[tuple[frozenset[int], int]] = set()
        self.street_cuts = 0
        d = np.hypot(*(g.xy[g.ea] - g.xy[g.eb]).T)
        # spanning trees avoid crossing streets, so their cuts tend to run along them
        self.dist = np.maximum(d, 0.1) * (1.0 + 3.0 * g.street / np.maximum(g.length, 1e-9))

    def split(self, nodes: np.ndarray, k: int) -> list[np.ndarray] | None:
        g = self.g
        total = float(g.hh[nodes].sum())
        if k == 1:
            return [nodes] if self.lo <= total <= self.hi else None
        if not k * self.lo <= total <= k * self.hi:
            return None
        key = (frozenset(nodes.tolist()), k)
        if key in self.failed or self.calls >= GRAPH_BUDGET:
            return None
        self.calls += 1
        inside = np.zeros(len(g.hh), dtype=bool)
        inside[nodes] = True
        emask = inside[g.ea] & inside[g.eb]
        ea, eb = g.ea[emask], g.eb[emask]
        length, street, dist = g.length[emask], g.street[emask], self.dist[emask]
        scale = math.sqrt(max(float(g.area[nodes].sum()), 1.0))
        for t in range(GRAPH_TREES):
            w = dist if t == 0 else dist * np.exp(self.rng.normal(0.0, 0.6, len(dist)))
            tin, tout = self._tree(nodes, ea, eb, w)
            if tin is None:
                return None  # not connected
            cands = []
            sub = np.zeros(len(nodes))
            order = np.argsort(tin[nodes])
            pre = nodes[order]  # preorder
            csum = np.concatenate([[0.0], np.cumsum(g.hh[pre])])
            for j, v in enumerate(pre[1:], start=1):
                size = int(tout[v] - tin[v])
                h1 = csum[j + size] - csum[j]
                sub[j] = h1
                for k1 in range(1, k):
                    k2 = k - k1
                    if not (k1 * self.lo <= h1 <= k1 * self.hi):
                        continue
                    if not (k2 * self.lo <= total - h1 <= k2 * self.hi):
                        continue
                    m = (tin >= tin[v]) & (tin < tout[v])
                    cut = m[ea] != m[eb]
                    cut_len = float(length[cut].sum())
                    on_street = float(street[cut].sum()) / cut_len if cut_len > 0 else 0.0
                    err = abs(h1 / k1 - (total - h1) / k2) / (total / k)
                    score = (
                        err
                        + 0.1 * cut_len / scale
                        + 0.05 * abs(k1 - k / 2) / k
                        - STREET_PREFERENCE * on_street
                    )
                    cands.append((score, j, size, k1, on_street >= 0.5))
            cands.sort()
            for _, j, size, k1, along in cands[:3]:
                side = np.zeros(len(pre), dtype=bool)
                side[j : j + size] = True
                left = self.split(np.sort(pre[side]), k1)
                if left is None:
                    continue
                right = self.split(np.sort(pre[~side]), k - k1)
                if right is None:
                    continue
                self.street_cuts += int(along)
                return left + right
            if self.calls >= GRAPH_BUDGET:
                break
        self.failed.add(key)
        return None

    def _tree(
        self, nodes: np.ndarray, ea: np.ndarray, eb: np.ndarray, w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """Minimum spanning tree for weights ``w`` (Kruskal), as preorder entry/exit numbers."""
        root = {int(v): int(v) for v in nodes}

        def find(v: int) -> int:
            while root[v] != v:
                root[v] = root[root[v]]
                v = root[v]
            return v

        adj: dict[int, list[int]] = {int(v): [] for v in nodes}
        used = 0
        for e in np.argsort(w, kind="stable"):
            a, b = int(ea[e]), int(eb[e])
            ra, rb = find(a), find(b)
            if ra != rb:
                root[ra] = rb
                adj[a].append(b)
                adj[b].append(a)
                used += 1
        if used != len(nodes) - 1:
            return None, None
        n = len(self.g.hh)
        tin = np.full(n, -1, dtype=int)
        tout = np.full(n, -1, dtype=int)
        clock = 0
        start = int(nodes[0])
        stack = [(start, -1, False)]
        while stack:
            v, par, done = stack.pop()
            if done:
                tout[v] = clock
                continue
            tin[v] = clock
            clock += 1
            stack.append((v, par, True))
            stack.extend((u, v, False) for u in adj[v] if u != par)
        tin[tin < 0] = n + 1  # outside the region: never inside a subtree
        tout[tout < 0] = n + 1
        return tin, tout


def graph_partition(
    area: BaseGeometry,
    buildings: list[BaseGeometry],
    households: list[int],
    roads: list[BaseGeometry] | None = None,
    *,
    min_hh: int = MICRO_MIN_HH,
    max_hh: int = MICRO_MAX_HH,
    counts: list[int] | None = None,
    seed: int = 0,
) -> Partition:
    """Partition ``area`` into contiguous unions of building cells of ``min_hh``–``max_hh``
    households each (see the module docstring); refused when no such partition is found.

    ``counts`` are the part counts to try, best first (default: :func:`micro_counts`).
    """
    poly = check_polygon(area)
    if len(buildings) != len(households):
        raise EmptyInputError("buildings and households differ in length")
    if not buildings:
        raise EditRefusedError("no buildings to partition")
    hh = np.asarray(households, dtype=float)
    road_zone = shapely.union_all(roads).buffer(STREET_BUFFER_M) if roads else None
    total = int(hh.sum())
    # street blocks first; should a part come out in pieces, again with plain building cells
    for blocks_by in (roads, None) if roads else (None,):
        cells = building_cells(poly, buildings, blocks_by)
        graph = _cell_graph(cells, hh, road_zone)
        splitter = _GraphSplitter(graph, min_hh, max_hh, seed)
        groups = None
        tried = []
        for k in counts or micro_counts(total, min_hh, max_hh):
            groups = splitter.split(np.arange(len(buildings)), k)
            if groups is not None:
                break
            tried.append(k)
        if groups is None:
            raise EditRefusedError(
                f"the buildings cannot be grouped into contiguous parts of {min_hh}–{max_hh} "
                f"households (tried {', '.join(map(str, tried))} parts)"
            )
        try:
            geoms = _part_geometries(poly, buildings, cells, groups)
            break
        except _FellApartError:
            if blocks_by is None:
                raise EditRefusedError(
                    "the building-graph partition gave a part in pieces; edit by hand"
                ) from None
    parts = [
        Part(geometry=g, households=int(hh[idx].sum()), buildings=sorted(idx.tolist()))
        for g, idx in zip(geoms, groups, strict=True)
    ]
    parts.sort(key=lambda p: -p.households)
    return Partition(
        parts=parts,
        street_cuts=splitter.street_cuts,
        cuts=len(parts) - 1,
        notes=["building-graph partition (Voronoi cells of buildings)"],
    )


def _part_geometries(
    poly: MultiPolygon,
    buildings: list[BaseGeometry],
    cells: list[Polygon],
    groups: list[np.ndarray],
) -> list[MultiPolygon]:
    """Union of each group's cells; a footprint reaching into a neighbour's cell goes whole to
    its own part, so no building is cut. Every part is checked to be one polygon."""
    cell_arr = np.asarray(cells, dtype=object)
    foot = np.asarray([shapely.intersection(b, poly) for b in buildings], dtype=object)
    inside = shapely.covers(shapely.buffer(cell_arr, 1e-6), foot)
    if inside.all():  # the usual case: every footprint lies in its own cell
        unions = [_polygons(shapely.union_all(cell_arr[idx])) for idx in groups]
        if all(len(u) == 1 for u in unions):
            return [MultiPolygon(u) for u in unions]
    owned = []
    taken: BaseGeometry = Polygon()
    for idx in groups:
        mine = shapely.difference(shapely.union_all(foot[idx]), taken)
        owned.append(mine)
        taken = shapely.union(taken, mine)
    out: list[BaseGeometry] = []
    for j, idx in enumerate(groups):
        others = shapely.union_all([o for i, o in enumerate(owned) if i != j])
        g = shapely.union(shapely.difference(shapely.union_all(cell_arr[idx]), others), owned[j])
        out.append(g)
    pieces = [
        [p for p in shapely.get_parts(g) if isinstance(p, Polygon) and p.area > 0] for g in out
    ]
    main, orphans = [], []
    for j, ps in enumerate(pieces):
        keep = max(range(len(ps)), key=lambda k: (ps[k].intersection(owned[j]).area, ps[k].area))
        main.append(ps[keep])
        for k, p in enumerate(ps):
            if k == keep:
                continue
            if p.intersection(owned[j]).area > MIN_PIECE_M2:
                raise _FellApartError
            orphans.append(p)
    merged = [_polygons(g) for g in _clean_coverage(_absorb(main, orphans))]
    if any(len(g) != 1 for g in merged):
        raise _FellApartError
    return [MultiPolygon(g) for g in merged]
