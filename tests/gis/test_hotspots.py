"""Gi* and emerging hotspots on hand-built lattices with known hot and cold clusters."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import stats
from shapely.geometry import box

from gis.crs import metric_crs
from gis.errors import EmptyInputError, GisError
from gis.hotspots import (
    GI_CLASSES,
    classify,
    emerging_hotspots,
    gi_star,
    mann_kendall,
    spatial_weights,
)

METRIC = metric_crs(113.55, 34.80)
X0, Y0 = 500_000.0, 3_850_000.0
SIDE = 10
CELL_M = 100.0


def lattice(counts: np.ndarray) -> gpd.GeoDataFrame:
    """A SIDE x SIDE lattice of 100 m squares (row-major codes r{row}c{col}) in WGS84."""
    rows, cols = np.divmod(np.arange(SIDE * SIDE), SIDE)
    geoms = [
        box(X0 + c * CELL_M, Y0 + r * CELL_M, X0 + (c + 1) * CELL_M, Y0 + (r + 1) * CELL_M)
        for r, c in zip(rows, cols, strict=True)
    ]
    frame = gpd.GeoDataFrame(
        {
            "code": [f"r{r}c{c}" for r, c in zip(rows, cols, strict=True)],
            "count": np.asarray(counts, dtype=float).ravel(),
            "households": 100,
        },
        geometry=geoms,
        crs=METRIC,
    )
    return frame.to_crs(4326)


def background(seed: int = 3, mean: float = 4.0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(mean, (SIDE, SIDE)).astype(float)


def block(r0: int, c0: int, size: int = 3) -> list[str]:
    return [f"r{r}c{c}" for r in range(r0, r0 + size) for c in range(c0, c0 + size)]


def hot_and_cold() -> np.ndarray:
    y = background()
    y[1:4, 1:4] = 20.0  # hot cluster centred on r2c2
    y[6:9, 6:9] = 0.0  # cold cluster centred on r7c7
    return y


# ----------------------------------------------------------------------------- weights


def test_queen_weights_on_lattice_count_corners_and_edges() -> None:
    w = spatial_weights(lattice(np.zeros((SIDE, SIDE))))
    card = np.array([w.cardinalities[i] for i in range(SIDE * SIDE)]).reshape(SIDE, SIDE)
    assert card[0, 0] == 3 and card[0, 5] == 5 and card[5, 5] == 8
    assert w.neighbors[0] == [1, SIDE, SIDE + 1]


def test_queen_links_t_junctions_that_vertex_queen_misses() -> None:
    # two 50 m squares on top of one 100 m rectangle: their shared corner lies on its edge
    geoms = [box(0, 0, 100, 50), box(0, 50, 50, 100), box(50, 50, 100, 100), box(0, 100, 100, 150)]
    frame = gpd.GeoDataFrame(
        {"count": [1, 2, 3, 4]},
        geometry=[shapely.affinity.translate(g, X0, Y0) for g in geoms],
        crs=METRIC,
    )
    w = spatial_weights(frame)
    assert sorted(w.neighbors[0]) == [1, 2]
    assert sorted(w.neighbors[3]) == [1, 2]
    assert sorted(w.neighbors[1]) == [0, 2, 3]


def test_islands_are_linked_to_the_nearest_grid() -> None:
    frame = lattice(np.zeros((SIDE, SIDE)))
    far = gpd.GeoDataFrame(
        {"code": ["island"], "count": [0.0], "households": [1]},
        geometry=[box(X0 + 5000, Y0, X0 + 5100, Y0 + 100)],
        crs=METRIC,
    ).to_crs(4326)
    frame = pd.concat([frame, far], ignore_index=True)
    w = spatial_weights(frame)
    assert w.islands == []
    assert w.neighbors[100] == [SIDE - 1]  # r0c9, the nearest corner of the lattice


def test_distance_band_default_and_explicit() -> None:
    frame = lattice(np.zeros((SIDE, SIDE)))
    w = spatial_weights(frame, kind="distance")  # nearest neighbour everywhere: rook
    assert w.cardinalities[0] == 2 and w.cardinalities[55] == 4
    w = spatial_weights(frame, kind="distance", distance_m=150.0)  # diagonals at 141 m
    assert w.cardinalities[55] == 8


# ----------------------------------------------------------------------------- Gi*


def test_gi_star_finds_the_hot_and_the_cold_cluster() -> None:
    out = gi_star(lattice(hot_and_cold()))
    by = out.set_index("code")
    assert by.loc["r2c2", "gi_class"] == "热点99%"
    assert by.loc["r7c7", "gi_class"] == "冷点99%"
    assert (by.loc[block(1, 1), "gi_level"] > 0).all()
    # the cold block's centre and its edge neighbours (corners see mostly background)
    assert (by.loc[["r7c7", "r6c7", "r8c7", "r7c6", "r7c8"], "gi_level"] < 0).all()
    assert (by.loc[block(6, 6), "gi_level"] <= 0).all()
    # far from both clusters nothing is significant at 99 %
    far = by.loc[[f"r{r}c{c}" for r in range(SIDE) for c in range(SIDE) if r + c in (9,)]]
    assert (far["gi_level"].abs() < 3).all()
    # the core is the hot block itself, not its rim
    assert set(by.index[by["gi_core"]]) == set(block(1, 1))
    assert list(out["gi_class"].unique()) != ["不显著"]


def test_gi_star_z_matches_the_textbook_formula() -> None:
    """Getis & Ord (1992/1995) Gi* with binary weights, self included, by hand."""
    frame = lattice(hot_and_cold())
    out = gi_star(frame)
    w = spatial_weights(frame)
    y = frame["count"].to_numpy()
    n, mean, s = len(y), y.mean(), y.std()
    for i in (0, 22, 45, 77):
        nb = [i, *w.neighbors[i]]
        wsum = len(nb)
        z = (y[nb].sum() - mean * wsum) / (s * np.sqrt((n * wsum - wsum**2) / (n - 1)))
        assert out["gi_z"].iloc[i] == pytest.approx(z, rel=1e-9)
        assert out["gi_p"].iloc[i] == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)


def test_gi_star_permutations_agree_on_the_clusters() -> None:
    out = gi_star(lattice(hot_and_cold()), permutations=199, seed=1).set_index("code")
    assert out.loc["r2c2", "gi_level"] >= 2 and out.loc["r7c7", "gi_level"] <= -2
    assert (out["gi_p"] >= 1 / 200).all() and (out["gi_p"] <= 1).all()


def test_gi_star_rate_leaves_out_grids_without_households() -> None:
    frame = lattice(hot_and_cold())
    frame.loc[frame["code"] == "r0c9", "households"] = 0
    out = gi_star(frame, rate_per=1000).set_index("code")
    assert out.loc["r0c9", "gi_class"] == "无数据" and np.isnan(out.loc["r0c9", "gi_value"])
    assert out.loc["r1c1", "gi_value"] == pytest.approx(200.0)  # 20 per 100 households
    assert out.loc["r2c2", "gi_class"] == "热点99%"


def test_no_variation_means_nothing_is_significant() -> None:
    out = gi_star(lattice(np.full((SIDE, SIDE), 3.0)))
    assert set(out["gi_class"]) == {"不显著"} and (out["gi_z"] == 0).all()


def test_classify_bins_are_two_sided() -> None:
    z = [3.0, 2.2, 1.7, 1.0, -1.7, -2.2, -3.0, np.nan]
    p = [0.005, 0.03, 0.09, 0.3, 0.09, 0.03, 0.005, np.nan]
    assert classify(z, p) == [*GI_CLASSES, "不显著"]


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        (lambda f: f.iloc[:0], EmptyInputError, "no grids"),
        (lambda f: f.iloc[:2], GisError, "at least 3"),
        (lambda f: f.drop(columns="count"), GisError, "no column 'count'"),
        (lambda f: f.assign(count=-1.0), GisError, "finite numbers >= 0"),
        (lambda f: f.assign(count=np.nan), GisError, "finite numbers >= 0"),
        (lambda f: pd.DataFrame(f.drop(columns="geometry")), TypeError, "GeoDataFrame"),
    ],
)
def test_gi_star_rejects_bad_input(change, exc, match) -> None:
    with pytest.raises(exc, match=match):
        gi_star(change(lattice(background())))


def test_unknown_weights_kind_is_refused() -> None:
    with pytest.raises(GisError, match="'queen' or 'distance'"):
        gi_star(lattice(background()), weights="rook")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- Mann-Kendall


def test_mann_kendall_rising_series() -> None:
    x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    mk = mann_kendall(x)
    assert mk.s == 28 and mk.tau == pytest.approx(stats.kendalltau(x, range(8)).statistic)
    assert mk.z == pytest.approx(27 / np.sqrt(8 * 7 * 21 / 18))
    assert mk.p < 0.01
    assert mann_kendall(x[::-1]).z == pytest.approx(-mk.z)


def test_mann_kendall_ties_and_flat() -> None:
    mk = mann_kendall([1, 1, 2, 2, 3, 3])
    var = (6 * 5 * 17 - 3 * (2 * 1 * 9)) / 18
    assert mk.s == 12 and mk.z == pytest.approx(11 / np.sqrt(var))
    flat = mann_kendall([2.0] * 6)
    assert flat.z == 0 and flat.p == 1
    with pytest.raises(GisError, match="at least 3"):
        mann_kendall([1.0, 2.0])


# ----------------------------------------------------------------------------- emerging


def weekly_frame(levels: list[float], *, weeks: int = 8) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Background Poisson(4) each week; the 3x3 block at r4c4 gets ``levels[t]`` in week t."""
    grids = lattice(np.zeros((SIDE, SIDE)))[["code", "geometry"]]
    rng = np.random.default_rng(11)
    monday = pd.Timestamp("2026-09-07")
    rows = []
    for t in range(weeks):
        y = rng.poisson(4.0, (SIDE, SIDE)).astype(float)
        if levels[t] >= 0:
            y[4:7, 4:7] = levels[t]
        week = monday + pd.Timedelta(weeks=t)
        rows += [
            {"code": c, "week": week, "count": v}
            for c, v in zip(grids["code"], y.ravel(), strict=True)
            if v > 0
        ]
    return grids, pd.DataFrame(rows)


NO = -1.0  # week with the block at background level
EMERGING_CASES = [
    ([NO] * 7 + [30.0], "new_hot"),
    ([NO] * 5 + [30.0] * 3, "consecutive_hot"),
    ([12.0, 14.0, 17.0, 20.0, 24.0, 30.0, 40.0, 60.0], "intensifying_hot"),
    ([30.0] * 8, "persistent_hot"),
    ([60.0, 40.0, 30.0, 24.0, 20.0, 17.0, 14.0, 12.0], "diminishing_hot"),
    ([30.0, NO, 30.0, NO, NO, 30.0, NO, 30.0], "sporadic_hot"),
    ([30.0, NO, 0.0, NO, 30.0, 0.0, NO, 30.0], "oscillating_hot"),
    ([0.0] * 8, "persistent_cold"),
    ([NO] * 7 + [0.0], "new_cold"),
    ([4.0] * 8, "none"),  # the block at the background mean
]


@pytest.mark.parametrize(("levels", "expected"), EMERGING_CASES)
def test_emerging_pattern_of_the_block_centre(levels: list[float], expected: str) -> None:
    grids, weekly = weekly_frame(levels)
    out = emerging_hotspots(grids, weekly, weeks=8).set_index("code")
    assert out.loc["r5c5", "pattern"] == expected, out.loc["r5c5"].to_dict()
    assert len(out.attrs["weeks"]) == 8 and out.attrs["weeks"][-1] == "2026-10-26"


def test_emerging_labels_and_historical_with_ten_weeks() -> None:
    grids, weekly = weekly_frame([30.0] * 9 + [NO], weeks=10)
    out = emerging_hotspots(grids, weekly, weeks=10).set_index("code")
    assert out.loc["r5c5", "pattern"] == "historical_hot"
    assert out.loc["r5c5", "pattern_label"] == "历史热点"
    assert out.loc["r5c5", "hot_weeks"] == 9


def test_emerging_last_week_and_missing_weeks_count_zero() -> None:
    grids, weekly = weekly_frame([NO] * 7 + [30.0])
    # end two weeks later: the two newest weeks have no incident at all
    out = emerging_hotspots(grids, weekly, weeks=8, last_week="2026-11-09").set_index("code")
    assert out.attrs["weeks"][-1] == "2026-11-09"
    assert out.loc["r5c5", "pattern"] == "none" and out.loc["r5c5", "hot_weeks"] == 1


def test_emerging_rejects_bad_input() -> None:
    grids, weekly = weekly_frame([NO] * 8)
    with pytest.raises(GisError, match="weeks must be >= 3"):
        emerging_hotspots(grids, weekly, weeks=2)
    with pytest.raises(GisError, match="columns"):
        emerging_hotspots(grids, weekly.drop(columns="count"))
    with pytest.raises(EmptyInputError, match="no weekly counts"):
        emerging_hotspots(grids, weekly.iloc[:0])
