"""Grid layer exchange in the database: import through the audited planning machinery, the
buildings a crosswalk counts households with, and the OGC API - Features item queries.

Import rules (all-or-nothing in the caller's transaction):

* a code that is **new** creates the grid under its parent (from the file or already stored),
  audited as a ``create`` version;
* a code that **exists** with a different outline gets the file's geometry **as a new
  version** (audited as a ``reshape``, the old outline kept in ``grid_versions``); the same
  outline (within :data:`SAME_TOLERANCE_DEG`) is left alone and reported ``unchanged``;
  names, levels and parents are never changed by an import (a different level or parent is
  refused: use the re-parent edit);
* a code that belonged to a grid since deleted is refused (codes are never reused);
* grids not in the file are kept; an import never deletes;
* afterwards every family touched (a parent and its children) is checked with
  :func:`gis.grids.check_hierarchy`; any gap, overlap, spill or sliver that was not there
  before refuses the whole file with the list of problems (kind, grids, area, location);
  misfits thinner than 1 cm on average are precision noise and pass;
* vertices within about 1 cm of a stored vertex or edge of the family are snapped onto it,
  so a file's rounding does not open slivers along unchanged edges;
* a file whose known grids all sit hundreds of metres from their stored outlines in one
  direction was declared in the wrong CRS and is refused saying so.

Import uses the planning tables' operations ``create`` and ``reshape`` (the version table
allows no other without a migration); the reason names the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import WGS84
from gis.db.queries import planning
from gis.exchange import LayerRejectedError
from gis.grids import LEVELS, PARENT_LEVEL, check_hierarchy, expected_code_ok

log = logging.getLogger(__name__)

SAME_TOLERANCE_DEG = 1e-7
"""Outlines whose normalised vertices differ by less than this (about 1 cm) are the same."""
LEVEL_ORDER = ("street", "community", "grid", "micro", "dedicated")
MAX_PROBLEMS = 50
SNAP_DEG = 1e-7
"""Imported vertices this close (about 1 cm) to a stored neighbour's boundary snap onto it."""
NOISE_WIDTH_M = 0.01
"""Hierarchy misfits thinner than this on average are precision noise, not refused."""
SHIFT_REFUSE_M = 100.0
"""A common shift of every known grid by more than this is taken for a wrong declared CRS."""
_GEOD = pyproj.Geod(ellps="WGS84")


@dataclass
class ImportReport:
    """What an import did: codes created, replaced (new version) and left unchanged."""

    created: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    repaired: list[dict[str, object]] = field(default_factory=list)
    households: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "repaired": self.repaired,
            "households": self.households,
        }


def _same(a: BaseGeometry, b: BaseGeometry) -> bool:
    return bool(
        shapely.equals_exact(shapely.normalize(a), shapely.normalize(b), SAME_TOLERANCE_DEG)
    )


def _existing(session: Session, codes: list[str]) -> dict[str, planning.GridRow]:
    rows = session.execute(
        text(planning._ROW_SQL + " WHERE g.code = ANY(:codes) ORDER BY g.code FOR UPDATE OF g"),
        {"codes": codes},
    )
    return {r.code: planning._row(r) for r in rows}


def _retired(session: Session, codes: list[str]) -> set[str]:
    return set(
        session.execute(
            text(
                "SELECT DISTINCT v.code FROM grid_versions v WHERE v.code = ANY(:codes) "
                "AND NOT EXISTS (SELECT 1 FROM grids g WHERE g.code = v.code)"
            ),
            {"codes": codes},
        ).scalars()
    )


def _insert_with_code(
    session: Session,
    code: str,
    name: str,
    level: str,
    parent_id: int | None,
    geom: BaseGeometry,
    who: str,
    why: str,
) -> int:
    new_id = session.execute(
        text(
            """
            INSERT INTO grids (code, name, level, parent_id, kind, households, residents,
                version, updated_at, geom)
            VALUES (:code, :name, :level, :pid, NULL, 0, 0, 1, clock_timestamp(),
                ST_Multi(ST_GeomFromWKB(:g, 4326)))
            RETURNING id
            """
        ),
        {"code": code, "name": name, "level": level, "pid": parent_id, "g": shapely.to_wkb(geom)},
    ).scalar_one()
    planning._open(session, int(new_id), "create", who, why, None)
    return int(new_id)


def _family_report(session: Session, parent_id: int) -> gpd.GeoDataFrame:
    """check_hierarchy of one parent and its direct children (geometry problems only)."""
    rows = [planning.get_grid(session, parent_id), *planning._children(session, parent_id)]
    frame = gpd.GeoDataFrame(
        {
            "code": [r.code for r in rows],
            "level": [r.level for r in rows],
            "parent_code": [None, *[r.parent_code for r in rows[1:]]],
        },
        geometry=[r.geom for r in rows],
        crs=WGS84,
    )
    report = check_hierarchy(frame)
    return report[~report["kind"].isin(["code", "parent"])]


def _problem(kind: str, grids: str, detail: str, **extra: object) -> dict[str, object]:
    return {"kind": kind, "grids": grids, "detail": detail, **extra}


def import_grids(
    session: Session,
    layer: gpd.GeoDataFrame,
    *,
    who: str,
    why: str,
    repaired: list[dict[str, object]] | None = None,
) -> ImportReport:
    """Store a grid layer (from :func:`gis.exchange.read_layer`) by the rules in the module
    docstring; raises :class:`LayerRejectedError` with every problem, writing nothing that
    survives (the caller rolls back)."""
    if len(layer) == 0:
        raise LayerRejectedError("the layer holds no grids")
    frame = layer.to_crs(WGS84) if layer.crs is not None else layer
    problems: list[dict[str, object]] = []
    dup = frame["code"][frame["code"].duplicated()].unique().tolist()
    for code in dup:
        problems.append(_problem("code", code, f"code {code} appears more than once in the file"))
    for rec in frame.itertuples(index=False):
        bad = expected_code_ok(rec.code, rec.level, rec.parent_code)
        if bad:
            problems.append(_problem("code", rec.code, bad))
    if problems:
        raise LayerRejectedError(f"{len(problems)} code problems in the file", problems)
    order = {lv: i for i, lv in enumerate(LEVEL_ORDER)}
    frame = frame.assign(_o=frame["level"].map(order)).sort_values(["_o", "code"], kind="stable")
    codes = frame["code"].tolist()
    existing = _existing(session, codes)
    retired = _retired(session, codes)
    wanted_parents = sorted({p for p in frame["parent_code"] if p} - set(existing))
    parents = _existing(session, wanted_parents) if wanted_parents else {}
    in_file = dict(zip(frame["code"], frame["level"], strict=True))
    for rec in frame.itertuples(index=False):
        if rec.code in retired:
            problems.append(
                _problem(
                    "code",
                    rec.code,
                    f"code {rec.code} belonged to a deleted grid; codes are "
                    "not reused (history keeps it)",
                )
            )
        old = existing.get(rec.code)
        if old is not None:
            if old.level != rec.level:
                problems.append(
                    _problem(
                        "level",
                        rec.code,
                        f"{rec.code} is a {old.level} grid, the file says {rec.level}",
                    )
                )
            if (old.parent_code or None) != (rec.parent_code or None):
                problems.append(
                    _problem(
                        "parent",
                        rec.code,
                        f"{rec.code} belongs to {old.parent_code}, the file "
                        f"says {rec.parent_code}; use the re-parent edit",
                    )
                )
            continue
        if rec.parent_code:
            p_level = (
                existing[rec.parent_code].level
                if rec.parent_code in existing
                else parents[rec.parent_code].level
                if rec.parent_code in parents
                else in_file.get(rec.parent_code)
            )
            if p_level is None:
                problems.append(
                    _problem(
                        "parent",
                        rec.code,
                        f"parent {rec.parent_code} of {rec.code} exists "
                        "neither in the database nor in the file",
                    )
                )
            elif p_level != PARENT_LEVEL.get(rec.level):
                problems.append(
                    _problem(
                        "parent",
                        rec.code,
                        f"parent {rec.parent_code} is a {p_level}, a "
                        f"{rec.level} grid needs a {PARENT_LEVEL.get(rec.level)}",
                    )
                )
    if problems:
        raise LayerRejectedError(
            f"{len(problems)} problems with codes, levels or parents", problems[:MAX_PROBLEMS]
        )

    _refuse_shifted_layer(frame, existing)
    report = ImportReport(repaired=list(repaired or []))
    ids: dict[str, int] = {c: r.id for c, r in existing.items()}
    ids.update({c: r.id for c, r in parents.items()})
    todo = []
    in_file_codes = set(codes)
    for rec in frame.itertuples(index=False):
        old = existing.get(rec.code)
        geom = _snap(session, rec, ids, in_file_codes)
        if old is not None and _same(old.geom, geom):
            report.unchanged.append(rec.code)
        else:
            todo.append(rec._replace(geometry=geom))
    # families already stored, and their problems before the import (not blamed on it)
    before: dict[int, set[tuple[str, str]]] = {}
    for rec in todo:
        for fid in (ids.get(rec.parent_code or ""), ids.get(rec.code)):
            if fid is not None and fid not in before:
                before[fid] = _keys(_family_report(session, fid))
    families: set[int] = set(before)
    for rec in todo:
        old = existing.get(rec.code)
        parent_id = ids.get(rec.parent_code) if rec.parent_code else None
        if parent_id is not None:
            families.add(parent_id)
        if old is not None:
            planning._update(session, old, rec.geometry, "reshape", who, why)
            report.replaced.append(rec.code)
        else:
            ids[rec.code] = _insert_with_code(
                session, rec.code, rec.name, rec.level, parent_id, rec.geometry, who, why
            )
            report.created.append(rec.code)
    touched = [ids[c] for c in report.created + report.replaced]
    _check_families(session, families, before)
    planning.recount(session, touched)
    if touched:
        rows = session.execute(
            text("SELECT code, households FROM grids WHERE id = ANY(:ids) ORDER BY code"),
            {"ids": touched},
        ).all()
        report.households = {str(c): int(h) for c, h in rows}
    log.info(
        "import by %s: %d created, %d replaced, %d unchanged",
        who,
        len(report.created),
        len(report.replaced),
        len(report.unchanged),
    )
    return report


def _snap(session: Session, rec: Any, ids: dict[str, int], in_file: set[str]) -> BaseGeometry:
    """The outline with every vertex within :data:`SNAP_DEG` of a stored vertex (its own old
    outline, its parent, siblings and children not in the file) moved onto that vertex: a
    file's rounding (GeoJSON keeps 9 decimals, other tools fewer) must not open slivers along
    unchanged edges. No vertex is added or removed."""
    parent_id = ids.get(rec.parent_code or "")
    own_id = ids.get(rec.code)
    others = sorted(in_file - {rec.code})
    rows = session.execute(
        text(
            """
            SELECT ST_AsBinary(g.geom) FROM grids g
            WHERE (g.id = :pid OR g.parent_id = :pid OR g.parent_id = :oid OR g.id = :oid)
              AND NOT (g.code = ANY(:codes))
              AND g.geom && ST_Expand(ST_GeomFromWKB(:g, 4326), :tol)
            """
        ),
        {
            "pid": parent_id,
            "oid": own_id,
            "codes": others,
            "g": shapely.to_wkb(rec.geometry),
            "tol": SNAP_DEG,
        },
    ).scalars()
    stored = [shapely.from_wkb(bytes(w)) for w in rows]
    if not stored:
        return rec.geometry
    coords = np.unique(np.concatenate([shapely.get_coordinates(g) for g in stored]), axis=0)
    vertices = shapely.STRtree(shapely.points(coords))
    edges = np.asarray([ring for g in stored for ring in shapely.get_parts(g.boundary)])
    edge_tree = shapely.STRtree(edges)

    def onto_stored(xy: np.ndarray) -> np.ndarray:
        pts = shapely.points(xy)
        out = xy.copy()
        done = np.zeros(len(xy), dtype=bool)
        hit = vertices.query_nearest(pts, max_distance=SNAP_DEG, all_matches=False)
        out[hit[0]] = coords[hit[1]]
        done[hit[0]] = True
        rest = np.flatnonzero(~done)
        if len(rest):  # a vertex on a stored edge (a T-junction) goes back onto that edge
            near = edge_tree.query_nearest(pts[rest], max_distance=SNAP_DEG, all_matches=False)
            idx, lines = rest[near[0]], edges[near[1]]
            on = shapely.line_interpolate_point(lines, shapely.line_locate_point(lines, pts[idx]))
            out[idx] = shapely.get_coordinates(on)
        return out

    snapped = shapely.transform(rec.geometry, onto_stored)
    return snapped if shapely.is_valid(snapped) else rec.geometry


def _refuse_shifted_layer(frame: gpd.GeoDataFrame, existing: dict[str, planning.GridRow]) -> None:
    """A wrong declared CRS moves every grid the same way by hundreds of metres (GCJ-02 and
    BD-09 sit 300-700 m from WGS84 in China): refuse it naming the likely cause."""
    moved = []
    for rec in frame.itertuples(index=False):
        old = existing.get(rec.code)
        if old is not None:
            a, b = old.geom.centroid, rec.geometry.centroid
            moved.append((b.x - a.x, b.y - a.y, _GEOD.inv(a.x, a.y, b.x, b.y)[2]))
    if len(moved) < 3:
        return
    arr = np.asarray(moved)
    dist = float(np.median(arr[:, 2]))
    if dist < SHIFT_REFUSE_M or (arr[:, 2] > SHIFT_REFUSE_M).mean() < 0.8:
        return
    spread = float(np.hypot(*(arr[:, :2] - np.median(arr[:, :2], axis=0)).T).max())
    if spread * 111_000 > 0.2 * dist:  # not one common shift: a real redrawing, judged below
        return
    raise LayerRejectedError(
        f"every grid in the file sits about {dist:.0f} m from its stored outline, all in the "
        "same direction: the declared CRS is probably wrong (GCJ-02 and BD-09 lie 300-700 m "
        "from WGS84/CGCS2000 in China)",
        [
            {
                "kind": "crs",
                "grids": f"{len(moved)} existing codes",
                "detail": "common shift",
                "shift_m": round(dist, 1),
            }
        ],
    )


def _noise(geom: BaseGeometry | None, area_m2: float) -> bool:
    """A misfit thinner than :data:`NOISE_WIDTH_M` on average: file rounding, or a vertex
    inserted on a straight edge in degrees that is not on it in metres (projection bend)."""
    if geom is None or geom.is_empty or not geom.geom_type.endswith("Polygon"):
        return False
    perimeter = _GEOD.geometry_length(geom)
    return perimeter > 0 and 2.0 * float(area_m2) / perimeter < NOISE_WIDTH_M


def _keys(report: gpd.GeoDataFrame) -> set[tuple[str, str]]:
    return {(k, g) for k, g in zip(report["kind"], report["grids"], strict=True)}


def _check_families(
    session: Session, families: set[int], before: dict[int, set[tuple[str, str]]]
) -> None:
    """Refuse when a touched family has a hierarchy problem it did not have before."""
    problems: list[dict[str, object]] = []
    for pid in sorted(families):
        after = _family_report(session, pid)
        known = before.get(pid, set())
        for rec in after.itertuples(index=False):
            if (rec.kind, rec.grids) in known or _noise(rec.geometry, rec.area_m2):
                continue
            geom = rec.geometry
            where = None
            if geom is not None and not geom.is_empty:
                p = geom.representative_point()
                where = [round(p.x, 6), round(p.y, 6)]
            problems.append(
                {
                    "kind": rec.kind,
                    "grids": rec.grids,
                    "level": rec.level,
                    "area_m2": float(rec.area_m2),
                    "detail": rec.detail,
                    "location": where,
                }
            )
    if problems:
        problems.sort(key=lambda p: -float(p["area_m2"]))  # type: ignore[arg-type]
        head = "; ".join(
            f"{p['kind']} at {p['grids']} ({float(p['area_m2']):.1f} m²)"  # type: ignore[arg-type]
            for p in problems[:5]
        )
        raise LayerRejectedError(
            f"the file would break the grid hierarchy in {len(problems)} places: {head}",
            problems[:MAX_PROBLEMS],
        )


def buildings_frame(
    session: Session, bbox: tuple[float, float, float, float] | None = None
) -> gpd.GeoDataFrame:
    """Buildings as representative points (EPSG:4326) with households, optionally in a bbox."""
    where, params = "TRUE", {}
    if bbox is not None:
        where = "b.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)"
        params = dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True))
    frame = gpd.read_postgis(
        text(
            f"SELECT b.id AS building_id, b.households, ST_PointOnSurface(b.geom) AS geom "
            f"FROM buildings b WHERE {where} ORDER BY b.id"
        ),
        session.connection(),
        geom_col="geom",
        crs=WGS84,
        params=params,
    )
    return frame.rename_geometry("geometry")


# --- OGC API - Features -------------------------------------------------------------------


def level_summary(session: Session) -> dict[str, dict[str, Any]]:
    """Per level: number of grids and the WGS84 extent [minx, miny, maxx, maxy]."""
    rows = session.execute(
        text(
            "SELECT level, count(*) AS n, ST_XMin(ST_Extent(geom)) AS x0, "
            "ST_YMin(ST_Extent(geom)) AS y0, ST_XMax(ST_Extent(geom)) AS x1, "
            "ST_YMax(ST_Extent(geom)) AS y1 FROM grids GROUP BY level"
        )
    ).all()
    out = {lv: {"count": 0, "bbox": None} for lv in LEVELS}
    for r in rows:
        out[r.level] = {"count": int(r.n), "bbox": [r.x0, r.y0, r.x1, r.y1]}
    return out


_OGC_COLUMNS = """
    g.id, g.code, g.name, g.level, p.code AS parent_code, g.kind, g.households, g.residents,
    g.version, g.updated_at, g.geom
"""


def ogc_items(
    session: Session,
    level: str,
    *,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> tuple[gpd.GeoDataFrame, int]:
    """One page of a level's grids ordered by code, and how many match in all."""
    where = "g.level = :level"
    params: dict[str, Any] = {"level": level}
    if bbox is not None:
        where += " AND ST_Intersects(g.geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))"
        params.update(dict(zip(("x0", "y0", "x1", "y1"), bbox, strict=True)))
    matched = int(
        session.execute(text(f"SELECT count(*) FROM grids g WHERE {where}"), params).scalar_one()
    )
    frame = gpd.read_postgis(
        text(
            f"SELECT {_OGC_COLUMNS} FROM grids g LEFT JOIN grids p ON p.id = g.parent_id "
            f"WHERE {where} ORDER BY g.code LIMIT :limit OFFSET :offset"
        ),
        session.connection(),
        geom_col="geom",
        crs=WGS84,
        params={**params, "limit": limit, "offset": offset},
    )
    return frame.rename_geometry("geometry"), matched


def ogc_item(session: Session, level: str, code: str) -> gpd.GeoDataFrame:
    """The grid of one level with this code (an empty frame when there is none)."""
    frame = gpd.read_postgis(
        text(
            f"SELECT {_OGC_COLUMNS} FROM grids g LEFT JOIN grids p ON p.id = g.parent_id "
            "WHERE g.level = :level AND g.code = :code"
        ),
        session.connection(),
        geom_col="geom",
        crs=WGS84,
        params={"level": level, "code": code},
    )
    return frame.rename_geometry("geometry")


def grid_id_version(session: Session, level: str, code: str) -> tuple[int, int] | None:
    """(id, version) of a grid by level and code, or None."""
    rec = session.execute(
        text("SELECT id, version FROM grids WHERE level = :level AND code = :code"),
        {"level": level, "code": code},
    ).one_or_none()
    return (int(rec[0]), int(rec[1])) if rec else None
