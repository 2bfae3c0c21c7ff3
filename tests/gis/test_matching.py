"""Matching wishes to helpers by walking distance on a small hand-made network with a wall."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from gis.errors import EmptyInputError
from gis.matching import match_helpers
from gis.network import network_from_arrays

CRS = pyproj.CRS("EPSG:4547")  # CGCS2000 3-degree GK, metres


def _net():  # type: ignore[no-untyped-def]
    """A U of streets: (0,0)-(100,0)-(100,-40)-(0,-40); no street between (0,0) and (0,-40)
    (a wall), so the two ends are 20+ m apart in a straight line but 240 m on foot."""
    nodes = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, -40.0], [0.0, -40.0]])
    return network_from_arrays(CRS, nodes, [0, 1, 2], [1, 2, 3])


def _helpers(rows: list[tuple]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "volunteer_id": [r[0] for r in rows],
            "name": [r[1] for r in rows],
            "kind": ["party_member"] * len(rows),
            "skills": [r[2] for r in rows],
            "home_grid_id": [r[3] for r in rows],
        },
        geometry=[shapely.Point(r[4]) for r in rows],
        crs=CRS,
    )


def test_walking_not_straight_line_decides() -> None:
    wish = shapely.Point(0, 5)  # 5 m from the street
    helpers = _helpers(
        [
            (1, "隔墙的邻居", [], 7, (0, -45)),  # 50 m straight, 5+100+40+100+5 = 250 m on foot
            (2, "同街的党员", [], 7, (60, 5)),  # 60.2 m straight, 5+60+5 = 70 m on foot
        ]
    )
    got = match_helpers(_net(), wish, 7, "维修", helpers)
    assert [m.volunteer_id for m in got] == [2, 1]
    assert got[0].walk_m == pytest.approx(70.0) and got[1].walk_m == pytest.approx(250.0)
    assert got[1].straight_m == pytest.approx(50.0)
    assert got[1].straight_m < got[0].straight_m  # straight lines would rank them the other way


def test_skills_then_same_grid_then_distance_and_the_walking_limit() -> None:
    wish = shapely.Point(0, 5)
    helpers = _helpers(
        [
            (1, "近但不会修", ["代购"], 7, (10, 5)),
            (2, "会修、同网格、远", ["维修"], 7, (100, -45)),
            (3, "会修、别的网格、近", ["维修"], 8, (50, 5)),
            (4, "什么都做、太远", [], 7, (0, -45)),
        ]
    )
    got = match_helpers(_net(), wish, 7, "维修", helpers, max_walk_m=200.0)
    assert [m.volunteer_id for m in got] == [2, 3, 1]  # 4 is 250 m away: beyond the limit
    assert got[0].same_grid and got[0].skill_match and not got[2].skill_match
    assert got[0].walk_m == pytest.approx(5 + 100 + 40 + 5)
    with pytest.raises(EmptyInputError):
        match_helpers(_net(), wish, 7, "维修", helpers.iloc[0:0])
