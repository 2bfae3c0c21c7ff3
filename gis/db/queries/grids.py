"""Grid queries: list and filter grids, locate a point's chain with the PostGIS path."""

from __future__ import annotations

import geopandas as gpd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import WGS84

CHAIN_LEVELS = ("micro", "grid", "community", "street")

_GRID_COLUMNS = """
    g.id, g.code, g.name, g.level, p.code AS parent_code, g.kind,
    g.households, g.residents, g.version, g.geom
"""


def grids_frame(
    session: Session,
    *,
    level: str | None = None,
    parent_code: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int | None = None,
) -> gpd.GeoDataFrame:
    """Grids as a GeoDataFrame (EPSG:4326), optionally filtered by level, parent and bbox.

    ``bbox`` is (min_lon, min_lat, max_lon, max_lat); grids intersecting it are returned.
    """
    where = ["TRUE"]
    params: dict[str, object] = {}
    if level is not None:
        where.append("g.level = :level")
        params["level"] = level
    if parent_code is not None:
        where.append("p.code = :parent_code")
        params["parent_code"] = parent_code
    if bbox is not None:
        where.append("ST_Intersects(g.geom, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326))")
        params.update(x0=bbox[0], y0=bbox[1], x1=bbox[2], y1=bbox[3])
    sql = (
        f"SELECT {_GRID_COLUMNS} FROM grids g LEFT JOIN grids p ON p.id = g.parent_id "
        f"WHERE {' AND '.join(where)} ORDER BY g.code"
    )
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = int(limit)
    frame = gpd.read_postgis(
        text(sql), session.connection(), geom_col="geom", crs=WGS84, params=params
    )
    return frame.rename_geometry("geometry")


def locate_chain(session: Session, lon: float, lat: float) -> dict[str, dict | None] | None:
    """The grid chain of a WGS84 point by the PostGIS path (``wangge_locate``).

    Returns ``None`` when no micro grid covers the point ("outside"); otherwise a dict with
    keys micro, grid, community, street and dedicated, each ``{id, code, name}`` or None.
    """
    row = (
        session.execute(
            text(
                """
                WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS geom),
                     m AS (SELECT wangge_locate(p.geom, 'micro') AS micro,
                                  wangge_locate(p.geom, 'dedicated') AS dedicated FROM p)
                SELECT g4.id AS micro_id, g4.code AS micro_code, g4.name AS micro_name,
                       g3.id AS grid_id, g3.code AS grid_code, g3.name AS grid_name,
                       g2.id AS community_id, g2.code AS community_code,
                       g2.name AS community_name,
                       g1.id AS street_id, g1.code AS street_code, g1.name AS street_name,
                       d.id AS dedicated_id, d.code AS dedicated_code, d.name AS dedicated_name
                FROM m
                LEFT JOIN grids g4 ON g4.id = m.micro
                LEFT JOIN grids g3 ON g3.id = g4.parent_id
                LEFT JOIN grids g2 ON g2.id = g3.parent_id
                LEFT JOIN grids g1 ON g1.id = g2.parent_id
                LEFT JOIN grids d ON d.id = m.dedicated
                """
            ),
            {"lon": float(lon), "lat": float(lat)},
        )
        .mappings()
        .one()
    )
    if row["micro_id"] is None:
        return None
    chain: dict[str, dict | None] = {}
    for level in (*CHAIN_LEVELS, "dedicated"):
        gid = row[f"{level}_id"]
        chain[level] = (
            None
            if gid is None
            else {"id": gid, "code": row[f"{level}_code"], "name": row[f"{level}_name"]}
        )
    return chain


def grids_fingerprint(session: Session) -> tuple[int, int, str]:
    """(count, sum of versions, latest update): changes whenever any grid changes.

    In-memory indexes compare it to decide when to rebuild.
    """
    row = session.execute(
        text(
            "SELECT count(*), coalesce(sum(version), 0), coalesce(max(updated_at)::text, '') "
            "FROM grids"
        )
    ).one()
    return int(row[0]), int(row[1]), str(row[2])
