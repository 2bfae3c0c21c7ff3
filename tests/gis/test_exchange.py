"""Grid layer files: every format x every CRS round trip, published GCJ-02 points at the edge,
invalid geometry reported with reason and place (or repaired on request), wrong CRS refused."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from shapely.geometry import Point, Polygon, box

from gis.errors import CoordinateRangeError, CRSError, EmptyInputError, FileFormatError
from gis.exchange import (
    FORMATS,
    LayerRejectedError,
    read_features,
    read_layer,
    write_layer,
)

SUFFIX = {"geojson": ".geojson", "gpkg": ".gpkg", "shp": ".zip", "kml": ".kml"}
# eviltransform's published pair (googollee/eviltransform, test): Shanghai WGS84 -> GCJ-02
WGS_SH = (121.5272106, 31.1774276)
GCJ_SH = (121.531541859215, 31.17530398364597)


def _grids() -> gpd.GeoDataFrame:
    x0, y0 = WGS_SH
    a = Polygon([(x0, y0), (x0 + 0.002, y0), (x0 + 0.002, y0 + 0.002), (x0, y0 + 0.002)])
    b = box(x0 + 0.002, y0, x0 + 0.004, y0 + 0.002)
    return gpd.GeoDataFrame(
        {
            "code": ["4101710030010301", "4101710030010302"],
            "name": ["微网格一", "微网格二"],
            "level": ["micro", "micro"],
            "parent_code": ["41017100300103", "41017100300103"],
            "households": [40, 55],
            "residents": [100, 140],
            "version": [1, 3],
        },
        geometry=[a, b],
        crs=4326,
    )


@pytest.mark.parametrize("crs", ["wgs84", "cgcs2000", "gcj02", "bd09"])
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_and_crs_round_trips(fmt: str, crs: str) -> None:
    grids = _grids()
    data = write_layer(grids, fmt, crs=crs, layer="micro")
    layer = read_layer(data, "layer" + SUFFIX[fmt], crs=crs)
    got = layer.frame
    assert got["code"].tolist() == grids["code"].tolist()
    assert got["name"].tolist() == ["微网格一", "微网格二"]
    assert got["level"].tolist() == ["micro", "micro"]
    assert got["parent_code"].tolist() == ["41017100300103"] * 2
    for a, b in zip(grids.geometry, got.geometry, strict=True):
        assert a.hausdorff_distance(b) < 1e-8  # about 1 mm
    assert layer.repaired == []


def test_export_moves_coordinates_to_the_published_gcj02_point(tmp_path: Path) -> None:
    data = write_layer(_grids(), "gpkg", crs="gcj02")
    path = tmp_path / "g.gpkg"
    path.write_bytes(data)
    raw = pyogrio.read_dataframe(path)
    first = shapely.get_coordinates(raw.geometry.iloc[0])
    # the vertex at the published WGS84 point is written at the published GCJ-02 point
    assert any(abs(x - GCJ_SH[0]) < 1e-7 and abs(y - GCJ_SH[1]) < 1e-7 for x, y in first)
    # and reading it back declared as GCJ-02 lands on the WGS84 point again (< 1 cm)
    back = read_layer(data, "g.gpkg", crs="gcj02").frame.geometry.iloc[0]
    assert back.distance(Point(WGS_SH)) < 1e-7


def test_cgcs2000_export_is_labelled_4490_and_shapefile_zip_is_complete() -> None:
    data = write_layer(_grids(), "shp", crs="cgcs2000")
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert {Path(n).suffix for n in names} >= {".shp", ".shx", ".dbf", ".prj", ".cpg"}
    gj = json.loads(write_layer(_grids(), "geojson", crs="cgcs2000"))
    assert "4490" in json.dumps(gj.get("crs"))


def _geojson(features: list[dict], crs: dict | None = None) -> bytes:
    body: dict = {"type": "FeatureCollection", "features": features}
    if crs:
        body["crs"] = crs
    return json.dumps(body).encode()


def _feature(code: str, coords: list) -> dict:
    return {
        "type": "Feature",
        "properties": {"code": code},
        "geometry": {"type": "Polygon", "coordinates": [coords]},
    }


BOW = [[113.55, 34.80], [113.56, 34.81], [113.56, 34.80], [113.55, 34.81], [113.55, 34.80]]


def test_invalid_geometry_is_refused_with_reason_and_location() -> None:
    data = _geojson([_feature("4101710030010301", BOW)])
    with pytest.raises(LayerRejectedError, match="Self-intersection") as err:
        read_layer(data, "bad.geojson", crs="wgs84")
    (problem,) = err.value.problems
    assert problem["feature"] == 1 and problem["code"] == "4101710030010301"
    assert "Self-intersection[113.555 34.805]" in str(problem["reason"])
    assert problem["location"] == [113.555, 34.805]  # where GEOS found it
    assert "repair=true" in str(err.value)


def test_repair_runs_make_valid_only_when_asked() -> None:
    data = _geojson([_feature("4101710030010301", BOW)])
    layer = read_layer(data, "bad.geojson", crs="wgs84", repair=True)
    geom = layer.frame.geometry.iloc[0]
    assert geom.is_valid and geom.geom_type == "MultiPolygon" and len(geom.geoms) == 2
    assert geom.area == pytest.approx(0.00005, rel=1e-6)  # the two triangles of the bow tie
    assert layer.repaired[0]["reason"].startswith("Self-intersection")


def test_metres_declared_as_degrees_is_refused() -> None:
    sq = [[450000, 3850000], [450100, 3850000], [450100, 3850100], [450000, 3850100]]
    data = _geojson([_feature("4101710030010301", [*sq, sq[0]])])
    with pytest.raises(CoordinateRangeError, match="look like metres"):
        read_layer(data, "m.geojson", crs="wgs84")


def test_a_file_in_a_projected_crs_is_refused(tmp_path: Path) -> None:
    frame = gpd.GeoDataFrame(
        {"code": ["4101710030010301"]}, geometry=[box(450000, 3850000, 450100, 3850100)], crs=4547
    )
    path = tmp_path / "p.gpkg"
    pyogrio.write_dataframe(frame, path)
    with pytest.raises(CRSError, match=r"projected CRS .*EPSG:4547.*declared wgs84"):
        read_layer(path.read_bytes(), "p.gpkg", crs="wgs84")


def test_swapped_lat_lon_and_points_are_refused() -> None:
    swapped = [[y, x] for x, y in BOW[:1]] + [[34.80, 113.56], [34.81, 113.56], [34.80, 113.55]]
    data = _geojson([_feature("4101710030010301", swapped)])
    with pytest.raises(CoordinateRangeError, match="swapped"):
        read_layer(data, "s.geojson", crs="wgs84")
    pts = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "4101710030010301"},
                "geometry": {"type": "Point", "coordinates": [113.55, 34.8]},
            }
        ],
    }
    with pytest.raises(LayerRejectedError, match="must be a polygon, got Point"):
        read_layer(json.dumps(pts).encode(), "p.geojson", crs="wgs84")


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zipped_shapefile_checks() -> None:
    with pytest.raises(FileFormatError, match="unsafe path"):
        read_layer(_zip({"../evil.shp": b"x"}), "a.zip", crs="wgs84")
    with pytest.raises(FileFormatError, match=r"exactly one \.shp"):
        read_layer(_zip({"a.txt": b"x"}), "a.zip", crs="wgs84")
    with pytest.raises(FileFormatError, match="not a valid zip"):
        read_layer(b"not a zip at all", "a.zip", crs="wgs84")
    good = zipfile.ZipFile(io.BytesIO(write_layer(_grids(), "shp")))
    no_dbf = {n: good.read(n) for n in good.namelist() if not n.endswith(".dbf")}
    with pytest.raises(FileFormatError, match=r"lacks its \.dbf"):
        read_layer(_zip(no_dbf), "a.zip", crs="wgs84")


def test_columns_codes_and_formats_are_checked() -> None:
    with pytest.raises(FileFormatError, match=r"unsupported file 'a\.csv'"):
        read_layer(b"x", "a.csv", crs="wgs84")
    with pytest.raises(EmptyInputError):
        read_layer(b"", "a.geojson", crs="wgs84")
    sq = [[113.55, 34.8], [113.56, 34.8], [113.56, 34.81], [113.55, 34.81], [113.55, 34.8]]
    nocode = _geojson(
        [
            {
                "type": "Feature",
                "properties": {"名称": "x"},
                "geometry": {"type": "Polygon", "coordinates": [sq]},
            }
        ]
    )
    with pytest.raises(FileFormatError, match="no 'code' column"):
        read_layer(nocode, "n.geojson", crs="wgs84")
    # another department's layer may have no codes: numbered F1, F2...
    foreign = read_features(nocode, "n.geojson", crs="gcj02", require_code=False).frame
    assert foreign["code"].tolist() == ["F1"] and foreign["name"].tolist() == ["x"]
    odd = _geojson([_feature("12345", sq)])
    with pytest.raises(LayerRejectedError, match="no usable level"):
        read_layer(odd, "o.geojson", crs="wgs84")
    # Chinese column names and the level/parent from the code's form
    cn = _geojson(
        [
            {
                "type": "Feature",
                "properties": {"编码": "41017100300103", "名称": "三级"},
                "geometry": {"type": "Polygon", "coordinates": [sq]},
            }
        ]
    )
    frame = read_layer(cn, "c.geojson", crs="wgs84").frame
    assert frame[["code", "level", "parent_code", "name"]].iloc[0].tolist() == [
        "41017100300103",
        "grid",
        "410171003001",
        "三级",
    ]
