"""Aggregation queries of the leadership dashboards (领导驾驶舱): everything is summed in
PostGIS, so a page carries grid counts and heat cells, never a million raw incidents.

* :func:`grid_counts` — incidents per grid of every level in one scan (``GROUPING SETS``);
* :func:`period_heat` — incident counts per (week or month, square cell);
* :func:`recent_incidents` — the latest matching incidents, for the grid popups;
* :func:`kpi_summary` — 处置率, on-time rate, satisfaction and in-grid closure (小事不出格),
  for the district and per community, with the same definitions as :mod:`gis.kpis`;
* :func:`patrol_coverage`, :func:`service_coverage` — simple coverage counts;
* :func:`latest_patrol_day`, :func:`patrol_days` — the overview's patrol cards and chart;
* :func:`refresh_rollup`, :func:`ensure_rollup` — the rollup (驾驶舱汇总表,
  ``incident_rollup_*``): exact per-day/month/week sums the pages read instead of the
  incidents (``rollup=True`` on :func:`dashboard_summary`, :func:`grid_counts`,
  :func:`period_heat`; :func:`heat_total`), refreshed by the SLA tick and whenever a page
  finds it stale. A filter the rollup cannot answer (category, source, a window not on
  day/month/week starts) is counted from the incidents as before.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.errors import GisError
from gis.incidents import SOURCES, Status
from gis.taxonomy import Taxonomy

log = logging.getLogger(__name__)

# grid level -> the incidents column holding the incident's grid of that level
LEVEL_COLUMNS: dict[str, str] = {
    "street": "street_id",
    "community": "community_id",
    "grid": "grid_id",
    "micro": "micro_grid_id",
    "dedicated": "dedicated_grid_id",
}
PERIODS: tuple[str, ...] = ("week", "month")
LOCAL_TZ_NAME = "Asia/Shanghai"
_DONE = ("resolved", "evaluated", "closed")
_VOID = ("rejected", "duplicate")

# The resolve deadline of an incident (the rule of gis.kpis): the end of its local day, but
# at least half the category's deadline, for same-day categories; else the deadline. Needs
# the deadlines table ``d`` joined by ``_DEADLINE_JOIN``.
_RESOLVE_BY = f"""CASE
        WHEN coalesce(dc.same_day, dn.same_day, TRUE) THEN greatest(
            (date_trunc('day', i.reported_at AT TIME ZONE '{LOCAL_TZ_NAME}')
             + interval '1 day') AT TIME ZONE '{LOCAL_TZ_NAME}',
            i.reported_at + make_interval(
                secs => coalesce(dc.resolve_s, dn.resolve_s, 86400.0) / 2))
        ELSE i.reported_at + make_interval(
            secs => coalesce(dc.resolve_s, dn.resolve_s, 86400.0))
    END"""
_ON_TIME = (
    f"(i.status IN ({', '.join(repr(st) for st in _DONE)}) AND i.resolved_at <= {_RESOLVE_BY})"
)
_DEADLINE_JOIN = """LEFT JOIN d dc ON dc.code = i.category_code
    LEFT JOIN d dn ON i.category_code IS NULL AND dn.name = i.category"""
_STATUSES = tuple(s.value for s in Status)


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """Rows of a result as a frame, column by column (pandas probes each SQLAlchemy
    ``Row`` for namedtuple fields, which costs seconds on 100,000 rows)."""
    if not rows:
        return pd.DataFrame(columns=columns)
    values = (list(c) for c in zip(*rows, strict=True))
    return pd.DataFrame(dict(zip(columns, values, strict=True)))


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents a dashboard counts: categories (name or code), sources, statuses and
    the report window ``[start, end)``; empty means no restriction."""

    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        bad_source = [s for s in self.sources if s not in SOURCES]
        if bad_source:
            raise GisError(f"unknown source {bad_source}; use any of {', '.join(SOURCES)}")
        bad_status = [s for s in self.statuses if s not in _STATUSES]
        if bad_status:
            raise GisError(f"unknown status {bad_status}; use any of {', '.join(_STATUSES)}")
        if self.start and self.end and self.start >= self.end:
            raise GisError(f"start {self.start.isoformat()} is not before end {self.end}")

    def where(self, alias: str = "i") -> tuple[str, dict[str, Any]]:
        """SQL condition (``TRUE`` when empty) and its bound parameters."""
        parts = ["TRUE"]
        params: dict[str, Any] = {}
        if self.categories:
            parts.append(f"({alias}.category = ANY(:f_cat) OR {alias}.category_code = ANY(:f_cat))")
            params["f_cat"] = list(self.categories)
        if self.sources:
            parts.append(f"{alias}.source = ANY(:f_src)")
            params["f_src"] = list(self.sources)
        if self.statuses:
            parts.append(f"{alias}.status = ANY(:f_st)")
            params["f_st"] = list(self.statuses)
        if self.start is not None:
            parts.append(f"{alias}.reported_at >= :f_start")
            params["f_start"] = self.start
        if self.end is not None:
            parts.append(f"{alias}.reported_at < :f_end")
            params["f_end"] = self.end
        return " AND ".join(parts), params

    @property
    def active(self) -> bool:
        """True when any restriction is set."""
        return bool(self.categories or self.sources or self.statuses or self.start or self.end)


def grid_counts(
    session: Session, flt: IncidentFilter | None = None, *, rollup: bool = False
) -> pd.DataFrame:
    """Incidents per grid, for every level at once.

    With ``rollup`` the counts come from ``incident_rollup_grids`` when the filter allows it
    (no category or source, window on local month starts); else from the incidents.

    Returns
    -------
    pandas.DataFrame
        One row per grid of the ``grids`` table (zero counts included): grid_id, code, name,
        level, households, incidents, handled (resolved/evaluated/closed), open (neither
        handled nor void) and ``rate_per_1000`` = incidents per 1,000 households (None for a
        grid without households).
    """
    flt = flt or IncidentFilter()
    from_rollup = rollup and grid_rollup_serves(flt)
    if from_rollup:
        where, params = _rollup_where(flt, "month", "month")
        table, n = "incident_rollup_grids", "i.incidents"
    else:
        where, params = flt.where("i")
        table, n = "incidents", "1"
    cols = list(LEVEL_COLUMNS.values())
    sets = ", ".join(f"({c})" for c in cols)
    # GROUPING(...) sets the bit of every column not grouped on, the first column highest
    full = (1 << len(cols)) - 1
    cases = " ".join(
        f"WHEN {full ^ (1 << (len(cols) - 1 - k))} THEN {c}" for k, c in enumerate(cols)
    )
    done = ", ".join(f"'{s}'" for s in _DONE)
    void = ", ".join(f"'{s}'" for s in (*_DONE, *_VOID))
    sql = f"""
        WITH agg AS (
            SELECT {", ".join(cols)}, GROUPING({", ".join(cols)}) AS g,
                   sum({n}) AS incidents,
                   coalesce(sum({n}) FILTER (WHERE i.status IN ({done})), 0) AS handled,
                   coalesce(sum({n}) FILTER (WHERE i.status NOT IN ({void})), 0) AS open
            FROM {table} i WHERE {where}
            GROUP BY GROUPING SETS ({sets})
        ), by_grid AS (
            SELECT CASE g {cases} END AS grid_id,
                   incidents, handled, open
            FROM agg
        )
        SELECT gr.id AS grid_id, gr.code, gr.name, gr.level, gr.households,
               coalesce(b.incidents, 0) AS incidents, coalesce(b.handled, 0) AS handled,
               coalesce(b.open, 0) AS open
        FROM grids gr LEFT JOIN by_grid b ON b.grid_id = gr.id
        ORDER BY gr.level, gr.code
    """
    result = session.execute(text(sql), params)
    frame = _frame(result.fetchall(), list(result.keys()))
    for col in ("grid_id", "households", "incidents", "handled", "open"):
        frame[col] = frame[col].astype("int64")
    hh = frame["households"].where(frame["households"] > 0)
    frame["rate_per_1000"] = (frame["incidents"] / hh * 1000).round(2)
    frame["rate_per_1000"] = frame["rate_per_1000"].astype(object).where(hh.notna(), None)
    return frame


def period_heat(
    session: Session,
    flt: IncidentFilter | None = None,
    *,
    period: str = "month",
    cell_deg: float = 0.0005,
    rollup: bool = False,
) -> pd.DataFrame:
    """Incident counts per (period, square cell of ``cell_deg`` degrees, about 50 m).

    Periods start on the local (Asia/Shanghai) Monday or first of the month. With
    ``rollup`` the cells come from ``incident_rollup_heat`` when the filter allows it (no
    category, source or status; window on period starts; ``cell_deg`` the rollup's cell
    times a power of two).

    Returns
    -------
    pandas.DataFrame
        Columns period (date of the period's first day, ``YYYY-MM-DD``), gx, gy (integer cell
        indices: the cell spans ``[gx*cell_deg, (gx+1)*cell_deg)`` in longitude) and weight.
    """
    if period not in PERIODS:
        raise GisError(f"unknown period {period!r}; use week or month")
    if not cell_deg > 0:
        raise GisError(f"cell size must be positive, got {cell_deg}")
    flt = flt or IncidentFilter()
    k = _coarsening(cell_deg)
    if rollup and k is not None and heat_rollup_serves(flt, period):
        where, params = _rollup_where(flt, "start", period)
        sql = f"""
            SELECT i.start AS p, floor(i.gx / CAST(:k AS float8))::int AS gx,
                   floor(i.gy / CAST(:k AS float8))::int AS gy, sum(i.weight) AS weight
            FROM incident_rollup_heat i WHERE i.period = :period AND {where}
            GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        """
        rows = session.execute(text(sql), {**params, "k": k, "period": period}).all()
    else:
        rows = _period_heat_direct(session, flt, period, cell_deg)
    frame = _frame(rows, ["period", "gx", "gy", "weight"])
    frame["period"] = [d.isoformat() for d in frame["period"]]
    return frame.astype({"gx": "int64", "gy": "int64", "weight": "int64"})


def _period_heat_direct(
    session: Session, flt: IncidentFilter, period: str, cell_deg: float
) -> list[Any]:
    where, params = flt.where("i")
    sql = f"""
        SELECT date_trunc('{period}', i.reported_at AT TIME ZONE '{LOCAL_TZ_NAME}')::date AS p,
               floor(ST_X(i.geom) / :c)::int AS gx, floor(ST_Y(i.geom) / :c)::int AS gy,
               count(*) AS weight
        FROM incidents i WHERE i.geom IS NOT NULL AND {where}
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    """
    return list(session.execute(text(sql), {**params, "c": cell_deg}).all())


def recent_incidents(
    session: Session,
    flt: IncidentFilter | None = None,
    *,
    limit: int = 20_000,
    per_grid: int | None = None,
) -> pd.DataFrame:
    """The latest ``limit`` matching incidents (newest first), with their grid of each level.

    The popups take the newest five per grid from these; a grid with none among them has
    had nothing recent to show. With ``per_grid`` only the incidents among the newest
    ``per_grid`` of their grid at some level are returned (the same popups, a few thousand
    rows instead of ``limit``).
    """
    where, params = (flt or IncidentFilter()).where("i")
    cols = ", ".join(f"i.{c}" for c in LEVEL_COLUMNS.values())
    sql = f"""
        SELECT i.id, i.reported_at, i.category, i.source, i.status, i.address, {cols}
        FROM incidents i WHERE {where}
        ORDER BY i.reported_at DESC, i.id DESC LIMIT :lim
    """
    if per_grid is not None:
        ranks = ", ".join(
            f"row_number() OVER (PARTITION BY {c} ORDER BY reported_at DESC, id DESC) AS k_{c}"
            for c in LEVEL_COLUMNS.values()
        )
        keep = " OR ".join(f"({c} IS NOT NULL AND k_{c} <= :per)" for c in LEVEL_COLUMNS.values())
        names = ", ".join(LEVEL_COLUMNS.values())
        sql = f"""
            WITH r AS ({sql}), k AS (SELECT r.*, {ranks} FROM r)
            SELECT id, reported_at, category, source, status, address, {names}
            FROM k WHERE {keep} ORDER BY reported_at DESC, id DESC
        """
        params["per"] = int(per_grid)
    result = session.execute(text(sql), {**params, "lim": int(limit)})
    frame = _frame(result.fetchall(), list(result.keys()))
    frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True)
    return frame


def _deadline_values(taxonomy: Taxonomy) -> tuple[str, dict[str, Any]]:
    """A VALUES list of (code, name, resolve seconds, same day) for the taxonomy."""
    rows, params = [], {}
    for k, c in enumerate(taxonomy):
        rows.append(f"(:c{k}, :n{k}, :s{k}, :d{k})")
        params |= {
            f"c{k}": c.code,
            f"n{k}": c.name,
            f"s{k}": float(c.deadlines.resolve.total_seconds()),
            f"d{k}": bool(c.deadlines.resolve_same_day),
        }
    if not rows:
        rows = ["(NULL, NULL, 86400.0, TRUE)"]
    return "VALUES " + ", ".join(rows), params


def kpi_summary(
    session: Session, taxonomy: Taxonomy, flt: IncidentFilter | None = None
) -> pd.DataFrame:
    """KPIs of the district (``community_id`` None, first row) and of each community.

    Same definitions as :func:`gis.kpis.incident_kpis`: valid excludes rejected and
    duplicate; handled = resolved, evaluated or closed; 处置率 = handled / valid; on-time =
    handled with ``resolved_at`` ≤ the resolve deadline (same-day categories: local midnight,
    at least half the window), rate over handled; satisfaction = mean score; in-grid share =
    closed at grid level / closed.
    """
    values, params = _deadline_values(taxonomy)
    where, fparams = (flt or IncidentFilter()).where("i")
    done = ", ".join(f"'{s}'" for s in _DONE)
    void = ", ".join(f"'{s}'" for s in _VOID)
    sql = f"""
        WITH d(code, name, resolve_s, same_day) AS ({values}),
        x AS (
            SELECT i.community_id, i.status, i.handling_level, i.satisfaction, i.resolved_at,
                   {_RESOLVE_BY} AS resolve_by
            FROM incidents i {_DEADLINE_JOIN}
            WHERE {where}
        )
        SELECT GROUPING(community_id) AS total, community_id,
               count(*) AS incidents,
               count(*) FILTER (WHERE status NOT IN ({void})) AS valid,
               count(*) FILTER (WHERE status IN ({done})) AS handled,
               count(*) FILTER (WHERE status IN ({done}) AND resolved_at <= resolve_by)
                   AS on_time,
               count(*) FILTER (WHERE status = 'closed') AS closed,
               count(*) FILTER (WHERE status = 'closed' AND handling_level = 'grid')
                   AS closed_in_grid,
               avg(satisfaction)::float8 AS satisfaction,
               count(satisfaction) AS evaluations
        FROM x GROUP BY GROUPING SETS ((), (community_id))
        ORDER BY total DESC, community_id
    """
    result = session.execute(text(sql), {**params, **fparams})
    frame = _frame(result.fetchall(), list(result.keys()))
    if frame.empty:  # no incident at all: GROUPING SETS (()) still gives the total row
        return frame
    frame = frame[(frame["total"] == 1) | frame["community_id"].notna()].drop(columns="total")
    frame = frame.reset_index(drop=True)
    ints = ["incidents", "valid", "handled", "on_time", "closed", "closed_in_grid", "evaluations"]
    frame[ints] = frame[ints].astype("int64")
    return _finish_kpis(session, frame)


def _finish_kpis(session: Session, frame: pd.DataFrame) -> pd.DataFrame:
    """The rates, rounded satisfaction and community names of a KPI frame whose first row is
    the whole office (``community_id`` None) and the others one community each."""
    ids = [None, *(int(c) for c in frame["community_id"].iloc[1:])]
    frame["community_id"] = pd.Series(ids, index=frame.index, dtype=object)

    def ratio(num: str, den: str) -> pd.Series:
        d = frame[den].where(frame[den] > 0)
        return (frame[num] / d).round(4)

    frame["handled_rate"] = ratio("handled", "valid")
    frame["on_time_rate"] = ratio("on_time", "handled")
    frame["in_grid_share"] = ratio("closed_in_grid", "closed")
    frame["satisfaction"] = frame["satisfaction"].astype(float).round(2)
    names = dict(
        session.execute(text("SELECT id, name FROM grids WHERE level = 'community'")).all()
    )
    frame["name"] = [names.get(c) if c is not None else None for c in frame["community_id"]]
    return frame


def period_counts(
    session: Session, flt: IncidentFilter | None = None, *, period: str = "month"
) -> pd.DataFrame:
    """Reported and handled incidents per local week or month (columns period, incidents,
    handled), for the trend chart."""
    if period not in PERIODS:
        raise GisError(f"unknown period {period!r}; use week or month")
    where, params = (flt or IncidentFilter()).where("i")
    done = ", ".join(f"'{s}'" for s in _DONE)
    sql = f"""
        SELECT date_trunc('{period}', i.reported_at AT TIME ZONE '{LOCAL_TZ_NAME}')::date AS p,
               count(*) AS incidents, count(*) FILTER (WHERE i.status IN ({done})) AS handled
        FROM incidents i WHERE {where} GROUP BY 1 ORDER BY 1
    """
    rows = session.execute(text(sql), params).all()
    frame = pd.DataFrame(rows, columns=["period", "incidents", "handled"])
    frame["period"] = [d.isoformat() for d in frame["period"]]
    return frame.astype({"incidents": "int64", "handled": "int64"})


def counts_by(session: Session, column: str, flt: IncidentFilter | None = None) -> pd.DataFrame:
    """Incidents per category, source or status (columns key, incidents), largest first."""
    if column not in ("category", "source", "status"):
        raise GisError(f"cannot count by {column!r}; use category, source or status")
    where, params = (flt or IncidentFilter()).where("i")
    sql = f"""
        SELECT i.{column} AS key, count(*) AS incidents FROM incidents i WHERE {where}
        GROUP BY 1 ORDER BY 2 DESC, 1
    """
    rows = session.execute(text(sql), params).all()
    return pd.DataFrame(rows, columns=["key", "incidents"]).astype({"incidents": "int64"})


def patrol_coverage(
    session: Session, *, start: datetime | None = None, end: datetime | None = None
) -> dict[str, int]:
    """How many 三级 grids (level ``grid``) a patrol track crossed in ``[start, end)``.

    Returns
    -------
    dict
        ``grids`` (all 三级 grids) and ``patrolled`` (crossed by at least one track).
    """
    conds = ["p.geom IS NOT NULL", "p.geom && g.geom", "ST_Intersects(p.geom, g.geom)"]
    params: dict[str, Any] = {}
    if start is not None:
        conds.append("p.started_at >= :start")
        params["start"] = start
    if end is not None:
        conds.append("p.started_at < :end")
        params["end"] = end
    sql = f"""
        SELECT count(*) AS grids,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM patrol_tracks p WHERE {" AND ".join(conds)})) AS patrolled
        FROM grids g WHERE g.level = 'grid'
    """
    row = session.execute(text(sql), params).one()
    return {"grids": int(row.grids), "patrolled": int(row.patrolled)}


def service_coverage(session: Session) -> dict[str, Any]:
    """Households whose building lies inside the largest stored isochrone band of any station.

    Returns
    -------
    dict
        ``minutes`` (the band, None when no isochrone is stored), ``households`` (all) and
        ``covered``.
    """
    band = session.execute(text("SELECT max(minutes) FROM isochrones")).scalar()
    total = session.execute(text("SELECT coalesce(sum(households), 0) FROM buildings")).scalar()
    if band is None:
        return {"minutes": None, "households": int(total or 0), "covered": 0}
    covered = session.execute(
        text(
            """
            SELECT coalesce(sum(b.households), 0) FROM buildings b WHERE EXISTS (
                SELECT 1 FROM isochrones s WHERE s.minutes = :m
                  AND ST_Intersects(s.geom, ST_PointOnSurface(b.geom)))
            """
        ),
        {"m": band},
    ).scalar()
    return {"minutes": int(band), "households": int(total or 0), "covered": int(covered or 0)}


def latest_patrol_day(session: Session, *, before: datetime | None = None) -> date | None:
    """The latest work day with a patrol track (before ``before`` if given), or None."""
    sql = "SELECT max(work_date) FROM patrol_tracks"
    params: dict[str, Any] = {}
    if before is not None:
        sql += " WHERE started_at < :b"
        params["b"] = before
    return session.execute(text(sql), params).scalar()


def patrol_days(
    session: Session, last: date, *, days: int = 7, min_minutes: float = 10.0
) -> pd.DataFrame:
    """Micro grids patrolled (at least ``min_minutes`` inside, gis.patrol's rule) on each of
    the ``days`` days up to ``last``: columns day (ISO date), patrolled, grids."""
    first = last - timedelta(days=days - 1)
    rows = session.execute(
        text(
            """
            WITH d AS (
                SELECT generate_series(CAST(:a AS date), CAST(:b AS date), interval '1 day')::date
                       AS day
            ),
            per AS (
                SELECT p.work_date AS day, e.grid_id
                FROM track_effort e JOIN patrol_tracks p ON p.id = e.track_id
                WHERE e.level = 'micro' AND p.work_date BETWEEN :a AND :b
                GROUP BY p.work_date, e.grid_id HAVING sum(e.seconds) >= :m * 60
            )
            SELECT d.day, count(per.grid_id) AS patrolled,
                   (SELECT count(*) FROM grids WHERE level = 'micro') AS grids
            FROM d LEFT JOIN per ON per.day = d.day GROUP BY d.day ORDER BY d.day
            """
        ),
        {"a": first, "b": last, "m": min_minutes},
    ).all()
    frame = pd.DataFrame(rows, columns=["day", "patrolled", "grids"])
    frame["day"] = [d.isoformat() for d in frame["day"]]
    return frame.astype({"patrolled": "int64", "grids": "int64"})


def patrol_day_stamp(session: Session, day: date) -> tuple[Any, ...]:
    """What the patrol layers of ``day`` depend on: the day's tracks (count, largest id,
    total fixes kept) and the roads (count, largest id); equal stamps, equal layers."""
    row = session.execute(
        text(
            """
            SELECT (SELECT count(*) FROM patrol_tracks WHERE work_date = :d),
                   (SELECT max(id) FROM patrol_tracks WHERE work_date = :d),
                   (SELECT sum(n_kept) FROM patrol_tracks WHERE work_date = :d),
                   (SELECT count(*) FROM roads), (SELECT max(id) FROM roads)
            """
        ),
        {"d": day},
    ).one()
    return tuple(row)


def buildings_stamp(session: Session) -> tuple[Any, ...]:
    """Buildings count, largest id and total households and residents: coverage shares
    change only when one of these does (or the network and stations, see the isochrones'
    fingerprint)."""
    row = session.execute(
        text(
            "SELECT count(*), max(id), coalesce(sum(households), 0), "
            "coalesce(sum(residents), 0) FROM buildings"
        )
    ).one()
    return tuple(row)


def dashboard_summary(
    session: Session,
    taxonomy: Taxonomy,
    flt: IncidentFilter | None = None,
    *,
    period: str = "month",
    rollup: bool = False,
) -> dict[str, pd.DataFrame]:
    """Everything the overview and the briefing count, from **one** scan of the incidents
    (or, with ``rollup`` and a filter it serves, of ``incident_rollup_kpis``).

    The same numbers as :func:`kpi_summary`, :func:`period_counts` and :func:`counts_by`
    (category and source), computed with ``GROUPING SETS``: a million incidents are read
    once instead of four times. (The heat cells stay a query of their own: as one more
    grouping set they made this scan about 2.5 times slower on a million incidents.)

    Returns
    -------
    dict
        ``kpis``, ``trend``, ``by_category`` and ``by_source``.
    """
    if period not in PERIODS:
        raise GisError(f"unknown period {period!r}; use week or month")
    flt = flt or IncidentFilter()
    if rollup and kpi_rollup_serves(flt):
        rows = _summary_rows_rollup(session, flt, period)
    else:
        rows = _summary_rows_direct(session, taxonomy, flt, period)
    return _summary_frames(session, rows)


def _summary_rows_rollup(session: Session, flt: IncidentFilter, period: str) -> pd.DataFrame:
    """The grouped rows of :func:`dashboard_summary` from ``incident_rollup_kpis``."""
    where, params = _rollup_where(flt, "day", "day")
    done = ", ".join(f"'{s}'" for s in _DONE)
    void = ", ".join(f"'{s}'" for s in _VOID)
    measures = f"""
        coalesce(sum(incidents), 0) AS incidents,
        coalesce(sum(incidents) FILTER (WHERE status NOT IN ({void})), 0) AS valid,
        coalesce(sum(incidents) FILTER (WHERE status IN ({done})), 0) AS handled,
        coalesce(sum(on_time), 0) AS on_time,
        coalesce(sum(incidents) FILTER (WHERE status = 'closed'), 0) AS closed,
        coalesce(sum(closed_in_grid), 0) AS closed_in_grid,
        sum(satisfaction_sum)::float8 / nullif(sum(evaluations), 0) AS satisfaction,
        coalesce(sum(evaluations), 0) AS evaluations"""
    sql = f"""
        WITH r AS (
            SELECT i.*, date_trunc('{period}', i.day::timestamp)::date AS p
            FROM incident_rollup_kpis i WHERE {where}
        )
        SELECT GROUPING(community_id, p) * 4 + 3 AS g, community_id, p,
               CAST(NULL AS text) AS category, CAST(NULL AS text) AS source, {measures}
        FROM r WHERE kind = 'community' GROUP BY GROUPING SETS ((), (community_id), (p))
        UNION ALL
        SELECT 13, NULL, NULL, category, NULL, {measures}
        FROM r WHERE kind = 'category' GROUP BY category
        UNION ALL
        SELECT 14, NULL, NULL, NULL, source, {measures}
        FROM r WHERE kind = 'source' GROUP BY source
    """
    result = session.execute(text(sql), params)
    return _frame(result.fetchall(), list(result.keys()))


def _summary_rows_direct(
    session: Session, taxonomy: Taxonomy, flt: IncidentFilter, period: str
) -> pd.DataFrame:
    """The grouped rows of :func:`dashboard_summary` from one scan of the incidents."""
    values, params = _deadline_values(taxonomy)
    where, fparams = flt.where("i")
    done = ", ".join(f"'{s}'" for s in _DONE)
    void = ", ".join(f"'{s}'" for s in _VOID)
    tz = LOCAL_TZ_NAME
    sets = "(), (community_id), (p), (category), (source)"
    sql = f"""
        WITH d(code, name, resolve_s, same_day) AS ({values}),
        x AS (
            SELECT i.community_id, i.status, i.handling_level, i.satisfaction, i.category,
                   i.source,
                   date_trunc('{period}', i.reported_at AT TIME ZONE '{tz}')::date AS p,
                   {_ON_TIME} AS on_time
            FROM incidents i {_DEADLINE_JOIN}
            WHERE {where}
        )
        SELECT GROUPING(community_id, p, category, source) AS g,
               community_id, p, category, source,
               count(*) AS incidents,
               count(*) FILTER (WHERE status NOT IN ({void})) AS valid,
               count(*) FILTER (WHERE status IN ({done})) AS handled,
               count(*) FILTER (WHERE on_time) AS on_time,
               count(*) FILTER (WHERE status = 'closed') AS closed,
               count(*) FILTER (WHERE status = 'closed' AND handling_level = 'grid')
                   AS closed_in_grid,
               avg(satisfaction)::float8 AS satisfaction,
               count(satisfaction) AS evaluations
        FROM x GROUP BY GROUPING SETS ({sets})
    """
    result = session.execute(text(sql), {**params, **fparams})
    return _frame(result.fetchall(), list(result.keys()))


def _summary_frames(session: Session, rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """KPIs, trend and breakdowns from the grouped rows (``g`` = GROUPING bits)."""
    # GROUPING(...) bits, first column highest: 1 where the column is not grouped on
    full = 0b1111
    only = {name: full ^ (1 << (3 - k)) for k, name in enumerate(
        ("community_id", "p", "category", "source"))}  # fmt: skip
    ints = ["incidents", "valid", "handled", "on_time", "closed", "closed_in_grid", "evaluations"]
    if len(rows):
        rows[ints] = rows[ints].astype("int64")
    kpi_cols = ["community_id", *ints, "satisfaction"]
    total = rows[rows["g"] == full][kpi_cols]
    if total.empty:  # no incident at all: one total row of zeros
        total = pd.DataFrame([{**dict.fromkeys(ints, 0), "community_id": None,
                               "satisfaction": None}])[kpi_cols]  # fmt: skip
    comm = rows[(rows["g"] == only["community_id"]) & rows["community_id"].notna()]
    kpis = pd.concat([total, comm.sort_values("community_id")[kpi_cols]], ignore_index=True)
    kpis[ints] = kpis[ints].astype("int64")
    kpis = _finish_kpis(session, kpis)

    tr = rows[rows["g"] == only["p"]].sort_values("p")
    trend = pd.DataFrame(
        {
            "period": [v.isoformat() for v in tr["p"]],
            "incidents": tr["incidents"].to_numpy(),
            "handled": tr["handled"].to_numpy(),
        }
    ).astype({"incidents": "int64", "handled": "int64"})

    def by(column: str) -> pd.DataFrame:
        part = rows[rows["g"] == only[column]][[column, "incidents"]]
        part = part.rename(columns={column: "key"})
        part = part.sort_values(["incidents", "key"], ascending=[False, True])
        return part.reset_index(drop=True).astype({"incidents": "int64"})

    return {"kpis": kpis, "trend": trend, "by_category": by("category"), "by_source": by("source")}


# ---------------------------------------------------------------------------------------
# The rollup (驾驶舱汇总表): small pre-aggregated tables the pages read instead of scanning
# every incident. Exact: the same sums the direct queries compute, kept up to date by
# refresh_rollup (the SLA tick; and ensure_rollup before a page when incidents changed).
# ---------------------------------------------------------------------------------------

ROLLUP_CELL_DEG = 0.0005  # the heat rollup's cell, about 50 m
_ROLLUP_LOCK = 8_120_012  # pg_advisory_xact_lock key of a refresh
_LATE_WRITES = timedelta(minutes=5)  # re-read incidents updated this long before the mark
_LOCAL = ZoneInfo(LOCAL_TZ_NAME)


@dataclass(frozen=True)
class RollupRefresh:
    """What a refresh did: ``full`` rebuild or the local ``days`` touched, and seconds."""

    full: bool
    days: int
    seconds: float
    refreshed_at: datetime


def _local(ts: datetime) -> datetime:
    return ts.astimezone(_LOCAL)


def _on_start(ts: datetime | None, grain: str) -> bool:
    """True when ``ts`` is None or a local midnight starting a day, week or month."""
    if ts is None:
        return True
    loc = _local(ts)
    if (loc.hour, loc.minute, loc.second, loc.microsecond) != (0, 0, 0, 0):
        return False
    if grain == "week":
        return loc.weekday() == 0
    if grain == "month":
        return loc.day == 1
    return True


def kpi_rollup_serves(flt: IncidentFilter) -> bool:
    """``incident_rollup_kpis`` answers this filter: no category or source, a window on
    local midnights."""
    return not (flt.categories or flt.sources) and all(
        _on_start(t, "day") for t in (flt.start, flt.end)
    )


def grid_rollup_serves(flt: IncidentFilter) -> bool:
    """``incident_rollup_grids`` answers this filter: no category or source, a window on
    local month starts."""
    return not (flt.categories or flt.sources) and all(
        _on_start(t, "month") for t in (flt.start, flt.end)
    )


def heat_rollup_serves(flt: IncidentFilter, period: str) -> bool:
    """``incident_rollup_heat`` answers this filter: no category, source or status, a
    window on the period's starts."""
    return not (flt.categories or flt.sources or flt.statuses) and all(
        _on_start(t, period) for t in (flt.start, flt.end)
    )


def _coarsening(cell_deg: float) -> int | None:
    """``cell_deg`` / the rollup's cell when that is a power of two, else None."""
    k = cell_deg / ROLLUP_CELL_DEG
    r = round(k)
    return r if r >= 1 and abs(k - r) < 1e-9 and r & (r - 1) == 0 else None


def _rollup_where(flt: IncidentFilter, column: str, grain: str) -> tuple[str, dict[str, Any]]:
    """The filter on a rollup table (status; window as local dates on ``column``)."""
    parts, params = ["TRUE"], {}
    if flt.statuses:
        parts.append("i.status = ANY(:f_st)")
        params["f_st"] = list(flt.statuses)
    if flt.start is not None:
        parts.append(f"i.{column} >= :r_start")
        params["r_start"] = _local(flt.start).date()
    if flt.end is not None:
        parts.append(f"i.{column} < :r_end")
        params["r_end"] = _local(flt.end).date()
    return " AND ".join(parts), params


def heat_total(session: Session, *, cell_deg: float = ROLLUP_CELL_DEG) -> pd.DataFrame:
    """All incidents' heat cells (columns lon, lat, weight: cell centres) from the rollup;
    the same as :func:`gis.db.queries.incidents.heat_cells` at a power-of-two cell."""
    k = _coarsening(cell_deg)
    if k is None:
        raise GisError(f"heat cell {cell_deg} is not {ROLLUP_CELL_DEG} times a power of two")
    rows = session.execute(
        text(
            """
            SELECT floor(gx / CAST(:k AS float8)) AS cx, floor(gy / CAST(:k AS float8)) AS cy,
                   sum(weight) AS weight
            FROM incident_rollup_heat WHERE period = 'month' GROUP BY 1, 2
            """
        ),
        {"k": k},
    ).all()
    frame = _frame(rows, ["cx", "cy", "weight"])
    return pd.DataFrame(
        {
            "lon": (frame["cx"].astype(float) + 0.5) * cell_deg,
            "lat": (frame["cy"].astype(float) + 0.5) * cell_deg,
            "weight": frame["weight"].astype(int),
        }
    )


def taxonomy_fingerprint(taxonomy: Taxonomy) -> str:
    """What the on-time counts depend on: each category's resolve deadline."""
    _, params = _deadline_values(taxonomy)
    return hashlib.sha256(json.dumps(sorted(params.items()), default=str).encode()).hexdigest()


def rollup_state(session: Session) -> dict[str, Any] | None:
    """The rollup's refresh time, watermark (largest ``updated_at`` read), incident count
    and taxonomy fingerprint; None before the first refresh."""
    row = session.execute(
        text(
            "SELECT refreshed_at, watermark, incidents, taxonomy "
            "FROM incident_rollup_state WHERE id = 1"
        )
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


def _rollup_inserts(taxonomy: Taxonomy) -> tuple[list[str], dict[str, Any]]:
    """INSERT statements filling the four rollup parts from the incidents within
    ``{scope_day}``/``{scope_month}``/``{scope_week}`` (placeholders of SQL conditions)."""
    values, params = _deadline_values(taxonomy)
    tz = LOCAL_TZ_NAME
    local = f"(i.reported_at AT TIME ZONE '{tz}')"
    kpis = f"""
        INSERT INTO incident_rollup_kpis (day, kind, community_id, category, source, status,
            incidents, on_time, closed_in_grid, satisfaction_sum, evaluations)
        WITH d(code, name, resolve_s, same_day) AS ({values}),
        x AS (
            SELECT {local}::date AS day, i.community_id, i.category, i.source, i.status,
                   coalesce({_ON_TIME}, FALSE)::int AS on_time,
                   (i.status = 'closed' AND i.handling_level IS NOT DISTINCT FROM 'grid')::int
                       AS in_grid,
                   coalesce(i.satisfaction, 0)::int AS sat,
                   (i.satisfaction IS NOT NULL)::int AS ev
            FROM incidents i {_DEADLINE_JOIN}
            WHERE {{scope_day}}
        )
        SELECT day, CASE GROUPING(community_id, category, source)
                        WHEN 3 THEN 'community' WHEN 5 THEN 'category' ELSE 'source' END,
               community_id, category, source, status,
               count(*), sum(on_time), sum(in_grid), sum(sat), sum(ev)
        FROM x
        GROUP BY GROUPING SETS ((day, status, community_id), (day, status, category),
                                (day, status, source))
    """
    grids = f"""
        INSERT INTO incident_rollup_grids (month, status, micro_grid_id, grid_id, community_id,
            street_id, dedicated_grid_id, incidents)
        SELECT date_trunc('month', {local})::date, i.status, i.micro_grid_id, i.grid_id,
               i.community_id, i.street_id, i.dedicated_grid_id, count(*)
        FROM incidents i WHERE {{scope_month}}
        GROUP BY 1, 2, 3, 4, 5, 6, 7
    """
    heat = [
        f"""
        INSERT INTO incident_rollup_heat (period, start, gx, gy, weight)
        SELECT '{p}', date_trunc('{p}', {local})::date,
               floor(ST_X(i.geom) / :cell)::int, floor(ST_Y(i.geom) / :cell)::int, count(*)
        FROM incidents i WHERE i.geom IS NOT NULL AND {{scope_{p}}}
        GROUP BY 1, 2, 3, 4
        """
        for p in PERIODS
    ]
    return [kpis, grids, *heat], {**params, "cell": ROLLUP_CELL_DEG}


def refresh_rollup(session: Session, taxonomy: Taxonomy, *, full: bool = False) -> RollupRefresh:
    """Bring the rollup up to date and return what was done.

    Incremental: the local days of the incidents updated since the last refresh (its
    watermark, less five minutes for late commits) are recomputed — their days in
    ``incident_rollup_kpis``, their months and weeks in the grid and heat parts. A full
    rebuild when there is no state yet, when the taxonomy's deadlines changed, or on
    request. Not seen by an incremental refresh: deleted incidents, and writes that set
    ``updated_at`` to a time before the watermark (e.g. ``wangge sla tick --now`` in the
    past: rebuild in full, ``wangge sla tick --rebuild-rollup``). Concurrent refreshes
    wait on an advisory lock. The caller commits.
    """
    t0 = time.perf_counter()
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ROLLUP_LOCK})
    fp = taxonomy_fingerprint(taxonomy)
    state = rollup_state(session)
    mark = session.execute(text("SELECT max(updated_at) FROM incidents")).scalar()
    full = full or state is None or state["taxonomy"] != fp
    inserts, params = _rollup_inserts(taxonomy)
    local = f"(i.reported_at AT TIME ZONE '{LOCAL_TZ_NAME}')"
    days: list[date] = []
    if full:
        for table in ("kpis", "grids", "heat"):
            session.execute(text(f"DELETE FROM incident_rollup_{table}"))
        scopes = dict.fromkeys(("scope_day", "scope_month", "scope_week"), "TRUE")
    else:
        since = state["watermark"]
        if since is not None:
            since = since - _LATE_WRITES
        days = sorted(
            session.execute(
                text(
                    f"SELECT DISTINCT {local}::date FROM incidents i "
                    "WHERE CAST(:since AS timestamptz) IS NULL OR i.updated_at > :since"
                ),
                {"since": since},
            ).scalars()
        )
        months = sorted({d.replace(day=1) for d in days})
        weeks = sorted({d - timedelta(days=d.weekday()) for d in days})
        params |= {"r_days": days, "r_months": months, "r_weeks": weeks}
        if days:  # an index range on reported_at first, then the exact local dates
            # from the first touched week or month to the end of the last one
            last_month = months[-1]
            month_end = last_month.replace(
                year=last_month.year + last_month.month // 12, month=last_month.month % 12 + 1
            )
            end = max(month_end, weeks[-1] + timedelta(days=7))
            lo = datetime.combine(min(months[0], weeks[0]), datetime.min.time(), _LOCAL)
            hi = datetime.combine(end, datetime.min.time(), _LOCAL)
            params |= {"r_lo": lo, "r_hi": hi}
            rng = "i.reported_at >= :r_lo AND i.reported_at < :r_hi AND "
        else:
            rng = "FALSE AND "
        scopes = {
            "scope_day": f"{rng}{local}::date = ANY(:r_days)",
            "scope_month": f"{rng}date_trunc('month', {local})::date = ANY(:r_months)",
            "scope_week": f"{rng}date_trunc('week', {local})::date = ANY(:r_weeks)",
        }
        session.execute(text("DELETE FROM incident_rollup_kpis WHERE day = ANY(:d)"), {"d": days})
        session.execute(
            text("DELETE FROM incident_rollup_grids WHERE month = ANY(:m)"), {"m": months}
        )
        session.execute(
            text(
                "DELETE FROM incident_rollup_heat WHERE (period = 'month' AND start = ANY(:m)) "
                "OR (period = 'week' AND start = ANY(:w))"
            ),
            {"m": months, "w": weeks},
        )
    if full or days:
        for sql in inserts:
            body = sql
            for name, cond in scopes.items():
                body = body.replace("{" + name + "}", cond)
            used = {k: v for k, v in params.items() if f":{k}" in body}
            session.execute(text(body), used)
    now = session.execute(text("SELECT now()")).scalar()
    total = session.execute(
        text("SELECT coalesce(sum(incidents), 0) FROM incident_rollup_kpis WHERE kind = 'source'")
    ).scalar()
    session.execute(
        text(
            """
            INSERT INTO incident_rollup_state (id, refreshed_at, watermark, incidents, taxonomy)
            VALUES (1, :now, :mark, :n, :fp)
            ON CONFLICT (id) DO UPDATE SET refreshed_at = excluded.refreshed_at,
                watermark = excluded.watermark, incidents = excluded.incidents,
                taxonomy = excluded.taxonomy
            """
        ),
        {"now": now, "mark": mark, "n": int(total), "fp": fp},
    )
    seconds = time.perf_counter() - t0
    log.info("rollup refreshed (%s) in %.2f s", "full" if full else f"{len(days)} days", seconds)
    return RollupRefresh(full=full, days=len(days), seconds=seconds, refreshed_at=now)


def rollup_is_stale(session: Session, taxonomy: Taxonomy) -> bool:
    """True when the rollup is missing, was built for other deadlines, or an incident was
    updated after its watermark (one index probe on ``updated_at``)."""
    state = rollup_state(session)
    if state is None or state["taxonomy"] != taxonomy_fingerprint(taxonomy):
        return True
    mark = session.execute(text("SELECT max(updated_at) FROM incidents")).scalar()
    return mark is not None and (state["watermark"] is None or mark > state["watermark"])


def ensure_rollup(session: Session, taxonomy: Taxonomy) -> datetime:
    """Refresh the rollup when stale; return the time it is as of. The caller commits (a
    request's session does when the endpoint returns)."""
    if rollup_is_stale(session, taxonomy):
        return refresh_rollup(session, taxonomy).refreshed_at
    state = rollup_state(session)
    assert state is not None
    return state["refreshed_at"]


def as_of_label(when: datetime) -> str:
    """``数据截至 HH:MM`` in local time (the date too when not today)."""
    loc = _local(when)
    today = datetime.now(UTC).astimezone(_LOCAL).date()
    fmt = "%H:%M" if loc.date() == today else "%Y-%m-%d %H:%M"
    return f"数据截至 {loc.strftime(fmt)}"
