"""Gi* against the hotspots the demo generator planted: the fixture district through the
database, and the full-size demo district from its files.

A planted hotspot is one category crowding 1-3 adjacent micro grids for 21-57 days. The
analysis a user would run for it is Gi* on that category over that period; a planted grid is
found when it is hot at 90 % or more. Grids found that were not planted are counted as false
grids, split into the planted grids' neighbours (Gi* is a neighbourhood statistic, so the rim
of a strong cluster is hot by construction) and the rest. The figures are printed (run with
``-s``) and bounded by the asserts.

The fixture district has one hotspot in 20 micro grids, too few for a recall figure: with one
outlier grid and four neighbours in 20 grids Gi* cannot exceed z = 1.73 however many incidents
the grid has (the outlier dominates the variance), so it reaches the 90 % class only. The
recall figure comes from the full demo (619 micro grids, six hotspots), generated into a
temporary folder (about 7 s).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from gis.db.queries.hotspots import (
    incident_categories,
    latest_report,
    micro_counts,
    week_start,
    weekly_counts,
)
from gis.hotspots import emerging_hotspots, gi_star, spatial_weights

pytestmark = pytest.mark.db


@dataclass
class Score:
    """Planted grids found, missed, and false grids (next to a planted one, or elsewhere)."""

    found: int = 0
    missed: int = 0
    false_adjacent: int = 0
    false_far: int = 0
    false_core: int = 0
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / (self.found + self.missed)

    def add(self, result: gpd.GeoDataFrame, truth: set[str], neighbours: set[str]) -> None:
        hot = set(result.loc[result["gi_level"] > 0, "code"])
        core = set(result.loc[result["gi_core"], "code"])
        self.found += len(hot & truth)
        self.missed += len(truth - hot)
        self.misses += sorted(truth - hot)
        self.false_adjacent += len((hot - truth) & neighbours)
        self.false_far += len(hot - truth - neighbours)
        self.false_core += len(core - truth)


def _neighbour_codes(grids: gpd.GeoDataFrame) -> dict[str, set[str]]:
    w = spatial_weights(grids.reset_index(drop=True))
    codes = grids["code"].tolist()
    return {codes[i]: {codes[j] for j in w.neighbors[i]} for i in range(len(codes))}


def _planted(path: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(path / "district.gpkg", layer="hotspots")


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ----------------------------------------------------------------------------- fixture (DB)


def test_counts_per_micro_grid_match_the_incidents(session: Session) -> None:
    counts = micro_counts(session)
    assert len(counts) == 20 and counts.crs.to_epsg() == 4326
    assert counts["code"].is_monotonic_increasing and (counts["count"] >= 0).all()
    total = session.execute(
        text(
            "SELECT count(*) FROM incidents WHERE micro_grid_id IS NOT NULL "
            "AND duplicate_of IS NULL"
        )
    ).scalar_one()
    assert int(counts["count"].sum()) == total > 1000
    cats = incident_categories(session)
    noise = micro_counts(session, category=cats[0])
    assert 0 < noise["count"].sum() < total
    latest = latest_report(session)
    assert latest is not None
    weekly = weekly_counts(session, last_week=week_start(latest), weeks=4)
    assert set(weekly.columns) == {"code", "week", "count"}
    assert weekly["week"].nunique() <= 4 and (weekly["week"].dt.day_of_week == 0).all()
    assert weekly["week"].max() == pd.Timestamp(week_start(latest))


def test_fixture_planted_hotspot_is_found(session: Session, fixture_district: Path) -> None:
    planted = _planted(fixture_district)
    assert len(planted) == 1
    t0 = time.perf_counter()
    score = Score()
    grids = micro_counts(session)
    neighbours = _neighbour_codes(grids)
    for h in planted.itertuples():
        counts = micro_counts(session, category=h.category, start=_ts(h.start), end=_ts(h.end))
        truth = set(h.micro_codes.split(","))
        rim = set().union(*(neighbours[c] for c in truth)) - truth
        result = gi_star(counts)
        score.add(result, truth, rim)
        assert result.set_index("code").loc[sorted(truth), "gi_core"].all()
    score.seconds = time.perf_counter() - t0
    print(f"\nfixture district (DB): {score}")
    assert score.recall == 1.0, score.misses
    assert score.false_far == 0 and score.false_core == 0
    assert score.false_adjacent <= 2


# ----------------------------------------------------------------------------- full demo


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from data.generate import generate_district

    out = tmp_path_factory.mktemp("demo")
    generate_district(out, preset="demo", seed=20261122)
    return out


def _located(demo: Path) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    grids = gpd.read_file(demo / "district.gpkg", layer="grids")
    micro = grids[grids["level"] == "micro"].sort_values("code").reset_index(drop=True)
    inc = pd.read_csv(demo / "incidents.csv", dtype={"lon": float, "lat": float})
    pts = gpd.GeoDataFrame(inc, geometry=gpd.points_from_xy(inc["lon"], inc["lat"]), crs=4326)
    joined = gpd.sjoin(pts, micro[["code", "geometry"]], predicate="within", how="inner")
    joined["t"] = pd.to_datetime(joined["reported_at"])
    return micro, joined


@pytest.mark.slow
def test_demo_planted_hotspots_recall(demo: Path) -> None:
    micro, located = _located(demo)
    planted = _planted(demo)
    neighbours = _neighbour_codes(micro)
    t0 = time.perf_counter()
    window, year, rate = Score(), Score(), Score()
    for h in planted.itertuples():
        truth = set(h.micro_codes.split(","))
        rim = set().union(*(neighbours[c] for c in truth)) - truth
        cat = located[located["category"] == h.category]
        in_window = cat[(cat["t"] >= _ts(h.start)) & (cat["t"] < _ts(h.end))]
        for score, part, per in ((window, in_window, None), (year, cat, None), (rate, cat, 1000)):
            counts = micro[["code", "households", "geometry"]].copy()
            counts["count"] = counts["code"].map(part.groupby("code").size()).fillna(0)
            score.add(gi_star(counts, rate_per=per), truth, rim)
    window.seconds = year.seconds = rate.seconds = (time.perf_counter() - t0) / 3 / len(planted)
    n_cells = sum(len(c.split(",")) for c in planted["micro_codes"])
    print(f"\ndemo, {len(planted)} hotspots in {n_cells} micro grids of {len(micro)}")
    print(f"  category + hotspot period: {window}")
    print(f"  category, whole year:      {year}")
    print(f"  the same per 1,000 households: {rate}")
    assert window.recall >= 0.9 and year.recall >= 0.9
    # inside the period nothing away from a hotspot is hot; its rim is, by construction
    assert window.false_far == 0 and window.false_core == 0
    assert window.false_adjacent <= 8 * n_cells
    # over a year busy (populous) grids are hot too; rates per household take that out
    assert rate.recall >= 0.9 and rate.false_core < year.false_core


@pytest.mark.slow
def test_demo_hotspots_emerge_as_new_or_consecutive(demo: Path) -> None:
    micro, located = _located(demo)
    neighbours = _neighbour_codes(micro)
    local = located["t"].dt.tz_convert("Asia/Shanghai").dt.tz_localize(None).dt.normalize()
    located = located.assign(week=local - pd.to_timedelta(local.dt.day_of_week, unit="D"))
    patterns: list[str] = []
    false_new = 0
    for h in _planted(demo).itertuples():
        start = pd.Timestamp(_ts(h.start).replace(tzinfo=None))
        # three weeks into the hotspot (they last at least 21 days)
        last = start + pd.Timedelta(days=14)
        last -= pd.Timedelta(days=last.day_of_week)
        cat = located[located["category"] == h.category]
        weekly = cat.groupby(["code", "week"]).size().rename("count").reset_index()
        out = emerging_hotspots(micro[["code", "geometry"]], weekly, weeks=8, last_week=last)
        truth = h.micro_codes.split(",")
        patterns += out.set_index("code").loc[truth, "pattern"].tolist()
        rim = set().union(*(neighbours[c] for c in truth))
        emerging = out[out["pattern"].isin(["new_hot", "consecutive_hot"])]
        false_new += int((~emerging["code"].isin(rim)).sum())
    n_runs = len(_planted(demo))
    seen = pd.Series(patterns).value_counts().to_dict()
    print(f"\ndemo, planted grids 2 weeks into their hotspot: {seen}; new/consecutive far from a")
    print(f"hotspot: {false_new} grids in {n_runs} analyses of {len(micro)} grids")
    # hot in the last week, and new or consecutive unless a noisy earlier week was hot
    ongoing = ("new_hot", "consecutive_hot", "sporadic_hot")
    assert all(p in ongoing for p in patterns), patterns
    assert sum(p != "sporadic_hot" for p in patterns) >= 0.7 * len(patterns)
    assert false_new <= 0.01 * len(micro) * n_runs
