"""Grid planning edits (网格规划调整) on plain shapely geometries in a metric CRS.

Each operation takes the geometries it touches, checks the hierarchy rules of
:mod:`gis.grids` (children tile their parent, siblings never overlap) and returns the new
geometries, or raises :class:`EditRefusedError` naming the reason. The database layer
(:mod:`gis.db.queries.planning`) projects to the metric CRS, calls these and stores the
answers in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import shapely
from shapely.geometry import LineString, MultiLineString, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import split

from gis.errors import GisError, InvalidGeometryError

log = logging.getLogger(__name__)

MIN_AREA_M2 = 1.0
"""Pieces smaller than this (m²) are noise from clipping and are dropped."""
SNAP_M = 0.1
"""Boundaries closer than this (m) count as shared (digitising and projection noise)."""


class EditRefusedError(GisError):
    """A planning edit would break the hierarchy or makes no sense; the message says why."""


@dataclass(frozen=True)
class SplitResult:
    """The two (or more) parts of a split grid, largest first."""

    parts: list[MultiPolygon]


@dataclass(frozen=True)
class ReparentResult:
    """A child moved to a new parent: the child stays, both parents change shape."""

    child: MultiPolygon
    old_parent: MultiPolygon
    new_parent: MultiPolygon


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    """Only the polygonal parts of ``geom`` above the noise floor, as a MultiPolygon."""
    polys: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon) and part.area >= MIN_AREA_M2:
            polys.append(part)
        elif isinstance(part, MultiPolygon | shapely.GeometryCollection):
            polys.extend(as_multipolygon(part).geoms)
    return MultiPolygon(polys)


def check_polygon(geom: BaseGeometry, what: str = "grid") -> MultiPolygon:
    """A valid, non-empty (multi)polygon or :class:`InvalidGeometryError` naming the problem."""
    if geom is None or geom.is_empty:
        raise InvalidGeometryError(f"{what} geometry is empty")
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidGeometryError(f"{what} must be a polygon, got {geom.geom_type}")
    if not shapely.is_valid(geom):
        raise InvalidGeometryError(f"{what} geometry is invalid: {shapely.is_valid_reason(geom)}")
    return as_multipolygon(geom)


def shared_edge_m(a: BaseGeometry, b: BaseGeometry) -> float:
    """Length of ``a``'s boundary lying within :data:`SNAP_M` of ``b``'s boundary.

    Tolerant on purpose: digitised neighbours rarely share identical vertices, so an exact
    boundary intersection is often just points.
    """
    return float(shapely.intersection(a.boundary, b.boundary.buffer(SNAP_M)).length)


def _union(geoms: list[BaseGeometry]) -> BaseGeometry:
    return shapely.union_all(geoms) if geoms else Polygon()


def create_child(
    drawn: BaseGeometry, parent: BaseGeometry, siblings: list[BaseGeometry]
) -> MultiPolygon:
    """A new child grid: the drawn polygon clipped to its parent and to the free space.

    Siblings are never overlapped: the part of ``drawn`` already covered by a sibling is cut
    away. Refused if nothing (or more than one separate piece) remains.
    """
    drawn = check_polygon(drawn, "drawn grid")
    free = shapely.difference(shapely.intersection(drawn, parent), _union(siblings))
    result = as_multipolygon(free)
    if result.is_empty:
        raise EditRefusedError("the drawn grid lies outside its parent or only over siblings")
    if len(result.geoms) > 1:
        raise EditRefusedError(
            f"clipped to the parent and siblings the new grid falls into {len(result.geoms)} "
            "separate pieces; draw it over one free area"
        )
    return result


def reshape(
    new_geom: BaseGeometry,
    old_geom: BaseGeometry,
    parent: BaseGeometry | None,
    siblings: dict[str, BaseGeometry],
    *,
    allow_swallow: bool = False,
) -> dict[str, MultiPolygon]:
    """Reshape a grid; neighbours give up what it takes and take back what it gives up.

    The new outline is clipped to the parent. Area taken from siblings is removed from them;
    area the grid gives up goes to the sibling sharing the longest edge with it, so the
    parent stays tiled. Returns the new geometry of the grid under key ``""`` and of every
    sibling that changed under its code. Refused when a sibling would vanish or split, or
    given-up area touches no sibling (it would become a gap). With ``allow_swallow`` (a
    rollback undoing a split) a sibling covered entirely comes back empty: delete it.
    """
    new = check_polygon(new_geom, "reshaped grid")
    if parent is not None:
        new = as_multipolygon(shapely.intersection(new, parent))
    if new.is_empty:
        raise EditRefusedError("the reshaped grid lies outside its parent")
    if len(new.geoms) > 1:
        raise EditRefusedError("the reshaped grid falls into separate pieces")
    out: dict[str, MultiPolygon] = {"": new}
    freed = as_multipolygon(shapely.difference(old_geom, new))
    changed: dict[str, BaseGeometry] = {}
    for code, geom in siblings.items():
        if shapely.intersection(geom, new).area >= MIN_AREA_M2:
            changed[code] = shapely.difference(geom, new)
    for piece in freed.geoms:
        best, best_len = None, 0.0
        for code, geom in siblings.items():
            shared = shared_edge_m(piece, changed.get(code, geom))
            if shared > best_len:
                best, best_len = code, shared
        if best is None:
            if parent is None:
                continue  # a street office may give up area: there is no parent to tile
            raise EditRefusedError(
                f"the reshape gives up {piece.area:.0f} m² that touches no neighbouring grid; "
                "it would become a gap in the parent"
            )
        changed[best] = shapely.union(changed.get(best, siblings[best]), piece)
    for code, geom in changed.items():
        mp = as_multipolygon(geom)
        if mp.is_empty and allow_swallow:
            out[code] = mp
            continue
        if mp.is_empty:
            raise EditRefusedError(f"the reshape would swallow grid {code} entirely")
        if len(mp.geoms) > 1:
            raise EditRefusedError(f"the reshape would cut grid {code} into separate pieces")
        out[code] = mp
    return out


def split_by_line(geom: BaseGeometry, line: BaseGeometry) -> SplitResult:
    """Split a grid with a drawn line that crosses it from edge to edge.

    Refused when the line does not cut the grid in at least two pieces of real size.
    """
    poly = check_polygon(geom)
    if not isinstance(line, LineString | MultiLineString) or line.is_empty:
        raise InvalidGeometryError("the split line must be a non-empty line")
    pieces = _split(poly, line)
    parts = sorted(
        (as_multipolygon(p) for p in pieces if p.area >= MIN_AREA_M2),
        key=lambda p: -p.area,
    )
    if len(parts) < 2:
        raise EditRefusedError("the line does not cross the grid from edge to edge")
    return SplitResult(parts=parts)


def _split(poly: MultiPolygon, line: BaseGeometry) -> list[BaseGeometry]:
    out: list[BaseGeometry] = []
    for part in poly.geoms:
        out.extend(split(part, line).geoms)
    return out


def merge(a: BaseGeometry, b: BaseGeometry) -> MultiPolygon:
    """Merge two sibling grids that share an edge (touching at a corner is not enough)."""
    a, b = check_polygon(a), check_polygon(b)
    if shared_edge_m(a, b) < 1.0:
        raise EditRefusedError("the grids do not share an edge; only adjacent grids merge")
    merged = as_multipolygon(shapely.union(a, b))
    if len(merged.geoms) > 1:
        raise EditRefusedError("the merged grid would fall into separate pieces")
    return merged


def reparent(
    child: BaseGeometry, old_parent: BaseGeometry, new_parent: BaseGeometry
) -> ReparentResult:
    """Move a child grid to a neighbouring parent: the parents' shared boundary moves with it.

    The old parent loses the child's area, the new parent gains it. Refused when the child
    does not share an edge with the new parent or the old parent would vanish or split.
    """
    child = check_polygon(child)
    if shared_edge_m(child, new_parent) < 1.0:
        raise EditRefusedError("the grid does not share an edge with the new parent")
    old = as_multipolygon(shapely.difference(old_parent, child))
    if old.is_empty:
        raise EditRefusedError("the old parent would be left empty; merge the parents instead")
    if len(old.geoms) > 1:
        raise EditRefusedError("the old parent would fall into separate pieces")
    new = as_multipolygon(shapely.union(new_parent, child))
    if len(new.geoms) > 1:
        raise EditRefusedError("the new parent would fall into separate pieces")
    return ReparentResult(child=child, old_parent=old, new_parent=new)


def next_child_code(parent_code: str, level: str, taken: set[str]) -> str:
    """The first free child code under ``parent_code`` in the scheme of :mod:`gis.grids`."""
    if level == "community":
        candidates = (f"{parent_code}{i:03d}" for i in range(1, 900))
    elif level == "dedicated":
        candidates = (f"{parent_code}9{i:02d}" for i in range(1, 100))
    elif level in ("grid", "micro"):
        candidates = (f"{parent_code}{i:02d}" for i in range(1, 100))
    else:
        raise EditRefusedError(f"a {level} grid cannot be created under a parent")
    for code in candidates:
        if code not in taken:
            return code
    raise EditRefusedError(f"no free {level} code left under {parent_code}")
