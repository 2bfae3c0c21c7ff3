"""Auto-split: parts tile the grid, are contiguous, never cut a building, conserve households."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, box

from gis.partition import auto_partition_micro, auto_split, micro_counts
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
