"""Pure planning edits: create, reshape, split, merge, re-parent; refusals name the reason."""

from __future__ import annotations

import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, Polygon, box

from gis.errors import InvalidGeometryError
from gis.planning import (
    EditRefusedError,
    create_child,
    merge,
    next_child_code,
    reparent,
    reshape,
    split_by_line,
)

PARENT = box(0, 0, 200, 100)
LEFT, RIGHT = box(0, 0, 100, 100), box(100, 0, 200, 100)


@settings(max_examples=60, deadline=None)
@given(
    w=st.floats(20, 500),
    h=st.floats(20, 500),
    t=st.floats(0.05, 0.95),
    tilt=st.floats(-0.4, 0.4),
)
def test_split_conserves_area_and_merge_restores(w: float, h: float, t: float, tilt: float) -> None:
    grid = box(0, 0, w, h)
    x = w * t
    line = LineString([(x - tilt * h, -1), (x + tilt * h, h + 1)])
    try:
        parts = split_by_line(grid, line).parts
    except EditRefusedError:
        # only when the tilted line leaves through a side and not both pieces are real
        assert not (0 < x - tilt * h < w and 0 < x + tilt * h < w)
        return
    assert len(parts) >= 2
    assert sum(p.area for p in parts) == pytest.approx(grid.area, rel=1e-9)
    assert shapely.union_all(parts).symmetric_difference(grid).area < 1e-6 * grid.area
    if len(parts) == 2:
        merged = merge(parts[0], parts[1])
        assert merged.area == pytest.approx(grid.area, rel=1e-9)


def test_split_refuses_a_line_that_does_not_cross() -> None:
    with pytest.raises(EditRefusedError, match="edge to edge"):
        split_by_line(LEFT, LineString([(10, 10), (50, 50)]))
    with pytest.raises(InvalidGeometryError):
        split_by_line(LEFT, Polygon([(0, 0), (1, 1), (1, 0)]))


def test_merge_refuses_grids_touching_only_at_a_corner() -> None:
    with pytest.raises(EditRefusedError, match="share an edge"):
        merge(box(0, 0, 10, 10), box(10, 10, 20, 20))


def test_create_clips_to_parent_and_carves_from_siblings() -> None:
    drawn = box(80, 20, 300, 100)  # leaves the parent on the right
    out = reshape(drawn, Polygon(), PARENT, {"L": LEFT, "R": RIGHT})
    new = out[""]
    assert new.bounds == (80.0, 20.0, 200.0, 100.0)
    assert out["L"].area == pytest.approx(LEFT.area - 20 * 80)
    assert out["R"].area == pytest.approx(RIGHT.area - 100 * 80)
    with pytest.raises(EditRefusedError, match="separate pieces"):
        reshape(box(80, 20, 300, 80), Polygon(), PARENT, {"L": LEFT, "R": RIGHT})
    assert new.area + out["L"].area + out["R"].area == pytest.approx(PARENT.area)


def test_create_child_in_free_space_only() -> None:
    free_parent = box(0, 0, 300, 100)
    new = create_child(box(190, 10, 290, 90), free_parent, [LEFT, RIGHT])
    assert new.bounds == (200.0, 10.0, 290.0, 90.0)
    with pytest.raises(EditRefusedError, match="outside its parent"):
        create_child(box(500, 500, 600, 600), free_parent, [LEFT, RIGHT])


def test_reshape_gives_freed_area_to_the_neighbour() -> None:
    out = reshape(box(0, 0, 80, 100), LEFT, PARENT, {"R": RIGHT})
    assert out[""].area == pytest.approx(8000)
    assert out["R"].area == pytest.approx(12000)


def test_reshape_refuses_to_swallow_or_cut_a_neighbour() -> None:
    with pytest.raises(EditRefusedError, match="swallow"):
        reshape(PARENT, LEFT, PARENT, {"R": RIGHT})
    with pytest.raises(EditRefusedError, match="separate pieces"):
        reshape(LEFT.union(box(100, 40, 200, 60)), LEFT, PARENT, {"R": RIGHT})


def test_reshape_refuses_a_gap_nobody_can_fill() -> None:
    lonely = box(0, 0, 100, 100)
    with pytest.raises(EditRefusedError, match="gap"):
        reshape(box(0, 0, 50, 100), lonely, lonely, {})


def test_reparent_moves_the_shared_boundary() -> None:
    old, new = box(0, 0, 100, 100), box(100, 0, 200, 100)
    child = box(80, 0, 100, 50)
    res = reparent(child, old, new)
    assert res.old_parent.area == pytest.approx(10000 - 1000)
    assert res.new_parent.area == pytest.approx(10000 + 1000)
    with pytest.raises(EditRefusedError, match="share an edge"):
        reparent(box(0, 0, 20, 20), old, new)


def test_next_child_code_follows_the_scheme() -> None:
    taken = {"4101710030010101", "4101710030010102"}
    assert next_child_code("41017100300101", "micro", taken) == "4101710030010103"
    assert next_child_code("410171003", "dedicated", set()) == "410171003901"
    with pytest.raises(EditRefusedError):
        next_child_code("410171003", "street", set())
