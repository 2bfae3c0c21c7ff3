"""Point files: CSV / GeoJSON / GeoParquet round trips, chunking, CRS, and error reporting."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pytest
import shapely
from shapely.geometry import MultiPolygon, box

from gis.crs import wgs84_to_gcj02
from gis.errors import FileFormatError
from gis.geocode import CHAIN_COLUMNS, GridIndex
from gis.io import detect_lonlat, geocode_file, read_points

STREET = "410171003"
GRID = STREET + "00101"
OUT_COLUMNS = [*CHAIN_COLUMNS, "error"]


def _grids() -> gpd.GeoDataFrame:
    """Two micro grids side by side near 113.55E 34.80N and one dedicated grid."""
    west = MultiPolygon([box(113.54, 34.79, 113.55, 34.80)])
    east = MultiPolygon([box(113.55, 34.79, 113.56, 34.80)])
    rows = [
        {"code": STREET, "level": "street", "parent_code": None, "geometry": west.union(east)},
        {"code": STREET + "001", "level": "community", "parent_code": STREET, "geometry": None},
        {"code": GRID, "level": "grid", "parent_code": STREET + "001", "geometry": None},
        {"code": GRID + "01", "level": "micro", "parent_code": GRID, "geometry": west},
        {"code": GRID + "02", "level": "micro", "parent_code": GRID, "geometry": east},
        {
            "code": STREET + "901",
            "level": "dedicated",
            "parent_code": STREET,
            "geometry": MultiPolygon([box(113.545, 34.795, 113.546, 34.796)]),
        },
    ]
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


INDEX = GridIndex.from_grids(_grids())
W, E, DED = GRID + "01", GRID + "02", STREET + "901"

# (id, lon, lat, name, expected micro, expected dedicated)
POINTS = [
    ("1", "113.5455", "34.7955", "学校门口", W, DED),
    ("2", "113.555", "34.795", "菜市场", E, None),
    ("3", "113.55", "34.795", "边界", W, None),  # shared edge: the smaller code
    ("4", "113.60", "34.795", "区外", None, None),
    ("5", "113.5400000", "34.7900", "corner, with comma", W, None),
]


def _write_csv(path: Path, header: str = "id,lon,lat,name", rows: list[str] | None = None) -> Path:
    if rows is None:
        rows = [f'{i},{x},{y},"{n}"' for i, x, y, n, _, _ in POINTS]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _strs(values: pd.Series) -> list[str | None]:
    """Strings as read back (pandas gives NaN for missing text), missing as None."""
    return [v if isinstance(v, str) else None for v in values.tolist()]


def _read_out_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_csv_round_trip_keeps_input_text_and_adds_the_chain(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "in.csv")
    summary = geocode_file(src, tmp_path / "out.csv", INDEX)
    out = _read_out_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["id", "lon", "lat", "name", *OUT_COLUMNS]
    assert out["lon"].tolist() == [p[1] for p in POINTS]  # text untouched ("113.5400000")
    assert out["name"].tolist() == [p[3] for p in POINTS]
    assert out["micro_code"].tolist() == [p[4] or "" for p in POINTS]
    assert out["dedicated_code"].tolist() == [p[5] or "" for p in POINTS]
    assert out["grid_code"].tolist() == [GRID if p[4] else "" for p in POINTS]
    assert out["street_code"].tolist() == [STREET if p[4] else "" for p in POINTS]
    assert (out["error"] == "").all()
    assert summary == {
        "rows": 5,
        "located": 4,
        "outside": 1,
        "errors": 0,
        "dedicated": 1,
        "chunks": 1,
        "format": "csv",
    }


@pytest.mark.parametrize(
    ("header", "lon", "lat"),
    [
        ("id,Longitude,Latitude,name", "Longitude", "Latitude"),
        ("id,x,y,name", "x", "y"),
        ("id,lng,LAT,name", "lng", "LAT"),
        ("id,经度,纬度,name", "经度", "纬度"),
    ],
)
def test_lon_lat_columns_are_detected(tmp_path: Path, header: str, lon: str, lat: str) -> None:
    src = _write_csv(tmp_path / "in.csv", header=header)
    geocode_file(src, tmp_path / "out.csv", INDEX)
    out = _read_out_csv(tmp_path / "out.csv")
    assert out["micro_code"].tolist() == [p[4] or "" for p in POINTS]
    assert detect_lonlat(header.split(",")) == (lon, lat)


def test_named_columns_win_over_detection(tmp_path: Path) -> None:
    rows = [f"{x},{y},0,0" for _, x, y, *_ in POINTS]
    src = _write_csv(tmp_path / "in.csv", header="px,py,lon,lat", rows=rows)
    geocode_file(src, tmp_path / "out.csv", INDEX, lon="px", lat="py")
    assert _read_out_csv(tmp_path / "out.csv")["micro_code"].tolist() == [
        p[4] or "" for p in POINTS
    ]


@pytest.mark.parametrize(
    ("header", "kwargs", "match"),
    [
        ("id,a,b", {}, r"no longitude column.*columns: id, a, b"),
        ("id,lon,b", {}, r"no latitude column.*columns: id, lon, b"),
        ("id,lon,lat", {"lon": "px"}, r"no longitude column 'px'"),
    ],
)
def test_missing_coordinate_columns_are_named(
    tmp_path: Path, header: str, kwargs: dict, match: str
) -> None:
    src = _write_csv(tmp_path / "in.csv", header=header, rows=["1,2,3"])
    with pytest.raises(FileFormatError, match=match):
        geocode_file(src, tmp_path / "out.csv", INDEX, **kwargs)
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "out.csv.part").exists()


def test_bad_rows_get_an_error_and_no_chain(tmp_path: Path) -> None:
    rows = [
        "1,113.545,34.795",
        "2,abc,34.795",
        "3,113.545,",
        "4,200,34.795",
        "5,34.795,113.545",
        "6,nan,34.795",
        "7, 113.555 ,34.795",
        "",
        "9,113.545",
    ]
    src = _write_csv(tmp_path / "in.csv", header="id,lon,lat", rows=rows)
    summary = geocode_file(src, tmp_path / "out.csv", INDEX)
    out = _read_out_csv(tmp_path / "out.csv")
    assert out["micro_code"].tolist() == [W, "", "", "", "", "", E, "", ""]
    assert out["error"].tolist() == [
        "",
        "line 3: lon 'abc' is not a number",
        "line 4: lat is empty",
        "line 5: (lon, lat) = (200.0, 34.795) is out of range for longitude/latitude",
        "line 6: (lon, lat) = (34.795, 113.545) is out of range for longitude/latitude "
        "(lat/lon look swapped)",
        "line 7: lon is NaN",
        "",
        "line 9: lon is empty",  # a blank line is kept, so line numbers stay exact
        "line 10: lat is empty",
    ]
    assert summary["errors"] == 7
    assert summary["located"] == 2


def test_strict_mode_stops_at_the_first_bad_row(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "in.csv", header="id,lon,lat", rows=["1,113.545,34.795", "2,x,1"])
    with pytest.raises(FileFormatError, match=r"line 3: lon 'x' is not a number"):
        geocode_file(src, tmp_path / "out.csv", INDEX, strict=True)
    assert not (tmp_path / "out.csv").exists()


def test_malformed_csv_names_the_line(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "in.csv", header="id,lon,lat", rows=["1,113.5,34.8", "2,1,2,3"])
    with pytest.raises(FileFormatError, match=r"malformed CSV.*line 3"):
        geocode_file(src, tmp_path / "out.csv", INDEX)


def test_empty_and_header_only_csv(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(FileFormatError, match="empty file"):
        geocode_file(empty, tmp_path / "out.csv", INDEX)
    header = _write_csv(tmp_path / "h.csv", header="id,lon,lat", rows=[])
    summary = geocode_file(header, tmp_path / "h_out.csv", INDEX)
    assert summary["rows"] == 0
    assert (tmp_path / "h_out.csv").read_text().splitlines() == [
        ",".join(f'"{c}"' for c in ["id", "lon", "lat", *OUT_COLUMNS])
    ]


def test_semicolon_separated_csv(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "in.csv", header="id;lon;lat", rows=["1;113.545;34.795"])
    geocode_file(src, tmp_path / "out.csv", INDEX, sep=";")
    assert _read_out_csv(tmp_path / "out.csv")["micro_code"].tolist() == [W]


def test_gbk_csv_needs_its_encoding(tmp_path: Path) -> None:
    src = tmp_path / "gbk.csv"
    src.write_bytes("id,lon,lat,名称\n1,113.545,34.795,学校\n".encode("gbk"))
    with pytest.raises(FileFormatError, match="gbk"):
        geocode_file(src, tmp_path / "out.csv", INDEX)
    geocode_file(src, tmp_path / "out.csv", INDEX, encoding="gbk")
    out = _read_out_csv(tmp_path / "out.csv")
    assert out["名称"].tolist() == ["学校"]
    assert out["micro_code"].tolist() == [W]


def test_chunks_are_bounded_and_reported(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 1000
    lon = rng.uniform(113.535, 113.565, n)
    lat = rng.uniform(34.785, 34.805, n)
    rows = [
        f"{i},{x!r},{y!r}" for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True))
    ]
    src = _write_csv(tmp_path / "in.csv", header="id,lon,lat", rows=rows)
    sizes = [len(c) for c in read_points(src, chunk_rows=300)]
    assert sizes == [300, 300, 300, 100]
    seen: list[int] = []
    summary = geocode_file(src, tmp_path / "a.csv", INDEX, chunk_rows=300, progress=seen.append)
    assert seen == [300, 300, 300, 100]
    assert summary["chunks"] == 4
    geocode_file(src, tmp_path / "b.csv", INDEX, chunk_rows=5000)
    a, b = _read_out_csv(tmp_path / "a.csv"), _read_out_csv(tmp_path / "b.csv")
    pd.testing.assert_frame_equal(a, b)
    want = INDEX.chain(lon, lat)["micro_code"].fillna("").tolist()
    assert a["micro_code"].tolist() == want


def test_gcj02_file_gives_the_same_chain_as_wgs84(tmp_path: Path) -> None:
    lon = np.array([113.5455, 113.555, 113.541, 113.559])
    lat = np.array([34.7955, 34.795, 34.791, 34.799])
    gx, gy = wgs84_to_gcj02(lon, lat)
    wgs = _write_csv(
        tmp_path / "w.csv",
        header="lon,lat",
        rows=[f"{x!r},{y!r}" for x, y in zip(lon.tolist(), lat.tolist(), strict=True)],
    )
    gcj = _write_csv(
        tmp_path / "g.csv",
        header="lon,lat",
        rows=[f"{x!r},{y!r}" for x, y in zip(gx.tolist(), gy.tolist(), strict=True)],
    )
    geocode_file(wgs, tmp_path / "w_out.csv", INDEX)
    geocode_file(gcj, tmp_path / "g_out.csv", INDEX, crs="gcj02")
    geocode_file(gcj, tmp_path / "g_wrong.csv", INDEX)
    want = _read_out_csv(tmp_path / "w_out.csv")[OUT_COLUMNS]
    assert want["micro_code"].tolist() == [W, E, W, E]
    pd.testing.assert_frame_equal(_read_out_csv(tmp_path / "g_out.csv")[OUT_COLUMNS], want)
    wrong = _read_out_csv(tmp_path / "g_wrong.csv")[OUT_COLUMNS]
    assert not wrong.equals(want)


# ----------------------------------------------------------------------------- GeoJSON


def _feature_collection(path: Path, features: list[dict]) -> Path:
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False),
        encoding="utf-8",
    )
    return path


def _point(i: int, x: float, y: float, name: str) -> dict:
    return {
        "type": "Feature",
        "properties": {"id": i, "name": name},
        "geometry": {"type": "Point", "coordinates": [x, y]},
    }


def test_geojson_round_trip(tmp_path: Path) -> None:
    feats = [_point(int(i), float(x), float(y), n) for i, x, y, n, _, _ in POINTS]
    src = _feature_collection(tmp_path / "in.geojson", feats)
    geocode_file(src, tmp_path / "out.geojson", INDEX)
    out = pyogrio.read_dataframe(tmp_path / "out.geojson")
    assert list(out.columns) == ["id", "name", *OUT_COLUMNS, "geometry"]
    assert out["id"].tolist() == [1, 2, 3, 4, 5]
    assert out["name"].tolist() == [p[3] for p in POINTS]
    assert _strs(out["micro_code"]) == [p[4] for p in POINTS]
    assert _strs(out["dedicated_code"]) == [p[5] for p in POINTS]
    assert shapely.get_x(out.geometry.values).tolist() == [float(p[1]) for p in POINTS]
    assert shapely.get_y(out.geometry.values).tolist() == [float(p[2]) for p in POINTS]


def test_geojson_non_points_and_null_geometries_are_row_errors(tmp_path: Path) -> None:
    feats = [
        _point(1, 113.5455, 34.7955, "ok"),
        {
            "type": "Feature",
            "properties": {"id": 2, "name": "road"},
            "geometry": {"type": "LineString", "coordinates": [[113.54, 34.79], [113.55, 34.8]]},
        },
        {"type": "Feature", "properties": {"id": 3, "name": "none"}, "geometry": None},
    ]
    src = _feature_collection(tmp_path / "in.geojson", feats)
    summary = geocode_file(src, tmp_path / "out.csv", INDEX)
    out = _read_out_csv(tmp_path / "out.csv")
    assert out["micro_code"].tolist() == [W, "", ""]
    assert out["error"].tolist() == [
        "",
        "feature 2: geometry is a LineString, not a Point",
        "feature 3: no geometry",
    ]
    # geometry input written as CSV: the coordinates become columns
    assert out["lon"].tolist() == ["113.5455", "", ""]
    assert summary["errors"] == 2


def test_bad_json_names_line_and_column(tmp_path: Path) -> None:
    src = tmp_path / "bad.geojson"
    src.write_text('{"type": "FeatureCollection",\n "features": [,]}', encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"bad\.geojson.*line 2"):
        geocode_file(src, tmp_path / "out.csv", INDEX)


def test_json_that_is_not_a_feature_collection(tmp_path: Path) -> None:
    src = tmp_path / "list.json"
    src.write_text("[1, 2, 3]", encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"list\.json.*FeatureCollection"):
        geocode_file(src, tmp_path / "out.csv", INDEX)


# ---------------------------------------------------------------------------- GeoParquet


def test_geoparquet_round_trip(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"id": [int(p[0]) for p in POINTS], "name": [p[3] for p in POINTS]},
        geometry=gpd.points_from_xy([float(p[1]) for p in POINTS], [float(p[2]) for p in POINTS]),
        crs="EPSG:4326",
    )
    frame.to_parquet(tmp_path / "in.parquet")
    summary = geocode_file(tmp_path / "in.parquet", tmp_path / "out.parquet", INDEX, chunk_rows=2)
    assert summary["chunks"] == 3
    out = gpd.read_parquet(tmp_path / "out.parquet")
    assert out.crs.to_epsg() == 4326
    assert out["id"].tolist() == frame["id"].tolist()
    assert out["id"].dtype == frame["id"].dtype  # Arrow types pass through
    assert _strs(out["micro_code"]) == [p[4] for p in POINTS]
    assert out.geometry.equals(frame.geometry)


def test_plain_parquet_with_lon_lat_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "lon": pa.array([113.5455, None, 113.555], type=pa.float64()),
            "lat": pa.array([34.7955, 34.79, 34.795], type=pa.float64()),
            "v": [1, 2, 3],
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    geocode_file(tmp_path / "in.parquet", tmp_path / "out.geojson", INDEX)
    out = pyogrio.read_dataframe(tmp_path / "out.geojson")
    assert _strs(out["micro_code"]) == [W, None, E]
    assert _strs(out["error"]) == [None, "row 2: lon is missing", None]
    assert out.geometry.isna().tolist() == [False, True, False]


def test_csv_to_geoparquet_builds_point_geometry(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "in.csv")
    geocode_file(src, tmp_path / "out.parquet", INDEX)
    out = gpd.read_parquet(tmp_path / "out.parquet")
    assert out["lon"].tolist() == [p[1] for p in POINTS]  # the text column is kept
    assert shapely.get_x(out.geometry.values).tolist() == [float(p[1]) for p in POINTS]
    assert _strs(out["micro_code"]) == [p[4] for p in POINTS]


def test_not_a_parquet_file(tmp_path: Path) -> None:
    src = tmp_path / "fake.parquet"
    src.write_text("id,lon,lat\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"fake\.parquet: not a Parquet file"):
        geocode_file(src, tmp_path / "out.csv", INDEX)


def test_regeocoding_an_output_replaces_the_chain_columns(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "in.csv")
    geocode_file(src, tmp_path / "once.parquet", INDEX)
    geocode_file(tmp_path / "once.parquet", tmp_path / "twice.parquet", INDEX)
    once = gpd.read_parquet(tmp_path / "once.parquet")
    twice = gpd.read_parquet(tmp_path / "twice.parquet")
    assert list(twice.columns) == list(once.columns)
    pd.testing.assert_frame_equal(pd.DataFrame(twice), pd.DataFrame(once))


@pytest.mark.parametrize("name", ["points.xlsx", "points", "points.shp"])
def test_unsupported_extensions(tmp_path: Path, name: str) -> None:
    src = _write_csv(tmp_path / "in.csv")
    with pytest.raises(FileFormatError, match="unsupported file type"):
        geocode_file(src, tmp_path / name, INDEX)
    with pytest.raises(FileFormatError, match="unsupported file type"):
        geocode_file(tmp_path / name, tmp_path / "out.csv", INDEX)


def test_missing_input_file(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match="no such file"):
        geocode_file(tmp_path / "nope.csv", tmp_path / "out.csv", INDEX)
