"""The dashboards' rollup (驾驶舱汇总表): built from the incidents, refreshed incrementally,
and every number the pages take from it equals the direct computation over the incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.bench.pages import _grids, synthetic_incidents
from gis.db.config import get_taxonomy
from gis.db.queries import dashboards as q
from gis.db.queries.incidents import heat_cells

pytestmark = pytest.mark.db

SH = ZoneInfo("Asia/Shanghai")
COLUMNS = (
    "category", "category_code", "source", "reported_at", "status", "location_status",
    "location_source", "micro_grid_id", "grid_id", "community_id", "street_id",
    "dedicated_grid_id", "severity", "initial_level", "handling_level", "accepted_at",
    "resolved_at", "closed_at", "satisfaction",
)  # fmt: skip


def _insert(session: Session, n: int, seed: int) -> None:
    """``n`` synthetic incidents (a year of reports, every status) into the real table; a
    tenth without a category code (deadline by name) and a few without any location."""
    frame = synthetic_incidents(_grids(session), get_taxonomy(), n, seed=seed)
    frame.loc[frame.index % 10 == 3, "category_code"] = None
    rows = []
    for rec in frame.to_dict("records"):
        row = {c: (None if rec[c] is pd.NA or (not isinstance(rec[c], str) and pd.isna(rec[c]))
                   else rec[c]) for c in COLUMNS}  # fmt: skip
        for c in ("reported_at", "accepted_at", "resolved_at", "closed_at"):
            row[c] = row[c].floor("us").to_pydatetime() if row[c] is not None else None
        row["geom"] = rec["geom"]
        rows.append(row)
    for r in rows[:5]:  # waiting for a location: no point, no grids
        r.update(location_status="pending", location_source=None, geom=None,
                 micro_grid_id=None, grid_id=None, community_id=None, street_id=None,
                 dedicated_grid_id=None)  # fmt: skip
    cols = ", ".join((*COLUMNS, "geom"))
    vals = ", ".join((*(f":{c}" for c in COLUMNS), "ST_GeomFromEWKT(:geom)"))
    session.execute(text(f"INSERT INTO incidents ({cols}) VALUES ({vals})"), rows)
    session.flush()


@pytest.fixture
def incidents(session: Session) -> Session:
    _insert(session, 3000, seed=5)
    return session


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        a.reset_index(drop=True), b.reset_index(drop=True), check_dtype=False, atol=1e-9
    )


def _month_start(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=SH).astimezone(UTC)


FILTERS = [
    q.IncidentFilter(),
    q.IncidentFilter(statuses=("closed", "evaluated", "in_progress")),
    q.IncidentFilter(start=_month_start(2026, 2), end=_month_start(2026, 7)),
    q.IncidentFilter(
        statuses=("reported",),
        start=datetime(2026, 3, 9, tzinfo=SH).astimezone(UTC),  # a Monday
        end=datetime(2026, 5, 4, tzinfo=SH).astimezone(UTC),  # a Monday
    ),
]


def test_rollup_numbers_equal_the_direct_sql(incidents: Session) -> None:
    session, taxonomy = incidents, get_taxonomy()
    done = q.refresh_rollup(session, taxonomy, full=True)
    assert done.full
    total = session.execute(text("SELECT count(*) FROM incidents")).scalar()
    assert q.rollup_state(session)["incidents"] == total >= 3000
    for flt in FILTERS:
        assert q.kpi_rollup_serves(flt)
        for period in ("week", "month"):
            a = q.dashboard_summary(session, taxonomy, flt, period=period, rollup=True)
            b = q.dashboard_summary(session, taxonomy, flt, period=period)
            for key in ("kpis", "trend", "by_category", "by_source"):
                _same(a[key], b[key])
            if not flt.statuses:  # nothing trivially zero
                top = a["kpis"].iloc[0]
                assert top["on_time"] > 0 and top["closed_in_grid"] > 0 and top["evaluations"] > 0
    for flt in FILTERS[:3]:
        assert q.grid_rollup_serves(flt)
        _same(q.grid_counts(session, flt, rollup=True), q.grid_counts(session, flt))
    for flt in (FILTERS[0], FILTERS[2]):
        for period in ("week", "month"):
            for cell in (0.0005, 0.001, 0.004):
                a = q.period_heat(session, flt, period=period, cell_deg=cell, rollup=True)
                b = q.period_heat(session, flt, period=period, cell_deg=cell)
                _same(a, b)
                assert a["weight"].sum() == b["weight"].sum() > 0
    a = q.heat_total(session).sort_values(["lon", "lat"])
    b = heat_cells(session).sort_values(["lon", "lat"])
    assert (
        np.allclose(a[["lon", "lat"]], b[["lon", "lat"]])
        and (a["weight"].to_numpy() == b["weight"].to_numpy()).all()
    )


def test_filters_the_rollup_cannot_answer_are_counted_directly(incidents: Session) -> None:
    session, taxonomy = incidents, get_taxonomy()
    q.refresh_rollup(session, taxonomy, full=True)
    odd = q.IncidentFilter(start=datetime(2026, 3, 9, 8, 30, tzinfo=SH).astimezone(UTC))
    by_cat = q.IncidentFilter(categories=(next(iter(taxonomy)).name,))
    assert not q.kpi_rollup_serves(odd) and not q.kpi_rollup_serves(by_cat)
    assert not q.grid_rollup_serves(FILTERS[3])  # not on month starts
    assert not q.heat_rollup_serves(FILTERS[1], "month")  # the heat has no status
    # the rollup is emptied: what the pages get can only come from the incidents
    session.execute(text("DELETE FROM incident_rollup_kpis"))
    session.execute(text("DELETE FROM incident_rollup_grids"))
    for flt in (odd, by_cat):
        a = q.dashboard_summary(session, taxonomy, flt, rollup=True)
        assert a["kpis"]["incidents"].iloc[0] > 0
        _same(a["kpis"], q.dashboard_summary(session, taxonomy, flt)["kpis"])
    assert q.grid_counts(session, FILTERS[3], rollup=True)["incidents"].sum() > 0
    assert q.grid_counts(session, FILTERS[0], rollup=True)["incidents"].sum() == 0


def _tables(session: Session) -> dict[str, pd.DataFrame]:
    out = {}
    for t in ("kpis", "grids", "heat"):
        res = session.execute(text(f"SELECT * FROM incident_rollup_{t}"))
        frame = pd.DataFrame(res.fetchall(), columns=list(res.keys()))
        out[t] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def test_incremental_refresh_equals_a_full_rebuild(incidents: Session) -> None:
    session, taxonomy = incidents, get_taxonomy()
    q.refresh_rollup(session, taxonomy, full=True)
    assert not q.rollup_is_stale(session, taxonomy)
    later = datetime.now(UTC) + timedelta(hours=1)
    # 200 open incidents of the last two months get closed, in grid, with a score
    changed = session.execute(
        text(
            """
            UPDATE incidents SET status = 'closed', handling_level = 'grid', satisfaction = 4,
                   resolved_at = reported_at + interval '2 hours',
                   closed_at = reported_at + interval '3 hours', updated_at = :t
            WHERE id IN (SELECT id FROM incidents WHERE status IN ('reported', 'in_progress')
                         AND reported_at >= '2026-09-01' ORDER BY id LIMIT 200)
            """
        ),
        {"t": later},
    ).rowcount
    assert changed > 50
    _insert(session, 100, seed=9)  # and new incidents come in
    session.execute(text("UPDATE incidents SET updated_at = :t WHERE updated_at < :t AND "
                         "id > (SELECT max(id) - 100 FROM incidents)"), {"t": later})  # fmt: skip
    assert q.rollup_is_stale(session, taxonomy)
    done = q.refresh_rollup(session, taxonomy)
    assert not done.full and 0 < done.days < 366
    assert not q.rollup_is_stale(session, taxonomy)
    incremental = _tables(session)
    q.refresh_rollup(session, taxonomy, full=True)
    full = _tables(session)
    for t in full:
        _same(incremental[t], full[t])
    a = q.dashboard_summary(session, taxonomy, rollup=True)["kpis"]
    _same(a, q.dashboard_summary(session, taxonomy)["kpis"])


@pytest.mark.parametrize("day", ["2026-03-04", "2025-12-31", "2026-06-28"])
def test_incremental_refresh_of_one_day_keeps_its_whole_month_and_week(
    incidents: Session, day: str
) -> None:
    """One touched day (mid-week, end of a year, a Sunday ending a week in the next month)
    recomputes its day, its whole month and its whole week, nothing else."""
    session, taxonomy = incidents, get_taxonomy()
    # all written a day before the refresh (its watermark less five minutes re-reads the
    # last ones written, here the changed day's)
    session.execute(text("UPDATE incidents SET updated_at = now() - interval '1 day'"))
    local_day = "(reported_at AT TIME ZONE 'Asia/Shanghai')::date = CAST(:d AS date)"
    session.execute(
        text(
            f"UPDATE incidents SET updated_at = now() - interval '1 hour' WHERE id = "
            f"(SELECT min(id) FROM incidents WHERE {local_day})"
        ),
        {"d": day},
    )
    q.refresh_rollup(session, taxonomy, full=True)
    changed = session.execute(
        text(
            """
            UPDATE incidents SET status = 'closed', handling_level = 'grid', satisfaction = 5,
                   resolved_at = reported_at + interval '1 hour',
                   closed_at = reported_at + interval '2 hours', updated_at = :t
            WHERE (reported_at AT TIME ZONE 'Asia/Shanghai')::date = CAST(:d AS date)
            """
        ),
        {"t": datetime.now(UTC) + timedelta(hours=1), "d": day},
    ).rowcount
    assert changed > 0
    done = q.refresh_rollup(session, taxonomy)
    assert not done.full and done.days == 1
    incremental = _tables(session)
    q.refresh_rollup(session, taxonomy, full=True)
    full = _tables(session)
    for t in full:
        _same(incremental[t], full[t])


def test_ensure_refreshes_a_stale_rollup_and_pages_show_the_time(
    incidents: Session, client: object
) -> None:
    session, taxonomy = incidents, get_taxonomy()
    session.execute(text("DELETE FROM incident_rollup_state"))
    assert q.rollup_is_stale(session, taxonomy)
    as_of = q.ensure_rollup(session, taxonomy)
    assert not q.rollup_is_stale(session, taxonomy)
    assert abs((as_of - datetime.now(UTC)).total_seconds()) < 3600
    label = q.as_of_label(as_of)
    assert label.startswith("数据截至 ")
    for path in ("/maps/overview", "/maps/incidents", "/maps/briefing"):
        page = client.get(path)  # type: ignore[attr-defined]
        assert page.status_code == 200 and "数据截至" in page.text, path


def test_recent_per_grid_keeps_every_popup(incidents: Session) -> None:
    from maps.incidents import RECENT_PER_GRID, _recent_by_grid

    full = q.recent_incidents(incidents)
    few = q.recent_incidents(incidents, per_grid=RECENT_PER_GRID)
    assert len(few) < len(full)
    for column in q.LEVEL_COLUMNS.values():
        a, b = _recent_by_grid(few, column), _recent_by_grid(full, column)
        assert a == b and sum(len(v) for v in a.values()) > 0
