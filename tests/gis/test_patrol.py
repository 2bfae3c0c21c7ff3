"""Patrol effort per grid, street and building coverage, key-household visits and weekly
compliance: on constructed tracks, and against the simulated routes of the fixture district
(``patrol_routes.csv`` of data/generate.py records each patrol's true path and the key
households it visited)."""

from __future__ import annotations

import itertools
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import LineString, box
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.crs import metric_crs
from gis.db.queries.tracks import daily_status, grid_coverage
from gis.patrol import (
    VisitRules,
    coverage,
    detect_visits,
    effort_by_level,
    grid_effort,
    uncovered_streets,
    visit_compliance,
)

# ---------------------------------------------------------------------------------- effort


def _line_walk(xs: list[float], speed: float = 1.0, dt: float = 10.0) -> tuple[np.ndarray, ...]:
    """Fixes every ``dt`` s walking along x through the given turning points."""
    pts = [xs[0]]
    for a, b in itertools.pairwise(xs):
        n = round(abs(b - a) / (speed * dt))
        pts.extend(np.linspace(a, b, n + 1)[1:].tolist())
    x = np.asarray(pts)
    t = np.arange(len(x)) * dt
    return t, x, np.zeros(len(x))


def test_effort_distance_time_and_entries_per_grid() -> None:
    # 0 -> 300 m east and back to 50: grid 0 below x = 105, grid 1 from 105 to 255, then
    # outside every grid (-1)
    t, x, y = _line_walk([0.0, 300.0, 50.0])
    grid = np.where(x < 105, 0, np.where(x < 255, 1, -1))  # boundaries between fixes
    n = len(t)
    track, seg = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    out = grid_effort(track, seg, t, x, y, grid).set_index("grid")
    assert sorted(out.index) == [0, 1]
    assert out.loc[0, "distance_m"] == pytest.approx(160.0)  # 105 out, 55 back
    assert out.loc[1, "distance_m"] == pytest.approx(300.0)  # 150 each way
    assert out.loc[0, "seconds"] == pytest.approx(160.0)
    assert out.loc[1, "seconds"] == pytest.approx(300.0)
    assert out.loc[0, "entries"] == 2 and out.loc[1, "entries"] == 2
    assert out["distance_m"].sum() + 90.0 == pytest.approx(550.0)  # the rest outside


def test_boundary_flicker_is_not_an_entry_and_gaps_are_not_walked() -> None:
    t, x, y = _line_walk([0.0, 200.0])
    grid = np.where(x < 105, 0, 1)
    grid[5] = 1  # one fix flicks across the boundary for 10 s
    n = len(t)
    track = np.zeros(n, dtype=np.int64)
    seg = np.where(np.arange(n) < 15, 0, 1)  # a new segment: the step 14 -> 15 not walked
    out = grid_effort(track, seg, t, x, y, grid).set_index("grid")
    assert out.loc[0, "entries"] == 1 and out.loc[1, "entries"] == 1
    assert out["distance_m"].sum() == pytest.approx(190.0)
    # two tracks are kept apart
    both = grid_effort(np.r_[track, track + 1], np.r_[seg, seg], np.r_[t, t], np.r_[x, x],
                       np.r_[y, y], np.r_[grid, grid])  # fmt: skip
    assert sorted(both["track"].unique()) == [0, 1]
    assert both.groupby("track")["distance_m"].sum().tolist() == pytest.approx([190.0, 190.0])


def test_effort_up_the_chain_counts_a_parent_once() -> None:
    t, x, y = _line_walk([0.0, 200.0])
    micro = np.where(x < 105, 0, 1)  # two micro rows of one parent grid
    n = len(t)
    levels = {"micro": np.array([11, 12]), "grid": np.array([7, 7])}
    out = effort_by_level(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), t, x, y,
                          micro, levels)  # fmt: skip
    micro_rows = out[out["level"] == "micro"].set_index("grid")
    parent = out[out["level"] == "grid"].set_index("grid")
    assert micro_rows["distance_m"].tolist() == pytest.approx([105.0, 95.0])
    assert parent.loc[7, "distance_m"] == pytest.approx(200.0)
    assert parent.loc[7, "entries"] == 1


# ---------------------------------------------------------------------------------- visits


def _houses() -> tuple[np.ndarray, pd.DataFrame]:
    """Three 10 m buildings in a row along y = 10..20, at x = 0, 40 and 60; the first and
    the last hold key households 1 and 3."""
    polys = np.array([box(0, 10, 10, 20), box(40, 10, 50, 20), box(60, 10, 70, 20)], dtype=object)
    return polys, pd.DataFrame({"household_id": [1, 3], "building": [0, 2]})


def _dwell(x0: float, minutes: float, start: float = 0.0, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n = int(minutes * 6) + 1
    return (start + np.arange(n) * 10.0, x0 + rng.normal(0, 3, n), 5 + rng.normal(0, 3, n))


def test_a_dwell_of_five_minutes_at_the_door_is_a_visit() -> None:
    polys, hh = _houses()
    t, x, y = _dwell(5.0, 6.0)
    out = detect_visits(np.zeros(len(t), dtype=np.int64), t, x, y, hh, polys)
    assert out["household_id"].tolist() == [1]
    assert out["minutes"].iloc[0] == pytest.approx(6.0)
    assert out["min_distance_m"].iloc[0] < 5.0
    short_t, short_x, short_y = _dwell(5.0, 4.0)
    short = detect_visits(np.zeros(len(short_t), dtype=np.int64), short_t, short_x, short_y,
                          hh, polys)  # fmt: skip
    assert short.empty
    # the rules are configurable: 3 minutes within 25 m
    three = detect_visits(np.zeros(len(short_t), dtype=np.int64), short_t, short_x, short_y,
                          hh, polys, VisitRules(minutes=3.0))  # fmt: skip
    assert three["household_id"].tolist() == [1]


def test_standing_at_the_next_building_or_too_far_is_no_visit() -> None:
    polys, hh = _houses()
    t, x, y = _dwell(45.0, 8.0)  # at the middle building's door: not a key household
    assert detect_visits(np.zeros(len(t), dtype=np.int64), t, x, y, hh, polys).empty
    far_t, far_x, far_y = _dwell(5.0, 8.0)
    far_y = far_y - 40.0  # 35 m or more from every building
    assert detect_visits(np.zeros(len(t), dtype=np.int64), far_t, far_x, far_y, hh, polys).empty


def test_a_dwell_broken_by_a_walk_elsewhere_is_two_short_stays() -> None:
    polys, hh = _houses()
    zero = np.zeros(1, dtype=np.int64)
    a = _dwell(5.0, 3.0)
    away = (200.0 + np.arange(80) * 10.0, np.full(80, 5.0), np.full(80, -80.0))  # 13 min away
    b = _dwell(5.0, 3.0, start=1000.0, seed=1)
    t, x, y = (np.r_[a[i], away[i], b[i]] for i in range(3))
    track = np.repeat(zero, len(t))
    assert detect_visits(track, t, x, y, hh, polys).empty
    # the same two stays with no fix in between (the phone lost the GPS indoors): one visit
    t2, x2, y2 = (np.r_[a[i], b[i]] for i in range(3))
    got = detect_visits(np.repeat(zero, len(t2)), t2, x2, y2, hh, polys)
    assert got["household_id"].tolist() == [1]
    assert got["minutes"].iloc[0] == pytest.approx(1180.0 / 60.0)
    # ... unless the silence is longer than allowed
    quiet = detect_visits(np.repeat(zero, len(t2)), t2, x2, y2, hh, polys,
                          VisitRules(max_silence_s=600.0))  # fmt: skip
    assert quiet.empty
    c = _dwell(65.0, 5.5, start=2000.0, seed=2)
    t3, x3, y3 = (np.r_[a[i], away[i], c[i]] for i in range(3))
    got3 = detect_visits(np.repeat(zero, len(t3)), t3, x3, y3, hh, polys)
    assert got3["household_id"].tolist() == [3]


def test_weekly_visit_compliance() -> None:
    homes = pd.DataFrame({"household_id": [1, 2, 3], "grid_id": [10, 10, 11]})
    visits = pd.DataFrame(
        {
            "household_id": [1, 1, 3],
            "staff_id": [5, 6, 5],
            # Monday 08:00 and Sunday 23:00 China time; the next Monday 07:00 (UTC Sunday)
            "start": pd.to_datetime(
                ["2026-10-26T00:00:00Z", "2026-11-01T15:00:00Z", "2026-11-01T23:00:00Z"]
            ),
        }
    )
    weeks = [pd.Timestamp("2026-10-26"), pd.Timestamp("2026-11-02")]
    out = visit_compliance(homes, visits, weeks).set_index(["week", "household_id"])
    w1, w2 = date(2026, 10, 26), date(2026, 11, 2)
    assert out.loc[(w1, 1), "visits"] == 2 and out.loc[(w1, 1), "visitors"] == [5, 6]
    assert bool(out.loc[(w1, 1), "compliant"]) and not bool(out.loc[(w1, 2), "compliant"])
    assert out.loc[(w1, 3), "visits"] == 0  # Monday 07:00 local belongs to the next week
    assert bool(out.loc[(w2, 3), "compliant"])


# ---------------------------------------------------------------------------------- coverage


def test_coverage_of_streets_and_buildings_on_a_constructed_grid() -> None:
    area = box(0, 0, 200, 200)
    streets = np.array(
        [LineString([(-50, 50), (250, 50)]), LineString([(0, 150), (200, 150)])], dtype=object
    )
    buildings = np.array([box(95, 65, 105, 75), box(95, 110, 105, 120)], dtype=object)
    track = np.array([LineString([(0, 55), (200, 55)])], dtype=object)
    cov = coverage(area, streets, buildings, track)
    assert cov.street_m == pytest.approx(400.0)  # clipped to the grid
    assert cov.covered_m == pytest.approx(200.0, abs=1.0)
    assert cov.street_share == pytest.approx(0.5, abs=0.01)
    assert (cov.buildings, cov.passed) == (2, 1)  # 10 m away is passed, 55 m is not
    assert cov.uncovered.length == pytest.approx(200.0, abs=1.0)
    assert cov.uncovered.hausdorff_distance(streets[1]) < 1.0
    # a track 25 m from a street does not cover it; half of a street is half covered
    off = coverage(area, streets, buildings, np.array([LineString([(0, 75), (200, 75)])]))
    assert off.covered_m == 0.0 and off.passed == 1  # 35 m from the second
    half = coverage(area, streets, buildings, np.array([LineString([(0, 45), (100, 45)])]))
    assert half.covered_m == pytest.approx(100.0 + 20.0, abs=5.0)  # 20 m beyond the end
    empty = coverage(area, streets, buildings, None)
    assert empty.street_share == 0.0 and empty.uncovered.length == pytest.approx(400.0)


def test_uncovered_parts_are_cut_where_the_track_comes_near() -> None:
    street = np.array([LineString([(0, 0), (300, 0)])], dtype=object)
    track = np.array([LineString([(100, 10), (200, 10)])], dtype=object)
    rest, covered = uncovered_streets(street, track)
    parts = shapely.get_parts(rest[0])
    assert len(parts) == 2
    assert sorted(round(p.length) for p in parts) == pytest.approx([80, 80], abs=6)
    assert covered[0] == pytest.approx(300 - sum(p.length for p in parts), abs=6)


# ---------------------------------------------------------------------------------- the fixture


def _routes(fixture_district: Path) -> pd.DataFrame:
    return pd.read_csv(
        fixture_district / "patrol_routes.csv", dtype={"visited_household_ids": str}
    ).fillna({"visited_household_ids": ""})


def test_visits_against_the_simulated_routes(session: Session, fixture_district: Path) -> None:
    """Every key household the simulation made a worker dwell at is found on that day, and
    no dwell is reported at a building the simulation did not send anyone to (a building
    may hold more than one key household: the dwell counts for each, by definition)."""
    routes = _routes(fixture_district)
    truth = {
        (int(r.staff_id), r.date, int(h))
        for r in routes.itertuples()
        for h in r.visited_household_ids.split(";")
        if h
    }
    assert len(truth) >= 5
    found = pd.read_sql(
        text(
            "SELECT v.staff_id, (v.started_at AT TIME ZONE 'Asia/Shanghai')::date::text AS date, "
            "v.household_id, k.building_id, v.minutes FROM household_visits v "
            "JOIN key_households k ON k.id = v.household_id"
        ),
        session.connection(),
    )
    building = {
        int(i): int(b)
        for i, b in session.execute(text("SELECT id, building_id FROM key_households"))
    }
    got = {(int(s), d, int(h)) for s, d, h in found[["staff_id", "date", "household_id"]].values}
    recall = len(truth & got) / len(truth)
    true_b = {(s, d, building[h]) for s, d, h in truth}
    got_b = {(int(s), d, int(b)) for s, d, b in found[["staff_id", "date", "building_id"]].values}
    precision = len(true_b & got_b) / len(got_b)
    print(f"visits: truth {len(truth)}, found {len(got)}, recall {recall:.2f}, "
          f"building precision {precision:.2f}")  # fmt: skip
    assert recall == 1.0
    assert precision == 1.0
    assert (found["minutes"] >= 5.0).all()


def _true_routes(fixture_district: Path) -> gpd.GeoDataFrame:
    routes = _routes(fixture_district)
    return gpd.GeoDataFrame(routes, geometry=gpd.GeoSeries.from_wkt(routes["wkt"]), crs=4326).drop(
        columns="wkt"
    )


def test_cleaned_tracks_follow_the_simulated_routes(
    session: Session, fixture_district: Path
) -> None:
    """Each stored cleaned line lies along its true route: at least 85 % of the route is
    within 20 m of it (the rest was walked during the simulated 1-5 minute dropouts) and
    its measured length is within 20 % of the route's (dropouts are not walked through;
    5 m GPS noise zigzags and lengthens a walk)."""
    truth = _true_routes(fixture_district)
    stored = gpd.read_postgis(
        text(
            "SELECT staff_id, work_date::text AS date, distance_m, geom FROM patrol_tracks "
            "WHERE geom IS NOT NULL"
        ),
        session.connection(),
        geom_col="geom",
        crs=4326,
    )
    crs = metric_crs(*truth.geometry.union_all().centroid.coords[0])
    both = truth.to_crs(crs).merge(
        stored.to_crs(crs).rename_geometry("cleaned"), on=["staff_id", "date"]
    )
    assert len(both) == len(truth)
    ratios = []
    for r in both.itertuples():
        # sampled every 5 m: the routes go back and forth over the same streets
        samples = shapely.line_interpolate_point(r.geometry, np.arange(0, r.geometry.length, 5.0))
        near = float((shapely.distance(samples, r.cleaned) <= 20.0).mean())
        assert near >= 0.85, (r.staff_id, r.date, near)
        ratios.append(r.distance_m / r.geometry.length)
    print(f"measured / true length: {min(ratios):.2f} .. {max(ratios):.2f}")
    assert 0.8 <= min(ratios) and max(ratios) <= 1.2
    assert 0.9 <= float(np.median(ratios)) <= 1.15


def test_grid_coverage_matches_the_true_routes(session: Session, fixture_district: Path) -> None:
    """For each micro grid and day, the street share covered by the cleaned tracks agrees
    within 0.1 with the share covered by the simulated routes themselves; the uncovered
    streets are away from every true route."""
    truth = _true_routes(fixture_district)
    micro = gpd.read_postgis(
        text("SELECT id, geom FROM grids WHERE level = 'micro' ORDER BY id"),
        session.connection(),
        geom_col="geom",
    )
    compared = 0
    near_true = uncovered = 0.0
    for day in sorted(truth["date"].unique()):
        day_d = date.fromisoformat(day)
        lines = truth[truth["date"] == day]
        for g in micro.itertuples():
            if not lines.intersects(g.geom).any():
                continue
            cov, info = grid_coverage(session, int(g.id), day_d, day_d)
            crs = metric_crs(*g.geom.centroid.coords[0])
            area = gpd.GeoSeries([g.geom], crs=4326).to_crs(crs).iloc[0]
            roads = gpd.read_postgis(
                text(
                    "SELECT r.geom FROM roads r, grids g WHERE g.id = :i "
                    "AND r.kind <> 'motorway' AND ST_Intersects(r.geom, g.geom)"
                ),
                session.connection(),
                params={"i": int(g.id)},
            ).to_crs(crs)
            true_m = lines.to_crs(crs).geometry.to_numpy()
            ideal = coverage(area, roads.geometry.to_numpy(), np.empty(0, dtype=object), true_m)
            assert abs(cov.street_share - ideal.street_share) <= 0.1, (g.id, day)
            assert info["street_share"] == pytest.approx(cov.street_share, abs=1e-4)
            if not cov.uncovered.is_empty:
                # the uncovered parts are more than 20 m from every cleaned track
                cleaned = gpd.read_postgis(
                    text("SELECT geom FROM patrol_tracks WHERE work_date = :d"),
                    session.connection(),
                    params={"d": day_d},
                    crs=4326,
                ).to_crs(crs)
                parts = shapely.get_parts(cov.uncovered)
                mids = shapely.line_interpolate_point(parts, 0.5, normalized=True)
                gap = shapely.distance(mids, cleaned.geometry.union_all())
                assert (gap > 20.0 - 5.0).all(), (g.id, day)  # 5 m: the sampling step
                near_true += cov.uncovered.intersection(
                    shapely.union_all(true_m).buffer(10.0)
                ).length
                uncovered += cov.uncovered.length
            assert cov.covered_m <= cov.street_m + 1e-6
            compared += 1
    print(f"coverage: {compared} grid-days; {near_true:.0f} of {uncovered:.0f} m reported "
          "uncovered lie within 10 m of a true route")  # fmt: skip
    assert compared >= 10


def test_daily_status_and_effort_against_the_true_routes(
    session: Session, fixture_district: Path
) -> None:
    """Per day and micro grid: a grid where the simulated routes spend 15 minutes or more
    (1.3 m/s, the routes sampled every 5 m: they go back and forth over the same streets)
    counts as patrolled; a grid with effort has a true route within 50 m (no phantom
    patrols); and the day's distance over all micro grids is near the true total (per grid
    it is not: grid boundaries run along streets, and GPS noise moves the walk across)."""
    truth = _true_routes(fixture_district)
    micro = gpd.read_postgis(
        text("SELECT id, geom FROM grids WHERE level = 'micro' ORDER BY id"),
        session.connection(),
        geom_col="geom",
        crs=4326,
    )
    crs = metric_crs(*micro.geometry.union_all().centroid.coords[0])
    micro_m = micro.to_crs(crs)
    walked = with_effort = 0
    for day in sorted(truth["date"].unique()):
        status = daily_status(session, date.fromisoformat(day)).set_index("grid_id")
        lines = truth[truth["date"] == day].to_crs(crs).geometry.to_numpy()
        samples = np.concatenate(
            [shapely.line_interpolate_point(g, np.arange(0, g.length, 5.0)) for g in lines]
        )
        for g in micro_m.itertuples():
            inside = 5.0 * shapely.contains_xy(g.geom, *shapely.get_coordinates(samples).T).sum()
            row = status.loc[int(g.id)]
            if inside / 1.3 >= 15 * 60:
                assert row["patrolled"], (g.id, day, inside)
                walked += 1
            if row["minutes"] > 0:
                assert shapely.distance(g.geom, samples).min() <= 50.0, (g.id, day)
                with_effort += 1
        true_total = float(shapely.length(lines).sum())
        ratio = status["distance_m"].sum() / true_total
        print(f"{day}: micro-grid distance / true distance {ratio:.2f}")
        assert 0.85 <= ratio <= 1.2, day
    assert walked >= 5 and with_effort >= 10


def test_effort_of_a_track_shorter_than_one_stay() -> None:
    """Three fixes 20 s long in one grid: distance and time count, no entry, no crash."""
    zeros = np.zeros(3, dtype=np.int64)
    out = grid_effort(
        zeros, zeros, np.array([0.0, 10.0, 20.0]), np.array([0.0, 5.0, 10.0]), np.zeros(3),
        np.array([3, 3, 3]),
    )
    assert len(out) == 1
    row = out.iloc[0]
    assert row["grid"] == 3
    assert row["distance_m"] == pytest.approx(10.0)
    assert row["seconds"] == pytest.approx(20.0)
    assert row["entries"] == 0
