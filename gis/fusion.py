"""多网融合: fusing another department's grid layer (综治, 城管, 公安, 卫健...) with ours.

:func:`crosswalk` overlays the foreign layer on our grids of one level in the metric CRS of
:mod:`gis.crs` and answers, for every overlapping pair, the overlap area in m², its share of
each side's area and the households (from building points) inside it with their share of
each side. Pairs are classified:

``match``    both shares ≥ ``match_share`` (the same grid drawn twice);
``inside``   the foreign grid lies in ours (its share ≥ ``match_share``);
``contains`` our grid lies in the foreign one;
``sliver``   a thin piece (mean width 2·area/perimeter < ``sliver_width_m``) or a small one
             (below ``sliver_share`` of both sides): the two boundaries are misaligned;
``partial``  a real partial overlap: the foreign boundary cuts through our grid.

The proposed fused network keeps **our boundaries**: every one of our grids goes whole to the
foreign grid holding most of its households (the *owner*; by area when it has none), and each
foreign grid is redrawn as the union of the grids it owns (snapped to ours). Each foreign grid
also gets its *home*: our grid holding most of its households. A foreign grid that owns
nothing (smaller than our grids, or only a sliver of them) is absorbed into the owner of its
home. The list of changes says, per foreign grid, what it keeps, gains and loses in m² and
households; ``keep`` when its boundary only moves by less than ``sliver_width_m`` on average
(area moved / perimeter), ``reshape`` otherwise, ``absorb`` when it owns none of our grids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis.crs import WGS84, metric_crs
from gis.errors import EmptyInputError, GisError

log = logging.getLogger(__name__)

PAIR_COLUMNS = [
    "their_code",
    "our_code",
    "overlap_m2",
    "share_of_theirs",
    "share_of_ours",
    "households",
    "hh_share_of_theirs",
    "hh_share_of_ours",
    "mean_width_m",
    "relation",
]


@dataclass(frozen=True)
class FusionThresholds:
    """What counts as the same grid, a sliver and noise.

    Parameters
    ----------
    match_share
        Share of a side's area above which an overlap means "the same" / "inside".
    sliver_share
        An overlap below this share of *both* sides is a misaligned-boundary piece.
    sliver_width_m
        An overlap whose mean width (2 × area / perimeter) is below this is a sliver.
    min_area_m2
        Overlaps smaller than this are floating-point noise and not listed.
    """

    match_share: float = 0.95
    sliver_share: float = 0.05
    sliver_width_m: float = 5.0
    min_area_m2: float = 0.5

    def __post_init__(self) -> None:
        if not 0.5 <= self.match_share <= 1.0:
            raise GisError("match_share must lie between 0.5 and 1")
        if not 0.0 <= self.sliver_share < self.match_share:
            raise GisError("sliver_share must lie between 0 and match_share")
        if self.sliver_width_m < 0 or self.min_area_m2 < 0:
            raise GisError("sliver_width_m and min_area_m2 must not be negative")


@dataclass
class Crosswalk:
    """The crosswalk between a foreign layer and ours, and the proposed fused network.

    Attributes
    ----------
    pairs
        One row per overlapping pair (:data:`PAIR_COLUMNS`), largest overlap first per
        foreign grid.
    theirs
        Per foreign grid: code, name, area_m2, households, home (our code), home_hh_share,
        grids (our grids it overlaps beyond slivers), slivers, status (aligned / misaligned /
        spans).
    ours
        Per our grid: code, name, area_m2, households, owner (foreign code), owner_hh_share,
        foreign (foreign grids whose home it is), uncovered_m2 (area no foreign grid covers).
    changes
        Per foreign grid: code, action (keep / reshape / absorb), into (for absorb), members
        (our grids it is redrawn from), area_before_m2, area_after_m2, area_moved_m2,
        households_before, households_after, detail.
    fused
        The proposed foreign layer snapped to ours (EPSG:4326): code, name, members,
        households, geometry.
    slivers
        The sliver overlap pieces (EPSG:4326): their_code, our_code, overlap_m2,
        mean_width_m, geometry; for the map.
    """

    pairs: pd.DataFrame
    theirs: pd.DataFrame
    ours: pd.DataFrame
    changes: pd.DataFrame
    fused: gpd.GeoDataFrame
    slivers: gpd.GeoDataFrame


def _prepare(frame: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if len(frame) == 0:
        raise EmptyInputError(f"{what} layer holds no grids")
    if "code" not in frame.columns:
        raise GisError(f"{what} layer needs a 'code' column")
    if frame.crs is None:
        raise GisError(f"{what} layer has no CRS")
    out = frame.to_crs(WGS84).reset_index(drop=True)
    out["code"] = out["code"].astype(str)
    if out["code"].duplicated().any():
        dup = out["code"][out["code"].duplicated()].iloc[0]
        raise GisError(f"{what} layer uses code {dup} more than once")
    if "name" not in out.columns:
        out["name"] = out["code"]
    bad = ~shapely.is_valid(out.geometry.values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise GisError(
            f"{what} grid {out['code'].iloc[i]} is invalid: "
            f"{shapely.is_valid_reason(out.geometry.iloc[i])}"
        )
    return out


def _assign_points(points: np.ndarray, geoms: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Index of the grid covering each point (smallest code on a shared edge), -1 for none."""
    out = np.full(len(points), -1, dtype=np.int64)
    if len(points) == 0 or len(geoms) == 0:
        return out
    tree = shapely.STRtree(geoms)
    pi, gi = tree.query(points, predicate="intersects")
    order = np.lexsort((codes[gi], pi))
    pi, gi = pi[order], gi[order]
    first = np.r_[True, pi[1:] != pi[:-1]] if len(pi) else np.array([], dtype=bool)
    out[pi[first]] = gi[first]
    return out


def _argmax_by(group: pd.DataFrame, key: str, tie: str) -> pd.Series:
    """The row of each group with the largest ``key`` (ties: largest ``tie``, then code)."""
    ordered = group.sort_values([key, tie], ascending=[False, False], kind="stable")
    return ordered.iloc[0]


def crosswalk(
    ours: gpd.GeoDataFrame,
    theirs: gpd.GeoDataFrame,
    buildings: gpd.GeoDataFrame,
    *,
    thresholds: FusionThresholds | None = None,
) -> Crosswalk:
    """Crosswalk a foreign grid layer with ours and propose the fused network.

    Parameters
    ----------
    ours
        Our grids of one level: code, name, geometry (any CRS, usually EPSG:4326).
    theirs
        The other department's grids: code, name, geometry.
    buildings
        Building points (or footprints: their representative point is used) with a
        ``households`` column.
    thresholds
        See :class:`FusionThresholds`.
    """
    tol = thresholds or FusionThresholds()
    ours = _prepare(ours, "our")
    theirs = _prepare(theirs, "foreign")
    minx, miny, maxx, maxy = ours.total_bounds
    crs = metric_crs((minx + maxx) / 2.0, (miny + maxy) / 2.0)
    om = ours.to_crs(crs)
    tm = theirs.to_crs(crs)
    o_geoms, t_geoms = om.geometry.values, tm.geometry.values
    o_codes, t_codes = om["code"].to_numpy(), tm["code"].to_numpy()
    o_area = shapely.area(o_geoms)
    t_area = shapely.area(t_geoms)

    if len(buildings) and "households" not in buildings.columns:
        raise GisError("buildings need a 'households' column")
    bm = buildings.to_crs(crs) if len(buildings) else buildings
    pts = shapely.point_on_surface(bm.geometry.values) if len(bm) else np.array([], dtype=object)
    hh = bm["households"].to_numpy(dtype=float) if len(bm) else np.zeros(0)
    b_our = _assign_points(pts, o_geoms, o_codes)
    b_their = _assign_points(pts, t_geoms, t_codes)
    o_hh = np.bincount(b_our[b_our >= 0], weights=hh[b_our >= 0], minlength=len(om))
    t_hh = np.bincount(b_their[b_their >= 0], weights=hh[b_their >= 0], minlength=len(tm))
    both = (b_our >= 0) & (b_their >= 0)
    pair_hh = (
        pd.DataFrame({"t": b_their[both], "o": b_our[both], "hh": hh[both]})
        .groupby(["t", "o"])["hh"]
        .sum()
    )

    tree = shapely.STRtree(o_geoms)
    ti, oi = tree.query(t_geoms, predicate="intersects")
    inter = shapely.intersection(t_geoms[ti], o_geoms[oi])
    area = shapely.area(inter)
    keep = area >= tol.min_area_m2
    ti, oi, inter, area = ti[keep], oi[keep], inter[keep], area[keep]
    perim = shapely.length(inter)
    width = np.where(perim > 0, 2.0 * area / np.where(perim > 0, perim, 1.0), 0.0)
    s_t = area / t_area[ti]
    s_o = area / o_area[oi]
    p_hh = np.array([float(pair_hh.get((t, o), 0.0)) for t, o in zip(ti, oi, strict=True)])
    relation = np.where(
        (s_t >= tol.match_share) & (s_o >= tol.match_share),
        "match",
        np.where(
            s_t >= tol.match_share,
            "inside",
            np.where(
                s_o >= tol.match_share,
                "contains",
                np.where(
                    (width < tol.sliver_width_m)
                    | ((s_t < tol.sliver_share) & (s_o < tol.sliver_share)),
                    "sliver",
                    "partial",
                ),
            ),
        ),
    )
    pairs = pd.DataFrame(
        {
            "their_code": t_codes[ti],
            "our_code": o_codes[oi],
            "overlap_m2": np.round(area, 2),
            "share_of_theirs": np.round(s_t, 4),
            "share_of_ours": np.round(s_o, 4),
            "households": p_hh.astype(int),
            "hh_share_of_theirs": np.round(
                np.divide(p_hh, t_hh[ti], out=np.zeros_like(p_hh), where=t_hh[ti] > 0), 4
            ),
            "hh_share_of_ours": np.round(
                np.divide(p_hh, o_hh[oi], out=np.zeros_like(p_hh), where=o_hh[oi] > 0), 4
            ),
            "mean_width_m": np.round(width, 2),
            "relation": relation,
            "_t": ti,
            "_o": oi,
        }
    )
    pairs = pairs.sort_values(
        ["their_code", "overlap_m2", "our_code"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)

    # home of each foreign grid: our grid with most of its households (area breaks ties)
    home = {int(k): _argmax_by(g, "households", "overlap_m2") for k, g in pairs.groupby("_t")}
    # owner of each of our grids: the foreign grid with most of its households
    owner = {int(k): _argmax_by(g, "households", "overlap_m2") for k, g in pairs.groupby("_o")}

    real = pairs[pairs["relation"] != "sliver"]
    theirs_rows = []
    for t in range(len(tm)):
        mine = pairs[pairs["_t"] == t]
        real_t = real[real["_t"] == t]
        h = home.get(t)
        n_sliver = int((mine["relation"] == "sliver").sum())
        if len(real_t) == 1 and real_t["relation"].iloc[0] in ("match", "inside"):
            status = "aligned" if n_sliver == 0 else "misaligned"
        elif len(real_t) >= 1 and (real_t["relation"] == "contains").all():
            status = "aligned" if n_sliver == 0 else "misaligned"
        else:
            status = "spans" if len(real_t) > 1 else "misaligned"
        if len(mine) == 0:
            status = "outside"
        theirs_rows.append(
            {
                "code": t_codes[t],
                "name": str(tm["name"].iloc[t]),
                "area_m2": round(float(t_area[t]), 2),
                "households": int(t_hh[t]),
                "home": None if h is None else h["our_code"],
                "home_hh_share": None if h is None else float(h["hh_share_of_theirs"]),
                "grids": ",".join(sorted(real_t["our_code"])),
                "slivers": n_sliver,
                "status": status,
            }
        )
    theirs_df = pd.DataFrame(theirs_rows)

    covered = shapely.union_all(t_geoms)
    ours_rows = []
    for o in range(len(om)):
        w = owner.get(o)
        ours_rows.append(
            {
                "code": o_codes[o],
                "name": str(om["name"].iloc[o]),
                "area_m2": round(float(o_area[o]), 2),
                "households": int(o_hh[o]),
                "owner": None if w is None else w["their_code"],
                "owner_hh_share": None if w is None else float(w["hh_share_of_ours"]),
                "foreign": ",".join(
                    sorted(t_codes[t] for t, h in home.items() if h["our_code"] == o_codes[o])
                ),
                "uncovered_m2": round(float(shapely.difference(o_geoms[o], covered).area), 2),
            }
        )
    ours_df = pd.DataFrame(ours_rows)

    members: dict[int, list[int]] = {t: [] for t in range(len(tm))}
    for o, w in owner.items():
        members[int(w["_t"])].append(o)
    change_rows, fused_rows = [], []
    for t in range(len(tm)):
        mem = sorted(members[t], key=lambda o: o_codes[o])
        before_hh = int(t_hh[t])
        if not mem:
            h = home.get(t)
            into = None
            if h is not None and int(h["_o"]) in owner:
                into = owner[int(h["_o"])]["their_code"]
            change_rows.append(
                {
                    "code": t_codes[t],
                    "action": "absorb",
                    "into": into,
                    "members": "",
                    "area_before_m2": round(float(t_area[t]), 2),
                    "area_after_m2": 0.0,
                    "area_moved_m2": round(float(t_area[t]), 2),
                    "households_before": before_hh,
                    "households_after": 0,
                    "detail": (
                        f"owns none of our grids; merged into {into}"
                        if into
                        else "overlaps none of our grids"
                    ),
                }
            )
            continue
        snapped = shapely.union_all(o_geoms[mem])
        moved = float(shapely.symmetric_difference(snapped, t_geoms[t]).area)
        after_hh = int(o_hh[mem].sum())
        perim = float(t_geoms[t].length) or 1.0
        # mean boundary displacement (moved area / perimeter) below the sliver width: the
        # boundary was only snapped onto ours, the grid itself stays: keep
        action = "keep" if moved / perim < tol.sliver_width_m else "reshape"
        change_rows.append(
            {
                "code": t_codes[t],
                "action": action,
                "into": None,
                "members": ",".join(o_codes[mem]),
                "area_before_m2": round(float(t_area[t]), 2),
                "area_after_m2": round(float(snapped.area), 2),
                "area_moved_m2": round(moved, 2),
                "households_before": before_hh,
                "households_after": after_hh,
                "detail": f"redrawn from {len(mem)} of our grids; "
                f"{after_hh - before_hh:+d} households",
            }
        )
        fused_rows.append(
            {
                "code": t_codes[t],
                "name": str(tm["name"].iloc[t]),
                "members": ",".join(o_codes[mem]),
                "households": after_hh,
                "geometry": shapely.union_all(ours.geometry.values[mem]),
            }
        )
    changes = pd.DataFrame(change_rows)
    fused = gpd.GeoDataFrame(
        fused_rows or None,
        columns=["code", "name", "members", "households", "geometry"],
        geometry="geometry",
        crs=WGS84,
    )
    sl = pairs["relation"].to_numpy() == "sliver"
    sliver_geoms = gpd.GeoSeries(_pair_geoms(inter, ti, oi, pairs, sl), crs=crs).to_crs(WGS84)
    slivers = gpd.GeoDataFrame(
        pairs.loc[sl, ["their_code", "our_code", "overlap_m2", "mean_width_m"]].reset_index(
            drop=True
        ),
        geometry=sliver_geoms.values,
        crs=WGS84,
    )
    log.info(
        "crosswalk: %d foreign x %d ours -> %d pairs, %d slivers",
        len(tm),
        len(om),
        len(pairs),
        int(sl.sum()),
    )
    return Crosswalk(
        pairs=pairs.drop(columns=["_t", "_o"]),
        theirs=theirs_df,
        ours=ours_df,
        changes=changes,
        fused=fused,
        slivers=slivers,
    )


def _pair_geoms(
    inter: np.ndarray, ti: np.ndarray, oi: np.ndarray, pairs: pd.DataFrame, mask: np.ndarray
) -> list[object]:
    """The overlap geometry of each selected (sorted) pair, looked up by (foreign, ours)."""
    by_pair = {(int(t), int(o)): g for t, o, g in zip(ti, oi, inter, strict=True)}
    return [
        by_pair[(int(t), int(o))]
        for t, o, m in zip(pairs["_t"], pairs["_o"], mask, strict=True)
        if m
    ]
