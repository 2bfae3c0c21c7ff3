"""Hotspot queries: incident counts per micro grid (微网格) and per micro grid x week.

Counts include every located incident except those marked as duplicates of another, so a
hotspot is not inflated by repeated reports of the same problem. Weeks start on Monday in
local time (Asia/Shanghai), like the KPI pages.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import geopandas as gpd
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import WGS84
from gis.incidents import LOCAL_TZ


def _filters(
    category: str | None, start: datetime | None, end: datetime | None
) -> tuple[list[str], dict[str, object]]:
    where = ["i.micro_grid_id IS NOT NULL", "i.duplicate_of IS NULL"]
    params: dict[str, object] = {}
    if category is not None:
        where.append("i.category = :category")
        params["category"] = category
    if start is not None:
        where.append("i.reported_at >= :start")
        params["start"] = start
    if end is not None:
        where.append("i.reported_at < :end")
        params["end"] = end
    return where, params


def micro_counts(
    session: Session,
    *,
    category: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> gpd.GeoDataFrame:
    """Every micro grid with its incident count (0 when none), EPSG:4326.

    Parameters
    ----------
    category
        Only incidents of this category (e.g. 噪音扰民); all when None.
    start, end
        Reported in ``[start, end)`` (timezone-aware); open when None.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns grid_id, code, name, parent_code, households, count, geometry, ordered by
        code (the row order Gi* weights are built in).
    """
    where, params = _filters(category, start, end)
    sql = f"""
        SELECT g.id AS grid_id, g.code, g.name, p.code AS parent_code, g.households,
               COALESCE(c.n, 0) AS count, g.geom
        FROM grids g
        LEFT JOIN grids p ON p.id = g.parent_id
        LEFT JOIN (
            SELECT i.micro_grid_id, count(*) AS n FROM incidents i
            WHERE {" AND ".join(where)} GROUP BY i.micro_grid_id
        ) c ON c.micro_grid_id = g.id
        WHERE g.level = 'micro'
        ORDER BY g.code
    """
    frame = gpd.read_postgis(
        text(sql), session.connection(), geom_col="geom", crs=WGS84, params=params
    )
    frame["count"] = frame["count"].astype("int64")
    return frame.rename_geometry("geometry")


def latest_report(session: Session, *, category: str | None = None) -> datetime | None:
    """Time of the latest located incident (of ``category``), or None when there is none."""
    where, params = _filters(category, None, None)
    return session.execute(
        text(f"SELECT max(i.reported_at) FROM incidents i WHERE {' AND '.join(where)}"), params
    ).scalar()


def week_start(moment: datetime) -> date:
    """Monday of the local (Asia/Shanghai) week holding ``moment``."""
    local = moment.astimezone(LOCAL_TZ).date() if moment.tzinfo else moment.date()
    return local - timedelta(days=local.weekday())


def weekly_counts(
    session: Session,
    *,
    last_week: date,
    weeks: int,
    category: str | None = None,
) -> pd.DataFrame:
    """Incident counts per micro grid and local week, for ``weeks`` weeks ending with the
    week starting on ``last_week`` (a Monday). Only non-zero (grid, week) pairs are returned.

    Returns
    -------
    pandas.DataFrame
        Columns code, week (date of the Monday), count.
    """
    if last_week.weekday() != 0:
        raise ValueError(f"last_week must be a Monday, got {last_week}")
    first = last_week - timedelta(weeks=weeks - 1)
    start = datetime.combine(first, datetime.min.time(), LOCAL_TZ)
    end = datetime.combine(last_week + timedelta(weeks=1), datetime.min.time(), LOCAL_TZ)
    where, params = _filters(category, start, end)
    sql = f"""
        SELECT g.code,
               date_trunc('week', i.reported_at AT TIME ZONE 'Asia/Shanghai')::date AS week,
               count(*) AS count
        FROM incidents i JOIN grids g ON g.id = i.micro_grid_id
        WHERE {" AND ".join(where)}
        GROUP BY g.code, week
        ORDER BY g.code, week
    """
    rows = session.execute(text(sql), params).all()
    return pd.DataFrame(
        {
            "code": [r.code for r in rows],
            "week": pd.to_datetime([r.week for r in rows]),
            "count": [int(r.count) for r in rows],
        }
    )


def incident_categories(session: Session) -> list[str]:
    """Categories of located incidents, most frequent first (for the page's filter)."""
    where, params = _filters(None, None, None)
    rows = session.execute(
        text(
            f"SELECT i.category FROM incidents i WHERE {' AND '.join(where)} "
            "GROUP BY i.category ORDER BY count(*) DESC, i.category"
        ),
        params,
    ).scalars()
    return list(rows)
