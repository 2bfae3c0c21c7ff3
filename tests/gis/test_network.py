"""Building the walking network: kinds, noding at shared vertices, metres, gates, real OSM."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pyrosm
import pytest
import shapely
from shapely.geometry import LineString, Point

from gis.errors import EmptyInputError, InvalidGeometryError
from gis.isochrones import isochrones, node_distances
from gis.network import NetworkError, attach_points, build_network, read_osm_lines

CRS = pyproj.CRS("EPSG:4547")
REAL_OSM = "/work/shared/data/real/haidian-xueyuanlu.osm"
X, Y = 500_000.0, 4_430_000.0


def _lines(rows: list[tuple[str, list[tuple[float, float]]]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"kind": [k for k, _ in rows], "name": [f"路{i}" for i in range(len(rows))]},
        geometry=[LineString([(X + x, Y + y) for x, y in c]) for _, c in rows],
        crs=CRS,
    )


def test_lines_split_at_shared_vertices_not_at_bare_crossings() -> None:
    lines = _lines(
        [
            ("street", [(0, 0), (100, 0), (200, 0)]),
            ("alley", [(100, 0), (100, 50)]),  # shares vertex (100, 0): a junction
            ("footway", [(150, -50), (150, 50)]),  # crosses without a vertex: a bridge
            ("motorway", [(0, 10), (200, 10)]),
        ]
    )
    net, rep = build_network(lines, crs=CRS)
    assert rep.edges == 4 and rep.nodes == 6
    assert rep.skipped == {"excluded kind: motorway": 1}
    assert sorted(net.length_m.tolist()) == [50.0, 100.0, 100.0, 100.0]
    assert rep.kinds == {"street": 2, "alley": 1, "footway": 1}
    d = node_distances(net, [0], limit_m=1e6)[0]
    assert sorted(d[np.isfinite(d)].tolist()) == [0.0, 100.0, 150.0, 200.0]


def test_lengths_are_metres_from_wgs84() -> None:
    # 0.01 degree of longitude at 40N is 853.0 m (geodesic); the GK projection agrees.
    g = gpd.GeoDataFrame(
        {"kind": ["street"]}, geometry=[LineString([(116.30, 40.0), (116.31, 40.0)])], crs=4326
    )
    net, _ = build_network(g)
    assert net.length_m[0] == pytest.approx(853.0, abs=1.0)


def test_walls_cut_the_way_except_at_gates() -> None:
    # A street runs through a walled compound; only the east wall has a gate.
    lines = gpd.GeoDataFrame(
        {"kind": ["street"] * 3, "name": ["外", "内", "外"]},
        geometry=[
            LineString([(X - 50, Y + 50), (X + 10, Y + 50)]),
            LineString([(X + 10, Y + 50), (X + 90, Y + 50)]),
            LineString([(X + 90, Y + 50), (X + 150, Y + 50)]),
        ],
        crs=CRS,
    )
    compound = gpd.GeoDataFrame(geometry=[shapely.box(X, Y, X + 100, Y + 100)], crs=CRS)
    gate = gpd.GeoDataFrame(geometry=[Point(X + 100, Y + 50)], crs=CRS)
    net, rep = build_network(lines, crs=CRS, compounds=compound, gates=gate)
    assert rep.walls_cut == 1 and rep.gates == 1
    assert net.n_edges == 2
    assert sorted(net.length_m.tolist()) == [60.0, 80.0]


def test_bad_input_is_named() -> None:
    with pytest.raises(EmptyInputError, match="no road lines"):
        build_network(gpd.GeoDataFrame({"kind": []}, geometry=[], crs=CRS))
    with pytest.raises(InvalidGeometryError, match="no CRS"):
        build_network(
            gpd.GeoDataFrame({"kind": ["street"]}, geometry=[LineString([(0, 0), (1, 1)])])
        )
    with pytest.raises(NetworkError, match="'kind'"):
        build_network(gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1, 1)])], crs=CRS))
    only_motorway = _lines([("motorway", [(0, 0), (10, 0)])])
    with pytest.raises(EmptyInputError, match="no walkable"):
        build_network(only_motorway, crs=CRS)


def test_real_osm_extract_loads_and_gives_isochrones() -> None:
    roads, compounds, gates = read_osm_lines(REAL_OSM)
    net, rep = build_network(roads, compounds=compounds, gates=gates)
    assert rep.skipped.get("excluded kind: motorway", 0) >= 1
    assert not (set(net.kind.tolist()) & {"motorway", "motorway_link"})
    assert {"footway", "residential", "service"} <= set(rep.kinds)
    assert rep.edges > 500 and 30 < rep.length_km < 100
    # 5/10/15 minutes around the community health centre (中国农业大学东区社区卫生服务中心).
    centre = gpd.GeoSeries([Point(116.3555, 40.0030)], crs=4326).to_crs(net.crs).to_numpy()
    att, ids = attach_points(net, centre)
    ((five, ten, fifteen),) = isochrones(att, ids)
    assert 0 < five.street_m < ten.street_m < fifteen.street_m
    assert len(five.nodes) < len(ten.nodes) < len(fifteen.nodes)
    assert five.polygon.area < ten.polygon.area < fifteen.polygon.area


def test_pyrosm_bundled_pbf_loads() -> None:
    roads, _, _ = read_osm_lines(pyrosm.get_data("test_pbf"))
    net, rep = build_network(roads)
    assert rep.edges == net.n_edges > 100
    assert rep.skipped.get("excluded kind: motorway", 0) >= 1
