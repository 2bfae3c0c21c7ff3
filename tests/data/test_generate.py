"""The demo-district generator, checked on the tiny fixture preset (built once per module)."""

from __future__ import annotations

import hashlib
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from data.generate import STREET_CODE, generate_district
from gis.crs import metric_crs
from gis.grids import check_hierarchy

SEED = 20261122
METRIC = metric_crs(113.55, 34.80)
GPX = "{http://www.topografix.com/GPX/1/1}"
LAYERS = ("grids", "roads", "compounds", "buildings", "stations", "hotspots")
CATEGORIES = {
    "矛盾纠纷", "环境卫生", "噪音扰民", "管道滴漏", "电梯故障", "乱停车", "物业纠纷",
    "高空抛物", "乱晾晒", "占道经营", "违章搭建", "市政设施", "消防隐患", "宣传广告",
}  # fmt: skip
SOURCES = {"巡查", "热线", "12345", "公众号", "随手拍"}


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fixture_district")
    generate_district(out, preset="fixture", seed=SEED)
    return out


@pytest.fixture(scope="module")
def layers(district: Path) -> dict[str, gpd.GeoDataFrame]:
    """Every layer of the GeoPackage, reprojected to the metric CRS."""
    out = {}
    for name in LAYERS:
        frame = gpd.read_file(district / "district.gpkg", layer=name)
        assert frame.crs.to_epsg() == 4326, name
        out[name] = frame.to_crs(METRIC)
    return out


@pytest.fixture(scope="module")
def incidents(district: Path) -> pd.DataFrame:
    return pd.read_csv(district / "incidents.csv", dtype=str, keep_default_na=False)


def _tree_hash(folder: Path) -> dict[str, str]:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


# ----------------------------------------------------------------------------- grids


def test_fixture_counts_are_exact(district: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    levels = layers["grids"]["level"].value_counts().to_dict()
    assert levels == {"street": 1, "community": 2, "grid": 4, "micro": 20, "dedicated": 2}
    assert len(layers["stations"]) == 5
    assert len(layers["hotspots"]) == 1
    assert 120 <= len(layers["buildings"]) <= 190  # about 150
    staff = pd.read_csv(district / "staff.csv", dtype=str)
    assert staff["role"].value_counts().to_dict() == {"网格长": 4, "网格员": 8}
    assert len(list((district / "tracks").glob("worker_*.gpx"))) == 8
    manifest = json.loads((district / "manifest.json").read_text(encoding="utf-8"))
    counts = manifest["counts"]
    assert counts["incidents"] == 2000
    assert counts["micro_grids"] == 20 and counts["buildings"] == len(layers["buildings"])
    assert counts["roads"] == len(layers["roads"]) and counts["staff"] == len(staff)
    for name, size in manifest["sizes"].items():
        if name != "tracks":
            assert (district / name).stat().st_size == size, name


@pytest.mark.parametrize(
    ("child", "parent"), [("community", "street"), ("grid", "community"), ("micro", "grid")]
)
def test_children_tile_their_parent(
    layers: dict[str, gpd.GeoDataFrame], child: str, parent: str
) -> None:
    grids = layers["grids"].set_index("code")
    parents = grids[grids["level"] == parent]
    kids = grids[grids["level"] == child]
    assert set(kids["parent_code"]) == set(parents.index)
    for code, group in kids.groupby("parent_code"):
        whole = parents.loc[code, "geometry"]
        parts = group.geometry.to_numpy()
        union = shapely.union_all(parts)
        assert shapely.symmetric_difference(union, whole).area < 0.01, code
        # sibling overlaps: the sum of the areas exceeds the union's by the overlapping area
        assert float(shapely.area(parts).sum()) - union.area < 0.01, code


def test_geometries_are_valid_multipolygons(layers: dict[str, gpd.GeoDataFrame]) -> None:
    grids = layers["grids"]
    assert shapely.is_valid(grids.geometry.values).all()
    assert set(grids.geom_type) == {"MultiPolygon"}
    for name in ("buildings", "compounds"):
        assert shapely.is_valid(layers[name].geometry.values).all(), name
    assert report_is_clean(grids)


def report_is_clean(grids: gpd.GeoDataFrame) -> bool:
    report = check_hierarchy(grids)
    assert report.empty, report[["kind", "level", "grids", "detail"]].to_string()
    return True


def test_dedicated_grids_overlap_the_hierarchy_but_not_each_other(
    layers: dict[str, gpd.GeoDataFrame],
) -> None:
    grids = layers["grids"]
    office = grids.loc[grids["level"] == "street", "geometry"].iloc[0]
    micro = grids[grids["level"] == "micro"]
    ded = grids[grids["level"] == "dedicated"]
    assert set(ded["kind"]) <= {"school", "market", "hospital", "business"}
    assert grids.loc[grids["level"] != "dedicated", "kind"].isna().all()
    assert (ded["parent_code"] == STREET_CODE).all()
    geoms = ded.geometry.to_numpy()
    for i, g in enumerate(geoms):
        assert office.contains(g)
        assert micro.intersects(g).any()
        for h in geoms[i + 1 :]:
            assert g.intersection(h).area < 0.01
    # shrunk 10-20 m from the micro grid(s) they cover: no dedicated edge on a road
    assert (ded.geometry.area > 2_000).all()


def test_codes_and_names_follow_the_scheme(layers: dict[str, gpd.GeoDataFrame]) -> None:
    grids = layers["grids"].set_index("code", drop=False)
    assert grids["code"].is_unique
    pattern = {
        "street": r"^410171\d{3}$",
        "community": r"^410171\d{3}[0-8]\d{2}$",
        "grid": r"^\d{14}$",
        "micro": r"^\d{16}$",
        "dedicated": r"^410171\d{3}9\d{2}$",
    }
    for rec in grids.itertuples(index=False):
        assert re.match(pattern[rec.level], rec.code), rec.code
        if rec.level == "street":
            assert pd.isna(rec.parent_code) and rec.name == "石佛办事处"
            continue
        parent = grids.loc[rec.parent_code]
        assert rec.code.startswith(rec.parent_code)
        seq = int(rec.code[len(rec.parent_code) :])
        if rec.level == "community":
            assert rec.name.endswith("社区") and 1 <= seq <= 899
        elif rec.level == "grid":
            assert rec.name == f"{parent['name']}第{seq}网格"
        elif rec.level == "micro":
            assert rec.name == f"{parent['name']}-{seq}"
        else:
            assert parent["level"] == "street" and rec.name.endswith("专属网格")
    for level in ("community", "grid", "micro", "dedicated"):  # sequences 1..n under a parent
        group = grids[grids["level"] == level]
        for parent_code, kids in group.groupby("parent_code"):
            seqs = sorted(int(c[len(parent_code) :]) % 900 for c in kids["code"])
            assert seqs == list(range(1, len(seqs) + 1)), parent_code


# ----------------------------------------------------------------------------- buildings


def test_buildings_sit_inside_exactly_one_micro_grid(layers: dict[str, gpd.GeoDataFrame]) -> None:
    b = layers["buildings"]
    micro = layers["grids"][layers["grids"]["level"] == "micro"].reset_index(drop=True)
    tree = shapely.STRtree(micro.geometry.values)
    bi, mi = tree.query(b.geometry.values, predicate="intersects")
    hits = pd.Series(mi).groupby(bi).agg(list)
    assert len(hits) == len(b)
    for i, ms in hits.items():
        assert len(ms) == 1, b["address"].iloc[i]
        assert micro.geometry.iloc[ms[0]].contains(b.geometry.iloc[i])
        assert micro["code"].iloc[ms[0]] == b["micro_code"].iloc[i]
    # no two buildings touch, and footprints are 15-60 m by 10-15 m
    left, right = shapely.STRtree(b.geometry.values).query(b.geometry.values, "intersects")
    assert (left == right).all()
    env = shapely.oriented_envelope(b.geometry.values)
    sides = np.array([np.hypot(*np.diff(np.asarray(e.exterior.coords)[:3], axis=0).T) for e in env])
    assert (sides.max(axis=1) <= 60.01).all() and (sides.max(axis=1) >= 14.99).all()
    assert (sides.min(axis=1) <= 15.01).all() and (sides.min(axis=1) >= 9.99).all()


def test_households_add_up_the_hierarchy(layers: dict[str, gpd.GeoDataFrame]) -> None:
    grids = layers["grids"].set_index("code")
    b = layers["buildings"]
    micro = grids[grids["level"] == "micro"]
    by_micro = b.groupby("micro_code")[["households", "residents"]].sum()
    for col in ("households", "residents"):
        expect = by_micro[col].reindex(micro.index, fill_value=0)
        assert (micro[col] == expect).all(), col
        for level in ("grid", "community", "street"):
            parents = grids[grids["level"] == level]
            kids = grids[grids["parent_code"].isin(parents.index) & (grids["level"] != "dedicated")]
            sums = kids.groupby("parent_code")[col].sum()
            assert (parents[col] == sums.reindex(parents.index)).all(), (col, level)
    residential = micro["households"] > 0
    assert micro.loc[residential, "households"].between(30, 80).all()
    assert 1 <= (~residential).sum() <= 4  # about 10 % parks and commercial blocks
    assert grids.loc[grids["level"] == "grid", "households"].between(300, 500).all()
    assert 2.4 <= b["residents"].sum() / b["households"].sum() <= 2.8
    # dedicated grids carry the households of the buildings whose centre they hold
    centres = b.geometry.centroid
    for code, rec in grids[grids["level"] == "dedicated"].iterrows():
        inside = centres.within(rec.geometry)
        assert rec["households"] == b.loc[inside, "households"].sum(), code
    # units and floors leave room for every household (一梯两户)
    assert (b["households"] <= 2 * b["units"] * b["floors"]).all()
    assert b["units"].between(1, 6).all() and (b["floors"] >= 2).all()


def test_addresses_follow_the_format(layers: dict[str, gpd.GeoDataFrame]) -> None:
    b = layers["buildings"]
    roads = layers["roads"]
    for rec in b.itertuples(index=False):
        expect = f"{rec.road_name}{rec.house_number}号 {rec.compound_name}{rec.building_no}号楼"
        assert rec.address == expect
        assert re.fullmatch(
            r"(.+(路|街|大道)|西四环)\d+号 .+(小区|苑|园|村|寓|庭|居)\d+号楼", rec.address
        )
    assert b["address"].is_unique and b["building_id"].is_unique
    gates = b.groupby(["road_name", "house_number"])["compound_name"].nunique()
    assert (gates == 1).all()
    for _, nos in b.groupby("compound_name")["building_no"]:
        assert sorted(nos) == list(range(1, len(nos) + 1))
    # the road of an address is the nearest street or arterial
    named = roads[roads["kind"].isin(["street", "arterial"])].reset_index(drop=True)
    nearest = shapely.STRtree(named.geometry.values).nearest(b.geometry.centroid.values)
    assert (named["name"].to_numpy()[nearest] == b["road_name"].to_numpy()).all()


def test_compounds_hold_their_buildings(layers: dict[str, gpd.GeoDataFrame]) -> None:
    comp = layers["compounds"]
    b = layers["buildings"]
    assert comp["name"].is_unique
    codes = [c for row in comp["micro_codes"] for c in row.split(",")]
    assert len(codes) == len(set(codes))
    assert set(codes) == set(b["micro_code"])
    for rec in comp.itertuples(index=False):
        mine = b[b["compound_name"] == rec.name]
        assert len(mine) > 0 and rec.geometry.contains(shapely.union_all(mine.geometry.values))
        assert set(mine["micro_code"]) <= set(rec.micro_codes.split(","))


def test_key_households_and_stations(district: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    key = pd.read_csv(district / "key_households.csv", dtype={"phone": str, "room": str})
    b = layers["buildings"].set_index("building_id")
    assert abs(len(key) - 0.03 * b["households"].sum()) <= 1
    assert not key.duplicated(["building_id", "unit", "room"]).any()
    assert set(key["kind"]) <= {"独居老人", "残疾户", "大病户", "低保户", "留守儿童"}
    assert key["phone"].str.fullmatch(r"1[3-9]\d{9}").all()
    units = b.loc[key["building_id"], "units"].to_numpy()
    floors = b.loc[key["building_id"], "floors"].to_numpy()
    assert (key["unit"].to_numpy() <= units).all()
    assert (key["room"].str[:-2].astype(int).to_numpy() <= floors).all()
    st = layers["stations"]
    office = layers["grids"].loc[layers["grids"]["level"] == "street", "geometry"].iloc[0]
    assert st["name"].is_unique and st.within(office).all()
    assert not st.intersects(shapely.union_all(layers["buildings"].geometry.values)).any()
    assert set(st["kind"]) <= {
        "党群服务中心",
        "便民服务站",
        "养老服务站",
        "网格服务站",
        "卫生服务站",
    }
    named = layers["roads"][layers["roads"]["kind"].isin(["street", "arterial"])]
    for rec in st.itertuples(index=False):
        road = re.fullmatch(r"(.+?)(\d+)号", rec.address).group(1)
        assert named[named["name"] == road].distance(rec.geometry).min() < 15.0
    # a station's number is not a compound's gate on the same road
    gates = set(
        zip(layers["buildings"]["road_name"], layers["buildings"]["house_number"], strict=True)
    )
    for addr in st["address"]:
        road, num = re.fullmatch(r"(.+?)(\d+)号", addr).groups()
        assert (road, int(num)) not in gates


# ----------------------------------------------------------------------------- roads


def test_roads_are_noded_named_and_typed(district: Path) -> None:
    roads = gpd.read_file(district / "district.gpkg", layer="roads")  # in degrees, as stored
    assert set(roads.geom_type) == {"LineString"}
    assert set(roads["kind"]) == {"arterial", "street", "alley", "footway", "motorway"}
    assert roads["road_id"].is_unique
    named = roads[roads["kind"] != "footway"]
    assert named["name"].notna().all() and (named["name"].str.len() > 1).all()
    assert named.loc[named["kind"] == "alley", "name"].str.contains("巷|胡同|内部道路").all()
    assert named.loc[named["kind"] == "street", "name"].str.contains("[路街]$").all()
    assert (roads.to_crs(METRIC).length > 0.01).all()  # no degenerate pieces
    geoms = roads.geometry.to_numpy()
    ends = [np.asarray(g.coords)[[0, -1]] for g in geoms]
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    for i, j in zip(left[pairs], right[pairs], strict=True):
        meet = shapely.intersection(geoms[i], geoms[j])
        assert meet.geom_type in ("Point", "MultiPoint"), (i, j, meet.geom_type)
        for pt in shapely.get_coordinates(meet):
            assert np.abs(ends[i] - pt).max(axis=1).min() < 1e-12, (i, j)
            assert np.abs(ends[j] - pt).max(axis=1).min() < 1e-12, (i, j)


def test_grid_boundaries_follow_roads(layers: dict[str, gpd.GeoDataFrame]) -> None:
    grids = layers["grids"]
    regular = grids[grids["level"].isin(["community", "grid", "micro"])]
    edges = shapely.union_all(regular.boundary.values)
    roads = shapely.union_all(layers["roads"].geometry.values).buffer(0.01)
    assert edges.difference(roads).length < 0.01


# ----------------------------------------------------------------------------- incidents


def test_incidents_are_well_formed(
    incidents: pd.DataFrame, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    inc = incidents
    assert list(inc.columns) == [
        "ext_id", "category", "source", "description", "lon", "lat", "address", "reported_at",
    ]  # fmt: skip
    assert len(inc) == 2000 and inc["ext_id"].is_unique
    assert inc["ext_id"].str.fullmatch(r"DEMO-\d{6}").all()
    assert set(inc["category"]) <= CATEGORIES and len(set(inc["category"])) >= 12
    assert set(inc["source"]) == SOURCES
    assert inc["lon"].str.fullmatch(r"113\.\d{7}").all()
    assert inc["lat"].str.fullmatch(r"34\.\d{7}").all()
    assert inc["description"].str.len().gt(2).all()
    assert not inc["description"].str.contains("{", regex=False).any()
    t = pd.to_datetime(inc["reported_at"], format="ISO8601")
    assert inc["reported_at"].str.endswith("+08:00").all()
    assert t.is_monotonic_increasing
    assert t.min() >= pd.Timestamp("2025-11-01T00:00:00+08:00")
    assert t.max() < pd.Timestamp("2026-11-01T00:00:00+08:00")
    # daily and weekly rhythm: few reports at night, patrols in office hours and on workdays
    hours = t.dt.hour
    assert (hours.between(1, 5)).mean() < 0.05
    patrol = (inc["source"] == "巡查").to_numpy()
    assert hours[patrol].between(8, 20).all()
    weekend = (t.dt.day_of_week >= 5).to_numpy()
    assert weekend[patrol].mean() < 0.2 < weekend[~patrol].mean()
    # addresses only for hotline and WeChat sources, and then a real building address
    with_addr = inc["address"] != ""
    assert set(inc.loc[with_addr, "source"]) <= {"热线", "12345", "公众号"}
    assert with_addr.mean() > 0.2
    assert set(inc.loc[with_addr, "address"]) <= set(layers["buildings"]["address"])


def test_about_one_percent_lie_outside_the_office(
    incidents: pd.DataFrame, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    pts = gpd.GeoSeries(
        gpd.points_from_xy(incidents["lon"].astype(float), incidents["lat"].astype(float)),
        crs=4326,
    ).to_crs(METRIC)
    office = layers["grids"].loc[layers["grids"]["level"] == "street", "geometry"].iloc[0]
    outside = ~pts.within(office)
    assert 0.005 <= outside.mean() <= 0.015
    assert pts[outside].distance(office).max() < 320.0


def test_planted_hotspots_stand_out(
    incidents: pd.DataFrame, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    grids = layers["grids"].set_index("code")
    t = pd.to_datetime(incidents["reported_at"], format="ISO8601")
    pts = gpd.GeoSeries(
        gpd.points_from_xy(incidents["lon"].astype(float), incidents["lat"].astype(float)),
        crs=4326,
    ).to_crs(METRIC)
    for rec in layers["hotspots"].itertuples(index=False):
        cells = shapely.union_all(grids.loc[rec.micro_codes.split(","), "geometry"].values)
        assert cells.centroid.distance(rec.geometry) < 0.01
        corners = shapely.get_coordinates(cells)
        assert np.hypot(*(corners - [rec.geometry.x, rec.geometry.y]).T).max() <= rec.radius_m
        start, end = pd.Timestamp(rec.start), pd.Timestamp(rec.end)
        same = (incidents["category"] == rec.category).to_numpy() & pts.within(cells).to_numpy()
        during = same & ((t >= start) & (t < end)).to_numpy()
        days_in = (end - start).days
        rate_in = during.sum() / days_in
        rate_out = (same.sum() - during.sum()) / (365 - days_in)
        assert during.sum() >= rec.n_incidents
        assert rate_in > 10 * max(rate_out, 0.05)
        assert pts[during].distance(rec.geometry).max() <= rec.radius_m


# ----------------------------------------------------------------------------- tracks


def test_gpx_files_parse_and_time_runs_forward(district: Path) -> None:
    manifest = json.loads((district / "manifest.json").read_text(encoding="utf-8"))
    staff = pd.read_csv(district / "staff.csv", dtype=str)
    workers = set(staff.loc[staff["role"] == "网格员", "staff_id"])
    total = 0
    for path in sorted((district / "tracks").glob("worker_*.gpx")):
        assert path.stem.removeprefix("worker_") in workers
        root = ET.parse(path).getroot()
        assert root.tag == f"{GPX}gpx" and root.get("version") == "1.1"
        trks = root.findall(f"{GPX}trk")
        assert len(trks) == 2
        for trk in trks:
            stamps = [
                pd.Timestamp(pt.findtext(f"{GPX}time"))
                for seg in trk.findall(f"{GPX}trkseg")
                for pt in seg.findall(f"{GPX}trkpt")
            ]
            assert all(s.utcoffset() == pd.Timedelta(hours=8) for s in stamps)
            steps = np.diff(np.array([s.value for s in stamps])) / 1e9
            assert (steps > 0).all() and np.median(steps) == 10
            # dropouts of 1-5 minutes start a new segment; nothing longer
            assert steps.max() <= 310
            minutes = (stamps[-1] - stamps[0]).total_seconds() / 60
            assert 27 <= minutes <= 99  # 30-90 min, the walking speed varies
            assert stamps[0].date().isoformat() in {"2026-10-26", "2026-10-27"}
            total += len(stamps)
    assert total == manifest["total_track_points"]


def test_tracks_follow_the_true_routes_on_the_roads(
    district: Path, layers: dict[str, gpd.GeoDataFrame]
) -> None:
    from gis.tracks import read_gpx

    routes = pd.read_csv(
        district / "patrol_routes.csv", dtype={"visited_household_ids": str}, keep_default_na=False
    )
    assert len(routes) == 16 and (routes["visited_household_ids"] != "").any()
    true = gpd.GeoSeries.from_wkt(routes["wkt"], crs=4326).to_crs(METRIC)
    roads = shapely.union_all(layers["roads"].geometry.values).buffer(1.0)
    key = pd.read_csv(district / "key_households.csv")
    b = layers["buildings"].set_index("building_id")
    for i, rec in routes.iterrows():
        pts = read_gpx(district / "tracks" / f"worker_{rec.staff_id}.gpx")
        day = pts[pts["t"].dt.tz_convert("Asia/Shanghai").dt.date.astype(str) == rec.date]
        assert len(day) == rec.n_fixes
        xy = gpd.GeoSeries(gpd.points_from_xy(day["lon"], day["lat"]), crs=4326).to_crs(METRIC)
        dist = xy.distance(true.iloc[i])
        assert dist.median() < 8.0  # GPS noise of about 5 m
        assert (dist > 90).mean() < 0.01  # the rare outlier jumps
        # mostly on roads; the rest is the walk to building doors inside compounds
        line = true.iloc[i]
        along = shapely.line_interpolate_point(line, np.arange(0.0, line.length, 2.0))
        assert shapely.contains(roads, along).mean() > 0.6
        assert shapely.distance(roads, along).max() < 130.0
        for hid in filter(None, rec.visited_household_ids.split(";")):
            bid = int(key.loc[key["household_id"] == int(hid), "building_id"].iloc[0])
            assert true.iloc[i].distance(b.loc[bid, "geometry"]) < 0.5


# ----------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_other_seed_other_district(district: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    again = tmp_path / "again"
    generate_district(again, preset="fixture", seed=SEED, progress=lambda *a: seen.append(a))
    assert _tree_hash(again) == _tree_hash(district)
    stages = {s for s, _, _ in seen}
    assert {"grids", "tracks", "write"} <= stages
    assert all(0 <= d <= t for _, d, t in seen)
    other = tmp_path / "other"
    generate_district(other, preset="fixture", seed=SEED + 1)
    for name in ("incidents.csv", "staff.csv"):
        assert (other / name).read_bytes() != (district / name).read_bytes()
    a = gpd.read_file(district / "district.gpkg", layer="grids")
    b = gpd.read_file(other / "district.gpkg", layer="grids")
    assert not a.geometry.geom_equals_exact(b.geometry, tolerance=1e-7).all()
