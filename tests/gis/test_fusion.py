"""多网融合 crosswalk on a layout whose answer is known by construction.

Our grids: 3 x 2 squares of 100 m (codes O<col><row>) in the CGCS2000 3-degree zone CM 114E.
The foreign layer:

* A = O00 + O10 shifted 2 m east: it leaves a 2 m strip of O00 uncovered and laps 2 m into
  O20 (a sliver of 200 m², mean width 1.96 m);
* B1 / B2 = O20 (minus A's 2 m) cut at x = 250: B1 holds 30 households, B2 10;
* C = O01 + O11 + O21 exactly (the top row).
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, box

from gis.errors import GisError
from gis.fusion import FusionThresholds, crosswalk

ZONE = "EPSG:4547"
X0, Y0 = 450_000.0, 3_850_000.0


def _sq(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def _ours() -> gpd.GeoDataFrame:
    codes, geoms = [], []
    for col in range(3):
        for row in range(2):
            codes.append(f"O{col}{row}")
            geoms.append(_sq(col * 100, row * 100, col * 100 + 100, row * 100 + 100))
    return gpd.GeoDataFrame({"code": codes}, geometry=geoms, crs=ZONE).to_crs(4326)


def _theirs() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": ["A", "B1", "B2", "C"], "name": ["甲", "乙一", "乙二", "丙"]},
        geometry=[
            _sq(2, 0, 202, 100),
            _sq(202, 0, 250, 100),
            _sq(250, 0, 300, 100),
            _sq(0, 100, 300, 200),
        ],
        crs=ZONE,
    ).to_crs(4326)


def _buildings() -> gpd.GeoDataFrame:
    pts = [(50, 50, 10), (150, 50, 10), (225, 50, 30), (275, 50, 10)]
    pts += [(50, 150, 10), (150, 150, 10), (250, 150, 10)]
    return gpd.GeoDataFrame(
        {"households": [h for _, _, h in pts]},
        geometry=[Point(X0 + x, Y0 + y) for x, y, _ in pts],
        crs=ZONE,
    ).to_crs(4326)


@pytest.fixture(scope="module")
def cw():  # type: ignore[no-untyped-def]
    return crosswalk(_ours(), _theirs(), _buildings())


def _pair(cw, t: str, o: str):  # type: ignore[no-untyped-def]
    rows = cw.pairs[(cw.pairs["their_code"] == t) & (cw.pairs["our_code"] == o)]
    assert len(rows) == 1, (t, o)
    return rows.iloc[0]


def test_pairs_have_the_constructed_areas_shares_and_households(cw) -> None:  # type: ignore[no-untyped-def]
    assert len(cw.pairs) == 8
    a0 = _pair(cw, "A", "O00")
    assert a0.overlap_m2 == pytest.approx(9800, rel=1e-5)
    assert a0.share_of_ours == pytest.approx(0.98, abs=1e-4)
    assert a0.share_of_theirs == pytest.approx(0.49, abs=1e-4)
    assert (a0.households, a0.relation) == (10, "contains")
    b1 = _pair(cw, "B1", "O20")
    assert b1.overlap_m2 == pytest.approx(4800, rel=1e-5)
    assert (b1.households, b1.relation) == (30, "inside")
    assert b1.hh_share_of_ours == pytest.approx(0.75) and b1.hh_share_of_theirs == 1.0
    assert _pair(cw, "C", "O11").relation == "contains"


def test_the_shifted_boundary_is_flagged_as_a_sliver(cw) -> None:  # type: ignore[no-untyped-def]
    s = _pair(cw, "A", "O20")
    assert s.relation == "sliver"
    assert s.overlap_m2 == pytest.approx(200, rel=1e-4)
    assert s.mean_width_m == pytest.approx(2 * 200 / 204, abs=0.01)
    assert len(cw.slivers) == 1
    assert cw.slivers.geometry.iloc[0].intersects(_ours().geometry.iloc[4])  # O20
    # wider thresholds: a 2 m band is no sliver when slivers must be under 1 m
    narrow = crosswalk(
        _ours(), _theirs(), _buildings(), thresholds=FusionThresholds(sliver_width_m=1.0)
    )
    assert len(narrow.slivers) == 1  # still one: 2 % of both sides is below sliver_share
    loose = crosswalk(
        _ours(),
        _theirs(),
        _buildings(),
        thresholds=FusionThresholds(sliver_width_m=1.0, sliver_share=0.01),
    )
    assert len(loose.slivers) == 0 and _pair(loose, "A", "O20").relation == "partial"


def test_status_home_owner_and_uncovered(cw) -> None:  # type: ignore[no-untyped-def]
    theirs = cw.theirs.set_index("code")
    assert theirs.loc["A", "status"] == "misaligned"  # its two grids, plus a sliver
    assert theirs.loc["B1", "status"] == "aligned" and theirs.loc["C", "status"] == "aligned"
    assert theirs.loc["A", "home"] == "O10"  # 10 households each: the larger overlap wins
    assert theirs.loc["B2", "home"] == "O20"
    ours = cw.ours.set_index("code")
    assert ours.loc["O20", "owner"] == "B1" and ours.loc["O20", "owner_hh_share"] == 0.75
    assert ours.loc["O20", "foreign"] == "B1,B2"
    assert ours.loc["O00", "uncovered_m2"] == pytest.approx(200, rel=1e-4)
    assert ours.loc["O10", "uncovered_m2"] == pytest.approx(0, abs=0.01)


def test_fused_network_snaps_to_our_boundaries_with_a_list_of_changes(cw) -> None:  # type: ignore[no-untyped-def]
    ch = cw.changes.set_index("code")
    assert ch.loc["A", "action"] == "keep" and ch.loc["A", "members"] == "O00,O10"
    assert ch.loc["A", "area_moved_m2"] == pytest.approx(400, rel=1e-4)
    assert ch.loc["B1", "action"] == "reshape" and ch.loc["B1", "members"] == "O20"
    assert (ch.loc["B1", "households_before"], ch.loc["B1", "households_after"]) == (30, 40)
    assert ch.loc["B2", "action"] == "absorb" and ch.loc["B2", "into"] == "B1"
    assert ch.loc["C", "area_moved_m2"] == pytest.approx(0, abs=0.01)
    fused = cw.fused.set_index("code")
    assert sorted(fused.index) == ["A", "B1", "C"]
    ours = _ours().set_index("code")
    want = shapely.union_all([ours.geometry["O00"], ours.geometry["O10"]])
    assert fused.geometry["A"].symmetric_difference(want).area < 1e-12
    # the fused layer tiles our grids exactly: same total area, no overlap
    total = shapely.union_all(fused.geometry.values)
    assert total.symmetric_difference(shapely.union_all(ours.geometry.values)).area < 1e-12
    assert int(fused["households"].sum()) == int(_buildings()["households"].sum())


def test_bad_layers_are_refused_with_the_reason() -> None:
    bow = gpd.GeoDataFrame(
        {"code": ["X"]},
        geometry=[shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])],
        crs=4326,
    )
    with pytest.raises(GisError, match="invalid: Self-intersection"):
        crosswalk(_ours(), bow, _buildings())
    dup = _theirs()
    dup.loc[1, "code"] = "A"
    with pytest.raises(GisError, match="code A more than once"):
        crosswalk(_ours(), dup, _buildings())
    with pytest.raises(GisError, match="sliver_share"):
        FusionThresholds(sliver_share=0.99)


@settings(max_examples=25, deadline=None)
@given(st.floats(-40, 40), st.floats(-40, 40))
def test_overlaps_and_households_are_conserved_under_any_shift(dx: float, dy: float) -> None:
    """Shifted copies of our grids: each foreign grid's overlaps add up to the part of it
    inside our grids, and pair households add up to the households in both layers."""
    theirs = _ours().to_crs(ZONE)
    theirs["geometry"] = theirs.geometry.translate(dx, dy)
    theirs["code"] = "F" + theirs["code"]
    cw = crosswalk(_ours(), theirs.to_crs(4326), _buildings())
    ours_union = shapely.union_all(_ours().to_crs(ZONE).geometry.values)
    for code, g in zip(theirs["code"], theirs.geometry, strict=True):
        inside = g.intersection(ours_union).area
        got = cw.pairs.loc[cw.pairs["their_code"] == code, "overlap_m2"].sum()
        assert got == pytest.approx(inside, abs=0.5 * 8 + 0.05)  # rounding, noise floor
    b = _buildings().to_crs(ZONE)
    their_union = shapely.union_all(theirs.geometry.values)
    in_both = b[b.intersects(ours_union) & b.intersects(their_union)]
    assert cw.pairs["households"].sum() == in_both["households"].sum()
