"""Building queries: the table the address gazetteer is built from."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import NotFoundError


def buildings_frame(session: Session) -> pd.DataFrame:
    """Buildings with address parts, micro grid code and a point inside each (WGS84)."""
    rows = session.execute(
        text(
            """
            SELECT b.id AS building_id, b.road_name, b.house_number, b.compound_name,
                   b.building_no, b.units, b.address, g.code AS micro_code,
                   ST_X(ST_PointOnSurface(b.geom)) AS lon, ST_Y(ST_PointOnSurface(b.geom)) AS lat
            FROM buildings b LEFT JOIN grids g ON g.id = b.micro_grid_id
            ORDER BY b.id
            """
        )
    ).mappings()
    return pd.DataFrame([dict(r) for r in rows])


def buildings_fingerprint(session: Session) -> tuple[int, int]:
    """(count, max id) of buildings: changes when buildings are added or removed."""
    row = session.execute(text("SELECT count(*), coalesce(max(id), 0) FROM buildings")).one()
    return int(row[0]), int(row[1])


def building_point(session: Session, building_id: int) -> tuple[float, float]:
    """A point inside a building (WGS84 lon, lat)."""
    row = session.execute(
        text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) "
            "FROM buildings WHERE id = :id"
        ),
        {"id": building_id},
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"building {building_id} does not exist")
    return float(row[0]), float(row[1])
