"""Isochrones on small hand-made networks: exact metres and exact cuts of partial edges."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import shapely

from gis.errors import GisError
from gis.isochrones import isochrones, node_distances, reached_lines
from gis.network import attach_points, band_metres, network_from_arrays

CRS = pyproj.CRS("EPSG:4547")  # CGCS2000 / 3-degree Gauss-Kruger CM 114E, metres


def _t_network():
    #   0 --100-- 1 --100-- 2
    #             |
    #            300
    #             |
    #             3
    nodes = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [100.0, 300.0]])
    return network_from_arrays(CRS, nodes, [0, 1, 1], [1, 2, 3])


def test_distances_are_street_metres() -> None:
    d = node_distances(_t_network(), [0, 3], limit_m=1000)
    assert d.tolist() == [[0, 100, 200, 400], [400, 300, 400, 0]]


def test_limit_stops_the_search() -> None:
    d = node_distances(_t_network(), [0], limit_m=250)
    assert np.isinf(d[0, 3]) and d[0, 2] == 200


def test_partial_edge_cut_at_exact_distance() -> None:
    net = _t_network()
    d = node_distances(net, [0], limit_m=250)[0]
    pieces, nodes = reached_lines(net, d, 250.0)
    assert nodes.tolist() == [0, 1, 2]
    cut = [p for p in pieces if p.bounds[3] > 0]
    assert len(cut) == 1
    assert cut[0].equals(shapely.LineString([(100, 0), (100, 150)]))
    assert sum(p.length for p in pieces) == pytest.approx(350.0)


def test_edge_reached_from_both_ends_leaves_a_gap() -> None:
    # Square 0-1-2-3 of 100 m sides, source 0: the far side 1-2... budget 150:
    # edge 1-2 walked 50 m from 1, edge 3-2 walked 50 m from 3; node 2 (200 m) not reached.
    nodes = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 100.0], [0.0, 100.0]])
    net = network_from_arrays(CRS, nodes, [0, 1, 2, 3], [1, 2, 3, 0])
    d = node_distances(net, [0], limit_m=1000)[0]
    pieces, nodes_hit = reached_lines(net, d, 150.0)
    assert nodes_hit.tolist() == [0, 1, 3]
    assert sum(p.length for p in pieces) == pytest.approx(300.0)
    halves = sorted(
        tuple(sorted(tuple(np.round(c, 9).tolist()) for c in p.coords))
        for p in pieces
        if p.length == pytest.approx(50.0)
    )
    assert halves == [((0.0, 100.0), (50.0, 100.0)), ((100.0, 0.0), (100.0, 50.0))]
    # With 200 m both halves meet and the whole square is reached.
    pieces, _ = reached_lines(net, d, 200.0)
    assert sum(p.length for p in pieces) == pytest.approx(400.0)


def test_bands_at_walking_speed() -> None:
    assert band_metres(5) == pytest.approx(375.0)
    assert band_metres(15, speed_kmh=6) == pytest.approx(1500.0)
    with pytest.raises(GisError, match="positive"):
        band_metres(5, speed_kmh=0)


def test_isochrone_polygon_is_buffered_streets() -> None:
    net = _t_network()
    res = isochrones(net, [0], bands_min=(2, 4), speed_kmh=4.5, buffer_m=10)
    two, four = res[0]
    assert two.budget_m == pytest.approx(150.0)
    assert two.street_m == pytest.approx(150 + 50)  # 0-1, 1-2 half, 1-3 50 m
    assert four.street_m == pytest.approx(200 + 200)
    assert two.polygon.contains(shapely.Point(100, 45))
    assert not two.polygon.contains(shapely.Point(100, 70))
    assert four.polygon.area > two.polygon.area


def test_attached_station_splits_its_edge() -> None:
    net = _t_network()
    att, ids = attach_points(net, np.array([shapely.Point(150, 20)], dtype=object))
    d = node_distances(att, ids, limit_m=1000)[0]
    # station -> foot (150, 0) is 20 m, then 50 m to node 1 or 2, 150 m to node 0.
    assert d[ids[0]] == 0
    assert d[:4].tolist() == pytest.approx([170.0, 70.0, 70.0, 370.0])
    assert att.length_m.sum() == pytest.approx(net.length_m.sum() + 20.0)


def test_coverage_counts_by_street_and_straight_line() -> None:
    import geopandas as gpd

    from gis.service_coverage import coverage

    x, y = 500_000.0, 3_850_000.0
    nodes = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [100.0, 300.0]]) + np.array([x, y])
    net = network_from_arrays(CRS, nodes, [0, 1, 1], [1, 2, 3])
    stations = gpd.GeoDataFrame(
        {"station_id": [7], "kind": ["养老服务站"]}, geometry=[shapely.Point(x, y)], crs=CRS
    )
    buildings = gpd.GeoDataFrame(
        {"building_id": [1, 2], "households": [10, 20], "residents": [25, 50], "grid": ["A", "B"]},
        geometry=[shapely.Point(x + 150, y + 10), shapely.Point(x + 110, y + 250)],
        crs=CRS,
    )
    # 6 km/h = 100 m/min: bands of 200, 300 and 400 m.
    cov = coverage(net, stations, buildings, bands_min=(2, 3, 4), speed_kmh=6)
    b = cov.buildings.set_index("building_id")
    assert b.loc[1, "walk_m"] == pytest.approx(10 + 150)  # door offset + street
    assert b.loc[2, "walk_m"] == pytest.approx(10 + 100 + 250)
    assert b.loc[2, "straight_m"] == pytest.approx(np.hypot(110, 250))
    assert b["band"].tolist() == [2, 4] and b["straight_band"].tolist() == [2, 3]
    overall = cov.summary.query("scope == 'overall'").set_index("minutes")
    assert overall["households"].tolist() == [10, 10, 30]
    assert overall["households_straight"].tolist() == [10, 30, 30]
    assert overall["households_difference"].tolist() == [0, 20, 0]
    assert overall["residents"].tolist() == [25, 25, 75]
    per_grid = cov.summary.query("scope == 'grid' and minutes == 3").set_index("key")
    assert per_grid["households"].to_dict() == {"A": 10, "B": 0}
    assert cov.outside(3)["building_id"].tolist() == [2]
    assert cov.outside(4).empty
