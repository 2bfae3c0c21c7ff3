"""Incident KPIs (考核评价): counts, 处置率, on-time rate, response and resolution times,
satisfaction and the share of matters closed inside their own grid (小事不出格).

Pure pandas on one row per incident (see ``gis.db.queries.kpis.kpi_frame`` for the columns);
any grouping — street, community, 三级 grid, micro grid, worker, category, source, period —
is a ``groupby``, so a year of a district's incidents takes well under a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gis.errors import GisError
from gis.incidents import LOCAL_TZ
from gis.taxonomy import Taxonomy

# grouping name -> the frame columns that identify a group
GROUPINGS: dict[str, tuple[str, ...]] = {
    "street": ("street_code", "street_name"),
    "community": ("community_code", "community_name"),
    "grid": ("grid_code", "grid_name"),
    "micro": ("micro_code", "micro_name"),
    "worker": ("worker_id", "worker_name"),
    "category": ("category_code", "category"),
    "source": ("source",),
    "day": ("day",),
    "week": ("week",),
    "month": ("month",),
}
_PERIODS = {"day": "%Y-%m-%d", "week": "%G-W%V", "month": "%Y-%m"}
_DONE = ("resolved", "evaluated", "closed")
_VOID = ("rejected", "duplicate")


def resolve_deadlines(
    reported_at: pd.Series, category_codes: pd.Series, taxonomy: Taxonomy
) -> pd.Series:
    """When each incident had to be resolved: :meth:`gis.incidents.Deadlines.resolve_by`,
    vectorised (same-day categories by local midnight, at least half the resolve window)."""
    reported = pd.to_datetime(reported_at, utc=True)
    by_code = {c.code: c.deadlines for c in taxonomy}
    same_day = category_codes.map(lambda c: by_code[c].resolve_same_day if c in by_code else True)
    window = category_codes.map(
        lambda c: by_code[c].resolve if c in by_code else pd.Timedelta(hours=24)
    ).astype("timedelta64[ns]")
    local = reported.dt.tz_convert(LOCAL_TZ)
    midnight = (local.dt.normalize() + pd.Timedelta(days=1)).dt.tz_convert("UTC")
    half = reported + window / 2
    same = midnight.where(midnight >= half, half)
    return same.where(same_day.astype(bool), reported + window)


def add_periods(frame: pd.DataFrame) -> pd.DataFrame:
    """Day, ISO week and month of the report, in local time (Asia/Shanghai)."""
    local = pd.to_datetime(frame["reported_at"], utc=True).dt.tz_convert(LOCAL_TZ)
    return frame.assign(**{name: local.dt.strftime(fmt) for name, fmt in _PERIODS.items()})


def incident_kpis(frame: pd.DataFrame, by: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """One row per group with the KPIs; ``by`` names groupings from :data:`GROUPINGS`.

    Definitions: *valid* excludes rejected and duplicate reports; *handled* are those
    resolved, evaluated or closed; 处置率 = handled / valid; on-time rate = handled by the
    resolve deadline / handled; response = accepted − reported (median minutes); resolution =
    resolved − reported (median hours); satisfaction = mean of residents' scores (1–5);
    in-grid share = closed while handled at grid level / closed.
    """
    unknown = [b for b in by if b not in GROUPINGS]
    if unknown:
        raise GisError(f"unknown grouping {unknown}; use any of {', '.join(GROUPINGS)}")
    if any(b in _PERIODS for b in by):
        frame = add_periods(frame)
    keys = [col for b in by for col in GROUPINGS[b]]
    f = frame.copy()
    status = f["status"]
    f["valid"] = ~status.isin(_VOID)
    f["handled"] = status.isin(_DONE)
    f["on_time"] = f["handled"] & (
        pd.to_datetime(f["resolved_at"], utc=True) <= pd.to_datetime(f["resolve_by"], utc=True)
    )
    f["closed"] = status.eq("closed")
    f["closed_in_grid"] = f["closed"] & f["handling_level"].eq("grid")
    f["escalated"] = f["initial_level"].notna() & f["handling_level"].ne(f["initial_level"])
    f["response_min"] = (
        pd.to_datetime(f["accepted_at"], utc=True) - pd.to_datetime(f["reported_at"], utc=True)
    ).dt.total_seconds() / 60
    f["resolution_h"] = (
        pd.to_datetime(f["resolved_at"], utc=True) - pd.to_datetime(f["reported_at"], utc=True)
    ).dt.total_seconds() / 3600
    f.loc[~f["handled"], "resolution_h"] = np.nan
    f["reopened"] = f["reopen_count"].fillna(0) > 0
    for key in keys:
        f[key] = f[key].astype("object").where(f[key].notna(), "—")
    grouped = f.groupby(keys, sort=True, dropna=False) if keys else f.groupby(lambda _: "all")
    out = grouped.agg(
        incidents=("status", "size"),
        valid=("valid", "sum"),
        handled=("handled", "sum"),
        on_time=("on_time", "sum"),
        closed=("closed", "sum"),
        closed_in_grid=("closed_in_grid", "sum"),
        escalated=("escalated", "sum"),
        reopened=("reopened", "sum"),
        median_response_min=("response_min", "median"),
        median_resolution_h=("resolution_h", "median"),
        satisfaction=("satisfaction", "mean"),
        evaluations=("satisfaction", "count"),
    ).reset_index()
    if not keys:
        out = out.drop(columns="index")
    out["handled_rate"] = _ratio(out["handled"], out["valid"])
    out["on_time_rate"] = _ratio(out["on_time"], out["handled"])
    out["in_grid_share"] = _ratio(out["closed_in_grid"], out["closed"])
    for col in ("median_response_min", "median_resolution_h", "satisfaction"):
        out[col] = out[col].round(2)
    ints = [
        "incidents",
        "valid",
        "handled",
        "on_time",
        "closed",
        "closed_in_grid",
        "escalated",
        "reopened",
        "evaluations",
    ]
    out[ints] = out[ints].astype(int)
    return out.astype(object).where(out.notna(), None)


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    return (num / den.where(den > 0)).round(4)
