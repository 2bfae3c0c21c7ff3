"""Incident hotspots (热点分析): Getis-Ord Gi* per micro grid and emerging hotspots over weeks.

Gi* (``esda.G_Local(star=True)``) compares the incident count of each micro grid (微网格) and
its neighbours with the district total: a large positive z-score marks a cluster of high
counts (热点), a large negative one a cluster of low counts (冷点). Classes follow the usual
90/95/99 % confidence bins of ArcGIS *Hot Spot Analysis* on two-sided p-values.

Neighbours are micro grids in queen contiguity: two grids are neighbours when their outlines
touch at any point (edge or corner). Micro grids tile a community without gaps and are of
similar size, so contiguity is the natural neighbourhood: it follows the grid hierarchy
rather than a distance that would be too wide in the dense old quarter and too narrow in
parks. It is computed here with a small metric snapping tolerance rather than libpysal's
``Queen`` because that one only links polygons sharing a *vertex*: the demo's micro grids
meet at T-junctions (a corner lying on a neighbour's edge), and libpysal's vertex test then
finds 3.3 neighbours per grid instead of 5.7. A binary distance band on grid centroids is
available as the alternative (``weights="distance"``). Islands (grids touching no other
grid) are linked to their nearest grid, so every grid has a neighbourhood and no z-score is
computed from one value alone.

Emerging hotspots (新兴热点) follow ArcGIS *Emerging Hot Spot Analysis* on a simplified
space-time cube: a spatial Gi* per week (not space-time neighbours) over the last N weeks,
the share of weeks each grid is a significant hotspot, and a Mann-Kendall trend test on its
weekly z-scores.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import esda
import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from libpysal.weights import W
from scipy import spatial, stats

from gis.crs import to_metric
from gis.errors import EmptyInputError, GisError

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
WeightsKind = Literal["queen", "distance"]

#: Gi* classes from hot to cold (confidence of a two-sided test).
HOT_99, HOT_95, HOT_90 = "热点99%", "热点95%", "热点90%"
NOT_SIGNIFICANT = "不显著"
COLD_90, COLD_95, COLD_99 = "冷点90%", "冷点95%", "冷点99%"
NO_DATA = "无数据"
GI_CLASSES: tuple[str, ...] = (HOT_99, HOT_95, HOT_90, NOT_SIGNIFICANT, COLD_90, COLD_95, COLD_99)
#: Class -> signed confidence level: +3 hot 99 %, ..., 0 not significant, ..., -3 cold 99 %.
GI_LEVEL: dict[str, int] = {c: 3 - i for i, c in enumerate(GI_CLASSES)} | {NO_DATA: 0}
_BINS: tuple[tuple[float, int], ...] = ((0.01, 3), (0.05, 2), (0.10, 1))

#: Emerging-hotspot patterns (English key -> Chinese label), hot side then cold side.
EMERGING_LABELS: dict[str, str] = {
    "new_hot": "新增热点",
    "consecutive_hot": "连续热点",
    "intensifying_hot": "加剧热点",
    "persistent_hot": "持续热点",
    "diminishing_hot": "减弱热点",
    "sporadic_hot": "零星热点",
    "oscillating_hot": "震荡热点",
    "historical_hot": "历史热点",
    "new_cold": "新增冷点",
    "consecutive_cold": "连续冷点",
    "intensifying_cold": "加剧冷点",
    "persistent_cold": "持续冷点",
    "diminishing_cold": "减弱冷点",
    "sporadic_cold": "零星冷点",
    "oscillating_cold": "震荡冷点",
    "historical_cold": "历史冷点",
    "none": "无明显模式",
}

DEFAULT_TOLERANCE_M = 1.0
DEFAULT_WEEKS = 8


# ----------------------------------------------------------------------------- weights


def _check_grids(grids: gpd.GeoDataFrame) -> None:
    if not isinstance(grids, gpd.GeoDataFrame):
        raise TypeError(f"grids must be a GeoDataFrame, not {type(grids).__name__}")
    if len(grids) == 0:
        raise EmptyInputError("no grids to analyse")
    if len(grids) < 3:
        raise GisError(f"Gi* needs at least 3 grids, got {len(grids)}")
    geoms = grids.geometry.to_numpy()
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        raise GisError(f"{int(bad.sum())} grid(s) have no geometry")
    if not grids.index.is_unique:
        raise GisError("grid index must be unique (it identifies the grids in the weights)")


def spatial_weights(
    grids: gpd.GeoDataFrame,
    *,
    kind: WeightsKind = "queen",
    distance_m: float | None = None,
    tolerance_m: float = DEFAULT_TOLERANCE_M,
) -> W:
    """Binary spatial weights between grids, ids in the order of ``grids.index``.

    Parameters
    ----------
    grids
        Polygons with a CRS (any; measured in :func:`gis.crs.to_metric`'s metric CRS).
    kind
        ``"queen"``: grids whose outlines come within ``tolerance_m`` metres of each other
        (touching at an edge or a corner, T-junctions included). ``"distance"``: grids whose
        centroids lie within ``distance_m`` metres.
    distance_m
        Band for ``"distance"``; default the smallest band giving every grid a neighbour
        (the largest nearest-neighbour centroid distance).
    tolerance_m
        Snapping tolerance in metres, added to the band for ``"distance"`` (coordinates
        rounded on the way through WGS84 leave hairline gaps between grids that touch).

    Returns
    -------
    libpysal.weights.W
        Binary weights without self links; islands are linked to their nearest grid.
    """
    _check_grids(grids)
    metric = to_metric(grids).geometry.to_numpy()
    n = len(metric)
    centroids = shapely.centroid(metric)
    xy = np.c_[shapely.get_x(centroids), shapely.get_y(centroids)]
    if tolerance_m < 0:
        raise GisError(f"tolerance_m must be >= 0, got {tolerance_m}")
    if kind == "queen":
        tree = shapely.STRtree(metric)
        left, right = tree.query(metric, predicate="dwithin", distance=tolerance_m)
    elif kind == "distance":
        tree_xy = spatial.cKDTree(xy)
        band = float(tree_xy.query(xy, k=2)[0][:, 1].max()) if distance_m is None else distance_m
        if not math.isfinite(band) or band <= 0:
            raise GisError(f"distance_m must be a positive number of metres, got {distance_m}")
        pairs = tree_xy.query_pairs(band + tolerance_m, output_type="ndarray")
        left, right = pairs[:, 0], pairs[:, 1]
    else:
        raise GisError(f"weights must be 'queen' or 'distance', not {kind!r}")
    keep = left != right
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in zip(left[keep].tolist(), right[keep].tolist(), strict=True):
        neighbours[a].add(b)
        neighbours[b].add(a)
    islands = [i for i in range(n) if not neighbours[i]]
    for i in islands:
        d = np.hypot(*(xy - xy[i]).T)
        d[i] = np.inf
        j = int(np.argmin(d))
        neighbours[i].add(j)
        neighbours[j].add(i)
    if islands:
        log.info("linked %d island grid(s) to their nearest grid", len(islands))
    ids = list(grids.index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libpysal warns about disconnected components
        return W(
            {ids[i]: [ids[j] for j in sorted(nb)] for i, nb in enumerate(neighbours)},
            silence_warnings=True,
        )


# ----------------------------------------------------------------------------- Gi*


def classify(z: npt.ArrayLike, p: npt.ArrayLike) -> list[str]:
    """Gi* class of each (z, two-sided p): 热点99/95/90%, 不显著, 冷点90/95/99%."""
    z_arr = np.asarray(z, dtype=float)
    p_arr = np.asarray(p, dtype=float)
    level = np.zeros(len(z_arr), dtype=int)
    for alpha, lv in reversed(_BINS):
        level[p_arr < alpha] = lv
    sign = np.sign(np.nan_to_num(z_arr, nan=0.0)).astype(int)
    level = np.where(np.isfinite(z_arr) & np.isfinite(p_arr), level * sign, 0)
    return [GI_CLASSES[3 - int(v)] for v in level]


@dataclass(frozen=True)
class GiResult:
    """Gi* z-scores and two-sided p-values of one variable."""

    z: FloatArray
    p: FloatArray


def _gi(y: FloatArray, w: W, *, permutations: int = 0, seed: int | None = None) -> GiResult:
    """Gi* of one variable (binary weights, self included)."""
    if np.ptp(y) == 0:  # no variation: every grid is exactly average, nothing is clustered
        return GiResult(np.zeros(len(y)), np.ones(len(y)))
    with warnings.catch_warnings():
        # esda warns that it fills the diagonal for star=True: that is what Gi* means
        warnings.simplefilter("ignore", UserWarning)
        # crand announces a future two-sided default; G_Local cannot pass it on, and the
        # folded p_sim is doubled below, which is what 'two-sided' will do
        warnings.simplefilter("ignore", DeprecationWarning)
        g = esda.G_Local(
            y,
            w,
            transform="B",
            star=True,
            permutations=permutations,
            seed=seed,
            n_jobs=1,
            keep_simulations=False,
        )
    z = np.asarray(g.Zs, dtype=float)
    if permutations:
        # p_sim is a folded (one-sided, on the observed side) pseudo p-value
        p = np.minimum(1.0, 2.0 * np.asarray(g.p_sim, dtype=float))
    else:
        p = 2.0 * np.asarray(g.p_norm, dtype=float)  # p_norm is one-sided sf(|z|)
    return GiResult(z, p)


def gi_star(
    counts: gpd.GeoDataFrame,
    *,
    value: str = "count",
    weights: WeightsKind | W = "queen",
    distance_m: float | None = None,
    rate_per: float | None = None,
    households: str = "households",
    permutations: int = 0,
    seed: int | None = None,
) -> gpd.GeoDataFrame:
    """Getis-Ord Gi* of incident counts (or rates) per grid, with the 90/95/99 % classes.

    Parameters
    ----------
    counts
        One row per grid (polygons, any CRS) with a numeric column ``value``; grids with no
        incident must be present with 0 (otherwise the background is biased upwards).
    value
        Column analysed.
    weights
        ``"queen"`` (default), ``"distance"`` (see :func:`spatial_weights`) or a ready
        libpysal ``W`` whose ids are ``counts.index``.
    distance_m
        Band in metres for ``weights="distance"``.
    rate_per
        When given, analyse ``value * rate_per / households`` (e.g. 1000: incidents per
        1,000 households) instead of the count; grids without households get class 无数据
        and are left out of the weights.
    households
        Column of households for ``rate_per``.
    permutations
        0 (default): p-values from the normal approximation (deterministic and fast, as
        ArcGIS reports them). More: conditional-randomisation pseudo p-values from esda,
        doubled to be two-sided.
    seed
        Random seed for the permutations.

    Returns
    -------
    geopandas.GeoDataFrame
        ``counts`` with ``gi_value`` (the analysed number), ``gi_z``, ``gi_p`` (two-sided),
        ``gi_class`` (Chinese label), ``gi_level`` (+3 hot 99 % ... -3 cold 99 %) and
        ``gi_core`` (热点核心: hot and itself more than one standard deviation above the mean).
    """
    _check_grids(counts)
    if value not in counts.columns:
        raise GisError(f"counts has no column {value!r}")
    y = pd.to_numeric(counts[value], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(y).all() or (y < 0).any():
        raise GisError(f"column {value!r} must hold finite numbers >= 0")
    use = np.ones(len(y), dtype=bool)
    if rate_per is not None:
        if households not in counts.columns:
            raise GisError(f"rate_per needs a {households!r} column")
        hh = pd.to_numeric(counts[households], errors="coerce").fillna(0).to_numpy(float)
        use = hh > 0
        y = np.where(use, y * float(rate_per) / np.where(use, hh, 1.0), np.nan)
    out = counts.copy()
    z = np.zeros(len(y))
    p = np.ones(len(y))
    part = counts[use]
    if len(part) >= 3:
        if isinstance(weights, W):
            if rate_per is not None and not use.all():
                raise GisError("give weights as 'queen' or 'distance' with rate_per")
            if list(weights.id_order) != list(counts.index):
                raise GisError("the weights' ids must be counts.index in order")
            w = weights
        else:
            w = spatial_weights(part, kind=weights, distance_m=distance_m)
        res = _gi(y[use], w, permutations=permutations, seed=seed)
        z[use], p[use] = res.z, res.p
    out["gi_value"] = y
    out["gi_z"] = z
    out["gi_p"] = p
    labels = classify(z, p)
    out["gi_class"] = [lab if ok else NO_DATA for lab, ok in zip(labels, use, strict=True)]
    out["gi_level"] = [GI_LEVEL[c] for c in out["gi_class"]]
    # Gi* is a neighbourhood statistic: an ordinary grid next to a very busy one is "hot"
    # too. The core flag keeps the hot grids that stand out themselves (one standard
    # deviation above the district mean), the centre of the cluster rather than its rim.
    ok = np.isfinite(y)
    cut = float(y[ok].mean() + y[ok].std()) if ok.any() else math.inf
    out["gi_core"] = (out["gi_level"].to_numpy() > 0) & ok & (np.nan_to_num(y) > cut)
    n_hot = int((out["gi_level"] > 0).sum())
    n_cold = int((out["gi_level"] < 0).sum())
    log.info("Gi*: %d grids, %d hot, %d cold", len(out), n_hot, n_cold)
    return out


# ----------------------------------------------------------------------------- emerging


@dataclass(frozen=True)
class MannKendall:
    """Mann-Kendall trend test: statistic S, Kendall's tau, normal z and two-sided p."""

    s: float
    tau: float
    z: float
    p: float


def mann_kendall(series: npt.ArrayLike) -> MannKendall:
    """Mann-Kendall test for a monotonic trend (tie-corrected variance, continuity
    correction), as ArcGIS uses on each bin's z-scores in *Emerging Hot Spot Analysis*.

    Written out (a dozen lines) rather than taken from ``pymannkendall``: the formula is
    short and one more dependency is not worth it.
    """
    x = np.asarray(series, dtype=float)
    n = len(x)
    if n < 3:
        raise GisError(f"Mann-Kendall needs at least 3 values, got {n}")
    if not np.isfinite(x).all():
        raise GisError("Mann-Kendall needs finite values")
    diff = x[None, :] - x[:, None]
    s = float(np.sign(diff[np.triu_indices(n, 1)]).sum())
    _, ties = np.unique(x, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - float((ties * (ties - 1) * (2 * ties + 5)).sum())) / 18.0
    if var <= 0:
        return MannKendall(s, 0.0, 0.0, 1.0)
    z = (s - np.sign(s)) / math.sqrt(var)
    p = float(2.0 * stats.norm.sf(abs(z)))
    return MannKendall(s, s / (n * (n - 1) / 2.0), float(z), p)


def _pattern(
    hot: npt.NDArray[np.bool_],
    opposite: npt.NDArray[np.bool_],
    trend: MannKendall,
    *,
    share: float,
    trend_alpha: float,
    sign: int,
) -> str | None:
    """The ArcGIS pattern of one side (hot, or cold with ``sign=-1``), or None."""
    n = len(hot)
    k = int(hot.sum())
    if k == 0:
        return None
    mostly = k >= share * n
    side = "hot" if sign > 0 else "cold"
    up = trend.p < trend_alpha and trend.z * sign > 0
    down = trend.p < trend_alpha and trend.z * sign < 0
    if not hot[-1]:
        return f"historical_{side}" if mostly else None
    if mostly:
        if up:
            return f"intensifying_{side}"
        if down:
            return f"diminishing_{side}"
        return f"persistent_{side}"
    if k == 1:
        return f"new_{side}"
    run = n - int(np.flatnonzero(~hot)[-1]) - 1  # hot weeks at the end
    if run == k and run >= 2:
        return f"consecutive_{side}"
    if opposite.any():
        return f"oscillating_{side}"
    return f"sporadic_{side}"


def emerging_hotspots(
    grids: gpd.GeoDataFrame,
    weekly: pd.DataFrame,
    *,
    weeks: int = DEFAULT_WEEKS,
    last_week: pd.Timestamp | str | None = None,
    key: str = "code",
    weights: WeightsKind | W = "queen",
    distance_m: float | None = None,
    alpha: float = 0.10,
    share: float = 0.9,
    trend_alpha: float = 0.05,
) -> gpd.GeoDataFrame:
    """Classify each grid by the course of its weekly Gi* over the last ``weeks`` weeks.

    Patterns (ArcGIS *Emerging Hot Spot Analysis*; "hot" means Gi* hot at ``alpha``, 90 %
    by default; cold patterns mirror them):

    - 新增热点 (new): hot in the last week only.
    - 连续热点 (consecutive): an unbroken run of >= 2 hot weeks at the end, never hot
      before it, fewer than ``share`` of the weeks hot.
    - 加剧热点 (intensifying): hot in >= ``share`` of the weeks including the last, and the
      weekly z-scores rise (Mann-Kendall p < ``trend_alpha``).
    - 持续热点 (persistent): the same with no significant trend.
    - 减弱热点 (diminishing): the same with a falling trend.
    - 零星热点 (sporadic): hot in the last week and on and off before, never cold.
    - 震荡热点 (oscillating): as sporadic but cold in some week.
    - 历史热点 (historical): hot in >= ``share`` of the weeks but not the last.
    - 无明显模式 (none).

    Parameters
    ----------
    grids
        One row per grid (polygons, any CRS) with the ``key`` column.
    weekly
        Long counts: ``key``, ``week`` (start of the week, a date or timestamp) and
        ``count``; missing (grid, week) pairs count 0.
    weeks
        Number of weekly bins ending at ``last_week`` (>= 3 for the trend test).
    last_week
        Start of the last week analysed; default the latest week in ``weekly``.

    Returns
    -------
    geopandas.GeoDataFrame
        ``grids`` with ``pattern`` (English key), ``pattern_label`` (Chinese), ``hot_weeks``,
        ``cold_weeks``, ``last_z`` (Gi* z of the last week), ``trend_z`` and ``trend_p``
        (Mann-Kendall on the weekly z-scores). ``attrs["weeks"]`` lists the week starts.
    """
    _check_grids(grids)
    if weeks < 3:
        raise GisError(f"weeks must be >= 3 for the trend test, got {weeks}")
    missing = {key, "week", "count"} - set(weekly.columns)
    if missing:
        raise GisError(f"weekly counts need columns {sorted(missing)}")
    if key not in grids.columns or not grids[key].is_unique:
        raise GisError(f"grids need a unique {key!r} column")
    wk = pd.to_datetime(weekly["week"]).dt.tz_localize(None).dt.normalize()
    if last_week is None:
        if len(wk) == 0:
            raise EmptyInputError("no weekly counts and no last_week given")
        end = wk.max()
    else:
        end = pd.Timestamp(last_week).tz_localize(None).normalize()
    bins = pd.DatetimeIndex([end - pd.Timedelta(weeks=k) for k in range(weeks - 1, -1, -1)])
    table = (
        pd.DataFrame({key: weekly[key].to_numpy(), "week": wk, "count": weekly["count"]})
        .loc[lambda d: d["week"].isin(bins)]
        .pivot_table(index=key, columns="week", values="count", aggfunc="sum", fill_value=0)
        .reindex(index=grids[key].to_numpy(), columns=bins, fill_value=0)
    )
    cube = table.to_numpy(dtype=float)  # grid x week
    w = (
        weights
        if isinstance(weights, W)
        else spatial_weights(grids, kind=weights, distance_m=distance_m)
    )
    z = np.zeros_like(cube)
    p = np.ones_like(cube)
    for t in range(weeks):
        res = _gi(cube[:, t], w)
        z[:, t], p[:, t] = res.z, res.p
    hot = (p < alpha) & (z > 0)
    cold = (p < alpha) & (z < 0)
    patterns, trend_z, trend_p = [], [], []
    for i in range(len(grids)):
        mk = mann_kendall(z[i])
        trend_z.append(mk.z)
        trend_p.append(mk.p)
        kw = {"share": share, "trend_alpha": trend_alpha}
        pattern = _pattern(hot[i], cold[i], mk, sign=1, **kw)
        if pattern is None or (not hot[i, -1] and cold[i, -1]):
            pattern = _pattern(cold[i], hot[i], mk, sign=-1, **kw) or pattern
        patterns.append(pattern or "none")
    out = grids.copy()
    out["pattern"] = patterns
    out["pattern_label"] = [EMERGING_LABELS[k] for k in patterns]
    out["hot_weeks"] = hot.sum(axis=1)
    out["cold_weeks"] = cold.sum(axis=1)
    out["last_z"] = z[:, -1]
    out["trend_z"] = trend_z
    out["trend_p"] = trend_p
    out.attrs["weeks"] = [str(b.date()) for b in bins]
    log.info(
        "emerging hotspots over %d weeks to %s: %s",
        weeks,
        bins[-1].date(),
        pd.Series(patterns).value_counts().to_dict(),
    )
    return out


def summarise(classes: Sequence[str], order: Sequence[str]) -> dict[str, int]:
    """Count of each label in ``order`` (zeros kept), for legends and API summaries."""
    s = pd.Series(list(classes), dtype=object).value_counts()
    return {k: int(s.get(k, 0)) for k in order}
