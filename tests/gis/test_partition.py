"""Auto-split and auto-partition: parts tile the grid, are contiguous, never cut a building,
conserve households, and micro grids stay within their household bounds."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, box

from gis.partition import (
    auto_partition_micro,
    auto_split,
    building_cells,
    graph_partition,
    micro_counts,
)
from gis.planning import EditRefusedError


def _blocks(nx: int, ny: int, hh: list[int]) -> tuple[list, list[int]]:
    geoms = [
        box(x * 20 + 3, y * 20 + 3, x * 20 + 15, y * 20 + 15) for x in range(nx) for y in range(ny)
    ]
    return geoms, hh[: nx * ny]


@settings(max_examples=40, deadline=None)
@given(
    nx=st.integers(2, 8),
    ny=st.integers(2, 8),
    n=st.integers(2, 6),
    hh=st.lists(st.integers(0, 30), min_size=64, max_size=64),
)
def test_auto_split_parts_tile_contiguous_and_conserve(
    nx: int, ny: int, n: int, hh: list[int]
) -> None:
    area = box(0, 0, nx * 20, ny * 20)
    buildings, households = _blocks(nx, ny, hh)
    if len(buildings) < n:
        with pytest.raises(EditRefusedError):
            auto_split(area, buildings, households, n)
        return
    result = auto_split(area, buildings, households, n)
    assert len(result.parts) == n
    assert sum(result.households) == sum(households)
    assert sum(p.area for p in (q.geometry for q in result.parts)) == pytest.approx(area.area)
    owner = []
    for part in result.parts:
        assert len(part.geometry.geoms) == 1  # contiguous
        for i in part.buildings:
            assert part.geometry.contains(buildings[i])  # never cut
        owner.extend(part.buildings)
    assert sorted(owner) == list(range(len(buildings)))


def test_auto_split_balances_uniform_households() -> None:
    buildings, hh = _blocks(8, 8, [10] * 64)
    result = auto_split(box(0, 0, 160, 160), buildings, hh, 4)
    assert result.households == [160, 160, 160, 160]
    assert result.imbalance == 0.0


def test_auto_split_prefers_a_street_when_balance_allows() -> None:
    buildings, hh = _blocks(8, 4, [10] * 32)
    street = LineString([(80, -5), (80, 85)])
    with_street = auto_split(box(0, 0, 160, 80), buildings, hh, 2, [street])
    assert with_street.street_cuts == 1
    cut = shapely.intersection(with_street.parts[0].geometry, with_street.parts[1].geometry)
    assert cut.length == pytest.approx(80) and cut.distance(street) < 4.0


def test_auto_split_of_an_l_shape_keeps_parts_contiguous() -> None:
    area = box(0, 0, 160, 160).difference(box(80, 80, 160, 160))
    buildings = [b for b in _blocks(8, 8, [5] * 64)[0] if area.contains(b)]
    result = auto_split(area, buildings, [5] * len(buildings), 3)
    assert all(len(p.geometry.geoms) == 1 for p in result.parts)
    assert sum(result.households) == 5 * len(buildings)


def test_micro_partition_in_range_or_refused() -> None:
    rng = np.random.default_rng(3)
    hh = rng.integers(1, 9, 100).tolist()
    buildings, _ = _blocks(10, 10, hh)
    result = auto_partition_micro(box(0, 0, 200, 200), buildings, hh)
    assert all(30 <= h <= 80 for h in result.households)
    assert sum(result.households) == sum(hh)
    with pytest.raises(EditRefusedError, match="too few"):
        auto_partition_micro(box(0, 0, 40, 40), buildings[:2], [5, 5])


def test_micro_counts_cover_the_feasible_range() -> None:
    assert micro_counts(110)[0] == 2
    assert set(micro_counts(110)) == {2, 3}
    assert micro_counts(30) == [1]


def _check_tiling(area, buildings, households, result, lo: int, hi: int) -> None:
    """Every property a partition into micro grids must have."""
    assert sum(result.households) == sum(households)
    assert all(lo <= h <= hi for h in result.households), result.households
    assert sum(p.geometry.area for p in result.parts) == pytest.approx(area.area, rel=1e-9)
    union = shapely.union_all([p.geometry for p in result.parts])
    assert union.symmetric_difference(area).area < 1e-6 * area.area  # tiles, no gap, no overlap
    owner = []
    for part in result.parts:
        assert len(part.geometry.geoms) == 1  # contiguous
        assert part.households == sum(households[i] for i in part.buildings)
        grown = part.geometry.buffer(1e-6)
        for i in part.buildings:
            assert grown.contains(buildings[i].intersection(area))  # never cut
        owner.extend(part.buildings)
    assert sorted(owner) == list(range(len(buildings)))


@st.composite
def _district(draw: st.DrawFn) -> tuple:
    """A grid (a rectangle or an L) with buildings of 0–12 households in jittered blocks and,
    sometimes, streets between them and a road running through buildings."""
    nx, ny = draw(st.integers(3, 9)), draw(st.integers(3, 9))
    area = box(0, 0, nx * 20, ny * 20)
    if draw(st.booleans()) and nx > 3 and ny > 3:
        area = area.difference(box(nx * 10, ny * 10, nx * 20 + 1, ny * 20 + 1))
    buildings, households = [], []
    for x in range(nx):
        for y in range(ny):
            w, h = draw(st.floats(3, 14)), draw(st.floats(3, 14))
            dx, dy = draw(st.floats(1, 18 - w)), draw(st.floats(1, 18 - h))
            b = box(x * 20 + dx, y * 20 + dy, x * 20 + dx + w, y * 20 + dy + h)
            if area.contains(b):
                buildings.append(b)
                households.append(draw(st.integers(0, 12)))
    roads = []
    if draw(st.booleans()):
        k = draw(st.integers(1, nx - 1))
        roads.append(LineString([(k * 20, -5), (k * 20, ny * 20 + 5)]))
    if draw(st.booleans()):
        k = draw(st.integers(1, ny - 1))
        roads.append(LineString([(-5, k * 20), (nx * 20 + 5, k * 20)]))
    if draw(st.booleans()):
        roads.append(LineString([(-5, -3), (nx * 20 + 5, ny * 20 + 7)]))  # through buildings
    return area, buildings, households, roads


@settings(max_examples=60, deadline=None)
@given(district=_district(), lo=st.integers(24, 40), extra=st.integers(0, 40))
def test_graph_partition_tiles_contiguous_within_bounds(
    district: tuple, lo: int, extra: int
) -> None:
    area, buildings, households, roads = district
    hi = 2 * lo + 12 + extra  # buildings hold at most 12: a partition exists
    if sum(households) < lo:
        with pytest.raises(EditRefusedError):
            graph_partition(area, buildings, households, roads, min_hh=lo, max_hh=hi)
        return
    result = graph_partition(area, buildings, households, roads, min_hh=lo, max_hh=hi)
    _check_tiling(area, buildings, households, result, lo, hi)


@settings(max_examples=30, deadline=None)
@given(district=_district())
def test_building_cells_tile_the_grid_and_hold_their_building(district: tuple) -> None:
    area, buildings, _, roads = district
    if len(buildings) < 2:
        return
    cells = building_cells(area, buildings, roads)
    assert len(cells) == len(buildings)
    assert sum(c.area for c in cells) == pytest.approx(area.area, rel=1e-9)
    for b, c in zip(buildings, cells, strict=True):
        assert c.geom_type == "Polygon"  # one piece
        assert c.buffer(1e-6).contains(b)


def test_partition_falls_back_to_the_building_graph_when_straight_cuts_fail() -> None:
    # a staggered 13 x 7 block of buildings with 2-12 households: the straight cuts give
    # parts outside 45-55 households, the building graph does not
    rng = np.random.default_rng(11)
    area = box(0, 0, 260, 140)
    buildings = [
        box(x * 20 + 3 + 6 * (y % 2), y * 20 + 3, x * 20 + 11 + 6 * (y % 2), y * 20 + 15)
        for x in range(13)
        for y in range(7)
    ]
    households = rng.integers(2, 13, len(buildings)).tolist()
    with pytest.raises(EditRefusedError):
        for n in micro_counts(sum(households), 45, 55):
            res = auto_split(area, buildings, households, n)
            if all(45 <= h <= 55 for h in res.households):
                break
        else:
            raise EditRefusedError("no straight partition")
    result = auto_partition_micro(area, buildings, households, min_hh=45, max_hh=55)
    assert any("building-graph" in note for note in result.notes)
    _check_tiling(area, buildings, households, result, 45, 55)


def test_graph_partition_follows_a_street_between_blocks() -> None:
    # two blocks of 6 buildings x 10 households on either side of a street at x = 100
    buildings = [box(x, y, x + 12, y + 12) for x in (10, 40, 70, 115, 145, 175) for y in (10, 60)]
    households = [10] * len(buildings)
    street = LineString([(100, -5), (100, 105)])
    result = graph_partition(
        box(0, 0, 200, 100), buildings, households, [street], min_hh=50, max_hh=70
    )
    assert result.households == [60, 60]
    shared = shapely.intersection(result.parts[0].geometry, result.parts[1].geometry)
    assert shared.length == pytest.approx(100) and shared.hausdorff_distance(street) < 5.5
    assert result.street_cuts == 1


def test_micro_partition_refuses_a_building_above_the_maximum_and_names_it() -> None:
    buildings, _ = _blocks(4, 4, [0] * 16)
    households = [5] * 16
    households[6] = 90
    with pytest.raises(EditRefusedError, match=r"building B6 \(90 households\)"):
        auto_partition_micro(
            box(0, 0, 80, 80), buildings, households, names=[f"B{i}" for i in range(16)]
        )
    with pytest.raises(EditRefusedError, match="not a range"):
        auto_partition_micro(box(0, 0, 80, 80), buildings, [5] * 16, min_hh=50, max_hh=40)
