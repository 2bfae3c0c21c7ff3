"""The hierarchy validation report on hand-built grids with exact areas (metric CRS)."""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import MultiPolygon, box

from gis.grids import check_hierarchy, expected_code_ok

# EPSG:4547 is CGCS2000 / 3-degree GK CM 114E, the metric CRS the checker picks here.
X0, Y0 = 455_000.0, 3_850_000.0


def _mp(x0: float, y0: float, x1: float, y1: float) -> MultiPolygon:
    return MultiPolygon([box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)])


def _grids(micro: list[tuple[str, tuple[float, float, float, float]]]) -> gpd.GeoDataFrame:
    rows = [
        ("410171003", "street", None, _mp(0, 0, 200, 100)),
        ("410171003001", "community", "410171003", _mp(0, 0, 200, 100)),
        ("41017100300101", "grid", "410171003001", _mp(0, 0, 200, 100)),
    ]
    rows += [(code, "micro", "41017100300101", _mp(*xy)) for code, xy in micro]
    frame = gpd.GeoDataFrame(
        rows, columns=["code", "level", "parent_code", "geometry"], crs="EPSG:4547"
    )
    return frame.to_crs(4326)


def test_a_clean_tiling_has_no_problems() -> None:
    grids = _grids(
        [("4101710030010101", (0, 0, 100, 100)), ("4101710030010102", (100, 0, 200, 100))]
    )
    report = check_hierarchy(grids)
    assert len(report) == 0
    assert report.crs.to_epsg() == 4326


def test_gap_overlap_and_sliver_are_reported_with_area_and_grids() -> None:
    grids = _grids(
        [
            ("4101710030010101", (0, 0, 90, 100)),  # 10 m gap at x 90..100 -> 1000 m²
            ("4101710030010102", (100, 0, 150.5, 100)),
            ("4101710030010103", (150, 0, 200, 100)),  # 0.5 m overlap -> sliver, 50 m²
        ]
    )
    report = check_hierarchy(grids).sort_values("kind").reset_index(drop=True)
    kinds = dict(zip(report["kind"], report["area_m2"], strict=True))
    assert kinds["gap"] == pytest.approx(1000.0, rel=1e-3)
    assert kinds["sliver"] == pytest.approx(50.0, rel=1e-3)
    sliver = report[report["kind"] == "sliver"].iloc[0]
    assert sliver["grids"] == "4101710030010102,4101710030010103"
    gap_geom = report[report["kind"] == "gap"].geometry.iloc[0]
    assert gap_geom.centroid.x == pytest.approx(
        gpd.GeoSeries.from_xy([X0 + 95], [Y0 + 50], crs=4547).to_crs(4326).x[0], abs=1e-7
    )


def test_a_child_spilling_out_of_its_parent_is_reported() -> None:
    grids = _grids(
        [("4101710030010101", (0, 0, 100, 100)), ("4101710030010102", (100, 0, 210, 100))]
    )
    report = check_hierarchy(grids)
    spill = report[report["kind"] == "spill"]
    assert len(spill) == 1
    assert spill["area_m2"].iloc[0] == pytest.approx(1000.0, rel=1e-3)
    assert spill["grids"].iloc[0] == "4101710030010102"


def test_codes_and_parents_are_checked() -> None:
    grids = _grids(
        [("4101710030010101", (0, 0, 100, 100)), ("4101710030020102", (100, 0, 200, 100))]
    )
    grids.loc[len(grids)] = ["4101710030010101", "micro", "41017100300101", grids.geometry.iloc[3]]
    report = check_hierarchy(grids)
    details = " | ".join(report.loc[report["kind"] == "code", "detail"])
    assert "does not start with its parent's code 41017100300101" in details
    assert "used more than once" in details


def test_invalid_geometry_is_reported_not_raised() -> None:
    grids = _grids(
        [("4101710030010101", (0, 0, 100, 100)), ("4101710030010102", (100, 0, 200, 100))]
    )
    bowtie = gpd.GeoSeries.from_wkt(
        [
            f"MULTIPOLYGON((({X0} {Y0},{X0 + 100} {Y0 + 100},{X0 + 100} {Y0},{X0} {Y0 + 100},"
            f"{X0} {Y0})))"
        ],
        crs=4547,
    ).to_crs(4326)
    grids.loc[3, "geometry"] = bowtie.iloc[0]
    report = check_hierarchy(grids)
    assert "Self-intersection" in report.loc[report["kind"] == "invalid_geometry", "detail"].iloc[0]


@pytest.mark.parametrize(
    ("code", "level", "parent", "problem"),
    [
        ("410171003", "street", None, None),
        ("410171003001", "community", "410171003", None),
        ("410171003901", "community", "410171003", "does not have the community form"),
        ("410171003901", "dedicated", "410171003", None),
        ("41017100300101", "grid", "410171003002", "does not start with"),
        ("4101710030010101", "micro", None, "has no parent"),
        ("12345", "micro", "41017100300101", "does not have the micro form"),
    ],
)
def test_code_scheme(code: str, level: str, parent: str | None, problem: str | None) -> None:
    result = expected_code_ok(code, level, parent)
    if problem is None:
        assert result is None
    else:
        assert result is not None and problem in result
