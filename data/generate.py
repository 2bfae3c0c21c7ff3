"""Deterministic demo district: grids, roads, buildings, people, incidents and patrol tracks.

The district is modelled on a real street office (街道/办事处) of 郑州高新区 near 34.80°N
113.55°E: 石佛办事处 with 15 communities (社区), 100 三级 grids (三级网格), 619 micro grids
(微网格) and 16 dedicated grids (专属网格). Everything is synthetic and seeded: the same seed
gives byte-identical files.

Geometry is built top-down in the metric CRS of :func:`gis.crs.metric_crs` and written in
EPSG:4326. The office outline is a convex, slightly irregular polygon; a jittered arterial
lattice cuts it into communities; each community is split recursively by straight cuts across
its long axis into its 三级 grids, and each 三级 grid into its micro grids. Children therefore
tile their parent exactly, and every cut is a road: grid boundaries follow streets.

Run ``python -m data.generate OUT_DIR [--preset demo|fixture] [--seed N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon
from shapely.ops import nearest_points
from shapely.ops import split as split_geometry

from data import names
from gis.crs import metric_crs

log = logging.getLogger(__name__)

GENERATOR_VERSION = "2.0"
CENTRE = (113.55, 34.80)  # lon, lat of the office centre
COUNTY_CODE = "410171"  # 郑州高新技术产业开发区 (county-level division code)
STREET_CODE = COUNTY_CODE + "003"
DEFAULT_SEED = 20261122
YEAR_START = np.datetime64("2025-11-01T00:00:00", "s")  # incidents: 2025-11-01 .. 2026-10-31
YEAR_DAYS = 365
WEEK_START = np.datetime64("2026-10-26T00:00:00", "s")  # tracks: 2026-10-26 .. 2026-11-01
SPRING_FESTIVAL = np.datetime64("2026-02-17", "D")
UTC_OFFSET = "+08:00"  # Asia/Shanghai, no daylight saving time
GPKG_DATE = "2026-11-01T00:00:00.000Z"  # written into gpkg_contents instead of "now"
FIX_INTERVAL_S = 10
WALK_SPEED = 1.3
GPS_SIGMA_M = 5.0
OUTPUT_FILES = (
    "district.gpkg",
    "incidents.csv",
    "staff.csv",
    "key_households.csv",
    "patrol_routes.csv",
    "manifest.json",
)

Progress = Callable[[str, int, int], None]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Preset:
    """Sizes of one district.

    Parameters
    ----------
    width_m, height_m
        Rough size of the office outline in metres.
    cols, rows
        The arterial lattice: cols × rows communities.
    grids, micro
        Total 三级 grids and micro grids, spread evenly (larger parents get the extra child).
    dedicated, stations, incidents, hotspots
        Dedicated grids, service stations, incidents in the year, planted hotspots.
    workers_per_grid
        网格员 per 三级 grid; None means one per residential micro grid.
    track_days
        Days of patrol tracks from 2026-10-26.
    """

    width_m: float
    height_m: float
    cols: int
    rows: int
    grids: int
    micro: int
    dedicated: int
    stations: int
    incidents: int
    hotspots: int
    workers_per_grid: int | None
    track_days: int


PRESETS: dict[str, Preset] = {
    "demo": Preset(6000, 4200, 5, 3, 100, 619, 16, 20, 100_000, 6, None, 7),
    "fixture": Preset(1100, 760, 2, 1, 4, 20, 2, 5, 2_000, 1, 2, 2),
}


@dataclass
class _Grid:
    code: str
    name: str
    level: str
    parent: str | None
    geom: Polygon | MultiPolygon
    kind: str | None = None
    households: int = 0
    residents: int = 0
    children: list[int] = field(default_factory=list)


@dataclass
class _Line:
    geom: LineString  # as drawn: a T-junction line ends on the road it meets
    name: str | None
    kind: str
    extend: tuple[bool, bool]  # ends that stop on another road (extended before noding)


# ----------------------------------------------------------------------------- helpers


def _unit(v: FloatArray) -> FloatArray:
    return v / float(np.hypot(v[0], v[1]))


def _rotate(v: FloatArray, angle: float) -> FloatArray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _long_axis(poly: Polygon) -> FloatArray:
    """Unit vector along the long side of the minimum rotated rectangle, pointing east-ish."""
    c = np.asarray(shapely.oriented_envelope(poly).exterior.coords)
    e0, e1 = c[1] - c[0], c[2] - c[1]
    v = _unit(e0 if np.hypot(*e0) >= np.hypot(*e1) else e1)
    return -v if (v[0] < -1e-9 or (abs(v[0]) <= 1e-9 and v[1] < 0)) else v


def _line_through(point: FloatArray, direction: FloatArray, span: float) -> LineString:
    return LineString([point - direction * span, point + direction * span])


def _cut(
    poly: Polygon, point: FloatArray, direction: FloatArray
) -> tuple[Polygon, Polygon, LineString]:
    """Split a convex polygon by the line through ``point`` along ``direction``.

    Returns
    -------
    tuple
        The piece right of the line, the piece left of it, and the chord (their shared
        edge, which becomes a road).
    """
    line = _line_through(point, direction, 4.0 * math.sqrt(poly.area) + 1e4)
    pieces = [g for g in shapely.get_parts(split_geometry(poly, line)) if g.area > 0]
    if len(pieces) != 2:
        raise RuntimeError(f"a cut gave {len(pieces)} pieces instead of 2")
    chord = poly.intersection(line)
    if not isinstance(chord, LineString):
        raise RuntimeError("a cut does not cross its polygon in one chord")
    rp = np.asarray(pieces[0].representative_point().coords[0]) - point
    if direction[0] * rp[1] - direction[1] * rp[0] < 0:
        return pieces[0], pieces[1], chord
    return pieces[1], pieces[0], chord


def _chord(poly: Polygon, point: FloatArray, direction: FloatArray) -> LineString:
    """The part of the line through ``point`` along ``direction`` inside a convex polygon."""
    chord = poly.intersection(_line_through(point, direction, 4.0 * math.sqrt(poly.area) + 1e4))
    if not isinstance(chord, LineString):
        raise RuntimeError("a lattice line does not cross the office in one chord")
    return chord


def _split_n(
    poly: Polygon, n: int, rng: np.random.Generator, chords: list[LineString]
) -> list[Polygon]:
    """Split a convex polygon into ``n`` pieces of similar area, numbered along the cuts.

    Each cut runs roughly perpendicular (±8°) to the long axis of the minimum rotated
    rectangle, at the area fraction k/n (±6 %) with k = n // 2; the two halves are split
    again. Cuts are appended to ``chords``.
    """
    if n == 1:
        return [poly]
    k = n // 2
    frac = k / n * (1.0 + rng.uniform(-0.06, 0.06))
    axis = _rotate(_long_axis(poly), math.radians(rng.uniform(-8.0, 8.0)))
    perp = np.array([-axis[1], axis[0]])
    xy = np.asarray(poly.exterior.coords)
    origin = xy.mean(axis=0)
    proj = (xy - origin) @ axis
    lo, hi = float(proj.min()), float(proj.max())
    span = 4.0 * (hi - lo) + 1e3
    samples = np.linspace(lo, hi, 25)
    halves = [
        Polygon(
            [
                origin + axis * s + perp * span,
                origin + axis * (lo - span) + perp * span,
                origin + axis * (lo - span) - perp * span,
                origin + axis * s - perp * span,
            ]
        )
        for s in samples
    ]
    share = shapely.area(shapely.intersection(poly, halves)) / poly.area
    s_cut = float(np.interp(frac, share, samples))
    # walking along +perp, the low side (along -axis) is on the left
    high, low, chord = _cut(poly, origin + axis * s_cut, perp)
    chords.append(chord)
    return _split_n(low, k, rng, chords) + _split_n(high, n - k, rng, chords)


def _spread(total: int, areas: Sequence[float]) -> list[int]:
    """Spread ``total`` children over parents evenly; the largest parents get one more."""
    base, extra = divmod(total, len(areas))
    counts = [base] * len(areas)
    for i in np.argsort(-np.asarray(areas), kind="stable")[:extra]:
        counts[int(i)] += 1
    return counts


def _tree_groups(lo: int, hi: int, w: int) -> list[list[int]]:
    """Split [lo, hi) into ``w`` runs along the split tree of :func:`_split_n`.

    Each run is a subtree, so the union of its pieces is one convex polygon.
    """
    n = hi - lo
    if w <= 1 or n <= 1:
        return [list(range(lo, hi))]
    k = n // 2
    w1 = min(max(1, round(w * k / n)), w - 1, k)
    return _tree_groups(lo, lo + k, w1) + _tree_groups(lo + k, hi, min(w - w1, n - k))


def _extend(line: LineString, start: bool, end: bool, by: float = 1.0) -> LineString:
    xy = np.asarray(line.coords, dtype=float).copy()
    if start:
        xy[0] = xy[0] + _unit(xy[0] - xy[1]) * by
    if end:
        xy[-1] = xy[-1] + _unit(xy[-1] - xy[-2]) * by
    return LineString(xy)


def _contract(
    pieces: npt.NDArray[np.object_], tol: float
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.int64]]:
    """Drop noded pieces shorter than ``tol`` and move their far end onto their near end in
    every other piece, so that crossings a hair apart become one node.

    Returns the pieces kept and their indices in the input.
    """
    tiny = np.flatnonzero(shapely.length(pieces) < tol)
    if len(tiny) == 0:
        return pieces, np.arange(len(pieces))
    moved: dict[tuple[float, float], tuple[float, float]] = {}
    for i in tiny.tolist():
        xy = np.asarray(pieces[i].coords)
        a, b = (float(xy[0, 0]), float(xy[0, 1])), (float(xy[-1, 0]), float(xy[-1, 1]))
        while a in moved:
            a = moved[a]
        if a != b:
            moved[b] = a

    def target(pt: FloatArray) -> FloatArray:
        key = (float(pt[0]), float(pt[1]))
        while key in moved:
            key = moved[key]
        return np.array(key)

    kept = np.setdiff1d(np.arange(len(pieces)), tiny)
    out = []
    for i in kept.tolist():
        xy = np.asarray(pieces[i].coords).copy()
        xy[0], xy[-1] = target(xy[0]), target(xy[-1])
        out.append(LineString(xy))
    return np.array(out, dtype=object), kept


def _cn_number(n: int) -> str:
    """Chinese numeral for 1..99 (一, 十, 十二, 二十三); digits from 100 on."""
    d = names.ALLEY_NUMERALS  # 一 .. 九
    if n < 10:
        return d[n - 1]
    if n >= 100:
        return str(n)
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else d[tens - 1]) + "十" + (d[ones - 1] if ones else "")


def _name_stem(road: str) -> str:
    for suffix in ("大道", "路", "街"):
        if road.endswith(suffix):
            return road[: -len(suffix)]
    return road


def _to_multi(geom: shapely.Geometry) -> MultiPolygon:
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    return MultiPolygon([g for g in shapely.get_parts(geom) if isinstance(g, Polygon)])


def _iso(seconds: npt.NDArray[np.int64], base: np.datetime64) -> npt.NDArray[np.str_]:
    """Local times ``base + seconds`` as ISO 8601 strings with the +08:00 offset."""
    stamps = np.datetime_as_string(base + seconds.astype("timedelta64[s]"), unit="s")
    return np.char.add(stamps, UTC_OFFSET)


def _interp_path(xy: FloatArray, cum: FloatArray, s: FloatArray) -> FloatArray:
    """Points at arc lengths ``s`` along the polyline ``xy`` with cumulative lengths ``cum``."""
    s = np.clip(s, 0.0, cum[-1])
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(cum) - 2)
    seg = cum[i + 1] - cum[i]
    t = np.divide(s - cum[i], seg, out=np.zeros_like(s), where=seg > 0)
    return xy[i] + (xy[i + 1] - xy[i]) * t[:, None]


def _cumlen(xy: FloatArray) -> FloatArray:
    return np.r_[0.0, np.cumsum(np.hypot(*(xy[1:] - xy[:-1]).T))]


def _substring(xy: FloatArray, cum: FloatArray, a: float, b: float) -> FloatArray:
    """The part of a polyline between arc lengths ``a`` < ``b``, ends interpolated."""
    inner = xy[(cum > a) & (cum < b)]
    ends = _interp_path(xy, cum, np.array([a, b]))
    return np.vstack([ends[:1], inner, ends[1:]])


# ----------------------------------------------------------------------------- public API


def generate_district(
    out_dir: Path,
    *,
    preset: Literal["demo", "fixture"] = "demo",
    seed: int = DEFAULT_SEED,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Generate the district files into ``out_dir`` and return the manifest.

    Parameters
    ----------
    out_dir
        Output folder, created if needed; files of an earlier run are replaced.
    preset
        ``"demo"`` (the full office) or ``"fixture"`` (a tiny district for tests).
    seed
        Seed of the random generator; the same seed gives byte-identical files.
    progress
        Called as ``progress(stage, done, total)`` while working.

    Returns
    -------
    dict
        The manifest, also written to ``manifest.json``: preset, seed, generator version,
        counts, bbox (EPSG:4326), total track points and file sizes in bytes.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    t0 = time.perf_counter()
    out = Path(out_dir)
    (out / "tracks").mkdir(parents=True, exist_ok=True)
    for old in sorted((out / "tracks").glob("worker_*.gpx")):
        old.unlink()
    for name in OUTPUT_FILES:
        (out / name).unlink(missing_ok=True)
    builder = _Builder(PRESETS[preset], np.random.default_rng(seed), out, progress)
    builder.build()
    manifest = builder.write(preset=preset, seed=seed)
    log.info(
        "generated the %s district (seed %d) in %s in %.1f s",
        preset,
        seed,
        out,
        time.perf_counter() - t0,
    )
    return manifest


# ----------------------------------------------------------------------------- the builder


class _Builder:
    """The district under construction, in the metric CRS."""

    def __init__(
        self, p: Preset, rng: np.random.Generator, out: Path, progress: Progress | None
    ) -> None:
        self.p = p
        self.rng = rng
        self.out = out
        self.step: Progress = progress or (lambda _s, _d, _t: None)
        self.crs = metric_crs(*CENTRE)
        self.to_wgs = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        cx, cy = Transformer.from_crs("EPSG:4326", self.crs, always_xy=True).transform(*CENTRE)
        self.centre = np.array([cx, cy])
        self.grids: list[_Grid] = []
        self.lines: list[_Line] = []

    def build(self) -> None:
        """Run the stages in order (the order fixes the random stream)."""
        for name, fn in (
            ("outline", self._outline),
            ("hierarchy", self._hierarchy),
            ("compounds", self._compounds),
            ("buildings", self._buildings),
            ("roads", self._roads),
            ("stations", self._stations),
            ("addresses", self._addresses),
            ("dedicated", self._dedicated),
            ("people", self._people),
            ("incidents", self._incidents),
            ("tracks", self._tracks),
        ):
            t = time.perf_counter()
            fn()
            log.debug("stage %s: %.2f s", name, time.perf_counter() - t)

    # ------------------------------------------------------------------ grids

    def _outline(self) -> None:
        """A convex, slightly irregular outline; its south side is a motorway (高速)."""
        p, rng = self.p, self.rng
        w, h = p.width_m, p.height_m
        jit = rng.uniform(-0.03, 0.03, (4, 2)) * [w, h]
        cx, cy = self.centre
        sw = np.array([cx - w / 2, cy - h / 2]) + jit[0]
        se = np.array([cx + w / 2, cy - h / 2]) + jit[1]
        ne = np.array([cx + w / 2, cy + h / 2]) + jit[2]
        nw = np.array([cx - w / 2, cy + h / 2]) + jit[3]
        sides: dict[str, list[FloatArray]] = {"south": [sw, se]}
        for side, a, b in (("east", se, ne), ("north", ne, nw), ("west", nw, sw)):
            d = b - a
            outward = _unit(np.array([d[1], -d[0]]))  # right of a counter-clockwise ring
            bump = rng.uniform(0.01, 0.025) * float(np.hypot(*d))
            sides[side] = [a, a + d * rng.uniform(0.35, 0.65) + outward * bump, b]
        ring = [*sides["south"], *sides["east"][1:], *sides["north"][1:], *sides["west"][1:]]
        office = Polygon(ring)
        if not office.is_valid or office.convex_hull.area - office.area > 1e-9 * office.area:
            raise RuntimeError("the office outline is not convex")
        self.office = office
        self.sides = {k: LineString(v) for k, v in sides.items()}
        self.lines.append(_Line(self.sides["south"], names.MOTORWAY, "motorway", (False, False)))
        for side, road in names.OUTLINE_ARTERIALS.items():
            self.lines.append(_Line(self.sides[side], road, "arterial", (False, False)))

    def _hierarchy(self) -> None:
        """Street office → communities (lattice cells) → 三级 grids → micro grids."""
        p, rng, office = self.p, self.rng, self.office
        self.grids.append(_Grid(STREET_CODE, names.STREET_OFFICE, "street", None, office))
        south = self.sides["south"]  # west → east
        north = self.sides["north"].reverse()  # west → east
        west = self.sides["west"].reverse()  # south → north
        east = self.sides["east"]  # south → north

        def at(side: LineString, t: float) -> FloatArray:
            return np.asarray(side.interpolate(t, normalized=True).coords[0])

        ns, ew = [], []  # (point, unit direction) of the lattice lines
        for i in range(1, p.cols):
            u = i / p.cols + rng.uniform(-0.04, 0.04)
            a, b = at(south, u), at(north, u + rng.uniform(-0.03, 0.03))
            ns.append((a, _unit(b - a)))
        for j in range(1, p.rows):
            v = j / p.rows + rng.uniform(-0.04, 0.04)
            a, b = at(west, v), at(east, v + rng.uniform(-0.03, 0.03))
            ew.append((a, _unit(b - a)))
        columns: list[Polygon] = []
        rest = office
        for k, (a, d) in enumerate(ns):  # d points north: the right piece is the eastern one
            eastern, western, _ = _cut(rest, a, d)
            columns.append(western)
            rest = eastern
            chord = _chord(office, a, d)
            self.lines.append(_Line(chord, names.ARTERIALS_NS[k], "arterial", (True, True)))
        columns.append(rest)
        for k, (a, d) in enumerate(ew):
            chord = _chord(office, a, d)
            self.lines.append(_Line(chord, names.ARTERIALS_EW[k], "arterial", (True, True)))
        cells: list[list[Polygon]] = []  # cells[col from west][row from north]
        for col in columns:
            pieces: list[Polygon] = []
            rest = col
            for a, d in ew:  # d points east: the right piece is the southern one
                southern, northern, _ = _cut(rest, a, d)
                pieces.append(southern)
                rest = northern
            pieces.append(rest)
            cells.append(pieces[::-1])
        communities = [cells[c][r] for r in range(p.rows) for c in range(p.cols)]
        n_grids = _spread(p.grids, [c.area for c in communities])
        self.street_chords: list[tuple[LineString, int]] = []  # chord, community number
        self.alley_chords: list[LineString] = []
        self.grid_idx: list[int] = []  # index in self.grids of each 三级 grid
        self.micro_idx: list[int] = []
        micro_grid: list[int] = []  # 三级 number of each micro grid
        grid_polys: list[tuple[Polygon, int]] = []
        for ci, poly in enumerate(communities):
            stem = names.COMMUNITIES[ci % len(names.COMMUNITIES)]
            self.grids.append(
                _Grid(f"{STREET_CODE}{ci + 1:03d}", f"{stem}社区", "community", STREET_CODE, poly)
            )
            self.grids[0].children.append(len(self.grids) - 1)
            chords: list[LineString] = []
            grid_polys += [
                (g, len(self.grids) - 1) for g in _split_n(poly, n_grids[ci], rng, chords)
            ]
            self.street_chords += [(c, ci) for c in chords]
        n_micro = _spread(p.micro, [g.area for g, _ in grid_polys])
        for gi, (poly, parent) in enumerate(grid_polys):
            com = self.grids[parent]
            j = len(com.children) + 1
            code, name = f"{com.code}{j:02d}", f"{com.name}第{j}网格"
            self.grids.append(_Grid(code, name, "grid", com.code, poly))
            g_index = len(self.grids) - 1
            com.children.append(g_index)
            self.grid_idx.append(g_index)
            chords = []
            for mi, mpoly in enumerate(_split_n(poly, n_micro[gi], rng, chords)):
                self.grids.append(
                    _Grid(f"{code}{mi + 1:02d}", f"{name}-{mi + 1}", "micro", code, mpoly)
                )
                self.grids[g_index].children.append(len(self.grids) - 1)
                self.micro_idx.append(len(self.grids) - 1)
                micro_grid.append(gi)
            self.alley_chords += chords
            self.step("grids", gi + 1, len(grid_polys))
        self.micro_grid = np.array(micro_grid)
        self.micro_polys = [self.grids[i].geom for i in self.micro_idx]
        self.micro_arr = np.array(self.micro_polys, dtype=object)
        self.micro_tree = shapely.STRtree(self.micro_arr)
        # micro grids sharing more than 10 m of boundary
        grown = shapely.buffer(self.micro_arr, 0.1)
        a, b = self.micro_tree.query(grown, predicate="intersects")
        a, b = a[a < b], b[a < b]
        shared = shapely.area(shapely.intersection(grown[a], self.micro_arr[b])) / 0.1
        self.neighbours: list[list[int]] = [[] for _ in self.micro_polys]
        for i, j in zip(a[shared > 10.0].tolist(), b[shared > 10.0].tolist(), strict=True):
            self.neighbours[i].append(j)
            self.neighbours[j].append(i)

    def _compounds(self) -> None:
        """Pick the non-residential micro grids (~10 %) and group the others into compounds."""
        rng = self.rng
        n_micro, n_grid = len(self.micro_idx), len(self.grid_idx)
        per_grid = np.zeros(n_grid, dtype=int)
        picks = rng.permutation(n_grid)
        for k in range(max(1, round(0.1 * n_micro))):
            per_grid[picks[k % n_grid]] += 1
        self.residential = np.ones(n_micro, dtype=bool)
        for gi in range(n_grid):
            if per_grid[gi]:
                members = np.flatnonzero(self.micro_grid == gi)
                self.residential[rng.choice(members, size=per_grid[gi], replace=False)] = False
        res = np.flatnonzero(self.residential)
        self.tower = np.zeros(n_micro, dtype=bool)  # high-rise micro grids, 15 %
        self.tower[rng.choice(res, size=round(0.15 * len(res)), replace=False)] = True
        pool = [s + x for x in names.COMPOUND_SUFFIXES for s in names.COMPOUND_STEMS]
        order = rng.permutation(len(pool))
        self.compounds: list[dict] = []
        for gi in range(n_grid):
            members = [int(m) for m in np.flatnonzero(self.micro_grid == gi) if self.residential[m]]
            if not members:
                continue
            n_comp = min(len(members), int(rng.integers(1, 4)))
            cuts = np.sort(rng.choice(np.arange(1, len(members)), size=n_comp - 1, replace=False))
            for run in np.split(np.array(members), cuts):
                if len(self.compounds) >= len(pool):
                    raise RuntimeError("ran out of compound names")
                name = pool[order[len(self.compounds)]]
                self.compounds.append({"name": name, "micro": [int(m) for m in run]})
        self.footway: dict[int, LineString] = {}
        for m in range(n_micro):
            if self.residential[m] and not self.tower[m] and rng.random() < 0.35:
                self.footway[m] = self._spur(self.micro_polys[m])
                self.lines.append(_Line(self.footway[m], None, "footway", (True, False)))

    @staticmethod
    def _spur(poly: Polygon) -> LineString:
        """A footway from the middle of the longest edge most of the way to the centre."""
        xy = np.asarray(poly.exterior.coords)
        i = int(np.argmax(np.hypot(*(xy[1:] - xy[:-1]).T)))
        start = (xy[i] + xy[i + 1]) / 2
        centre = np.asarray(poly.centroid.coords[0])
        return LineString([start, start + (centre - start) * 0.85])

    # ------------------------------------------------------------------ buildings

    def _buildings(self) -> None:
        """Buildings in rows inside micro grids; households 300-500 per 三级, 30-80 per micro."""
        rng = self.rng
        n_micro = len(self.micro_idx)
        slots: dict[int, list[tuple[Polygon, float]]] = {}
        for m in range(n_micro):
            if self.residential[m]:
                slots[m] = self._slots(m)
                if not slots[m]:
                    self.residential[m] = self.tower[m] = False
        micro_hh = np.zeros(n_micro, dtype=int)
        for gi in range(len(self.grid_idx)):
            res = [int(m) for m in np.flatnonzero(self.micro_grid == gi) if self.residential[m]]
            if not res:
                continue
            k = len(res)
            lo, hi = max(300, 30 * k), min(500, 80 * k)
            total = int(rng.integers(lo, hi + 1)) if lo <= hi else 80 * k
            share = rng.dirichlet(np.full(k, 8.0))
            hh = 30 + np.floor(share * (total - 30 * k)).astype(int)
            hh[int(np.argmax(share))] += total - int(hh.sum())
            while hh.max() > 80:  # move households over the cap to the emptiest micro grid
                i, j = int(np.argmax(hh)), int(np.argmin(hh))
                move = min(int(hh[i]) - 80, 80 - int(hh[j]))
                hh[i] -= move
                hh[j] += move
            micro_hh[res] = hh
        rows: list[dict] = []
        kept: list[dict] = []
        for comp in self.compounds:
            comp["micro"] = [m for m in comp["micro"] if self.residential[m]]
            if not comp["micro"]:
                continue
            kept.append(comp)
            bno = 0
            for m in comp["micro"]:
                cand = slots[m]
                h = int(micro_hh[m])
                want = (
                    int(rng.integers(1, 3)) if self.tower[m] else round(h / rng.uniform(5.5, 9.0))
                )
                nb = int(np.clip(want, 1, min(len(cand), h // 3)))
                pick = np.sort(rng.choice(len(cand), size=nb, replace=False))
                lengths = np.array([cand[i][1] for i in pick])
                b_hh = 3 + rng.multinomial(h - 3 * nb, lengths / lengths.sum())
                for i, n_hh in zip(pick, b_hh.tolist(), strict=True):
                    poly, length = cand[i]
                    units = int(np.clip(round(length / 12.0), 1, 6))
                    floors = max(2, math.ceil(n_hh / (2 * units * rng.uniform(0.7, 1.0))))
                    floors = max(floors, math.ceil(n_hh / (2 * units)))  # 一梯两户: 2 per floor
                    bno += 1
                    rows.append(
                        {
                            "compound": len(kept) - 1,
                            "micro": m,
                            "building_no": bno,
                            "units": units,
                            "floors": floors,
                            "households": n_hh,
                            "residents": round(n_hh * rng.uniform(2.35, 2.85)),
                            "geometry": poly,
                        }
                    )
        self.compounds = kept
        self.micro_compound = np.full(n_micro, -1, dtype=int)
        for k, comp in enumerate(self.compounds):
            self.micro_compound[comp["micro"]] = k
        self.b = pd.DataFrame(rows)
        self.b.insert(0, "building_id", np.arange(1, len(self.b) + 1))
        self.b_geom = np.array(self.b.pop("geometry").tolist(), dtype=object)
        c = shapely.centroid(self.b_geom)
        self.b_xy = np.c_[shapely.get_x(c), shapely.get_y(c)]
        self.b["micro_code"] = [self.grids[self.micro_idx[m]].code for m in self.b["micro"]]
        self.b["compound_name"] = [self.compounds[k]["name"] for k in self.b["compound"]]
        self.step("buildings", 1, 1)

    def _slots(self, m: int) -> list[tuple[Polygon, float]]:
        """Candidate footprints in micro grid ``m``: rows of rectangles in the grid's frame,
        inset 8-12 m from its edges (the streets) and clear of its footway."""
        rng = self.rng
        poly = self.micro_polys[m]
        axis = _long_axis(poly)
        origin = np.asarray(poly.centroid.coords[0])
        rot = np.array([[axis[0], axis[1]], [-axis[1], axis[0]]])  # world → local

        def to_local(xy: FloatArray) -> FloatArray:
            return (xy - origin) @ rot.T

        setback = rng.uniform(8.0, 12.0)
        inset = shapely.transform(poly, to_local).buffer(-setback, join_style="mitre")
        if m in self.footway:
            inset = inset.difference(shapely.transform(self.footway[m], to_local).buffer(6.0))
        if inset.is_empty:
            return []
        shapely.prepare(inset)
        x0, y0, x1, y1 = inset.bounds
        tower = bool(self.tower[m])
        boxes: list[tuple[float, float, float, float]] = []
        y = y0 + rng.uniform(0.0, 6.0)
        while y + 10.0 <= y1:
            depth = rng.uniform(12.0, 15.0) if tower else rng.uniform(10.0, 15.0)
            x = x0 + rng.uniform(0.0, 8.0)
            while x + 15.0 <= x1:
                length = rng.uniform(18.0, 32.0) if tower else 15.0 + 45.0 * rng.beta(1.3, 4.0)
                boxes.append((x, y, x + length, y + depth))
                x += length + (rng.uniform(20.0, 35.0) if tower else rng.uniform(6.0, 14.0))
            y += 15.0 + (rng.uniform(25.0, 40.0) if tower else rng.uniform(10.0, 18.0))
        if not boxes:
            return []
        arr = np.array(boxes)
        rects = shapely.box(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])
        out = []
        for i in np.flatnonzero(shapely.contains(inset, rects)):
            world = np.asarray(rects[i].exterior.coords) @ rot + origin
            out.append((Polygon(world), float(arr[i, 2] - arr[i, 0])))
        return out

    # ------------------------------------------------------------------ roads

    def _roads(self) -> None:
        """Name the cut lines, then node all roads so every intersection is a segment end."""
        rng = self.rng
        stems = [names.STREET_STEMS[i] for i in rng.permutation(len(names.STREET_STEMS))]
        if len(self.street_chords) > len(stems):
            raise RuntimeError("ran out of street names")
        for k, (chord, _) in enumerate(self.street_chords):
            xy = np.asarray(chord.coords)
            dx, dy = np.abs(xy[-1] - xy[0])
            name = stems[k] + ("路" if dy >= dx else "街")
            self.lines.append(_Line(chord, name, "street", (True, True)))
        self.named = [ln for ln in self.lines if ln.kind in ("arterial", "street")]
        self.named_tree = shapely.STRtree([ln.geom for ln in self.named])
        mids = shapely.line_interpolate_point(self.alley_chords, 0.5, normalized=True)
        nearest = self.named_tree.nearest(mids)
        counters: dict[str, int] = {}
        for k, chord in enumerate(self.alley_chords):
            xy = np.asarray(chord.coords)
            d = _unit(xy[-1] - xy[0])
            mid = np.asarray(mids[k].coords[0])
            probes = shapely.points([mid + np.array([-d[1], d[0]]) * s for s in (3.0, -3.0)])
            _, hit = self.micro_tree.query(probes, predicate="within")
            comps = sorted({int(self.micro_compound[i]) for i in hit})
            if len(comps) == 1 and comps[0] >= 0:
                name = self.compounds[comps[0]]["name"] + "内部道路"
            else:
                stem = _name_stem(str(self.named[int(nearest[k])].name))
                counters[stem] = counters.get(stem, 0) + 1
                suffix = "胡同" if rng.random() < 0.12 else "巷"
                name = f"{stem}{_cn_number(counters[stem])}{suffix}"
            self.lines.append(_Line(chord, name, "alley", (True, True)))
        # Node: a line ending on another road is extended by 1 m so that it crosses it, the
        # whole network is noded, and the pieces beyond the drawn ends are dropped again.
        drawn = np.array([ln.geom for ln in self.lines], dtype=object)
        extended = [_extend(ln.geom, *ln.extend) for ln in self.lines]
        pieces = shapely.get_parts(shapely.node(shapely.multilinestrings(extended)))
        mids = shapely.line_interpolate_point(pieces, 0.5, normalized=True)
        (pi, si), dist = shapely.STRtree(drawn).query_nearest(
            mids, return_distance=True, all_matches=False
        )
        src = np.full(len(pieces), -1)
        gap = np.full(len(pieces), np.inf)
        src[pi], gap[pi] = si, dist
        keep = (gap < 1e-5) & (shapely.length(pieces) > 0)
        pieces, src, mids = pieces[keep], src[keep], mids[keep]
        pieces, kept = _contract(pieces, 1e-3)
        src, mids = src[kept], mids[kept]
        rank = {"motorway": 0, "arterial": 1, "street": 2, "alley": 3, "footway": 4}
        along = shapely.line_locate_point(drawn[src], mids)
        order = np.lexsort((along, src, [rank[self.lines[s].kind] for s in src]))
        self.road_geom = pieces[order]
        self.road_src = src[order]
        self.roads = pd.DataFrame(
            {
                "road_id": np.arange(1, len(order) + 1),
                "name": [self.lines[s].name for s in self.road_src],
                "kind": [self.lines[s].kind for s in self.road_src],
            }
        )
        self.step("roads", 1, 1)

    # ------------------------------------------------------------------ places

    def _stations(self) -> None:
        """Service stations beside streets, cycling over communities and kinds."""
        rng = self.rng
        coms = [g for g in self.grids if g.level == "community"]
        rows = []
        used: set[str] = set()
        for k in range(self.p.stations):
            ci = k % len(coms)
            kind = names.STATION_KINDS[(k + k // len(coms)) % len(names.STATION_KINDS)]
            chords = [c for c, owner in self.street_chords if owner == ci]
            line = chords[int(rng.integers(0, len(chords)))] if chords else coms[ci].geom.exterior
            xy = np.asarray(line.coords)
            pos = rng.uniform(0.2, 0.8) * line.length
            pt = np.asarray(line.interpolate(pos).coords[0])
            d = _unit(xy[-1] - xy[0])
            side = 1.0 if rng.random() < 0.5 else -1.0
            pt = pt + np.array([-d[1], d[0]]) * 6.0 * side
            if not coms[ci].geom.contains(Point(pt)):
                pt = pt - np.array([-d[1], d[0]]) * 12.0 * side
            name = f"{coms[ci].name}{kind}"
            if name in used:
                name = f"{coms[ci].name}第二{kind}"
            used.add(name)
            rows.append({"station_id": k + 1, "kind": kind, "name": name, "xy": pt})
        self.stations = rows

    def _addresses(self) -> None:
        """Nearest named road per building; house numbers per road and compound (or station),
        in order along the road, odd on its left side and even on its right."""
        rng = self.rng
        near = self.named_tree.nearest(shapely.points(self.b_xy))
        self.b["road"] = near
        keys: list[tuple[int, str, int]] = []  # road, "c"/"s", compound or station number
        points: list[FloatArray] = []
        grouped = self.b.groupby(["road", "compound"], sort=True).indices
        for (r, comp), idx in grouped.items():
            keys.append((int(r), "c", int(comp)))
            points.append(self.b_xy[idx].mean(axis=0))
        st_near = self.named_tree.nearest(shapely.points([s["xy"] for s in self.stations]))
        for s, r in zip(self.stations, st_near.tolist(), strict=True):
            keys.append((int(r), "s", s["station_id"]))
            points.append(s["xy"])
        number: dict[tuple[int, str, int], int] = {}
        pts = np.array(points)
        road_of = np.array([k[0] for k in keys])
        for r in np.unique(road_of).tolist():
            line = self.named[r].geom
            xy = np.asarray(line.coords)
            d = xy[-1] - xy[0]
            idx = np.flatnonzero(road_of == r)
            pos = shapely.line_locate_point(line, shapely.points(pts[idx]))
            rel = pts[idx] - xy[0]
            left = d[0] * rel[:, 1] - d[1] * rel[:, 0] > 0
            for parity, side in ((1, left), (0, ~left)):
                n = (2 if parity == 0 else 1) + 2 * int(rng.integers(0, 4))
                for i in idx[side][np.argsort(pos[side], kind="stable")]:
                    number[keys[i]] = n
                    n += 2 * int(rng.integers(1, 4))
        road_names = [str(self.named[r].name) for r in self.b["road"]]
        self.b["road_name"] = road_names
        self.b["house_number"] = [
            number[(int(r), "c", int(c))]
            for r, c in zip(self.b["road"], self.b["compound"], strict=True)
        ]
        self.b["address"] = [
            f"{road}{num}号 {comp}{bno}号楼"
            for road, num, comp, bno in zip(
                road_names,
                self.b["house_number"],
                self.b["compound_name"],
                self.b["building_no"],
                strict=True,
            )
        ]
        for s, r in zip(self.stations, st_near.tolist(), strict=True):
            s["address"] = f"{self.named[r].name}{number[(int(r), 's', s['station_id'])]}号"

    def _dedicated(self) -> None:
        """Dedicated grids: a micro grid (or two adjacent ones) shrunk by 10-20 m."""
        rng = self.rng
        n_micro = len(self.micro_idx)
        order = rng.permutation(n_micro)
        anchors = [int(m) for m in order if not self.residential[m]]
        anchors += [int(m) for m in order if self.residential[m]]
        used = np.zeros(n_micro, dtype=bool)
        taken = dict.fromkeys(names.DEDICATED_NAMES, 0)
        for k in range(self.p.dedicated):
            kind = names.DEDICATED_ORDER[k % len(names.DEDICATED_ORDER)]
            anchor = next(m for m in anchors if not used[m])
            members = [anchor]
            free = [n for n in self.neighbours[anchor] if not used[n]]
            if free and rng.random() < 0.35:
                members.append(free[int(rng.integers(0, len(free)))])
            used[members] = True
            shape = shapely.union_all([self.micro_polys[m] for m in members])
            geom = shape.buffer(-rng.uniform(10.0, 20.0), join_style="mitre")
            pool = names.DEDICATED_NAMES[kind]
            label = pool[taken[kind] % len(pool)]
            if taken[kind] >= len(pool):
                label += _cn_number(taken[kind] // len(pool) + 1) + "部"
            taken[kind] += 1
            inside = shapely.contains_xy(geom, self.b_xy[:, 0], self.b_xy[:, 1])
            self.grids.append(
                _Grid(
                    f"{STREET_CODE}9{k + 1:02d}",
                    f"{label}专属网格",
                    "dedicated",
                    STREET_CODE,
                    geom,
                    kind=kind,
                    households=int(self.b["households"].to_numpy()[inside].sum()),
                    residents=int(self.b["residents"].to_numpy()[inside].sum()),
                )
            )
        # households of the regular hierarchy, bottom up
        hh = self.b.groupby("micro")["households"].sum()
        rs = self.b.groupby("micro")["residents"].sum()
        for m, gidx in enumerate(self.micro_idx):
            self.grids[gidx].households = int(hh.get(m, 0))
            self.grids[gidx].residents = int(rs.get(m, 0))
        for level in ("grid", "community", "street"):
            for g in self.grids:
                if g.level == level:
                    g.households = sum(self.grids[c].households for c in g.children)
                    g.residents = sum(self.grids[c].residents for c in g.children)

    # ------------------------------------------------------------------ people

    def _names(self, n: int, *, unique: bool = False) -> list[str]:
        """Deterministic Chinese person names (surname + one or two characters)."""
        rng = self.rng
        out: list[str] = []
        seen: set[str] = set()
        while len(out) < n:
            m = n - len(out)
            sur = rng.choice(names.SURNAMES, size=m)
            two = rng.random(m) < 0.7
            g1 = rng.choice(names.GIVEN, size=m)
            g2 = rng.choice(names.GIVEN, size=m)
            for s, t, a, b in zip(sur, two, g1, g2, strict=True):
                name = f"{s}{a}{b}" if t else f"{s}{a}"
                if unique and name in seen:
                    continue
                seen.add(name)
                out.append(name)
        return out

    def _phones(self, n: int) -> list[str]:
        """Deterministic fake mobile numbers (11 digits)."""
        pre = self.rng.choice(names.PHONE_PREFIXES, size=n)
        body = self.rng.integers(0, 10**8, size=n)
        return [f"{p}{b:08d}" for p, b in zip(pre, body, strict=True)]

    def _people(self) -> None:
        """Key households (重点户, ~3 % of households) and staff (网格长, 网格员)."""
        rng = self.rng
        hh = self.b["households"].to_numpy()
        total = int(hh.sum())
        n_key = max(1, round(0.03 * total))
        picks = np.sort(rng.choice(total, size=n_key, replace=False))
        starts = np.r_[0, np.cumsum(hh)[:-1]]
        bi = np.searchsorted(np.cumsum(hh), picks, side="right")
        local = picks - starts[bi]
        units = self.b["units"].to_numpy()[bi]
        rest = local // units
        kinds = [k for k, _ in names.KEY_KINDS]
        kw = np.array([w for _, w in names.KEY_KINDS], dtype=float)
        self.key = pd.DataFrame(
            {
                "household_id": np.arange(1, n_key + 1),
                "building_id": self.b["building_id"].to_numpy()[bi],
                "unit": local % units + 1,
                "room": [f"{f}{d:02d}" for f, d in zip(rest // 2 + 1, rest % 2 + 1, strict=True)],
                "kind": rng.choice(kinds, size=n_key, p=kw / kw.sum()),
                "name": self._names(n_key),
                "phone": self._phones(n_key),
            }
        )
        self.key_building = bi
        self.key_ids = self.key["household_id"].to_numpy()
        # staff: per 三级 grid its 网格长, then its 网格员 with their micro grids
        staff: list[dict] = []
        self.workers: list[tuple[int, list[int]]] = []  # staff_id, micro numbers
        for gi, g_index in enumerate(self.grid_idx):
            members = [int(m) for m in np.flatnonzero(self.micro_grid == gi)]
            staff.append({"role": "网格长", "codes": [self.grids[g_index].code]})
            for group in self._worker_groups(members):
                staff.append({"role": "网格员", "codes": [self.micro_code(m) for m in group]})
                self.workers.append((len(staff), group))
        who = self._names(len(staff), unique=True)
        phones = self._phones(len(staff))
        self.staff = pd.DataFrame(
            {
                "staff_id": np.arange(1, len(staff) + 1),
                "name": who,
                "role": [s["role"] for s in staff],
                "grid_codes": [";".join(sorted(s["codes"])) for s in staff],
                "phone": phones,
            }
        )

    def micro_code(self, m: int) -> str:
        """Code of micro grid number ``m``."""
        return self.grids[self.micro_idx[m]].code

    def _worker_groups(self, members: list[int]) -> list[list[int]]:
        """Micro grids of one 三级 grid per 网格员: connected groups, each with residents."""
        w = self.p.workers_per_grid
        if w is None:
            groups = [[m] for m in members if self.residential[m]]
            for m in members:
                if self.residential[m]:
                    continue
                near = [g for g in groups if any(n in self.neighbours[m] for n in g)]
                (near or groups)[0].append(m)
            return [sorted(g) for g in groups] if groups else [members]
        runs = [[members[i] for i in r] for r in _tree_groups(0, len(members), w)]
        merged: list[list[int]] = []
        for run in runs:
            if merged and not any(self.residential[m] for m in merged[-1]):
                merged[-1] += run
            else:
                merged.append(run)
        if len(merged) > 1 and not any(self.residential[m] for m in merged[-1]):
            merged[-2] += merged.pop()
        return merged

    # ------------------------------------------------------------------ incidents

    def _day_weights(self, category: str) -> FloatArray:
        """Relative chance of each day of the incident year for a category."""
        days = np.arange(YEAR_DAYS) + YEAR_START.astype("datetime64[D]")
        month = days.astype("datetime64[M]").astype(int) % 12 + 1
        weekday = (days.astype(int) + 3) % 7  # Monday = 0
        w = np.ones(YEAR_DAYS)
        season = {
            "管道滴漏": {12: 1.8, 1: 1.9, 2: 1.6, 11: 1.3, 3: 1.2},
            "噪音扰民": {6: 1.5, 7: 1.6, 8: 1.5, 5: 1.2, 9: 1.2},
            "乱晾晒": {4: 1.3, 5: 1.4, 6: 1.4, 7: 1.3, 8: 1.3, 9: 1.2},
            "消防隐患": {11: 1.3, 12: 1.5, 1: 1.5, 2: 1.4},
            "占道经营": {5: 1.3, 6: 1.4, 7: 1.4, 8: 1.4, 9: 1.2},
            "环境卫生": {7: 1.2, 8: 1.2, 2: 1.2},
        }.get(category, {})
        for mo, f in season.items():
            w[month == mo] *= f
        if category in ("噪音扰民", "矛盾纠纷"):
            w[weekday >= 5] *= 1.3
        festival = np.abs((days - SPRING_FESTIVAL).astype(int)) <= 4
        w[festival] *= 0.5  # people go home for the Spring Festival
        return w / w.sum()

    @staticmethod
    def _week_weights(source: str) -> FloatArray:
        """Relative chance of each day of the year by weekday for a source: patrols (巡查)
        mostly on workdays, the public a little more at weekends."""
        days = np.arange(YEAR_DAYS) + YEAR_START.astype("datetime64[D]")
        weekend = (days.astype(int) + 3) % 7 >= 5
        factor = {"巡查": 0.35, "随手拍": 1.2, "公众号": 1.1}.get(source, 0.9)
        return np.where(weekend, factor, 1.0)

    def _incidents(self) -> None:
        """A year of incidents: at buildings (by households), on streets, a few outside the
        office, and planted hotspots (one category crowding 1-3 adjacent micro grids)."""
        p, rng = self.p, self.rng
        cats = [c for c, _, _ in names.CATEGORIES]
        w_bld = np.array([w for _, w, _ in names.CATEGORIES], dtype=float)
        w_str = np.array([w for _, _, w in names.CATEGORIES], dtype=float)
        hot_rows, hot_parts = self._hotspots()
        n_hot = sum(len(part["x"]) for part in hot_parts)
        n_bg = p.incidents - n_hot
        n_out = round(0.01 * n_bg)
        n_str = round(0.14 * n_bg)
        n_bld = n_bg - n_out - n_str
        parts = []
        # at buildings: category first, then a building weighted by households
        cat_b = rng.choice(len(cats), size=n_bld, p=w_bld / w_bld.sum())
        hh = self.b["households"].to_numpy(dtype=float)
        floors = self.b["floors"].to_numpy()
        bpick = np.empty(n_bld, dtype=int)
        for c in range(len(cats)):
            sel = np.flatnonzero(cat_b == c)
            ok = {"电梯故障": floors >= 7, "高空抛物": floors >= 4}.get(cats[c])
            weight = hh * ok if ok is not None and ok.any() else hh
            bpick[sel] = rng.choice(len(hh), size=len(sel), p=weight / weight.sum())
        # a few metres of scatter, never beyond the 8 m setback: stays in its micro grid
        xy = self.b_xy[bpick] + np.clip(rng.normal(0.0, 4.0, (n_bld, 2)), -5.5, 5.5)
        parts.append({"x": xy[:, 0], "y": xy[:, 1], "cat": cat_b, "b": bpick, "src": None})
        # on streets, arterials and alleys, weighted by length
        kinds = self.roads["kind"].to_numpy()
        usable = np.flatnonzero(np.isin(kinds, ["arterial", "street", "alley"]))
        lengths = shapely.length(self.road_geom[usable])
        r = usable[rng.choice(len(usable), size=n_str, p=lengths / lengths.sum())]
        on = shapely.line_interpolate_point(self.road_geom[r], rng.random(n_str), normalized=True)
        base = np.c_[shapely.get_x(on), shapely.get_y(on)]
        off = rng.normal(0.0, 3.0, (n_str, 2))
        out = ~shapely.contains_xy(self.office, base[:, 0] + off[:, 0], base[:, 1] + off[:, 1])
        off[out] *= -1.0  # on the office's edge roads, keep to the inner side
        xy = base + off
        cat_s = rng.choice(len(cats), size=n_str, p=w_str / w_str.sum())
        parts.append({"x": xy[:, 0], "y": xy[:, 1], "cat": cat_s, "b": np.full(n_str, -1)})
        # outside the office, 20-300 m beyond its edge
        ring = self.office.buffer(300.0).difference(self.office.buffer(20.0))
        shapely.prepare(ring)
        x0, y0, x1, y1 = ring.bounds
        got = np.empty((0, 2))
        while len(got) < n_out:
            c = np.c_[rng.uniform(x0, x1, 4 * n_out + 8), rng.uniform(y0, y1, 4 * n_out + 8)]
            got = np.vstack([got, c[shapely.contains_xy(ring, c[:, 0], c[:, 1])]])
        cat_o = rng.choice(len(cats), size=n_out, p=w_bld / w_bld.sum())
        parts.append(
            {"x": got[:n_out, 0], "y": got[:n_out, 1], "cat": cat_o, "b": np.full(n_out, -1)}
        )
        # sources, then days by category season and source week, then hours by source
        n = n_bg
        cat = np.concatenate([q["cat"] for q in parts])
        srcs = [s for s, _ in names.SOURCES]
        sw = np.array([w for _, w in names.SOURCES], dtype=float)
        on_street = np.r_[np.zeros(n_bld, bool), np.ones(n_str, bool), np.zeros(n_out, bool)]
        src = np.where(
            on_street,
            rng.choice(len(srcs), size=n, p=np.array([55, 15, 5, 0, 25]) / 100),
            rng.choice(len(srcs), size=n, p=sw / sw.sum()),
        )
        day = np.empty(n, dtype=int)
        for c in range(len(cats)):
            season = self._day_weights(cats[c])
            for k, source in enumerate(srcs):
                sel = np.flatnonzero((cat == c) & (src == k))
                if len(sel):
                    w = season * self._week_weights(source)
                    day[sel] = rng.choice(YEAR_DAYS, size=len(sel), p=w / w.sum())
        x = np.concatenate([q["x"] for q in parts] + [q["x"] for q in hot_parts])
        y = np.concatenate([q["y"] for q in parts] + [q["y"] for q in hot_parts])
        cat = np.concatenate([cat] + [q["cat"] for q in hot_parts])
        day = np.concatenate([day] + [q["day"] for q in hot_parts])
        src = np.concatenate([src] + [q["src"] for q in hot_parts])
        bld = np.concatenate([q["b"] for q in parts] + [q["b"] for q in hot_parts])
        total = len(x)
        hour = self._hours(np.array(srcs)[src] == "巡查", np.array(cats)[cat] == "噪音扰民")
        seconds = day * 86400 + hour * 3600 + rng.integers(0, 3600, total)
        lon, lat = self.to_wgs.transform(x, y)
        # descriptions: templates with the building number at buildings, without elsewhere
        texts = []
        pick = rng.random(total)
        bno = self.b["building_no"].to_numpy()
        for c, b, u in zip(cat.tolist(), bld.tolist(), pick.tolist(), strict=True):
            options = names.DESCRIPTIONS[cats[c]]
            t = options[int(u * len(options))]
            texts.append(t.format(b=bno[b]) if b >= 0 else t.replace("{b}号楼", ""))
        source = np.array(srcs)[src]
        has_addr = (bld >= 0) & np.isin(source, names.ADDRESS_SOURCES)
        addresses = np.where(has_addr, self.b["address"].to_numpy()[np.maximum(bld, 0)], "")
        order = np.lexsort((np.arange(total), seconds))
        self.incidents = pd.DataFrame(
            {
                "ext_id": [f"DEMO-{i + 1:06d}" for i in range(total)],
                "category": np.array(cats)[cat][order],
                "source": source[order],
                "description": np.array(texts, dtype=object)[order],
                "lon": np.char.mod("%.7f", lon[order]),
                "lat": np.char.mod("%.7f", lat[order]),
                "address": addresses[order],
                "reported_at": _iso(seconds[order], YEAR_START),
            }
        )
        self.hotspots = hot_rows
        self.step("incidents", 1, 1)

    def _hours(
        self, patrol: npt.NDArray[np.bool_], noise: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.int64]:
        """Hour of day: patrols in office hours, the public all day, noise in the evening."""
        rng = self.rng
        office = np.array([0] * 8 + [6, 9, 9, 7, 2, 2, 7, 9, 8, 5] + [1] * 3 + [0] * 3, float)
        public = np.array(
            [1, 0.6, 0.4, 0.3, 0.3, 0.6, 2, 4, 7, 9, 9, 8, 7, 7, 8, 8, 8, 8, 9, 9, 8, 6, 4, 2]
        )
        loud = np.array(
            [6, 4, 2, 1, 0.5, 0.5, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 6, 8, 10, 11, 10, 8]
        )
        out = np.empty(len(patrol), dtype=np.int64)
        for mask, w in ((patrol, office), (~patrol & noise, loud), (~patrol & ~noise, public)):
            out[mask] = rng.choice(24, size=int(mask.sum()), p=w / w.sum())
        return out

    def _hotspots(self) -> tuple[list[dict], list[dict]]:
        """Plant the hotspots; returns their ground truth and their incidents."""
        p, rng = self.p, self.rng
        cats = [c for c, _, _ in names.CATEGORIES]
        srcs = [s for s, _ in names.SOURCES]
        src_w = np.array(
            [{"12345": 45, "热线": 20, "公众号": 15, "巡查": 10, "随手拍": 10}[s] for s in srcs],
            float,
        )
        with_b = np.zeros(len(self.micro_idx), dtype=bool)
        with_b[self.b["micro"].unique()] = True
        blocked = ~with_b
        rows, parts = [], []
        for k in range(p.hotspots):
            seed = int(rng.choice(np.flatnonzero(~blocked)))
            cells = [seed]
            for _ in range(int(rng.integers(0, 3))):
                nxt = [
                    n
                    for c in cells
                    for n in self.neighbours[c]
                    if not blocked[n] and n not in cells
                ]
                if nxt:
                    cells.append(nxt[int(rng.integers(0, len(nxt)))])
            cells.sort()
            for c in cells:  # keep later hotspots off these cells and their neighbours
                blocked[c] = True
                blocked[self.neighbours[c]] = True
            category = names.HOTSPOT_CATEGORIES[k % len(names.HOTSPOT_CATEGORIES)]
            start = int(rng.integers(15, YEAR_DAYS - 70))
            length = int(rng.integers(21, 57))
            count = int(rng.integers(150, 301)) if p.incidents >= 20_000 else 80
            in_cells = np.flatnonzero(self.b["micro"].isin(cells).to_numpy())
            floors = self.b["floors"].to_numpy()[in_cells]
            if category == "电梯故障" and (floors >= 7).any():
                in_cells = in_cells[floors >= 7]
            w = self.b["households"].to_numpy(dtype=float)[in_cells]
            b = in_cells[rng.choice(len(in_cells), size=count, p=w / w.sum())]
            xy = self.b_xy[b] + np.clip(rng.normal(0.0, 5.0, (count, 2)), -5.5, 5.5)
            parts.append(
                {
                    "x": xy[:, 0],
                    "y": xy[:, 1],
                    "cat": np.full(count, cats.index(category)),
                    "day": start + rng.integers(0, length, count),
                    "src": rng.choice(len(srcs), size=count, p=src_w / src_w.sum()),
                    "b": b,
                }
            )
            union = shapely.union_all([self.micro_polys[c] for c in cells])
            centre = np.asarray(union.centroid.coords[0])
            corners = shapely.get_coordinates(union)
            radius = math.ceil(float(np.hypot(*(corners - centre).T).max()))  # covers the cells
            rows.append(
                {
                    "hotspot_id": k + 1,
                    "category": category,
                    "start": str(_iso(np.array([start * 86400]), YEAR_START)[0]),
                    "end": str(_iso(np.array([(start + length) * 86400]), YEAR_START)[0]),
                    "radius_m": round(radius, 1),
                    "micro_codes": ",".join(self.micro_code(c) for c in cells),
                    "n_incidents": count,
                    "geometry": Point(centre),
                }
            )
        return rows, parts

    # ------------------------------------------------------------------ tracks

    def _tracks(self) -> None:
        """A week of patrols per 网格员: walks along the roads around and inside their micro
        grids with stops at buildings, noise, dropouts and outliers, written as GPX 1.1."""
        p = self.p
        pieces = self.road_geom
        kinds = self.roads["kind"].to_numpy()
        self.piece_xy = [np.asarray(g.coords) for g in pieces]
        self.piece_len = shapely.length(pieces)
        node_id: dict[tuple[float, float], int] = {}
        ends = np.empty((len(pieces), 2), dtype=int)
        for i, xy in enumerate(self.piece_xy):
            for j, pt in enumerate((xy[0], xy[-1])):
                ends[i, j] = node_id.setdefault((float(pt[0]), float(pt[1])), len(node_id))
        self.piece_ends = ends
        self.adj: list[list[int]] = [[] for _ in node_id]
        for i, (a, b) in enumerate(ends.tolist()):
            self.adj[a].append(i)
            if b != a:
                self.adj[b].append(i)
        road_tree = shapely.STRtree(pieces)
        walkable = kinds != "motorway"
        b_micro = self.b["micro"].to_numpy()
        key_b = self.key_building
        routes: list[dict] = []
        self.n_points = 0
        staff_names = dict(zip(self.staff["staff_id"], self.staff["name"], strict=True))
        for n, (sid, group) in enumerate(self.workers):
            area = shapely.union_all([self.micro_polys[m] for m in group]).buffer(0.5)
            cand = road_tree.query(area, predicate="covers")
            allowed = np.zeros(len(pieces), dtype=bool)
            allowed[cand[walkable[cand]]] = True
            mine = np.flatnonzero(np.isin(b_micro, group))
            keys = np.flatnonzero(np.isin(b_micro[key_b], group))
            days = []
            for d in range(p.track_days):
                day = self._patrol(allowed, mine, keys)
                if day is None:
                    continue
                day["date"] = d
                days.append(day)
            if not days:
                continue
            self._write_gpx(sid, staff_names[sid], days, routes)
            self.step("tracks", n + 1, len(self.workers))
        self.routes = pd.DataFrame(
            routes,
            columns=["staff_id", "date", "start", "end", "n_fixes", "visited_household_ids", "wkt"],
        )

    def _walk(
        self, allowed: npt.NDArray[np.bool_], length: float, near: FloatArray | None = None
    ) -> FloatArray | None:
        """A random walk of ``length`` metres over the allowed road pieces, preferring pieces
        not walked yet and turning back only at dead ends; it starts at a random piece, or at
        the road node nearest to ``near``."""
        rng = self.rng
        start_pieces = np.flatnonzero(allowed)
        if len(start_pieces) == 0:
            return None
        first = int(start_pieces[int(rng.integers(0, len(start_pieces)))])
        node = int(self.piece_ends[first, 0])
        if near is not None:
            starts = np.array([self.piece_xy[e][0] for e in start_pieces])
            first = int(start_pieces[int(np.argmin(np.hypot(*(starts - near).T)))])
            node = int(self.piece_ends[first, 0])
        coords = [self.piece_xy[first][:1]]
        visits: dict[int, int] = {}
        walked, came = 0.0, -1
        for _ in range(10_000):
            if walked >= length:
                break
            opts = [e for e in self.adj[node] if allowed[e]]
            if not opts:
                break
            if len(opts) > 1 and came in opts:
                opts.remove(came)
            w = np.array([1.0 / (1 + visits.get(e, 0)) ** 3 for e in opts])
            e = opts[int(np.searchsorted(np.cumsum(w), rng.random() * w.sum(), side="right"))]
            xy = self.piece_xy[e]
            if self.piece_ends[e, 0] == node:
                coords.append(xy[1:])
                node = int(self.piece_ends[e, 1])
            else:
                coords.append(xy[::-1][1:])
                node = int(self.piece_ends[e, 0])
            visits[e] = visits.get(e, 0) + 1
            walked += float(self.piece_len[e])
            came = e
        xy = np.vstack(coords)
        if len(xy) < 2:
            return None
        cum = _cumlen(xy)
        return _substring(xy, cum, 0.0, min(length, float(cum[-1])))

    def _patrol(
        self,
        allowed: npt.NDArray[np.bool_],
        mine: npt.NDArray[np.int64],
        keys: npt.NDArray[np.int64],
    ) -> dict | None:
        """One day's patrol: the true path, its fixes (time, x, y) and the key visits.

        The patrol lasts 30-90 min: a walk along the roads of the worker's grids at about
        1.3 m/s, with 2-4 stops of 0.5-2 min at building doors and, on some days, a dwell of
        5-10 min at a key household's building.
        """
        rng = self.rng
        duration = rng.uniform(30.0, 90.0) * 60.0
        stops = [("stop", rng.uniform(30.0, 120.0)) for _ in range(int(rng.integers(2, 5)))]
        near = None
        if len(keys) > 0 and rng.random() < 0.5:
            key = int(keys[int(rng.integers(0, len(keys)))])
            stops.append(("key", rng.uniform(300.0, 600.0)))
            near = self.b_xy[self.key_building[key]]  # set out towards the key household
        budget = (duration - sum(t for _, t in stops)) * WALK_SPEED  # metres of walking
        route = self._walk(allowed, budget, near)
        if route is None:
            return None
        cum = _cumlen(route)
        # stops at buildings near the patrol (the nearer half), the key household anywhere
        near = mine[np.argsort(shapely.distance(LineString(route), self.b_geom[mine]))]
        near = near[: max(1, (len(near) + 1) // 2)]
        order = rng.permutation(len(near))
        visits: list[tuple[int, int, float]] = []  # building, key household or -1, seconds
        for k, (kind, dwell) in enumerate(stops):
            if kind == "key":
                visits.append((int(self.key_building[key]), key, dwell))
            elif k < len(near):
                visits.append((int(near[order[k]]), -1, dwell))
        # the walks to the doors come out of the walking budget: shorten the route to fit
        events = self._doors(route, cum, visits)
        end = min(float(cum[-1]), max(budget - sum(e[4] for e in events), 0.5 * budget))
        if end < cum[-1]:
            route = _substring(route, cum, 0.0, end)
            cum = _cumlen(route)
            events = self._doors(route, cum, visits)
        legs: list[FloatArray] = []
        dwell_after: dict[int, float] = {}  # leg index → seconds at the door after it
        last = 0.0
        for s, door, dwell, _h, _d in events:
            legs.append(_substring(route, cum, last, max(s, last)))
            at_xy = legs[-1][-1]
            legs.append(np.vstack([at_xy, door]))
            dwell_after[len(legs) - 1] = dwell
            legs.append(np.vstack([door, at_xy]))
            last = max(s, last)
        legs.append(_substring(route, cum, last, float(cum[-1])))
        lengths = np.array([float(_cumlen(leg)[-1]) for leg in legs])
        speeds = WALK_SPEED * np.clip(rng.normal(1.0, 0.08, len(legs)), 0.8, 1.2)
        walk_target = duration - sum(dwell_after.values())
        speeds *= np.clip((lengths / speeds).sum() / walk_target, 0.9, 1.1)  # fit the duration
        path = [legs[0]]
        times, along = [0.0], [0.0]
        dwell_windows = []
        t = s_tot = 0.0
        for i, leg in enumerate(legs):
            if i:
                path.append(leg[1:])
            t += lengths[i] / speeds[i]
            s_tot += lengths[i]
            times.append(t)
            along.append(s_tot)
            if i in dwell_after:
                dwell_windows.append((t, t + dwell_after[i]))
                t += dwell_after[i]
                times.append(t)
                along.append(s_tot)
        xy = np.vstack(path)
        pcum = _cumlen(xy)
        tt = np.arange(0.0, t + 1e-9, FIX_INTERVAL_S)
        s = np.interp(tt, np.array(times), np.array(along) * (pcum[-1] / max(s_tot, 1e-9)))
        true = _interp_path(xy, pcum, s)
        n = len(tt)
        sigma = np.full(n, GPS_SIGMA_M)
        for a, b in dwell_windows:
            sigma[(tt > a) & (tt < b)] = 7.0  # indoors: noisier, jittering around the door
        noisy = true + rng.normal(0.0, 1.0, (n, 2)) * sigma[:, None]
        jump = rng.random(n) < 1 / 2000
        ang = rng.uniform(0, 2 * np.pi, n)
        mag = rng.uniform(100.0, 500.0, n)
        noisy[jump] += np.c_[np.cos(ang), np.sin(ang)][jump] * mag[jump, None]
        keep = np.ones(n, dtype=bool)
        new_seg = np.zeros(n, dtype=bool)
        if n > 100 and rng.random() < 0.35:
            n_gaps = int(rng.integers(1, 3)) if n > 200 else 1
            for k in range(n_gaps):  # one gap per share of the day, so gaps never merge
                lo, hi = 20 + k * (n - 60) // n_gaps, 20 + (k + 1) * (n - 60) // n_gaps - 31
                a = int(rng.integers(lo, max(lo + 1, hi)))
                b = a + int(rng.integers(6, 31))  # 1-5 min without fixes
                keep[a:b] = False
                new_seg[b] = True
        begin = (
            rng.uniform(8.0 * 3600, 10.5 * 3600)
            if rng.random() < 0.6
            else rng.uniform(14.0 * 3600, 16.0 * 3600)
        )
        return {
            "begin": int(begin),
            "t": tt[keep].astype(np.int64),
            "xy": noisy[keep],
            "new_seg": new_seg[keep] & (np.cumsum(keep)[keep] > 1),
            "true": xy,
            "visited": sorted(int(self.key_ids[e[3]]) for e in events if e[3] >= 0),
            "end_s": int(tt[-1]),
        }

    def _doors(
        self, route: FloatArray, cum: FloatArray, visits: list[tuple[int, int, float]]
    ) -> list[tuple[float, FloatArray, float, int, float]]:
        """Visits in order along the route: where each leaves the route, the door (the point of
        the building nearest to it), the dwell, the key household, the walk there and back."""
        line = LineString(route)
        events = []
        for b, h, dwell in visits:
            s = float(line.project(Point(self.b_xy[b])))
            at_xy = _interp_path(route, cum, np.array([s]))[0]
            door = np.asarray(nearest_points(self.b_geom[b].exterior, Point(at_xy))[0].coords[0])
            events.append((s, door, dwell, h, 2.0 * float(np.hypot(*(door - at_xy)))))
        return sorted(events, key=lambda e: e[0])

    def _write_gpx(self, sid: int, name: str, days: list[dict], routes: list[dict]) -> None:
        """Write one worker's week as GPX 1.1 (one <trk> per day) with plain formatting."""
        allxy = np.vstack([d["xy"] for d in days])
        lon, lat = self.to_wgs.transform(allxy[:, 0], allxy[:, 1])
        lat_l, lon_l = lat.tolist(), lon.tolist()
        out = [
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<gpx version="1.1" creator="wangge data.generate" '
            'xmlns="http://www.topografix.com/GPX/1/1">\n'
            f"<metadata><name>{name} ({sid})</name></metadata>\n"
        ]
        i = 0
        for d in days:
            base = WEEK_START + np.timedelta64(d["date"] * 86400 + d["begin"], "s")
            n = len(d["t"])
            stamps = _iso(d["t"], base).tolist()
            date = str(base.astype("datetime64[D]"))
            out.append(f"<trk><name>{date} {name}</name><trkseg>\n")
            lines = [
                f'<trkpt lat="{a:.7f}" lon="{o:.7f}"><time>{t}</time></trkpt>\n'
                for a, o, t in zip(lat_l[i : i + n], lon_l[i : i + n], stamps, strict=True)
            ]
            for j in np.flatnonzero(d["new_seg"])[::-1].tolist():  # a dropout: new segment
                lines.insert(j, "</trkseg><trkseg>\n")
            out.extend(lines)
            out.append("</trkseg></trk>\n")
            i += n
            self.n_points += n
            tl = shapely.transform(
                LineString(d["true"]), lambda c: np.c_[self.to_wgs.transform(c[:, 0], c[:, 1])]
            )
            routes.append(
                {
                    "staff_id": sid,
                    "date": date,
                    "start": str(_iso(np.array([0]), base)[0]),
                    "end": str(_iso(np.array([d["end_s"]]), base)[0]),
                    "n_fixes": len(d["t"]),
                    "visited_household_ids": ";".join(map(str, d["visited"])),
                    "wkt": shapely.to_wkt(tl, rounding_precision=7),
                }
            )
        out.append("</gpx>\n")
        (self.out / "tracks" / f"worker_{sid}.gpx").write_bytes("".join(out).encode("utf-8"))

    # ------------------------------------------------------------------ output

    def write(self, *, preset: str, seed: int) -> dict:
        """Write the GeoPackage and the CSV files, then the manifest; return the manifest."""
        out = self.out
        self.step("write", 0, 3)
        grids = gpd.GeoDataFrame(
            {
                "code": [g.code for g in self.grids],
                "name": [g.name for g in self.grids],
                "level": [g.level for g in self.grids],
                "parent_code": [g.parent for g in self.grids],
                "kind": [g.kind for g in self.grids],
                "households": [g.households for g in self.grids],
                "residents": [g.residents for g in self.grids],
            },
            geometry=[_to_multi(g.geom) for g in self.grids],
            crs=self.crs,
        )
        roads = gpd.GeoDataFrame(self.roads, geometry=list(self.road_geom), crs=self.crs)
        compounds = gpd.GeoDataFrame(
            {
                "compound_id": np.arange(1, len(self.compounds) + 1),
                "name": [c["name"] for c in self.compounds],
                "micro_codes": [
                    ",".join(self.micro_code(m) for m in c["micro"]) for c in self.compounds
                ],
            },
            geometry=[
                _to_multi(
                    shapely.union_all([self.micro_polys[m] for m in c["micro"]]).buffer(
                        -4.0, join_style="mitre"
                    )
                )
                for c in self.compounds
            ],
            crs=self.crs,
        )
        cols = [
            "building_id",
            "compound_name",
            "road_name",
            "house_number",
            "building_no",
            "units",
            "floors",
            "households",
            "residents",
            "address",
            "micro_code",
        ]
        buildings = gpd.GeoDataFrame(self.b[cols], geometry=list(self.b_geom), crs=self.crs)
        stations = gpd.GeoDataFrame(
            {k: [s[k] for s in self.stations] for k in ("station_id", "kind", "name", "address")},
            geometry=[Point(s["xy"]) for s in self.stations],
            crs=self.crs,
        )
        hotspots = gpd.GeoDataFrame(self.hotspots, geometry="geometry", crs=self.crs)
        gpkg = out / "district.gpkg"
        old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
        try:
            for layer, frame in (
                ("grids", grids),
                ("roads", roads),
                ("compounds", compounds),
                ("buildings", buildings),
                ("stations", stations),
                ("hotspots", hotspots),
            ):
                pyogrio.write_dataframe(frame.to_crs("EPSG:4326"), gpkg, layer=layer, driver="GPKG")
        finally:
            pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})
        self.step("write", 1, 3)
        csv = {"index": False, "lineterminator": "\n", "encoding": "utf-8"}
        self.incidents.to_csv(out / "incidents.csv", **csv)
        self.staff.to_csv(out / "staff.csv", **csv)
        self.key.to_csv(out / "key_households.csv", **csv)
        self.routes.to_csv(out / "patrol_routes.csv", **csv)
        self.step("write", 2, 3)
        lon, lat = self.to_wgs.transform(*np.asarray(self.office.exterior.coords).T)
        tracks = sorted((out / "tracks").glob("worker_*.gpx"))
        levels = grids["level"].value_counts()
        counts = {
            "communities": int(levels.get("community", 0)),
            "grids": int(levels.get("grid", 0)),
            "micro_grids": int(levels.get("micro", 0)),
            "dedicated_grids": int(levels.get("dedicated", 0)),
            "roads": len(roads),
            "compounds": len(compounds),
            "buildings": len(buildings),
            "stations": len(stations),
            "households": int(self.b["households"].sum()),
            "residents": int(self.b["residents"].sum()),
            "key_households": len(self.key),
            "staff": len(self.staff),
            "workers": len(tracks),
            "incidents": len(self.incidents),
            "hotspots": len(hotspots),
            "patrols": len(self.routes),
            "track_files": len(tracks),
        }
        sizes = {name: (out / name).stat().st_size for name in OUTPUT_FILES[:-1]}
        sizes["tracks"] = sum(f.stat().st_size for f in tracks)
        manifest = {
            "preset": preset,
            "seed": seed,
            "generator_version": GENERATOR_VERSION,
            "crs": "EPSG:4326",
            "metric_crs": f"EPSG:{self.crs.to_epsg()}",
            "incident_period": ["2025-11-01", "2026-10-31"],
            "track_period": [
                str(WEEK_START.astype("datetime64[D]")),
                str(WEEK_START.astype("datetime64[D]") + self.p.track_days - 1),
            ],
            "counts": counts,
            "bbox": [round(float(v), 7) for v in (min(lon), min(lat), max(lon), max(lat))],
            "total_track_points": self.n_points,
            "sizes": sizes,
            "total_bytes": sum(sizes.values()),
        }
        (out / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        self.step("write", 3, 3)
        return manifest


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: ``python -m data.generate OUT_DIR [--preset] [--seed]``."""
    parser = argparse.ArgumentParser(description="Generate the deterministic demo district.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("pyogrio").setLevel(logging.WARNING)
    last: dict[str, float] = {}

    def report(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last.get(stage, 0.0) > 2.0:
            last[stage] = now
            log.info("%s %d/%d", stage, done, total)

    manifest = generate_district(args.out_dir, preset=args.preset, seed=args.seed, progress=report)
    log.info("%s", json.dumps(manifest["counts"], ensure_ascii=False))


if __name__ == "__main__":
    main()
