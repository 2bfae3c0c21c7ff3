"""Deterministic demo district (石佛办事处, 郑州高新区 style): grids, roads, buildings, people,
a year of incidents and a week of GPS patrol tracks.

Everything is built in the metric CRS picked by :func:`gis.crs.metric_crs` and written in
EPSG:4326. Grids are convex quadrilaterals split top-down: the office outline is cut by a
bilinear lattice into communities (社区), each community is split along its long axis into
三级 grids and each of those into micro grids (微网格), so children tile their parent by
construction and every cut line is a road (grid boundaries follow streets, as in real
offices). Same seed, same bytes.

Run ``python -m data.generate OUT_DIR [--preset demo|fixture] [--seed N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Polygon

from data import names
from gis.crs import metric_crs

log = logging.getLogger(__name__)

GENERATOR_VERSION = "1"
TZ = ZoneInfo("Asia/Shanghai")
CENTRE = (113.55, 34.80)
STREET_CODE = "410171003"
Progress = Callable[[str, int, int], None]
Quad = np.ndarray  # (4, 2) corners, counter-clockwise


@dataclass(frozen=True)
class Preset:
    """Sizes of one district."""

    width_m: float
    height_m: float
    cols: int
    rows: int
    grids_per_community: tuple[int, ...]  # cycled over communities
    micro_per_grid: tuple[int, ...]  # cycled over 三级 grids
    dedicated: int
    stations: int
    incidents: int
    hotspots: int
    workers: int
    track_days: int


PRESETS: dict[str, Preset] = {
    # 15 communities: 10 × 7 + 5 × 6 = 100 三级; 100 三级: 19 × 7 + 81 × 6 = 619 micro.
    "demo": Preset(6000, 4200, 5, 3, (7, 7, 6), (7,) * 19 + (6,) * 81, 16, 20, 100_000, 6, 619, 7),
    "fixture": Preset(1400, 800, 2, 1, (2,), (5,), 2, 5, 2_000, 1, 8, 2),
}


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return a + (b - a) * t


def _bilinear(quad: Quad, u: float, v: float) -> np.ndarray:
    a, b, c, d = quad  # a=(0,0) b=(1,0) c=(1,1) d=(0,1)
    return _lerp(_lerp(a, b, u), _lerp(d, c, u), v)


def _split(quad: Quad, n: int, rng: np.random.Generator, cuts: list[np.ndarray]) -> list[Quad]:
    """Split a quadrilateral into ``n`` quads by cuts across its long axis; record the cuts."""
    if n == 1:
        return [quad]
    a, b, c, d = quad
    k = n // 2
    t = k / n + rng.uniform(-0.04, 0.04)
    if np.linalg.norm(b - a) + np.linalg.norm(c - d) >= np.linalg.norm(d - a) + np.linalg.norm(
        c - b
    ):
        p, q = _lerp(a, b, t), _lerp(d, c, t)
        first, second = np.array([a, p, q, d]), np.array([p, b, c, q])
    else:
        p, q = _lerp(a, d, t), _lerp(b, c, t)
        first, second = np.array([a, b, q, p]), np.array([p, q, c, d])
    cuts.append(np.array([p, q]))
    return _split(first, k, rng, cuts) + _split(second, n - k, rng, cuts)


def _poly(quad: Quad) -> Polygon:
    return Polygon(quad)


def generate_district(
    out_dir: Path,
    *,
    preset: Literal["demo", "fixture"] = "demo",
    seed: int = 20261122,
    progress: Progress | None = None,
) -> dict:
    """Write the district files into ``out_dir`` and return the manifest.

    Files: ``district.gpkg`` (layers grids, roads, compounds, buildings, stations, hotspots),
    ``incidents.csv``, ``staff.csv``, ``key_households.csv``, ``patrol_routes.csv``,
    ``tracks/worker_{staff_id}.gpx`` and ``manifest.json``.
    """
    step = progress or (lambda _s, _d, _t: None)
    p = PRESETS[preset]
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "tracks").mkdir(parents=True, exist_ok=True)
    for old in (out_dir / "tracks").glob("*.gpx"):
        old.unlink()
    crs = metric_crs(*CENTRE)
    to_wgs = Transformer.from_crs(crs, 4326, always_xy=True)
    cx, cy = Transformer.from_crs(4326, crs, always_xy=True).transform(*CENTRE)

    # ---- grids
    step("grids", 0, 4)
    w, h = p.width_m / 2, p.height_m / 2
    jit = rng.uniform(-0.04, 0.04, (4, 2)) * [p.width_m, p.height_m]
    office = np.array([[cx - w, cy - h], [cx + w, cy - h], [cx + w, cy + h], [cx - w, cy + h]])
    office = office + jit
    us = np.r_[0, np.sort(rng.uniform(0.9, 1.1, p.cols - 1) * np.arange(1, p.cols) / p.cols), 1]
    vs = np.r_[0, np.sort(rng.uniform(0.9, 1.1, p.rows - 1) * np.arange(1, p.rows) / p.rows), 1]
    rows: list[dict] = [
        {
            "code": STREET_CODE,
            "name": "石佛办事处",
            "level": "street",
            "parent_code": None,
            "kind": None,
            "quad": office,
        }
    ]
    street_cuts: list[np.ndarray] = []
    alley_cuts: list[np.ndarray] = []
    n_com = 0
    n_grid = 0
    for j in range(p.rows):
        for i in range(p.cols):
            quad = np.array(
                [
                    _bilinear(office, us[i], vs[j]),
                    _bilinear(office, us[i + 1], vs[j]),
                    _bilinear(office, us[i + 1], vs[j + 1]),
                    _bilinear(office, us[i], vs[j + 1]),
                ]
            )
            ccode = f"{STREET_CODE}{n_com + 1:03d}"
            cname = f"{names.COMMUNITIES[n_com % len(names.COMMUNITIES)]}社区"
            rows.append(
                {
                    "code": ccode,
                    "name": cname,
                    "level": "community",
                    "parent_code": STREET_CODE,
                    "kind": None,
                    "quad": quad,
                }
            )
            n_parts = p.grids_per_community[n_com % len(p.grids_per_community)]
            for gi, gq in enumerate(_split(quad, n_parts, rng, street_cuts)):
                gcode = f"{ccode}{gi + 1:02d}"
                rows.append(
                    {
                        "code": gcode,
                        "name": f"{cname}第{gi + 1}网格",
                        "level": "grid",
                        "parent_code": ccode,
                        "kind": None,
                        "quad": gq,
                    }
                )
                n_micro = p.micro_per_grid[n_grid % len(p.micro_per_grid)]
                for mi, mq in enumerate(_split(gq, n_micro, rng, alley_cuts)):
                    rows.append(
                        {
                            "code": f"{gcode}{mi + 1:02d}",
                            "name": f"{cname}第{gi + 1}网格-{mi + 1}",
                            "level": "micro",
                            "parent_code": gcode,
                            "kind": None,
                            "quad": mq,
                        }
                    )
                n_grid += 1
            n_com += 1
    grid_df = pd.DataFrame(rows)
    micro = grid_df[grid_df["level"] == "micro"].reset_index(drop=True)
    micro_poly = [_poly(q) for q in micro["quad"]]
    step("grids", 1, 4)

    # ---- roads (noded): lattice lines are arterials, the office's south side is a motorway
    lines: list[tuple[LineString, str, str]] = []
    names_iter = iter(names.ARTERIALS * 4)
    for u in us:
        lines.append(
            (
                LineString([_bilinear(office, u, 0), _bilinear(office, u, 1)]),
                next(names_iter),
                "arterial",
            )
        )
    for k, v in enumerate(vs):
        kind, name = ("motorway", names.MOTORWAY) if k == 0 else ("arterial", next(names_iter))
        lines.append((LineString([_bilinear(office, 0, v), _bilinear(office, 1, v)]), name, kind))
    stems = names.STREET_STEMS
    for k, cut in enumerate(street_cuts):
        lines.append(
            (LineString(cut), f"{stems[k % len(stems)]}{'路街'[k // len(stems) % 2]}", "street")
        )
    for k, cut in enumerate(alley_cuts):
        lines.append(
            (LineString(cut), f"{stems[(k * 7) % len(stems)]}{k // len(stems) + 1}巷", "alley")
        )
    source = gpd.GeoDataFrame(
        {"name": [n for _, n, _ in lines], "kind": [k for _, _, k in lines]},
        geometry=[g for g, _, _ in lines],
        crs=crs,
    )
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(source.geometry.values)))
    mids = shapely.line_interpolate_point(noded, 0.5, normalized=True)
    tree = shapely.STRtree(source.geometry.values)
    pairs = tree.query_nearest(mids, return_distance=False, all_matches=False)
    src_idx = pairs[1][np.argsort(pairs[0])]
    roads = gpd.GeoDataFrame(
        {
            "road_id": np.arange(1, len(noded) + 1),
            "name": source["name"].values[src_idx],
            "kind": source["kind"].values[src_idx],
        },
        geometry=noded,
        crs=crs,
    )
    roads = roads[roads.length > 0.5].reset_index(drop=True)
    roads["road_id"] = np.arange(1, len(roads) + 1)
    step("grids", 2, 4)

    # ---- compounds, buildings, households
    residential = rng.random(len(micro)) > 0.05
    comp_names = [f"{s}{x}" for x in names.COMPOUND_SUFFIXES for s in names.COMPOUND_STEMS]
    order = rng.permutation(len(comp_names))
    named_roads = source[source["kind"].isin(["arterial", "street"])].reset_index(drop=True)
    road_tree = shapely.STRtree(named_roads.geometry.values)
    next_number: dict[str, int] = {}
    compounds: list[dict] = []
    buildings: list[dict] = []
    micro_hh = np.zeros(len(micro), dtype=int)
    micro_res = np.zeros(len(micro), dtype=int)
    for _gcode, idx in micro.groupby("parent_code", sort=True).groups.items():
        idx = list(idx)
        n_comp = min(len(idx), int(rng.integers(1, 4)))
        groups = np.array_split(np.array(idx), n_comp)
        for grp in groups:
            res = [m for m in grp if residential[m]]
            if not res:
                continue
            cname = comp_names[order[len(compounds) % len(comp_names)]]
            geom = shapely.union_all([micro_poly[m] for m in res]).buffer(-3)
            centre = geom.centroid
            road = named_roads["name"].iloc[int(road_tree.nearest(centre))]
            parity = len(compounds) % 2
            number = next_number.get(road, 1 + parity)
            next_number[road] = number + 2 + (1 if number % 2 != parity else 0)
            compounds.append(
                {
                    "compound_id": len(compounds) + 1,
                    "name": cname,
                    "micro_codes": ",".join(micro["code"].iloc[res]),
                    "geometry": geom,
                }
            )
            bno = 0
            for m in res:
                target = int(rng.integers(30, 81))
                inset = micro_poly[m].buffer(-10)
                x0, y0, x1, y1 = inset.bounds
                slots = [
                    (x, y) for x in np.arange(x0, x1 - 40, 55) for y in np.arange(y0, y1 - 14, 35)
                ]
                rng.shuffle(slots)
                left = target
                for x, y in slots:
                    if left <= 0:
                        break
                    bw, bh = float(rng.uniform(20, 45)), float(rng.uniform(10, 14))
                    rect = shapely.box(x, y, x + bw, y + bh)
                    if not inset.contains(rect):
                        continue
                    floors = int(rng.choice([6, 6, 7, 11, 18]))
                    units = int(rng.integers(1, 4))
                    hh = min(left, max(6, units * floors * 2 // (3 if floors > 7 else 2)))
                    hh = left if left - hh < 6 else hh
                    bno += 1
                    residents = round(hh * rng.uniform(2.3, 2.9))
                    buildings.append(
                        {
                            "building_id": len(buildings) + 1,
                            "compound_name": cname,
                            "road_name": road,
                            "house_number": number,
                            "building_no": bno,
                            "units": units,
                            "floors": floors,
                            "households": hh,
                            "residents": residents,
                            "address": f"{road}{number}号 {cname}{bno}号楼",
                            "micro_code": micro["code"].iloc[m],
                            "geometry": rect,
                        }
                    )
                    micro_hh[m] += hh
                    micro_res[m] += residents
                    left -= hh
    bdf = gpd.GeoDataFrame(buildings, geometry="geometry", crs=crs)
    step("grids", 3, 4)

    # ---- households up the hierarchy, dedicated grids
    hh_by_code = dict(zip(micro["code"], micro_hh, strict=True))
    res_by_code = dict(zip(micro["code"], micro_res, strict=True))
    for level in ("grid", "community", "street"):
        for rec in grid_df[grid_df["level"] == level].itertuples():
            kids = grid_df[grid_df["parent_code"] == rec.code]["code"]
            hh_by_code[rec.code] = int(sum(hh_by_code[k] for k in kids))
            res_by_code[rec.code] = int(sum(res_by_code[k] for k in kids))
    geoms = [_poly(q) for q in grid_df["quad"]]
    picks = rng.choice(len(micro), size=p.dedicated, replace=False)
    for k, m in enumerate(sorted(picks)):
        kind, dname = names.DEDICATED[k % len(names.DEDICATED)]
        shrunk = micro_poly[m].buffer(-float(rng.uniform(10, 20)), join_style="mitre")
        hh = int(bdf.loc[bdf["micro_code"] == micro["code"].iloc[m], "households"].sum())
        rs = int(bdf.loc[bdf["micro_code"] == micro["code"].iloc[m], "residents"].sum())
        code = f"{STREET_CODE}9{k + 1:02d}"
        grid_df.loc[len(grid_df)] = {
            "code": code,
            "name": f"{dname}专属网格",
            "level": "dedicated",
            "parent_code": STREET_CODE,
            "kind": kind,
            "quad": None,
        }
        geoms.append(shrunk)
        hh_by_code[code], res_by_code[code] = hh, rs
    grids = gpd.GeoDataFrame(
        grid_df.drop(columns="quad").assign(
            households=[hh_by_code[c] for c in grid_df["code"]],
            residents=[res_by_code[c] for c in grid_df["code"]],
        ),
        geometry=[MultiPolygon([g]) for g in geoms],
        crs=crs,
    )
    step("grids", 4, 4)

    # ---- stations and key households
    pick = rng.choice(len(bdf), size=min(p.stations, len(bdf)), replace=False)
    stations = gpd.GeoDataFrame(
        {
            "station_id": np.arange(1, len(pick) + 1),
            "kind": [names.STATION_KINDS[k % 5] for k in range(len(pick))],
            "name": [
                f"{bdf['compound_name'].iloc[b]}{names.STATION_KINDS[k % 5]}"
                for k, b in enumerate(pick)
            ],
            "address": [f"{bdf['road_name'].iloc[b]}{bdf['house_number'].iloc[b]}号" for b in pick],
        },
        # a station stands at the corner of a building, a few metres out towards the street
        geometry=[g.exterior.interpolate(0.0) for g in bdf.geometry.values[pick]],
        crs=crs,
    )
    stations["geometry"] = stations.geometry.translate(-4.0, -4.0)
    n_key = max(8, int(bdf["households"].sum() * 0.03))
    weights = bdf["households"].to_numpy(float) / bdf["households"].sum()
    key_b = rng.choice(len(bdf), size=n_key, p=weights)
    key = pd.DataFrame(
        {
            "household_id": np.arange(1, n_key + 1),
            "building_id": bdf["building_id"].to_numpy()[key_b],
            "unit": [int(rng.integers(1, u + 1)) for u in bdf["units"].to_numpy()[key_b]],
            "room": [
                f"{int(rng.integers(1, f + 1))}0{int(rng.integers(1, 5))}"
                for f in bdf["floors"].to_numpy()[key_b]
            ],
            "kind": rng.choice(names.KEY_KINDS, size=n_key),
            "name": [_person(rng) for _ in range(n_key)],
            "phone": [
                f"1{int(rng.integers(30, 90))}{int(rng.integers(0, 10**8)):08d}"
                for _ in range(n_key)
            ],
        }
    )

    # ---- incidents and hotspots
    step("incidents", 0, 1)
    incidents, hotspots = _incidents(p, rng, bdf, micro, micro_poly, roads, office, crs)
    step("incidents", 1, 1)

    # ---- staff and tracks
    staff, routes, n_points = _staff_and_tracks(
        p, rng, grids, micro, micro_poly, bdf, key, out_dir, to_wgs, step
    )

    # ---- write
    def wgs(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        return frame.to_crs(4326)

    gpkg = out_dir / "district.gpkg"
    gpkg.unlink(missing_ok=True)
    wgs(grids).to_file(gpkg, layer="grids", driver="GPKG")
    wgs(roads).to_file(gpkg, layer="roads", driver="GPKG")
    wgs(gpd.GeoDataFrame(compounds, geometry="geometry", crs=crs)).to_file(
        gpkg, layer="compounds", driver="GPKG"
    )
    wgs(bdf).to_file(gpkg, layer="buildings", driver="GPKG")
    wgs(stations).to_file(gpkg, layer="stations", driver="GPKG")
    wgs(hotspots).to_file(gpkg, layer="hotspots", driver="GPKG")
    incidents.to_csv(out_dir / "incidents.csv", index=False, float_format="%.7f")
    staff.to_csv(out_dir / "staff.csv", index=False)
    key.to_csv(out_dir / "key_households.csv", index=False)
    routes.to_csv(out_dir / "patrol_routes.csv", index=False)
    bounds = wgs(grids).total_bounds
    counts = {
        "communities": int((grids["level"] == "community").sum()),
        "grids": int((grids["level"] == "grid").sum()),
        "micro_grids": int((grids["level"] == "micro").sum()),
        "dedicated_grids": int((grids["level"] == "dedicated").sum()),
        "roads": len(roads),
        "compounds": len(compounds),
        "buildings": len(bdf),
        "stations": len(stations),
        "staff": len(staff),
        "incidents": len(incidents),
        "key_households": len(key),
        "households": int(bdf["households"].sum()),
        "residents": int(bdf["residents"].sum()),
        "track_files": len(list((out_dir / "tracks").glob("*.gpx"))),
    }
    files = sorted(f for f in out_dir.rglob("*") if f.is_file() and f.name != "manifest.json")
    manifest = {
        "preset": preset,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "counts": counts,
        "total_track_points": n_points,
        "bbox": [round(float(v), 7) for v in bounds],
        "sizes": {
            "total_bytes": sum(f.stat().st_size for f in files),
            **{f.name: f.stat().st_size for f in files if f.parent == out_dir},
        },
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    log.info("generated %s district in %s: %s", preset, out_dir, counts)
    return manifest


def _person(rng: np.random.Generator) -> str:
    n = int(rng.integers(1, 3))
    return str(rng.choice(names.SURNAMES)) + "".join(rng.choice(names.GIVEN, size=n))


def _incidents(
    p: Preset,
    rng: np.random.Generator,
    bdf: gpd.GeoDataFrame,
    micro: pd.DataFrame,
    micro_poly: list[Polygon],
    roads: gpd.GeoDataFrame,
    office: Quad,
    crs: object,
) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """A year of incidents: around buildings by households, on streets, a few outside, and
    planted hotspots (a category crowding 1-3 adjacent micro grids for some weeks)."""
    n = p.incidents
    cats = [c for c, _ in names.CATEGORIES]
    cw = np.array([w for _, w in names.CATEGORIES], float)
    srcs = [s for s, _ in names.SOURCES]
    sw = np.array([w for _, w in names.SOURCES], float)
    start = datetime(2025, 11, 1, tzinfo=TZ)
    n_hot = int(n * 0.06) if p.hotspots else 0
    n_out = int(n * 0.01)
    n_road = int(n * 0.14)
    n_bld = n - n_hot - n_out - n_road
    centres = shapely.centroid(bdf.geometry.values)
    bx, by = shapely.get_x(centres), shapely.get_y(centres)
    w = bdf["households"].to_numpy(float)
    b_pick = rng.choice(len(bdf), size=n_bld, p=w / w.sum())
    x = [bx[b_pick] + rng.normal(0, 6, n_bld)]
    y = [by[b_pick] + rng.normal(0, 6, n_bld)]
    addr = [bdf["address"].to_numpy()[b_pick]]
    cat = [rng.choice(cats, size=n_bld, p=cw / cw.sum())]
    day = [rng.integers(0, 365, n_bld)]
    r_pick = rng.integers(0, len(roads), n_road)
    pts = shapely.line_interpolate_point(
        roads.geometry.values[r_pick], rng.random(n_road), normalized=True
    )
    x.append(shapely.get_x(pts))
    y.append(shapely.get_y(pts))
    addr.append(np.full(n_road, "", dtype=object))
    cat.append(rng.choice(["乱停车", "占道经营", "市政设施", "环境卫生"], size=n_road))
    day.append(rng.integers(0, 365, n_road))
    ox0, oy0 = office.min(axis=0)
    ox1, oy1 = office.max(axis=0)
    side = rng.integers(0, 4, n_out)
    ux = np.where(
        side == 0,
        ox0 - rng.uniform(20, 300, n_out),
        np.where(side == 1, ox1 + rng.uniform(20, 300, n_out), rng.uniform(ox0, ox1, n_out)),
    )
    uy = np.where(
        side == 2,
        oy0 - rng.uniform(20, 300, n_out),
        np.where(side == 3, oy1 + rng.uniform(20, 300, n_out), rng.uniform(oy0, oy1, n_out)),
    )
    x.append(ux)
    y.append(uy)
    addr.append(np.full(n_out, "", dtype=object))
    cat.append(rng.choice(cats, size=n_out, p=cw / cw.sum()))
    day.append(rng.integers(0, 365, n_out))
    hot_rows = []
    tree = shapely.STRtree(micro_poly)
    per = n_hot // max(p.hotspots, 1)
    seeds = rng.choice(len(micro), size=p.hotspots, replace=False)
    for k, m in enumerate(seeds):
        near = [int(i) for i in tree.query(micro_poly[m], predicate="touches")][
            : int(rng.integers(0, 3))
        ]
        cells = [int(m), *near]
        codes = micro["code"].iloc[cells].tolist()
        in_cells = np.flatnonzero(bdf["micro_code"].isin(codes).to_numpy())
        hcat = cats[(k * 3) % len(cats)]
        d0 = int(rng.integers(30, 300))
        weeks = int(rng.integers(6, 10))
        if len(in_cells):
            b = rng.choice(in_cells, size=per)
            hx, hy = bx[b] + rng.normal(0, 8, per), by[b] + rng.normal(0, 8, per)
            hadr = bdf["address"].to_numpy()[b]
        else:
            c = micro_poly[m].centroid
            hx, hy = c.x + rng.normal(0, 20, per), c.y + rng.normal(0, 20, per)
            hadr = np.full(per, "", dtype=object)
        x.append(hx)
        y.append(hy)
        addr.append(hadr)
        cat.append(np.full(per, hcat, dtype=object))
        day.append(d0 + rng.integers(0, weeks * 7, per))
        union = shapely.union_all([micro_poly[i] for i in cells])
        c = union.centroid
        hot_rows.append(
            {
                "hotspot_id": k + 1,
                "category": hcat,
                "start": (start + timedelta(days=d0)).date().isoformat(),
                "end": (start + timedelta(days=d0 + weeks * 7)).date().isoformat(),
                "radius_m": round(float(np.sqrt(union.area / np.pi)), 1),
                "micro_codes": ",".join(codes),
                "geometry": c,
            }
        )
    fx, fy = np.concatenate(x), np.concatenate(y)
    total = len(fx)
    lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(fx, fy)
    hours = rng.choice(24, size=total, p=_diurnal())
    secs = rng.integers(0, 3600, total)
    days = np.concatenate(day) % 365
    when = [
        start + timedelta(days=int(d), hours=int(hh), seconds=int(s))
        for d, hh, s in zip(days, hours, secs, strict=True)
    ]
    source = rng.choice(srcs, size=total, p=sw / sw.sum())
    addresses = np.concatenate(addr)
    addresses = np.where(np.isin(source, ["热线", "12345", "公众号"]), addresses, "")
    categories = np.concatenate(cat)
    frame = pd.DataFrame(
        {
            "category": categories,
            "source": source,
            "description": [names.DESCRIPTIONS.get(c, c) for c in categories],
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
            "address": addresses,
            "reported_at": [t.isoformat() for t in when],
        }
    )
    frame = frame.iloc[np.lexsort((np.arange(total), frame["reported_at"].to_numpy()))]
    frame.insert(0, "ext_id", [f"DEMO-{i + 1:06d}" for i in range(total)])
    hot = (
        gpd.GeoDataFrame(hot_rows, geometry="geometry", crs=crs)
        if hot_rows
        else gpd.GeoDataFrame(
            columns=[
                "hotspot_id",
                "category",
                "start",
                "end",
                "radius_m",
                "micro_codes",
                "geometry",
            ],
            geometry="geometry",
            crs=crs,
        )
    )
    return frame.reset_index(drop=True), hot


def _diurnal() -> np.ndarray:
    w = np.array([1, 1, 1, 1, 1, 2, 4, 7, 9, 10, 10, 9, 8, 8, 9, 9, 9, 9, 10, 9, 7, 5, 3, 2], float)
    return w / w.sum()


def _staff_and_tracks(
    p: Preset,
    rng: np.random.Generator,
    grids: gpd.GeoDataFrame,
    micro: pd.DataFrame,
    micro_poly: list[Polygon],
    bdf: gpd.GeoDataFrame,
    key: pd.DataFrame,
    out_dir: Path,
    to_wgs: Transformer,
    step: Progress,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Grid leaders (网格长) per 三级 grid and grid workers (网格员) per micro grid, each worker
    walking their grid's boundary streets daily with GPS noise, dropouts and outliers."""
    staff_rows = []
    for rec in grids[grids["level"] == "grid"].itertuples():
        staff_rows.append({"name": _person(rng), "role": "网格长", "grid_codes": rec.code})
    workers = []
    for m in range(min(p.workers, len(micro))):
        staff_rows.append(
            {"name": _person(rng), "role": "网格员", "grid_codes": micro["code"].iloc[m]}
        )
        workers.append(m)
    staff = pd.DataFrame(staff_rows)
    staff.insert(0, "staff_id", np.arange(1, len(staff) + 1))
    staff["phone"] = [
        f"1{int(rng.integers(30, 90))}{int(rng.integers(0, 10**8)):08d}" for _ in range(len(staff))
    ]
    worker_ids = staff.loc[staff["role"] == "网格员", "staff_id"].to_numpy()
    key_by_micro = key.merge(bdf[["building_id", "micro_code"]], on="building_id")
    centres = {int(b): g.centroid for b, g in zip(bdf["building_id"], bdf.geometry, strict=True)}
    week0 = datetime(2026, 10, 26, tzinfo=TZ)
    routes = []
    total = 0
    for n, (m, sid) in enumerate(zip(workers, worker_ids, strict=True)):
        ring = micro_poly[m].exterior
        keys = key_by_micro[key_by_micro["micro_code"] == micro["code"].iloc[m]]
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="wangge '
            'demo" xmlns="http://www.topografix.com/GPX/1/1">\n'
        ]
        for d in range(p.track_days):
            t0 = week0 + timedelta(days=d, hours=8, seconds=int(rng.integers(0, 7200)))
            dur = float(rng.uniform(30, 90)) * 60
            length = dur * 1.3
            s0 = float(rng.uniform(0, ring.length))
            dist = (s0 + np.arange(0, length, 13.0)) % ring.length
            pts = shapely.line_interpolate_point(ring, dist)
            xs, ys = shapely.get_x(pts), shapely.get_y(pts)
            visited: list[int] = []
            if len(keys) and rng.random() < 0.6:
                hh = keys.iloc[int(rng.integers(0, len(keys)))]
                c = centres[int(hh["building_id"])]
                at = int(rng.integers(0, len(xs)))
                dwell = int(rng.integers(30, 61))  # 5-10 min of 10 s fixes
                xs = np.r_[xs[:at], np.full(dwell, c.x), xs[at:]]
                ys = np.r_[ys[:at], np.full(dwell, c.y), ys[at:]]
                visited.append(int(hh["household_id"]))
            true = LineString(np.c_[xs, ys]) if len(xs) > 1 else None
            nx = xs + rng.normal(0, 5, len(xs))
            ny = ys + rng.normal(0, 5, len(ys))
            jump = rng.random(len(xs)) < 1 / 2000
            ang = rng.uniform(0, 2 * np.pi, len(xs))
            mag = rng.uniform(100, 500, len(xs))
            nx = np.where(jump, nx + mag * np.cos(ang), nx)
            ny = np.where(jump, ny + mag * np.sin(ang), ny)
            times = [t0 + timedelta(seconds=10 * i) for i in range(len(xs))]
            keep = np.ones(len(xs), bool)
            seg_break = np.zeros(len(xs), bool)
            if rng.random() < 0.3 and len(xs) > 60:
                a = int(rng.integers(10, len(xs) - 40))
                b = a + int(rng.integers(6, 31))
                keep[a:b] = False
                seg_break[b] = True
            lon, lat = to_wgs.transform(nx, ny)
            parts.append(f"<trk><name>{t0.date().isoformat()}</name><trkseg>\n")
            for i in np.flatnonzero(keep):
                if seg_break[i]:
                    parts.append("</trkseg><trkseg>\n")
                parts.append(
                    f'<trkpt lat="{lat[i]:.7f}" lon="{lon[i]:.7f}"><time>'
                    f"{times[i].isoformat()}</time></trkpt>\n"
                )
            parts.append("</trkseg></trk>\n")
            total += int(keep.sum())
            if true is not None:
                tl = shapely.transform(true, lambda c: np.c_[to_wgs.transform(c[:, 0], c[:, 1])])
                routes.append(
                    {
                        "staff_id": int(sid),
                        "date": t0.date().isoformat(),
                        "wkt": shapely.to_wkt(tl, rounding_precision=7),
                        "visited_household_ids": ";".join(map(str, visited)),
                    }
                )
        parts.append("</gpx>\n")
        (out_dir / "tracks" / f"worker_{int(sid)}.gpx").write_text("".join(parts))
        step("tracks", n + 1, len(workers))
    return staff, pd.DataFrame(routes), total


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    manifest = generate_district(args.out_dir, preset=args.preset, seed=args.seed)
    print(json.dumps(manifest["counts"], ensure_ascii=False))


if __name__ == "__main__":
    main()
