"""Grid hierarchy: levels, the code scheme, and the validation report (gaps, overlaps, slivers).

Levels: street office (街道/办事处) → community (社区) → 三级 grid (三级网格) → micro grid
(微网格); dedicated grids (专属网格: schools, markets, hospitals, business districts) hang off
the street office and may overlap the regular levels but not each other.

Codes follow one hierarchical scheme in the style of GB/T 30428.1 unit-grid coding:

========== ============================================ ======= =================
level      form                                         digits  example
========== ============================================ ======= =================
street     county division code (6) + street (3)        9       410171003
community  street + 3-digit sequence 001-899            12      410171003001
grid       community + 2-digit sequence                 14      41017100300103
micro      grid + 2-digit sequence                      16      4101710030010302
dedicated  street + "9" + 2-digit sequence (9xx range)  12      410171003901
========== ============================================ ======= =================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from gis.crs import WGS84, metric_crs_for
from gis.errors import EmptyInputError, HierarchyError

LEVELS: tuple[str, ...] = ("street", "community", "grid", "micro", "dedicated")
REGULAR_CHAIN: tuple[str, ...] = ("street", "community", "grid", "micro")
PARENT_LEVEL: dict[str, str] = {
    "community": "street",
    "grid": "community",
    "micro": "grid",
    "dedicated": "street",
}
CODE_PATTERN: dict[str, re.Pattern[str]] = {
    "street": re.compile(r"^\d{9}$"),
    "community": re.compile(r"^\d{9}(?!9)\d{3}$"),
    "grid": re.compile(r"^\d{14}$"),
    "micro": re.compile(r"^\d{16}$"),
    "dedicated": re.compile(r"^\d{9}9\d{2}$"),
}
PROBLEM_COLUMNS = ["kind", "level", "grids", "area_m2", "detail", "geometry"]


@dataclass(frozen=True)
class CheckTolerances:
    """What the report ignores and what it calls a sliver.

    Parameters
    ----------
    min_area_m2
        Gaps and overlaps smaller than this are floating-point noise, not reported.
    sliver_width_m
        A gap or overlap whose mean width (2 × area / perimeter) is below this is a sliver:
        typically two boundaries digitised slightly apart.
    """

    min_area_m2: float = 0.01
    sliver_width_m: float = 2.0


def expected_code_ok(code: str, level: str, parent_code: str | None) -> str | None:
    """Why ``code`` does not fit the scheme for ``level`` under its parent; None if it fits."""
    pattern = CODE_PATTERN.get(level)
    if pattern is None:
        return f"unknown level {level!r}"
    if not pattern.match(code):
        return f"code {code} does not have the {level} form"
    if level == "street":
        return None if parent_code is None else "a street office has no parent"
    if parent_code is None:
        return f"{level} grid {code} has no parent"
    if not code.startswith(parent_code):
        return f"code {code} does not start with its parent's code {parent_code}"
    return None


def _check_frame(grids: gpd.GeoDataFrame) -> None:
    if len(grids) == 0:
        raise EmptyInputError("no grids to check")
    missing = {"code", "level", "parent_code", "geometry"} - set(grids.columns)
    if missing:
        raise HierarchyError(f"grids lack columns: {', '.join(sorted(missing))}")
    if grids.crs is None:
        raise HierarchyError("grids have no CRS")


def _parts(geom: BaseGeometry) -> list[BaseGeometry]:
    return [g for g in shapely.get_parts(geom) if g.area > 0] if not geom.is_empty else []


def _problem_rows(
    geom: BaseGeometry, kind: str, level: str, codes: list[str], tol: CheckTolerances, detail: str
) -> list[dict[str, object]]:
    rows = []
    for part in _parts(geom):
        area = float(part.area)
        if area < tol.min_area_m2:
            continue
        width = 2.0 * area / part.length if part.length > 0 else 0.0
        what = "sliver" if width < tol.sliver_width_m else kind
        rows.append(
            {
                "kind": what,
                "level": level,
                "grids": ",".join(codes),
                "area_m2": round(area, 3),
                "detail": f"{detail}; mean width {width:.2f} m",
                "geometry": part,
            }
        )
    return rows


def check_hierarchy(
    grids: gpd.GeoDataFrame, *, tolerances: CheckTolerances | None = None
) -> gpd.GeoDataFrame:
    """Validate a grid network and report every problem with its area and place.

    Checks: geometry validity; codes (unique, the level's form, starting with the parent's
    code); every parent exists and has the right level; children tile their parent (gaps:
    parent minus the union of children; spill: children outside the parent); siblings do not
    overlap; dedicated grids lie inside the street office and do not overlap each other.

    Parameters
    ----------
    grids
        Columns code, level, parent_code and geometry, in any CRS; measured in the metric CRS.
    tolerances
        Noise floor and sliver width, see :class:`CheckTolerances`.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per problem: kind (gap, overlap, spill, sliver, invalid_geometry, code,
        parent), level, grids (the codes involved), area_m2, detail, geometry (EPSG:4326; the
        problem area, or the grid itself for code/parent problems). Empty when all is well.
    """
    _check_frame(grids)
    tol = tolerances or CheckTolerances()
    metric = grids.to_crs(metric_crs_for(grids))
    rows: list[dict[str, object]] = []
    by_code = metric.set_index("code", drop=False)

    dup = metric["code"][metric["code"].duplicated()].unique()
    for code in dup:
        rows.append(_row("code", "", [code], f"code {code} is used more than once", None))

    valid = shapely.is_valid(metric.geometry.values)
    for idx in np.flatnonzero(~valid):
        rec = metric.iloc[idx]
        reason = shapely.is_valid_reason(rec.geometry)
        rows.append(_row("invalid_geometry", rec.level, [rec.code], reason, rec.geometry))

    for rec in metric.itertuples(index=False):
        parent = rec.parent_code if isinstance(rec.parent_code, str) else None
        problem = expected_code_ok(rec.code, rec.level, parent)
        if problem:
            rows.append(_row("code", rec.level, [rec.code], problem, rec.geometry))
        if parent is not None:
            if parent not in by_code.index:
                rows.append(
                    _row(
                        "parent", rec.level, [rec.code], f"parent {parent} is missing", rec.geometry
                    )
                )
            elif by_code.loc[parent, "level"] != PARENT_LEVEL.get(rec.level):
                rows.append(
                    _row(
                        "parent",
                        rec.level,
                        [rec.code, parent],
                        f"parent {parent} is a {by_code.loc[parent, 'level']}, "
                        f"expected a {PARENT_LEVEL.get(rec.level)}",
                        rec.geometry,
                    )
                )

    ok = metric[valid]
    for level in ("community", "grid", "micro", "dedicated"):
        children = ok[ok["level"] == level]
        for parent_code, group in children.groupby("parent_code", sort=True):
            if parent_code not in by_code.index:
                continue
            parent_geom = by_code.loc[parent_code, "geometry"]
            if isinstance(parent_geom, pd.Series):
                parent_geom = parent_geom.iloc[0]
            union = shapely.union_all(group.geometry.values)
            codes = sorted(group["code"])
            spill = shapely.difference(union, parent_geom)
            for row in _problem_rows(
                spill, "spill", level, [parent_code], tol, f"children of {parent_code} outside it"
            ):
                row["grids"] = ",".join(_touching(group, row["geometry"]) or codes)
                rows.append(row)
            if level != "dedicated":
                gap = shapely.difference(parent_geom, union)
                rows.extend(
                    _problem_rows(
                        gap,
                        "gap",
                        level,
                        [parent_code],
                        tol,
                        f"part of {parent_code} in no {level}",
                    )
                )
            rows.extend(_overlaps(group, level, tol))
    if not rows:
        return gpd.GeoDataFrame(columns=PROBLEM_COLUMNS, geometry="geometry", crs=WGS84)
    out = gpd.GeoDataFrame(rows, columns=PROBLEM_COLUMNS, geometry="geometry", crs=metric.crs)
    return out.to_crs(WGS84).reset_index(drop=True)


def _row(
    kind: str, level: str, codes: list[str], detail: str, geom: BaseGeometry | None
) -> dict[str, object]:
    return {
        "kind": kind,
        "level": level,
        "grids": ",".join(codes),
        "area_m2": float(geom.area) if geom is not None else 0.0,
        "detail": detail,
        "geometry": geom,
    }


def _touching(group: gpd.GeoDataFrame, geom: BaseGeometry) -> list[str]:
    hits = shapely.intersects(group.geometry.values, geom)
    return sorted(group["code"].to_numpy()[hits])


def _overlaps(group: gpd.GeoDataFrame, level: str, tol: CheckTolerances) -> list[dict[str, object]]:
    geoms = group.geometry.values
    codes = group["code"].to_numpy()
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    rows: list[dict[str, object]] = []
    for i, j in zip(left[keep], right[keep], strict=True):
        inter = shapely.intersection(geoms[i], geoms[j])
        rows.extend(
            _problem_rows(
                inter,
                "overlap",
                level,
                sorted([str(codes[i]), str(codes[j])]),
                tol,
                f"{codes[i]} and {codes[j]} overlap",
            )
        )
    return rows
