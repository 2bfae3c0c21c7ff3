"""Automatic splitting of a grid into parts with balanced households (自动划分网格).

Recursive bisection with straight cuts in the metric CRS: each cut runs along x or y, is
placed only where it crosses no building (buildings are never cut), prefers positions that
run along a street, and balances households between the two sides in proportion to the
number of parts wanted on each. A cut whose side would fall into separate pieces is never
used, so every part is contiguous. Straight cuts keep the parts compact.

Why not spopt's max-p / SKATER: they regionalise fixed areal units (they need the polygons
already cut into blocks), while here the units are buildings inside one polygon and the
answer must be a tiling of that polygon, so the cut geometry is the real problem.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, box
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


def micro_counts(total_households: int) -> list[int]:
    """Part counts that could give micro grids (微网格) of 30–80 households, best first."""
    lo = max(1, math.ceil(total_households / MICRO_MAX_HH))
    hi = max(lo, total_households // MICRO_MIN_HH)
    best = max(lo, min(hi, round(total_households / MICRO_TARGET_HH)))
    return sorted(range(lo, hi + 1), key=lambda k: (abs(k - best), k))


def auto_partition_micro(
    area: BaseGeometry,
    buildings: list[BaseGeometry],
    households: list[int],
    roads: list[BaseGeometry] | None = None,
    *,
    max_tries: int = 12,
) -> Partition:
    """Partition a 三级 grid into micro grids (微网格) of 30–80 households each.

    Tries part counts around households / 55 and returns the first partition whose every
    part holds 30–80 households; refused when none does.
    """
    total = int(sum(households))
    if total < MICRO_MIN_HH:
        raise EditRefusedError(f"{total} households are too few for a micro grid (min 30)")
    tried: list[str] = []
    for n in micro_counts(total)[:max_tries]:
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
        if min(hh) >= MICRO_MIN_HH and max(hh) <= MICRO_MAX_HH:
            return result
        tried.append(f"{n} parts: households {min(hh)}–{max(hh)}")
    raise EditRefusedError(
        "no partition into micro grids of 30–80 households found (" + "; ".join(tried) + ")"
    )
