"""Planning edits stored: one transaction per edit, optimistic locking, versions and rollback.

Every edit locks the grids it changes (``SELECT … FOR UPDATE``), refuses with
:class:`~gis.errors.StaleVersionError` when the client's version is not the current one,
computes the new geometries with :mod:`gis.planning` / :mod:`gis.partition` in the metric
CRS, checks that the family (parent and its children) has no new hierarchy problem, writes
the grids (bumping ``version`` and ``updated_at`` so cached indexes refresh), closes and
opens rows in ``grid_versions`` and recounts households from the buildings. The caller's
transaction makes it all-or-nothing.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import geopandas as gpd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import WGS84, metric_crs
from gis.errors import GisError, NotFoundError, StaleVersionError
from gis.grids import PARENT_LEVEL, check_hierarchy
from gis.partition import (
    MICRO_MAX_HH,
    MICRO_MIN_HH,
    Partition,
    auto_partition_micro,
    auto_split,
)
from gis.planning import (
    EditRefusedError,
    merge,
    next_child_code,
    reparent,
    reshape,
    split_by_line,
)

log = logging.getLogger(__name__)

_VALID = (
    "CASE WHEN lower_inf(valid) OR NOT isfinite(lower(valid)) THEN NULL ELSE lower(valid) END "
    "AS valid_from, CASE WHEN upper_inf(valid) THEN NULL ELSE upper(valid) END AS valid_to"
)
CHILD_LEVEL = {"street": "community", "community": "grid", "grid": "micro"}


@dataclass(frozen=True)
class GridRow:
    """A locked grid as the edit sees it (geometry in EPSG:4326)."""

    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    parent_code: str | None
    version: int
    geom: BaseGeometry


@dataclass(frozen=True)
class EditResult:
    """What an edit changed: ids of changed, created and deleted grids, and a partition."""

    operation: str
    changed: list[int]
    created: list[int]
    deleted: list[int]
    partition: Partition | None = None


@functools.lru_cache(maxsize=16)
def _transformers(crs: Any) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    """WGS84 → ``crs`` and back; building them costs ~0.15 s, so they are kept."""
    return (
        pyproj.Transformer.from_crs(WGS84, crs, always_xy=True),
        pyproj.Transformer.from_crs(crs, WGS84, always_xy=True),
    )


class _Metric:
    """Projects WGS84 shapes to the local metric CRS and back."""

    def __init__(self, geom: BaseGeometry) -> None:
        c = geom.centroid
        self._fwd, self._back = _transformers(metric_crs(c.x, c.y))

    def to_m(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda xy: _apply(self._fwd, xy))

    def to_deg(self, geom: BaseGeometry) -> BaseGeometry:
        return shapely.transform(geom, lambda xy: _apply(self._back, xy))


def _apply(tr: pyproj.Transformer, xy: Any) -> Any:
    x, y = tr.transform(xy[:, 0], xy[:, 1])
    xy = xy.copy()
    xy[:, 0], xy[:, 1] = x, y
    return xy


_ROW_SQL = """
SELECT g.id, g.code, g.name, g.level, g.parent_id, p.code AS parent_code, g.version,
       ST_AsBinary(g.geom) AS wkb
FROM grids g LEFT JOIN grids p ON p.id = g.parent_id
"""


def _row(rec: Any) -> GridRow:
    return GridRow(
        id=rec.id,
        code=rec.code,
        name=rec.name,
        level=rec.level,
        parent_id=rec.parent_id,
        parent_code=rec.parent_code,
        version=rec.version,
        geom=shapely.from_wkb(bytes(rec.wkb)),
    )


def get_grid(session: Session, grid_id: int, *, lock: bool = False) -> GridRow:
    """One grid, optionally locked for update; :class:`NotFoundError` if absent."""
    sql = _ROW_SQL + " WHERE g.id = :id" + (" FOR UPDATE OF g" if lock else "")
    rec = session.execute(text(sql), {"id": grid_id}).one_or_none()
    if rec is None:
        raise NotFoundError(f"grid {grid_id} does not exist")
    return _row(rec)


def _locked(session: Session, grid_id: int, expected_version: int | None) -> GridRow:
    row = get_grid(session, grid_id, lock=True)
    if expected_version is not None and expected_version != row.version:
        raise StaleVersionError(
            f"grid {row.code} is at version {row.version}, the edit was based on version "
            f"{expected_version}; reload and edit again",
            current_version=row.version,
        )
    return row


def _children(session: Session, parent_id: int, *, level: str | None = None) -> list[GridRow]:
    sql = _ROW_SQL + " WHERE g.parent_id = :pid"
    params: dict[str, Any] = {"pid": parent_id}
    if level is not None:
        sql += " AND g.level = :level"
        params["level"] = level
    return [
        _row(r) for r in session.execute(text(sql + " ORDER BY g.code FOR UPDATE OF g"), params)
    ]


def _family_problems(session: Session, parent_id: int | None) -> set[tuple[str, str]]:
    """Hierarchy problems (kind, grids) of a parent and its direct children."""
    if parent_id is None:
        return set()
    rows = [get_grid(session, parent_id), *_children(session, parent_id)]
    frame = gpd.GeoDataFrame(
        {
            "code": [r.code for r in rows],
            "level": [r.level for r in rows],
            "parent_code": [r.parent_code for r in rows],
        },
        geometry=[r.geom for r in rows],
        crs=WGS84,
    )
    frame.loc[0, "parent_code"] = None  # the parent is judged only as the family's outline
    report = check_hierarchy(frame)
    report = report[~report["kind"].isin(["code", "parent"])]
    return {(k, g) for k, g in zip(report["kind"], report["grids"], strict=True)}


def _guard(session: Session, parent_id: int | None, before: set[tuple[str, str]]) -> None:
    after = _family_problems(session, parent_id)
    new = sorted(after - before)
    if new:
        what = "; ".join(f"{k} at {g}" for k, g in new[:5])
        raise EditRefusedError(f"the edit would break the grid hierarchy: {what}")


def _geom_sql(name: str) -> str:
    return f"ST_Multi(ST_GeomFromWKB(:{name}, 4326))"


def _wkb(geom: BaseGeometry) -> bytes:
    return shapely.to_wkb(geom)


def record_loaded_versions(session: Session) -> int:
    """Version rows for grids without history (valid since forever): the loaded district."""
    res = session.execute(
        text(
            """
            INSERT INTO grid_versions (grid_id, code, level, parent_code, name, version,
                households, valid, operation, edited_by, reason, geom_before, geom_after)
            SELECT g.id, g.code, g.level, p.code, g.name, g.version, g.households,
                   tstzrange('-infinity', NULL), 'load', 'load', 'district loaded', NULL, g.geom
            FROM grids g LEFT JOIN grids p ON p.id = g.parent_id
            WHERE NOT EXISTS (SELECT 1 FROM grid_versions v
                              WHERE v.code = g.code AND upper_inf(v.valid))
            """
        )
    )
    return int(res.rowcount or 0)


def _close(session: Session, code: str) -> None:
    session.execute(
        text(
            "UPDATE grid_versions SET valid = tstzrange(lower(valid), clock_timestamp()) "
            "WHERE code = :code AND upper_inf(valid)"
        ),
        {"code": code},
    )


def _open(
    session: Session, grid_id: int, operation: str, who: str, why: str, before: bytes | None
) -> None:
    session.execute(
        text(
            """
            INSERT INTO grid_versions (grid_id, code, level, parent_code, name, version,
                households, valid, operation, edited_by, reason, geom_before, geom_after)
            SELECT g.id, g.code, g.level, p.code, g.name, g.version, g.households,
                   tstzrange(clock_timestamp(), NULL), :op, :who, :why,
                   ST_Multi(ST_GeomFromWKB(CAST(:before AS bytea), 4326)), g.geom
            FROM grids g LEFT JOIN grids p ON p.id = g.parent_id WHERE g.id = :id
            """
        ),
        {"id": grid_id, "op": operation, "who": who, "why": why, "before": before},
    )


def _update(
    session: Session,
    row: GridRow,
    geom_deg: BaseGeometry,
    operation: str,
    who: str,
    why: str,
    *,
    parent_id: int | None = None,
    code: str | None = None,
) -> None:
    record_loaded_versions_for(session, row.code)
    _close(session, row.code)
    session.execute(
        text(
            f"""
            UPDATE grids SET geom = {_geom_sql("g")}, version = version + 1,
                updated_at = clock_timestamp(),
                parent_id = COALESCE(:pid, parent_id), code = COALESCE(:code, code)
            WHERE id = :id
            """
        ),
        {"g": _wkb(geom_deg), "id": row.id, "pid": parent_id, "code": code},
    )
    _open(session, row.id, operation, who, why, shapely.to_wkb(row.geom))


def record_loaded_versions_for(session: Session, code: str) -> None:
    """Make sure one grid has its current state in the history before it is edited."""
    session.execute(
        text(
            """
            INSERT INTO grid_versions (grid_id, code, level, parent_code, name, version,
                households, valid, operation, edited_by, reason, geom_before, geom_after)
            SELECT g.id, g.code, g.level, p.code, g.name, g.version, g.households,
                   tstzrange('-infinity', NULL), 'load', 'load', 'state before first edit',
                   NULL, g.geom
            FROM grids g LEFT JOIN grids p ON p.id = g.parent_id
            WHERE g.code = :code AND NOT EXISTS (
                SELECT 1 FROM grid_versions v WHERE v.code = g.code AND upper_inf(v.valid))
            """
        ),
        {"code": code},
    )


def _insert(
    session: Session,
    parent: GridRow,
    level: str,
    geom_deg: BaseGeometry,
    name: str,
    operation: str,
    who: str,
    why: str,
) -> int:
    taken = set(
        session.execute(
            text("SELECT code FROM grids WHERE code LIKE :p || '%'"), {"p": parent.code}
        ).scalars()
    )
    taken |= set(
        session.execute(
            text("SELECT code FROM grid_versions WHERE code LIKE :p || '%'"), {"p": parent.code}
        ).scalars()
    )
    code = next_child_code(parent.code, level, taken)
    new_id = session.execute(
        text(
            f"""
            INSERT INTO grids (code, name, level, parent_id, kind, households, residents,
                version, updated_at, geom)
            VALUES (:code, :name, :level, :pid, NULL, 0, 0, 1, clock_timestamp(),
                {_geom_sql("g")})
            RETURNING id
            """
        ),
        {"code": code, "name": name or code, "level": level, "pid": parent.id, "g": _wkb(geom_deg)},
    ).scalar_one()
    _open(session, new_id, operation, who, why, None)
    return int(new_id)


def _repoint(session: Session, old_id: int, successor_id: int) -> None:
    """Point every other table's reference to a grid about to vanish at its successor."""
    _repoint_many(session, [(old_id, successor_id)])


def _repoint_many(session: Session, pairs: list[tuple[int, int]]) -> None:
    """Point every other table's references to grids about to vanish at their successors.

    One statement per referencing column for all the grids at once (the incidents table has
    referencing columns without an index, so each statement is a scan). Incidents with a
    location are then re-located into the micro grid now covering them; their history stays
    answerable in time through ``grid_versions`` (see :func:`version_at`).
    """
    if not pairs:
        return
    olds = [o for o, _ in pairs]
    news = [n for _, n in pairs]
    fks = session.execute(
        text(
            """
            SELECT c.conrelid::regclass::text AS tbl, a.attname AS col
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
            WHERE c.contype = 'f' AND c.confrelid = 'grids'::regclass
              AND c.conrelid::regclass::text NOT IN ('grids', 'grid_versions')
            """
        )
    ).all()
    pairs_sql = "(SELECT unnest(CAST(:olds AS int[])) AS old, unnest(CAST(:news AS int[])) AS new)"
    params = {"olds": olds, "news": news}
    for tbl, col in fks:
        if tbl == "staff_grids":  # a staff member may already hold the successor
            session.execute(
                text(
                    f"INSERT INTO staff_grids (staff_id, grid_id) SELECT s.staff_id, m.new "
                    f"FROM staff_grids s JOIN {pairs_sql} m ON s.grid_id = m.old "
                    "ON CONFLICT DO NOTHING"
                ),
                params,
            )
            continue
        if tbl == "track_effort":  # a track may already have effort in the successor: add
            session.execute(
                text(
                    f"""
                    INSERT INTO track_effort (track_id, grid_id, level, distance_m, seconds,
                                              entries)
                    SELECT e.track_id, m.new, min(g.level), sum(e.distance_m), sum(e.seconds),
                           sum(e.entries)
                    FROM track_effort e JOIN {pairs_sql} m ON e.grid_id = m.old
                    JOIN grids g ON g.id = m.new
                    GROUP BY e.track_id, m.new
                    ON CONFLICT (track_id, grid_id) DO UPDATE SET
                      distance_m = track_effort.distance_m + EXCLUDED.distance_m,
                      seconds = track_effort.seconds + EXCLUDED.seconds,
                      entries = track_effort.entries + EXCLUDED.entries
                    """
                ),
                params,
            )
            session.execute(
                text("DELETE FROM track_effort WHERE grid_id = ANY(:olds)"), {"olds": olds}
            )
            continue
        session.execute(
            text(
                f'UPDATE "{tbl}" t SET "{col}" = m.new FROM {pairs_sql} m WHERE t."{col}" = m.old'
            ),
            params,
        )


def _relocate_incidents(session: Session, grid_ids: list[int]) -> None:
    """Incidents now filed under these grids move to the micro grid covering their point."""
    session.execute(
        text(
            """
            UPDATE incidents i SET micro_grid_id = g.id FROM grids g
            WHERE i.micro_grid_id = ANY(:ids) AND i.geom IS NOT NULL AND g.level = 'micro'
              AND g.id = ANY(:ids) AND ST_Covers(g.geom, i.geom)
            """
        ),
        {"ids": grid_ids},
    )


def _delete(
    session: Session, row: GridRow, operation: str, who: str, why: str, successor_id: int
) -> None:
    _delete_many(session, [(row, successor_id)], operation, who, why)


def _delete_many(
    session: Session, rows: list[tuple[GridRow, int]], operation: str, who: str, why: str
) -> None:
    """Delete grids, each with a closing version row, references moved to its successor."""
    if not rows:
        return
    _repoint_many(session, [(r.id, succ) for r, succ in rows])
    for row, _ in rows:
        record_loaded_versions_for(session, row.code)
        _close(session, row.code)
    ids = [r.id for r, _ in rows]
    session.execute(
        text(
            """
            INSERT INTO grid_versions (grid_id, code, level, parent_code, name, version,
                households, valid, operation, edited_by, reason, geom_before, geom_after)
            SELECT NULL, g.code, g.level, p.code, g.name, g.version + 1, g.households,
                   tstzrange(clock_timestamp(), NULL), :op, :who, :why, g.geom, NULL
            FROM grids g LEFT JOIN grids p ON p.id = g.parent_id WHERE g.id = ANY(:ids)
            ORDER BY g.code
            """
        ),
        {"ids": ids, "op": operation, "who": who, "why": why},
    )
    session.execute(text("DELETE FROM grids WHERE id = ANY(:ids)"), {"ids": ids})


def recount(session: Session, grid_ids: list[int]) -> None:
    """Households and residents of grids (and their ancestors) from the buildings in them.

    A building counts in the grid holding its representative point; micro grids (微网格) also
    take over the buildings' ``micro_grid_id``.
    """
    if not grid_ids:
        return
    ids = list(grid_ids)
    session.execute(
        text(
            """
            UPDATE buildings b SET micro_grid_id = g.id
            FROM grids g
            WHERE g.id = ANY(:ids) AND g.level = 'micro' AND b.geom && g.geom
              AND ST_Intersects(g.geom, ST_PointOnSurface(b.geom))
            """
        ),
        {"ids": ids},
    )
    session.execute(
        text(
            """
            WITH RECURSIVE up(id) AS (
                SELECT id FROM grids WHERE id = ANY(:ids)
                UNION SELECT g.parent_id FROM grids g JOIN up ON g.id = up.id
                WHERE g.parent_id IS NOT NULL)
            UPDATE grids g SET
                households = COALESCE(s.hh, 0), residents = COALESCE(s.rs, 0)
            FROM (SELECT u.id,
                         (SELECT sum(b.households) FROM buildings b, grids x
                          WHERE x.id = u.id AND b.geom && x.geom
                            AND ST_Intersects(x.geom, ST_PointOnSurface(b.geom)))
                             AS hh,
                         (SELECT sum(b.residents) FROM buildings b, grids x
                          WHERE x.id = u.id AND b.geom && x.geom
                            AND ST_Intersects(x.geom, ST_PointOnSurface(b.geom)))
                             AS rs
                  FROM up u) s
            WHERE g.id = s.id
            """
        ),
        {"ids": ids},
    )
    session.execute(
        text(
            "UPDATE grid_versions v SET households = g.households FROM grids g "
            "WHERE v.grid_id = g.id AND g.id = ANY(:ids) AND upper_inf(v.valid)"
        ),
        {"ids": ids},
    )


def _has_children(session: Session, grid_id: int) -> bool:
    return bool(
        session.execute(
            text("SELECT EXISTS (SELECT 1 FROM grids WHERE parent_id = :id)"), {"id": grid_id}
        ).scalar()
    )


def _refuse_if_parent(session: Session, row: GridRow) -> None:
    if _has_children(session, row.id):
        raise EditRefusedError(
            f"grid {row.code} has child grids whose outlines would no longer fit; "
            "edit the child grids, or split/merge along their edges"
        )


def create_grid(
    session: Session,
    parent_id: int,
    geom: BaseGeometry,
    *,
    name: str = "",
    who: str,
    why: str,
) -> EditResult:
    """A new child grid drawn inside a parent; it takes its area from the siblings it covers."""
    parent = get_grid(session, parent_id, lock=True)
    level = CHILD_LEVEL.get(parent.level)
    if level is None:
        raise EditRefusedError(f"a {parent.level} grid cannot have child grids")
    before = _family_problems(session, parent.id)
    siblings = _children(session, parent.id, level=level)
    m = _Metric(parent.geom)
    out = reshape(
        m.to_m(geom),
        shapely.Polygon(),
        m.to_m(parent.geom),
        {s.code: m.to_m(s.geom) for s in siblings},
    )
    by_code = {s.code: s for s in siblings}
    changed = []
    for code, g in out.items():
        if code:
            _refuse_if_parent(session, by_code[code])
            _update(session, by_code[code], m.to_deg(g), "reshape", who, why)
            changed.append(by_code[code].id)
    new_id = _insert(session, parent, level, m.to_deg(out[""]), name, "create", who, why)
    _guard(session, parent.id, before)
    recount(session, [*changed, new_id])
    return EditResult("create", changed, [new_id], [])


def reshape_grid(
    session: Session,
    grid_id: int,
    geom: BaseGeometry,
    *,
    version: int,
    who: str,
    why: str,
    allow_swallow: bool = False,
) -> EditResult:
    """Give a grid a new outline; neighbours give and take the difference."""
    row = _locked(session, grid_id, version)
    _refuse_if_parent(session, row)
    parent = get_grid(session, row.parent_id, lock=True) if row.parent_id else None
    before = _family_problems(session, row.parent_id)
    siblings = (
        [s for s in _children(session, row.parent_id, level=row.level) if s.id != row.id]
        if row.parent_id
        else []
    )
    m = _Metric(row.geom)
    out = reshape(
        m.to_m(geom),
        m.to_m(row.geom),
        m.to_m(parent.geom) if parent else None,
        {s.code: m.to_m(s.geom) for s in siblings},
        allow_swallow=allow_swallow,
    )
    by_code = {s.code: s for s in siblings}
    _update(session, row, m.to_deg(out[""]), "reshape", who, why)
    changed, deleted = [row.id], []
    for code, g in out.items():
        if code:
            _refuse_if_parent(session, by_code[code])
            if g.is_empty:
                _delete(session, by_code[code], "delete", who, why, row.id)
                deleted.append(by_code[code].id)
                continue
            _update(session, by_code[code], m.to_deg(g), "reshape", who, why)
            changed.append(by_code[code].id)
    if deleted:
        _relocate_incidents(session, changed)
    _guard(session, row.parent_id, before)
    recount(session, changed)
    return EditResult("reshape", changed, [], deleted)


def split_grid(
    session: Session, grid_id: int, line: BaseGeometry, *, version: int, who: str, why: str
) -> EditResult:
    """Split a grid with a line: it keeps the largest part, the others become new siblings.

    Child grids follow the part holding them; a line cutting through a child is refused.
    """
    row = _locked(session, grid_id, version)
    if row.parent_id is None:
        raise EditRefusedError("a street office cannot be split here")
    m = _Metric(row.geom)
    parts = split_by_line(m.to_m(row.geom), m.to_m(line)).parts
    return _store_parts(session, row, [m.to_deg(p) for p in parts], "split", who, why, None)


def _store_parts(
    session: Session,
    row: GridRow,
    parts_deg: list[BaseGeometry],
    operation: str,
    who: str,
    why: str,
    partition: Partition | None,
) -> EditResult:
    parent = get_grid(session, row.parent_id, lock=True) if row.parent_id else None
    before = _family_problems(session, row.parent_id)
    before_own = _family_problems(session, row.id)
    kids = _children(session, row.id)
    home: dict[int, int] = {}
    for kid in kids:
        covering = [i for i, p in enumerate(parts_deg) if kid.geom.intersection(p).area > 0]
        areas = [kid.geom.intersection(parts_deg[i]).area / kid.geom.area for i in covering]
        best = max(range(len(covering)), key=lambda k: areas[k]) if covering else None
        if best is None or areas[best] < 0.999:
            raise EditRefusedError(f"the cut runs through child grid {kid.code}")
        home[kid.id] = covering[best]
    _update(session, row, parts_deg[0], operation, who, why)
    ids = [row.id]
    created = []
    assert parent is not None
    for k, part in enumerate(parts_deg[1:], start=1):
        new_id = _insert(
            session, parent, row.level, part, f"{row.name}-{k + 1}", operation, who, why
        )
        ids.append(new_id)
        created.append(new_id)
    for kid in kids:
        target = ids[home[kid.id]]
        if target != row.id:
            new_code = next_child_code(
                _code_of(session, target),
                kid.level,
                _codes_like(session, _code_of(session, target)),
            )
            _update(session, kid, kid.geom, "reparent", who, why, parent_id=target, code=new_code)
    _guard(session, row.parent_id, before)
    for gid in ids:
        _guard(session, gid, before_own if gid == row.id else set())
    recount(session, ids)
    return EditResult(operation, [row.id], created, [], partition)


def _code_of(session: Session, grid_id: int) -> str:
    return str(
        session.execute(text("SELECT code FROM grids WHERE id = :id"), {"id": grid_id}).scalar_one()
    )


def _codes_like(session: Session, prefix: str) -> set[str]:
    q = "SELECT code FROM {t} WHERE code LIKE :p || '%'"
    out: set[str] = set()
    for t in ("grids", "grid_versions"):
        out |= set(session.execute(text(q.format(t=t)), {"p": prefix}).scalars())
    return out


def merge_grids(
    session: Session,
    keep_id: int,
    other_id: int,
    *,
    version: int,
    other_version: int,
    who: str,
    why: str,
) -> EditResult:
    """Merge an adjacent sibling into a grid; the other's children move to the merged grid."""
    if keep_id == other_id:
        raise EditRefusedError("a grid cannot be merged with itself")
    keep = _locked(session, keep_id, version)
    other = _locked(session, other_id, other_version)
    if keep.parent_id != other.parent_id or keep.level != other.level:
        raise EditRefusedError(
            f"only siblings merge: {keep.code} and {other.code} have different parents or levels"
        )
    before = _family_problems(session, keep.parent_id)
    before_own = _family_problems(session, keep.id)
    m = _Metric(keep.geom)
    merged = m.to_deg(merge(m.to_m(keep.geom), m.to_m(other.geom)))
    _update(session, keep, merged, "merge", who, why)
    for kid in _children(session, other.id):
        code = next_child_code(keep.code, kid.level, _codes_like(session, keep.code))
        _update(session, kid, kid.geom, "reparent", who, why, parent_id=keep.id, code=code)
    _delete(session, other, "delete", who, f"merged into {keep.code}: {why}", keep.id)
    _guard(session, keep.parent_id, before)
    _guard(session, keep.id, before_own)
    recount(session, [keep.id])
    return EditResult("merge", [keep.id], [], [other.id])


def reparent_grid(
    session: Session, grid_id: int, new_parent_id: int, *, version: int, who: str, why: str
) -> EditResult:
    """Move a grid to a neighbouring parent of the right level; the parents' outlines follow."""
    row = _locked(session, grid_id, version)
    if row.parent_id is None:
        raise EditRefusedError("a street office has no parent")
    if new_parent_id == row.parent_id:
        raise EditRefusedError("the grid already belongs to that parent")
    old_parent = get_grid(session, row.parent_id, lock=True)
    new_parent = get_grid(session, new_parent_id, lock=True)
    if PARENT_LEVEL.get(row.level) != new_parent.level:
        raise EditRefusedError(
            f"a {row.level} grid needs a {PARENT_LEVEL.get(row.level)} parent, "
            f"not a {new_parent.level}"
        )
    if old_parent.parent_id != new_parent.parent_id:
        raise EditRefusedError("both parents must have the same parent")
    grand = old_parent.parent_id
    before = _family_problems(session, grand)
    m = _Metric(row.geom)
    res = reparent(m.to_m(row.geom), m.to_m(old_parent.geom), m.to_m(new_parent.geom))
    _update(session, old_parent, m.to_deg(res.old_parent), "reparent", who, why)
    _update(session, new_parent, m.to_deg(res.new_parent), "reparent", who, why)
    code = next_child_code(new_parent.code, row.level, _codes_like(session, new_parent.code))
    _update(session, row, row.geom, "reparent", who, why, parent_id=new_parent.id, code=code)
    _guard(session, grand, before)
    recount(session, [row.id, old_parent.id, new_parent.id])
    return EditResult("reparent", [row.id, old_parent.id, new_parent.id], [], [])


def _buildings_and_roads(
    session: Session, geom: BaseGeometry, m: _Metric
) -> tuple[list[BaseGeometry], list[int], list[BaseGeometry]]:
    b, hh, roads, _ = _buildings_roads_ids(session, geom, m)
    return b, hh, roads


def _buildings_roads_ids(
    session: Session, geom: BaseGeometry, m: _Metric
) -> tuple[list[BaseGeometry], list[int], list[BaseGeometry], list[int]]:
    """Buildings counted in ``geom`` (metric), their households, the roads clipped to it and
    the buildings' ids."""
    wkb = shapely.to_wkb(geom)
    rows = session.execute(
        text(
            "SELECT b.id, ST_AsBinary(b.geom) AS wkb, b.households FROM buildings b "
            "WHERE ST_Intersects(ST_GeomFromWKB(:g, 4326), ST_PointOnSurface(b.geom)) ORDER BY b.id"
        ),
        {"g": wkb},
    ).all()
    roads = session.execute(
        text(
            "SELECT ST_AsBinary(ST_Intersection(r.geom, ST_GeomFromWKB(:g, 4326))) FROM roads r "
            "WHERE ST_Intersects(r.geom, ST_GeomFromWKB(:g, 4326))"
        ),
        {"g": wkb},
    ).scalars()
    return (
        [m.to_m(shapely.from_wkb(bytes(r.wkb))) for r in rows],
        [int(r.households) for r in rows],
        [m.to_m(shapely.from_wkb(bytes(w))) for w in roads],
        [int(r.id) for r in rows],
    )


def auto_split_grid(
    session: Session, grid_id: int, n: int, *, version: int, who: str, why: str
) -> EditResult:
    """Split a grid into ``n`` contiguous parts with balanced households (see gis.partition)."""
    row = _locked(session, grid_id, version)
    if row.parent_id is None:
        raise EditRefusedError("a street office cannot be split here")
    _refuse_if_parent(session, row)
    m = _Metric(row.geom)
    b, hh, roads = _buildings_and_roads(session, row.geom, m)
    result = auto_split(m.to_m(row.geom), b, hh, n, roads)
    parts = [m.to_deg(p.geometry) for p in result.parts]
    return _store_parts(session, row, parts, "split", who, why, result)


def auto_partition_grid(
    session: Session,
    grid_id: int,
    *,
    version: int,
    who: str,
    why: str,
    min_hh: int = MICRO_MIN_HH,
    max_hh: int = MICRO_MAX_HH,
) -> EditResult:
    """Replace the micro grids (微网格) of a 三级 grid by a new partition of ``min_hh``–``max_hh``
    households (straight cuts, else the building-graph partition; see gis.partition)."""
    row = _locked(session, grid_id, version)
    if row.level != "grid":
        raise EditRefusedError(f"auto-partition works on 三级 grids, not on a {row.level} grid")
    m = _Metric(row.geom)
    b, hh, roads, ids = _buildings_roads_ids(session, row.geom, m)
    result = auto_partition_micro(
        m.to_m(row.geom),
        b,
        hh,
        roads,
        min_hh=min_hh,
        max_hh=max_hh,
        names=[str(i) for i in ids],
    )
    olds = _children(session, row.id)
    nested = session.execute(
        text(
            "SELECT p.code FROM grids c JOIN grids p ON p.id = c.parent_id "
            "WHERE c.parent_id = ANY(:ids) ORDER BY p.code LIMIT 1"
        ),
        {"ids": [o.id for o in olds]},
    ).scalar_one_or_none()
    if nested is not None:
        raise EditRefusedError(f"micro grid {nested} has child grids")
    new_geoms = [m.to_deg(p.geometry) for p in result.parts]
    taken = _codes_like(session, row.code)
    created = []
    for geom in new_geoms:
        code = next_child_code(row.code, "micro", taken)
        taken.add(code)
        new_id = session.execute(
            text(
                f"""
                INSERT INTO grids (code, name, level, parent_id, kind, households, residents,
                    version, updated_at, geom)
                VALUES (:code, :name, 'micro', :pid, NULL, 0, 0, 1, clock_timestamp(),
                    {_geom_sql("g")})
                RETURNING id
                """
            ),
            {"code": code, "name": code, "pid": row.id, "g": _wkb(geom)},
        ).scalar_one()
        _open(session, int(new_id), "create", who, why, None)
        created.append(int(new_id))
    succ = []
    for old in olds:
        spot = old.geom.representative_point()
        succ.append(
            (
                old,
                next(
                    (g for g, p in zip(created, new_geoms, strict=True) if p.covers(spot)),
                    created[0],
                ),
            )
        )
    _delete_many(session, succ, "delete", who, f"auto-partition of {row.code}: {why}")
    _relocate_incidents(session, created)
    _guard(session, row.id, set())
    recount(session, created)
    return EditResult("auto-partition", [], created, [o.id for o in olds], result)


@dataclass(frozen=True)
class GridOutcome:
    """What an auto-partition did to one 三级 grid: ``done`` with the result, or refused."""

    grid_id: int
    code: str
    done: bool
    result: EditResult | None = None
    reason: str | None = None

    @property
    def method(self) -> str | None:
        """``straight cuts`` or ``building graph``: how the partition was found."""
        if self.result is None or self.result.partition is None:
            return None
        return "building graph" if self.result.partition.notes else "straight cuts"


def auto_partition_children(
    session: Session,
    community_id: int,
    *,
    who: str,
    why: str,
    min_hh: int = MICRO_MIN_HH,
    max_hh: int = MICRO_MAX_HH,
) -> list[GridOutcome]:
    """Auto-partition every 三级 grid of a community, each all-or-nothing on its own.

    Each grid's edit runs in a savepoint: a grid that is refused (with the reason) is rolled
    back to where it started and the others go on. The caller commits.
    """
    community = get_grid(session, community_id)
    if community.level != "community":
        raise EditRefusedError(
            f"community auto-partition works on communities, not on a {community.level} grid"
        )
    grids = session.execute(
        text(
            "SELECT id, code, version FROM grids WHERE parent_id = :id AND level = 'grid' "
            "ORDER BY code"
        ),
        {"id": community_id},
    ).all()
    out = []
    for gid, code, ver in grids:
        try:
            with session.begin_nested():
                res = auto_partition_grid(
                    session, gid, version=ver, who=who, why=why, min_hh=min_hh, max_hh=max_hh
                )
            out.append(GridOutcome(int(gid), code, True, res))
        except GisError as exc:
            out.append(GridOutcome(int(gid), code, False, reason=str(exc)))
    return out


def history(session: Session, grid_id: int) -> list[dict[str, Any]]:
    """Every version of a grid (by its current code and id), oldest first."""
    row = get_grid(session, grid_id)
    rows = session.execute(
        text(
            f"""
            SELECT id, grid_id, code, level, parent_code, name, version, households,
                   {_VALID}, operation, edited_by,
                   reason, edited_at, ST_AsGeoJSON(geom_before)::json AS geom_before,
                   ST_AsGeoJSON(geom_after)::json AS geom_after
            FROM grid_versions WHERE grid_id = :id OR code = :code
            ORDER BY lower(valid), id
            """
        ),
        {"id": row.id, "code": row.code},
    ).mappings()
    return [dict(r) for r in rows]


def rollback_grid(
    session: Session, grid_id: int, to_version: int, *, version: int, who: str, why: str
) -> EditResult:
    """Restore the outline a grid had at ``to_version``, as a new version (history is kept).

    Neighbours give and take the difference exactly as for a reshape, so the hierarchy rules
    still hold; refused when they cannot.
    """
    row = get_grid(session, grid_id)
    geom_wkb = session.execute(
        text(
            "SELECT ST_AsBinary(geom_after) FROM grid_versions "
            "WHERE (grid_id = :id OR code = :code) AND version = :v AND geom_after IS NOT NULL "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"id": row.id, "code": row.code, "v": to_version},
    ).scalar_one_or_none()
    if geom_wkb is None:
        raise NotFoundError(f"grid {row.code} has no version {to_version}")
    res = reshape_grid(
        session,
        grid_id,
        shapely.from_wkb(bytes(geom_wkb)),
        version=version,
        who=who,
        why=f"rollback to version {to_version}: {why}",
        allow_swallow=True,
    )
    session.execute(
        text(
            "UPDATE grid_versions SET operation = 'rollback' "
            "WHERE grid_id = :id AND upper_inf(valid)"
        ),
        {"id": grid_id},
    )
    return EditResult("rollback", res.changed, [], res.deleted)


def version_at(
    session: Session, lon: float, lat: float, at: datetime, *, level: str = "micro"
) -> dict[str, Any] | None:
    """The grid version of ``level`` covering a WGS84 point at time ``at``, or None."""
    rec = (
        session.execute(
            text(
                f"""
                SELECT code, version, name, operation, {_VALID}
                FROM grid_versions
                WHERE level = :level AND valid @> CAST(:at AS timestamptz)
                  AND geom_after IS NOT NULL
                  AND ST_Covers(geom_after, ST_SetSRID(ST_MakePoint(:x, :y), 4326))
                ORDER BY code LIMIT 1
                """
            ),
            {"level": level, "at": at, "x": lon, "y": lat},
        )
        .mappings()
        .one_or_none()
    )
    return dict(rec) if rec else None


def incident_grid_versions(session: Session, incident_ids: list[int]) -> dict[int, dict[str, Any]]:
    """For each incident, the micro grid version in force where and when it was reported."""
    rows = session.execute(
        text(
            """
            SELECT DISTINCT ON (i.id) i.id AS incident_id, v.code, v.version, v.grid_id
            FROM incidents i JOIN grid_versions v
              ON v.level = 'micro' AND v.valid @> i.reported_at AND v.geom_after IS NOT NULL
             AND ST_Covers(v.geom_after, i.geom)
            WHERE i.id = ANY(:ids)
            ORDER BY i.id, v.code
            """
        ),
        {"ids": incident_ids},
    ).mappings()
    return {r["incident_id"]: dict(r) for r in rows}


def track_point_grid_versions(session: Session, track_id: int) -> list[dict[str, Any]]:
    """For each point of a patrol track, the micro grid version in force at its time ``t``."""
    rows = session.execute(
        text(
            """
            SELECT p.seq, p.t, v.code, v.version
            FROM track_points p LEFT JOIN LATERAL (
                SELECT code, version FROM grid_versions v
                WHERE v.level = 'micro' AND v.valid @> p.t AND v.geom_after IS NOT NULL
                  AND ST_Covers(v.geom_after, p.geom)
                ORDER BY code LIMIT 1) v ON TRUE
            WHERE p.track_id = :tid ORDER BY p.seq
            """
        ),
        {"tid": track_id},
    ).mappings()
    return [dict(r) for r in rows]
