"""GridIndex: exact point location against brute force, the boundary rule, chains and CRS."""

from __future__ import annotations

import json
from fractions import Fraction

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon, box

from gis.crs import wgs84_to_bd09, wgs84_to_gcj02
from gis.errors import (
    CoordinateRangeError,
    CRSError,
    EmptyInputError,
    HierarchyError,
    InvalidGeometryError,
)
from gis.geocode import CHAIN_COLUMNS, GridIndex, IndexOptions, assign_points, orient_sign
from tests.brute import brute_locate

STREET = "410171003"
K1, K2 = STREET + "001", STREET + "002"
G1, G2, G3 = K1 + "01", K1 + "02", K2 + "01"
# Codes deliberately out of spatial order so that "smallest code" is a real choice.
# Order: B < A < C2 < C1 < E < D.
A = G1 + "03"  # [0,2]² with a hole [0.5,1.5]²
B = G1 + "01"  # the island filling A's hole
C1 = G2 + "02"  # triangle (2,0) (4,0) (4,2)
C2 = G2 + "01"  # triangle (2,0) (4,2) (2,2): shares the diagonal with C1
D = G3 + "02"  # two parts: [0,1]x[2,4] and [3,4]x[2,4]
E = G3 + "01"  # [1,3]x[2,4], between D's parts
DED1 = STREET + "902"  # dedicated [1.5,2.5]²
DED2 = STREET + "901"  # dedicated [3,3.5]²


def mp(*polys: Polygon) -> MultiPolygon:
    return MultiPolygon(list(polys))


def small_grids() -> gpd.GeoDataFrame:
    """A street office tiled exactly by 7 micro grids in small exact coordinates."""
    micro = {
        A: mp(
            Polygon(
                [(0, 0), (2, 0), (2, 2), (0, 2)], [[(0.5, 0.5), (1.5, 0.5), (1.5, 1.5), (0.5, 1.5)]]
            )
        ),
        B: mp(box(0.5, 0.5, 1.5, 1.5)),
        C1: mp(Polygon([(2, 0), (4, 0), (4, 2)])),
        C2: mp(Polygon([(2, 0), (4, 2), (2, 2)])),
        D: mp(box(0, 2, 1, 4), box(3, 2, 4, 4)),
        E: mp(box(1, 2, 3, 4)),
    }
    parent = {A: G1, B: G1, C1: G2, C2: G2, D: G3, E: G3}
    rows = [
        {"code": STREET, "level": "street", "parent_code": None, "geometry": mp(box(0, 0, 4, 4))},
        {"code": K1, "level": "community", "parent_code": STREET, "geometry": mp(box(0, 0, 4, 2))},
        {"code": K2, "level": "community", "parent_code": STREET, "geometry": mp(box(0, 2, 4, 4))},
        {"code": G1, "level": "grid", "parent_code": K1, "geometry": mp(box(0, 0, 2, 2))},
        {"code": G2, "level": "grid", "parent_code": K1, "geometry": mp(box(2, 0, 4, 2))},
        {"code": G3, "level": "grid", "parent_code": K2, "geometry": mp(box(0, 2, 4, 4))},
        {
            "code": DED1,
            "level": "dedicated",
            "parent_code": STREET,
            "geometry": mp(box(1.5, 1.5, 2.5, 2.5)),
        },
        {
            "code": DED2,
            "level": "dedicated",
            "parent_code": STREET,
            "geometry": mp(box(3, 3, 3.5, 3.5)),
        },
    ]
    rows += [
        {"code": code, "level": "micro", "parent_code": parent[code], "geometry": geom}
        for code, geom in micro.items()
    ]
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    frame["name"] = "网格 " + frame["code"]
    return frame


GRIDS = small_grids()
MICRO = GRIDS[GRIDS["level"] == "micro"]
DEDICATED = GRIDS[GRIDS["level"] == "dedicated"]
VERTICES = np.unique(shapely.get_coordinates(MICRO.geometry.values), axis=0)
OPTIONS = [
    IndexOptions(),
    IndexOptions(max_cells=64, min_cells=16, cells_per_part=4),  # coarse: many mixed cells
    IndexOptions(max_cells=1 << 16, cells_per_part=1 << 14, chunk_size=7, resolve_batch=5),
]


@pytest.fixture(scope="module", params=range(len(OPTIONS)), ids=["default", "coarse", "fine"])
def index(request: pytest.FixtureRequest) -> GridIndex:
    return GridIndex.from_grids(GRIDS, options=OPTIONS[request.param])


def codes_of(index: GridIndex, rows: np.ndarray) -> list[str | None]:
    micro = index.micro["code"].tolist()
    return [micro[i] if i >= 0 else None for i in rows]


def dedicated_codes_of(index: GridIndex, rows: np.ndarray) -> list[str | None]:
    ded = index.dedicated["code"].tolist()
    return [ded[i] if i >= 0 else None for i in rows]


def edge_points(geoms: np.ndarray, picks: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Points at fractions k/64 along boundary segments (exact: all coordinates are dyadic)."""
    rings = shapely.get_coordinates(shapely.boundary(geoms), return_index=True)
    coords, ring_of = rings
    xs, ys = [], []
    for seg, k in picks:
        i = seg % (len(coords) - 1)
        if ring_of[i] != ring_of[i + 1]:
            i -= 1
        a, b = coords[i], coords[i + 1]
        t = k / 64.0
        xs.append(a[0] + t * (b[0] - a[0]))
        ys.append(a[1] + t * (b[1] - a[1]))
    return np.array(xs), np.array(ys)


# ------------------------------------------------------------------------ the boundary rule


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (0.25, 0.25, A),  # interior of A
        (1.0, 1.0, B),  # island in A's hole
        (0.5, 1.0, B),  # on the hole's edge: A and B cover it, B has the smaller code
        (0.5, 0.5, B),  # hole corner
        (3.5, 0.5, C1),  # interior of C1 (below the diagonal)
        (2.5, 1.5, C2),  # interior of C2
        (3.0, 1.0, C2),  # on the shared diagonal y = x - 2: C2 < C1
        (2.25, 0.25, C2),  # on the diagonal at a fraction
        (4.0, 2.0, C2),  # diagonal end on the office edge
        (2.0, 1.0, A),  # A | C2 edge: A's code is smaller than C2's
        (2.0, 2.0, A),  # A, C2 and E meet: A has the smallest code
        (0.5, 3.0, D),  # D's first part
        (3.5, 3.0, D),  # D's second part
        (1.0, 3.0, E),  # D | E edge: E < D
        (3.0, 2.0, C2),  # C2's top edge meets E's bottom edge and D's corner: C2 smallest
        (0.0, 0.0, A),  # office corner
        (4.0, 4.0, D),
        (4.0, 0.0, C1),
        (4.000000000000001, 1.0, None),  # just outside
        (-1e-300, 1.0, None),
        (2.0, -5e-324, None),  # the smallest subnormal below the office edge
        (10.0, 10.0, None),
    ],
)
def test_boundary_rule(index: GridIndex, x: float, y: float, expected: str | None) -> None:
    got = codes_of(index, index.locate(np.array([x]), np.array([y])))[0]
    assert got == expected
    assert brute_locate(MICRO, np.array([x]), np.array([y]))[0] == expected
    one = index.locate_one(x, y)
    assert (one["micro"]["code"] if one else None) == expected


def test_outside_and_non_finite_points_are_kept_as_outside(index: GridIndex) -> None:
    lon = np.array([np.nan, np.inf, -np.inf, 1.0, 1e308, -200.0])
    lat = np.array([1.0, 1.0, 1.0, np.nan, 1e308, 95.0])
    rows = index.locate(lon, lat)
    assert rows.tolist() == [-1] * 6
    chain = index.chain(lon, lat)
    assert len(chain) == 6
    assert chain.map(lambda v: v is None).all().all()
    assert index.locate_one(float("nan"), 1.0) is None


def test_locate_keeps_the_input_shape(index: GridIndex) -> None:
    lon = np.array([[0.25, 3.5], [1.0, 10.0]])
    lat = np.array([[0.25, 0.5], [1.0, 10.0]])
    rows = index.locate(lon, lat)
    assert rows.shape == (2, 2)
    assert codes_of(index, rows.ravel()) == [A, C1, B, None]


# ------------------------------------------------------------------ property: brute force


point_sets = st.one_of(
    # exact vertices of the micro grids (shared corners, hole corners, multipolygon parts)
    st.lists(st.integers(0, len(VERTICES) - 1), min_size=1, max_size=30).map(
        lambda ix: (VERTICES[ix, 0], VERTICES[ix, 1])
    ),
    # exact points along edges: midpoints and other dyadic fractions
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 64)), min_size=1, max_size=30).map(
        lambda picks: edge_points(MICRO.geometry.values, picks)
    ),
    # dyadic lattice points (hits holes, parts, edges and the outside exactly)
    st.lists(st.tuples(st.integers(-8, 72), st.integers(-8, 72)), min_size=1, max_size=30).map(
        lambda ij: (np.array([i / 16 for i, _ in ij]), np.array([j / 16 for _, j in ij]))
    ),
    # arbitrary doubles around the office
    st.lists(
        st.tuples(
            st.floats(-0.5, 4.5, allow_nan=False, allow_subnormal=True),
            st.floats(-0.5, 4.5, allow_nan=False, allow_subnormal=True),
        ),
        min_size=1,
        max_size=30,
    ).map(lambda xy: (np.array([p[0] for p in xy]), np.array([p[1] for p in xy]))),
)


@settings(max_examples=150, deadline=None)
@given(points=point_sets)
def test_locate_equals_brute_force(index: GridIndex, points: tuple[np.ndarray, np.ndarray]) -> None:
    lon, lat = (np.asarray(v, dtype=float) for v in points)
    expected = brute_locate(MICRO, lon, lat)
    assert codes_of(index, index.locate(lon, lat)) == expected
    one = [index.locate_one(x, y) for x, y in zip(lon, lat, strict=True)]
    assert [o["micro"]["code"] if o else None for o in one] == expected
    assert dedicated_codes_of(index, index.locate_dedicated(lon, lat)) == brute_locate(
        DEDICATED, lon, lat
    )


def voronoi_grids(seed: int, n: int = 40) -> gpd.GeoDataFrame:
    """Micro grids with arbitrary double coordinates: edges are not exactly representable."""
    rng = np.random.default_rng(seed)
    bounds = (113.53, 34.79, 113.57, 34.81)
    xy = np.column_stack(
        (rng.uniform(bounds[0], bounds[2], n), rng.uniform(bounds[1], bounds[3], n))
    )
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=box(*bounds))
    )
    cells = shapely.intersection(cells, box(*bounds))
    codes = [f"{STREET}0010{k:04d}" for k in rng.permutation(len(cells))]
    return gpd.GeoDataFrame(
        {"code": codes, "level": "micro", "parent_code": None},
        geometry=[mp(c) for c in cells],
        crs="EPSG:4326",
    )


VORONOI = voronoi_grids(3)
VORONOI_INDEXES = [GridIndex.from_grids(VORONOI, options=o) for o in OPTIONS[:2]]
V_COORDS, V_RING = shapely.get_coordinates(VORONOI.boundary.values, return_index=True)


@settings(max_examples=100, deadline=None)
@given(
    picks=st.lists(
        st.tuples(st.integers(0, len(V_COORDS) - 2), st.sampled_from([0.0, 0.5, 0.25, 1 / 3, 0.7])),
        min_size=1,
        max_size=40,
    ),
    which=st.integers(0, len(VORONOI_INDEXES) - 1),
)
def test_points_within_rounding_of_edges_match_geos(
    picks: list[tuple[int, float]], which: int
) -> None:
    # a + t (b - a) in doubles lands on, or within an ulp of, the edge: the exact sign
    # decides, and must agree with GEOS' robust predicate.
    i = np.array([p[0] for p in picks])
    t = np.array([p[1] for p in picks])
    a, b = V_COORDS[i], V_COORDS[i + 1]
    lon = a[:, 0] + t * (b[:, 0] - a[:, 0])
    lat = a[:, 1] + t * (b[:, 1] - a[:, 1])
    index = VORONOI_INDEXES[which]
    assert codes_of(index, index.locate(lon, lat)) == brute_locate(VORONOI, lon, lat)


def test_random_points_on_voronoi_grids_match_brute_force() -> None:
    rng = np.random.default_rng(5)
    lon = rng.uniform(113.525, 113.575, 5000)
    lat = rng.uniform(34.785, 34.815, 5000)
    expected = brute_locate(VORONOI, lon, lat)
    for index in VORONOI_INDEXES:
        assert codes_of(index, index.locate(lon, lat)) == expected
    assert sum(e is None for e in expected) > 100  # some points really are outside


# ----------------------------------------------------------------------------- exactness


def test_orient_sign_is_exact_where_doubles_cancel() -> None:
    # Near the line through (12, 12) and (24, 24) the plain double determinant is wrong in
    # a large share of cases (Shewchuk's classic example).
    base = 0.5
    ulp = np.spacing(base)
    ks = np.arange(-32, 33)
    px = np.repeat(base + ks * ulp, ks.size)
    py = np.tile(base + ks * ulp, ks.size)
    got = orient_sign(12.0, 12.0, 24.0, 24.0, px, py)
    want = []
    for x, y in zip(px.tolist(), py.tolist(), strict=True):
        det = (Fraction(12) - Fraction(x)) * (Fraction(24) - Fraction(y)) - (
            Fraction(12) - Fraction(y)
        ) * (Fraction(24) - Fraction(x))
        want.append((det > 0) - (det < 0))
    naive = np.sign((12.0 - px) * (24.0 - py) - (12.0 - py) * (24.0 - px))
    assert (naive != np.array(want)).sum() > 100  # the naive sign really is wrong here
    assert got.tolist() == want


# ------------------------------------------------------------------------------- chains


def test_chain_columns(index: GridIndex) -> None:
    lon = np.array([1.0, 3.5, 2.0, 2.25, 3.25, 9.0])
    lat = np.array([1.0, 0.5, 2.0, 1.75, 3.25, 9.0])
    chain = index.chain(lon, lat)
    assert list(chain.columns) == list(CHAIN_COLUMNS)
    assert chain.to_dict("records") == [
        {
            "micro_code": B,
            "grid_code": G1,
            "community_code": K1,
            "street_code": STREET,
            "dedicated_code": None,
        },
        {
            "micro_code": C1,
            "grid_code": G2,
            "community_code": K1,
            "street_code": STREET,
            "dedicated_code": None,
        },
        {
            "micro_code": A,
            "grid_code": G1,
            "community_code": K1,
            "street_code": STREET,
            "dedicated_code": DED1,
        },
        {
            "micro_code": C2,
            "grid_code": G2,
            "community_code": K1,
            "street_code": STREET,
            "dedicated_code": DED1,
        },
        {
            "micro_code": D,
            "grid_code": G3,
            "community_code": K2,
            "street_code": STREET,
            "dedicated_code": DED2,
        },
        {
            "micro_code": None,
            "grid_code": None,
            "community_code": None,
            "street_code": None,
            "dedicated_code": None,
        },
    ]
    assert all(chain[c].dtype == object for c in CHAIN_COLUMNS)


def test_locate_one_returns_the_chain_with_names(index: GridIndex) -> None:
    one = index.locate_one(2.25, 1.75)
    assert one is not None
    assert one["micro"] == {"code": C2, "name": f"网格 {C2}"}
    assert one["grid"]["code"] == G2
    assert one["community"]["code"] == K1
    assert one["street"]["code"] == STREET
    assert one["dedicated"] == {"code": DED1, "name": f"网格 {DED1}"}
    assert index.micro["code"].iloc[one["micro_index"]] == C2
    assert index.locate_one(50.0, 50.0) is None


def test_overlapping_dedicated_grids_lowest_code_wins() -> None:
    grids = small_grids()
    extra = gpd.GeoDataFrame(
        [
            {
                "code": STREET + "903",
                "level": "dedicated",
                "parent_code": STREET,
                "geometry": mp(box(0, 0, 2, 2)),
            },
            {
                "code": STREET + "904",
                "level": "dedicated",
                "parent_code": STREET,
                "geometry": mp(box(1, 1, 3, 3)),
            },
        ],
        geometry="geometry",
        crs="EPSG:4326",
    )
    grids = pd.concat([grids, extra], ignore_index=True)
    ded = grids[grids["level"] == "dedicated"]
    lon = np.array([1.75, 1.25, 0.5, 2.75, 2.25, 1.0, 2.0, 3.25])
    lat = np.array([1.75, 1.25, 0.5, 2.75, 2.25, 1.0, 2.0, 3.25])
    for options in OPTIONS:
        index = GridIndex.from_grids(grids, options=options)
        got = dedicated_codes_of(index, index.locate_dedicated(lon, lat))
        assert got == brute_locate(ded, lon, lat)
        assert got[:3] == [DED1, STREET + "903", STREET + "903"]


# ------------------------------------------------------------------------------ CRS inputs


def city_grids() -> gpd.GeoDataFrame:
    """A 3x3 block of ~1 km micro grids near 113.55E 34.80N (inside China)."""
    rows = [
        {
            "code": STREET,
            "level": "street",
            "parent_code": None,
            "geometry": mp(box(113.53, 34.79, 113.56, 34.82)),
        }
    ]
    rows.append(
        {"code": K1, "level": "community", "parent_code": STREET, "geometry": rows[0]["geometry"]}
    )
    rows.append({"code": G1, "level": "grid", "parent_code": K1, "geometry": rows[0]["geometry"]})
    for i in range(3):
        for j in range(3):
            x0, y0 = 113.53 + 0.01 * i, 34.79 + 0.01 * j
            code = f"{G1}{3 * i + j + 1:02d}"
            rows.append(
                {
                    "code": code,
                    "level": "micro",
                    "parent_code": G1,
                    "geometry": mp(box(x0, y0, x0 + 0.01, y0 + 0.01)),
                }
            )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


@pytest.mark.parametrize(("crs", "forward"), [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_obfuscated_inputs_give_the_same_grid_as_wgs84(crs: str, forward) -> None:  # type: ignore[no-untyped-def]
    index = GridIndex.from_grids(city_grids())
    rng = np.random.default_rng(11)
    lon = rng.uniform(113.5305, 113.5595, 2000)
    lat = rng.uniform(34.7905, 34.8195, 2000)
    # keep clear of edges by more than the <1 mm round-trip error
    frac_x = ((lon - 113.53) / 0.01) % 1
    frac_y = ((lat - 34.79) / 0.01) % 1
    keep = (np.minimum(frac_x, 1 - frac_x) > 1e-4) & (np.minimum(frac_y, 1 - frac_y) > 1e-4)
    lon, lat = lon[keep], lat[keep]
    gx, gy = forward(lon, lat)
    assert np.abs(gx - lon).max() > 1e-3  # the offset is hundreds of metres
    want = assign_points(index, lon, lat)
    got = assign_points(index, gx, gy, crs=crs)
    pd.testing.assert_frame_equal(got, want)
    # without declaring the CRS the same points land elsewhere
    assert (assign_points(index, gx, gy)["micro_code"] != want["micro_code"]).any()


def test_cgcs2000_is_taken_as_is() -> None:
    index = GridIndex.from_grids(city_grids())
    lon, lat = np.array([113.535, 113.555]), np.array([34.795, 34.815])
    pd.testing.assert_frame_equal(
        assign_points(index, lon, lat, crs="EPSG:4490"), assign_points(index, lon, lat)
    )


def test_assign_points_refuses_bad_coordinates_and_crs() -> None:
    index = GridIndex.from_grids(city_grids())
    with pytest.raises(CoordinateRangeError):
        assign_points(index, [113.5, np.nan], [34.8, 34.8])
    with pytest.raises(CRSError, match="unknown input CRS"):
        assign_points(index, [113.5], [34.8], crs="mars")


# ------------------------------------------------------------------------- build and input


def test_a_projected_layer_is_reprojected() -> None:
    grids = city_grids().to_crs("EPSG:3857")
    index = GridIndex.from_grids(grids)
    assert index.micro.crs.to_epsg() == 4326
    assert codes_of(index, index.locate(np.array([113.535]), np.array([34.795]))) == [f"{G1}01"]


@pytest.mark.parametrize(
    ("mutate", "exc", "match"),
    [
        (lambda g: g[g["level"] != "micro"], EmptyInputError, "no micro grids"),
        (lambda g: g.drop(columns=["parent_code"]), HierarchyError, "parent_code"),
        (lambda g: g.set_crs(None, allow_override=True), CRSError, "no CRS"),
        (lambda g: pd.concat([g, g.iloc[[-1]]]), HierarchyError, "more than once"),
        (
            lambda g: g.assign(
                geometry=[
                    Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]) if c == B else geom
                    for c, geom in zip(g["code"], g.geometry, strict=True)
                ]
            ),
            InvalidGeometryError,
            "invalid geometry",
        ),
        (
            lambda g: g.assign(
                geometry=[
                    shapely.Point(1, 1) if c == B else geom
                    for c, geom in zip(g["code"], g.geometry, strict=True)
                ]
            ),
            InvalidGeometryError,
            "not a polygon",
        ),
    ],
)
def test_bad_grids_are_refused(mutate, exc: type[Exception], match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc, match=match):
        GridIndex.from_grids(mutate(small_grids()))


def test_index_is_immutable() -> None:
    index = GridIndex.from_grids(GRIDS)
    with pytest.raises(AttributeError):
        index.micro = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        GridIndex()
    assert index.stats["micro"]["mixed_cells"] > 0


def test_micro_rows_are_sorted_by_code() -> None:
    index = GridIndex.from_grids(GRIDS.sample(frac=1.0, random_state=3))
    codes = index.micro["code"].tolist()
    assert codes == sorted(codes)
    assert list(index.micro.index) == list(range(len(codes)))


def test_points_in_an_unfilled_hole_are_outside() -> None:
    grids = GRIDS[GRIDS["code"] != B]
    micro = grids[grids["level"] == "micro"]
    ij = np.arange(-4, 68)
    lon = np.repeat(ij / 16, ij.size)
    lat = np.tile(ij / 16, ij.size)
    for options in OPTIONS:
        index = GridIndex.from_grids(grids, options=options)
        got = codes_of(index, index.locate(lon, lat))
        assert got == brute_locate(micro, lon, lat)
        assert codes_of(index, index.locate(np.array([1.0, 1.5]), np.array([1.0, 1.0]))) == [
            None,
            A,
        ]


# ----------------------------------------------------------------------------- benchmark


def test_benchmark_runs_small_and_writes_results(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from gis.bench.geocode import run_geocode_bench, synthetic_district, write_results

    district = synthetic_district(120, seed=4)
    rows, info = run_geocode_bench(
        demo_grids=district, sizes=(3000,), city_micro=700, repeats=1, geopandas_max_points=3000
    )
    assert [(r.method, r.agree) for r in rows] == [
        ("GridIndex.locate", True),
        ("geopandas.sjoin (intersects + smallest code)", True),
    ] * 2
    assert all(r.points_per_s > 0 for r in rows)
    assert set(info["latency"]) == {r.dataset for r in rows}
    md, js = write_results(rows, tmp_path, info=info)
    assert "| GridIndex.locate | 3,000 |" in md.read_text(encoding="utf-8")
    assert len(json.loads(js.read_text(encoding="utf-8"))["rows"]) == 4


def test_synthetic_district_nests_and_tiles() -> None:
    from gis.bench.geocode import synthetic_district
    from gis.grids import check_hierarchy

    district = synthetic_district(150, seed=9)
    assert (district["level"] == "micro").sum() == 150
    problems = check_hierarchy(district)
    assert problems[problems["kind"] != "sliver"].empty, problems[["kind", "grids", "detail"]]


@pytest.mark.db
def test_postgis_join_agrees_with_the_index(db_url: str) -> None:
    from gis.bench.geocode import PostGISJoin, bench_points, synthetic_district

    index = GridIndex.from_grids(synthetic_district(200, seed=5))
    lon, lat = bench_points(index, 5000, vertex_frac=0.1, seed=2)
    join = PostGISJoin(db_url, index.micro)
    try:
        _, codes = join.locate(lon, lat)
    finally:
        join.close()
    assert codes.tolist() == codes_of(index, index.locate(lon, lat))
