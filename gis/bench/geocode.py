"""``wangge bench geocode``: GridIndex against geopandas.sjoin and a PostGIS join.

One run times, on the same points, (a) :meth:`gis.geocode.GridIndex.locate`, (b)
``geopandas.sjoin(points, micro, predicate="intersects")`` followed by "smallest code wins"
per point (``within`` would drop points on edges; for a point and a polygon ``intersects``
is exactly ``covers``), and (c) a PostGIS join with a GiST index on the micro grids, the
micro grids and points loaded by COPY into temporary tables; only the join is timed::

    SELECT DISTINCT ON (p.id) p.id, g.code FROM pts p JOIN g ON ST_Covers(g.geom, p.geom)
    ORDER BY p.id, g.code

It checks that the three give IDENTICAL assignments and raises :class:`BenchmarkMismatch`
otherwise. Datasets: the demo grids (passed in, or a demo-like district generated here) and
a "scaled city" of 100,000 micro grids (seeded Voronoi cells clipped to a box, at the demo's
density). Points: 95% inside the district (uniform, 1% of all exactly on grid vertices, where
the smallest-code rule decides) and 5% outside it.

PostGIS is slow at 10M points, so its sizes are capped separately (``postgis_max_points``,
default 1M); the table says so. PostgreSQL's parallel workers are switched off so that every
method runs on one core. geopandas can be capped too (``geopandas_max_points``).
"""

from __future__ import annotations

import io
import json
import logging
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import shapely

from gis.geocode import GridIndex

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
DEMO_CENTER = (113.55, 34.80)
DEMO_MICRO = 619
DEMO_AREA_KM2 = 25.0
CITY_MICRO = 100_000


class BenchmarkMismatch(AssertionError):
    """Two methods assigned some point to different grids."""


@dataclass(frozen=True)
class BenchRow:
    """One timing: ``ratio`` is this method's seconds over GridIndex's on the same points."""

    dataset: str
    method: str
    n_points: int
    seconds: float
    points_per_s: float
    ratio: float
    agree: bool | None
    note: str = ""


# ------------------------------------------------------------------------------ datasets


def _box_for(n_micro: int, center: tuple[float, float]) -> tuple[float, float, float, float]:
    """A lon/lat box holding ``n_micro`` grids at the demo density (25 km² per 619)."""
    area_km2 = DEMO_AREA_KM2 * n_micro / DEMO_MICRO
    side_km = float(np.sqrt(area_km2))
    lat_deg = side_km / 110.95
    lon_deg = side_km / (111.32 * np.cos(np.radians(center[1])))
    cx, cy = center
    return (cx - lon_deg / 2, cy - lat_deg / 2, cx + lon_deg / 2, cy + lat_deg / 2)


def _nearest(seeds: FloatArray, points: FloatArray) -> npt.NDArray[np.int64]:
    tree = shapely.STRtree(shapely.points(seeds))
    _, hit = tree.query_nearest(shapely.points(points), return_distance=False, all_matches=False)
    return hit.astype(np.int64)


def synthetic_district(
    n_micro: int = DEMO_MICRO,
    *,
    seed: int = 20261122,
    center: tuple[float, float] = DEMO_CENTER,
    dissolve: bool = True,
    n_dedicated: int = 4,
) -> gpd.GeoDataFrame:
    """A district of Voronoi micro grids nested into grids, communities and street offices.

    Micro grids are the Voronoi cells of ``n_micro`` seeded points clipped to a box at the
    demo density; each joins the nearest of ~n/15 grid seeds, grids join the nearest of
    ~n/80 community seeds, communities the nearest of ~n/620 street seeds, so the levels nest
    exactly. Codes follow :mod:`gis.grids`. Dedicated grids are small boxes (schools,
    markets) overlapping the micro grids.

    Parameters
    ----------
    dissolve
        Give grids, communities and streets their dissolved geometry (slow for 100k micro
        grids); otherwise they carry no geometry, which location does not need.
    """
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = _box_for(n_micro, center)
    xy = np.column_stack((rng.uniform(x0, x1, n_micro), rng.uniform(y0, y1, n_micro)))
    box = shapely.box(x0, y0, x1, y1)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(xy), extend_to=box))
    cells = shapely.intersection(cells, box)
    # voronoi_polygons does not keep the seed order: recover each cell's seed.
    seed_of = _nearest(xy, shapely.get_coordinates(shapely.point_on_surface(cells)))
    order = np.argsort(seed_of)
    cells = cells[order]
    n_grid = max(n_micro // 15, 1)
    n_comm = max(n_micro // 80, 1)
    n_street = max(n_micro // 620, 1)
    grid_seeds = xy[rng.choice(n_micro, n_grid, replace=False)]
    comm_seeds = grid_seeds[rng.choice(n_grid, min(n_comm, n_grid), replace=False)]
    street_seeds = comm_seeds[rng.choice(len(comm_seeds), min(n_street, len(comm_seeds)), False)]
    micro_grid = _nearest(grid_seeds, xy)
    grid_comm = _nearest(comm_seeds, grid_seeds)
    comm_street = _nearest(street_seeds, comm_seeds)

    street_code = {s: f"410171{s + 1:03d}" for s in range(len(street_seeds))}
    comm_code: dict[int, str] = {}
    for s in range(len(street_seeds)):
        for k, c in enumerate(np.flatnonzero(comm_street == s)):
            comm_code[int(c)] = f"{street_code[s]}{k + 1:03d}"
    grid_code: dict[int, str] = {}
    for c in range(len(comm_seeds)):
        for k, g in enumerate(np.flatnonzero(grid_comm == c)):
            grid_code[int(g)] = f"{comm_code[c]}{k + 1:02d}"
    micro_codes = np.empty(n_micro, dtype=object)
    for g in range(n_grid):
        for k, m in enumerate(np.flatnonzero(micro_grid == g)):
            micro_codes[m] = f"{grid_code[g]}{k + 1:02d}"

    rows: list[dict[str, Any]] = []

    def dissolved(members: npt.NDArray[np.int64]) -> Any:
        if not dissolve or members.size == 0:
            return None
        return shapely.coverage_union_all(cells[members])

    for s, code in street_code.items():
        members = np.flatnonzero(comm_street[grid_comm[micro_grid]] == s)
        rows.append(_row(code, "street", None, dissolved(members)))
    for c, code in comm_code.items():
        members = np.flatnonzero(grid_comm[micro_grid] == c)
        rows.append(_row(code, "community", street_code[int(comm_street[c])], dissolved(members)))
    for g, code in grid_code.items():
        members = np.flatnonzero(micro_grid == g)
        rows.append(_row(code, "grid", comm_code[int(grid_comm[g])], dissolved(members)))
    for m in range(n_micro):
        rows.append(_row(micro_codes[m], "micro", grid_code[int(micro_grid[m])], cells[m]))
    # Dedicated grids: small boxes (~150-300 m) at random places, disjoint from each other.
    placed: list[Any] = []
    tries = 0
    while len(placed) < n_dedicated and tries < 1000:
        tries += 1
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
        w, h = rng.uniform(0.0015, 0.003), rng.uniform(0.0012, 0.0025)
        shape = shapely.box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2).intersection(box)
        if any(shape.intersects(p) for p in placed):
            continue
        placed.append(shape)
    street_of = _nearest(street_seeds, shapely.get_coordinates(shapely.centroid(placed)))
    for k, (shape, s) in enumerate(zip(placed, street_of, strict=True)):
        code = f"{street_code[int(s)]}9{k + 1:02d}"
        rows.append(_row(code, "dedicated", street_code[int(s)], shape))
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")
    return frame


def _row(code: str, level: str, parent: str | None, geom: Any) -> dict[str, Any]:
    if geom is not None and geom.geom_type == "Polygon":
        geom = shapely.MultiPolygon([geom])
    return {
        "code": code,
        "name": f"{level} {code}",
        "level": level,
        "parent_code": parent,
        "geometry": geom,
    }


def scaled_city(n_micro: int = CITY_MICRO, *, seed: int = 7) -> gpd.GeoDataFrame:
    """The "scaled city": :func:`synthetic_district` with 100,000 micro grids (undissolved)."""
    return synthetic_district(n_micro, seed=seed, dissolve=False, n_dedicated=40)


def bench_points(
    index: GridIndex,
    n: int,
    *,
    outside_frac: float = 0.05,
    vertex_frac: float = 0.01,
    seed: int = 1,
) -> tuple[FloatArray, FloatArray]:
    """``n`` points: ``1 - outside_frac`` inside micro grids (of which ``vertex_frac`` of all
    points exactly on grid vertices) and ``outside_frac`` outside every micro grid."""
    rng = np.random.default_rng(seed)
    micro = index.micro
    x0, y0, x1, y1 = micro.total_bounds
    n_out = round(n * outside_frac)
    n_vert = round(n * vertex_frac)
    n_in = n - n_out - n_vert
    coords = shapely.get_coordinates(micro.geometry.values)

    def draw(count: int, inside: bool, pad: float) -> tuple[FloatArray, FloatArray]:
        xs, ys, have = [], [], 0
        dx, dy = (x1 - x0) * pad, (y1 - y0) * pad
        while have < count:
            m = max(2 * (count - have), 1024)
            x = rng.uniform(x0 - dx, x1 + dx, m)
            y = rng.uniform(y0 - dy, y1 + dy, m)
            keep = (index.locate(x, y) >= 0) == inside
            xs.append(x[keep])
            ys.append(y[keep])
            have += int(keep.sum())
        return np.concatenate(xs)[:count], np.concatenate(ys)[:count]

    ix, iy = draw(n_in, True, 0.0)
    ox, oy = draw(n_out, False, 0.08)
    pick = rng.integers(0, len(coords), n_vert)
    x = np.concatenate((ix, ox, coords[pick, 0]))
    y = np.concatenate((iy, oy, coords[pick, 1]))
    perm = rng.permutation(n)
    return np.ascontiguousarray(x[perm]), np.ascontiguousarray(y[perm])


# ------------------------------------------------------------------------------- methods


def _best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    best = float("inf")
    result = None
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def _codes(index: GridIndex, rows: npt.NDArray[np.integer]) -> npt.NDArray[np.object_]:
    codes = np.append(index.micro["code"].to_numpy(dtype=object), None)
    return codes[rows]


def sjoin_locate(micro: gpd.GeoDataFrame, lon: FloatArray, lat: FloatArray) -> np.ndarray:
    """Code per point by geopandas: sjoin with ``intersects`` (= covers for a point in a
    polygon, so edge points are kept), then the smallest code per point; None outside."""
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs=micro.crs)
    joined = gpd.sjoin(points, micro[["code", "geometry"]], predicate="intersects", how="inner")
    best = joined["code"].groupby(level=0).min()
    out = np.full(lon.size, None, dtype=object)
    out[best.index.to_numpy()] = best.to_numpy(dtype=object)
    return out


def locate_one_latency(
    index: GridIndex, lon: FloatArray, lat: FloatArray, *, n: int = 20_000
) -> dict[str, float]:
    """p50 / p99 / mean of ``locate_one`` in microseconds over the first ``n`` points."""
    times = []
    clock = time.perf_counter_ns
    for x, y in zip(lon[:n].tolist(), lat[:n].tolist(), strict=True):
        t0 = clock()
        index.locate_one(x, y)
        times.append(clock() - t0)
    arr = np.asarray(times, dtype=np.float64) / 1000.0
    return {
        "p50_us": float(np.percentile(arr, 50)),
        "p99_us": float(np.percentile(arr, 99)),
        "mean_us": float(arr.mean()),
        "n": float(arr.size),
    }


class PostGISJoin:
    """Micro grids in a temporary table with a GiST index, and the timed join.

    Uses one connection (temporary tables live in it) with parallel workers off.
    """

    def __init__(self, url: str, micro: gpd.GeoDataFrame) -> None:
        from sqlalchemy import create_engine

        self.engine = create_engine(url, poolclass=_null_pool())
        self.conn = self.engine.raw_connection()
        self.pg = self.conn.driver_connection
        with self.pg.cursor() as cur:
            cur.execute("SET max_parallel_workers_per_gather = 0")
            cur.execute("SET work_mem = '256MB'")
            cur.execute(
                "CREATE TEMP TABLE g (code text NOT NULL, geom geometry(MultiPolygon, 4326))"
            )
            buf = io.StringIO()
            geoms = np.asarray(micro.geometry.values, dtype=object)
            for code, hexwkb in zip(micro["code"].tolist(), _hex_ewkb(geoms), strict=True):
                buf.write(f"{code}\t{hexwkb}\n")
            buf.seek(0)
            with cur.copy("COPY g (code, geom) FROM STDIN") as copy:
                while data := buf.read(1 << 20):
                    copy.write(data)
            cur.execute("CREATE INDEX ON g USING gist (geom)")
            cur.execute("ANALYZE g")
            cur.execute("SELECT postgis_lib_version(), version()")
            self.versions = cur.fetchone()
        self.pg.commit()

    def locate(self, lon: FloatArray, lat: FloatArray) -> tuple[float, np.ndarray]:
        """(join seconds, code per point or None)."""
        with self.pg.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS pts, res")
            cur.execute("CREATE TEMP TABLE pts (id bigint PRIMARY KEY, geom geometry(Point, 4326))")
            with cur.copy("COPY pts (id, geom) FROM STDIN") as copy:
                step = 200_000
                for s in range(0, lon.size, step):
                    # Hex EWKB carries the exact doubles (no decimal round trip).
                    wkb = _hex_ewkb(shapely.points(lon[s : s + step], lat[s : s + step]))
                    lines = [f"{s + i}\t{h}\n" for i, h in enumerate(wkb)]
                    copy.write("".join(lines))
            cur.execute("ANALYZE pts")
            self.pg.commit()
            t0 = time.perf_counter()
            cur.execute(
                "CREATE TEMP TABLE res AS SELECT DISTINCT ON (p.id) p.id, g.code "
                "FROM pts p JOIN g ON ST_Covers(g.geom, p.geom) ORDER BY p.id, g.code"
            )
            self.pg.commit()
            seconds = time.perf_counter() - t0
            cur.execute("SELECT id, code FROM res")
            out = np.full(lon.size, None, dtype=object)
            for ident, code in cur:
                out[ident] = code
        return seconds, out

    def close(self) -> None:
        self.conn.close()
        self.engine.dispose()


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool


def _hex_ewkb(geoms: np.ndarray) -> list[str]:
    return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True).tolist()


def _mismatches(
    names: Sequence[str], answers: Sequence[np.ndarray], lon: FloatArray, lat: FloatArray
) -> list[str]:
    ref = answers[0]
    bad = np.zeros(ref.size, dtype=bool)
    for other in answers[1:]:
        bad |= ref != other
    idx = np.flatnonzero(bad)
    lines = []
    for i in idx[:10]:
        got = ", ".join(f"{n}={a[i]}" for n, a in zip(names, answers, strict=True))
        lines.append(f"point {i} ({lon[i]!r}, {lat[i]!r}): {got}")
    if idx.size:
        lines.insert(0, f"{idx.size} of {ref.size} points disagree")
    return lines


# ------------------------------------------------------------------------------ the run


def run_geocode_bench(
    *,
    demo_grids: gpd.GeoDataFrame | None = None,
    database_url: str | None = None,
    sizes: Sequence[int] = (1_000_000, 10_000_000),
    postgis_max_points: int = 1_000_000,
    geopandas_max_points: int | None = None,
    city_micro: int = CITY_MICRO,
    repeats: int = 3,
    seed: int = 1,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[BenchRow], dict[str, Any]]:
    """Time GridIndex, geopandas and PostGIS on the demo grids and a scaled city.

    Parameters
    ----------
    demo_grids
        The demo district's grids (code, level, parent_code, geometry); None: a demo-like
        district from :func:`synthetic_district`.
    database_url
        SQLAlchemy URL (``postgresql+psycopg://...``) of a database with PostGIS where
        temporary tables may be created; None skips PostGIS.
    sizes
        Point counts; each dataset is timed at each size.
    postgis_max_points, geopandas_max_points
        Larger sizes are not run for that method (PostGIS at 10M points takes minutes).
    city_micro
        Micro grids in the scaled city; 0 skips it.
    repeats
        GridIndex runs per size (best kept); the others run once.

    Returns
    -------
    (rows, info)
        Timing rows, and extra facts: single-point latency, build times, versions.

    Raises
    ------
    BenchmarkMismatch
        Some point got different grids from different methods.
    """
    say = progress or (lambda msg: log.info("%s", msg))
    datasets: list[tuple[str, gpd.GeoDataFrame]] = []
    demo = demo_grids if demo_grids is not None else synthetic_district(seed=20261122)
    demo_name = "demo" if demo_grids is not None else "demo-like (synthetic)"
    datasets.append((f"{demo_name}: {int((demo['level'] == 'micro').sum())} micro", demo))
    if city_micro > 0:
        say(f"generating the scaled city ({city_micro} micro grids)")
        city = scaled_city(city_micro)
        datasets.append((f"scaled city: {city_micro} micro", city))

    rows: list[BenchRow] = []
    info: dict[str, Any] = {"latency": {}, "build_s": {}, "index": {}}
    for name, grids in datasets:
        say(f"{name}: building the index")
        t0 = time.perf_counter()
        index = GridIndex.from_grids(grids)
        info["build_s"][name] = time.perf_counter() - t0
        info["index"][name] = index.stats["micro"]
        pg = None
        if database_url is not None:
            say(f"{name}: loading micro grids into PostGIS")
            pg = PostGISJoin(database_url, index.micro)
            info["postgis"] = list(pg.versions)
        try:
            for n in sizes:
                say(f"{name}: {n:,} points")
                lon, lat = bench_points(index, n, seed=seed)
                t_ours, rows_ours = _best_time(
                    lambda ix=index, x=lon, y=lat: ix.locate(x, y), repeats
                )
                ours = _codes(index, rows_ours)
                answers, names = [ours], ["GridIndex"]
                timed: list[tuple[str, float, str]] = []
                if geopandas_max_points is None or n <= geopandas_max_points:
                    say(f"{name}: geopandas.sjoin on {n:,} points")
                    t_gp, gp = _best_time(
                        lambda m=index.micro, x=lon, y=lat: sjoin_locate(m, x, y), 1
                    )
                    answers.append(gp)
                    names.append("geopandas")
                    timed.append(("geopandas.sjoin (intersects + smallest code)", t_gp, ""))
                if pg is not None and n <= postgis_max_points:
                    say(f"{name}: PostGIS join on {n:,} points")
                    t_pg, pg_codes = pg.locate(lon, lat)
                    answers.append(pg_codes)
                    names.append("PostGIS")
                    timed.append(("PostGIS ST_Covers join (GiST)", t_pg, "join only, 1 worker"))
                problems = _mismatches(names, answers, lon, lat)
                agree = not problems if len(answers) > 1 else None
                rows.append(
                    BenchRow(
                        name,
                        "GridIndex.locate",
                        n,
                        t_ours,
                        n / t_ours,
                        1.0,
                        agree,
                        f"best of {repeats}",
                    )
                )
                for method, seconds, note in timed:
                    rows.append(
                        BenchRow(
                            name, method, n, seconds, n / seconds, seconds / t_ours, agree, note
                        )
                    )
                if problems:
                    raise BenchmarkMismatch("\n".join([f"{name}, {n:,} points:", *problems]))
                if n == max(sizes):
                    info["latency"][name] = locate_one_latency(index, lon, lat)
                for method_skipped, cap in (
                    ("geopandas.sjoin (intersects + smallest code)", geopandas_max_points),
                    ("PostGIS ST_Covers join (GiST)", postgis_max_points if pg else None),
                ):
                    if cap is not None and n > cap:
                        rows.append(
                            BenchRow(
                                name,
                                method_skipped,
                                n,
                                float("nan"),
                                float("nan"),
                                float("nan"),
                                None,
                                f"not run: capped at {cap:,} points",
                            )
                        )
        finally:
            if pg is not None:
                pg.close()
    info["machine"] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "shapely": shapely.__version__,
        "geos": shapely.geos_version_string,
        "geopandas": gpd.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    return rows, info


def write_results(
    rows: Sequence[BenchRow], folder: str | Path, *, info: dict[str, Any] | None = None
) -> tuple[Path, Path]:
    """Write ``geocode.md`` (a Markdown table) and ``geocode.json`` into ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    md = out / "geocode.md"
    js = out / "geocode.json"
    lines = [
        "# Geocoding benchmark: points → micro grid",
        "",
        "| dataset | method | points | seconds | points/s | ratio vs GridIndex | agree | note |",
        "|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        if np.isnan(r.seconds):
            sec = pps = ratio = "-"
        else:
            sec, pps, ratio = f"{r.seconds:.3f}", f"{r.points_per_s:,.0f}", f"{r.ratio:.1f}×"
        agree = "-" if r.agree is None else ("yes" if r.agree else "NO")
        lines.append(
            f"| {r.dataset} | {r.method} | {r.n_points:,} | {sec} | {pps} | {ratio} | {agree} "
            f"| {r.note} |"
        )
    info = info or {}
    for name, lat in info.get("latency", {}).items():
        lines.append("")
        lines.append(
            f"Single point `locate_one` on {name}: p50 {lat['p50_us']:.1f} µs, "
            f"p99 {lat['p99_us']:.1f} µs (in-process, {int(lat['n']):,} calls)."
        )
    if info.get("build_s"):
        lines.append("")
        for name, sec in info["build_s"].items():
            lines.append(f"Index build on {name}: {sec:.2f} s ({info['index'][name]}).")
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and np.isnan(v) else v

    payload = {
        "rows": [{k: clean(v) for k, v in asdict(r).items()} for r in rows],
        "info": info,
    }
    js.write_text(json.dumps(payload, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    return md, js


__all__ = [
    "BenchRow",
    "BenchmarkMismatch",
    "PostGISJoin",
    "bench_points",
    "locate_one_latency",
    "run_geocode_bench",
    "scaled_city",
    "sjoin_locate",
    "synthetic_district",
    "write_results",
]
